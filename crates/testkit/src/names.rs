//! Unique names for everything a sandbox creates.
//!
//! Names follow `pont-t-<pid>-<counter>-<role>`: the process id keeps two test
//! binaries apart, the counter keeps the threads of one binary apart. A name
//! left over by a crashed process whose pid has been reused is skipped, not
//! deleted: it is not ours to remove.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Prefix of every namespace and temp dir the test kit makes; `.ci/run` checks that none
/// is left behind.
pub const NAME_PREFIX: &str = "pont-t-";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh `pont-t-<pid>-<counter>` stem, unique within this process.
pub fn next_stem() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{NAME_PREFIX}{}-{n}", std::process::id())
}

/// Where `ip netns add NAME` puts its bind mount.
pub fn netns_path(name: &str) -> PathBuf {
    Path::new("/run/netns").join(name)
}

/// A directory removed, with its contents, on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `<temp_dir>/<stem>-<role>`; fails if it already exists, so a
    /// directory of another run is never adopted.
    pub fn create(stem: &str, role: &str) -> io::Result<TempDir> {
        let path = std::env::temp_dir().join(format!("{stem}-{role}"));
        fs::create_dir(&path)?;
        Ok(TempDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Best effort: drop must not panic, and a leftover temp dir harms no one.
        let _ = fs::remove_dir_all(&self.path);
    }
}
