//! Bringing the records in line with reality at the start of every command:
//! a network creation or a launch whose process died half-way is rolled
//! back, a container whose init and monitor are both gone (a kill, a crash,
//! a reboot: PIDs are checked against their start time, so a reused PID is
//! not mistaken for the container) is marked exited and its address and
//! ports freed, a bridge the kernel lost is rebuilt. If the last holder of
//! the state lock died holding it, the firewall is rewritten from the records
//! and loose container directories are removed.

use super::{Runtime, RuntimeError};
use crate::container;
use crate::model::{ContainerRecord, ContainerState};
use crate::netlink::Netlink;
use crate::state::Lock;

impl Runtime {
    pub fn reconcile(&self, lock: &Lock) -> Result<(), RuntimeError> {
        self.reconcile_report(lock).map(drop)
    }

    /// [`Runtime::reconcile`], saying what it changed.
    pub fn reconcile_report(&self, lock: &Lock) -> Result<Vec<String>, RuntimeError> {
        let mut done = self.engine.recover_networks(lock)?;
        for mut rec in self.engine.store().containers()? {
            let monitor_alive = alive(rec.monitor_pid, rec.monitor_start_time);
            match rec.state {
                ContainerState::Creating if !monitor_alive => {
                    self.roll_back(lock, &rec)?;
                    done.push(format!("rolled back the launch of container {}", rec.name));
                }
                ContainerState::Running if !monitor_alive && !alive(rec.pid, rec.start_time) => {
                    self.release(lock, &mut rec, None)?;
                    done.push(format!("container {} is gone: marked exited", rec.name));
                }
                _ => {}
            }
        }
        let store = self.engine.store();
        if lock.needs_repair() || !done.is_empty() {
            for dir in store.loose_container_dirs()? {
                store.remove_loose_dir(lock, &dir)?;
                done.push(format!("removed {}", dir.display()));
            }
            self.engine.sync_firewall(lock)?;
            lock.repaired();
        } else {
            self.engine.repair_firewall(lock)?;
        }
        Ok(done)
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
            let rules_before = self.engine.planned_rules()?;
            self.engine.store().remove_container(lock, &rec.id)?;
            self.engine.sync_firewall_if_changed(lock, &rules_before)?;
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
