//! The encodings against nft's own: each expected value is the
//! NFTA_SET_ELEM_LIST_ELEMENTS attribute's value that nft 1.0.6 sent for the
//! same statement, taken from
//! `strace -e sendmsg -s 9999 -x nft -f change.nft` (after loading the rule
//! set of `render`).

use super::*;

const GUARDED_ADD: &[u8] = b"\x40\x00\x01\x80\x18\x00\x01\x80\x14\x00\x01\x00\x76\x65\x74\x68\x31\x31\x31\x31\x31\x31\x31\x31\x31\x31\x61\x00\x21\x00\x06\x00\x00\x1b\x63\x6f\x6e\x74\x61\x69\x6e\x65\x72\x20\x78\x20\x6f\x6e\x20\x6e\x65\x74\x77\x6f\x72\x6b\x20\x77\x65\x62\x00\x00\x00\x00\x40\x00\x02\x80\x18\x00\x01\x80\x14\x00\x01\x00\x76\x65\x74\x68\x32\x32\x32\x32\x32\x32\x32\x32\x32\x32\x62\x00\x21\x00\x06\x00\x00\x1b\x63\x6f\x6e\x74\x61\x69\x6e\x65\x72\x20\x79\x20\x6f\x6e\x20\x6e\x65\x74\x77\x6f\x72\x6b\x20\x77\x65\x62\x00\x00\x00\x00";
const GUARDED_DELETE: &[u8] = b"\x1c\x00\x01\x80\x18\x00\x01\x80\x14\x00\x01\x00\x76\x65\x74\x68\x31\x31\x31\x31\x31\x31\x31\x31\x31\x31\x61\x00\x1c\x00\x02\x80\x18\x00\x01\x80\x14\x00\x01\x00\x76\x65\x74\x68\x32\x32\x32\x32\x32\x32\x32\x32\x32\x32\x62\x00";
const PORT_MACS_ADD: &[u8] = b"\x48\x00\x01\x80\x20\x00\x01\x80\x1c\x00\x01\x00\x76\x65\x74\x68\x31\x31\x31\x31\x31\x31\x31\x31\x31\x31\x61\x00\x02\x42\x0a\x4d\x01\x09\x00\x00\x21\x00\x06\x00\x00\x1b\x63\x6f\x6e\x74\x61\x69\x6e\x65\x72\x20\x78\x20\x6f\x6e\x20\x6e\x65\x74\x77\x6f\x72\x6b\x20\x77\x65\x62\x00\x00\x00\x00";
const PORT_MACS_DELETE: &[u8] = b"\x24\x00\x01\x80\x20\x00\x01\x80\x1c\x00\x01\x00\x76\x65\x74\x68\x31\x31\x31\x31\x31\x31\x31\x31\x31\x31\x61\x00\x02\x42\x0a\x4d\x01\x09\x00\x00";
const PORT_ADDRS_ADD: &[u8] = b"\x44\x00\x01\x80\x1c\x00\x01\x80\x18\x00\x01\x00\x76\x65\x74\x68\x31\x31\x31\x31\x31\x31\x31\x31\x31\x31\x61\x00\x0a\x4d\x01\x09\x21\x00\x06\x00\x00\x1b\x63\x6f\x6e\x74\x61\x69\x6e\x65\x72\x20\x78\x20\x6f\x6e\x20\x6e\x65\x74\x77\x6f\x72\x6b\x20\x77\x65\x62\x00\x00\x00\x00";
const ANY_PORTS_ADD: &[u8] = b"\x38\x00\x01\x80\x10\x00\x01\x80\x0c\x00\x01\x00\x06\x00\x00\x00\x1f\x91\x00\x00\x10\x00\x02\x80\x0c\x00\x01\x00\x0a\x4d\x01\x09\x00\x50\x00\x00\x12\x00\x06\x00\x00\x0c\x63\x6f\x6e\x74\x61\x69\x6e\x65\x72\x20\x78\x00\x00\x00";
const ADDR_PORTS_ADD: &[u8] = b"\x3c\x00\x01\x80\x14\x00\x01\x80\x10\x00\x01\x00\x7f\x00\x00\x01\x11\x00\x00\x00\x14\xea\x00\x00\x10\x00\x02\x80\x0c\x00\x01\x00\x0a\x4d\x01\x09\x00\x35\x00\x00\x12\x00\x06\x00\x00\x0c\x63\x6f\x6e\x74\x61\x69\x6e\x65\x72\x20\x78\x00\x00\x00";
const ADDR_PORTS_DELETE: &[u8] = b"\x18\x00\x01\x80\x14\x00\x01\x80\x10\x00\x01\x00\x7f\x00\x00\x01\x11\x00\x00\x00\x14\xea\x00\x00";
const RANGES_ADD: &[u8] = b"\x4c\x00\x01\x80\x14\x00\x01\x80\x10\x00\x01\x00\x0a\x00\x00\x01\x06\x00\x00\x00\x1b\x58\x00\x00\x14\x00\x0a\x80\x10\x00\x01\x00\x0a\x00\x00\x01\x06\x00\x00\x00\x1b\x62\x00\x00\x0c\x00\x02\x80\x08\x00\x01\x00\x0a\x4d\x01\x09\x12\x00\x06\x00\x00\x0c\x63\x6f\x6e\x74\x61\x69\x6e\x65\x72\x20\x78\x00\x00\x00";
const RANGES_DELETE: &[u8] = b"\x2c\x00\x01\x80\x14\x00\x01\x80\x10\x00\x01\x00\x0a\x00\x00\x01\x06\x00\x00\x00\x1b\x58\x00\x00\x14\x00\x0a\x80\x10\x00\x01\x00\x0a\x00\x00\x01\x06\x00\x00\x00\x1b\x62\x00\x00";
const NAT_SOURCES_ADD: &[u8] = b"\x24\x00\x01\x80\x0c\x00\x01\x80\x08\x00\x01\x00\x0a\x4d\x03\x00\x11\x00\x06\x00\x00\x0b\x6e\x65\x74\x77\x6f\x72\x6b\x20\x6e\x33\x00\x00\x00\x00\x18\x00\x02\x80\x08\x00\x03\x00\x00\x00\x00\x01\x0c\x00\x01\x80\x08\x00\x01\x00\x0a\x4d\x04\x00";
const SUBNET_BRIDGES_ADD: &[u8] = b"\x50\x00\x01\x80\x1c\x00\x01\x80\x18\x00\x01\x00\x0a\x4d\x03\x00\x62\x72\x2d\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x00\x1c\x00\x0a\x80\x18\x00\x01\x00\x0a\x4d\x03\xff\x62\x72\x2d\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x00\x11\x00\x06\x00\x00\x0b\x6e\x65\x74\x77\x6f\x72\x6b\x20\x6e\x33\x00\x00\x00\x00";
const SUBNET_BRIDGES_DELETE: &[u8] = b"\x3c\x00\x01\x80\x1c\x00\x01\x80\x18\x00\x01\x00\x0a\x4d\x03\x00\x62\x72\x2d\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x00\x1c\x00\x0a\x80\x18\x00\x01\x00\x0a\x4d\x03\xff\x62\x72\x2d\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x00";
const ICC_PAIRS_ADD: &[u8] = b"\x40\x00\x01\x80\x28\x00\x01\x80\x24\x00\x01\x00\x62\x72\x2d\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x00\x62\x72\x2d\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x00\x11\x00\x06\x00\x00\x0b\x6e\x65\x74\x77\x6f\x72\x6b\x20\x6e\x33\x00\x00\x00\x00";

