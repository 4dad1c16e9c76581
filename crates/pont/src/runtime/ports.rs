//! Published ports: turning `-p` specs into mappings (picking host ports,
//! refusing conflicts) and changing them on running containers.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::{host_sockets, Runtime, RuntimeError};
use crate::fault;
use crate::firewall::conntrack::{self, ConntrackError};
use crate::model::{
    ContainerRecord, ContainerState, NetMode, PortMapping, PortRange, PortSpec, Protocol,
};
use crate::netlink::Netlink;
use crate::state::Lock;

impl Runtime {
    /// `pont port add`: publish more ports of a running container, at once.
    /// The rules change first and the record last: a crash in between is
    /// rolled back by the next command, which rebuilds the rules from the
    /// records, so the same request can be repeated.
    pub fn port_add(
        &self,
        key: &str,
        specs: &[PortSpec],
    ) -> Result<Vec<PortMapping>, RuntimeError> {
        let lock = self.engine.store().lock()?;
        self.reconcile(&lock)?;
        let mut rec = self.running(&lock, key)?;
        let added = self.retry_on_conflict(&lock, || self.resolve_ports(&rec, specs, true))?;
        rec.ports.extend(added.iter().cloned());
        let steps = ["port-add:after-firewall", "port-add:after-record"];
        self.commit_ports(&lock, &rec, steps)?;
        forget_untranslated_udp(&added)?;
        Ok(added)
    }

    /// `pont port rm`: unpublish ports of a running container, at once. Each
    /// spec removes every mapping it matches. Flows through the removed
    /// mappings are forgotten, so they end as the mappings do.
    pub fn port_rm(&self, key: &str, specs: &[PortSpec]) -> Result<Vec<PortMapping>, RuntimeError> {
        let lock = self.engine.store().lock()?;
        self.reconcile(&lock)?;
        let mut rec = self.running(&lock, key)?;
        let mut removed = Vec::new();
        for spec in specs {
            let (gone, kept) = rec.ports.into_iter().partition(|m| m.matches(spec));
            rec.ports = kept;
            if gone.is_empty() {
                return Err(RuntimeError::Invalid(format!(
                    "container {} has no published port matching '{}'",
                    rec.name,
                    describe(spec)
                )));
            }
            removed.extend(gone);
        }
        let steps = ["port-rm:after-firewall", "port-rm:after-record"];
        self.commit_ports(&lock, &rec, steps)?;
        // Only now that the rules are gone, so no packet makes a new flow.
        forget_translated_flows(&rec, &removed).map_err(|source| RuntimeError::StaleFlows {
            done: format!("unpublished {}", list(&removed)),
            source,
        })?;
        Ok(removed)
    }

