use crate::firewall::FirewallError;
use crate::ipam::IpamError;
use crate::model::{CidrError, InputError, Ipv4Net};
use crate::netlink::NetlinkError;
use crate::state::StateError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Cidr(#[from] CidrError),
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    #[error("network {0} already exists")]
    NetworkExists(String),
    #[error("network {0} not found")]
    NetworkNotFound(String),
    #[error("network {name} is in use by container(s): {}", containers.join(", "))]
    NetworkInUse {
        name: String,
        containers: Vec<String>,
    },
    #[error("subnet {subnet} overlaps subnet {other} of network {network}")]
    OverlapsNetwork {
        subnet: Ipv4Net,
        other: Ipv4Net,
        network: String,
    },
    #[error("subnet {subnet} overlaps {what} on the host")]
    OverlapsHost { subnet: Ipv4Net, what: String },
    #[error("network name {0} is reserved")]
    ReservedName(String),
    #[error("cannot set {path}: {source}")]
    Sysctl {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the container end {0} of the new veth pair is missing from the container's namespace"
    )]
    PeerMissing(String),
    #[error("{0}; also failed to undo: {1}")]
    UndoFailed(Box<EngineError>, Box<EngineError>),
}
