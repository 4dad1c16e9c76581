//! Network namespaces pinned by a bind mount at a path of the caller's
//! choosing, as `ip netns add` and Podman pin theirs.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::thread;

use anyhow::{Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

/// A new network namespace, pinned at `path` (which must not exist yet).
///
/// A short-lived thread makes it: `unshare(CLONE_NEWNET)` moves only the
/// calling thread, and that thread ends right after the bind mount, so no
/// other code ever runs inside the new namespace by accident.
pub fn create_pinned(path: &Path) -> Result<OwnedFd> {
    File::create_new(path).with_context(|| format!("create mount point {}", path.display()))?;
    let made = thread::scope(|scope| {
        scope
            .spawn(|| -> Result<OwnedFd> {
                unshare(CloneFlags::CLONE_NEWNET).context("unshare(CLONE_NEWNET)")?;
                let own = "/proc/thread-self/ns/net";
                mount(
                    Some(own),
                    path,
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .with_context(|| format!("bind-mount the namespace on {}", path.display()))?;
                Ok(File::open(own).context("open the new namespace")?.into())
            })
            .join()
            .unwrap_or_else(|payload| std::panic::resume_unwind(payload))
    });
    if made.is_err() {
        let _ = std::fs::remove_file(path);
    }
    made
}

/// Open a pinned namespace.
pub fn open(path: &Path) -> Result<OwnedFd> {
    Ok(File::open(path)
        .with_context(|| format!("open namespace {}", path.display()))?
        .into())
}

/// Unpin the namespace at `path`. Once nothing else holds it, the kernel
/// removes it and its interfaces in its own time, off the caller's clock.
/// Already gone is fine.
pub fn release(path: &Path) -> Result<()> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::ENOENT) | Err(nix::errno::Errno::EINVAL) => {}
        Err(e) => return Err(e).with_context(|| format!("unmount {}", path.display())),
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("remove {}", path.display()))
        }
        _ => Ok(()),
    }
}
