//! Issue 7, hostile containers: a container is root in its own namespaces and
//! may set any address, MAC or ARP it likes. It must still not receive what
//! is meant for another container, nor send with another container's source
//! address out of the host. Both firewall backends.

mod common;
mod support;

use std::time::{Duration, Instant};

use common::*;

const A: &str = "10.91.1.10";
const B: &str = "10.91.1.20";

/// A TCP server on port 80 that answers every connection with `word`.
fn answering(word: &str) -> String {
    format!(
        r#"
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 80))
s.listen(64)
while True:
    c, _ = s.accept()
    c.sendall(b"{word}\n")
    c.close()
"#
    )
}

/// Gratuitous ARP replies and requests, "IP is at my MAC", for SECS seconds.
const ARP_FLOOD: &str = r#"
import socket, struct, sys, time
ifname, ip, secs = sys.argv[1], socket.inet_aton(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifname, 0))
mac, bcast = s.getsockname()[4], b"\xff" * 6
def arp(op):
    return bcast + mac + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + mac + ip + bcast + ip
end = time.time() + secs
while time.time() < end:
    s.send(arp(2)); s.send(arp(1)); time.sleep(0.02)
"#;

/// Sends `word` over UDP from `src` to the WAN host's port 9999.
const UDP_FROM: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0))
for _ in range(5):
    s.sendto(sys.argv[2].encode(), ("203.0.113.10", 9999))
"#;

const UDP_LOG: &str = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("203.0.113.10", 9999))
print("listening", flush=True)
while True:
    data, peer = s.recvfrom(2048)
    print(data.decode(errors="replace"), peer[0], flush=True)
"#;

