//! The cleanup against the real kernel, in a fresh network namespace: entries
//! made by real datagrams and a TCP connection through DNAT rules (loopback
//! only), listed over ctnetlink as `conntrack -L` lists them, and exactly the
//! chosen ones deleted while the others stay.

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};

use super::ctnetlink::{self, Entry, Narrowing};
use super::*;
use crate::firewall::kernel_tests::sh;
use crate::firewall::tool;
use crate::model::PortRange;
use crate::netlink::tests::in_fresh_netns;

/// DNAT in the output hook, as pont's rules do for the host's own clients:
/// two mappings of the container at 127.0.0.2, one of another at 127.0.0.3.
const RULES: &str = "table ip t {
    chain out {
        type nat hook output priority -100;
        udp dport 5353 dnat to 127.0.0.2:53
        tcp dport 8080 dnat to 127.0.0.2:80
        udp dport 6000 dnat to 127.0.0.3:60
    }
}
";

/// Entries that no mapping of 127.0.0.2 translated: they must stay.
const UNRELATED: usize = 100;

fn mapping(host: u16, container: u16, protocol: Protocol) -> PortMapping {
    PortMapping {
        host_ip: None,
        host_ports: PortRange::single(host),
        container_ports: PortRange::single(container),
        protocol,
    }
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// A UDP client that has sent one datagram to `to` (its entry is made then).
fn udp_client(to: &str) -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.send_to(b"x", to).unwrap();
    socket
}

/// The sockets whose flows the test looks at, kept open so that no port is
/// taken again by another client.
struct Traffic {
    translated_udp: Vec<UdpSocket>,
    tcp: (TcpListener, TcpStream),
    other_container: UdpSocket,
    direct: UdpSocket,
    untranslated: Vec<UdpSocket>,
    unrelated: Vec<UdpSocket>,
}

fn make_traffic() -> Traffic {
    sh("ip link set lo up");
    tool::run("nft", &["-f", "-"], RULES).unwrap();
    let listener = TcpListener::bind("127.0.0.2:80").unwrap();
    let stream = TcpStream::connect("127.0.0.1:8080").unwrap();
    Traffic {
        translated_udp: (0..2).map(|_| udp_client("127.0.0.1:5353")).collect(),
        tcp: (listener, stream),
        other_container: udp_client("127.0.0.1:6000"),
        direct: udp_client("127.0.0.2:53"),
        untranslated: (0..2).map(|_| udp_client("127.0.0.1:7000")).collect(),
        unrelated: (0..UNRELATED).map(|_| udp_client("127.0.0.1:9")).collect(),
    }
}

fn list(narrowing: Narrowing) -> Vec<Entry> {
    nfnl::with_socket(|nl| ctnetlink::list(nl, narrowing)).unwrap()
}

/// Whether an entry's original direction left `socket`.
fn has_flow_of(entries: &[Entry], socket: &SocketAddr) -> bool {
    let SocketAddr::V4(local) = socket else {
        unreachable!("IPv4 sockets only")
    };
    entries
        .iter()
        .any(|e| (e.orig.src, e.orig.sport) == (*local.ip(), local.port()))
}

fn sorted(flows: Vec<Flow>) -> Vec<String> {
    let mut text: Vec<String> = flows.iter().map(|f| format!("{f:?}")).collect();
    text.sort();
    text
}

