//! Small wrappers over the system calls nix does not wrap, or wraps with an allocation
//! (its `execve` builds a `Vec`). Each checks its result at once. All of them are safe to
//! call in a freshly cloned child: they neither allocate nor take locks.

use std::ffi::CStr;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::Pid;

use super::plan::CStrArray;

/// Which side of [`clone_process`] the code runs on.
pub(super) enum Forked {
    Parent(Pid),
    Child,
}

/// Clone the calling process like fork(2), adding `flags` (`CLONE_NEW*`, `CLONE_PARENT`).
/// The child's exit is reported to its parent by `SIGCHLD`, as for a forked child.
///
/// # Safety
///
/// The caller may be multi-threaded: in the child only the calling thread exists, and any
/// lock another thread held (malloc's among them) stays locked forever. glibc's atfork
/// handlers do not run and its cached thread id is stale. So in the child the caller must
/// run only code that does not allocate, take locks or use `pthread` calls, and must end it
/// with `execve` or [`exit_now`]; it must never return into the caller's stack frames (put
/// an [`ExitOnUnwind`] at the top of the child's code).
pub(super) unsafe fn clone_process(flags: libc::c_int) -> Result<Forked, Errno> {
    let flags = libc::c_ulong::try_from(flags | libc::SIGCHLD).map_err(|_| Errno::EINVAL)?;
    // SAFETY: a null stack pointer makes the child run on a copy of the caller's stack, as
    // fork does; without CLONE_VM, CLONE_SETTLS or tid pointers nothing is shared with the
    // parent. The caller upholds the contract above for what the child runs.
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => {
            let pid = i32::try_from(pid).map_err(|_| Errno::EOVERFLOW)?;
            Ok(Forked::Parent(Pid::from_raw(pid)))
        }
    }
}

/// End the process now, without running destructors, atexit handlers or stdio flushes
/// (the buffers are copies of the parent's).
pub(super) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit(2) ends the process at once; no Rust state is observed afterwards.
    unsafe { libc::_exit(code) }
}

/// Put at the top of code run in a cloned child: if that code panics, unwinding would
/// otherwise continue into the caller's frames, in a process that is not the caller.
pub(super) struct ExitOnUnwind(pub i32);

impl Drop for ExitOnUnwind {
    fn drop(&mut self) {
        exit_now(self.0)
    }
}

/// execve(2); returns only on failure.
pub(super) fn execve(path: &CStr, argv: &CStrArray, envp: &CStrArray) -> Errno {
    // SAFETY: `path` is NUL-terminated and both arrays are NULL-terminated arrays of pointers
    // to NUL-terminated strings owned by the `CStrArray`s, which outlive the call.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    Errno::last()
}

/// A connected pair of `AF_UNIX` `SOCK_SEQPACKET` sockets, both close-on-exec. Sequenced
/// packets keep each message whole; `MSG_NOSIGNAL` keeps a dead peer from raising SIGPIPE.
pub(super) fn seqpacket_pair() -> Result<(OwnedFd, OwnedFd), Errno> {
    let mut fds: [RawFd; 2] = [-1; 2];
    let kind = libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC;
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    let ret = unsafe { libc::socketpair(libc::AF_UNIX, kind, 0, fds.as_mut_ptr()) };
    Errno::result(ret)?;
    // SAFETY: socketpair succeeded, so both are open descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Send one packet.
pub(super) fn send_packet(fd: BorrowedFd<'_>, packet: &[u8]) -> Result<(), Errno> {
    loop {
        // SAFETY: the pointer and length describe `packet`, which lives across the call.
        let ret = unsafe {
            libc::send(
                fd.as_raw_fd(),
                packet.as_ptr().cast(),
                packet.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        match Errno::result(ret) {
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno),
            Ok(_) => return Ok(()),
        }
    }
}

/// Receive one packet into `buf`; `Ok(0)` means the peer closed every copy of its end.
pub(super) fn recv_packet(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        // SAFETY: the pointer and length describe `buf`, which lives across the call.
        let ret = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        match Errno::result(ret) {
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno),
            Ok(len) => return usize::try_from(len).map_err(|_| Errno::EOVERFLOW),
        }
    }
}

