//! STUB for type-checking; replaced by the real module on merge.
#![allow(unused_variables, clippy::missing_errors_doc)]
use std::net::IpAddr;
use std::os::fd::{BorrowedFd, OwnedFd};
#[derive(Debug, thiserror::Error)]
#[error("stub")]
pub struct NetlinkError;
pub struct Netlink;
pub struct Link {
    pub index: u32,
    pub name: String,
    pub kind: Option<String>,
    pub master: Option<u32>,
    pub mtu: u32,
    pub up: bool,
    pub mac: Option<[u8; 6]>,
}
pub struct Address {
    pub index: u32,
    pub addr: IpAddr,
    pub prefix_len: u8,
}
pub struct Route {
    pub dst: Option<(IpAddr, u8)>,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
}
impl Netlink {
    pub fn open() -> Result<Netlink, NetlinkError> {
        todo!()
    }
    pub fn open_in(netns: BorrowedFd<'_>) -> Result<Netlink, NetlinkError> {
        todo!()
    }
    pub fn link_by_name(&mut self, name: &str) -> Result<Option<Link>, NetlinkError> {
        todo!()
    }
    pub fn links(&mut self) -> Result<Vec<Link>, NetlinkError> {
        todo!()
    }
    pub fn create_bridge(&mut self, name: &str, mtu: u32) -> Result<u32, NetlinkError> {
        todo!()
    }
    pub fn create_veth(
        &mut self,
        host_name: &str,
        peer_name: &str,
        peer_netns: BorrowedFd<'_>,
        mtu: u32,
        peer_mac: Option<[u8; 6]>,
    ) -> Result<u32, NetlinkError> {
        todo!()
    }
    pub fn set_master(&mut self, index: u32, master: u32) -> Result<(), NetlinkError> {
        todo!()
    }
    pub fn set_up(&mut self, index: u32) -> Result<(), NetlinkError> {
        todo!()
    }
    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<(), NetlinkError> {
        todo!()
    }
    pub fn delete_link(&mut self, index: u32) -> Result<bool, NetlinkError> {
        todo!()
    }
    pub fn add_address(
        &mut self,
        index: u32,
        addr: IpAddr,
        prefix_len: u8,
    ) -> Result<(), NetlinkError> {
        todo!()
    }
    pub fn addresses(&mut self) -> Result<Vec<Address>, NetlinkError> {
        todo!()
    }
    pub fn add_route(
        &mut self,
        dst: Option<(IpAddr, u8)>,
        gateway: Option<IpAddr>,
        oif: Option<u32>,
    ) -> Result<(), NetlinkError> {
        todo!()
    }
    pub fn routes(&mut self) -> Result<Vec<Route>, NetlinkError> {
        todo!()
    }
}
pub fn netns_of_pid(pid: i32) -> Result<OwnedFd, NetlinkError> {
    todo!()
}
