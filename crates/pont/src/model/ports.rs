//! Published ports: Docker's `-p` syntax and the mappings pont records.
//!
//! `[HOST_IP:][HOST_PORT[-END]:]CONTAINER_PORT[-END][/tcp|/udp|/sctp]`, with
//! IPv6 host addresses in brackets (`[::1]:8080:80`).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An inclusive range of port numbers, `start..=end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortRange {
    pub start: u16,
    pub end: u16,
}

impl PortRange {
    pub fn single(port: u16) -> PortRange {
        PortRange {
            start: port,
            end: port,
        }
    }

    pub fn count(&self) -> u32 {
        u32::from(self.end) - u32::from(self.start) + 1
    }

    pub fn is_single(&self) -> bool {
        self.start == self.end
    }

    pub fn overlaps(&self, other: &PortRange) -> bool {
        self.start <= other.end && other.start <= self.end
    }

    pub fn contains(&self, port: u16) -> bool {
        (self.start..=self.end).contains(&port)
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_single() {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

/// What a user asked for with `-p`: the host side may be left open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    pub host_ip: Option<IpAddr>,
    /// None: pick free ports from the host's ephemeral range.
    pub host_ports: Option<PortRange>,
    pub container_ports: PortRange,
    pub protocol: Protocol,
}

/// A published port as pont records and enforces it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortMapping {
    /// None: every address of the host.
    pub host_ip: Option<IpAddr>,
    pub host_ports: PortRange,
    pub container_ports: PortRange,
    pub protocol: Protocol,
}

impl PortMapping {
    /// Docker's compact form, `0.0.0.0:8080->80/tcp`.
    pub fn display(&self) -> String {
        let ip = match self.host_ip {
            None => "0.0.0.0".to_string(),
            Some(IpAddr::V6(v6)) => format!("[{v6}]"),
            Some(IpAddr::V4(v4)) => v4.to_string(),
        };
        format!(
            "{ip}:{}->{}/{}",
            self.host_ports, self.container_ports, self.protocol
        )
    }

    /// Whether two mappings want the same host port: same protocol, overlapping
    /// ports, and the same address or either one on every address.
    pub fn conflicts_with(&self, other: &PortMapping) -> bool {
        self.protocol == other.protocol
            && self.host_ports.overlaps(&other.host_ports)
            && (self.host_ip.is_none() || other.host_ip.is_none() || self.host_ip == other.host_ip)
    }

    /// Whether `spec` names this mapping (for `port rm`): equal on every field
    /// the spec gives.
    pub fn matches(&self, spec: &PortSpec) -> bool {
        self.protocol == spec.protocol
            && self.container_ports == spec.container_ports
            && spec.host_ports.is_none_or(|h| h == self.host_ports)
            && (spec.host_ip.is_none() || spec.host_ip == self.host_ip)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid port spec '{spec}': {reason}")]
pub struct PortSpecError {
    pub spec: String,
    pub reason: String,
}

impl FromStr for PortSpec {
    type Err = PortSpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let fail = |reason: String| PortSpecError {
            spec: spec.into(),
            reason,
        };
        let (rest, protocol) = match spec.rsplit_once('/') {
            Some((rest, proto)) => (rest, parse_protocol(proto).map_err(fail)?),
            None => (spec, Protocol::Tcp),
        };
        let (host_ip, ports) = split_host_ip(rest).map_err(fail)?;
        let parts: Vec<&str> = ports.split(':').collect();
        let (host, container) = match parts.as_slice() {
            [container] => (None, *container),
            ["", container] => (None, *container),
            [host, container] => (Some(*host), *container),
            _ => {
                return Err(fail(
                    "expected [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]".into(),
                ))
            }
        };
        if host_ip.is_some() && parts.len() == 1 {
            return Err(fail(
                "a host address needs a host port part (use IP::PORT to pick one)".into(),
            ));
        }
        if let Some(addr) = host.filter(|h| h.parse::<IpAddr>().is_ok()) {
            return Err(fail(format!(
                "'{addr}' is an address, not a host port \
                 (HOST_IP:HOST_PORT:CONTAINER_PORT, or HOST_IP::CONTAINER_PORT to pick one)"
            )));
        }
        let container_ports = parse_range(container, "container").map_err(fail)?;
        let host_ports = host
            .map(|h| parse_range(h, "host"))
            .transpose()
            .map_err(fail)?;
        if let Some(h) = host_ports {
            if h.count() != container_ports.count() {
                return Err(fail(format!(
                    "host range {h} and container range {container_ports} differ in length"
                )));
            }
        }
        Ok(PortSpec {
            host_ip,
            host_ports,
            container_ports,
            protocol,
        })
    }
}

fn parse_protocol(p: &str) -> Result<Protocol, String> {
    match p {
        "tcp" => Ok(Protocol::Tcp),
        "udp" => Ok(Protocol::Udp),
        "sctp" => Ok(Protocol::Sctp),
        other => Err(format!(
            "unknown protocol '{other}' (expected tcp, udp or sctp)"
        )),
    }
}

/// Split off a leading host address: `[v6]:rest` or `v4:rest:rest`.
fn split_host_ip(s: &str) -> Result<(Option<IpAddr>, &str), String> {
    if let Some(after) = s.strip_prefix('[') {
        let (addr, rest) = after
            .split_once(']')
            .ok_or("unclosed '[' around the IPv6 address")?;
        let ip: std::net::Ipv6Addr = addr
            .parse()
            .map_err(|_| format!("invalid IPv6 address '{addr}'"))?;
        let rest = rest
            .strip_prefix(':')
            .ok_or("expected ':' after the bracketed address")?;
        return Ok((Some(IpAddr::V6(ip)), rest));
    }
    let colons = s.matches(':').count();
    if colons > 2 {
        return Err("an IPv6 host address must be in brackets, as in [::1]:8080:80".into());
    }
    if colons == 2 {
        let (addr, rest) = s.split_once(':').expect("two colons");
        let ip: std::net::Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("invalid host address '{addr}'"))?;
        return Ok((Some(IpAddr::V4(ip)), rest));
    }
    Ok((None, s))
}

fn parse_range(s: &str, side: &str) -> Result<PortRange, String> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    // "-1", "80-", "8080--8081": a half is empty; name the whole value.
    if a.is_empty() || b.is_empty() || b.contains('-') {
        return Err(format!("{side} port '{s}' is not a number"));
    }
    let start = parse_port(a, side)?;
    let end = parse_port(b, side)?;
    if end < start {
        return Err(format!("{side} port range {s} is reversed"));
    }
    Ok(PortRange { start, end })
}

