//! Kernel tests of `pont::container`, as root.
//!
//! They use cargo's ordinary multi-threaded harness on purpose: `create` and `exec` must
//! be safe to call from a multi-threaded process (the cloned child runs only system calls
//! until exec), and these tests running in parallel are the proof.
//!
//! Safety of the machine: every container here gets a fresh network namespace of its own
//! (anonymous, gone with the container) except `host_network_is_shared_when_asked`, which
//! only reads. Mounts are made in the containers' own mount namespaces; files are written
//! only under per-test temporary directories.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use nix::sys::signal::{kill as send_signal, SigSet, Signal};
use nix::unistd::{gethostname, Pid};
use pont::container::{
    create, exec, is_alive, kill, start_time, ContainerError, Exit, SetupStep, Spec, Stdio,
};

/// A directory under the system's temp dir, unique per test, removed on drop. It refuses
/// to delete anything that is still a mount point (a bind-mounted /dev, say) as seen here.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("pont-t-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let prefix = self.0.to_string_lossy().into_owned();
        if mounts.lines().any(|line| {
            line.split(' ')
                .nth(4)
                .is_some_and(|m| m.starts_with(&prefix))
        }) {
            panic!(
                "{} still has mounts in the test's namespace; not deleting it",
                self.0.display()
            );
        }
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "container tests must run as root"
    );
}

fn strings(argv: &[&str]) -> Vec<String> {
    argv.iter().map(|s| s.to_string()).collect()
}

fn spec(argv: &[&str]) -> Spec {
    Spec::new(strings(argv), "pont-test")
}

fn run(spec: &Spec) -> Exit {
    create(spec).unwrap().start().unwrap().wait().unwrap()
}

/// Run with stdout and stderr going to a log file; the exit and the log's text.
fn run_logged(mut spec: Spec, dir: &TempDir) -> (Exit, String) {
    let log = dir.path("log");
    let _ = fs::remove_file(&log);
    spec.stdio = Stdio::Log(log.clone());
    let exit = run(&spec);
    (exit, fs::read_to_string(log).unwrap())
}

fn sh(script: &str) -> Spec {
    spec(&["sh", "-c", script])
}

#[test]
fn exit_code_passes_through() {
    require_root();
    assert_eq!(run(&sh("exit 7")), Exit::Code(7));
    assert_eq!(run(&spec(&["true"])).code(), 0);
}

#[test]
fn command_killed_by_a_signal_exits_128_plus_n() {
    require_root();
    let exit = run(&sh("kill -KILL $$"));
    assert_eq!(exit, Exit::Code(128 + 9));
    assert_eq!(exit.code(), 137);
}

#[test]
fn init_forwards_sigterm_to_the_command() {
    require_root();
    let running = create(&spec(&["sleep", "30"])).unwrap().start().unwrap();
    send_signal(Pid::from_raw(running.pid()), Signal::SIGTERM).unwrap();
    assert_eq!(running.wait().unwrap(), Exit::Code(128 + 15));
}

#[test]
fn wait_forwards_a_signal_the_caller_receives() {
    require_root();
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        // Blocked for this thread's whole life, so the SIGTERM aimed at it can never take
        // the default action (ending the test process) before `wait` reads it.
        let mut set = SigSet::empty();
        set.add(Signal::SIGTERM);
        set.thread_block().unwrap();
        let running = create(&spec(&["sleep", "30"])).unwrap().start().unwrap();
        tx.send(()).unwrap();
        running.wait().unwrap()
    });
    rx.recv().unwrap();
    use std::os::unix::thread::JoinHandleExt;
    let thread = waiter.as_pthread_t();
    // SAFETY: the thread is alive (it is waiting for the container) and blocks SIGTERM.
    let ret = unsafe { libc::pthread_kill(thread, libc::SIGTERM) };
    assert_eq!(ret, 0);
    assert_eq!(waiter.join().unwrap(), Exit::Code(128 + 15));
}

#[test]
fn missing_command_exits_127_with_a_message() {
    require_root();
    let dir = TempDir::new("notfound");
    let (exit, log) = run_logged(spec(&["pont-no-such-command", "x"]), &dir);
    assert_eq!(exit, Exit::Code(127));
    assert_eq!(
        log,
        "pont: cannot run 'pont-no-such-command': No such file or directory\n"
    );
}

