//! Listing sockets over sock_diag netlink (`NETLINK_SOCK_DIAG`, `SOCK_DIAG_BY_FAMILY`).
//!
//! One dump per protocol and address family, each an `inet_diag_req_v2` answered by one
//! `inet_diag_msg` per socket (include/uapi/linux/inet_diag.h). The kernel answers with the
//! sockets of the netlink socket's own network namespace, which is the namespace of the thread
//! that opened it. Asking TCP for LISTEN alone makes the kernel walk only its listening hash
//! (net/ipv4/inet_diag.c, `inet_diag_dump_icsk` skips the established table when no other
//! state is asked for), where reading /proc/net/tcp walks every bucket of the established
//! table, which all namespaces share.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{
    DoneBuffer, Emitable, ErrorBuffer, NetlinkBuffer, NetlinkHeader, NLMSG_DONE, NLMSG_ERROR,
    NLMSG_NOOP, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket as NetlinkSocket, SocketAddr};

use super::{HostSocketsError, Socket};
use crate::model::Protocol;

/// `SOCK_DIAG_BY_FAMILY`, include/uapi/linux/sock_diag.h.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `TCP_LISTEN`, include/net/tcp_states.h.
const TCP_LISTEN: u32 = 10;
/// `sizeof(struct nlmsghdr)`, include/uapi/linux/netlink.h.
const NLMSG_HDRLEN: usize = 16;
/// `sizeof(struct inet_diag_req_v2)`: family, protocol, extensions, pad, the states as a
/// bit mask, then a 48-byte `inet_diag_sockid` (all zero: any socket).
const REQ_LEN: usize = 56;
pub(super) const REQUEST_LEN: usize = NLMSG_HDRLEN + REQ_LEN;
/// `sizeof(struct inet_diag_msg)`; attributes may follow, none is asked for or read.
const MSG_LEN: usize = 72;
/// Where `inet_diag_msg` keeps `id.idiag_sport` (big endian) and `id.idiag_src` (network
/// order, the first 4 bytes for IPv4).
const MSG_SPORT: usize = 4;
const MSG_SRC: usize = 8;
/// A dump's datagrams hold at most 32 KiB (`netlink_recvmsg` caps the size it lets a dump
/// grow to); a receive buffer twice that never truncates one. Anything larger is an error.
const RECV_BUF_LEN: usize = 64 * 1024;

/// What one dump asks for: an address family, a transport protocol, a mask of TCP states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Query {
    pub family: u8,
    pub protocol: u8,
    pub states: u32,
}

impl Query {
    /// TCP sockets in LISTEN.
    pub fn tcp_listening(family: i32) -> Query {
        Query::new(family, libc::IPPROTO_TCP, 1 << TCP_LISTEN)
    }

    /// UDP sockets in any state: a bound one is CLOSE, a connected one ESTABLISHED, and
    /// both hold their port.
    pub fn udp_bound(family: i32) -> Query {
        Query::new(family, libc::IPPROTO_UDP, u32::MAX)
    }

    /// Family and protocol are the kernel's small constants (AF_*, IPPROTO_* below 256).
    pub fn new(family: i32, protocol: i32, states: u32) -> Query {
        Query {
            family: family as u8,
            protocol: protocol as u8,
            states,
        }
    }

    /// The `nlmsghdr` and `inet_diag_req_v2` of this dump, sent as `seq`.
    pub fn request(self, seq: u32) -> [u8; REQUEST_LEN] {
        let mut bytes = [0; REQUEST_LEN];
        let mut header = NetlinkHeader::default();
        header.length = REQUEST_LEN as u32;
        header.message_type = SOCK_DIAG_BY_FAMILY;
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        header.sequence_number = seq;
        header.emit(&mut bytes[..NLMSG_HDRLEN]);
        let req = &mut bytes[NLMSG_HDRLEN..];
        req[0] = self.family;
        req[1] = self.protocol;
        // req[2] (idiag_ext): no extensions; req[3] is padding.
        req[4..8].copy_from_slice(&self.states.to_ne_bytes());
        bytes
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match i32::from(self.protocol) {
            libc::IPPROTO_TCP => f.write_str("TCP")?,
            libc::IPPROTO_UDP => f.write_str("UDP")?,
            other => write!(f, "protocol {other}")?,
        }
        match i32::from(self.family) {
            libc::AF_INET => f.write_str("/IPv4"),
            libc::AF_INET6 => f.write_str("/IPv6"),
            other => write!(f, "/family {other}"),
        }
    }
}

/// Why a dump's reply could not be read.
#[derive(Debug)]
pub(super) enum Failure {
    /// The kernel ended the dump with this errno.
    Kernel(i32),
    Malformed(String),
}

/// A netlink socket of the `NETLINK_SOCK_DIAG` family, in the calling thread's namespace.
pub(super) struct Diag {
    socket: NetlinkSocket,
    /// The port the kernel gave this socket; replies to our requests carry it.
    port: u32,
    seq: u32,
    buf: Vec<u8>,
}

