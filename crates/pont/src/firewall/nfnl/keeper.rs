//! The keeper: a short-lived process per network namespace that holds the
//! netfilter sockets of pont processes that have exited, and closes them once
//! the namespace has been quiet for a moment.
//!
//! Why: releasing any NETLINK_NETFILTER socket takes the namespace's
//! nf_tables commit mutex and, holding it, waits for the destroy worker,
//! which frees deleted elements and rules after an RCU grace period
//! (nft_rcv_nl_event → nf_tables_trans_destroy_flush_work,
//! net/netfilter/nf_tables_api.c). Every other commit in the namespace waits
//! behind that mutex. When containers go one after another (a benchmark,
//! `pont rm` of many, a compose file taken down), each command's socket was
//! closed while the previous one's deletions were still within their grace
//! period, and the next command's commit waited 5-15 ms for it: most of a
//! teardown. Sockets held here are closed only after the keeper saw no new
//! one for [`IDLE_MS`] and waited out one grace period itself, so the flush
//! finds nothing to wait for and nobody is committing. A namespace that is
//! never quiet that long gets a new keeper every [`MAX_LIFE_MS`].
//!
//! The keeper is found by an abstract unix socket name, which the kernel
//! scopes to the network namespace, like the commit mutex. Sockets are handed
//! over with SCM_RIGHTS, and only to a keeper that runs as the same user (an
//! abstract name can be bound by anyone; a netfilter socket keeps the rights
//! of whoever opened it). Nothing here affects what the firewall does: only
//! when the kernel frees memory.
//!
//! The keeper is forked without exec from a process that may have had other
//! threads, so after the fork it only makes system calls (no allocation, no
//! locks), and it keeps no descriptor of its parent's but the socket.

