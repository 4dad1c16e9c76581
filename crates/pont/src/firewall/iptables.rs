//! The iptables backend: chains named `PONT-*` in the filter and nat tables,
//! each hooked into a built-in chain by one jump, rewritten by one
//! `iptables-restore --noflush` batch per operation (`-w`: wait for the xtables
//! lock instead of failing). Port-to-port isolation on icc=false bridges goes
//! through ebtables, since iptables never sees switched frames unless
//! br_netfilter passes them up.
//!
//! Where the jumps go, and why:
//! - `PONT-FORWARD` first in FORWARD. It only drops or returns, so rules an admin
//!   already had in FORWARD keep working; it starts with `PONT-USER`, the
//!   admin's chain, which pont creates once and never flushes.
//! - `PONT-ACCEPT` last in FORWARD: it accepts what pont allows, so pont's
//!   containers work under a FORWARD policy of DROP, after every other rule.
//! - `PONT-INPUT` first in INPUT (drops only), `PONT-POSTROUTING` first in nat
//!   POSTROUTING.

use std::fmt::Write;

use super::tool::{self, FirewallError};
use super::{NetworkRules, RuleSet};

pub const USER_CHAIN: &str = "PONT-USER";
const FILTER_CHAINS: [&str; 3] = ["PONT-FORWARD", "PONT-ACCEPT", "PONT-INPUT"];
const NAT_CHAINS: [&str; 1] = ["PONT-POSTROUTING"];
const EB_CHAIN: &str = "PONT-ISOLATE";

/// A jump from a built-in chain: (table, built-in chain, pont chain, insert first?).
const JUMPS: [(&str, &str, &str, bool); 4] = [
    ("filter", "FORWARD", "PONT-FORWARD", true),
    ("filter", "FORWARD", "PONT-ACCEPT", false),
    ("filter", "INPUT", "PONT-INPUT", true),
    ("nat", "POSTROUTING", "PONT-POSTROUTING", true),
];

pub fn usable() -> bool {
    tool::succeeds("iptables-restore", &["--version"])
        && tool::succeeds("iptables", &["-w", "-S", "FORWARD"])
}

pub fn apply(rules: &RuleSet) -> Result<(), FirewallError> {
    let current = save()?;
    if rules.is_empty() && !chain_has_rules(&current, USER_CHAIN) {
        return remove_with(&current);
    }
    tool::run(
        "iptables-restore",
        &["-w", "--noflush"],
        &render(rules, &current),
    )?;
    apply_ebtables(rules)
}

pub fn remove_all() -> Result<(), FirewallError> {
    remove_with(&save()?)
}

pub fn show() -> Result<String, FirewallError> {
    let current = save()?;
    Ok(current
        .lines()
        .filter(|l| l.starts_with('*') || l.contains("PONT-") || l == &"COMMIT")
        .map(|l| format!("{l}\n"))
        .collect())
}

pub fn is_installed(rules: &RuleSet) -> Result<bool, FirewallError> {
    let current = save()?;
    if rules.is_empty() {
        return Ok(true);
    }
    let jumps = JUMPS
        .iter()
        .all(|(_, builtin, chain, _)| has_jump(&current, builtin, chain));
    let nets = rules
        .networks
        .iter()
        .all(|n| current.contains(&format!("-o {} ", n.bridge)));
    Ok(jumps && nets)
}

fn save() -> Result<String, FirewallError> {
    tool::run("iptables-save", &["-w"], "").or_else(|_| tool::run("iptables-save", &[], ""))
}

/// The batch that makes pont's chains exactly `rules`, given what `iptables-save` shows.
pub fn render(rules: &RuleSet, current: &str) -> String {
    let mut b = String::from("*filter\n");
    for chain in FILTER_CHAINS {
        // Declaring a chain in a --noflush batch creates or flushes it.
        writeln!(b, ":{chain} - [0:0]").unwrap();
    }
    if !has_chain(current, USER_CHAIN) {
        writeln!(b, ":{USER_CHAIN} - [0:0]").unwrap();
    }
    writeln!(b, "-A PONT-FORWARD -j {USER_CHAIN}").unwrap();
    for net in &rules.networks {
        forward_rules(&mut b, net);
    }
    for net in &rules.networks {
        let c = comment(net);
        writeln!(b, "-A PONT-ACCEPT -o {} {c} -j ACCEPT", net.bridge).unwrap();
        writeln!(b, "-A PONT-ACCEPT -i {} {c} -j ACCEPT", net.bridge).unwrap();
    }
    for net in rules.networks.iter().filter(|n| n.internal) {
        let (br, c) = (&net.bridge, comment(net));
        writeln!(
            b,
            "-A PONT-INPUT -i {br} -m conntrack --ctstate RELATED,ESTABLISHED {c} -j RETURN"
        )
        .unwrap();
        writeln!(b, "-A PONT-INPUT -i {br} {c} -j DROP").unwrap();
    }
    add_missing_jumps(&mut b, current, "filter");
    b.push_str("COMMIT\n*nat\n");
    for chain in NAT_CHAINS {
        writeln!(b, ":{chain} - [0:0]").unwrap();
    }
    for net in rules.networks.iter().filter(|n| n.masquerade()) {
        let c = comment(net);
        writeln!(
            b,
            "-A PONT-POSTROUTING -s {} ! -o {} {c} -j MASQUERADE",
            net.subnet, net.bridge
        )
        .unwrap();
    }
    add_missing_jumps(&mut b, current, "nat");
    b.push_str("COMMIT\n");
    b
}

