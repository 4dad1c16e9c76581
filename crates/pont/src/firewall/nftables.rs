//! Renders a [`RuleSet`] as one `nft -f` batch that replaces table `ip pont`.

use std::fmt::Write;

use super::RuleSet;

pub const TABLE: &str = "ip pont";

/// Declaring the table before deleting it makes the delete succeed whether or
/// not the table exists, and the whole batch is one kernel transaction.
pub fn render(rules: &RuleSet) -> String {
    let mut out = render_removal();
    writeln!(out, "add table {TABLE}").unwrap();
    writeln!(
        out,
        "add chain {TABLE} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}"
    )
    .unwrap();
    for net in rules.networks.iter().filter(|n| n.masquerade) {
        writeln!(
            out,
            "add rule {TABLE} postrouting ip saddr {} oifname != \"{}\" masquerade comment \"network {}\"",
            net.subnet, net.bridge, net.name
        )
        .unwrap();
    }
    out
}

pub fn render_removal() -> String {
    format!("add table {TABLE}\ndelete table {TABLE}\n")
}

#[cfg(test)]
mod tests {
    use super::super::NetworkRules;
    use super::*;

    #[test]
    fn masquerades_only_non_internal_networks() {
        let rules = RuleSet {
            networks: vec![
                NetworkRules {
                    name: "web".into(),
                    bridge: "br-0123456789ab".into(),
                    subnet: "10.77.1.0/24".parse().unwrap(),
                    masquerade: true,
                },
                NetworkRules {
                    name: "vault".into(),
                    bridge: "br-ba9876543210".into(),
                    subnet: "10.77.2.0/24".parse().unwrap(),
                    masquerade: false,
                },
            ],
        };
        assert_eq!(
            render(&rules),
            "add table ip pont\n\
             delete table ip pont\n\
             add table ip pont\n\
             add chain ip pont postrouting { type nat hook postrouting priority srcnat; policy accept; }\n\
             add rule ip pont postrouting ip saddr 10.77.1.0/24 oifname != \"br-0123456789ab\" masquerade comment \"network web\"\n"
        );
    }
}
