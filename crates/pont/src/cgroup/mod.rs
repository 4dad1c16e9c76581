//! Control groups: what a container may use (memory, CPU, processes) and what it uses.
//!
//! Every container gets the cgroup `pont/ID` under the root of each hierarchy pont uses,
//! made before its command runs; init is moved into it before it forks the command, and
//! `pont exec` moves its command in before the command starts, so every process of the
//! container is in it. It stays after the container exits (so the OOM killer's count can
//! be read, as Docker's `OOMKilled`) and is removed with the container.
//!
//! ```text
//!   v1 (separate hierarchies)                 v2 (unified)
//!   <memory root>/pont/ID/memory.limit_in_bytes   <root>/pont/ID/memory.max
//!   <cpu root>/pont/ID/cpu.cfs_quota_us           <root>/pont/ID/cpu.max
//!   <cpuacct root>/pont/ID/cpuacct.usage          <root>/pont/ID/cpu.stat
//!   <pids root>/pont/ID/pids.max                  <root>/pont/ID/pids.max
//! ```
//!
//! # Finding the hierarchies
//!
//! The version is chosen at run time: v1 if `/proc/self/cgroup` shows any of pont's
//! controllers (memory, cpu, cpuacct, pids) bound to a v1 hierarchy, else v2. Each
//! hierarchy is taken from `/proc/self/mountinfo` when this mount namespace shows a
//! whole, writable mount of it; otherwise (under `ip netns exec`, whose fresh `/sys` has
//! no cgroup mounts) pont mounts it itself, detached: see [`mount`](self::mount). A
//! controller that is not there makes only the requests that need it fail
//! ([`CgroupError::MissingController`]); containers without such limits still run.
//!
//! # Why not the `cgroups-rs` crate
//!
//! cgroups-rs 0.5 (kata-containers) was evaluated for this module. It handles both
//! versions, but it locates hierarchies only through paths: v1 from mountinfo and v2 at
//! a fixed `/sys/fs/cgroup`, with no way to mount one or to work relative to a
//! descriptor, so under `ip netns exec` it finds nothing. It also depends on zbus
//! (systemd's D-Bus) unconditionally: about 60 crates more, including an async runtime,
//! and about 90 s of extra CPU time for a clean build on this project's 2-core
//! machines. What pont needs is a handful of files per version, so this module writes
//! them itself: [`dir`](self::dir) opens every file relative to a directory descriptor,
//! [`v1`] and [`v2`] know the file names and formats.

mod detect;
mod dir;
mod error;
mod mount;
mod v1;
mod v2;

#[cfg(test)]
mod kernel_tests;
#[cfg(test)]
mod layout_tests;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub use error::CgroupError;

use crate::model::Limits;
use detect::Layout;
use dir::CgroupDir;

/// The directory under each hierarchy's root that holds pont's cgroups.
pub const PARENT: &str = "pont";

/// How often making a container's cgroup is tried when its parent vanished meanwhile.
const MAKE_ATTEMPTS: u32 = 5;

/// How long removal waits for the processes of a cgroup to be gone.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(3);

/// The controllers pont uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Controller {
    Memory,
    Cpu,
    /// CPU time accounting (a controller of its own in v1, built into v2).
    CpuAcct,
    Pids,
}

impl Controller {
    pub const ALL: [Controller; 4] = [
        Controller::Memory,
        Controller::Cpu,
        Controller::CpuAcct,
        Controller::Pids,
    ];

    /// The v1 name, as `/proc/self/cgroup` and mount options spell it.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::CpuAcct => "cpuacct",
            Controller::Pids => "pids",
        }
    }
}

impl std::fmt::Display for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        })
    }
}

/// One hierarchy pont uses: its root, and pont's controllers on it.
#[derive(Debug)]
struct Hierarchy {
    controllers: Vec<Controller>,
    root: CgroupDir,
}

/// The cgroup hierarchies of this machine as this process reaches them.
#[derive(Debug)]
pub struct Cgroups {
    version: Version,
    hierarchies: Vec<Hierarchy>,
    /// The directory under each root for pont's cgroups ([`PARENT`]; tests use their own).
    parent: String,
}

