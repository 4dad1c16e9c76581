//! The nftables backend: tables `inet pont` (routing decisions and NAT) and
//! `bridge pont` (traffic switched between ports of one bridge, which the IP
//! hooks never see unless br_netfilter passes it up).
//!
//! Every full apply is one `nft -f` transaction that declares pont's chains
//! and sets (a no-op when they exist), flushes them and fills them again, so
//! the result is the same whatever state the kernel was in. Rules are fixed in
//! number; networks and containers are set elements, so the work per packet
//! and the rule count stay flat as they grow.
//!
//! A change (a container or network coming or going) only adds and deletes
//! elements: those go to the kernel over nfnetlink ([`native`]), one
//! transaction with no `nft` process, and so does the presence check
//! ([`presence`]). The same typed [`Element`] renders the text of a full apply.
//!
//! The chain `inet pont user` is the admin's: created once, evaluated first
//! for forwarded traffic, never flushed.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::tool::{self, FirewallError};
use super::{iptables, NetworkRules, RuleSet};
use element::{Element, Family, Field, Shape};

mod element;
mod native;
mod presence;

pub const TABLE: &str = "inet pont";
/// The name both tables share.
const TABLE_NAME: &str = "pont";
pub const BRIDGE_TABLE: &str = "bridge pont";
pub const USER_CHAIN: &str = "user";

/// Chains pont owns and rewrites, with their base-chain declaration if any.
const CHAINS: [(&str, Option<&str>); 8] = [
    (
        "guard",
        Some("type filter hook prerouting priority raw; policy accept;"),
    ),
    (
        "prerouting",
        Some("type nat hook prerouting priority dstnat; policy accept;"),
    ),
    (
        "output",
        Some("type nat hook output priority -100; policy accept;"),
    ),
    (
        "forward",
        Some("type filter hook forward priority filter; policy accept;"),
    ),
    ("to_bridge", None),
    ("from_internal", None),
    (
        "input",
        Some("type filter hook input priority filter; policy accept;"),
    ),
    (
        "postrouting",
        Some("type nat hook postrouting priority srcnat; policy accept;"),
    ),
];

/// Sets and maps pont owns: name and declaration.
const SETS: [(&str, &str); 8] = [
    ("bridges", "type ifname;"),
    // subnet . its bridge: "the source lives on the bridge it goes out of"
    ("subnet_bridges", "type ipv4_addr . ifname; flags interval;"),
    ("internal_bridges", "type ifname;"),
    ("icc_pairs", "type ifname . ifname;"),
    ("nat_sources", "type ipv4_addr; flags interval;"),
    // Single ports are exact keys in hash maps, never intervals: an interval
    // map of concatenations (the kernel's pipapo set) costs time in the number
    // of its elements per lookup and per deletion. With 10000 published ports
    // that cut the rate of new connections to a third and made each removal
    // 85 ms (docs/benchmarks.md); a hash map stays flat.
    // protocol . host port -> container address . port, on every host address
    (
        "dnat_any_ports",
        "type inet_proto . inet_service : ipv4_addr . inet_service;",
    ),
    // host address . protocol . host port -> container address . port
    (
        "dnat_addr_ports",
        "type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service;",
    ),
    // host address . protocol . port range -> container address (same ports)
    (
        "dnat_ranges",
        "type ipv4_addr . inet_proto . inet_service : ipv4_addr; flags interval;",
    ),
];

