//! The native encoding against what the tools send, byte for byte, and the
//! shapes it refuses; no kernel needed.

use super::expr;
use super::wire::write_rule;
use super::*;
use crate::firewall::nfnl::attr;

/// (family, table, chain, rule text, payload) of [`sent_by_tools.txt`].
fn sent_by_tools() -> Vec<(String, String, String, String, Vec<u8>)> {
    let text = include_str!("sent_by_tools.txt");
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    lines
        .chunks(3)
        .map(|entry| {
            let mut place = entry[0].split(' ').map(str::to_string);
            let (family, table, chain) = (
                place.next().unwrap(),
                place.next().unwrap(),
                place.next().unwrap(),
            );
            let hex = entry[2];
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            (family, table, chain, entry[1].to_string(), bytes)
        })
        .collect()
}

#[test]
fn rules_are_written_as_the_tools_send_them() {
    let all = sent_by_tools();
    assert_eq!(all.len(), 15);
    for (family, table, chain, text, sent) in all {
        let encoded = match family.as_str() {
            "ip" => spec::nat(&text),
            "bridge" => spec::bridge(&text),
            other => panic!("family {other}"),
        };
        let encoded = encoded.unwrap_or_else(|| panic!("not encoded: {text}"));
        let mut w = attr::Writer::default();
        write_rule(&mut w, &table, &chain, &encoded);
        let ours = w.into_inner();
        assert_eq!(hex(&ours), hex(&padding_zeroed(&sent)), "{text}");
    }
}

