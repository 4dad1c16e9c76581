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
//! - `PONT-DNAT` first in nat PREROUTING and OUTPUT, dispatching on the host
//!   port into one chain per block of ports ([`dnat`]).
//!
//! The kernel checks the whole nat table on every batch that adds a rule
//! with a verdict (nf_tables' loop and hook validation, `nft_chain_validate`,
//! walks every rule reachable from each base chain): about 0.6 µs per rule
//! and base chain, and the mappings are reached from both PREROUTING and
//! OUTPUT: one `iptables-restore` adding a rule took 3.7 ms with no
//! mapping installed and 13.7 ms with 10000 (7.6 ms with the OUTPUT jump
//! deleted), whatever the chains look like. That is the one cost here that
//! grows with the number of mappings; deletions are not checked.

mod dnat;
mod ebtables;
mod native;
mod presence;

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write;

use super::tool::{self, FirewallError};
use super::{NetworkRules, RuleSet};
use dnat::{ChainChange, DNAT_CHAIN};

pub const USER_CHAIN: &str = "PONT-USER";
/// Chains pont owns and rewrites, per table.
const CHAINS: [(&str, &str); 6] = [
    ("raw", "PONT-PREROUTING"),
    ("filter", "PONT-FORWARD"),
    ("filter", "PONT-ACCEPT"),
    ("filter", "PONT-INPUT"),
    ("nat", DNAT_CHAIN),
    ("nat", "PONT-POSTROUTING"),
];
const TABLES: [&str; 3] = ["raw", "filter", "nat"];
/// Chains whose rules of different networks must come in a set order (see
/// [`rules_of`]): drops of internal networks before any network's returns,
/// masquerade exemptions for traffic into any bridge before the masquerades.
const ORDERED: [(&str, &str); 2] = [("filter", "PONT-FORWARD"), ("nat", "PONT-POSTROUTING")];

/// A jump from a built-in chain: (table, built-in chain, match, pont chain, insert first?).
const JUMPS: [(&str, &str, &str, &str, bool); 7] = [
    ("raw", "PREROUTING", "", "PONT-PREROUTING", true),
    ("filter", "FORWARD", "", "PONT-FORWARD", true),
    ("filter", "FORWARD", "", "PONT-ACCEPT", false),
    ("filter", "INPUT", "", "PONT-INPUT", true),
    // Loopback-bound mappings are for the host alone: only locally made
    // packets (OUTPUT) are translated to them.
    (
        "nat",
        "PREROUTING",
        "! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL ",
        DNAT_CHAIN,
        true,
    ),
    (
        "nat",
        "OUTPUT",
        "-m addrtype --dst-type LOCAL ",
        DNAT_CHAIN,
        true,
    ),
    ("nat", "POSTROUTING", "", "PONT-POSTROUTING", true),
];

/// One rule of pont's: table, chain and the rest of the `-A` line.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Rule {
    table: &'static str,
    chain: String,
    spec: String,
}

impl Rule {
    fn new(table: &'static str, chain: impl Into<String>, spec: String) -> Rule {
        Rule {
            table,
            chain: chain.into(),
            spec,
        }
    }
}

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
    ebtables::apply(rules)
}

/// Delete the rules that went away and append the new ones. Most chains
/// hold only groups keyed by their own bridge or port, whose order does not
/// matter; the [`ORDERED`] chains are rewritten whole when they differ
/// (they change only with the networks, never with a port mapping).
pub fn apply_change(before: &RuleSet, after: &RuleSet) -> Result<(), FirewallError> {
    if before.is_empty() || after.is_empty() {
        return apply(after);
    }
    let layer3 = render_rule_change(before, after);
    let layer2 = ebtables::change_batch(before, after);
    side_by_side(&layer2, || restore(&layer3))
}

/// The iptables batch of [`apply_change`].
fn render_rule_change(before: &RuleSet, after: &RuleSet) -> String {
    let (old, new) = (rules_of(before), rules_of(after));
    let chains = ChainChange::between(&old, &new);
    render_change(&old, &new, &chains)
}

