//! Whether pont's nftables rules look installed, read over nfnetlink with no
//! `nft` or `iptables` process: a handful of requests whose cost does not grow
//! with the number of containers or published ports.

use std::path::Path;

use super::element::{Element, Family, Field, Op, Shape};
use super::TABLE_NAME;
use crate::firewall::nfnl::{
    self, attr, msg, Nfnl, NfnlError, NFPROTO_BRIDGE, NFPROTO_INET, NFPROTO_IPV4,
};
use crate::firewall::tool::FirewallError;
use crate::firewall::{iptables, NetworkRules};

/// Attribute numbers, include/uapi/linux/netfilter/nf_tables.h.
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_IMMEDIATE_DATA: u16 = 2;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;
const NFTA_SET_TABLE: u16 = 1;
const NFTA_SET_NAME: u16 = 2;
/// The number of elements in a set: newer kernels give it (6.18 here), older
/// ones do not.
const NFTA_SET_COUNT: u16 = 20;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
/// enum nft_verdicts: NFT_JUMP is -3.
const NFT_JUMP: u32 = -3i32 as u32;
/// NF_DROP, include/uapi/linux/netfilter.h.
const NF_DROP: u32 = 0;

/// iptables-nft's table and chains (`iptables -t filter`), and pont's shim.
const IPTABLES_TABLE: &str = "filter";
const IPTABLES_FORWARD: &str = "FORWARD";
const SHIM_CHAIN: &str = "PONT-ACCEPT";

/// See [`super::is_installed`]. A refusal by the kernel (most often ENOENT: a
/// table, chain or set is gone) means "not installed"; only a socket that
/// cannot be used at all is an error.
pub(super) fn is_installed(
    networks: &[NetworkRules],
    endpoints: usize,
) -> Result<bool, FirewallError> {
    if networks.is_empty() {
        return Ok(true);
    }
    let checks: [Check; 5] = [
        forward_jumps_to_bridges,
        |nl: &mut Nfnl, n: &[NetworkRules], _| bridges_listed(nl, n),
        |nl: &mut Nfnl, _: &[NetworkRules], e| guarded_ports_are(nl, e),
        |nl: &mut Nfnl, _: &[NetworkRules], _| {
            chain_exists(nl, NFPROTO_BRIDGE, TABLE_NAME, "antispoof")
        },
        |nl: &mut Nfnl, n: &[NetworkRules], _| forward_shim_in_place(nl, n),
    ];
    let all = nfnl::with_socket(|nl| {
        for check in checks {
            match check(nl, networks, endpoints) {
                Ok(true) => {}
                Ok(false) | Err(NfnlError::Refused { .. }) => return Ok(false),
                Err(other) => return Err(other),
            }
        }
        Ok(true)
    });
    Ok(all?)
}

type Check = fn(&mut Nfnl, &[NetworkRules], usize) -> Result<bool, NfnlError>;

/// `inet pont forward` holds its `jump to_bridge` (gone after a flush of the
/// rule set, the table or the chain).
fn forward_jumps_to_bridges(
    nl: &mut Nfnl,
    _: &[NetworkRules],
    _: usize,
) -> Result<bool, NfnlError> {
    let rules = rules_of(nl, NFPROTO_INET, TABLE_NAME, "forward")?;
    Ok(rules.iter().any(|rule| jumps_to(rule, "to_bridge")))
}

/// Every network's bridge is an element of `inet pont bridges`: one request
/// for exactly those elements, which fails if any is missing.
fn bridges_listed(nl: &mut Nfnl, networks: &[NetworkRules]) -> Result<bool, NfnlError> {
    let mut w = attr::Writer::default();
    w.put_str(NFTA_SET_ELEM_LIST_TABLE, TABLE_NAME);
    w.put_str(NFTA_SET_ELEM_LIST_SET, "bridges");
    let list = w.begin_nest(NFTA_SET_ELEM_LIST_ELEMENTS);
    let mut entries = 0;
    for n in networks {
        let key = Element {
            family: Family::Inet,
            set: "bridges",
            key: vec![Field::Ifname(n.bridge.clone())],
            comment: String::new(),
            value: Vec::new(),
        };
        key.encode(Shape::Exact, Op::Delete, &mut w, &mut entries);
    }
    w.end_nest(list);
    nl.get(msg::GETSETELEM, NFPROTO_INET, &w.into_inner())?;
    Ok(true)
}

