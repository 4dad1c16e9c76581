//! The messages of the native change: the reads (GETGEN, a chain's rules)
//! and the batch (chains made and deleted, rules appended and deleted).

use std::collections::HashMap;

use netlink_packet_core::{NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL, NLM_F_NONREC};

use super::expr;
use super::spec::Encoded;
use super::NAT;
use crate::firewall::nfnl::{
    attr, msg, Batch, Nfnl, NfnlError, NFPROTO_BRIDGE, NFPROTO_IPV4, NFTA_GEN_ID,
};
use crate::firewall::tool::FirewallError;

/// enum nft_rule_attributes and nft_chain_attributes, nf_tables.h.
pub(super) const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
pub(super) const NFTA_RULE_HANDLE: u16 = 3;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_RULE_COMPAT: u16 = 5;
const NFTA_RULE_USERDATA: u16 = 7;
const NFTA_RULE_COMPAT_PROTO: u16 = 1;
const NFTA_RULE_COMPAT_FLAGS: u16 = 2;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;

/// The ruleset's generation now (NFT_MSG_GETGEN).
pub(super) fn generation(nl: &mut Nfnl) -> Result<u32, NfnlError> {
    let answers = nl.get(msg::GETGEN, 0, &[])?;
    answers
        .iter()
        .find_map(|a| attr::find_u32_be(a, NFTA_GEN_ID))
        .ok_or_else(|| NfnlError::Protocol {
            reason: "GETGEN answered without a generation".into(),
        })
}

/// A rule as a dump shows it.
#[derive(Debug)]
pub(super) struct Dumped {
    handle: u64,
    pub exprs: Vec<u8>,
    /// Rules with user data (a comment made by nft, say) are never pont's.
    userdata: bool,
}

/// The chains dumped so far, each once; rules taken for deletion leave them.
#[derive(Default)]
pub(super) struct Dumps {
    chains: HashMap<(u8, String, String), Vec<Dumped>>,
}

impl Dumps {
    /// The rules of `chain` (none if it does not exist), in their order.
    pub(super) fn rules(
        &mut self,
        nl: &mut Nfnl,
        family: u8,
        table: &str,
        chain: &str,
    ) -> Result<&mut Vec<Dumped>, NfnlError> {
        let key = (family, table.to_string(), chain.to_string());
        if !self.chains.contains_key(&key) {
            let rules = dump_chain(nl, family, table, chain)?;
            self.chains.insert(key.clone(), rules);
        }
        Ok(self.chains.get_mut(&key).expect("inserted above"))
    }

    /// The handle of the first rule of `chain` that is `ours`, taken out of the dump.
    pub(super) fn take(
        &mut self,
        nl: &mut Nfnl,
        family: u8,
        table: &str,
        chain: &str,
        ours: &Encoded,
    ) -> Result<Option<u64>, NfnlError> {
        let rules = self.rules(nl, family, table, chain)?;
        let at = rules
            .iter()
            .position(|r| !r.userdata && expr::same(&r.exprs, &ours.exprs));
        Ok(at.map(|i| rules.remove(i).handle))
    }
}

/// NFT_MSG_GETRULE dump filtered by table and chain.
fn dump_chain(
    nl: &mut Nfnl,
    family: u8,
    table: &str,
    chain: &str,
) -> Result<Vec<Dumped>, NfnlError> {
    let mut w = attr::Writer::default();
    w.put_str(NFTA_RULE_TABLE, table);
    w.put_str(NFTA_RULE_CHAIN, chain);
    let answers = nl.dump(msg::GETRULE, family, &w.into_inner())?;
    answers
        .iter()
        .map(|a| {
            let handle = attr::find(a, NFTA_RULE_HANDLE)
                .and_then(|v| Some(u64::from_be_bytes(v.get(..8)?.try_into().ok()?)));
            let handle = handle.ok_or_else(|| NfnlError::Protocol {
                reason: format!("a rule of {table} {chain} dumped without its handle"),
            })?;
            Ok(Dumped {
                handle,
                exprs: attr::find(a, NFTA_RULE_EXPRESSIONS)
                    .unwrap_or_default()
                    .to_vec(),
                userdata: attr::find(a, NFTA_RULE_USERDATA).is_some(),
            })
        })
        .collect()
}

