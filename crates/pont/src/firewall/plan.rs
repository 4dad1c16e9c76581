//! From records to the rules that should exist. Pure, so tests compare exact output.

use crate::model::{ContainerRecord, ContainerState, Ipv4Net, NetworkRecord};

/// Everything pont's firewall must enforce, in backend-neutral terms.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RuleSet {
    pub networks: Vec<NetworkRules>,
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
    RuleSet {
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
