//! The types pont reasons about, and the checks every request passes before
//! anything in the kernel is touched.

mod cidr;
mod names;
mod ports;
mod records;

pub use cidr::{CidrError, Ipv4Net};
pub use names::{validate_mac, validate_mtu, validate_name, InputError, MacAddr};
pub use ports::{PortMapping, PortRange, PortSpec, PortSpecError, Protocol};
pub use records::{ContainerRecord, ContainerState, Endpoint, NetMode, NetworkRecord};
