//! Recorded processes: a PID plus its start time names one process, not whichever later
//! process reuses the number.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::Pid;

use super::sys;
use super::ContainerError;

/// Start time of process `pid` in clock ticks since boot (field 22 of `/proc/PID/stat`);
/// `None` if there is no such process.
pub fn start_time(pid: i32) -> Option<u64> {
    read_stat(pid).map(|stat| stat.start_time)
}

/// Whether `pid` is still the process that started at `start_time` and has not exited
/// (a zombie counts as exited).
pub fn is_alive(pid: i32, start_time: u64) -> bool {
    read_stat(pid).is_some_and(|stat| stat.start_time == start_time && stat.is_running())
}

/// Wait up to `timeout` for `pid` (if still the process that started at
/// `start_time`) to exit; whether it has. Woken by the exit itself through a
/// pidfd, not by polling: `stop` and `rm -f` wait for two exits each.
pub fn wait_exit(pid: i32, start_time: u64, timeout: Duration) -> bool {
    if pid <= 0 {
        return true;
    }
    let Ok(pidfd) = sys::pidfd_open(Pid::from_raw(pid)) else {
        return true; // ESRCH: gone (any other error: nothing to wait on)
    };
    // The pidfd pins the process that had `pid` when it was opened.
    if !is_alive(pid, start_time) {
        return true;
    }
    let deadline = Instant::now() + timeout;
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) if Instant::now() < deadline => continue, // a wait capped at u16::MAX ms
            Ok(0) => return !is_alive(pid, start_time),
            Ok(_) => return true,
            Err(Errno::EINTR) => continue,
            Err(_) => return !is_alive(pid, start_time),
        }
    }
}

/// Send `signal` (0 only probes) to `pid` if it is still the process that started at
/// `start_time`; whether it was. The check and the signal go through one pidfd, so a PID
/// reused between them is never signalled.
pub fn kill(pid: i32, start_time: u64, signal: i32) -> Result<bool, ContainerError> {
    let kill_err = |source| ContainerError::Kill {
        pid,
        signal,
        source,
    };
    if pid <= 0 {
        // kill(2) gives 0 and negative PIDs group meanings; never reach them.
        return Ok(false);
    }
    let pidfd = match sys::pidfd_open(Pid::from_raw(pid)) {
        Ok(fd) => fd,
        Err(Errno::ESRCH) => return Ok(false),
        Err(errno) => return Err(kill_err(errno)),
    };
    // The pidfd pins the process that had `pid` when it was opened; if the start time
    // still matches now, that process is the recorded one.
    if !is_alive(pid, start_time) {
        return Ok(false);
    }
    match sys::pidfd_send_signal(pidfd.as_fd(), signal) {
        Ok(()) => Ok(true),
        Err(Errno::ESRCH) => Ok(false),
        Err(errno) => Err(kill_err(errno)),
    }
}

/// `/proc/PID/ns/NAME`, opened read-only and close-on-exec.
pub(super) fn open_namespace(pid: i32, name: &str) -> Result<OwnedFd, ContainerError> {
    let path = PathBuf::from(format!("/proc/{pid}/ns/{name}"));
    File::open(&path)
        .map(OwnedFd::from)
        .map_err(|source| ContainerError::OpenNamespace { path, source })
}

#[derive(Debug, PartialEq, Eq)]
struct Stat {
    state: char,
    start_time: u64,
}

impl Stat {
    fn is_running(&self) -> bool {
        // Z: zombie, X: dead (proc(5)).
        !matches!(self.state, 'Z' | 'X')
    }
}

fn read_stat(pid: i32) -> Option<Stat> {
    if pid <= 0 {
        return None;
    }
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Fields 3 (state) and 22 (starttime) of a `/proc/PID/stat` line. Field 2 is the command
/// name in parentheses and may itself hold spaces and parentheses, so fields are counted
/// from the last `)`.
fn parse_stat(line: &str) -> Option<Stat> {
    let after_name = &line[line.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Fields 4 to 21 come between state and starttime.
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(Stat { state, start_time })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_state_and_start_time_past_a_tricky_name() {
        let line = "4242 (a) b (c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 \
                    987654 12345678 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0";
        let stat = parse_stat(line).unwrap();
        assert_eq!(
            stat,
            Stat {
                state: 'S',
                start_time: 987654
            }
        );
        assert!(parse_stat("1 (x) S 1 2").is_none());
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn own_process_is_alive_and_a_wrong_start_time_is_not() {
        let me = std::process::id() as i32;
        let started = start_time(me).expect("own /proc/PID/stat");
        assert!(is_alive(me, started));
        assert!(!is_alive(me, started + 1));
        assert!(!is_alive(0, started));
        assert!(start_time(-1).is_none());
        assert!(!kill(me, started + 1, 0).unwrap());
        assert!(kill(me, started, 0).unwrap());
        assert!(!kill(-1, started, 9).unwrap());
    }
}
