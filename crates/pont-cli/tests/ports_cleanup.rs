//! Issue 4, behaviour 9: removing a mapping, or its container, leaves no
//! rule (the host's exact state as before), no conntrack entry and no
//! reserved socket; a connection through a removed mapping ends with it.
//! SCTP mappings are rendered and removed, but this kernel has no SCTP, so
//! no SCTP traffic is tried.

mod common;
#[macro_use]
mod ports_support;

use std::time::Duration;

use ports_support::*;
use Src::Ns as At;

const SPECS: [&str; 6] = [
    "8080:80",
    "5353:53/udp",
    "127.0.0.1:7070:80",
    "20000-20099:20000-20099",
    "30000-30009:40000-40009",
    "9000:80/sctp",
];

/// Traffic through every mapping of SPECS but SCTP, each answered by `ip`.
fn traffic(sb: &Sandbox, gateway: &str) {
    let cases = [
        Case {
            from: At(Ns::Neighbour),
            proto: "tcp",
            addr: "192.0.2.2:8080",
            expect: Some("192.0.2.3"),
        },
        Case {
            from: At(Ns::Neighbour),
            proto: "udp",
            addr: "192.0.2.2:5353",
            expect: Some("192.0.2.3"),
        },
        Case {
            from: At(Ns::Neighbour),
            proto: "tcp",
            addr: "192.0.2.2:20099",
            expect: Some("192.0.2.3"),
        },
        Case {
            from: At(Ns::Neighbour),
            proto: "tcp",
            addr: "192.0.2.2:30009",
            expect: Some("192.0.2.3"),
        },
        Case {
            from: At(Ns::Host),
            proto: "tcp",
            addr: "127.0.0.1:7070",
            expect: Some(gateway),
        },
        Case {
            from: At(Ns::Host),
            proto: "udp",
            addr: "192.0.2.2:5353",
            expect: Some("192.0.2.2"),
        },
    ];
    check_cases(sb, "through the mappings", &cases);
}

/// conntrack entries of the sandbox host that mention `ip`.
fn flows_of(sb: &Sandbox, ip: &str) -> Vec<String> {
    let needle = format!("={ip} ");
    conntrack_lines(sb)
        .into_iter()
        .filter(|l| l.contains(&needle))
        .collect()
}

/// Sockets on the host ports of SPECS.
fn held_ports(sb: &Sandbox) -> Vec<String> {
    [8080, 5353, 7070, 20000, 20099, 30000, 9000]
        .into_iter()
        .flat_map(|p| host_sockets_on(sb, p))
        .collect()
}

fn assert_sctp_rendered(sb: &Sandbox, backend: Backend) {
    let (rules, needle) = match backend {
        Backend::Nftables => (
            sb.run_ok(Ns::Host, &["nft", "list", "table", "inet", "pont"]),
            "sctp . 9000",
        ),
        Backend::Iptables => (
            sb.run_ok(Ns::Host, &["iptables-save", "-t", "nat"]),
            "-p sctp -m sctp --dport 9000",
        ),
    };
    assert!(rules.contains(needle), "no SCTP mapping in:\n{rules}");
}

