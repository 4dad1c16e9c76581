//! Resource limits of a container (`--memory`, `--memory-swap`, `--cpus`, `--cpu-shares`,
//! `--pids-limit`): the checks every limit passes before a cgroup file is written (the
//! parsers are in `limit_parse`). The cgroup module turns a checked [`Limits`] into
//! writes.

use serde::{Deserialize, Serialize};

/// Docker's smallest memory limit (`linuxMinMemory`): below it a container's own runtime
/// overhead is OOM-killed before its command runs.
pub const MIN_MEMORY_BYTES: u64 = 6 * 1024 * 1024;

/// CFS bandwidth period pont uses, in microseconds (the kernel's default, 100 ms).
pub const CPU_PERIOD_US: u64 = 100_000;

/// The kernel's smallest CFS quota (1 ms, `min_cfs_quota_period` in kernel/sched/core.c):
/// with [`CPU_PERIOD_US`] that makes 0.01 CPUs the smallest `--cpus`.
const MIN_CPU_QUOTA_US: u64 = 1_000;

/// cgroup v1's range of `cpu.shares` (`MIN_SHARES`, `MAX_SHARES` in kernel/sched/sched.h).
pub const CPU_SHARES_RANGE: std::ops::RangeInclusive<u64> = 2..=262_144;

pub(super) const NANOS_PER_CPU: u64 = 1_000_000_000;

/// What a container may use. `None` leaves the kernel's default (no limit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Memory in bytes (`--memory`).
    pub memory: Option<u64>,
    /// Memory plus swap (`--memory-swap`). `None` with a memory limit means twice the
    /// memory limit, as in Docker.
    pub memory_swap: Option<MemorySwap>,
    /// CPUs in billionths (`--cpus 0.5` is 500 000 000), as Docker's `NanoCpus`.
    pub nano_cpus: Option<u64>,
    /// Relative CPU weight (`--cpu-shares`, v1's scale, 1024 is the default).
    pub cpu_shares: Option<u64>,
    /// Most processes and threads at once (`--pids-limit`).
    pub pids: Option<u64>,
}

/// `--memory-swap`: a total of memory and swap, or no limit on swap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemorySwap {
    Unlimited,
    Bytes(u64),
}

/// A limit option, named as on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitOption {
    Memory,
    MemorySwap,
    Cpus,
    CpuShares,
    PidsLimit,
}

impl LimitOption {
    pub fn flag(self) -> &'static str {
        match self {
            LimitOption::Memory => "--memory",
            LimitOption::MemorySwap => "--memory-swap",
            LimitOption::Cpus => "--cpus",
            LimitOption::CpuShares => "--cpu-shares",
            LimitOption::PidsLimit => "--pids-limit",
        }
    }
}

impl std::fmt::Display for LimitOption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.flag())
    }
}

/// A limit that cannot be used; the message names the option and the value (as typed
/// when it comes from a parser or [`super::LimitTexts::quote`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {option} '{value}': {reason}")]
pub struct LimitsError {
    pub option: LimitOption,
    pub value: String,
    pub reason: String,
}

pub(super) fn refuse(
    option: LimitOption,
    value: impl ToString,
    reason: impl Into<String>,
) -> LimitsError {
    LimitsError {
        option,
        value: value.to_string(),
        reason: reason.into(),
    }
}

impl Limits {
    /// Whether no limit is set at all.
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    /// These limits with every field that `update` sets replaced.
    pub fn merged(&self, update: &Limits) -> Limits {
        Limits {
            memory: update.memory.or(self.memory),
            memory_swap: update.memory_swap.or(self.memory_swap),
            nano_cpus: update.nano_cpus.or(self.nano_cpus),
            cpu_shares: update.cpu_shares.or(self.cpu_shares),
            pids: update.pids.or(self.pids),
        }
    }

    /// Check the limits against each other and against a machine with `online_cpus`.
    /// Only numbers are known here (some may come from a container's record), so a
    /// value is quoted in Docker's notation (`6m`); [`super::LimitTexts::quote`] puts
    /// back what the user typed.
    pub fn validate(&self, online_cpus: u64) -> Result<(), LimitsError> {
        self.check_memory()?;
        self.check_memory_swap()?;
        self.check_cpus(online_cpus)?;
        self.check_cpu_shares()
    }

    fn check_memory(&self) -> Result<(), LimitsError> {
        match self.memory {
            Some(memory) if memory < MIN_MEMORY_BYTES => Err(refuse(
                LimitOption::Memory,
                format_size(memory),
                "must be at least 6m",
            )),
            _ => Ok(()),
        }
    }

    fn check_memory_swap(&self) -> Result<(), LimitsError> {
        let Some(MemorySwap::Bytes(total)) = self.memory_swap else {
            return Ok(());
        };
        let refuse_swap = |reason| refuse(LimitOption::MemorySwap, format_size(total), reason);
        match self.memory {
            None => Err(refuse_swap("needs --memory as well".into())),
            Some(memory) if total < memory => Err(refuse_swap(format!(
                "must be at least --memory ({}): it counts memory plus swap",
                format_size(memory)
            ))),
            Some(_) => Ok(()),
        }
    }

    fn check_cpus(&self, online_cpus: u64) -> Result<(), LimitsError> {
        let Some(nano) = self.nano_cpus else {
            return Ok(());
        };
        let refuse_cpus = |reason| refuse(LimitOption::Cpus, format_cpus(nano), reason);
        if nano > online_cpus.saturating_mul(NANOS_PER_CPU) {
            return Err(refuse_cpus(format!("this machine has {online_cpus} CPUs")));
        }
        if cpu_quota_us(nano) < MIN_CPU_QUOTA_US {
            return Err(refuse_cpus("must be at least 0.01".into()));
        }
        Ok(())
    }

