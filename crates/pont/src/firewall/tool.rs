//! Running the firewall tools (`nft`, `iptables-restore`, ...) with a batch on stdin.

use std::io::Write;
use std::process::{Child, Command, Stdio};

use super::nfnl::{detail_suffix, NfnlError};
use super::Backend;

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("unknown firewall backend '{0}': expected nftables or iptables")]
    UnknownBackend(String),
    #[error("no usable firewall backend: install the nftables package (or iptables)")]
    NoBackend,
    #[error("firewall backend {backend} is not usable here: {}", install_hint(*backend))]
    Unusable { backend: Backend },
    #[error("cannot run {tool}: {source}")]
    Spawn {
        tool: &'static str,
        source: std::io::Error,
    },
    #[error("{tool} rejected pont's rules: {stderr}")]
    Rejected { tool: &'static str, stderr: String },
    /// nf_tables refused a set-element change sent over nfnetlink; `element`
    /// is the one it pointed at (an extended ack), if it did.
    #[error(
        "nf_tables refused to {op} {} in set {set}{}: {source}",
        element.as_deref().unwrap_or("an element"),
        detail_suffix(detail)
    )]
    ElementRefused {
        op: &'static str,
        set: String,
        element: Option<String>,
        detail: Option<String>,
        source: std::io::Error,
    },
    /// nf_tables refused a rule change of the iptables backend sent over
    /// nfnetlink; `what` says which (the chain and the rule's text).
    #[error("nf_tables refused to {what}{}: {source}", detail_suffix(detail))]
    RuleRefused {
        what: String,
        detail: Option<String>,
        source: std::io::Error,
    },
    /// A rule a change of the iptables backend deletes is not installed (as
    /// when `iptables -D` finds no such rule).
    #[error("no rule in {table} {chain} to delete: {rule}")]
    RuleMissing {
        table: String,
        chain: String,
        rule: String,
    },
    #[error("nf_tables over netlink: {0}")]
    Netlink(#[from] NfnlError),
}

fn install_hint(b: Backend) -> &'static str {
    match b {
        Backend::Nftables => "the nft tool or the kernel's nf_tables support is missing (install the nftables package)",
        Backend::Iptables => "iptables-restore or the kernel's support is missing (install the iptables package)",
    }
}

/// Run `tool args`, feeding `stdin`; its stdout on success, its stderr as the error.
pub fn run(tool: &'static str, args: &[&str], stdin: &str) -> Result<String, FirewallError> {
    start(tool, args, stdin)?.finish()
}

/// A tool started by [`start`], its batch already written; [`Running::finish`]
/// waits for it.
pub struct Running {
    tool: &'static str,
    child: Child,
}

/// Start `tool args` with `stdin` as its input and return without waiting, so
/// that tools with independent work (iptables and ebtables batches, listings of
/// different chains) run side by side: each costs a process start and, after a
/// deletion, a netfilter grace period at its exit, which then overlap.
///
/// A child enters the network namespace of the thread that forks it: start
/// tools from the thread that is in the namespace they must act on, never from
/// a helper thread.
pub fn start(tool: &'static str, args: &[&str], stdin: &str) -> Result<Running, FirewallError> {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| FirewallError::Spawn { tool, source })?;
    let mut pipe = child.stdin.take().expect("stdin is piped");
    // A tool that fails early closes its stdin; its stderr says why, so a write
    // error here is not the error to report.
    let _ = pipe.write_all(stdin.as_bytes());
    drop(pipe);
    Ok(Running { tool, child })
}

impl Running {
    /// Wait for the tool: its stdout on success, its stderr as the error.
    pub fn finish(self) -> Result<String, FirewallError> {
        let tool = self.tool;
        let out = self
            .child
            .wait_with_output()
            .map_err(|source| FirewallError::Spawn { tool, source })?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr)
                .trim()
                .replace('\n', "; ");
            Err(FirewallError::Rejected { tool, stderr })
        }
    }
}

/// Whether `tool args` runs and succeeds (for capability checks).
pub fn succeeds(tool: &str, args: &[&str]) -> bool {
    Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
