//! Pure tests: error decoding and message details, no kernel involved.

use std::{io, net::Ipv4Addr};

use netlink_packet_core::{NLM_F_ACK_TLVS, NLM_F_CAPPED};

use crate::netlink::{
    addr::broadcast,
    exchange::{error_ack_text, read_datagram, Failure, Replies},
    NetlinkError, Op,
};

const RTM_NEWLINK: u16 = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const PORT: u32 = 4242;

/// One netlink message: header, then `payload`, padded to 4 bytes.
fn message(kind: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&(16 + payload.len() as u32).to_ne_bytes());
    bytes.extend_from_slice(&kind.to_ne_bytes());
    bytes.extend_from_slice(&0u16.to_ne_bytes());
    bytes.extend_from_slice(&seq.to_ne_bytes());
    bytes.extend_from_slice(&PORT.to_ne_bytes());
    bytes.extend_from_slice(payload);
    bytes.resize(bytes.len().next_multiple_of(4), 0);
    bytes
}

/// An NLMSG_ERROR with errno `errno` (0: an ack), capped, without attributes.
fn ack(seq: u32, errno: i32) -> Vec<u8> {
    let payload = [(-errno).to_ne_bytes(), [0; 4], [0; 4], [0; 4], [0; 4]].concat();
    message(NLMSG_ERROR, seq, &payload)
}

#[test]
fn replies_to_other_requests_are_skipped() {
    let datagram = [ack(6, libc::EEXIST), ack(7, 0)].concat();
    let mut replies = Replies::default();
    assert!(read_datagram(&datagram, PORT, 7, &mut replies).unwrap());
    // Nothing for request 8 in this datagram: not finished, and no error either.
    assert!(!read_datagram(&ack(7, libc::EEXIST), PORT, 8, &mut replies).unwrap());
}

#[test]
fn kernel_error_carries_errno() {
    let mut replies = Replies::default();
    let failure = read_datagram(&ack(7, libc::ENODEV), PORT, 7, &mut replies).unwrap_err();
    assert!(
        matches!(
            failure,
            Failure::Kernel {
                errno: libc::ENODEV,
                detail: None
            }
        ),
        "{failure:?}"
    );
}

#[test]
fn undecodable_object_does_not_end_the_dump_early() {
    // A link message too short for its ifinfomsg header, then the end of the dump.
    let datagram = [
        message(RTM_NEWLINK, 7, &[1, 2, 3, 4]),
        message(NLMSG_DONE, 7, &[0; 4]),
    ];
    let mut replies = Replies::default();
    assert!(read_datagram(&datagram.concat(), PORT, 7, &mut replies).unwrap());
    assert!(replies.messages.is_empty());
    assert!(replies.undecodable.is_some());
}

/// An NLMSG_ERROR payload after the error code: the echoed request header (and `body`),
/// then one NLMSGERR_ATTR_MSG attribute holding `text`.
fn error_payload(body: &[u8], text: &str) -> Vec<u8> {
    let mut payload = Vec::new();
    let echoed_len = 16 + body.len() as u32;
    payload.extend_from_slice(&echoed_len.to_ne_bytes());
    payload.extend_from_slice(&[0; 12]); // type, flags, seq, port of the request
    payload.extend_from_slice(body);
    payload.resize(payload.len().next_multiple_of(4), 0);
    let value = [text.as_bytes(), &[0]].concat();
    payload.extend_from_slice(&(4 + value.len() as u16).to_ne_bytes());
    payload.extend_from_slice(&1u16.to_ne_bytes());
    payload.extend_from_slice(&value);
    payload
}

#[test]
fn extended_ack_text_of_capped_error() {
    let payload = error_payload(&[], "mtu greater than device maximum");
    let text = error_ack_text(NLM_F_CAPPED | NLM_F_ACK_TLVS, &payload);
    assert_eq!(text.as_deref(), Some("mtu greater than device maximum"));
}

#[test]
fn extended_ack_text_after_full_echoed_request() {
    let payload = error_payload(&[7; 6], "Unknown device type");
    let text = error_ack_text(NLM_F_ACK_TLVS, &payload);
    assert_eq!(text.as_deref(), Some("Unknown device type"));
}

#[test]
fn no_extended_ack_text_without_tlvs_flag() {
    let payload = error_payload(&[], "ignored");
    assert_eq!(error_ack_text(NLM_F_CAPPED, &payload), None);
    assert_eq!(
        error_ack_text(NLM_F_CAPPED | NLM_F_ACK_TLVS, &payload[..10]),
        None
    );
}

#[test]
fn error_message_names_operation_target_and_detail() {
    let err = NetlinkError::Request {
        op: Op::CreateBridge,
        target: "pont0".into(),
        detail: None,
        source: io::Error::from_raw_os_error(libc::EPERM),
    };
    assert_eq!(err.to_string(), "netlink: create bridge pont0");
    assert_eq!(err.errno(), Some(libc::EPERM));
    assert!(!err.is_exists() && !err.is_not_found());

    let err = NetlinkError::Request {
        op: Op::SetMtu,
        target: "ifindex 3 to 70000".into(),
        detail: Some("mtu greater than device maximum".into()),
        source: io::Error::from_raw_os_error(libc::EINVAL),
    };
    let text = "netlink: set mtu of ifindex 3 to 70000 (mtu greater than device maximum)";
    assert_eq!(err.to_string(), text);
}

#[test]
fn broadcast_address_of_subnets() {
    let addr = Ipv4Addr::new(10, 99, 0, 1);
    assert_eq!(broadcast(addr, 24), Ipv4Addr::new(10, 99, 0, 255));
    assert_eq!(broadcast(addr, 16), Ipv4Addr::new(10, 99, 255, 255));
    assert_eq!(broadcast(addr, 30), Ipv4Addr::new(10, 99, 0, 3));
    assert_eq!(broadcast(addr, 0), Ipv4Addr::BROADCAST);
    assert_eq!(broadcast(addr, 32), addr);
}
