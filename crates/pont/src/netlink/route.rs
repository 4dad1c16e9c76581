//! Routes of the main table: add and dump.

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::{
    route::{
        RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope,
        RouteType,
    },
    AddressFamily, RouteNetlinkMessage,
};

use super::{
    addr::{family_of, max_prefix_len},
    exchange::Ctx,
    Netlink, NetlinkError, Op, Route,
};

impl Netlink {
    /// Add a unicast route to the main table, like `ip route add`: `dst` `None` is the
    /// default route; it goes via `gateway` and/or out of link `oif`. Fails with EEXIST if
    /// the route exists.
    pub fn add_route(
        &mut self,
        dst: Option<(IpAddr, u8)>,
        gateway: Option<IpAddr>,
        oif: Option<u32>,
    ) -> Result<(), NetlinkError> {
        let ctx = Ctx::new(Op::AddRoute, describe(dst, gateway, oif));
        let message = match route_message(dst, gateway, oif) {
            Ok(message) => message,
            Err(reason) => return Err(ctx.invalid(reason)),
        };
        let request = RouteNetlinkMessage::NewRoute(message);
        self.request(ctx, request, NLM_F_CREATE | NLM_F_EXCL)
            .map(drop)
    }

    /// The unicast routes of the main table, IPv4 and IPv6. Routes of other types
    /// (blackhole, unreachable, ...) and of other tables are left out.
    pub fn routes(&mut self) -> Result<Vec<Route>, NetlinkError> {
        // AF_UNSPEC: the kernel dumps every family.
        let request = RouteNetlinkMessage::GetRoute(RouteMessage::default());
        let replies = self.dump(Ctx::new(Op::DumpRoutes, "in main table"), request)?;
        Ok(replies.into_iter().filter_map(into_route).collect())
    }
}

/// Build the RTM_NEWROUTE message, or say why the route cannot be expressed.
fn route_message(
    dst: Option<(IpAddr, u8)>,
    gateway: Option<IpAddr>,
    oif: Option<u32>,
) -> Result<RouteMessage, &'static str> {
    if gateway.is_none() && oif.is_none() {
        return Err("a route needs a gateway or an output interface");
    }
    let family = match (dst, gateway) {
        (Some((d, _)), Some(g)) if d.is_ipv4() != g.is_ipv4() => {
            return Err("destination and gateway are of different address families")
        }
        (Some((d, _)), _) => family_of(d),
        (None, Some(g)) => family_of(g),
        (None, None) => return Err("a default route without a gateway has no address family"),
    };
    let mut message = RouteMessage::default();
    let header = &mut message.header;
    header.address_family = family;
    header.table = RouteHeader::RT_TABLE_MAIN;
    header.protocol = RouteProtocol::Static;
    header.kind = RouteType::Unicast;
    // Without a gateway the destination is directly on the link.
    header.scope = match gateway {
        Some(_) => RouteScope::Universe,
        None => RouteScope::Link,
    };
    if let Some((addr, prefix_len)) = dst {
        if prefix_len > max_prefix_len(addr) {
            return Err("prefix length too long for the address family");
        }
        header.destination_prefix_length = prefix_len;
        let destination = RouteAddress::from(addr);
        message
            .attributes
            .push(RouteAttribute::Destination(destination));
    }
    if let Some(gateway) = gateway {
        let gateway = RouteAddress::from(gateway);
        message.attributes.push(RouteAttribute::Gateway(gateway));
    }
    if let Some(oif) = oif {
        message.attributes.push(RouteAttribute::Oif(oif));
    }
    Ok(message)
}

/// `10.0.0.0/8 via 10.99.0.1 dev ifindex 3`, in the words of `ip route`.
fn describe(dst: Option<(IpAddr, u8)>, gateway: Option<IpAddr>, oif: Option<u32>) -> String {
    let mut text = match dst {
        Some((addr, prefix_len)) => format!("{addr}/{prefix_len}"),
        None => "default".to_owned(),
    };
    if let Some(gateway) = gateway {
        text += &format!(" via {gateway}");
    }
    if let Some(oif) = oif {
        text += &format!(" dev ifindex {oif}");
    }
    text
}

fn into_route(message: RouteNetlinkMessage) -> Option<Route> {
    let RouteNetlinkMessage::NewRoute(message) = message else {
        return None;
    };
    let header = &message.header;
    let inet = matches!(
        header.address_family,
        AddressFamily::Inet | AddressFamily::Inet6
    );
    if !inet || header.kind != RouteType::Unicast {
        return None;
    }
    // The header's table field is 8 bits; RTA_TABLE carries the full id when present.
    let mut table = u32::from(header.table);
    let mut route = Route {
        dst: None,
        gateway: None,
        oif: None,
    };
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Table(id) => table = *id,
            RouteAttribute::Destination(addr) => {
                route.dst = ip_of(addr).map(|ip| (ip, header.destination_prefix_length));
            }
            RouteAttribute::Gateway(addr) => route.gateway = ip_of(addr),
            RouteAttribute::Oif(oif) => route.oif = Some(*oif),
            _ => {}
        }
    }
    (table == u32::from(RouteHeader::RT_TABLE_MAIN)).then_some(route)
}

fn ip_of(addr: &RouteAddress) -> Option<IpAddr> {
    match addr {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}
