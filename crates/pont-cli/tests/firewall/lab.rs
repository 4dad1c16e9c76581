//! The firewall lab: a sandbox whose pont commands all use one backend, and
//! services that answer TCP, UDP and ping on port 80, in containers and in the
//! sandbox's namespaces. The probes are in `probe.rs`.
// Not every scenario file uses every helper.
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::process::Output;
use std::time::Duration;

use testkit::{Ns, Sandbox, Spawned};

/// The port every service of the lab listens on, TCP and UDP.
pub const PORT: u16 = 80;
/// The WAN host, beyond the router.
pub const WAN: &str = "203.0.113.10";
/// The sandbox host's own LAN address.
pub const HOST_IP: &str = "192.0.2.2";
/// The LAN neighbour.
pub const NEIGHBOUR: &str = "192.0.2.3";

/// The system's Python, when there is one: a `python3` found first on PATH may
/// be a version manager's shim (pyenv's costs 0.4 s a start), and the lab
/// starts dozens.
pub fn python() -> &'static str {
    const SYSTEM: &str = "/usr/bin/python3";
    if std::path::Path::new(SYSTEM).exists() {
        SYSTEM
    } else {
        "python3"
    }
}

/// How long a new service may take to answer.
const SERVICE_START: Duration = Duration::from_secs(10);

/// Answers each TCP connection and each UDP datagram on argv[1]:80 with the
/// peer's address, and logs "PEER tcp|udp"; prints "listening" once bound.
const SERVICE: &str = r#"
import socket, sys, threading
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind((sys.argv[1], 80))
tcp = socket.socket()
tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind((sys.argv[1], 80))
tcp.listen(64)
out = threading.Lock()
def report(line):
    # One whole line per write, under a lock: print() from two threads
    # interleaves its pieces ("192.0.2.2192.0.2.2").
    with out:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
def echo():
    while True:
        data, peer = udp.recvfrom(65536)
        report(peer[0] + " udp")
        udp.sendto((peer[0] + "\n").encode(), peer)
threading.Thread(target=echo, daemon=True).start()
report("listening")
while True:
    conn, peer = tcp.accept()
    report(peer[0] + " tcp")
    conn.sendall((peer[0] + "\n").encode())
    conn.close()
"#;

pub struct Lab {
    pub sb: Sandbox,
    pub backend: &'static str,
    /// Container name to the pid of its init, looked up once.
    pids: RefCell<HashMap<String, String>>,
    /// Services started but not yet seen answering ("IP:PORT").
    pub(crate) starting: RefCell<Vec<String>>,
}

impl Lab {
    /// Host, LAN, neighbour, router and WAN host.
    pub fn new(backend: &'static str) -> Lab {
        testkit::require_root();
        Lab::with(Sandbox::new(env!("CARGO_BIN_EXE_pont")), backend)
    }

    /// The sandbox host alone (no LAN, no WAN): cheaper, for rule-set tests.
    pub fn host_only(backend: &'static str) -> Lab {
        testkit::require_root();
        Lab::with(Sandbox::host_only(env!("CARGO_BIN_EXE_pont")), backend)
    }

    fn with(sb: Sandbox, backend: &'static str) -> Lab {
        Lab {
            sb,
            backend,
            pids: RefCell::default(),
            starting: RefCell::default(),
        }
    }

    /// `pont ARGS` with `PONT_FIREWALL` set to the lab's backend.
    pub fn pont(&self, args: &[&str]) -> Output {
        let mut cmd = self.sb.pont_command(args);
        cmd.env("PONT_FIREWALL", self.backend);
        self.sb.output(cmd)
    }