use std::io;
use std::mem::{size_of, size_of_val, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;

use crate::container::sys::close_fds_except;

/// The keeper's name in the abstract namespace (leading NUL implied).
const NAME: &[u8] = b"pont-nfnl-keeper";

/// How long the namespace must be quiet (no socket handed over) before the
/// keeper closes what it holds and exits. Longer than a grace period, short
/// enough that the keeper is gone soon after the last command.
const IDLE_MS: i64 = 150;

/// Sockets one keeper holds at most; more are closed at once.
const CAPACITY: usize = 4096;

/// How long a keeper collects at most. Commands more often than every
/// [`IDLE_MS`] (a loop of `pont ps`, a busy host) would otherwise keep one
/// keeper, and every socket handed to it, for as long as they go on; after
/// this it closes what it holds and the next command starts another.
const MAX_LIFE_MS: i64 = 5000;

/// Hand the last reference to `socket` to this namespace's keeper, starting
/// one if there is none and `start` is set. Returns false if nobody took it:
/// then the caller's close is the last.
pub(super) fn hand_over(socket: RawFd, start: bool) -> bool {
    if send_to_keeper(socket).is_ok() {
        return true;
    }
    start && start_keeper(socket)
}

/// Give `socket` to a running keeper; an error if there is none (the usual
/// case: ECONNREFUSED) or it is not ours.
fn send_to_keeper(socket: RawFd) -> io::Result<()> {
    // Non-blocking: a keeper with a full backlog is no reason to wait.
    let conn = unix_socket(libc::SOCK_NONBLOCK)?;
    let (addr, len) = keeper_address();
    // SAFETY: `addr` is a valid sockaddr_un of `len` bytes.
    let rc = unsafe { libc::connect(conn.as_raw_fd(), ptr::from_ref(&addr).cast(), len) };
    check(rc)?;
    if peer_uid(conn.as_raw_fd())? != current_euid() {
        return Err(io::Error::from(io::ErrorKind::PermissionDenied));
    }
    send_fd(conn.as_raw_fd(), socket)
}

/// Fork the keeper, which inherits `socket`. False if the fork failed.
fn start_keeper(socket: RawFd) -> bool {
    // SAFETY: the child makes only system calls before `_exit` (see the
    // module docs), so it is sound even if another thread held a lock.
    match unsafe { libc::fork() } {
        0 => {
            // stdio too: a caller reading pont's output must see its end.
            let _ = close_fds_except(0, &[socket]);
            // The caller's working directory may be the state root or a
            // mount that someone unmounts right after the command.
            // SAFETY: a NUL-terminated static path.
            unsafe { libc::chdir(c"/".as_ptr()) };
            // SAFETY: the name is a NUL-terminated static string.
            unsafe { libc::prctl(libc::PR_SET_NAME, c"pont-keeper".as_ptr()) };
            allow_all_descriptors();
            keep(socket);
            // SAFETY: ends the child without running the parent's exit handlers.
            unsafe { libc::_exit(0) }
        }
        pid => pid > 0,
    }
}

/// Raise the soft limit on open descriptors to the hard one: each socket
/// held is one, and one refused (EMFILE) would be closed by the kernel at
/// once, waiting.
fn allow_all_descriptors() {
    // SAFETY: rlimit is plain data; getrlimit/setrlimit read and write it.
    unsafe {
        let mut limit: libc::rlimit = zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// The keeper's life: listen, collect sockets until quiet, wait out a grace
/// period, close them all.
fn keep(first: RawFd) {
    let mut held = [-1 as RawFd; CAPACITY];
    held[0] = first;
    let mut count = 1;
    match listen() {
        Ok(listener) => {
            collect(listener, &mut held, &mut count, MAX_LIFE_MS);
            // SAFETY: closes our own descriptor; the name is free from here on.
            unsafe { libc::close(listener) };
        }
        // Another keeper won the name a moment ago: give it ours.
        Err(_) if send_to_keeper(first).is_ok() => count = 0,
        Err(_) => {}
    }
    wait_for_grace_period();
    for &fd in &held[..count] {
        // SAFETY: descriptors received or inherited by this process.
        unsafe { libc::close(fd) };
    }
}

/// Accept handed-over sockets until none came for [`IDLE_MS`], or for
/// `life_ms` in all.
fn collect(listener: RawFd, held: &mut [RawFd; CAPACITY], count: &mut usize, life_ms: i64) {
    let end = now_ms() + life_ms;
    let mut deadline = now_ms() + IDLE_MS;
    loop {
        let left = deadline.min(end) - now_ms();
        if left <= 0 {
            return;
        }
        let mut pfd = libc::pollfd {
            fd: listener,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, left as libc::c_int) };
        // Bounded by `end` too: connections that keep coming (anyone may
        // connect) must not hold the keeper here.
        while now_ms() < end {
            // SAFETY: accept4 on our listening socket; no peer address asked for.
            let conn = unsafe { libc::accept4(listener, ptr::null_mut(), ptr::null_mut(), 0) };
            if conn < 0 {
                break; // EAGAIN: none waiting
            }
            if let Some(fd) = receive_from(conn) {
                if *count < CAPACITY {
                    held[*count] = fd;
                    *count += 1;
                } else {
                    // SAFETY: a descriptor just received.
                    unsafe { libc::close(fd) };
                }
                deadline = now_ms() + IDLE_MS;
            }
            // SAFETY: the accepted connection is ours.
            unsafe { libc::close(conn) };
        }
    }
}

/// The socket a peer of our own user sent on `conn`, if any.
fn receive_from(conn: RawFd) -> Option<RawFd> {
    if peer_uid(conn).ok()? != current_euid() {
        return None;
    }
    // The sender writes right after connecting; never wait long for it.
    let timeout = libc::timeval {
        tv_sec: 0,
        tv_usec: 100_000,
    };
    // SAFETY: a valid timeval of the size given.
    unsafe {
        libc::setsockopt(
            conn,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            ptr::from_ref(&timeout).cast(),
            size_of_val(&timeout) as libc::socklen_t,
        )
    };
    receive_fd(conn)
}

fn listen() -> io::Result<RawFd> {
    let listener = unix_socket(libc::SOCK_NONBLOCK)?;
    let (addr, len) = keeper_address();
    // SAFETY: `addr` is a valid sockaddr_un of `len` bytes.
    check(unsafe { libc::bind(listener.as_raw_fd(), ptr::from_ref(&addr).cast(), len) })?;
    // SAFETY: a plain call on our own socket.
    check(unsafe { libc::listen(listener.as_raw_fd(), 64) })?;
    Ok(std::os::fd::IntoRawFd::into_raw_fd(listener))
}

fn unix_socket(flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the result is checked before it is owned.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | flags,
            0,
        )
    };
    check(fd)?;
    // SAFETY: a descriptor we just opened and nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn keeper_address() -> (libc::sockaddr_un, libc::socklen_t) {
    // SAFETY: sockaddr_un is plain data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    // sun_path[0] stays NUL: an abstract name.
    for (dst, &src) in addr.sun_path[1..].iter_mut().zip(NAME) {
        *dst = src as libc::c_char;
    }
    let len = size_of::<libc::sa_family_t>() + 1 + NAME.len();
    (addr, len as libc::socklen_t)
}

