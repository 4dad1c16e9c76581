//! The command line, as clap types. Nothing but parsing lives here.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "pont",
    version,
    about = "Container networking from Linux primitives"
)]
pub struct Cli {
    /// State root (records, logs, generated /etc files).
    #[arg(
        long,
        env = "PONT_ROOT",
        default_value = "/var/lib/pont",
        global = true
    )]
    pub root: PathBuf,
    /// Firewall backend: nftables or iptables (remembered in the state root).
    #[arg(long, env = "PONT_FIREWALL", global = true)]
    pub firewall: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of the largest variant (run's options) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Manage networks.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// List, add or remove a container's published ports (also while it runs).
    Port(PortArgs),
    /// Show or rebuild pont's firewall rules.
    #[command(subcommand)]
    Firewall(FirewallCommand),
    /// Compare pont's records with the kernel, and repair the differences.
    #[command(subcommand)]
    System(SystemCommand),
    /// Run a command in a new container.
    Run(RunArgs),
    /// Run a command inside a running container.
    Exec(ExecArgs),
    /// List containers.
    Ps(PsArgs),
    /// Show a container's details as JSON.
    Inspect { names: Vec<String> },
    /// Show a detached container's output.
    Logs {
        /// Keep printing new output until the container exits.
        #[arg(short, long)]
        follow: bool,
        name: String,
    },
    /// Stop running containers: SIGTERM, then SIGKILL after the timeout.
    Stop {
        /// Seconds to wait before SIGKILL.
        #[arg(short = 't', long = "time", default_value_t = 10)]
        time: u64,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Start exited containers again (same name, network and, if free, address).
    Start {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Change the resource limits of a running container.
    Update(UpdateArgs),
    /// Show containers' use of memory, CPU and processes (refreshing until interrupted).
    Stats(StatsArgs),
    /// Remove containers.
    Rm {
        /// Stop (SIGKILL) running containers first.
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum NetworkCommand {
    /// Create a bridge network.
    Create(NetworkCreateArgs),
    /// List networks.
    Ls {
        #[arg(long, value_parser = ["table", "json"], default_value = "table")]
        format: String,
        /// Only names.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show networks as JSON.
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove networks that no container uses.
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PortArgs {
    #[command(subcommand)]
    pub action: Option<PortAction>,
    /// List this container's published ports.
    pub name: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum PortAction {
    /// Publish ports of a running container, at once.
    Add {
        name: String,
        // Hyphen values: a spec such as "-1:80" is bad input for pont to name,
        // not an unknown option for clap.
        #[arg(required = true, value_name = "SPEC", allow_hyphen_values = true)]
        specs: Vec<String>,
    },
    /// Unpublish ports of a running container, at once.
    Rm {
        name: String,
        #[arg(required = true, value_name = "SPEC", allow_hyphen_values = true)]
        specs: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum FirewallCommand {
    /// Print pont's rules in the backend's own syntax, labelled by network.
    Show,
    /// Rebuild exactly the rules of the live networks and containers.
    Reload,
}

#[derive(Subcommand, Debug)]
pub enum SystemCommand {
    /// List every difference between pont's records and the kernel (orphans on
    /// either side); exit 1 if there is any.
    Check,
    /// Repair what `check` lists. Touches only what pont owns.
    Prune,
}

#[derive(Args, Debug)]
pub struct NetworkCreateArgs {
    pub name: String,
    /// IPv4 subnet in CIDR form; picked from the address pools if omitted.
    #[arg(long)]
    pub subnet: Option<String>,
    /// Gateway address on the bridge (default: the subnet's first host).
    #[arg(long)]
    pub gateway: Option<Ipv4Addr>,
    /// Hand out container addresses only from this sub-range.
    #[arg(long = "ip-range")]
    pub ip_range: Option<String>,
    /// MTU of the bridge and the containers' interfaces (the same as `--opt mtu=N`).
    #[arg(long)]
    pub mtu: Option<u32>,
    /// No way out of the network: no masquerade, no forwarding.
    #[arg(long)]
    pub internal: bool,
    /// Driver options: `icc=false` forbids traffic between the network's containers;
    /// `mtu=N` is `--mtu N`.
    #[arg(short = 'o', long = "opt", value_name = "KEY=VALUE")]
    pub opts: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Container name (default: a generated one).
    #[arg(long)]
    pub name: Option<String>,
    /// A network name, `none` (loopback only) or `host` (the host's namespace).
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// Static IPv4 address on the network.
    #[arg(long)]
    pub ip: Option<String>,
    /// MAC address of the container's interface.
    #[arg(long)]
    pub mac: Option<String>,
    /// Host name inside the container (default: its name).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Set an environment variable; KEY alone passes pont's own value, if it has one
    /// (repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<PathBuf>,
    /// Publish a port: [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp|sctp] (repeatable).
    #[arg(short = 'p', long = "publish", value_name = "SPEC")]
    pub publish: Vec<String>,
    /// Run in the background and print the container id.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Remove the container's record when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Directory to use as the container's root file system.
    #[arg(long)]
    pub rootfs: Option<PathBuf>,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// The command and its arguments (after `--`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Set an environment variable; KEY alone passes pont's own value, if it has one
    /// (repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<PathBuf>,
    pub name: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Also exited containers.
    #[arg(short, long)]
    pub all: bool,
    /// Only ids.
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long, value_parser = ["table", "json"], default_value = "table")]
    pub format: String,
}

/// Resource limits, for `run` and `update`. Kept as text: the library's parsers give
/// the one-line messages that name the option.
#[derive(Args, Debug, Default)]
pub struct LimitArgs {
    /// Memory limit: a number with unit b, k, m, g, t or p (e.g. 512m; at least 6m).
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// Memory plus swap (at least --memory), or -1 for unlimited swap. Default: twice --memory.
    #[arg(long = "memory-swap", value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// CPUs the container may use, as a CFS quota (e.g. 0.5, 1.5), at most the machine's.
    #[arg(long, value_name = "FLOAT", allow_hyphen_values = true)]
    pub cpus: Option<String>,
    /// Relative CPU weight, 2 to 262144 (default 1024).
    #[arg(long = "cpu-shares", value_name = "N", allow_hyphen_values = true)]
    pub cpu_shares: Option<String>,
    /// Most processes and threads at once, at least 1.
    #[arg(long = "pids-limit", value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<String>,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub limits: LimitArgs,
    pub name: String,
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Print one sample and exit.
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// `json`: one JSON object per container and sample, one per line.
    #[arg(long, value_parser = ["table", "json"], default_value = "table")]
    pub format: String,
    /// Containers to show (default: every running one).
    pub names: Vec<String>,
}
