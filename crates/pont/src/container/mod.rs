//! Container processes: a process tree in its own PID, UTS, IPC, mount and (usually)
//! network namespaces.
//!
//! ```text
//!  caller (pont)            container init (PID 1)            command (PID 2)
//!  create() ──clone(NEW*)──▶ closes inherited fds, waits for "go"
//!   │ caller moves a veth into netns(), puts pid() into a cgroup …
//!  start() ────── go ──────▶ mounts, hostname, chdir
//!                           fork ───────────────────────────▶ reset signals, exec argv
//!           ◀──── ready ─── (socket EOF once the command has exec'd)
//!  Running::wait() forwards signals ▶ init forwards to the command, reaps zombies,
//!                                     exits with the command's status
//! ```
//!
//! This module does no networking and no cgroups: [`Created`] exists before the command
//! runs, so the caller can configure the network namespace ([`Created::netns`]) and put
//! [`Created::pid`] into a cgroup before [`Created::start`]; the command is forked by init
//! after `start`, so it inherits both. [`exec_joining`] takes the cgroup of an exec'd
//! command as open `cgroup.procs` files, without knowing what they are.
//!
//! # Fork safety
//!
//! [`create`] and [`exec`] clone the calling process. The child runs pont's own code, not a
//! separate init binary, and it must work even when the caller has other threads (cargo's
//! test harness has): after a clone only the calling thread exists, and a lock another
//! thread held (malloc's, stdout's) stays locked forever. So everything the child needs is
//! prepared before the clone ([`plan`] builds every C string and pointer array), and the
//! child itself only makes system calls: no allocation, no locks, no `std::process`, no
//! glibc `fork` (whose atfork handlers take malloc's locks). It ends in `execve` or
//! `_exit` and never returns into the caller's frames, even on a panic.
//!
//! The signal forwarding in [`Running::wait`] and [`exec`] blocks the forwarded signals in
//! the calling thread only. A signal sent to the process is delivered to some thread that
//! does not block it, so forwarding is reliable only when the caller is single-threaded,
//! as the `pont` CLI is. A multi-threaded caller must block those signals in every thread.

mod channel;
mod command;
mod error;
mod exec;
mod init;
mod mounts;
mod plan;
mod proc;
mod spawn;
pub(crate) mod sys;
mod wait;

use std::path::PathBuf;

pub use error::{ContainerError, SetupStep};
pub use exec::{exec, exec_joining};
pub use proc::{is_alive, kill, start_time, wait_exit};
pub use spawn::{create, Created, Running};

/// What to run and how to isolate it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The command. Must not be empty; `argv[0]` is looked up in the container's `PATH`
    /// (inside the container) unless it contains a `/`.
    pub argv: Vec<String>,
    /// Variables set on top of the base environment (`PATH`, `HOSTNAME`, `HOME=/root`, and
    /// `TERM` when pont has it); a variable named here replaces the base one.
    pub env: Vec<(String, String)>,
    /// Working directory inside the container; `/` when `None`.
    pub workdir: Option<PathBuf>,
    /// Host name set in the container's UTS namespace (1 to 64 bytes).
    pub hostname: String,
    /// `None`: the container sees the host's file system (with its own `/proc` and `/sys`).
    /// `Some`: the container's root is this directory (`pivot_root`).
    pub rootfs: Option<PathBuf>,
    /// `false` keeps pont's own network namespace (`--network host`).
    pub new_netns: bool,
    /// `(source on the host, target inside the container)`: files bind-mounted in the
    /// container's mount namespace only, e.g. a generated `/etc/hosts`. A target that is a
    /// symlink is resolved inside the container; a missing target is created only inside a
    /// `rootfs`, never on the host's file system.
    pub bind_files: Vec<(PathBuf, PathBuf)>,
    /// Where the command's standard streams go.
    pub stdio: Stdio,
}

impl Spec {
    /// A spec with defaults: new network namespace, workdir `/`, host file system, no
    /// extra environment or bind mounts, stdio inherited.
    pub fn new(argv: Vec<String>, hostname: impl Into<String>) -> Spec {
        Spec {
            argv,
            env: Vec::new(),
            workdir: None,
            hostname: hostname.into(),
            rootfs: None,
            new_netns: true,
            bind_files: Vec::new(),
            stdio: Stdio::Inherit,
        }
    }
}

/// Standard streams of the container's command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stdio {
    /// The caller's stdin, stdout and stderr.
    Inherit,
    /// stdin from `/dev/null`; stdout and stderr appended to this file (created if missing).
    Log(PathBuf),
}

/// How the container's init ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Exit status. Init reports a command killed by signal `n` as `128 + n`.
    Code(i32),
    /// Init itself was killed (e.g. `SIGKILL` from outside the container).
    Signal(i32),
}

impl Exit {
    /// The status a shell would report: `Signal(n)` is `128 + n`, as Docker does.
    pub fn code(&self) -> i32 {
        match *self {
            Exit::Code(code) => code,
            Exit::Signal(signal) => 128 + signal,
        }
    }
}