fn elem(
    family: Family,
    set: &'static str,
    key: Vec<Field>,
    comment: &str,
    value: Vec<Field>,
) -> Element {
    Element {
        family,
        set,
        key,
        comment: comment.into(),
        value,
    }
}

fn port(name: &str) -> Field {
    Field::Ifname(name.into())
}

fn addr(a: &str) -> Field {
    Field::Addr(a.parse().unwrap())
}

fn prefix(p: &str) -> Field {
    Field::Prefix(p.parse().unwrap())
}

/// The value of the list attribute that holds `elements`.
fn list(shape: Shape, op: Op, elements: &[Element]) -> Vec<u8> {
    let mut w = Writer::default();
    let mut entries = 0;
    for e in elements {
        e.encode(shape, op, &mut w, &mut entries);
    }
    w.into_inner()
}

fn assert_bytes(got: &[u8], nft: &[u8], what: &str) {
    assert!(got == nft, "{what}:\n ours {got:02x?}\n nft  {nft:02x?}");
}

const CONTAINER_X: &str = "container x on network web";

#[test]
fn ifnames_as_nft_encodes_them_numbered_in_the_list() {
    let x = elem(
        Family::Bridge,
        "guarded_ports",
        vec![port("veth1111111111a")],
        CONTAINER_X,
        vec![],
    );
    let y = elem(
        Family::Bridge,
        "guarded_ports",
        vec![port("veth2222222222b")],
        "container y on network web",
        vec![],
    );
    let both = [x, y];
    assert_bytes(&list(Shape::Exact, Op::Add, &both), GUARDED_ADD, "add");
    assert_bytes(
        &list(Shape::Exact, Op::Delete, &both),
        GUARDED_DELETE,
        "delete",
    );
}