#[test]
fn lists_what_conntrack_lists_and_deletes_exactly_the_stale_entries() {
    in_fresh_netns(|| {
        let t = make_traffic();
        let all = list(Narrowing::None);
        let total = 2 + 1 + 1 + 1 + 2 + UNRELATED;
        assert_eq!(all.len(), total, "{all:#?}");
        let tool_view = super::tests::parse_flows(&sh("conntrack -L 2>/dev/null"));
        let native: Vec<Flow> = all.iter().map(|e| e.flow.clone()).collect();
        assert_eq!(sorted(native), sorted(tool_view));
        let tcp = all
            .iter()
            .find(|e| e.flow.protocol == Protocol::Tcp)
            .unwrap();
        assert_eq!(
            (
                tcp.flow.orig_dport,
                tcp.flow.reply_src,
                tcp.flow.reply_sport
            ),
            (8080, ip("127.0.0.2"), 80)
        );
        assert!(all.iter().all(|e| e.id.is_some() && e.zone.is_none()));

        // The kernel narrows dumps (CTA_FILTER, Linux 5.8 on).
        let to_target = list(Narrowing::ReplyFrom(ip("127.0.0.2")));
        assert_eq!(to_target.len(), 4, "2 UDP, 1 TCP, 1 direct: {to_target:#?}");
        let udp = list(Narrowing::Protocol(Protocol::Udp));
        assert_eq!(udp.len(), total - 1);

        // The container at 127.0.0.2 loses both mappings: its three translated
        // entries go, its direct flow and every other entry stay.
        let removed = [
            mapping(5353, 53, Protocol::Udp),
            mapping(8080, 80, Protocol::Tcp),
        ];
        assert_eq!(forget_translated(ip("127.0.0.2"), &removed).unwrap(), 3);
        let after = list(Narrowing::None);
        assert_eq!(after.len(), total - 3);
        for gone in &t.translated_udp {
            assert!(!has_flow_of(&after, &gone.local_addr().unwrap()));
        }
        assert!(!has_flow_of(&after, &t.tcp.1.local_addr().unwrap()));
        for kept in [&t.direct, &t.other_container] {
            assert!(has_flow_of(&after, &kept.local_addr().unwrap()));
        }

        // Port 7000 is published: its two untranslated clients go.
        let host: BTreeSet<IpAddr> = [IpAddr::from(ip("127.0.0.1"))].into();
        let published = [mapping(7000, 70, Protocol::Udp)];
        assert_eq!(forget_untranslated_udp(&published, &host).unwrap(), 2);
        let last = list(Narrowing::None);
        assert_eq!(last.len(), total - 5);
        for gone in &t.untranslated {
            assert!(!has_flow_of(&last, &gone.local_addr().unwrap()));
        }
        for kept in &t.unrelated {
            assert!(has_flow_of(&last, &kept.local_addr().unwrap()));
        }
        // Nothing stale is left: doing it again deletes nothing.
        assert_eq!(forget_translated(ip("127.0.0.2"), &removed).unwrap(), 0);
        assert_eq!(forget_untranslated_udp(&published, &host).unwrap(), 0);
    });
}

#[test]
fn a_deletion_needs_the_entry_itself_and_a_gone_one_is_no_error() {
    in_fresh_netns(|| {
        let _t = make_traffic();
        let to_other = list(Narrowing::ReplyFrom(ip("127.0.0.3")));
        let [entry] = &to_other[..] else {
            panic!("one flow to 127.0.0.3: {to_other:#?}")
        };
        // The right tuple with another id names no entry: nothing is deleted.
        let imposter = Entry {
            id: entry.id.map(|id| id ^ 1),
            ..entry.clone()
        };
        let delete = |e: &Entry| nfnl::with_socket(|nl| ctnetlink::delete(nl, e)).unwrap();
        assert!(!delete(&imposter));
        assert_eq!(list(Narrowing::ReplyFrom(ip("127.0.0.3"))).len(), 1);
        assert!(delete(entry));
        assert!(list(Narrowing::ReplyFrom(ip("127.0.0.3"))).is_empty());
        // Gone meanwhile (ENOENT): not an error.
        assert!(!delete(entry));
    });
}

#[test]
fn nothing_tracked_nothing_listed() {
    in_fresh_netns(|| {
        // No NAT table, no traffic: the namespace tracks nothing, and says so.
        assert_eq!(tracked_here(), Some(0));
        let removed = [mapping(5353, 53, Protocol::Udp)];
        assert_eq!(forget_translated(ip("127.0.0.2"), &removed).unwrap(), 0);
        // The count is this namespace's, not the machine's.
        let _t = make_traffic();
        let listed = list(Narrowing::None).len() as u64;
        assert!(tracked_here().unwrap() >= listed, "{listed} listed");
    });
}
