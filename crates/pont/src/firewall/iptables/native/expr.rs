//! nf_tables expressions, written as iptables-nft and ebtables-nft 1.8.9
//! write them (libnftnl's attribute order, `counter` on every rule), and
//! compared with the expressions of a rule the kernel dumps.
//!
//! The attribute numbers are those of include/uapi/linux/netfilter/nf_tables.h
//! (enum nft_list_attributes, nft_expr_attributes, nft_meta_attributes, ...).

use netlink_packet_core::{NLA_F_NESTED, NLA_TYPE_MASK};

use crate::firewall::nfnl::attr::{self, Writer};

const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;
/// NFT_REG_VERDICT and NFT_REG_1 (enum nft_registers).
const REG_VERDICT: u32 = 0;
const REG_1: u32 = 1;
/// enum nft_jump: NFT_JUMP; NF_DROP, include/uapi/linux/netfilter.h.
pub(super) const NFT_JUMP: i32 = -3;
pub(super) const NF_DROP: i32 = 0;

/// enum nft_meta_keys.
pub(super) const META_IIFNAME: u32 = 6;
pub(super) const META_L4PROTO: u32 = 16;
/// enum nft_payload_bases.
pub(super) const BASE_LINK: u32 = 0;
pub(super) const BASE_NETWORK: u32 = 1;
pub(super) const BASE_TRANSPORT: u32 = 2;
/// enum nft_cmp_ops (NFT_RANGE_EQ is 0 too).
pub(super) const CMP_EQ: u32 = 0;
pub(super) const CMP_NEQ: u32 = 1;
pub(super) const CMP_LTE: u32 = 3;

/// The content of a rule's NFTA_RULE_EXPRESSIONS: one NFTA_LIST_ELEM per
/// expression, in the order they run.
#[derive(Debug, Default)]
pub(super) struct Exprs {
    w: Writer,
}

impl Exprs {
    pub(super) fn new() -> Exprs {
        Exprs::default()
    }

    pub(super) fn into_bytes(self) -> Vec<u8> {
        self.w.into_inner()
    }

    fn expr(&mut self, name: &str, data: impl FnOnce(&mut Writer)) {
        let w = &mut self.w;
        let elem = w.begin_nest(NFTA_LIST_ELEM);
        w.put_str(NFTA_EXPR_NAME, name);
        let body = w.begin_nest(NFTA_EXPR_DATA);
        data(w);
        w.end_nest(body);
        w.end_nest(elem);
    }

    /// `meta load KEY => reg 1` (libnftnl writes the key first).
    pub(super) fn meta(&mut self, key: u32) {
        self.expr("meta", |w| {
            w.put_u32_be(2, key); // NFTA_META_KEY
            w.put_u32_be(1, REG_1); // NFTA_META_DREG
        });
    }

    /// `payload load LEN b @ BASE + OFFSET => reg 1`.
    pub(super) fn payload(&mut self, base: u32, offset: u32, len: u32) {
        self.expr("payload", |w| {
            w.put_u32_be(1, REG_1); // NFTA_PAYLOAD_DREG
            w.put_u32_be(2, base);
            w.put_u32_be(3, offset);
            w.put_u32_be(4, len);
        });
    }

    /// `cmp OP reg 1 VALUE`.
    pub(super) fn cmp(&mut self, op: u32, value: &[u8]) {
        self.expr("cmp", |w| {
            w.put_u32_be(1, REG_1); // NFTA_CMP_SREG
            w.put_u32_be(2, op);
            put_value(w, 3, value); // NFTA_CMP_DATA
        });
    }

    /// `range eq reg 1 FROM TO`.
    pub(super) fn range(&mut self, from: &[u8], to: &[u8]) {
        self.expr("range", |w| {
            w.put_u32_be(1, REG_1); // NFTA_RANGE_SREG
            w.put_u32_be(2, CMP_EQ); // NFTA_RANGE_OP: NFT_RANGE_EQ
            put_value(w, 3, from);
            put_value(w, 4, to);
        });
    }

    /// A zeroed `counter`, which iptables-nft puts on every rule.
    pub(super) fn counter(&mut self) {
        self.expr("counter", |w| {
            w.put(1, &0u64.to_be_bytes()); // NFTA_COUNTER_BYTES
            w.put(2, &0u64.to_be_bytes()); // NFTA_COUNTER_PACKETS
        });
    }