#[test]
fn non_executable_file_exits_126() {
    require_root();
    let dir = TempDir::new("noexec");
    let file = dir.path("data");
    fs::write(&file, "not a program\n").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    let (exit, log) = run_logged(spec(&[file.to_str().unwrap()]), &dir);
    assert_eq!(exit, Exit::Code(126));
    assert!(log.starts_with("pont: cannot run '"), "{log}");
    assert!(log.ends_with("': Permission denied\n"), "{log}");
}

#[test]
fn hostname_is_the_spec_hostname_inside_only() {
    require_root();
    let dir = TempDir::new("hostname");
    let host_before = gethostname().unwrap();
    let mut spec = sh("cat /proc/sys/kernel/hostname; echo \"$HOSTNAME\"");
    spec.hostname = "box-1".into();
    let (exit, log) = run_logged(spec, &dir);
    assert_eq!(exit, Exit::Code(0));
    assert_eq!(log, "box-1\nbox-1\n");
    assert_eq!(gethostname().unwrap(), host_before);
}

#[test]
fn pid_namespace_is_isolated() {
    require_root();
    let dir = TempDir::new("pidns");
    let (exit, log) = run_logged(sh("echo $$; ls /proc"), &dir);
    assert_eq!(exit, Exit::Code(0));
    let mut lines = log.lines();
    assert_eq!(
        lines.next(),
        Some("2"),
        "the command is PID 2 under init: {log}"
    );
    let pids: BTreeSet<u32> = lines.filter_map(|name| name.parse().ok()).collect();
    // init, sh, ls.
    assert_eq!(pids, BTreeSet::from([1, 2, 3]), "{log}");
}

#[test]
fn new_network_namespace_has_only_loopback() {
    require_root();
    let dir = TempDir::new("netns");
    let (exit, log) = run_logged(sh("ls /sys/class/net; tail -n +3 /proc/net/dev"), &dir);
    assert_eq!(exit, Exit::Code(0));
    let mut lines = log.lines();
    assert_eq!(lines.next(), Some("lo"), "{log}");
    let devices: Vec<&str> = lines
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(devices, ["lo"], "{log}");
}

#[test]
fn created_exposes_its_network_namespace() {
    require_root();
    use std::os::fd::AsRawFd;
    let created = create(&spec(&["true"])).unwrap();
    let netns = created.netns().unwrap();
    let link = fs::read_link(format!("/proc/self/fd/{}", netns.as_raw_fd())).unwrap();
    let ours = fs::read_link("/proc/self/ns/net").unwrap();
    let init = fs::read_link(format!("/proc/{}/ns/net", created.pid())).unwrap();
    assert_eq!(link, init);
    assert_ne!(link, ours);
    assert_eq!(created.start().unwrap().wait().unwrap(), Exit::Code(0));
}

#[test]
fn host_network_is_shared_when_asked() {
    // Reads only: with new_netns = false nothing may be changed.
    require_root();
    let dir = TempDir::new("hostnet");
    let mut spec = sh("readlink /proc/self/ns/net");
    spec.new_netns = false;
    let (exit, log) = run_logged(spec, &dir);
    assert_eq!(exit, Exit::Code(0));
    let ours = fs::read_link("/proc/self/ns/net").unwrap();
    assert_eq!(log.trim_end(), ours.to_str().unwrap());
}

#[test]
fn bind_files_override_etc_hosts_inside_only() {
    require_root();
    let dir = TempDir::new("bind");
    let hosts_before = fs::read("/etc/hosts").unwrap();
    let resolv_before = fs::read("/etc/resolv.conf").unwrap();
    fs::write(dir.path("hosts"), "10.1.2.3 pont-test-peer\n").unwrap();
    fs::write(dir.path("resolv.conf"), "nameserver 10.1.2.1\n").unwrap();
    let mut spec = sh("cat /etc/hosts /etc/resolv.conf");
    spec.bind_files = vec![
        (dir.path("hosts"), "/etc/hosts".into()),
        (dir.path("resolv.conf"), "/etc/resolv.conf".into()),
    ];
    let (exit, log) = run_logged(spec, &dir);
    assert_eq!(exit, Exit::Code(0));
    assert_eq!(log, "10.1.2.3 pont-test-peer\nnameserver 10.1.2.1\n");
    assert_eq!(fs::read("/etc/hosts").unwrap(), hosts_before);
    assert_eq!(fs::read("/etc/resolv.conf").unwrap(), resolv_before);
}

