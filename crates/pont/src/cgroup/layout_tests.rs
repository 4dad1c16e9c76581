//! The v2 code path on a temporary directory laid out like a cgroup v2 cgroup: the file
//! names, initial contents and formats of a fresh child cgroup with the memory, cpu and
//! pids controllers enabled (Documentation/admin-guide/cgroup-v2.rst), so the writes of
//! limits, the undo, the stats and the OOM flag are checked byte for byte.
//!
//! This is not a real v2 hierarchy: the kernel's own checks (ranges, the order of
//! writes, EBUSY) are not exercised here. `kernel_tests` runs the v2 code on a real
//! cgroup2 mount, which on this project's machines offers none of pont's controllers
//! (they are bound to v1), so the two together cover v2 as far as these machines allow.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::dir::CgroupDir;
use super::{v2, Cgroup, CgroupError, Controller, Stats, Version};
use crate::model::{Limits, MemorySwap};

struct Layout(PathBuf);

impl Layout {
    /// A fresh v2 child cgroup: no limits, some use.
    fn new() -> Layout {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("pont-t-v2-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        let files = [
            ("cgroup.procs", ""),
            ("cgroup.controllers", "cpu memory pids\n"),
            ("cgroup.subtree_control", "\n"),
            ("memory.max", "max\n"),
            ("memory.swap.max", "max\n"),
            ("memory.current", "10485760\n"),
            (
                "memory.stat",
                "anon 6291456\nfile 4194304\nactive_file 1048576\ninactive_file 2097152\n",
            ),
            (
                "memory.events",
                "low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\noom_group_kill 0\n",
            ),
            ("cpu.max", "max 100000\n"),
            ("cpu.weight", "100\n"),
            (
                "cpu.stat",
                "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n",
            ),
            ("pids.max", "max\n"),
            ("pids.current", "3\n"),
        ];
        for (name, content) in files {
            fs::write(path.join(name), content).unwrap();
        }
        Layout(path)
    }