/// Replace one operation's share of container rules (see
/// [`super::container_rules`]): DNAT rules deleted and appended one by one
/// in their blocks' chains, a block's chain and jump made or removed with
/// its first or last mapping, and the container's ebtables rules likewise.
/// `-D` of a rule that is not there fails the batch, which tells the caller
/// to rewrite from the records.
///
/// On iptables-nft 1.8.9 all of it goes over nfnetlink, with no process, as
/// one transaction ([`native`]).
pub fn apply_container_change(before: &RuleSet, after: &RuleSet) -> Result<(), FirewallError> {
    let change = dnat::ContainerChange::new(&before.mappings, &after.mappings);
    let layer2 = ebtables::port_changes(before, after);
    if native::mode() == native::Mode::Native {
        if let Some(done) = native::apply_container_change(&change, &layer2) {
            return done;
        }
    }
    let native_probe = native::mode() != native::Mode::Tools;
    container_change_with_tools(&change, &layer2, native_probe)
}

/// [`apply_container_change`] by `iptables-restore` and `ebtables-restore`,
/// the port blocks probed with dumps (`native_probe`) or `iptables -S`.
fn container_change_with_tools(
    change: &dnat::ContainerChange,
    layer2: &[ebtables::PortChange],
    native_probe: bool,
) -> Result<(), FirewallError> {
    side_by_side(&ebtables::render_changes(layer2), || {
        if change.is_empty() {
            return Ok(());
        }
        let probed = if native_probe {
            native::probe(change)?
        } else {
            change.probe()?
        };
        restore(&change.render(&probed))
    })
}

/// Run `ebtables-restore` with `layer2` while `layer3` runs (each tool's
/// start, and after a deletion the grace period its exit waits for, overlap).
fn side_by_side(
    layer2: &str,
    layer3: impl FnOnce() -> Result<(), FirewallError>,
) -> Result<(), FirewallError> {
    let running = if layer2.is_empty() {
        None
    } else {
        Some(tool::start("ebtables-restore", &["--noflush"], layer2)?)
    };
    let l3 = layer3();
    let l2 = running.map_or(Ok(()), |r| r.finish().map(drop));
    l3.and(l2)
}

fn restore(batch: &str) -> Result<(), FirewallError> {
    if batch.is_empty() {
        return Ok(());
    }
    tool::run("iptables-restore", &["-w", "--noflush"], batch).map(drop)
}

/// The batch that turns `old` into `new`, with the nat chains `chains` made
/// (before their rules) and removed (after them).
fn render_change(old: &[Rule], new: &[Rule], chains: &ChainChange) -> String {
    let in_chain = |rules: &[Rule], chain: &str| -> Vec<String> {
        let of_chain = rules.iter().filter(|r| r.chain == chain);
        of_chain.map(|r| r.spec.clone()).collect()
    };
    let (gone, come) = difference(old, new);
    let mut b = String::new();
    for table in TABLES {
        let mut body = String::new();
        if table == "nat" {
            for chain in &chains.create {
                writeln!(body, ":{chain} - [0:0]").unwrap();
            }
        }
        for (_, chain) in ORDERED.iter().filter(|(t, _)| *t == table) {
            let now = in_chain(new, chain);
            if in_chain(old, chain) != now {
                writeln!(body, "-F {chain}").unwrap();
                for spec in now {
                    writeln!(body, "-A {chain} {spec}").unwrap();
                }
            }
        }
        let unordered = |r: &&&Rule| r.table == table && !is_ordered(&r.chain);
        for r in gone.iter().filter(unordered) {
            writeln!(body, "-D {} {}", r.chain, r.spec).unwrap();
        }
        for r in come.iter().filter(unordered) {
            writeln!(body, "-A {} {}", r.chain, r.spec).unwrap();
        }
        if table == "nat" {
            for chain in &chains.remove {
                writeln!(body, "-X {chain}").unwrap();
            }
        }
        if !body.is_empty() {
            writeln!(b, "*{table}\n{body}COMMIT").unwrap();
        }
    }
    b
}

/// The rules of `old` not in `new` and those of `new` not in `old`, each in
/// its order: what a change deletes and appends.
fn difference<'a>(old: &'a [Rule], new: &'a [Rule]) -> (Vec<&'a Rule>, Vec<&'a Rule>) {
    // Sets, not `Vec::contains`: with 10000 published ports a quadratic
    // comparison took seconds per change (bench/run.sh, k-th mapping).
    let (old_set, new_set): (HashSet<&Rule>, HashSet<&Rule>) =
        (old.iter().collect(), new.iter().collect());
    let gone = old.iter().filter(|r| !new_set.contains(r)).collect();
    let come = new.iter().filter(|r| !old_set.contains(r)).collect();
    (gone, come)
}

fn is_ordered(chain: &str) -> bool {
    ORDERED.iter().any(|(_, c)| *c == chain)
}

