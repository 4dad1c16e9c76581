//! One container's share of the iptables backend's rules changed over
//! nfnetlink, with no process, where iptables and ebtables are the nf_tables
//! variants (iptables-nft keeps its rules in nf_tables tables named after
//! the x_tables ones: `ip nat`, `bridge nat`, `bridge filter`).
//!
//! The tools, per container, started three processes (an `iptables -S`
//! probe, `iptables-restore`, `ebtables-restore`), each of which read the
//! kernel's tables again and, after a deletion, waited at its exit for a
//! netfilter grace period: the firewall took 5-15 ms of a setup and 33-45 ms
//! of a teardown (bench/run.sh, 200 containers); natively 0.6-1.4 ms and
//! 0.3-3 ms. Natively: one GETGEN, a dump of each chain the change touches,
//! and one batch (both layers in one transaction, sent for the generation
//! the dumps saw, so that a change made meanwhile by anyone fails it with
//! ERESTART and it is computed again).
//!
//! - Rules are deleted by handle, found in a dump of their chain as the first
//!   rule whose expressions are the ones the rule's text makes ([`spec`]):
//!   what `iptables -D` with that text deletes. None found fails the change,
//!   as `-D` fails the tools' batch, and the caller rewrites from the records.
//! - Rules are appended as iptables-nft and ebtables-nft 1.8.9 write them,
//!   byte for byte (the tests hold what those tools send), so `iptables -S`,
//!   `iptables-save` and `ebtables -L` show exactly what the tools would have
//!   made. Another version may write other forms (newer ones add a copy of
//!   the rule's x_tables form to its user data, for older readers): the
//!   native change is used only with the version whose forms were read, and
//!   only for the rule shapes pont writes; anything else goes through the
//!   tools as before.
//! - On an iptables-nft of another version, the tools make the change but
//!   the probe of the port blocks is read natively.

mod expr;
mod spec;
mod wire;

#[cfg(test)]
mod kernel_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::dnat::{Block, ContainerChange, Probed, DNAT_CHAIN};
use super::ebtables::PortChange;
use super::Rule;
use crate::firewall::nfnl::{self, Nfnl, NfnlError, NFPROTO_BRIDGE, NFPROTO_IPV4};
use crate::firewall::tool::FirewallError;
use spec::Encoded;
use wire::{generation, Dumps, Messages};

/// iptables-nft's table of `iptables -t nat`.
const NAT: &str = "nat";
/// The version whose rules the encoder writes, as the tools' binary spells it.
const VERIFIED: &[u8] = b"1.8.9 (nf_tables)";
/// A batch refused with ERESTART (the rules changed since the dumps) is
/// computed and sent again, this many times at most.
const ATTEMPTS: usize = 3;

/// How the per-container work reaches the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    /// iptables-legacy (or no tool found): the tools do all of it.
    Tools,
    /// iptables-nft of a version whose forms were not read: the tools make
    /// the change, the probe is read natively.
    Reads,
    /// iptables-nft and ebtables-nft 1.8.9: all of it natively.
    Native,
}

/// The mode, found once per process without running a tool: the names the
/// tools resolve to (`xtables-nft-multi`, `iptables-nft-restore`, or their
/// legacy counterparts) and the version string in the binary.
pub(super) fn mode() -> Mode {
    static MODE: OnceLock<Mode> = OnceLock::new();
    *MODE.get_or_init(|| {
        let iptables = resolve("iptables-restore");
        let ebtables = resolve("ebtables-restore");
        let nft = |p: &Option<PathBuf>| p.as_deref().is_some_and(is_nft);
        if !nft(&iptables) {
            return Mode::Tools;
        }
        let verified = |p: &Option<PathBuf>| p.as_deref().is_some_and(is_verified);
        if nft(&ebtables) && verified(&iptables) && (iptables == ebtables || verified(&ebtables)) {
            Mode::Native
        } else {
            Mode::Reads
        }
    })
}

/// Where `tool` is found in PATH (as `Command` finds it), links resolved.
fn resolve(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let found = std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())?;
    std::fs::canonicalize(found).ok()
}

fn is_nft(binary: &Path) -> bool {
    binary
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.contains("nft"))
}

