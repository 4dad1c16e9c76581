use super::*;
use crate::firewall::MappingRules;
use crate::model::{PortMapping, PortRange, Protocol};

pub(crate) fn with_mappings() -> RuleSet {
    let mut rules = crate::firewall::nftables::tests::sample();
    let mapping = |host_ip: Option<&str>, h: (u16, u16), c: (u16, u16), protocol| MappingRules {
        container: "api".into(),
        network: "web".into(),
        container_ip: "10.77.1.2".parse().unwrap(),
        mapping: PortMapping {
            host_ip: host_ip.map(|i| i.parse().unwrap()),
            host_ports: PortRange {
                start: h.0,
                end: h.1,
            },
            container_ports: PortRange {
                start: c.0,
                end: c.1,
            },
            protocol,
        },
    };
    rules.mappings = vec![
        mapping(None, (8080, 8080), (80, 80), Protocol::Tcp),
        mapping(Some("127.0.0.1"), (5353, 5353), (53, 53), Protocol::Udp),
        mapping(None, (9000, 9002), (19000, 19002), Protocol::Tcp),
    ];
    rules
}

#[test]
fn renders_exact_rules_jumps_and_keeps_the_admin_chain() {
    let fresh = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n";
    let expected = include_str!("expected_full.txt");
    let got = render(&with_mappings(), fresh);
    if got != expected {
        panic!("rendered:\n{got}");
    }
    // A second apply over the first: the admin chain is not redeclared
    // (which would flush it), and no jump is added twice.
    let installed = "*filter\n:PONT-USER - [0:0]\n-A FORWARD -j PONT-FORWARD\n-A FORWARD -j PONT-ACCEPT\n\
        -A INPUT -j PONT-INPUT\n-A PONT-USER -s 192.0.2.9/32 -j DROP\n*raw\n-A PREROUTING -j PONT-PREROUTING\n\
        *nat\n-A PREROUTING ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j PONT-DNAT\n\
        -A OUTPUT -m addrtype --dst-type LOCAL -j PONT-DNAT\n-A POSTROUTING -j PONT-POSTROUTING\n";
    let again = render(&with_mappings(), installed);
    assert!(!again.contains(":PONT-USER"), "{again}");
    assert!(
        !again.contains("-I ") && !again.contains("-A FORWARD"),
        "{again}"
    );
}

#[test]
fn a_change_touches_only_the_rules_that_differ() {
    let before = with_mappings();
    let mut after = before.clone();
    after.mappings.remove(0);
    let rules = rules_of(&before);
    let removed: Vec<_> = rules
        .iter()
        .filter(|r| !rules_of(&after).contains(r))
        .collect();
    assert_eq!(removed.len(), 1);
    assert!(removed[0].spec.contains("--dport 8080"), "{:?}", removed[0]);
}

#[test]
fn forward_shim_is_needed_only_under_a_drop_policy() {
    let rules = with_mappings();
    let accept = "-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n";
    assert!(shim_in_place(accept, &rules));
    let dropping = "-P INPUT ACCEPT\n-P FORWARD DROP\n-P OUTPUT ACCEPT\n";
    assert!(!shim_in_place(dropping, &rules), "policy DROP, no shim");
    let shim = |bridges: &[&str]| {
        let mut s = format!("{dropping}-N PONT-ACCEPT\n-A FORWARD -j PONT-ACCEPT\n");
        for br in bridges {
            s += &format!("-A PONT-ACCEPT -o {br} -m comment --comment \"network x\" -j ACCEPT\n");
        }
        s
    };
    assert!(shim_in_place(
        &shim(&["br-0123456789ab", "br-ba9876543210"]),
        &rules
    ));
    assert!(
        !shim_in_place(&shim(&["br-0123456789ab"]), &rules),
        "a bridge without its accept"
    );
}
