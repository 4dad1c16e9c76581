//! The sandbox topology: which namespaces exist, their addresses, and the
//! `ip` batches that build them.
//!
//! ```text
//!   wan (203.0.113.10) ── router (203.0.113.1 | 192.0.2.1) ── lan: bridge lan0
//!                                                             ├─ neigh (192.0.2.3)
//!                                                             └─ host uplink0 (192.0.2.2)
//! ```
//!
//! Every veth is created from inside a sandbox namespace with its peer put
//! straight into another (`peer name X netns Y`), so no link ever exists in
//! the machine's own namespace, not even for a moment.

use std::net::Ipv4Addr;

/// The namespaces of a sandbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ns {
    /// The sandbox host, where pont runs.
    Host,
    /// The LAN switch: a bridge joining host, neighbour and router.
    Lan,
    /// A neighbour on the LAN.
    Neighbour,
    /// The router between LAN and WAN (forwarding, no NAT).
    Router,
    /// A host on the WAN side of the router.
    Wan,
}

impl Ns {
    /// Every namespace, in the order they are created.
    pub const ALL: [Ns; 5] = [Ns::Host, Ns::Lan, Ns::Neighbour, Ns::Router, Ns::Wan];

    /// The last part of the namespace's name.
    pub fn role(self) -> &'static str {
        match self {
            Ns::Host => "host",
            Ns::Lan => "lan",
            Ns::Neighbour => "neigh",
            Ns::Router => "router",
            Ns::Wan => "wan",
        }
    }
}

/// Prefix length of both the LAN and the WAN subnet.
pub const PREFIX_LEN: u8 = 24;
/// The LAN, shared by host, neighbour and router.
pub const LAN_SUBNET: &str = "192.0.2.0/24";
/// The WAN, between router and WAN host.
pub const WAN_SUBNET: &str = "203.0.113.0/24";

/// The sandbox host's only interface (a veth into the LAN bridge).
pub const HOST_UPLINK_IFNAME: &str = "uplink0";
/// The address of [`HOST_UPLINK_IFNAME`]: what the LAN and (unmasqueraded) the WAN see.
pub const HOST_UPLINK_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// The LAN neighbour, on its `eth0`.
pub const NEIGHBOUR_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 3);
/// The router's LAN side: default gateway of host and neighbour.
pub const ROUTER_LAN_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The router's WAN side: default gateway of the WAN host.
pub const ROUTER_WAN_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
/// The WAN host, on its `eth0`.
pub const WAN_HOST_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);

/// Interface names inside the namespaces. They live in the sandbox's own
/// namespaces, so they need not be unique across tests.
const LAN_BRIDGE: &str = "lan0";
const NEIGHBOUR_IFNAME: &str = "eth0";
const ROUTER_LAN_IFNAME: &str = "eth-lan";
const ROUTER_WAN_IFNAME: &str = "eth-wan";
const WAN_HOST_IFNAME: &str = "eth0";

/// The namespace names a batch refers to.
pub(crate) struct Names<'a> {
    pub(crate) host: &'a str,
    pub(crate) neighbour: &'a str,
    pub(crate) router: &'a str,
    pub(crate) wan: &'a str,
}

/// One `ip -n NS -batch -` script.
pub(crate) struct Batch {
    pub(crate) ns: Ns,
    pub(crate) script: String,
}

/// The batches that wire a full sandbox, in the order they must run: the
/// switch first, because it creates the veths whose far ends the others
/// configure.
pub(crate) fn full_batches(names: &Names<'_>) -> Vec<Batch> {
    vec![
        Batch {
            ns: Ns::Lan,
            script: lan_script(names),
        },
        Batch {
            ns: Ns::Host,
            script: host_script(),
        },
        Batch {
            ns: Ns::Neighbour,
            script: neighbour_script(),
        },
        Batch {
            ns: Ns::Router,
            script: router_script(names),
        },
        Batch {
            ns: Ns::Wan,
            script: wan_script(),
        },
    ]
}