// Every packet walks `guard` and `forward`, and every frame from a container
// port `antispoof`: their rules test the cheap match first and let an
// accepted flow go before its last set lookups. Per data packet and its ACK
// of a flow from the LAN to a published port that is 4 set lookups instead
// of 10, container to container 8 instead of 16 (perf, bench's iperf3 paths:
// pont's chains from about 4.5 % to 3.2 % and 7 % to 5.5 % of the CPU).
const STATIC_RULES: [(&str, &str); 22] = [
    // A container must not reach the host's loopback services through the
    // route_localnet that its bridge has (for 127.0.0.1 port mappings). The
    // address first: other packets skip the set lookup.
    ("guard", "ip daddr 127.0.0.0/8 iifname @bridges counter drop"),
    // Published ports. Loopback-bound mappings are for the host alone: only
    // locally made packets (output chain) are translated to them.
    ("prerouting", "ip daddr 127.0.0.0/8 return"),
    ("prerouting", "meta l4proto { tcp, udp, sctp } fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @dnat_addr_ports"),
    ("prerouting", "meta l4proto { tcp, udp, sctp } fib daddr type local dnat ip to meta l4proto . th dport map @dnat_any_ports"),
    ("prerouting", "meta l4proto { tcp, udp, sctp } fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @dnat_ranges"),
    ("output", "meta l4proto { tcp, udp, sctp } fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @dnat_addr_ports"),
    ("output", "meta l4proto { tcp, udp, sctp } fib daddr type local dnat ip to meta l4proto . th dport map @dnat_any_ports"),
    ("output", "meta l4proto { tcp, udp, sctp } fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @dnat_ranges"),
    // The admin decides first: accept there skips pont's drops, drop is final.
    ("forward", "jump user"),
    // Before the accepts into bridges, or a DNATed packet from an internal
    // network would be let into another network's bridge.
    ("forward", "iifname @internal_bridges jump from_internal"),
    // Past that point an established or related packet was accepted anyway,
    // by to_bridge's first rule or by the policy: accepting it here spares
    // the lookup below. Not earlier: from_internal drops replies too.
    ("forward", "ct state established,related accept"),
    ("forward", "oifname @bridges jump to_bridge"),
    // Into a container: replies, published ports, its own network (if icc), nothing else.
    ("to_bridge", "ct state established,related accept"),
    ("to_bridge", "ct status dnat accept"),
    ("to_bridge", "iifname . oifname @icc_pairs accept"),
    ("to_bridge", "counter drop"),
    // Out of an internal network: nowhere, not even by a route a container set
    // itself or through a published port. Traffic within its own bridge
    // (which br_netfilter shows here) goes on to to_bridge.
    ("from_internal", "iifname . oifname @icc_pairs return"),
    ("from_internal", "counter drop"),
    // The host's own addresses are not reachable from internal networks.
    ("input", "iifname @internal_bridges ct state established,related accept"),
    ("input", "iifname @internal_bridges counter drop"),
    ("postrouting", "ip saddr @nat_sources oifname != @bridges masquerade"),
    // Hairpin (a container reaching a published port of its own network) and
    // host loopback clients: the server must answer through the host.
    ("postrouting", "ct status dnat ip saddr . oifname @subnet_bridges masquerade"),
];

/// The loopback source of host clients of 127.0.0.1 mappings is masqueraded too.
const LOOPBACK_MASQUERADE: (&str, &str) = (
    "postrouting",
    "ip saddr 127.0.0.0/8 ct status dnat masquerade",
);

/// One transaction that makes pont's rules exactly `rules`.
pub fn render(rules: &RuleSet) -> String {
    let mut b = String::new();
    declare(&mut b);
    for (chain, rule) in STATIC_RULES.iter().chain([&LOOPBACK_MASQUERADE]) {
        writeln!(b, "add rule {TABLE} {chain} {rule}").unwrap();
    }
    declare_bridge_table(&mut b);
    write_elements(&mut b, "add", &elements(rules).iter().collect::<Vec<_>>());
    b
}

/// One transaction that turns `before` into `after`, touching only the set
/// elements that differ: the work is proportional to the change, not to the
/// number of networks, containers and ports.
/// The text twin of [`apply_container_change`], for tests to compare with.
#[cfg(test)]
pub fn render_change(before: &RuleSet, after: &RuleSet) -> String {
    let (old, new) = element_sets(before, after);
    let (delete, add) = difference(&old, &new);
    let mut b = String::new();
    write_elements(&mut b, "delete", &delete);
    write_elements(&mut b, "add", &add);
    b
}

fn element_sets(before: &RuleSet, after: &RuleSet) -> (BTreeSet<Element>, BTreeSet<Element>) {
    let old = elements(before).into_iter().collect();
    let new = elements(after).into_iter().collect();
    (old, new)
}

