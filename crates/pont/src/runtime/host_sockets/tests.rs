//! Unit tests: parsing of /proc/net and of sock_diag replies, the requests' bytes, blocking.

use super::diag::{parse_msg, read_datagram, Failure, Query, REQUEST_LEN};
use super::proc_net::parse;
use super::*;
use crate::model::PortRange;

/// Replies captured once from Linux 6.18 (x86-64) in a fresh namespace, to a socket of port
/// 25756, for a TCP listener on 127.0.0.1:5001 (dump 1), one on [::]:5002 (dump 2) and a
/// UDP socket bound on 0.0.0.0:5003 (dump 3). Each is one datagram with the socket's
/// inet_diag_msg and its attributes, then one with NLMSG_DONE.
const PORT: u32 = 25756;
const TCP4: &str = "7c00000014000200010000009c640000020a0000138900007f00000100000000\
                    00000000000000000000000000000000000000000000000000000000900c0000\
                    0000000000000000000000008000000000000000f669f3000500080000000000\
                    08000f00000000000c00150001000000000000000600160052000000";
const TCP4_DONE: &str = "1400000003000200010000009c64000000000000";
const TCP6: &str = "8400000014000200020000009c6400000a0a0000138a00000000000000000000\
                    00000000000000000000000000000000000000000000000000000000910c0000\
                    0000000000000000000000008000000000000000f769f3000500080000000000\
                    05000b000000000008000f00000000000c001500010000000000000006001600\
                    12000000";
const TCP6_DONE: &str = "1400000003000200020000009c64000000000000";
const UDP4: &str = "7c00000014000200030000009c64000002070000138b00000000000000000000\
                    00000000000000000000000000000000000000000000000000000000920c0000\
                    0000000000000000000000000000000000000000f869f3000500080000000000\
                    08000f00000000000c00150001000000000000000600160050000000";
const UDP4_DONE: &str = "1400000003000200030000009c64000000000000";

fn bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Feed `datagrams` to `read_datagram` as dump `seq`, up to its end.
fn read_dump(seq: u32, protocol: Protocol, datagrams: &[&str]) -> Result<Vec<String>, Failure> {
    let mut out = Vec::new();
    for (i, hex) in datagrams.iter().enumerate() {
        let ended = read_datagram(&bytes(hex), PORT, seq, protocol, &mut out)?;
        assert_eq!(
            ended,
            i + 1 == datagrams.len(),
            "datagram {i} ends the dump"
        );
    }
    Ok(out.iter().map(Socket::to_string).collect())
}

#[test]
fn parses_captured_replies() {
    let tcp4 = read_dump(1, Protocol::Tcp, &[TCP4, TCP4_DONE]).unwrap();
    assert_eq!(tcp4, ["127.0.0.1:5001/tcp"]);
    let tcp6 = read_dump(2, Protocol::Tcp, &[TCP6, TCP6_DONE]).unwrap();
    assert_eq!(tcp6, ["[::]:5002/tcp"]);
    let udp4 = read_dump(3, Protocol::Udp, &[UDP4, UDP4_DONE]).unwrap();
    assert_eq!(udp4, ["0.0.0.0:5003/udp"]);
}

#[test]
fn several_messages_in_one_datagram() {
    // The kernel packs messages into one datagram when it can: the last needs no padding.
    let joined = [TCP4, TCP4, TCP4_DONE].concat();
    let socks = read_dump(1, Protocol::Tcp, &[&joined]).unwrap();
    assert_eq!(socks, ["127.0.0.1:5001/tcp", "127.0.0.1:5001/tcp"]);
}

#[test]
fn skips_replies_to_other_requests() {
    // Dump 1's messages, read while waiting for dump 2, then dump 2's.
    let stale = [TCP4, TCP4_DONE].concat();
    let socks = read_dump(2, Protocol::Tcp, &[&stale, TCP6, TCP6_DONE]).unwrap();
    assert_eq!(socks, ["[::]:5002/tcp"]);
    // Another socket's port: not ours either.
    let mut out = Vec::new();
    assert!(!read_datagram(&bytes(TCP4), PORT + 1, 1, Protocol::Tcp, &mut out).unwrap());
    assert!(out.is_empty());
}

#[test]
fn kernel_errors_end_the_dump() {
    // NLMSG_DONE with -ENOENT (-2): the handler's module could not be loaded.
    let done_enoent = "1400000003000200010000009c640000feffffff";
    let Err(Failure::Kernel(errno)) = read_dump(1, Protocol::Udp, &[done_enoent]) else {
        panic!("DONE with an error is an error");
    };
    assert_eq!(errno, libc::ENOENT);
    // NLMSG_ERROR (capped) with -ENOENT and the refused request's header.
    let error = "2400000002000001010000009c640000feffffff\
                 48000000140001030100000000000000";
    let Err(Failure::Kernel(errno)) = read_dump(1, Protocol::Udp, &[error]) else {
        panic!("NLMSG_ERROR is an error");
    };
    assert_eq!(errno, libc::ENOENT);
}

