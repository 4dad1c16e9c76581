//! Sockets in other network namespaces, and namespace handles of processes.

use std::{
    fs::File,
    os::fd::{BorrowedFd, OwnedFd},
    panic, thread,
};

use nix::sched::{setns, CloneFlags};

use super::{Netlink, NetlinkError};

impl Netlink {
    /// Socket bound to another network namespace.
    ///
    /// A netlink socket acts on the namespace it was created in for its whole life. So a
    /// short-lived thread enters `netns`, opens the socket there, returns it and ends; the
    /// caller's thread never switches namespace, and the thread that did is gone before
    /// anything else could run on it.
    pub fn open_in(netns: BorrowedFd<'_>) -> Result<Netlink, NetlinkError> {
        thread::scope(|scope| {
            let worker = thread::Builder::new()
                .name("pont-netns".to_owned())
                .spawn_scoped(scope, move || {
                    setns(netns, CloneFlags::CLONE_NEWNET).map_err(|errno| {
                        NetlinkError::EnterNetns {
                            source: errno.into(),
                        }
                    })?;
                    Netlink::open()
                })
                .map_err(|source| NetlinkError::EnterNetns { source })?;
            match worker.join() {
                Ok(result) => result,
                Err(payload) => panic::resume_unwind(payload),
            }
        })
    }
}

/// Open the network namespace of process `pid` (`/proc/PID/ns/net`, close-on-exec).
pub fn netns_of_pid(pid: i32) -> Result<OwnedFd, NetlinkError> {
    // std opens every file with O_CLOEXEC.
    File::open(format!("/proc/{pid}/ns/net"))
        .map(OwnedFd::from)
        .map_err(|source| NetlinkError::OpenNetns { pid, source })
}
