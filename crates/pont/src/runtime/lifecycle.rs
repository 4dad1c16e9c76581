//! Stopping, removing and entering containers, and the bookkeeping when one exits.

use std::time::Duration;

use super::{Runtime, RuntimeError};
use crate::container;
use crate::fault;
use crate::model::{ContainerRecord, ContainerState};
use crate::state::Lock;

/// How long `stop` waits for the monitor to record the exit after the init died.
const MONITOR_GRACE: Duration = Duration::from_secs(5);

impl Runtime {
    /// SIGTERM to the container's init (which passes it to the command), SIGKILL
    /// after `timeout`; returns once the exit is recorded. Stopping a stopped
    /// container succeeds.
    pub fn stop(&self, key: &str, timeout: Duration) -> Result<(), RuntimeError> {
        let rec = {
            let lock = self.engine.store().lock()?;
            self.reconcile(&lock)?;
            self.live_container(&lock, key)?
        };
        let (Some(pid), Some(start)) = (rec.pid, rec.start_time) else {
            return Ok(());
        };
        if rec.state == ContainerState::Running {
            let sig = if timeout.is_zero() {
                libc::SIGKILL
            } else {
                libc::SIGTERM
            };
            container::kill(pid, start, sig)?;
            fault::point("stop:after-signal");
            if !container::wait_exit(pid, start, timeout) {
                container::kill(pid, start, libc::SIGKILL)?;
                fault::point("stop:after-kill");
                container::wait_exit(pid, start, MONITOR_GRACE);
            }
        }
        // The monitor records the exit, then exits itself.
        if let (Some(pid), Some(start)) = (rec.monitor_pid, rec.monitor_start_time) {
            container::wait_exit(pid, start, MONITOR_GRACE);
        }
        let lock = self.engine.store().lock()?;
        self.live_container(&lock, &rec.id)
            .map(drop)
            .or_else(|err| match err {
                RuntimeError::NotFound(_) => Ok(()), // a --rm container removed itself
                err => Err(err),
            })
    }

    /// Remove a container's record; `force` stops a running one first (SIGKILL).
    pub fn remove(&self, key: &str, force: bool) -> Result<(), RuntimeError> {
        let rec = {
            let lock = self.engine.store().lock()?;
            self.reconcile(&lock)?;
            self.live_container(&lock, key)?
        };
        if rec.state != ContainerState::Exited {
            if !force {
                return Err(RuntimeError::Running(rec.name));
            }
            self.stop(&rec.id, Duration::ZERO)?;
            fault::point("rm:after-stop");
        }
        let lock = self.engine.store().lock()?;
        self.reconcile(&lock)?;
        // The cgroup before the record: if it cannot go, the record stays for another
        // `rm` to retry.
        self.remove_cgroup(&rec.id)?;
        // A --rm container may already have removed itself.
        if self.engine.store().find_container(&rec.id)?.is_some() {
            self.engine.store().remove_container(&lock, &rec.id)?;
            fault::point("rm:after-record");
        }
        Ok(())
    }

    /// Run a command in a running container's namespaces; returns its exit code.
    pub fn exec(
        &self,
        key: &str,
        argv: &[String],
        env: &[(String, String)],
        workdir: Option<&std::path::Path>,
    ) -> Result<i32, RuntimeError> {
        let rec = {
            let lock = self.engine.store().lock()?;
            self.reconcile(&lock)?;
            self.live_container(&lock, key)?
        };
        let pid = match (rec.state, rec.pid, rec.start_time) {
            (ContainerState::Running, Some(pid), Some(start))
                if container::is_alive(pid, start) =>
            {
                pid
            }
            _ => return Err(RuntimeError::NotRunning(rec.name)),
        };
        if argv.is_empty() {
            return Err(RuntimeError::Invalid(
                "no command given: pont exec NAME -- CMD".into(),
            ));
        }
        let mut all_env = rec.env.clone();
        all_env.extend(env.iter().cloned());
        let cgroup_procs = self.exec_cgroup_files(&rec.id)?;
        Ok(container::exec_joining(
            pid,
            argv,
            &all_env,
            workdir.or(rec.workdir.as_deref()),
            &cgroup_procs,
        )?)
    }

    /// Record that a container's init exited (and whether the OOM killer struck), free
    /// its endpoint, and drop the record and cgroup of a `--rm` container; the cgroup of
    /// any other stays until `rm`, as Docker keeps it for `inspect`. The veth needs no
    /// deleting: the kernel removes it with the namespace, in the background.
    pub(super) fn finish(&self, id: &str, exit_code: Option<i32>) -> Result<(), RuntimeError> {
        let lock = self.engine.store().lock()?;
        if let Some(mut rec) = self.engine.store().find_container(id)? {
            self.release(&lock, &mut rec, exit_code)?;
        }
        Ok(())
    }

    pub(super) fn release(
        &self,
        lock: &Lock,
        rec: &mut ContainerRecord,
        exit_code: Option<i32>,
    ) -> Result<(), RuntimeError> {
        let rules_before = self.engine.rules_of(rec)?;
        rec.oom_killed = self.read_oom_killed(&rec.id);
        rec.state = ContainerState::Exited;
        rec.exit_code = exit_code;
        rec.finished = Some(crate::now());
        rec.pid = None;
        rec.start_time = None;
        rec.monitor_pid = None;
        rec.monitor_start_time = None;
        // Its flows are forgotten once the rules are gone (below); the
        // record loses its endpoint here, so keep what that needs.
        let gone = rec.clone();
        if let Some(ep) = rec.endpoints.first() {
            rec.last_ipv4 = Some(ep.ipv4);
        }
        rec.endpoints.clear();
        let store = self.engine.store();
        // A --rm container whose cgroup cannot be removed is kept, exited, for `rm` to
        // retry, rather than leaving a cgroup that no record names.
        if rec.auto_remove && self.remove_cgroup(&rec.id).is_ok() {
            store.remove_container(lock, &rec.id)?;
        } else {
            store.save_container(lock, rec)?;
        }
        fault::point("exit:after-record");
        // Exited: it holds no rules any more.
        let rules_after = self.engine.rules_of(rec)?;
        self.engine
            .change_container_rules(lock, &rules_before, &rules_after)?;
        fault::point("exit:after-firewall");
        // Only now that the mappings are gone, so no packet re-creates a flow.
        // Best effort: this runs in the monitor and in every command's
        // reconciliation, which must not fail for it; a leftover entry ends
        // when it times out. `port rm` reports the same failure instead.
        let _ = super::ports::forget_translated_flows(&gone, &gone.ports);
        Ok(())
    }
}
