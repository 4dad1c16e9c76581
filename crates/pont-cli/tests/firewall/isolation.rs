//! Behaviours 1, 2 and 4: icc within a network, isolation between networks,
//! and no way in from the LAN, each under a host setting that changes the
//! path a packet takes (br_netfilter on or off, a FORWARD policy of DROP).

use testkit::Ns;

use crate::lab::*;
use crate::probe::*;

/// Containers of one network reach each other; with icc=false they do not,
/// but still reach the WAN. `bridge_nf` is br_netfilter's
/// bridge-nf-call-iptables: on, bridged packets also cross the IP hooks.
fn icc(backend: &'static str, bridge_nf: bool) {
    let lab = Lab::new(backend);
    lab.sysctl(&format!(
        "net.bridge.bridge-nf-call-iptables={}",
        u8::from(bridge_nf)
    ));
    let _wan = lab.servers(&[(Ns::Wan, WAN)]);
    lab.network("open", "10.81.1.0/24", &[]);
    lab.network("closed", "10.81.2.0/24", &["--opt", "icc=false"]);
    let a = lab.service("a", "open", &[]);
    let b = lab.service("b", "open", &[]);
    let c = lab.service("c", "closed", &[]);
    let d = lab.service("d", "closed", &[]);
    lab.expect(vec![
        lab.reach(From::C("a"), &b, ALL),
        lab.reach(From::C("b"), &a, ALL),
        lab.blocked(From::C("c"), &d, ALL),
        lab.blocked(From::C("d"), &c, ALL),
        lab.reach(From::C("c"), WAN, ALL),
        lab.reach(From::C("d"), WAN, ALL),
        lab.reach(From::C("a"), WAN, ALL),
    ]);
}

fn icc_with_bridge_nf(backend: &'static str) {
    icc(backend, true);
}

fn icc_without_bridge_nf(backend: &'static str) {
    icc(backend, false);
}

/// Behaviours 2 and 4: two networks cannot reach each other's containers,
/// either way, by any protocol; a LAN neighbour (and the router, for the WAN)
/// that routes a container subnet via the pont host gets nothing through.
/// Each network still reaches the WAN, the LAN and itself.
fn apart_and_closed(backend: &'static str, policy_drop: bool) {
    let lab = Lab::new(backend);
    if policy_drop {
        lab.host("iptables -P FORWARD DROP");
    }
    let _servers = lab.servers(&[(Ns::Wan, WAN), (Ns::Neighbour, NEIGHBOUR)]);
    lab.network("one", "10.82.1.0/24", &[]);
    lab.network("two", "10.82.2.0/24", &[]);
    let a = lab.service("a", "one", &[]);
    let a2 = lab.service("a2", "one", &[]);
    let b = lab.service("b", "two", &[]);
    for ns in [Ns::Neighbour, Ns::Router] {
        for subnet in ["10.82.1.0/24", "10.82.2.0/24"] {
            lab.sb
                .run_ok(ns, &["ip", "route", "add", subnet, "via", HOST_IP]);
        }
    }
    lab.expect(vec![
        lab.blocked(From::C("a"), &b, ALL),
        lab.blocked(From::C("b"), &a, ALL),
        lab.blocked(From::C("b"), &a2, ALL),
        lab.blocked(From::Ns(Ns::Neighbour), &a, ALL),
        lab.blocked(From::Ns(Ns::Neighbour), &b, ALL),
        lab.blocked(From::Ns(Ns::Wan), &a, ALL),
        lab.reach(From::C("a2"), &a, ALL),
        lab.reach(From::C("a"), WAN, ALL),
        lab.reach(From::C("b"), WAN, ALL),
        lab.reach(From::C("b"), NEIGHBOUR, ALL),
        lab.reach(From::Ns(Ns::Host), &a, ALL),
    ]);
}

fn apart_and_closed_policy_accept(backend: &'static str) {
    apart_and_closed(backend, false);
}

fn apart_and_closed_policy_drop(backend: &'static str) {
    apart_and_closed(backend, true);
}

on_both_backends!(
    icc_with_bridge_nf,
    icc_without_bridge_nf,
    apart_and_closed_policy_accept,
    apart_and_closed_policy_drop,
);