/// Into the bridge: replies, the network's own traffic (if icc), nothing else.
/// Out of an internal bridge: nowhere else.
fn forward_rules(b: &mut String, net: &NetworkRules) {
    let (br, c) = (&net.bridge, comment(net));
    writeln!(
        b,
        "-A PONT-FORWARD -o {br} -m conntrack --ctstate RELATED,ESTABLISHED {c} -j RETURN"
    )
    .unwrap();
    let same = if net.icc { "RETURN" } else { "DROP" };
    writeln!(b, "-A PONT-FORWARD -i {br} -o {br} {c} -j {same}").unwrap();
    writeln!(b, "-A PONT-FORWARD -o {br} {c} -j DROP").unwrap();
    if net.internal {
        writeln!(b, "-A PONT-FORWARD -i {br} {c} -j DROP").unwrap();
    }
}

fn comment(net: &NetworkRules) -> String {
    format!("-m comment --comment \"network {}\"", net.name)
}

fn add_missing_jumps(b: &mut String, current: &str, table: &str) {
    for (t, builtin, chain, first) in JUMPS {
        if t == table && !has_jump(current, builtin, chain) {
            let verb = if first { "-I" } else { "-A" };
            let pos = if first { " 1" } else { "" };
            writeln!(b, "{verb} {builtin}{pos} -j {chain}").unwrap();
        }
    }
}

fn has_chain(current: &str, chain: &str) -> bool {
    current.lines().any(|l| {
        l.strip_prefix(':')
            .is_some_and(|r| r.split(' ').next() == Some(chain))
    })
}

fn has_jump(current: &str, builtin: &str, chain: &str) -> bool {
    current
        .lines()
        .any(|l| l == format!("-A {builtin} -j {chain}"))
}

fn chain_has_rules(current: &str, chain: &str) -> bool {
    let prefix = format!("-A {chain} ");
    current.lines().any(|l| l.starts_with(&prefix))
}

/// Delete the jumps, then the chains (the admin's included).
fn remove_with(current: &str) -> Result<(), FirewallError> {
    let mut b = String::new();
    for table in ["filter", "nat"] {
        let chains: Vec<&str> = match table {
            "filter" => FILTER_CHAINS.iter().copied().chain([USER_CHAIN]).collect(),
            _ => NAT_CHAINS.to_vec(),
        };
        let mut body = String::new();
        for (t, builtin, chain, _) in JUMPS {
            if t == table && has_jump(current, builtin, chain) {
                writeln!(body, "-D {builtin} -j {chain}").unwrap();
            }
        }
        for chain in chains.iter().filter(|c| has_chain(current, c)) {
            writeln!(body, "-F {chain}\n-X {chain}").unwrap();
        }
        if !body.is_empty() {
            writeln!(b, "*{table}\n{body}COMMIT").unwrap();
        }
    }
    if !b.is_empty() {
        tool::run("iptables-restore", &["-w", "--noflush"], &b)?;
    }
    apply_ebtables(&RuleSet::default())
}

/// Frames between ports of an icc=false bridge, dropped at layer 2.
fn apply_ebtables(rules: &RuleSet) -> Result<(), FirewallError> {
    let ports: Vec<(&NetworkRules, &String)> = rules
        .networks
        .iter()
        .filter(|n| !n.icc)
        .flat_map(|n| n.ports.iter().map(move |p| (n, p)))
        .collect();
    let current = tool::run("ebtables-save", &[], "").unwrap_or_default();
    let exists = current
        .lines()
        .any(|l| l.starts_with(&format!(":{EB_CHAIN} ")));
    let jump = current
        .lines()
        .any(|l| l == format!("-A FORWARD -j {EB_CHAIN}"));
    let mut b = String::from("*filter\n");
    if ports.is_empty() {
        if !exists {
            return Ok(());
        }
        if jump {
            writeln!(b, "-D FORWARD -j {EB_CHAIN}").unwrap();
        }
        writeln!(b, "-F {EB_CHAIN}\n-X {EB_CHAIN}").unwrap();
    } else {
        writeln!(b, ":{EB_CHAIN} RETURN").unwrap();
        if exists {
            writeln!(b, "-F {EB_CHAIN}").unwrap();
        }
        // ebtables-restore takes no comments; `firewall show` names the
        // network of each port from the records instead.
        for (_, port) in ports {
            for proto in ["IPv4", "IPv6"] {
                writeln!(b, "-A {EB_CHAIN} -p {proto} -i {port} -j DROP").unwrap();
            }
        }
        if !jump {
            writeln!(b, "-A FORWARD -j {EB_CHAIN}").unwrap();
        }
    }
    tool::run("ebtables-restore", &["--noflush"], &b).map(drop)
}

