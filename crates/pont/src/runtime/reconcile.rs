//! Bringing the records in line with reality at the start of every command:
//! a launch whose monitor died half-way is rolled back, a container whose init
//! and monitor are both gone (a kill, a crash, a reboot) is marked exited.

use super::{Runtime, RuntimeError};
use crate::container;
use crate::model::{ContainerRecord, ContainerState};
use crate::netlink::Netlink;
use crate::state::Lock;

impl Runtime {
    pub fn reconcile(&self, lock: &Lock) -> Result<(), RuntimeError> {
        for mut rec in self.engine.store().containers()? {
            let monitor_alive = alive(rec.monitor_pid, rec.monitor_start_time);
            match rec.state {
                ContainerState::Creating if !monitor_alive => self.roll_back(lock, &rec)?,
                ContainerState::Running if !monitor_alive && !alive(rec.pid, rec.start_time) => {
                    self.release(lock, &mut rec, None)?
                }
                _ => {}
            }
        }
        Ok(self.engine.repair_firewall(lock)?)
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
            self.engine.store().remove_container(lock, &rec.id)?;
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
