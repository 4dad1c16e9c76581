//! Indexes beside the container records, so that a command about one
//! container reads a few small files, not every record:
//!
//! ```text
//! ROOT/names/NAME                   the id of the container called NAME
//! ROOT/addresses/NETWORK/...        addresses and MACs of live endpoints (see addresses.rs)
//! ROOT/ports/PROTO,HOST-IP,HOST-PORTS,CONTAINER-PORTS
//!                                   a live container's published port (content: its name)
//! ```
//!
//! Choosing an address reads one small map (addresses.rs), finding a container
//! by name reads one file. Reading every record instead cost 28 µs a record,
//! 5.6 ms per read with 200 containers, and a launch read them three times
//! (docs/benchmarks.md).
//!
//! The indexes are derived data: [`Store::save_container`] and
//! [`Store::remove_container`] keep them in step with the records (index
//! entries added before the record is written, stale ones removed after), so
//! a crash between the two leaves at worst an entry too many, never a live
//! endpoint missing from them. A crash under the lock makes the next command
//! rebuild them from the records ([`Store::rebuild_indexes`]), and `pont
//! system check` compares them with the records. They are written without
//! fsync: after a power loss every container has stopped, and the rebuild
//! after a reboot starts from the records. A state root from before the
//! address maps (with `allocations/` instead) has no `addresses/`, which
//! [`Store::has_indexes`] reports, so it is rebuilt too.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::{files, Lock, StateError, Store};
use crate::model::{
    ContainerRecord, ContainerState, Endpoint, MacAddr, PortMapping, PortRange, Protocol,
};

/// One live endpoint as the allocation index holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Allocation {
    pub ipv4: Ipv4Addr,
    pub mac: MacAddr,
}

/// The endpoints a record holds: those of a container that has not exited.
fn live_endpoints(rec: Option<&ContainerRecord>) -> &[Endpoint] {
    match rec {
        Some(c) if c.state != ContainerState::Exited => &c.endpoints,
        _ => &[],
    }
}

/// The published ports a record holds, likewise.
fn live_ports(rec: Option<&ContainerRecord>) -> &[PortMapping] {
    match rec {
        Some(c) if c.state != ContainerState::Exited => &c.ports,
        _ => &[],
    }
}

/// A mapping as a file name: everything but its owner, who is in the file.
fn port_file_name(m: &PortMapping) -> String {
    let ip = m.host_ip.map_or("*".to_string(), |ip| ip.to_string());
    let range = |r: PortRange| format!("{}-{}", r.start, r.end);
    format!(
        "{},{ip},{},{}",
        m.protocol,
        range(m.host_ports),
        range(m.container_ports)
    )
}

fn parse_port_file_name(name: &str) -> Option<PortMapping> {
    let mut parts = name.split(',');
    let protocol = match parts.next()? {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        _ => return None,
    };
    let host_ip = match parts.next()? {
        "*" => None,
        ip => Some(ip.parse().ok()?),
    };
    let range = |text: &str| -> Option<PortRange> {
        let (start, end) = text.split_once('-')?;
        Some(PortRange {
            start: start.parse().ok()?,
            end: end.parse().ok()?,
        })
    };
    let mapping = PortMapping {
        host_ip,
        host_ports: range(parts.next()?)?,
        container_ports: range(parts.next()?)?,
        protocol,
    };
    parts.next().is_none().then_some(mapping)
}

impl Store {
    fn name_path(&self, name: &str) -> PathBuf {
        self.root.join("names").join(name)
    }

    /// Addresses and MACs held on `network` by live containers.
    pub fn allocations(&self, network: &str) -> Result<Vec<Allocation>, StateError> {
        Ok(self
            .held_on(network)?
            .into_iter()
            .map(|(ipv4, mac)| Allocation { ipv4, mac })
            .collect())
    }

    /// Every published port of a live container (its owner is read only on
    /// demand: [`Store::port_owner`]).
    pub fn published_ports(&self) -> Result<Vec<PortMapping>, StateError> {
        list_names(&self.root.join("ports"), parse_port_file_name)
    }

    /// The name of the container that published `m`.
    pub fn port_owner(&self, m: &PortMapping) -> Result<String, StateError> {
        let path = self.root.join("ports").join(port_file_name(m));
        fs::read_to_string(&path).map_err(StateError::io("read", &path))
    }

    /// How many endpoints live containers hold, on every network.
    pub fn allocation_count(&self) -> Result<usize, StateError> {
        let mut count = 0;
        for net in self.address_networks()? {
            count += self.held_count(&net)?;
        }
        Ok(count)
    }

    /// The id of the container named `name`, if the index has one.
    pub(super) fn id_by_name(&self, name: &str) -> Result<Option<String>, StateError> {
        if crate::model::validate_name("container", name).is_err() {
            return Ok(None); // never a path outside names/
        }
        let path = self.name_path(name);
        match fs::read_to_string(&path) {
            Ok(id) => Ok(Some(id.trim().to_string())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StateError::io("read", &path)(e)),
        }
    }

    /// Index what `new` holds that `old` did not (before `new` is written).
    pub(super) fn index_additions(
        &self,
        old: Option<&ContainerRecord>,
        new: &ContainerRecord,
    ) -> Result<(), StateError> {
        if old.is_none_or(|o| o.name != new.name) {
            self.write_index_file(self.name_path(&new.name), &new.id)?;
        }
        let before = live_endpoints(old);
        for ep in live_endpoints(Some(new))
            .iter()
            .filter(|e| !before.contains(e))
        {
            self.hold_address(ep, &new.id)?;
        }
        let before = live_ports(old);
        for m in live_ports(Some(new)).iter().filter(|m| !before.contains(m)) {
            let path = self.root.join("ports").join(port_file_name(m));
            self.write_index_file(path, &new.name)?;
        }
        Ok(())
    }

