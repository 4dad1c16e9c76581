//! Real cgroups on this machine: v1 as found in `/sys/fs/cgroup` and as pont mounts it
//! detached, v2 on a detached cgroup2 mount. Each test works under a parent of its own
//! (`pont-t-PID-N`, not `pont`), which its guard removes with everything in it, even
//! when the test fails.

use std::cell::RefCell;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::detect::{self, Layout};
use super::dir::CgroupDir;
use super::hierarchies::Hierarchy;
use super::{mount, Cgroup, CgroupError, Cgroups, Controller, Version};
use crate::container::{self, Exit, Spec};
use crate::model::Limits;

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "cgroup tests must run as root"
    );
}

/// Cgroups under a parent unique to the test; dropping it removes them all.
struct Guarded {
    cgroups: Cgroups,
    ids: RefCell<Vec<String>>,
}

impl Guarded {
    fn new(mut cgroups: Cgroups) -> Guarded {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        cgroups.parent = format!("pont-t-{}-{n}", std::process::id());
        Guarded {
            cgroups,
            ids: RefCell::new(Vec::new()),
        }
    }

    fn create(&self, id: &str, limits: &Limits) -> Result<Cgroup, CgroupError> {
        self.ids.borrow_mut().push(id.to_string());
        self.cgroups.create(id, limits)
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self.cgroups.remove(id);
        }
        for hierarchy in &self.cgroups.hierarchies {
            let _ = hierarchy.root.remove_child(&self.cgroups.parent);
        }
    }
}

fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
        .trim()
        .to_string()
}

/// The directory of `cgroup` that holds `file`.
fn dir_with(cgroup: &Cgroup, file: &str) -> PathBuf {
    let found = cgroup.paths().into_iter().find(|p| p.join(file).exists());
    found
        .unwrap_or_else(|| panic!("no directory of {:?} has {file}", cgroup.paths()))
        .to_path_buf()
}

fn v1_or_skip(test: &str) -> Option<Cgroups> {
    let cgroups = Cgroups::open().unwrap();
    if cgroups.version() != Version::V1 {
        eprintln!("{test}: SKIPPED, this machine's controllers are not on cgroup v1");
        return None;
    }
    Some(cgroups)
}

#[test]
fn v1_limits_updates_and_undo_in_sys_fs_cgroup() {
    require_root();
    let Some(cgroups) = v1_or_skip("v1_limits_updates_and_undo_in_sys_fs_cgroup") else {
        return;
    };
    assert_eq!(cgroups.available(), Controller::ALL);
    let guarded = Guarded::new(cgroups);
    let limits = Limits {
        memory: Some(32 << 20),
        nano_cpus: Some(500_000_000),
        cpu_shares: Some(512),
        pids: Some(20),
        ..Limits::default()
    };
    let cgroup = guarded.create("limits", &limits).unwrap();
    let memory = dir_with(&cgroup, "memory.limit_in_bytes");
    let cpu = dir_with(&cgroup, "cpu.cfs_quota_us");
    let pids = dir_with(&cgroup, "pids.max");
    assert!(memory.starts_with("/sys/fs/cgroup"), "{}", memory.display());
    assert_eq!(read(&memory, "memory.limit_in_bytes"), "33554432");
    assert_eq!(read(&memory, "memory.memsw.limit_in_bytes"), "67108864");
    assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "50000");
    assert_eq!(read(&cpu, "cpu.cfs_period_us"), "100000");
    assert_eq!(read(&cpu, "cpu.shares"), "512");
    assert_eq!(read(&pids, "pids.max"), "20");

    // Raising memory above the current memory+swap limit needs memsw written first.
    let raised = limits.merged(&Limits {
        memory: Some(128 << 20),
        ..Limits::default()
    });
    cgroup.apply(&limits, &raised).unwrap();
    assert_eq!(read(&memory, "memory.limit_in_bytes"), "134217728");
    assert_eq!(read(&memory, "memory.memsw.limit_in_bytes"), "268435456");
    let lowered = raised.merged(&Limits {
        memory: Some(16 << 20),
        ..Limits::default()
    });
    cgroup.apply(&raised, &lowered).unwrap();
    assert_eq!(read(&memory, "memory.limit_in_bytes"), "16777216");

    // A quota below the kernel's 1 ms minimum is EINVAL after memory was changed: the
    // memory limits get their old values back.
    let refused = lowered.merged(&Limits {
        memory: Some(64 << 20),
        nano_cpus: Some(1_000_000),
        ..Limits::default()
    });
    let err = cgroup.apply(&lowered, &refused).unwrap_err();
    assert!(
        matches!(&err, CgroupError::Write { path, .. } if path.ends_with("cpu.cfs_quota_us")),
        "{err}"
    );
    assert_eq!(read(&memory, "memory.limit_in_bytes"), "16777216");
    assert_eq!(read(&memory, "memory.memsw.limit_in_bytes"), "33554432");
    assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "50000");
}

