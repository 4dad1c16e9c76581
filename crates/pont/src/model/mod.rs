//! The types pont reasons about, and the checks every request passes before
//! anything in the kernel is touched.

mod cidr;
mod limits;
mod names;
mod ports;
mod records;

pub use cidr::{CidrError, Ipv4Net};
pub use limits::{
    cpu_quota_us, online_cpus, parse_cpu_shares, parse_cpus, parse_memory_swap, parse_pids_limit,
    parse_size, Limits, LimitsError, MemorySwap, CPU_PERIOD_US,
};
pub use names::{validate_mac, validate_mtu, validate_name, InputError, MacAddr};
pub use ports::{PortMapping, PortRange, PortSpec, PortSpecError, Protocol};
pub use records::{ContainerRecord, ContainerState, Endpoint, NetMode, NetworkRecord};
