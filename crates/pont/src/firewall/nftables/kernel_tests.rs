//! The native element path and presence check against the real kernel, each
//! case in fresh network namespaces: what `nft list` shows after a native
//! change must be what the text path (`render_change` through `nft -f`) gives.

use super::*;
use crate::firewall::kernel_tests::sh;
use crate::firewall::{EndpointRules, MappingRules};
use crate::model::{PortMapping, PortRange, Protocol};
use crate::netlink::tests::in_fresh_netns;

fn nft(batch: &str) {
    tool::run("nft", &["-f", "-"], batch).unwrap();
}

/// Both tables as nft lists them, comments included (`-s`: no counters).
fn listing() -> String {
    sh("nft -s list table inet pont; nft -s list table bridge pont")
}

/// The networks of the sample, without containers: what `network create` leaves.
fn networks_only() -> RuleSet {
    RuleSet {
        networks: crate::firewall::iptables::tests::with_mappings().networks,
        ..RuleSet::default()
    }
}

/// Containers' share of the rules: the sample's, plus a range mapping on an
/// address, one on every address, and a third container.
fn containers() -> RuleSet {
    let mut rules = crate::firewall::iptables::tests::with_mappings();
    rules.networks.clear();
    let range = |host_ip: Option<&str>, start, end, protocol| MappingRules {
        container: "api".into(),
        network: "web".into(),
        container_ip: "10.77.1.2".parse().unwrap(),
        mapping: PortMapping {
            host_ip: host_ip.map(|ip| ip.parse().unwrap()),
            host_ports: PortRange { start, end },
            container_ports: PortRange { start, end },
            protocol,
        },
    };
    rules
        .mappings
        .push(range(Some("127.0.0.1"), 7000, 7010, Protocol::Tcp));
    rules.mappings.push(range(None, 6000, 6100, Protocol::Udp));
    rules.endpoints.push(EndpointRules {
        container: "cache".into(),
        network: "web".into(),
        port: "veth00000000001".into(),
        mac: "02:42:0a:4d:01:03".parse().unwrap(),
        ipv4: "10.77.1.3".parse().unwrap(),
        isolated: false,
    });
    rules
}

/// `before` then `after`, natively in one namespace and as text in another:
/// the listings after each step must be equal.
fn native_matches_text(steps: &[(RuleSet, RuleSet)]) {
    let run = |native: bool| {
        in_fresh_netns(|| {
            apply(&networks_only()).unwrap();
            let mut listings = Vec::new();
            for (before, after) in steps {
                match native {
                    true => apply_container_change(before, after).unwrap(),
                    false => nft(&render_change(before, after)),
                }
                listings.push(listing());
            }
            listings
        })
    };
    let (native, text) = (run(true), run(false));
    for (n, t) in native.iter().zip(&text) {
        assert_eq!(n, t, "native listing (left) differs from nft's (right)");
    }
    assert!(
        native[0].contains("comment \"container api on network web\""),
        "{}",
        native[0]
    );
    assert!(
        native[0].contains("127.0.0.1 . tcp . 7000-7010"),
        "{}",
        native[0]
    );
}

#[test]
fn native_changes_list_as_nft_text_changes_do() {
    let none = RuleSet::default();
    let all = containers();
    let mut fewer = all.clone();
    fewer.endpoints.remove(0);
    fewer
        .mappings
        .retain(|m| m.mapping.host_ports.start != 7000);
    fewer.mappings.remove(0);
    native_matches_text(&[
        (none.clone(), all.clone()),
        (all.clone(), fewer.clone()),
        (fewer.clone(), all.clone()),
        (all, none),
    ]);
}

#[test]
fn network_sets_change_natively_as_with_nft() {
    // The second network internal (no NAT), then not: two adjacent subnets in
    // the one-field interval set nat_sources.
    for internal in [true, false] {
        let mut all = networks_only();
        all.networks[1].internal = internal;
        let mut one = all.clone();
        one.networks.remove(0);
        let run = |native: bool| {
            in_fresh_netns(|| {
                apply(&one).unwrap();
                let mut listings = Vec::new();
                for (before, after) in [(&one, &all), (&all, &one), (&one, &all)] {
                    match native {
                        true => send_change(before, after).unwrap(),
                        false => nft(&render_change(before, after)),
                    }
                    listings.push(listing());
                }
                listings
            })
        };
        let native = run(true);
        assert_eq!(native, run(false), "internal: {internal}");
        assert!(
            native[0].contains("10.77.1.0/24 comment \"network web\""),
            "{}",
            native[0]
        );
    }
}

fn many_ports(count: u16) -> RuleSet {
    let template = crate::firewall::iptables::tests::with_mappings().mappings[0].clone();
    let mappings = (0..count)
        .map(|i| {
            let mut m = template.clone();
            m.mapping.host_ports = PortRange::single(20000 + i);
            m
        })
        .collect();
    RuleSet {
        mappings,
        ..RuleSet::default()
    }
}

