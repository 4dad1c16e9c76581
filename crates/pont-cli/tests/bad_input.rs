//! Issue 2's bad-input list: each case is a one-line error naming the value,
//! a non-zero exit, and nothing left behind in the kernel or the records.

mod common;

use common::*;

#[test]
fn bad_networks_are_refused_and_leave_nothing() {
    let sb = host_only();
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.88.1.0/24"]);
    let before = sb.host_snapshot();
    let long = "n".repeat(65);
    let cases: &[(&[&str], &str)] = &[
        (
            &["network", "create", "x", "--subnet", "10.88.2.0"],
            "10.88.2.0",
        ),
        (
            &["network", "create", "x", "--subnet", "10.88.2.0/33"],
            "10.88.2.0/33",
        ),
        (
            &["network", "create", "x", "--subnet", "10.88.2.7/24"],
            "host bits",
        ),
        (
            &[
                "network",
                "create",
                "x",
                "--subnet",
                "10.88.2.0/24",
                "--gateway",
                "10.88.3.1",
            ],
            "10.88.3.1",
        ),
        (
            &[
                "network",
                "create",
                "x",
                "--subnet",
                "10.88.2.0/24",
                "--gateway",
                "10.88.2.0",
            ],
            "network address",
        ),
        (
            &[
                "network",
                "create",
                "x",
                "--subnet",
                "10.88.2.0/24",
                "--gateway",
                "10.88.2.255",
            ],
            "broadcast",
        ),
        (
            &["network", "create", "x", "--subnet", "10.88.1.128/25"],
            "overlaps subnet 10.88.1.0/24 of network web",
        ),
        (
            &["network", "create", "x", "--subnet", "127.0.0.0/8"],
            "127.0.0.0/8",
        ),
        (
            &["network", "create", "web", "--subnet", "10.88.9.0/24"],
            "network web already exists",
        ),
        (
            &["network", "create", "", "--subnet", "10.88.9.0/24"],
            "must not be empty",
        ),
        (
            &["network", "create", &long, "--subnet", "10.88.9.0/24"],
            "longer than 64",
        ),
        (
            &["network", "create", "a/b", "--subnet", "10.88.9.0/24"],
            "'a/b'",
        ),
        (
            &[
                "network",
                "create",
                "x",
                "--subnet",
                "10.88.9.0/24",
                "--mtu",
                "67",
            ],
            "MTU 67",
        ),
        (
            &[
                "network",
                "create",
                "x",
                "--subnet",
                "10.88.9.0/24",
                "--mtu",
                "65536",
            ],
            "MTU 65536",
        ),
        (
            &[
                "network",
                "create",
                "x",
                "--subnet",
                "10.88.9.0/24",
                "--ip-range",
                "10.88.8.0/25",
            ],
            "10.88.8.0/25",
        ),
        (
            &["network", "create", "x", "--opt", "colour=blue"],
            "colour=blue",
        ),
        (
            &["network", "create", "x", "--ip-range", "10.88.8.0/25"],
            "no matching subnet for --ip-range 10.88.8.0/25: give --subnet as well",
        ),
        (
            &["network", "create", "x", "--gateway", "10.88.8.1"],
            "no matching subnet for --gateway 10.88.8.1",
        ),
        (
            &["network", "create", "x", "-o", "icc"],
            "invalid --opt 'icc': expected KEY=VALUE",
        ),
        (
            &[
                "network",
                "create",
                "x",
                "--subnet",
                "10.88.9.0/24",
                "--mtu",
                "1400",
                "-o",
                "mtu=1500",
            ],
            "--opt mtu=1500 conflicts with --mtu 1400",
        ),
        (&["network", "rm", "nope"], "network nope not found"),
        (&["network", "inspect", "nope"], "nope"),
    ];
    for (args, needle) in cases {
        assert_refused(&sb, args, needle);
    }
    assert_eq!(sb.host_snapshot(), before);
    let names = sb.pont_ok(&["network", "ls", "-q"]);
    assert_eq!(names, "web\n");
}