impl Cgroups {
    /// Detect the version and find (or mount) the hierarchies pont uses.
    pub fn open() -> Result<Cgroups, CgroupError> {
        let proc_cgroup = read_proc("/proc/self/cgroup")?;
        let mounts = detect::parse_mountinfo(&read_proc("/proc/self/mountinfo")?);
        match detect::layout(&proc_cgroup) {
            Layout::V1(list) => {
                let hierarchies = list
                    .into_iter()
                    .map(|h| {
                        let root = match detect::find_v1(&mounts, &h) {
                            Some(path) => open_mount(&path)?,
                            None => mount_detached(&h.options.join(","), || {
                                mount::mount_v1(&h.options)
                            })?,
                        };
                        Ok(Hierarchy {
                            controllers: h.controllers,
                            root,
                        })
                    })
                    .collect::<Result<_, CgroupError>>()?;
                Ok(Cgroups::with(Version::V1, hierarchies))
            }
            Layout::V2 => {
                let root = match detect::find_v2(&mounts) {
                    Some(path) => open_mount(&path)?,
                    None => mount_detached("cgroup2", mount::mount_v2)?,
                };
                Cgroups::v2_at(root)
            }
        }
    }

    fn with(version: Version, hierarchies: Vec<Hierarchy>) -> Cgroups {
        Cgroups {
            version,
            hierarchies,
            parent: PARENT.to_string(),
        }
    }

    /// The unified hierarchy whose root is `root`.
    fn v2_at(root: CgroupDir) -> Result<Cgroups, CgroupError> {
        let controllers = v2::available(&root)?;
        let hierarchy = Hierarchy { controllers, root };
        Ok(Cgroups::with(Version::V2, vec![hierarchy]))
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// pont's controllers that this machine has.
    pub fn available(&self) -> Vec<Controller> {
        let mut all: Vec<Controller> = self
            .hierarchies
            .iter()
            .flat_map(|h| h.controllers.iter().copied())
            .collect();
        all.sort_by_key(|c| Controller::ALL.iter().position(|a| a == c));
        all
    }

    /// Refuse limits that need a controller this machine lacks.
    pub fn check(&self, limits: &Limits) -> Result<(), CgroupError> {
        let needs = [
            (limits.memory.is_some(), "--memory", Controller::Memory),
            (
                limits.memory_swap.is_some(),
                "--memory-swap",
                Controller::Memory,
            ),
            (limits.nano_cpus.is_some(), "--cpus", Controller::Cpu),
            (limits.cpu_shares.is_some(), "--cpu-shares", Controller::Cpu),
            (limits.pids.is_some(), "--pids-limit", Controller::Pids),
        ];
        let available = self.available();
        for (asked, option, controller) in needs {
            if asked && !available.contains(&controller) {
                return Err(CgroupError::MissingController {
                    option,
                    controller,
                    version: self.version,
                    available,
                });
            }
        }
        Ok(())
    }

    /// Make container `id`'s cgroup with `limits` in every hierarchy, replacing an
    /// empty one left by an earlier run (so its OOM count starts at zero). On failure
    /// nothing of it is left.
    pub fn create(&self, id: &str, limits: &Limits) -> Result<Cgroup, CgroupError> {
        self.check(limits)?;
        self.remove_dirs(id)?;
        let made = self.make_dirs(id).and_then(|cgroup| {
            cgroup.apply(&Limits::default(), limits)?;
            Ok(cgroup)
        });
        made.map_err(|err| err.with_undo(self.remove(id)))
    }

    fn make_dirs(&self, id: &str) -> Result<Cgroup, CgroupError> {
        let mut dirs = Vec::new();
        for hierarchy in &self.hierarchies {
            let dir = self.make_dir(hierarchy, id)?;
            dirs.push((hierarchy.controllers.clone(), dir));
        }
        Ok(Cgroup {
            version: self.version,
            dirs,
        })
    }

    /// `PARENT/id` under one root. Another pont removing its last container removes an
    /// empty `PARENT`, maybe between our mkdir of it and of `id`: that shows as ENOENT,
    /// and making both again is the fix (`parent_removal_races_with_creation`).
    fn make_dir(&self, hierarchy: &Hierarchy, id: &str) -> Result<CgroupDir, CgroupError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.try_make_dir(hierarchy, id) {
                Err(CgroupError::Create {
                    source: Errno::ENOENT,
                    ..
                }) if attempts < MAKE_ATTEMPTS => continue,
                Ok(None) if attempts < MAKE_ATTEMPTS => continue,
                Ok(None) => {
                    return Err(CgroupError::Create {
                        path: hierarchy.root.shown(&self.parent),
                        source: Errno::ENOENT,
                    })
                }
                Ok(Some(dir)) => return Ok(dir),
                Err(err) => return Err(err),
            }
        }
    }

    fn try_make_dir(
        &self,
        hierarchy: &Hierarchy,
        id: &str,
    ) -> Result<Option<CgroupDir>, CgroupError> {
        if self.version == Version::V2 {
            v2::enable(&hierarchy.root, &hierarchy.controllers)?;
        }
        hierarchy.root.make_child(&self.parent)?;
        let Some(parent) = hierarchy.root.child(&self.parent)? else {
            return Ok(None);
        };
        if self.version == Version::V2 {
            v2::enable(&parent, &hierarchy.controllers)?;
        }
        parent.make_child(id)?;
        parent.child(id)
    }

    /// Container `id`'s cgroup, `None` if it has none (it never ran, or ran before
    /// pont made cgroups).
    pub fn find(&self, id: &str) -> Result<Option<Cgroup>, CgroupError> {
        let mut dirs = Vec::new();
        for hierarchy in &self.hierarchies {
            if let Some(dir) = hierarchy.root.child(&self.relative(id))? {
                dirs.push((hierarchy.controllers.clone(), dir));
            }
        }
        Ok((!dirs.is_empty()).then_some(Cgroup {
            version: self.version,
            dirs,
        }))
    }

    /// Remove container `id`'s cgroup from every hierarchy, killing any process still in
    /// it, and `PARENT` too if that was the last of pont's cgroups (so a machine with no
    /// containers keeps nothing of pont's). One already gone is fine; every hierarchy is
    /// tried, the first failure is returned.
    pub fn remove(&self, id: &str) -> Result<(), CgroupError> {
        self.remove_dirs(id)?;
        for hierarchy in &self.hierarchies {
            // EBUSY while other containers' cgroups are in it; a pont making one
            // meanwhile sees ENOENT and makes the parent again (`make_dir`).
            let _ = hierarchy.root.remove_child(&self.parent);
        }
        Ok(())
    }

    fn remove_dirs(&self, id: &str) -> Result<(), CgroupError> {
        let relative = self.relative(id);
        let mut first_error = None;
        for hierarchy in &self.hierarchies {
            if let Err(err) = remove_dir(&hierarchy.root, &relative) {
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn relative(&self, id: &str) -> String {
        format!("{}/{id}", self.parent)
    }
}

fn read_proc(path: &str) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::ReadProc {
        path: PathBuf::from(path),
        source,
    })
}

