//! `pont system check` and `pont system prune`: every difference between
//! pont's records and the kernel, orphans on either side, listed or repaired.
//! Both look only at what pont owns (see the engine's audit module for how a
//! link is known to be pont's).

use std::collections::BTreeSet;
use std::fmt;
use std::time::{Duration, Instant};

use super::{Runtime, RuntimeError};
use crate::container;
use crate::engine::OrphanLink;
use crate::model::{ContainerRecord, ContainerState};
use crate::netlink::{netns_of_pid, Netlink};

/// How long `check` gives the kernel to finish removing the veths of
/// containers that just exited (it does so in the background, after the
/// namespace's last process is gone) before calling them orphans.
const VETH_CLEANUP_GRACE: Duration = Duration::from_secs(2);

/// One difference between the records and the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// What it concerns: `network web`, `container api`, `link veth…`, `firewall`, `state`.
    pub subject: String,
    pub problem: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.subject, self.problem)
    }
}

fn finding(subject: impl Into<String>, problem: impl Into<String>) -> Finding {
    Finding {
        subject: subject.into(),
        problem: problem.into(),
    }
}

impl Runtime {
    /// List every difference; changes nothing.
    pub fn system_check(&self) -> Result<Vec<Finding>, RuntimeError> {
        let lock = self.engine.store().lock()?;
        let mut found = Vec::new();
        if lock.needs_repair() {
            found.push(finding(
                "state",
                "a pont command was killed while changing state: its changes may be half done",
            ));
        }
        let store = self.engine.store();
        for net in store.network_intents()? {
            found.push(finding(
                format!("network {}", net.name),
                format!("its creation was interrupted (bridge {})", net.bridge),
            ));
        }
        for dir in store.loose_container_dirs()? {
            found.push(finding(
                "state",
                format!("{} holds no record", dir.display()),
            ));
        }
        let containers = store.containers()?;
        if !store.indexes_match(&containers)? {
            found.push(finding(
                "state",
                "the name and address indexes differ from the container records",
            ));
        }
        let mut nl = Netlink::open()?;
        let links: BTreeSet<String> = nl.links()?.into_iter().map(|l| l.name).collect();
        for c in &containers {
            found.extend(container_findings(c, &links));
        }
        for (network, bridge) in self.engine.missing_bridges(&mut nl)? {
            found.push(finding(
                format!("network {network}"),
                format!("bridge {bridge} is missing"),
            ));
        }
        found.extend(
            self.lasting_orphans(&mut nl, &containers)?
                .iter()
                .map(orphan_finding),
        );
        let rules = self.engine.planned_rules()?;
        if !self
            .engine
            .firewall()
            .is_installed(&rules.networks, rules.endpoints.len())?
        {
            found.push(finding(
                "firewall",
                format!(
                    "pont's {} rules are missing or incomplete",
                    self.engine.firewall()
                ),
            ));
        }
        drop(lock);
        Ok(found)
    }

    /// Repair every difference [`Runtime::system_check`] lists; returns what it did.
    pub fn system_prune(&self) -> Result<Vec<String>, RuntimeError> {
        let lock = self.engine.store().lock()?;
        let mut done = self.reconcile_all(&lock)?;
        let mut nl = Netlink::open()?;
        // (The full reconciliation above has rebuilt the indexes if they differed.)
        let containers = self.engine.store().containers()?;
        for c in &containers {
            done.extend(self.replumb_missing(&mut nl, c)?);
        }
        for orphan in self
            .engine
            .orphan_links(&mut nl, &live_veths(&containers))?
        {
            self.engine.remove_orphan(&mut nl, &orphan)?;
            done.push(format!("deleted {}", orphan_finding(&orphan).subject));
        }
        self.engine.sync_firewall(&lock)?;
        Ok(done)
    }

    /// Orphan links that are still there after the grace the kernel needs to
    /// remove the veths of containers that exited a moment ago.
    fn lasting_orphans(
        &self,
        nl: &mut Netlink,
        containers: &[ContainerRecord],
    ) -> Result<Vec<OrphanLink>, RuntimeError> {
        let live = live_veths(containers);
        let deadline = Instant::now() + VETH_CLEANUP_GRACE;
        loop {
            let orphans = self.engine.orphan_links(nl, &live)?;
            let only_veths = orphans.iter().all(|o| matches!(o, OrphanLink::Veth(_)));
            if orphans.is_empty() || !only_veths || Instant::now() >= deadline {
                return Ok(orphans);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Give a running container back the veth someone deleted.
    fn replumb_missing(
        &self,
        nl: &mut Netlink,
        c: &ContainerRecord,
    ) -> Result<Vec<String>, RuntimeError> {
        let (Some(pid), Some(start)) = (c.pid, c.start_time) else {
            return Ok(vec![]);
        };
        if c.state != ContainerState::Running || !container::is_alive(pid, start) {
            return Ok(vec![]);
        }
        let mut done = Vec::new();
        for ep in &c.endpoints {
            if nl.link_by_name(&ep.host_interface)?.is_some() {
                continue;
            }
            let netns = netns_of_pid(pid)?;
            let net = self.engine.network(&ep.network)?;
            self.engine
                .plumb_endpoint(nl, std::os::fd::AsFd::as_fd(&netns), &net, ep)?;
            done.push(format!(
                "rebuilt veth {} of container {}",
                ep.host_interface, c.name
            ));
        }
        Ok(done)
    }
}

fn container_findings(c: &ContainerRecord, links: &BTreeSet<String>) -> Vec<Finding> {
    let subject = format!("container {}", c.name);
    let alive = |pid: Option<i32>, start: Option<u64>| matches!((pid, start), (Some(p), Some(s)) if container::is_alive(p, s));
    let monitor = alive(c.monitor_pid, c.monitor_start_time);
    let init = alive(c.pid, c.start_time);
    match c.state {
        ContainerState::Creating if !monitor => {
            vec![finding(subject, "its launch was interrupted")]
        }
        ContainerState::Running if !monitor && !init => vec![finding(
            subject,
            "recorded running, but its processes are gone (address and ports still held)",
        )],
        ContainerState::Running if init => c
            .endpoints
            .iter()
            .filter(|ep| !links.contains(&ep.host_interface))
            .map(|ep| {
                finding(
                    subject.clone(),
                    format!(
                        "veth {} on network {} is missing",
                        ep.host_interface, ep.network
                    ),
                )
            })
            .collect(),
        _ => vec![],
    }
}

fn orphan_finding(orphan: &OrphanLink) -> Finding {
    match orphan {
        OrphanLink::Bridge(name) => finding(
            format!("bridge {name}"),
            "a bridge of pont's that no network record owns",
        ),
        OrphanLink::Veth(name) => finding(
            format!("veth {name}"),
            "a veth of pont's that no live container owns",
        ),
    }
}

fn live_veths(containers: &[ContainerRecord]) -> BTreeSet<String> {
    containers
        .iter()
        .filter(|c| c.state != ContainerState::Exited)
        .flat_map(|c| c.endpoints.iter().map(|e| e.host_interface.clone()))
        .collect()
}
