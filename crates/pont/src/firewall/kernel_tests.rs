//! The rendered batches against the real kernel, each in a fresh network namespace.

use std::process::Command;

use super::{Backend, RuleSet};
use crate::netlink::tests::in_fresh_netns;

fn sample() -> RuleSet {
    super::nftables::tests::sample()
}

fn sh(cmd: &str) -> String {
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

#[test]
fn both_backends_apply_idempotently_and_remove_completely() {
    for backend in Backend::ALL {
        in_fresh_netns(|| {
            // iptables-nft makes a table's built-in chains when it first touches
            // the table, and leaves them: that is the host's state before pont.
            sh("for c in FORWARD INPUT; do iptables -A $c -j ACCEPT; iptables -D $c -j ACCEPT; done; \
                iptables -t nat -A POSTROUTING -j ACCEPT; iptables -t nat -D POSTROUTING -j ACCEPT; \
                ebtables -A FORWARD -j ACCEPT; ebtables -D FORWARD -j ACCEPT");
            let empty = ruleset();
            backend.apply(&sample()).unwrap();
            let once = ruleset();
            assert!(once.contains("br-0123456789ab"), "{backend}: {once}");
            assert!(backend.is_installed(&sample()).unwrap());
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
        assert!(!Backend::Nftables.is_installed(&sample()).unwrap());
    });
    in_fresh_netns(|| {
        Backend::Iptables.apply(&sample()).unwrap();
        sh("iptables -F; iptables -t nat -F");
        assert!(!Backend::Iptables.is_installed(&sample()).unwrap());
        Backend::Iptables.apply(&sample()).unwrap();
        assert!(Backend::Iptables.is_installed(&sample()).unwrap());
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
