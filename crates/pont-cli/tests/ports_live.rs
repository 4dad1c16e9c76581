//! Issue 4, behaviour 6: `port add` and `port rm` on a running container take
//! effect at once and leave its other connections alone; when a UDP mapping
//! goes, a client that keeps sending reaches the new container within a
//! second.

mod common;
#[macro_use]
mod ports_support;

use std::time::{Duration, Instant};

use ports_support::*;
use Src::Ns as At;

/// A long-lived TCP client: connects, reads the greeting, then every 20 ms
/// sends a numbered line and checks the echo. Prints "up" once connected
/// and each number echoed; prints "broken: WHY" and exits 1 on any failure.
const TCP_TALKER: &str = r#"
import socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
f = c.makefile("rb")
f.readline()
print("up", flush=True)
n = 0
while True:
    n += 1
    try:
        c.sendall(b"%d\n" % n)
        if f.readline() != b"%d\n" % n:
            raise OSError("wrong or no echo")
    except OSError as e:
        print("broken:", e, flush=True)
        sys.exit(1)
    print(n, flush=True)
    time.sleep(0.02)
"#;

/// A UDP client on one socket (one flow): every 20 ms a datagram; prints
/// each answer's count, and never stops sending, answered or not.
const UDP_TALKER: &str = r#"
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.02)
n = 0
while True:
    s.sendto(b"x", (sys.argv[1], int(sys.argv[2])))
    try:
        s.recv(100)
        n += 1
        print(n, flush=True)
    except OSError:
        time.sleep(0.02)
"#;

/// The last number a talker printed (0 before any).
fn progress(talker: &testkit::Spawned<'_>) -> u64 {
    let out = talker.stdout();
    out.lines().rev().find_map(|l| l.parse().ok()).unwrap_or(0)
}

/// Waits until the talker is `more` exchanges further than now.
fn assert_advances(talker: &mut testkit::Spawned<'_>, more: u64, what: &str) {
    let from = progress(talker);
    let moved = testkit::wait_until(Duration::from_secs(10), || progress(talker) >= from + more);
    assert!(
        moved && talker.try_wait().is_none(),
        "{what}: stuck at {} (from {from}): {}{}",
        progress(talker),
        talker.stdout().lines().last().unwrap_or(""),
        talker.stderr()
    );
}

fn add_rm_keeps_other_connections(backend: Backend) {
    let sb = lab(backend);
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.66.10.0/24"]);
    let publish = ["-p", "8081:81", "-p", "8082:82/udp"];
    run_server(&sb, "srv", "web", &[80, 81, 82], &publish);
    assert_rules_in(&sb, backend);
    // Long-lived flows through the other mappings: from the LAN, from the
    // host through loopback, and one UDP flow.
    let mut lan = sb.spawn_in(
        Ns::Neighbour,
        &["python3", "-u", "-c", TCP_TALKER, "192.0.2.2", "8081"],
    );
    let mut host = sb.spawn_in(
        Ns::Host,
        &["python3", "-u", "-c", TCP_TALKER, "127.0.0.1", "8081"],
    );
    let mut udp = sb.spawn_in(
        Ns::Neighbour,
        &["python3", "-u", "-c", UDP_TALKER, "192.0.2.2", "8082"],
    );
    for (talker, what) in [(&mut lan, "lan"), (&mut host, "host"), (&mut udp, "udp")] {
        assert_advances(talker, 3, what);
    }

    let start = Instant::now();
    let added = sb.pont_ok(&["port", "add", "srv", "9090:80", "9091:80", "9090:80/udp"]);
    let add_time = start.elapsed();
    assert_eq!(
        added,
        "80/tcp -> 0.0.0.0:9090\n80/tcp -> 0.0.0.0:9091\n80/udp -> 0.0.0.0:9090\n"
    );
    let ps = sb.pont_ok(&["ps"]);
    assert!(ps.contains("0.0.0.0:8081->81/tcp"), "{ps}");
    assert!(ps.contains("0.0.0.0:9090->80/udp"), "{ps}");
    // At once: the first probe after the command returns gets through.
    let now_open = [
        Case {
            from: At(Ns::Neighbour),
            proto: "tcp",
            addr: "192.0.2.2:9090",
            expect: Some("192.0.2.3"),
        },
        Case {
            from: At(Ns::Neighbour),
            proto: "tcp",
            addr: "192.0.2.2:9091",
            expect: Some("192.0.2.3"),
        },
        Case {
            from: At(Ns::Neighbour),
            proto: "udp",
            addr: "192.0.2.2:9090",
            expect: Some("192.0.2.3"),
        },
    ];
    check_cases(&sb, "after port add", &now_open);
    for (talker, what) in [(&mut lan, "lan"), (&mut host, "host"), (&mut udp, "udp")] {
        assert_advances(talker, 3, &format!("{what} after port add"));
    }

    // One spec removes every mapping it matches: 80/tcp is both 9090 and 9091.
    let start = Instant::now();
    let removed = sb.pont_ok(&["port", "rm", "srv", "80", "9090:80/udp"]);
    let rm_time = start.elapsed();
    assert_eq!(
        removed,
        "80/tcp -> 0.0.0.0:9090\n80/tcp -> 0.0.0.0:9091\n80/udp -> 0.0.0.0:9090\n"
    );
    let now_closed = [
        Case {
            from: At(Ns::Neighbour),
            proto: "tcp",
            addr: "192.0.2.2:9090",
            expect: None,
        },
        Case {
            from: At(Ns::Neighbour),
            proto: "tcp",
            addr: "192.0.2.2:9091",
            expect: None,
        },
        Case {
            from: At(Ns::Neighbour),
            proto: "udp",
            addr: "192.0.2.2:9090",
            expect: None,
        },
    ];
    check_cases(&sb, "after port rm", &now_closed);
    for (talker, what) in [(&mut lan, "lan"), (&mut host, "host"), (&mut udp, "udp")] {
        assert_advances(talker, 3, &format!("{what} after port rm"));
    }
    assert_eq!(
        sb.pont_ok(&["port", "srv"]),
        "81/tcp -> 0.0.0.0:8081\n82/udp -> 0.0.0.0:8082\n"
    );
    eprintln!(
        "{}: port add (3 mappings) {:?}, port rm {:?}",
        backend.name(),
        add_time,
        rm_time
    );
}

