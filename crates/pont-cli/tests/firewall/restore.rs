//! Behaviours 7, 8 and 9: rebuilding after a flush, `firewall show`, and
//! create-then-remove leaving the host's rules as they were.

use crate::lab::*;

/// The two ways an admin wipes rules: everything nftables holds (iptables-nft
/// and ebtables-nft included), or iptables' filter and nat tables.
const FLUSHES: [&str; 2] = ["nft flush ruleset", "iptables -F && iptables -t nat -F"];

/// Networks of every kind with containers and a published port, plus a
/// network that existed and was removed; returns the removed one's bridge.
fn populate(lab: &Lab) -> String {
    lab.network("web", "10.87.1.0/24", &[]);
    lab.network("iso", "10.87.2.0/24", &["--internal", "--opt", "icc=false"]);
    lab.network("gone", "10.87.3.0/24", &[]);
    lab.idle("api", "web");
    lab.pont_ok(&["port", "add", "api", "8080:80", "127.0.0.1:5353:53/udp"]);
    lab.idle("i1", "iso");
    lab.idle("i2", "iso");
    let doc = lab.pont_ok(&["network", "inspect", "gone"]);
    let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
    lab.pont_ok(&["network", "rm", "gone"]);
    doc["bridge"].as_str().unwrap().to_string()
}

fn reload_rebuilds_exactly_the_rules(backend: &'static str) {
    let lab = Lab::host_only(backend);
    let gone = populate(&lab);
    let before = lab.ruleset();
    assert!(
        !before.contains(&gone),
        "{backend}: rules of a removed network"
    );
    for flush in FLUSHES {
        lab.host(flush);
        let out = lab.pont_ok(&["firewall", "reload"]);
        assert_eq!(out, format!("reloaded {backend} rules for 2 network(s)\n"));
        assert_eq!(
            normalised(&lab.ruleset()),
            normalised(&before),
            "{backend}: reload after `{flush}`"
        );
        lab.pont_ok(&["firewall", "reload"]);
        assert_eq!(
            normalised(&lab.ruleset()),
            normalised(&before),
            "{backend}: a second reload after `{flush}`"
        );
    }
}

fn any_command_notices_a_flush(backend: &'static str) {
    let lab = Lab::host_only(backend);
    populate(&lab);
    let before = lab.ruleset();
    for flush in FLUSHES {
        for command in [&["ps"][..], &["network", "ls"], &["inspect", "api"]] {
            lab.host(flush);
            lab.pont_ok(command);
            assert_eq!(
                normalised(&lab.ruleset()),
                normalised(&before),
                "{backend}: `pont {command:?}` after `{flush}`"
            );
        }
    }
}

/// After a flush, stopping and removing everything works without a word on
/// stderr and leaves nothing of pont's: links, addresses and routes as before
/// pont, no rule of pont's, and (where the flush left them) the others' rules
/// as they were.
fn teardown_after_a_flush_is_quiet_and_complete(backend: &'static str) {
    for flush in FLUSHES {
        let lab = Lab::host_only(backend);
        lab.materialise_iptables_tables();
        let pristine = lab.sb.host_snapshot();
        let pristine_rules = lab.ruleset();
        populate(&lab);
        lab.host(flush);
        for args in [
            &["stop", "-t", "0", "api"][..],
            &["rm", "api"],
            &["rm", "-f", "i1", "i2"],
            &["network", "rm", "web", "iso"],
        ] {
            let out = lab.pont(args);
            assert!(out.status.success(), "{backend}: {args:?}: {out:?}");
            assert_eq!(
                String::from_utf8_lossy(&out.stderr),
                "",
                "{backend}: {args:?} after `{flush}`"
            );
        }
        let links = |snapshot: &str| snapshot.split("## nftables").next().unwrap().to_string();
        let mut now = String::new();
        testkit::wait_until(std::time::Duration::from_secs(5), || {
            now = lab.sb.host_snapshot();
            links(&now) == links(&pristine)
        });
        assert_eq!(links(&now), links(&pristine), "{backend}: after `{flush}`");
        let rules = lab.ruleset();
        let left: Vec<&str> = rules
            .lines()
            .filter(|l| {
                ["pont", "PONT", "br-", "veth"]
                    .iter()
                    .any(|w| l.contains(w))
            })
            .collect();
        assert!(left.is_empty(), "{backend}: left after `{flush}`: {left:?}");
        if flush.starts_with("iptables") {
            assert_eq!(normalised(&rules), normalised(&pristine_rules), "{backend}");
        }
    }
}

/// Every group of rules names the network or container it belongs to.
fn show_labels_every_group(backend: &'static str) {
    let lab = Lab::host_only(backend);
    // So that the nftables backend has its iptables FORWARD shim to show too.
    lab.host("iptables -P FORWARD DROP");
    lab.network("web", "10.87.4.0/24", &[]);
    lab.network("iso", "10.87.5.0/24", &["--opt", "icc=false"]);
    lab.idle("api", "web");
    lab.pont_ok(&["port", "add", "api", "8080:80"]);
    lab.idle("i1", "iso");
    let inspect =
        |what: &[&str]| -> serde_json::Value { serde_json::from_str(&lab.pont_ok(what)).unwrap() };
    let web = inspect(&["network", "inspect", "web"])["bridge"].to_string();
    let iso = inspect(&["network", "inspect", "iso"])["bridge"].to_string();
    let i1 = inspect(&["inspect", "i1"])["networks"]["iso"]["host_interface"].to_string();
    let (web, iso, i1) = (
        web.trim_matches('"'),
        iso.trim_matches('"'),
        i1.trim_matches('"'),
    );
    let shown = lab.pont_ok(&["firewall", "show"]);
    assert!(
        shown.starts_with(&format!("# backend: {backend}\n")),
        "{shown}"
    );
    assert!(shown.contains("-A FORWARD -j PONT-ACCEPT"), "{shown}");
    let lines_with = |needle: &str| {
        let lines: Vec<&str> = shown.lines().filter(|l| l.contains(needle)).collect();
        assert!(!lines.is_empty(), "{backend}: {needle} not shown:\n{shown}");
        lines
    };
    // Each line naming a bridge, port or address carries its label, or sits
    // under a heading that does (ebtables has no comments).
    for (needle, label) in [
        (web, "network web"),
        (iso, "network iso"),
        (i1, "network iso"),
        ("10.87.4.2", "container api"),
    ] {
        for line in lines_with(needle) {
            let heading = heading_of(&shown, line);
            assert!(
                line.contains(label) || heading.is_some_and(|h| h.contains(label)),
                "{backend}: `{line}` is not labelled {label}:\n{shown}"
            );
        }
    }
}

