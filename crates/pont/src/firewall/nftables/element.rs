//! Set and map elements as typed values: rendered as `nft` text for a full
//! apply, encoded as nf_tables netlink attributes for a change sent natively.
//! The encoding is nft's own (libnftnl's), checked byte for byte in the tests.

use std::fmt;
use std::net::Ipv4Addr;

use crate::firewall::nfnl::{attr::Writer, NFPROTO_BRIDGE, NFPROTO_INET};
use crate::model::{Ipv4Net, MacAddr, PortRange, Protocol};

/// enum nft_set_elem_attributes, enum nft_list_attributes, enum
/// nft_data_attributes and NFT_SET_ELEM_INTERVAL_END,
/// include/uapi/linux/netfilter/nf_tables.h.
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_SET_ELEM_FLAGS: u16 = 3;
const NFTA_SET_ELEM_USERDATA: u16 = 6;
const NFTA_SET_ELEM_KEY_END: u16 = 10;
const NFTA_DATA_VALUE: u16 = 1;
const NFT_SET_ELEM_INTERVAL_END: u32 = 1;
/// The comment's type in nft's user-data TLVs (NFTNL_UDATA_SET_ELEM_COMMENT,
/// libnftnl include/udata.h); nft reads it back for `comment "..."`.
const UDATA_SET_ELEM_COMMENT: u8 = 0;
/// IFNAMSIZ: an ifname key is the name NUL-padded to 16 bytes.
const IFNAMSIZ: usize = 16;

/// The family of the table a set is in; declared in the order of the tables'
/// names, so that elements sort as their text does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    Bridge,
    Inet,
}

impl Family {
    pub fn table(self) -> &'static str {
        match self {
            Family::Bridge => super::BRIDGE_TABLE,
            Family::Inet => super::TABLE,
        }
    }

    pub fn nfproto(self) -> u8 {
        match self {
            Family::Bridge => NFPROTO_BRIDGE,
            Family::Inet => NFPROTO_INET,
        }
    }
}

/// How a set keeps its elements, which decides how one is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Exact keys (a hash).
    Exact,
    /// Intervals of one field (an rbtree): an element at the interval's start,
    /// and one flagged as an interval end just past its end.
    Interval,
    /// Intervals of a concatenation (pipapo): each element carries the start
    /// (NFTA_SET_ELEM_KEY) and the last value (NFTA_SET_ELEM_KEY_END) of its key.
    ConcatInterval,
}

impl Shape {
    /// The shape of a set declared as `decl` (`type A . B : C; flags interval;`).
    pub fn of(decl: &str) -> Shape {
        let key_type = decl.split([';', ':']).next().unwrap_or_default();
        match (decl.contains("flags interval"), key_type.contains(" . ")) {
            (false, _) => Shape::Exact,
            (true, false) => Shape::Interval,
            (true, true) => Shape::ConcatInterval,
        }
    }
}

/// One field of a key or value, typed as the set declares it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    Ifname(String),
    Addr(Ipv4Addr),
    /// The addresses of a prefix (an interval).
    Prefix(Ipv4Net),
    Ether(MacAddr),
    Proto(Protocol),
    Port(u16),
    /// A range of ports (an interval).
    Ports(PortRange),
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Ifname(name) => write!(f, "\"{name}\""),
            Field::Addr(addr) => write!(f, "{addr}"),
            Field::Prefix(net) => write!(f, "{net}"),
            Field::Ether(mac) => write!(f, "{mac}"),
            Field::Proto(proto) => write!(f, "{proto}"),
            Field::Port(port) => write!(f, "{port}"),
            Field::Ports(range) => write!(f, "{range}"),
        }
    }
}

impl Field {
    /// The field's first (or only) value in network byte order.
    fn write_first(&self, out: &mut Vec<u8>) {
        match self {
            Field::Ifname(name) => {
                let bytes = name.as_bytes();
                debug_assert!(bytes.len() < IFNAMSIZ, "interface name {name}");
                out.extend_from_slice(bytes);
                out.resize(out.len() + IFNAMSIZ - bytes.len(), 0);
            }
            Field::Addr(addr) => out.extend_from_slice(&addr.octets()),
            Field::Prefix(net) => out.extend_from_slice(&net.network().octets()),
            Field::Ether(mac) => out.extend_from_slice(&mac.0),
            Field::Proto(proto) => out.push(proto_number(*proto)),
            Field::Port(port) => out.extend_from_slice(&port.to_be_bytes()),
            Field::Ports(range) => out.extend_from_slice(&range.start.to_be_bytes()),
        }
    }

    /// The field's last value: that of an interval's end, else its only value.
    fn write_last(&self, out: &mut Vec<u8>) {
        match self {
            Field::Prefix(net) => out.extend_from_slice(&net.broadcast().octets()),
            Field::Ports(range) => out.extend_from_slice(&range.end.to_be_bytes()),
            exact => exact.write_first(out),
        }
    }
}

