//! The iptables backend's per-container changes (made over nfnetlink on
//! iptables-nft 1.8.9) beside an admin's hand in the same tables: rules an
//! admin adds to or deletes from pont's chains, references into them, and a
//! save and restore of the tables. Each ends with the firewall exactly as a
//! full rewrite from the records makes it.

mod common;
#[macro_use]
#[allow(unused_macros)]
mod ports_support;
mod support;

use ports_support::*;
use support::assert_consistent;

/// iptables-save and ebtables-save of the sandbox host, counters and
/// comments left out, sorted: rules of one chain whose order does not
/// matter may come in another after a rewrite.
fn saved(sb: &Sandbox) -> Vec<String> {
    let ipt = sb.run_ok(Ns::Host, &["iptables-save"]);
    let ebt = sb.run_ok(Ns::Host, &["ebtables-save"]);
    let mut lines: Vec<String> = ipt
        .lines()
        .chain(ebt.lines())
        .filter(|l| !l.starts_with('#'))
        .map(|l| match l.split_once(" [") {
            Some((chain, _)) if l.starts_with(':') => chain.to_string(),
            _ => l.to_string(),
        })
        .collect();
    lines.sort();
    lines
}

/// Panics unless `pont firewall reload` (a rewrite from the records) would
/// change nothing, and `pont system check` agrees.
fn assert_rules_match_records(sb: &Sandbox, why: &str) {
    let before = saved(sb);
    sb.pont_ok(&["firewall", "reload"]);
    let after = saved(sb);
    let gone: Vec<&String> = before.iter().filter(|l| !after.contains(l)).collect();
    let came: Vec<&String> = after.iter().filter(|l| !before.contains(l)).collect();
    assert!(
        gone.is_empty() && came.is_empty(),
        "{why}: the rules were not what the records say; a rewrite deleted \
         {gone:#?}\nand added {came:#?}"
    );
    assert_consistent(sb, why);
}

fn sh(sb: &Sandbox, script: &str) -> String {
    sb.run_ok(Ns::Host, &["sh", "-c", script])
}

fn nat_rules(sb: &Sandbox) -> String {
    sb.run_ok(Ns::Host, &["iptables", "-t", "nat", "-S"])
}

/// The answer to a TCP request from the host to 127.0.0.1:PORT (through
/// the OUTPUT jump into PONT-DNAT), if any.
fn from_host(sb: &Sandbox, port: u16) -> Option<String> {
    seen(sb, Src::Ns(Ns::Host), "tcp", &format!("127.0.0.1:{port}"))
}

/// An admin's jump into the chain of one of pont's port blocks (from a
/// built-in chain, where pont never deletes anything) made the removal of
/// that block's last mapping fail: the block's chain could not be deleted
/// (EBUSY), natively or by the rewrite after it. On `port rm` that was an
/// error; on a container's exit the monitor's error went nowhere, the
/// container's DNAT rules stayed, and the next container given its address
/// got the traffic of its removed ports, while `system check` said all was
/// well.
#[test]
fn an_admins_jump_into_a_port_block_keeps_no_removed_port_alive() {
    let sb = host_lab(Backend::Iptables);
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.91.0.0/24"]);
    run_server(&sb, "a", "web", &[80], &["-p", "8080:80", "-p", "9090:80"]);
    let a_ip = ip_of(&sb, "a", "web");
    assert_eq!(from_host(&sb, 8080).as_deref(), Some("10.91.0.1"));
    // 8080 is in the block of ports 7936-8191.
    sh(
        &sb,
        "iptables -t nat -A PREROUTING -p tcp --dport 5555 -j PONT-DNAT-TCP-31",
    );

    sb.pont_ok(&["port", "rm", "a", "8080:80"]);
    assert_eq!(from_host(&sb, 8080), None, "8080 unpublished");
    sb.pont_ok(&["port", "add", "a", "8080:80"]);
    sb.pont_ok(&["rm", "-f", "a"]);
    let left = nat_rules(&sb);
    assert!(
        !left.contains("container a"),
        "a's rules outlived it:\n{left}"
    );

    // The next container on the network gets a's address.
    run_server(&sb, "c", "web", &[80], &[]);
    assert_eq!(ip_of(&sb, "c", "web"), a_ip);
    assert_eq!(from_host(&sb, 8080), None, "a's removed port reaches c");
    assert!(
        nat_rules(&sb).contains("-A PREROUTING -p tcp -m tcp --dport 5555 -j PONT-DNAT-TCP-31"),
        "the admin's rule is not pont's to delete"
    );
    assert_rules_match_records(&sb, "after the admin's jump");
    // The block in use again: through its chain, the admin's jump included.
    sb.pont_ok(&["port", "add", "c", "8080:80"]);
    assert_eq!(from_host(&sb, 8080).as_deref(), Some("10.91.0.1"));
    assert_rules_match_records(&sb, "after the block's chain was used again");
}