#[test]
fn malformed_replies() {
    // A message whose length runs past the datagram.
    let cut = &TCP4[..TCP4.len() - 8];
    assert!(matches!(
        read_dump(1, Protocol::Tcp, &[cut]),
        Err(Failure::Malformed(_))
    ));
    // An inet_diag_msg shorter than the struct.
    assert!(matches!(
        parse_msg(&bytes(&TCP4[32..64]), Protocol::Tcp),
        Err(Failure::Malformed(_))
    ));
    // An address family that is neither IPv4 nor IPv6.
    let mut msg = bytes(&TCP4[32..]);
    msg[0] = libc::AF_UNIX as u8;
    assert!(matches!(
        parse_msg(&msg, Protocol::Tcp),
        Err(Failure::Malformed(_))
    ));
}

#[test]
fn v4_mapped_and_v6_addresses_stay_ipv6() {
    let mut msg = bytes(&TCP6[32..]);
    msg[8..24].copy_from_slice(
        &"::ffff:127.0.0.1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    let sock = parse_msg(&msg, Protocol::Tcp).unwrap();
    assert_eq!(sock.to_string(), "[::ffff:127.0.0.1]:5002/tcp");
}

#[test]
fn request_bytes() {
    let tcp6 = Query::tcp_listening(libc::AF_INET6).request(7);
    let mut want = bytes(
        "48000000140001030700000000000000\
         0a060000000400000000000000000000",
    );
    want.resize(REQUEST_LEN, 0);
    // length 72, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq 7, then
    // AF_INET6, IPPROTO_TCP, no extensions, states 1 << TCP_LISTEN (x86: little endian).
    assert_eq!(tcp6.to_vec(), want);
    let udp4 = Query::udp_bound(libc::AF_INET).request(8);
    assert_eq!(udp4[16..24], [2, 17, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    assert!(udp4[24..].iter().all(|&b| b == 0), "any socket id");
}

#[test]
fn names_the_query() {
    assert_eq!(Query::tcp_listening(libc::AF_INET).to_string(), "TCP/IPv4");
    assert_eq!(Query::udp_bound(libc::AF_INET6).to_string(), "UDP/IPv6");
    assert_eq!(
        Query::new(libc::AF_INET, 253, 0).to_string(),
        "protocol 253/IPv4"
    );
}

#[test]
fn unsupported_is_enoent_only() {
    let dump = |errno| HostSocketsError::Dump {
        what: "UDP/IPv4".into(),
        source: io::Error::from_raw_os_error(errno),
    };
    assert!(dump(libc::ENOENT).is_unsupported());
    assert!(!dump(libc::EBUSY).is_unsupported());
    let read = HostSocketsError::Read {
        path: "/proc/thread-self/net/udp",
        source: io::Error::from_raw_os_error(libc::ENOENT),
    };
    assert!(!read.is_unsupported());
}

#[test]
fn parses_proc_net() {
    let tcp = "  sl  local_address rem_address   st\n\
               0: 0100007F:0035 00000000:0000 0A 0\n\
               1: 00000000:1F90 00000000:0000 0A 0\n\
               2: 0100007F:1F91 0100007F:9C40 01 0\n";
    let socks = parse(tcp, Protocol::Tcp, true);
    assert_eq!(socks.len(), 2);
    assert_eq!(socks[0].to_string(), "127.0.0.1:53/tcp");
    assert_eq!(socks[1].to_string(), "0.0.0.0:8080/tcp");
    let tcp6 =
        "h\n 0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A\n";
    assert_eq!(
        parse(tcp6, Protocol::Tcp, true)[0].to_string(),
        "[::1]:8080/tcp"
    );
    let mapped =
        "h\n 0: 0000000000000000FFFF00000100007F:1F90 00000000000000000000000000000000:0000 0A\n";
    assert_eq!(
        parse(mapped, Protocol::Tcp, true)[0].to_string(),
        "[::ffff:127.0.0.1]:8080/tcp"
    );
    // UDP: every state (07 is CLOSE, a bound socket).
    let udp = "h\n 0: 00000000:0035 00000000:0000 07 0\n";
    assert_eq!(
        parse(udp, Protocol::Udp, false)[0].to_string(),
        "0.0.0.0:53/udp"
    );
}

#[test]
fn blocking() {
    let sock = |a: &str, port| Socket {
        protocol: Protocol::Tcp,
        addr: a.parse().unwrap(),
        port,
    };
    let m = |ip: Option<&str>| PortMapping {
        host_ip: ip.map(|i| i.parse().unwrap()),
        host_ports: PortRange {
            start: 8000,
            end: 8010,
        },
        container_ports: PortRange {
            start: 8000,
            end: 8010,
        },
        protocol: Protocol::Tcp,
    };
    assert!(sock("0.0.0.0", 8005).blocks(&m(Some("192.0.2.2"))));
    assert!(sock("127.0.0.1", 8005).blocks(&m(None)));
    assert!(!sock("127.0.0.1", 8005).blocks(&m(Some("192.0.2.2"))));
    assert!(!sock("0.0.0.0", 8011).blocks(&m(None)));
    // A dual-stack [::] listener blocks IPv4 mappings too.
    assert!(sock("::", 8005).blocks(&m(Some("192.0.2.2"))));
}
