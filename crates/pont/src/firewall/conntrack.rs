//! Forgetting connection-tracking entries that a mapping change made stale,
//! over ctnetlink (no `conntrack` process).
//!
//! A NAT decision is taken once per flow and kept in its conntrack entry, so
//! rules alone do not act on flows that already exist:
//! - after a mapping is removed (or its container exits), its translated
//!   flows would go on reaching the old target: an established TCP
//!   connection through a removed port, a UDP client that keeps sending;
//! - after a port is published, a UDP client that kept sending while it was
//!   not has an untranslated entry (to the host itself) that each datagram
//!   refreshes, so it would never reach the new container.
//!
//! Each operation lists the entries once (one dump, narrowed by the kernel
//! where it can), picks the stale ones here (pure, so the choice is
//! unit-tested) and deletes each chosen entry by its original tuple and id,
//! so no other entry is touched. All of it goes through the calling thread's
//! kept nfnetlink socket ([`nfnl::with_socket`]): closing a socket of its own
//! right after the firewall's deletions would wait out an RCU grace period.

mod ctnetlink;

#[cfg(test)]
mod kernel_tests;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use super::nfnl::{self, NfnlError};
use crate::model::{PortMapping, Protocol};

use ctnetlink::{Entry, Narrowing};

/// The kernel's errors are boxed: they are large, and these travel up inside
/// the runtime's errors.
#[derive(Debug, thiserror::Error)]
pub enum ConntrackError {
    #[error("cannot list the connection tracking entries: {source}")]
    List { source: Box<NfnlError> },
    /// The first deletion that failed, and how many of the stale entries failed.
    #[error("cannot delete the conntrack entry {flow} ({failed} of {stale} stale entries failed): {source}")]
    Delete {
        flow: String,
        failed: usize,
        stale: usize,
        source: Box<NfnlError>,
    },
}

/// One tracked IPv4 flow: its original direction and where replies come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow {
    pub protocol: Protocol,
    pub orig_dst: Ipv4Addr,
    pub orig_dport: u16,
    pub reply_src: Ipv4Addr,
    pub reply_sport: u16,
}

impl Flow {
    /// Destination NAT changed where the flow goes.
    fn translated(&self) -> bool {
        (self.orig_dst, self.orig_dport) != (self.reply_src, self.reply_sport)
    }
}

/// A key of stale flows: those to `orig_dst:orig_dport` translated to
/// `reply_from` if it is given, else the untranslated ones.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Filter {
    pub protocol: Protocol,
    pub orig_dst: Ipv4Addr,
    pub orig_dport: u16,
    pub reply_from: Option<(Ipv4Addr, u16)>,
}

impl Filter {
    fn matches(&self, flow: &Flow) -> bool {
        let reply = match self.reply_from {
            Some(from) => flow.translated() && (flow.reply_src, flow.reply_sport) == from,
            None => !flow.translated(),
        };
        reply
            && (flow.protocol, flow.orig_dst, flow.orig_dport)
                == (self.protocol, self.orig_dst, self.orig_dport)
    }
}

/// Deletes the flows that `mappings` translated to `target` (the mappings
/// were removed, or their container is gone). Returns how many it deleted.
pub fn forget_translated(
    target: Ipv4Addr,
    mappings: &[PortMapping],
) -> Result<usize, ConntrackError> {
    if mappings.is_empty() {
        return Ok(0);
    }
    forget(Narrowing::ReplyFrom(target), |flows| {
        translated_to(flows, target, mappings)
    })
}

/// Deletes the untranslated UDP flows to the host addresses and ports that
/// `mappings` now publish, so their clients are translated afresh. Returns
/// how many it deleted.
pub fn forget_untranslated_udp(
    mappings: &[PortMapping],
    host_addrs: &BTreeSet<IpAddr>,
) -> Result<usize, ConntrackError> {
    if !mappings.iter().any(|m| m.protocol == Protocol::Udp) {
        return Ok(0);
    }
    forget(Narrowing::Protocol(Protocol::Udp), |flows| {
        untranslated_to_host(flows, mappings, host_addrs)
    })
}

