//! Sockets bound on the host, so a published port never shadows one: TCP sockets in LISTEN
//! and every bound UDP socket, IPv4 and IPv6, of the calling thread's network namespace
//! (pont's host).
//!
//! They come from sock_diag netlink ([`diag`]). Where the kernel cannot answer that way
//! (no `NETLINK_SOCK_DIAG` at all, or no tcp_diag or udp_diag handler even after the kernel
//! tried to load its module), the protocol's /proc/net tables are read instead
//! ([`proc_net`]). Both report an IPv6 socket by its IPv6 address, V4-mapped ones included,
//! and a dual-stack `[::]` listener as unspecified, so it blocks every address.

mod diag;
mod proc_net;

#[cfg(test)]
mod kernel_tests;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::net::IpAddr;

use super::RuntimeError;
use crate::model::{PortMapping, Protocol};

use diag::{Diag, Query};

/// Why the host's sockets could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum HostSocketsError {
    #[error("cannot open a sock_diag netlink socket to list the host's sockets")]
    Open { source: io::Error },
    /// The kernel refused the dump, or sending or receiving it failed.
    #[error("cannot list the host's {what} sockets over sock_diag")]
    Dump { what: String, source: io::Error },
    #[error("cannot list the host's {what} sockets over sock_diag: {reason}")]
    Malformed { what: String, reason: String },
    #[error("cannot read {path} to list the host's sockets")]
    Read {
        path: &'static str,
        source: io::Error,
    },
}

impl HostSocketsError {
    /// The kernel has no sock_diag handler for the protocol (`ENOENT`, net/core/sock_diag.c
    /// and net/ipv4/inet_diag.c, once its module failed to load).
    fn is_unsupported(&self) -> bool {
        matches!(self, HostSocketsError::Dump { source, .. }
            if source.raw_os_error() == Some(libc::ENOENT))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Socket {
    pub protocol: Protocol,
    pub addr: IpAddr,
    pub port: u16,
}

impl Socket {
    /// Whether this socket would lose traffic to `m`: same protocol, a port in
    /// the range, and addresses that can meet.
    pub fn blocks(&self, m: &PortMapping) -> bool {
        self.protocol == m.protocol
            && m.host_ports.contains(self.port)
            && (self.addr.is_unspecified() || m.host_ip.is_none_or(|ip| ip == self.addr))
    }
}

impl fmt::Display for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            IpAddr::V6(a) => write!(f, "[{a}]:{}/{}", self.port, self.protocol),
            IpAddr::V4(a) => write!(f, "{a}:{}/{}", self.port, self.protocol),
        }
    }
}

/// TCP sockets in LISTEN and every bound UDP socket.
pub fn listening() -> Result<Vec<Socket>, RuntimeError> {
    Ok(list()?)
}

/// What to ask the kernel for one address family.
type QueryOf = fn(i32) -> Query;

/// The protocols looked at, and their dump for each address family.
const QUERIES: [(Protocol, QueryOf); 2] = [
    (Protocol::Tcp, Query::tcp_listening),
    (Protocol::Udp, Query::udp_bound),
];

fn list() -> Result<Vec<Socket>, HostSocketsError> {
    let mut diag = match Diag::open() {
        Ok(diag) => diag,
        Err(e) if e.raw_os_error() == Some(libc::EPROTONOSUPPORT) => return from_proc(),
        Err(source) => return Err(HostSocketsError::Open { source }),
    };
    let mut out = Vec::new();
    for (protocol, query) in QUERIES {
        let before = out.len();
        let dumped = [libc::AF_INET, libc::AF_INET6]
            .into_iter()
            .try_for_each(|family| diag.dump(query(family), protocol, &mut out));
        match dumped {
            Ok(()) => {}
            Err(e) if e.is_unsupported() => {
                out.truncate(before);
                proc_net::read(protocol, &mut out)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Every protocol's sockets from /proc: the kernel has no sock_diag.
fn from_proc() -> Result<Vec<Socket>, HostSocketsError> {
    let mut out = Vec::new();
    for (protocol, _) in QUERIES {
        proc_net::read(protocol, &mut out)?;
    }
    Ok(out)
}
