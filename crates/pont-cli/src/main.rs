//! `pont`: parse the command line, call the library, print, exit.
//!
//! Exit codes follow Docker's: for `run`, `start` and `exec`, 125 means pont
//! itself failed and any other code is the container command's own (126: it
//! cannot be run, 127: not found). Other commands exit 1 on failure.

mod cli;
mod containers;
mod firewall_cmd;
mod limits_cmd;
mod networks;
mod output;
mod system_cmd;

use std::process::ExitCode;

use clap::Parser;
use cli::{Cli, Command};
use pont::engine::Engine;
use pont::firewall::Backend;
use pont::ipam::{parse_pools, DEFAULT_POOLS};
use pont::runtime::Runtime;
use pont::state::Store;

/// Docker's code for "the engine failed", used for run, start and exec.
const EXIT_PONT_FAILED: u8 = 125;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let fail_code = match cli.command {
        Command::Run(_) | Command::Exec(_) | Command::Start { .. } => EXIT_PONT_FAILED,
        _ => 1,
    };
    let result = dispatch(cli);
    pont::firewall::release_before_exit();
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("pont: {err:#}");
            ExitCode::from(fail_code)
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    if !nix::unistd::geteuid().is_root() {
        anyhow::bail!(
            "must be run as root: pont creates network namespaces, links and firewall rules"
        );
    }
    let firewall = cli
        .firewall
        .as_deref()
        .map(str::parse::<Backend>)
        .transpose()?;
    let runtime = open_runtime(&cli.root, firewall)?;
    match cli.command {
        Command::Network(cmd) => networks::dispatch(&runtime, cmd).map(|()| 0),
        Command::Firewall(cmd) => firewall_cmd::dispatch(&runtime, cmd).map(|()| 0),
        Command::System(cmd) => system_cmd::dispatch(&runtime, cmd),
        Command::Run(args) => containers::run(&runtime, args),
        Command::Exec(args) => containers::exec(&runtime, args),
        Command::Port(args) => containers::port(&runtime, args).map(|()| 0),
        Command::Ps(args) => containers::ps(&runtime, &args).map(|()| 0),
        Command::Inspect { names } => containers::inspect(&runtime, &names).map(|()| 0),
        Command::Logs { follow, name } => containers::logs(&runtime, &name, follow).map(|()| 0),
        Command::Stop { time, names } => containers::stop(&runtime, &names, time).map(|()| 0),
        Command::Start { names } => containers::start(&runtime, &names).map(|()| 0),
        Command::Update(args) => limits_cmd::update(&runtime, &args).map(|()| 0),
        Command::Stats(args) => limits_cmd::stats(&runtime, &args).map(|()| 0),
        Command::Rm { force, names } => containers::rm(&runtime, &names, force).map(|()| 0),
    }
}

/// For commands that list or inspect: bring every record (and pont's
/// firewall, if someone flushed it) in line with reality first, so that what
/// they show is true now.
pub(crate) fn reconciled(rt: &Runtime) -> anyhow::Result<()> {
    let lock = rt.engine().store().lock()?;
    rt.reconcile_all(&lock)?;
    Ok(())
}

fn open_runtime(root: &std::path::Path, firewall: Option<Backend>) -> anyhow::Result<Runtime> {
    let pools_spec = std::env::var("PONT_ADDRESS_POOLS").unwrap_or_else(|_| DEFAULT_POOLS.into());
    let pools = parse_pools(&pools_spec).map_err(|e| anyhow::anyhow!("PONT_ADDRESS_POOLS: {e}"))?;
    let store = Store::open(root)?;
    Ok(Runtime::new(Engine::open(store, pools, firewall)?))
}
