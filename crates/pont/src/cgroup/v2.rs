//! cgroup v2: one unified hierarchy, one `pont/ID` directory with every controller's
//! files. Names and formats from the kernel's Documentation/admin-guide/cgroup-v2.rst.
//!
//! A controller's files appear in a cgroup only when its parent lists the controller in
//! `cgroup.subtree_control`, so pont enables what it uses in the hierarchy's root and in
//! `pont/` (which, holding no process itself, is allowed to: the "no internal processes"
//! rule). CPU time (`cpu.stat`'s `usage_usec`) is there without any controller.

use super::dir::CgroupDir;
use super::group::{parse_max, parse_u64, stat_value, Write};
use super::{Cgroup, CgroupError, Controller, Stats};
use crate::model::{cpu_quota_us, Limits, CPU_PERIOD_US};

pub(super) const SWAP_MAX: &str = "memory.swap.max";
const SUBTREE_CONTROL: &str = "cgroup.subtree_control";

/// The name of a controller in `cgroup.controllers`; `None` for cpuacct, whose
/// accounting v2 does without a controller.
pub(super) fn controller_name(controller: Controller) -> Option<&'static str> {
    match controller {
        Controller::Memory => Some("memory"),
        Controller::Cpu => Some("cpu"),
        Controller::Pids => Some("pids"),
        Controller::CpuAcct => None,
    }
}

/// pont's controllers that the hierarchy `root` offers (its `cgroup.controllers`).
pub(super) fn available(root: &CgroupDir) -> Result<Vec<Controller>, CgroupError> {
    let offered = root.read("cgroup.controllers")?;
    let offered: Vec<&str> = offered.split_whitespace().collect();
    Ok(Controller::ALL
        .into_iter()
        .filter(|&c| controller_name(c).is_none_or(|name| offered.contains(&name)))
        .collect())
}

/// Enable `controllers` for the children of `dir`, those not enabled yet.
pub(super) fn enable(dir: &CgroupDir, controllers: &[Controller]) -> Result<(), CgroupError> {
    let enabled = dir.read(SUBTREE_CONTROL)?;
    let enabled: Vec<&str> = enabled.split_whitespace().collect();
    let missing: Vec<String> = controllers
        .iter()
        .filter_map(|&c| controller_name(c))
        .filter(|name| !enabled.contains(name))
        .map(|name| format!("+{name}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    dir.write(SUBTREE_CONTROL, &missing.join(" "))
}

/// The files and values that make `limits`. v2 limits swap alone (`memory.swap.max`),
/// Docker's `--memory-swap` counts memory plus swap: the swap part is the difference.
/// `swap_accounting`: whether `memory.swap.max` exists.
pub(super) fn plan(limits: &Limits, swap_accounting: bool) -> Vec<Write> {
    let mut writes = Vec::new();
    if let Some(memory) = limits.memory {
        writes.push(Write::new(Controller::Memory, "memory.max", memory));
    }
    if swap_accounting {
        match (limits.effective_memory_swap(), limits.memory) {
            (Some(Some(total)), Some(memory)) => writes.push(Write::new(
                Controller::Memory,
                SWAP_MAX,
                total.saturating_sub(memory),
            )),
            (Some(None), _) => writes.push(Write::new(Controller::Memory, SWAP_MAX, "max")),
            _ => {}
        }
    }
    if let Some(nano) = limits.nano_cpus {
        let value = format!("{} {CPU_PERIOD_US}", cpu_quota_us(nano));
        writes.push(Write::new(Controller::Cpu, "cpu.max", value));
    }
    if let Some(shares) = limits.cpu_shares {
        writes.push(Write::new(Controller::Cpu, "cpu.weight", weight(shares)));
    }
    if let Some(pids) = limits.pids {
        writes.push(Write::new(Controller::Pids, "pids.max", pids));
    }
    writes
}

/// v1's cpu.shares (2 to 262144, default 1024) on v2's cpu.weight scale (1 to 10000,
/// default 100), the linear map runc and crun use, so both ends and the default line up.
pub(super) fn weight(shares: u64) -> u64 {
    1 + (shares.clamp(2, 262_144) - 2) * 9_999 / 262_142
}

pub(super) fn stats(cg: &Cgroup) -> Result<Stats, CgroupError> {
    let mut stats = Stats::default();
    if let Some(dir) = cg.dir(Controller::Memory) {
        let current = parse_u64(dir, "memory.current")?;
        let inactive = stat_value(dir, "memory.stat", "inactive_file")?.unwrap_or(0);
        stats.memory_usage = Some(current.saturating_sub(inactive));
        stats.memory_limit = parse_max(dir, "memory.max")?;
    }
    if let Some(dir) = cg.dir(Controller::CpuAcct) {
        let usec = stat_value(dir, "cpu.stat", "usage_usec")?;
        stats.cpu_usage_ns = usec.map(|u| u.saturating_mul(1_000));
    }
    if let Some(dir) = cg.dir(Controller::Pids) {
        stats.pids = Some(parse_u64(dir, "pids.current")?);
    }
    Ok(stats)
}

/// Whether the OOM killer killed a process of this cgroup (`oom_kill` in
/// `memory.events`, Linux 4.13).
pub(super) fn oom_killed(cg: &Cgroup) -> Result<bool, CgroupError> {
    let Some(dir) = cg.dir(Controller::Memory) else {
        return Ok(false);
    };
    Ok(stat_value(dir, "memory.events", "oom_kill")?.is_some_and(|n| n > 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MemorySwap;

    fn files(writes: &[Write]) -> Vec<(&str, &str)> {
        writes.iter().map(|w| (w.file, w.value.as_str())).collect()
    }

    #[test]
    fn every_limit_and_its_file() {
        let limits = Limits {
            memory: Some(32 << 20),
            memory_swap: Some(MemorySwap::Bytes(48 << 20)),
            nano_cpus: Some(1_500_000_000),
            cpu_shares: Some(1024),
            pids: Some(20),
        };
        assert_eq!(
            files(&plan(&limits, true)),
            [
                ("memory.max", "33554432"),
                (SWAP_MAX, "16777216"),
                ("cpu.max", "150000 100000"),
                ("cpu.weight", "39"),
                ("pids.max", "20"),
            ]
        );
        let default_swap = Limits {
            memory: Some(32 << 20),
            ..Limits::default()
        };
        assert_eq!(
            files(&plan(&default_swap, true)),
            [("memory.max", "33554432"), (SWAP_MAX, "33554432")]
        );
        assert_eq!(
            files(&plan(&default_swap, false)),
            [("memory.max", "33554432")]
        );
        let unlimited = Limits {
            memory_swap: Some(MemorySwap::Unlimited),
            ..default_swap
        };
        assert_eq!(plan(&unlimited, true)[1].value, "max");
    }

    #[test]
    fn shares_map_onto_weights() {
        assert_eq!(weight(2), 1);
        assert_eq!(weight(262_144), 10_000);
        assert_eq!(weight(1024), 39);
    }
}
