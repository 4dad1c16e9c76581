//! Sockets bound on the host, from /proc/net (which shows the reader's own
//! network namespace: pont's host), so a published port never shadows one.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::RuntimeError;
use crate::model::{PortMapping, Protocol};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Socket {
    pub protocol: Protocol,
    pub addr: IpAddr,
    pub port: u16,
}

impl Socket {
    /// Whether this socket would lose traffic to `m`: same protocol, a port in
    /// the range, and addresses that can meet.
    pub fn blocks(&self, m: &PortMapping) -> bool {
        self.protocol == m.protocol
            && m.host_ports.contains(self.port)
            && (self.addr.is_unspecified() || m.host_ip.is_none_or(|ip| ip == self.addr))
    }
}

impl fmt::Display for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            IpAddr::V6(a) => write!(f, "[{a}]:{}/{}", self.port, self.protocol),
            IpAddr::V4(a) => write!(f, "{a}:{}/{}", self.port, self.protocol),
        }
    }
}

/// TCP sockets in LISTEN and every bound UDP socket.
pub fn listening() -> Result<Vec<Socket>, RuntimeError> {
    let mut out = Vec::new();
    for (file, protocol, listen_only) in [
        ("/proc/net/tcp", Protocol::Tcp, true),
        ("/proc/net/tcp6", Protocol::Tcp, true),
        ("/proc/net/udp", Protocol::Udp, false),
        ("/proc/net/udp6", Protocol::Udp, false),
    ] {
        // A kernel without IPv6 has no tcp6/udp6: nothing listens there.
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        out.extend(parse(&text, protocol, listen_only));
    }
    Ok(out)
}

/// Lines look like `  0: 0100007F:0035 00000000:0000 0A ...`: local address
/// and port in hex (the address in the kernel's byte order), then the state.
fn parse(text: &str, protocol: Protocol, listen_only: bool) -> Vec<Socket> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let local = fields.nth(1)?;
            let state = fields.nth(1)?;
            if listen_only && state != "0A" {
                return None; // TCP_LISTEN, include/net/tcp_states.h
            }
            let (addr, port) = local.split_once(':')?;
            let port = u16::from_str_radix(port, 16).ok()?;
            Some(Socket {
                protocol,
                addr: parse_addr(addr)?,
                port,
            })
        })
        .collect()
}

fn parse_addr(hex: &str) -> Option<IpAddr> {
    match hex.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(hex, 16).ok()?.to_be(),
        ))),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                let word = u32::from_str_radix(&hex[i * 8..i * 8 + 8], 16).ok()?;
                chunk.copy_from_slice(&word.to_le_bytes());
            }
            Some(IpAddr::V6(Ipv6Addr::from(bytes)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PortRange;

    #[test]
    fn parses_proc_net() {
        let tcp = "  sl  local_address rem_address   st\n\
                   0: 0100007F:0035 00000000:0000 0A 0\n\
                   1: 00000000:1F90 00000000:0000 0A 0\n\
                   2: 0100007F:1F91 0100007F:9C40 01 0\n";
        let socks = parse(tcp, Protocol::Tcp, true);
        assert_eq!(socks.len(), 2);
        assert_eq!(socks[0].to_string(), "127.0.0.1:53/tcp");
        assert_eq!(socks[1].to_string(), "0.0.0.0:8080/tcp");
        let tcp6 = "h\n 0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A\n";
        assert_eq!(
            parse(tcp6, Protocol::Tcp, true)[0].to_string(),
            "[::1]:8080/tcp"
        );
    }

    #[test]
    fn blocking() {
        let sock = |a: &str, port| Socket {
            protocol: Protocol::Tcp,
            addr: a.parse().unwrap(),
            port,
        };
        let m = |ip: Option<&str>| PortMapping {
            host_ip: ip.map(|i| i.parse().unwrap()),
            host_ports: PortRange {
                start: 8000,
                end: 8010,
            },
            container_ports: PortRange {
                start: 8000,
                end: 8010,
            },
            protocol: Protocol::Tcp,
        };
        assert!(sock("0.0.0.0", 8005).blocks(&m(Some("192.0.2.2"))));
        assert!(sock("127.0.0.1", 8005).blocks(&m(None)));
        assert!(!sock("127.0.0.1", 8005).blocks(&m(Some("192.0.2.2"))));
        assert!(!sock("0.0.0.0", 8011).blocks(&m(None)));
    }
}
