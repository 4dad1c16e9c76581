//! The nftables backend: tables `inet pont` (routing decisions and NAT) and
//! `bridge pont` (traffic switched between ports of one bridge, which the IP
//! hooks never see unless br_netfilter passes it up).
//!
//! Every apply is one `nft -f` transaction that declares pont's chains and
//! sets (a no-op when they exist), flushes them and fills them again, so the
//! result is the same whatever state the kernel was in. Rules are fixed in
//! number; networks and containers are set elements, so the work per packet
//! and the rule count stay flat as they grow.
//!
//! The chain `inet pont user` is the admin's: created once, evaluated first
//! for forwarded traffic, never flushed.

use std::fmt::Write;

use super::tool::{self, FirewallError};
use super::{iptables, RuleSet};

pub const TABLE: &str = "inet pont";
pub const BRIDGE_TABLE: &str = "bridge pont";
pub const USER_CHAIN: &str = "user";

/// Chains pont owns and rewrites, with their base-chain declaration if any.
const CHAINS: [(&str, Option<&str>); 5] = [
    (
        "forward",
        Some("type filter hook forward priority filter; policy accept;"),
    ),
    ("to_bridge", None),
    (
        "input",
        Some("type filter hook input priority filter; policy accept;"),
    ),
    (
        "postrouting",
        Some("type nat hook postrouting priority srcnat; policy accept;"),
    ),
    ("from_internal", None),
];

/// Sets pont owns: name and declaration.
const SETS: [(&str, &str); 4] = [
    ("bridges", "type ifname;"),
    ("internal_bridges", "type ifname;"),
    ("icc_pairs", "type ifname . ifname;"),
    ("nat_sources", "type ipv4_addr; flags interval;"),
];

/// One transaction that makes pont's rules exactly `rules`.
pub fn render(rules: &RuleSet) -> String {
    let mut b = String::new();
    declare(&mut b);
    rules_inet(&mut b);
    elements(&mut b, rules);
    rules_bridge(&mut b, rules);
    b
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
        writeln!(b, "add set {TABLE} {name} {{ {decl} }}").unwrap();
        writeln!(b, "flush set {TABLE} {name}").unwrap();
    }
}

fn rules_inet(b: &mut String) {
    let rule = |b: &mut String, chain: &str, text: &str| {
        writeln!(b, "add rule {TABLE} {chain} {text}").unwrap();
    };
    // The admin decides first: accept there skips pont's drops, drop is final.
    rule(b, "forward", &format!("jump {USER_CHAIN}"));
    rule(b, "forward", "oifname @bridges jump to_bridge");
    rule(b, "forward", "iifname @internal_bridges jump from_internal");
    // Into a container: replies, its own network (if icc) and nothing else.
    rule(b, "to_bridge", "ct state established,related accept");
    rule(b, "to_bridge", "iifname . oifname @icc_pairs accept");
    rule(b, "to_bridge", "counter drop");
    // Out of an internal network: nowhere, not even by a route a container set itself.
    rule(b, "from_internal", "counter drop");
    // The host's own addresses are not reachable from internal networks.
    rule(
        b,
        "input",
        "iifname @internal_bridges ct state established,related accept",
    );
    rule(b, "input", "iifname @internal_bridges counter drop");
    rule(
        b,
        "postrouting",
        "ip saddr @nat_sources oifname != @bridges masquerade",
    );
}

fn elements(b: &mut String, rules: &RuleSet) {
    let mut add = |set: &str, items: Vec<String>| {
        if !items.is_empty() {
            writeln!(b, "add element {TABLE} {set} {{ {} }}", items.join(", ")).unwrap();
        }
    };
    let label = |name: &str| format!("comment \"network {name}\"");
    let nets = &rules.networks;
    add(
        "bridges",
        nets.iter()
            .map(|n| format!("\"{}\" {}", n.bridge, label(&n.name)))
            .collect(),
    );
    add(
        "internal_bridges",
        nets.iter()
            .filter(|n| n.internal)
            .map(|n| format!("\"{}\" {}", n.bridge, label(&n.name)))
            .collect(),
    );
    add(
        "icc_pairs",
        nets.iter()
            .filter(|n| n.icc)
            .map(|n| format!("\"{0}\" . \"{0}\" {1}", n.bridge, label(&n.name)))
            .collect(),
    );
    add(
        "nat_sources",
        nets.iter()
            .filter(|n| n.masquerade())
            .map(|n| format!("{} {}", n.subnet, label(&n.name)))
            .collect(),
    );
}

/// Port-to-port traffic on a bridge with icc=false. Only IP is dropped: ARP
/// still resolves the gateway, as on Docker's icc=false bridges.
fn rules_bridge(b: &mut String, rules: &RuleSet) {
    writeln!(b, "add table {BRIDGE_TABLE}").unwrap();
    writeln!(
        b,
        "add chain {BRIDGE_TABLE} forward {{ type filter hook forward priority filter; policy accept; }}"
    )
    .unwrap();
    writeln!(b, "flush chain {BRIDGE_TABLE} forward").unwrap();
    writeln!(
        b,
        "add set {BRIDGE_TABLE} isolated_ports {{ type ifname; }}"
    )
    .unwrap();
    writeln!(b, "flush set {BRIDGE_TABLE} isolated_ports").unwrap();
    writeln!(
        b,
        "add rule {BRIDGE_TABLE} forward iifname @isolated_ports ether type {{ ip, ip6 }} counter drop"
    )
    .unwrap();
    let ports: Vec<String> = rules
        .networks
        .iter()
        .filter(|n| !n.icc)
        .flat_map(|n| {
            n.ports
                .iter()
                .map(move |p| format!("\"{p}\" comment \"network {}\"", n.name))
        })
        .collect();
    if !ports.is_empty() {
        writeln!(
            b,
            "add element {BRIDGE_TABLE} isolated_ports {{ {} }}",
            ports.join(", ")
        )
        .unwrap();
    }
}

pub fn usable() -> bool {
    tool::succeeds("nft", &["list", "tables"])
}

pub fn apply(rules: &RuleSet) -> Result<(), FirewallError> {
    if rules.is_empty() && !user_chain_has_rules()? {
        remove_all()?;
    } else {
        tool::run("nft", &["-f", "-"], &render(rules))?;
    }
    // Another firewall's FORWARD policy of DROP would drop what pont allows.
    iptables::sync_forward_shim(rules)
}

pub fn remove_all() -> Result<(), FirewallError> {
    tool::run("nft", &["-f", "-"], &render_removal())?;
    iptables::sync_forward_shim(&RuleSet::default())
}

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
    Ok(out)
}

/// Present means: the jump into pont's forward logic exists and every bridge is
/// in the set (`nft flush ruleset` or a flushed chain or set fails this).
pub fn is_installed(rules: &RuleSet) -> Result<bool, FirewallError> {
    let Ok(listing) = tool::run("nft", &["list", "table", "inet", "pont"], "") else {
        return Ok(rules.is_empty());
    };
    let bridges_listed = rules
        .networks
        .iter()
        .all(|n| listing.contains(&format!("\"{}\"", n.bridge)));
    Ok(listing.contains("jump to_bridge") && bridges_listed)
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
pub(crate) mod tests;
