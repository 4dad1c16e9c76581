//! `pont run`, `exec`, `ps`, `inspect`, `logs`, `stop`, `start`, `rm`.

use std::io::{Read, Write};
use std::time::Duration;

use anyhow::{anyhow, bail};
use pont::model::{validate_mac, ContainerState, PortSpec};
use pont::runtime::{NetworkChoice, RunRequest, Runtime};

use crate::cli::{ExecArgs, PortAction, PortArgs, PsArgs, RunArgs};
use crate::output;

pub fn run(rt: &Runtime, args: RunArgs) -> anyhow::Result<u8> {
    let network = match args.network.as_deref() {
        None => NetworkChoice::Default,
        Some("none") => NetworkChoice::None,
        Some("host") => NetworkChoice::Host,
        Some(name) => NetworkChoice::Named(name.to_string()),
    };
    let ip = match args.ip.as_deref() {
        Some(s) => Some(
            s.parse()
                .map_err(|_| anyhow!("invalid IPv4 address '{s}' for --ip"))?,
        ),
        None => None,
    };
    let req = RunRequest {
        name: args.name,
        network,
        ip,
        mac: args.mac.as_deref().map(validate_mac).transpose()?,
        hostname: args.hostname,
        env: parse_env(&args.env)?,
        workdir: args.workdir,
        rootfs: args.rootfs,
        argv: args.command,
        ports: parse_specs(&args.publish)?,
        auto_remove: args.rm,
        detach: args.detach,
        limits: crate::limits_cmd::parse_run_limits(&args.limits)?,
    };
    if req.detach {
        let id = rt.run_detached(&req)?;
        println!("{id}");
        Ok(0)
    } else {
        Ok(exit_byte(rt.run_foreground(&req)?))
    }
}

pub fn parse_specs(items: &[String]) -> anyhow::Result<Vec<PortSpec>> {
    Ok(items.iter().map(|s| s.parse()).collect::<Result<_, _>>()?)
}

pub fn port(rt: &Runtime, args: PortArgs) -> anyhow::Result<()> {
    match args.action {
        Some(PortAction::Add { name, specs }) => {
            for m in rt.port_add(&name, &parse_specs(&specs)?)? {
                println!("{}", output::port_line(&m));
            }
        }
        Some(PortAction::Rm { name, specs }) => {
            for m in rt.port_rm(&name, &parse_specs(&specs)?)? {
                println!("{}", output::port_line(&m));
            }
        }
        None => {
            crate::reconciled(rt)?;
            let name = args
                .name
                .ok_or_else(|| anyhow!("usage: pont port NAME | pont port add|rm NAME SPEC..."))?;
            for m in rt.container(&name)?.ports {
                println!("{}", output::port_line(&m));
            }
        }
    }
    Ok(())
}

pub fn exec(rt: &Runtime, args: ExecArgs) -> anyhow::Result<u8> {
    let env = parse_env(&args.env)?;
    Ok(exit_byte(rt.exec(
        &args.name,
        &args.command,
        &env,
        args.workdir.as_deref(),
    )?))
}

fn exit_byte(code: i32) -> u8 {
    u8::try_from(code).unwrap_or(255)
}

fn parse_env(items: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut env = Vec::new();
    for item in items {
        match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => env.push((k.to_string(), v.to_string())),
            None if !item.is_empty() => {
                // Docker's `-e NAME` passes pont's own value through, and leaves NAME
                // unset in the container when pont has none (not set to "").
                match std::env::var(item) {
                    Ok(value) => env.push((item.clone(), value)),
                    Err(std::env::VarError::NotPresent) => {}
                    Err(std::env::VarError::NotUnicode(_)) => {
                        bail!("environment variable '{item}' is not valid UTF-8")
                    }
                }
            }
            _ => bail!("invalid environment variable '{item}': expected KEY=VALUE"),
        }
    }
    Ok(env)
}

