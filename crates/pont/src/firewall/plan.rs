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
    /// Host ends of the veths attached now (bridge ports), listed only where
    /// rules name them (icc=false), so starting a container on an ordinary
    /// network leaves the rule set unchanged and costs no firewall work.
    pub ports: Vec<String>,
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

pub fn plan(networks: &[NetworkRecord], containers: &[ContainerRecord]) -> RuleSet {
    let ports_of = |net: &str| -> Vec<String> {
        containers
            .iter()
            .filter(|c| c.state != ContainerState::Exited)
            .flat_map(|c| c.endpoints.iter())
            .filter(|e| e.network == net)
            .map(|e| e.host_interface.clone())
            .collect()
    };
    let mappings = containers
        .iter()
        .filter(|c| c.state != ContainerState::Exited)
        .flat_map(|c| {
            let ep = c.endpoints.first();
            c.ports.iter().filter_map(move |m| {
                let ep = ep?;
                Some(MappingRules {
                    container: c.name.clone(),
                    network: ep.network.clone(),
                    container_ip: ep.ipv4,
                    mapping: m.clone(),
                })
            })
        })
        .collect();
    let endpoints = containers
        .iter()
        .filter(|c| c.state != ContainerState::Exited)
        .flat_map(|c| {
            c.endpoints.iter().map(|e| EndpointRules {
                container: c.name.clone(),
                network: e.network.clone(),
                port: e.host_interface.clone(),
                mac: e.mac,
                ipv4: e.ipv4,
            })
        })
        .collect();
    RuleSet {
        mappings,
        endpoints,
        networks: networks
            .iter()
            .map(|n| NetworkRules {
                name: n.name.clone(),
                bridge: n.bridge.clone(),
                subnet: n.subnet,
                internal: n.internal,
                icc: n.icc,
                ports: if n.icc { vec![] } else { ports_of(&n.name) },
            })
            .collect(),
    }
}