/// Whether the binary is of the version the encoder writes for: the string
/// `--version` prints is in it. Running `iptables --version` costs 1.5-6 ms;
/// this, 0.1 ms, read in pieces through one small buffer (read whole into
/// fresh memory, the 230 kB took 0.3 ms to fault in).
fn is_verified(binary: &Path) -> bool {
    use std::io::Read;
    let Ok(mut file) = std::fs::File::open(binary) else {
        return false;
    };
    let mut buf = vec![0u8; 32 * 1024];
    let mut filled = 0;
    loop {
        match file.read(&mut buf[filled..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => filled += n,
        }
        if memchr::memmem::find(&buf[..filled], VERIFIED).is_some() {
            return true;
        }
        // The string may start in the last bytes: they move to the front.
        let tail = filled.saturating_sub(VERIFIED.len() - 1);
        buf.copy_within(tail..filled, 0);
        filled -= tail;
    }
}

/// Make the change natively; `None` if a rule of it has a shape this module
/// does not write (the caller then uses the tools).
pub(super) fn apply_container_change(
    change: &ContainerChange,
    layer2: &[PortChange],
) -> Option<Result<(), FirewallError>> {
    let encoded = Encodings::new(change, layer2)?;
    Some(commit_with_retries(change, &encoded))
}

/// For the tools' path on iptables-nft: [`ContainerChange::probe`] from dumps.
pub(super) fn probe(change: &ContainerChange) -> Result<Probed, FirewallError> {
    let probed = nfnl::with_socket(|nl| probe_with(nl, change, &mut Dumps::default()))?;
    Ok(probed)
}

/// Every rule the change may add or delete, encoded before the kernel is asked anything.
struct Encodings<'a> {
    nat: HashMap<Rule, Encoded>,
    ports: Vec<(&'a PortChange, Encoded)>,
}

impl<'a> Encodings<'a> {
    fn new(change: &ContainerChange, layer2: &'a [PortChange]) -> Option<Encodings<'a>> {
        let jumps = change.delta().into_keys().flatten().map(Block::jump);
        let mut nat = HashMap::new();
        for rule in change.rules().cloned().chain(jumps) {
            debug_assert_eq!(rule.table, NAT);
            let encoded = spec::nat(&rule.spec)?;
            nat.insert(rule, encoded);
        }
        let ports = layer2
            .iter()
            .map(|c| Some((c, spec::bridge(&c.spec)?)))
            .collect::<Option<_>>()?;
        Some(Encodings { nat, ports })
    }
}

fn commit_with_retries(change: &ContainerChange, encoded: &Encodings) -> Result<(), FirewallError> {
    let mut attempt = 1;
    loop {
        match nfnl::with_socket(|nl| commit_once(nl, change, encoded)) {
            Ok(done) => return done,
            Err(e) if e.errno() == Some(libc::ERESTART) && attempt < ATTEMPTS => attempt += 1,
            Err(e) => return Err(e.into()),
        }
    }
}

/// One try: the outer error is the socket's or ERESTART, the inner one the
/// change's own (a rule to delete is missing, a message was refused).
fn commit_once(
    nl: &mut Nfnl,
    change: &ContainerChange,
    encoded: &Encodings,
) -> Result<Result<(), FirewallError>, NfnlError> {
    let generation = generation(nl)?;
    let mut dumps = Dumps::default();
    let probed = probe_with(nl, change, &mut dumps)?;
    let (old, new, chains) = change.plan(&probed);
    let (gone, come) = super::difference(&old, &new);
    let mut batch = Messages::new(generation);
    for chain in &chains.create {
        batch.new_chain(chain);
    }
    for rule in gone {
        let ours = &encoded.nat[rule];
        let Some(handle) = dumps.take(nl, NFPROTO_IPV4, NAT, &rule.chain, ours)? else {
            return Ok(Err(missing(NAT, &rule.chain, &rule.spec)));
        };
        batch.delete_rule(NFPROTO_IPV4, NAT, &rule.chain, handle, &rule.spec);
    }
    for rule in come {
        batch.append_rule(
            NFPROTO_IPV4,
            NAT,
            &rule.chain,
            &encoded.nat[rule],
            &rule.spec,
        );
    }
    for chain in &chains.remove {
        batch.delete_chain(chain);
    }
    for (c, ours) in &encoded.ports {
        if c.delete {
            let Some(handle) = dumps.take(nl, NFPROTO_BRIDGE, c.table, &c.chain, ours)? else {
                return Ok(Err(missing(c.table, &c.chain, &c.spec)));
            };
            batch.delete_rule(NFPROTO_BRIDGE, c.table, &c.chain, handle, &c.spec);
        } else {
            batch.append_rule(NFPROTO_BRIDGE, c.table, &c.chain, ours, &c.spec);
        }
    }
    batch.commit(nl)
}

fn missing(table: &str, chain: &str, spec: &str) -> FirewallError {
    FirewallError::RuleMissing {
        table: table.to_string(),
        chain: chain.to_string(),
        rule: spec.to_string(),
    }
}

/// What [`ContainerChange::render`] needs to know, from dumps: the blocks
/// `PONT-DNAT` jumps to (by the jump's target alone, as the tools' probe),
/// if a block gains rules, and which blocks that only lose rules hold no
/// other.
fn probe_with(
    nl: &mut Nfnl,
    change: &ContainerChange,
    dumps: &mut Dumps,
) -> Result<Probed, NfnlError> {
    let delta = change.delta();
    let mut probed = Probed::default();
    if delta.iter().any(|(b, (_, come))| b.is_some() && *come > 0) {
        let jumps = dumps.rules(nl, NFPROTO_IPV4, NAT, DNAT_CHAIN)?;
        let targets: BTreeSet<&[u8]> = jumps
            .iter()
            .filter_map(|r| expr::jump_target(&r.exprs))
            .collect();
        let blocks = delta.keys().flatten().copied();
        probed.in_use = blocks
            .filter(|b| targets.contains(b.chain().as_bytes()))
            .collect();
    }
    for (block, (gone, come)) in &delta {
        let Some(block) = block.filter(|_| *come == 0) else {
            continue;
        };
        if dumps.rules(nl, NFPROTO_IPV4, NAT, &block.chain())?.len() <= *gone {
            probed.emptied.insert(block);
        }
    }
    Ok(probed)
}