#[test]
fn missing_bind_target_outside_a_rootfs_is_a_setup_error() {
    require_root();
    let dir = TempDir::new("bindmissing");
    fs::write(dir.path("hosts"), "x\n").unwrap();
    let target = PathBuf::from("/pont-no-such-dir/hosts");
    let mut spec = spec(&["true"]);
    spec.bind_files = vec![(dir.path("hosts"), target.clone())];
    let created = create(&spec).unwrap();
    let (pid, started) = (created.pid(), start_time(created.pid()).unwrap());
    match created.start() {
        Err(ContainerError::Setup {
            step, path, source, ..
        }) => {
            assert_eq!(step, SetupStep::BindTargetMissing);
            assert_eq!(path, Some(target));
            assert_eq!(source, nix::errno::Errno::ENOENT);
        }
        other => panic!("expected a setup error, got {other:?}"),
    }
    assert!(
        !is_alive(pid, started),
        "init must be gone after a failed setup"
    );
    assert!(!Path::new("/pont-no-such-dir").exists());
}

#[test]
fn bad_spec_and_files_fail_in_create() {
    require_root();
    let mut bad = spec(&["true"]);
    bad.bind_files = vec![("/pont-no-such-source".into(), "/etc/hosts".into())];
    assert!(matches!(
        create(&bad),
        Err(ContainerError::BindSource { .. })
    ));
    assert!(matches!(
        create(&spec(&[])),
        Err(ContainerError::InvalidSpec { .. })
    ));
    let mut bad = spec(&["true"]);
    bad.hostname = "x".repeat(65);
    assert!(matches!(
        create(&bad),
        Err(ContainerError::InvalidSpec { .. })
    ));
    let mut bad = spec(&["true"]);
    bad.rootfs = Some("/pont-no-such-rootfs".into());
    assert!(matches!(create(&bad), Err(ContainerError::Rootfs { .. })));
}

#[test]
fn missing_workdir_is_a_setup_error_named_in_the_log() {
    require_root();
    let dir = TempDir::new("workdir");
    let mut spec = spec(&["true"]);
    spec.workdir = Some("/pont-no-such-workdir".into());
    spec.stdio = Stdio::Log(dir.path("log"));
    let created = create(&spec).unwrap();
    let pid = created.pid();
    let err = created.start().unwrap_err();
    assert!(
        matches!(
            err,
            ContainerError::Setup {
                step: SetupStep::ChangeDir,
                ..
            }
        ),
        "{err:?}"
    );
    let message = format!("container process {pid}: change directory to /pont-no-such-workdir");
    assert_eq!(err.to_string(), message);
    // The caller got the error; the log says why the container never ran.
    assert_eq!(
        fs::read_to_string(dir.path("log")).unwrap(),
        "pont: container setup failed: change directory to /pont-no-such-workdir: \
         No such file or directory\n"
    );
}

#[test]
fn workdir_and_environment_reach_the_command() {
    require_root();
    let dir = TempDir::new("env");
    let mut spec = sh("pwd; echo \"$PATH|$HOME|$FOO\"; cat");
    spec.workdir = Some("/tmp".into());
    spec.env = vec![
        ("FOO".into(), "bar baz".into()),
        ("HOME".into(), "/home/x".into()),
    ];
    let (exit, log) = run_logged(spec, &dir);
    assert_eq!(exit, Exit::Code(0));
    // `cat` ends at once: stdin is /dev/null.
    let path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    assert_eq!(log, format!("/tmp\n{path}|/home/x|bar baz\n"));
}

#[test]
fn log_captures_stdout_and_stderr_and_appends() {
    require_root();
    let dir = TempDir::new("log");
    let log = dir.path("container.log");
    for n in 1..=2 {
        let mut spec = sh(&format!("echo out{n}; echo err{n} >&2"));
        spec.stdio = Stdio::Log(log.clone());
        assert_eq!(run(&spec), Exit::Code(0));
    }
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        "out1\nerr1\nout2\nerr2\n"
    );
}

