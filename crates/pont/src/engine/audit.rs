//! Records against the kernel: rolling back network creations a crash cut
//! short, rebuilding bridges the kernel lost (a reboot), and finding the
//! links pont owns that no record explains.
//!
//! Ownership is positive, never guessed from a name alone: a bridge is pont's
//! if a record names it or it carries pont's alias ([`super::bridge_alias`]);
//! Docker names its bridges `br-` + 12 hex digits too, and those are left alone.
//! A veth is pont's if it is named `veth` + 11 hex digits (pont's scheme,
//! [`super::host_ifname`]) and is a port of a pont bridge or of no bridge.

use std::collections::BTreeSet;

use super::network::BRIDGE_ALIAS_PREFIX;
use super::{Engine, EngineError};
use crate::netlink::{Link, Netlink};
use crate::state::Lock;

/// A link of pont's that no record explains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrphanLink {
    Bridge(String),
    Veth(String),
}

impl Engine {
    /// Run at the start of every command: undo the network creations whose
    /// process died (bridge, record and intent), then make sure every
    /// recorded network has its bridge. Returns what it changed, for reports.
    pub fn recover_networks(&self, lock: &Lock) -> Result<Vec<String>, EngineError> {
        let mut done = Vec::new();
        let intents = self.store.network_intents()?;
        let networks = self.store.networks()?;
        if intents.is_empty() && networks.is_empty() {
            return Ok(done);
        }
        let mut nl = Netlink::open()?;
        for net in intents {
            if let Some(link) = nl.link_by_name(&net.bridge)? {
                nl.delete_link(link.index)?;
            }
            if networks.iter().any(|n| n.id == net.id) {
                self.store.remove_network(lock, &net.name)?;
            }
            self.store.clear_network_intent(lock, &net.name)?;
            done.push(format!("rolled back the creation of network {}", net.name));
        }
        // One lookup by name per network, not a dump of every link: the host
        // has one veth per container.
        for net in self.store.networks()? {
            if nl.link_by_name(&net.bridge)?.is_none() {
                self.ensure_bridge(&mut nl, &net)?;
                done.push(format!(
                    "rebuilt bridge {} of network {}",
                    net.bridge, net.name
                ));
            }
        }
        Ok(done)
    }

    /// Recorded networks whose bridge the kernel does not have: (network, bridge).
    pub fn missing_bridges(&self, nl: &mut Netlink) -> Result<Vec<(String, String)>, EngineError> {
        let links = nl.links()?;
        Ok(self
            .store
            .networks()?
            .into_iter()
            .filter(|n| !links.iter().any(|l| l.name == n.bridge))
            .map(|n| (n.name, n.bridge))
            .collect())
    }

    /// pont's links that no record explains; `live_veths` are the host ends
    /// of the endpoints of containers that are not exited.
    pub fn orphan_links(
        &self,
        nl: &mut Netlink,
        live_veths: &BTreeSet<String>,
    ) -> Result<Vec<OrphanLink>, EngineError> {
        let links = nl.links()?;
        let recorded: BTreeSet<String> = self
            .store
            .networks()?
            .into_iter()
            .chain(self.store.network_intents()?)
            .map(|n| n.bridge)
            .collect();
        let is_pont_bridge = |l: &Link| {
            l.kind.as_deref() == Some("bridge")
                && (recorded.contains(&l.name)
                    || l.alias
                        .as_deref()
                        .is_some_and(|a| a.starts_with(BRIDGE_ALIAS_PREFIX)))
        };
        let pont_bridges: BTreeSet<u32> = links
            .iter()
            .filter(|l| is_pont_bridge(l))
            .map(|l| l.index)
            .collect();
        let mut orphans = Vec::new();
        for l in &links {
            if is_pont_bridge(l) && !recorded.contains(&l.name) {
                orphans.push(OrphanLink::Bridge(l.name.clone()));
            }
            let on_pont_bridge = l.master.is_none_or(|m| pont_bridges.contains(&m));
            if l.kind.as_deref() == Some("veth")
                && is_pont_veth_name(&l.name)
                && on_pont_bridge
                && !live_veths.contains(&l.name)
            {
                orphans.push(OrphanLink::Veth(l.name.clone()));
            }
        }
        Ok(orphans)
    }

    /// Delete orphans found by [`Engine::orphan_links`]; already gone is fine.
    pub fn remove_orphan(&self, nl: &mut Netlink, orphan: &OrphanLink) -> Result<(), EngineError> {
        let (OrphanLink::Bridge(name) | OrphanLink::Veth(name)) = orphan;
        if let Some(link) = nl.link_by_name(name)? {
            nl.delete_link(link.index)?;
        }
        Ok(())
    }
}

/// `veth` + 11 lowercase hex digits: how [`super::host_ifname`] names host ends.
pub fn is_pont_veth_name(name: &str) -> bool {
    name.strip_prefix("veth").is_some_and(|hex| {
        hex.len() == 11 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_names_of_pont_only() {
        assert!(is_pont_veth_name("veth0123456789a"));
        assert!(!is_pont_veth_name("veth0123456")); // Docker: 7 hex digits
        assert!(!is_pont_veth_name("veth0123456789A"));
        assert!(!is_pont_veth_name("veth0123456789ab"));
        assert!(!is_pont_veth_name("eth0"));
    }
}
