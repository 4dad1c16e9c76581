//! Shared helpers for the CLI tests: a sandbox per test, JSON access, waits.
#![allow(dead_code)]

use std::time::Duration;

pub use testkit::{Ns, Sandbox};

pub fn sandbox() -> Sandbox {
    testkit::require_root();
    Sandbox::new(env!("CARGO_BIN_EXE_pont"))
}

pub fn host_only() -> Sandbox {
    testkit::require_root();
    Sandbox::host_only(env!("CARGO_BIN_EXE_pont"))
}

pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

pub fn inspect(sb: &Sandbox, name: &str) -> serde_json::Value {
    json(&sb.pont_ok(&["inspect", name]))
}

/// The container's IPv4 address on `network`, without the prefix length.
pub fn ip_of(sb: &Sandbox, name: &str, network: &str) -> String {
    let doc = inspect(sb, name);
    let cidr = doc["networks"][network]["ipv4"]
        .as_str()
        .unwrap_or_else(|| panic!("{name} has no address on {network}: {doc}"));
    cidr.split('/').next().unwrap().to_string()
}

pub fn wait_exited(sb: &Sandbox, name: &str) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    let done = testkit::wait_until(Duration::from_secs(10), || {
        last = inspect(sb, name);
        last["state"] == "exited"
    });
    assert!(done, "{name} did not exit: {last}");
    last
}

/// Names of the links in the sandbox host namespace.
pub fn host_links(sb: &Sandbox) -> Vec<String> {
    sb.run_ok(Ns::Host, &["ip", "-o", "link", "show"])
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap().to_string())
        .collect()
}

pub const SECOND: Duration = Duration::from_secs(1);

/// `pont ARGS` fails, with one line of error that holds `needle` (the bad value).
pub fn assert_refused(sb: &Sandbox, args: &[&str], needle: &str) {
    let out = sb.pont(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "pont {args:?} succeeded");
    assert!(
        stderr.contains(needle),
        "pont {args:?}: error {stderr:?} does not mention {needle:?}"
    );
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "pont {args:?}: not one line: {stderr:?}"
    );
}
