//! Layer-2 rules, through ebtables: frames between ports of an icc=false
//! bridge are dropped (`PONT-ISOLATE`, from FORWARD), and a frame from a
//! container's port must carry that container's MAC and, for IPv4 and ARP,
//! its address (`PONT-ANTISPOOF`, from nat PREROUTING: anti-spoofing, for
//! traffic to other containers and to the host alike; VLAN tags refused).
//!
//! Every frame of every container walks these chains, so they are not one
//! list of every port's rules: each holds 16 jumps, one per hex digit that
//! follows `veth` in pont's port names (`-i veth3+ -j PONT-ANTISPOOF-3`), into
//! a bucket chain with the rules of those ports. A frame walks 16 jumps and
//! a sixteenth of the ports' rules. Measured with 200 containers (1000
//! anti-spoofing rules) between two ports of one bridge, medians of 5 runs
//! of iperf3: one list let through 9.2 k UDP packets of 64 bytes per second
//! and 3.4 Gbit/s of TCP, where an empty chain let through 89 k and 11.7
//! Gbit/s; the buckets 73 k and 11-12.5 Gbit/s, and about as much with
//! 1000 containers. A chain per port inside the buckets, or a second level
//! of 256 buckets, measured no better. ebtables' `--among-src` sets would
//! be a hash lookup, but they hold MAC and address pairs of every port, not
//! of the frame's own: a container could send with another's pair. A port
//! named otherwise has its rules in the top chain itself.
//!
//! Each top chain starts with a no-op marker for the presence check
//! ([`jump_checks`]). The chains and the 16 jumps exist while any network
//! does, so a container's rules are appended and deleted on their own, in
//! the one bucket they belong to ([`change_batch`]).

use std::collections::BTreeSet;
use std::fmt::Write;

use crate::firewall::tool::{self, FirewallError};
use crate::firewall::RuleSet;

/// A top chain of pont's, hooked first into a built-in chain.
#[derive(Clone, Copy)]
struct Layer {
    table: &'static str,
    top: &'static str,
    hook: &'static str,
}

pub(super) const ISOLATE: &str = "PONT-ISOLATE";
pub(super) const ANTISPOOF: &str = "PONT-ANTISPOOF";
const LAYERS: [Layer; 2] = [
    Layer {
        table: "filter",
        top: ISOLATE,
        hook: "FORWARD",
    },
    Layer {
        table: "nat",
        top: ANTISPOOF,
        hook: "PREROUTING",
    },
];
const DIGITS: &str = "0123456789abcdef";
/// The first rule of each top chain: a no-op that the presence check looks
/// for ([`jump_checks`]).
const MARKER: &str = "-j CONTINUE";
/// pont's host ports are `veth` and 11 hex digits ([`crate::engine::host_ifname`]).
const PORT_PREFIX: &str = "veth";

/// One ebtables rule: its chain and the rest of its `-A` line.
type EbRule = (String, String);

impl Layer {
    fn bucket(self, digit: char) -> String {
        format!("{}-{digit}", self.top)
    }

    fn chains(self) -> impl Iterator<Item = String> {
        std::iter::once(self.top.to_string()).chain(DIGITS.chars().map(move |d| self.bucket(d)))
    }

    /// The chain that holds the rules of `port`.
    fn chain_of(self, port: &str) -> String {
        let digit = port
            .strip_prefix(PORT_PREFIX)
            .and_then(|r| r.chars().next());
        match digit.filter(|d| DIGITS.contains(*d)) {
            Some(d) => self.bucket(d),
            None => self.top.to_string(),
        }
    }

    /// The top chain's own rules: the marker, then the 16 jumps into its
    /// buckets. (The rules of ports named otherwise come after them.)
    fn top_rules(self) -> Vec<EbRule> {
        let jump = |d| format!("-i {PORT_PREFIX}{d}+ -j {}", self.bucket(d));
        let jumps = DIGITS.chars().map(jump);
        std::iter::once(MARKER.to_string())
            .chain(jumps)
            .map(|spec| (self.top.to_string(), spec))
            .collect()
    }

