//! The container's file system view, made by init in its new mount namespace: all mounts
//! private, then either the host's tree with a fresh `/proc` and `/sys`, or a `pivot_root`
//! into a root file system with `/proc`, `/sys` and `/dev`; then the bind-mounted files.
//!
//! [`FsPlan::prepare`] runs in the caller (it allocates and checks paths); [`apply`] runs in
//! init after the clone and only makes system calls.

use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, mkdir, pivot_root};

use super::error::{Failure, SetupStep};
use super::plan::{c_path, invalid};
use super::sys;
use super::ContainerError;

/// Mount points made inside a root file system, in this order; a failure to create one is
/// reported with its index here.
pub(super) const MOUNT_POINTS: [&str; 3] = ["proc", "sys", "dev"];

/// Paths inside the root file system, as the host sees them before `pivot_root`.
pub(super) struct RootPaths {
    root: CString,
    proc: CString,
    sys: CString,
    dev: CString,
}

/// A file to bind-mount. Init clones the source into a detached mount while the host's
/// paths still resolve (mount(MS_BIND) from a descriptor the caller opened would fail: that
/// descriptor's mount belongs to the caller's mount namespace), and attaches it once the
/// container's root is in place, so the target resolves inside the container.
pub(super) struct BindPlan {
    /// Canonical path on the host.
    source: CString,
    /// Absolute path inside the container.
    target: CString,
    /// The detached clone of the source, between the two steps (set in init only).
    tree: Cell<Option<OwnedFd>>,
}

pub(super) struct FsPlan {
    rootfs: Option<RootPaths>,
    binds: Vec<BindPlan>,
}

impl FsPlan {
    /// `rootfs` must be canonical (absolute, no symlinks); bind targets must be absolute.
    pub fn prepare(
        rootfs: Option<&Path>,
        bind_files: &[(PathBuf, PathBuf)],
    ) -> Result<FsPlan, ContainerError> {
        let rootfs = rootfs.map(root_paths).transpose()?;
        let binds = bind_files
            .iter()
            .map(|(source, target)| bind_plan(source, target))
            .collect::<Result<_, _>>()?;
        Ok(FsPlan { rootfs, binds })
    }

    /// Source and target of the `index`-th bind mount, for an error message.
    pub fn bind_paths(&self, index: u32) -> Option<(&CStr, &CStr)> {
        let bind = self.binds.get(usize::try_from(index).ok()?)?;
        Some((bind.source.as_c_str(), bind.target.as_c_str()))
    }
}

fn root_paths(root: &Path) -> Result<RootPaths, ContainerError> {
    let [proc, sys, dev] = MOUNT_POINTS.map(|dir| root.join(dir));
    Ok(RootPaths {
        root: c_path("rootfs", root)?,
        proc: c_path("rootfs", &proc)?,
        sys: c_path("rootfs", &sys)?,
        dev: c_path("rootfs", &dev)?,
    })
}

fn bind_plan(source: &Path, target: &Path) -> Result<BindPlan, ContainerError> {
    if !target.is_absolute() {
        let value = target.display().to_string();
        return Err(invalid(
            "bind_files",
            &value,
            "target must be an absolute path",
        ));
    }
    let canonical = source
        .canonicalize()
        .map_err(|err| ContainerError::BindSource {
            path: source.to_owned(),
            source: err,
        })?;
    Ok(BindPlan {
        source: c_path("bind_files", &canonical)?,
        target: c_path("bind_files", target)?,
        tree: Cell::new(None),
    })
}

/// Build the container's file system view. Runs in init, after the clone.
pub(super) fn apply(plan: &FsPlan) -> Result<(), Failure> {
    // Nothing below may propagate back to the host's mount namespace.
    let private = MsFlags::MS_REC | MsFlags::MS_PRIVATE;
    mount(None::<&CStr>, c"/", None::<&CStr>, private, None::<&CStr>)
        .map_err(|errno| Failure::new(SetupStep::MakeMountsPrivate, errno))?;
    for (index, file) in plan.binds.iter().enumerate() {
        let tree = sys::open_tree_clone(&file.source)
            .map_err(|errno| Failure::at(SetupStep::CloneBindSource, index, errno))?;
        file.tree.set(Some(tree));
    }
    match &plan.rootfs {
        Some(root) => enter_rootfs(root)?,
        None => mount_kernel_fs(c"/proc", c"/sys")?,
    }
    let in_rootfs = plan.rootfs.is_some();
    for (index, file) in plan.binds.iter().enumerate() {
        bind_file(file, in_rootfs).map_err(|(step, errno)| Failure::at(step, index, errno))?;
    }
    Ok(())
}