#[test]
fn bad_containers_are_refused_and_leave_nothing() {
    let sb = host_only();
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.88.4.0/24"]);
    sb.pont_ok(&[
        "run",
        "-d",
        "--name",
        "taken",
        "--network",
        "web",
        "--ip",
        "10.88.4.9",
        "--",
        "sleep",
        "100",
    ]);
    let before = sb.host_snapshot();
    let ids_before = sb.pont_ok(&["ps", "-a", "-q"]);
    let cases: &[(&[&str], &str)] = &[
        (
            &["run", "--network", "web", "--ip", "10.88.5.3", "--", "true"],
            "10.88.5.3",
        ),
        (
            &["run", "--network", "web", "--ip", "10.88.4.1", "--", "true"],
            "gateway",
        ),
        (
            &["run", "--network", "web", "--ip", "10.88.4.0", "--", "true"],
            "network address",
        ),
        (
            &[
                "run",
                "--network",
                "web",
                "--ip",
                "10.88.4.255",
                "--",
                "true",
            ],
            "broadcast",
        ),
        (
            &["run", "--network", "web", "--ip", "10.88.4.9", "--", "true"],
            "10.88.4.9 is already in use",
        ),
        (
            &["run", "--network", "web", "--ip", "10.88.4", "--", "true"],
            "'10.88.4'",
        ),
        (
            &[
                "run",
                "--network",
                "web",
                "--mac",
                "02:42:zz:00:00:01",
                "--",
                "true",
            ],
            "02:42:zz:00:00:01",
        ),
        (
            &["run", "--name", "taken", "--network", "web", "--", "true"],
            "taken",
        ),
        (
            &[
                "run",
                "--name",
                "bad name",
                "--network",
                "web",
                "--",
                "true",
            ],
            "'bad name'",
        ),
        (
            &["run", "--network", "nope", "--", "true"],
            "network nope not found",
        ),
        (&["exec", "ghost", "--", "true"], "no such container: ghost"),
        (&["stop", "ghost"], "ghost"),
        (&["rm", "ghost"], "ghost"),
        (&["inspect", "ghost"], "ghost"),
    ];
    for (args, needle) in cases {
        assert_refused(&sb, args, needle);
    }
    // Detached, the same refusal comes from the monitor: it must read the same,
    // not as a failure of the monitor itself.
    let detached = [
        "run",
        "-d",
        "--name",
        "taken",
        "--network",
        "web",
        "--",
        "true",
    ];
    assert_refused(
        &sb,
        &detached,
        "pont: container name taken is already in use",
    );
    assert_eq!(sb.host_snapshot(), before);
    assert_eq!(sb.pont_ok(&["ps", "-a", "-q"]), ids_before);
}

/// Limits are refused quoting the text typed, never the number parsed from it, for
/// `run` (foreground and detached) and for `update` (checked with the record's).
#[test]
fn bad_limits_quote_what_was_typed_and_leave_nothing() {
    let sb = host_only();
    sb.pont_ok(&[
        "run",
        "-d",
        "--name",
        "steady",
        "--network",
        "none",
        "--",
        "sleep",
        "100",
    ]);
    let before = sb.host_snapshot();
    let ids_before = sb.pont_ok(&["ps", "-a", "-q"]);
    let cases: &[(&[&str], &str)] = &[
        (
            &["--memory", "5k"],
            "invalid --memory '5k': must be at least 6m",
        ),
        (
            &["--memory", "1.2.3m"],
            "invalid --memory '1.2.3m': expected a number",
        ),
        (&["--memory", " 32m"], "invalid --memory ' 32m'"),
        (
            &["--memory", "32bm"],
            "invalid --memory '32bm': unknown unit 'bm'",
        ),
        (
            &["--memory", "32M", "--memory-swap", "16M"],
            "invalid --memory-swap '16M': must be at least --memory (32m)",
        ),
        (
            &["--memory-swap", "1G"],
            "invalid --memory-swap '1G': needs --memory as well",
        ),
        (
            &["--cpus", "NaN"],
            "invalid --cpus 'NaN': expected a decimal number",
        ),
        (
            &["--cpus", "inf"],
            "invalid --cpus 'inf': expected a decimal number",
        ),
        (
            &["--cpus", "-1"],
            "invalid --cpus '-1': must be more than 0",
        ),
        (
            &["--cpus", "0.001"],
            "invalid --cpus '0.001': must be at least 0.01",
        ),
        (
            &["--cpus", "100000.0"],
            "invalid --cpus '100000.0': this machine has",
        ),
        (
            &["--cpus", "0.5000000001"],
            "invalid --cpus '0.5000000001': too precise",
        ),
    ];
    for (limit, needle) in cases {
        for detach in [&[][..], &["-d"]] {
            let mut args = vec!["run"];
            args.extend_from_slice(detach);
            args.extend_from_slice(&["--network", "none"]);
            args.extend_from_slice(limit);
            args.extend_from_slice(&["--", "true"]);
            assert_refused(&sb, &args, needle);
        }
    }
    let updates: &[(&[&str], &str)] = &[
        (
            &["--memory", "5K"],
            "invalid --memory '5K': must be at least 6m",
        ),
        (
            &["--memory-swap", "16M"],
            "invalid --memory-swap '16M': needs --memory as well",
        ),
        (
            &["--cpus", "100000"],
            "invalid --cpus '100000': this machine has",
        ),
    ];
    for (limit, needle) in updates {
        let mut args = vec!["update", "steady"];
        args.extend_from_slice(limit);
        assert_refused(&sb, &args, needle);
    }
    assert!(inspect(&sb, "steady")["limits"]["memory"].is_null());
    assert_eq!(sb.host_snapshot(), before);
    assert_eq!(sb.pont_ok(&["ps", "-a", "-q"]), ids_before);
}

#[test]
fn without_root_pont_says_so() {
    testkit::require_root();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_pont"))
        .args(["network", "ls"])
        .env("PONT_ROOT", "/nonexistent-pont-root")
        .output()
        .expect("setpriv (util-linux) runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        "pont: must be run as root: pont creates network namespaces, links and firewall rules"
    );
}
