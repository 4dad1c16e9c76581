//! From records to the rules that should exist. Pure, so tests compare exact output.

use crate::model::{Ipv4Net, NetworkRecord};

/// Everything pont's firewall must do, in backend-neutral terms.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RuleSet {
    pub networks: Vec<NetworkRules>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkRules {
    pub name: String,
    pub bridge: String,
    pub subnet: Ipv4Net,
    /// Masquerade traffic that leaves through any interface other than the bridge.
    pub masquerade: bool,
}

pub fn plan(networks: &[NetworkRecord]) -> RuleSet {
    RuleSet {
        networks: networks
            .iter()
            .map(|n| NetworkRules {
                name: n.name.clone(),
                bridge: n.bridge.clone(),
                subnet: n.subnet,
                masquerade: !n.internal,
            })
            .collect(),
    }
}
