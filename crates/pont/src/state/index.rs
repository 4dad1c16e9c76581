//! Indexes beside the container records, so that a command about one
//! container reads a few small files, not every record:
//!
//! ```text
//! ROOT/names/NAME                   the id of the container called NAME
//! ROOT/addresses/NETWORK/...        addresses and MACs of live endpoints (see addresses.rs)
//! ROOT/ports/PROTO/BLOCK/PROTO,HOST-IP,HOST-PORTS,CONTAINER-PORTS
//!                                   a live container's published port (content: its name),
//!                                   in every block of 256 host ports its range spans
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
//! [`Store::has_indexes`] reports, so it is rebuilt too; so is one from before
//! the port blocks (mappings directly in `ports/`, no `ports/tcp/` directory).
//!
//! The port index is bucketed by host-port block (`BLOCK` = port / 256) so
//! that the conflict check of a new mapping lists only the blocks its host
//! range spans: listing one flat directory of every published mapping cost
//! 8 ms instead of 2 with 10000 of them. A range is entered in every block it spans (a
//! 10000-port range: 40 files), so a query of one block sees every mapping
//! that reaches into it.

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

/// Host ports per directory of the port index.
const PORT_BLOCK: u16 = 256;

/// The protocol directories of the port index, made by every rebuild: their
/// presence marks the bucketed layout.
const PORT_PROTOCOLS: [Protocol; 3] = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp];

/// One file of the port index: its protocol directory, its block, its mapping.
type PortIndexEntry = (Protocol, u16, PortMapping);

/// The blocks a host-port range spans.
fn port_blocks(r: PortRange) -> std::ops::RangeInclusive<u16> {
    r.start / PORT_BLOCK..=r.end / PORT_BLOCK
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

    fn port_block_dir(&self, protocol: Protocol, block: u16) -> PathBuf {
        self.root
            .join("ports")
            .join(protocol.as_str())
            .join(block.to_string())
    }

    /// The index files of `m`: one in each block its host range spans.
    fn port_paths(&self, m: &PortMapping) -> impl Iterator<Item = PathBuf> + '_ {
        let (name, protocol) = (port_file_name(m), m.protocol);
        port_blocks(m.host_ports).map(move |b| self.port_block_dir(protocol, b).join(&name))
    }

    /// Every published port of a live container (its owner is read only on
    /// demand: [`Store::port_owner`]). Lists every block: for picking a free
    /// host port and for checks, not for the conflict test of a given port
    /// ([`Store::published_ports_near`]).
    pub fn published_ports(&self) -> Result<Vec<PortMapping>, StateError> {
        let mut all = BTreeSet::new();
        for (_, _, m) in self.port_index_entries()? {
            all.insert(m);
        }
        Ok(all.into_iter().collect())
    }

    /// The published ports of `protocol` whose host range overlaps `host_ports`:
    /// only the blocks that range spans are listed.
    pub fn published_ports_near(
        &self,
        protocol: Protocol,
        host_ports: PortRange,
    ) -> Result<Vec<PortMapping>, StateError> {
        let mut near = BTreeSet::new();
        for block in port_blocks(host_ports) {
            let dir = self.port_block_dir(protocol, block);
            near.extend(
                list_names(&dir, parse_port_file_name)?
                    .into_iter()
                    .filter(|m| m.protocol == protocol && m.host_ports.overlaps(&host_ports)),
            );
        }
        Ok(near.into_iter().collect())
    }

    /// Every file of the port index as (protocol directory, block, mapping).
    fn port_index_entries(&self) -> Result<Vec<PortIndexEntry>, StateError> {
        let mut out = Vec::new();
        for protocol in PORT_PROTOCOLS {
            let dir = self.root.join("ports").join(protocol.as_str());
            for block in list_names(&dir, |n| n.parse::<u16>().ok())? {
                let in_block = list_names(&self.port_block_dir(protocol, block), |n| {
                    parse_port_file_name(n).map(|m| (protocol, block, m))
                })?;
                out.extend(in_block);
            }
        }
        Ok(out)
    }

    /// The name of the container that published `m`.
    pub fn port_owner(&self, m: &PortMapping) -> Result<String, StateError> {
        let path = (self.port_paths(m).next()).expect("a range spans at least one block");
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
            for path in self.port_paths(m) {
                self.write_index_file(path, &new.name)?;
            }
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
            for path in self.port_paths(m) {
                files::remove_file(&path)?;
            }
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
        let ports = self.root.join("ports");
        let protocol_dirs = PORT_PROTOCOLS.map(|p| ports.join(p.as_str()));
        for dir in ["names", "addresses"].map(|d| self.root.join(d)) {
            fs::create_dir_all(&dir).map_err(StateError::io("create directory", &dir))?;
        }
        for dir in protocol_dirs {
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
        // Block by block: a mapping missing from one block it spans differs too.
        let mut ports_want = BTreeSet::new();
        for c in containers {
            for m in live_ports(Some(c)) {
                ports_want.extend(port_blocks(m.host_ports).map(|b| (m.protocol, b, m.clone())));
            }
        }
        let ports_have: BTreeSet<PortIndexEntry> = self.port_index_entries()?.into_iter().collect();
        Ok(have == want && names == containers.len() && ports_have == ports_want)
    }

    /// Whether this state root has its indexes (one written before them, or
    /// before the address maps or the port blocks, has none).
    pub fn has_indexes(&self) -> bool {
        self.root.join("names").is_dir()
            && self.root.join("addresses").is_dir()
            && self.root.join("ports/tcp").is_dir()
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