/// The elements to delete and to add, each sorted (so grouped by set).
fn difference<'a>(
    old: &'a BTreeSet<Element>,
    new: &'a BTreeSet<Element>,
) -> (Vec<&'a Element>, Vec<&'a Element>) {
    (old.difference(new).collect(), new.difference(old).collect())
}

/// One `add element` (with values and labels) or `delete element` (keys
/// only) statement per set, listing all of that set's elements: nft takes
/// far longer to delete interval elements that were added one statement
/// each (2.5 s against 0.15 s for an offset range of 1000 ports, measured
/// with nft 1.0.6; regression test ports_range). `elements` is sorted, so
/// those of one set are adjacent.
fn write_elements(b: &mut String, verb: &str, elements: &[&Element]) {
    for group in elements.chunk_by(|x, y| (x.family, x.set) == (y.family, y.set)) {
        let items: Vec<String> = group
            .iter()
            .map(|e| match verb {
                "delete" => e.key_text(),
                _ => e.text(),
            })
            .collect();
        let (table, set) = (group[0].family.table(), group[0].set);
        writeln!(b, "{verb} element {table} {set} {{ {} }}", items.join(", ")).unwrap();
    }
}

/// One transaction that removes both tables (the admin chain with them).
pub fn render_removal() -> String {
    format!(
        "add table {TABLE}\ndelete table {TABLE}\nadd table {BRIDGE_TABLE}\ndelete table {BRIDGE_TABLE}\n"
    )
}

fn declare(b: &mut String) {
    writeln!(b, "add table {TABLE}").unwrap();
    writeln!(b, "add chain {TABLE} {USER_CHAIN}").unwrap();
    for (name, base) in CHAINS {
        match base {
            Some(decl) => writeln!(b, "add chain {TABLE} {name} {{ {decl} }}").unwrap(),
            None => writeln!(b, "add chain {TABLE} {name}").unwrap(),
        }
        writeln!(b, "flush chain {TABLE} {name}").unwrap();
    }
    for (name, decl) in SETS {
        let kind = if decl.contains(" : ") { "map" } else { "set" };
        writeln!(b, "add {kind} {TABLE} {name} {{ {decl} }}").unwrap();
        writeln!(b, "flush {kind} {TABLE} {name}").unwrap();
    }
}

/// Port-to-port traffic on a bridge with icc=false. Only IP is dropped: ARP
/// still resolves the gateway, as on Docker's icc=false bridges. And
/// anti-spoofing: a frame that enters a bridge from a container's port must
/// carry that container's MAC and, for IPv4 and ARP, its IPv4 address
/// (checked in prerouting, so it covers traffic to other containers and to
/// the host alike). VLAN tags are refused, so no frame hides another inside.
fn declare_bridge_table(b: &mut String) {
    let t = BRIDGE_TABLE;
    writeln!(b, "add table {t}").unwrap();
    writeln!(
        b,
        "add chain {t} forward {{ type filter hook forward priority filter; policy accept; }}"
    )
    .unwrap();
    writeln!(b, "flush chain {t} forward").unwrap();
    writeln!(b, "add set {t} isolated_ports {{ type ifname; }}").unwrap();
    writeln!(b, "flush set {t} isolated_ports").unwrap();
    writeln!(
        b,
        "add rule {t} forward iifname @isolated_ports ether type {{ ip, ip6 }} counter drop"
    )
    .unwrap();
    for (set, decl) in ANTISPOOF_SETS {
        writeln!(b, "add set {t} {set} {{ {decl} }}").unwrap();
        writeln!(b, "flush set {t} {set}").unwrap();
    }
    writeln!(
        b,
        "add chain {t} antispoof {{ type filter hook prerouting priority filter; policy accept; }}"
    )
    .unwrap();
    writeln!(b, "flush chain {t} antispoof").unwrap();
    for rule in ANTISPOOF_RULES {
        writeln!(b, "add rule {t} antispoof {rule}").unwrap();
    }
}

