//! The hierarchies as this process reaches them ([`Cgroups`]), and making, finding and
//! removing a container's cgroup in all of them.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::detect::{self, Layout};
use super::dir::CgroupDir;
use super::{mount, v2, Cgroup, CgroupError, Controller, Version, PARENT, PROCS};
use crate::model::Limits;

/// How often making a container's cgroup is tried when its parent vanished meanwhile.
const MAKE_ATTEMPTS: u32 = 5;

/// How long removal waits for the processes of a cgroup to be gone.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(3);

/// One hierarchy pont uses: its root, and pont's controllers on it.
#[derive(Debug)]
pub(super) struct Hierarchy {
    pub(super) controllers: Vec<Controller>,
    pub(super) root: CgroupDir,
}

/// The cgroup hierarchies of this machine as this process reaches them.
#[derive(Debug)]
pub struct Cgroups {
    version: Version,
    pub(super) hierarchies: Vec<Hierarchy>,
    /// The directory under each root for pont's cgroups ([`PARENT`]; tests use their own).
    pub(super) parent: String,
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

    pub(super) fn with(version: Version, hierarchies: Vec<Hierarchy>) -> Cgroups {
        Cgroups {
            version,
            hierarchies,
            parent: PARENT.to_string(),
        }
    }

    /// The unified hierarchy whose root is `root`.
    pub(super) fn v2_at(root: CgroupDir) -> Result<Cgroups, CgroupError> {
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
