//! Issue 4, behaviours 1-3: who reaches a published port, through which
//! address, and which client address the server sees, with bridged traffic
//! passed to the IP hooks (bridge-nf-call-iptables=1) and not (=0).

mod common;
#[macro_use]
mod ports_support;

use ports_support::*;
use Src::{Container, Ns as At};

/// A second address of the host, on its uplink.
const SECOND_HOST_IP: &str = "192.0.2.20";

/// srv (web, 10.66.1.2) publishes 8080 (tcp and udp) on every host address
/// and 8081 on 192.0.2.2 only; peer is on web too, far on other (10.66.2.2).
/// Every case is probed with bridge-nf-call-iptables=1 (the default: bridged
/// IP passes the IP hooks) and again with 0 (set in the sandbox host only).
fn reach(backend: Backend) {
    let sb = lab(backend);
    let cidr = format!("{SECOND_HOST_IP}/24");
    sb.run_ok(Ns::Host, &["ip", "addr", "add", &cidr, "dev", "uplink0"]);
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.66.1.0/24"]);
    sb.pont_ok(&["network", "create", "other", "--subnet", "10.66.2.0/24"]);
    let internal = ["network", "create", "vault", "--internal", "--subnet"];
    sb.pont_ok(&[&internal[..], &["10.66.3.0/24"]].concat());
    let publish = [
        "-p",
        "8080:80",
        "-p",
        "8080:80/udp",
        "-p",
        "192.0.2.2:8081:81",
    ];
    run_server(&sb, "srv", "web", &[80, 81], &publish);
    run_idle(&sb, "peer", "web");
    run_idle(&sb, "far", "other");
    run_idle(&sb, "inner", "vault");
    assert_rules_in(&sb, backend);
    assert_eq!(ip_of(&sb, "peer", "web"), "10.66.1.3");
    assert_eq!(ip_of(&sb, "far", "other"), "10.66.2.2");

    let cases = cases();
    for bnf in ["1", "0"] {
        let setting = format!("net.bridge.bridge-nf-call-iptables={bnf}");
        sb.run_ok(Ns::Host, &["sysctl", "-qw", &setting]);
        assert_eq!(sysctl(&sb, Ns::Host, "bridge/bridge-nf-call-iptables"), bnf);
        check_cases(&sb, &format!("bridge-nf-call-iptables={bnf}"), &cases);
    }

    // What is not published stays closed, even to a neighbour that routes
    // the container subnet through the host.
    let route = ["ip", "route", "add", "10.66.1.0/24", "via", "192.0.2.2"];
    sb.run_ok(Ns::Neighbour, &route);
    let direct = [
        case(At(Ns::Neighbour), "tcp", "10.66.1.2:80", None),
        case(At(Ns::Neighbour), "udp", "10.66.1.2:80", None),
        case(At(Ns::Neighbour), "tcp", "10.66.1.2:81", None),
    ];
    check_cases(&sb, "unpublished ports", &direct);
}

fn case<'a>(from: Src<'a>, proto: &'a str, addr: &'a str, expect: Option<&'a str>) -> Case<'a> {
    Case {
        from,
        proto,
        addr,
        expect,
    }
}

fn cases() -> Vec<Case<'static>> {
    let (gw, far) = (Some("10.66.1.1"), Some("10.66.2.2"));
    let mut cases = Vec::new();
    for proto in ["tcp", "udp"] {
        cases.extend([
            // 1: the LAN and the WAN, through any host address; real client address.
            case(
                At(Ns::Neighbour),
                proto,
                "192.0.2.2:8080",
                Some("192.0.2.3"),
            ),
            case(
                At(Ns::Neighbour),
                proto,
                "192.0.2.20:8080",
                Some("192.0.2.3"),
            ),
            case(At(Ns::Wan), proto, "192.0.2.2:8080", Some("203.0.113.10")),
            // 2: the host itself, through its addresses and loopback.
            case(At(Ns::Host), proto, "192.0.2.2:8080", Some("192.0.2.2")),
            // The kernel's source for a secondary address is the primary one.
            case(At(Ns::Host), proto, "192.0.2.20:8080", Some("192.0.2.2")),
            case(At(Ns::Host), proto, "10.66.1.1:8080", gw),
            case(At(Ns::Host), proto, "127.0.0.1:8080", gw),
            // 3: containers of the same network (hairpin, masqueraded) ...
            case(Container("peer"), proto, "192.0.2.2:8080", gw),
            case(Container("peer"), proto, "10.66.1.1:8080", gw),
            case(Container("srv"), proto, "192.0.2.2:8080", gw),
            case(Container("srv"), proto, "10.66.1.1:8080", gw),
            // ... and of another network, through the host's address or their own gateway.
            case(Container("far"), proto, "192.0.2.2:8080", far),
            case(Container("far"), proto, "10.66.2.1:8080", far),
            // An internal network has no way out, not even through DNAT.
            case(Container("inner"), proto, "10.66.3.1:8080", None),
            case(Container("inner"), proto, "192.0.2.2:8080", None),
        ]);
    }
    cases.extend([
        // Bound to 192.0.2.2: only that address answers, for every client.
        case(
            At(Ns::Neighbour),
            "tcp",
            "192.0.2.2:8081",
            Some("192.0.2.3"),
        ),
        case(At(Ns::Neighbour), "tcp", "192.0.2.20:8081", None),
        case(At(Ns::Host), "tcp", "192.0.2.2:8081", Some("192.0.2.2")),
        case(At(Ns::Host), "tcp", "127.0.0.1:8081", None),
        case(Container("peer"), "tcp", "192.0.2.2:8081", gw),
        case(Container("peer"), "tcp", "10.66.1.1:8081", None),
        case(Container("far"), "tcp", "192.0.2.2:8081", far),
        case(Container("far"), "tcp", "10.66.2.1:8081", None),
        // Published for tcp only.
        case(At(Ns::Neighbour), "udp", "192.0.2.2:8081", None),
    ]);
    cases
}

on_both_backends!(reach);
