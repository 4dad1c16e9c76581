//! The rendered batches against the real kernel, each in a fresh network namespace.

use std::process::Command;

use super::{Backend, RuleSet};
use crate::netlink::tests::in_fresh_netns;

fn sample() -> RuleSet {
    super::iptables::tests::with_mappings()
}

/// Run `cmd` with `sh -c` (in the calling thread's namespace); its stdout, or
/// a failed test naming the command and its stderr.
pub(crate) fn sh(cmd: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", cmd])
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ruleset() -> String {
    // -s: no counters, so two listings of the same rules compare equal.
    sh("nft -s list ruleset")
}

/// iptables-nft and ebtables-nft make a table's built-in chains when they
/// first touch it, and leave them: the host's state before pont.
pub(crate) fn touch_tables() {
    sh(
        "touch() { iptables -t $1 -A $2 -j ACCEPT && iptables -t $1 -D $2 -j ACCEPT; }; \
        touch filter FORWARD; touch filter INPUT; touch raw PREROUTING; \
        touch nat PREROUTING; touch nat OUTPUT; touch nat POSTROUTING; \
        ebtables -A FORWARD -j ACCEPT; ebtables -D FORWARD -j ACCEPT; \
        ebtables -t nat -A PREROUTING -j ACCEPT; ebtables -t nat -D PREROUTING -j ACCEPT",
    );
}

#[test]
fn both_backends_apply_idempotently_and_remove_completely() {
    for backend in Backend::ALL {
        in_fresh_netns(|| {
            touch_tables();
            let empty = ruleset();
            backend.apply(&sample()).unwrap();
            let once = ruleset();
            assert!(once.contains("br-0123456789ab"), "{backend}: {once}");
            assert!(backend
                .is_installed(&sample().networks, sample().endpoints.len())
                .unwrap());
            backend.apply(&sample()).unwrap();
            assert_eq!(
                ruleset(),
                once,
                "{backend}: a second apply changed the rules"
            );
            backend.apply(&RuleSet::default()).unwrap();
            assert_eq!(
                ruleset(),
                empty,
                "{backend}: removing the last network left rules"
            );
        });
    }
}

#[test]
fn admin_chain_survives_applies_and_keeps_the_table() {
    in_fresh_netns(|| {
        Backend::Nftables.apply(&sample()).unwrap();
        sh("nft add rule inet pont user ip saddr 10.77.1.5 drop");
        Backend::Nftables.apply(&sample()).unwrap();
        Backend::Nftables.apply(&RuleSet::default()).unwrap();
        assert!(sh("nft list chain inet pont user").contains("ip saddr 10.77.1.5 drop"));
    });
    in_fresh_netns(|| {
        Backend::Iptables.apply(&sample()).unwrap();
        sh("iptables -A PONT-USER -s 10.77.1.5 -j DROP");
        Backend::Iptables.apply(&sample()).unwrap();
        Backend::Iptables.apply(&RuleSet::default()).unwrap();
        assert!(sh("iptables -S PONT-USER").contains("-A PONT-USER -s 10.77.1.5/32 -j DROP"));
    });
}

#[test]
fn flushed_rules_are_noticed() {
    in_fresh_netns(|| {
        Backend::Nftables.apply(&sample()).unwrap();
        sh("nft flush ruleset");
        assert!(!Backend::Nftables
            .is_installed(&sample().networks, sample().endpoints.len())
            .unwrap());
    });
    // The presence check lists only the forward chain and the bridges set.
    for flush in [
        "nft flush chain inet pont forward",
        "nft flush set inet pont bridges",
    ] {
        in_fresh_netns(|| {
            Backend::Nftables.apply(&sample()).unwrap();
            assert!(Backend::Nftables
                .is_installed(&sample().networks, sample().endpoints.len())
                .unwrap());
            sh(flush);
            assert!(
                !Backend::Nftables
                    .is_installed(&sample().networks, sample().endpoints.len())
                    .unwrap(),
                "{flush}"
            );
        });
    }
    in_fresh_netns(|| {
        Backend::Iptables.apply(&sample()).unwrap();
        sh("iptables -F; iptables -t nat -F");
        assert!(!Backend::Iptables
            .is_installed(&sample().networks, sample().endpoints.len())
            .unwrap());
        Backend::Iptables.apply(&sample()).unwrap();
        assert!(Backend::Iptables
            .is_installed(&sample().networks, sample().endpoints.len())
            .unwrap());
    });
}

#[test]
fn forward_drop_policy_gets_an_accept_shim_on_nftables() {
    in_fresh_netns(|| {
        sh("iptables -P FORWARD DROP");
        Backend::Nftables.apply(&sample()).unwrap();
        let rules = sh("iptables -S FORWARD");
        assert!(rules.ends_with("-A FORWARD -j PONT-ACCEPT\n"), "{rules}");
        assert!(
            rules.starts_with("-P FORWARD DROP\n"),
            "policy untouched: {rules}"
        );
        Backend::Nftables.apply(&RuleSet::default()).unwrap();
        assert_eq!(sh("iptables -S FORWARD"), "-P FORWARD DROP\n");
    });
}

#[test]
fn incremental_changes_equal_a_full_apply() {
    for backend in Backend::ALL {
        in_fresh_netns(|| {
            let full = sample();
            let mut fewer = full.clone();
            fewer.mappings.remove(0);
            fewer.networks.remove(1);
            backend.apply(&fewer).unwrap();
            backend.apply_change(&fewer, &full).unwrap();
            let changed = ruleset();
            backend.apply(&full).unwrap();
            let whole = ruleset();
            assert_eq!(
                sorted(&changed),
                sorted(&whole),
                "{backend}: change != full apply"
            );
            if backend == Backend::Iptables {
                // In these chains the order across networks matters.
                let ordered = "iptables -S PONT-FORWARD; iptables -t nat -S PONT-POSTROUTING";
                backend.apply(&fewer).unwrap();
                backend.apply_change(&fewer, &full).unwrap();
                let changed = sh(ordered);
                backend.apply(&full).unwrap();
                assert_eq!(sh(ordered), changed, "order differs after a change");
            }
        });
    }
}

/// Rule order across groups and the wrapping of element lists are not
/// meaningful: compare the sorted pieces between braces, commas and newlines.
fn sorted(listing: &str) -> Vec<String> {
    let mut pieces: Vec<String> = listing
        .split(['{', '}', ',', '\n'])
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect();
    pieces.sort();
    pieces
}
