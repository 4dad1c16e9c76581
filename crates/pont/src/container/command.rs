//! The last steps of a command process, in a cloned child: clean signal state, then exec.
//! Everything here runs after a clone, so it only makes system calls (see the module
//! documentation of `container`).

use std::fmt::Write as _;

use nix::errno::Errno;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

use super::plan::CommandPlan;
use super::sys::{self, ExitOnUnwind};

/// Exit status when the command cannot be found, as in POSIX shells and Docker.
pub(super) const NOT_FOUND: i32 = 127;
/// Exit status when the command was found but cannot be run.
pub(super) const CANNOT_RUN: i32 = 126;

/// Exec the command; on failure print `pont: cannot run 'CMD': <reason>` on stderr and
/// exit 127 (not found) or 126 (found but not runnable).
pub(super) fn exec_command(plan: &CommandPlan) -> ! {
    let _unwind = ExitOnUnwind(CANNOT_RUN);
    reset_signals();
    // Only stdio should reach the command; a failure here leaves descriptors that are
    // already close-on-exec (pont opens all of its own that way), so it is not fatal.
    let _ = sys::cloexec_from_3();
    let errno = exec_first_found(plan);
    let mut line = sys::StackLine::new();
    let _ = write!(line, "pont: cannot run '{}': {}", plan.name, errno.desc());
    line.write_to_stderr();
    sys::exit_now(exit_code_for(errno))
}

/// Try the candidates the way execvp does: go on past "not here" errors, remember that
/// some candidate was not permitted, stop at any other error.
fn exec_first_found(plan: &CommandPlan) -> Errno {
    let mut denied = false;
    for candidate in &plan.candidates {
        match sys::execve(candidate, &plan.argv, &plan.envp) {
            Errno::EACCES => denied = true,
            Errno::ENOENT | Errno::ENOTDIR | Errno::ENAMETOOLONG | Errno::ELOOP => {}
            Errno::ESTALE | Errno::ENODEV | Errno::ETIMEDOUT => {}
            other => return other,
        }
    }
    if denied {
        Errno::EACCES
    } else {
        Errno::ENOENT
    }
}

pub(super) fn exit_code_for(errno: Errno) -> i32 {
    match errno {
        Errno::ENOENT => NOT_FOUND,
        _ => CANNOT_RUN,
    }
}

/// Default dispositions and an empty mask, as a freshly started program expects. exec
/// keeps ignored signals ignored and keeps the mask: pont's own process ignores SIGPIPE
/// (the Rust runtime does) and init blocks the signals it forwards.
pub(super) fn reset_signals() {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for signal in Signal::iterator() {
        if matches!(signal, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: installing SIG_DFL runs no code of ours in signal context.
        let _ = unsafe { sigaction(signal, &default) };
    }
    let _ = SigSet::empty().thread_set_mask();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell() {
        assert_eq!(exit_code_for(Errno::ENOENT), 127);
        assert_eq!(exit_code_for(Errno::EACCES), 126);
        assert_eq!(exit_code_for(Errno::ENOEXEC), 126);
        assert_eq!(exit_code_for(Errno::ETXTBSY), 126);
    }
}
