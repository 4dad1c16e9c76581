use super::host_sockets::HostSocketsError;
use crate::cgroup::CgroupError;
use crate::container::ContainerError;
use crate::engine::EngineError;
use crate::firewall::conntrack::ConntrackError;
use crate::model::LimitsError;
use crate::netlink::NetlinkError;
use crate::state::StateError;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Limits(#[from] LimitsError),
    #[error(transparent)]
    HostSockets(#[from] HostSocketsError),
    #[error("container {0} has no cgroup (it was started before pont made cgroups): restart it")]
    NoCgroup(String),
    #[error("no such container: {0}")]
    NotFound(String),
    #[error("container name {0} is already in use")]
    NameInUse(String),
    #[error("container {0} is running: stop it first or use rm -f")]
    Running(String),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("container {0} is already running")]
    AlreadyRunning(String),
    #[error("{0}")]
    Invalid(String),
    /// Another container's mapping holds the host port.
    #[error("{0}")]
    PortPublished(String),
    /// The monitor itself could not be set up, or died without saying why.
    #[error("the detached monitor failed: {0}")]
    Monitor(String),
    /// The mapping change is made; only the old flows could not be forgotten.
    #[error("{done}, but could not delete the stale connection tracking entries: {source}")]
    StaleFlows {
        done: String,
        source: ConntrackError,
    },
    /// The monitor's launch failed; the text is that error with its sources, as the
    /// monitor reported it over the pipe (the error itself cannot cross the fork).
    #[error("{0}")]
    Launch(String),
}

impl RuntimeError {
    /// The request collides with what another container holds (its name,
    /// address or host port). That container may have died unnoticed: worth
    /// a full reconciliation and one more try.
    pub(super) fn is_conflict(&self) -> bool {
        use crate::ipam::IpamError;
        matches!(
            self,
            RuntimeError::NameInUse(_)
                | RuntimeError::PortPublished(_)
                | RuntimeError::Engine(EngineError::Ipam(
                    IpamError::AddressInUse { .. } | IpamError::Exhausted { .. }
                ))
        )
    }
}

impl From<StateError> for RuntimeError {
    fn from(e: StateError) -> Self {
        RuntimeError::Engine(e.into())
    }
}

impl From<NetlinkError> for RuntimeError {
    fn from(e: NetlinkError) -> Self {
        RuntimeError::Engine(e.into())
    }
}

impl From<crate::firewall::FirewallError> for RuntimeError {
    fn from(e: crate::firewall::FirewallError) -> Self {
        RuntimeError::Engine(e.into())
    }
}