#[test]
fn concatenations_pad_each_field_to_four_bytes() {
    let mac = Field::Ether("02:42:0a:4d:01:09".parse().unwrap());
    let macs = [elem(
        Family::Bridge,
        "port_macs",
        vec![port("veth1111111111a"), mac],
        CONTAINER_X,
        vec![],
    )];
    assert_bytes(
        &list(Shape::Exact, Op::Add, &macs),
        PORT_MACS_ADD,
        "port_macs add",
    );
    assert_bytes(
        &list(Shape::Exact, Op::Delete, &macs),
        PORT_MACS_DELETE,
        "port_macs delete",
    );
    let key = vec![port("veth1111111111a"), addr("10.77.1.9")];
    let addrs = [elem(Family::Bridge, "port_addrs", key, CONTAINER_X, vec![])];
    assert_bytes(
        &list(Shape::Exact, Op::Add, &addrs),
        PORT_ADDRS_ADD,
        "port_addrs add",
    );
    let br = port("br-333333333333");
    let pairs = [elem(
        Family::Inet,
        "icc_pairs",
        vec![br.clone(), br],
        "network n3",
        vec![],
    )];
    assert_bytes(
        &list(Shape::Exact, Op::Add, &pairs),
        ICC_PAIRS_ADD,
        "icc_pairs add",
    );
}

#[test]
fn map_values_are_concatenated_data() {
    let value = vec![addr("10.77.1.9"), Field::Port(80)];
    let key = vec![Field::Proto(Protocol::Tcp), Field::Port(8081)];
    let any = [elem(
        Family::Inet,
        "dnat_any_ports",
        key,
        "container x",
        value,
    )];
    assert_bytes(
        &list(Shape::Exact, Op::Add, &any),
        ANY_PORTS_ADD,
        "dnat_any_ports add",
    );
    let value = vec![addr("10.77.1.9"), Field::Port(53)];
    let key = vec![
        addr("127.0.0.1"),
        Field::Proto(Protocol::Udp),
        Field::Port(5354),
    ];
    let one = [elem(
        Family::Inet,
        "dnat_addr_ports",
        key,
        "container x",
        value,
    )];
    assert_bytes(
        &list(Shape::Exact, Op::Add, &one),
        ADDR_PORTS_ADD,
        "dnat_addr_ports add",
    );
    assert_bytes(
        &list(Shape::Exact, Op::Delete, &one),
        ADDR_PORTS_DELETE,
        "dnat_addr_ports delete",
    );
}

