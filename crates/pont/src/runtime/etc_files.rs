//! The container's own /etc/hosts and /etc/resolv.conf.

use std::net::{IpAddr, Ipv4Addr};

/// Docker's fallback when the host has only loopback name servers.
const FALLBACK_NAMESERVERS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

pub fn hosts(hostname: &str, name: &str, ipv4: Option<Ipv4Addr>) -> String {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    let names = if hostname == name {
        name.to_string()
    } else {
        format!("{hostname} {name}")
    };
    match ipv4 {
        Some(ip) => out.push_str(&format!("{ip}\t{names}\n")),
        None => out.push_str(&format!("127.0.1.1\t{names}\n")),
    }
    out
}

/// The host's resolver configuration without loopback name servers, which would
/// point into the container's own namespace. A host running systemd-resolved's
/// stub (127.0.0.53) keeps the real upstream servers in `upstream`.
pub fn resolv_conf(host_resolv: &str, upstream: Option<&str>) -> String {
    let (mut lines, mut servers) = filter_resolv(host_resolv);
    if servers == 0 {
        if let Some(upstream) = upstream {
            (lines, servers) = filter_resolv(upstream);
        }
    }
    if servers == 0 {
        lines.retain(|l| !l.starts_with("nameserver"));
        lines.extend(
            FALLBACK_NAMESERVERS
                .iter()
                .map(|s| format!("nameserver {s}")),
        );
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

fn filter_resolv(text: &str) -> (Vec<String>, usize) {
    let mut servers = 0;
    let lines = text
        .lines()
        .filter(|line| {
            let mut words = line.split_whitespace();
            if words.next() != Some("nameserver") {
                return !line.trim().is_empty() && !line.trim_start().starts_with('#');
            }
            let usable = words
                .next()
                .and_then(|a| a.split('%').next()?.parse::<IpAddr>().ok())
                .is_some_and(|ip| !ip.is_loopback());
            servers += usize::from(usable);
            usable
        })
        .map(str::to_string)
        .collect();
    (lines, servers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_names_the_container() {
        let h = hosts("api", "api", Some(Ipv4Addr::new(10, 77, 1, 2)));
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("10.77.1.2\tapi\n"));
        assert!(hosts("h", "api", None).ends_with("127.0.1.1\th api\n"));
    }

    #[test]
    fn loopback_servers_are_dropped() {
        let host = "# generated\nnameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch lan\n";
        assert_eq!(
            resolv_conf(host, None),
            "nameserver 192.0.2.53\nsearch lan\n"
        );
    }

    #[test]
    fn stub_resolver_uses_upstream_then_fallback() {
        let stub = "nameserver 127.0.0.53\noptions edns0\n";
        let upstream = "nameserver 198.51.100.1\n";
        assert_eq!(
            resolv_conf(stub, Some(upstream)),
            "nameserver 198.51.100.1\n"
        );
        assert_eq!(
            resolv_conf(stub, None),
            "options edns0\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        assert_eq!(resolv_conf("nameserver ::1\n", None).lines().count(), 2);
    }
}