/// The batch for a host-only sandbox.
pub(crate) fn host_only_batch() -> Batch {
    Batch {
        ns: Ns::Host,
        script: "link set lo up\n".to_string(),
    }
}

fn lan_script(names: &Names<'_>) -> String {
    let br = LAN_BRIDGE;
    let mut s = format!("link set lo up\nlink add {br} type bridge\nlink set {br} up\n");
    let ports = [
        ("p-host", HOST_UPLINK_IFNAME, names.host),
        ("p-neigh", NEIGHBOUR_IFNAME, names.neighbour),
        ("p-router", ROUTER_LAN_IFNAME, names.router),
    ];
    for (port, peer, peer_ns) in ports {
        s += &format!("link add {port} type veth peer name {peer} netns {peer_ns}\n");
        s += &format!("link set {port} master {br} up\n");
    }
    s
}

fn host_script() -> String {
    end_host_script(HOST_UPLINK_IFNAME, HOST_UPLINK_IP, ROUTER_LAN_IP)
}

fn neighbour_script() -> String {
    end_host_script(NEIGHBOUR_IFNAME, NEIGHBOUR_IP, ROUTER_LAN_IP)
}

fn wan_script() -> String {
    end_host_script(WAN_HOST_IFNAME, WAN_HOST_IP, ROUTER_WAN_IP)
}

/// A host with one interface and a default route.
fn end_host_script(ifname: &str, ip: Ipv4Addr, gateway: Ipv4Addr) -> String {
    format!(
        "link set lo up\nlink set {ifname} up\naddr add {ip}/{PREFIX_LEN} dev {ifname}\n\
         route add default via {gateway}\n"
    )
}

fn router_script(names: &Names<'_>) -> String {
    let (lan, wan) = (ROUTER_LAN_IFNAME, ROUTER_WAN_IFNAME);
    format!(
        "link set lo up\nlink set {lan} up\naddr add {ROUTER_LAN_IP}/{PREFIX_LEN} dev {lan}\n\
         link add {wan} type veth peer name {WAN_HOST_IFNAME} netns {wan_ns}\n\
         link set {wan} up\naddr add {ROUTER_WAN_IP}/{PREFIX_LEN} dev {wan}\n",
        wan_ns = names.wan
    )
}

/// Sysctls set inside a namespace once its links exist (or, for DAD, before).
pub(crate) fn sysctls(ns: Ns) -> &'static [&'static str] {
    match ns {
        // Without duplicate address detection, IPv6 link-local addresses are
        // final at once: a host snapshot taken right after setup does not
        // differ from a later one by a "tentative" flag.
        Ns::Host => &[
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
        ],
        Ns::Router => &["net.ipv4.ip_forward=1"],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lan_script_puts_each_peer_in_its_namespace() {
        let names = Names {
            host: "H",
            neighbour: "N",
            router: "R",
            wan: "W",
        };
        let script = lan_script(&names);
        assert!(script.contains("link add p-host type veth peer name uplink0 netns H\n"));
        assert!(script.contains("link add p-neigh type veth peer name eth0 netns N\n"));
        assert!(script.contains("link add p-router type veth peer name eth-lan netns R\n"));
        assert!(script.contains("link set p-router master lan0 up\n"));
    }

    #[test]
    fn host_script_has_uplink_address_and_default_route() {
        assert_eq!(
            host_script(),
            "link set lo up\nlink set uplink0 up\naddr add 192.0.2.2/24 dev uplink0\n\
             route add default via 192.0.2.1\n"
        );
    }

    #[test]
    fn roles_are_distinct() {
        let mut roles: Vec<_> = Ns::ALL.iter().map(|ns| ns.role()).collect();
        roles.sort_unstable();
        roles.dedup();
        assert_eq!(roles.len(), Ns::ALL.len());
    }
}
