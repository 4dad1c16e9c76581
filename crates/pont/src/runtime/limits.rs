//! Resource limits of containers: the cgroup made before a container's command runs,
//! read when it exits, removed with it; `pont update` and `pont stats`.

use super::{Runtime, RuntimeError};
use crate::cgroup::{Cgroup, Cgroups, Stats};
use crate::container;
use crate::model::{online_cpus, ContainerRecord, ContainerState, Limits};

/// One container's use of resources at one moment.
#[derive(Debug, Clone)]
pub struct ContainerStats {
    pub id: String,
    pub name: String,
    pub limits: Limits,
    /// All `None` when the container has no cgroup (it never ran).
    pub stats: Stats,
}

impl Runtime {
    /// The cgroup hierarchies, found or mounted once per pont process.
    pub fn cgroups(&self) -> Result<&Cgroups, RuntimeError> {
        if let Some(cgroups) = self.cgroups.get() {
            return Ok(cgroups);
        }
        let cgroups = Cgroups::open()?;
        Ok(self.cgroups.get_or_init(|| cgroups))
    }

    /// Refuse limits that conflict, exceed the machine, or need a missing controller.
    pub(super) fn check_limits(&self, limits: &Limits) -> Result<(), RuntimeError> {
        limits.validate(online_cpus())?;
        Ok(self.cgroups()?.check(limits)?)
    }

    /// Make the container's cgroup, with its limits, before its init exists.
    pub(super) fn make_cgroup(&self, rec: &ContainerRecord) -> Result<Cgroup, RuntimeError> {
        Ok(self.cgroups()?.create(&rec.id, &rec.limits)?)
    }

    /// Whether the OOM killer struck the container's cgroup during its last run.
    ///
    /// Read when the exit is recorded. A failure to read it counts as "no": the exit
    /// must be recorded whatever happens here, and the monitor that records it has no
    /// one to report to.
    pub(super) fn read_oom_killed(&self, id: &str) -> bool {
        let Ok(cgroups) = self.cgroups() else {
            return false;
        };
        matches!(cgroups.find(id), Ok(Some(cg)) if cg.oom_killed().unwrap_or(false))
    }

    /// Remove the container's cgroup (gone already is fine).
    pub(super) fn remove_cgroup(&self, id: &str) -> Result<(), RuntimeError> {
        Ok(self.cgroups()?.remove(id)?)
    }

    /// The `cgroup.procs` files an exec'd command writes itself into. None for a
    /// container without a cgroup (one started before pont made cgroups).
    pub(super) fn exec_cgroup_files(
        &self,
        id: &str,
    ) -> Result<Vec<std::os::fd::OwnedFd>, RuntimeError> {
        match self.cgroups()?.find(id)? {
            Some(cg) => Ok(cg.procs_files()?),
            None => Ok(Vec::new()),
        }
    }

    /// `pont update`: change the limits of a running container. Every value is checked
    /// before any file is written; if a write fails, the ones done are undone.
    pub fn update(&self, key: &str, update: &Limits) -> Result<ContainerRecord, RuntimeError> {
        if update.is_empty() {
            return Err(RuntimeError::Invalid(
                "nothing to update: give --memory, --memory-swap, --cpus, --cpu-shares or \
                 --pids-limit"
                    .into(),
            ));
        }
        let lock = self.engine.store().lock()?;
        self.reconcile(&lock)?;
        let mut rec = self.live_container(&lock, key)?;
        let alive = matches!(
            (rec.state, rec.pid, rec.start_time),
            (ContainerState::Running, Some(pid), Some(start)) if container::is_alive(pid, start)
        );
        if !alive {
            return Err(RuntimeError::NotRunning(rec.name));
        }
        let merged = rec.limits.merged(update);
        self.check_limits(&merged)?;
        let cgroup = self
            .cgroups()?
            .find(&rec.id)?
            .ok_or_else(|| RuntimeError::NoCgroup(rec.name.clone()))?;
        cgroup.apply(&rec.limits, &merged)?;
        let old = std::mem::replace(&mut rec.limits, merged);
        if let Err(err) = self.engine.store().save_container(&lock, &rec) {
            // The record is what the next update starts from: keep it and the kernel
            // in step.
            let undo = cgroup.apply(&merged, &old).map_err(RuntimeError::from);
            return Err(super::run::with_undo(err.into(), undo));
        }
        Ok(rec)
    }

    /// Resource use of the named containers, or of every running one when `keys` is
    /// empty, in the order asked (by creation without names).
    pub fn stats(&self, keys: &[String]) -> Result<Vec<ContainerStats>, RuntimeError> {
        let records = if keys.is_empty() {
            let all = self.engine.store().containers()?;
            all.into_iter()
                .filter(|c| c.state == ContainerState::Running)
                .collect()
        } else {
            keys.iter()
                .map(|k| self.container(k))
                .collect::<Result<Vec<_>, _>>()?
        };
        let cgroups = self.cgroups()?;
        records
            .into_iter()
            .map(|rec| {
                let stats = match cgroups.find(&rec.id)? {
                    Some(cg) => cg.stats()?,
                    None => Stats::default(),
                };
                Ok(ContainerStats {
                    id: rec.id,
                    name: rec.name,
                    limits: rec.limits,
                    stats,
                })
            })
            .collect()
    }
}
