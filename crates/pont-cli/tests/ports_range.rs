//! Issue 4, behaviour 7: a range of thousands of ports is one mapping, set
//! up in well under a second, with a rule count that does not grow with its
//! length, and no process per port; both ends (and, for an offset range, the
//! middle) reach the right container port. Timings are printed, not
//! asserted (run with --nocapture to see them).

mod common;
#[macro_use]
mod ports_support;

use ports_support::*;
use Src::Ns as At;

const SAME: &str = "20000-24999:20000-24999";
const SAME_UDP: &str = "20000-24999:20000-24999/udp";
const OFFSET: &str = "30000-30999:40000-40999";

fn ranges(backend: Backend) {
    let sb = lab(backend);
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.66.15.0/24"]);
    let ports = [80, 81, 20000, 24999, 40000, 40500, 40999];
    run_server(&sb, "srv", "web", &ports, &["-p", "8080:80"]);
    let (rules_before, elements_before) = rule_counts(&sb, backend);
    let processes_before = host_process_count(&sb);

    let single = timed_pont(&sb, &["port", "add", "srv", "8081:81"]);
    let (rules_single, _) = rule_counts(&sb, backend);
    let same = timed_pont(&sb, &["port", "add", "srv", SAME]);
    let same_udp = timed_pont(&sb, &["port", "add", "srv", SAME_UDP]);
    let offset = timed_pont(&sb, &["port", "add", "srv", OFFSET]);
    let (rules, elements) = rule_counts(&sb, backend);
    assert_eq!(
        host_process_count(&sb),
        processes_before,
        "a process per port?"
    );
    match backend {
        // Fixed rules; a same-port range is one interval element. nft has no
        // offset DNAT (iptables' --to-destination A:P-Q/BASE), so an offset
        // range is one map element per port, still under the same rules.
        Backend::Nftables => {
            assert_eq!((rules_single, rules), (rules_before, rules_before));
            assert_eq!(elements, elements_before + 1 + 1 + 1 + 1000);
        }
        // One DNAT rule per mapping, whatever its length.
        Backend::Iptables => {
            assert_eq!(rules_single, rules_before + 1);
            assert_eq!(rules, rules_before + 4);
        }
    }
    let ps = sb.pont_ok(&["ps"]);
    assert!(ps.contains("0.0.0.0:30000-30999->40000-40999/tcp"), "{ps}");

    let lan = |proto, addr, expect| Case {
        from: At(Ns::Neighbour),
        proto,
        addr,
        expect,
    };
    let me = Some("192.0.2.3");
    let cases = [
        lan("tcp", "192.0.2.2:20000", me),
        lan("tcp", "192.0.2.2:24999", me),
        lan("udp", "192.0.2.2:20000", me),
        lan("udp", "192.0.2.2:24999", me),
        lan("tcp", "192.0.2.2:30000", me),
        lan("tcp", "192.0.2.2:30500", me),
        lan("tcp", "192.0.2.2:30999", me),
        // Just outside the ranges, and the offset range for udp.
        lan("tcp", "192.0.2.2:25000", None),
        lan("tcp", "192.0.2.2:19999", None),
        lan("tcp", "192.0.2.2:31000", None),
        lan("udp", "192.0.2.2:30000", None),
    ];
    check_cases(&sb, "ranges", &cases);
    // The offset range keeps each port's offset.
    let log = server_log(&sb, "srv");
    for port in ["40000", "40500", "40999"] {
        let needle = format!("tcp {port} 192.0.2.3 ");
        assert!(
            log.iter().any(|l| l.starts_with(&needle)),
            "{port}: {log:?}"
        );
    }

    let rm = timed_pont(
        &sb,
        &["port", "rm", "srv", SAME, SAME_UDP, OFFSET, "8081:81"],
    );
    assert_eq!(rule_counts(&sb, backend), (rules_before, elements_before));
    eprintln!(
        "{}: port add of 1 port {single:?}, of {SAME} {same:?}, of {SAME_UDP} {same_udp:?}, \
         of {OFFSET} {offset:?}; port rm of all four {rm:?}; rules {rules_before} -> {rules}, \
         map elements {elements_before} -> {elements}",
        backend.name()
    );
}

on_both_backends!(ranges);
