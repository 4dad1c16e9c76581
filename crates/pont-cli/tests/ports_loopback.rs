//! Issue 4, behaviour 4: a mapping bound to 127.0.0.1 answers only on the
//! host. Neither a LAN neighbour sending to 127.0.0.1 at the host's MAC
//! (crafted frames, or a route for 127.0.0.1 via the host) nor a container
//! sending to 127.0.0.1 at its gateway's MAC gets an answer, and
//! `route_localnet` is never on for `all` or `default`.

mod common;
#[macro_use]
mod ports_support;

use ports_support::*;
use Src::{Container, Ns as At};

fn loopback_only(backend: Backend) {
    let sb = lab(backend);
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.66.4.0/24"]);
    // 7070 on loopback only; 7071 everywhere, as the control that the crafted
    // packets themselves are right.
    let publish = ["-p", "127.0.0.1:7070:80", "-p", "7071:81"];
    run_server(&sb, "srv", "web", &[80, 81], &publish);
    run_idle(&sb, "peer", "web");
    assert_rules_in(&sb, backend);
    // A host service on loopback that containers must not reach either.
    let _host_service = sb.spawn_peer_reporter(Ns::Host, "127.0.0.1:7072");

    let gw = Some("10.66.4.1");
    let cases = [
        Case {
            from: At(Ns::Host),
            proto: "tcp",
            addr: "127.0.0.1:7070",
            expect: gw,
        },
        Case {
            from: At(Ns::Host),
            proto: "tcp",
            addr: "192.0.2.2:7070",
            expect: None,
        },
        Case {
            from: At(Ns::Neighbour),
            proto: "tcp",
            addr: "192.0.2.2:7070",
            expect: None,
        },
        Case {
            from: Container("peer"),
            proto: "tcp",
            addr: "10.66.4.1:7070",
            expect: None,
        },
    ];
    check_cases(&sb, "127.0.0.1:7070", &cases);

    // Crafted SYNs from the neighbour to the host's MAC, and from a container
    // to its gateway's MAC: the bridge has route_localnet, so only pont's
    // drop keeps the latter from the host's loopback. Each first is the
    // control that the crafted SYN itself is right. All are sent at once:
    // "nothing" takes the whole wait.
    let host_mac = mac_of(&sb, Ns::Host, "uplink0");
    let bridge = bridge_of(&sb, "web");
    let gw_mac = mac_of(&sb, Ns::Host, &bridge);
    let peer_ip = ip_of(&sb, "peer", "web");
    let lan = (At(Ns::Neighbour), host_mac.as_str(), "192.0.2.3");
    let peer = (Container("peer"), gw_mac.as_str(), peer_ip.as_str());
    let syns = [
        (lan, "192.0.2.2:7071", "synack"),
        (lan, "127.0.0.1:7070", "nothing"),
        (lan, "127.0.0.1:7072", "nothing"),
        (peer, "10.66.4.1:7071", "synack"),
        (peer, "127.0.0.1:7070", "nothing"),
        (peer, "127.0.0.1:7072", "nothing"),
    ];
    let answers: Vec<String> = std::thread::scope(|s| {
        let sent: Vec<_> = syns
            .iter()
            .map(|((from, mac, src), dst, _)| {
                let sb = &sb;
                s.spawn(move || raw_syn(sb, *from, "eth0", mac, src, dst))
            })
            .collect();
        sent.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for (((from, _, _), dst, expected), got) in syns.iter().zip(&answers) {
        assert_eq!(got, expected, "crafted SYN from {from:?} to {dst}");
    }

    // A neighbour that routes 127.0.0.1 to the host (its own loopback rule
    // moved behind the route, route_localnet on so it may send such packets).
    for cmd in [
        "sysctl -qw net.ipv4.conf.all.route_localnet=1",
        "ip rule add pref 10 to 127.0.0.1/32 lookup 100",
        "ip rule del pref 0 lookup local",
        "ip rule add pref 100 lookup local",
        "ip route add 127.0.0.1/32 via 192.0.2.2 dev eth0 table 100",
    ] {
        sb.run_ok(Ns::Neighbour, &cmd.split(' ').collect::<Vec<_>>());
    }
    let route = sb.run_ok(Ns::Neighbour, &["ip", "route", "get", "127.0.0.1"]);
    assert!(route.contains("via 192.0.2.2 dev eth0"), "{route}");
    let routed = [
        Case {
            from: At(Ns::Neighbour),
            proto: "tcp",
            addr: "127.0.0.1:7070",
            expect: None,
        },
        Case {
            from: At(Ns::Neighbour),
            proto: "udp",
            addr: "127.0.0.1:7070",
            expect: None,
        },
    ];
    check_cases(&sb, "routed to 127.0.0.1", &routed);

    // The server saw the host's one connection to 7070 and nothing else.
    let to_7070: Vec<String> = server_log(&sb, "srv")
        .into_iter()
        .filter(|l| l.starts_with("tcp 80 ") || l.starts_with("udp 80 "))
        .collect();
    assert_eq!(to_7070.len(), 1, "{to_7070:?}");
    assert!(to_7070[0].starts_with("tcp 80 10.66.4.1 "), "{to_7070:?}");
    let host_service_peers = testkit::reported_peers(&_host_service);
    assert!(host_service_peers.is_empty(), "{host_service_peers:?}");

    for conf in ["all", "default", "uplink0"] {
        let value = sysctl(&sb, Ns::Host, &format!("ipv4/conf/{conf}/route_localnet"));
        assert_eq!(value, "0", "route_localnet on {conf}");
    }
    let on_bridge = sysctl(&sb, Ns::Host, &format!("ipv4/conf/{bridge}/route_localnet"));
    assert_eq!(
        on_bridge, "1",
        "pont's bridge carries the host's loopback clients"
    );
}

on_both_backends!(loopback_only);