#[test]
fn v1_init_command_and_exec_are_in_the_cgroup_and_remove_kills_them() {
    require_root();
    let Some(cgroups) = v1_or_skip("v1_init_command_and_exec_are_in_the_cgroup") else {
        return;
    };
    let guarded = Guarded::new(cgroups);
    let parent = guarded.cgroups.parent.clone();
    let limits = Limits {
        memory: Some(64 << 20),
        ..Limits::default()
    };
    let cgroup = guarded.create("procs", &limits).unwrap();
    let created = container::create(&Spec::new(vec!["sleep".into(), "30".into()], "cg")).unwrap();
    cgroup.add_process(created.pid()).unwrap();
    let running = created.start().unwrap();
    let init = running.pid();

    let expected = format!("/{parent}/procs");
    let in_cgroup = |text: &str, controller: &str| {
        text.lines().any(|l| {
            let mut f = l.splitn(3, ':').skip(1);
            f.next()
                .is_some_and(|c| c.split(',').any(|c| c == controller))
                && f.next() == Some(expected.as_str())
        })
    };
    let init_cgroups = fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
    let children = fs::read_to_string(format!("/proc/{init}/task/{init}/children")).unwrap();
    let command: i32 = children.split_whitespace().next().unwrap().parse().unwrap();
    let command_cgroups = fs::read_to_string(format!("/proc/{command}/cgroup")).unwrap();
    let out = std::env::temp_dir().join(format!("pont-t-cgexec-{}", std::process::id()));
    let script = format!("cat /proc/self/cgroup > {}", out.display());
    let procs = cgroup.procs_files().unwrap();
    let argv = vec!["sh".to_string(), "-c".to_string(), script];
    let code = container::exec_joining(init, &argv, &[], None, &procs).unwrap();
    let exec_cgroups = fs::read_to_string(&out).unwrap();
    let _ = fs::remove_file(&out);
    assert_eq!(code, 0);
    for controller in ["memory", "cpu", "cpuacct", "pids"] {
        assert!(in_cgroup(&init_cgroups, controller), "init: {init_cgroups}");
        assert!(
            in_cgroup(&command_cgroups, controller),
            "command: {command_cgroups}"
        );
        assert!(in_cgroup(&exec_cgroups, controller), "exec: {exec_cgroups}");
    }

    let stats = cgroup.stats().unwrap();
    assert_eq!(stats.pids, Some(2), "init and sleep: {stats:?}");
    assert_eq!(stats.memory_limit, Some(64 << 20));
    assert!(stats.memory_usage.is_some_and(|m| m > 0), "{stats:?}");
    assert!(stats.cpu_usage_ns.is_some_and(|n| n > 0), "{stats:?}");
    assert!(!cgroup.oom_killed().unwrap());

    let paths: Vec<PathBuf> = cgroup.paths().iter().map(|p| p.to_path_buf()).collect();
    guarded.cgroups.remove("procs").unwrap();
    assert_eq!(running.wait().unwrap(), Exit::Signal(9));
    for path in paths {
        assert!(!path.exists(), "{} still there", path.display());
    }
    assert!(guarded.cgroups.find("procs").unwrap().is_none());
    guarded.cgroups.remove("procs").unwrap();
}

#[test]
fn v1_hierarchies_mounted_detached_are_the_hosts() {
    require_root();
    let Layout::V1(list) = detect::layout(&fs::read_to_string("/proc/self/cgroup").unwrap()) else {
        eprintln!("v1_hierarchies_mounted_detached_are_the_hosts: SKIPPED, not cgroup v1");
        return;
    };
    let hierarchies = list
        .into_iter()
        .map(|h| Hierarchy {
            root: CgroupDir::from_fd(
                mount::mount_v1(&h.options).unwrap(),
                PathBuf::from(format!("cgroup({}):", h.options.join(","))),
            ),
            controllers: h.controllers,
        })
        .collect();
    let guarded = Guarded::new(Cgroups::with(Version::V1, hierarchies));
    let cgroup = guarded.create("detached", &Limits::default()).unwrap();
    let shown = cgroup.paths()[0].to_string_lossy().into_owned();
    assert!(shown.starts_with("cgroup("), "{shown}");
    let parent = &guarded.cgroups.parent;
    let on_host = Path::new("/sys/fs/cgroup/memory")
        .join(parent)
        .join("detached");
    if Path::new("/sys/fs/cgroup/memory").is_dir() {
        assert!(on_host.is_dir(), "{} missing", on_host.display());
    }
    let other = guarded.create("other", &Limits::default()).unwrap();
    guarded.cgroups.remove("detached").unwrap();
    assert!(!on_host.exists());
    assert!(other.paths().len() == cgroup.paths().len());
    let parent_on_host = on_host.parent().unwrap();
    if Path::new("/sys/fs/cgroup/memory").is_dir() {
        assert!(
            parent_on_host.is_dir(),
            "parent removed under another cgroup"
        );
    }
    // The last one takes the parent with it.
    guarded.cgroups.remove("other").unwrap();
    assert!(
        !parent_on_host.exists(),
        "{} left",
        parent_on_host.display()
    );
}

