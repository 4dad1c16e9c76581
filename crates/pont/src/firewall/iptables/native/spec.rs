//! pont's per-container rules, from the text the tools would be fed to the
//! expressions iptables-nft and ebtables-nft 1.8.9 make of that text (read
//! from what `iptables-restore` and `ebtables-restore` send, see the tests).
//!
//! Only the shapes pont writes for a container are read, strictly: every
//! token must be understood, else the rule is not encoded (`None`) and the
//! change goes to the tools. So a rule whose text grows an option the encoder
//! does not know can never be written natively as something else.
//!
//! - nat: `[-d A/32] -p tcp|udp -m tcp|udp --dport PORTS [-m comment --comment
//!   "TEXT"] -j DNAT --to-destination IP:PORT[-END/BASE]`, or the same match
//!   with `-j PONT-...` (a jump into a port block's chain);
//! - bridge: `[-p 802_1Q|IPv4|IPv6|ARP] [-s ! MAC] -i PORT [--ip-src ! IP |
//!   --arp-ip-src ! IP | --arp-mac-src ! MAC] -j DROP`.

use std::net::Ipv4Addr;

use super::expr::{self, Exprs};
use crate::model::MacAddr;

/// A rule's expressions and its NFTA_RULE_COMPAT protocol (what x_tables
/// matches are checked against; iptables-nft sends it with every rule).
#[derive(Debug)]
pub(in crate::firewall::iptables) struct Encoded {
    pub exprs: Vec<u8>,
    pub proto: u32,
}

/// IPPROTO_TCP, IPPROTO_UDP.
const TCP: u8 = 6;
const UDP: u8 = 17;
/// xt_comment_info: XT_MAX_COMMENT_LEN bytes, NUL-padded.
const COMMENT_LEN: usize = 256;
/// IFNAMSIZ: the longest interface name, 15 bytes, and its NUL.
const IFNAME_MAX: usize = 15;
/// enum nf_nat_range flags, include/uapi/linux/netfilter/nf_nat.h.
const NAT_MAP_IPS: u32 = 1;
const NAT_PROTO_SPECIFIED: u32 = 2;
const NAT_PROTO_OFFSET: u32 = 0x20;
/// XT_ALIGN(sizeof(struct nf_nat_range2)): 42 bytes, aligned to 8.
const NAT_RANGE2_LEN: usize = 48;
/// EBT_IP_SOURCE, EBT_ARP_SRC_IP, EBT_ARP_SRC_MAC
/// (include/uapi/linux/netfilter_bridge/ebt_ip.h, ebt_arp.h).
const EBT_IP_SOURCE: u8 = 0x01;
const EBT_ARP_SRC_IP: u8 = 0x08;
const EBT_ARP_SRC_MAC: u8 = 0x20;
/// XT_ALIGN(sizeof(struct ebt_ip_info)) and XT_ALIGN(sizeof(struct ebt_arp_info)).
const EBT_IP_INFO_LEN: usize = 32;
const EBT_ARP_INFO_LEN: usize = 56;

/// The words of a rule's text; a double-quoted string is one word, unquoted
/// (pont's comments hold no quote or backslash; a rule with one is refused).
fn words(spec: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let mut rest = spec;
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"')?;
            let word = &quoted[..end];
            if word.contains('\\') {
                return None;
            }
            out.push(word);
            let after = &quoted[end + 1..];
            rest = match after.strip_prefix(' ') {
                Some(next) => next,
                None if after.is_empty() => after,
                None => return None, // `"a"b`: one word to the tools
            };
            continue;
        }
        let (word, next) = rest.split_once(' ').unwrap_or((rest, ""));
        if word.is_empty() || word.contains('"') {
            return None;
        }
        out.push(word);
        rest = next;
    }
    Some(out)
}

/// A cursor over the words, taking them in order.
struct Words<'a>(std::iter::Peekable<std::vec::IntoIter<&'a str>>);

impl<'a> Words<'a> {
    fn new(spec: &'a str) -> Option<Words<'a>> {
        Some(Words(words(spec)?.into_iter().peekable()))
    }

    /// The next word if it is `word`.
    fn eat(&mut self, word: &str) -> bool {
        self.0.next_if_eq(&word).is_some()
    }

    fn expect(&mut self, word: &str) -> Option<()> {
        self.eat(word).then_some(())
    }

    fn value(&mut self) -> Option<&'a str> {
        self.0.next()
    }

    fn done(&mut self) -> Option<()> {
        self.0.peek().is_none().then_some(())
    }
}