    /// The rules of `rules`' endpoints in this layer.
    fn port_rules(self, rules: &RuleSet) -> Vec<EbRule> {
        // ebtables-restore takes no comments; `firewall show` names the
        // network and container of each port from the records instead.
        let mut out = Vec::new();
        for e in &rules.endpoints {
            let (port, mac, ip) = (&e.port, e.mac, e.ipv4);
            let chain = self.chain_of(port);
            let specs = if self.top == ISOLATE {
                if !e.isolated {
                    continue;
                }
                vec![
                    format!("-p IPv4 -i {port} -j DROP"),
                    format!("-p IPv6 -i {port} -j DROP"),
                ]
            } else {
                vec![
                    format!("-p 802_1Q -i {port} -j DROP"),
                    format!("-s ! {mac} -i {port} -j DROP"),
                    format!("-p IPv4 -i {port} --ip-src ! {ip} -j DROP"),
                    format!("-p ARP -i {port} --arp-ip-src ! {ip} -j DROP"),
                    format!("-p ARP -i {port} --arp-mac-src ! {mac} -j DROP"),
                ]
            };
            out.extend(specs.into_iter().map(|s| (chain.clone(), s)));
        }
        out
    }
}

/// For the presence check: one `ebtables-restore` batch per table of
/// `--check` lines (which change nothing): the jump from the built-in chain,
/// and the top chain's first rule, `-j CONTINUE`, which does nothing but
/// tell that the top chain was not flushed (rules appended to buckets no
/// longer jumped to would guard nothing). Checking the jumps into the
/// buckets instead costs as much as the buckets hold: 22 ms for all 16 with
/// 200 containers, 65 ms with 1000; the marker 5 ms with either. One batch
/// cannot check two tables: ebtables 1.8.9 aborts.
pub(super) fn jump_checks() -> Vec<String> {
    LAYERS
        .iter()
        .map(|layer| {
            let (table, hook, top) = (layer.table, layer.hook, layer.top);
            format!("*{table}\n--check {hook} -j {top}\n--check {top} {MARKER}\n")
        })
        .collect()
}

/// Make pont's ebtables chains hold exactly the rules of `rules`, or, with
/// no network left, remove them. One `ebtables-restore` batch for both tables.
pub(super) fn apply(rules: &RuleSet) -> Result<(), FirewallError> {
    let current = tool::run("ebtables-save", &[], "").unwrap_or_default();
    let batch = full_batch(rules, &current);
    if batch.is_empty() {
        return Ok(());
    }
    tool::run("ebtables-restore", &["--noflush"], &batch).map(drop)
}

/// The batch of [`apply`], given what `ebtables-save` shows.
pub(super) fn full_batch(rules: &RuleSet, current: &str) -> String {
    let keep = !rules.networks.is_empty();
    let mut batch = String::new();
    for layer in LAYERS {
        let body = if keep {
            rewrite(layer, current, rules)
        } else {
            removal(layer, current)
        };
        if !body.is_empty() {
            batch += &format!("*{}\n{body}", layer.table);
        }
    }
    batch
}

fn exists(current: &str, chain: &str) -> bool {
    current
        .lines()
        .any(|l| l.strip_prefix(':').and_then(|r| r.split(' ').next()) == Some(chain))
}

fn jumped(current: &str, layer: Layer) -> bool {
    let jump = format!("-A {} -j {}", layer.hook, layer.top);
    current.lines().any(|l| l == jump)
}

fn rewrite(layer: Layer, current: &str, rules: &RuleSet) -> String {
    let mut b = String::new();
    for chain in layer.chains() {
        // Declaring a chain makes or flushes it; the explicit flush is for
        // restore tools that only make it.
        writeln!(b, ":{chain} RETURN").unwrap();
        if exists(current, &chain) {
            writeln!(b, "-F {chain}").unwrap();
        }
    }
    for (chain, spec) in layer.top_rules().iter().chain(&layer.port_rules(rules)) {
        writeln!(b, "-A {chain} {spec}").unwrap();
    }
    if !jumped(current, layer) {
        writeln!(b, "-I {} 1 -j {}", layer.hook, layer.top).unwrap();
    }
    b
}

fn removal(layer: Layer, current: &str) -> String {
    let mut b = String::new();
    if jumped(current, layer) {
        writeln!(b, "-D {} -j {}", layer.hook, layer.top).unwrap();
    }
    let present: Vec<String> = layer.chains().filter(|c| exists(current, c)).collect();
    // Flushed first, so that no chain is still jumped to when it is deleted.
    for chain in &present {
        writeln!(b, "-F {chain}").unwrap();
    }
    for chain in present.iter().rev() {
        writeln!(b, "-X {chain}").unwrap();
    }
    b
}

