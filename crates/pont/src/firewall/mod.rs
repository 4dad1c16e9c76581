//! pont's firewall: a pure plan of the rules the live networks need, rendered
//! for a backend and applied as one atomic transaction per operation.
//!
//! The plan is recomputed from the records on every change and replaces
//! pont's own table as a whole, so the kernel's rules can never drift from
//! the records and a flushed or half-applied rule set is repaired by the next
//! command. pont touches no table or chain it does not own.

mod nftables;
mod plan;

pub use plan::{plan, NetworkRules, RuleSet};

use std::io::Write;
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("cannot run {tool}: {source} (install the nftables package)")]
    Spawn {
        tool: &'static str,
        source: std::io::Error,
    },
    #[error("{tool} rejected pont's rules: {stderr}")]
    Rejected { tool: &'static str, stderr: String },
}

/// Replace pont's rules with `rules`, in one transaction.
pub fn apply(rules: &RuleSet) -> Result<(), FirewallError> {
    run_nft(&nftables::render(rules))
}

/// Remove everything pont installed (used when no network is left, and by tests).
pub fn remove_all() -> Result<(), FirewallError> {
    run_nft(&nftables::render_removal())
}

/// The batch `apply` would send, for `pont firewall show` and for tests.
pub fn render(rules: &RuleSet) -> String {
    nftables::render(rules)
}

fn run_nft(batch: &str) -> Result<(), FirewallError> {
    let tool = "nft";
    let mut child = Command::new(tool)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| FirewallError::Spawn { tool, source })?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin
        .write_all(batch.as_bytes())
        .map_err(|source| FirewallError::Spawn { tool, source })?;
    drop(stdin);
    let out = child
        .wait_with_output()
        .map_err(|source| FirewallError::Spawn { tool, source })?;
    if out.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr)
            .trim()
            .replace('\n', "; ");
        Err(FirewallError::Rejected { tool, stderr })
    }
}
