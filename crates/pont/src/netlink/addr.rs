//! Interface addresses, IPv4 and IPv6: add and dump.

use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::{
    address::{AddressAttribute, AddressMessage},
    AddressFamily, RouteNetlinkMessage,
};

use super::{exchange::Ctx, Address, Netlink, NetlinkError, Op};

impl Netlink {
    /// Add `addr/prefix_len` to link `index`, like `ip addr add`. Fails with EEXIST if the
    /// link has it already. An IPv4 address gets the subnet's broadcast address too (below
    /// /31), as Docker's bridge driver sets it.
    pub fn add_address(
        &mut self,
        index: u32,
        addr: IpAddr,
        prefix_len: u8,
    ) -> Result<(), NetlinkError> {
        let ctx = Ctx::new(
            Op::AddAddress,
            format!("{addr}/{prefix_len} on ifindex {index}"),
        );
        if prefix_len > max_prefix_len(addr) {
            return Err(ctx.invalid("prefix length too long for the address family"));
        }
        let mut message = AddressMessage::default();
        message.header.family = family_of(addr);
        message.header.prefix_len = prefix_len;
        message.header.index = index;
        message.attributes = address_attributes(addr, prefix_len);
        let request = RouteNetlinkMessage::NewAddress(message);
        self.request(ctx, request, NLM_F_CREATE | NLM_F_EXCL)
            .map(drop)
    }

    /// All addresses of all links in this namespace, IPv4 and IPv6.
    pub fn addresses(&mut self) -> Result<Vec<Address>, NetlinkError> {
        // AF_UNSPEC: the kernel dumps every family.
        let request = RouteNetlinkMessage::GetAddress(AddressMessage::default());
        let replies = self.dump(Ctx::new(Op::DumpAddresses, "in namespace"), request)?;
        Ok(replies.into_iter().filter_map(into_address).collect())
    }
}

/// IPv4 needs IFA_LOCAL (the interface's own address); IFA_ADDRESS is the peer on
/// point-to-point links and equal to the local one otherwise. IPv6 uses IFA_ADDRESS alone.
fn address_attributes(addr: IpAddr, prefix_len: u8) -> Vec<AddressAttribute> {
    let mut attributes = vec![AddressAttribute::Address(addr)];
    if let IpAddr::V4(v4) = addr {
        attributes.push(AddressAttribute::Local(addr));
        if prefix_len <= 30 {
            attributes.push(AddressAttribute::Broadcast(broadcast(v4, prefix_len)));
        }
    }
    attributes
}

/// The all-ones host part of `addr/prefix_len`.
pub(super) fn broadcast(addr: Ipv4Addr, prefix_len: u8) -> Ipv4Addr {
    let host_bits = u32::MAX.checked_shr(u32::from(prefix_len)).unwrap_or(0);
    Ipv4Addr::from(u32::from(addr) | host_bits)
}

pub(super) fn family_of(addr: IpAddr) -> AddressFamily {
    match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

pub(super) fn max_prefix_len(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn into_address(message: RouteNetlinkMessage) -> Option<Address> {
    let RouteNetlinkMessage::NewAddress(message) = message else {
        return None;
    };
    let mut local = None;
    let mut address = None;
    for attribute in message.attributes {
        match attribute {
            AddressAttribute::Local(addr) => local = Some(addr),
            AddressAttribute::Address(addr) => address = Some(addr),
            _ => {}
        }
    }
    Some(Address {
        index: message.header.index,
        addr: local.or(address)?,
        prefix_len: message.header.prefix_len,
    })
}