impl Diag {
    /// `EPROTONOSUPPORT` means the kernel has no sock_diag at all.
    pub fn open() -> io::Result<Diag> {
        let mut socket = NetlinkSocket::new(NETLINK_SOCK_DIAG)?;
        let addr = socket.bind_auto()?;
        // Connected to the kernel (port 0): nothing but the kernel's replies can arrive.
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Diag {
            socket,
            port: addr.port_number(),
            seq: 0,
            buf: Vec::with_capacity(RECV_BUF_LEN),
        })
    }

    /// Append to `out` the sockets `query` asks for.
    pub fn dump(
        &mut self,
        query: Query,
        protocol: Protocol,
        out: &mut Vec<Socket>,
    ) -> Result<(), HostSocketsError> {
        let dump_error = |source| HostSocketsError::Dump {
            what: query.to_string(),
            source,
        };
        self.seq = self.seq.wrapping_add(1);
        let request = query.request(self.seq);
        retry_eintr(|| self.socket.send(&request, 0)).map_err(dump_error)?;
        loop {
            let size = self.receive().map_err(dump_error)?;
            if size > self.buf.len() {
                let reason = format!(
                    "a reply of {size} bytes did not fit the {RECV_BUF_LEN}-byte receive buffer"
                );
                return Err(malformed(query, reason));
            }
            match read_datagram(&self.buf, self.port, self.seq, protocol, out) {
                Ok(false) => {}
                Ok(true) => return Ok(()),
                Err(Failure::Kernel(errno)) => {
                    return Err(dump_error(io::Error::from_raw_os_error(errno)))
                }
                Err(Failure::Malformed(reason)) => return Err(malformed(query, reason)),
            }
        }
    }

    /// One datagram into `self.buf`. Returns its real size (MSG_TRUNC), larger than what
    /// was kept if it did not fit.
    fn receive(&mut self) -> io::Result<usize> {
        self.buf.clear();
        retry_eintr(|| self.socket.recv(&mut self.buf, libc::MSG_TRUNC))
    }
}

fn malformed(query: Query, reason: String) -> HostSocketsError {
    HostSocketsError::Malformed {
        what: query.to_string(),
        reason,
    }
}

/// Add the sockets of one datagram's replies to `seq` to `out`. True once the dump's end
/// (NLMSG_DONE) was read. Messages of another sequence number are left over from an
/// earlier dump and skipped.
pub(super) fn read_datagram(
    buf: &[u8],
    port: u32,
    seq: u32,
    protocol: Protocol,
    out: &mut Vec<Socket>,
) -> Result<bool, Failure> {
    let mut rest = buf;
    while !rest.is_empty() {
        let message = NetlinkBuffer::new_checked(rest)
            .map_err(|e| Failure::Malformed(format!("undecodable message: {e}")))?;
        let len = message.length() as usize;
        let body = &rest[NLMSG_HDRLEN..len];
        if message.sequence_number() == seq && message.port_number() == port {
            match message.message_type() {
                SOCK_DIAG_BY_FAMILY => out.push(parse_msg(body, protocol)?),
                NLMSG_DONE => return done(body).map(|()| true),
                NLMSG_ERROR => return error(body).map(|()| true),
                NLMSG_NOOP => {}
                other => return Err(Failure::Malformed(format!("message of type {other}"))),
            }
        }
        // Messages are padded to 4 bytes (NLMSG_ALIGN); the last one may not be.
        rest = rest.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
    Ok(false)
}

/// The socket an `inet_diag_msg` describes: its local address and port.
pub(super) fn parse_msg(body: &[u8], protocol: Protocol) -> Result<Socket, Failure> {
    let msg = body.get(..MSG_LEN).ok_or_else(|| {
        Failure::Malformed(format!(
            "an inet_diag_msg of {} bytes, shorter than {MSG_LEN}",
            body.len()
        ))
    })?;
    let port = u16::from_be_bytes([msg[MSG_SPORT], msg[MSG_SPORT + 1]]);
    let src = &msg[MSG_SRC..MSG_SRC + 16];
    let addr = match i32::from(msg[0]) {
        libc::AF_INET => IpAddr::V4(Ipv4Addr::new(src[0], src[1], src[2], src[3])),
        // Kept as the kernel has it, V4-mapped or not, as /proc/net/tcp6 shows it.
        libc::AF_INET6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(src).expect("16 bytes"))),
        other => {
            return Err(Failure::Malformed(format!(
                "a socket of address family {other}"
            )))
        }
    };
    Ok(Socket {
        protocol,
        addr,
        port,
    })
}

/// NLMSG_DONE carries the dump's status: 0, or a negative errno.
fn done(body: &[u8]) -> Result<(), Failure> {
    let done = DoneBuffer::new_checked(body)
        .map_err(|e| Failure::Malformed(format!("undecodable end of dump: {e}")))?;
    match done.code() {
        0.. => Ok(()),
        code => Err(Failure::Kernel(-code)),
    }
}

/// A dump refused before it started ends with an NLMSG_ERROR instead (code 0 would be an
/// ack, never asked for, so taken as the end).
fn error(body: &[u8]) -> Result<(), Failure> {
    let error = ErrorBuffer::new_checked(body)
        .map_err(|e| Failure::Malformed(format!("undecodable error: {e}")))?;
    match error.code() {
        None => Ok(()),
        Some(code) => Err(Failure::Kernel(code.get().abs())),
    }
}

fn retry_eintr(mut call: impl FnMut() -> io::Result<usize>) -> io::Result<usize> {
    loop {
        match call() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => return result,
        }
    }
}
