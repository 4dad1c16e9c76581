//! The native per-container change against the tools' one, in fresh network
//! namespaces: the same rules (as `iptables-save` and `ebtables-save` list
//! them and as the kernel dumps them, byte for byte), the same refusals.

use super::super::kernel_tests::{listing, tcp, touch_tables, web2};
use super::super::tests::with_mappings;
use super::super::{container_change_with_tools, dnat, ebtables, RuleSet};
use super::wire::{NFTA_RULE_HANDLE, NFTA_RULE_TABLE};
use super::*;
use crate::firewall::kernel_tests::sh;
use crate::firewall::nfnl::{attr, msg};
use crate::netlink::tests::in_fresh_netns;

/// NFTA_RULE_POSITION: in a dump, the handle of the rule before.
const NFTA_RULE_POSITION: u16 = 6;

/// How a change is made.
#[derive(Clone, Copy, Debug)]
enum Way {
    Tools,
    ToolsProbedNatively,
    Native,
}

fn change(way: Way, before: &RuleSet, after: &RuleSet) -> Result<(), FirewallError> {
    let change = dnat::ContainerChange::new(&before.mappings, &after.mappings);
    let layer2 = ebtables::port_changes(before, after);
    match way {
        Way::Tools => container_change_with_tools(&change, &layer2, false),
        Way::ToolsProbedNatively => container_change_with_tools(&change, &layer2, true),
        Way::Native => apply_container_change(&change, &layer2).expect("pont's shapes encode"),
    }
}

/// Container api's share of [`with_mappings`] (its mappings, both endpoints).
fn api() -> RuleSet {
    RuleSet {
        networks: vec![],
        ..with_mappings()
    }
}

/// web2 with one more published port, in a block of its own.
fn web2_grown() -> RuleSet {
    let mut grown = web2();
    grown
        .mappings
        .push(tcp("web2", "10.77.1.3", (30001, 30001), 81));
    grown
}

/// Every rule of ip nat, bridge nat and bridge filter as the kernel dumps
/// it, without the handles and positions (which differ from run to run).
fn dumped() -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    for (family, table) in [
        (NFPROTO_IPV4, "nat"),
        (NFPROTO_BRIDGE, "nat"),
        (NFPROTO_BRIDGE, "filter"),
    ] {
        let mut w = attr::Writer::default();
        w.put_str(NFTA_RULE_TABLE, table);
        let body = w.into_inner();
        let rules = nfnl::with_socket(|nl| nl.dump(msg::GETRULE, family, &body)).unwrap();
        for rule in rules {
            let mut kept = attr::Writer::default();
            for (kind, value) in attr::iter(&rule) {
                if kind != NFTA_RULE_HANDLE && kind != NFTA_RULE_POSITION {
                    kept.put(kind, value);
                }
            }
            all.push(kept.into_inner());
        }
    }
    assert!(all.len() > 20, "pont's rules are dumped");
    all
}

/// The listings and dumps after each step of a run of changes made `way`,
/// from pont's rules for [`with_mappings`] applied in full by the tools.
fn run(way: Way) -> Vec<(Vec<String>, Vec<Vec<u8>>)> {
    let none = RuleSet::default();
    let steps: [(RuleSet, RuleSet); 6] = [
        (none.clone(), web2()),
        (web2(), web2_grown()),
        (web2_grown(), none.clone()),
        // api's share was made by the tools' full apply.
        (api(), none.clone()),
        (none.clone(), api()),
        (none.clone(), web2()),
    ];
    in_fresh_netns(|| {
        touch_tables();
        super::super::apply(&with_mappings()).unwrap();
        let mut seen = vec![(listing(), dumped())];
        for (i, (before, after)) in steps.iter().enumerate() {
            change(way, before, after).unwrap_or_else(|e| panic!("{way:?}, step {i}: {e}"));
            seen.push((listing(), dumped()));
        }
        seen
    })
}

#[test]
fn native_changes_make_exactly_what_the_tools_make() {
    let tools = run(Way::Tools);
    for way in [Way::ToolsProbedNatively, Way::Native] {
        let other = run(way);
        for (step, ((tl, td), (ol, od))) in tools.iter().zip(&other).enumerate() {
            assert_eq!(tl, ol, "{way:?}: listing after step {step}");
            assert!(
                td == od,
                "{way:?}: the kernel's rules differ after step {step}"
            );
        }
    }
}

