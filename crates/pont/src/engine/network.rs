//! Creating and removing networks: a bridge holding the gateway address, plus records.

use std::net::{IpAddr, Ipv4Addr};

use super::{host, Engine, EngineError};
use crate::fault;
use crate::ipam;
use crate::model::{validate_mtu, validate_name, Ipv4Net, NetworkRecord};
use crate::netlink::Netlink;
use crate::state::Lock;

/// The network `pont run` uses without `--network`, made on first use.
pub const DEFAULT_NETWORK: &str = "pont";
pub const DEFAULT_BRIDGE: &str = "pont0";
/// Names with a meaning of their own in `--network`.
const RESERVED_NAMES: [&str; 3] = ["none", "host", "bridge"];
const DEFAULT_MTU: u32 = 1500;

#[derive(Clone, Debug, Default)]
pub struct NetworkCreate {
    pub name: String,
    pub subnet: Option<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
    pub ip_range: Option<Ipv4Net>,
    pub mtu: Option<u32>,
    pub internal: bool,
    pub icc: bool,
}

impl Engine {
    /// Validate everything, record the intent, make the bridge, record the
    /// network, update the firewall, drop the intent. On any failure the bridge
    /// is removed again and nothing is recorded; a crash is rolled back by the
    /// next command from the intent ([`Engine::recover_networks`]).
    pub fn create_network(
        &self,
        lock: &Lock,
        req: &NetworkCreate,
    ) -> Result<NetworkRecord, EngineError> {
        let net = self.plan_network(req)?;
        self.store.save_network_intent(lock, &net)?;
        fault::point("network-create:after-intent");
        let made = self.make_network(lock, &net);
        // After a failed undo the intent stays, so the next command retries it.
        if !matches!(made, Err(EngineError::UndoFailed(..))) {
            self.store.clear_network_intent(lock, &net.name)?;
        }
        made.map(|()| net)
    }

    fn make_network(&self, lock: &Lock, net: &NetworkRecord) -> Result<(), EngineError> {
        let rules_before = &self.planned_rules()?;
        let mut nl = Netlink::open()?;
        let bridge_index = make_bridge(&mut nl, net)?;
        fault::point("network-create:after-bridge");
        let commit = || -> Result<(), EngineError> {
            self.store.save_network(lock, net)?;
            fault::point("network-create:after-network-record");
            host::enable_ipv4_forwarding()?;
            // Only the new network's elements (nftables) or rules (iptables):
            // the work does not grow with the networks already there, and the
            // other rules keep their counters.
            self.sync_firewall_if_changed(lock, rules_before)?;
            fault::point("network-create:after-firewall");
            Ok(())
        };
        if let Err(err) = commit() {
            let undo = self
                .store
                .remove_network(lock, &net.name)
                .map_err(EngineError::from)
                .and_then(|()| {
                    nl.delete_link(bridge_index)
                        .map(drop)
                        .map_err(EngineError::from)
                })
                .and_then(|()| self.sync_firewall(lock));
            return Err(match undo {
                Ok(()) => err,
                Err(undo_err) => EngineError::UndoFailed(Box::new(err), Box::new(undo_err)),
            });
        }
        Ok(())
    }

    fn plan_network(&self, req: &NetworkCreate) -> Result<NetworkRecord, EngineError> {
        validate_name("network", &req.name)?;
        if RESERVED_NAMES.contains(&req.name.as_str()) {
            return Err(EngineError::ReservedName(req.name.clone()));
        }
        let mtu = validate_mtu(req.mtu.unwrap_or(DEFAULT_MTU))?;
        if self.store.network(&req.name)?.is_some() {
            return Err(EngineError::NetworkExists(req.name.clone()));
        }
        let existing = self.store.networks()?;
        let mut nl = Netlink::open()?;
        let subnet = match req.subnet {
            Some(subnet) => {
                check_free(&mut nl, &existing, subnet)?;
                subnet
            }
            None => {
                let mut taken = host::host_subnets(&mut nl)?;
                taken.extend(existing.iter().map(|n| n.subnet));
                ipam::pick_subnet(&self.pools, &taken)?
            }
        };
        let gateway = ipam::plan_network(subnet, req.gateway, req.ip_range)?;
        let id = crate::new_id();
        let bridge = if req.name == DEFAULT_NETWORK {
            DEFAULT_BRIDGE.to_string()
        } else {
            format!("br-{}", &id[..12])
        };
        Ok(NetworkRecord {
            name: req.name.clone(),
            id,
            bridge,
            subnet,
            gateway,
            ip_range: req.ip_range,
            mtu,
            internal: req.internal,
            icc: req.icc,
            created: crate::now(),
        })
    }