/// The `# ...` line a listing line sits under, if any.
fn heading_of<'a>(shown: &'a str, line: &str) -> Option<&'a str> {
    let lines: Vec<&'a str> = shown.lines().collect();
    let at = lines.iter().position(|l| *l == line)?;
    lines[..at]
        .iter()
        .rev()
        .find(|l| l.starts_with("# "))
        .copied()
}

/// Creating and removing networks, containers and ports leaves the host (its
/// links, addresses, routes and every rule) exactly as it was.
fn create_then_remove_leaves_rules_as_before(backend: &'static str) {
    let lab = Lab::host_only(backend);
    lab.materialise_iptables_tables();
    let pristine = lab.sb.host_snapshot();
    lab.network("web", "10.87.6.0/24", &[]);
    lab.pont_ok(&[
        "run",
        "-d",
        "--name",
        "a",
        "--network",
        "web",
        "-p",
        "8080:80",
        "--",
        "sleep",
        "600",
    ]);
    lab.pont_ok(&["rm", "-f", "a"]);
    lab.pont_ok(&["network", "rm", "web"]);
    lab.assert_snapshot(&pristine, "first network and container removed");

    lab.network("keep", "10.87.7.0/24", &[]);
    lab.idle("k", "keep");
    let before = lab.sb.host_snapshot();
    lab.network("iso", "10.87.8.0/24", &["--internal", "--opt", "icc=false"]);
    lab.idle("i", "iso");
    lab.pont_ok(&[
        "run",
        "-d",
        "--name",
        "j",
        "--network",
        "keep",
        "-p",
        "9090:80/udp",
        "--",
        "sleep",
        "600",
    ]);
    lab.pont_ok(&["port", "add", "k", "127.0.0.1:7070:70"]);
    lab.pont_ok(&["port", "rm", "k", "127.0.0.1:7070:70"]);
    lab.pont_ok(&["rm", "-f", "i", "j"]);
    lab.pont_ok(&["network", "rm", "iso"]);
    lab.assert_snapshot(
        &before,
        "network, containers and ports removed beside others",
    );
}

/// Packets dropped so far by the rule that keeps an internal network's
/// containers off the host's addresses.
fn internal_input_drops(lab: &Lab, bridge: &str) -> u64 {
    let (listing, wanted) = match lab.backend {
        "nftables" => (
            lab.host("nft list chain inet pont input"),
            ["iifname @internal_bridges counter", " drop"],
        ),
        _ => (
            lab.host("iptables-save -c -t filter"),
            ["-A PONT-INPUT -i ", "-j DROP"],
        ),
    };
    let line = listing
        .lines()
        .find(|l| {
            wanted.iter().all(|w| l.contains(w))
                && (lab.backend == "nftables" || l.contains(bridge))
        })
        .unwrap_or_else(|| panic!("no drop rule for {bridge}:\n{listing}"));
    // nft: "... counter packets N bytes M drop"; iptables-save -c: "[N:M] -A ..."
    let n = match line.split_once("packets ") {
        Some((_, rest)) => rest.split(' ').next(),
        None => line.trim_start_matches('[').split(':').next(),
    };
    n.and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no counter in `{line}`"))
}

/// Making and removing another network changes only that network's rules:
/// the counters of every other rule keep counting (a full rewrite would
/// reset them, and its cost would grow with the number of networks).
fn network_changes_touch_only_their_own_rules(backend: &'static str) {
    let lab = Lab::host_only(backend);
    lab.network("vault", "10.87.9.0/24", &["--internal"]);
    lab.idle("i", "vault");
    let bridge = json(&lab.pont_ok(&["network", "inspect", "vault"]))["bridge"]
        .as_str()
        .unwrap()
        .to_string();
    let out = lab.in_container(
        "i",
        &["ping", "-n", "-q", "-c2", "-i0.2", "-W0.3", "10.87.9.1"],
    );
    assert!(
        !out.status.success(),
        "{backend}: the gateway answered an internal container"
    );
    let dropped = internal_input_drops(&lab, &bridge);
    assert!(dropped >= 2, "{backend}: {dropped} packets counted");
    lab.network("other", "10.87.10.0/24", &[]);
    lab.network(
        "more",
        "10.87.11.0/24",
        &["--internal", "--opt", "icc=false"],
    );
    lab.pont_ok(&["network", "rm", "other", "more"]);
    assert_eq!(
        internal_input_drops(&lab, &bridge),
        dropped,
        "{backend}: counters reset"
    );
}

on_both_backends!(
    reload_rebuilds_exactly_the_rules,
    any_command_notices_a_flush,
    teardown_after_a_flush_is_quiet_and_complete,
    show_labels_every_group,
    create_then_remove_leaves_rules_as_before,
    network_changes_touch_only_their_own_rules,
);
