//! Set-element changes sent to the kernel over nfnetlink, as one transaction,
//! with no `nft` process: what a container operation changes.

use netlink_packet_core::NLM_F_CREATE;

use super::element::{Element, Op};
use super::{shape, TABLE_NAME};
use crate::firewall::nfnl::{self, attr, Batch, NfnlError};
use crate::firewall::tool::FirewallError;

/// enum nft_set_elem_list_attributes, include/uapi/linux/netfilter/nf_tables.h.
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;

/// Elements go into one message until its list attribute holds this many
/// bytes: the attribute's length is a u16, and one element takes at most a
/// few hundred bytes.
const LIST_BYTES: usize = 60 * 1024;

/// One message of a batch: what it does, and to which elements, in order.
struct Sent<'a> {
    op: Op,
    elements: Vec<&'a Element>,
}

/// Delete `delete` and add `add` (each sorted by set) in one transaction.
pub(super) fn send(delete: &[&Element], add: &[&Element]) -> Result<(), FirewallError> {
    if delete.is_empty() && add.is_empty() {
        return Ok(());
    }
    let mut batch = Batch::new();
    let mut sent = Vec::new();
    write_messages(&mut batch, Op::Delete, delete, &mut sent);
    write_messages(&mut batch, Op::Add, add, &mut sent);
    nfnl::with_socket(|nl| nl.commit(batch)).map_err(|e| refused(e, &sent))
}

/// One message per set (more where a set's elements outgrow one), each
/// element marked, so that an error names the element it points at.
fn write_messages<'a>(
    batch: &mut Batch,
    op: Op,
    elements: &[&'a Element],
    sent: &mut Vec<Sent<'a>>,
) {
    let (kind, flags) = match op {
        // As `nft add element`: an element that exists with the same value is
        // no error (no NLM_F_EXCL).
        Op::Add => (nfnl::msg::NEWSETELEM, NLM_F_CREATE),
        Op::Delete => (nfnl::msg::DELSETELEM, 0),
    };
    for group in elements.chunk_by(|x, y| (x.family, x.set) == (y.family, y.set)) {
        let (family, set) = (group[0].family, group[0].set);
        let shape = shape(family, set);
        let mut rest = group.iter().copied().peekable();
        while rest.peek().is_some() {
            batch.begin(kind, family.nfproto(), flags);
            let w = batch.writer();
            w.put_str(NFTA_SET_ELEM_LIST_TABLE, TABLE_NAME);
            w.put_str(NFTA_SET_ELEM_LIST_SET, set);
            let start = w.position();
            let list = w.begin_nest(NFTA_SET_ELEM_LIST_ELEMENTS);
            let mut these = Vec::new();
            let mut entries = 0;
            while let Some(e) = rest.next_if(|_| batch.written() - start < LIST_BYTES) {
                batch.mark();
                e.encode(shape, op, batch.writer(), &mut entries);
                these.push(e);
            }
            debug_assert!(batch.written() - start <= attr::MAX_ATTR_LEN);
            batch.writer().end_nest(list);
            batch.end();
            sent.push(Sent {
                op,
                elements: these,
            });
        }
    }
}

/// A refused message becomes an error naming its set and, where the kernel
/// pointed at one (extended ack), the element.
fn refused(error: NfnlError, sent: &[Sent]) -> FirewallError {
    let NfnlError::Refused {
        message: Some(index),
        item,
        detail,
        source,
    } = error
    else {
        return FirewallError::Netlink(error);
    };
    let message = &sent[index];
    let first = message.elements[0];
    FirewallError::ElementRefused {
        op: match message.op {
            Op::Add => "add",
            Op::Delete => "delete",
        },
        set: format!("{} {}", first.family.table(), first.set),
        element: item
            .and_then(|i| message.elements.get(i))
            .map(|e| e.key_text()),
        detail,
        source,
    }
}

/// The batch [`send`] would commit, for timing its phases.
#[cfg(test)]
pub(super) fn write_for_timing(batch: &mut Batch, delete: &[&Element], add: &[&Element]) {
    let mut sent = Vec::new();
    write_messages(batch, Op::Delete, delete, &mut sent);
    write_messages(batch, Op::Add, add, &mut sent);
}
