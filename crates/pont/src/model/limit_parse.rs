//! The limit options as typed, in Docker's syntax: each parser refuses what Docker's
//! command line refuses, and every refusal quotes the text as the user typed it.

use super::limits::{
    refuse, LimitOption, Limits, LimitsError, MemorySwap, CPU_SHARES_RANGE, NANOS_PER_CPU,
};

const SIZE_SYNTAX: &str = "expected a number and a unit b, k, m, g, t or p (as 512m or 1.5g)";
const CPUS_SYNTAX: &str = "expected a decimal number such as 0.5 or 2";

/// The limit options as the user typed them (`None`: not given).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimitTexts<'a> {
    pub memory: Option<&'a str>,
    pub memory_swap: Option<&'a str>,
    pub cpus: Option<&'a str>,
    pub cpu_shares: Option<&'a str>,
    pub pids_limit: Option<&'a str>,
}

impl<'a> LimitTexts<'a> {
    /// What was typed for `option`.
    pub fn get(&self, option: LimitOption) -> Option<&'a str> {
        match option {
            LimitOption::Memory => self.memory,
            LimitOption::MemorySwap => self.memory_swap,
            LimitOption::Cpus => self.cpus,
            LimitOption::CpuShares => self.cpu_shares,
            LimitOption::PidsLimit => self.pids_limit,
        }
    }

    /// Parse every option given. The checks that need several values (or a
    /// container's record) are [`Limits::validate`]'s.
    pub fn parse(&self) -> Result<Limits, LimitsError> {
        Ok(Limits {
            memory: self
                .memory
                .map(|t| parse_size(LimitOption::Memory, t))
                .transpose()?,
            memory_swap: self.memory_swap.map(parse_memory_swap).transpose()?,
            nano_cpus: self.cpus.map(parse_cpus).transpose()?,
            cpu_shares: self.cpu_shares.map(parse_cpu_shares).transpose()?,
            pids: self.pids_limit.map(parse_pids_limit).transpose()?,
        })
    }

    /// `err` quoting what was typed for its option, if that option was given here:
    /// [`Limits::validate`] knows only the parsed numbers.
    pub fn quote(&self, err: LimitsError) -> LimitsError {
        match self.get(err.option) {
            Some(text) => LimitsError {
                value: text.to_string(),
                ..err
            },
            None => err,
        }
    }
}

/// A size in Docker's syntax, by the rules of go-units' `RAMInBytes` (v0.5.0, which
/// Docker's command line uses): a number, then an optional unit `b`, `k`, `m`, `g`,
/// `t` or `p` (powers of 1024, any case; after the letter an optional `b` or `ib`:
/// `32m`, `1.5GB`, `2KiB`), with at most one space between them. The number is what
/// a float parser reads (`1.5`, `1.`, `.5`, `1e3`); fractions of a byte are dropped.
/// No other spaces are allowed, before, after or inside.
///
/// Unlike Docker, zero is refused: Docker reads it as "no limit", which only surprises.
pub fn parse_size(option: LimitOption, text: &str) -> Result<u64, LimitsError> {
    let (number, unit) = split_size(text);
    let value: f64 = number
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| refuse(option, text, SIZE_SYNTAX))?;
    let shift = unit_shift(unit).ok_or_else(|| {
        let reason = format!("unknown unit '{unit}': expected b, k, m, g, t or p");
        refuse(option, text, reason)
    })?;
    let bytes = value * (1u64 << shift) as f64;
    if bytes >= u64::MAX as f64 {
        return Err(refuse(option, text, "too large"));
    }
    if bytes < 1.0 {
        return Err(refuse(option, text, "must be more than 0 bytes"));
    }
    Ok(bytes as u64)
}

/// Number and unit, told apart as go-units does: at the first space if there is
/// one, else after the last digit or dot.
fn split_size(text: &str) -> (&str, &str) {
    if let Some(parts) = text.split_once(' ') {
        return parts;
    }
    let end = text
        .rfind(|c: char| c.is_ascii_digit() || c == '.')
        .map_or(0, |i| i + 1);
    text.split_at(end)
}

/// The power of two a unit stands for: `""` and `b` are bytes, a letter may be
/// followed by `b` or `ib`.
fn unit_shift(unit: &str) -> Option<u32> {
    let unit = unit.to_ascii_lowercase();
    let Some((&letter, rest)) = unit.as_bytes().split_first() else {
        return Some(0);
    };
    let shift = match letter {
        b'b' => return rest.is_empty().then_some(0),
        b'k' => 10,
        b'm' => 20,
        b'g' => 30,
        b't' => 40,
        b'p' => 50,
        _ => return None,
    };
    matches!(rest, b"" | b"b" | b"ib").then_some(shift)
}

