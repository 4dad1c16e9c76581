//! Choosing the backend: switching moves pont's rules from one to the other;
//! an unknown name, a missing tool and a reload with nothing to reload are
//! refused with one clear line, and change nothing.

use std::os::unix::fs::symlink;
use std::path::Path;

use testkit::Ns;

use crate::lab::*;
use crate::probe::*;

fn other(backend: &str) -> &'static str {
    if backend == "nftables" {
        "iptables"
    } else {
        "nftables"
    }
}

/// Where pont's rules are: (nftables tables, iptables chains, ebtables chain).
fn rules_where(lab: &Lab) -> (bool, bool, bool) {
    let tables = lab.host("nft list tables");
    let nft = tables.contains("table inet pont") || tables.contains("table bridge pont");
    let ipt = lab.host("iptables-save").contains("PONT-");
    let eb = lab.host("ebtables-save").contains("PONT-");
    (nft, ipt, eb)
}

#[track_caller]
fn assert_rules_in(lab: &Lab, backend: &str) {
    let want = if backend == "nftables" {
        (true, false, false)
    } else {
        (false, true, true)
    };
    assert_eq!(
        rules_where(lab),
        want,
        "rules in (nft, iptables, ebtables) for {backend}"
    );
    // Commands without --firewall use the backend the state remembers.
    let shown = lab.sb.pont_ok(&["firewall", "show"]);
    assert!(
        shown.starts_with(&format!("# backend: {backend}\n")),
        "{shown}"
    );
}

fn switching_moves_the_rules(backend: &'static str) {
    let lab = Lab::new(backend);
    let _wan = lab.servers(&[(Ns::Wan, WAN)]);
    lab.network("web", "10.88.1.0/24", &[]);
    lab.network("iso", "10.88.2.0/24", &["--opt", "icc=false"]);
    let a = lab.service("a", "web", &[]);
    let i1 = lab.service("i1", "iso", &[]);
    lab.service("i2", "iso", &[]);
    assert_rules_in(&lab, backend);
    let works = || {
        lab.expect(vec![
            lab.reach(From::C("a"), WAN, ALL),
            lab.reach(From::C("i1"), WAN, ALL),
            lab.blocked(From::C("a"), &i1, ALL),
            lab.blocked(From::C("i1"), &a, ALL),
            lab.blocked(From::C("i2"), &i1, ALL),
        ])
    };
    for to in [other(backend), backend] {
        lab.sb.pont_ok(&["--firewall", to, "ps"]);
        assert_rules_in(&lab, to);
        works();
    }
}

#[track_caller]
fn assert_one_line(err: &str, wanted: &str) {
    assert!(err.contains(wanted), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
}

fn unknown_backend_is_refused(backend: &'static str) {
    let lab = Lab::host_only(backend);
    lab.network("web", "10.88.3.0/24", &[]);
    let before = lab.sb.host_snapshot();
    let settings = std::fs::read_to_string(lab.sb.root().join("settings.json")).unwrap();
    let wanted = "unknown firewall backend 'ipchains': expected nftables or iptables";
    for args in [
        &["network", "ls"][..],
        &["network", "create", "x", "--subnet", "10.88.4.0/24"],
    ] {
        let mut flag = vec!["--firewall", "ipchains"];
        flag.extend_from_slice(args);
        let out = lab.sb.pont(&flag);
        assert!(!out.status.success());
        assert_one_line(&String::from_utf8_lossy(&out.stderr), wanted);
        let mut cmd = lab.sb.pont_command(args);
        cmd.env("PONT_FIREWALL", "ipchains");
        let out = lab.sb.output(cmd);
        assert!(!out.status.success());
        assert_one_line(&String::from_utf8_lossy(&out.stderr), wanted);
    }
    assert_eq!(lab.sb.host_snapshot(), before, "{backend}");
    let now = std::fs::read_to_string(lab.sb.root().join("settings.json")).unwrap();
    assert_eq!(now, settings);
    assert_eq!(lab.pont_ok(&["network", "ls", "-q"]), "web\n");
}

/// A backend whose tool is missing: a message naming the package, nothing made.
fn missing_tool_is_named(backend: &'static str) {
    let lab = Lab::host_only(backend);
    let before = lab.sb.host_snapshot();
    // A PATH with `ip` (for `ip netns exec`) and only the other backend's tools.
    let bin = lab.sb.root().parent().unwrap().join(format!(
        "{}-bin-{}",
        lab.sb.netns_name(Ns::Host),
        backend
    ));
    std::fs::create_dir_all(&bin).unwrap();
    let tools: &[&str] = if backend == "nftables" {
        &[
            "iptables",
            "iptables-save",
            "iptables-restore",
            "ebtables-save",
            "ebtables-restore",
        ]
    } else {
        &["nft"]
    };
    for tool in ["ip"].iter().chain(tools) {
        let path = which(tool);
        symlink(&path, bin.join(tool)).unwrap();
    }
    let mut cmd = lab
        .sb
        .pont_command(&["--firewall", backend, "network", "create", "web"]);
    cmd.env("PATH", &bin);
    let out = lab.sb.output(cmd);
    let _ = std::fs::remove_dir_all(&bin);
    assert!(!out.status.success(), "{out:?}");
    let package = if backend == "nftables" {
        "nftables"
    } else {
        "iptables"
    };
    assert_one_line(
        &String::from_utf8_lossy(&out.stderr),
        &format!("firewall backend {backend} is not usable here"),
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("install the {package} package")),
        "{out:?}"
    );
    assert_eq!(lab.sb.host_snapshot(), before, "{backend}");
    assert!(!lab.sb.root().join("settings.json").exists());
    assert!(!lab.sb.root().join("networks/web.json").exists());
}

fn which(tool: &str) -> std::path::PathBuf {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(tool))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{tool} is not installed"))
}

fn reload_with_no_networks_is_refused(backend: &'static str) {
    let lab = Lab::host_only(backend);
    let pristine = lab.sb.host_snapshot();
    let err = lab.pont_err(&["firewall", "reload"]);
    assert_one_line(&err, "nothing to reload: pont has no networks");
    assert_eq!(lab.sb.host_snapshot(), pristine, "{backend}");
    // And after the last network is gone.
    lab.network("web", "10.88.5.0/24", &[]);
    lab.pont_ok(&["network", "rm", "web"]);
    let after = lab.sb.host_snapshot();
    let err = lab.pont_err(&["firewall", "reload"]);
    assert_one_line(&err, "nothing to reload");
    assert_eq!(lab.sb.host_snapshot(), after, "{backend}");
}

on_both_backends!(
    switching_moves_the_rules,
    unknown_backend_is_refused,
    missing_tool_is_named,
    reload_with_no_networks_is_refused,
);
