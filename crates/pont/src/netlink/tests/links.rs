//! Kernel tests of links: bridges, veth pairs across namespaces, deletion, errors.

use std::{fs::File, os::fd::AsFd};

use super::{fresh_netns, in_fresh_netns};
use crate::netlink::{netns_of_pid, Netlink, NetlinkError};

const PEER_MAC: [u8; 6] = [0x02, 0x42, 0xac, 0x11, 0x00, 0x02];

#[test]
fn bridge_create_duplicate_dump_up_mtu() {
    in_fresh_netns(|| {
        let mut nl = Netlink::open().unwrap();
        let index = nl.create_bridge("pont-t0", 1400).unwrap();

        let duplicate = nl.create_bridge("pont-t0", 1400).unwrap_err();
        assert!(duplicate.is_exists(), "{duplicate:?}");
        assert_eq!(duplicate.errno(), Some(libc::EEXIST));
        assert!(duplicate
            .to_string()
            .starts_with("netlink: create bridge pont-t0"));

        let links = nl.links().unwrap();
        let bridge = links
            .iter()
            .find(|l| l.name == "pont-t0")
            .expect("bridge in dump");
        assert_eq!(bridge.index, index);
        assert_eq!(bridge.kind.as_deref(), Some("bridge"));
        assert_eq!((bridge.mtu, bridge.up, bridge.master), (1400, false, None));
        assert!(bridge.mac.is_some());
        let lo = links.iter().find(|l| l.name == "lo").expect("lo in dump");
        assert_eq!(lo.kind, None);

        nl.set_up(index).unwrap();
        nl.set_mtu(index, 1300).unwrap();
        let bridge = nl.link_by_name("pont-t0").unwrap().unwrap();
        assert_eq!((bridge.index, bridge.mtu, bridge.up), (index, 1300, true));
        assert_eq!(nl.link_by_name("pont-none").unwrap(), None);
    });
}

#[test]
fn veth_peer_created_in_other_namespace() {
    in_fresh_netns(|| {
        let container = fresh_netns();
        let mut host = Netlink::open().unwrap();
        let bridge = host.create_bridge("pont-t0", 1500).unwrap();
        let veth = host
            .create_veth("veth-t0", "eth0", container.as_fd(), 1450, Some(PEER_MAC))
            .unwrap();
        host.set_master(veth, bridge).unwrap();
        host.set_up(veth).unwrap();

        let host_end = host.link_by_name("veth-t0").unwrap().unwrap();
        assert_eq!(host_end.index, veth);
        assert_eq!(host_end.kind.as_deref(), Some("veth"));
        assert_eq!(
            (host_end.master, host_end.mtu, host_end.up),
            (Some(bridge), 1450, true)
        );
        assert_eq!(
            host.link_by_name("eth0").unwrap(),
            None,
            "peer must not be on the host"
        );

        let mut guest = Netlink::open_in(container.as_fd()).unwrap();
        let peer = guest
            .link_by_name("eth0")
            .unwrap()
            .expect("peer in container");
        assert_eq!(peer.mac, Some(PEER_MAC));
        assert_eq!(peer.kind.as_deref(), Some("veth"));
        assert_eq!((peer.mtu, peer.up, peer.master), (1450, false, None));
        let names: Vec<String> = guest.links().unwrap().into_iter().map(|l| l.name).collect();
        assert_eq!(names, ["lo", "eth0"]);

        // Either name taken fails the whole creation.
        let host_taken = host.create_veth("veth-t0", "eth1", container.as_fd(), 1500, None);
        assert!(host_taken.unwrap_err().is_exists());
        let peer_taken = host.create_veth("veth-t1", "eth0", container.as_fd(), 1500, None);
        assert!(peer_taken.unwrap_err().is_exists());
        assert_eq!(host.link_by_name("veth-t1").unwrap(), None);
    });
}

#[test]
fn hairpin_mode_is_set_on_a_bridge_port() {
    in_fresh_netns(|| {
        let container = fresh_netns();
        let mut host = Netlink::open().unwrap();
        let bridge = host.create_bridge("pont-t0", 1500).unwrap();
        let veth = host
            .create_veth("veth-t0", "eth0", container.as_fd(), 1500, None)
            .unwrap();
        host.set_master(veth, bridge).unwrap();
        let hairpin = || {
            let out = std::process::Command::new("ip")
                .args(["-d", "link", "show", "veth-t0"])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).contains("hairpin on")
        };
        assert!(!hairpin());
        host.set_hairpin(veth, true).unwrap();
        assert!(hairpin(), "hairpin mode did not take effect");
    });
}

