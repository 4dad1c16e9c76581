//! The keeper, the process a pont command that deleted rules leaves behind
//! to close its netfilter socket once the namespace is quiet: it holds
//! nothing of the command (no pipe a caller reads to its end, no file or
//! directory of the state root) and ends, however the commands around it go.

mod common;
mod support;

use std::os::unix::fs::MetadataExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use support::assert_consistent;

/// The keepers in the sandbox host's network namespace.
fn keepers(sb: &Sandbox) -> Vec<u32> {
    let netns = std::fs::metadata(format!("/run/netns/{}", sb.netns_name(Ns::Host)))
        .expect("the sandbox host's namespace")
        .ino();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let ns = std::fs::metadata(format!("/proc/{pid}/ns/net")).map(|m| m.ino());
            comm.trim() == "pont-keeper" && ns.is_ok_and(|ino| ino == netns)
        })
        .collect()
}

/// What a live keeper holds: its descriptors' targets and its directory.
fn holdings(pid: u32) -> Option<(Vec<String>, String)> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    let targets = fds
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|t| t.to_string_lossy().into_owned())
        .collect();
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
    Some((targets, cwd.to_string_lossy().into_owned()))
}

/// `pont ARGS` with its output read through pipes to their end, as `$(...)`
/// and Python's subprocess read it, run from the state root; how long until
/// both pipes closed.
fn through_pipes(sb: &Sandbox, args: &[&str]) -> Duration {
    let mut cmd = sb.pont_command(args);
    cmd.current_dir(sb.root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let out = cmd.output().expect("pont runs");
    assert!(out.status.success(), "pont {args:?}: {out:?}");
    start.elapsed()
}

#[test]
fn a_keeper_holds_nothing_of_the_command_that_left_it() {
    let sb = host_only();
    sb.pont_ok(&["--firewall", "nftables", "network", "create", "web"]);
    let mut seen = None;
    // A keeper lives 150 ms after the last command: look for one a few times.
    for i in 0..5 {
        let name = format!("c{i}");
        run_publishing_8080(&sb, &name);
        let took = through_pipes(&sb, &["rm", "-f", &name]);
        assert!(
            took < Duration::from_secs(5),
            "pont rm held its pipes {took:?}"
        );
        if let Some(found) = keepers(&sb).into_iter().find_map(holdings) {
            seen = Some(found);
            break;
        }
    }
    let (fds, cwd) = seen.expect("no keeper seen after five pont rm");
    assert!(
        fds.iter().all(|t| t.starts_with("socket:[")),
        "a keeper holds more than sockets: {fds:?}"
    );
    assert_eq!(cwd, "/", "a keeper's directory");
    assert_consistent(&sb, "with a keeper about");
}

#[test]
fn keepers_end_while_commands_keep_coming() {
    let sb = host_only();
    sb.pont_ok(&["--firewall", "nftables", "network", "create", "web"]);
    run_publishing_8080(&sb, "a");
    // One that deletes, so that a keeper starts; then a command every 50
    // ms, each socket handed to it, for longer than a keeper may live.
    sb.pont_ok(&["port", "rm", "a", "8080:80"]);
    let first = keepers(&sb);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(7) {
        sb.pont_ok(&["ps"]);
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<u32> = keepers(&sb)
        .into_iter()
        .filter(|k| first.contains(k))
        .collect();
    assert_eq!(first.len(), 1, "keepers after a deletion: {first:?}");
    assert!(
        left.is_empty(),
        "keeper {left:?} lived through 7 s of commands"
    );
    sb.pont_ok(&["rm", "-f", "a"]);
    assert!(
        testkit::wait_until(Duration::from_secs(6), || keepers(&sb).is_empty()),
        "a keeper outlived the last command by 6 s"
    );
}

/// A detached container on network `web` that publishes host port 8080.
fn run_publishing_8080(sb: &Sandbox, name: &str) {
    let argv = ["run", "-d", "--name", name, "--network", "web"];
    sb.pont_ok(&[&argv[..], &["-p", "8080:80", "--", "sleep", "100"]].concat());
}