/// A nat rule of a container's (see the module's documentation).
pub(in crate::firewall::iptables) fn nat(spec: &str) -> Option<Encoded> {
    let mut w = Words::new(spec)?;
    let daddr = if w.eat("-d") {
        Some(w.value()?.strip_suffix("/32")?.parse::<Ipv4Addr>().ok()?)
    } else {
        None
    };
    w.expect("-p")?;
    let proto_name = w.value()?;
    let proto = match proto_name {
        "tcp" => TCP,
        "udp" => UDP,
        _ => return None,
    };
    w.expect("-m")?;
    w.expect(proto_name)?;
    w.expect("--dport")?;
    let ports = w.value()?;
    let comment = if w.eat("-m") {
        w.expect("comment")?;
        w.expect("--comment")?;
        Some(w.value()?)
    } else {
        None
    };
    w.expect("-j")?;
    let target = w.value()?;

    let mut e = Exprs::new();
    e.meta(expr::META_L4PROTO);
    e.cmp(expr::CMP_EQ, &[proto]);
    if let Some(daddr) = daddr {
        e.payload(expr::BASE_NETWORK, 16, 4);
        e.cmp(expr::CMP_EQ, &daddr.octets());
    }
    dport(&mut e, ports)?;
    if let Some(text) = comment {
        e.xt_match("comment", &comment_info(text)?);
    }
    e.counter();
    if target == "DNAT" {
        w.expect("--to-destination")?;
        let info = nat_range(w.value()?)?;
        w.done()?;
        e.xt_target("DNAT", 2, &info);
    } else {
        w.done()?;
        // Jumps into pont's own chains only, with no comment (pont's have
        // none): a built-in target is a verdict or an x_tables target,
        // written otherwise.
        if !target.starts_with("PONT-") || comment.is_some() {
            return None;
        }
        e.verdict(expr::NFT_JUMP, Some(target));
    }
    Some(Encoded {
        exprs: e.into_bytes(),
        proto: u32::from(proto),
    })
}

/// `--dport P` or `--dport A:B` as iptables-nft 1.8.9 writes it: one port is
/// a `cmp eq`, a range from 0 a `cmp lte`, any other range a `range`.
fn dport(e: &mut Exprs, ports: &str) -> Option<()> {
    e.payload(expr::BASE_TRANSPORT, 2, 2);
    match ports.split_once(':') {
        None => {
            let port: u16 = ports.parse().ok()?;
            if port == 0 {
                return None;
            }
            e.cmp(expr::CMP_EQ, &port.to_be_bytes());
        }
        Some((a, b)) => {
            let (a, b): (u16, u16) = (a.parse().ok()?, b.parse().ok()?);
            match (a, b) {
                (0, 65535) => return None, // no match at all
                (0, b) => e.cmp(expr::CMP_LTE, &b.to_be_bytes()),
                (a, b) if a < b => e.range(&a.to_be_bytes(), &b.to_be_bytes()),
                _ => return None,
            }
        }
    }
    Some(())
}

fn comment_info(text: &str) -> Option<Vec<u8>> {
    if text.len() >= COMMENT_LEN || text.contains('\0') {
        return None;
    }
    let mut info = text.as_bytes().to_vec();
    info.resize(COMMENT_LEN, 0);
    Some(info)
}

/// `--to-destination IP:PORT` or `IP:START-END/BASE` as a struct
/// nf_nat_range2 (DNAT revision 2): flags in host order, the address in both
/// bounds, ports in network order.
fn nat_range(to: &str) -> Option<Vec<u8>> {
    let (ip, ports) = to.split_once(':')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    let (first, last, base, flags) = match ports.split_once('-') {
        None => {
            let p: u16 = ports.parse().ok()?;
            (p, p, 0, NAT_MAP_IPS | NAT_PROTO_SPECIFIED)
        }
        Some((first, rest)) => {
            let (last, base) = rest.split_once('/')?;
            let flags = NAT_MAP_IPS | NAT_PROTO_SPECIFIED | NAT_PROTO_OFFSET;
            let (first, last, base) = (first.parse().ok()?, last.parse().ok()?, base.parse().ok()?);
            (first, last, base, flags)
        }
    };
    let mut info = Vec::with_capacity(NAT_RANGE2_LEN);
    info.extend_from_slice(&flags.to_ne_bytes());
    for _ in 0..2 {
        let mut addr = [0u8; 16]; // union nf_inet_addr
        addr[..4].copy_from_slice(&ip.octets());
        info.extend_from_slice(&addr);
    }
    for port in [first, last, base] {
        info.extend_from_slice(&port.to_be_bytes());
    }
    info.resize(NAT_RANGE2_LEN, 0);
    Some(info)
}

