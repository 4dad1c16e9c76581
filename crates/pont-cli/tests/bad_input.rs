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