#[test]
fn exec_joins_the_running_container() {
    require_root();
    let dir = TempDir::new("exec");
    let mut spec = spec(&["sleep", "30"]);
    spec.hostname = "exec-box".into();
    let running = create(&spec).unwrap().start().unwrap();
    let pid = running.pid();
    let out = dir.path("out");
    let script = format!(
        "{{ cat /proc/sys/kernel/hostname; echo \"$HOSTNAME\"; readlink /proc/self/ns/net; \
         echo $$; pwd; }} > {}; exit 3",
        out.display()
    );
    let code = exec(
        pid,
        &strings(&["sh", "-c", &script]),
        &[],
        Some(Path::new("/tmp")),
    )
    .unwrap();
    assert_eq!(code, 3);
    let text = fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let init_netns = fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert_eq!(lines[0], "exec-box", "{text}");
    assert_eq!(lines[1], "exec-box");
    assert_eq!(lines[2], init_netns.to_str().unwrap());
    // In the container's PID namespace: init is 1, sleep is 2.
    assert_eq!(lines[3], "3", "{text}");
    assert_eq!(lines[4], "/tmp");

    let missing = exec(pid, &strings(&["pont-no-such-command"]), &[], None).unwrap();
    assert_eq!(missing, 127);
    let bad_dir = exec(
        pid,
        &strings(&["true"]),
        &[],
        Some(Path::new("/pont-no-such-dir")),
    );
    assert!(matches!(
        bad_dir,
        Err(ContainerError::Setup {
            step: SetupStep::ChangeDir,
            ..
        })
    ));

    let started = start_time(pid).unwrap();
    assert!(kill(pid, started, libc::SIGKILL).unwrap());
    assert_eq!(running.wait().unwrap(), Exit::Signal(9));
}

#[test]
fn kill_and_is_alive_follow_the_recorded_start_time() {
    require_root();
    let running = create(&spec(&["sleep", "30"])).unwrap().start().unwrap();
    let pid = running.pid();
    let started = start_time(pid).unwrap();
    assert!(is_alive(pid, started));
    assert!(!is_alive(pid, started + 1));
    assert!(
        !kill(pid, started + 1, libc::SIGKILL).unwrap(),
        "wrong start time: no signal"
    );
    assert!(is_alive(pid, started));
    assert!(kill(pid, started, libc::SIGKILL).unwrap());
    assert_eq!(running.wait().unwrap().code(), 137);
    assert!(!is_alive(pid, started));
    assert!(!kill(pid, started, libc::SIGKILL).unwrap());
}

#[test]
fn dropping_created_kills_init() {
    require_root();
    let created = create(&spec(&["sleep", "30"])).unwrap();
    let pid = created.pid();
    let started = start_time(pid).unwrap();
    assert!(is_alive(pid, started));
    drop(created);
    assert!(!is_alive(pid, started));
    assert_ne!(
        start_time(pid),
        Some(started),
        "init must be reaped, not a zombie"
    );
}