#[test]
fn a_native_change_adds_and_removes_exactly_the_containers_rules() {
    in_fresh_netns(|| {
        touch_tables();
        let mut base = with_mappings();
        base.mappings.clear();
        base.endpoints.clear();
        super::super::apply(&base).unwrap();
        let none = RuleSet::default();
        let before = listing();
        change(Way::Native, &none, &web2()).unwrap();
        assert_eq!(
            sh("iptables -t nat -S PONT-DNAT-TCP-1"),
            "-N PONT-DNAT-TCP-1\n-A PONT-DNAT-TCP-1 -p tcp -m tcp --dport 443 -m comment \
             --comment \"container web2\" -j DNAT --to-destination 10.77.1.3:443\n"
        );
        assert_eq!(
            sh("iptables -t nat -S PONT-DNAT"),
            "-N PONT-DNAT\n\
             -A PONT-DNAT -p tcp -m tcp --dport 20730:20740 -m comment --comment \"container web2\" \
             -j DNAT --to-destination 10.77.1.3:30-40/20730\n\
             -A PONT-DNAT -p tcp -m tcp --dport 256:511 -j PONT-DNAT-TCP-1\n\
             -A PONT-DNAT -p tcp -m tcp --dport 7936:8191 -j PONT-DNAT-TCP-31\n"
        );
        assert_eq!(
            sh("ebtables -t nat -L PONT-ANTISPOOF-3 | tail -n +4"),
            "-p 802_1Q -i veth3000000000a -j DROP\n\
             -s ! 02:42:0a:4d:01:03 -i veth3000000000a -j DROP\n\
             -p IPv4 -i veth3000000000a --ip-src ! 10.77.1.3 -j DROP\n\
             -p ARP -i veth3000000000a --arp-ip-src ! 10.77.1.3 -j DROP\n\
             -p ARP -i veth3000000000a --arp-mac-src ! 02:42:0a:4d:01:03 -j DROP\n"
        );
        change(Way::Native, &web2(), &none).unwrap();
        assert_eq!(listing(), before, "web2's rules gone, and only those");
        let chains = sh("iptables -t nat -S | grep -c '^-N PONT-DNAT-' || true");
        assert_eq!(
            chains.trim(),
            "0",
            "the blocks' chains went with their last rules"
        );
    });
}

#[test]
fn a_native_change_over_missing_rules_fails_and_changes_nothing() {
    for damage in [
        "iptables -t nat -F PONT-DNAT-TCP-31",
        "ebtables -t nat -D PONT-ANTISPOOF-0 -p IPv4 -i veth0123456789a --ip-src ! 10.77.1.2 -j DROP",
        "ebtables -D PONT-ISOLATE-f -p IPv6 -i vethfedcba98765 -j DROP",
    ] {
        in_fresh_netns(|| {
            touch_tables();
            super::super::apply(&with_mappings()).unwrap();
            sh(damage);
            let damaged = listing();
            let err = change(Way::Native, &api(), &RuleSet::default()).unwrap_err();
            assert!(
                matches!(err, FirewallError::RuleMissing { .. }),
                "{damage}: {err}"
            );
            assert_eq!(listing(), damaged, "{damage}: one transaction, not applied");
        });
    }
}

#[test]
fn a_batch_computed_before_another_change_is_refused() {
    in_fresh_netns(|| {
        touch_tables();
        super::super::apply(&with_mappings()).unwrap();
        let stale = nfnl::with_socket(generation).unwrap();
        sh("iptables -t nat -N SOMEONE-ELSE");
        let mut batch = Messages::new(stale);
        batch.new_chain("PONT-DNAT-TCP-99");
        let refused = nfnl::with_socket(|nl| batch.commit(nl)).unwrap_err();
        assert_eq!(refused.errno(), Some(libc::ERESTART), "{refused}");
        let listed = sh("iptables -t nat -S");
        assert!(!listed.contains("PONT-DNAT-TCP-99"), "{listed}");
    });
}

#[test]
fn this_host_takes_the_native_path() {
    // The native change is only taken with iptables-nft 1.8.9; the tests of
    // the native path above call it directly, this one checks that the
    // backend's own entry point uses it on the machine the tests run on.
    assert_eq!(
        mode(),
        Mode::Native,
        "iptables here is not iptables-nft 1.8.9: {}",
        sh("iptables --version")
    );
}