/// The batch under construction, with what each message does (for an error).
pub(super) struct Messages {
    batch: Batch,
    what: Vec<String>,
}

impl Messages {
    pub(super) fn new(generation: u32) -> Messages {
        Messages {
            batch: Batch::for_generation(generation),
            what: Vec::new(),
        }
    }

    /// `:CHAIN` of a `--noflush` batch for a chain that is not there: made,
    /// and an error if it is (a stale chain: the full rewrite then flushes it).
    pub(super) fn new_chain(&mut self, chain: &str) {
        self.nat_chain(msg::NEWCHAIN, NLM_F_EXCL, chain, "create");
    }

    /// `-X CHAIN`, once its rules and the jump to it are deleted.
    pub(super) fn delete_chain(&mut self, chain: &str) {
        self.nat_chain(msg::DELCHAIN, NLM_F_NONREC, chain, "delete");
    }

    /// One message about nat chain `chain`, named by `verb` in errors.
    fn nat_chain(&mut self, kind: u8, flags: u16, chain: &str, verb: &str) {
        self.batch.begin(kind, NFPROTO_IPV4, flags);
        let w = self.batch.writer();
        w.put_str(NFTA_CHAIN_TABLE, NAT);
        w.put_str(NFTA_CHAIN_NAME, chain);
        self.batch.end();
        self.what.push(format!("{verb} chain {NAT} {chain}"));
    }

    pub(super) fn append_rule(
        &mut self,
        family: u8,
        table: &str,
        chain: &str,
        rule: &Encoded,
        spec: &str,
    ) {
        self.batch
            .begin(msg::NEWRULE, family, NLM_F_CREATE | NLM_F_APPEND);
        write_rule(self.batch.writer(), table, chain, rule);
        self.batch.end();
        self.what.push(format!(
            "append to {} {table} {chain}: {spec}",
            family_name(family)
        ));
    }

    pub(super) fn delete_rule(
        &mut self,
        family: u8,
        table: &str,
        chain: &str,
        handle: u64,
        spec: &str,
    ) {
        self.batch.begin(msg::DELRULE, family, 0);
        let w = self.batch.writer();
        w.put_str(NFTA_RULE_TABLE, table);
        w.put_str(NFTA_RULE_CHAIN, chain);
        w.put(NFTA_RULE_HANDLE, &handle.to_be_bytes());
        self.batch.end();
        self.what.push(format!(
            "delete from {} {table} {chain}: {spec}",
            family_name(family)
        ));
    }

    /// Commit: ERESTART and socket failures as the outer error, a refused
    /// message as the inner one, naming what it did.
    pub(super) fn commit(self, nl: &mut Nfnl) -> Result<Result<(), FirewallError>, NfnlError> {
        match nl.commit(self.batch) {
            Ok(()) => Ok(Ok(())),
            Err(NfnlError::Refused {
                message: Some(index),
                detail,
                source,
                ..
            }) if source.raw_os_error() != Some(libc::ERESTART) => {
                Ok(Err(FirewallError::RuleRefused {
                    what: self.what[index].clone(),
                    detail,
                    source,
                }))
            }
            Err(other) => Err(other),
        }
    }
}

/// The attributes of an NFT_MSG_NEWRULE that appends `rule`, in the order
/// iptables-nft writes them.
pub(super) fn write_rule(w: &mut attr::Writer, table: &str, chain: &str, rule: &Encoded) {
    w.put_str(NFTA_RULE_TABLE, table);
    w.put_str(NFTA_RULE_CHAIN, chain);
    let exprs = w.begin_nest(NFTA_RULE_EXPRESSIONS);
    w.bytes_mut().extend_from_slice(&rule.exprs);
    w.end_nest(exprs);
    let compat = w.begin_nest(NFTA_RULE_COMPAT);
    w.put_u32_be(NFTA_RULE_COMPAT_PROTO, rule.proto);
    w.put_u32_be(NFTA_RULE_COMPAT_FLAGS, 0);
    w.end_nest(compat);
}

fn family_name(family: u8) -> &'static str {
    match family {
        NFPROTO_BRIDGE => "bridge",
        _ => "ip",
    }
}
