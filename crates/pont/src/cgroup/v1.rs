//! cgroup v1: one hierarchy per controller (or per group of controllers), each with its
//! own `pont/ID` directory. File names and formats from the kernel's
//! Documentation/admin-guide/cgroup-v1/{memory,pids}.rst and scheduler/sched-bwc.rst.

use super::group::{parse_u64, stat_value, Write};
use super::{Cgroup, CgroupError, Controller, Stats};
use crate::model::{cpu_quota_us, Limits, CPU_PERIOD_US};

pub(super) const MEMORY_LIMIT: &str = "memory.limit_in_bytes";
pub(super) const MEMSW_LIMIT: &str = "memory.memsw.limit_in_bytes";

/// Above this a v1 memory limit means "none": the kernel reports no limit as
/// `PAGE_COUNTER_MAX` pages (9223372036854771712 bytes with 4 KiB pages).
const UNLIMITED_ABOVE: u64 = 1 << 62;

/// The files and values that make `limits`, in an order the kernel accepts on a fresh
/// cgroup (memory before memory+swap, period before quota). `swap_accounting`: whether
/// `memory.memsw.*` exists (the kernel's `swapaccount`); without it the default swap
/// limit is skipped (an explicit one was refused before).
pub(super) fn plan(limits: &Limits, swap_accounting: bool) -> Vec<Write> {
    let mut writes = Vec::new();
    if let Some(memory) = limits.memory {
        writes.push(Write::new(Controller::Memory, MEMORY_LIMIT, memory));
    }
    if swap_accounting {
        match limits.effective_memory_swap() {
            Some(Some(total)) => writes.push(Write::new(Controller::Memory, MEMSW_LIMIT, total)),
            Some(None) => writes.push(Write::new(Controller::Memory, MEMSW_LIMIT, "-1")),
            None => {}
        }
    }
    if let Some(nano) = limits.nano_cpus {
        writes.push(Write::new(
            Controller::Cpu,
            "cpu.cfs_period_us",
            CPU_PERIOD_US,
        ));
        writes.push(Write::new(
            Controller::Cpu,
            "cpu.cfs_quota_us",
            cpu_quota_us(nano),
        ));
    }
    if let Some(shares) = limits.cpu_shares {
        writes.push(Write::new(Controller::Cpu, "cpu.shares", shares));
    }
    if let Some(pids) = limits.pids {
        writes.push(Write::new(Controller::Pids, "pids.max", pids));
    }
    writes
}

/// The kernel keeps memory.limit_in_bytes <= memory.memsw.limit_in_bytes at every
/// moment. Raising the memory limit above the current memory+swap limit therefore needs
/// memory+swap written first; otherwise memory first is always valid (the new
/// memory+swap is at least the new memory limit).
pub(super) fn order_memory(mut writes: Vec<Write>, memsw_now: Option<u64>) -> Vec<Write> {
    let position = |file| writes.iter().position(|w| w.file == file);
    let (Some(memory), Some(memsw)) = (position(MEMORY_LIMIT), position(MEMSW_LIMIT)) else {
        return writes;
    };
    let new_memory: Option<u64> = writes[memory].value.parse().ok();
    let above = matches!((new_memory, memsw_now), (Some(m), Some(s)) if m > s);
    if above && memsw > memory {
        let write = writes.remove(memsw);
        writes.insert(memory, write);
    }
    writes
}

/// A v1 memory limit as read back: `None` for no limit.
pub(super) fn limit_value(value: u64) -> Option<u64> {
    (value < UNLIMITED_ABOVE).then_some(value)
}

pub(super) fn stats(cg: &Cgroup) -> Result<Stats, CgroupError> {
    let mut stats = Stats::default();
    if let Some(dir) = cg.dir(Controller::Memory) {
        let usage = parse_u64(dir, "memory.usage_in_bytes")?;
        // As `docker stats`: page cache the kernel would drop first does not count.
        let inactive = stat_value(dir, "memory.stat", "total_inactive_file")?.unwrap_or(0);
        stats.memory_usage = Some(usage.saturating_sub(inactive));
        stats.memory_limit = limit_value(parse_u64(dir, MEMORY_LIMIT)?);
    }
    if let Some(dir) = cg.dir(Controller::CpuAcct) {
        stats.cpu_usage_ns = Some(parse_u64(dir, "cpuacct.usage")?);
    }
    if let Some(dir) = cg.dir(Controller::Pids) {
        stats.pids = Some(parse_u64(dir, "pids.current")?);
    }
    Ok(stats)
}

/// Whether the OOM killer killed a process of this cgroup: `oom_kill` in
/// `memory.oom_control` (Linux 4.13).
pub(super) fn oom_killed(cg: &Cgroup) -> Result<bool, CgroupError> {
    let Some(dir) = cg.dir(Controller::Memory) else {
        return Ok(false);
    };
    Ok(stat_value(dir, "memory.oom_control", "oom_kill")?.is_some_and(|n| n > 0))
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
            memory_swap: None,
            nano_cpus: Some(500_000_000),
            cpu_shares: Some(512),
            pids: Some(20),
        };
        assert_eq!(
            files(&plan(&limits, true)),
            [
                (MEMORY_LIMIT, "33554432"),
                (MEMSW_LIMIT, "67108864"),
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_quota_us", "50000"),
                ("cpu.shares", "512"),
                ("pids.max", "20"),
            ]
        );
        let no_swap_files = plan(&limits, false);
        assert!(no_swap_files.iter().all(|w| w.file != MEMSW_LIMIT));
        let unlimited_swap = Limits {
            memory: Some(32 << 20),
            memory_swap: Some(MemorySwap::Unlimited),
            ..Limits::default()
        };
        assert_eq!(
            files(&plan(&unlimited_swap, true)),
            [(MEMORY_LIMIT, "33554432"), (MEMSW_LIMIT, "-1")]
        );
        assert!(plan(&Limits::default(), true).is_empty());
    }

    #[test]
    fn raising_memory_above_memsw_writes_memsw_first() {
        let raised = plan(
            &Limits {
                memory: Some(128 << 20),
                ..Limits::default()
            },
            true,
        );
        let ordered = order_memory(raised.clone(), Some(64 << 20));
        assert_eq!(
            files(&ordered),
            [(MEMSW_LIMIT, "268435456"), (MEMORY_LIMIT, "134217728")]
        );
        // Lowering, or memsw unlimited now: memory first.
        assert_eq!(order_memory(raised.clone(), None), raised);
        assert_eq!(order_memory(raised.clone(), Some(1 << 30)), raised);
    }

    #[test]
    fn unlimited_reads_as_none() {
        assert_eq!(limit_value(9_223_372_036_854_771_712), None);
        assert_eq!(limit_value(33_554_432), Some(33_554_432));
    }
}
