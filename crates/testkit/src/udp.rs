//! UDP probes: an echo server that answers every datagram with the sender's
//! address, and a client that sends one datagram and waits for the answer.
//!
//! UDP has no handshake, so "reachable" means an answer came back within the
//! timeout; a dropped datagram and a dropped answer look the same, which is
//! what a firewall test wants.

use std::net::SocketAddr;
use std::time::Duration;

use crate::sandbox::Sandbox;
use crate::spawned::Spawned;
use crate::topology::Ns;

/// A UDP server: prints "listening" once bound, then for every datagram
/// prints "IP PORT" of the sender and sends it back "IP\n".
pub const UDP_ECHO: &str = r#"
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((host, port))
print("listening", flush=True)
while True:
    data, peer = srv.recvfrom(65536)
    print(peer[0], peer[1], flush=True)
    srv.sendto((peer[0] + "\n").encode(), peer)
"#;

/// A UDP client: sends argv[4] to argv[1]:argv[2], prints the first answer
/// and exits 0, or exits 1 when none came within argv[3] seconds. The
/// timeout starts once the interpreter runs, so a slow start on a loaded
/// machine does not eat into it.
const UDP_CLIENT: &str = r#"
import socket, sys
host, port, timeout, data = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(timeout)
try:
    s.sendto(data.encode(), (host, port))
    answer, _ = s.recvfrom(65536)
except OSError:
    sys.exit(1)
sys.stdout.buffer.write(answer)
"#;

/// The argv of a client that sends `data` to `addr` ("IP:PORT") and prints
/// the answer (exit 0), or exits 1 after `timeout` without one. For running
/// wherever a test needs it: in a sandbox namespace, or in a container's
/// namespace through `nsenter`.
pub fn udp_client_argv(addr: &str, data: &str, timeout: Duration) -> Vec<String> {
    let sock: SocketAddr = match addr.parse() {
        Ok(sock) => sock,
        Err(e) => panic!("{addr:?} is not IP:PORT: {e}"),
    };
    let secs = format!("{:.3}", timeout.as_secs_f64());
    [
        "python3",
        "-c",
        UDP_CLIENT,
        &sock.ip().to_string(),
        &sock.port().to_string(),
        &secs,
        data,
    ]
    .map(str::to_owned)
    .to_vec()
}

impl Sandbox {
    /// Sends `data` by UDP from `ns` to `addr` ("IP:PORT") and returns the
    /// answer, or `None` if none came within `timeout`.
    pub fn udp_request(&self, ns: Ns, addr: &str, data: &str, timeout: Duration) -> Option<String> {
        let argv = udp_client_argv(addr, data, timeout);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = self.run_in(ns, &argv);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Starts a [`UDP_ECHO`] server on `bind` ("IP:PORT") in `ns`; returns once
    /// it is bound, panics if it is not within 10 s. Its log of senders reads
    /// with [`crate::reported_peers`].
    pub fn spawn_udp_echo(&self, ns: Ns, bind: &str) -> Spawned<'_> {
        let sock: SocketAddr = match bind.parse() {
            Ok(sock) => sock,
            Err(e) => panic!("{bind:?} is not IP:PORT: {e}"),
        };
        let (ip, port) = (sock.ip().to_string(), sock.port().to_string());
        let mut server = self.spawn_in(ns, &[crate::python(), "-u", "-c", UDP_ECHO, &ip, &port]);
        if !server.wait_for_stdout("listening\n", Duration::from_secs(10)) {
            panic!(
                "UDP echo on {bind} in {ns:?} did not start: {}",
                server.stderr()
            );
        }
        server
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_argv_carries_address_timeout_and_data() {
        let argv = udp_client_argv("10.0.0.2:53", "hi", Duration::from_millis(500));
        assert_eq!(argv[0], "python3");
        assert_eq!(&argv[3..], ["10.0.0.2", "53", "0.500", "hi"]);
    }

    #[test]
    fn echo_answers_and_logs_the_sender() {
        crate::require_root();
        let sb = Sandbox::host_only("/nonexistent/pont");
        let server = sb.spawn_udp_echo(Ns::Host, "127.0.0.1:5353");
        let answer = sb.udp_request(Ns::Host, "127.0.0.1:5353", "x", Duration::from_secs(5));
        assert_eq!(answer.as_deref(), Some("127.0.0.1\n"));
        assert_eq!(crate::reported_peers(&server), ["127.0.0.1"]);
        let none = sb.udp_request(Ns::Host, "127.0.0.1:5354", "x", Duration::from_millis(200));
        assert_eq!(none, None);
    }
}
