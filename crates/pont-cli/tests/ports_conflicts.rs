//! Issue 4, behaviour 5: a host port already published (same address and
//! protocol, or an overlapping wildcard or range) or held by a host process
//! is refused with a one-line error naming the port and its holder, and
//! nothing is left behind; two specific addresses and tcp/udp on one number
//! are independent; of two concurrent requests for one port exactly one
//! wins; `pont start` checks a stopped container's ports again.

mod common;
#[macro_use]
mod ports_support;

use std::time::Duration;

use ports_support::*;
use Src::Ns as At;

/// Panics unless `pont ARGS` fails with a one-line error holding every needle.
fn assert_refused(sb: &Sandbox, args: &[&str], needles: &[&str]) {
    let out = sb.pont(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "pont {args:?} succeeded");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line: {stderr}"
    );
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "pont {args:?}: {stderr:?} lacks {needle:?}"
        );
    }
}

/// A process in the sandbox host holding `addr` ("IP:PORT") for `proto`.
fn host_holder<'a>(sb: &'a Sandbox, proto: &str, addr: &str) -> testkit::Spawned<'a> {
    let (ip, port) = addr.rsplit_once(':').unwrap();
    let ip = ip.trim_matches(['[', ']']);
    let script = "import socket, sys, time\n\
        ip, port, udp = sys.argv[1], int(sys.argv[2]), sys.argv[3] == 'udp'\n\
        fam = socket.AF_INET6 if ':' in ip else socket.AF_INET\n\
        s = socket.socket(fam, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)\n\
        s.bind((ip, port))\n\
        udp or s.listen()\n\
        print('listening', flush=True)\n\
        time.sleep(1000)\n";
    let argv = ["python3", "-c", script, ip, port, proto];
    let mut holder = sb.spawn_in(Ns::Host, &argv);
    let up = holder.wait_for_stdout("listening", Duration::from_secs(10));
    assert!(up, "holder of {addr}/{proto}: {}", holder.stderr());
    holder
}

fn run_args<'a>(name: &'a str, publish: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run", "-d", "--name", name, "--network", "web"];
    for p in publish {
        args.extend_from_slice(&["-p", p]);
    }
    args.extend_from_slice(&["--", "sleep", "1000"]);
    args
}