/// Flows that one of `mappings` translated to `target`.
pub fn translated_to(flows: &[Flow], target: Ipv4Addr, mappings: &[PortMapping]) -> Vec<Filter> {
    let of_mapping = |f: &Flow, m: &PortMapping| {
        f.protocol == m.protocol
            && m.host_ports.contains(f.orig_dport)
            && m.container_ports.contains(f.reply_sport)
            && m.host_ip.is_none_or(|ip| ip == IpAddr::V4(f.orig_dst))
    };
    let stale = flows
        .iter()
        .filter(|f| f.translated() && f.reply_src == target)
        .filter(|f| mappings.iter().any(|m| of_mapping(f, m)))
        .map(|f| Filter {
            protocol: f.protocol,
            orig_dst: f.orig_dst,
            orig_dport: f.orig_dport,
            reply_from: Some((f.reply_src, f.reply_sport)),
        });
    stale.collect::<BTreeSet<_>>().into_iter().collect()
}

/// Untranslated UDP flows to the host itself on a port `mappings` publish.
pub fn untranslated_to_host(
    flows: &[Flow],
    mappings: &[PortMapping],
    host_addrs: &BTreeSet<IpAddr>,
) -> Vec<Filter> {
    let published = |f: &Flow, m: &PortMapping| {
        f.protocol == m.protocol
            && m.host_ports.contains(f.orig_dport)
            && match m.host_ip {
                Some(ip) => ip == IpAddr::V4(f.orig_dst),
                None => host_addrs.contains(&IpAddr::V4(f.orig_dst)),
            }
    };
    let stale = flows
        .iter()
        .filter(|f| f.protocol == Protocol::Udp && !f.translated())
        .filter(|f| mappings.iter().any(|m| published(f, m)))
        .map(|f| Filter {
            protocol: f.protocol,
            orig_dst: f.orig_dst,
            orig_dport: f.orig_dport,
            reply_from: None,
        });
    stale.collect::<BTreeSet<_>>().into_iter().collect()
}

/// List the entries `narrowing` keeps, let `choose` pick the stale flows, and
/// delete every listed entry of those flows. A deletion that fails does not
/// stop the others.
fn forget(
    narrowing: Narrowing,
    choose: impl FnOnce(&[Flow]) -> Vec<Filter>,
) -> Result<usize, ConntrackError> {
    if tracked_here() == Some(0) {
        return Ok(0);
    }
    let entries = nfnl::with_socket(|nl| ctnetlink::list(nl, narrowing)).map_err(|source| {
        ConntrackError::List {
            source: Box::new(source),
        }
    })?;
    let flows: Vec<Flow> = entries.iter().map(|e| e.flow.clone()).collect();
    let stale = stale_entries(&entries, &choose(&flows));
    let (mut deleted, mut failures) = (0, Vec::new());
    for entry in &stale {
        match nfnl::with_socket(|nl| ctnetlink::delete(nl, entry)) {
            Ok(true) => deleted += 1,
            Ok(false) => {}
            Err(source) => failures.push((entry, source)),
        }
    }
    let failed = failures.len();
    match failures.into_iter().next() {
        None => Ok(deleted),
        Some((entry, source)) => Err(ConntrackError::Delete {
            flow: entry.orig.to_string(),
            failed,
            stale: stale.len(),
            source: Box::new(source),
        }),
    }
}

/// How many entries the calling thread's network namespace tracks
/// (net.netfilter.nf_conntrack_count is kept per namespace), if it says.
///
/// A dump walks every bucket of the conntrack hash table, which all
/// namespaces share (262144 buckets on a machine of 24 GiB: 10-15 ms), however
/// few entries it finds; with none here there is nothing to walk for.
fn tracked_here() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_count").ok()?;
    text.trim().parse().ok()
}

