//! Message bodies and the parsing of dumped entries, without the kernel.

use super::*;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn tuple(protocol: Protocol, src: &str, sport: u16, dst: &str, dport: u16) -> Tuple {
    Tuple {
        protocol,
        src: ip(src),
        dst: ip(dst),
        sport,
        dport,
    }
}

/// A tuple nest as the kernel dumps it (ctnetlink_dump_tuples).
fn put_tuple(w: &mut Writer, kind: u16, t: &Tuple, proto_number: u8) {
    let nest = w.begin_nest(kind);
    let ip = w.begin_nest(CTA_TUPLE_IP);
    w.put(CTA_IP_V4_SRC, &t.src.octets());
    w.put(CTA_IP_V4_DST, &t.dst.octets());
    w.end_nest(ip);
    let proto = w.begin_nest(CTA_TUPLE_PROTO);
    w.put(CTA_PROTO_NUM, &[proto_number]);
    w.put(CTA_PROTO_SRC_PORT, &t.sport.to_be_bytes());
    w.put(CTA_PROTO_DST_PORT, &t.dport.to_be_bytes());
    w.end_nest(proto);
    w.end_nest(nest);
}

#[test]
fn a_dumped_entry_gives_its_flow_tuple_id_and_zone() {
    let orig = tuple(Protocol::Udp, "192.0.2.3", 5000, "192.0.2.2", 5353);
    let reply = tuple(Protocol::Udp, "10.1.0.2", 53, "192.0.2.3", 5000);
    let mut w = Writer::default();
    put_tuple(&mut w, CTA_TUPLE_ORIG, &orig, 17);
    put_tuple(&mut w, CTA_TUPLE_REPLY, &reply, 17);
    w.put_u32_be(3, 0x1a8); // CTA_STATUS, not read
    w.put_u32_be(7, 29); // CTA_TIMEOUT, not read
    w.put_u32_be(CTA_ID, 0xdead_beef);
    w.put(CTA_ZONE, &7u16.to_be_bytes());
    let entry = parse_entry(&w.into_inner()).unwrap();
    assert_eq!(
        entry.flow,
        Flow {
            protocol: Protocol::Udp,
            orig_dst: ip("192.0.2.2"),
            orig_dport: 5353,
            reply_src: ip("10.1.0.2"),
            reply_sport: 53,
        }
    );
    assert_eq!(entry.orig, orig);
    assert_eq!((entry.id, entry.zone), (Some(0xdead_beef), Some(7)));
    assert_eq!(
        entry.orig.to_string(),
        "udp 192.0.2.3:5000 -> 192.0.2.2:5353"
    );
}

#[test]
fn entries_without_ports_or_of_other_protocols_are_skipped() {
    // ICMP: no ports in its tuples (an id, a type and a code instead).
    let mut w = Writer::default();
    for kind in [CTA_TUPLE_ORIG, CTA_TUPLE_REPLY] {
        let nest = w.begin_nest(kind);
        let ip = w.begin_nest(CTA_TUPLE_IP);
        w.put(CTA_IP_V4_SRC, &[192, 0, 2, 3]);
        w.put(CTA_IP_V4_DST, &[192, 0, 2, 2]);
        w.end_nest(ip);
        let proto = w.begin_nest(CTA_TUPLE_PROTO);
        w.put(CTA_PROTO_NUM, &[1]);
        w.end_nest(proto);
        w.end_nest(nest);
    }
    assert_eq!(parse_entry(&w.into_inner()), None);
    // GRE (47) has ports of a kind in its tuples but no place in a mapping.
    let t = tuple(Protocol::Tcp, "192.0.2.3", 1, "192.0.2.2", 2);
    let mut w = Writer::default();
    put_tuple(&mut w, CTA_TUPLE_ORIG, &t, 47);
    put_tuple(&mut w, CTA_TUPLE_REPLY, &t, 47);
    assert_eq!(parse_entry(&w.into_inner()), None);
}

#[test]
fn a_deletion_names_the_whole_original_tuple_and_the_id() {
    let entry = Entry {
        flow: Flow {
            protocol: Protocol::Udp,
            orig_dst: ip("127.0.0.1"),
            orig_dport: 5353,
            reply_src: ip("127.0.0.2"),
            reply_sport: 53,
        },
        orig: tuple(Protocol::Udp, "127.0.0.1", 40000, "127.0.0.1", 5353),
        id: Some(0x0102_0304),
        zone: None,
    };
    // CTA_TUPLE_ORIG (nested) { CTA_TUPLE_IP { SRC, DST }, CTA_TUPLE_PROTO
    // { NUM 17, SRC_PORT 40000, DST_PORT 5353 } }, CTA_ID: all big endian.
    let expected: &[u8] = b"\x34\x00\x01\x80\
        \x14\x00\x01\x80\x08\x00\x01\x00\x7f\x00\x00\x01\x08\x00\x02\x00\x7f\x00\x00\x01\
        \x1c\x00\x02\x80\x05\x00\x01\x00\x11\x00\x00\x00\
        \x06\x00\x02\x00\x9c\x40\x00\x00\x06\x00\x03\x00\x14\xe9\x00\x00\
        \x08\x00\x0c\x00\x01\x02\x03\x04";
    assert_eq!(delete_request(&entry), expected);
    // A zone other than 0 is named too (CTA_ZONE, before the id).
    let zoned = Entry {
        zone: Some(5),
        ..entry
    };
    let bytes = delete_request(&zoned);
    assert_eq!(&bytes[52..60], b"\x06\x00\x12\x00\x00\x05\x00\x00");
    assert_eq!(&bytes[..52], &expected[..52]);
}

#[test]
fn a_narrowed_dump_asks_for_a_filter_and_its_tuple() {
    assert!(dump_request(Narrowing::None).is_empty());
    // CTA_TUPLE_REPLY { CTA_TUPLE_IP { SRC 10.1.0.2 } }, CTA_FILTER { REPLY_FLAGS IP_SRC }.
    assert_eq!(
        dump_request(Narrowing::ReplyFrom(ip("10.1.0.2"))),
        b"\x10\x00\x02\x80\x0c\x00\x01\x80\x08\x00\x01\x00\x0a\x01\x00\x02\
          \x0c\x00\x19\x80\x08\x00\x02\x00\x01\x00\x00\x00"
    );
    // CTA_TUPLE_ORIG { CTA_TUPLE_PROTO { NUM 17 } }, CTA_FILTER { ORIG_FLAGS PROTO_NUM }.
    assert_eq!(
        dump_request(Narrowing::Protocol(Protocol::Udp)),
        b"\x10\x00\x01\x80\x0c\x00\x02\x80\x05\x00\x01\x00\x11\x00\x00\x00\
          \x0c\x00\x19\x80\x08\x00\x01\x00\x08\x00\x00\x00"
    );
}
