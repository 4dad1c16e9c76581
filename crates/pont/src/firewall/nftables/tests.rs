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
                ports: vec!["veth0123456789a".into()],
            },
            NetworkRules {
                name: "vault".into(),
                bridge: "br-ba9876543210".into(),
                subnet: "10.77.2.0/24".parse().unwrap(),
                internal: true,
                icc: false,
                ports: vec!["vethfedcba98765".into()],
            },
        ],
    }
}

#[test]
fn renders_exact_rule_set() {
    let expected = r#"add table inet pont
add chain inet pont user
add chain inet pont forward { type filter hook forward priority filter; policy accept; }
flush chain inet pont forward
add chain inet pont to_bridge
flush chain inet pont to_bridge
add chain inet pont input { type filter hook input priority filter; policy accept; }
flush chain inet pont input
add chain inet pont postrouting { type nat hook postrouting priority srcnat; policy accept; }
flush chain inet pont postrouting
add chain inet pont from_internal
flush chain inet pont from_internal
add set inet pont bridges { type ifname; }
flush set inet pont bridges
add set inet pont internal_bridges { type ifname; }
flush set inet pont internal_bridges
add set inet pont icc_pairs { type ifname . ifname; }
flush set inet pont icc_pairs
add set inet pont nat_sources { type ipv4_addr; flags interval; }
flush set inet pont nat_sources
add rule inet pont forward jump user
add rule inet pont forward oifname @bridges jump to_bridge
add rule inet pont forward iifname @internal_bridges jump from_internal
add rule inet pont to_bridge ct state established,related accept
add rule inet pont to_bridge iifname . oifname @icc_pairs accept
add rule inet pont to_bridge counter drop
add rule inet pont from_internal counter drop
add rule inet pont input iifname @internal_bridges ct state established,related accept
add rule inet pont input iifname @internal_bridges counter drop
add rule inet pont postrouting ip saddr @nat_sources oifname != @bridges masquerade
add element inet pont bridges { "br-0123456789ab" comment "network web", "br-ba9876543210" comment "network vault" }
add element inet pont internal_bridges { "br-ba9876543210" comment "network vault" }
add element inet pont icc_pairs { "br-0123456789ab" . "br-0123456789ab" comment "network web" }
add element inet pont nat_sources { 10.77.1.0/24 comment "network web" }
add table bridge pont
add chain bridge pont forward { type filter hook forward priority filter; policy accept; }
flush chain bridge pont forward
add set bridge pont isolated_ports { type ifname; }
flush set bridge pont isolated_ports
add rule bridge pont forward iifname @isolated_ports ether type { ip, ip6 } counter drop
add element bridge pont isolated_ports { "vethfedcba98765" comment "network vault" }
"#;
    let got = render(&sample());
    if got != expected {
        panic!("rendered:\n{got}");
    }
}