fn conflicts(backend: Backend) {
    let sb = lab(backend);
    sb.run_ok(
        Ns::Host,
        &["ip", "addr", "add", "192.0.2.20/24", "dev", "uplink0"],
    );
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.66.5.0/24"]);
    let publish = [
        "-p",
        "8080:80",
        "-p",
        "192.0.2.2:9090:80",
        "-p",
        "7000-7010:7000-7010",
    ];
    run_server(&sb, "a", "web", &[80], &publish);
    assert_rules_in(&sb, backend);
    let _tcp = host_holder(&sb, "tcp", "0.0.0.0:6060");
    let _udp = host_holder(&sb, "udp", "192.0.2.2:6061");
    let _lo = host_holder(&sb, "tcp", "127.0.0.1:6062");
    let _v6 = host_holder(&sb, "tcp", "[::]:6063");
    let before = host_state(&sb);
    let ids_before = sb.pont_ok(&["ps", "-a", "-q"]);
    let ports_before = sb.pont_ok(&["port", "a"]);

    // SELF stands for the container asking (b for run, a for port add).
    let by_a = "already published by container a";
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["8080:80"],
            &["0.0.0.0:8080/tcp", by_a, "(0.0.0.0:8080->80/tcp)"],
        ),
        // A specific address under a's wildcard, and a wildcard over a's specific one.
        (&["192.0.2.2:8080:80"], &["192.0.2.2:8080/tcp", by_a]),
        (
            &["9090:80"],
            &["0.0.0.0:9090/tcp", by_a, "(192.0.2.2:9090->80/tcp)"],
        ),
        // Ranges overlapping a's range, inside and at its edge.
        (
            &["7005:80"],
            &["0.0.0.0:7005/tcp", by_a, "7000-7010->7000-7010/tcp"],
        ),
        (&["6990-7000:6990-7000"], &["0.0.0.0:6990-7000/tcp", by_a]),
        // Host processes: any address meeting the mapping's.
        (
            &["6060:80"],
            &["0.0.0.0:6060/tcp", "process listening on 0.0.0.0:6060/tcp"],
        ),
        (
            &["6061:80/udp"],
            &[
                "0.0.0.0:6061/udp",
                "process listening on 192.0.2.2:6061/udp",
            ],
        ),
        (
            &["6062:80"],
            &[
                "0.0.0.0:6062/tcp",
                "process listening on 127.0.0.1:6062/tcp",
            ],
        ),
        (
            &["6063:80"],
            &["0.0.0.0:6063/tcp", "process listening on [::]:6063/tcp"],
        ),
        // Within one request, and when only the second of two specs conflicts.
        (
            &["6080:80", "6080:81"],
            &["0.0.0.0:6080/tcp", "already published by container SELF"],
        ),
        (&["6081:80", "8080:80"], &["0.0.0.0:8080/tcp", by_a]),
    ];
    for (specs, needles) in cases {
        for (me, args) in [
            ("b", run_args("b", specs)),
            ("a", [&["port", "add", "a"], *specs].concat()),
        ] {
            let needles: Vec<String> = needles.iter().map(|n| n.replace("SELF", me)).collect();
            let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
            assert_refused(&sb, &args, &needles);
        }
    }
    assert_same_host(&before, &host_state(&sb), "after the refusals");
    assert_eq!(sb.pont_ok(&["ps", "-a", "-q"]), ids_before);
    assert_eq!(sb.pont_ok(&["port", "a"]), ports_before);

    // Allowed: the same port on another specific address, the other
    // protocol, and specific addresses next to a host process's.
    run_server(
        &sb,
        "b",
        "web",
        &[80],
        &["-p", "192.0.2.20:9090:80", "-p", "8080:80/udp"],
    );
    sb.pont_ok(&[
        "port",
        "add",
        "b",
        "192.0.2.20:6061:80/udp",
        "6061:80",
        "192.0.2.2:6062:80",
    ]);
    let cases = [
        Case {
            from: At(Ns::Neighbour),
            proto: "tcp",
            addr: "192.0.2.2:9090",
            expect: Some("192.0.2.3"),
        },
        Case {
            from: At(Ns::Neighbour),
            proto: "tcp",
            addr: "192.0.2.20:9090",
            expect: Some("192.0.2.3"),
        },
        Case {
            from: At(Ns::Neighbour),
            proto: "tcp",
            addr: "192.0.2.2:8080",
            expect: Some("192.0.2.3"),
        },
        Case {
            from: At(Ns::Neighbour),
            proto: "udp",
            addr: "192.0.2.2:8080",
            expect: Some("192.0.2.3"),
        },
        Case {
            from: At(Ns::Neighbour),
            proto: "udp",
            addr: "192.0.2.20:6061",
            expect: Some("192.0.2.3"),
        },
        Case {
            from: At(Ns::Neighbour),
            proto: "tcp",
            addr: "192.0.2.2:6061",
            expect: Some("192.0.2.3"),
        },
        Case {
            from: At(Ns::Neighbour),
            proto: "tcp",
            addr: "192.0.2.2:6062",
            expect: Some("192.0.2.3"),
        },
    ];
    check_cases(&sb, "independent mappings", &cases);
    let count = |name: &str, proto: &str| {
        let log = server_log(&sb, name);
        log.iter().filter(|l| l.starts_with(proto)).count()
    };
    // a answered 9090 on .2 and tcp 8080; b all the rest.
    let logs = format!(
        "a: {:?}\nb: {:?}",
        server_log(&sb, "a"),
        server_log(&sb, "b")
    );
    assert_eq!((count("a", "tcp"), count("a", "udp")), (2, 0), "{logs}");
    assert_eq!((count("b", "tcp"), count("b", "udp")), (3, 2), "{logs}");
}

