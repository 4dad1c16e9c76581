//! The address index: which IPv4 addresses and MACs live endpoints hold, kept
//! so that choosing an address reads one small file, however many containers
//! there are.
//!
//! ```text
//! ROOT/addresses/NETWORK/SUBNET-PREFIX  the address map of NETWORK's subnet (e.g.
//!                                       10.88.0.0-16): bit i (byte i / 8, bit i % 8,
//!                                       least significant first) is set while a live
//!                                       endpoint holds address i of the subnet; the
//!                                       file ends after the last byte ever set
//! ROOT/addresses/NETWORK/MAC/IPV4       a live endpoint at IPV4 whose MAC is not the
//!                                       one derived from its address (--mac, or a
//!                                       clash); content: its container's id
//! ```
//!
//! A map is changed one byte at a time, in place (`pwrite`), so no reader ever
//! sees a torn one and no file is made or deleted per endpoint. An endpoint's
//! MAC is nearly always the one derived from its address
//! ([`MacAddr::derived_from`]), which the map implies; only the others get an
//! entry. Listing a directory of one entry per endpoint instead cost 1.3 ms a
//! launch at 1000 containers, and grew with them.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::net::Ipv4Addr;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::{files, StateError, Store};
use crate::ipam::AddressesInUse;
use crate::model::{Endpoint, Ipv4Net, MacAddr};

/// The address map of one subnet, as read from its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressMap {
    subnet: Ipv4Net,
    bits: Vec<u8>,
}

impl AddressMap {
    /// Position of `ip` in the map, if it is in the subnet.
    fn offset(&self, ip: Ipv4Addr) -> Option<u64> {
        self.subnet
            .contains(ip)
            .then(|| u64::from(u32::from(ip) - u32::from(self.subnet.network())))
    }

    /// Every address the map holds, lowest first.
    pub fn held(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        let base = u32::from(self.subnet.network());
        self.bits.iter().enumerate().flat_map(move |(byte, bits)| {
            (0..8)
                .filter(move |bit| bits & (1 << bit) != 0)
                .map(move |bit| Ipv4Addr::from(base + (byte as u32) * 8 + bit))
        })
    }
}

impl AddressesInUse for AddressMap {
    fn contains(&self, ip: Ipv4Addr) -> bool {
        self.offset(ip).is_some_and(|off| {
            let byte = self.bits.get((off / 8) as usize).copied().unwrap_or(0);
            byte & (1 << (off % 8)) != 0
        })
    }

    /// Whole bytes of held addresses are skipped at once.
    fn first_free(&self, from: Ipv4Addr) -> Option<Ipv4Addr> {
        let Some(start) = self.offset(from) else {
            return Some(from); // outside the subnet: this map holds nothing there
        };
        let base = u64::from(u32::from(self.subnet.network()));
        let mut off = start;
        while let Some(&byte) = self.bits.get((off / 8) as usize) {
            if byte == 0xff && off % 8 == 0 {
                off += 8;
            } else if byte & (1 << (off % 8)) != 0 {
                off += 1;
            } else {
                break;
            }
        }
        u32::try_from(base + off).ok().map(Ipv4Addr::from)
    }
}

/// The file name of `subnet`'s map.
fn map_file_name(subnet: Ipv4Net) -> String {
    format!("{}-{}", subnet.network(), subnet.prefix_len())
}

fn parse_map_file_name(name: &str) -> Option<Ipv4Net> {
    let (addr, len) = name.split_once('-')?;
    let (addr, len): (Ipv4Addr, u8) = (addr.parse().ok()?, len.parse().ok()?);
    let subnet = (len <= 32).then(|| Ipv4Net::containing(addr, len))?;
    (subnet.network() == addr).then_some(subnet)
}

/// The subnet an endpoint's address is in.
fn subnet_of(ep: &Endpoint) -> Ipv4Net {
    Ipv4Net::containing(ep.ipv4, ep.prefix_len)
}

/// Whether `ep` needs a MAC entry: its MAC is not the one its address implies.
fn has_own_mac(ep: &Endpoint) -> bool {
    ep.mac != MacAddr::derived_from(ep.ipv4)
}

impl Store {
    fn addresses_dir(&self, network: &str) -> PathBuf {
        self.root.join("addresses").join(network)
    }

