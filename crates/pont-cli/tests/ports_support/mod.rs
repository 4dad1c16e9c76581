//! Helpers for the published-port tests (issue 4): the firewall backend a
//! test runs on, a server container that reports the peer address of every
//! TCP connection and UDP datagram, clients that ask it from any namespace or
//! container, and counters of rules, conntrack entries and processes.
#![allow(dead_code)]

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

pub use crate::common::*;

/// The firewall backend under test; every scenario runs on both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Nftables,
    Iptables,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Nftables => "nftables",
            Backend::Iptables => "iptables",
        }
    }
}

/// `on_both_backends!(scenario, ...)` makes, for each `fn scenario(Backend)`,
/// the tests `scenario::nftables` and `scenario::iptables`.
macro_rules! on_both_backends {
    ($($scenario:ident),+ $(,)?) => {$(
        mod $scenario {
            #[test]
            fn nftables() {
                super::$scenario(crate::ports_support::Backend::Nftables)
            }
            #[test]
            fn iptables() {
                super::$scenario(crate::ports_support::Backend::Iptables)
            }
        }
    )+};
}

/// A full sandbox whose pont uses `backend` (pont remembers it in the state root).
pub fn lab(backend: Backend) -> Sandbox {
    let sb = sandbox();
    sb.pont_ok(&["--firewall", backend.name(), "ps"]);
    sb
}

/// A host-only sandbox whose pont uses `backend`.
pub fn host_lab(backend: Backend) -> Sandbox {
    let sb = host_only();
    sb.pont_ok(&["--firewall", backend.name(), "ps"]);
    sb
}

/// Panics unless pont's rules are in `backend` and only there: a test meant
/// for iptables must not quietly run on nftables.
pub fn assert_rules_in(sb: &Sandbox, backend: Backend) {
    let nft = sb.run_in(Ns::Host, &["nft", "list", "table", "inet", "pont"]);
    let ipt = sb.run_ok(Ns::Host, &["iptables-save"]);
    let (in_nft, in_ipt) = (nft.status.success(), ipt.contains(":PONT-DNAT"));
    assert_eq!(
        (in_nft, in_ipt),
        (backend == Backend::Nftables, backend == Backend::Iptables),
        "pont's rules are not (only) in {}",
        backend.name()
    );
}

/// A container server: on each port, a TCP listener that sends the client's
/// address ("IP\n") and then echoes every line it gets, and a UDP socket that
/// answers every datagram with the sender's address. Every connection and
/// datagram is logged as "tcp|udp PORT IP SPORT" (for `pont logs`).
const SERVER: &str = r#"
import select, socket, sys, threading
lock = threading.Lock()
def log(*words):
    with lock:
        sys.stdout.write(" ".join(map(str, words)) + "\n")
        sys.stdout.flush()
def serve(conn, peer, port):
    log("tcp", port, peer[0], peer[1])
    try:
        conn.sendall((peer[0] + "\n").encode())
        for line in conn.makefile("rb"):
            conn.sendall(line)
    except OSError:
        pass
    conn.close()
ports = {}
for port in map(int, sys.argv[1:]):
    t = socket.socket()
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("0.0.0.0", port))
    t.listen(128)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("0.0.0.0", port))
    ports[t] = ports[u] = port
log("ready")
while True:
    for s in select.select(list(ports), [], [])[0]:
        port = ports[s]
        if s.type == socket.SOCK_STREAM:
            conn, peer = s.accept()
            threading.Thread(target=serve, args=(conn, peer, port), daemon=True).start()
        else:
            data, peer = s.recvfrom(2048)
            log("udp", port, peer[0], peer[1])
            s.sendto((peer[0] + "\n").encode(), peer)
"#;

/// `pont run -d --name NAME --network NET EXTRA... -- python3 SERVER PORTS...`,
/// returning once the server listens.
pub fn run_server(sb: &Sandbox, name: &str, network: &str, ports: &[u16], extra: &[&str]) {
    let mut args = vec!["run", "-d", "--name", name, "--network", network];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "python3", "-u", "-c", SERVER]);
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    args.extend(ports.iter().map(String::as_str));
    sb.pont_ok(&args);
    wait_server_ready(sb, name);
}

pub fn wait_server_ready(sb: &Sandbox, name: &str) {
    let ready = testkit::wait_until(Duration::from_secs(10), || {
        sb.pont_ok(&["logs", name]).contains("ready\n")
    });
    assert!(
        ready,
        "server {name} did not start: {}",
        sb.pont_ok(&["logs", name])
    );
}

