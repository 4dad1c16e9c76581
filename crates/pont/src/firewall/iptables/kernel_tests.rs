//! The iptables backend's port blocks, ebtables buckets and presence check
//! against the real kernel, each test in a fresh network namespace.

use super::tests::with_mappings;
use super::*;
use crate::firewall::kernel_tests::sh;
pub(super) use crate::firewall::kernel_tests::touch_tables;
use crate::firewall::{Backend, EndpointRules, MappingRules};
use crate::model::{PortMapping, PortRange, Protocol};
use crate::netlink::tests::in_fresh_netns;

/// Every rule and chain of iptables and ebtables, sorted (the order of
/// groups in a chain is not meaningful here), without counters or dates.
pub(super) fn listing() -> Vec<String> {
    let text = sh("iptables-save; ebtables-save");
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.replace(" [0:0]", ""))
        .collect();
    lines.sort();
    lines
}

pub(super) fn tcp(container: &str, ip: &str, host: (u16, u16), to: u16) -> MappingRules {
    MappingRules {
        container: container.into(),
        network: "web".into(),
        container_ip: ip.parse().unwrap(),
        mapping: PortMapping {
            host_ip: None,
            host_ports: PortRange {
                start: host.0,
                end: host.1,
            },
            container_ports: PortRange {
                start: to,
                end: to + (host.1 - host.0),
            },
            protocol: Protocol::Tcp,
        },
    }
}

/// Container `web2`'s share: a port beside api's 8080 in block 31, one of its
/// own, and a range across blocks 80 and 81.
pub(super) fn web2() -> RuleSet {
    let ip = "10.77.1.3";
    RuleSet {
        networks: vec![],
        mappings: vec![
            tcp("web2", ip, (8081, 8081), 80),
            tcp("web2", ip, (443, 443), 443),
            tcp("web2", ip, (20730, 20740), 30),
        ],
        endpoints: vec![EndpointRules {
            container: "web2".into(),
            network: "web".into(),
            port: "veth3000000000a".into(),
            mac: "02:42:0a:4d:01:03".parse().unwrap(),
            ipv4: ip.parse().unwrap(),
            isolated: false,
        }],
    }
}

/// `base` with the mappings and endpoints of `share` added.
fn with(base: &RuleSet, share: &RuleSet) -> RuleSet {
    let mut all = base.clone();
    all.mappings.extend(share.mappings.iter().cloned());
    all.endpoints.extend(share.endpoints.iter().cloned());
    all
}

fn block_chains() -> Vec<String> {
    let saved = sh("iptables-save -t nat");
    dnat::block_chains_in(&saved).into_iter().collect()
}

#[test]
fn container_changes_equal_full_applies() {
    in_fresh_netns(|| {
        touch_tables();
        let base = with_mappings();
        let none = RuleSet::default();
        apply(&base).unwrap();
        let alone = listing();
        apply_container_change(&none, &web2()).unwrap();
        let changed = listing();
        apply(&with(&base, &web2())).unwrap();
        assert_eq!(changed, listing(), "adding web2's share");
        assert_eq!(
            block_chains(),
            [
                "PONT-DNAT-TCP-1",
                "PONT-DNAT-TCP-31",
                "PONT-DNAT-TCP-35",
                "PONT-DNAT-UDP-20"
            ]
        );
        apply_container_change(&web2(), &none).unwrap();
        assert_eq!(listing(), alone, "removing web2's share");
        // api's share goes too: its blocks' chains and jumps with it.
        let api = RuleSet {
            networks: vec![],
            ..base.clone()
        };
        apply_container_change(&api, &none).unwrap();
        assert_eq!(block_chains(), Vec::<String>::new());
        assert_eq!(sh("iptables -t nat -S PONT-DNAT"), "-N PONT-DNAT\n");
        let mut bare = base.clone();
        bare.mappings.clear();
        bare.endpoints.clear();
        apply(&bare).unwrap();
        apply_container_change(&none, &api).unwrap();
        assert_eq!(listing(), alone, "api's share back");
    });
}

#[test]
fn a_container_change_over_missing_rules_fails() {
    in_fresh_netns(|| {
        touch_tables();
        apply(&with_mappings()).unwrap();
        sh("iptables -t nat -F PONT-DNAT-TCP-31");
        let api = RuleSet {
            networks: vec![],
            ..with_mappings()
        };
        let err = apply_container_change(&api, &RuleSet::default());
        assert!(err.is_err(), "a deletion of a rule that is not there");
    });
}

#[test]
fn a_full_apply_drops_the_chains_of_blocks_no_longer_used() {
    in_fresh_netns(|| {
        touch_tables();
        let mut fewer = with_mappings();
        fewer.mappings.truncate(1);
        apply(&fewer).unwrap();
        let expected = listing();
        apply(&with(&with_mappings(), &web2())).unwrap();
        apply(&fewer).unwrap();
        assert_eq!(listing(), expected);
        assert_eq!(block_chains(), ["PONT-DNAT-TCP-31"]);
        apply(&RuleSet::default()).unwrap();
        assert_eq!(block_chains(), Vec::<String>::new());
    });
}

