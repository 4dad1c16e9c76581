//! The state root's exclusive lock, which also tells whether its last holder
//! died while holding it.
//!
//! A holder writes its PID into the lock file when it takes the lock and
//! truncates the file when it lets go. flock(2) locks go away with the
//! process, so a killed pont never leaves the lock held; but it does leave
//! its PID in the file. The next holder finds it there and knows that a
//! command stopped half-way under the lock, where records and kernel may
//! disagree: [`Lock::needs_repair`] asks it to run the full repair, and the
//! mark stays until one does ([`Lock::repaired`]).

use std::cell::Cell;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::StateError;

/// Held while a command reads, decides and writes. Dropping it unlocks.
pub struct Lock {
    file: Flock<File>,
    path: PathBuf,
    /// A previous holder died under the lock and no one has repaired since.
    needs_repair: Cell<bool>,
}

impl Lock {
    pub(super) fn acquire(path: &Path) -> Result<Lock, StateError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(StateError::io("open", path))?;
        let file =
            Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| StateError::Io {
                op: "lock",
                path: path.to_path_buf(),
                source: errno.into(),
            })?;
        let mut lock = Lock {
            file,
            path: path.to_path_buf(),
            needs_repair: Cell::new(false),
        };
        let mut previous = String::new();
        lock.file
            .read_to_string(&mut previous)
            .map_err(StateError::io("read", path))?;
        lock.needs_repair.set(!previous.trim().is_empty());
        lock.mark_held()?;
        Ok(lock)
    }

    /// Whether the previous holder was killed (or crashed) while holding the lock.
    pub fn needs_repair(&self) -> bool {
        self.needs_repair.get()
    }

    /// The caller brought records and kernel in line again: unlocking may clear the mark.
    pub fn repaired(&self) {
        self.needs_repair.set(false);
    }

    /// No fsync: after a power loss the kernel objects are gone anyway, and
    /// the records say which ones to rebuild.
    fn mark_held(&mut self) -> Result<(), StateError> {
        let me = format!("{}\n", std::process::id());
        let file: &mut File = &mut self.file;
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(me.as_bytes()))
            .map_err(StateError::io("write", &self.path))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if !self.needs_repair.get() {
            // Best effort: if this fails the next holder runs a repair it did not need.
            let _ = self.file.set_len(0);
        }
    }
}
