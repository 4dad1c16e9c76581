//! rtnetlink: links, addresses and routes, synchronously, one socket per network namespace.
//!
//! This is the only place pont talks to the kernel's routing netlink. There are no `ip`
//! child processes and no async runtime: a [`Netlink`] owns one blocking `NETLINK_ROUTE`
//! socket, numbers every request, and waits for the kernel's acknowledgement (or the end of a
//! dump) before it returns.
//!
//! A netlink socket acts on the network namespace in which it was created, whatever thread
//! later uses it. [`Netlink::open_in`] exploits that: a short-lived thread enters the target
//! namespace, opens the socket there and hands it back, so the caller's thread never switches.
//!
//! Files: `socket` (the raw socket: open, send, receive), `exchange` (request/ack and dump
//! with sequence numbers, error decoding), `link`, `addr`, `route` (the operations),
//! `netns` (sockets in other namespaces), `error`.

mod addr;
mod error;
mod exchange;
mod link;
mod netns;
mod route;
mod socket;

#[cfg(test)]
pub(crate) mod tests;

use std::net::IpAddr;

pub use error::{NetlinkError, Op};
pub use netns::netns_of_pid;
pub use socket::Netlink;

/// One network interface, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `IFLA_INFO_KIND`: `"bridge"`, `"veth"`, ...; `None` for plain devices such as `lo`.
    pub kind: Option<String>,
    /// Index of the bridge (or other controller) this link is a port of.
    pub master: Option<u32>,
    pub mtu: u32,
    /// Administratively up (`IFF_UP`); says nothing about carrier.
    pub up: bool,
    /// Hardware address, when it is an Ethernet-sized one.
    pub mac: Option<[u8; 6]>,
    /// `IFLA_IFALIAS`, if one is set.
    pub alias: Option<String>,
}

/// One IPv4 or IPv6 address on an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    pub index: u32,
    pub addr: IpAddr,
    pub prefix_len: u8,
}

/// One unicast route of the main table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Destination prefix; `None` is the default route.
    pub dst: Option<(IpAddr, u8)>,
    pub gateway: Option<IpAddr>,
    /// Output interface index.
    pub oif: Option<u32>,
}