pub fn remove_all() -> Result<(), FirewallError> {
    remove_with(&save()?)
}

/// pont's chains from `iptables-save`, then its ebtables chains, whose rules
/// cannot carry comments: they are grouped under a `# network NAME` or
/// `# container NAME` heading by the bridge ports `rules` lists.
pub fn show(rules: &RuleSet) -> Result<String, FirewallError> {
    let mut out: String = save()?
        .lines()
        .filter(|l| l.starts_with('*') || l.contains("PONT-") || l == &"COMMIT")
        .map(|l| format!("{l}\n"))
        .collect();
    let eb = tool::run("ebtables-save", &[], "").unwrap_or_default();
    out.push_str(&ebtables::show_isolation(&eb, rules));
    out.push_str(&ebtables::show_antispoof(&eb, rules));
    Ok(out)
}

/// For the nftables backend's `firewall show`: the FORWARD shim, if installed.
pub fn show_forward_shim() -> String {
    let Ok(filter) = tool::run("iptables", &["-w", "-S"], "") else {
        return String::new();
    };
    let lines: Vec<&str> = filter
        .lines()
        .filter(|l| l.contains("PONT-ACCEPT"))
        .collect();
    if lines.is_empty() {
        return String::new();
    }
    let mut out = String::from("# iptables FORWARD shim (its policy is DROP)\n");
    lines.iter().for_each(|l| writeln!(out, "{l}").unwrap());
    out
}

/// See [`presence`]. The number of guarded container ports is not checked
/// here (it would mean listing every port's rules on every command).
pub fn is_installed(networks: &[NetworkRules], _endpoints: usize) -> Result<bool, FirewallError> {
    presence::hooked(networks)
}

/// `iptables-save` takes no `-w` (1.8.9 refuses it): reading needs no xtables
/// lock, and trying `-w` first cost a failed process on every save.
fn save() -> Result<String, FirewallError> {
    tool::run("iptables-save", &[], "")
}

/// The batch that makes pont's chains exactly `rules`, given what `iptables-save` shows.
pub(super) fn render(rules: &RuleSet, current: &str) -> String {
    let all = rules_of(rules);
    let blocks: BTreeSet<&str> = all
        .iter()
        .map(|r| r.chain.as_str())
        .filter(|c| dnat::is_block_chain(c))
        .collect();
    let mut b = String::new();
    for table in TABLES {
        writeln!(b, "*{table}").unwrap();
        let owned = CHAINS.iter().filter(|(t, _)| *t == table).map(|(_, c)| *c);
        let in_use = blocks.iter().copied().filter(|_| table == "nat");
        for chain in owned.chain(in_use) {
            // Declaring a chain in a --noflush batch creates or flushes it.
            writeln!(b, ":{chain} - [0:0]").unwrap();
        }
        if table == "filter" && !has_chain(current, USER_CHAIN) {
            writeln!(b, ":{USER_CHAIN} - [0:0]").unwrap();
        }
        for r in all.iter().filter(|r| r.table == table) {
            writeln!(b, "-A {} {}", r.chain, r.spec).unwrap();
        }
        for (t, builtin, m, chain, first) in JUMPS {
            if t == table && !has_jump(current, builtin, m, chain) {
                let at = if first {
                    format!("-I {builtin} 1")
                } else {
                    format!("-A {builtin}")
                };
                writeln!(b, "{at} {m}-j {chain}").unwrap();
            }
        }
        if table == "nat" {
            // Blocks that lost their mappings: their jumps went with the
            // flush of PONT-DNAT above. One that a rule outside pont's
            // chains still jumps to (an admin's, from PREROUTING) is only
            // emptied: deleting it would fail the whole batch (EBUSY), and
            // with it every change, a container's removal included.
            for stale in dnat::block_chains_in(current) {
                if !blocks.contains(stale.as_str()) {
                    writeln!(b, "-F {stale}").unwrap();
                    if !targeted_from_outside(current, &stale) {
                        writeln!(b, "-X {stale}").unwrap();
                    }
                }
            }
        }
        b.push_str("COMMIT\n");
    }
    b
}

