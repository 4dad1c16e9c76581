//! Published ports in the nat table, dispatched on the host port first.
//!
//! With one DNAT rule per mapping in one chain, every new connection walked
//! every mapping: with 10000 mappings installed, a published port took 40 %
//! of the connections per second it took alone (bench/run.sh, section conn).
//! So `PONT-DNAT` holds one jump per block of 256 host ports of a protocol
//! that has a mapping (`-p tcp -m tcp --dport 20480:20735 -j PONT-DNAT-TCP-80`),
//! and the block's chain holds that block's mappings. A new connection walks
//! the jumps of the blocks in use (at most 256 per protocol; a jump of
//! another protocol fails on its first match) and at most 256 mappings.
//! Measured the same way, medians of 6 runs: with 10000 mappings, 102 % of
//! the rate with one (it was 36 %), with 1000, 115 % (94 %).
//!
//! A block's chain and its jump are made by the change that gives it its
//! first mapping and removed by the one that takes its last, in the same
//! batch. A range of host ports that does not fit in one block stays in
//! `PONT-DNAT` itself, as one rule: published ports never overlap, so there
//! are at most 256 of those per protocol and their order does not matter.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::Rule;
use crate::firewall::tool::{self, FirewallError};
use crate::firewall::MappingRules;
use crate::model::{PortRange, Protocol};

pub(super) const DNAT_CHAIN: &str = "PONT-DNAT";
const BLOCK_PREFIX: &str = "PONT-DNAT-";
const BLOCK_PORTS: u16 = 256;

/// Host ports `index * 256 ..= index * 256 + 255` of one protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Block {
    protocol: Protocol,
    index: u16,
}

impl Block {
    /// The block that holds every one of `ports`, if one does.
    pub(super) fn holding(protocol: Protocol, ports: PortRange) -> Option<Block> {
        let index = ports.start / BLOCK_PORTS;
        (ports.end / BLOCK_PORTS == index).then_some(Block { protocol, index })
    }

    pub(super) fn chain(self) -> String {
        let proto = match self.protocol {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        };
        format!("{BLOCK_PREFIX}{proto}-{}", self.index)
    }

    /// The jump from `PONT-DNAT` into this block's chain.
    pub(super) fn jump(self) -> Rule {
        let first = self.index * BLOCK_PORTS;
        let last = first + (BLOCK_PORTS - 1);
        let p = self.protocol;
        Rule::new(
            "nat",
            DNAT_CHAIN,
            format!("-p {p} -m {p} --dport {first}:{last} -j {}", self.chain()),
        )
    }
}

/// Whether `chain` is the chain of a port block.
pub(super) fn is_block_chain(chain: &str) -> bool {
    chain.starts_with(BLOCK_PREFIX)
}

/// The block chains an `iptables-save` listing declares.
pub(super) fn block_chains_in(saved: &str) -> BTreeSet<String> {
    let declared = saved.lines().filter_map(|l| l.strip_prefix(':'));
    declared
        .filter_map(|rest| rest.split(' ').next())
        .filter(|chain| is_block_chain(chain))
        .map(str::to_string)
        .collect()
}

/// Every mapping's DNAT rule, with the block whose chain holds it (None:
/// `PONT-DNAT` itself). Mappings of an IPv6 host address have none yet.
pub(super) fn mapping_rules(mappings: &[MappingRules]) -> Vec<(Option<Block>, Rule)> {
    mappings.iter().filter_map(mapping_rule).collect()
}

/// Written straight into one string: with 10000 mappings, the formatting
/// of pieces one by one was most of a full plan's 30-50 ms.
fn mapping_rule(m: &MappingRules) -> Option<(Option<Block>, Rule)> {
    let host = m.host_v4()?;
    let (hp, cp) = (m.mapping.host_ports, m.mapping.container_ports);
    let p = m.mapping.protocol;
    let mut spec = String::with_capacity(128);
    if host.prefix_len() != 0 {
        write!(spec, "-d {host} ").unwrap();
    }
    write!(spec, "-p {p} -m {p} --dport {}", hp.start).unwrap();
    if !hp.is_single() {
        write!(spec, ":{}", hp.end).unwrap();
    }
    let c = &m.container;
    write!(
        spec,
        " -m comment --comment \"container {c}\" -j DNAT --to-destination "
    )
    .unwrap();
    // A range keeps each port's offset: host start+k goes to container start+k.
    write!(spec, "{}:{}", m.container_ip, cp.start).unwrap();
    if !hp.is_single() {
        write!(spec, "-{}/{}", cp.end, hp.start).unwrap();
    }
    let block = Block::holding(p, hp);
    let chain = block.map_or(DNAT_CHAIN.to_string(), Block::chain);
    Some((block, Rule::new("nat", chain, spec)))
}

/// The blocks `rules` put mappings in.
pub(super) fn blocks_of(rules: &[(Option<Block>, Rule)]) -> BTreeSet<Block> {
    rules.iter().filter_map(|(b, _)| *b).collect()
}

/// Chains of the nat table that a batch makes or removes.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct ChainChange {
    pub create: Vec<String>,
    pub remove: Vec<String>,
}

impl ChainChange {
    /// Between two complete rule sets: the block chains only one of them uses.
    pub(super) fn between(old: &[Rule], new: &[Rule]) -> ChainChange {
        let blocks = |rules: &[Rule]| -> BTreeSet<String> {
            let chains = rules.iter().map(|r| r.chain.as_str());
            let chains: BTreeSet<&str> = chains.filter(|c| is_block_chain(c)).collect();
            chains.into_iter().map(str::to_string).collect()
        };
        let (before, after) = (blocks(old), blocks(new));
        ChainChange {
            create: after.difference(&before).cloned().collect(),
            remove: before.difference(&after).cloned().collect(),
        }
    }
}

