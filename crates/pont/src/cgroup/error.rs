//! Errors of the cgroup module: each names the operation and the cgroup file or
//! hierarchy it acted on; the kernel's error is the source.

use std::io;
use std::path::PathBuf;

use nix::errno::Errno;

use super::{Controller, Version};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("read {path}")]
    ReadProc {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("open the cgroup hierarchy mounted on {path}")]
    OpenMount {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("mount the cgroup hierarchy {hierarchy} in pont's own mount namespace")]
    Mount {
        hierarchy: String,
        #[source]
        source: Errno,
    },
    #[error(
        "{option} needs the cgroup {version} controller {controller}, which this machine \
         does not have{}", available_suffix(.available)
    )]
    MissingController {
        option: &'static str,
        controller: Controller,
        version: Version,
        available: Vec<Controller>,
    },
    #[error("{option} needs swap accounting, which {path} lacks (no file {file})")]
    NoSwapAccounting {
        option: &'static str,
        path: PathBuf,
        file: &'static str,
    },
    #[error("create cgroup {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("open {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("unexpected content in {path}: {content:?}")]
    Parse { path: PathBuf, content: String },
    #[error("write {value:?} to {path}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: Errno,
    },
    #[error("move process {pid} into {path}")]
    Join {
        pid: i32,
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("kill process {pid} left in {path}")]
    Kill {
        pid: i32,
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("remove cgroup {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("{error}; undoing it also failed: {undo}")]
    Undo {
        error: Box<CgroupError>,
        undo: Box<CgroupError>,
    },
}

fn available_suffix(available: &[Controller]) -> String {
    if available.is_empty() {
        return " (pont found none of memory, cpu, cpuacct, pids)".to_string();
    }
    let names: Vec<&str> = available.iter().map(|c| c.name()).collect();
    format!(" (available: {})", names.join(", "))
}

impl CgroupError {
    /// Attach the failure of an undo to the error that made it necessary.
    pub(super) fn with_undo(self, undo: Result<(), CgroupError>) -> CgroupError {
        match undo {
            Ok(()) => self,
            Err(undo) => CgroupError::Undo {
                error: Box::new(self),
                undo: Box::new(undo),
            },
        }
    }
}