/// Waits until `name` logged a UDP datagram from the neighbour, after
/// `seen_before` such lines; returns how long that took.
fn first_new_datagram(sb: &Sandbox, name: &str, seen_before: usize) -> Option<Duration> {
    let start = Instant::now();
    let count = || {
        let log = server_log(sb, name);
        log.iter()
            .filter(|l| l.starts_with("udp 53 192.0.2.3 "))
            .count()
    };
    testkit::wait_until(Duration::from_secs(5), || count() > seen_before).then(|| start.elapsed())
}

fn udp_client_follows_the_port(backend: Backend) {
    let sb = lab(backend);
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.66.11.0/24"]);
    run_server(&sb, "a", "web", &[53], &["-p", "5353:53/udp"]);
    let _client = sb.spawn_in(
        Ns::Neighbour,
        &["python3", "-u", "-c", UDP_TALKER, "192.0.2.2", "5353"],
    );
    assert!(
        first_new_datagram(&sb, "a", 0).is_some(),
        "a never got the client"
    );

    // Removed: a (still running) gets nothing more; the client keeps sending
    // to a port nothing publishes.
    sb.pont_ok(&["port", "rm", "a", "5353:53/udp"]);
    let a_total = server_log(&sb, "a").len();
    std::thread::sleep(Duration::from_millis(300));
    let late = server_log(&sb, "a").len() - a_total;
    assert!(late <= 1, "a still got {late} datagrams after port rm");

    // Published on a new container: the client reaches it within a second.
    run_server(&sb, "b", "web", &[53], &[]);
    sb.pont_ok(&["port", "add", "b", "5353:53/udp"]);
    let took = first_new_datagram(&sb, "b", 0).expect("the client never reached b");
    assert!(took < Duration::from_secs(1), "b reached after {took:?}");

    // The container replaced: b goes, c is run with the port.
    sb.pont_ok(&["rm", "-f", "b"]);
    run_server(&sb, "c", "web", &[53], &["-p", "5353:53/udp"]);
    let took_run = first_new_datagram(&sb, "c", 0).expect("the client never reached c");
    assert!(
        took_run < Duration::from_secs(1),
        "c reached after {took_run:?}"
    );
    eprintln!(
        "{}: UDP client reached the new container {took:?} after port add, {took_run:?} after run -p was ready",
        backend.name()
    );
}

/// A container replaced by one that gets its address is reached at once,
/// though the host has just been talking to the old one. (Another container
/// keeps the bridge up: a bridge losing its last port flushes its neighbour
/// entries, which would hide the stale one.)
fn replaced_container_is_reached_at_once(backend: Backend) {
    let sb = lab(backend);
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.66.14.0/24"]);
    // The bridge's neighbour entries stay REACHABLE for 10 minutes, so a
    // stale one surely outlives the replacement.
    let bridge = bridge_of(&sb, "web");
    let reachable = format!("net.ipv4.neigh.{bridge}.base_reachable_time_ms=600000");
    sb.run_ok(Ns::Host, &["sysctl", "-qw", &reachable]);
    run_idle(&sb, "keeper", "web");
    run_server(&sb, "old", "web", &[80], &["-p", "8080:80"]);
    let ip = ip_of(&sb, "old", "web");
    assert_eq!(
        seen(&sb, At(Ns::Neighbour), "tcp", "192.0.2.2:8080").as_deref(),
        Some("192.0.2.3")
    );
    assert_eq!(
        seen(&sb, At(Ns::Host), "tcp", "127.0.0.1:8080").as_deref(),
        Some("10.66.14.1")
    );
    let neigh = sb.run_ok(Ns::Host, &["ip", "neigh", "show", &ip]);
    assert!(
        neigh.contains("REACHABLE"),
        "the host has no fresh entry for {ip}: {neigh}"
    );
    let mac_of_container = |name| inspect(&sb, name)["networks"]["web"]["mac"].clone();
    let old_mac = mac_of_container("old");
    sb.pont_ok(&["rm", "-f", "old"]);
    run_server(&sb, "new", "web", &[80], &["-p", "8080:80"]);
    assert_eq!(
        ip_of(&sb, "new", "web"),
        ip,
        "the new container got another address"
    );
    // The address's MAC stays: the host's entry for it is still right.
    assert_eq!(mac_of_container("new"), old_mac);
    assert_eq!(
        seen(&sb, At(Ns::Neighbour), "tcp", "192.0.2.2:8080").as_deref(),
        Some("192.0.2.3")
    );
    assert_eq!(
        seen(&sb, At(Ns::Host), "tcp", &format!("{ip}:80")).as_deref(),
        Some("10.66.14.1")
    );
}

on_both_backends!(
    add_rm_keeps_other_connections,
    udp_client_follows_the_port,
    replaced_container_is_reached_at_once
);
