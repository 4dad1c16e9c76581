//! `pont update` and `pont stats`, and the limit options of `run`.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use pont::cgroup::Stats;
use pont::model::{online_cpus, LimitTexts, Limits};
use pont::runtime::{ContainerStats, Runtime, RuntimeError};
use serde_json::json;

use crate::cli::{LimitArgs, StatsArgs, UpdateArgs};
use crate::output;

/// How far apart the two samples of CPU time are, as `docker stats`.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

fn texts(args: &LimitArgs) -> LimitTexts<'_> {
    LimitTexts {
        memory: args.memory.as_deref(),
        memory_swap: args.memory_swap.as_deref(),
        cpus: args.cpus.as_deref(),
        cpu_shares: args.cpu_shares.as_deref(),
        pids_limit: args.pids_limit.as_deref(),
    }
}

/// `run`'s limits, parsed and checked against each other and the machine here, where
/// a refusal can still quote what was typed. The runtime checks them again (a detached
/// run's monitor reports only text).
pub fn parse_run_limits(args: &LimitArgs) -> anyhow::Result<Limits> {
    let texts = texts(args);
    let limits = texts.parse()?;
    limits
        .validate(online_cpus())
        .map_err(|err| texts.quote(err))?;
    Ok(limits)
}

pub fn update(rt: &Runtime, args: &UpdateArgs) -> anyhow::Result<()> {
    let texts = texts(&args.limits);
    let limits = texts.parse()?;
    rt.update(&args.name, &limits).map_err(|err| match err {
        // Checked merged with the record's limits: quote what was typed now.
        RuntimeError::Limits(err) => anyhow::Error::from(texts.quote(err)),
        err => err.into(),
    })?;
    println!("{}", args.name);
    Ok(())
}

pub fn stats(rt: &Runtime, args: &StatsArgs) -> anyhow::Result<()> {
    let lock = rt.engine().store().lock()?;
    rt.reconcile_all(&lock)?;
    drop(lock);
    let mut earlier = sample(rt, &args.names)?;
    let json = args.format == "json";
    let clear = !json && !args.no_stream && std::io::stdout().is_terminal();
    loop {
        std::thread::sleep(SAMPLE_INTERVAL);
        let now = sample(rt, &args.names)?;
        let rows = rows(&earlier, &now);
        let mut out = std::io::stdout().lock();
        if clear {
            // Home and clear, as `docker stats` redraws.
            write!(out, "\x1b[H\x1b[2J")?;
        }
        if json {
            for row in &rows {
                writeln!(out, "{}", row_json(row))?;
            }
        } else {
            print_rows(&rows);
        }
        out.flush()?;
        if args.no_stream {
            return Ok(());
        }
        earlier = now;
    }
}

struct Sample {
    at: Instant,
    containers: Vec<ContainerStats>,
}

fn sample(rt: &Runtime, names: &[String]) -> anyhow::Result<Sample> {
    Ok(Sample {
        at: Instant::now(),
        containers: rt.stats(names)?,
    })
}

struct Row<'a> {
    container: &'a ContainerStats,
    cpu_percent: Option<f64>,
}

fn rows<'a>(earlier: &Sample, now: &'a Sample) -> Vec<Row<'a>> {
    let before: HashMap<&str, &Stats> = earlier
        .containers
        .iter()
        .map(|c| (c.id.as_str(), &c.stats))
        .collect();
    let wall = now.at.duration_since(earlier.at);
    now.containers
        .iter()
        .map(|c| Row {
            container: c,
            cpu_percent: before
                .get(c.id.as_str())
                .and_then(|b| c.stats.cpu_percent(b, wall)),
        })
        .collect()
}

fn memory_percent(stats: &Stats) -> Option<f64> {
    let (usage, limit) = (stats.memory_usage?, stats.memory_limit?);
    (limit > 0).then(|| usage as f64 * 100.0 / limit as f64)
}

fn row_json(row: &Row<'_>) -> serde_json::Value {
    let (c, s) = (row.container, &row.container.stats);
    json!({
        "id": c.id,
        "name": c.name,
        "cpu_percent": row.cpu_percent,
        "memory_usage_bytes": s.memory_usage,
        "memory_limit_bytes": s.memory_limit,
        "memory_percent": memory_percent(s),
        "pids": s.pids,
        "pids_limit": c.limits.pids,
    })
}

fn print_rows(rows: &[Row<'_>]) {
    let mut table = vec![[
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "PIDS",
    ]
    .map(String::from)
    .to_vec()];
    let dash = || "--".to_string();
    for row in rows {
        let (c, s) = (row.container, &row.container.stats);
        let limit = s.memory_limit.map_or("unlimited".to_string(), human_bytes);
        let memory = s
            .memory_usage
            .map_or_else(dash, |u| format!("{} / {limit}", human_bytes(u)));
        table.push(vec![
            c.id[..12].to_string(),
            c.name.clone(),
            row.cpu_percent.map_or_else(dash, |p| format!("{p:.2}%")),
            memory,
            memory_percent(s).map_or_else(dash, |p| format!("{p:.2}%")),
            s.pids.map_or_else(dash, |p| p.to_string()),
        ]);
    }
    output::print_table(&table);
}

/// Bytes in binary units, as `docker stats` shows them: `12.5MiB`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.2}{}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_like_docker_stats() {
        assert_eq!(human_bytes(512), "512B");
        assert_eq!(human_bytes(32 << 20), "32.00MiB");
        assert_eq!(human_bytes(1536), "1.50KiB");
        assert_eq!(human_bytes(3 << 30), "3.00GiB");
    }
}
