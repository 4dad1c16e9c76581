//! pont's records on disk.
//!
//! Layout of the state root (`--root`, env `PONT_ROOT`, default `/var/lib/pont`):
//!
//! ```text
//! ROOT/
//!   lock                        flock(2)ed exclusively by every command that changes state
//!   settings.json               choices that outlive one command (the firewall backend)
//!   networks/NAME.json          one NetworkRecord per network
//!   containers/ID/config.json   one ContainerRecord per container
//!   containers/ID/.config.json.prev  the record it replaced (see files::Previous)
//!   containers/ID/hosts         the container's /etc/hosts (bind-mounted into it)
//!   containers/ID/resolv.conf   the container's /etc/resolv.conf
//!   containers/ID/log           stdout and stderr of a detached container
//!   intents/NETWORK.json        a network being created: its planned record, written
//!                               before the bridge is made and removed once the network
//!                               is complete, so a crash in between is rolled back
//!
//! The lock file also says whether its last holder died holding it (see [`Lock`]).
//!
//!   names/, addresses/, ports/  indexes derived from the container records (see index.rs)
//! ```
//!
//! Every record is written to a temporary file in the same directory and
//! renamed over the old one, so a reader or a crashed process sees either the
//! old record or the new one, never a torn one. Settings and networks (the
//! configuration) are fsynced too and survive a power loss. Container records
//! are not: they describe processes and kernel objects that a power loss ends
//! anyway, an fsync costs 1-20 ms on a busy disk and a launch writes its record
//! twice, and after the reboot pont marks every container exited.

mod addresses;
mod files;
mod index;
mod lock;
mod validate;

pub use addresses::AddressMap;
pub use index::Allocation;
pub use lock::Lock;

use files::{Durability, Previous};

use std::io;
use std::path::{Path, PathBuf};

