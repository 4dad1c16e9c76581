//! Subnets, addresses and address pools: parsing never panics, a parsed
//! subnet prints back to itself, and the IPAM checks hold their promises for
//! any subnet, gateway, range and request.
#![no_main]

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use pont::ipam::{self, AddressSpace};
use pont::model::Ipv4Net;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // "SUBNET GATEWAY RANGE REQUEST USED..." or a pool spec.
    let _ = ipam::parse_pools(text).map(|pools| {
        for pool in &pools {
            for s in pool.subnets().take(4) {
                assert!(s.to_string().parse::<Ipv4Net>().is_ok());
            }
        }
    });
    let mut words = text.split(' ');
    let Some(Ok(subnet)) = words.next().map(str::parse::<Ipv4Net>) else {
        return;
    };
    assert_eq!(subnet.to_string().parse::<Ipv4Net>(), Ok(subnet));
    assert!(subnet.contains(subnet.network()) && subnet.contains(subnet.broadcast()));
    let _ = subnet.nth(u64::from(u32::MAX));
    let _ = subnet.nth_subnet(subnet.prefix_len().saturating_add(2), 3);
    let gateway = words.next().and_then(|w| w.parse::<Ipv4Addr>().ok());
    let range = words.next().and_then(|w| w.parse::<Ipv4Net>().ok());
    let Ok(gateway) = ipam::plan_network(subnet, gateway, range) else {
        return;
    };
    assert!(subnet.contains(gateway));
    // Keep the allocation scan small: a fuzzer-made /2 would take seconds.
    if subnet.prefix_len() < 16 {
        return;
    }
    let request = words.next().and_then(|w| w.parse::<Ipv4Addr>().ok());
    let in_use: BTreeSet<Ipv4Addr> = words.filter_map(|w| w.parse().ok()).collect();
    let space = AddressSpace {
        network: "fuzz",
        subnet,
        gateway,
        ip_range: range,
        in_use: &in_use,
    };
    if let Some(ip) = request {
        if let Ok(ip) = space.check_requested(ip) {
            assert!(subnet.contains(ip) && ip != gateway && !in_use.contains(&ip));
        }
    }
    if let Ok(ip) = space.allocate(request) {
        assert!(subnet.contains(ip) && ip != gateway && !in_use.contains(&ip));
        assert!(ip != subnet.network() && ip != subnet.broadcast());
    }
});