fn enter_rootfs(root: &RootPaths) -> Result<(), Failure> {
    // pivot_root needs the new root to be a mount point.
    bind(&root.root, &root.root, MsFlags::MS_REC)
        .map_err(|errno| Failure::new(SetupStep::BindRootfs, errno))?;
    for (index, dir) in [&root.proc, &root.sys, &root.dev].into_iter().enumerate() {
        mkdir_missing(dir)
            .map_err(|errno| Failure::at(SetupStep::CreateMountPoint, index, errno))?;
    }
    mount_kernel_fs(&root.proc, &root.sys)?;
    bind(c"/dev", &root.dev, MsFlags::MS_REC)
        .map_err(|errno| Failure::new(SetupStep::BindDev, errno))?;
    // pivot_root(".", ".") stacks the old root on top of the new one; detaching it then
    // leaves only the new root, with no put_old directory needed (see pivot_root(2)).
    let pivot = || -> Result<(), Errno> {
        chdir(root.root.as_c_str())?;
        pivot_root(c".", c".")
    };
    pivot().map_err(|errno| Failure::new(SetupStep::PivotRoot, errno))?;
    umount2(c".", MntFlags::MNT_DETACH)
        .and_then(|()| chdir(c"/"))
        .map_err(|errno| Failure::new(SetupStep::DetachOldRoot, errno))
}

/// A proc for the new PID namespace, and a sysfs whose `class/net` lists the interfaces of
/// the network namespace init is in. sysfs is read-only, as in Docker.
fn mount_kernel_fs(proc: &CStr, sys: &CStr) -> Result<(), Failure> {
    let common = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some(c"proc"), proc, Some(c"proc"), common, None::<&CStr>)
        .map_err(|errno| Failure::new(SetupStep::MountProc, errno))?;
    let sysfs = common | MsFlags::MS_RDONLY;
    match mount(Some(c"sysfs"), sys, Some(c"sysfs"), sysfs, None::<&CStr>) {
        // The sysfs of this network namespace is already mounted right there (a container
        // that keeps the host's network and file system): the kernel refuses to stack a
        // superblock on itself (fs/namespace.c, do_add_mount), and none is needed.
        Ok(()) | Err(Errno::EBUSY) => Ok(()),
        Err(errno) => Err(Failure::new(SetupStep::MountSysfs, errno)),
    }
}

/// Attach one file's clone. Like mount(2), move_mount follows symlinks in the target
/// (`MOVE_MOUNT_T_SYMLINKS`), so `/etc/resolv.conf -> ../run/resolv.conf` gets the mount on
/// the file it points to. A target that resolves to nothing is created, but only inside a
/// root file system: creating it on the host's file system would change the host.
fn bind_file(file: &BindPlan, in_rootfs: bool) -> Result<(), (SetupStep, Errno)> {
    let tree = file
        .tree
        .take()
        .ok_or((SetupStep::BindFile, Errno::EBADF))?;
    match sys::move_mount_onto(tree.as_fd(), &file.target) {
        Ok(()) => return Ok(()),
        Err(Errno::ENOENT) if !in_rootfs => {
            return Err((SetupStep::BindTargetMissing, Errno::ENOENT))
        }
        Err(Errno::ENOENT) => {}
        Err(errno) => return Err((SetupStep::BindFile, errno)),
    }
    let flags = OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
    let created = open(
        file.target.as_c_str(),
        flags,
        Mode::from_bits_truncate(0o644),
    )
    .map_err(|errno| (SetupStep::CreateBindTarget, errno))?;
    drop(created);
    sys::move_mount_onto(tree.as_fd(), &file.target).map_err(|errno| (SetupStep::BindFile, errno))
}

fn bind(source: &CStr, target: &CStr, extra: MsFlags) -> Result<(), Errno> {
    mount(
        Some(source),
        target,
        None::<&CStr>,
        MsFlags::MS_BIND | extra,
        None::<&CStr>,
    )
}

fn mkdir_missing(dir: &CStr) -> Result<(), Errno> {
    match mkdir(dir, Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(errno) => Err(errno),
    }
}