    /// Make the rules match `rec`'s new mappings, then save `rec`. If saving
    /// fails the rules are put back. `steps` names the fault points after each.
    fn commit_ports(
        &self,
        lock: &Lock,
        rec: &ContainerRecord,
        steps: [&'static str; 2],
    ) -> Result<(), RuntimeError> {
        let engine = &self.engine;
        let old = self.container(&rec.id)?;
        let (before, after) = (engine.rules_of(&old)?, engine.rules_of(rec)?);
        if engine
            .firewall()
            .apply_container_change(&before, &after)
            .is_err()
        {
            // The installed rules were not what the records say (flushed?):
            // rewrite them all, as they will be once `rec` is saved.
            let mut containers = engine.store().containers()?;
            containers.retain(|c| c.id != rec.id);
            containers.push(rec.clone());
            let all = crate::firewall::plan(&engine.store().networks()?, &containers);
            engine.firewall().apply(&all)?;
        }
        fault::point(steps[0]);
        if let Err(err) = engine.store().save_container(lock, rec) {
            let _ = engine.firewall().apply_container_change(&after, &before);
            return Err(err.into());
        }
        fault::point(steps[1]);
        Ok(())
    }

    fn running(&self, lock: &Lock, key: &str) -> Result<ContainerRecord, RuntimeError> {
        let rec = self.live_container(lock, key)?;
        if rec.state != ContainerState::Running {
            return Err(RuntimeError::NotRunning(rec.name));
        }
        Ok(rec)
    }

    /// Mappings for `specs` on container `rec`, checked against every other
    /// published port (and the container's own ones if `own_taken`) and every
    /// socket listening on the host. Called under the lock.
    pub(super) fn resolve_ports(
        &self,
        rec: &ContainerRecord,
        specs: &[PortSpec],
        own_taken: bool,
    ) -> Result<Vec<PortMapping>, RuntimeError> {
        if specs.is_empty() {
            return Ok(vec![]);
        }
        let NetMode::Bridge(network) = &rec.net_mode else {
            return Err(RuntimeError::Invalid(
                "published ports need a bridge network, not --network none or host".into(),
            ));
        };
        // The firewall lets nothing out of an internal network, replies
        // included: a published port would let packets in and none back.
        if self.engine.network(network)?.internal {
            return Err(RuntimeError::Invalid(format!(
                "network {network} is internal (no way out): its containers cannot publish ports"
            )));
        }
        let store = self.engine.store();
        // What this container already holds is not in the way of itself.
        let own: Vec<PortMapping> = if own_taken {
            vec![]
        } else {
            match store.container(&rec.id)? {
                Some(stored) if stored.state != ContainerState::Exited => stored.ports,
                _ => vec![],
            }
        };
        // Every published mapping, read only to pick a free host port.
        let mut every: Option<Vec<PortMapping>> = None;
        let mut mine: Vec<PortMapping> = Vec::new();
        let host_addrs = host_addresses()?;
        let sockets = host_sockets::listening()?;
        let mut out = Vec::new();
        for spec in specs {
            let host_ip = check_host_ip(spec.host_ip, &host_addrs, spec)?;
            let mapping = match spec.host_ports {
                Some(host_ports) => PortMapping {
                    host_ip,
                    host_ports,
                    container_ports: spec.container_ports,
                    protocol: spec.protocol,
                },
                None => {
                    if every.is_none() {
                        let mut all = store.published_ports()?;
                        all.retain(|m| !own.contains(m));
                        every = Some(all);
                    }
                    let taken = every.as_deref().unwrap_or_default();
                    pick_free(host_ip, spec, taken, &mine, &sockets)?
                }
            };
            if let Some(other) = mine.iter().find(|m| m.conflicts_with(&mapping)) {
                return Err(RuntimeError::PortPublished(format!(
                    "host port {} is already published by container {} ({})",
                    describe_host(&mapping),
                    rec.name,
                    other.display()
                )));
            }
            // Only the index blocks the host range spans: no O(all mappings) read.
            let near = store.published_ports_near(mapping.protocol, mapping.host_ports)?;
            let clash = near
                .iter()
                .find(|m| !own.contains(m) && m.conflicts_with(&mapping));
            if let Some(other) = clash {
                let owner = store.port_owner(other)?;
                return Err(RuntimeError::PortPublished(format!(
                    "host port {} is already published by container {owner} ({})",
                    describe_host(&mapping),
                    other.display()
                )));
            }
            if let Some(sock) = sockets.iter().find(|s| s.blocks(&mapping)) {
                return Err(RuntimeError::Invalid(format!(
                    "host port {} is in use by a process listening on {}",
                    describe_host(&mapping),
                    sock
                )));
            }
            mine.push(mapping.clone());
            out.push(mapping);
        }
        Ok(out)
    }
}

/// The spec that asks for exactly `m` again (a restart re-checks its ports).
pub(super) fn spec_of(m: &PortMapping) -> PortSpec {
    PortSpec {
        host_ip: m.host_ip,
        host_ports: Some(m.host_ports),
        container_ports: m.container_ports,
        protocol: m.protocol,
    }
}

/// The spec as a user would write it again (IPv6 in brackets).
fn describe(spec: &PortSpec) -> String {
    let host = match (spec.host_ip, spec.host_ports) {
        (Some(ip), Some(p)) => format!("{}:{p}:", ip_text(ip)),
        (None, Some(p)) => format!("{p}:"),
        (Some(ip), None) => format!("{}::", ip_text(ip)),
        (None, None) => String::new(),
    };
    format!("{host}{}/{}", spec.container_ports, spec.protocol)
}

fn describe_host(m: &PortMapping) -> String {
    let ip = m.host_ip.map_or("0.0.0.0".to_string(), ip_text);
    format!("{ip}:{}/{}", m.host_ports, m.protocol)
}

fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    }
}