const ANTISPOOF_SETS: [(&str, &str); 3] = [
    ("guarded_ports", "type ifname;"),
    ("port_macs", "type ifname . ether_addr;"),
    ("port_addrs", "type ifname . ipv4_addr;"),
];

const ANTISPOOF_RULES: [&str; 7] = [
    // An untagged IPv4 frame with its port's MAC and address: what the rules
    // below would let through, in two lookups instead of three.
    "ether type ip iifname . ether saddr @port_macs iifname . ip saddr @port_addrs return",
    "iifname != @guarded_ports return",
    "ether type { 8021q, 8021ad } counter drop",
    "iifname . ether saddr != @port_macs counter drop",
    "ether type ip iifname . ip saddr != @port_addrs counter drop",
    "ether type arp iifname . arp saddr ip != @port_addrs counter drop",
    "ether type arp iifname . arp saddr ether != @port_macs counter drop",
];

/// The shape of a set of pont's, from its declaration.
fn shape(family: Family, set: &str) -> Shape {
    let decl = match family {
        Family::Inet => SETS.iter().find(|(name, _)| *name == set).map(|(_, d)| *d),
        Family::Bridge => ANTISPOOF_SETS
            .iter()
            .find(|(name, _)| *name == set)
            .map(|(_, d)| *d),
    };
    decl.map_or(Shape::Exact, Shape::of)
}

fn elements(rules: &RuleSet) -> Vec<Element> {
    let mut out = Vec::new();
    network_elements(rules, &mut out);
    endpoint_elements(rules, &mut out);
    mapping_elements(rules, &mut out);
    out.sort();
    out
}

fn element(family: Family, set: &'static str, key: Vec<Field>, comment: &str) -> Element {
    Element {
        family,
        set,
        key,
        comment: comment.to_string(),
        value: Vec::new(),
    }
}

fn network_elements(rules: &RuleSet, out: &mut Vec<Element>) {
    for n in &rules.networks {
        let label = format!("network {}", n.name);
        let br = || Field::Ifname(n.bridge.clone());
        let inet = |set, key| element(Family::Inet, set, key, &label);
        out.push(inet("bridges", vec![br()]));
        out.push(inet("subnet_bridges", vec![Field::Prefix(n.subnet), br()]));
        if n.internal {
            out.push(inet("internal_bridges", vec![br()]));
        }
        if n.icc {
            out.push(inet("icc_pairs", vec![br(), br()]));
        }
        if n.masquerade() {
            out.push(inet("nat_sources", vec![Field::Prefix(n.subnet)]));
        }
    }
}

fn endpoint_elements(rules: &RuleSet, out: &mut Vec<Element>) {
    for e in &rules.endpoints {
        let label = format!("container {} on network {}", e.container, e.network);
        let port = || Field::Ifname(e.port.clone());
        let bridge = |set, key| element(Family::Bridge, set, key, &label);
        if e.isolated {
            let network = format!("network {}", e.network);
            out.push(element(
                Family::Bridge,
                "isolated_ports",
                vec![port()],
                &network,
            ));
        }
        out.push(bridge("guarded_ports", vec![port()]));
        out.push(bridge("port_macs", vec![port(), Field::Ether(e.mac)]));
        out.push(bridge("port_addrs", vec![port(), Field::Addr(e.ipv4)]));
    }
}

fn mapping_elements(rules: &RuleSet, out: &mut Vec<Element>) {
    for m in &rules.mappings {
        let Some(host) = m.host_v4() else { continue };
        let label = format!("container {}", m.container);
        let (hp, cp, proto) = (
            m.mapping.host_ports,
            m.mapping.container_ports,
            m.mapping.protocol,
        );
        if hp == cp && !hp.is_single() {
            // Same ports on both sides: one interval element, whatever the length.
            let key = vec![Field::Prefix(host), Field::Proto(proto), Field::Ports(hp)];
            let mut e = element(Family::Inet, "dnat_ranges", key, &label);
            e.value = vec![Field::Addr(m.container_ip)];
            out.push(e);
            continue;
        }
        // Every host address, or exactly one (no prefix: hash keys are exact).
        let (set, addr) = match host.prefix_len() {
            0 => ("dnat_any_ports", None),
            _ => ("dnat_addr_ports", Some(Field::Addr(host.network()))),
        };
        for offset in 0..hp.count() {
            let (h, c) = (u32::from(hp.start) + offset, u32::from(cp.start) + offset);
            let port = |p: u32| Field::Port(u16::try_from(p).expect("ranges were validated"));
            let key = addr.iter().cloned().chain([Field::Proto(proto), port(h)]);
            let mut e = element(Family::Inet, set, key.collect(), &label);
            e.value = vec![Field::Addr(m.container_ip), port(c)];
            out.push(e);
        }
    }
}

