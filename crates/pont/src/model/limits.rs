//! Resource limits of a container (`--memory`, `--memory-swap`, `--cpus`, `--cpu-shares`,
//! `--pids-limit`): parsing in Docker's syntax and the checks every limit passes before
//! a cgroup file is written. The cgroup module turns a checked [`Limits`] into writes.

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

const NANOS_PER_CPU: u64 = 1_000_000_000;

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

/// A limit that cannot be used; the message names the option and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {option} '{value}': {reason}")]
pub struct LimitsError {
    pub option: &'static str,
    pub value: String,
    pub reason: String,
}

fn refuse(option: &'static str, value: impl ToString, reason: impl Into<String>) -> LimitsError {
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
    pub fn validate(&self, online_cpus: u64) -> Result<(), LimitsError> {
        if let Some(memory) = self.memory {
            if memory < MIN_MEMORY_BYTES {
                return Err(refuse(
                    "--memory",
                    memory,
                    "the minimum is 6m (6291456 bytes)",
                ));
            }
        }
        if let Some(MemorySwap::Bytes(total)) = self.memory_swap {
            match self.memory {
                None => return Err(refuse("--memory-swap", total, "needs --memory as well")),
                Some(memory) if total < memory => {
                    return Err(refuse(
                        "--memory-swap",
                        total,
                        format!(
                        "must be at least --memory ({memory} bytes): it counts memory plus swap"
                    ),
                    ))
                }
                Some(_) => {}
            }
        }
        if let Some(nano) = self.nano_cpus {
            let cpus = format_cpus(nano);
            if nano > online_cpus.saturating_mul(NANOS_PER_CPU) {
                let reason = format!("this machine has {online_cpus} CPUs");
                return Err(refuse("--cpus", cpus, reason));
            }
            if cpu_quota_us(nano) < MIN_CPU_QUOTA_US {
                return Err(refuse("--cpus", cpus, "the minimum is 0.01"));
            }
        }
        if let Some(shares) = self.cpu_shares {
            if !CPU_SHARES_RANGE.contains(&shares) {
                return Err(refuse("--cpu-shares", shares, "must be 2 to 262144"));
            }
        }
        Ok(())
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

fn format_cpus(nano: u64) -> String {
    let whole = nano / NANOS_PER_CPU;
    let frac = nano % NANOS_PER_CPU;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:09}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// A size in Docker's syntax: a number (decimals allowed) and an optional unit `b`, `k`,
/// `m`, `g` or `t` (powers of 1024, any case, optionally followed by `b`: `32m`, `1.5GB`).
/// Zero is refused: Docker reads it as "no limit", which only surprises.
pub fn parse_size(option: &'static str, text: &str) -> Result<u64, LimitsError> {
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits_end);
    let shift = match unit
        .strip_suffix('b')
        .filter(|u| !u.is_empty())
        .unwrap_or(unit)
    {
        "" | "b" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => {
            return Err(refuse(
                option,
                text,
                "expected a number with unit b, k, m, g or t",
            ))
        }
    };
    let value: f64 = number
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && !number.is_empty())
        .ok_or_else(|| refuse(option, text, "expected a number with unit b, k, m, g or t"))?;
    let bytes = value * (1u64 << shift) as f64;
    if bytes >= u64::MAX as f64 {
        return Err(refuse(option, text, "too large"));
    }
    let bytes = bytes as u64;
    if bytes == 0 {
        return Err(refuse(option, text, "must be more than 0 bytes"));
    }
    Ok(bytes)
}

/// `--memory-swap`: a size, or `-1` for unlimited swap.
pub fn parse_memory_swap(text: &str) -> Result<MemorySwap, LimitsError> {
    if text.trim() == "-1" {
        return Ok(MemorySwap::Unlimited);
    }
    parse_size("--memory-swap", text).map(MemorySwap::Bytes)
}

/// `--cpus`: a positive decimal number of CPUs, kept in billionths.
pub fn parse_cpus(text: &str) -> Result<u64, LimitsError> {
    let cpus: f64 = text
        .trim()
        .parse()
        .map_err(|_| refuse("--cpus", text, "expected a number such as 0.5 or 2"))?;
    if !cpus.is_finite() || cpus <= 0.0 {
        return Err(refuse("--cpus", text, "must be more than 0"));
    }
    if cpus > (u64::MAX / NANOS_PER_CPU) as f64 {
        return Err(refuse("--cpus", text, "too large"));
    }
    Ok((cpus * NANOS_PER_CPU as f64).round() as u64)
}