    fn check_cpu_shares(&self) -> Result<(), LimitsError> {
        match self.cpu_shares {
            Some(shares) if !CPU_SHARES_RANGE.contains(&shares) => Err(refuse(
                LimitOption::CpuShares,
                shares,
                "must be 2 to 262144",
            )),
            _ => Ok(()),
        }
    }

    /// Memory plus swap in effect: `Some(None)` is "swap unlimited", `None` "no limit at
    /// all". Without `--memory-swap` it is twice `--memory`, as in Docker.
    pub fn effective_memory_swap(&self) -> Option<Option<u64>> {
        match (self.memory, self.memory_swap) {
            (_, Some(MemorySwap::Unlimited)) => Some(None),
            (_, Some(MemorySwap::Bytes(total))) => Some(Some(total)),
            (Some(memory), None) => Some(Some(memory.saturating_mul(2))),
            (None, None) => None,
        }
    }

    /// `--cpus` as the number a user typed.
    pub fn cpus(&self) -> Option<f64> {
        self.nano_cpus.map(|n| n as f64 / NANOS_PER_CPU as f64)
    }
}

/// CFS quota in microseconds per [`CPU_PERIOD_US`] for `nano_cpus`.
pub fn cpu_quota_us(nano_cpus: u64) -> u64 {
    // u128: a large CPU count times the period would overflow u64.
    let quota = u128::from(nano_cpus) * u128::from(CPU_PERIOD_US) / u128::from(NANOS_PER_CPU);
    u64::try_from(quota).unwrap_or(u64::MAX)
}

/// `--cpus` as a decimal: `1.25`.
pub(super) fn format_cpus(nano: u64) -> String {
    let whole = nano / NANOS_PER_CPU;
    let frac = nano % NANOS_PER_CPU;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:09}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Bytes in the largest unit that holds them whole, as Docker's sizes are written
/// (`6m`, `1536m`; plain bytes otherwise).
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(u32, char); 5] = [(50, 'p'), (40, 't'), (30, 'g'), (20, 'm'), (10, 'k')];
    UNITS
        .iter()
        .find(|(shift, _)| bytes != 0 && bytes % (1u64 << shift) == 0)
        .map_or_else(
            || bytes.to_string(),
            |(shift, unit)| format!("{}{unit}", bytes >> shift),
        )
}

/// CPUs the kernel has online (`_SC_NPROCESSORS_ONLN`), the ceiling of `--cpus`.
pub fn online_cpus() -> u64 {
    // SAFETY: sysconf only reads a system value; it has no pointer arguments.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_against_each_other_and_the_machine() {
        let mem = |m| Limits {
            memory: Some(m),
            ..Limits::default()
        };
        assert!(mem(32 << 20).validate(2).is_ok());
        assert_eq!(
            mem(5 << 10).validate(2).unwrap_err().to_string(),
            "invalid --memory '5k': must be at least 6m"
        );
        let swap_alone = Limits {
            memory_swap: Some(MemorySwap::Bytes(1 << 30)),
            ..Limits::default()
        };
        assert_eq!(
            swap_alone.validate(2).unwrap_err().to_string(),
            "invalid --memory-swap '1g': needs --memory as well"
        );
        let swap_small = Limits {
            memory_swap: Some(MemorySwap::Bytes(16 << 20)),
            ..mem(32 << 20)
        };
        assert_eq!(
            swap_small.validate(2).unwrap_err().to_string(),
            "invalid --memory-swap '16m': must be at least --memory (32m): it counts memory \
             plus swap"
        );
        let cpus = |n| Limits {
            nano_cpus: Some(n),
            ..Limits::default()
        };
        assert!(cpus(2_000_000_000).validate(2).is_ok());
        let err = cpus(2_500_000_000).validate(2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid --cpus '2.5': this machine has 2 CPUs"
        );
        assert_eq!(
            cpus(5_000_000).validate(2).unwrap_err().to_string(),
            "invalid --cpus '0.005': must be at least 0.01"
        );
        assert!(cpus(10_000_000).validate(2).is_ok());
    }

    #[test]
    fn sizes_are_quoted_in_the_largest_whole_unit() {
        assert_eq!(format_size(6 << 20), "6m");
        assert_eq!(format_size(1536 << 20), "1536m");
        assert_eq!(format_size(3 << 30), "3g");
        assert_eq!(format_size(1 << 50), "1p");
        assert_eq!(format_size(1000), "1000");
        assert_eq!(format_size(0), "0");
    }

    #[test]
    fn swap_defaults_to_twice_memory_and_updates_merge() {
        let limits = Limits {
            memory: Some(32 << 20),
            ..Limits::default()
        };
        assert_eq!(limits.effective_memory_swap(), Some(Some(64 << 20)));
        let raised = limits.merged(&Limits {
            memory: Some(128 << 20),
            pids: Some(10),
            ..Limits::default()
        });
        assert_eq!(raised.memory, Some(128 << 20));
        assert_eq!(raised.pids, Some(10));
        assert_eq!(raised.effective_memory_swap(), Some(Some(256 << 20)));
        assert_eq!(Limits::default().effective_memory_swap(), None);
        assert_eq!(cpu_quota_us(500_000_000), 50_000);
        assert_eq!(format_cpus(1_250_000_000), "1.25");
    }

    #[test]
    fn old_records_without_limits_load() {
        let limits: Limits = serde_json::from_str("{}").unwrap();
        assert!(limits.is_empty());
        let swap: MemorySwap = serde_json::from_str("\"unlimited\"").unwrap();
        assert_eq!(swap, MemorySwap::Unlimited);
    }
}