/// pont's rules in the order they are written. Within PONT-FORWARD, every
/// internal network's drop comes before any network's returns (else a DNATed
/// packet from an internal network would be let into another bridge); within
/// PONT-POSTROUTING, the hairpin masquerades, then one return per bridge (no
/// other masquerade into a pont bridge: a container of another network keeps
/// its address), then the outbound masquerades.
fn rules_of(rules: &RuleSet) -> Vec<Rule> {
    let mut out = Vec::new();
    let mut add = |table, chain, spec: String| out.push(Rule::new(table, chain, spec));
    add("filter", "PONT-FORWARD", format!("-j {USER_CHAIN}"));
    for net in rules.networks.iter().filter(|n| n.internal) {
        let (br, c) = (&net.bridge, comment(&net.name, "network"));
        // Out of an internal network: nowhere else, and not to the host.
        add(
            "filter",
            "PONT-FORWARD",
            format!("-i {br} ! -o {br} {c} -j DROP"),
        );
        add(
            "filter",
            "PONT-INPUT",
            format!("-i {br} -m conntrack --ctstate RELATED,ESTABLISHED {c} -j RETURN"),
        );
        add("filter", "PONT-INPUT", format!("-i {br} {c} -j DROP"));
    }
    for net in &rules.networks {
        let (br, c) = (&net.bridge, comment(&net.name, "network"));
        // A container must not reach the host's loopback services through the
        // route_localnet its bridge has for 127.0.0.1 mappings.
        add(
            "raw",
            "PONT-PREROUTING",
            format!("-d 127.0.0.0/8 -i {br} {c} -j DROP"),
        );
        // Into the bridge: replies, published ports, its own network (if icc), nothing else.
        add(
            "filter",
            "PONT-FORWARD",
            format!("-o {br} -m conntrack --ctstate RELATED,ESTABLISHED {c} -j RETURN"),
        );
        add(
            "filter",
            "PONT-FORWARD",
            format!("-o {br} -m conntrack --ctstate DNAT {c} -j RETURN"),
        );
        let same = if net.icc { "RETURN" } else { "DROP" };
        add(
            "filter",
            "PONT-FORWARD",
            format!("-i {br} -o {br} {c} -j {same}"),
        );
        add("filter", "PONT-FORWARD", format!("-o {br} {c} -j DROP"));
        add("filter", "PONT-ACCEPT", format!("-o {br} {c} -j ACCEPT"));
        add("filter", "PONT-ACCEPT", format!("-i {br} {c} -j ACCEPT"));
        // Hairpin (a container reaching a published port of its own network)
        // and host clients of 127.0.0.1 mappings: answered through the host.
        let s = net.subnet;
        add(
            "nat",
            "PONT-POSTROUTING",
            format!("-s {s} -d {s} -o {br} -m conntrack --ctstate DNAT {c} -j MASQUERADE"),
        );
        add(
            "nat",
            "PONT-POSTROUTING",
            format!("-s 127.0.0.0/8 -o {br} -m conntrack --ctstate DNAT {c} -j MASQUERADE"),
        );
    }
    for net in &rules.networks {
        let c = comment(&net.name, "network");
        add(
            "nat",
            "PONT-POSTROUTING",
            format!("-o {} {c} -j RETURN", net.bridge),
        );
    }
    for net in rules.networks.iter().filter(|n| n.masquerade()) {
        let c = comment(&net.name, "network");
        add(
            "nat",
            "PONT-POSTROUTING",
            format!("-s {} {c} -j MASQUERADE", net.subnet),
        );
    }
    let dnat = dnat::mapping_rules(&rules.mappings);
    out.extend(dnat::blocks_of(&dnat).into_iter().map(dnat::Block::jump));
    out.extend(dnat.into_iter().map(|(_, rule)| rule));
    out
}

fn comment(name: &str, kind: &str) -> String {
    format!("-m comment --comment \"{kind} {name}\"")
}

fn has_chain(current: &str, chain: &str) -> bool {
    current.lines().any(|l| {
        l.strip_prefix(':')
            .is_some_and(|r| r.split(' ').next() == Some(chain))
    })
}

fn has_jump(current: &str, builtin: &str, matches: &str, chain: &str) -> bool {
    current
        .lines()
        .any(|l| l == format!("-A {builtin} {matches}-j {chain}"))
}

/// Whether a rule in a chain not pont's (`iptables-save` lists it) jumps
/// or goes to `chain`. The rules of pont's chains are rewritten in the same
/// batch.
fn targeted_from_outside(current: &str, chain: &str) -> bool {
    current
        .lines()
        .filter_map(|l| l.strip_prefix("-A "))
        .filter(|rule| !rule.starts_with("PONT-"))
        .any(|rule| {
            let words: Vec<&str> = rule.split(' ').collect();
            words
                .windows(2)
                .any(|w| matches!(w[0], "-j" | "-g") && w[1] == chain)
        })
}