    /// An x_tables match (nft_compat): its name, revision and info struct.
    pub(super) fn xt_match(&mut self, name: &str, info: &[u8]) {
        self.expr("match", |w| xt(w, name, 0, info));
    }

    /// An x_tables target (nft_compat).
    pub(super) fn xt_target(&mut self, name: &str, revision: u32, info: &[u8]) {
        self.expr("target", |w| xt(w, name, revision, info));
    }

    /// `immediate reg 0 VERDICT [CHAIN]`.
    pub(super) fn verdict(&mut self, code: i32, chain: Option<&str>) {
        self.expr("immediate", |w| {
            w.put_u32_be(1, REG_VERDICT); // NFTA_IMMEDIATE_DREG
            let data = w.begin_nest(2); // NFTA_IMMEDIATE_DATA
            let verdict = w.begin_nest(NFTA_DATA_VERDICT);
            w.put_u32_be(NFTA_VERDICT_CODE, code as u32);
            if let Some(chain) = chain {
                w.put_str(NFTA_VERDICT_CHAIN, chain);
            }
            w.end_nest(verdict);
            w.end_nest(data);
        });
    }
}

fn put_value(w: &mut Writer, kind: u16, value: &[u8]) {
    let nest = w.begin_nest(kind);
    w.put(NFTA_DATA_VALUE, value);
    w.end_nest(nest);
}

/// NFTA_MATCH_* and NFTA_TARGET_* share their numbers: NAME, REV, INFO.
fn xt(w: &mut Writer, name: &str, revision: u32, info: &[u8]) {
    w.put_str(1, name);
    w.put_u32_be(2, revision);
    w.put(3, info);
}

/// Whether the expressions a rule dump holds (`dumped`) are the ones `ours`
/// writes: the same expressions in the same order with the same attributes,
/// except a counter's values (traffic changes them). The kernel's dump does
/// not flag nests (NLA_F_NESTED); which attributes are nests is read from
/// `ours`.
pub(super) fn same(dumped: &[u8], ours: &[u8]) -> bool {
    let (mut d, mut o) = (attr::iter(dumped), attr::iter(ours));
    loop {
        match (d.next(), o.next()) {
            (None, None) => return true,
            (Some((dk, dv)), Some((ok, ov))) if dk == ok => {
                if !same_expr(dv, ov) {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

fn same_expr(dumped: &[u8], ours: &[u8]) -> bool {
    let name = attr::find_str(ours, NFTA_EXPR_NAME);
    if name.is_none() || name != attr::find_str(dumped, NFTA_EXPR_NAME) {
        return false;
    }
    if name == Some(b"counter") {
        return true;
    }
    same_attrs(dumped, ours)
}

/// The same attributes in the same order, nests compared inside, leaves byte for byte.
fn same_attrs(dumped: &[u8], ours: &[u8]) -> bool {
    let mut d = attr::iter(dumped);
    for (kind, value, nested) in flagged(ours) {
        match d.next() {
            Some((k, v)) if k == kind => {
                let equal = if nested {
                    same_attrs(v, value)
                } else {
                    v == value
                };
                if !equal {
                    return false;
                }
            }
            _ => return false,
        }
    }
    d.next().is_none()
}

/// The attributes of `bytes` with whether each is flagged as a nest.
fn flagged(bytes: &[u8]) -> impl Iterator<Item = (u16, &[u8], bool)> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        let header = rest.get(..4)?;
        let len = u16::from_ne_bytes([header[0], header[1]]) as usize;
        let kind = u16::from_ne_bytes([header[2], header[3]]);
        let value = rest.get(4..len)?;
        rest = rest.get(len.next_multiple_of(4)..).unwrap_or_default();
        Some((kind & NLA_TYPE_MASK, value, kind & NLA_F_NESTED != 0))
    })
}

/// The chain an expression list jumps to (`immediate` of NFT_JUMP), if any.
pub(super) fn jump_target(exprs: &[u8]) -> Option<&[u8]> {
    attr::iter(exprs).find_map(|(_, e)| {
        if attr::find_str(e, NFTA_EXPR_NAME)? != b"immediate" {
            return None;
        }
        let data = attr::find(attr::find(e, NFTA_EXPR_DATA)?, 2)?;
        let verdict = attr::find(data, NFTA_DATA_VERDICT)?;
        let code = attr::find_u32_be(verdict, NFTA_VERDICT_CODE)? as i32;
        (code == NFT_JUMP)
            .then(|| attr::find_str(verdict, NFTA_VERDICT_CHAIN))
            .flatten()
    })
}
