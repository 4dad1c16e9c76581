//! `pont network ...`

use anyhow::{anyhow, bail};
use pont::engine::NetworkCreate;
use pont::model::Ipv4Net;
use pont::runtime::Runtime;

use crate::cli::{NetworkCommand, NetworkCreateArgs};
use crate::output;

pub fn dispatch(rt: &Runtime, cmd: NetworkCommand) -> anyhow::Result<()> {
    match cmd {
        NetworkCommand::Create(args) => create(rt, args),
        NetworkCommand::Ls { format, quiet } => ls(rt, &format, quiet),
        NetworkCommand::Inspect { names } => inspect(rt, &names),
        NetworkCommand::Rm { names } => rm(rt, &names),
    }
}

fn create(rt: &Runtime, args: NetworkCreateArgs) -> anyhow::Result<()> {
    let mut req = NetworkCreate {
        name: args.name,
        subnet: args
            .subnet
            .as_deref()
            .map(str::parse::<Ipv4Net>)
            .transpose()?,
        gateway: args.gateway,
        ip_range: args
            .ip_range
            .as_deref()
            .map(str::parse::<Ipv4Net>)
            .transpose()?,
        mtu: args.mtu,
        internal: args.internal,
        icc: true,
    };
    if req.gateway.is_some() && req.subnet.is_none() {
        bail!("--gateway needs --subnet");
    }
    for opt in &args.opts {
        match opt.split_once('=') {
            Some(("icc", v)) => req.icc = parse_bool("icc", v)?,
            Some(("mtu", v)) => {
                req.mtu = Some(
                    v.parse()
                        .map_err(|_| anyhow!("invalid MTU '{v}' in --opt"))?,
                )
            }
            _ => bail!("unknown network option '{opt}' (known: icc=true|false, mtu=N)"),
        }
    }
    let engine = rt.engine();
    let lock = engine.store().lock()?;
    rt.reconcile(&lock)?;
    let net = engine.create_network(&lock, &req)?;
    println!("{}", net.id);
    Ok(())
}

fn parse_bool(key: &str, v: &str) -> anyhow::Result<bool> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => bail!("invalid value '{v}' for option {key}: expected true or false"),
    }
}

fn ls(rt: &Runtime, format: &str, quiet: bool) -> anyhow::Result<()> {
    crate::reconciled(rt)?;
    let networks = rt.engine().store().networks()?;
    if quiet {
        networks.iter().for_each(|n| println!("{}", n.name));
        return Ok(());
    }
    let containers = rt.engine().store().containers()?;
    if format == "json" {
        let all: Vec<_> = networks
            .iter()
            .map(|n| output::network_json(n, &containers))
            .collect();
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    let mut rows = vec![vec![
        "NAME".into(),
        "ID".into(),
        "BRIDGE".into(),
        "SUBNET".into(),
        "GATEWAY".into(),
        "OPTIONS".into(),
    ]];
    for n in &networks {
        let mut opts = vec![];
        if n.internal {
            opts.push("internal");
        }
        if !n.icc {
            opts.push("icc=false");
        }
        rows.push(vec![
            n.name.clone(),
            n.id[..12].to_string(),
            n.bridge.clone(),
            n.subnet.to_string(),
            n.gateway.to_string(),
            opts.join(","),
        ]);
    }
    output::print_table(&rows);
    Ok(())
}

fn inspect(rt: &Runtime, names: &[String]) -> anyhow::Result<()> {
    crate::reconciled(rt)?;
    let containers = rt.engine().store().containers()?;
    let mut all = Vec::new();
    for name in names {
        let net = rt.engine().network(name)?;
        all.push(output::network_json(&net, &containers));
    }
    output::print_json_one_or_many(all)
}

fn rm(rt: &Runtime, names: &[String]) -> anyhow::Result<()> {
    let engine = rt.engine();
    let lock = engine.store().lock()?;
    // Every container: one that died unnoticed must not keep a network in use.
    rt.reconcile_all(&lock)?;
    // Check them all first, so that `network rm a b` with b in use removes nothing.
    for name in names {
        engine.check_removable(name)?;
    }
    for name in names {
        engine.remove_network(&lock, name)?;
        println!("{name}");
    }
    Ok(())
}
