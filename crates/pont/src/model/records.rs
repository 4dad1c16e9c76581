//! What pont remembers about networks and containers. These are the records
//! the state module stores; everything else (address use, bridge names) is
//! derived from them.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Ipv4Net, Limits, MacAddr, PortMapping};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub name: String,
    pub id: String,
    /// The Linux bridge that is this network's switch.
    pub bridge: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    /// Container addresses are handed out only from this range (defaults to the subnet).
    pub ip_range: Option<Ipv4Net>,
    pub mtu: u32,
    /// No way out: no masquerade, no forwarding to other interfaces (enforced by the firewall).
    pub internal: bool,
    /// Inter-container communication on this bridge.
    pub icc: bool,
    /// Seconds since the Unix epoch.
    pub created: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    /// Intent recorded, kernel objects being made. A record left in this state by a
    /// process that died is rolled back by the next pont command.
    Creating,
    Running,
    Exited,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "mode", content = "network")]
pub enum NetMode {
    /// Attached to a pont network (bridge, veth, address).
    Bridge(String),
    /// Own network namespace with only loopback.
    None,
    /// The host's network namespace.
    Host,
}

/// One container's attachment to one network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub network: String,
    /// Interface name inside the container.
    pub interface: String,
    /// The veth end in the host namespace, enslaved to the bridge.
    pub host_interface: String,
    pub mac: MacAddr,
    pub ipv4: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    /// Asked for with `--ip`: kept across restarts and never handed to anyone else.
    pub static_ip: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    pub state: ContainerState,
    /// The container's init, as seen from pont's PID namespace, and its start time
    /// (clock ticks since boot) so a reused PID is never mistaken for it.
    pub pid: Option<i32>,
    pub start_time: Option<u64>,
    /// The pont process that made the container and waits for it (its monitor).
    pub monitor_pid: Option<i32>,
    pub monitor_start_time: Option<u64>,
    pub exit_code: Option<i32>,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// Nanoseconds past `created`'s second: containers made within one second still
    /// list newest first. 0 in records written before pont kept it.
    #[serde(default)]
    pub created_subsec_ns: u32,
    pub started: Option<u64>,
    pub finished: Option<u64>,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub workdir: Option<PathBuf>,
    pub rootfs: Option<PathBuf>,
    pub hostname: String,
    pub net_mode: NetMode,
    /// Requested `--ip` and `--mac`, reapplied by `pont start`.
    pub requested_ip: Option<Ipv4Addr>,
    pub requested_mac: Option<MacAddr>,
    /// The address held last time, offered again by `pont start` if still free.
    pub last_ipv4: Option<Ipv4Addr>,
    pub endpoints: Vec<Endpoint>,
    /// Published ports; kept while the container is stopped, enforced while it runs.
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    pub auto_remove: bool,
    pub detached: bool,
    /// Resource limits, enforced by the container's cgroup (made before its command runs,
    /// kept after it exits so the OOM state can be read, removed with the record).
    #[serde(default)]
    pub limits: Limits,
    /// Whether the kernel's OOM killer killed a process of the container's last run.
    #[serde(default)]
    pub oom_killed: bool,
}

impl ContainerRecord {
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }

    /// When the container was made, as (seconds, nanoseconds): sorts oldest first.
    pub fn created_at(&self) -> (u64, u32) {
        (self.created, self.created_subsec_ns)
    }
}