    /// Drop the entries `old` had that `new` (None: the record is gone) does not.
    pub(super) fn index_removals(
        &self,
        old: Option<&ContainerRecord>,
        new: Option<&ContainerRecord>,
    ) -> Result<(), StateError> {
        let Some(old) = old else { return Ok(()) };
        if new.is_none_or(|n| n.name != old.name)
            && self.id_by_name(&old.name)? == Some(old.id.clone())
        {
            files::remove_file(&self.name_path(&old.name))?;
        }
        let after = live_endpoints(new);
        // An endpoint that changed keeps what the new one still holds: only an
        // address or MAC that no endpoint of `new` has on that network goes.
        for ep in live_endpoints(Some(old))
            .iter()
            .filter(|e| !after.contains(e))
        {
            let on_net = || after.iter().filter(|a| a.network == ep.network);
            if !on_net().any(|a| a.mac == ep.mac) {
                self.release_mac(ep)?;
            }
            if !on_net().any(|a| a.ipv4 == ep.ipv4) {
                self.release_ipv4(ep)?;
            }
        }
        let after = live_ports(new);
        for m in live_ports(Some(old)).iter().filter(|m| !after.contains(m)) {
            files::remove_file(&self.root.join("ports").join(port_file_name(m)))?;
        }
        Ok(())
    }

    fn write_index_file(&self, path: PathBuf, id: &str) -> Result<(), StateError> {
        let dir = path.parent().expect("index files live in a directory");
        fs::create_dir_all(dir).map_err(StateError::io("create directory", dir))?;
        fs::write(&path, id).map_err(StateError::io("write", &path))
    }

    /// Make the indexes exactly what `containers` (every record) call for.
    pub fn rebuild_indexes(
        &self,
        _lock: &Lock,
        containers: &[ContainerRecord],
    ) -> Result<(), StateError> {
        // `allocations/` is the address index of state roots from before the maps.
        for dir in ["names", "allocations", "addresses", "ports"].map(|d| self.root.join(d)) {
            match fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(StateError::io("remove", &dir)(e))
                }
                _ => {}
            }
        }
        for dir in ["names", "addresses"].map(|d| self.root.join(d)) {
            fs::create_dir_all(&dir).map_err(StateError::io("create directory", &dir))?;
        }
        for c in containers {
            self.index_additions(None, c)?;
        }
        Ok(())
    }

    /// Whether the indexes say what `containers` (every record) call for.
    pub fn indexes_match(&self, containers: &[ContainerRecord]) -> Result<bool, StateError> {
        let mut networks: BTreeSet<String> = self.address_networks()?.into_iter().collect();
        let mut want: BTreeSet<(String, Allocation)> = BTreeSet::new();
        for c in containers {
            if self.id_by_name(&c.name)?.as_deref() != Some(c.id.as_str()) {
                return Ok(false);
            }
            for ep in live_endpoints(Some(c)) {
                networks.insert(ep.network.clone());
                want.insert((ep.network.clone(), allocation(ep)));
            }
        }
        let mut have = BTreeSet::new();
        for net in networks {
            for a in self.allocations(&net)? {
                have.insert((net.clone(), a));
            }
        }
        let names = match fs::read_dir(self.root.join("names")) {
            Ok(entries) => entries.count(),
            Err(_) => 0,
        };
        let mut ports_want = BTreeSet::new();
        for c in containers {
            ports_want.extend(live_ports(Some(c)).iter().cloned());
        }
        let ports_have: BTreeSet<PortMapping> = self.published_ports()?.into_iter().collect();
        Ok(have == want && names == containers.len() && ports_have == ports_want)
    }

    /// Whether this state root has its indexes (one written before them, or
    /// before the address maps, has none).
    pub fn has_indexes(&self) -> bool {
        self.root.join("names").is_dir() && self.root.join("addresses").is_dir()
    }

    /// Whether the host booted since the last full reconciliation noted the
    /// boot ([`Store::note_boot`]): then every container has stopped.
    pub fn booted_since(&self) -> Result<bool, StateError> {
        let noted = fs::read_to_string(self.root.join("boot_id")).unwrap_or_default();
        Ok(noted.trim() != current_boot_id()?)
    }

    pub fn note_boot(&self, _lock: &Lock) -> Result<(), StateError> {
        let path = self.root.join("boot_id");
        fs::write(&path, current_boot_id()?).map_err(StateError::io("write", &path))
    }
}

/// What `parse` makes of the names in `dir` (none if there is no `dir`):
/// an index is read by listing it, never by opening its files.
fn list_names<T>(dir: &Path, parse: impl Fn(&str) -> Option<T>) -> Result<Vec<T>, StateError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(StateError::io("list", dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(StateError::io("list", dir))?;
        out.extend(parse(&entry.file_name().to_string_lossy()));
    }
    Ok(out)
}

fn current_boot_id() -> Result<String, StateError> {
    let path = std::path::Path::new("/proc/sys/kernel/random/boot_id");
    let id = fs::read_to_string(path).map_err(StateError::io("read", path))?;
    Ok(id.trim().to_string())
}

fn allocation(ep: &Endpoint) -> Allocation {
    Allocation {
        ipv4: ep.ipv4,
        mac: ep.mac,
    }
}