/// The batch that turns the ports' rules of `before` into those of `after`
/// (networks aside: the chains stay), deleting and appending rule by rule.
/// `-D` of a rule that is not there fails the batch, which tells the caller
/// to rewrite from the records.
pub(super) fn change_batch(before: &RuleSet, after: &RuleSet) -> String {
    render_changes(&port_changes(before, after))
}

/// One rule of a container port's that a change deletes or appends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct PortChange {
    pub table: &'static str,
    pub delete: bool,
    pub chain: String,
    pub spec: String,
}

/// The rule changes of [`change_batch`], in its order: per table, the
/// deletions, then the appends.
pub(super) fn port_changes(before: &RuleSet, after: &RuleSet) -> Vec<PortChange> {
    let mut out = Vec::new();
    for layer in LAYERS {
        let (old, new) = (layer.port_rules(before), layer.port_rules(after));
        let (old_set, new_set): (BTreeSet<&EbRule>, BTreeSet<&EbRule>) =
            (old.iter().collect(), new.iter().collect());
        let change = |delete: bool| {
            move |(chain, spec): &EbRule| PortChange {
                table: layer.table,
                delete,
                chain: chain.clone(),
                spec: spec.clone(),
            }
        };
        out.extend(
            old.iter()
                .filter(|r| !new_set.contains(r))
                .map(change(true)),
        );
        out.extend(
            new.iter()
                .filter(|r| !old_set.contains(r))
                .map(change(false)),
        );
    }
    out
}

/// The `ebtables-restore` batch of `changes`.
pub(super) fn render_changes(changes: &[PortChange]) -> String {
    let mut batch = String::new();
    for group in changes.chunk_by(|a, b| a.table == b.table) {
        batch += &format!("*{}\n", group[0].table);
        for c in group {
            let op = if c.delete { "-D" } else { "-A" };
            writeln!(batch, "{op} {} {}", c.chain, c.spec).unwrap();
        }
    }
    batch
}

/// The anti-spoofing rules, under a heading per container (ebtables has no comments).
pub(super) fn show_antispoof(saved: &str, rules: &RuleSet) -> String {
    let ours: Vec<&str> = saved.lines().filter(|l| l.contains(ANTISPOOF)).collect();
    if ours.is_empty() {
        return String::new();
    }
    let mut out = String::from("# ebtables\n*nat\n");
    for line in ours
        .iter()
        .filter(|l| !rules.endpoints.iter().any(|e| of_port(l, &e.port)))
    {
        writeln!(out, "{line}").unwrap();
    }
    for e in &rules.endpoints {
        writeln!(out, "# container {} on network {}", e.container, e.network).unwrap();
        for line in ours.iter().filter(|l| of_port(l, &e.port)) {
            writeln!(out, "{line}").unwrap();
        }
    }
    out
}

fn of_port(line: &str, port: &str) -> bool {
    line.contains(&format!(" -i {port} "))
}

/// The isolation rules, under a heading per network.
pub(super) fn show_isolation(saved: &str, rules: &RuleSet) -> String {
    let ours: Vec<&str> = saved.lines().filter(|l| l.contains(ISOLATE)).collect();
    if ours.is_empty() {
        return String::new();
    }
    let isolated = || rules.endpoints.iter().filter(|e| e.isolated);
    let owned = |line: &str| isolated().any(|e| of_port(line, &e.port));
    let mut out = String::from("# ebtables\n*filter\n");
    for line in ours.iter().filter(|l| !owned(l)) {
        writeln!(out, "{line}").unwrap();
    }
    for net in &rules.networks {
        let ports: Vec<&str> = isolated()
            .filter(|e| e.network == net.name)
            .map(|e| e.port.as_str())
            .collect();
        let lines: Vec<&&str> = ours
            .iter()
            .filter(|l| ports.iter().any(|p| of_port(l, p)))
            .collect();
        if !lines.is_empty() {
            writeln!(out, "# network {}", net.name).unwrap();
            lines.iter().for_each(|l| writeln!(out, "{l}").unwrap());
        }
    }
    out.push_str("COMMIT\n");
    out
}
