//! The ctnetlink messages the cleanup needs (nfnetlink subsystem
//! NFNL_SUBSYS_CTNETLINK; include/uapi/linux/netfilter/nfnetlink_conntrack.h):
//! a dump of the IPv4 entries (IPCTNL_MSG_CT_GET with NLM_F_DUMP), narrowed
//! by the kernel where it can, and the deletion of one entry named by its
//! original tuple and id (IPCTNL_MSG_CT_DELETE).
//!
//! Numbers inside tuples (addresses, ports, the id, the zone) are in network
//! byte order; the filter's flag words are in host order (NLA_U32).

use std::fmt;
use std::net::Ipv4Addr;

use crate::firewall::nfnl::attr::{self, Writer};
use crate::firewall::nfnl::{Nfnl, NfnlError, Subsystem, NFPROTO_IPV4};
use crate::model::Protocol;

use super::Flow;

/// enum cntl_msg_types.
const IPCTNL_MSG_CT_GET: u8 = 1;
const IPCTNL_MSG_CT_DELETE: u8 = 2;

/// enum ctattr_type.
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_ID: u16 = 12;
const CTA_ZONE: u16 = 18;
const CTA_FILTER: u16 = 25;
/// enum ctattr_tuple.
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
/// enum ctattr_ip.
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
/// enum ctattr_l4proto.
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;
/// enum ctattr_filter.
const CTA_FILTER_ORIG_FLAGS: u16 = 1;
const CTA_FILTER_REPLY_FLAGS: u16 = 2;
/// CTA_FILTER_FLAG_*: which fields of a filter tuple must match.
const FILTER_IP_SRC: u32 = 1 << 0;
const FILTER_PROTO_NUM: u32 = 1 << 3;

/// One direction of a tracked flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuple {
    pub protocol: Protocol,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
}

impl fmt::Display for Tuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Tuple {
            protocol,
            src,
            dst,
            sport,
            dport,
        } = self;
        write!(f, "{protocol} {src}:{sport} -> {dst}:{dport}")
    }
}

/// A conntrack entry as listed: what the choice looks at, and what names the
/// entry exactly to delete it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub flow: Flow,
    pub orig: Tuple,
    /// The kernel's id of the entry (CTA_ID): a deletion naming it cannot hit
    /// a newer entry that took the same tuple after the listing.
    pub id: Option<u32>,
    /// The entry's zone (CTA_ZONE), absent for the default zone 0.
    pub zone: Option<u16>,
}

/// What the kernel is asked to keep in a dump. Kernels before Linux 5.8 do
/// not know CTA_FILTER and ignore it (nfnetlink parses leniently), so the
/// choice never relies on it: it only spares reading entries that cannot be
/// chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Narrowing {
    /// Every IPv4 entry.
    None,
    /// Entries whose replies come from this address: flows to it, translated or not.
    ReplyFrom(Ipv4Addr),
    /// Entries of this protocol.
    Protocol(Protocol),
}

/// The IPv4 entries that `narrowing` keeps (or more, see [`Narrowing`]), of
/// the protocols pont maps. A kernel that refuses the filter (EINVAL,
/// EOPNOTSUPP: a filter it cannot parse) is asked again for every entry.
pub fn list(nl: &mut Nfnl, narrowing: Narrowing) -> Result<Vec<Entry>, NfnlError> {
    let dump = |nl: &mut Nfnl, n| {
        let body = dump_request(n);
        nl.dump_in(Subsystem::Conntrack, IPCTNL_MSG_CT_GET, NFPROTO_IPV4, &body)
    };
    let answers = match dump(nl, narrowing) {
        Err(e) if narrowing != Narrowing::None && refuses_filter(&e) => dump(nl, Narrowing::None)?,
        answers => answers?,
    };
    Ok(answers.iter().filter_map(|a| parse_entry(a)).collect())
}

fn refuses_filter(error: &NfnlError) -> bool {
    matches!(error.errno(), Some(libc::EINVAL | libc::EOPNOTSUPP))
}

