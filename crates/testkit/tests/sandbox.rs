//! The sandbox itself: its topology routes what it should, and it leaves
//! nothing behind.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use testkit::topology::{HOST_UPLINK_IP, NEIGHBOUR_IP, ROUTER_LAN_IP, WAN_HOST_IP};
use testkit::{reported_peers, wait_until, Ns, Sandbox};

const SECOND: Duration = Duration::from_secs(1);

/// No pont is needed to test the sandbox; drop then skips `pont rm`.
const NO_PONT: &str = "/nonexistent/pont";

fn netns_list() -> String {
    let out = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

fn names_of(sb: &Sandbox) -> Vec<String> {
    Ns::ALL
        .iter()
        .map(|&ns| sb.netns_name(ns).to_string())
        .collect()
}

fn process_alive(pid: u32) -> bool {
    // A zombie still has a /proc entry but no namespaces left.
    fs::read_link(format!("/proc/{pid}/ns/net")).is_ok()
}

#[test]
fn neighbour_pings_host_uplink() {
    testkit::require_root();
    let sb = Sandbox::new(NO_PONT);
    assert!(sb.can_ping(Ns::Neighbour, &HOST_UPLINK_IP.to_string(), SECOND));
    assert!(sb.can_ping(Ns::Host, &NEIGHBOUR_IP.to_string(), SECOND));
}

#[test]
fn host_pings_wan_host_through_router() {
    testkit::require_root();
    let sb = Sandbox::new(NO_PONT);
    assert!(sb.can_ping(Ns::Host, &WAN_HOST_IP.to_string(), SECOND));
    // No NAT on the router: the WAN host routes back to the LAN address.
    assert!(sb.can_ping(Ns::Wan, &HOST_UPLINK_IP.to_string(), SECOND));
    let route = sb.run_ok(Ns::Host, &["ip", "route", "get", &WAN_HOST_IP.to_string()]);
    assert!(
        route.contains(&format!("via {ROUTER_LAN_IP} dev uplink0")),
        "{route}"
    );
}

#[test]
fn unreachable_address_does_not_ping() {
    testkit::require_root();
    let sb = Sandbox::new(NO_PONT);
    // Inside the LAN subnet, but nobody has it.
    assert!(!sb.can_ping(Ns::Host, "192.0.2.99", SECOND));
}

#[test]
fn namespaces_are_gone_after_drop() {
    testkit::require_root();
    let sb = Sandbox::new(NO_PONT);
    let names = names_of(&sb);
    let listed = netns_list();
    for name in &names {
        assert!(name.starts_with(testkit::NAME_PREFIX), "{name}");
        assert!(
            listed.contains(name.as_str()),
            "{name} missing from {listed}"
        );
    }
    let dirs = [sb.root().to_path_buf(), sb.run_dir().to_path_buf()];
    drop(sb);
    let listed = netns_list();
    for name in &names {
        assert!(
            !listed.contains(name.as_str()),
            "{name} still there: {listed}"
        );
    }
    for dir in dirs {
        assert!(!dir.exists(), "{} still there", dir.display());
    }
}

#[test]
fn host_only_has_just_loopback() {
    testkit::require_root();
    let sb = Sandbox::host_only(NO_PONT);
    let links = sb.run_ok(Ns::Host, &["ip", "-br", "link"]);
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(links.starts_with("lo ") && links.contains("UP"), "{links}");
    assert!(sb.can_ping(Ns::Host, "127.0.0.1", SECOND));
}

#[test]
#[should_panic(expected = "has no Lan namespace")]
fn host_only_refuses_other_namespaces() {
    testkit::require_root();
    let sb = Sandbox::host_only(NO_PONT);
    sb.netns_name(Ns::Lan);
}

#[test]
fn names_are_unique_across_parallel_sandboxes() {
    testkit::require_root();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            thread::spawn(|| {
                let sb = Sandbox::new(NO_PONT);
                assert!(sb.can_ping(Ns::Host, &WAN_HOST_IP.to_string(), SECOND));
                names_of(&sb)
            })
        })
        .collect();
    let mut all: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let count = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), count);
}

#[test]
fn spawned_process_is_the_command_and_dies_with_its_guard() {
    testkit::require_root();
    let sb = Sandbox::host_only(NO_PONT);
    let sleeper = sb.spawn_in(Ns::Host, &["sleep", "1000"]);
    let pid = sleeper.pid();
    // `ip netns exec` takes a moment to switch namespaces before it execs.
    let comm = || fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    assert!(
        wait_until(5 * SECOND, || comm().trim() == "sleep"),
        "{}",
        comm()
    );
    drop(sleeper);
    assert!(!process_alive(pid));
}