fn open_mount(path: &Path) -> Result<CgroupDir, CgroupError> {
    CgroupDir::open(path).map_err(|source| CgroupError::OpenMount {
        path: path.to_path_buf(),
        source,
    })
}

fn mount_detached(
    hierarchy: &str,
    mount: impl FnOnce() -> Result<OwnedFd, Errno>,
) -> Result<CgroupDir, CgroupError> {
    let fd = mount().map_err(|source| CgroupError::Mount {
        hierarchy: hierarchy.to_string(),
        source,
    })?;
    // Errors name it as `cgroup(memory):/pont/ID`: it has no path.
    Ok(CgroupDir::from_fd(
        fd,
        PathBuf::from(format!("cgroup({hierarchy}):")),
    ))
}

/// Kill what is left in `root/relative` and rmdir it.
fn remove_dir(root: &CgroupDir, relative: &str) -> Result<(), CgroupError> {
    let Some(dir) = root.child(relative)? else {
        return Ok(());
    };
    let deadline = Instant::now() + REMOVE_TIMEOUT;
    loop {
        kill_all(&dir)?;
        match root.remove_child(relative) {
            Ok(()) | Err(Errno::ENOENT) => return Ok(()),
            // Processes still exiting (a killed task leaves its cgroup only at the end
            // of its exit), or a child cgroup made by someone else.
            Err(Errno::EBUSY) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: dir.path().to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// SIGKILL every process listed in the cgroup's `cgroup.procs` (PIDs as this process
/// sees them).
fn kill_all(dir: &CgroupDir) -> Result<(), CgroupError> {
    let Some(procs) = dir.read_optional(PROCS)? else {
        return Ok(());
    };
    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        match kill(Pid::from_raw(pid), Signal::SIGKILL) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(source) => {
                return Err(CgroupError::Kill {
                    pid,
                    path: dir.shown(PROCS),
                    source,
                })
            }
        }
    }
    Ok(())
}

const PROCS: &str = "cgroup.procs";

/// One container's cgroup: its directory in each hierarchy pont uses.
#[derive(Debug)]
pub struct Cgroup {
    version: Version,
    dirs: Vec<(Vec<Controller>, CgroupDir)>,
}

/// What a container uses now. `None`: the controller is not available.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes in use, without the inactive page cache (as `docker stats`).
    pub memory_usage: Option<u64>,
    /// The memory limit in bytes; `None` for none (or no memory controller).
    pub memory_limit: Option<u64>,
    /// CPU time used since the cgroup was made, in nanoseconds.
    pub cpu_usage_ns: Option<u64>,
    /// Processes and threads.
    pub pids: Option<u64>,
}