    /// The address map of `network`'s `subnet` (empty if nothing was ever held).
    pub fn address_map(&self, network: &str, subnet: Ipv4Net) -> Result<AddressMap, StateError> {
        let path = self.addresses_dir(network).join(map_file_name(subnet));
        let bits = match fs::read(&path) {
            Ok(bits) => bits,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(StateError::io("read", &path)(e)),
        };
        Ok(AddressMap { subnet, bits })
    }

    /// Whether a live endpoint on `network` has `mac`; `held` is the network's map.
    /// A MAC derived from a held address counts as taken even if that endpoint
    /// has another one: the answer errs only towards picking a different MAC.
    pub fn mac_taken(
        &self,
        network: &str,
        mac: MacAddr,
        held: &AddressMap,
    ) -> Result<bool, StateError> {
        if mac.derived_ipv4().is_some_and(|ip| held.contains(ip)) {
            return Ok(true);
        }
        // An empty directory (a release cut short) also counts: erring the same way.
        let path = self.addresses_dir(network).join(mac.to_string());
        match fs::symlink_metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StateError::io("read", &path)(e)),
        }
    }

    /// Record that `ep` (of container `id`) holds its address and MAC.
    pub(super) fn hold_address(&self, ep: &Endpoint, id: &str) -> Result<(), StateError> {
        let dir = self.addresses_dir(&ep.network);
        fs::create_dir_all(&dir).map_err(StateError::io("create directory", &dir))?;
        set_bit(
            &dir.join(map_file_name(subnet_of(ep))),
            subnet_of(ep),
            ep.ipv4,
            true,
        )?;
        if has_own_mac(ep) {
            // A directory per MAC: two endpoints given the same --mac each have a file.
            let mac_dir = dir.join(ep.mac.to_string());
            fs::create_dir_all(&mac_dir).map_err(StateError::io("create directory", &mac_dir))?;
            let path = mac_dir.join(ep.ipv4.to_string());
            fs::write(&path, id).map_err(StateError::io("write", &path))?;
        }
        Ok(())
    }

    /// Undo [`Store::hold_address`] for `ep`'s MAC; already released is fine.
    pub(super) fn release_mac(&self, ep: &Endpoint) -> Result<(), StateError> {
        if !has_own_mac(ep) {
            return Ok(()); // the map's bit stood for it
        }
        let mac_dir = self.addresses_dir(&ep.network).join(ep.mac.to_string());
        files::remove_file(&mac_dir.join(ep.ipv4.to_string()))?;
        match fs::remove_dir(&mac_dir) {
            // Another endpoint still has this MAC, or someone removed it already.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY | libc::ENOENT)) => Ok(()),
            result => result.map_err(StateError::io("remove", &mac_dir)),
        }
    }

    /// Undo [`Store::hold_address`] for `ep`'s address; already released is fine.
    pub(super) fn release_ipv4(&self, ep: &Endpoint) -> Result<(), StateError> {
        let map = self
            .addresses_dir(&ep.network)
            .join(map_file_name(subnet_of(ep)));
        match set_bit(&map, subnet_of(ep), ep.ipv4, false) {
            Err(StateError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Ok(())
            }
            result => result,
        }
    }

    /// Every (address, MAC) held on `network`, from its maps and MAC entries.
    pub(super) fn held_on(&self, network: &str) -> Result<Vec<(Ipv4Addr, MacAddr)>, StateError> {
        let dir = self.addresses_dir(network);
        let mut own_macs = Vec::new();
        let mut held = Vec::new();
        for name in list(&dir)? {
            if let Some(subnet) = parse_map_file_name(&name) {
                held.extend(self.address_map(network, subnet)?.held());
            } else if let Ok(mac) = name.parse::<MacAddr>() {
                for ip in list(&dir.join(&name))? {
                    let path = dir.join(&name).join(&ip);
                    let ip = ip.parse().map_err(|_| StateError::Invalid {
                        path,
                        reason: "a MAC entry must be named by the endpoint's IPv4 address".into(),
                    })?;
                    own_macs.push((ip, mac));
                }
            }
        }
        // A MAC entry whose address no map holds is an inconsistency for
        // `indexes_match` to see, so it is listed, not hidden.
        let stray: Vec<(Ipv4Addr, MacAddr)> = own_macs
            .iter()
            .copied()
            .filter(|(ip, _)| !held.contains(ip))
            .collect();
        let mut out: Vec<(Ipv4Addr, MacAddr)> = held
            .into_iter()
            .map(|ip| {
                let own = own_macs.iter().find(|(i, _)| *i == ip).map(|(_, m)| *m);
                (ip, own.unwrap_or_else(|| MacAddr::derived_from(ip)))
            })
            .collect();
        out.extend(stray);
        Ok(out)
    }

    /// How many addresses `network`'s maps hold (no MAC entry is read).
    pub(super) fn held_count(&self, network: &str) -> Result<usize, StateError> {
        let mut count = 0;
        for name in list(&self.addresses_dir(network))? {
            if let Some(subnet) = parse_map_file_name(&name) {
                let map = self.address_map(network, subnet)?;
                count += map
                    .bits
                    .iter()
                    .map(|b| b.count_ones() as usize)
                    .sum::<usize>();
            }
        }
        Ok(count)
    }

    /// Names of the networks with an address directory.
    pub(super) fn address_networks(&self) -> Result<Vec<String>, StateError> {
        list(&self.root.join("addresses"))
    }
}

