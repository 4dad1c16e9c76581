//! Address management: which subnet a new network gets, which address a new
//! endpoint gets. Pure functions over what the state says is in use, so the
//! caller decides under its lock and the rules are unit-tested exactly.

mod pools;

pub use pools::{parse_pools, AddressPool, DEFAULT_POOLS};

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use crate::model::Ipv4Net;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IpamError {
    #[error("gateway {gateway} is outside subnet {subnet}")]
    GatewayOutside { gateway: Ipv4Addr, subnet: Ipv4Net },
    #[error("gateway {gateway} is the {what} address of subnet {subnet}")]
    GatewayReserved {
        gateway: Ipv4Addr,
        subnet: Ipv4Net,
        what: &'static str,
    },
    #[error("ip range {range} is not inside subnet {subnet}")]
    RangeOutside { range: Ipv4Net, subnet: Ipv4Net },
    #[error("subnet {0} is too small: it leaves no address for a container")]
    SubnetTooSmall(Ipv4Net),
    #[error("address {ip} is outside subnet {subnet} of network {network}")]
    AddressOutside {
        ip: Ipv4Addr,
        subnet: Ipv4Net,
        network: String,
    },
    #[error("address {ip} is the {what} address of network {network}")]
    AddressReserved {
        ip: Ipv4Addr,
        network: String,
        what: &'static str,
    },
    #[error("address {ip} is already in use on network {network}")]
    AddressInUse { ip: Ipv4Addr, network: String },
    #[error("no free address left on network {network} ({range})")]
    Exhausted { network: String, range: Ipv4Net },
    #[error("subnet {subnet} overlaps {range}, the {what} range")]
    SpecialSubnet {
        subnet: Ipv4Net,
        range: &'static str,
        what: &'static str,
    },
    #[error("no free subnet left in the address pools ({0}); pass --subnet")]
    NoFreeSubnet(String),
}

/// The addresses of a subnet that are never handed to containers.
fn reserved_role(subnet: Ipv4Net, gateway: Ipv4Addr, ip: Ipv4Addr) -> Option<&'static str> {
    // /31 and /32 have no network or broadcast address (RFC 3021), but pont's
    // bridges need a gateway plus at least one container, so they are refused earlier.
    if ip == subnet.network() {
        Some("network")
    } else if ip == subnet.broadcast() {
        Some("broadcast")
    } else if ip == gateway {
        Some("gateway")
    } else {
        None
    }
}

/// Check a network's addressing and fill in the default gateway (the first host).
pub fn plan_network(
    subnet: Ipv4Net,
    gateway: Option<Ipv4Addr>,
    ip_range: Option<Ipv4Net>,
) -> Result<Ipv4Addr, IpamError> {
    if subnet.prefix_len() > 30 {
        return Err(IpamError::SubnetTooSmall(subnet));
    }
    // Ranges with a meaning of their own (RFC 6890): never a container network.
    const SPECIAL: [(&str, &str); 4] = [
        ("0.0.0.0/8", "\"this network\""),
        ("127.0.0.0/8", "loopback"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
    ];
    for (range, what) in SPECIAL {
        if range
            .parse::<Ipv4Net>()
            .expect("valid constant")
            .overlaps(&subnet)
        {
            return Err(IpamError::SpecialSubnet {
                subnet,
                range,
                what,
            });
        }
    }
    let gateway = gateway.unwrap_or_else(|| subnet.nth(1).expect("a /30 has a first host"));
    if !subnet.contains(gateway) {
        return Err(IpamError::GatewayOutside { gateway, subnet });
    }
    if gateway == subnet.network() {
        return Err(IpamError::GatewayReserved {
            gateway,
            subnet,
            what: "network",
        });
    }
    if gateway == subnet.broadcast() {
        return Err(IpamError::GatewayReserved {
            gateway,
            subnet,
            what: "broadcast",
        });
    }
    if let Some(range) = ip_range {
        if !subnet.covers(&range) {
            return Err(IpamError::RangeOutside { range, subnet });
        }
    }
    Ok(gateway)
}

/// The addresses live endpoints hold on one network, as allocation asks about them.
pub trait AddressesInUse {
    fn contains(&self, ip: Ipv4Addr) -> bool;

    /// The first address at or after `from` that is not held (`None`: none up to
    /// 255.255.255.255). Implementations that can skip held runs should.
    fn first_free(&self, from: Ipv4Addr) -> Option<Ipv4Addr> {
        (u32::from(from)..=u32::MAX)
            .map(Ipv4Addr::from)
            .find(|ip| !self.contains(*ip))
    }
}

impl AddressesInUse for BTreeSet<Ipv4Addr> {
    fn contains(&self, ip: Ipv4Addr) -> bool {
        BTreeSet::contains(self, &ip)
    }
}

/// What an address request is checked against.
pub struct AddressSpace<'a> {
    pub network: &'a str,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub ip_range: Option<Ipv4Net>,
    pub in_use: &'a dyn AddressesInUse,
}