use crate::model::{ContainerRecord, NetworkRecord};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("corrupt state file {path}: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("invalid state file {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

impl StateError {
    pub(crate) fn io<'a>(
        op: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(io::Error) -> StateError + 'a {
        move |source| StateError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

pub struct Store {
    root: PathBuf,
}

/// Choices remembered across commands.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    pub firewall: Option<crate::firewall::Backend>,
}

impl Store {
    /// Open (creating if needed) the state root.
    pub fn open(root: &Path) -> Result<Store, StateError> {
        for dir in [
            root.to_path_buf(),
            root.join("networks"),
            root.join("containers"),
            root.join("intents"),
        ] {
            std::fs::create_dir_all(&dir).map_err(StateError::io("create directory", &dir))?;
        }
        Ok(Store {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Take the exclusive lock; blocks while another pont process holds it.
    pub fn lock(&self) -> Result<Lock, StateError> {
        Lock::acquire(&self.root.join("lock"))
    }

    pub fn settings(&self) -> Result<Settings, StateError> {
        Ok(files::load_optional(&self.root.join("settings.json"))?.unwrap_or_default())
    }

    pub fn save_settings(&self, _lock: &Lock, settings: &Settings) -> Result<(), StateError> {
        files::write_atomic(
            &self.root.join("settings.json"),
            settings,
            Durability::Disk,
            Previous::Drop,
        )
    }

    fn network_path(&self, name: &str) -> PathBuf {
        self.root.join("networks").join(format!("{name}.json"))
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }

    pub fn networks(&self) -> Result<Vec<NetworkRecord>, StateError> {
        let mut all: Vec<NetworkRecord> = files::load_all(
            &self.root.join("networks"),
            |entry| {
                entry
                    .extension()
                    .is_some_and(|e| e == "json")
                    .then(|| entry.to_path_buf())
            },
            validate::network,
        )?;
        all.sort_by_key(|n| (n.created, n.name.clone()));
        Ok(all)
    }

    pub fn network(&self, name: &str) -> Result<Option<NetworkRecord>, StateError> {
        if crate::model::validate_name("network", name).is_err() {
            return Ok(None); // never a path outside networks/
        }
        let path = self.network_path(name);
        let net = files::load_optional(&path)?;
        net.map(|n| validate::network(&path, n)).transpose()
    }

    pub fn save_network(&self, _lock: &Lock, net: &NetworkRecord) -> Result<(), StateError> {
        files::write_atomic(
            &self.network_path(&net.name),
            net,
            Durability::Disk,
            Previous::Drop,
        )
    }

    pub fn remove_network(&self, _lock: &Lock, name: &str) -> Result<(), StateError> {
        files::remove_file(&self.network_path(name))
    }

    /// Every container record. A directory without `config.json` is skipped: it
    /// is what an interrupted `rm` or first save leaves (see
    /// [`Store::loose_container_dirs`]); any record that exists but cannot be
    /// read or makes no sense is an error naming the file, never skipped.
    pub fn containers(&self) -> Result<Vec<ContainerRecord>, StateError> {
        let mut all: Vec<ContainerRecord> = files::load_all(
            &self.root.join("containers"),
            |entry| Some(entry.join("config.json")),
            validate::container,
        )?;
        all.sort_by_key(|c| (c.created, c.id.clone()));
        Ok(all)
    }

    /// Container directories with no record in them: left by a command killed
    /// between making the directory and writing the record, or while removing it.
    pub fn loose_container_dirs(&self) -> Result<Vec<PathBuf>, StateError> {
        let dir = self.root.join("containers");
        let mut loose = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(StateError::io("list", &dir))? {
            let path = entry.map_err(StateError::io("list", &dir))?.path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if !hidden && path.is_dir() && !path.join("config.json").exists() {
                loose.push(path);
            }
        }
        Ok(loose)
    }

    /// Remove a directory listed by [`Store::loose_container_dirs`].
    pub fn remove_loose_dir(&self, _lock: &Lock, path: &Path) -> Result<(), StateError> {
        match std::fs::remove_dir_all(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StateError::Io {
                op: "remove",
                path: path.to_path_buf(),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    fn intent_path(&self, name: &str) -> PathBuf {
        self.root.join("intents").join(format!("{name}.json"))
    }

    /// Record that network `net` is about to be made (before its bridge exists).
    pub fn save_network_intent(&self, _lock: &Lock, net: &NetworkRecord) -> Result<(), StateError> {
        files::write_atomic(
            &self.intent_path(&net.name),
            net,
            Durability::Disk,
            Previous::Drop,
        )
    }

    /// Networks whose creation began and did not finish.
    pub fn network_intents(&self) -> Result<Vec<NetworkRecord>, StateError> {
        files::load_all(
            &self.root.join("intents"),
            |entry| {
                entry
                    .extension()
                    .is_some_and(|e| e == "json")
                    .then(|| entry.to_path_buf())
            },
            validate::network,
        )
    }

    pub fn clear_network_intent(&self, _lock: &Lock, name: &str) -> Result<(), StateError> {
        files::remove_file(&self.intent_path(name))
    }

    /// A container by exact name, exact id, or unambiguous id prefix. Reads
    /// the one record (and the name index), never all of them.
    pub fn find_container(&self, key: &str) -> Result<Option<ContainerRecord>, StateError> {
        if let Some(id) = self.id_by_name(key)? {
            if let Some(c) = self.container(&id)?.filter(|c| c.name == key) {
                return Ok(Some(c));
            }
        }
        if let Some(c) = self.container(key)? {
            return Ok(Some(c));
        }
        let mut by_prefix = self
            .container_ids()?
            .into_iter()
            .filter(|id| !key.is_empty() && id.starts_with(key));
        match (by_prefix.next(), by_prefix.next()) {
            (Some(id), None) => self.container(&id),
            _ => Ok(None),
        }
    }

    /// The record of container `id`, if there is one.
    pub fn container(&self, id: &str) -> Result<Option<ContainerRecord>, StateError> {
        if !is_container_id(id) {
            return Ok(None); // never a path outside containers/
        }
        let path = self.container_dir(id).join("config.json");
        let rec = files::load_optional(&path)?;
        rec.map(|c| validate::container(&path, c)).transpose()
    }

    /// Whether a container record is called `name` (an exited one included).
    pub fn name_taken(&self, name: &str) -> Result<bool, StateError> {
        match self.id_by_name(name)? {
            Some(id) => Ok(self.container(&id)?.is_some_and(|c| c.name == name)),
            None => Ok(false),
        }
    }

    /// The ids of every container record (a directory listing: no record is read).
    pub fn container_ids(&self) -> Result<Vec<String>, StateError> {
        let dir = self.root.join("containers");
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(StateError::io("list", &dir))? {
            let name = entry.map_err(StateError::io("list", &dir))?.file_name();
            let name = name.to_string_lossy();
            if is_container_id(&name) {
                ids.push(name.into_owned());
            }
        }
        Ok(ids)
    }

    /// Write `c`'s record, keeping the indexes in step (see index.rs).
    pub fn save_container(&self, _lock: &Lock, c: &ContainerRecord) -> Result<(), StateError> {
        let old = self.container(&c.id)?;
        self.index_additions(old.as_ref(), c)?;
        let dir = self.container_dir(&c.id);
        std::fs::create_dir_all(&dir).map_err(StateError::io("create directory", &dir))?;
        files::write_atomic(
            &dir.join("config.json"),
            c,
            Durability::Kernel,
            Previous::Keep,
        )?;
        self.index_removals(old.as_ref(), Some(c))
    }

    /// Write one of a container's generated files (hosts, resolv.conf).
    pub fn write_container_file(
        &self,
        _lock: &Lock,
        id: &str,
        name: &str,
        contents: &str,
    ) -> Result<PathBuf, StateError> {
        let path = self.container_dir(id).join(name);
        files::write_bytes_atomic(
            &path,
            contents.as_bytes(),
            Durability::Kernel,
            Previous::Drop,
        )?;
        Ok(path)
    }

    pub fn remove_container(&self, _lock: &Lock, id: &str) -> Result<(), StateError> {
        let old = self.container(id)?;
        let dir = self.container_dir(id);
        // Remove the record first: a crash half-way then leaves only loose files,
        // never a record that points at deleted ones.
        files::remove_file(&dir.join("config.json"))?;
        self.index_removals(old.as_ref(), None)?;
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StateError::Io {
                op: "remove",
                path: dir,
                source: e,
            }),
            _ => Ok(()),
        }
    }
}

/// Container ids are 64 hex digits: anything else names no record.
fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests;

/// Parse and check a container record as the loader does: for tools and
/// fuzzing. `path` only names the record in errors (and its directory must be
/// the record's id).
pub fn decode_container(path: &Path, bytes: &[u8]) -> Result<ContainerRecord, StateError> {
    validate::container(path, files::parse(path, bytes)?)
}

/// Parse and check a network record as the loader does (see [`decode_container`]).
pub fn decode_network(path: &Path, bytes: &[u8]) -> Result<NetworkRecord, StateError> {
    validate::network(path, files::parse(path, bytes)?)
}