/// The presence check sees every flush of a table pont uses and every
/// deleted jump from a built-in chain.
#[test]
fn every_flush_and_deleted_jump_is_noticed() {
    let mut damage: Vec<String> = [
        "iptables -F",
        "iptables -t nat -F",
        "iptables -t raw -F",
        "ebtables -F",
        "ebtables -t nat -F",
        "iptables -F PONT-FORWARD",
    ]
    .map(String::from)
    .to_vec();
    for (table, builtin, m, chain, _) in JUMPS {
        damage.push(format!("iptables -t {table} -D {builtin} {m}-j {chain}"));
    }
    damage.push("ebtables -D FORWARD -j PONT-ISOLATE".into());
    damage.push("ebtables -t nat -D PREROUTING -j PONT-ANTISPOOF".into());
    damage.push("ebtables -t nat -F PONT-ANTISPOOF".into());
    damage.push("ebtables -F PONT-ISOLATE".into());
    let rules = with_mappings();
    for cmd in damage {
        in_fresh_netns(|| {
            apply(&rules).unwrap();
            assert!(is_installed(&rules.networks, 2).unwrap(), "before {cmd}");
            sh(&cmd);
            assert!(!is_installed(&rules.networks, 2).unwrap(), "{cmd}");
            apply(&rules).unwrap();
            assert!(is_installed(&rules.networks, 2).unwrap(), "after {cmd}");
        });
    }
}

#[test]
fn ports_rules_go_to_their_bucket() {
    in_fresh_netns(|| {
        touch_tables();
        let rules = with_mappings();
        apply(&rules).unwrap();
        // api's port is veth0123456789a, db's (isolated) vethfedcba98765.
        let nat = sh("ebtables -t nat -L PONT-ANTISPOOF-0");
        assert_eq!(nat.matches("-i veth0123456789a").count(), 5, "{nat}");
        let filter = sh("ebtables -L PONT-ISOLATE-f");
        assert_eq!(filter.matches("-i vethfedcba98765").count(), 2, "{filter}");
        let top = sh("ebtables -t nat -L PONT-ANTISPOOF");
        assert!(top.contains("-i veth3+ -j PONT-ANTISPOOF-3"), "{top}");
    });
}

/// Not a check: what one container's change and the presence check cost
/// with many other mappings or containers installed (median of 10, ms).
/// `cargo test --release -p pont --lib -- --ignored --nocapture change_costs`
#[test]
#[ignore = "a measurement, run by hand"]
fn change_costs() {
    use std::time::Instant;
    let endpoint = |i: u32| EndpointRules {
        container: format!("c{i}"),
        network: "web".into(),
        port: format!(
            "veth{:011x}",
            u64::from(i).wrapping_mul(0x9e37_79b9_7f4a) & 0xfff_ffff_ffff
        ),
        mac: format!("02:42:0a:4d:{:02x}:{:02x}", i / 250, i % 250)
            .parse()
            .unwrap(),
        ipv4: format!("10.77.{}.{}", 100 + i / 250, 1 + i % 250)
            .parse()
            .unwrap(),
        isolated: false,
    };
    let share = |i: u32, ports: std::ops::Range<u32>| RuleSet {
        networks: vec![],
        mappings: ports
            .map(|p| tcp(&format!("c{i}"), "10.77.100.1", (p as u16, p as u16), 80))
            .collect(),
        endpoints: vec![endpoint(i)],
    };
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;
    // (what, containers, mappings per container)
    for (what, containers, each) in [
        ("1 other mapping", 1, 1),
        ("1000 other mappings", 1, 1000),
        ("10000 other mappings", 1, 10000),
        ("200 containers, one port each", 200, 1),
    ] {
        in_fresh_netns(|| {
            touch_tables();
            let mut all = with_mappings();
            all.mappings.clear();
            all.endpoints.clear();
            for i in 0..containers {
                let first = 20000 + i * each;
                let s = share(i, first..first + each);
                all = with(&all, &s);
            }
            Backend::Iptables.apply(&all).unwrap();
            let probe = share(9999, 40000..40001);
            let none = RuleSet::default();
            let (mut add, mut rm, mut add_full, mut rm_full, mut check) =
                (vec![], vec![], vec![], vec![], vec![]);
            let grown = with(&all, &probe);
            for _ in 0..10 {
                let t = Instant::now();
                Backend::Iptables
                    .apply_container_change(&none, &probe)
                    .unwrap();
                add.push(ms(t));
                let t = Instant::now();
                Backend::Iptables
                    .apply_container_change(&probe, &none)
                    .unwrap();
                rm.push(ms(t));
                let t = Instant::now();
                Backend::Iptables.apply_change(&all, &grown).unwrap();
                add_full.push(ms(t));
                let t = Instant::now();
                Backend::Iptables.apply_change(&grown, &all).unwrap();
                rm_full.push(ms(t));
                let t = Instant::now();
                let n = all.endpoints.len();
                assert!(Backend::Iptables.is_installed(&all.networks, n).unwrap());
                check.push(ms(t));
            }
            println!(
                "{what:32} apply_container_change add {:6.1} rm {:6.1} | \
                 apply_change add {:6.1} rm {:6.1} | is_installed {:6.1}",
                median(add),
                median(rm),
                median(add_full),
                median(rm_full),
                median(check)
            );
        });
    }
}