#[test]
fn ten_thousand_elements_in_one_batch() {
    in_fresh_netns(|| {
        apply(&networks_only()).unwrap();
        let many = many_ports(10_000);
        // Far more than the socket's default send buffer: the batch goes
        // whole, in one transaction, with the buffer raised for it.
        let bytes = render_change(&RuleSet::default(), &many).len();
        assert!(bytes > 212_992, "{bytes}");
        apply_container_change(&RuleSet::default(), &many).unwrap();
        let listed = sh("nft -s list map inet pont dnat_any_ports");
        assert_eq!(listed.matches("comment \"container api\"").count(), 10_000);
        apply_container_change(&many, &RuleSet::default()).unwrap();
        let listed = sh("nft -s list map inet pont dnat_any_ports");
        assert!(!listed.contains("comment"), "{listed}");
    });
}

#[test]
fn a_refused_element_is_named_with_its_set_and_nothing_is_applied() {
    in_fresh_netns(|| {
        apply(&networks_only()).unwrap();
        let empty = listing();
        let mut ghost = containers();
        ghost.mappings.clear();
        ghost.endpoints.truncate(1);
        // Deleting what is not there fails, and the add in the same
        // transaction is undone with it.
        let mut other = ghost.clone();
        other.endpoints[0].port = "veth0ther000000".into();
        let err = apply_container_change(&ghost, &other).unwrap_err();
        let text = err.to_string();
        let FirewallError::ElementRefused {
            op,
            set,
            element,
            source,
            ..
        } = err
        else {
            panic!("{err:?}");
        };
        assert_eq!(op, "delete");
        assert_eq!(source.raw_os_error(), Some(libc::ENOENT));
        assert_eq!(set, "bridge pont guarded_ports");
        assert_eq!(element.as_deref(), Some("\"veth0123456789a\""));
        assert!(
            text.contains("\"veth0123456789a\" in set bridge pont guarded_ports"),
            "{text}"
        );
        assert_eq!(listing(), empty, "a failed batch changed something");
    });
}

fn installed() -> bool {
    let rules = crate::firewall::iptables::tests::with_mappings();
    is_installed(&rules.networks, rules.endpoints.len()).unwrap()
}

#[test]
fn presence_fails_after_each_kind_of_flush() {
    for flush in [
        "nft flush ruleset",
        "nft flush table inet pont",
        "nft flush chain inet pont forward",
        "nft delete table bridge pont",
        "nft flush set bridge pont guarded_ports",
        "nft delete element inet pont bridges { \"br-ba9876543210\" }",
        "nft delete chain bridge pont antispoof",
    ] {
        in_fresh_netns(|| {
            apply(&crate::firewall::iptables::tests::with_mappings()).unwrap();
            assert!(installed(), "before {flush}");
            sh(flush);
            assert!(!installed(), "{flush}");
        });
    }
}

#[test]
fn presence_counts_the_guarded_ports() {
    in_fresh_netns(|| {
        let rules = crate::firewall::iptables::tests::with_mappings();
        apply(&rules).unwrap();
        let n = rules.endpoints.len();
        assert!(is_installed(&rules.networks, n).unwrap());
        assert!(!is_installed(&rules.networks, n + 1).unwrap());
        assert!(!is_installed(&rules.networks, n - 1).unwrap());
        // No networks: nothing to look for.
        assert!(is_installed(&[], 0).unwrap());
    });
}

#[test]
fn presence_checks_the_iptables_shim_under_a_drop_policy() {
    in_fresh_netns(|| {
        // No `ip filter` table at all: nothing to work around.
        apply(&crate::firewall::iptables::tests::with_mappings()).unwrap();
        assert!(installed());
        // A DROP policy set after pont's last change: the shim is missing.
        sh("iptables -P FORWARD DROP");
        assert!(!installed());
        apply(&crate::firewall::iptables::tests::with_mappings()).unwrap();
        assert!(installed());
        sh("iptables -D FORWARD -j PONT-ACCEPT");
        assert!(!installed(), "no jump to the shim");
        apply(&crate::firewall::iptables::tests::with_mappings()).unwrap();
        sh("iptables -D PONT-ACCEPT 1");
        assert!(!installed(), "a shim rule missing");
        sh("iptables -P FORWARD ACCEPT");
        assert!(installed(), "no DROP policy, no shim needed");
    });
}

#[test]
fn closing_in_the_background_after_a_deletion_leaves_the_change_made() {
    in_fresh_netns(|| {
        apply(&networks_only()).unwrap();
        let one = many_ports(1);
        apply_container_change(&RuleSet::default(), &one).unwrap();
        apply_container_change(&one, &RuleSet::default()).unwrap();
        crate::firewall::release_before_exit();
        // The deletion stands, and the next change opens a socket of its own.
        let listed = sh("nft -s list map inet pont dnat_any_ports");
        assert!(!listed.contains("comment"), "{listed}");
        apply_container_change(&RuleSet::default(), &one).unwrap();
        let listed = sh("nft -s list map inet pont dnat_any_ports");
        assert_eq!(listed.matches("comment \"container api\"").count(), 1);
        crate::firewall::release_before_exit();
    });
}