/// IANA protocol numbers (inet_proto keys).
fn proto_number(proto: Protocol) -> u8 {
    match proto {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
        Protocol::Sctp => 132,
    }
}

/// The bytes of a key or value: one field as it is, a concatenation with each
/// field padded to 4 bytes (nf_tables registers are 32-bit words).
fn concat(fields: &[Field], last: bool, out: &mut Vec<u8>) {
    for field in fields {
        match last {
            true => field.write_last(out),
            false => field.write_first(out),
        }
        if fields.len() > 1 {
            out.resize(out.len().next_multiple_of(4), 0);
        }
    }
}

/// What a message does to its elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Keys with their values and comments.
    Add,
    /// Keys only.
    Delete,
}

/// One element of a set or map: a key, a value (maps only) and a comment
/// naming the network or container it is for. Sorted by set, then key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Element {
    pub family: Family,
    pub set: &'static str,
    pub key: Vec<Field>,
    pub comment: String,
    pub value: Vec<Field>,
}

/// Fields as nft writes them: `A . B . C`.
pub struct Joined<'a>(pub &'a [Field]);

impl fmt::Display for Joined<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, field) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" . ")?;
            }
            write!(f, "{field}")?;
        }
        Ok(())
    }
}

impl Element {
    /// The element as an `add element` statement lists it.
    pub fn text(&self) -> String {
        let mut text = format!("{} comment \"{}\"", Joined(&self.key), self.comment);
        if !self.value.is_empty() {
            text.push_str(&format!(" : {}", Joined(&self.value)));
        }
        text
    }

    /// The key alone, as a `delete element` statement lists it.
    pub fn key_text(&self) -> String {
        Joined(&self.key).to_string()
    }

    /// Append the element to an NFTA_SET_ELEM_LIST_ELEMENTS nest: one list
    /// entry, or two for an interval of a one-field set (its start, and the
    /// interval-end element after it unless the interval reaches the top of
    /// the key's range). `entries` counts the list's entries so far: like
    /// libnftnl, each entry's attribute type is its position (1, 2, ...),
    /// which the kernel does not read.
    pub fn encode(&self, shape: Shape, op: Op, w: &mut Writer, entries: &mut u16) {
        let elem = w.begin_nest(next_entry(entries));
        put_key(w, NFTA_SET_ELEM_KEY, &self.key, false);
        if shape == Shape::ConcatInterval {
            put_key(w, NFTA_SET_ELEM_KEY_END, &self.key, true);
        }
        if op == Op::Add {
            if !self.value.is_empty() {
                put_key(w, NFTA_SET_ELEM_DATA, &self.value, false);
            }
            w.put(NFTA_SET_ELEM_USERDATA, &comment_udata(&self.comment));
        }
        w.end_nest(elem);
        if shape == Shape::Interval {
            self.encode_interval_end(w, entries);
        }
    }

    fn encode_interval_end(&self, w: &mut Writer, entries: &mut u16) {
        let mut past = Vec::with_capacity(16);
        concat(&self.key, true, &mut past);
        if !increment(&mut past) {
            return; // the interval is open-ended
        }
        let elem = w.begin_nest(next_entry(entries));
        w.put_u32_be(NFTA_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
        let key = w.begin_nest(NFTA_SET_ELEM_KEY);
        w.put(NFTA_DATA_VALUE, &past);
        w.end_nest(key);
        w.end_nest(elem);
    }
}

/// The type of the next list entry (NFTA_LIST_ELEM is 1, the first).
fn next_entry(entries: &mut u16) -> u16 {
    *entries += 1;
    // Above this the type would run into the attribute's flag bits; a
    // message's list is far too small for that (native::LIST_BYTES).
    debug_assert!(*entries < 0x4000, "{entries} entries in one list");
    *entries
}

/// A nested key, key end or data attribute holding one NFTA_DATA_VALUE.
fn put_key(w: &mut Writer, kind: u16, fields: &[Field], last: bool) {
    let mut bytes = Vec::with_capacity(32);
    concat(fields, last, &mut bytes);
    let nest = w.begin_nest(kind);
    w.put(NFTA_DATA_VALUE, &bytes);
    w.end_nest(nest);
}

/// nft's user data for a comment: one TLV (type, length, NUL-terminated text).
fn comment_udata(comment: &str) -> Vec<u8> {
    let len = u8::try_from(comment.len() + 1).expect("comments are short");
    let mut out = Vec::with_capacity(comment.len() + 3);
    out.extend_from_slice(&[UDATA_SET_ELEM_COMMENT, len]);
    out.extend_from_slice(comment.as_bytes());
    out.push(0);
    out
}

/// Add one to a big-endian number in place; false if it wrapped around.
fn increment(bytes: &mut [u8]) -> bool {
    for byte in bytes.iter_mut().rev() {
        let (next, carry) = byte.overflowing_add(1);
        *byte = next;
        if !carry {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests;
