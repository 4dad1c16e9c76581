//! The types pont reasons about, and the checks every request passes before
//! anything in the kernel is touched.

mod cidr;
mod limit_parse;
mod limits;
mod names;
mod ports;
mod records;

pub use cidr::{CidrError, Ipv4Net};
pub use limit_parse::{
    parse_cpu_shares, parse_cpus, parse_memory_swap, parse_pids_limit, parse_size, LimitTexts,
};
pub use limits::{
    cpu_quota_us, format_size, online_cpus, LimitOption, Limits, LimitsError, MemorySwap,
    CPU_PERIOD_US,
};
pub use names::{validate_mac, validate_mtu, validate_name, InputError, MacAddr};
pub use ports::{PortMapping, PortRange, PortSpec, PortSpecError, Protocol};
pub use records::{ContainerRecord, ContainerState, Endpoint, NetMode, NetworkRecord};