/// `bridge pont guarded_ports` holds exactly one port per live endpoint.
fn guarded_ports_are(nl: &mut Nfnl, endpoints: usize) -> Result<bool, NfnlError> {
    Ok(set_size(nl, NFPROTO_BRIDGE, "guarded_ports")? == endpoints)
}

/// The number of elements of a set: the kernel's count where it gives one,
/// else counted in a dump of the set (one lookup per element then).
fn set_size(nl: &mut Nfnl, family: u8, set: &str) -> Result<usize, NfnlError> {
    let mut w = attr::Writer::default();
    w.put_str(NFTA_SET_TABLE, TABLE_NAME);
    w.put_str(NFTA_SET_NAME, set);
    let answers = nl.get(msg::GETSET, family, &w.into_inner())?;
    match answers
        .iter()
        .find_map(|a| attr::find_u32_be(a, NFTA_SET_COUNT))
    {
        Some(count) => Ok(count as usize),
        None => count_by_dump(nl, family, set),
    }
}

fn count_by_dump(nl: &mut Nfnl, family: u8, set: &str) -> Result<usize, NfnlError> {
    let mut w = attr::Writer::default();
    w.put_str(NFTA_SET_ELEM_LIST_TABLE, TABLE_NAME);
    w.put_str(NFTA_SET_ELEM_LIST_SET, set);
    let answers = nl.dump(msg::GETSETELEM, family, &w.into_inner())?;
    Ok(answers
        .iter()
        .filter_map(|a| attr::find(a, NFTA_SET_ELEM_LIST_ELEMENTS))
        .map(|list| attr::iter(list).count())
        .sum())
}

fn chain_exists(nl: &mut Nfnl, family: u8, table: &str, chain: &str) -> Result<bool, NfnlError> {
    Ok(!get_chain(nl, family, table, chain)?.is_empty())
}

/// The attributes of one chain (GETCHAIN refuses with ENOENT if it is missing).
fn get_chain(nl: &mut Nfnl, family: u8, table: &str, chain: &str) -> Result<Vec<u8>, NfnlError> {
    let mut w = attr::Writer::default();
    w.put_str(NFTA_CHAIN_TABLE, table);
    w.put_str(NFTA_CHAIN_NAME, chain);
    let answers = nl.get(msg::GETCHAIN, family, &w.into_inner())?;
    Ok(answers.into_iter().next().unwrap_or_default())
}

/// The attributes of every rule of one chain (empty if the table is missing).
fn rules_of(
    nl: &mut Nfnl,
    family: u8,
    table: &str,
    chain: &str,
) -> Result<Vec<Vec<u8>>, NfnlError> {
    let mut w = attr::Writer::default();
    w.put_str(NFTA_RULE_TABLE, table);
    w.put_str(NFTA_RULE_CHAIN, chain);
    nl.dump(msg::GETRULE, family, &w.into_inner())
}

/// The rule has an `immediate` expression whose verdict jumps to `chain`.
fn jumps_to(rule: &[u8], chain: &str) -> bool {
    let Some(exprs) = attr::find(rule, NFTA_RULE_EXPRESSIONS) else {
        return false;
    };
    attr::iter(exprs).any(|(_, expr)| {
        let verdict = attr::find_str(expr, NFTA_EXPR_NAME)
            .filter(|name| *name == b"immediate")
            .and_then(|_| attr::find(expr, NFTA_EXPR_DATA))
            .and_then(|data| attr::find(data, NFTA_IMMEDIATE_DATA))
            .and_then(|data| attr::find(data, NFTA_DATA_VERDICT));
        verdict.is_some_and(|v| {
            attr::find_u32_be(v, NFTA_VERDICT_CODE) == Some(NFT_JUMP)
                && attr::find_str(v, NFTA_VERDICT_CHAIN) == Some(chain.as_bytes())
        })
    })
}