/// Delete `entry`. `Ok(false)`: it was gone already (ENOENT; it ended, or its
/// id now belongs to no entry of that tuple).
pub fn delete(nl: &mut Nfnl, entry: &Entry) -> Result<bool, NfnlError> {
    let body = delete_request(entry);
    match nl.request(
        Subsystem::Conntrack,
        IPCTNL_MSG_CT_DELETE,
        NFPROTO_IPV4,
        &body,
    ) {
        Ok(_) => Ok(true),
        Err(e) if e.errno() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The attributes of a dump request: none, or a filter (CTA_FILTER) and the
/// tuple whose flagged fields entries must match.
pub fn dump_request(narrowing: Narrowing) -> Vec<u8> {
    let mut w = Writer::default();
    let (direction, flags) = match narrowing {
        Narrowing::None => return Vec::new(),
        Narrowing::ReplyFrom(src) => {
            let tuple = w.begin_nest(CTA_TUPLE_REPLY);
            let ip = w.begin_nest(CTA_TUPLE_IP);
            w.put(CTA_IP_V4_SRC, &src.octets());
            w.end_nest(ip);
            w.end_nest(tuple);
            (CTA_FILTER_REPLY_FLAGS, FILTER_IP_SRC)
        }
        Narrowing::Protocol(protocol) => {
            let tuple = w.begin_nest(CTA_TUPLE_ORIG);
            let proto = w.begin_nest(CTA_TUPLE_PROTO);
            w.put(CTA_PROTO_NUM, &[proto_number(protocol)]);
            w.end_nest(proto);
            w.end_nest(tuple);
            (CTA_FILTER_ORIG_FLAGS, FILTER_PROTO_NUM)
        }
    };
    let filter = w.begin_nest(CTA_FILTER);
    w.put(direction, &flags.to_ne_bytes());
    w.end_nest(filter);
    w.into_inner()
}

/// The attributes of a deletion: the original tuple in full (without one the
/// kernel would flush the whole table), the id, and the zone if not 0.
pub fn delete_request(entry: &Entry) -> Vec<u8> {
    let mut w = Writer::default();
    let o = &entry.orig;
    let tuple = w.begin_nest(CTA_TUPLE_ORIG);
    let ip = w.begin_nest(CTA_TUPLE_IP);
    w.put(CTA_IP_V4_SRC, &o.src.octets());
    w.put(CTA_IP_V4_DST, &o.dst.octets());
    w.end_nest(ip);
    let proto = w.begin_nest(CTA_TUPLE_PROTO);
    w.put(CTA_PROTO_NUM, &[proto_number(o.protocol)]);
    w.put(CTA_PROTO_SRC_PORT, &o.sport.to_be_bytes());
    w.put(CTA_PROTO_DST_PORT, &o.dport.to_be_bytes());
    w.end_nest(proto);
    w.end_nest(tuple);
    if let Some(zone) = entry.zone {
        w.put(CTA_ZONE, &zone.to_be_bytes());
    }
    if let Some(id) = entry.id {
        w.put_u32_be(CTA_ID, id);
    }
    w.into_inner()
}

/// One dumped entry (its attributes after the nfgenmsg). Entries of other
/// protocols (ICMP, GRE, ...) or of another family have no place in a
/// [`Flow`] and are skipped.
pub fn parse_entry(attrs: &[u8]) -> Option<Entry> {
    let orig = parse_tuple(attr::find(attrs, CTA_TUPLE_ORIG)?)?;
    let reply = parse_tuple(attr::find(attrs, CTA_TUPLE_REPLY)?)?;
    let zone = attr::find(attrs, CTA_ZONE)
        .and_then(|v| Some(u16::from_be_bytes(v.get(..2)?.try_into().ok()?)))
        .filter(|z| *z != 0);
    Some(Entry {
        flow: Flow {
            protocol: orig.protocol,
            orig_dst: orig.dst,
            orig_dport: orig.dport,
            reply_src: reply.src,
            reply_sport: reply.sport,
        },
        orig,
        id: attr::find_u32_be(attrs, CTA_ID),
        zone,
    })
}

fn parse_tuple(nest: &[u8]) -> Option<Tuple> {
    let ip = attr::find(nest, CTA_TUPLE_IP)?;
    let proto = attr::find(nest, CTA_TUPLE_PROTO)?;
    let addr = |kind| {
        Some(Ipv4Addr::from(
            <[u8; 4]>::try_from(attr::find(ip, kind)?).ok()?,
        ))
    };
    let port = |kind| {
        Some(u16::from_be_bytes(
            attr::find(proto, kind)?.try_into().ok()?,
        ))
    };
    Some(Tuple {
        protocol: protocol_of(*attr::find(proto, CTA_PROTO_NUM)?.first()?)?,
        src: addr(CTA_IP_V4_SRC)?,
        dst: addr(CTA_IP_V4_DST)?,
        sport: port(CTA_PROTO_SRC_PORT)?,
        dport: port(CTA_PROTO_DST_PORT)?,
    })
}

/// IANA protocol numbers.
fn proto_number(protocol: Protocol) -> u8 {
    match protocol {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
        Protocol::Sctp => 132,
    }
}

fn protocol_of(number: u8) -> Option<Protocol> {
    match number {
        6 => Some(Protocol::Tcp),
        17 => Some(Protocol::Udp),
        132 => Some(Protocol::Sctp),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