pub fn usable() -> bool {
    tool::succeeds("nft", &["list", "tables"])
}

/// Apply only what changed from `before` to `after`: set elements, sent
/// natively (no `nft` process). Callers fall back to [`apply`] if this fails
/// (for example because the table was flushed).
pub fn apply_change(before: &RuleSet, after: &RuleSet) -> Result<(), FirewallError> {
    if before.is_empty() || after.is_empty() {
        return apply(after);
    }
    send_change(before, after)?;
    if before.networks != after.networks {
        iptables::sync_forward_shim(&after.networks)?;
    }
    Ok(())
}

/// Replace one operation's share of container rules (see
/// [`super::container_rules`]): only set elements change, in one native
/// transaction.
pub fn apply_container_change(before: &RuleSet, after: &RuleSet) -> Result<(), FirewallError> {
    send_change(before, after)
}

/// The element changes of [`render_change`], sent over nfnetlink.
fn send_change(before: &RuleSet, after: &RuleSet) -> Result<(), FirewallError> {
    let (old, new) = element_sets(before, after);
    let (delete, add) = difference(&old, &new);
    native::send(&delete, &add)
}

pub fn apply(rules: &RuleSet) -> Result<(), FirewallError> {
    if rules.is_empty() && !user_chain_has_rules()? {
        remove_all()?;
    } else {
        tool::run("nft", &["-f", "-"], &render(rules))?;
    }
    // Another firewall's FORWARD policy of DROP would drop what pont allows.
    iptables::sync_forward_shim(&rules.networks)
}

pub fn remove_all() -> Result<(), FirewallError> {
    tool::run("nft", &["-f", "-"], &render_removal())?;
    iptables::sync_forward_shim(&[])
}

/// Both tables (every set element carries its network or container in a
/// comment) and the iptables FORWARD shim if there is one.
pub fn show() -> Result<String, FirewallError> {
    let mut out = String::new();
    for table in [TABLE, BRIDGE_TABLE] {
        let args: Vec<&str> = ["list", "table"]
            .into_iter()
            .chain(table.split(' '))
            .collect();
        if let Ok(listing) = tool::run("nft", &args, "") {
            out.push_str(&listing);
        }
    }
    out.push_str(&iptables::show_forward_shim());
    Ok(out)
}

/// Present means: the jump into pont's forward logic exists, every bridge is
/// in the set, the anti-spoofing set holds one port per live endpoint (`nft
/// flush ruleset` or a flushed table, chain or set fails this), the
/// anti-spoofing chain exists, and under an iptables FORWARD policy of DROP
/// the accept shim is in place. Read over nfnetlink, no process (legacy
/// iptables aside); never lists the port maps.
pub fn is_installed(networks: &[NetworkRules], endpoints: usize) -> Result<bool, FirewallError> {
    presence::is_installed(networks, endpoints)
}

fn user_chain_has_rules() -> Result<bool, FirewallError> {
    match tool::run("nft", &["list", "chain", "inet", "pont", USER_CHAIN], "") {
        // The listing is `table … { chain user { RULES } }`: rules are the lines
        // between the chain's opening and closing braces.
        Ok(listing) => Ok(listing
            .lines()
            .map(str::trim)
            .skip_while(|l| !l.starts_with("chain "))
            .skip(1)
            .any(|l| !l.is_empty() && l != "}")),
        Err(_) => Ok(false),
    }
}

#[cfg(test)]
mod kernel_tests;
#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod timing;