#[test]
fn concatenated_intervals_carry_key_and_key_end() {
    let range = Field::Ports(PortRange {
        start: 7000,
        end: 7010,
    });
    let key = vec![prefix("10.0.0.1/32"), Field::Proto(Protocol::Tcp), range];
    let ranges = [elem(
        Family::Inet,
        "dnat_ranges",
        key,
        "container x",
        vec![addr("10.77.1.9")],
    )];
    assert_bytes(
        &list(Shape::ConcatInterval, Op::Add, &ranges),
        RANGES_ADD,
        "dnat_ranges add",
    );
    assert_bytes(
        &list(Shape::ConcatInterval, Op::Delete, &ranges),
        RANGES_DELETE,
        "dnat_ranges delete",
    );
    let key = vec![prefix("10.77.3.0/24"), port("br-333333333333")];
    let subnets = [elem(
        Family::Inet,
        "subnet_bridges",
        key,
        "network n3",
        vec![],
    )];
    assert_bytes(
        &list(Shape::ConcatInterval, Op::Add, &subnets),
        SUBNET_BRIDGES_ADD,
        "add",
    );
    assert_bytes(
        &list(Shape::ConcatInterval, Op::Delete, &subnets),
        SUBNET_BRIDGES_DELETE,
        "delete",
    );
}

#[test]
fn one_field_intervals_end_with_an_interval_end_element() {
    let nets = [elem(
        Family::Inet,
        "nat_sources",
        vec![prefix("10.77.3.0/24")],
        "network n3",
        vec![],
    )];
    assert_bytes(
        &list(Shape::Interval, Op::Add, &nets),
        NAT_SOURCES_ADD,
        "nat_sources add",
    );
    // nft's delete also repeats the comment it found in its cache; the kernel
    // does not read it, so pont sends the keys alone.
    let delete = list(Shape::Interval, Op::Delete, &nets);
    assert_eq!(delete.len(), 16 + 24, "{delete:02x?}");
    // An interval up to the last address has no end element.
    let all = [elem(
        Family::Inet,
        "nat_sources",
        vec![prefix("0.0.0.0/0")],
        "all",
        vec![],
    )];
    assert_eq!(list(Shape::Interval, Op::Delete, &all).len(), 16);
}

#[test]
fn shapes_follow_the_declarations() {
    assert_eq!(Shape::of("type ifname;"), Shape::Exact);
    assert_eq!(
        Shape::of("type ipv4_addr; flags interval;"),
        Shape::Interval
    );
    assert_eq!(
        Shape::of("type ipv4_addr . ifname; flags interval;"),
        Shape::ConcatInterval
    );
    let ranges = "type ipv4_addr . inet_proto . inet_service : ipv4_addr; flags interval;";
    assert_eq!(Shape::of(ranges), Shape::ConcatInterval);
    let any = "type inet_proto . inet_service : ipv4_addr . inet_service;";
    assert_eq!(Shape::of(any), Shape::Exact);
}

#[test]
fn text_is_what_nft_reads() {
    let range = Field::Ports(PortRange {
        start: 7000,
        end: 7010,
    });
    let key = vec![prefix("10.0.0.1/32"), Field::Proto(Protocol::Tcp), range];
    let e = elem(
        Family::Inet,
        "dnat_ranges",
        key,
        "container x",
        vec![addr("10.77.1.9")],
    );
    assert_eq!(
        e.text(),
        "10.0.0.1/32 . tcp . 7000-7010 comment \"container x\" : 10.77.1.9"
    );
    assert_eq!(e.key_text(), "10.0.0.1/32 . tcp . 7000-7010");
}
