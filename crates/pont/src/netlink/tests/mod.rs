//! Tests of the netlink module.
//!
//! Kernel tests never touch the machine's own namespace: each runs on a thread that first
//! unshares a fresh, empty network namespace, which vanishes with the thread. Names of links
//! can therefore be fixed. The tests need root (CAP_SYS_ADMIN, CAP_NET_ADMIN); without it
//! they fail at `unshare`, they do not pass silently.

mod addrs_routes;
mod e2e;
mod links;
mod unit;

use std::{
    fs::File,
    os::fd::{BorrowedFd, OwnedFd},
    panic, thread,
};

use nix::sched::{setns, unshare, CloneFlags};

/// Run `f` on a new thread that has moved into a fresh network namespace of its own.
pub(crate) fn in_fresh_netns<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    run_on_thread(|| {
        unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET) (tests need root)");
        f()
    })
}

/// Run `f` on a new thread that has entered `netns`.
fn in_netns<T: Send>(netns: BorrowedFd<'_>, f: impl FnOnce() -> T + Send) -> T {
    run_on_thread(move || {
        setns(netns, CloneFlags::CLONE_NEWNET).expect("setns(CLONE_NEWNET)");
        f()
    })
}

fn run_on_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    thread::scope(|scope| match scope.spawn(f).join() {
        Ok(value) => value,
        Err(payload) => panic::resume_unwind(payload),
    })
}

/// A handle to a new, empty network namespace; it lives as long as the handle.
fn fresh_netns() -> OwnedFd {
    in_fresh_netns(current_netns)
}

/// A handle to the calling thread's network namespace.
fn current_netns() -> OwnedFd {
    File::open("/proc/thread-self/ns/net")
        .expect("open /proc/thread-self/ns/net")
        .into()
}