    /// The default network, created on first use.
    pub fn default_network(&self, lock: &Lock) -> Result<NetworkRecord, EngineError> {
        match self.store.network(DEFAULT_NETWORK)? {
            Some(net) => Ok(net),
            None => self.create_network(
                lock,
                &NetworkCreate {
                    name: DEFAULT_NETWORK.into(),
                    icc: true,
                    ..Default::default()
                },
            ),
        }
    }

    pub fn network(&self, name: &str) -> Result<NetworkRecord, EngineError> {
        self.store
            .network(name)?
            .ok_or_else(|| EngineError::NetworkNotFound(name.into()))
    }

    /// Remove a network that no container uses: its rules, bridge and record.
    /// The record goes last: until then a crash is rolled back by the next
    /// command, which rebuilds the bridge and the rules from it.
    pub fn remove_network(&self, lock: &Lock, name: &str) -> Result<(), EngineError> {
        let net = self.check_removable(name)?;
        let before = self.planned_rules()?;
        let networks: Vec<NetworkRecord> = self
            .store
            .networks()?
            .into_iter()
            .filter(|n| n.name != name)
            .collect();
        let after = crate::firewall::plan(&networks, &self.store.containers()?);
        self.firewall.apply_change(&before, &after)?;
        fault::point("network-rm:after-firewall");
        let mut nl = Netlink::open()?;
        if let Some(link) = nl.link_by_name(&net.bridge)? {
            nl.delete_link(link.index)?;
        }
        fault::point("network-rm:after-bridge");
        self.store.remove_network(lock, name)?;
        fault::point("network-rm:after-record");
        Ok(())
    }

    /// The network, if it exists and no container holds an endpoint on it.
    pub fn check_removable(&self, name: &str) -> Result<NetworkRecord, EngineError> {
        let net = self.network(name)?;
        let users = self.attached_containers(name)?;
        if !users.is_empty() {
            return Err(EngineError::NetworkInUse {
                name: name.into(),
                containers: users,
            });
        }
        Ok(net)
    }

    /// Make sure the network's bridge exists and is up, e.g. after a host reboot
    /// emptied the kernel but kept the records. Returns the bridge's ifindex.
    pub fn ensure_bridge(&self, nl: &mut Netlink, net: &NetworkRecord) -> Result<u32, EngineError> {
        match nl.link_by_name(&net.bridge)? {
            Some(link) => Ok(link.index),
            None => make_bridge(nl, net),
        }
    }
}

/// Refuse a subnet that overlaps another pont network or anything on the host.
fn check_free(
    nl: &mut Netlink,
    existing: &[NetworkRecord],
    subnet: Ipv4Net,
) -> Result<(), EngineError> {
    if let Some(other) = existing.iter().find(|n| n.subnet.overlaps(&subnet)) {
        return Err(EngineError::OverlapsNetwork {
            subnet,
            other: other.subnet,
            network: other.name.clone(),
        });
    }
    if let Some(what) = host::host_overlap(nl, subnet)? {
        return Err(EngineError::OverlapsHost { subnet, what });
    }
    Ok(())
}

/// The alias pont gives its bridges, so `system check` can tell a bridge of
/// pont's that lost its record from one of Docker's, which uses the same
/// `br-` + 12 hex digits naming.
pub fn bridge_alias(net: &NetworkRecord) -> String {
    format!("{BRIDGE_ALIAS_PREFIX}{}", net.id)
}

pub const BRIDGE_ALIAS_PREFIX: &str = "pont network ";

/// Bridge with the gateway address, up. Removed again if a later step fails.
///
/// Multicast snooping is off, so that the cost of each new port does not grow
/// with the ports already there: with it on, every port that comes up restarts
/// the query timers of every other port. It would buy little: pont's networks
/// have no multicast querier, so snooping forgets a group a few minutes after
/// its members joined (the kernel's membership interval, 260 s) and floods it
/// from then on, as it does now.
///
/// The bridge keeps the MAC the kernel gave it. One set by pont would spare
/// the kernel a scan of every port for the lowest MAC on each join and leave
/// (about 0.1 ms at 1000 ports), but it also makes an empty bridge lose its
/// carrier (`br_port_state_selection` runs and finds no port), which the
/// kernel reports up to a second later: a change of state after the command
/// that made the network has returned.
fn make_bridge(nl: &mut Netlink, net: &NetworkRecord) -> Result<u32, EngineError> {
    let index = nl.create_bridge(&net.bridge, net.mtu)?;
    let configure = |nl: &mut Netlink| -> Result<(), EngineError> {
        nl.set_alias(index, &bridge_alias(net))?;
        nl.set_multicast_snooping(index, false)?;
        nl.add_address(index, IpAddr::V4(net.gateway), net.subnet.prefix_len())?;
        nl.set_up(index)?;
        host::enable_route_localnet(&net.bridge)
    };
    if let Err(err) = configure(nl) {
        let _ = nl.delete_link(index);
        return Err(err);
    }
    Ok(index)
}