fn parse_port(s: &str, side: &str) -> Result<u16, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{side} port '{s}' is not a number"));
    }
    match s.parse::<u32>() {
        // Only a host port can be left out: pont picks one; a container port cannot.
        Ok(0) if side == "host" => Err(format!(
            "{side} port 0 is not a port (leave the host port out to pick one)"
        )),
        Ok(0) => Err(format!("{side} port 0 is not a port")),
        Ok(n) if n <= 65535 => Ok(n as u16),
        _ => Err(format!("{side} port {s} is above 65535")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> PortSpec {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(s: &str) -> String {
        s.parse::<PortSpec>().unwrap_err().to_string()
    }

    #[test]
    fn docker_forms() {
        let s = spec("80");
        assert_eq!(
            (s.host_ip, s.host_ports, s.protocol),
            (None, None, Protocol::Tcp)
        );
        assert_eq!(s.container_ports, PortRange::single(80));
        let s = spec("8080:80/udp");
        assert_eq!(s.host_ports, Some(PortRange::single(8080)));
        assert_eq!(s.protocol, Protocol::Udp);
        let s = spec("127.0.0.1:8080:80");
        assert_eq!(s.host_ip, Some("127.0.0.1".parse().unwrap()));
        let s = spec("127.0.0.1::80");
        assert_eq!((s.host_ip.is_some(), s.host_ports), (true, None));
        let s = spec("[::1]:8080:80/sctp");
        assert_eq!(s.host_ip, Some("::1".parse().unwrap()));
        assert_eq!(s.protocol, Protocol::Sctp);
        let s = spec("9000-9999:19000-19999");
        assert_eq!(s.host_ports.unwrap().count(), 1000);
        assert_eq!(spec(":80").host_ports, None);
    }

    #[test]
    fn bad_specs_name_the_value() {
        assert_eq!(err("0:80"), "invalid port spec '0:80': host port 0 is not a port (leave the host port out to pick one)");
        assert_eq!(
            err("80:0"),
            "invalid port spec '80:0': container port 0 is not a port"
        );
        assert_eq!(
            err("70000:80"),
            "invalid port spec '70000:80': host port 70000 is above 65535"
        );
        assert_eq!(
            err("-1:80"),
            "invalid port spec '-1:80': host port '-1' is not a number"
        );
        assert!(err("80:-5").contains("container port '-5' is not a number"));
        assert!(err("80-:80").contains("host port '80-' is not a number"));
        assert!(err("1-2-3:80").contains("host port '1-2-3' is not a number"));
        assert!(err("1.2.3.4:80").contains("'1.2.3.4' is an address, not a host port"));
        assert!(err("abc").contains("container port 'abc' is not a number"));
        assert!(err("90-80:90-80").contains("reversed"));
        assert!(err("8000-8001:80").contains("differ in length"));
        assert!(err("80/icmp").contains("unknown protocol 'icmp'"));
        assert!(err("::1:8080:80").contains("must be in brackets"));
        assert!(err("[::1:8080:80").contains("unclosed"));
        assert!(err("[::g]:8080:80").contains("invalid IPv6 address '::g'"));
        assert!(err("1.2.3:8080:80").contains("invalid host address '1.2.3'"));
        assert!(err("80/").contains("unknown protocol ''"));
    }

    #[test]
    fn conflicts() {
        let m = |ip: Option<&str>, h: u16, p: Protocol| PortMapping {
            host_ip: ip.map(|i| i.parse().unwrap()),
            host_ports: PortRange::single(h),
            container_ports: PortRange::single(80),
            protocol: p,
        };
        let any = m(None, 8080, Protocol::Tcp);
        assert!(any.conflicts_with(&m(Some("192.0.2.2"), 8080, Protocol::Tcp)));
        assert!(!any.conflicts_with(&m(None, 8080, Protocol::Udp)));
        assert!(
            !m(Some("192.0.2.2"), 8080, Protocol::Tcp).conflicts_with(&m(
                Some("127.0.0.1"),
                8080,
                Protocol::Tcp
            ))
        );
        assert_eq!(any.display(), "0.0.0.0:8080->80/tcp");
    }
}