/// An ebtables rule of a container's port (see the module's documentation).
pub(in crate::firewall::iptables) fn bridge(spec: &str) -> Option<Encoded> {
    let mut w = Words::new(spec)?;
    let ethertype: Option<u16> = if w.eat("-p") {
        Some(match w.value()? {
            "802_1Q" => 0x8100,
            "IPv4" => 0x0800,
            "IPv6" => 0x86dd,
            "ARP" => 0x0806,
            _ => return None,
        })
    } else {
        None
    };
    let not_source: Option<MacAddr> = if w.eat("-s") {
        w.expect("!")?;
        Some(w.value()?.parse().ok()?)
    } else {
        None
    };
    w.expect("-i")?;
    let port = w.value()?;
    if port.is_empty() || port.len() > IFNAME_MAX || port.contains(['+', '\0']) {
        return None;
    }
    let info = if w.eat("--ip-src") {
        w.expect("!")?;
        let ip: Ipv4Addr = w.value()?.parse().ok()?;
        (ethertype == Some(0x0800)).then_some(())?;
        Some(("ip", ip_info(ip)))
    } else if w.eat("--arp-ip-src") {
        w.expect("!")?;
        let ip: Ipv4Addr = w.value()?.parse().ok()?;
        (ethertype == Some(0x0806)).then_some(())?;
        Some(("arp", arp_info(Some(ip), None)))
    } else if w.eat("--arp-mac-src") {
        w.expect("!")?;
        let mac: MacAddr = w.value()?.parse().ok()?;
        (ethertype == Some(0x0806)).then_some(())?;
        Some(("arp", arp_info(None, Some(mac))))
    } else {
        None
    };
    w.expect("-j")?;
    w.expect("DROP")?;
    w.done()?;
    // Both a protocol and a source MAC: an order of expressions not read
    // from the tool, and no rule of pont's.
    if ethertype.is_some() && not_source.is_some() {
        return None;
    }

    let mut e = Exprs::new();
    e.meta(expr::META_IIFNAME);
    let mut name = port.as_bytes().to_vec();
    name.push(0);
    e.cmp(expr::CMP_EQ, &name);
    if let Some(t) = ethertype {
        e.payload(expr::BASE_LINK, 12, 2);
        e.cmp(expr::CMP_EQ, &t.to_be_bytes());
    }
    if let Some(mac) = not_source {
        e.payload(expr::BASE_LINK, 6, 6);
        e.cmp(expr::CMP_NEQ, &mac.0);
    }
    if let Some((name, info)) = info {
        e.xt_match(name, &info);
    }
    e.counter();
    e.verdict(expr::NF_DROP, None);
    // ebtables-nft gives the ethertype as it keeps it (network order) read
    // as a host-order number.
    let proto = ethertype.map_or(0, |t| u32::from(u16::from_ne_bytes(t.to_be_bytes())));
    Some(Encoded {
        exprs: e.into_bytes(),
        proto,
    })
}

/// struct ebt_ip_info for `--ip-src ! IP`.
fn ip_info(ip: Ipv4Addr) -> Vec<u8> {
    let mut info = vec![0u8; EBT_IP_INFO_LEN];
    info[0..4].copy_from_slice(&ip.octets()); // saddr
    info[8..12].copy_from_slice(&[0xff; 4]); // smsk
    info[18] = EBT_IP_SOURCE; // bitmask
    info[19] = EBT_IP_SOURCE; // invflags
    info
}

/// struct ebt_arp_info for `--arp-ip-src ! IP` or `--arp-mac-src ! MAC`.
fn arp_info(ip: Option<Ipv4Addr>, mac: Option<MacAddr>) -> Vec<u8> {
    let mut info = vec![0u8; EBT_ARP_INFO_LEN];
    let mut flag = 0;
    if let Some(ip) = ip {
        info[8..12].copy_from_slice(&ip.octets()); // saddr
        info[12..16].copy_from_slice(&[0xff; 4]); // smsk
        flag |= EBT_ARP_SRC_IP;
    }
    if let Some(mac) = mac {
        info[24..30].copy_from_slice(&mac.0); // smaddr
        info[30..36].copy_from_slice(&[0xff; 6]); // smmsk
        flag |= EBT_ARP_SRC_MAC;
    }
    info[48] = flag; // bitmask
    info[49] = flag; // invflags
    info
}