/// `--memory-swap`: a size, or exactly `-1` for unlimited swap (as Docker).
pub fn parse_memory_swap(text: &str) -> Result<MemorySwap, LimitsError> {
    if text == "-1" {
        return Ok(MemorySwap::Unlimited);
    }
    parse_size(LimitOption::MemorySwap, text).map(MemorySwap::Bytes)
}

/// `--cpus`: a positive decimal number of CPUs, kept exactly in billionths. As
/// Docker, more than nine decimals are refused rather than rounded, and `NaN` or
/// `inf` are not numbers; Docker's other forms of a rational (`1/2`, `1e-1`) are not
/// taken.
pub fn parse_cpus(text: &str) -> Result<u64, LimitsError> {
    let refuse_cpus = |reason| refuse(LimitOption::Cpus, text, reason);
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.len() + frac.len() == 0 || !all_digits(whole) || !all_digits(frac) {
        return Err(refuse_cpus(CPUS_SYNTAX));
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > 9 {
        return Err(refuse_cpus("too precise: at most 9 decimal places"));
    }
    let frac_nanos = frac.bytes().fold(0u64, |n, b| n * 10 + u64::from(b - b'0'))
        * 10u64.pow(9 - frac.len() as u32);
    let nanos = match whole {
        "" => Some(0),
        // Only digits: too many of them is the one way to fail.
        _ => whole.parse::<u64>().ok(),
    }
    .and_then(|w| w.checked_mul(NANOS_PER_CPU))
    .and_then(|n| n.checked_add(frac_nanos))
    .ok_or_else(|| refuse_cpus("too large"))?;
    if negative || nanos == 0 {
        return Err(refuse_cpus("must be more than 0"));
    }
    Ok(nanos)
}

/// `--cpu-shares`: a whole number in v1's range 2 to 262144.
pub fn parse_cpu_shares(text: &str) -> Result<u64, LimitsError> {
    let refuse_shares = |reason| refuse(LimitOption::CpuShares, text, reason);
    let shares: u64 = text
        .parse()
        .map_err(|_| refuse_shares("expected a whole number, 2 to 262144"))?;
    if !CPU_SHARES_RANGE.contains(&shares) {
        return Err(refuse_shares("must be 2 to 262144"));
    }
    Ok(shares)
}

/// `--pids-limit`: a whole number, at least 1.
pub fn parse_pids_limit(text: &str) -> Result<u64, LimitsError> {
    let refuse_pids = |reason| refuse(LimitOption::PidsLimit, text, reason);
    let pids: i64 = text
        .parse()
        .map_err(|_| refuse_pids("expected a whole number, at least 1"))?;
    u64::try_from(pids)
        .ok()
        .filter(|&p| p >= 1)
        .ok_or_else(|| refuse_pids("must be at least 1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(text: &str) -> Result<u64, LimitsError> {
        parse_size(LimitOption::Memory, text)
    }

    #[test]
    fn sizes_in_dockers_syntax() {
        let ok = |t| size(t).unwrap();
        assert_eq!(ok("32m"), 32 << 20);
        assert_eq!(ok("32M"), 32 << 20);
        assert_eq!(ok("32mb"), 32 << 20);
        assert_eq!(ok("32MiB"), 32 << 20);
        assert_eq!(ok("32 m"), 32 << 20);
        assert_eq!(ok("1.5g"), 3 << 29);
        assert_eq!(ok("512k"), 512 << 10);
        assert_eq!(ok("4096"), 4096);
        assert_eq!(ok("100b"), 100);
        assert_eq!(ok("100.7"), 100);
        assert_eq!(ok("1t"), 1 << 40);
        assert_eq!(ok("1p"), 1 << 50);
    }

    /// go-units reads the number as Go's ParseFloat does, so these pass `docker run`
    /// too (its own tests take `.3kB` and `32.b`).
    #[test]
    fn numbers_as_a_float_parser_reads_them() {
        let ok = |t| size(t).unwrap();
        assert_eq!(ok("1.m"), 1 << 20);
        assert_eq!(ok(".5g"), 1 << 29);
        assert_eq!(ok("1e3m"), 1000 << 20);
        // go-units' quirk: a space and no unit after it is bytes.
        assert_eq!(ok("32 "), 32);
    }

    #[test]
    fn what_docker_refuses_is_refused_naming_the_value() {
        for bad in [
            "", "m", ".", ".m", "0", "0m", "0.3b", "-0", "-5m", "12x", "1.2.3m", "abc", "nan",
            "inf", "inf m", " 32m", "32m ", "32  m", "32m b", "32bm", "32bb", "32kibb", "32mm",
            "5 m b", "1e400m",
        ] {
            let err = size(bad).unwrap_err();
            assert_eq!(err.option, LimitOption::Memory, "{bad}");
            assert!(err
                .to_string()
                .starts_with(&format!("invalid --memory '{bad}': ")));
        }
        assert_eq!(
            size("0").unwrap_err().to_string(),
            "invalid --memory '0': must be more than 0 bytes"
        );
        assert_eq!(
            size("12x").unwrap_err().reason,
            "unknown unit 'x': expected b, k, m, g, t or p"
        );
        assert_eq!(size("1.2.3m").unwrap_err().reason, SIZE_SYNTAX);
        assert_eq!(size("99999999999t").unwrap_err().reason, "too large");
    }

    #[test]
    fn swap_takes_exactly_minus_one_for_unlimited() {
        assert_eq!(parse_memory_swap("-1").unwrap(), MemorySwap::Unlimited);
        assert_eq!(parse_memory_swap("1g").unwrap(), MemorySwap::Bytes(1 << 30));
        for bad in ["-2", " -1", "-1m"] {
            let err = parse_memory_swap(bad).unwrap_err();
            assert!(err
                .to_string()
                .starts_with(&format!("invalid --memory-swap '{bad}'")));
        }
    }

    #[test]
    fn cpus_exactly_in_billionths() {
        assert_eq!(parse_cpus("0.5").unwrap(), 500_000_000);
        assert_eq!(parse_cpus(".5").unwrap(), 500_000_000);
        assert_eq!(parse_cpus("2").unwrap(), 2_000_000_000);
        assert_eq!(parse_cpus("2.").unwrap(), 2_000_000_000);
        assert_eq!(parse_cpus("+1.25").unwrap(), 1_250_000_000);
        assert_eq!(parse_cpus("0.000000001").unwrap(), 1);
        assert_eq!(parse_cpus("0.5000000000").unwrap(), 500_000_000);
    }

    #[test]
    fn bad_cpus_say_what_is_wrong_with_the_value() {
        let reason = |t| parse_cpus(t).unwrap_err().to_string();
        for not_a_number in [
            "NaN", "nan", "inf", "-inf", "infinity", "", ".", "abc", " 2",
        ] {
            assert_eq!(
                reason(not_a_number),
                format!("invalid --cpus '{not_a_number}': {CPUS_SYNTAX}")
            );
        }
        assert_eq!(reason("-1"), "invalid --cpus '-1': must be more than 0");
        assert_eq!(reason("-0.5"), "invalid --cpus '-0.5': must be more than 0");
        assert_eq!(reason("0"), "invalid --cpus '0': must be more than 0");
        assert_eq!(
            reason("0.0000000001"),
            "invalid --cpus '0.0000000001': too precise: at most 9 decimal places"
        );
        assert_eq!(
            reason("99999999999999999999"),
            "invalid --cpus '99999999999999999999': too large"
        );
    }

    #[test]
    fn shares_and_pids() {
        assert_eq!(parse_cpu_shares("512").unwrap(), 512);
        assert_eq!(
            parse_cpu_shares("1").unwrap_err().to_string(),
            "invalid --cpu-shares '1': must be 2 to 262144"
        );
        assert!(parse_cpu_shares("262145").is_err());
        assert!(parse_cpu_shares(" 512").is_err());
        assert_eq!(parse_pids_limit("20").unwrap(), 20);
        for bad in ["0", "-1", "x", "1.5"] {
            let err = parse_pids_limit(bad).unwrap_err();
            assert!(err
                .to_string()
                .starts_with(&format!("invalid --pids-limit '{bad}'")));
        }
    }

    #[test]
    fn refusals_after_parsing_quote_the_text_typed() {
        let texts = LimitTexts {
            memory: Some("5K"),
            memory_swap: Some("16M"),
            cpus: Some("5.0"),
            ..LimitTexts::default()
        };
        let limits = texts.parse().unwrap();
        let quoted = |l: Limits| texts.quote(l.validate(2).unwrap_err()).to_string();
        assert_eq!(quoted(limits), "invalid --memory '5K': must be at least 6m");
        let cpus = Limits {
            memory: None,
            memory_swap: None,
            ..limits
        };
        assert_eq!(
            quoted(cpus),
            "invalid --cpus '5.0': this machine has 2 CPUs"
        );
        let swap = Limits {
            memory: Some(32 << 20),
            ..limits
        };
        assert!(quoted(swap).starts_with("invalid --memory-swap '16M': must be at least"));
        // An option not typed now (its value from the record) keeps the number.
        let from_record = Limits {
            memory: Some(32 << 20),
            memory_swap: Some(MemorySwap::Bytes(16 << 20)),
            ..Limits::default()
        };
        let untyped = LimitTexts {
            memory: Some("64m"),
            ..LimitTexts::default()
        };
        assert!(untyped
            .quote(from_record.validate(2).unwrap_err())
            .to_string()
            .starts_with("invalid --memory-swap '16m': "));
    }
}