/// Whether an ELF file has no program interpreter (PT_INTERP), i.e. is static.
fn is_static_elf(path: &Path) -> bool {
    let Ok(bytes) = fs::read(path) else {
        return false;
    };
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 {
        return false;
    }
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize;
    let phoff = u64::from_le_bytes(bytes[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).all(|i| {
        let at = phoff + i * phentsize;
        bytes
            .get(at..at + 4)
            .is_some_and(|t| u32::from_le_bytes(t.try_into().unwrap()) != 3)
    })
}

/// A tiny root file system: a static busybox and a few applet links, an /etc/hosts that is
/// a symlink to an existing file, an /etc/resolv.conf that is a dangling symlink into /run.
/// `None` (and a printed reason) when no static busybox is installed.
fn busybox_rootfs(dir: &TempDir) -> Option<PathBuf> {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .map(PathBuf::from)
        .into_iter()
        .find(|p| p.exists());
    let Some(busybox) = busybox.filter(|p| is_static_elf(p)) else {
        eprintln!("SKIPPED: no static busybox (apt-get install busybox-static); rootfs not tested");
        return None;
    };
    let root = dir.path("rootfs");
    for sub in ["bin", "etc", "run", "tmp"] {
        fs::create_dir_all(root.join(sub)).unwrap();
    }
    // A hard link, not a copy: a file this process has just written can be held open for
    // writing by a child another test thread cloned meanwhile, and exec of it then fails
    // with ETXTBSY. No test writes to the link (it is the host's busybox).
    if fs::hard_link(&busybox, root.join("bin/busybox")).is_err() {
        fs::copy(&busybox, root.join("bin/busybox")).unwrap();
    }
    for applet in [
        "sh", "cat", "ls", "echo", "pwd", "sleep", "readlink", "true",
    ] {
        symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    fs::write(root.join("MARKER"), "rootfs-ok\n").unwrap();
    fs::write(root.join("etc/hosts.real"), "old\n").unwrap();
    symlink("hosts.real", root.join("etc/hosts")).unwrap();
    symlink("../run/resolv.conf", root.join("etc/resolv.conf")).unwrap();
    Some(root)
}

#[test]
fn rootfs_is_pivoted_into_with_proc_sys_dev_and_bind_files() {
    require_root();
    let dir = TempDir::new("rootfs");
    let Some(root) = busybox_rootfs(&dir) else {
        return;
    };
    fs::write(dir.path("hosts"), "10.9.9.9 peer\n").unwrap();
    fs::write(dir.path("resolv"), "nameserver 10.9.9.1\n").unwrap();
    let mut spec = sh(
        "cat /MARKER /etc/hosts /etc/resolv.conf; ls /sys/class/net; echo $$; \
         ls /dev/null; pwd; ls /proc/1/ns/net",
    );
    spec.rootfs = Some(root.clone());
    spec.workdir = Some("/etc".into());
    spec.bind_files = vec![
        (dir.path("hosts"), "/etc/hosts".into()),
        (dir.path("resolv"), "/etc/resolv.conf".into()),
    ];
    let (exit, log) = run_logged(spec, &dir);
    assert_eq!(exit, Exit::Code(0), "{log}");
    let expected = "rootfs-ok\n10.9.9.9 peer\nnameserver 10.9.9.1\nlo\n2\n/dev/null\n/etc\n\
                    /proc/1/ns/net\n";
    assert_eq!(log, expected);
    // The symlinks' targets were mounted over inside; on the host they are unchanged, and
    // the dangling one now exists (created empty, inside the rootfs only).
    assert_eq!(
        fs::read_to_string(root.join("etc/hosts.real")).unwrap(),
        "old\n"
    );
    assert_eq!(
        fs::read_to_string(root.join("run/resolv.conf")).unwrap(),
        ""
    );
    for dir in ["proc", "sys", "dev"] {
        assert!(root.join(dir).is_dir(), "mount point {dir} created");
    }
}

#[test]
fn exec_into_a_rootfs_container_sees_its_root() {
    require_root();
    let dir = TempDir::new("rootfsexec");
    let Some(root) = busybox_rootfs(&dir) else {
        return;
    };
    let mut spec = spec(&["sleep", "30"]);
    spec.rootfs = Some(root.clone());
    let running = create(&spec).unwrap().start().unwrap();
    let script = "cat /MARKER > /tmp/seen; ls /bin/busybox >> /tmp/seen";
    let code = exec(running.pid(), &strings(&["sh", "-c", script]), &[], None).unwrap();
    assert_eq!(code, 0);
    assert_eq!(
        fs::read_to_string(root.join("tmp/seen")).unwrap(),
        "rootfs-ok\n/bin/busybox\n"
    );
    let started = start_time(running.pid()).unwrap();
    assert!(kill(running.pid(), started, libc::SIGKILL).unwrap());
    assert_eq!(running.wait().unwrap(), Exit::Signal(9));
}

#[test]
fn cost_of_create_start_wait_for_true() {
    require_root();
    let spec = spec(&["true"]);
    let mut micros: Vec<u128> = (0..20)
        .map(|_| {
            let began = Instant::now();
            assert_eq!(run(&spec), Exit::Code(0));
            began.elapsed().as_micros()
        })
        .collect();
    micros.sort_unstable();
    println!(
        "container create+start+wait of `true`: median {:.2} ms (min {:.2}, max {:.2}) over {}",
        micros[micros.len() / 2] as f64 / 1000.0,
        micros[0] as f64 / 1000.0,
        micros[micros.len() - 1] as f64 / 1000.0,
        micros.len()
    );
}
