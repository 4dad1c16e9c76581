//! Issue 4: published ports, also added and removed on running containers.

mod common;

use std::time::Duration;

use common::*;

/// A container that answers each TCP connection with the address it came from.
fn run_reporter(sb: &Sandbox, name: &str, network: &str, extra: &[&str]) {
    let script = r#"
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 80))
s.listen(64)
while True:
    c, a = s.accept()
    c.sendall((a[0] + "\n").encode())
    c.close()
"#;
    let mut args = vec!["run", "-d", "--name", name, "--network", network];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "python3", "-c", script]);
    sb.pont_ok(&args);
}

/// What the server saw as the client's address, asked from `ns` at `addr`.
fn seen_from(sb: &Sandbox, ns: Ns, addr: &str) -> Option<String> {
    let mut answer = None;
    testkit::wait_until(Duration::from_secs(5), || {
        answer = sb
            .tcp_request(ns, addr, "", SECOND)
            .filter(|a| !a.is_empty());
        answer.is_some()
    });
    answer.map(|a| a.trim().to_string())
}

fn seen_from_container(sb: &Sandbox, container: &str, ip: &str, port: u16) -> Option<String> {
    let cmd = format!("exec 3<>/dev/tcp/{ip}/{port} && head -1 <&3");
    let mut answer = None;
    testkit::wait_until(Duration::from_secs(5), || {
        let out = sb.pont(&["exec", container, "--", "timeout", "2", "bash", "-c", &cmd]);
        answer = out
            .status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string());
        answer.is_some()
    });
    answer
}

#[test]
fn published_port_reaches_from_lan_host_and_containers() {
    let sb = sandbox();
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.66.1.0/24"]);
    sb.pont_ok(&["network", "create", "other", "--subnet", "10.66.2.0/24"]);
    run_reporter(&sb, "srv", "web", &["-p", "8080:80"]);
    sb.pont_ok(&[
        "run",
        "-d",
        "--name",
        "peer",
        "--network",
        "web",
        "--",
        "sleep",
        "100",
    ]);
    sb.pont_ok(&[
        "run",
        "-d",
        "--name",
        "far",
        "--network",
        "other",
        "--",
        "sleep",
        "100",
    ]);

    // LAN neighbour: the real client address is preserved.
    assert_eq!(
        seen_from(&sb, Ns::Neighbour, "192.0.2.2:8080").as_deref(),
        Some("192.0.2.3")
    );
    // The host itself, through its own address and through loopback.
    assert!(seen_from(&sb, Ns::Host, "192.0.2.2:8080").is_some());
    assert!(seen_from(&sb, Ns::Host, "127.0.0.1:8080").is_some());
    // A container of the same network through the gateway (hairpin: masqueraded).
    assert_eq!(
        seen_from_container(&sb, "peer", "10.66.1.1", 8080).as_deref(),
        Some("10.66.1.1")
    );
    // The server reaching its own published port.
    assert!(seen_from_container(&sb, "srv", "192.0.2.2", 8080).is_some());
    // A container of another network through the host's address: its own address is seen.
    assert_eq!(
        seen_from_container(&sb, "far", "192.0.2.2", 8080).as_deref(),
        Some("10.66.2.2")
    );

    // Not published: the container's own port is not reachable from the LAN.
    sb.run_ok(
        Ns::Neighbour,
        &["ip", "route", "add", "10.66.1.0/24", "via", "192.0.2.2"],
    );
    assert!(!sb.can_tcp_connect(Ns::Neighbour, "10.66.1.2:80", SECOND));
}

