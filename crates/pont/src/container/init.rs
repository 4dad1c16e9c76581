//! The container's init: PID 1 of the new PID namespace, running pont's own code after the
//! clone. It waits for "go", builds the container (stdio, mounts, hostname, working
//! directory), forks the command as PID 2, then acts as a minimal init: it forwards
//! signals to the command, reaps every zombie, and exits with the command's status.
//!
//! Everything after the clone only makes system calls; see the module documentation of
//! `container` for why.

use std::ffi::CStr;
use std::fmt::Write as _;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::sys::signal::{kill, sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{chdir, dup2_stderr, dup2_stdin, dup2_stdout, sethostname, setsid, Pid};

use super::channel::{self, Record};
use super::command;
use super::error::{Failure, SetupStep};
use super::mounts::{self, FsPlan};
use super::plan::CommandPlan;
use super::sys::{self, ExitOnUnwind, Forked};
use super::wait;

/// Exit status of a container process whose setup failed, as Docker's.
pub(super) const SETUP_FAILED: i32 = 125;

/// The descriptors behind [`Stdio::Log`](super::Stdio::Log).
pub(super) struct LogFds {
    pub stdin: OwnedFd,
    pub output: OwnedFd,
}

/// Everything init needs, built by the caller before the clone.
pub(super) struct InitPlan {
    /// Init's end of the control socket.
    pub channel: OwnedFd,
    pub log: Option<LogFds>,
    pub fs: FsPlan,
    pub hostname: String,
    pub workdir: std::ffi::CString,
    pub command: CommandPlan,
}

impl InitPlan {
    /// The descriptors init keeps, ascending; it closes every other one above 2.
    pub fn keep_fds(&self) -> Vec<RawFd> {
        let mut fds = vec![self.channel.as_raw_fd()];
        if let Some(log) = &self.log {
            fds.extend([log.stdin.as_raw_fd(), log.output.as_raw_fd()]);
        }
        fds.sort_unstable();
        fds
    }
}

/// Init's whole life. `keep_fds` is [`InitPlan::keep_fds`], computed before the clone.
pub(super) fn run(plan: &InitPlan, keep_fds: &[RawFd]) -> ! {
    let _unwind = ExitOnUnwind(SETUP_FAILED);
    // Blocked before anything else: PID 1 drops signals it has no handler for, and a
    // blocked signal is queued instead (kernel/signal.c, sig_ignored).
    let signals = supervised_signals();
    let _ = signals.thread_block();
    reset_sigchld();
    let trimmed = sys::close_fds_except(3, keep_fds);
    let channel = plan.channel.as_fd();
    if channel::recv(channel) != Ok(Some(Record::Go)) {
        // The caller dropped `Created` or died: nothing to report to.
        sys::exit_now(SETUP_FAILED);
    }
    let started = trimmed
        .map_err(|errno| Failure::new(SetupStep::CloseInheritedFds, errno))
        .and_then(|()| setup(plan))
        .and_then(|()| spawn_command(&plan.command));
    match started {
        Ok(command) => {
            let _ = channel::send(channel, Record::Ready);
            // The caller sees end-of-file once the command has exec'd too.
            sys::close_raw(plan.channel.as_raw_fd());
            supervise(command, &signals)
        }
        Err(failure) => {
            report(plan, channel, failure);
            sys::exit_now(SETUP_FAILED)
        }
    }
}

fn supervised_signals() -> SigSet {
    let mut set = wait::forwarded_set();
    set.add(Signal::SIGCHLD);
    set
}

/// With SIGCHLD ignored (a disposition the caller may have set, and a clone inherits)
/// the kernel reaps children itself and init would never learn the command's status.
fn reset_sigchld() {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: installing SIG_DFL runs no code of ours in signal context.
    let _ = unsafe { sigaction(Signal::SIGCHLD, &default) };
}

fn setup(plan: &InitPlan) -> Result<(), Failure> {
    // A session of its own: a terminal's ^C then reaches pont only, which forwards it once,
    // instead of reaching pont, init and the command each.
    setsid().map_err(|errno| Failure::new(SetupStep::NewSession, errno))?;
    if let Some(log) = &plan.log {
        redirect_stdio(log).map_err(|errno| Failure::new(SetupStep::RedirectStdio, errno))?;
    }
    mounts::apply(&plan.fs)?;
    sethostname(&plan.hostname).map_err(|errno| Failure::new(SetupStep::SetHostname, errno))?;
    chdir(plan.workdir.as_c_str()).map_err(|errno| Failure::new(SetupStep::ChangeDir, errno))
}

fn redirect_stdio(log: &LogFds) -> nix::Result<()> {
    dup2_stdin(&log.stdin)?;
    dup2_stdout(&log.output)?;
    dup2_stderr(&log.output)
}

fn spawn_command(command: &CommandPlan) -> Result<Pid, Failure> {
    // SAFETY: the child runs only `exec_command`, which makes system calls without
    // allocating and ends in execve or _exit.
    match unsafe { sys::clone_process(0) } {
        Ok(Forked::Child) => command::exec_command(command),
        Ok(Forked::Parent(pid)) => Ok(pid),
        Err(errno) => Err(Failure::new(SetupStep::ForkCommand, errno)),
    }
}

/// Tell the caller, whose `start()` returns the error. Print on stderr only where that is
/// no duplicate: when stderr is the container's log (so the log says why the container
/// never ran; written first, as the caller kills init once it has the error), or when the
/// caller cannot be told.
fn report(plan: &InitPlan, channel: BorrowedFd<'_>, failure: Failure) {
    let early = matches!(
        failure.step,
        SetupStep::CloseInheritedFds | SetupStep::NewSession | SetupStep::RedirectStdio
    );
    let stderr_is_log = plan.log.is_some() && !early;
    if stderr_is_log {
        print_failure(plan, failure);
    }
    let told = channel::send(channel, Record::Failed(failure)).is_ok();
    if !told && !stderr_is_log {
        print_failure(plan, failure);
    }
}

fn print_failure(plan: &InitPlan, failure: Failure) {
    let mut line = sys::StackLine::new();
    let _ = write!(line, "pont: container setup failed: {}", failure.step);
    if let Some(path) = failure_path(plan, failure).and_then(|path| path.to_str().ok()) {
        let _ = write!(line, " {path}");
    }
    let _ = write!(line, ": {}", failure.errno.desc());
    line.write_to_stderr();
}

fn failure_path(plan: &InitPlan, failure: Failure) -> Option<&CStr> {
    match failure.step {
        SetupStep::ChangeDir => Some(plan.workdir.as_c_str()),
        SetupStep::CloneBindSource => plan.fs.bind_paths(failure.index).map(|(source, _)| source),
        SetupStep::BindFile | SetupStep::BindTargetMissing | SetupStep::CreateBindTarget => {
            plan.fs.bind_paths(failure.index).map(|(_, target)| target)
        }
        _ => None,
    }
}

/// Forward signals to the command and reap children until the command is gone, then exit
/// with its status (128 + n for signal n: PID 1 cannot kill itself with it).
fn supervise(command: Pid, signals: &SigSet) -> ! {
    loop {
        match signals.wait() {
            Ok(Signal::SIGCHLD) => {
                if let Some(code) = reap_children(command) {
                    sys::exit_now(code);
                }
            }
            Ok(signal) => {
                let _ = kill(command, signal);
            }
            Err(_) => {}
        }
    }
}

/// Reap every child that has exited (orphans of the command end up as init's children);
/// the command's exit status if it was among them.
fn reap_children(command: Pid) -> Option<i32> {
    let mut status = None;
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == command => status = Some(code),
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == command => {
                status = Some(128 + signal as i32);
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return status,
            Ok(_) => {}
        }
    }
}
