//! Reachability checks: TCP connect, a UDP request answered by the lab's
//! service, and ping, each one that must get through or must not. All checks
//! of a batch run at once, one prober process per source, so a batch of
//! "must not get through" costs one timeout, not one per probe.

use std::collections::BTreeMap;
use std::time::Duration;

use testkit::Ns;

use crate::lab::{Lab, PORT};

/// How long a probe that must get through may take (it ends as soon as it does).
const PASS_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a probe that must not get through waits for an answer. Short: a
/// TCP handshake and a ping are answered by the kernel, within a millisecond
/// here, even when the machine is busy (a UDP answer needs the service to
/// run, and comes in a few milliseconds).
const BLOCK_TIMEOUT: Duration = Duration::from_millis(300);

/// Runs probes given as "PROTO,IP,TIMEOUT_S" (PROTO tcp, udp or ping) to port
/// argv[1] at once and prints "ok" or "no" for each, in order. TCP: the
/// handshake completes. UDP: an answer comes back, from any address (a
/// service bound to 0.0.0.0 answers from the address the route picks).
const PROBER: &str = r#"
import errno, select, socket, subprocess, sys, time
port = int(sys.argv[1])
probes = [a.split(",") for a in sys.argv[2:]]
start = time.monotonic()
result = [False] * len(probes)
pings, pending = {}, {}
for i, (proto, ip, t) in enumerate(probes):
    if proto == "ping":
        pings[i] = subprocess.Popen(["ping", "-n", "-q", "-c1", "-W", t, ip],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        continue
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_INET, kind)
    s.setblocking(False)
    try:
        if proto == "tcp":
            err = s.connect_ex((ip, port))
            if err not in (0, errno.EINPROGRESS):
                raise OSError(err, "connect")
        else:
            s.sendto(b"probe", (ip, port))
    except OSError:
        s.close()
        continue
    pending[s] = (i, proto, start + float(t))
while pending:
    now = time.monotonic()
    for s, (i, proto, deadline) in list(pending.items()):
        if now >= deadline:
            s.close()
            del pending[s]
    if not pending:
        break
    wait = min(d for _, _, d in pending.values()) - now
    reads = [s for s, v in pending.items() if v[1] == "udp"]
    writes = [s for s, v in pending.items() if v[1] == "tcp"]
    readable, writable, _ = select.select(reads, writes, [], max(wait, 0))
    for s in readable + writable:
        i, proto, _ = pending.pop(s)
        try:
            if proto == "tcp":
                result[i] = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
            else:
                result[i] = len(s.recv(65536)) > 0
        except OSError:
            pass
        s.close()
for i, p in pings.items():
    result[i] = p.wait() == 0
print("\n".join("ok" if r else "no" for r in result), flush=True)
"#;

/// Where a probe starts: a sandbox namespace or a pont container (by name).
#[derive(Clone, Copy, Debug)]
pub enum From<'a> {
    Ns(Ns),
    C(&'a str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
    Ping,
}
pub use Proto::*;

pub const ALL: &[Proto] = &[Tcp, Udp, Ping];

/// One probe and what it must show.
#[derive(Clone, Debug)]
pub struct Check {
    /// Who sends it: "Neighbour", "container a".
    from: String,
    /// The namespace the prober runs in, and the nsenter prefix for a container.
    ns: Ns,
    prefix: Vec<String>,
    proto: Proto,
    ip: String,
    pass: bool,
}

impl Check {
    fn arg(&self) -> String {
        let proto = match self.proto {
            Tcp => "tcp",
            Udp => "udp",
            Ping => "ping",
        };
        let timeout = if self.pass {
            PASS_TIMEOUT
        } else {
            BLOCK_TIMEOUT
        };
        format!("{proto},{},{:.3}", self.ip, timeout.as_secs_f64())
    }
}

impl Lab {
    /// Probes that must get through.
    pub fn reach(&self, from: From<'_>, ip: &str, protos: &[Proto]) -> Vec<Check> {
        self.checks(from, ip, protos, true)
    }

    /// Probes that must not get through.
    pub fn blocked(&self, from: From<'_>, ip: &str, protos: &[Proto]) -> Vec<Check> {
        self.checks(from, ip, protos, false)
    }

    fn checks(&self, from: From<'_>, ip: &str, protos: &[Proto], pass: bool) -> Vec<Check> {
        let (ns, prefix, from) = match from {
            From::Ns(ns) => (ns, vec![], format!("{ns:?}")),
            From::C(name) => {
                let pid = self.pid(name);
                let prefix = ["nsenter", "-t", &pid, "-n", "--"].map(String::from);
                (Ns::Host, prefix.to_vec(), format!("container {name}"))
            }
        };
        protos
            .iter()
            .map(|&proto| Check {
                from: from.clone(),
                ns,
                prefix: prefix.clone(),
                proto,
                ip: ip.to_string(),
                pass,
            })
            .collect()
    }

    /// Runs every check at once (once the services started so far answer) and
    /// panics listing each one that went the wrong way.
    #[track_caller]
    pub fn expect(&self, checks: Vec<Vec<Check>>) {
        self.services_ready();
        let mut by_source: BTreeMap<String, Vec<Check>> = BTreeMap::new();
        for check in checks.into_iter().flatten() {
            by_source.entry(check.from.clone()).or_default().push(check);
        }
        let mut probers: Vec<_> = by_source
            .values()
            .map(|checks| {
                let mut argv = checks[0].prefix.clone();
                argv.extend([crate::lab::python(), "-c", PROBER].map(String::from));
                argv.push(PORT.to_string());
                argv.extend(checks.iter().map(Check::arg));
                let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
                self.sb.spawn_in(checks[0].ns, &argv)
            })
            .collect();
        let mut wrong = Vec::new();
        for (checks, prober) in by_source.values().zip(&mut probers) {
            let done = testkit::wait_until(PASS_TIMEOUT * 3, || prober.try_wait().is_some());
            let results = prober.stdout();
            assert!(
                done && results.lines().count() == checks.len(),
                "{}: the prober from {} failed: {results} {}",
                self.backend,
                checks[0].from,
                prober.stderr()
            );
            for (check, result) in checks.iter().zip(results.lines()) {
                if (result == "ok") != check.pass {
                    let want = if check.pass {
                        "get through"
                    } else {
                        "be blocked"
                    };
                    let (proto, ip) = (check.proto, &check.ip);
                    wrong.push(format!(
                        "  from {}: {proto:?} to {ip} should {want}",
                        check.from
                    ));
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "{}: reachability differs:\n{}",
            self.backend,
            wrong.join("\n")
        );
    }
}