    fn cgroup(&self) -> Cgroup {
        Cgroup {
            version: Version::V2,
            dirs: vec![(Controller::ALL.to_vec(), CgroupDir::open(&self.0).unwrap())],
        }
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.0.join(name)).unwrap()
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Layout {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn limits() -> Limits {
    Limits {
        memory: Some(32 << 20),
        memory_swap: Some(MemorySwap::Bytes(48 << 20)),
        nano_cpus: Some(500_000_000),
        cpu_shares: Some(512),
        pids: Some(20),
    }
}

#[test]
fn limits_land_in_the_v2_files() {
    let layout = Layout::new();
    layout
        .cgroup()
        .apply(&Limits::default(), &limits())
        .unwrap();
    assert_eq!(layout.read("memory.max"), "33554432");
    assert_eq!(layout.read("memory.swap.max"), "16777216");
    assert_eq!(layout.read("cpu.max"), "50000 100000");
    assert_eq!(layout.read("cpu.weight"), "20");
    assert_eq!(layout.read("pids.max"), "20");
}

#[test]
fn an_update_writes_only_what_changes() {
    let layout = Layout::new();
    let cgroup = layout.cgroup();
    cgroup.apply(&Limits::default(), &limits()).unwrap();
    // Mark the files; an update of memory alone must leave the others untouched.
    for name in ["cpu.max", "pids.max", "cpu.weight"] {
        fs::write(layout.path().join(name), "untouched").unwrap();
    }
    let raised = limits().merged(&Limits {
        memory: Some(40 << 20),
        ..Limits::default()
    });
    cgroup.apply(&limits(), &raised).unwrap();
    assert_eq!(layout.read("memory.max"), "41943040");
    assert_eq!(layout.read("memory.swap.max"), "8388608");
    assert_eq!(layout.read("cpu.max"), "untouched");
    assert_eq!(layout.read("pids.max"), "untouched");
}

#[test]
fn a_failed_write_restores_the_files_already_written() {
    let layout = Layout::new();
    // pids.max cannot be read or written: a directory stands in its place.
    fs::remove_file(layout.path().join("pids.max")).unwrap();
    fs::create_dir(layout.path().join("pids.max")).unwrap();
    let err = layout
        .cgroup()
        .apply(&Limits::default(), &limits())
        .unwrap_err();
    assert!(
        matches!(
            &err,
            CgroupError::Read { path, .. } | CgroupError::Write { path, .. }
                if path.ends_with("pids.max")
        ),
        "{err}"
    );
    assert_eq!(layout.read("memory.max"), "max");
    assert_eq!(layout.read("memory.swap.max"), "max");
    assert_eq!(layout.read("cpu.max"), "max 100000");
    assert_eq!(layout.read("cpu.weight"), "100");
}

#[test]
fn stats_and_oom_from_the_v2_files() {
    let layout = Layout::new();
    let cgroup = layout.cgroup();
    let stats = cgroup.stats().unwrap();
    assert_eq!(
        stats,
        Stats {
            memory_usage: Some(10_485_760 - 2_097_152),
            memory_limit: None,
            cpu_usage_ns: Some(2_500_000_000),
            pids: Some(3),
        }
    );
    assert!(!cgroup.oom_killed().unwrap());
    fs::write(layout.path().join("memory.max"), "33554432\n").unwrap();
    fs::write(layout.path().join("memory.events"), "oom 2\noom_kill 1\n").unwrap();
    assert_eq!(cgroup.stats().unwrap().memory_limit, Some(32 << 20));
    assert!(cgroup.oom_killed().unwrap());
    let later = Stats {
        cpu_usage_ns: Some(3_000_000_000),
        ..stats
    };
    let percent = later
        .cpu_percent(&stats, std::time::Duration::from_secs(1))
        .unwrap();
    assert!((percent - 50.0).abs() < 1e-9, "{percent}");
}

#[test]
fn explicit_swap_without_swap_accounting_is_refused() {
    let layout = Layout::new();
    fs::remove_file(layout.path().join("memory.swap.max")).unwrap();
    let err = layout
        .cgroup()
        .apply(&Limits::default(), &limits())
        .unwrap_err();
    assert!(matches!(err, CgroupError::NoSwapAccounting { .. }), "{err}");
    assert_eq!(layout.read("memory.max"), "max\n", "nothing written");
    // The default (twice --memory) is skipped instead.
    let memory_only = Limits {
        memory: Some(32 << 20),
        ..Limits::default()
    };
    layout
        .cgroup()
        .apply(&Limits::default(), &memory_only)
        .unwrap();
    assert_eq!(layout.read("memory.max"), "33554432");
}

#[test]
fn controllers_offered_and_enabled() {
    let layout = Layout::new();
    let root = CgroupDir::open(layout.path()).unwrap();
    assert_eq!(
        v2::available(&root).unwrap(),
        [
            Controller::Memory,
            Controller::Cpu,
            Controller::CpuAcct,
            Controller::Pids
        ]
    );
    v2::enable(&root, &Controller::ALL).unwrap();
    assert_eq!(layout.read("cgroup.subtree_control"), "+memory +cpu +pids");
    // Already enabled: nothing written.
    fs::write(
        layout.path().join("cgroup.subtree_control"),
        "cpu memory pids\n",
    )
    .unwrap();
    v2::enable(&root, &Controller::ALL).unwrap();
    assert_eq!(layout.read("cgroup.subtree_control"), "cpu memory pids\n");
    fs::write(layout.path().join("cgroup.controllers"), "cpuset io\n").unwrap();
    assert_eq!(v2::available(&root).unwrap(), [Controller::CpuAcct]);
}

#[test]
fn exec_gets_the_procs_file_and_add_process_writes_the_pid() {
    let layout = Layout::new();
    let cgroup = layout.cgroup();
    cgroup.add_process(4242).unwrap();
    assert_eq!(layout.read("cgroup.procs"), "4242");
    assert_eq!(cgroup.procs_files().unwrap().len(), 1);
}
