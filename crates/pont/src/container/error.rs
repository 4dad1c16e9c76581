//! Errors of the container module.

use std::fmt;
use std::io;
use std::path::PathBuf;

use nix::errno::Errno;

/// A failure to create, start, wait for, enter or signal a container.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("invalid container spec: {field} {value:?}: {reason}")]
    InvalidSpec {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("resolve root file system {path}")]
    Rootfs {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("open log file {path}")]
    OpenLog {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("open /dev/null")]
    OpenDevNull {
        #[source]
        source: io::Error,
    },
    #[error("resolve bind-mount source {path}")]
    BindSource {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("open namespace {path}")]
    OpenNamespace {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("create the control socket for a container process")]
    Channel {
        #[source]
        source: Errno,
    },
    #[error("clone a container process")]
    Clone {
        #[source]
        source: Errno,
    },
    #[error("talk to container process {pid}")]
    Control {
        pid: i32,
        #[source]
        source: Errno,
    },
    #[error("unexpected message from container process {pid}")]
    Protocol { pid: i32 },
    #[error("container process {pid}: {step}{}", path_suffix(.path))]
    Setup {
        pid: i32,
        step: SetupStep,
        path: Option<PathBuf>,
        #[source]
        source: Errno,
    },
    #[error("container process {pid} died before its setup finished")]
    SetupAborted { pid: i32 },
    #[error("wait for process {pid}")]
    Wait {
        pid: i32,
        #[source]
        source: Errno,
    },
    #[error("forward signals to process {pid}")]
    ForwardSignals {
        pid: i32,
        #[source]
        source: Errno,
    },
    #[error("send signal {signal} to process {pid}")]
    Kill {
        pid: i32,
        signal: i32,
        #[source]
        source: Errno,
    },
}

fn path_suffix(path: &Option<PathBuf>) -> String {
    match path {
        Some(path) => format!(" {}", path.display()),
        None => String::new(),
    }
}

/// One step of the work a container process does between its clone and the exec of the
/// command; sent over the control socket as a number when it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum SetupStep {
    CloseInheritedFds = 1,
    NewSession,
    RedirectStdio,
    MakeMountsPrivate,
    CloneBindSource,
    BindRootfs,
    CreateMountPoint,
    MountProc,
    MountSysfs,
    BindDev,
    PivotRoot,
    DetachOldRoot,
    BindFile,
    BindTargetMissing,
    CreateBindTarget,
    SetHostname,
    ChangeDir,
    JoinNamespace,
    ForkCommand,
    JoinCgroup,
}

impl SetupStep {
    const ALL: [SetupStep; 20] = [
        SetupStep::CloseInheritedFds,
        SetupStep::NewSession,
        SetupStep::RedirectStdio,
        SetupStep::MakeMountsPrivate,
        SetupStep::CloneBindSource,
        SetupStep::BindRootfs,
        SetupStep::CreateMountPoint,
        SetupStep::MountProc,
        SetupStep::MountSysfs,
        SetupStep::BindDev,
        SetupStep::PivotRoot,
        SetupStep::DetachOldRoot,
        SetupStep::BindFile,
        SetupStep::BindTargetMissing,
        SetupStep::CreateBindTarget,
        SetupStep::SetHostname,
        SetupStep::ChangeDir,
        SetupStep::JoinNamespace,
        SetupStep::ForkCommand,
        SetupStep::JoinCgroup,
    ];

    pub(super) fn to_wire(self) -> u32 {
        self as u32
    }

    pub(super) fn from_wire(value: u32) -> Option<SetupStep> {
        SetupStep::ALL
            .into_iter()
            .find(|step| step.to_wire() == value)
    }

    /// What the step does, completed by the path it acted on (if any).
    pub fn describe(self) -> &'static str {
        match self {
            SetupStep::CloseInheritedFds => "close inherited file descriptors",
            SetupStep::NewSession => "start a new session",
            SetupStep::RedirectStdio => "redirect stdio to",
            SetupStep::MakeMountsPrivate => "make all mounts private",
            SetupStep::CloneBindSource => "clone bind-mount source",
            SetupStep::BindRootfs => "bind-mount the root file system",
            SetupStep::CreateMountPoint => "create mount point",
            SetupStep::MountProc => "mount proc on",
            SetupStep::MountSysfs => "mount sysfs on",
            SetupStep::BindDev => "bind-mount /dev onto",
            SetupStep::PivotRoot => "pivot_root into",
            SetupStep::DetachOldRoot => "detach the old root file system",
            SetupStep::BindFile => "bind-mount a file onto",
            SetupStep::BindTargetMissing => {
                "bind-mount target does not exist (pont creates missing targets only inside \
                 a rootfs)"
            }
            SetupStep::CreateBindTarget => "create missing bind-mount target",
            SetupStep::SetHostname => "set hostname",
            SetupStep::ChangeDir => "change directory to",
            SetupStep::JoinNamespace => "join namespace",
            SetupStep::ForkCommand => "fork the command",
            SetupStep::JoinCgroup => "move into the container's cgroup",
        }
    }
}

impl fmt::Display for SetupStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// A failed step as the container process reports it: which step, which item of a list
/// (the n-th bind mount, namespace or mount point), and the kernel's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Failure {
    pub step: SetupStep,
    pub index: u32,
    pub errno: Errno,
}

impl Failure {
    pub fn new(step: SetupStep, errno: Errno) -> Failure {
        Failure {
            step,
            index: 0,
            errno,
        }
    }

    pub fn at(step: SetupStep, index: usize, errno: Errno) -> Failure {
        Failure {
            step,
            index: u32::try_from(index).unwrap_or(u32::MAX),
            errno,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_survives_the_wire() {
        for step in SetupStep::ALL {
            assert_eq!(SetupStep::from_wire(step.to_wire()), Some(step));
        }
        assert_eq!(SetupStep::from_wire(0), None);
        assert_eq!(SetupStep::from_wire(999), None);
    }

    #[test]
    fn setup_error_names_step_and_path() {
        let err = ContainerError::Setup {
            pid: 42,
            step: SetupStep::MountProc,
            path: Some(PathBuf::from("/r/proc")),
            source: Errno::EPERM,
        };
        assert_eq!(
            err.to_string(),
            "container process 42: mount proc on /r/proc"
        );
        let err = ContainerError::Setup {
            pid: 42,
            step: SetupStep::SetHostname,
            path: None,
            source: Errno::EINVAL,
        };
        assert_eq!(err.to_string(), "container process 42: set hostname");
    }
}