#[test]
fn bridge_snooping_and_addrgenmode_are_set() {
    in_fresh_netns(|| {
        let container = fresh_netns();
        let mut host = Netlink::open().unwrap();
        let bridge = host.create_bridge("pont-t0", 1500).unwrap();
        host.set_multicast_snooping(bridge, false).unwrap();
        let show = |name: &str| {
            let out = std::process::Command::new("ip")
                .args(["-d", "link", "show", name])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let details = show("pont-t0");
        assert!(details.contains("mcast_snooping 0"), "{details}");

        let veth = host
            .create_veth("veth-t0", "eth0", container.as_fd(), 1500, None)
            .unwrap();
        host.set_addrgenmode_none(veth).unwrap();
        assert!(
            show("veth-t0").contains("addrgenmode none"),
            "{}",
            show("veth-t0")
        );
    });
}

#[test]
fn delete_link_is_repeatable() {
    in_fresh_netns(|| {
        let mut nl = Netlink::open().unwrap();
        let index = nl.create_bridge("pont-t0", 1500).unwrap();
        assert!(nl.delete_link(index).unwrap());
        assert!(!nl.delete_link(index).unwrap());
        assert_eq!(nl.link_by_name("pont-t0").unwrap(), None);
    });
}

#[test]
fn deleting_host_end_removes_peer() {
    in_fresh_netns(|| {
        let container = fresh_netns();
        let mut host = Netlink::open().unwrap();
        let veth = host
            .create_veth("veth-t0", "eth0", container.as_fd(), 1500, None)
            .unwrap();
        assert!(host.delete_link(veth).unwrap());
        let mut guest = Netlink::open_in(container.as_fd()).unwrap();
        assert_eq!(guest.link_by_name("eth0").unwrap(), None);
    });
}

#[test]
fn address_on_missing_link_is_enodev() {
    in_fresh_netns(|| {
        let mut nl = Netlink::open().unwrap();
        let err = nl
            .add_address(9999, "10.99.0.1".parse().unwrap(), 24)
            .unwrap_err();
        assert_eq!(err.errno(), Some(libc::ENODEV), "{err:?}");
        assert!(err.is_not_found());
        assert!(!err.is_exists());
        assert!(err
            .to_string()
            .starts_with("netlink: add address 10.99.0.1/24 on ifindex 9999"));
        let source = std::error::Error::source(&err).expect("kernel error as source");
        assert_eq!(
            source.to_string(),
            std::io::Error::from_raw_os_error(libc::ENODEV).to_string()
        );
    });
}

#[test]
fn kernel_reason_text_is_kept() {
    in_fresh_netns(|| {
        let mut nl = Netlink::open().unwrap();
        let index = nl.create_bridge("pont-t0", 1500).unwrap();
        // A bridge's MTU is at most 65535; the kernel says why it refuses in an extended ack.
        let err = nl.set_mtu(index, 70000).unwrap_err();
        assert_eq!(err.errno(), Some(libc::EINVAL), "{err:?}");
        let NetlinkError::Request { detail, .. } = &err else {
            panic!("expected a request error, got {err:?}");
        };
        assert!(
            detail.as_deref().is_some_and(|d| d.contains("mtu")),
            "{err}"
        );
    });
}

#[test]
fn permission_failure_keeps_the_errno() {
    in_fresh_netns(|| {
        // Give up root on this thread only: the raw system call changes the calling thread's
        // credentials, unlike libc's setresuid, which changes every thread of the process.
        // SAFETY: setresuid takes three integers and touches no memory of ours; the thread
        // ends with the test, and no other thread is affected.
        let rc = unsafe { libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534) };
        assert_eq!(rc, 0, "setresuid: {}", std::io::Error::last_os_error());
        let mut nl = Netlink::open().unwrap();
        let err = nl.create_bridge("pont-t0", 1500).unwrap_err();
        assert_eq!(err.errno(), Some(libc::EPERM), "{err:?}");
        assert_eq!(err.to_string(), "netlink: create bridge pont-t0");
    });
}

#[test]
fn open_in_rejects_a_handle_that_is_no_namespace() {
    let file = File::open("/proc/self/status").unwrap();
    let err = Netlink::open_in(file.as_fd()).unwrap_err();
    assert!(matches!(err, NetlinkError::EnterNetns { .. }), "{err:?}");
    assert_eq!(err.errno(), Some(libc::EINVAL));
}

#[test]
fn netns_of_pid_opens_own_and_fails_for_missing() {
    let own = netns_of_pid(std::process::id() as i32).unwrap();
    Netlink::open_in(own.as_fd()).unwrap();
    let err = netns_of_pid(i32::MAX).unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("netlink: open network namespace of process {}", i32::MAX)
    );
}
