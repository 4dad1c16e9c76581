//! One container's cgroup ([`Cgroup`]): joining it, its limits, its use.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use super::dir::CgroupDir;
use super::{v1, v2, CgroupError, Controller, Version, PROCS};
use crate::model::Limits;

/// One container's cgroup: its directory in each hierarchy pont uses.
#[derive(Debug)]
pub struct Cgroup {
    pub(super) version: Version,
    pub(super) dirs: Vec<(Vec<Controller>, CgroupDir)>,
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
pub(super) struct Write {
    pub controller: Controller,
    pub file: &'static str,
    pub value: String,
}

impl Write {
    pub(super) fn new(controller: Controller, file: &'static str, value: impl ToString) -> Write {
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

    pub(super) fn dir(&self, controller: Controller) -> Option<&CgroupDir> {
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
pub(super) fn parse_u64(dir: &CgroupDir, file: &str) -> Result<u64, CgroupError> {
    let text = dir.read(file)?;
    text.trim().parse().map_err(|_| CgroupError::Parse {
        path: dir.shown(file),
        content: text,
    })
}

/// A file holding a number or `max` (`None`).
pub(super) fn parse_max(dir: &CgroupDir, file: &str) -> Result<Option<u64>, CgroupError> {
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
pub(super) fn stat_value(
    dir: &CgroupDir,
    file: &str,
    key: &str,
) -> Result<Option<u64>, CgroupError> {
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