/// `bytes` with the padding after each attribute zeroed: libmnl leaves
/// whatever was in its buffer there (the kernel reads none of it), pont
/// writes zeros.
fn padding_zeroed(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let mut at = 0;
    while at + 4 <= out.len() {
        let len = u16::from_ne_bytes([out[at], out[at + 1]]) as usize;
        let kind = u16::from_ne_bytes([out[at + 2], out[at + 3]]);
        if kind & 0x8000 != 0 {
            let inner = padding_zeroed(&out[at + 4..at + len]);
            out[at + 4..at + len].copy_from_slice(&inner);
        }
        let end = (at + len.next_multiple_of(4)).min(out.len());
        out[at + len..end].fill(0);
        at = end;
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn shapes_pont_does_not_write_are_left_to_the_tools() {
    let nat = [
        "-p sctp -m sctp --dport 80 -m comment --comment \"container a\" -j DNAT --to-destination 10.0.0.2:80",
        "-d 192.0.2.0/24 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.2:80",
        "-p tcp -m tcp --dport 80 -m comment --comment \"container a\" -j DNAT --to-destination 10.0.0.2:80 --random",
        "-p tcp -m udp --dport 80 -j DNAT --to-destination 10.0.0.2:80",
        "-p tcp -m tcp --dport 0 -j PONT-DNAT-TCP-0",
        "-p tcp -m tcp --dport 0:65535 -j PONT-DNAT-TCP-0",
        "-p tcp -m tcp --dport 90:80 -j PONT-DNAT-TCP-0",
        "-p tcp -m tcp --dport 80:80 -j PONT-DNAT-TCP-0",
        "-p tcp -m tcp --dport 80 -j ACCEPT",
        "-p tcp -m tcp --dport 80 -m comment --comment \"x\" -j PONT-DNAT-TCP-0",
        "-p tcp -m tcp --dport 80 -m comment --comment \"a\\\"b\" -j DNAT --to-destination 10.0.0.2:80",
        "-p tcp -m tcp --dport 80 -m comment --comment \"a\"b -j DNAT --to-destination 10.0.0.2:80",
        "-p tcp -m tcp --dport 80  -j PONT-DNAT-TCP-0",
    ];
    for text in nat {
        assert!(spec::nat(text).is_none(), "{text}");
    }
    let bridge = [
        "-p IPv4 -i veth3+ -j DROP",
        "-p IPv4 -i veth3000000000a -j ACCEPT",
        "-p IPv6 -i veth3000000000a --ip-src ! 10.0.0.2 -j DROP",
        "-p IPv4 -s ! 02:42:0a:4d:01:03 -i veth3000000000a -j DROP",
        "-p IPv4 -i averyveryverylongname -j DROP",
        "-p IPv4 -i veth3000000000a --ip-dst ! 10.0.0.2 -j DROP",
        "-p LENGTH -i veth3000000000a -j DROP",
    ];
    for text in bridge {
        assert!(spec::bridge(text).is_none(), "{text}");
    }
}

#[test]
fn a_short_port_name_is_compared_with_its_nul_only() {
    // ebtables-nft compares `-i eth9` as "eth9\0" (read from what it sends).
    let rule = spec::bridge("-p IPv4 -i eth9 -j DROP").unwrap();
    let mut name = expr::Exprs::new();
    name.meta(expr::META_IIFNAME);
    name.cmp(expr::CMP_EQ, b"eth9\0");
    let start = name.into_bytes();
    assert_eq!(&rule.exprs[..start.len()], &start[..]);
}

/// A rule as the kernel dumps it: nests unflagged, a counter with traffic.
fn as_dumped(ours: &[u8], packets: u64) -> Vec<u8> {
    fn unflag(bytes: &[u8], out: &mut Vec<u8>, in_counter: bool, packets: u64) {
        let mut rest = bytes;
        while rest.len() >= 4 {
            let len = u16::from_ne_bytes([rest[0], rest[1]]) as usize;
            let kind = u16::from_ne_bytes([rest[2], rest[3]]);
            let value = &rest[4..len];
            let at = out.len();
            out.extend_from_slice(&rest[..2]);
            out.extend_from_slice(&(kind & 0x3fff).to_ne_bytes());
            if kind & 0x8000 != 0 {
                let counter = in_counter || value.windows(8).any(|w| w == b"counter\0");
                unflag(value, out, counter, packets);
            } else if in_counter && kind & 0x3fff == 2 && len == 12 {
                out.extend_from_slice(&packets.to_be_bytes());
            } else {
                out.extend_from_slice(value);
            }
            out.resize(at + len.next_multiple_of(4), 0);
            rest = rest.get(len.next_multiple_of(4)..).unwrap_or_default();
        }
    }
    let mut out = Vec::new();
    unflag(ours, &mut out, false, packets);
    out
}

#[test]
fn a_dumped_rule_is_recognised_whatever_its_counters() {
    let ours = spec::bridge("-p IPv4 -i veth3000000000a --ip-src ! 10.77.1.3 -j DROP").unwrap();
    let dumped = as_dumped(&ours.exprs, 12345);
    assert_ne!(dumped, ours.exprs);
    assert!(expr::same(&dumped, &ours.exprs));
    let other = spec::bridge("-p IPv4 -i veth3000000000a --ip-src ! 10.77.1.4 -j DROP").unwrap();
    assert!(!expr::same(&dumped, &other.exprs));
    let shorter = spec::bridge("-p IPv4 -i veth3000000000a -j DROP").unwrap();
    assert!(!expr::same(&dumped, &shorter.exprs));
    assert!(!expr::same(&as_dumped(&shorter.exprs, 0), &ours.exprs));
}

#[test]
fn a_jump_is_read_back_from_its_expressions() {
    let jump = spec::nat("-p tcp -m tcp --dport 7936:8191 -j PONT-DNAT-TCP-31").unwrap();
    let dumped = as_dumped(&jump.exprs, 0);
    assert_eq!(expr::jump_target(&dumped), Some(&b"PONT-DNAT-TCP-31"[..]));
    let dnat = spec::nat(
        "-p tcp -m tcp --dport 8080 -m comment --comment \"container a\" -j DNAT --to-destination 10.77.1.3:80",
    )
    .unwrap();
    assert_eq!(expr::jump_target(&dnat.exprs), None);
}
