//! Behaviours 5 and 6: the admin's chain, evaluated first and never flushed by
//! pont; rules and NAT that are not pont's keep working beside pont's.

use testkit::Ns;

use crate::lab::*;
use crate::probe::*;

/// The admin's rule, in the backend's own tool, dropping `src` to the WAN host.
fn add_admin_drop(lab: &Lab, src: &str) {
    lab.host(&match lab.backend {
        "nftables" => format!("nft add rule inet pont user ip saddr {src} ip daddr {WAN} drop"),
        _ => format!("iptables -A PONT-USER -s {src}/32 -d {WAN}/32 -j DROP"),
    });
}

/// The admin's rule accepting `src` to `dst`, a hole between two networks.
fn add_admin_accept(lab: &Lab, src: &str, dst: &str) {
    lab.host(&match lab.backend {
        "nftables" => format!("nft add rule inet pont user ip saddr {src} ip daddr {dst} accept"),
        _ => format!("iptables -A PONT-USER -s {src}/32 -d {dst}/32 -j ACCEPT"),
    });
}

/// The admin chain as the backend lists it.
fn admin_chain(lab: &Lab) -> String {
    lab.host(match lab.backend {
        "nftables" => "nft list chain inet pont user",
        _ => "iptables -S PONT-USER",
    })
}

fn admin_rules_take_effect_and_survive(backend: &'static str) {
    let lab = Lab::new(backend);
    let _servers = lab.servers(&[(Ns::Wan, WAN), (Ns::Neighbour, NEIGHBOUR)]);
    lab.network("web", "10.85.1.0/24", &[]);
    lab.network("db", "10.85.2.0/24", &[]);
    let a = lab.service("a", "web", &[]);
    lab.idle("b", "web");
    let d = lab.service("d", "db", &[]);
    add_admin_drop(&lab, &a);
    add_admin_accept(&lab, &a, &d);
    let listed = admin_chain(&lab);
    let in_effect = || {
        lab.expect(vec![
            lab.blocked(From::C("a"), WAN, ALL),
            lab.reach(From::C("b"), WAN, ALL),
            lab.reach(From::C("a"), NEIGHBOUR, ALL),
            // Evaluated before pont's drops: the admin's accept opens a hole.
            lab.reach(From::C("a"), &d, ALL),
            lab.blocked(From::C("b"), &d, ALL),
        ])
    };
    in_effect();
    lab.pont_ok(&["firewall", "reload"]);
    assert_eq!(
        admin_chain(&lab),
        listed,
        "{backend}: after firewall reload"
    );
    lab.network("tmp", "10.85.3.0/24", &["--internal", "--opt", "icc=false"]);
    lab.idle("t", "tmp");
    assert_eq!(admin_chain(&lab), listed, "{backend}: after network create");
    lab.pont_ok(&["rm", "-f", "t"]);
    lab.pont_ok(&["network", "rm", "tmp"]);
    assert_eq!(admin_chain(&lab), listed, "{backend}: after network rm");
    lab.pont_ok(&["ps"]);
    assert_eq!(
        admin_chain(&lab),
        listed,
        "{backend}: after another command"
    );
    in_effect();
}

/// With every network gone, pont keeps the admin chain that holds rules; a
/// network made again is under them at once.
fn admin_rules_outlive_the_last_network(backend: &'static str) {
    let lab = Lab::new(backend);
    let _wan = lab.servers(&[(Ns::Wan, WAN)]);
    lab.network("web", "10.85.4.0/24", &["--ip-range", "10.85.4.16/28"]);
    lab.idle("a", "web");
    add_admin_drop(&lab, "10.85.4.16");
    let listed = admin_chain(&lab);
    lab.pont_ok(&["rm", "-f", "a"]);
    lab.pont_ok(&["network", "rm", "web"]);
    assert_eq!(
        admin_chain(&lab),
        listed,
        "{backend}: after the last network"
    );
    lab.network("web", "10.85.4.0/24", &["--ip-range", "10.85.4.16/28"]);
    let a = lab.service("a", "web", &[]);
    assert_eq!(a, "10.85.4.16");
    let b = lab.service("b", "web", &[]);
    lab.expect(vec![
        lab.blocked(From::C("a"), WAN, ALL),
        lab.reach(From::C("b"), WAN, ALL),
    ]);
    let _ = b;
}

