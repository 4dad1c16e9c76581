//! Reachability checks for assertions: ping, TCP connect, a TCP request, and
//! a server that tells each client which address it came from.
//!
//! They use tools every Debian machine has (bash, ping, python3, timeout), run
//! inside the namespace whose view is being tested.

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use crate::sandbox::Sandbox;
use crate::spawned::Spawned;
use crate::topology::Ns;

/// A TCP server: prints "listening" once bound, then for every connection
/// prints "IP PORT" of the peer to stdout, sends "IP\n" to the peer, and
/// closes gracefully (reading what the client sent, so no reset eats the
/// answer).
const PEER_REPORTER: &str = r#"
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
family = socket.AF_INET6 if ":" in host else socket.AF_INET
srv = socket.socket(family, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((host, port))
srv.listen(128)
print("listening", flush=True)
while True:
    conn, peer = srv.accept()
    print(peer[0], peer[1], flush=True)
    try:
        conn.settimeout(2)
        conn.sendall((peer[0] + "\n").encode())
        conn.shutdown(socket.SHUT_WR)
        while conn.recv(4096):
            pass
    except OSError:
        pass
    conn.close()
"#;

/// A TCP client: connects, sends argv[4], half-closes, prints the answer.
const TCP_CLIENT: &str = r#"
import socket, sys
host, port, timeout, data = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
conn = socket.create_connection((host, port), timeout=timeout)
conn.sendall(data.encode())
conn.shutdown(socket.SHUT_WR)
while True:
    chunk = conn.recv(65536)
    if not chunk:
        break
    sys.stdout.buffer.write(chunk)
"#;

fn parse_addr(addr: &str) -> SocketAddr {
    match addr.parse() {
        Ok(sock) => sock,
        Err(e) => panic!("{addr:?} is not IP:PORT (IPv6 as [ADDR]:PORT): {e}"),
    }
}

fn secs_text(timeout: Duration) -> String {
    format!("{:.3}", timeout.as_secs_f64())
}

impl Sandbox {
    /// One ping (`ping -c1`) from `ns` to `addr`, waiting at most `timeout`
    /// (rounded up to whole seconds, at least one) for the answer.
    pub fn can_ping(&self, ns: Ns, addr: &str, timeout: Duration) -> bool {
        let wait_s = timeout.as_secs_f64().ceil().max(1.0).to_string();
        let out = self.run_in(ns, &["ping", "-n", "-q", "-c1", "-W", &wait_s, addr]);
        out.status.success()
    }

    /// Whether a TCP connection from `ns` to `addr` ("IP:PORT") is accepted
    /// within `timeout`. A refusal or a timeout is false.
    pub fn can_tcp_connect(&self, ns: Ns, addr: &str, timeout: Duration) -> bool {
        let sock = parse_addr(addr);
        let (ip, port) = (sock.ip().to_string(), sock.port().to_string());
        // bash's /dev/tcp connects and closes at once; timeout(1) bounds a
        // connect that gets no answer (dropped SYNs).
        let script = r#"exec 3<>"/dev/tcp/$0/$1""#;
        let argv = [
            "timeout",
            &secs_text(timeout),
            "bash",
            "-c",
            script,
            &ip,
            &port,
        ];
        self.run_in(ns, &argv).status.success()
    }

    /// Polls [`Sandbox::can_tcp_connect`] until it succeeds or `timeout`
    /// passes: for waiting until a server (in a container, say) listens.
    pub fn wait_tcp_connect(&self, ns: Ns, addr: &str, timeout: Duration) -> bool {
        let attempt = Duration::from_millis(500);
        wait_until(timeout, || self.can_tcp_connect(ns, addr, attempt))
    }

    /// Connects from `ns` to `addr`, sends `data`, half-closes and returns
    /// everything the server answered; `None` if it could not connect or the
    /// exchange did not finish within `timeout`.
    pub fn tcp_request(&self, ns: Ns, addr: &str, data: &str, timeout: Duration) -> Option<String> {
        let sock = parse_addr(addr);
        let (ip, port) = (sock.ip().to_string(), sock.port().to_string());
        let secs = secs_text(timeout);
        let argv = [
            "timeout",
            &secs,
            crate::python(),
            "-c",
            TCP_CLIENT,
            &ip,
            &port,
            &secs,
            data,
        ];
        let out = self.run_in(ns, &argv);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Starts a TCP server on `bind` ("IP:PORT", "0.0.0.0:8080") in `ns`
    /// that answers every client with the client's IP address and a newline,
    /// and logs "IP PORT" per client to its stdout. Returns once it listens;
    /// panics if it does not within 10 s.
    pub fn spawn_peer_reporter(&self, ns: Ns, bind: &str) -> Spawned<'_> {
        let sock = parse_addr(bind);
        let (ip, port) = (sock.ip().to_string(), sock.port().to_string());
        let mut server = self.spawn_in(
            ns,
            &[crate::python(), "-u", "-c", PEER_REPORTER, &ip, &port],
        );
        if !server.wait_for_stdout("listening\n", Duration::from_secs(10)) {
            panic!(
                "peer reporter on {bind} in {ns:?} did not start: {}",
                server.stderr()
            );
        }
        server
    }
}

/// The client IP addresses a [`Sandbox::spawn_peer_reporter`] server has seen, in order.
pub fn reported_peers(server: &Spawned<'_>) -> Vec<String> {
    let log = server.stdout();
    let peers = log.lines().filter(|l| *l != "listening");
    peers
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Calls `check` until it returns true (true) or `timeout` passes (false).
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}