/// `--cpu-shares`: a whole number in v1's range 2 to 262144.
pub fn parse_cpu_shares(text: &str) -> Result<u64, LimitsError> {
    let shares: u64 = text
        .trim()
        .parse()
        .map_err(|_| refuse("--cpu-shares", text, "expected a whole number, 2 to 262144"))?;
    if !CPU_SHARES_RANGE.contains(&shares) {
        return Err(refuse("--cpu-shares", text, "must be 2 to 262144"));
    }
    Ok(shares)
}

/// `--pids-limit`: a whole number, at least 1.
pub fn parse_pids_limit(text: &str) -> Result<u64, LimitsError> {
    let pids: i64 = text
        .trim()
        .parse()
        .map_err(|_| refuse("--pids-limit", text, "expected a whole number, at least 1"))?;
    u64::try_from(pids)
        .ok()
        .filter(|&p| p >= 1)
        .ok_or_else(|| refuse("--pids-limit", text, "must be at least 1"))
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
    fn sizes_in_dockers_syntax() {
        let ok = |t| parse_size("--memory", t).unwrap();
        assert_eq!(ok("32m"), 32 << 20);
        assert_eq!(ok("32M"), 32 << 20);
        assert_eq!(ok("32mb"), 32 << 20);
        assert_eq!(ok("1.5g"), 3 << 29);
        assert_eq!(ok("512k"), 512 << 10);
        assert_eq!(ok("4096"), 4096);
        assert_eq!(ok("100b"), 100);
        assert_eq!(ok("1t"), 1 << 40);
    }

    #[test]
    fn bad_sizes_name_the_option_and_value() {
        for bad in [
            "", "m", "0", "0m", "-5m", "12x", "1.2.3m", "abc", "5 m", "nan", "1e3m",
        ] {
            let err = parse_size("--memory", bad).unwrap_err();
            assert_eq!(err.option, "--memory", "{bad}");
            assert!(err.to_string().contains(&format!("'{bad}'")), "{err}");
        }
        assert_eq!(
            parse_size("--memory", "0").unwrap_err().to_string(),
            "invalid --memory '0': must be more than 0 bytes"
        );
        assert!(parse_size("--memory", "99999999999t").is_err());
    }

    #[test]
    fn swap_cpus_shares_pids() {
        assert_eq!(parse_memory_swap("-1").unwrap(), MemorySwap::Unlimited);
        assert_eq!(parse_memory_swap("1g").unwrap(), MemorySwap::Bytes(1 << 30));
        assert!(parse_memory_swap("-2").is_err());
        assert_eq!(parse_cpus("0.5").unwrap(), 500_000_000);
        assert_eq!(parse_cpus("2").unwrap(), 2_000_000_000);
        for bad in ["0", "-1", "abc", "inf", "NaN", ""] {
            assert!(parse_cpus(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_cpu_shares("512").unwrap(), 512);
        assert!(parse_cpu_shares("1").is_err());
        assert!(parse_cpu_shares("262145").is_err());
        assert_eq!(parse_pids_limit("20").unwrap(), 20);
        for bad in ["0", "-1", "x", "1.5"] {
            assert!(parse_pids_limit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_against_each_other_and_the_machine() {
        let mem = |m| Limits {
            memory: Some(m),
            ..Limits::default()
        };
        assert!(mem(32 << 20).validate(2).is_ok());
        assert!(mem(1 << 20).validate(2).is_err());
        let swap_alone = Limits {
            memory_swap: Some(MemorySwap::Bytes(1 << 30)),
            ..Limits::default()
        };
        assert!(swap_alone
            .validate(2)
            .unwrap_err()
            .reason
            .contains("--memory"));
        let swap_small = Limits {
            memory_swap: Some(MemorySwap::Bytes(16 << 20)),
            ..mem(32 << 20)
        };
        assert!(swap_small.validate(2).is_err());
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
        assert!(cpus(5_000_000).validate(2).is_err());
        assert!(cpus(10_000_000).validate(2).is_ok());
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