fn host_addresses() -> Result<BTreeSet<IpAddr>, RuntimeError> {
    Ok(Netlink::open()?
        .addresses()?
        .into_iter()
        .map(|a| a.addr)
        .collect())
}

/// `0.0.0.0` means every address; anything else must be an address of the host.
fn check_host_ip(
    ip: Option<IpAddr>,
    host_addrs: &BTreeSet<IpAddr>,
    spec: &PortSpec,
) -> Result<Option<IpAddr>, RuntimeError> {
    match ip {
        None => Ok(None),
        Some(ip) if ip.is_unspecified() && ip.is_ipv4() => Ok(None),
        // Served by the IPv6 issue; parsed now so the syntax is settled.
        Some(IpAddr::V6(v6)) => Err(RuntimeError::Invalid(format!(
            "host address {v6} in '{}': IPv6 port publishing is not supported yet",
            describe(spec)
        ))),
        Some(ip) if host_addrs.contains(&ip) => Ok(Some(ip)),
        Some(ip) => Err(RuntimeError::Invalid(format!(
            "host address {ip} in '{}' is not an address of this host",
            describe(spec)
        ))),
    }
}

/// The lowest run of free ports, as long as the container range, in the
/// host's ephemeral range (where Docker picks too).
fn pick_free(
    host_ip: Option<IpAddr>,
    spec: &PortSpec,
    taken: &[PortMapping],
    mine: &[PortMapping],
    sockets: &[host_sockets::Socket],
) -> Result<PortMapping, RuntimeError> {
    let (low, high) = ephemeral_range();
    let len = spec.container_ports.count();
    let mut start = u32::from(low);
    while start + len - 1 <= u32::from(high) {
        let candidate = PortMapping {
            host_ip,
            host_ports: PortRange {
                start: start as u16,
                end: (start + len - 1) as u16,
            },
            container_ports: spec.container_ports,
            protocol: spec.protocol,
        };
        let blocker = taken
            .iter()
            .chain(mine)
            .filter(|m| m.conflicts_with(&candidate))
            .map(|m| u32::from(m.host_ports.end))
            .chain(
                sockets
                    .iter()
                    .filter(|s| s.blocks(&candidate))
                    .map(|s| u32::from(s.port)),
            )
            .max();
        match blocker {
            None => return Ok(candidate),
            Some(end) => start = end + 1,
        }
    }
    Err(RuntimeError::Invalid(format!(
        "no free host port range of {len} port(s) left in {low}-{high} for '{}'",
        describe(spec)
    )))
}

fn ephemeral_range() -> (u16, u16) {
    let text =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut nums = text
        .split_whitespace()
        .filter_map(|n| n.parse::<u16>().ok());
    match (nums.next(), nums.next()) {
        (Some(a), Some(b)) if a <= b => (a, b),
        _ => (32768, 60999),
    }
}

/// Delete the flows that `removed` (mappings of `rec`) translated: they
/// would go on reaching the container, an established TCP connection
/// through a removed port as much as a UDP client that keeps sending.
pub(super) fn forget_translated_flows(
    rec: &ContainerRecord,
    removed: &[PortMapping],
) -> Result<(), ConntrackError> {
    if let Some(ep) = rec.endpoints.first() {
        conntrack::forget_translated(ep.ipv4, removed)?;
    }
    Ok(())
}

/// Delete the untranslated UDP flows to host ports that were just published:
/// a client that kept sending while the port was not published holds one,
/// refreshed by every datagram, and would never reach the container.
pub(super) fn forget_untranslated_udp(added: &[PortMapping]) -> Result<(), RuntimeError> {
    if !added.iter().any(|m| m.protocol == Protocol::Udp) {
        return Ok(());
    }
    let host_addrs = host_addresses()?;
    conntrack::forget_untranslated_udp(added, &host_addrs).map_err(|source| {
        RuntimeError::StaleFlows {
            done: format!("published {}", list(added)),
            source,
        }
    })?;
    Ok(())
}

fn list(mappings: &[PortMapping]) -> String {
    let all: Vec<String> = mappings.iter().map(PortMapping::display).collect();
    all.join(", ")
}