#[test]
fn v2_on_a_real_cgroup2_mount() {
    require_root();
    let root = CgroupDir::from_fd(mount::mount_v2().unwrap(), PathBuf::from("cgroup2:"));
    let guarded = Guarded::new(Cgroups::v2_at(root).unwrap());
    let available = guarded.cgroups.available();
    assert!(available.contains(&Controller::CpuAcct), "{available:?}");
    let memory = Limits {
        memory: Some(32 << 20),
        ..Limits::default()
    };
    if !available.contains(&Controller::Memory) {
        // As on this project's machines: memory is bound to v1, v2 cannot have it.
        let err = guarded.create("nomem", &memory).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("--memory needs the cgroup v2 controller memory"),
            "{text}"
        );
        assert!(guarded.cgroups.find("nomem").unwrap().is_none());
    }
    let limits = if available.contains(&Controller::Memory) {
        memory
    } else {
        Limits::default()
    };
    let cgroup = guarded.create("v2", &limits).unwrap();
    let mut sleeper = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = i32::try_from(sleeper.id()).unwrap();
    cgroup.add_process(pid).unwrap();
    let membership = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let expected = format!("0::/{}/v2", guarded.cgroups.parent);
    assert!(membership.lines().any(|l| l == expected), "{membership}");
    let stats = cgroup.stats().unwrap();
    assert!(stats.cpu_usage_ns.is_some(), "{stats:?}");
    if limits.memory.is_some() {
        assert_eq!(stats.memory_limit, Some(32 << 20));
    }
    guarded.cgroups.remove("v2").unwrap();
    let status = sleeper.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    assert!(guarded.cgroups.find("v2").unwrap().is_none());
}

#[test]
fn cost_of_open_create_remove() {
    require_root();
    let median = |mut micros: Vec<u128>| {
        micros.sort_unstable();
        micros[micros.len() / 2] as f64 / 1000.0
    };
    let time = |f: &mut dyn FnMut()| {
        let began = std::time::Instant::now();
        f();
        began.elapsed().as_micros()
    };
    let open: Vec<u128> = (0..20)
        .map(|_| time(&mut || drop(Cgroups::open().unwrap())))
        .collect();
    let mounted: Vec<u128> = (0..20)
        .map(|_| time(&mut || drop(mount::mount_v1(&["memory".to_string()]).unwrap())))
        .collect();
    let guarded = Guarded::new(Cgroups::open().unwrap());
    let limits = Limits {
        memory: Some(64 << 20),
        pids: Some(100),
        ..Limits::default()
    };
    let mut create = Vec::new();
    let mut remove = Vec::new();
    for n in 0..20 {
        let id = format!("cost{n}");
        create.push(time(&mut || drop(guarded.create(&id, &limits).unwrap())));
        remove.push(time(&mut || guarded.cgroups.remove(&id).unwrap()));
    }
    println!(
        "cgroups ({}): open {:.2} ms, one detached v1 mount {:.2} ms, create with 2 limits \
         {:.2} ms, remove {:.2} ms (medians of 20)",
        guarded.cgroups.version(),
        median(open),
        median(mounted),
        median(create),
        median(remove)
    );
}

/// Removing the last cgroup takes the parent with it while another thread (as another
/// pont process would) makes one: the maker must retry, neither may fail.
#[test]
fn parent_removal_races_with_creation() {
    require_root();
    let guarded = Guarded::new(Cgroups::open().unwrap());
    std::thread::scope(|scope| {
        for name in ["race-a", "race-b"] {
            guarded.ids.borrow_mut().push(name.to_string());
        }
        let cgroups = &guarded.cgroups;
        let workers: Vec<_> = ["race-a", "race-b"]
            .into_iter()
            .map(|name| {
                scope.spawn(move || {
                    for _ in 0..100 {
                        cgroups.create(name, &Limits::default())?;
                        cgroups.remove(name)?;
                    }
                    Ok::<(), CgroupError>(())
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap().unwrap();
        }
    });
}
