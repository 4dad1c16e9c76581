//! pont: container networking from Linux primitives.
//!
//! The data flows through the modules in this order:
//! request ([`model`]) → validation ([`model`], [`ipam`]) → plan ([`firewall`])
//! → apply ([`netlink`], [`firewall`]) → commit ([`state`]).
//! [`container`] spawns the processes; it is used only by the `pont` CLI.

pub mod container;
pub mod firewall;
pub mod netlink;
