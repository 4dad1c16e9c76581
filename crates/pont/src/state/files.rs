//! Crash-safe file primitives: write-to-temporary, fsync, rename, fsync directory.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::StateError;

/// How far a write must reach before it returns.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Renamed into place and fsynced (file and directory): survives a power loss.
    Disk,
    /// Renamed into place only: a crash of any process still sees the old or
    /// the new file whole, and the kernel writes it out in its own time.
    Kernel,
}

/// What becomes of the version a write replaces.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Previous {
    /// Deleted, by the rename that puts the new version in place.
    Drop,
    /// Kept as `.NAME.prev` until the next write, which deletes it instead. For
    /// files rewritten in quick succession (a container record, twice per
    /// launch): on ext4 without a journal, as on the machines pont is measured
    /// on, the kernel skips every inode deleted in the last 60 s (360 s while
    /// its inode table block is dirty) each time it allocates one in the same
    /// block group (fs/ext4/ialloc.c, `recently_deleted`), so a deletion per
    /// launch made each later launch's file creations slower.
    Keep,
}

pub fn write_atomic<T: Serialize>(
    path: &Path,
    value: &T,
    durability: Durability,
    previous: Previous,
) -> Result<(), StateError> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("records always serialize");
    bytes.push(b'\n');
    write_bytes_atomic(path, &bytes, durability, previous)
}

pub fn write_bytes_atomic(
    path: &Path,
    bytes: &[u8],
    durability: Durability,
    previous: Previous,
) -> Result<(), StateError> {
    let dir = path.parent().expect("state files live in a directory");
    let name = path
        .file_name()
        .expect("state files have a name")
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let prev = dir.join(format!(".{name}.prev"));
    let write = || -> io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        if durability == Durability::Disk {
            file.sync_all()?;
        }
        if previous == Previous::Keep {
            keep_as(path, &prev)?;
        }
        fs::rename(&tmp, path)?;
        if durability == Durability::Kernel {
            return Ok(());
        }
        // The rename is durable only once the directory entry is on disk.
        File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        StateError::Io {
            op: "write",
            path: path.to_path_buf(),
            source: e,
        }
    })
}

/// Make `prev` a second name of the file at `path` (if there is one), so that the
/// rename over `path` leaves it in place. Only a name is added and one taken
/// away: the file, which a reader may still have open, is never written to.
fn keep_as(path: &Path, prev: &Path) -> io::Result<()> {
    match fs::remove_file(prev) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    match fs::hard_link(path, prev) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()), // a first write
        result => result,
    }
}

pub fn load_optional<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, StateError> {
    match fs::read(path) {
        Ok(bytes) => parse(path, &bytes).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StateError::Io {
            op: "read",
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

pub fn parse<T: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T, StateError> {
    serde_json::from_slice(bytes).map_err(|source| StateError::Corrupt {
        path: path.to_path_buf(),
        source,
    })
}

/// Load every record in `dir`; `pick` maps a directory entry to the file to read,
/// `check` validates what was read. A file that does not exist (a directory
/// without its record) is skipped; every other failure is an error naming
/// the file, so no record is ever silently left out.
pub fn load_all<T: DeserializeOwned>(
    dir: &Path,
    pick: impl Fn(&Path) -> Option<PathBuf>,
    check: impl Fn(&Path, T) -> Result<T, StateError>,
) -> Result<Vec<T>, StateError> {
    let entries = fs::read_dir(dir).map_err(StateError::io("list", dir))?;
    let mut records = Vec::new();
    for entry in entries {
        let entry = entry.map_err(StateError::io("list", dir))?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue; // temporaries of an interrupted write
        }
        if let Some(path) = pick(&entry.path()) {
            if let Some(record) = load_optional(&path)? {
                records.push(check(&path, record)?);
            }
        }
    }
    Ok(records)
}

pub fn remove_file(path: &Path) -> Result<(), StateError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StateError::Io {
            op: "remove",
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}
