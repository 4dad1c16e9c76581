//! `pont-bench`: what the benchmark harness (`bench/run.sh`) needs from pont
//! that the `pont` command line does not offer (yet).
//!
//! - `attach` does the same work as `netavark setup` or a CNI ADD, through
//!   pont's engine: a new network namespace, pinned at a path the caller
//!   chooses, attached to a pont network with its published ports.
//! - `detach` undoes it: the record and the firewall elements go, and the
//!   pinned namespace is released, so the kernel removes the veth with it.
//! - `http-serve` is a small HTTP server for connection-rate runs (`wrk`),
//!   fast enough that the path to it, not the server, is what is measured.
//!
//! It is a benchmark tool, not a front end: records it writes have no
//! monitor process, so the `pont` command would treat them as exited.
//! Never point it at a state root the `pont` command uses.
//!
//! `attach` and `detach` print one JSON line: the container's address (attach)
//! and `steps_us`, the wall time of each step, for profiling.

mod attach;
mod http;
mod netns;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "pont-bench", about = "pont's benchmark driver")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Make a namespace at NETNS and attach it to a pont network.
    Attach(AttachArgs),
    /// Detach the namespace at NETNS again and release it.
    Detach(DetachArgs),
    /// Answer every HTTP request with a short 200 and close the connection.
    HttpServe {
        #[arg(long, default_value_t = 80)]
        port: u16,
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
}

#[derive(Args, Debug)]
struct Common {
    /// State root (a throwaway one: see the crate docs).
    #[arg(long)]
    root: PathBuf,
    /// Firewall backend: nftables or iptables.
    #[arg(long)]
    firewall: Option<String>,
    /// Where the namespace is (to be) pinned by a bind mount.
    #[arg(long)]
    netns: PathBuf,
    /// Container id: 64 hex digits, as pont's own.
    #[arg(long)]
    id: String,
}

#[derive(Args, Debug)]
struct AttachArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long)]
    network: String,
    /// A port spec with a host port, as `pont run -p` takes it.
    #[arg(short, long)]
    publish: Vec<String>,
    /// `START-END:PORT`: one mapping per host port START..=END, each to PORT.
    #[arg(long)]
    many: Option<String>,
}

#[derive(Args, Debug)]
struct DetachArgs {
    #[command(flatten)]
    common: Common,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Attach(args) => attach::attach(&args),
        Command::Detach(args) => attach::detach(&args.common),
        Command::HttpServe { port, threads } => http::serve(port, threads),
    };
    pont::firewall::release_before_exit();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("pont-bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}