impl AddressSpace<'_> {
    /// Validate an address asked for with `--ip`.
    pub fn check_requested(&self, ip: Ipv4Addr) -> Result<Ipv4Addr, IpamError> {
        let network = self.network.to_string();
        if !self.subnet.contains(ip) {
            return Err(IpamError::AddressOutside {
                ip,
                subnet: self.subnet,
                network,
            });
        }
        if let Some(what) = reserved_role(self.subnet, self.gateway, ip) {
            return Err(IpamError::AddressReserved { ip, network, what });
        }
        if self.in_use.contains(ip) {
            return Err(IpamError::AddressInUse { ip, network });
        }
        Ok(ip)
    }

    /// The lowest free address of the range, or `preferred` when it is free.
    pub fn allocate(&self, preferred: Option<Ipv4Addr>) -> Result<Ipv4Addr, IpamError> {
        let range = self.ip_range.unwrap_or(self.subnet);
        if let Some(ip) = preferred.filter(|ip| range.contains(*ip)) {
            if let Ok(ip) = self.check_requested(ip) {
                return Ok(ip);
            }
        }
        let last = u32::from(range.broadcast());
        let mut from = Some(range.network());
        // Held addresses are skipped a run at a time; only the few reserved
        // ones (network, gateway, broadcast) are stepped over one by one.
        while let Some(ip) = from.and_then(|f| self.in_use.first_free(f)) {
            if u32::from(ip) > last {
                break;
            }
            if self.subnet.contains(ip) && reserved_role(self.subnet, self.gateway, ip).is_none() {
                return Ok(ip);
            }
            from = u32::from(ip).checked_add(1).map(Ipv4Addr::from);
        }
        Err(IpamError::Exhausted {
            network: self.network.to_string(),
            range,
        })
    }
}