/// For the nftables backend: a FORWARD policy of DROP in iptables (Docker sets
/// one) would drop what pont's own table allows. Then, and only then, pont
/// keeps `PONT-ACCEPT` appended to FORWARD, accepting its bridges' traffic after
/// every other rule there. Removed again when no network is left.
pub fn sync_forward_shim(rules: &RuleSet) -> Result<(), FirewallError> {
    let Ok(current) = save() else {
        return Ok(()); // no iptables on this host: nothing to work around
    };
    let policy_drop = current.lines().any(|l| l.starts_with(":FORWARD DROP"));
    let installed = has_chain(&current, "PONT-ACCEPT");
    let mut b = String::from("*filter\n");
    if policy_drop && !rules.is_empty() {
        writeln!(b, ":PONT-ACCEPT - [0:0]").unwrap();
        for net in &rules.networks {
            let c = comment(net);
            writeln!(b, "-A PONT-ACCEPT -o {} {c} -j ACCEPT", net.bridge).unwrap();
            writeln!(b, "-A PONT-ACCEPT -i {} {c} -j ACCEPT", net.bridge).unwrap();
        }
        if !has_jump(&current, "FORWARD", "PONT-ACCEPT") {
            b.push_str("-A FORWARD -j PONT-ACCEPT\n");
        }
    } else if installed {
        if has_jump(&current, "FORWARD", "PONT-ACCEPT") {
            b.push_str("-D FORWARD -j PONT-ACCEPT\n");
        }
        b.push_str("-F PONT-ACCEPT\n-X PONT-ACCEPT\n");
    } else {
        return Ok(());
    }
    b.push_str("COMMIT\n");
    tool::run("iptables-restore", &["-w", "--noflush"], &b).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_chains_jumps_and_keeps_the_admin_chain() {
        let rules = super::super::nftables::tests::sample();
        let fresh =
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n";
        let expected = r#"*filter
:PONT-FORWARD - [0:0]
:PONT-ACCEPT - [0:0]
:PONT-INPUT - [0:0]
:PONT-USER - [0:0]
-A PONT-FORWARD -j PONT-USER
-A PONT-FORWARD -o br-0123456789ab -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "network web" -j RETURN
-A PONT-FORWARD -i br-0123456789ab -o br-0123456789ab -m comment --comment "network web" -j RETURN
-A PONT-FORWARD -o br-0123456789ab -m comment --comment "network web" -j DROP
-A PONT-FORWARD -o br-ba9876543210 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "network vault" -j RETURN
-A PONT-FORWARD -i br-ba9876543210 -o br-ba9876543210 -m comment --comment "network vault" -j DROP
-A PONT-FORWARD -o br-ba9876543210 -m comment --comment "network vault" -j DROP
-A PONT-FORWARD -i br-ba9876543210 -m comment --comment "network vault" -j DROP
-A PONT-ACCEPT -o br-0123456789ab -m comment --comment "network web" -j ACCEPT
-A PONT-ACCEPT -i br-0123456789ab -m comment --comment "network web" -j ACCEPT
-A PONT-ACCEPT -o br-ba9876543210 -m comment --comment "network vault" -j ACCEPT
-A PONT-ACCEPT -i br-ba9876543210 -m comment --comment "network vault" -j ACCEPT
-A PONT-INPUT -i br-ba9876543210 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "network vault" -j RETURN
-A PONT-INPUT -i br-ba9876543210 -m comment --comment "network vault" -j DROP
-I FORWARD 1 -j PONT-FORWARD
-A FORWARD -j PONT-ACCEPT
-I INPUT 1 -j PONT-INPUT
COMMIT
*nat
:PONT-POSTROUTING - [0:0]
-A PONT-POSTROUTING -s 10.77.1.0/24 ! -o br-0123456789ab -m comment --comment "network web" -j MASQUERADE
-I POSTROUTING 1 -j PONT-POSTROUTING
COMMIT
"#;
        let got = render(&rules, fresh);
        if got != expected {
            panic!("rendered:\n{got}");
        }
        // A second apply over the first: the admin chain is not redeclared
        // (which would flush it), and no jump is added twice.
        let installed = "*filter\n:PONT-USER - [0:0]\n-A FORWARD -j PONT-FORWARD\n-A FORWARD -j PONT-ACCEPT\n-A INPUT -j PONT-INPUT\n-A PONT-USER -s 192.0.2.9/32 -j DROP\n*nat\n-A POSTROUTING -j PONT-POSTROUTING\n";
        let again = render(&rules, installed);
        assert!(!again.contains(":PONT-USER"), "{again}");
        assert!(
            !again.contains("-I ") && !again.contains("-A FORWARD"),
            "{again}"
        );
    }
}