/// The listed entries whose flow `filters` chose.
fn stale_entries<'a>(entries: &'a [Entry], filters: &[Filter]) -> Vec<&'a Entry> {
    let chosen = |e: &&Entry| filters.iter().any(|f| f.matches(&e.flow));
    entries.iter().filter(chosen).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PortRange;

    // The choice is tested on flows written as `conntrack -L` prints them and
    // its filters shown as `conntrack -D` arguments: the tool's terms, in which
    // these cases were first written (the cleanup ran the tool then). A filter
    // without `reply_from` now stands for the untranslated flows only, where
    // the tool's filter took translated ones too.

    /// `conntrack -L` lines, e.g.
    /// `udp 17 29 src=A dst=B sport=1 dport=2 [UNREPLIED] src=B dst=A sport=2 dport=1 mark=0 use=1`:
    /// the first src/dst/sport/dport are the original direction, the second the
    /// reply. Lines of other protocols (icmp) or without ports are skipped.
    pub(super) fn parse_flows(listing: &str) -> Vec<Flow> {
        listing.lines().filter_map(parse_flow).collect()
    }

    fn parse_flow(line: &str) -> Option<Flow> {
        let mut words = line.split_whitespace();
        let protocol = match words.next()? {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "sctp" => Protocol::Sctp,
            _ => return None,
        };
        let (mut dst, mut src, mut sport, mut dport) = (vec![], vec![], vec![], vec![]);
        for (key, value) in words.filter_map(|w| w.split_once('=')) {
            match key {
                "src" => src.push(value.parse::<Ipv4Addr>().ok()?),
                "dst" => dst.push(value.parse::<Ipv4Addr>().ok()?),
                "sport" => sport.push(value.parse::<u16>().ok()?),
                "dport" => dport.push(value.parse::<u16>().ok()?),
                _ => {}
            }
        }
        Some(Flow {
            protocol,
            orig_dst: *dst.first()?,
            orig_dport: *dport.first()?,
            reply_src: *src.get(1)?,
            reply_sport: *sport.get(1)?,
        })
    }

    impl Filter {
        fn args(&self) -> Vec<String> {
            let mut args = vec![
                "-D".to_string(),
                "-p".into(),
                self.protocol.as_str().into(),
                "--orig-dst".into(),
                self.orig_dst.to_string(),
                "--orig-port-dst".into(),
                self.orig_dport.to_string(),
            ];
            if let Some((ip, port)) = self.reply_from {
                let reply = [
                    "--reply-src",
                    &ip.to_string(),
                    "--reply-port-src",
                    &port.to_string(),
                ];
                args.extend(reply.map(String::from));
                args.push("--dst-nat".into());
            }
            args
        }
    }

    const LISTING: &str = "\
tcp      6 431999 ESTABLISHED src=192.0.2.3 dst=192.0.2.2 sport=40000 dport=8080 src=10.1.0.2 dst=192.0.2.3 sport=80 dport=40000 [ASSURED] mark=0 use=1
tcp      6 117 TIME_WAIT src=10.1.0.9 dst=10.1.0.2 sport=40001 dport=80 src=10.1.0.2 dst=10.1.0.9 sport=80 dport=40001 [ASSURED] mark=0 use=1
udp      17 29 src=192.0.2.3 dst=192.0.2.2 sport=5000 dport=5353 src=10.1.0.2 dst=192.0.2.3 sport=53 dport=5000 mark=0 use=1
udp      17 29 src=192.0.2.3 dst=192.0.2.2 sport=5001 dport=5353 [UNREPLIED] src=192.0.2.2 dst=192.0.2.3 sport=5353 dport=5001 mark=0 use=1
udp      17 29 src=10.1.0.2 dst=198.51.100.1 sport=5002 dport=5353 [UNREPLIED] src=198.51.100.1 dst=192.0.2.2 sport=5353 dport=5002 mark=0 use=1
icmp     1 29 src=192.0.2.3 dst=192.0.2.2 type=8 code=0 id=7 src=192.0.2.2 dst=192.0.2.3 type=0 code=0 id=7 mark=0 use=1
";

    fn mapping(
        host_ip: Option<&str>,
        host: u16,
        container: u16,
        protocol: Protocol,
    ) -> PortMapping {
        PortMapping {
            host_ip: host_ip.map(|ip| ip.parse().unwrap()),
            host_ports: PortRange::single(host),
            container_ports: PortRange::single(container),
            protocol,
        }
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_both_directions_and_skips_icmp() {
        let flows = parse_flows(LISTING);
        assert_eq!(flows.len(), 5);
        assert_eq!(
            flows[0],
            Flow {
                protocol: Protocol::Tcp,
                orig_dst: ip("192.0.2.2"),
                orig_dport: 8080,
                reply_src: ip("10.1.0.2"),
                reply_sport: 80,
            }
        );
        assert!(flows[0].translated() && !flows[1].translated() && !flows[3].translated());
    }

    #[test]
    fn translated_flows_of_the_removed_mappings_only() {
        let flows = parse_flows(LISTING);
        let removed = [
            mapping(None, 8080, 80, Protocol::Tcp),
            mapping(None, 5353, 53, Protocol::Udp),
        ];
        let filters = translated_to(&flows, ip("10.1.0.2"), &removed);
        // Not the direct TIME_WAIT flow to port 80, not the untranslated or outbound UDP.
        assert_eq!(filters.len(), 2, "{filters:?}");
        assert_eq!(
            filters[0].args().join(" "),
            "-D -p tcp --orig-dst 192.0.2.2 --orig-port-dst 8080 \
             --reply-src 10.1.0.2 --reply-port-src 80 --dst-nat"
        );
        // Another mapping's flows, and flows to another container, stay.
        let other = [mapping(None, 9090, 80, Protocol::Tcp)];
        assert!(translated_to(&flows, ip("10.1.0.2"), &other).is_empty());
        assert!(translated_to(&flows, ip("10.1.0.3"), &removed).is_empty());
        let elsewhere = [mapping(Some("192.0.2.20"), 8080, 80, Protocol::Tcp)];
        assert!(translated_to(&flows, ip("10.1.0.2"), &elsewhere).is_empty());
    }

    #[test]
    fn untranslated_udp_to_a_newly_published_host_port() {
        let flows = parse_flows(LISTING);
        let host: BTreeSet<IpAddr> = ["192.0.2.2", "127.0.0.1"]
            .map(|a| a.parse().unwrap())
            .into();
        let published = [mapping(None, 5353, 53, Protocol::Udp)];
        let filters = untranslated_to_host(&flows, &published, &host);
        // The stuck client only: not the translated flow, not the outbound one.
        assert_eq!(filters.len(), 1, "{filters:?}");
        assert_eq!(
            filters[0].args().join(" "),
            "-D -p udp --orig-dst 192.0.2.2 --orig-port-dst 5353"
        );
        let loopback_only = [mapping(Some("127.0.0.1"), 5353, 53, Protocol::Udp)];
        assert!(untranslated_to_host(&flows, &loopback_only, &host).is_empty());
    }

    /// The listing's flows as entries, each with an id of its own; the second
    /// client of the translated UDP flow has the same flow (another source port).
    fn entries() -> Vec<Entry> {
        let flows = parse_flows(LISTING);
        let mut all = flows.clone();
        all.push(flows[2].clone());
        let entry = |(i, flow): (usize, Flow)| Entry {
            orig: ctnetlink::Tuple {
                protocol: flow.protocol,
                src: ip("192.0.2.3"),
                dst: flow.orig_dst,
                sport: 40000 + i as u16,
                dport: flow.orig_dport,
            },
            flow,
            id: Some(i as u32),
            zone: None,
        };
        all.into_iter().enumerate().map(entry).collect()
    }

    fn ids(stale: Vec<&Entry>) -> Vec<u32> {
        stale.iter().filter_map(|e| e.id).collect()
    }

    #[test]
    fn every_entry_of_a_chosen_flow_is_deleted_and_no_other() {
        let (entries, flows) = (entries(), parse_flows(LISTING));
        let removed = [mapping(None, 5353, 53, Protocol::Udp)];
        let chosen = translated_to(&flows, ip("10.1.0.2"), &removed);
        assert_eq!(ids(stale_entries(&entries, &chosen)), [2, 5]);
        // The stuck client only: not the translated flows to the same host port.
        let host: BTreeSet<IpAddr> = [IpAddr::from(ip("192.0.2.2"))].into();
        let chosen = untranslated_to_host(&flows, &removed, &host);
        assert_eq!(ids(stale_entries(&entries, &chosen)), [3]);
    }
}