#[test]
fn drop_kills_processes_left_in_the_namespaces() {
    testkit::require_root();
    let sb = Sandbox::new(NO_PONT);
    // A daemon in the host ns whose parent has exited, and one in a fresh
    // anonymous netns whose parent (in the WAN ns) is still waiting for it:
    // the way a container init hangs under pont's monitor.
    let daemon = sb.run_ok(
        Ns::Host,
        &["sh", "-c", "sleep 1000 >/dev/null 2>&1 & echo $!"],
    );
    let nested = sb.run_ok(
        Ns::Wan,
        &[
            "sh",
            "-c",
            "(unshare -n sleep 1000 & wait) >/dev/null 2>&1 & echo $!",
        ],
    );
    let daemon: u32 = daemon.trim().parse().unwrap();
    let waiter: u32 = nested.trim().parse().unwrap();
    assert!(process_alive(daemon) && process_alive(waiter));
    let child_of_waiter = wait_until(5 * SECOND, || children_of(waiter).len() == 1);
    assert!(child_of_waiter, "unshare never started");
    let inner = children_of(waiter)[0];
    drop(sb);
    for pid in [daemon, waiter, inner] {
        assert!(
            wait_until(5 * SECOND, || !process_alive(pid)),
            "pid {pid} survived"
        );
    }
}

fn children_of(pid: u32) -> Vec<u32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    let text = fs::read_to_string(path).unwrap_or_default();
    text.split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

#[test]
fn tcp_checks_see_listeners_and_real_source_address() {
    testkit::require_root();
    let sb = Sandbox::new(NO_PONT);
    let server = sb.spawn_peer_reporter(Ns::Wan, "0.0.0.0:8080");
    let addr = format!("{WAN_HOST_IP}:8080");
    assert!(sb.can_tcp_connect(Ns::Host, &addr, SECOND));
    let answer = sb.tcp_request(Ns::Neighbour, &addr, "hello", SECOND);
    assert_eq!(answer.as_deref(), Some("192.0.2.3\n"));
    assert_eq!(reported_peers(&server), ["192.0.2.2", "192.0.2.3"]);
    assert!(!sb.can_tcp_connect(Ns::Host, &format!("{WAN_HOST_IP}:8081"), SECOND));
    assert_eq!(
        sb.tcp_request(Ns::Host, &format!("{WAN_HOST_IP}:8081"), "", SECOND),
        None
    );
}

#[test]
fn host_snapshot_is_stable_and_sees_changes() {
    testkit::require_root();
    let sb = Sandbox::new(NO_PONT);
    let before = sb.host_snapshot();
    assert!(
        before.contains(
            "uplink0 kind=veth master=- mtu=1500 flags=<BROADCAST,MULTICAST,UP,LOWER_UP>"
        ),
        "{before}"
    );
    assert!(before.contains("uplink0 inet 192.0.2.2/24"), "{before}");
    assert!(
        before.contains("default via 192.0.2.1 dev uplink0"),
        "{before}"
    );
    sb.run_ok(Ns::Host, &["ip", "link", "add", "t0", "type", "bridge"]);
    sb.run_ok(Ns::Host, &["nft", "add", "table", "inet", "t"]);
    let during = sb.host_snapshot();
    assert!(during.contains("t0 kind=bridge"), "{during}");
    assert!(during.contains("table inet t"), "{during}");
    sb.run_ok(Ns::Host, &["ip", "link", "del", "t0"]);
    sb.run_ok(Ns::Host, &["nft", "delete", "table", "inet", "t"]);
    assert_eq!(sb.host_snapshot(), before);
}

/// A scratch dir of the test's own, removed even when the test fails.
struct TestDir(PathBuf);

impl TestDir {
    fn new(role: &str) -> TestDir {
        let path = std::env::temp_dir().join(format!("pont-t-{}-{role}", std::process::id()));
        fs::create_dir_all(&path).unwrap();
        TestDir(path)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A stand-in for pont that records its arguments and environment.
fn fake_pont(dir: &Path) -> PathBuf {
    let log = dir.join("calls.log");
    let script = format!(
        "#!/bin/sh\necho \"$*|$PONT_ROOT|$PONT_RUN_DIR\" >> '{}'\n\
         [ \"$1\" = ps ] && {{ printf 'c1\\nc2\\n'; exit 0; }}\n\
         [ \"$1\" = fail ] && {{ echo nope >&2; exit 3; }}\n\
         readlink /proc/self/ns/net\n",
        log.display()
    );
    let bin = dir.join("pont");
    fs::write(&bin, script).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn pont_runs_in_host_with_its_dirs_and_drop_removes_containers() {
    testkit::require_root();
    let dir = TestDir::new("fakepont");
    let sb = Sandbox::host_only(fake_pont(&dir.0));
    let netns = sb.pont_ok(&["version"]);
    let host_netns = sb.run_ok(Ns::Host, &["readlink", "/proc/self/ns/net"]);
    assert_eq!(netns, host_netns);
    let err = sb.pont_err(&["fail"]);
    assert_eq!(err, "nope\n");
    let dirs = format!("|{}|{}", sb.root().display(), sb.run_dir().display());
    drop(sb);
    let calls = fs::read_to_string(dir.0.join("calls.log")).unwrap();
    let expected = ["version", "fail", "ps -a -q", "rm -f c1 c2"].map(|c| format!("{c}{dirs}\n"));
    assert_eq!(calls, expected.concat());
}

#[test]
#[should_panic(expected = "pont [\"fail\"] failed")]
fn pont_ok_panics_with_the_arguments() {
    testkit::require_root();
    let dir = TestDir::new("fakepont2");
    let sb = Sandbox::host_only(fake_pont(&dir.0));
    sb.pont_ok(&["fail"]);
}
