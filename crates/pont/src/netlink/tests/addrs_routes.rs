//! Kernel tests of addresses and routes.

use std::net::IpAddr;

use super::in_fresh_netns;
use crate::netlink::{Address, Netlink, NetlinkError, Route};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// A bridge that is up, in a fresh namespace, with 10.99.0.1/24 and fd00:99::1/64 on it.
fn bridge_with_addresses(nl: &mut Netlink) -> u32 {
    let bridge = nl.create_bridge("pont-t0", 1500).unwrap();
    nl.add_address(bridge, ip("10.99.0.1"), 24).unwrap();
    nl.add_address(bridge, ip("fd00:99::1"), 64).unwrap();
    nl.set_up(bridge).unwrap();
    bridge
}

#[test]
fn addresses_add_and_dump() {
    in_fresh_netns(|| {
        let mut nl = Netlink::open().unwrap();
        let bridge = bridge_with_addresses(&mut nl);

        let addresses = nl.addresses().unwrap();
        for (addr, prefix_len) in [("10.99.0.1", 24), ("fd00:99::1", 64)] {
            let expected = Address {
                index: bridge,
                addr: ip(addr),
                prefix_len,
            };
            assert!(
                addresses.contains(&expected),
                "{expected:?} not in {addresses:?}"
            );
        }

        let duplicate = nl.add_address(bridge, ip("10.99.0.1"), 24).unwrap_err();
        assert!(duplicate.is_exists(), "{duplicate:?}");
        let too_long = nl.add_address(bridge, ip("10.99.0.1"), 33).unwrap_err();
        assert!(
            matches!(too_long, NetlinkError::Invalid { .. }),
            "{too_long:?}"
        );
    });
}

#[test]
fn routes_add_and_dump() {
    in_fresh_netns(|| {
        let mut nl = Netlink::open().unwrap();
        let bridge = bridge_with_addresses(&mut nl);
        nl.add_route(None, Some(ip("10.99.0.254")), None).unwrap();
        nl.add_route(Some((ip("10.98.0.0"), 16)), None, Some(bridge))
            .unwrap();
        nl.add_route(None, Some(ip("fd00:99::fe")), Some(bridge))
            .unwrap();

        let routes = nl.routes().unwrap();
        let expected = [
            (None, Some("10.99.0.254")),
            (Some(("10.98.0.0", 16)), None),
            (Some(("10.99.0.0", 24)), None), // the kernel's route for the subnet
            (None, Some("fd00:99::fe")),
        ];
        for (dst, gateway) in expected {
            let route = Route {
                dst: dst.map(|(addr, prefix_len)| (ip(addr), prefix_len)),
                gateway: gateway.map(ip),
                oif: Some(bridge),
            };
            assert!(routes.contains(&route), "{route:?} not in {routes:?}");
        }
        // Local and broadcast routes live in the local table, not the main one.
        assert!(!routes.iter().any(|r| r.dst == Some((ip("10.99.0.1"), 32))));

        let duplicate = nl
            .add_route(None, Some(ip("10.99.0.254")), None)
            .unwrap_err();
        assert!(duplicate.is_exists(), "{duplicate:?}");
        assert_eq!(
            duplicate.to_string(),
            "netlink: add route default via 10.99.0.254"
        );
    });
}

#[test]
fn route_to_unreachable_gateway_is_refused() {
    in_fresh_netns(|| {
        let mut nl = Netlink::open().unwrap();
        let err = nl.add_route(None, Some(ip("192.0.2.1")), None).unwrap_err();
        assert_eq!(err.errno(), Some(libc::ENETUNREACH), "{err:?}");
    });
}

#[test]
fn inexpressible_routes_are_refused_before_sending() {
    in_fresh_netns(|| {
        let mut nl = Netlink::open().unwrap();
        let cases = [
            (None, None, Some(1)),
            (None, None, None),
            (Some((ip("10.0.0.0"), 8)), Some(ip("fd00::1")), None),
            (Some((ip("10.0.0.0"), 33)), None, Some(1)),
        ];
        for (dst, gateway, oif) in cases {
            let err = nl.add_route(dst, gateway, oif).unwrap_err();
            assert!(matches!(err, NetlinkError::Invalid { .. }), "{err:?}");
        }
    });
}