/// A container that only sleeps, as a client.
pub fn run_idle(sb: &Sandbox, name: &str, network: &str) {
    sb.pont_ok(&[
        "run",
        "-d",
        "--name",
        name,
        "--network",
        network,
        "--",
        "sleep",
        "1000",
    ]);
}

/// The lines "PROTO PORT IP SPORT" a server container logged for clients.
pub fn server_log(sb: &Sandbox, name: &str) -> Vec<String> {
    let log = sb.pont_ok(&["logs", name]);
    log.lines()
        .filter(|l| l.starts_with("tcp ") || l.starts_with("udp "))
        .map(str::to_owned)
        .collect()
}

/// Requests, all at once: for each "PROTO HOST PORT" triple after the
/// timeout, TCP (connect, half-close, read the first line) or UDP (one
/// datagram, one answer). Prints "INDEX ANSWER" per request, "INDEX -" for
/// one that failed or got no answer within the timeout.
const CLIENT: &str = r#"
import socket, sys, threading
timeout, args = float(sys.argv[1]), sys.argv[2:]
answers = {}
def ask(i, proto, host, port):
    try:
        if proto == "tcp":
            c = socket.create_connection((host, port), timeout=timeout)
            c.shutdown(socket.SHUT_WR)
            data = c.makefile("rb").readline()
        else:
            c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            c.settimeout(timeout)
            c.sendto(b"?", (host, port))
            data = c.recv(2048)
        answers[i] = data.decode().strip() or "-"
    except OSError:
        answers[i] = "-"
threads = []
for i in range(len(args) // 3):
    proto, host, port = args[3 * i:3 * i + 3]
    threads.append(threading.Thread(target=ask, args=(i, proto, host, int(port))))
for t in threads:
    t.start()
for t in threads:
    t.join()
for i in sorted(answers):
    print(i, answers[i])
"#;

/// Where a probe is sent from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Src<'a> {
    Ns(Ns),
    Container(&'a str),
}

/// How long a probe waits for its answer: one comes within milliseconds in
/// the sandbox, but a loaded test machine can be slow to schedule the
/// server; a refused or dropped probe costs this much.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

/// Runs `argv` in a namespace or (by `pont exec`) in a container.
pub fn run_from(sb: &Sandbox, from: Src<'_>, argv: &[&str]) -> std::process::Output {
    match from {
        Src::Ns(ns) => sb.run_in(ns, argv),
        Src::Container(name) => {
            let mut args = vec!["exec", name, "--"];
            args.extend_from_slice(argv);
            sb.pont(&args)
        }
    }
}

/// What the server answered to each (proto, "IP:PORT") request, all sent at
/// once from `from`: the address it saw, or None.
pub fn seen_all(sb: &Sandbox, from: Src<'_>, requests: &[(&str, &str)]) -> Vec<Option<String>> {
    let secs = format!("{:.3}", PROBE_TIMEOUT.as_secs_f64());
    let mut argv = vec!["timeout", "30", "python3", "-c", CLIENT, &secs];
    for (proto, addr) in requests {
        let (ip, port) = addr.rsplit_once(':').expect("IP:PORT");
        argv.extend_from_slice(&[proto, ip, port]);
    }
    let out = run_from(sb, from, &argv);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.lines().count() == requests.len(),
        "prober in {from:?} failed ({}): {text} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .map(|l| {
            let answer = l.split_once(' ').map_or("-", |(_, a)| a);
            (answer != "-").then(|| answer.to_string())
        })
        .collect()
}

/// The address the server saw, as it answered a `proto` ("tcp", "udp")
/// request sent from `from` to `addr` ("IP:PORT"); None if nothing answered.
pub fn seen(sb: &Sandbox, from: Src<'_>, proto: &str, addr: &str) -> Option<String> {
    seen_all(sb, from, &[(proto, addr)]).pop().flatten()
}

/// One probe and what it should see (None: no answer at all).
pub struct Case<'a> {
    pub from: Src<'a>,
    pub proto: &'a str,
    pub addr: &'a str,
    pub expect: Option<&'a str>,
}