impl Stats {
    /// CPU use between `earlier` and these stats, `wall` apart, in percent of one CPU
    /// (200 is two CPUs busy), as `docker stats` shows it.
    pub fn cpu_percent(&self, earlier: &Stats, wall: Duration) -> Option<f64> {
        let used = self.cpu_usage_ns?.checked_sub(earlier.cpu_usage_ns?)?;
        let wall_ns = wall.as_nanos();
        (wall_ns > 0).then(|| used as f64 * 100.0 / wall_ns as f64)
    }
}

/// One write of a limit: which controller's directory, which file, what value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Write {
    pub controller: Controller,
    pub file: &'static str,
    pub value: String,
}

impl Write {
    fn new(controller: Controller, file: &'static str, value: impl ToString) -> Write {
        Write {
            controller,
            file,
            value: value.to_string(),
        }
    }
}

impl Cgroup {
    pub fn version(&self) -> Version {
        self.version
    }

    /// Its directories, one per hierarchy (for messages and tests).
    pub fn paths(&self) -> Vec<&Path> {
        self.dirs.iter().map(|(_, dir)| dir.path()).collect()
    }

    fn dir(&self, controller: Controller) -> Option<&CgroupDir> {
        self.dirs
            .iter()
            .find(|(controllers, _)| controllers.contains(&controller))
            .map(|(_, dir)| dir)
    }