/// Close a descriptor by number, in a child that holds a copy of an `OwnedFd` it must not
/// drop (dropping would run in frames that belong to the parent's code).
pub(super) fn close_raw(fd: RawFd) {
    // SAFETY: closing a descriptor number has no memory-safety effect; the child owns its
    // copy of the descriptor table and never uses `fd` afterwards.
    unsafe { libc::close(fd) };
}

/// close_range(2). `CLOSE_RANGE_CLOEXEC` (Linux 5.11) only marks them close-on-exec.
fn close_range(first: u32, last: u32, flags: u32) -> Result<(), Errno> {
    // SAFETY: close_range takes plain integers and touches only the descriptor table.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) };
    Errno::result(ret).map(drop)
}

/// Close every descriptor from `from` up except those in `keep` (ascending, each ≥ `from`).
/// A cloned child gets a copy of every descriptor of the caller, including those other
/// threads opened for other containers: holding a copy of their control sockets would delay
/// their end-of-file. Allocates nothing: safe in a child forked from a threaded process.
pub(crate) fn close_fds_except(from: u32, keep: &[RawFd]) -> Result<(), Errno> {
    let mut first = from;
    for &fd in keep {
        let fd = u32::try_from(fd).map_err(|_| Errno::EBADF)?;
        if fd > first {
            close_range(first, fd - 1, 0)?;
        }
        first = fd.saturating_add(1);
    }
    close_range(first, u32::MAX, 0)
}

/// Mark every descriptor from 3 up close-on-exec, so that the command gets only stdio.
pub(super) fn cloexec_from_3() -> Result<(), Errno> {
    close_range(3, u32::MAX, libc::CLOSE_RANGE_CLOEXEC)
}

/// pidfd_open(2) (Linux 5.3): a descriptor that names this process and no later one that
/// reuses its PID.
pub(super) fn pidfd_open(pid: Pid) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a PID and flags and returns a new descriptor or -1.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    let fd = RawFd::try_from(Errno::result(ret)?).map_err(|_| Errno::EBADF)?;
    // SAFETY: the call succeeded, so `fd` is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// pidfd_send_signal(2) (Linux 5.1); signal 0 only checks that the process exists.
pub(super) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> Result<(), Errno> {
    let info: *const libc::siginfo_t = std::ptr::null();
    // SAFETY: a null siginfo asks the kernel to fill it in as kill(2) would.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            info,
            0,
        )
    };
    Errno::result(ret).map(drop)
}

// From include/uapi/linux/mount.h (Linux 5.2); the libc crate does not export them yet.
const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x04;
const MOVE_MOUNT_T_SYMLINKS: libc::c_uint = 0x10;

/// open_tree(2) with `OPEN_TREE_CLONE`: a detached bind mount of `path`, held by the
/// returned descriptor. Unlike mount(MS_BIND), attaching it later needs no path to the
/// source: it still works after `pivot_root` has made the source unreachable.
pub(super) fn open_tree_clone(path: &CStr) -> Result<OwnedFd, Errno> {
    let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    // SAFETY: `path` is NUL-terminated and outlives the call.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    let fd = RawFd::try_from(Errno::result(ret)?).map_err(|_| Errno::EBADF)?;
    // SAFETY: the call succeeded, so `fd` is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// move_mount(2): attach the detached mount `tree` at `target`, following symlinks in the
/// target as mount(2) does.
pub(super) fn move_mount_onto(tree: BorrowedFd<'_>, target: &CStr) -> Result<(), Errno> {
    let flags = MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_SYMLINKS;
    // SAFETY: both paths are NUL-terminated and outlive the call; `tree` is open.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            flags,
        )
    };
    Errno::result(ret).map(drop)
}

/// A one-line message formatted on the stack and written to stderr with one write(2): the
/// child of a clone must not allocate or take the lock of `std::io::stderr`.
pub(super) struct StackLine {
    buf: [u8; 512],
    len: usize,
}

impl StackLine {
    pub fn new() -> StackLine {
        StackLine {
            buf: [0; 512],
            len: 0,
        }
    }

    /// Write the line (cut to the buffer, always ending in a newline) to fd 2.
    pub fn write_to_stderr(mut self) {
        let end = self.len.min(self.buf.len() - 1);
        self.buf[end] = b'\n';
        let stderr = io::stderr();
        let _ = nix::unistd::write(stderr.as_fd(), &self.buf[..=end]);
    }
}

impl fmt::Write for StackLine {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - 1 - self.len.min(self.buf.len() - 1);
        let take = s.len().min(room);
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}
