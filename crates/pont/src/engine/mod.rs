//! The network engine: networks and endpoints, for any front end (the `pont`
//! CLI today, a CNI plugin later). It validates a request completely, then
//! changes the kernel step by step with an undo for each step, then commits
//! the records. It knows nothing of container processes.

mod audit;
mod endpoint;
mod error;
mod host;
mod network;

pub use audit::{is_pont_veth_name, OrphanLink};
pub use endpoint::{host_ifname, loopback_up, mac_for, AttachOptions, DEFAULT_CONTAINER_IFNAME};
pub use error::EngineError;
pub use network::{bridge_alias, NetworkCreate, DEFAULT_BRIDGE, DEFAULT_NETWORK};

use crate::firewall::{self, Backend, RuleSet};
use crate::ipam::AddressPool;
use crate::model::{ContainerRecord, ContainerState};
use crate::state::{Lock, Store};

pub struct Engine {
    store: Store,
    pools: Vec<AddressPool>,
    firewall: Backend,
}

impl Engine {
    /// Open the engine with the firewall backend asked for, else the one the
    /// state remembers, else the best one available. Asking for a backend other
    /// than the remembered one moves pont's rules to it.
    pub fn open(
        store: Store,
        pools: Vec<AddressPool>,
        requested: Option<Backend>,
    ) -> Result<Engine, EngineError> {
        let lock = store.lock()?;
        let mut settings = store.settings()?;
        let remembered = settings.firewall;
        let firewall = match requested.or(remembered) {
            Some(b) => b,
            None => Backend::detect()?,
        };
        let engine = Engine {
            store,
            pools,
            firewall,
        };
        if remembered != Some(firewall) {
            firewall.check_usable()?;
            if let Some(old) = remembered {
                // Best effort: the old backend's tools may be gone, which is
                // often why the admin switches.
                let _ = old.remove_all();
            }
            settings.firewall = Some(firewall);
            engine.store.save_settings(&lock, &settings)?;
            engine.sync_firewall(&lock)?;
        }
        Ok(engine)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn firewall(&self) -> Backend {
        self.firewall
    }

    /// The rules the records call for now.
    pub fn planned_rules(&self) -> Result<RuleSet, EngineError> {
        Ok(firewall::plan(
            &self.store.networks()?,
            &self.store.containers()?,
        ))
    }

    /// Bring pont's firewall in line with the records: one atomic transaction.
    pub fn sync_firewall(&self, _lock: &Lock) -> Result<(), EngineError> {
        Ok(self.firewall.apply(&self.planned_rules()?)?)
    }

    /// `c`'s share of the firewall rules (see [`firewall::container_rules`]):
    /// reads only the records of the networks it is on.
    pub fn rules_of(&self, c: &ContainerRecord) -> Result<RuleSet, EngineError> {
        let mut icc = std::collections::BTreeMap::new();
        for ep in &c.endpoints {
            let net = self.store.network(&ep.network)?;
            icc.insert(ep.network.clone(), net.is_none_or(|n| n.icc));
        }
        Ok(firewall::container_rules(c, |name| {
            icc.get(name).copied().unwrap_or(true)
        }))
    }

    /// Turn one container's share of the installed rules from `before` into
    /// `after` (both from [`Engine::rules_of`]), once its record says `after`.
    /// If the backend refuses the change (rules flushed or edited under pont)
    /// the whole rule set is rewritten from the records.
    pub fn change_container_rules(
        &self,
        lock: &Lock,
        before: &RuleSet,
        after: &RuleSet,
    ) -> Result<(), EngineError> {
        if before == after {
            return Ok(());
        }
        match self.firewall.apply_container_change(before, after) {
            Ok(()) => Ok(()),
            Err(_) => self.sync_firewall(lock),
        }
    }

    /// Sync only if the rules differ from `before` (what they were when the
    /// caller started): for network changes, which compare whole rule sets.
    pub fn sync_firewall_if_changed(
        &self,
        lock: &Lock,
        before: &RuleSet,
    ) -> Result<(), EngineError> {
        let after = self.planned_rules()?;
        if &after != before {
            self.firewall.apply_change(before, &after)?;
        }
        let _ = lock;
        Ok(())
    }

    /// Rebuild pont's rules if someone flushed them (`nft flush ruleset`,
    /// `iptables -F`). The check reads the network records and the allocation
    /// index, not the container records: it runs on every command.
    pub fn repair_firewall(&self, lock: &Lock) -> Result<(), EngineError> {
        let networks: Vec<_> = self
            .store
            .networks()?
            .iter()
            .map(firewall::network_rules)
            .collect();
        let endpoints = self.store.allocation_count()?;
        if !self.firewall.is_installed(&networks, endpoints)? {
            self.sync_firewall(lock)?;
        }
        Ok(())
    }

    /// Names of the containers that hold an endpoint on `network`.
    fn attached_containers(&self, network: &str) -> Result<Vec<String>, EngineError> {
        Ok(self
            .store
            .containers()?
            .into_iter()
            .filter(|c| c.state != ContainerState::Exited)
            .filter(|c| c.endpoints.iter().any(|e| e.network == network))
            .map(|c| c.name)
            .collect())
    }
}