/// Rules of pont's that an admin deleted by hand: the native change finds
/// them missing, and the rewrite it falls back to leaves the firewall as
/// the records say, the admin's own rules beside pont's untouched. (Rules
/// an admin puts into pont's chains other than PONT-USER last until the
/// next rewrite, which flushes those chains.)
#[test]
fn rules_deleted_or_added_by_an_admin_end_as_the_records_say() {
    let sb = host_lab(Backend::Iptables);
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.92.0.0/24"]);
    sb.pont_ok(&[
        "network",
        "create",
        "iso",
        "--subnet",
        "10.93.0.0/24",
        "--opt",
        "icc=false",
    ]);
    run_server(&sb, "a", "web", &[80], &["-p", "8080:80", "-p", "8081:80"]);
    run_server(&sb, "b", "iso", &[80], &["-p", "8180:80/udp"]);
    run_idle(&sb, "b2", "iso");
    let b_ip = ip_of(&sb, "b", "iso");
    let admins = [
        "iptables -t nat -I PREROUTING 1 -p tcp --dport 6000 -j REDIRECT --to-ports 7000",
        "iptables -I FORWARD 1 -s 10.9.9.9/32 -j DROP",
        "iptables -A PONT-USER -s 10.9.9.8/32 -j DROP",
    ];
    for rule in admins {
        sh(&sb, rule);
    }
    let a_ip = ip_of(&sb, "a", "web");
    sh(
        &sb,
        &format!(
            "iptables -t nat -D PONT-DNAT-TCP-31 -p tcp -m tcp --dport 8081 -m comment \
             --comment 'container a' -j DNAT --to-destination {a_ip}:80"
        ),
    );
    sb.pont_ok(&["port", "rm", "a", "8081:80"]);
    assert_rules_match_records(&sb, "port rm of a rule the admin deleted");
    assert_eq!(from_host(&sb, 8080).as_deref(), Some("10.92.0.1"));

    let eb = sb.run_ok(Ns::Host, &["ebtables-save"]);
    let spoof = eb
        .lines()
        .find(|l| l.contains(&format!("--ip-src ! {b_ip} ")))
        .unwrap_or_else(|| panic!("no anti-spoofing rule of b:\n{eb}"));
    sh(
        &sb,
        &format!("ebtables -t nat -D {}", &spoof["-A ".len()..]),
    );
    sb.pont_ok(&["rm", "-f", "a", "b"]);
    assert_rules_match_records(&sb, "rm of containers whose rules the admin deleted");
    let now = sh(&sb, "iptables-save");
    for listed in [
        "-A PREROUTING -p tcp -m tcp --dport 6000 -j REDIRECT --to-ports 7000",
        "-A FORWARD -s 10.9.9.9/32 -j DROP",
        "-A PONT-USER -s 10.9.9.8/32 -j DROP",
    ] {
        assert!(now.contains(listed), "the admin's {listed} is gone:\n{now}");
    }
}

/// `iptables-save | iptables-restore` (and the same for ebtables) of tables
/// that hold rules pont added natively gives the same tables, and pont goes
/// on changing them.
#[test]
fn a_saved_and_restored_firewall_is_the_same_and_pont_goes_on() {
    let sb = host_lab(Backend::Iptables);
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.94.0.0/24"]);
    sb.pont_ok(&[
        "network",
        "create",
        "iso",
        "--subnet",
        "10.95.0.0/24",
        "--opt",
        "icc=false",
    ]);
    let ports = [
        "8080:80",
        "127.0.0.1:8081:80",
        "9000-9002:80-82",
        "5353:80/udp",
        "8190-8193:80-83",
        "1:80",
        "65535:80",
    ];
    let mut args = Vec::new();
    for p in ports {
        args.extend(["-p", p]);
    }
    run_server(&sb, "a", "web", &[80, 81, 82, 83], &args);
    run_server(&sb, "b", "iso", &[80], &["-p", "8180:80"]);
    let before = saved(&sb);
    sh(&sb, "iptables-save | iptables-restore");
    sh(&sb, "ebtables-save | ebtables-restore");
    assert_eq!(saved(&sb), before, "a save and restore changed the rules");
    assert_eq!(from_host(&sb, 9001).as_deref(), Some("10.94.0.1"));
    sb.pont_ok(&["port", "rm", "a", "8190-8193:80-83", "65535:80", "8081:80"]);
    assert_eq!(from_host(&sb, 8191), None, "8191 unpublished");
    assert_eq!(from_host(&sb, 8081), None, "8081 unpublished");
    sb.pont_ok(&["rm", "-f", "b"]);
    assert_rules_match_records(&sb, "after changes to restored rules");
}