/// Send one byte with `fd` attached (SCM_RIGHTS).
fn send_fd(conn: RawFd, fd: RawFd) -> io::Result<()> {
    with_message(|msg| {
        // SAFETY: the control buffer has room for one header and one
        // descriptor (CMSG_SPACE of an int), so the first header is in bounds.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<RawFd>() as u32) as usize;
            ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        }
        // SAFETY: a fully set up msghdr on our own socket.
        let sent = unsafe { libc::sendmsg(conn, msg, libc::MSG_NOSIGNAL) };
        check(sent as libc::c_int)
    })
}

/// Receive the descriptor a peer sent with [`send_fd`].
fn receive_fd(conn: RawFd) -> Option<RawFd> {
    with_message(|msg| {
        // SAFETY: a fully set up msghdr on our own socket.
        let got = unsafe { libc::recvmsg(conn, msg, libc::MSG_CMSG_CLOEXEC) };
        if got <= 0 {
            return None;
        }
        // SAFETY: the kernel filled in msg's control part; the header is
        // checked for being SCM_RIGHTS before its data is read.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(msg);
            let rights = !cmsg.is_null()
                && (*cmsg).cmsg_level == libc::SOL_SOCKET
                && (*cmsg).cmsg_type == libc::SCM_RIGHTS
                && (*cmsg).cmsg_len >= libc::CMSG_LEN(size_of::<RawFd>() as u32) as usize;
            rights.then(|| ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>()))
        }
    })
}

/// Run `f` with a message of one data byte and room for one descriptor.
fn with_message<T>(f: impl FnOnce(&mut libc::msghdr) -> T) -> T {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = ControlBuffer::new();
    // SAFETY: msghdr is plain data; the pointers set below outlive `f`.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.bytes.as_mut_ptr().cast();
    msg.msg_controllen = control.bytes.len();
    f(&mut msg)
}

/// Room for one control message carrying one descriptor, aligned as cmsghdr.
#[repr(C)]
struct ControlBuffer {
    _align: [libc::cmsghdr; 0],
    bytes: [u8; 32],
}

impl ControlBuffer {
    fn new() -> ControlBuffer {
        debug_assert!(
            // SAFETY: CMSG_SPACE is a pure size computation.
            unsafe { libc::CMSG_SPACE(size_of::<RawFd>() as u32) } as usize <= 32
        );
        ControlBuffer {
            _align: [],
            bytes: [0; 32],
        }
    }
}

fn peer_uid(conn: RawFd) -> io::Result<libc::uid_t> {
    peer_cred(conn).map(|cred| cred.uid)
}

