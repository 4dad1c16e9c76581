//! Endpoints: one container namespace attached to one network by a veth pair.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::BorrowedFd;

use super::{Engine, EngineError};
use crate::fault;
use crate::ipam::AddressSpace;
use crate::model::{Endpoint, MacAddr, NetworkRecord};
use crate::netlink::Netlink;

pub const DEFAULT_CONTAINER_IFNAME: &str = "eth0";

#[derive(Clone, Debug, Default)]
pub struct AttachOptions {
    /// `--ip`: this address or an error.
    pub ip: Option<Ipv4Addr>,
    /// An address to prefer if it is free (the one a restarted container had).
    pub preferred_ip: Option<Ipv4Addr>,
    pub mac: Option<MacAddr>,
}

impl Engine {
    /// Choose the address and MAC of a new endpoint on `net`.
    /// Nothing is changed; the caller records the endpoint under the same lock
    /// before anyone else can choose, which is what keeps addresses unique.
    pub fn reserve_endpoint(
        &self,
        net: &NetworkRecord,
        opts: &AttachOptions,
    ) -> Result<Endpoint, EngineError> {
        // Only live containers hold addresses: one being restarted has exited.
        // One small map, however many there are (state/addresses.rs).
        let held = self.store.address_map(&net.name, net.subnet)?;
        let space = AddressSpace {
            network: &net.name,
            subnet: net.subnet,
            gateway: net.gateway,
            ip_range: net.ip_range,
            in_use: &held,
        };
        let ipv4 = match opts.ip {
            Some(ip) => space.check_requested(ip)?,
            None => space.allocate(opts.preferred_ip)?,
        };
        let taken = |mac| self.store.mac_taken(&net.name, mac, &held);
        let mac = match opts.mac {
            Some(mac) => mac,
            None if !taken(mac_for(ipv4))? => mac_for(ipv4),
            // Taken by another container's --mac: any free one will do.
            None => loop {
                let mac = MacAddr::random();
                if !taken(mac)? {
                    break mac;
                }
            },
        };
        Ok(Endpoint {
            network: net.name.clone(),
            interface: DEFAULT_CONTAINER_IFNAME.into(),
            host_interface: host_ifname(),
            mac,
            ipv4,
            prefix_len: net.subnet.prefix_len(),
            gateway: net.gateway,
            static_ip: opts.ip.is_some(),
        })
    }

    /// Make the endpoint in the kernel: the veth pair (its container end made
    /// directly inside `container_netns`), the bridge port, the address, the
    /// default route (none on an internal network). On failure the pair is deleted again.
    pub fn plumb_endpoint(
        &self,
        host: &mut Netlink,
        container_netns: BorrowedFd<'_>,
        net: &NetworkRecord,
        ep: &Endpoint,
    ) -> Result<(), EngineError> {
        let bridge = self.ensure_bridge(host, net)?;
        let veth = host.create_veth(
            &ep.host_interface,
            &ep.interface,
            container_netns,
            net.mtu,
            Some(ep.mac.0),
        )?;
        fault::point("run:after-veth");
        let configure = |host: &mut Netlink| -> Result<(), EngineError> {
            host.set_master(veth, bridge)?;
            host.set_hairpin(veth, true)?;
            super::host::disable_ipv6(&ep.host_interface)?;
            host.set_up(veth)?;
            fault::point("run:after-bridge-port");
            configure_container_side(container_netns, ep, net.internal)
        };
        if let Err(err) = configure(host) {
            return Err(match host.delete_link(veth) {
                Ok(_) => err,
                Err(undo) => EngineError::UndoFailed(Box::new(err), Box::new(undo.into())),
            });
        }
        Ok(())
    }

    /// Remove an endpoint's host end (which takes the pair with it). Already gone
    /// is fine: normally the kernel removed it with the container's namespace.
    pub fn unplumb_endpoint(&self, host: &mut Netlink, ep: &Endpoint) -> Result<(), EngineError> {
        if let Some(link) = host.link_by_name(&ep.host_interface)? {
            host.delete_link(link.index)?;
        }
        Ok(())
    }
}

/// Address and link up; and the default route via the gateway, except on an
/// internal network, whose containers get only the subnet's own route (the
/// kernel adds it with the address): with no way out there is nothing to
/// route to, and a program that looks for a default route sees there is none.
fn configure_container_side(
    netns: BorrowedFd<'_>,
    ep: &Endpoint,
    internal: bool,
) -> Result<(), EngineError> {
    let mut nl = Netlink::open_in(netns)?;
    set_loopback_up(&mut nl)?;
    let eth = nl
        .link_by_name(&ep.interface)?
        .ok_or_else(|| EngineError::PeerMissing(ep.interface.clone()))?;
    // pont's networks are IPv4 only, as are Docker's by default, which also
    // leaves such an interface without IPv6. A link-local address would make the
    // new container multicast for seconds (duplicate address detection, MLD
    // reports, router solicitations), and the bridge copies each packet to
    // every port: at 1000 containers that cost each attach milliseconds.
    nl.set_addrgenmode_none(eth.index)?;
    nl.add_address(eth.index, IpAddr::V4(ep.ipv4), ep.prefix_len)?;
    nl.set_up(eth.index)?;
    fault::point("run:after-address");
    if !internal {
        nl.add_route(None, Some(IpAddr::V4(ep.gateway)), Some(eth.index))?;
    }
    fault::point("run:after-route");
    Ok(())
}

/// Bring up `lo` in a container namespace (all a `--network none` container gets).
pub fn loopback_up(netns: BorrowedFd<'_>) -> Result<(), EngineError> {
    set_loopback_up(&mut Netlink::open_in(netns)?)
}

fn set_loopback_up(nl: &mut Netlink) -> Result<(), EngineError> {
    if let Some(lo) = nl.link_by_name("lo")? {
        nl.set_up(lo.index)?;
    }
    Ok(())
}

/// The default MAC of an endpoint: 02:42 and the IPv4 address, as Docker
/// gives. A container that gets a freed address thus gets the MAC that the
/// host's (and its peers') neighbour entries for that address still hold; a
/// fresh random MAC would leave them sending to the old container until the
/// entries expire, tens of seconds (regression test: ports_live,
/// replaced_container_is_reached_at_once).
pub fn mac_for(ipv4: Ipv4Addr) -> MacAddr {
    MacAddr::derived_from(ipv4)
}

/// `veth` + 11 random hex digits: 15 bytes, the kernel's limit (IFNAMSIZ - 1).
/// A fresh name for every launch, not one derived from the container id: the
/// kernel removes an exited container's veth in the background, so a
/// `pont start` right after an exit would otherwise find the old name taken.
pub fn host_ifname() -> String {
    format!("veth{}", &crate::new_id()[..11])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_mac_is_local_unicast_and_follows_the_address() {
        let mac = mac_for(Ipv4Addr::new(10, 66, 1, 2));
        assert_eq!(mac.0, [0x02, 0x42, 10, 66, 1, 2]);
        assert_eq!(mac.0[0] & 0x03, 0x02, "locally administered, unicast");
    }
}
