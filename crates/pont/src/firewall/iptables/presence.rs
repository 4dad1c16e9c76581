//! The presence check every pont command runs: are pont's chains still
//! hooked in, with every network's rules?
//!
//! It lists single chains, not whole tables: `iptables-save` and
//! `ebtables-save` print every rule, and with 10000 published ports or 200
//! containers they took 120-160 ms and 35-45 ms per command. Listings of
//! single chains cost the same whatever else the tables hold, and the six
//! run side by side. Between them they see every jump from a built-in chain
//! (so `iptables -F`, `iptables -t nat -F`, `ebtables -t nat -F` and a deleted
//! jump are all noticed) and every network's rules in `PONT-FORWARD`.
//!
//! Not checked: the rules of each container port in the ebtables buckets.
//! Counting them means listing all of them (35 ms with 200 containers); they
//! can only go missing through a flush of pont's own bucket chains, and the
//! next full rewrite (`pont firewall reload`) restores them.

use super::dnat::DNAT_CHAIN;
use super::ebtables::HOOK_JUMPS;
use super::{has_jump, JUMPS};
use crate::firewall::tool::{self, FirewallError};
use crate::firewall::NetworkRules;

const POSTROUTING_CHAIN: &str = "PONT-POSTROUTING";

pub(super) fn hooked(networks: &[NetworkRules]) -> Result<bool, FirewallError> {
    if networks.is_empty() {
        return Ok(true);
    }
    let queries: [(&'static str, &[&str]); 6] = [
        ("iptables", &["-w", "-S"]),
        ("iptables", &["-w", "-t", "raw", "-S"]),
        // `-L` heads the listing with how many rules jump to the chain.
        ("iptables", &["-w", "-t", "nat", "-L", DNAT_CHAIN, "-n"]),
        (
            "iptables",
            &["-w", "-t", "nat", "-L", POSTROUTING_CHAIN, "-n"],
        ),
        ("ebtables", &["-t", HOOK_JUMPS[0].0, "-L", HOOK_JUMPS[0].1]),
        ("ebtables", &["-t", HOOK_JUMPS[1].0, "-L", HOOK_JUMPS[1].1]),
    ];
    let running: Vec<_> = queries
        .iter()
        .map(|(tool, args)| tool::start(tool, args, ""))
        .collect::<Result<_, _>>()?;
    let mut listings = Vec::new();
    for r in running {
        match r.finish() {
            Ok(text) => listings.push(text),
            // A chain that is not there.
            Err(FirewallError::Rejected { .. }) => return Ok(false),
            Err(err) => return Err(err),
        }
    }
    let [filter, raw, dnat, postrouting, eb_filter, eb_nat] = &listings[..] else {
        unreachable!("one listing per query");
    };
    let jumps_in = |listing: &str, table: &str| {
        JUMPS
            .iter()
            .filter(|(t, ..)| *t == table)
            .all(|(_, builtin, m, chain, _)| has_jump(listing, builtin, m, chain))
    };
    let bridges = networks.iter().all(|n| {
        let prefix = format!("-A PONT-FORWARD -o {} ", n.bridge);
        filter.lines().any(|l| l.starts_with(&prefix))
    });
    let eb_jump = |listing: &str, line: &str| listing.lines().any(|l| l == line);
    Ok(jumps_in(filter, "filter")
        && bridges
        && jumps_in(raw, "raw")
        && referenced(dnat, DNAT_CHAIN)
        && referenced(postrouting, POSTROUTING_CHAIN)
        && eb_jump(eb_filter, HOOK_JUMPS[0].2)
        && eb_jump(eb_nat, HOOK_JUMPS[1].2))
}

/// Whether an `iptables -L CHAIN` listing says that as many rules jump to
/// `chain` as pont hooks in ([`JUMPS`]).
fn referenced(listing: &str, chain: &str) -> bool {
    let hooks = JUMPS.iter().filter(|(.., c, _)| *c == chain).count();
    let head = format!("Chain {chain} ({hooks} references)");
    listing.lines().next() == Some(head.as_str())
}
