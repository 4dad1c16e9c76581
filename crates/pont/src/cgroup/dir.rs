//! A cgroup directory held by a descriptor: every file is opened relative to it, so the
//! same code works on a hierarchy found at a path and on one mounted detached (which has
//! no path at all), and in tests on a plain directory laid out like a cgroup.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag, AT_FDCWD};
use nix::sys::stat::{mkdirat, Mode};
use nix::unistd::{unlinkat, UnlinkatFlags};

use super::CgroupError;

#[derive(Debug)]
pub(crate) struct CgroupDir {
    fd: OwnedFd,
    /// How errors name this directory: its path, or for a detached mount a description
    /// such as `cgroup(memory):/pont/ID`.
    shown: PathBuf,
}

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC
}

impl CgroupDir {
    /// The directory at `path`.
    pub(crate) fn open(path: &Path) -> Result<CgroupDir, Errno> {
        let fd = openat(AT_FDCWD, path, dir_flags(), Mode::empty())?;
        Ok(CgroupDir {
            fd,
            shown: path.to_path_buf(),
        })
    }

    /// A directory already open as `fd` (the root of a detached mount).
    pub(super) fn from_fd(fd: OwnedFd, shown: PathBuf) -> CgroupDir {
        CgroupDir { fd, shown }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.shown
    }

    /// The path errors use for `name` inside this directory.
    pub(super) fn shown(&self, name: &str) -> PathBuf {
        self.shown.join(name)
    }

    /// The child directory `name` (a relative path), `None` if it does not exist.
    pub(super) fn child(&self, name: &str) -> Result<Option<CgroupDir>, CgroupError> {
        match openat(self.fd.as_fd(), name, dir_flags(), Mode::empty()) {
            Ok(fd) => Ok(Some(CgroupDir {
                fd,
                shown: self.shown(name),
            })),
            Err(Errno::ENOENT) => Ok(None),
            Err(source) => Err(CgroupError::Read {
                path: self.shown(name),
                source,
            }),
        }
    }

    /// Make the child directory `name` (a new cgroup); `false` if it existed.
    pub(super) fn make_child(&self, name: &str) -> Result<bool, CgroupError> {
        match mkdirat(self.fd.as_fd(), name, Mode::from_bits_truncate(0o755)) {
            Ok(()) => Ok(true),
            Err(Errno::EEXIST) => Ok(false),
            Err(source) => Err(CgroupError::Create {
                path: self.shown(name),
                source,
            }),
        }
    }

    /// rmdir(2) of the child `name`, which for a cgroup also removes its files.
    pub(super) fn remove_child(&self, name: &str) -> Result<(), Errno> {
        unlinkat(self.fd.as_fd(), name, UnlinkatFlags::RemoveDir)
    }

    /// The whole of the file `name`.
    pub(super) fn read(&self, name: &str) -> Result<String, CgroupError> {
        self.read_optional(name)?.ok_or(CgroupError::Read {
            path: self.shown(name),
            source: Errno::ENOENT,
        })
    }

    /// The whole of the file `name`, `None` if it does not exist (a controller or
    /// feature this kernel lacks).
    pub(super) fn read_optional(&self, name: &str) -> Result<Option<String>, CgroupError> {
        let read_err = |source| CgroupError::Read {
            path: self.shown(name),
            source,
        };
        let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC;
        let fd = match openat(self.fd.as_fd(), name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(errno) => return Err(read_err(errno)),
        };
        let mut text = String::new();
        File::from(fd)
            .read_to_string(&mut text)
            .map_err(|e| read_err(io_errno(&e)))?;
        Ok(Some(text))
    }

    /// Whether the file `name` exists.
    pub(super) fn has(&self, name: &str) -> bool {
        let flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
        openat(self.fd.as_fd(), name, flags, Mode::empty()).is_ok()
    }

    /// The file `name` opened for writing, e.g. `cgroup.procs` for a process that will
    /// write itself into it later.
    pub(super) fn open_for_write(&self, name: &str) -> Result<OwnedFd, CgroupError> {
        let flags = OFlag::O_WRONLY | OFlag::O_CLOEXEC;
        openat(self.fd.as_fd(), name, flags, Mode::empty()).map_err(|source| CgroupError::Open {
            path: self.shown(name),
            source,
        })
    }

    /// Write `value` to the file `name` in one write(2): the kernel parses each write of
    /// a cgroup file on its own.
    pub(super) fn write(&self, name: &str, value: &str) -> Result<(), CgroupError> {
        let write_err = |source| CgroupError::Write {
            path: self.shown(name),
            value: value.to_string(),
            source,
        };
        // O_TRUNC as a shell's `>`: the kernel ignores it on cgroup files, and a plain
        // file standing in for one (in tests) then holds exactly the value.
        let flags = OFlag::O_WRONLY | OFlag::O_TRUNC | OFlag::O_CLOEXEC;
        let fd = openat(self.fd.as_fd(), name, flags, Mode::empty()).map_err(write_err)?;
        File::from(fd)
            .write_all(value.as_bytes())
            .map_err(|e| write_err(io_errno(&e)))
    }
}

/// The errno inside an I/O error of a read or write on a cgroup file.
fn io_errno(err: &std::io::Error) -> Errno {
    err.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}
