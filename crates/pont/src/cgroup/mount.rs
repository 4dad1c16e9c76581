//! Mounting a cgroup hierarchy that this mount namespace does not show (`ip netns exec`
//! gives pont a fresh `/sys` without `/sys/fs/cgroup/*`).
//!
//! The mount is made with the new mount API (fsopen, fsconfig, fsmount; Linux 5.2) and
//! never attached anywhere: the descriptor fsmount returns is the root of a detached
//! mount, and pont opens every cgroup file relative to it. So there is no mount point to
//! create, nothing propagates to other mount namespaces whatever the propagation of `/`,
//! and the mount disappears when pont closes the descriptor. A v1 mount naming an
//! existing hierarchy's controllers joins that hierarchy, and a cgroup2 mount is always
//! the one unified hierarchy: the cgroups pont makes through it are the same ones the
//! host sees in `/sys/fs/cgroup`.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

// From include/uapi/linux/mount.h; the libc crate does not export them.
const FSOPEN_CLOEXEC: libc::c_uint = 0x1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 0x1;
const MOUNT_ATTR_NOSUID: libc::c_uint = 0x2;
const MOUNT_ATTR_NODEV: libc::c_uint = 0x4;
const MOUNT_ATTR_NOEXEC: libc::c_uint = 0x8;

/// A detached mount of the v1 hierarchy named by `options` (its controllers and
/// `name=X`, see [`V1Hierarchy`](super::detect::V1Hierarchy)).
pub(super) fn mount_v1(options: &[String]) -> Result<OwnedFd, Errno> {
    let fs = fsopen(c"cgroup")?;
    for option in options {
        match option.split_once('=') {
            Some((key, value)) => fsconfig_string(&fs, key, value)?,
            None => fsconfig_flag(&fs, option)?,
        }
    }
    fsconfig_create(&fs)?;
    fsmount(&fs)
}

/// A detached mount of the unified (v2) hierarchy.
pub(super) fn mount_v2() -> Result<OwnedFd, Errno> {
    let fs = fsopen(c"cgroup2")?;
    fsconfig_create(&fs)?;
    fsmount(&fs)
}

fn c_string(text: &str) -> Result<CString, Errno> {
    CString::new(text).map_err(|_| Errno::EINVAL)
}

fn owned(ret: libc::c_long) -> Result<OwnedFd, Errno> {
    let fd = RawFd::try_from(Errno::result(ret)?).map_err(|_| Errno::EBADF)?;
    // SAFETY: the call succeeded, so `fd` is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// fsopen(2): a file system context for `fs_type`.
fn fsopen(fs_type: &std::ffi::CStr) -> Result<OwnedFd, Errno> {
    // SAFETY: `fs_type` is NUL-terminated and outlives the call.
    owned(unsafe { libc::syscall(libc::SYS_fsopen, fs_type.as_ptr(), FSOPEN_CLOEXEC) })
}

fn fsconfig_flag(fs: &OwnedFd, key: &str) -> Result<(), Errno> {
    let key = c_string(key)?;
    let value: *const libc::c_char = std::ptr::null();
    // SAFETY: `key` is NUL-terminated and outlives the call; a flag takes no value.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_FLAG,
            key.as_ptr(),
            value,
            0,
        )
    };
    Errno::result(ret).map(drop)
}

fn fsconfig_string(fs: &OwnedFd, key: &str, value: &str) -> Result<(), Errno> {
    let (key, value) = (c_string(key)?, c_string(value)?);
    // SAFETY: both strings are NUL-terminated and outlive the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_STRING,
            key.as_ptr(),
            value.as_ptr(),
            0,
        )
    };
    Errno::result(ret).map(drop)
}

fn fsconfig_create(fs: &OwnedFd) -> Result<(), Errno> {
    let none: *const libc::c_char = std::ptr::null();
    // SAFETY: FSCONFIG_CMD_CREATE takes no key or value.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            none,
            none,
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// fsmount(2): the detached mount of a created context.
fn fsmount(fs: &OwnedFd) -> Result<OwnedFd, Errno> {
    let attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    // SAFETY: fsmount takes a descriptor and two flag words and returns a new descriptor.
    owned(unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) })
}
