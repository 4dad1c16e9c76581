use super::*;
use crate::firewall::NetworkRules;

pub(crate) fn sample() -> RuleSet {
    RuleSet {
        networks: vec![
            NetworkRules {
                name: "web".into(),
                bridge: "br-0123456789ab".into(),
                subnet: "10.77.1.0/24".parse().unwrap(),
                internal: false,
                icc: true,
            },
            NetworkRules {
                name: "vault".into(),
                bridge: "br-ba9876543210".into(),
                subnet: "10.77.2.0/24".parse().unwrap(),
                internal: true,
                icc: false,
            },
        ],
        mappings: vec![],
        endpoints: vec![
            crate::firewall::EndpointRules {
                container: "api".into(),
                network: "web".into(),
                port: "veth0123456789a".into(),
                mac: "02:42:0a:4d:01:02".parse().unwrap(),
                ipv4: "10.77.1.2".parse().unwrap(),
                isolated: false,
            },
            crate::firewall::EndpointRules {
                container: "db".into(),
                network: "vault".into(),
                port: "vethfedcba98765".into(),
                mac: "02:42:0a:4d:02:02".parse().unwrap(),
                ipv4: "10.77.2.2".parse().unwrap(),
                isolated: true,
            },
        ],
    }
}

#[test]
fn renders_exact_rule_set() {
    let got = render(&crate::firewall::iptables::tests::with_mappings());
    if got != include_str!("expected_full.txt") {
        panic!("rendered:\n{got}");
    }
}

#[test]
fn a_change_touches_only_the_elements_that_differ() {
    let before = crate::firewall::iptables::tests::with_mappings();
    let mut after = before.clone();
    after.mappings.remove(0);
    assert_eq!(
        render_change(&before, &after),
        "delete element inet pont dnat_any_ports { tcp . 8080 }\n"
    );
    assert_eq!(
        render_change(&after, &before),
        "add element inet pont dnat_any_ports { tcp . 8080 comment \"container api\" : 10.77.1.2 . 80 }\n"
    );
}

#[test]
fn a_change_among_ten_thousand_ports_is_only_that_change() {
    // Regression guard for the quadratic comparison this used to be (seconds
    // per change with 10000 published ports, see docs/benchmarks.md).
    let mut before = crate::firewall::iptables::tests::with_mappings();
    let template = before.mappings[0].clone();
    for port in 20000..30000 {
        let mut m = template.clone();
        m.mapping.host_ports = crate::model::PortRange::single(port);
        before.mappings.push(m);
    }
    let mut after = before.clone();
    after.mappings.remove(0);
    assert_eq!(
        render_change(&before, &after),
        "delete element inet pont dnat_any_ports { tcp . 8080 }\n"
    );
}
