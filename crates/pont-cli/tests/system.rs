//! Issue 7: `pont system check` and `pont system prune`, and a host reboot
//! (records whose processes are gone, or whose PID another process now has)
//! reconciled by the next command.

mod common;
mod support;

use std::time::Duration;

use common::*;
use support::*;

fn check(sb: &Sandbox) -> (bool, String) {
    let out = sb.pont(&["system", "check"]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn run_sleeper(sb: &Sandbox, name: &str, extra: &[&str]) {
    let mut args = vec!["run", "-d", "--name", name, "--network", "web"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "sleep", "1000"]);
    sb.pont_ok(&args);
}

fn record_path(sb: &Sandbox, name: &str) -> std::path::PathBuf {
    let id = inspect(sb, name)["id"].as_str().unwrap().to_string();
    sb.root().join("containers").join(id).join("config.json")
}

#[test]
fn check_lists_every_difference_and_prune_repairs_only_what_pont_owns() {
    let sb = host_only();
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.89.1.0/24"]);
    sb.pont_ok(&["network", "create", "lost", "--subnet", "10.89.2.0/24"]);
    sb.pont_ok(&["network", "create", "gone", "--subnet", "10.89.3.0/24"]);
    run_sleeper(&sb, "a", &["--ip", "10.89.1.7"]);
    assert_eq!(check(&sb), (true, "ok: records and kernel agree\n".into()));

    // Not pont's, though named like pont's: must be left alone.
    sb.run_ok(
        Ns::Host,
        &["ip", "link", "add", "br-0123456789ab", "type", "bridge"],
    );
    sb.run_ok(
        Ns::Host,
        &[
            "ip",
            "link",
            "add",
            "veth1234567",
            "type",
            "veth",
            "peer",
            "name",
            "other0",
        ],
    );
    // pont's, without a record: a network record deleted by hand, a stray veth.
    let lost = json(&sb.pont_ok(&["network", "inspect", "lost"]))["bridge"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::remove_file(sb.root().join("networks/lost.json")).unwrap();
    sb.run_ok(
        Ns::Host,
        &[
            "ip",
            "link",
            "add",
            "veth00000000abc",
            "type",
            "veth",
            "peer",
            "name",
            "stray0",
        ],
    );
    // Records without their kernel objects: a bridge and a container's veth deleted.
    let gone = json(&sb.pont_ok(&["network", "inspect", "gone"]))["bridge"]
        .as_str()
        .unwrap()
        .to_string();
    let veth = inspect(&sb, "a")["networks"]["web"]["host_interface"]
        .as_str()
        .unwrap()
        .to_string();
    // (Any pont command would rebuild the bridge: none runs until the check.)
    sb.run_ok(Ns::Host, &["ip", "link", "del", &gone]);
    sb.run_ok(Ns::Host, &["ip", "link", "del", &veth]);
    // And the firewall flushed.
    sb.run_ok(Ns::Host, &["nft", "flush", "ruleset"]);

    let (ok, report) = check(&sb);
    assert!(!ok, "check must fail:\n{report}");
    for expected in [
        format!("bridge {lost}: a bridge of pont's that no network record owns"),
        "veth veth00000000abc: a veth of pont's that no live container owns".to_string(),
        format!("network gone: bridge {gone} is missing"),
        format!("container a: veth {veth} on network web is missing"),
        "firewall: pont's nftables rules are missing or incomplete".to_string(),
    ] {
        assert!(
            report.contains(&expected),
            "missing '{expected}' in:\n{report}"
        );
    }
    assert_eq!(report.lines().count(), 5, "{report}");

    sb.pont_ok(&["system", "prune"]);
    assert_eq!(check(&sb), (true, "ok: records and kernel agree\n".into()));
    let links = host_links(&sb);
    assert!(links.contains(&"br-0123456789ab".to_string()), "{links:?}");
    assert!(links.contains(&"veth1234567".to_string()), "{links:?}");
    assert!(!links.contains(&lost), "{links:?}");
    assert!(!links.contains(&"veth00000000abc".to_string()), "{links:?}");
    assert!(links.contains(&gone), "{links:?}");
    // The container has its veth back, and answers.
    assert!(sb.can_ping(Ns::Host, "10.89.1.7", SECOND * 2));
    assert_consistent(&sb, "after prune");
}

/// A record as a reboot leaves it: the PID is now another process's (a
/// `sleep` of the test's), and the start time is not that process's.
fn fake_reboot(sb: &Sandbox, name: &str, state: &str, pid: u32) {
    let path = record_path(sb, name);
    let mut rec = json(&std::fs::read_to_string(&path).unwrap());
    // The real container goes away first, as it would in a reboot.
    let real_pid = rec["pid"].as_i64().unwrap();
    let monitor_pid = rec["monitor_pid"].as_i64().unwrap();
    sb.run_ok(
        Ns::Host,
        &[
            "kill",
            "-9",
            &monitor_pid.to_string(),
            &real_pid.to_string(),
        ],
    );
    testkit::wait_until(Duration::from_secs(5), || {
        !std::path::Path::new(&format!("/proc/{real_pid}")).exists()
    });
    for key in ["pid", "monitor_pid"] {
        rec[key] = serde_json::json!(pid);
    }
    for key in ["start_time", "monitor_start_time"] {
        rec[key] = serde_json::json!(1);
    }
    rec["state"] = serde_json::json!(state);
    std::fs::write(&path, serde_json::to_vec_pretty(&rec).unwrap()).unwrap();
}

#[test]
fn reboot_records_with_reused_pids_are_reconciled_by_the_next_command() {
    let sb = host_only();
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.89.4.0/24"]);
    run_sleeper(&sb, "old", &["--ip", "10.89.4.9", "-p", "8080:80"]);
    run_sleeper(&sb, "half", &["--ip", "10.89.4.10"]);
    let mut unrelated = sb.spawn_in(Ns::Host, &["sleep", "1000"]);
    fake_reboot(&sb, "old", "running", unrelated.pid());
    fake_reboot(&sb, "half", "creating", unrelated.pid());

    // Any command reconciles.
    sb.pont_ok(&["network", "ls"]);
    let old = inspect(&sb, "old");
    assert_eq!(old["state"], "exited", "{old}");
    assert_eq!(old["networks"], serde_json::json!({}));
    // A restart that did not finish: marked exited, its address freed.
    let half = inspect(&sb, "half");
    assert_eq!(half["state"], "exited", "{half}");
    assert_eq!(half["networks"], serde_json::json!({}));
    assert!(
        unrelated.try_wait().is_none(),
        "the process that reuses the PID must not be signalled"
    );
    // The address and the port are free again.
    run_sleeper(&sb, "new", &["--ip", "10.89.4.9", "-p", "8080:80"]);
    run_sleeper(&sb, "new2", &["--ip", "10.89.4.10"]);
    assert_consistent(&sb, "after the reboot");
}

#[test]
fn corrupt_or_truncated_records_name_the_file_and_hide_no_record() {
    let sb = host_only();
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.89.5.0/24"]);
    run_sleeper(&sb, "a", &[]);
    run_sleeper(&sb, "b", &[]);
    let path = record_path(&sb, "b");
    let good = std::fs::read(&path).unwrap();
    for (what, bytes) in [
        ("truncated", good[..good.len() / 2].to_vec()),
        ("empty", vec![]),
        ("not JSON", b"\x00\xff garbage".to_vec()),
        (
            "short id",
            String::from_utf8_lossy(&good)
                .replacen("\"id\": \"", "\"id\": \"ab", 1)
                .into_bytes(),
        ),
    ] {
        std::fs::write(&path, &bytes).unwrap();
        for args in [
            &["ps"][..],
            &["inspect", "a"],
            &["network", "ls"],
            &["system", "check"],
        ] {
            let out = sb.pont(args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{what}: pont {args:?} must fail");
            assert!(err.contains(&path.display().to_string()), "{what}: {err}");
            assert!(!err.contains("panicked"), "{what}: {err}");
        }
    }
    std::fs::write(&path, &good).unwrap();
    let names = sb.pont_ok(&["ps", "--format", "json"]);
    assert!(
        names.contains("\"a\"") && names.contains("\"b\""),
        "{names}"
    );
}

/// The indexes beside the records (names/, addresses/, ports/) are derived
/// data: entries that no record backs (what a crash between an index write
/// and a record write leaves) never block a request, and `system check`
/// names them.
#[test]
fn stale_index_entries_are_found_and_do_not_block_a_request() {
    let sb = host_only();
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.89.6.0/24"]);
    run_sleeper(&sb, "a", &[]);
    let root = sb.root();
    // 10.89.6.9 held in web's address map (byte 1, bit 1) by no record.
    let map = root.join("addresses/web/10.89.6.0-24");
    let mut bits = std::fs::read(&map).unwrap();
    bits.resize(2, 0);
    bits[1] |= 0b10;
    std::fs::write(&map, bits).unwrap();
    // Port 8080 is in block 31 (7936-8191) of the port index.
    std::fs::create_dir_all(root.join("ports/tcp/31")).unwrap();
    std::fs::write(root.join("ports/tcp/31/tcp,*,8080-8080,80-80"), "ghost").unwrap();
    std::fs::write(root.join("names/ghost"), "e".repeat(64)).unwrap();
    let (ok, report) = check(&sb);
    assert!(!ok, "{report}");
    assert!(report.contains("indexes differ"), "{report}");

    // The address, the port and the name are free: the holders do not exist.
    run_sleeper(&sb, "ghost", &["--ip", "10.89.6.9", "-p", "8080:80"]);
    assert_eq!(ip_of(&sb, "ghost", "web"), "10.89.6.9");
    assert!(check(&sb).0, "{}", check(&sb).1);
    assert_consistent(&sb, "after the stale entries");
}