#[test]
fn ports_added_and_removed_on_a_running_container() {
    let sb = sandbox();
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.66.3.0/24"]);
    run_reporter(&sb, "srv", "web", &[]);
    assert!(!sb.can_tcp_connect(Ns::Neighbour, "192.0.2.2:9090", SECOND));
    let added = sb.pont_ok(&["port", "add", "srv", "9090:80"]);
    assert_eq!(added.trim(), "80/tcp -> 0.0.0.0:9090");
    assert_eq!(
        seen_from(&sb, Ns::Neighbour, "192.0.2.2:9090").as_deref(),
        Some("192.0.2.3")
    );
    assert_eq!(inspect(&sb, "srv")["ports"][0]["host_port"], "9090");
    let picked = sb.pont_ok(&["port", "add", "srv", "80"]);
    let port: u16 = picked.trim().rsplit(':').next().unwrap().parse().unwrap();
    assert!(port >= 32768, "picked {port} outside the ephemeral range");
    assert!(seen_from(&sb, Ns::Neighbour, &format!("192.0.2.2:{port}")).is_some());
    sb.pont_ok(&["port", "rm", "srv", "9090:80"]);
    assert!(!sb.can_tcp_connect(Ns::Neighbour, "192.0.2.2:9090", SECOND));
    let err = sb.pont_err(&["port", "rm", "srv", "9090:80"]);
    assert!(
        err.contains("no published port matching '9090:80/tcp'"),
        "{err}"
    );
}

#[test]
fn loopback_mapping_answers_only_on_the_host() {
    let sb = sandbox();
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.66.4.0/24"]);
    run_reporter(&sb, "srv", "web", &["-p", "127.0.0.1:7070:80"]);
    assert!(seen_from(&sb, Ns::Host, "127.0.0.1:7070").is_some());
    assert!(!sb.can_tcp_connect(Ns::Neighbour, "192.0.2.2:7070", SECOND));
    // A neighbour routing 127.0.0.0/8 via the host gets nothing either.
    sb.run_ok(
        Ns::Neighbour,
        &["sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1"],
    );
    sb.run_ok(
        Ns::Neighbour,
        &["ip", "route", "add", "127.0.0.2/32", "via", "192.0.2.2"],
    );
    assert!(!sb.can_tcp_connect(Ns::Neighbour, "127.0.0.2:7070", SECOND));
    let all = sb.run_ok(
        Ns::Host,
        &["cat", "/proc/sys/net/ipv4/conf/all/route_localnet"],
    );
    assert_eq!(
        all.trim(),
        "0",
        "route_localnet must never be switched on for all"
    );
}

#[test]
fn conflicting_ports_are_refused_and_leave_nothing() {
    let sb = sandbox();
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.66.5.0/24"]);
    run_reporter(&sb, "a", "web", &["-p", "8080:80"]);
    let before = sb.host_snapshot();
    let err = sb.pont_err(&[
        "run",
        "-d",
        "--name",
        "b",
        "--network",
        "web",
        "-p",
        "8080:80",
        "--",
        "sleep",
        "9",
    ]);
    assert!(
        err.contains("host port 0.0.0.0:8080/tcp is already published by container a"),
        "{err}"
    );
    let err = sb.pont_err(&[
        "run",
        "-d",
        "--name",
        "c",
        "--network",
        "web",
        "-p",
        "192.0.2.2:8080:80",
        "--",
        "sleep",
        "9",
    ]);
    assert!(err.contains("8080") && err.contains("container a"), "{err}");
    // tcp and udp on one number are independent.
    sb.pont_ok(&[
        "run",
        "-d",
        "--name",
        "d",
        "--network",
        "web",
        "-p",
        "8080:80/udp",
        "--",
        "sleep",
        "100",
    ]);
    // A host process listening on a port holds it.
    let _listener = sb.spawn_peer_reporter(Ns::Host, "0.0.0.0:6060");
    let err = sb.pont_err(&["port", "add", "a", "6060:80"]);
    assert!(
        err.contains("host port 0.0.0.0:6060/tcp is in use by a process listening on 0.0.0.0:6060"),
        "{err}"
    );
    let err = sb.pont_err(&["port", "add", "a", "203.0.113.99:6061:80"]);
    assert!(
        err.contains("203.0.113.99") && err.contains("not an address of this host"),
        "{err}"
    );
    sb.pont_ok(&["rm", "-f", "d"]);
    assert_eq!(sb.host_snapshot(), before);
}
