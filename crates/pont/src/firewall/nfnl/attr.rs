//! Netlink attributes (struct nlattr, include/uapi/linux/netlink.h): a writer
//! that appends them to a message under construction, nests included, and
//! small readers over netlink-packet-core's attribute iterator.

use netlink_packet_core::{NlaBuffer, NlasIterator, NLA_F_NESTED, NLA_TYPE_MASK};

/// `sizeof(struct nlattr)`.
const HEADER_LEN: usize = 4;

/// The largest attribute: `nla_len` is a u16 and counts the header.
pub const MAX_ATTR_LEN: usize = u16::MAX as usize;

/// Appends attributes to a byte buffer, each padded to 4 bytes (NLA_ALIGN).
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

/// An open nest: where its header is, to write its length when it closes.
#[must_use = "a nest must be closed with Writer::end_nest"]
#[derive(Debug)]
pub struct Nest(usize);

impl Writer {
    pub fn new(buf: Vec<u8>) -> Writer {
        Writer { buf }
    }

    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }

    /// Bytes written so far.
    pub fn position(&self) -> usize {
        self.buf.len()
    }

    pub fn bytes_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// One attribute of `kind` holding `value`.
    pub fn put(&mut self, kind: u16, value: &[u8]) {
        let len = HEADER_LEN + value.len();
        debug_assert!(len <= MAX_ATTR_LEN, "attribute {kind} of {len} bytes");
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.pad();
    }

    /// A NUL-terminated string (NLA_STRING / NLA_NUL_STRING).
    pub fn put_str(&mut self, kind: u16, value: &str) {
        let len = HEADER_LEN + value.len() + 1;
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(value.as_bytes());
        self.buf.push(0);
        self.pad();
    }

    /// A u32 in network byte order, as nf_tables takes its numbers.
    pub fn put_u32_be(&mut self, kind: u16, value: u32) {
        self.put(kind, &value.to_be_bytes());
    }

    /// Open a nested attribute; the ones written until [`Writer::end_nest`] go inside.
    pub fn begin_nest(&mut self, kind: u16) -> Nest {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        Nest(at)
    }

    /// Close `nest`: its length covers everything written since it opened.
    pub fn end_nest(&mut self, nest: Nest) {
        let len = self.buf.len() - nest.0;
        debug_assert!(len <= MAX_ATTR_LEN, "nest of {len} bytes");
        self.buf[nest.0..nest.0 + 2].copy_from_slice(&(len as u16).to_ne_bytes());
    }

    fn pad(&mut self) {
        let padded = self.buf.len().next_multiple_of(4);
        self.buf.resize(padded, 0);
    }
}

/// The attributes in `bytes` as (kind without flags, value), skipping any
/// that do not parse (the kernel never sends those; a reply is still read on).
pub fn iter(bytes: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    NlasIterator::new(bytes)
        .filter_map(Result::ok)
        .map(|nla: NlaBuffer<&[u8]>| {
            let (kind, len) = (nla.kind() & NLA_TYPE_MASK, nla.length() as usize);
            (kind, &nla.into_inner()[HEADER_LEN..len])
        })
}

/// The value of the first attribute of `kind` in `bytes`.
pub fn find(bytes: &[u8], kind: u16) -> Option<&[u8]> {
    iter(bytes).find(|(k, _)| *k == kind).map(|(_, v)| v)
}

/// A u32 attribute in network byte order.
pub fn find_u32_be(bytes: &[u8], kind: u16) -> Option<u32> {
    let value = find(bytes, kind)?;
    Some(u32::from_be_bytes(value.get(..4)?.try_into().ok()?))
}

/// A string attribute, without its terminating NUL.
pub fn find_str(bytes: &[u8], kind: u16) -> Option<&[u8]> {
    let value = find(bytes, kind)?;
    Some(value.split(|b| *b == 0).next().unwrap_or_default())
}