/// Who made the other end of `conn` (for a listener: who called listen).
fn peer_cred(conn: RawFd) -> io::Result<libc::ucred> {
    // SAFETY: ucred is plain data.
    let mut cred: libc::ucred = unsafe { zeroed() };
    let mut len = size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`.
    let rc = unsafe {
        libc::getsockopt(
            conn,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            ptr::from_mut(&mut cred).cast(),
            &mut len,
        )
    };
    check(rc)?;
    Ok(cred)
}

fn current_euid() -> libc::uid_t {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// Wait out one RCU grace period without holding anything:
/// membarrier(MEMBARRIER_CMD_GLOBAL) is synchronize_rcu() on a machine with
/// more than one CPU (kernel/sched/membarrier.c). The destroy worker of the
/// deletions before it started its own wait earlier, so it is done by then.
pub(super) fn wait_for_grace_period() {
    const MEMBARRIER_CMD_GLOBAL: libc::c_int = 1;
    // SAFETY: membarrier takes no pointers; an error (an old kernel) only
    // means the close after it may wait instead.
    unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0) };
}

fn now_ms() -> i64 {
    // SAFETY: timespec is plain data; clock_gettime writes it.
    let mut ts: libc::timespec = unsafe { zeroed() };
    // SAFETY: a valid timespec pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::tests::in_fresh_netns;
    use std::os::unix::fs::MetadataExt;
    use std::time::{Duration, Instant};

    /// A netfilter socket of our own and its inode, as /proc/PID/fd shows it.
    fn netfilter_socket() -> (OwnedFd, u64) {
        // SAFETY: plain socket(2), checked.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_NETFILTER,
            )
        };
        assert!(fd >= 0, "socket: {}", io::Error::last_os_error());
        // SAFETY: just opened, owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let inode = std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .unwrap()
            .ino();
        (fd, inode)
    }

    /// The pid of whoever listens on the keeper's name in this namespace.
    fn keeper_pid() -> Option<libc::pid_t> {
        let conn = unix_socket(0).ok()?;
        let (addr, len) = keeper_address();
        // SAFETY: valid address of `len` bytes.
        let rc = unsafe { libc::connect(conn.as_raw_fd(), ptr::from_ref(&addr).cast(), len) };
        check(rc).ok()?;
        Some(peer_cred(conn.as_raw_fd()).ok()?.pid)
    }

    /// Whether `pid` holds the socket `inode` within a second (a handed-over
    /// one is in flight until the keeper has received it).
    fn holds_socket(pid: libc::pid_t, inode: u64) -> bool {
        let want = format!("socket:[{inode}]");
        let holds = || {
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy() == want))
        };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(1) {
            if holds() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    /// Reap our child `pid`; how long it took to exit.
    fn reap(pid: libc::pid_t) -> Duration {
        let start = Instant::now();
        let mut status = 0;
        // SAFETY: waits for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        start.elapsed()
    }

    #[test]
    fn a_keeper_takes_the_socket_over_and_exits_once_quiet() {
        in_fresh_netns(|| {
            let (first, first_inode) = netfilter_socket();
            assert!(keeper_pid().is_none(), "a fresh namespace has no keeper");
            assert!(hand_over(first.as_raw_fd(), true), "no keeper started");
            drop(first);
            let start = Instant::now();
            let pid = loop {
                match keeper_pid() {
                    Some(pid) => break pid,
                    None if start.elapsed() < Duration::from_secs(1) => {
                        std::thread::sleep(Duration::from_millis(2))
                    }
                    None => panic!("no keeper listens"),
                }
            };
            assert!(holds_socket(pid, first_inode));

            // A second socket goes to the same keeper, started or not.
            let (second, second_inode) = netfilter_socket();
            assert!(hand_over(second.as_raw_fd(), false));
            drop(second);
            assert!(holds_socket(pid, second_inode));

            let waited = reap(pid);
            assert!(waited < Duration::from_secs(5), "keeper lived {waited:?}");
            assert!(keeper_pid().is_none(), "the name is free again");
        });
    }

    /// The keeper started by `hand_over`, once it listens.
    fn started_keeper() -> libc::pid_t {
        let start = Instant::now();
        loop {
            match keeper_pid() {
                Some(pid) => return pid,
                None if start.elapsed() < Duration::from_secs(1) => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                None => panic!("no keeper listens"),
            }
        }
    }

    #[test]
    fn a_keeper_holds_no_directory_of_its_caller() {
        // The caller's working directory (cargo runs tests in the crate's)
        // may be a mount someone unmounts next, or the state root.
        in_fresh_netns(|| {
            let (socket, _) = netfilter_socket();
            assert!(hand_over(socket.as_raw_fd(), true), "no keeper started");
            drop(socket);
            let pid = started_keeper();
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
            reap(pid);
            assert_eq!(cwd, std::path::Path::new("/"), "the keeper's directory");
        });
    }

    #[test]
    fn a_namespace_that_is_never_quiet_does_not_keep_a_keeper_forever() {
        // Commands more often than every IDLE_MS: each hand-over restarts
        // the wait for quiet, so only a limit on the keeper's life ends it.
        in_fresh_netns(|| {
            let listener = listen().unwrap();
            let stop = std::sync::atomic::AtomicBool::new(false);
            let (held, count, took) = std::thread::scope(|scope| {
                scope.spawn(|| {
                    // Three seconds at most: without the limit, the test ends.
                    let begun = Instant::now();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed)
                        && begun.elapsed() < Duration::from_secs(3)
                    {
                        let (socket, _) = netfilter_socket();
                        let _ = send_to_keeper(socket.as_raw_fd());
                        std::thread::sleep(Duration::from_millis(20));
                    }
                });
                let mut held = Box::new([-1 as RawFd; CAPACITY]);
                let mut count = 0;
                let start = Instant::now();
                collect(listener, &mut held, &mut count, 400);
                let took = start.elapsed();
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                (held, count, took)
            });
            for &fd in &held[..count] {
                // SAFETY: descriptors received by `collect` in this process.
                unsafe { libc::close(fd) };
            }
            // SAFETY: our own listener.
            unsafe { libc::close(listener) };
            assert!(count > 3, "{count} sockets collected");
            assert!(took < Duration::from_millis(1500), "collected for {took:?}");
        });
    }

    #[test]
    fn without_a_keeper_and_nothing_deleted_the_caller_keeps_its_close() {
        in_fresh_netns(|| {
            let (socket, _) = netfilter_socket();
            assert!(!hand_over(socket.as_raw_fd(), false));
            assert!(keeper_pid().is_none());
        });
    }

    #[test]
    fn a_listener_of_another_user_is_given_nothing() {
        in_fresh_netns(|| {
            let (ready_rx, ready_tx) = nix::unistd::pipe().unwrap();
            // SAFETY: the child makes only system calls and exits.
            let impostor = unsafe { libc::fork() };
            assert!(impostor >= 0);
            if impostor == 0 {
                // SAFETY: system calls on our own descriptors, then _exit.
                unsafe {
                    if libc::setuid(65534) != 0 {
                        libc::_exit(1);
                    }
                    let Ok(listener) = listen() else {
                        libc::_exit(2)
                    };
                    libc::write(ready_tx.as_raw_fd(), b"x".as_ptr().cast(), 1);
                    let conn = libc::accept4(listener, ptr::null_mut(), ptr::null_mut(), 0);
                    // Exit 3 if a descriptor arrived: the test then fails.
                    libc::_exit(if receive_fd(conn).is_some() { 3 } else { 0 })
                }
            }
            drop(ready_tx);
            let mut byte = [0u8; 1];
            // SAFETY: reads one byte into a local buffer.
            let n = unsafe { libc::read(ready_rx.as_raw_fd(), byte.as_mut_ptr().cast(), 1) };
            assert_eq!(n, 1, "the impostor did not get to listen");
            let (socket, _) = netfilter_socket();
            assert!(!hand_over(socket.as_raw_fd(), false), "handed to uid 65534");
            // Let the impostor's accept return, then check what it got.
            if let Ok(conn) = unix_socket(0) {
                let (addr, len) = keeper_address();
                // SAFETY: valid address of `len` bytes.
                unsafe { libc::connect(conn.as_raw_fd(), ptr::from_ref(&addr).cast(), len) };
            }
            let mut status = 0;
            // SAFETY: waits for our own child.
            unsafe { libc::waitpid(impostor, &mut status, 0) };
            assert!(libc::WIFEXITED(status), "impostor status {status}");
            assert_eq!(libc::WEXITSTATUS(status), 0, "impostor exit code");
        });
    }
}
