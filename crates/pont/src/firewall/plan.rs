//! From records to the rules that should exist. Pure, so tests compare exact output.

use std::net::{IpAddr, Ipv4Addr};

use crate::model::{ContainerRecord, ContainerState, Ipv4Net, MacAddr, NetworkRecord, PortMapping};

/// Everything pont's firewall must enforce, in backend-neutral terms.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RuleSet {
    pub networks: Vec<NetworkRules>,
    pub mappings: Vec<MappingRules>,
    /// Every attached container port, for the anti-spoofing rules.
    pub endpoints: Vec<EndpointRules>,
}

/// One container's bridge port and what the container may send from it: its
/// own MAC and IPv4 address only. A container is root in its namespace and
/// can set any address it likes; the host, not the container, decides what
/// leaves the port, so a container cannot take over another's address (ARP
/// included) or send with another's source address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointRules {
    pub container: String,
    pub network: String,
    /// The host end of the veth.
    pub port: String,
    pub mac: MacAddr,
    pub ipv4: Ipv4Addr,
    /// The network has icc=false: nothing from this port reaches another port
    /// of the bridge.
    pub isolated: bool,
}

/// One published port (or range) of a running container: DNAT from the host
/// address and port(s) to the container's address and port(s).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappingRules {
    pub container: String,
    pub network: String,
    pub container_ip: Ipv4Addr,
    pub mapping: PortMapping,
}

impl MappingRules {
    /// The host address as an IPv4 prefix: one address, or all of them.
    pub fn host_v4(&self) -> Option<Ipv4Net> {
        match self.mapping.host_ip {
            None => Some("0.0.0.0/0".parse().expect("valid")),
            Some(IpAddr::V4(ip)) => Some(Ipv4Net::containing(ip, 32)),
            // Served by the IPv6 issue; refused at validation until then.
            Some(IpAddr::V6(_)) => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkRules {
    pub name: String,
    pub bridge: String,
    pub subnet: Ipv4Net,
    /// No traffic to or from any other interface, and none to the host.
    pub internal: bool,
    /// Containers of this network may talk to each other.
    pub icc: bool,
}

impl NetworkRules {
    /// Traffic leaving through any interface but the bridge is masqueraded.
    pub fn masquerade(&self) -> bool {
        !self.internal
    }
}

impl RuleSet {
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }
}

/// The rules the records call for: every network's, and every live container's.
pub fn plan(networks: &[NetworkRecord], containers: &[ContainerRecord]) -> RuleSet {
    let icc = |name: &str| {
        networks
            .iter()
            .find(|n| n.name == name)
            .is_none_or(|n| n.icc)
    };
    let mut rules = RuleSet {
        networks: networks.iter().map(network_rules).collect(),
        ..RuleSet::default()
    };
    for c in containers {
        let part = container_rules(c, icc);
        rules.mappings.extend(part.mappings);
        rules.endpoints.extend(part.endpoints);
    }
    rules
}

/// A network's own rules.
pub fn network_rules(n: &NetworkRecord) -> NetworkRules {
    NetworkRules {
        name: n.name.clone(),
        bridge: n.bridge.clone(),
        subnet: n.subnet,
        internal: n.internal,
        icc: n.icc,
    }
}

/// One container's share of the rules (no networks): its bridge ports and
/// published ports while it is live, nothing once it has exited. An
/// operation on one container changes exactly this share, so comparing the
/// share before and after is the whole firewall change, however many other
/// containers there are. `icc` tells whether a network lets its containers
/// talk to each other.
pub fn container_rules(c: &ContainerRecord, icc: impl Fn(&str) -> bool) -> RuleSet {
    if c.state == ContainerState::Exited {
        return RuleSet::default();
    }
    let endpoints = c
        .endpoints
        .iter()
        .map(|e| EndpointRules {
            container: c.name.clone(),
            network: e.network.clone(),
            port: e.host_interface.clone(),
            mac: e.mac,
            ipv4: e.ipv4,
            isolated: !icc(&e.network),
        })
        .collect();
    // Published ports go to the container's first network, as with Docker.
    let mappings = match c.endpoints.first() {
        Some(ep) => c
            .ports
            .iter()
            .map(|m| MappingRules {
                container: c.name.clone(),
                network: ep.network.clone(),
                container_ip: ep.ipv4,
                mapping: m.clone(),
            })
            .collect(),
        None => vec![],
    };
    RuleSet {
        networks: vec![],
        mappings,
        endpoints,
    }
}