    /// Move process `pid` (as this process sees it) into the cgroup, in every hierarchy.
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        for (_, dir) in &self.dirs {
            dir.write(PROCS, &pid.to_string())
                .map_err(|err| match err {
                    CgroupError::Write { path, source, .. } => {
                        CgroupError::Join { pid, path, source }
                    }
                    other => other,
                })?;
        }
        Ok(())
    }

    /// Its `cgroup.procs` files, open for writing, for a process that will write itself
    /// into them (`pont exec`'s helper, see [`crate::container::exec_joining`]).
    pub fn procs_files(&self) -> Result<Vec<OwnedFd>, CgroupError> {
        self.dirs
            .iter()
            .map(|(_, dir)| dir.open_for_write(PROCS))
            .collect()
    }

    /// Change the limits from `current` to `new`: only the files whose value changes are
    /// written. If a write fails, the files already written get their old values back.
    pub fn apply(&self, current: &Limits, new: &Limits) -> Result<(), CgroupError> {
        let writes = self.plan(current, new)?;
        let mut undo: Vec<(&CgroupDir, &'static str, String)> = Vec::new();
        for write in writes {
            let dir = self
                .dir(write.controller)
                .ok_or_else(|| CgroupError::MissingController {
                    option: option_of(write.controller),
                    controller: write.controller,
                    version: self.version,
                    available: self.dirs.iter().flat_map(|(c, _)| c.clone()).collect(),
                })?;
            let step = dir
                .read(write.file)
                .and_then(|old| dir.write(write.file, &write.value).map(|()| old));
            match step {
                // Every file pont writes accepts what it reads back ("max 100000",
                // v1's number for "no limit"), so the old value is the undo.
                Ok(old) => undo.push((dir, write.file, old.trim().to_string())),
                Err(err) => return Err(err.with_undo(restore(undo))),
            }
        }
        Ok(())
    }

    /// The writes from `current` to `new`, in an order the kernel accepts.
    fn plan(&self, current: &Limits, new: &Limits) -> Result<Vec<Write>, CgroupError> {
        let memory = self.dir(Controller::Memory);
        let swap_file = match self.version {
            Version::V1 => v1::MEMSW_LIMIT,
            Version::V2 => v2::SWAP_MAX,
        };
        let swap_accounting = memory.is_some_and(|dir| dir.has(swap_file));
        if let (Some(dir), Some(_), false) = (memory, new.memory_swap, swap_accounting) {
            return Err(CgroupError::NoSwapAccounting {
                option: "--memory-swap",
                path: dir.path().to_path_buf(),
                file: swap_file,
            });
        }
        let plan = |limits| match self.version {
            Version::V1 => v1::plan(limits, swap_accounting),
            Version::V2 => v2::plan(limits, swap_accounting),
        };
        let before = plan(current);
        let changes: Vec<Write> = plan(new)
            .into_iter()
            .filter(|w| !before.contains(w))
            .collect();
        match (self.version, memory) {
            (Version::V1, Some(dir)) if changes.iter().any(|w| w.file == v1::MEMSW_LIMIT) => {
                let memsw_now = v1::limit_value(parse_u64(dir, v1::MEMSW_LIMIT)?);
                Ok(v1::order_memory(changes, memsw_now))
            }
            _ => Ok(changes),
        }
    }

    pub fn stats(&self) -> Result<Stats, CgroupError> {
        match self.version {
            Version::V1 => v1::stats(self),
            Version::V2 => v2::stats(self),
        }
    }

    /// Whether the kernel's OOM killer killed a process of this cgroup.
    pub fn oom_killed(&self) -> Result<bool, CgroupError> {
        match self.version {
            Version::V1 => v1::oom_killed(self),
            Version::V2 => v2::oom_killed(self),
        }
    }
}

/// The option a controller's limits come from, for messages.
fn option_of(controller: Controller) -> &'static str {
    match controller {
        Controller::Memory => "--memory",
        Controller::Cpu | Controller::CpuAcct => "--cpus",
        Controller::Pids => "--pids-limit",
    }
}

/// Write the old values back, newest first, so each step goes through states the
/// kernel already accepted.
fn restore(undo: Vec<(&CgroupDir, &'static str, String)>) -> Result<(), CgroupError> {
    let mut first_error = None;
    for (dir, file, old) in undo.into_iter().rev() {
        if let Err(err) = dir.write(file, &old) {
            first_error.get_or_insert(err);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// A file holding one number.
fn parse_u64(dir: &CgroupDir, file: &str) -> Result<u64, CgroupError> {
    let text = dir.read(file)?;
    text.trim().parse().map_err(|_| CgroupError::Parse {
        path: dir.shown(file),
        content: text,
    })
}

/// A file holding a number or `max` (`None`).
fn parse_max(dir: &CgroupDir, file: &str) -> Result<Option<u64>, CgroupError> {
    let text = dir.read(file)?;
    match text.trim() {
        "max" => Ok(None),
        number => number.parse().map(Some).map_err(|_| CgroupError::Parse {
            path: dir.shown(file),
            content: text.clone(),
        }),
    }
}

/// The value of `key` in a flat keyed file (`KEY VALUE` per line, as memory.stat,
/// cpu.stat, memory.events, memory.oom_control); `None` if the file or key is missing.
fn stat_value(dir: &CgroupDir, file: &str, key: &str) -> Result<Option<u64>, CgroupError> {
    let Some(text) = dir.read_optional(file)? else {
        return Ok(None);
    };
    let Some(line) = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(key))
    else {
        return Ok(None);
    };
    let value = line.split_whitespace().nth(1).and_then(|v| v.parse().ok());
    value.map(Some).ok_or_else(|| CgroupError::Parse {
        path: dir.shown(file),
        content: line.to_string(),
    })
}