/// One container's DNAT rules before and after an operation, with nothing
/// known of the other containers': whether a block gains its first mapping
/// or loses its last is learnt from the kernel ([`ContainerChange::probe`]).
pub(super) struct ContainerChange {
    old: Vec<(Option<Block>, Rule)>,
    new: Vec<(Option<Block>, Rule)>,
}

/// What the kernel says about the blocks a change touches.
#[derive(Debug, Default)]
pub(super) struct Probed {
    /// Blocks `PONT-DNAT` jumps to.
    pub in_use: BTreeSet<Block>,
    /// Blocks whose chain holds no rule beyond the ones the change deletes.
    pub emptied: BTreeSet<Block>,
}

impl ContainerChange {
    pub(super) fn new(before: &[MappingRules], after: &[MappingRules]) -> ContainerChange {
        ContainerChange {
            old: mapping_rules(before),
            new: mapping_rules(after),
        }
    }

    /// Every rule of the container's, before and after.
    pub(super) fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.old.iter().chain(&self.new).map(|(_, rule)| rule)
    }

    /// (rules that go, rules that come), per block; `None` is `PONT-DNAT`.
    pub(super) fn delta(&self) -> BTreeMap<Option<Block>, (usize, usize)> {
        let old: BTreeSet<&(Option<Block>, Rule)> = self.old.iter().collect();
        let new: BTreeSet<&(Option<Block>, Rule)> = self.new.iter().collect();
        let mut delta: BTreeMap<Option<Block>, (usize, usize)> = BTreeMap::new();
        for (block, _) in old.difference(&new) {
            delta.entry(*block).or_default().0 += 1;
        }
        for (block, _) in new.difference(&old) {
            delta.entry(*block).or_default().1 += 1;
        }
        delta
    }

    pub(super) fn is_empty(&self) -> bool {
        self.delta().is_empty()
    }

    /// Ask the kernel what [`ContainerChange::render`] needs, with listings
    /// that cost the same however many rules the nat table holds, run side
    /// by side: `PONT-DNAT`'s jumps if a block gains rules (its chain may be
    /// new), and for a block that only loses `n` rules whether its chain has
    /// an `n+1`th (`iptables -S CHAIN N` prints rule N alone, or nothing).
    /// A listing of one chain is what iptables-nft fetches: 2-7 ms where
    /// `iptables-save` takes 120-160 ms with 10000 mappings installed.
    pub(super) fn probe(&self) -> Result<Probed, FirewallError> {
        let delta = self.delta();
        let gains = delta.iter().any(|(b, (_, come))| b.is_some() && *come > 0);
        let losers: Vec<(Block, String)> = delta
            .iter()
            .filter_map(|(b, (gone, come))| Some((b.as_ref()?, gone, come)))
            .filter(|(_, _, come)| **come == 0)
            .map(|(b, gone, _)| (*b, (gone + 1).to_string()))
            .collect();
        let list = |chain: &str, rule: Option<&str>| {
            let mut args = vec!["-w", "-t", "nat", "-S", chain];
            args.extend(rule);
            tool::start("iptables", &args, "")
        };
        let jumps = gains.then(|| list(DNAT_CHAIN, None)).transpose()?;
        let running: Vec<_> = losers
            .iter()
            .map(|(b, n)| list(&b.chain(), Some(n)).map(|r| (*b, r)))
            .collect::<Result<_, _>>()?;
        let mut probed = Probed::default();
        if let Some(listing) = jumps {
            let listing = listing.finish()?;
            // Matched by the target alone: a jump that the listing spells
            // differently must not pass for a missing one, whose chain would
            // then be declared, which flushes it.
            let jumped = |b: &Block| {
                let target = format!(" -j {}", b.chain());
                listing.lines().any(|l| l.ends_with(&target))
            };
            probed.in_use = delta.keys().flatten().copied().filter(jumped).collect();
        }
        for (block, listing) in running {
            match listing.finish() {
                Ok(text) if text.trim().is_empty() => {
                    probed.emptied.insert(block);
                }
                Ok(_) => {}
                // No such chain: the deletions fail the batch, as they should.
                Err(FirewallError::Rejected { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(probed)
    }

    /// The batch, given what [`ContainerChange::probe`] found. A block not
    /// in use gets its chain, and its jump, with its first rule; a block
    /// left without rules loses both. Deleting a rule that is not there
    /// fails the batch, as it should.
    pub(super) fn render(&self, probed: &Probed) -> String {
        let (old, new, chains) = self.plan(probed);
        super::render_change(&old, &new, &chains)
    }

    /// What [`ContainerChange::render`] writes, as rules: the ones before and
    /// after (with the jumps of blocks made or emptied) and the chains made
    /// and removed. Also what the native change makes.
    pub(super) fn plan(&self, probed: &Probed) -> (Vec<Rule>, Vec<Rule>, ChainChange) {
        let mut old: Vec<Rule> = self.old.iter().map(|(_, r)| r.clone()).collect();
        let mut new: Vec<Rule> = self.new.iter().map(|(_, r)| r.clone()).collect();
        let mut chains = ChainChange::default();
        for (block, (_, come)) in self.delta() {
            let Some(block) = block else { continue };
            if come > 0 && !probed.in_use.contains(&block) {
                chains.create.push(block.chain());
                new.push(block.jump());
            } else if come == 0 && probed.emptied.contains(&block) {
                chains.remove.push(block.chain());
                old.push(block.jump());
            }
        }
        (old, new, chains)
    }
}