/// Runs every case, one prober per source (all sources at once), and panics
/// listing all that failed, not only the first.
pub fn check_cases(sb: &Sandbox, what: &str, cases: &[Case<'_>]) {
    let mut sources: Vec<Src<'_>> = Vec::new();
    for c in cases {
        if !sources.contains(&c.from) {
            sources.push(c.from);
        }
    }
    let results: Vec<(Src<'_>, Vec<Option<String>>)> = std::thread::scope(|s| {
        let probers: Vec<_> = sources
            .iter()
            .map(|&from| {
                let requests: Vec<(&str, &str)> = cases
                    .iter()
                    .filter(|c| c.from == from)
                    .map(|c| (c.proto, c.addr))
                    .collect();
                s.spawn(move || (from, seen_all(sb, from, &requests)))
            })
            .collect();
        probers.into_iter().map(|p| p.join().unwrap()).collect()
    });
    let mut failures = Vec::new();
    for (from, answers) in results {
        let mine = cases.iter().filter(|c| c.from == from);
        for (c, got) in mine.zip(answers) {
            if got.as_deref() != c.expect {
                failures.push(format!(
                    "  {:?} {} {}: expected {:?}, got {:?}",
                    c.from, c.proto, c.addr, c.expect, got
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{what}: {} of {} probes failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Rules of pont's backend in the sandbox host: statements in `inet pont`
/// chains (nftables) or `-A` lines of iptables-save, and the elements of the
/// DNAT maps (nftables; iptables has none).
pub fn rule_counts(sb: &Sandbox, backend: Backend) -> (usize, usize) {
    match backend {
        Backend::Nftables => {
            let listing = sb.run_ok(Ns::Host, &["nft", "-j", "list", "table", "inet", "pont"]);
            let doc = json(&listing);
            let items = doc["nftables"].as_array().expect("nft -j: nftables array");
            let rules = items.iter().filter(|i| i.get("rule").is_some()).count();
            let elements = items
                .iter()
                .filter_map(|i| i.get("map"))
                .filter_map(|m| m["elem"].as_array())
                .map(Vec::len)
                .sum();
            (rules, elements)
        }
        Backend::Iptables => {
            let save = sb.run_ok(Ns::Host, &["iptables-save"]);
            (save.lines().filter(|l| l.starts_with("-A ")).count(), 0)
        }
    }
}

/// `conntrack -L` of the sandbox host: one line per tracked flow.
pub fn conntrack_lines(sb: &Sandbox) -> Vec<String> {
    let out = sb.run_ok(Ns::Host, &["conntrack", "-L"]);
    out.lines().map(str::to_owned).collect()
}

/// Sockets listening (TCP) or bound (UDP) on `port` in the sandbox host.
pub fn host_sockets_on(sb: &Sandbox, port: u16) -> Vec<String> {
    let out = sb.run_ok(Ns::Host, &["ss", "-Htuln"]);
    let suffix = format!(":{port}");
    out.lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(4)
                .is_some_and(|local| local.ends_with(&suffix))
        })
        .map(str::to_owned)
        .collect()
}

/// How many processes run in the sandbox host's network namespace.
pub fn host_process_count(sb: &Sandbox) -> usize {
    let path = format!("/run/netns/{}", sb.netns_name(Ns::Host));
    let inode = std::fs::metadata(&path).expect("host netns").ino();
    let procs = std::fs::read_dir("/proc").expect("/proc");
    procs
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::metadata(format!("/proc/{pid}/ns/net")).is_ok_and(|m| m.ino() == inode)
        })
        .count()
}

/// Runs `pont ARGS` (which must succeed) and returns how long it took.
pub fn timed_pont(sb: &Sandbox, args: &[&str]) -> Duration {
    let start = Instant::now();
    sb.pont_ok(args);
    start.elapsed()
}

/// Waits until the kernel has removed the veths of containers that are gone
/// (it does so in the background, after their namespace goes): only running
/// containers keep one.
pub fn wait_veths_gone(sb: &Sandbox) {
    let running = sb.pont_ok(&["ps", "-q"]).lines().count();
    let veths = || {
        let links = sb.run_ok(Ns::Host, &["ip", "-o", "link", "show", "type", "veth"]);
        links.lines().filter(|l| !l.contains(" uplink0")).count()
    };
    let settled = testkit::wait_until(Duration::from_secs(10), || veths() == running);
    assert!(
        settled,
        "{} veths for {running} running containers",
        veths()
    );
}

/// A host snapshot without what follows a bridge's carrier, which pont does
/// not set: a bridge has carrier until its last port goes, and the kernel
/// reports the change up to a second later (linkwatch).
pub fn host_state(sb: &Sandbox) -> String {
    let snapshot = sb.host_snapshot();
    let lines = snapshot.lines().map(|l| {
        l.replace("NO-CARRIER,", "")
            .replace(",LOWER_UP", "")
            .replace(" linkdown", "")
    });
    lines.map(|l| l + "\n").collect()
}

/// Panics, showing only the lines that differ, unless two host states are equal.
pub fn assert_same_host(before: &str, after: &str, what: &str) {
    if before == after {
        return;
    }
    let gone: Vec<&str> = before.lines().filter(|l| !after.contains(l)).collect();
    let new: Vec<&str> = after.lines().filter(|l| !before.contains(l)).collect();
    panic!(
        "{what}: the host changed\n--- gone:\n{}\n--- new:\n{}",
        gone.join("\n"),
        new.join("\n")
    );
}

/// A sysctl's value in a namespace, by its /proc/sys path under net/.
pub fn sysctl(sb: &Sandbox, ns: Ns, path: &str) -> String {
    let full = format!("/proc/sys/net/{path}");
    sb.run_ok(ns, &["cat", &full]).trim().to_string()
}

/// The MAC address of an interface of a namespace.
pub fn mac_of(sb: &Sandbox, ns: Ns, ifname: &str) -> String {
    let path = format!("/sys/class/net/{ifname}/address");
    sb.run_ok(ns, &["cat", &path]).trim().to_string()
}

/// The bridge of a pont network.
pub fn bridge_of(sb: &Sandbox, network: &str) -> String {
    let doc = json(&sb.pont_ok(&["network", "inspect", network]));
    doc["bridge"].as_str().expect("bridge").to_string()
}

/// A TCP SYN crafted from the Ethernet header up and sent on IFNAME to
/// DST_MAC, from SRC_IP to DST_IP:DPORT. Prints "synack" or "rst" for the
/// first answer to it, or "nothing" if none comes within the timeout.
const RAW_SYN: &str = r#"
import random, socket, struct, sys, time
ifname, dst_mac, src_ip, dst_ip = sys.argv[1:5]
dport, timeout = int(sys.argv[5]), float(sys.argv[6])
ETH_P_IP = 0x0800
def checksum(b):
    if len(b) % 2:
        b += b"\0"
    total = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
s.bind((ifname, ETH_P_IP))
src_mac = s.getsockname()[4]
src, dst = socket.inet_aton(src_ip), socket.inet_aton(dst_ip)
sport = random.randint(40000, 60000)
tcp = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x02, 64240, 0, 0)
pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), random.randint(0, 65535),
                 0x4000, 64, 6, 0, src, dst)
ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
eth = bytes.fromhex(dst_mac.replace(":", "")) + src_mac + struct.pack("!H", ETH_P_IP)
s.settimeout(0.05)
s.send(eth + ip + tcp)
deadline, answer = time.time() + timeout, "nothing"
while time.time() < deadline and answer == "nothing":
    try:
        frame = s.recv(2048)
    except socket.timeout:
        continue
    ihl = (frame[14] & 0xF) * 4
    if frame[14 + 9] != 6:
        continue
    t = frame[14 + ihl:14 + ihl + 20]
    fsport, fdport = struct.unpack("!HH", t[:4])
    if (fsport, fdport) == (dport, sport):
        answer = "synack" if t[13] & 0x12 == 0x12 else "rst" if t[13] & 0x04 else "other"
print(answer)
"#;

/// Sends a crafted SYN (see RAW_SYN) from `from`'s interface `ifname` and
/// returns what came back: "synack", "rst" or "nothing".
pub fn raw_syn(
    sb: &Sandbox,
    from: Src<'_>,
    ifname: &str,
    dst_mac: &str,
    src_ip: &str,
    dst: &str,
) -> String {
    let (dst_ip, dport) = dst.rsplit_once(':').expect("IP:PORT");
    let secs = format!("{:.3}", PROBE_TIMEOUT.as_secs_f64());
    let argv = [
        "python3", "-c", RAW_SYN, ifname, dst_mac, src_ip, dst_ip, dport, &secs,
    ];
    let out = run_from(sb, from, &argv);
    assert!(
        out.status.success(),
        "raw SYN helper failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