/// Under an iptables FORWARD policy of DROP, pont's accept shim is in place:
/// the chain PONT-ACCEPT with its two rules per network, and FORWARD's jump
/// to it (see [`iptables::sync_forward_shim`]). iptables-nft keeps its rules
/// in the nftables table `ip filter`, read here; with no such table there is
/// no policy to work around. With no iptables at all, the shim cannot be kept
/// and is not asked for. Legacy iptables keeps its rules outside nftables,
/// so there the check lists them with `iptables`, a process.
fn forward_shim_in_place(nl: &mut Nfnl, networks: &[NetworkRules]) -> Result<bool, NfnlError> {
    match iptables_variant() {
        None => return Ok(true),
        Some(Variant::Legacy) => return Ok(iptables::forward_shim_in_place(networks)),
        Some(Variant::Nft) => {}
    }
    let forward = match get_chain(nl, NFPROTO_IPV4, IPTABLES_TABLE, IPTABLES_FORWARD) {
        Err(e) if e.errno() == Some(libc::ENOENT) => return Ok(true),
        other => other?,
    };
    if attr::find_u32_be(&forward, NFTA_CHAIN_POLICY) != Some(NF_DROP) {
        return Ok(true);
    }
    let accepts = rules_of(nl, NFPROTO_IPV4, IPTABLES_TABLE, SHIM_CHAIN)?;
    if accepts.len() != 2 * networks.len() {
        return Ok(false);
    }
    let forward_rules = rules_of(nl, NFPROTO_IPV4, IPTABLES_TABLE, IPTABLES_FORWARD)?;
    Ok(forward_rules.iter().any(|rule| jumps_to(rule, SHIM_CHAIN)))
}

#[derive(Debug, PartialEq, Eq)]
enum Variant {
    Nft,
    Legacy,
}

/// Which iptables the `iptables` on PATH is, from the program it resolves to
/// (Debian's alternatives: xtables-nft-multi or xtables-legacy-multi). One
/// that names neither is taken for legacy, whose check is always right.
fn iptables_variant() -> Option<Variant> {
    let path = std::env::var_os("PATH")?;
    let program = std::env::split_paths(&path)
        .map(|dir| dir.join("iptables"))
        .find(|p| p.exists())?;
    Some(variant_of(
        &std::fs::canonicalize(&program).unwrap_or(program),
    ))
}

fn variant_of(program: &Path) -> Variant {
    let name = program.file_name().unwrap_or_default().to_string_lossy();
    if name.contains("nft") {
        Variant::Nft
    } else {
        Variant::Legacy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dump_counts_as_the_kernel_does() {
        crate::netlink::tests::in_fresh_netns(|| {
            let rules = crate::firewall::iptables::tests::with_mappings();
            super::super::apply(&rules).unwrap();
            let mut nl = Nfnl::open().unwrap();
            for (family, set) in [
                (NFPROTO_BRIDGE, "guarded_ports"),
                (NFPROTO_INET, "dnat_any_ports"),
            ] {
                let dumped = count_by_dump(&mut nl, family, set).unwrap();
                assert_eq!(dumped, set_size(&mut nl, family, set).unwrap(), "{set}");
            }
            assert_eq!(
                count_by_dump(&mut nl, NFPROTO_BRIDGE, "guarded_ports").unwrap(),
                2
            );
            assert_eq!(
                count_by_dump(&mut nl, NFPROTO_INET, "dnat_any_ports").unwrap(),
                4
            );
        });
    }

    #[test]
    fn iptables_variant_from_the_program_name() {
        assert_eq!(
            variant_of(Path::new("/usr/sbin/xtables-nft-multi")),
            Variant::Nft
        );
        assert_eq!(
            variant_of(Path::new("/usr/sbin/iptables-nft")),
            Variant::Nft
        );
        assert_eq!(
            variant_of(Path::new("/usr/sbin/xtables-legacy-multi")),
            Variant::Legacy
        );
        assert_eq!(variant_of(Path::new("/sbin/iptables")), Variant::Legacy);
    }
}