    #[track_caller]
    pub fn pont_ok(&self, args: &[&str]) -> String {
        let out = self.pont(args);
        if !out.status.success() {
            panic!("{}: pont {args:?} failed{}", self.backend, show(&out));
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[track_caller]
    pub fn pont_err(&self, args: &[&str]) -> String {
        let out = self.pont(args);
        if out.status.success() {
            panic!("{}: pont {args:?} succeeded{}", self.backend, show(&out));
        }
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// A shell command in the sandbox host; panics unless it succeeds.
    #[track_caller]
    pub fn host(&self, script: &str) -> String {
        self.sb.run_ok(Ns::Host, &["bash", "-c", script])
    }

    /// `sysctl -w` in the sandbox host.
    pub fn sysctl(&self, setting: &str) {
        self.sb.run_ok(Ns::Host, &["sysctl", "-qw", setting]);
    }

    /// `pont network create NAME --subnet SUBNET EXTRA...`.
    pub fn network(&self, name: &str, subnet: &str, extra: &[&str]) {
        let mut args = vec!["network", "create", name, "--subnet", subnet];
        args.extend_from_slice(extra);
        self.pont_ok(&args);
    }

    /// A container on `network` running the lab's service; returns its
    /// address. The probes wait until the service answers (from the host,
    /// which reaches every network), so several start side by side.
    pub fn service(&self, name: &str, network: &str, extra: &[&str]) -> String {
        let mut args = vec!["run", "-d", "--name", name, "--network", network];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", python(), "-u", "-c", SERVICE, "0.0.0.0"]);
        self.pont_ok(&args);
        let ip = self.ip(name);
        self.starting.borrow_mut().push(format!("{ip}:{PORT}"));
        ip
    }

    /// Waits until every service started so far answers.
    pub fn services_ready(&self) {
        for addr in self.starting.borrow_mut().drain(..) {
            assert!(
                self.sb.wait_tcp_connect(Ns::Host, &addr, SERVICE_START),
                "{}: the service on {addr} does not answer",
                self.backend
            );
        }
    }

    /// A container that only sleeps; returns its address.
    pub fn idle(&self, name: &str, network: &str) -> String {
        self.pont_ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            network,
            "--",
            "sleep",
            "600",
        ]);
        self.ip(name)
    }

    /// The container's first IPv4 address, without the prefix length ("" if
    /// none). Notes its pid too, saving the probes an inspect.
    pub fn ip(&self, name: &str) -> String {
        let doc = self.inspect(name);
        if let Some(pid) = doc["pid"].as_i64() {
            self.pids
                .borrow_mut()
                .insert(name.to_string(), pid.to_string());
        }
        let nets = doc["networks"].as_object().cloned().unwrap_or_default();
        nets.values()
            .find_map(|n| n["ipv4"].as_str())
            .map(|cidr| cidr.split('/').next().unwrap().to_string())
            .unwrap_or_default()
    }

    /// The pid of the container's init (looked up once: the lab restarts no
    /// container).
    pub fn pid(&self, name: &str) -> String {
        if let Some(pid) = self.pids.borrow().get(name) {
            return pid.clone();
        }
        let doc = self.inspect(name);
        let Some(pid) = doc["pid"].as_i64() else {
            panic!("{name} has no pid: {doc}");
        };
        self.pids
            .borrow_mut()
            .insert(name.to_string(), pid.to_string());
        pid.to_string()
    }

    pub fn inspect(&self, name: &str) -> serde_json::Value {
        json(&self.pont_ok(&["inspect", name]))
    }

    /// The lab's service on `ip` (0.0.0.0 for all) in each namespace given,
    /// started side by side; the guards stop them.
    pub fn servers(&self, at: &[(Ns, &str)]) -> Vec<Spawned<'_>> {
        let mut servers: Vec<Spawned<'_>> = at
            .iter()
            .map(|(ns, ip)| self.sb.spawn_in(*ns, &[python(), "-u", "-c", SERVICE, ip]))
            .collect();
        for (server, (ns, ip)) in servers.iter_mut().zip(at) {
            if !server.wait_for_stdout("listening\n", SERVICE_START) {
                panic!(
                    "service on {ip} in {ns:?} did not start: {}",
                    server.stderr()
                );
            }
        }
        servers
    }

    /// A command in a container's network namespace (from the sandbox host, by
    /// nsenter, so no pont command runs and nothing is repaired on the way).
    pub fn in_container(&self, name: &str, argv: &[&str]) -> Output {
        let pid = self.pid(name);
        let mut full = vec!["nsenter", "-t", &pid, "-n", "--"];
        full.extend_from_slice(argv);
        self.sb.run_in(Ns::Host, &full)
    }

    /// Every rule of the host, pont's and others', without counters: with
    /// iptables-nft and ebtables-nft, nftables shows their rules too.
    pub fn ruleset(&self) -> String {
        self.sb.run_ok(Ns::Host, &["nft", "-s", "list", "ruleset"])
    }

    /// Make the built-in chains that iptables-nft creates on its first use of
    /// a table (and leaves), as on any host where iptables was ever used: the
    /// state "before pont" that rule-set comparisons start from.
    pub fn materialise_iptables_tables(&self) {
        self.host(
            "touch() { iptables -t $1 -A $2 -j ACCEPT && iptables -t $1 -D $2 -j ACCEPT; }; \
             touch filter FORWARD && touch filter INPUT && touch raw PREROUTING && \
             touch nat PREROUTING && touch nat OUTPUT && touch nat POSTROUTING && \
             ebtables -A FORWARD -j ACCEPT && ebtables -D FORWARD -j ACCEPT && \
             ebtables -t nat -A PREROUTING -j ACCEPT && ebtables -t nat -D PREROUTING -j ACCEPT",
        );
    }

    /// Waits (up to 5 s: a removed container's veth goes with its namespace,
    /// in the kernel's background cleanup) until `part` of the host snapshot
    /// equals `part` of `expected`, then asserts it does.
    #[track_caller]
    pub fn assert_snapshot_part(&self, expected: &str, part: impl Fn(&str) -> String, what: &str) {
        let mut now = String::new();
        testkit::wait_until(Duration::from_secs(5), || {
            now = part(&self.sb.host_snapshot());
            now == part(expected)
        });
        assert_eq!(now, part(expected), "{}: {what}", self.backend);
    }

    /// [`Lab::assert_snapshot_part`] of the whole snapshot.
    #[track_caller]
    pub fn assert_snapshot(&self, expected: &str, what: &str) {
        self.assert_snapshot_part(expected, str::to_owned, what);
    }
}

pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// A rule listing as a sorted list of its pieces (between braces, commas and
/// line breaks, spaces collapsed): the order in which nftables lists the
/// elements of a hash set changes when they are added again, and means
/// nothing; a duplicate still shows as a piece twice.
pub fn normalised(listing: &str) -> Vec<String> {
    let mut pieces: Vec<String> = listing
        .split(['{', '}', ',', '\n'])
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect();
    pieces.sort();
    pieces
}

fn show(out: &Output) -> String {
    format!(
        " ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout).trim_end(),
        String::from_utf8_lossy(&out.stderr).trim_end()
    )
}
