//! Containers: the records, processes and endpoints behind `pont run`, `stop`,
//! `start`, `rm` and `exec`. It joins the container module (processes) to the
//! engine (networking), and holds the monitor: the pont process that is the
//! parent of a container's init, waits for it and cleans up when it exits.

mod error;
mod etc_files;
mod host_sockets;
mod lifecycle;
mod limits;
mod names;
mod ports;
mod reconcile;
mod run;
mod system;

pub use error::RuntimeError;
pub use host_sockets::HostSocketsError;
pub use limits::ContainerStats;
pub use run::{NetworkChoice, RunRequest};
pub use system::Finding;

use std::cell::OnceCell;

use crate::cgroup::Cgroups;
use crate::engine::Engine;
use crate::model::ContainerRecord;

pub struct Runtime {
    engine: Engine,
    /// Opened on first use: most commands never touch a cgroup.
    cgroups: OnceCell<Cgroups>,
}

impl Runtime {
    pub fn new(engine: Engine) -> Runtime {
        Runtime {
            engine,
            cgroups: OnceCell::new(),
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn container(&self, key: &str) -> Result<ContainerRecord, RuntimeError> {
        self.engine
            .store()
            .find_container(key)?
            .ok_or_else(|| RuntimeError::NotFound(key.to_string()))
    }
}