/// Set or clear the bit of `ip` in the map at `path` (created if missing when setting).
fn set_bit(path: &Path, subnet: Ipv4Net, ip: Ipv4Addr, on: bool) -> Result<(), StateError> {
    let off = u64::from(u32::from(ip) - u32::from(subnet.network()));
    let (at, mask) = (off / 8, 1u8 << (off % 8));
    let file: File = OpenOptions::new()
        .read(true)
        .write(true)
        .create(on)
        .truncate(false)
        .open(path)
        .map_err(StateError::io("open", path))?;
    let mut byte = [0u8];
    let got = file
        .read_at(&mut byte, at)
        .map_err(StateError::io("read", path))?;
    let old = if got == 1 { byte[0] } else { 0 };
    let new = if on { old | mask } else { old & !mask };
    if new == old {
        return Ok(());
    }
    // One byte: a reader sees it old or new, never half-written.
    file.write_all_at(&[new], at)
        .map_err(StateError::io("write", path))
}

/// Names in `dir` (none if there is no `dir`), temporaries left out.
fn list(dir: &Path) -> Result<Vec<String>, StateError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(StateError::io("list", dir)(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let name = entry.map_err(StateError::io("list", dir))?.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with('.') {
            names.push(name.into_owned());
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(subnet: &str, bits: &[u8]) -> AddressMap {
        AddressMap {
            subnet: subnet.parse().unwrap(),
            bits: bits.to_vec(),
        }
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn bits_are_offsets_into_the_subnet() {
        let m = map("10.1.0.0/16", &[0b0000_0101, 0, 0b1000_0000]);
        assert!(m.contains(ip("10.1.0.0")) && m.contains(ip("10.1.0.2")));
        assert!(!m.contains(ip("10.1.0.1")) && m.contains(ip("10.1.0.23")));
        assert!(
            !m.contains(ip("10.1.9.9")),
            "past the end of the file: free"
        );
        assert!(!m.contains(ip("10.2.0.0")), "outside the subnet");
        let held: Vec<Ipv4Addr> = m.held().collect();
        assert_eq!(held, [ip("10.1.0.0"), ip("10.1.0.2"), ip("10.1.0.23")]);
    }

    #[test]
    fn first_free_skips_held_runs() {
        let m = map("10.1.0.0/16", &[0xff, 0xff, 0b0000_0111]);
        assert_eq!(m.first_free(ip("10.1.0.0")), Some(ip("10.1.0.19")));
        assert_eq!(m.first_free(ip("10.1.0.3")), Some(ip("10.1.0.19")));
        assert_eq!(m.first_free(ip("10.1.0.20")), Some(ip("10.1.0.20")));
        assert_eq!(
            map("10.1.0.0/16", &[]).first_free(ip("10.1.0.5")),
            Some(ip("10.1.0.5"))
        );
    }

    #[test]
    fn map_file_names_round_trip() {
        let subnet: Ipv4Net = "10.88.0.0/16".parse().unwrap();
        assert_eq!(map_file_name(subnet), "10.88.0.0-16");
        assert_eq!(parse_map_file_name("10.88.0.0-16"), Some(subnet));
        assert_eq!(
            parse_map_file_name("10.88.0.1-16"),
            None,
            "not a network address"
        );
        assert_eq!(parse_map_file_name("02:42:0a:58:00:05"), None);
    }
}
