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
    let req = create_request(args)?;
    let engine = rt.engine();
    let lock = engine.store().lock()?;
    rt.reconcile(&lock)?;
    let net = engine.create_network(&lock, &req)?;
    println!("{}", net.id);
    Ok(())
}

/// The request, with every option checked that needs no state.
fn create_request(args: NetworkCreateArgs) -> anyhow::Result<NetworkCreate> {
    let subnet = args
        .subnet
        .as_deref()
        .map(str::parse::<Ipv4Net>)
        .transpose()?;
    let ip_range = args
        .ip_range
        .as_deref()
        .map(str::parse::<Ipv4Net>)
        .transpose()?;
    if subnet.is_none() {
        // As Docker's "no matching subnet for range": a range or gateway belongs to
        // a subnet, and one picked from the pools is not known yet.
        if let Some(range) = ip_range {
            bail!("no matching subnet for --ip-range {range}: give --subnet as well");
        }
        if let Some(gateway) = args.gateway {
            bail!("no matching subnet for --gateway {gateway}: give --subnet as well");
        }
    }
    let opts = parse_opts(&args.opts, args.mtu)?;
    Ok(NetworkCreate {
        name: args.name,
        subnet,
        gateway: args.gateway,
        ip_range,
        mtu: opts.mtu.map(|(mtu, _)| mtu),
        internal: args.internal,
        // Inter-container traffic is on unless an --opt turns it off.
        icc: opts.icc.is_none_or(|(icc, _)| icc),
    })
}

/// What `--opt` sets, each value with the option that said it first.
#[derive(Debug, Default)]
struct DriverOpts {
    icc: Option<(bool, String)>,
    mtu: Option<(u32, String)>,
}

/// The `--opt KEY=VALUE`s. Where two say the same key (or `mtu` and `--mtu`), they
/// must agree: which one should win is a guess, so neither does.
fn parse_opts(opts: &[String], mtu_flag: Option<u32>) -> anyhow::Result<DriverOpts> {
    let mut out = DriverOpts {
        mtu: mtu_flag.map(|mtu| (mtu, format!("--mtu {mtu}"))),
        ..DriverOpts::default()
    };
    for opt in opts {
        let Some((key, value)) = opt.split_once('=') else {
            bail!("invalid --opt '{opt}': expected KEY=VALUE (icc=true|false, mtu=N)");
        };
        match key {
            "icc" => agree(&mut out.icc, parse_bool(key, value)?, opt)?,
            "mtu" => {
                let mtu = value
                    .parse()
                    .map_err(|_| anyhow!("invalid MTU '{value}' in --opt {opt}"))?;
                agree(&mut out.mtu, mtu, opt)?
            }
            _ => bail!("unknown network option '{opt}' (known: icc=true|false, mtu=N)"),
        }
    }
    Ok(out)
}

fn agree<T: PartialEq>(seen: &mut Option<(T, String)>, value: T, opt: &str) -> anyhow::Result<()> {
    match seen {
        Some((first, said)) if *first != value => bail!("--opt {opt} conflicts with {said}"),
        Some(_) => {}
        None => *seen = Some((value, format!("--opt {opt}"))),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> NetworkCreateArgs {
        use clap::Parser;
        let mut argv = vec!["pont", "network", "create", "x"];
        argv.extend_from_slice(extra);
        match crate::cli::Cli::parse_from(argv).command {
            crate::cli::Command::Network(NetworkCommand::Create(args)) => args,
            other => panic!("parsed as {other:?}"),
        }
    }

    fn refusal(extra: &[&str]) -> String {
        create_request(args(extra)).unwrap_err().to_string()
    }

    #[test]
    fn mtu_from_flag_and_option_must_agree() {
        let same = create_request(args(&["--mtu", "1400", "-o", "mtu=1400"])).unwrap();
        assert_eq!(same.mtu, Some(1400));
        assert_eq!(
            refusal(&["--mtu", "1400", "-o", "mtu=1500"]),
            "--opt mtu=1500 conflicts with --mtu 1400"
        );
        assert_eq!(
            refusal(&["-o", "mtu=1400", "-o", "mtu=9000"]),
            "--opt mtu=9000 conflicts with --opt mtu=1400"
        );
        assert_eq!(
            create_request(args(&["-o", "mtu=9000"])).unwrap().mtu,
            Some(9000)
        );
        assert_eq!(
            refusal(&["-o", "mtu=big"]),
            "invalid MTU 'big' in --opt mtu=big"
        );
    }

    #[test]
    fn icc_option_needs_a_value() {
        assert!(create_request(args(&[])).unwrap().icc);
        assert!(!create_request(args(&["-o", "icc=false"])).unwrap().icc);
        assert!(
            !create_request(args(&["-o", "icc=0", "-o", "icc=false"]))
                .unwrap()
                .icc
        );
        assert_eq!(
            refusal(&["-o", "icc"]),
            "invalid --opt 'icc': expected KEY=VALUE (icc=true|false, mtu=N)"
        );
        assert_eq!(
            refusal(&["-o", "icc=true", "-o", "icc=false"]),
            "--opt icc=false conflicts with --opt icc=true"
        );
        assert_eq!(
            refusal(&["-o", "icc="]),
            "invalid value '' for option icc: expected true or false"
        );
    }

    #[test]
    fn range_and_gateway_need_a_subnet() {
        assert_eq!(
            refusal(&["--ip-range", "10.1.2.0/25"]),
            "no matching subnet for --ip-range 10.1.2.0/25: give --subnet as well"
        );
        assert_eq!(
            refusal(&["--gateway", "10.1.2.1"]),
            "no matching subnet for --gateway 10.1.2.1: give --subnet as well"
        );
        let req = create_request(args(&[
            "--subnet",
            "10.1.2.0/24",
            "--ip-range",
            "10.1.2.0/25",
        ]))
        .unwrap();
        assert_eq!(req.ip_range, Some("10.1.2.0/25".parse().unwrap()));
    }
}
