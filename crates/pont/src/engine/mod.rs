//! The network engine: networks and endpoints, for any front end (the `pont`
//! CLI today, a CNI plugin later). It validates a request completely, then
//! changes the kernel step by step with an undo for each step, then commits
//! the records. It knows nothing of container processes.

mod endpoint;
mod error;
mod host;
mod network;

pub use endpoint::{host_ifname, loopback_up, AttachOptions, DEFAULT_CONTAINER_IFNAME};
pub use error::EngineError;
pub use network::{NetworkCreate, DEFAULT_BRIDGE, DEFAULT_NETWORK};

use crate::firewall;
use crate::ipam::AddressPool;
use crate::model::ContainerState;
use crate::state::{Lock, Store};

pub struct Engine {
    store: Store,
    pools: Vec<AddressPool>,
}

impl Engine {
    pub fn new(store: Store, pools: Vec<AddressPool>) -> Engine {
        Engine { store, pools }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Bring pont's firewall in line with the records: one atomic transaction.
    pub fn sync_firewall(&self, _lock: &Lock) -> Result<(), EngineError> {
        let networks = self.store.networks()?;
        if networks.is_empty() {
            firewall::remove_all()?;
        } else {
            firewall::apply(&firewall::plan(&networks))?;
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
