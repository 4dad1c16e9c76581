//! Checks on records read from disk. A record may have been edited by hand,
//! truncated by a full disk or written by another version: whatever it holds,
//! the rest of pont must be able to rely on the invariants that creating it
//! would have enforced (ids that slice into interface names, names that
//! appear quoted in firewall rules, ranges that are not reversed). A record
//! that breaks one is refused with an error naming the file and the field.

use std::path::Path;

use super::StateError;
use crate::engine::is_pont_veth_name;
use crate::model::{validate_mtu, validate_name, ContainerRecord, NetMode, NetworkRecord};
use crate::model::{PortMapping, PortRange};

/// IFNAMSIZ - 1 (include/uapi/linux/if.h).
const MAX_IFNAME: usize = 15;
/// HOST_NAME_MAX (sethostname(2)).
const MAX_HOSTNAME: usize = 64;

pub fn container(path: &Path, rec: ContainerRecord) -> Result<ContainerRecord, StateError> {
    check_container(path, &rec).map_err(|reason| StateError::Invalid {
        path: path.to_path_buf(),
        reason,
    })?;
    Ok(rec)
}

pub fn network(path: &Path, net: NetworkRecord) -> Result<NetworkRecord, StateError> {
    check_network(path, &net).map_err(|reason| StateError::Invalid {
        path: path.to_path_buf(),
        reason,
    })?;
    Ok(net)
}

fn check_container(path: &Path, rec: &ContainerRecord) -> Result<(), String> {
    check_id(&rec.id)?;
    let dir = path.parent().and_then(Path::file_name);
    if dir.is_some_and(|d| d != rec.id.as_str()) {
        return Err(format!("id {} does not match its directory", rec.id));
    }
    validate_name("container", &rec.name).map_err(|e| e.to_string())?;
    if rec.hostname.is_empty() || rec.hostname.len() > MAX_HOSTNAME || has_nul(&rec.hostname) {
        return Err(format!("invalid hostname {:?}", rec.hostname));
    }
    if rec.argv.is_empty() || rec.argv.iter().any(|a| has_nul(a)) {
        return Err("the command is empty or holds a NUL byte".into());
    }
    if rec
        .env
        .iter()
        .any(|(k, v)| k.is_empty() || k.contains('=') || has_nul(k) || has_nul(v))
    {
        return Err("an environment variable is malformed".into());
    }
    if rec.pid.is_some_and(|p| p <= 0) || rec.monitor_pid.is_some_and(|p| p <= 0) {
        return Err("a process id is not positive".into());
    }
    if let NetMode::Bridge(net) = &rec.net_mode {
        validate_name("network", net).map_err(|e| e.to_string())?;
    }
    for ep in &rec.endpoints {
        validate_name("network", &ep.network).map_err(|e| e.to_string())?;
        check_ifname(&ep.interface)?;
        if !is_pont_veth_name(&ep.host_interface) {
            return Err(format!(
                "host interface {:?} is not named as pont names veths",
                ep.host_interface
            ));
        }
        if ep.prefix_len > 32 {
            return Err(format!("prefix length {} is above 32", ep.prefix_len));
        }
    }
    rec.ports.iter().try_for_each(check_mapping)
}

fn check_network(path: &Path, net: &NetworkRecord) -> Result<(), String> {
    validate_name("network", &net.name).map_err(|e| e.to_string())?;
    if path.file_stem().is_some_and(|s| s != net.name.as_str()) {
        return Err(format!("name {} does not match the file name", net.name));
    }
    check_id(&net.id)?;
    check_ifname(&net.bridge)?;
    validate_mtu(net.mtu).map_err(|e| e.to_string())?;
    if !net.subnet.contains(net.gateway) {
        return Err(format!(
            "gateway {} is outside subnet {}",
            net.gateway, net.subnet
        ));
    }
    if net.ip_range.is_some_and(|r| !net.subnet.covers(&r)) {
        return Err(format!("ip range is outside subnet {}", net.subnet));
    }
    Ok(())
}

/// 64 lowercase hex digits, as [`crate::new_id`] makes them.
fn check_id(id: &str) -> Result<(), String> {
    if id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(format!("id {id:?} is not 64 hex digits"))
    }
}

/// What the kernel accepts as an interface name and what is safe to quote in
/// a firewall rule: 1-15 bytes of letters, digits, '-', '_' and '.'.
fn check_ifname(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_IFNAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(format!("invalid interface name {name:?}"))
    }
}

fn check_mapping(m: &PortMapping) -> Result<(), String> {
    let ordered = |r: &PortRange| r.start >= 1 && r.start <= r.end;
    if !ordered(&m.host_ports) || !ordered(&m.container_ports) {
        return Err(format!(
            "port range {}:{} is empty or reversed",
            m.host_ports.start, m.container_ports.start
        ));
    }
    if m.host_ports.count() != m.container_ports.count() {
        return Err(format!(
            "host ports {} and container ports {} differ in length",
            m.host_ports, m.container_ports
        ));
    }
    Ok(())
}

fn has_nul(s: &str) -> bool {
    s.contains('\0')
}