fn removal_leaves_nothing(backend: Backend) {
    let sb = lab(backend);
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.66.12.0/24"]);
    let ports = [80, 53, 20000, 20099, 40000, 40009];
    run_server(&sb, "srv", "web", &ports, &[]);
    let srv_ip = ip_of(&sb, "srv", "web");
    let before = host_state(&sb);
    assert!(flows_of(&sb, &srv_ip).is_empty());

    // Removing mappings.
    let mut add = vec!["port", "add", "srv"];
    add.extend_from_slice(&SPECS);
    sb.pont_ok(&add);
    assert_rules_in(&sb, backend);
    assert_sctp_rendered(&sb, backend);
    traffic(&sb, "10.66.12.1");
    assert!(
        !flows_of(&sb, &srv_ip).is_empty(),
        "the traffic made no flows"
    );
    assert_eq!(held_ports(&sb), Vec::<String>::new(), "pont holds sockets");
    let mut rm = vec!["port", "rm", "srv"];
    rm.extend_from_slice(&SPECS);
    sb.pont_ok(&rm);
    assert_same_host(&before, &host_state(&sb), "after port rm");
    assert_eq!(
        flows_of(&sb, &srv_ip),
        Vec::<String>::new(),
        "flows left after port rm"
    );
    assert_eq!(held_ports(&sb), Vec::<String>::new());
    // The port is free: a host process gets it, and is not shadowed.
    let host_server = sb.spawn_peer_reporter(Ns::Host, "0.0.0.0:8080");
    assert_eq!(
        seen(&sb, At(Ns::Neighbour), "tcp", "192.0.2.2:8080").as_deref(),
        Some("192.0.2.3")
    );
    assert_eq!(testkit::reported_peers(&host_server), ["192.0.2.3"]);
    drop(host_server);

    // Removing the container (stopped first, then removed).
    let mut run = vec!["-p"];
    run.push(SPECS[0]);
    for spec in &SPECS[1..] {
        run.extend_from_slice(&["-p", spec]);
    }
    run_server(&sb, "gone", "web", &ports, &run);
    let gone_ip = ip_of(&sb, "gone", "web");
    traffic(&sb, "10.66.12.1");
    assert!(
        !flows_of(&sb, &gone_ip).is_empty(),
        "the traffic made no flows"
    );
    sb.pont_ok(&["stop", "-t", "0", "gone"]);
    assert_eq!(
        flows_of(&sb, &gone_ip),
        Vec::<String>::new(),
        "flows left after stop"
    );
    sb.pont_ok(&["rm", "gone"]);
    wait_veths_gone(&sb);
    assert_same_host(&before, &host_state(&sb), "after stop and rm");
    assert_eq!(held_ports(&sb), Vec::<String>::new());

    // And by rm -f of a running container.
    run_server(&sb, "forced", "web", &ports, &run);
    let forced_ip = ip_of(&sb, "forced", "web");
    traffic(&sb, "10.66.12.1");
    sb.pont_ok(&["rm", "-f", "forced"]);
    wait_veths_gone(&sb);
    assert_same_host(&before, &host_state(&sb), "after rm -f");
    assert_eq!(
        flows_of(&sb, &forced_ip),
        Vec::<String>::new(),
        "flows left after rm -f"
    );
}

/// A TCP client that talks every 20 ms until the connection fails.
const TALKER: &str = r#"
import socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
f = c.makefile("rb")
f.readline()
print("up", flush=True)
try:
    while True:
        c.sendall(b"x\n")
        if f.readline() != b"x\n":
            break
        time.sleep(0.02)
except OSError:
    pass
print("ended", flush=True)
"#;

/// A connection through a mapping ends when the mapping is removed, and a
/// connection through another mapping of the same container does not.
fn removed_mapping_ends_its_connections(backend: Backend) {
    let sb = lab(backend);
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.66.13.0/24"]);
    run_server(
        &sb,
        "srv",
        "web",
        &[80, 81],
        &["-p", "8080:80", "-p", "8081:81"],
    );
    let talk = |port: &str| {
        let mut t = sb.spawn_in(
            Ns::Neighbour,
            &["python3", "-u", "-c", TALKER, "192.0.2.2", port],
        );
        assert!(
            t.wait_for_stdout("up\n", Duration::from_secs(10)),
            "{}",
            t.stderr()
        );
        t
    };
    let (mut doomed, mut kept) = (talk("8080"), talk("8081"));
    sb.pont_ok(&["port", "rm", "srv", "8080:80"]);
    assert!(
        doomed.wait_for_stdout("ended\n", Duration::from_secs(10)),
        "the connection outlived its mapping"
    );
    assert!(
        !kept.wait_for_stdout("ended\n", Duration::from_millis(500)),
        "the other connection ended"
    );
}

on_both_backends!(removal_leaves_nothing, removed_mapping_ends_its_connections);
