//! `demo/run.sh --topology-only` builds the same sandbox in bash, pings
//! across it and removes it again.

use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn demo_topology_only_pings_across_and_cleans_up() {
    testkit::require_root();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../demo/run.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("--topology-only")
        .env("PONT_SKIP_INSTALL", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run demo/run.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "demo failed ({})\n{stdout}\n{stderr}",
        out.status
    );
    assert_eq!(stdout.matches("    ok    ").count(), 5, "{stdout}");
    assert!(
        stdout.contains("==> sandbox removed (5 namespaces)"),
        "{stdout}"
    );

    // The script names its namespaces after its own pid.
    let stem = stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix('(').and_then(|w| w.strip_suffix("-*)")))
        .expect("the demo names its sandbox");
    assert!(stem.starts_with("pont-demo-"), "{stem}");
    let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(!list.contains(&format!("{stem}-")), "left behind: {list}");
}