/// How many DNAT entries pont's backend holds for host port `port`.
fn dnat_entries(sb: &Sandbox, backend: Backend, port: u16) -> usize {
    match backend {
        Backend::Nftables => {
            // The test's mappings are on every host address.
            let map = sb.run_ok(
                Ns::Host,
                &["nft", "list", "map", "inet", "pont", "dnat_any_ports"],
            );
            map.matches(&format!(" tcp . {port} ")).count()
        }
        Backend::Iptables => {
            let nat = sb.run_ok(Ns::Host, &["iptables-save", "-t", "nat"]);
            nat.matches(&format!("--dport {port} ")).count()
        }
    }
}

/// Two `pont port add` (and two `pont run -p`) for one host port at once.
fn concurrent_requests(backend: Backend) {
    let sb = lab(backend);
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.66.6.0/24"]);
    run_idle(&sb, "a", "web");
    run_idle(&sb, "b", "web");
    for port in [8001u16, 8002, 8003] {
        let spec = format!("{port}:80");
        let (ra, rb) = std::thread::scope(|s| {
            let a = s.spawn(|| sb.pont(&["port", "add", "a", &spec]));
            let b = s.spawn(|| sb.pont(&["port", "add", "b", &spec]));
            (a.join().unwrap(), b.join().unwrap())
        });
        let (winner, loser) = match (ra.status.success(), rb.status.success()) {
            (true, false) => ("a", rb),
            (false, true) => ("b", ra),
            both => panic!("port {port}: expected exactly one winner, got {both:?}"),
        };
        let err = String::from_utf8_lossy(&loser.stderr);
        assert!(
            err.contains(&format!(
                "0.0.0.0:{port}/tcp is already published by container {winner}"
            )),
            "{err}"
        );
        assert_eq!(dnat_entries(&sb, backend, port), 1);
    }
    let spec = "8010:80";
    let runs: Vec<_> = std::thread::scope(|s| {
        let runs: Vec<_> = ["r1", "r2"]
            .map(|name| {
                let sb = &sb;
                s.spawn(move || sb.pont(&run_args(name, &[spec])))
            })
            .into_iter()
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let won: Vec<bool> = runs.iter().map(|r| r.status.success()).collect();
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    let loser = &runs[won.iter().position(|w| !w).unwrap()];
    let err = String::from_utf8_lossy(&loser.stderr);
    assert!(
        err.contains("0.0.0.0:8010/tcp is already published by container r"),
        "{err}"
    );
    assert_eq!(dnat_entries(&sb, backend, 8010), 1);
    let listing = json(&sb.pont_ok(&["ps", "-a", "--format", "json"]));
    let names: Vec<&str> = listing
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names.len(), 3, "the loser left a record: {names:?}");
}

/// `pont start` validates a stopped container's ports as `run` does.
fn start_checks_ports_again(backend: Backend) {
    let sb = lab(backend);
    sb.run_ok(
        Ns::Host,
        &["ip", "addr", "add", "192.0.2.20/24", "dev", "uplink0"],
    );
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.66.7.0/24"]);
    run_server(
        &sb,
        "a",
        "web",
        &[80],
        &["-p", "8090:80", "-p", "192.0.2.20:8091:80"],
    );
    sb.pont_ok(&["stop", "-t", "0", "a"]);
    // A stopped container holds no port.
    run_idle(&sb, "b", "web");
    sb.pont_ok(&["port", "add", "b", "8090:80"]);
    let refused_start = |needles: &[&str]| {
        let before = host_state(&sb);
        assert_refused(&sb, &["start", "a"], needles);
        assert_same_host(&before, &host_state(&sb), "after a refused start");
        assert_eq!(inspect(&sb, "a")["state"], "exited");
    };
    refused_start(&["0.0.0.0:8090/tcp", "already published by container b"]);
    sb.pont_ok(&["rm", "-f", "b"]);
    let _holder = host_holder(&sb, "tcp", "0.0.0.0:8090");
    refused_start(&["0.0.0.0:8090/tcp", "process listening on 0.0.0.0:8090/tcp"]);
    drop(_holder);
    sb.run_ok(
        Ns::Host,
        &["ip", "addr", "del", "192.0.2.20/24", "dev", "uplink0"],
    );
    refused_start(&["192.0.2.20", "not an address of this host"]);
    sb.run_ok(
        Ns::Host,
        &["ip", "addr", "add", "192.0.2.20/24", "dev", "uplink0"],
    );
    sb.pont_ok(&["start", "a"]);
    // The log is appended to: wait for the second run's "ready".
    let restarted = testkit::wait_until(Duration::from_secs(10), || {
        sb.pont_ok(&["logs", "a"]).matches("ready\n").count() == 2
    });
    assert!(restarted, "{}", sb.pont_ok(&["logs", "a"]));
    assert_eq!(
        seen(&sb, At(Ns::Neighbour), "tcp", "192.0.2.2:8090").as_deref(),
        Some("192.0.2.3")
    );
    assert_eq!(
        seen(&sb, At(Ns::Neighbour), "tcp", "192.0.2.20:8091").as_deref(),
        Some("192.0.2.3")
    );
}

/// Without a host port, pont picks the lowest free run of the host's
/// ephemeral range (here shrunk to 40000-40010), skipping published ports
/// and host sockets of the same protocol, and says so when none is left.
fn picked_ports_avoid_what_is_taken(backend: Backend) {
    let sb = lab(backend);
    sb.run_ok(
        Ns::Host,
        &["sysctl", "-qw", "net.ipv4.ip_local_port_range=40000 40010"],
    );
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.66.16.0/24"]);
    run_server(&sb, "a", "web", &[80, 81], &[]);
    let _holder = host_holder(&sb, "tcp", "0.0.0.0:40000");
    assert_eq!(
        sb.pont_ok(&["port", "add", "a", "80"]),
        "80/tcp -> 0.0.0.0:40001\n"
    );
    assert_eq!(
        sb.pont_ok(&["port", "add", "a", "80-81"]),
        "80-81/tcp -> 0.0.0.0:40002-40003\n"
    );
    sb.pont_ok(&["port", "add", "a", "40004:81"]);
    // udp is independent of the tcp listener and mappings.
    assert_eq!(
        sb.pont_ok(&["port", "add", "a", "80/udp"]),
        "80/udp -> 0.0.0.0:40000\n"
    );
    assert_eq!(
        sb.pont_ok(&["port", "add", "a", "81"]),
        "81/tcp -> 0.0.0.0:40005\n"
    );
    // A run -p picks too, and reports the port in inspect.
    run_server(&sb, "b", "web", &[80], &["-p", "127.0.0.1::80"]);
    assert_eq!(inspect(&sb, "b")["ports"][0]["host_port"], "40006");
    let before = host_state(&sb);
    assert_refused(
        &sb,
        &["port", "add", "a", "80-84"],
        &[
            "no free host port range of 5 port(s) left in 40000-40010",
            "'80-84/tcp'",
        ],
    );
    assert_same_host(&before, &host_state(&sb), "after a failed pick");
    let cases = [
        Case {
            from: At(Ns::Neighbour),
            proto: "tcp",
            addr: "192.0.2.2:40001",
            expect: Some("192.0.2.3"),
        },
        Case {
            from: At(Ns::Neighbour),
            proto: "tcp",
            addr: "192.0.2.2:40003",
            expect: Some("192.0.2.3"),
        },
        Case {
            from: At(Ns::Neighbour),
            proto: "udp",
            addr: "192.0.2.2:40000",
            expect: Some("192.0.2.3"),
        },
        Case {
            from: At(Ns::Host),
            proto: "tcp",
            addr: "127.0.0.1:40006",
            expect: Some("10.66.16.1"),
        },
    ];
    check_cases(&sb, "picked ports", &cases);
}

on_both_backends!(
    conflicts,
    concurrent_requests,
    start_checks_ports_again,
    picked_ports_avoid_what_is_taken
);
