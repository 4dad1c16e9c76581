//! Bringing the records in line with reality.
//!
//! Every command starts with [`Runtime::reconcile`]: a network creation whose
//! process died half-way is rolled back, a bridge the kernel lost is rebuilt,
//! a flushed firewall is rewritten. That costs the same however many
//! containers there are: no container record is read.
//!
//! The full pass, [`Runtime::reconcile_all`], also visits every container: a
//! launch whose process died half-way is rolled back, a container whose init
//! and monitor are both gone (a kill, a crash, a reboot: PIDs are checked
//! against their start time, so a reused PID is not mistaken for the
//! container) is marked exited and its address and ports freed. It runs when
//! the last holder of the state lock died holding it (then the firewall and
//! the indexes are rewritten from the records and loose container
//! directories removed), after a reboot, in the commands that list or
//! inspect containers, and before a request is refused because another
//! container holds its name, address or port (that container may be dead).

use super::{Runtime, RuntimeError};
use crate::container;
use crate::model::{ContainerRecord, ContainerState};
use crate::netlink::Netlink;
use crate::state::Lock;

impl Runtime {
    /// The checks every command makes (see the module docs); the full pass
    /// instead when a crash, a reboot or an old state root calls for it.
    pub fn reconcile(&self, lock: &Lock) -> Result<(), RuntimeError> {
        let store = self.engine.store();
        if lock.needs_repair() || !store.has_indexes() || store.booted_since()? {
            return self.reconcile_all(lock).map(drop);
        }
        if !self.engine.recover_networks(lock)?.is_empty() {
            return self.reconcile_all(lock).map(drop);
        }
        Ok(self.engine.repair_firewall(lock)?)
    }

    /// The full pass over every container, saying what it changed.
    pub fn reconcile_all(&self, lock: &Lock) -> Result<Vec<String>, RuntimeError> {
        let mut done = self.engine.recover_networks(lock)?;
        let store = self.engine.store();
        let rebuild = lock.needs_repair() || !store.has_indexes() || store.booted_since()?;
        let containers = store.containers()?;
        // The records decide; the indexes follow them.
        if rebuild {
            store.rebuild_indexes(lock, &containers)?;
        } else if !store.indexes_match(&containers)? {
            store.rebuild_indexes(lock, &containers)?;
            done.push("rebuilt the name, address and port indexes from the records".into());
        }
        for rec in containers {
            done.extend(self.reconcile_container(lock, rec)?);
        }
        if rebuild || !done.is_empty() {
            for dir in store.loose_container_dirs()? {
                store.remove_loose_dir(lock, &dir)?;
                done.push(format!("removed {}", dir.display()));
            }
            self.engine.sync_firewall(lock)?;
            store.note_boot(lock)?;
            lock.repaired();
        } else {
            self.engine.repair_firewall(lock)?;
        }
        Ok(done)
    }

    /// Roll back `rec`'s launch if its process died half-way, or mark it
    /// exited if its init and monitor are gone. Says what it did.
    fn reconcile_container(
        &self,
        lock: &Lock,
        mut rec: ContainerRecord,
    ) -> Result<Option<String>, RuntimeError> {
        let monitor_alive = alive(rec.monitor_pid, rec.monitor_start_time);
        match rec.state {
            ContainerState::Creating if !monitor_alive => {
                self.roll_back(lock, &rec)?;
                Ok(Some(format!(
                    "rolled back the launch of container {}",
                    rec.name
                )))
            }
            ContainerState::Running if !monitor_alive && !alive(rec.pid, rec.start_time) => {
                self.release(lock, &mut rec, None)?;
                Ok(Some(format!(
                    "container {} is gone: marked exited",
                    rec.name
                )))
            }
            _ => Ok(None),
        }
    }

    /// The container `key` names, once reconciled: for commands about one
    /// container, which must not act on a record its processes no longer
    /// back. Reads that one record, not all of them.
    pub(super) fn live_container(
        &self,
        lock: &Lock,
        key: &str,
    ) -> Result<ContainerRecord, RuntimeError> {
        let rec = self.container(key)?;
        if self.reconcile_container(lock, rec.clone())?.is_none() {
            return Ok(rec);
        }
        // A --rm container is gone altogether now.
        self.container(&rec.id)
            .map_err(|_| RuntimeError::NotFound(key.to_string()))
    }

    /// Run `attempt`; if another container's name, address or port is in the
    /// way, reconcile every container (the holder may have died unnoticed)
    /// and, if that freed anything, try once more.
    pub(super) fn retry_on_conflict<T>(
        &self,
        lock: &Lock,
        mut attempt: impl FnMut() -> Result<T, RuntimeError>,
    ) -> Result<T, RuntimeError> {
        match attempt() {
            Err(err) if err.is_conflict() => {
                if self.reconcile_all(lock)?.is_empty() {
                    Err(err)
                } else {
                    attempt()
                }
            }
            other => other,
        }
    }

    /// Undo a launch that did not finish: kill its init if one was made, delete
    /// the host end of its veth, and forget it (a first launch) or mark it
    /// exited (a restart).
    pub(super) fn roll_back(&self, lock: &Lock, rec: &ContainerRecord) -> Result<(), RuntimeError> {
        if let (Some(pid), Some(start)) = (rec.pid, rec.start_time) {
            container::kill(pid, start, libc::SIGKILL)?;
        }
        if !rec.endpoints.is_empty() {
            let mut host = Netlink::open()?;
            for ep in &rec.endpoints {
                self.engine.unplumb_endpoint(&mut host, ep)?;
            }
        }
        if rec.started.is_none() {
            // Carry on past a cgroup that will not go: the record must, or every later
            // command would roll it back (and fail) again. The error is still reported.
            let cgroup = self.remove_cgroup(&rec.id);
            let rules_before = self.engine.rules_of(rec)?;
            self.engine.store().remove_container(lock, &rec.id)?;
            let none = crate::firewall::RuleSet::default();
            self.engine
                .change_container_rules(lock, &rules_before, &none)?;
            cgroup
        } else {
            // A restart that failed: back to exited, with the last run's exit code.
            self.release(lock, &mut rec.clone(), rec.exit_code)
        }
    }
}

fn alive(pid: Option<i32>, start_time: Option<u64>) -> bool {
    matches!((pid, start_time), (Some(p), Some(s)) if container::is_alive(p, s))
}
