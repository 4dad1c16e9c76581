//! The netlink module's error type.
//!
//! Every variant names what was attempted and on what; the kernel's errno stays available as
//! the `source()` (an [`std::io::Error`]) and through [`NetlinkError::errno`]. The message does
//! not repeat the source: print the whole chain (`anyhow`'s `{:#}`) to see both.

use std::{fmt, io};

/// The operation a request performed; the first words of its error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    GetLink,
    DumpLinks,
    CreateBridge,
    CreateVeth,
    SetMaster,
    SetUp,
    SetMtu,
    SetHairpin,
    SetAlias,
    SetAddrGenMode,
    SetMulticastSnooping,
    DeleteLink,
    AddAddress,
    DumpAddresses,
    AddRoute,
    DumpRoutes,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::GetLink => "get link",
            Op::DumpLinks => "dump links",
            Op::CreateBridge => "create bridge",
            Op::CreateVeth => "create veth",
            Op::SetMaster => "set master of",
            Op::SetUp => "set up",
            Op::SetMtu => "set mtu of",
            Op::SetHairpin => "set hairpin mode of",
            Op::SetAlias => "set alias of",
            Op::SetAddrGenMode => "set IPv6 address generation mode of",
            Op::SetMulticastSnooping => "set multicast snooping of",
            Op::DeleteLink => "delete link",
            Op::AddAddress => "add address",
            Op::DumpAddresses => "dump addresses",
            Op::AddRoute => "add route",
            Op::DumpRoutes => "dump routes",
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetlinkError {
    /// Creating, binding or connecting the netlink socket failed.
    #[error("netlink: open socket")]
    Socket { source: io::Error },

    /// The helper thread of [`super::Netlink::open_in`] could not start or enter the namespace.
    #[error("netlink: enter network namespace to open a socket there")]
    EnterNetns { source: io::Error },

    /// `/proc/PID/ns/net` could not be opened.
    #[error("netlink: open network namespace of process {pid}")]
    OpenNetns { pid: i32, source: io::Error },

    /// The kernel refused the request (its errno is the source), or sending or receiving it
    /// failed. `detail` is the kernel's extended-ack text, when it gave one.
    #[error("netlink: {op} {target}{}", detail_suffix(.detail))]
    Request {
        op: Op,
        target: String,
        detail: Option<String>,
        source: io::Error,
    },

    /// A reply could not be decoded, or did not follow the protocol.
    #[error("netlink: {op} {target}: {reason}")]
    Protocol {
        op: Op,
        target: String,
        reason: String,
    },

    /// The request cannot be expressed (checked before anything is sent).
    #[error("netlink: {op} {target}: {reason}")]
    Invalid {
        op: Op,
        target: String,
        reason: &'static str,
    },
}

fn detail_suffix(detail: &Option<String>) -> String {
    match detail {
        Some(text) => format!(" ({text})"),
        None => String::new(),
    }
}

impl NetlinkError {
    /// The kernel's (or a system call's) errno, if this error carries one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Socket { source }
            | NetlinkError::EnterNetns { source }
            | NetlinkError::OpenNetns { source, .. }
            | NetlinkError::Request { source, .. } => source.raw_os_error(),
            NetlinkError::Protocol { .. } | NetlinkError::Invalid { .. } => None,
        }
    }

    /// The object to be created exists already (`EEXIST`).
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(libc::EEXIST)
    }

    /// The object acted on does not exist: no such device (`ENODEV`), no such file, e.g. a
    /// process's namespace (`ENOENT`), or no such route (`ESRCH`).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.errno(),
            Some(libc::ENODEV | libc::ENOENT | libc::ESRCH)
        )
    }
}
