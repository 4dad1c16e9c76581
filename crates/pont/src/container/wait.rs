//! Waiting for a child while forwarding the signals a user sends to pont.
//!
//! The forwarded signals are blocked in the calling thread and read from a signalfd; the
//! child's exit is seen on a pidfd. One poll(2) on both: no handlers, no race between a
//! signal and the wait, no polling interval.

use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use super::sys;
use super::{ContainerError, Exit};

/// Signals passed on to the container, as Docker's and tini's init do.
pub(super) const FORWARDED: [Signal; 7] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

pub(super) fn forwarded_set() -> SigSet {
    let mut set = SigSet::empty();
    for signal in FORWARDED {
        set.add(signal);
    }
    set
}

/// Blocks a set of signals in this thread until dropped, then restores the previous mask,
/// on every return path.
struct BlockedSignals {
    previous: SigSet,
}

impl BlockedSignals {
    fn block(set: &SigSet) -> Result<BlockedSignals, Errno> {
        let previous = set.thread_swap_mask(SigmaskHow::SIG_BLOCK)?;
        Ok(BlockedSignals { previous })
    }
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        let _ = self.previous.thread_set_mask();
    }
}

/// Wait for the child `pid` to end, sending it every forwarded signal this thread
/// receives meanwhile, and reap it.
pub(super) fn wait_forwarding(pid: Pid) -> Result<Exit, ContainerError> {
    let raw = pid.as_raw();
    let wait_err = |source| ContainerError::Wait { pid: raw, source };
    let forward_err = |source| ContainerError::ForwardSignals { pid: raw, source };
    let pidfd = sys::pidfd_open(pid).map_err(wait_err)?;
    let set = forwarded_set();
    let _blocked = BlockedSignals::block(&set).map_err(forward_err)?;
    let signals = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(forward_err)?;
    loop {
        let mut fds = [
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(errno) => return Err(wait_err(errno)),
        }
        let exited = fds[0].any().unwrap_or(false);
        if fds[1].any().unwrap_or(false) {
            forward_pending(&signals, pid).map_err(forward_err)?;
        }
        if exited {
            return reap(pid);
        }
    }
}

fn forward_pending(signals: &SignalFd, pid: Pid) -> Result<(), Errno> {
    while let Some(info) = signals.read_signal()? {
        let Ok(signal) = Signal::try_from(info.ssi_signo as i32) else {
            continue;
        };
        match kill(pid, signal) {
            // Gone already: its exit shows on the pidfd next.
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(errno) => return Err(errno),
        }
    }
    Ok(())
}

/// Reap `pid` and say how it ended.
pub(super) fn reap(pid: Pid) -> Result<Exit, ContainerError> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(Exit::Code(code)),
            Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(Exit::Signal(signal as i32)),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(source) => {
                return Err(ContainerError::Wait {
                    pid: pid.as_raw(),
                    source,
                })
            }
        }
    }
}