pub fn ps(rt: &Runtime, args: &PsArgs) -> anyhow::Result<()> {
    crate::reconciled(rt)?;
    let mut containers: Vec<_> = rt
        .engine()
        .store()
        .containers()?
        .into_iter()
        .filter(|c| args.all || c.state != ContainerState::Exited)
        .collect();
    // As `docker ps`: newest first, and ports only while they are published (the
    // record keeps them for `start`; `inspect` shows them).
    containers.sort_by_key(|c| std::cmp::Reverse(c.created_at()));
    for c in &mut containers {
        if c.state != ContainerState::Running {
            c.ports.clear();
        }
    }
    if args.quiet {
        containers.iter().for_each(|c| println!("{}", c.short_id()));
    } else if args.format == "json" {
        let all: Vec<_> = containers.iter().map(output::container_json).collect();
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else {
        let mut rows = vec![[
            "CONTAINER ID",
            "NAME",
            "STATE",
            "NETWORKS",
            "PORTS",
            "COMMAND",
        ]
        .map(String::from)
        .to_vec()];
        for c in &containers {
            let state = match (c.state, c.exit_code) {
                (ContainerState::Exited, Some(code)) => format!("exited ({code})"),
                (s, _) => output::state_name(s).to_string(),
            };
            let nets: Vec<String> = c
                .endpoints
                .iter()
                .map(|e| format!("{}:{}", e.network, e.ipv4))
                .collect();
            rows.push(vec![
                c.short_id().to_string(),
                c.name.clone(),
                state,
                nets.join(","),
                c.ports
                    .iter()
                    .map(|m| m.display())
                    .collect::<Vec<_>>()
                    .join(", "),
                c.argv.join(" "),
            ]);
        }
        output::print_table(&rows);
    }
    Ok(())
}

pub fn inspect(rt: &Runtime, names: &[String]) -> anyhow::Result<()> {
    if names.is_empty() {
        bail!("inspect needs at least one container name");
    }
    crate::reconciled(rt)?;
    let docs = names
        .iter()
        .map(|n| rt.container(n).map(|c| output::container_json(&c)))
        .collect::<Result<Vec<_>, _>>()?;
    output::print_json_one_or_many(docs)
}

pub fn logs(rt: &Runtime, name: &str, follow: bool) -> anyhow::Result<()> {
    crate::reconciled(rt)?;
    let c = rt.container(name)?;
    let path = rt.engine().store().container_dir(&c.id).join("log");
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if c.detached {
                return Ok(());
            }
            bail!("container {name} ran in the foreground: it has no log");
        }
        Err(e) => return Err(anyhow!("cannot open {}: {e}", path.display())),
    };
    let mut out = std::io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n > 0 {
            out.write_all(&buf[..n])?;
            continue;
        }
        out.flush()?;
        if !follow || !still_running(rt, &c.id) {
            // Output written between the last read and the exit.
            std::io::copy(&mut file, &mut out)?;
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn still_running(rt: &Runtime, id: &str) -> bool {
    matches!(rt.container(id), Ok(c) if c.state != ContainerState::Exited)
}

pub fn stop(rt: &Runtime, names: &[String], secs: u64) -> anyhow::Result<()> {
    for_each(names, |n| rt.stop(n, Duration::from_secs(secs)))
}

pub fn start(rt: &Runtime, names: &[String]) -> anyhow::Result<()> {
    for_each(names, |n| rt.start(n).map(drop))
}

pub fn rm(rt: &Runtime, names: &[String], force: bool) -> anyhow::Result<()> {
    for_each(names, |n| rt.remove(n, force))
}

/// Act on every name, printing each that succeeded; report all failures, fail if any.
fn for_each<E: std::fmt::Display>(
    names: &[String],
    mut act: impl FnMut(&str) -> Result<(), E>,
) -> anyhow::Result<()> {
    if let [name] = names {
        act(name).map_err(|e| anyhow!("{e}"))?;
        println!("{name}");
        return Ok(());
    }
    let mut failed = 0;
    for name in names {
        match act(name) {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("pont: {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} failed", names.len());
    }
    Ok(())
}
