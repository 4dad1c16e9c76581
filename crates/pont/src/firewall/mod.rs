//! pont's firewall: a pure plan of the rules the live networks and containers
//! need ([`plan`]), rendered for a backend and applied as one atomic
//! transaction per operation.
//!
//! The plan is recomputed from the records on every change and replaces
//! pont's own rules as a whole, so the kernel's rules cannot drift from the
//! records, and a flushed or half-applied rule set is repaired by the next
//! command. pont touches no table, chain or rule it does not own, except one
//! jump per built-in chain it hooks into (iptables) and never a policy.

pub mod conntrack;
mod iptables;
mod nfnl;
mod nftables;
mod plan;
mod tool;

#[cfg(test)]
mod kernel_tests;

pub use plan::{
    container_rules, network_rules, plan, EndpointRules, MappingRules, NetworkRules, RuleSet,
};
pub use tool::FirewallError;

use std::fmt;
use std::str::FromStr;

/// Call last in a process that changed the firewall, right before it exits:
/// the kernel makes the last close of a netfilter socket wait, holding the
/// namespace's nf_tables commit mutex, until the deleted elements of recent
/// commits are freed after a grace period (6-15 ms); this hands the socket to
/// a short-lived keeper process that closes it once the namespace is quiet
/// (see `nfnl::close_in_background`).
pub fn release_before_exit() {
    nfnl::close_in_background();
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Nftables,
    Iptables,
}

impl Backend {
    pub const ALL: [Backend; 2] = [Backend::Nftables, Backend::Iptables];

    /// nftables where the `nft` tool and the kernel support it, else iptables.
    pub fn detect() -> Result<Backend, FirewallError> {
        if nftables::usable() {
            return Ok(Backend::Nftables);
        }
        if iptables::usable() {
            return Ok(Backend::Iptables);
        }
        Err(FirewallError::NoBackend)
    }

    /// A clear error if this backend's tools or kernel support are missing.
    pub fn check_usable(self) -> Result<(), FirewallError> {
        let ok = match self {
            Backend::Nftables => nftables::usable(),
            Backend::Iptables => iptables::usable(),
        };
        if ok {
            Ok(())
        } else {
            Err(FirewallError::Unusable { backend: self })
        }
    }

    /// Make pont's rules exactly `rules`. With no networks left, pont's rules are
    /// removed altogether unless the admin chain holds rules, which are kept.
    pub fn apply(self, rules: &RuleSet) -> Result<(), FirewallError> {
        match self {
            Backend::Nftables => nftables::apply(rules),
            Backend::Iptables => iptables::apply(rules),
        }
    }

    /// Turn `before` (what is installed) into `after` with as little work as
    /// the backend allows; falls back to a full [`Backend::apply`] if the
    /// incremental change is refused (say, because someone flushed the rules).
    pub fn apply_change(self, before: &RuleSet, after: &RuleSet) -> Result<(), FirewallError> {
        let changed = match self {
            Backend::Nftables => nftables::apply_change(before, after),
            Backend::Iptables => iptables::apply_change(before, after),
        };
        changed.or_else(|_| self.apply(after))
    }

    /// Replace one operation's share of the container rules: `before` and
    /// `after` hold only containers' endpoints and mappings (no networks),
    /// as [`container_rules`] makes them, and everything else stays as
    /// installed. The work is that of the change alone. An error means the
    /// installed rules are not what `before` assumed (say, they were
    /// flushed): the caller then rewrites them from the records.
    pub fn apply_container_change(
        self,
        before: &RuleSet,
        after: &RuleSet,
    ) -> Result<(), FirewallError> {
        debug_assert!(before.networks.is_empty() && after.networks.is_empty());
        match self {
            Backend::Nftables => nftables::apply_container_change(before, after),
            Backend::Iptables => iptables::apply_container_change(before, after),
        }
    }

    /// Remove everything of pont's in this backend, the admin chain included
    /// (used when switching backends).
    pub fn remove_all(self) -> Result<(), FirewallError> {
        match self {
            Backend::Nftables => nftables::remove_all(),
            Backend::Iptables => iptables::remove_all(),
        }
    }

    /// The batch a full [`Backend::apply`] feeds the backend's tool for `rules`
    /// (for iptables, as on a host without any of pont's chains yet). Pure:
    /// for tests and fuzzing of what records turn into.
    pub fn render(self, rules: &RuleSet) -> String {
        match self {
            Backend::Nftables => nftables::render(rules),
            Backend::Iptables => iptables::render(rules, ""),
        }
    }

    /// pont's rules as the backend lists them. `rules` (what the records call
    /// for) names the network of rules that cannot carry a comment.
    pub fn show(self, rules: &RuleSet) -> Result<String, FirewallError> {
        match self {
            Backend::Nftables => nftables::show(),
            Backend::Iptables => iptables::show(rules),
        }
    }

    /// Whether pont's rules for `networks` look installed, with `endpoints`
    /// container ports under anti-spoofing: a cheap presence check, so every
    /// command notices a flushed rule set and rebuilds it. It costs the same
    /// however many containers and published ports there are (no records
    /// are read for it, no port map is listed).
    pub fn is_installed(
        self,
        networks: &[NetworkRules],
        endpoints: usize,
    ) -> Result<bool, FirewallError> {
        match self {
            Backend::Nftables => nftables::is_installed(networks, endpoints),
            Backend::Iptables => iptables::is_installed(networks, endpoints),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Nftables => "nftables",
            Backend::Iptables => "iptables",
        })
    }
}

impl FromStr for Backend {
    type Err = FirewallError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "nftables" | "nft" => Ok(Backend::Nftables),
            "iptables" => Ok(Backend::Iptables),
            other => Err(FirewallError::UnknownBackend(other.to_string())),
        }
    }
}