/// The first subnet of the pools that overlaps nothing in `taken`.
pub fn pick_subnet(pools: &[AddressPool], taken: &[Ipv4Net]) -> Result<Ipv4Net, IpamError> {
    pools
        .iter()
        .flat_map(|pool| pool.subnets())
        .find(|candidate| !taken.iter().any(|t| t.overlaps(candidate)))
        .ok_or_else(|| {
            let names: Vec<String> = pools.iter().map(|p| p.to_string()).collect();
            IpamError::NoFreeSubnet(names.join(", "))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn default_gateway_is_first_host() {
        assert_eq!(
            plan_network(net("10.77.1.0/24"), None, None),
            Ok(ip("10.77.1.1"))
        );
    }

    #[test]
    fn gateway_checks() {
        let s = net("10.77.1.0/24");
        assert_eq!(
            plan_network(s, Some(ip("10.77.2.1")), None)
                .unwrap_err()
                .to_string(),
            "gateway 10.77.2.1 is outside subnet 10.77.1.0/24"
        );
        assert_eq!(
            plan_network(s, Some(ip("10.77.1.0")), None)
                .unwrap_err()
                .to_string(),
            "gateway 10.77.1.0 is the network address of subnet 10.77.1.0/24"
        );
        assert_eq!(
            plan_network(s, Some(ip("10.77.1.255")), None)
                .unwrap_err()
                .to_string(),
            "gateway 10.77.1.255 is the broadcast address of subnet 10.77.1.0/24"
        );
        assert!(plan_network(s, None, Some(net("10.77.0.0/16"))).is_err());
        assert!(plan_network(net("10.0.0.0/31"), None, None).is_err());
        assert_eq!(
            plan_network(net("127.0.0.0/16"), None, None)
                .unwrap_err()
                .to_string(),
            "subnet 127.0.0.0/16 overlaps 127.0.0.0/8, the loopback range"
        );
        assert!(plan_network(net("0.0.0.0/0"), None, None).is_err());
        assert!(plan_network(net("239.1.0.0/16"), None, None).is_err());
    }

    fn space<'a>(used: &'a BTreeSet<Ipv4Addr>) -> AddressSpace<'a> {
        AddressSpace {
            network: "web",
            subnet: net("10.77.1.0/24"),
            gateway: ip("10.77.1.1"),
            ip_range: None,
            in_use: used,
        }
    }

    #[test]
    fn lowest_free_first() {
        let mut used = BTreeSet::new();
        assert_eq!(space(&used).allocate(None), Ok(ip("10.77.1.2")));
        used.insert(ip("10.77.1.2"));
        used.insert(ip("10.77.1.4"));
        assert_eq!(space(&used).allocate(None), Ok(ip("10.77.1.3")));
        assert_eq!(
            space(&used).allocate(Some(ip("10.77.1.9"))),
            Ok(ip("10.77.1.9"))
        );
        assert_eq!(
            space(&used).allocate(Some(ip("10.77.1.4"))),
            Ok(ip("10.77.1.3"))
        );
    }

    #[test]
    fn ip_range_limits_allocation_but_not_requests() {
        let used = BTreeSet::new();
        let mut s = space(&used);
        s.ip_range = Some(net("10.77.1.128/25"));
        assert_eq!(s.allocate(None), Ok(ip("10.77.1.128")));
        assert_eq!(s.check_requested(ip("10.77.1.5")), Ok(ip("10.77.1.5")));
    }

    #[test]
    fn requested_address_checks() {
        let used: BTreeSet<_> = [ip("10.77.1.7")].into();
        let s = space(&used);
        assert_eq!(
            s.check_requested(ip("10.77.2.7")).unwrap_err().to_string(),
            "address 10.77.2.7 is outside subnet 10.77.1.0/24 of network web"
        );
        assert_eq!(
            s.check_requested(ip("10.77.1.1")).unwrap_err().to_string(),
            "address 10.77.1.1 is the gateway address of network web"
        );
        assert!(s.check_requested(ip("10.77.1.0")).is_err());
        assert!(s.check_requested(ip("10.77.1.255")).is_err());
        assert_eq!(
            s.check_requested(ip("10.77.1.7")).unwrap_err().to_string(),
            "address 10.77.1.7 is already in use on network web"
        );
    }

    #[test]
    fn exhaustion() {
        let used: BTreeSet<_> = [ip("10.0.0.2")].into();
        let s = AddressSpace {
            network: "tiny",
            subnet: net("10.0.0.0/30"),
            gateway: ip("10.0.0.1"),
            ip_range: None,
            in_use: &used,
        };
        assert!(matches!(s.allocate(None), Err(IpamError::Exhausted { .. })));
    }

    #[test]
    fn subnet_picking_skips_taken() {
        let pools = parse_pools(DEFAULT_POOLS).unwrap();
        assert_eq!(pick_subnet(&pools, &[]), Ok(net("172.17.0.0/16")));
        let taken = [net("172.17.0.0/16"), net("172.18.5.0/24")];
        assert_eq!(pick_subnet(&pools, &taken), Ok(net("172.19.0.0/16")));
        let all_172: Vec<Ipv4Net> = vec![net("172.16.0.0/12")];
        assert_eq!(pick_subnet(&pools, &all_172), Ok(net("192.168.0.0/20")));
        let everything = [net("0.0.0.0/0")];
        assert!(pick_subnet(&pools, &everything).is_err());
    }
}
