//! Links: look up, dump, create bridges and veth pairs, set master, up and MTU, delete.

use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_ECHO, NLM_F_EXCL};
use netlink_packet_route::{
    link::{
        AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoBridge, InfoBridgePort, InfoData, InfoKind,
        InfoPortData, InfoPortKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
    },
    RouteNetlinkMessage,
};

use super::{exchange::Ctx, Link, Netlink, NetlinkError, Op};

impl Netlink {
    /// The link called `name`, or `None` if there is none.
    pub fn link_by_name(&mut self, name: &str) -> Result<Option<Link>, NetlinkError> {
        let ctx = Ctx::new(Op::GetLink, name);
        let mut message = LinkMessage::default();
        message
            .attributes
            .push(LinkAttribute::IfName(name.to_owned()));
        let replies = match self.request(ctx.clone(), RouteNetlinkMessage::GetLink(message), 0) {
            Ok(replies) => replies,
            Err(e) if e.errno() == Some(libc::ENODEV) => return Ok(None),
            Err(e) => return Err(e),
        };
        match replies.into_iter().find_map(into_link) {
            Some(link) => Ok(Some(link)),
            None => Err(ctx.protocol("the kernel acknowledged but sent no link")),
        }
    }

    /// All links of this namespace.
    pub fn links(&mut self) -> Result<Vec<Link>, NetlinkError> {
        let request = RouteNetlinkMessage::GetLink(LinkMessage::default());
        let replies = self.dump(Ctx::new(Op::DumpLinks, "in namespace"), request)?;
        Ok(replies.into_iter().filter_map(into_link).collect())
    }

