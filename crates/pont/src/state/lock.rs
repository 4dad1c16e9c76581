//! The state root's exclusive lock.

use std::fs::{File, OpenOptions};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use super::StateError;

/// Held while a command reads, decides and writes. Dropping it unlocks.
/// flock(2) locks go away with the process, so a killed pont never leaves it held.
pub struct Lock {
    _file: Flock<File>,
}

impl Lock {
    pub(super) fn acquire(path: &Path) -> Result<Lock, StateError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(StateError::io("open", path))?;
        let file =
            Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| StateError::Io {
                op: "lock",
                path: path.to_path_buf(),
                source: errno.into(),
            })?;
        Ok(Lock { _file: file })
    }
}