fn chain_has_rules(current: &str, chain: &str) -> bool {
    let prefix = format!("-A {chain} ");
    current.lines().any(|l| l.starts_with(&prefix))
}

/// Delete the jumps, then the chains (the admin's included).
fn remove_with(current: &str) -> Result<(), FirewallError> {
    let mut b = String::new();
    for table in TABLES {
        let mut body = String::new();
        for (t, builtin, m, chain, _) in JUMPS {
            if t == table && has_jump(current, builtin, m, chain) {
                writeln!(body, "-D {builtin} {m}-j {chain}").unwrap();
            }
        }
        let user = (table == "filter").then_some(USER_CHAIN);
        let owned = CHAINS
            .iter()
            .filter(|(t, _)| *t == table)
            .map(|(_, c)| *c)
            .chain(user);
        for chain in owned.filter(|c| has_chain(current, c)) {
            writeln!(body, "-F {chain}\n-X {chain}").unwrap();
        }
        if table == "nat" {
            for chain in dnat::block_chains_in(current) {
                writeln!(body, "-F {chain}\n-X {chain}").unwrap();
            }
        }
        if !body.is_empty() {
            writeln!(b, "*{table}\n{body}COMMIT").unwrap();
        }
    }
    if !b.is_empty() {
        tool::run("iptables-restore", &["-w", "--noflush"], &b)?;
    }
    ebtables::apply(&RuleSet::default())
}

/// For the nftables backend: a FORWARD policy of DROP in iptables (Docker sets
/// one) would drop what pont's own table allows. Then, and only then, pont
/// keeps `PONT-ACCEPT` appended to FORWARD, accepting its bridges' traffic after
/// every other rule there. Removed again when no network is left.
pub fn sync_forward_shim(networks: &[NetworkRules]) -> Result<(), FirewallError> {
    let Ok(current) = save() else {
        return Ok(()); // no iptables on this host: nothing to work around
    };
    let policy_drop = current.lines().any(|l| l.starts_with(":FORWARD DROP"));
    let installed = has_chain(&current, "PONT-ACCEPT");
    let mut b = String::from("*filter\n");
    if policy_drop && !networks.is_empty() {
        writeln!(b, ":PONT-ACCEPT - [0:0]").unwrap();
        for net in networks {
            let c = comment(&net.name, "network");
            writeln!(b, "-A PONT-ACCEPT -o {} {c} -j ACCEPT", net.bridge).unwrap();
            writeln!(b, "-A PONT-ACCEPT -i {} {c} -j ACCEPT", net.bridge).unwrap();
        }
        if !has_jump(&current, "FORWARD", "", "PONT-ACCEPT") {
            b.push_str("-A FORWARD -j PONT-ACCEPT\n");
        }
    } else if installed {
        if has_jump(&current, "FORWARD", "", "PONT-ACCEPT") {
            b.push_str("-D FORWARD -j PONT-ACCEPT\n");
        }
        b.push_str("-F PONT-ACCEPT\n-X PONT-ACCEPT\n");
    } else {
        return Ok(());
    }
    b.push_str("COMMIT\n");
    tool::run("iptables-restore", &["-w", "--noflush"], &b).map(drop)
}

/// For the nftables backend's presence check: false when FORWARD's policy is
/// DROP but the shim [`sync_forward_shim`] keeps for that case is missing or
/// lacks a bridge, as when the policy was set after pont's last change
/// (Docker starting later does this) or iptables' rules were flushed.
pub fn forward_shim_in_place(networks: &[NetworkRules]) -> bool {
    if networks.is_empty() {
        return true;
    }
    // Only the filter table: a cheap listing, and one that creates nothing.
    let Ok(filter) = tool::run("iptables", &["-w", "-S"], "") else {
        return true; // no iptables on this host: nothing to work around
    };
    shim_in_place(&filter, networks)
}

/// [`forward_shim_in_place`] on an `iptables -S` listing of the filter table.
fn shim_in_place(filter: &str, networks: &[NetworkRules]) -> bool {
    let has = |line: &str| filter.lines().any(|l| l == line);
    if !has("-P FORWARD DROP") {
        return true;
    }
    has("-A FORWARD -j PONT-ACCEPT")
        && networks.iter().all(|n| {
            let prefix = format!("-A PONT-ACCEPT -o {} ", n.bridge);
            filter.lines().any(|l| l.starts_with(&prefix))
        })
}

#[cfg(test)]
mod kernel_tests;
#[cfg(test)]
pub(crate) mod tests;
