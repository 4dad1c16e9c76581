//! Framing of batches and acks, without the kernel.

use super::*;

#[test]
fn a_batch_is_begin_messages_end_numbered_in_order() {
    let mut batch = Batch::new();
    batch.begin(msg::DELSETELEM, NFPROTO_BRIDGE, 0);
    batch.writer().put_str(1, "pont");
    batch.end();
    let bytes = batch.bytes_for_test();
    // BATCH_BEGIN: len 20, type 0x10, REQUEST, seq 0, res_id NFNL_SUBSYS_NFTABLES (big endian).
    assert_eq!(
        &bytes[..20],
        b"\x14\x00\x00\x00\x10\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x0a"
    );
    // The message: len 32, type NFT_MSG_DELSETELEM of nf_tables, REQUEST|ACK, seq 1, bridge.
    assert_eq!(
        &bytes[20..52],
        b"\x20\x00\x00\x00\x0e\x0a\x05\x00\x01\x00\x00\x00\x00\x00\x00\x00\x07\x00\x00\x00\x09\x00\x01\x00pont\x00\x00\x00\x00"
    );
    // BATCH_END, seq 2.
    assert_eq!(
        &bytes[52..],
        b"\x14\x00\x00\x00\x11\x00\x01\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x0a"
    );
}

#[test]
fn an_error_names_the_marked_item_it_points_into() {
    let message = Message {
        start: 20,
        marks: vec![36, 100, 164],
    };
    assert_eq!(message.item_at(36), Some(0));
    assert_eq!(message.item_at(120), Some(1));
    assert_eq!(message.item_at(500), Some(2));
    assert_eq!(message.item_at(20), None);
}

#[test]
fn extended_acks_give_text_and_offset() {
    // nlmsgerr: error -2, the capped original header, then MSG and OFFS.
    let mut body = (-2i32).to_ne_bytes().to_vec();
    body.extend_from_slice(&[0; 16]);
    let mut w = Writer::new(body);
    w.put_str(NLMSGERR_ATTR_MSG, "no such element");
    w.put(NLMSGERR_ATTR_OFFS, &164u32.to_ne_bytes());
    let ack = read_ack(0x100 | NLM_F_ACK_TLVS, &w.into_inner()).unwrap();
    assert_eq!(ack.errno, libc::ENOENT);
    assert_eq!(ack.detail.as_deref(), Some("no such element"));
    assert_eq!(ack.offset, Some(164));
}
