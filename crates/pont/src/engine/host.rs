//! Facts about the host namespace that shape validation, and the host sysctls pont sets.

use std::net::IpAddr;

use super::EngineError;
use crate::model::Ipv4Net;
use crate::netlink::Netlink;

/// Describe the first host address or route that overlaps `subnet`, if any.
/// The default route is ignored: it overlaps everything by design.
pub fn host_overlap(nl: &mut Netlink, subnet: Ipv4Net) -> Result<Option<String>, EngineError> {
    let links = nl.links()?;
    let ifname = |index: Option<u32>| {
        index
            .and_then(|i| links.iter().find(|l| l.index == i))
            .map(|l| format!(" (dev {})", l.name))
            .unwrap_or_default()
    };
    for addr in nl.addresses()? {
        if let IpAddr::V4(v4) = addr.addr {
            let net = Ipv4Net::containing(v4, addr.prefix_len);
            if net.overlaps(&subnet) && !v4.is_loopback() {
                return Ok(Some(format!(
                    "address {v4}/{}{}",
                    addr.prefix_len,
                    ifname(Some(addr.index))
                )));
            }
        }
    }
    for route in nl.routes()? {
        if let Some((IpAddr::V4(dst), len)) = route.dst {
            let net = Ipv4Net::containing(dst, len);
            if len > 0 && net.overlaps(&subnet) {
                return Ok(Some(format!("route {net}{}", ifname(route.oif))));
            }
        }
    }
    Ok(None)
}

/// Every host subnet (addresses and routes, not the default route), for picking a free one.
pub fn host_subnets(nl: &mut Netlink) -> Result<Vec<Ipv4Net>, EngineError> {
    let mut taken = Vec::new();
    for addr in nl.addresses()? {
        if let IpAddr::V4(v4) = addr.addr {
            if !v4.is_loopback() {
                taken.push(Ipv4Net::containing(v4, addr.prefix_len));
            }
        }
    }
    for route in nl.routes()? {
        if let Some((IpAddr::V4(dst), len)) = route.dst {
            if len > 0 {
                taken.push(Ipv4Net::containing(dst, len));
            }
        }
    }
    Ok(taken)
}

/// Containers need the host to route for them. This is the one global sysctl pont
/// changes, and only in the namespace it manages; /proc/sys/net shows the reader's
/// own network namespace, which is pont's host.
pub fn enable_ipv4_forwarding() -> Result<(), EngineError> {
    let path = "/proc/sys/net/ipv4/ip_forward";
    match std::fs::read_to_string(path) {
        Ok(v) if v.trim() == "1" => Ok(()),
        _ => std::fs::write(path, b"1").map_err(|source| EngineError::Sysctl {
            path: path.into(),
            source,
        }),
    }
}

/// Let the bridge carry packets with loopback addresses, which host clients of
/// 127.0.0.1-bound port mappings send once DNAT has pointed them at a
/// container (the source is masqueraded on the way out). Only pont's own
/// bridges get it, never `all` or `default`, and pont's firewall drops
/// loopback-destined packets that arrive from a bridge.
pub fn enable_route_localnet(bridge: &str) -> Result<(), EngineError> {
    let path = format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet");
    std::fs::write(&path, b"1").map_err(|source| EngineError::Sysctl { path, source })
}

/// Switch IPv6 off on `ifname`, the host end of an endpoint, before it comes up.
/// A bridge port needs no addresses of its own, and with IPv6 on, each one that
/// comes up makes the kernel add a link-local address, its prefix route and a
/// multicast route: the routes go into lists shared by every port, so the cost
/// grows with the containers already there. A host without IPv6 has nothing to
/// switch off.
pub fn disable_ipv6(ifname: &str) -> Result<(), EngineError> {
    let path = format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6");
    match std::fs::write(&path, b"1") {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !ipv6_present() => Ok(()),
        result => result.map_err(|source| EngineError::Sysctl { path, source }),
    }
}

fn ipv6_present() -> bool {
    std::path::Path::new("/proc/sys/net/ipv6").exists()
}