/// A FORWARD rule the admin made before pont's first network keeps working,
/// and stays where it was among the rules that are not pont's.
fn earlier_forward_rule_keeps_working(backend: &'static str) {
    let lab = Lab::new(backend);
    let _servers = lab.servers(&[(Ns::Wan, WAN), (Ns::Neighbour, NEIGHBOUR)]);
    lab.host("iptables -A FORWARD -s 10.86.1.0/24 -d 203.0.113.10/32 -j DROP");
    lab.host("iptables -A FORWARD -s 10.99.9.0/24 -j ACCEPT");
    let theirs = |lab: &Lab| {
        let text = lab.host("iptables -S FORWARD");
        let lines: Vec<String> = text
            .lines()
            .filter(|l| !l.contains("PONT-"))
            .map(String::from)
            .collect();
        lines
    };
    let before = theirs(&lab);
    lab.network("web", "10.86.1.0/24", &[]);
    lab.service("a", "web", &[]);
    lab.expect(vec![
        lab.blocked(From::C("a"), WAN, ALL),
        lab.reach(From::C("a"), NEIGHBOUR, ALL),
    ]);
    assert_eq!(
        theirs(&lab),
        before,
        "{backend}: pont changed others' rules"
    );
}

/// A bridge of someone else's on the host, with a NAT rule of its own, works
/// before and after pont starts and after pont leaves; pont's containers
/// cannot reach into it nor it into them.
fn foreign_bridge_with_own_nat_keeps_working(backend: &'static str) {
    let lab = Lab::new(backend);
    let wan = lab.servers(&[(Ns::Wan, WAN)]);
    // Its client: a pont container without a network, wired by hand.
    lab.pont_ok(&[
        "run",
        "-d",
        "--name",
        "x",
        "--network",
        "none",
        "--",
        "sleep",
        "600",
    ]);
    let pid = lab.pid("x");
    lab.host(&format!(
        "ip link add br-x type bridge && ip addr add 10.99.0.1/24 dev br-x && \
         ip link set br-x up && ip link add vx type veth peer name eth0 netns {pid} && \
         ip link set vx master br-x up"
    ));
    for cmd in [
        "ip addr add 10.99.0.2/24 dev eth0",
        "ip link set eth0 up",
        "ip route add default via 10.99.0.1",
    ] {
        let argv: Vec<&str> = cmd.split(' ').collect();
        let out = lab.in_container("x", &argv);
        assert!(out.status.success(), "{cmd}: {out:?}");
    }
    let (nat, listing) = match backend {
        "nftables" => (
            "nft add table ip xnat && \
             nft 'add chain ip xnat post { type nat hook postrouting priority srcnat; }' && \
             nft add rule ip xnat post ip saddr 10.99.0.0/24 oifname uplink0 masquerade",
            "nft -s list table ip xnat",
        ),
        _ => (
            "iptables -t nat -A POSTROUTING -s 10.99.0.0/24 -o uplink0 -j MASQUERADE",
            "iptables -t nat -S POSTROUTING | grep -v PONT-",
        ),
    };
    // Its owner routes for it, as pont does for its own networks.
    lab.sysctl("net.ipv4.ip_forward=1");
    lab.host(nat);
    let theirs = lab.host(listing);
    lab.expect(vec![lab.reach(From::C("x"), WAN, ALL)]);

    lab.network("web", "10.86.2.0/24", &[]);
    let a = lab.service("a", "web", &[]);
    lab.expect(vec![
        lab.reach(From::C("x"), WAN, ALL),
        lab.reach(From::C("a"), WAN, ALL),
        lab.blocked(From::C("x"), &a, ALL),
    ]);
    assert_eq!(
        lab.host(listing),
        theirs,
        "{backend}: pont changed their NAT"
    );
    lab.pont_ok(&["rm", "-f", "a"]);
    lab.pont_ok(&["network", "rm", "web"]);
    lab.expect(vec![lab.reach(From::C("x"), WAN, ALL)]);
    assert_eq!(
        lab.host(listing),
        theirs,
        "{backend}: pont changed their NAT"
    );
    let seen: Vec<String> = wan.iter().flat_map(testkit::reported_peers).collect();
    assert!(seen.iter().all(|p| p == HOST_IP), "{backend}: {seen:?}");
}

/// A FORWARD policy of DROP set after pont made its networks (Docker starting
/// later does this): the next pont command notices, and pont's containers
/// reach the WAN and each other again.
fn forward_drop_set_later_is_noticed(backend: &'static str) {
    let lab = Lab::new(backend);
    let _wan = lab.servers(&[(Ns::Wan, WAN)]);
    lab.network("web", "10.86.3.0/24", &[]);
    let a = lab.service("a", "web", &[]);
    lab.service("b", "web", &[]);
    lab.host("iptables -P FORWARD DROP");
    lab.pont_ok(&["ps"]);
    lab.expect(vec![
        lab.reach(From::C("a"), WAN, ALL),
        lab.reach(From::C("b"), &a, ALL),
    ]);
    assert!(
        lab.host("iptables -S FORWARD")
            .starts_with("-P FORWARD DROP\n"),
        "{backend}: the policy is not pont's to change"
    );
}

on_both_backends!(
    admin_rules_take_effect_and_survive,
    admin_rules_outlive_the_last_network,
    earlier_forward_rule_keeps_working,
    foreign_bridge_with_own_nat_keeps_working,
    forward_drop_set_later_is_noticed,
);