/// `pont ARGS` in the background; killed (by its pid) and reaped when dropped.
struct Background(std::process::Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pont_background(sb: &Sandbox, args: &[&str]) -> Background {
    let mut cmd = sb.pont_command(args);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    Background(cmd.spawn().expect("pont starts"))
}

fn run(sb: &Sandbox, backend: &str, args: &[&str]) {
    let mut full = vec!["--firewall", backend];
    full.extend_from_slice(args);
    sb.pont_ok(&full);
}

/// What a connection from container `from` to A's address gets, over `secs`:
/// every answer (or "refused"/"timeout" when none came).
fn answers_from_container(sb: &Sandbox, from: &str, secs: u64) -> Vec<String> {
    let cmd = format!("exec 3<>/dev/tcp/{A}/80 && head -1 <&3");
    let end = Instant::now() + Duration::from_secs(secs);
    let mut seen = Vec::new();
    while Instant::now() < end {
        let out = sb.pont(&["exec", from, "--", "timeout", "3", "bash", "-c", &cmd]);
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        seen.push(if text.is_empty() { "none".into() } else { text });
    }
    seen
}

fn answers_from_host(sb: &Sandbox, secs: u64) -> Vec<String> {
    let end = Instant::now() + Duration::from_secs(secs);
    let mut seen = Vec::new();
    while Instant::now() < end {
        let answer = sb.tcp_request(Ns::Host, &format!("{A}:80"), "", SECOND * 3);
        seen.push(answer.map_or("none".into(), |a| a.trim().to_string()));
    }
    seen
}

/// Nothing meant for A reached B, and A kept answering (a slow answer under
/// the load of parallel tests is not a failure; an answer from B is).
fn assert_all_a(sb: &Sandbox, seen: &[String], what: &str) {
    let from_a = seen.iter().filter(|s| *s == "A").count();
    let foreign = seen.iter().any(|s| s != "A" && s != "none");
    if foreign || from_a * 2 <= seen.len() {
        let neigh = sb.run_ok(Ns::Host, &["ip", "neigh", "show"]);
        let rules = sb.run_ok(Ns::Host, &["nft", "list", "ruleset"]);
        let rules: String = rules
            .lines()
            .filter(|l| !l.contains("table inet pont"))
            .collect::<Vec<_>>()
            .join("\n");
        panic!("{what}: traffic for A reached someone else or A was cut off: {seen:?}\n{neigh}\n{rules}");
    }
}

fn spoofing_container_gets_nothing_of_anothers(backend: &str) {
    let sb = sandbox();
    run(
        &sb,
        backend,
        &["network", "create", "web", "--subnet", "10.91.1.0/24"],
    );
    let a_server = answering("A");
    let b_server = answering("B");
    run(
        &sb,
        backend,
        &[
            "run",
            "-d",
            "--name",
            "a",
            "--network",
            "web",
            "--ip",
            A,
            "--",
            "python3",
            "-c",
            &a_server,
        ],
    );
    run(
        &sb,
        backend,
        &[
            "run",
            "-d",
            "--name",
            "b",
            "--network",
            "web",
            "--ip",
            B,
            "--",
            "sleep",
            "1000",
        ],
    );
    run(
        &sb,
        backend,
        &[
            "run",
            "-d",
            "--name",
            "c",
            "--network",
            "web",
            "--",
            "sleep",
            "1000",
        ],
    );
    assert!(sb.wait_tcp_connect(Ns::Host, &format!("{A}:80"), Duration::from_secs(10)));
    assert_all_a(
        &sb,
        &answers_from_container(&sb, "c", 1),
        "before the attack",
    );

    // B claims A's address: as its own, in ARP answers, and in a flood of
    // gratuitous ARP; it listens where A does.
    sb.pont_ok(&[
        "exec",
        "b",
        "--",
        "ip",
        "addr",
        "add",
        &format!("{A}/24"),
        "dev",
        "eth0",
    ]);
    let _b_srv = pont_background(&sb, &["exec", "b", "--", "python3", "-c", &b_server]);
    let _flood = pont_background(
        &sb,
        &[
            "exec", "b", "--", "python3", "-c", ARP_FLOOD, "eth0", A, "6",
        ],
    );
    assert_all_a(
        &sb,
        &answers_from_container(&sb, "c", 3),
        "a neighbour, B claiming A's address",
    );
    assert_all_a(
        &sb,
        &answers_from_host(&sb, 2),
        "the host, B claiming A's address",
    );

    // Out of the host: B's packets with A's source address go nowhere; its
    // own still do (the path works, so the silence means something).
    let mut wan = sb.spawn_in(Ns::Wan, &["python3", "-u", "-c", UDP_LOG]);
    assert!(wan.wait_for_stdout("listening", Duration::from_secs(10)));
    sb.pont_ok(&["exec", "b", "--", "python3", "-c", UDP_FROM, A, "spoofed"]);
    sb.pont_ok(&["exec", "b", "--", "python3", "-c", UDP_FROM, B, "legit"]);
    assert!(
        wan.wait_for_stdout("legit", Duration::from_secs(5)),
        "{}",
        wan.stdout()
    );
    assert!(
        !wan.stdout().contains("spoofed"),
        "spoofed packets left the host: {}",
        wan.stdout()
    );

    // B takes A's MAC address too, so the bridge would learn it on B's port.
    let a_mac = inspect(&sb, "a")["networks"]["web"]["mac"]
        .as_str()
        .unwrap()
        .to_string();
    sb.pont_ok(&[
        "exec", "b", "--", "ip", "link", "set", "eth0", "address", &a_mac,
    ]);
    let _flood2 = pont_background(
        &sb,
        &[
            "exec", "b", "--", "python3", "-c", ARP_FLOOD, "eth0", A, "4",
        ],
    );
    let _ = sb.pont(&[
        "exec",
        "b",
        "--",
        "ping",
        "-c3",
        "-i0.2",
        "-W1",
        "10.91.1.1",
    ]);
    assert_all_a(
        &sb,
        &answers_from_container(&sb, "c", 2),
        "a neighbour, B with A's MAC",
    );
    assert_all_a(&sb, &answers_from_host(&sb, 1), "the host, B with A's MAC");
    drop((_b_srv, _flood, _flood2));
    support::assert_consistent(&sb, "after the attack");
}

#[test]
fn a_spoofing_container_cannot_take_anothers_traffic_nftables() {
    spoofing_container_gets_nothing_of_anothers("nftables");
}

#[test]
fn a_spoofing_container_cannot_take_anothers_traffic_iptables() {
    spoofing_container_gets_nothing_of_anothers("iptables");
}