    /// Create a bridge (fails with EEXIST if the name exists), with the given MTU, not yet up.
    /// Returns its ifindex.
    pub fn create_bridge(&mut self, name: &str, mtu: u32) -> Result<u32, NetlinkError> {
        let ctx = Ctx::new(Op::CreateBridge, name);
        let mut message = LinkMessage::default();
        message.attributes = vec![
            LinkAttribute::IfName(name.to_owned()),
            LinkAttribute::Mtu(mtu),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]),
        ];
        self.create_link(ctx, name, message)
    }

    /// Create a veth pair: `host_name` in this socket's namespace, the peer `peer_name`
    /// created directly inside `peer_netns` (`IFLA_NET_NS_FD` in the peer's attributes), both
    /// with `mtu`, the peer with `peer_mac` if given. Returns the host end's ifindex. Fails
    /// (EEXIST) if either name is taken in its namespace.
    pub fn create_veth(
        &mut self,
        host_name: &str,
        peer_name: &str,
        peer_netns: BorrowedFd<'_>,
        mtu: u32,
        peer_mac: Option<[u8; 6]>,
    ) -> Result<u32, NetlinkError> {
        let ctx = Ctx::new(Op::CreateVeth, format!("{host_name} (peer {peer_name})"));
        let mut peer = LinkMessage::default();
        peer.attributes = vec![
            LinkAttribute::IfName(peer_name.to_owned()),
            LinkAttribute::Mtu(mtu),
            // The kernel only reads the fd while it handles this request, so borrowing it
            // for the duration of the call is enough.
            LinkAttribute::NetNsFd(peer_netns.as_raw_fd()),
        ];
        if let Some(mac) = peer_mac {
            peer.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        let mut host = LinkMessage::default();
        host.attributes = vec![
            LinkAttribute::IfName(host_name.to_owned()),
            LinkAttribute::Mtu(mtu),
            LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Veth),
                LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
            ]),
        ];
        self.create_link(ctx, host_name, host)
    }

    /// Send an RTM_NEWLINK that must create `name`, and return the new link's index.
    fn create_link(
        &mut self,
        ctx: Ctx,
        name: &str,
        message: LinkMessage,
    ) -> Result<u32, NetlinkError> {
        // NLM_F_ECHO has the kernel send the new link back, index included, saving a lookup.
        let flags = NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO;
        let replies = self.request(ctx.clone(), RouteNetlinkMessage::NewLink(message), flags)?;
        let echoed = replies
            .into_iter()
            .filter_map(into_link)
            .find(|l| l.name == name);
        if let Some(link) = echoed {
            return Ok(link.index);
        }
        // Older kernels ignore NLM_F_ECHO on RTM_NEWLINK (it came in the 6.x series): ask by
        // name instead.
        match self.link_by_name(name)? {
            Some(link) => Ok(link.index),
            None => Err(ctx.protocol("the new link vanished before its index was read")),
        }
    }

    /// Make link `index` a port of `master` (a bridge), like `ip link set ... master`.
    pub fn set_master(&mut self, index: u32, master: u32) -> Result<(), NetlinkError> {
        let ctx = Ctx::new(
            Op::SetMaster,
            format!("ifindex {index} to ifindex {master}"),
        );
        let mut message = link_message(index);
        message.attributes.push(LinkAttribute::Controller(master));
        self.set_link(ctx, message)
    }

    /// Let the bridge send frames back out of the port they came in on, like
    /// `ip link set ... type bridge_slave hairpin on`. A container that reaches
    /// its own published port needs it where br_netfilter bridges the
    /// translated packet back to the port it came from.
    pub fn set_hairpin(&mut self, index: u32, on: bool) -> Result<(), NetlinkError> {
        let ctx = Ctx::new(Op::SetHairpin, format!("ifindex {index}"));
        let mut message = link_message(index);
        message.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::PortKind(InfoPortKind::Bridge),
            LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::HairpinMode(
                on,
            )])),
        ]));
        // Port options are applied only by RTM_NEWLINK (the kernel's
        // rtnl_newlink calls the bridge's slave_changelink); RTM_SETLINK
        // ignores IFLA_LINKINFO without an error.
        self.request(ctx, RouteNetlinkMessage::NewLink(message), 0)
            .map(drop)
    }

    /// Switch IGMP/MLD snooping of bridge `index` on or off, like `ip link set ... type
    /// bridge mcast_snooping 0|1`. Off, the bridge floods multicast like broadcast.
    pub fn set_multicast_snooping(&mut self, index: u32, on: bool) -> Result<(), NetlinkError> {
        let ctx = Ctx::new(Op::SetMulticastSnooping, format!("ifindex {index}"));
        let mut message = link_message(index);
        message.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Bridge),
            LinkInfo::Data(InfoData::Bridge(vec![InfoBridge::MulticastSnooping(on)])),
        ]));
        // Like port options, bridge options are applied only by RTM_NEWLINK.
        self.request(ctx, RouteNetlinkMessage::NewLink(message), 0)
            .map(drop)
    }

    /// Give link `index` no IPv6 link-local address, like `ip link set ... addrgenmode
    /// none`; call it while the link is down, since the kernel makes the address when the
    /// link comes up. The kernel refuses it at creation (`EAFNOSUPPORT`): it needs a link
    /// that exists.
    ///
    /// Without that address the link sends no duplicate address detection, MLD reports or
    /// router solicitations. On a bridge port those are multicast, which the bridge copies
    /// to every other port: work that grows with the number of ports.
    pub fn set_addrgenmode_none(&mut self, index: u32) -> Result<(), NetlinkError> {
        let ctx = Ctx::new(Op::SetAddrGenMode, format!("ifindex {index}"));
        let mut message = link_message(index);
        message
            .attributes
            .push(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
                vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)],
            )]));
        self.set_link(ctx, message)
    }

    /// Set the interface alias (`IFLA_IFALIAS`) of link `index`, like
    /// `ip link set ... alias TEXT`: a label that outlives the process that made
    /// the link, so its owner can recognise it later.
    pub fn set_alias(&mut self, index: u32, alias: &str) -> Result<(), NetlinkError> {
        let ctx = Ctx::new(Op::SetAlias, format!("ifindex {index}"));
        let mut message = link_message(index);
        message
            .attributes
            .push(LinkAttribute::IfAlias(alias.to_owned()));
        self.set_link(ctx, message)
    }

    /// Set link `index` administratively up, like `ip link set ... up`.
    pub fn set_up(&mut self, index: u32) -> Result<(), NetlinkError> {
        let mut message = link_message(index);
        message.header.flags = LinkFlags::Up;
        message.header.change_mask = LinkFlags::Up;
        self.set_link(Ctx::new(Op::SetUp, format!("ifindex {index}")), message)
    }

    /// Set the MTU of link `index`.
    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<(), NetlinkError> {
        let ctx = Ctx::new(Op::SetMtu, format!("ifindex {index} to {mtu}"));
        let mut message = link_message(index);
        message.attributes.push(LinkAttribute::Mtu(mtu));
        self.set_link(ctx, message)
    }

    fn set_link(&mut self, ctx: Ctx, message: LinkMessage) -> Result<(), NetlinkError> {
        self.request(ctx, RouteNetlinkMessage::SetLink(message), 0)
            .map(drop)
    }

    /// Delete link `index` (for a veth, both ends go). `Ok(false)` if it was already gone
    /// (ENODEV), so calling it again is harmless.
    pub fn delete_link(&mut self, index: u32) -> Result<bool, NetlinkError> {
        let ctx = Ctx::new(Op::DeleteLink, format!("ifindex {index}"));
        let request = RouteNetlinkMessage::DelLink(link_message(index));
        match self.request(ctx, request, 0) {
            Ok(_) => Ok(true),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// A message addressing link `index`, with no attributes yet.
fn link_message(index: u32) -> LinkMessage {
    let mut message = LinkMessage::default();
    message.header.index = index;
    message
}

fn into_link(message: RouteNetlinkMessage) -> Option<Link> {
    let RouteNetlinkMessage::NewLink(message) = message else {
        return None;
    };
    let mut link = Link {
        index: message.header.index,
        name: String::new(),
        kind: None,
        master: None,
        mtu: 0,
        up: message.header.flags.contains(LinkFlags::Up),
        mac: None,
        alias: None,
    };
    for attribute in message.attributes {
        match attribute {
            LinkAttribute::IfName(name) => link.name = name,
            LinkAttribute::Mtu(mtu) => link.mtu = mtu,
            LinkAttribute::Controller(master) => link.master = Some(master),
            LinkAttribute::Address(mac) => link.mac = mac.try_into().ok(),
            LinkAttribute::LinkInfo(infos) => link.kind = kind_of(infos),
            LinkAttribute::IfAlias(alias) => link.alias = Some(alias),
            _ => {}
        }
    }
    Some(link)
}

fn kind_of(infos: Vec<LinkInfo>) -> Option<String> {
    infos.into_iter().find_map(|info| match info {
        LinkInfo::Kind(kind) => Some(kind.to_string()),
        _ => None,
    })
}
