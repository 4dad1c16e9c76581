//! pont: container networking from Linux primitives.
//!
//! The data flows through the modules in this order:
//! request ([`model`]) → validation ([`model`], [`ipam`]) → plan ([`firewall`])
//! → apply ([`netlink`], [`firewall`]) → commit ([`state`]).
//! [`engine`] drives that flow for networks and endpoints, for any front end;
//! [`container`], [`cgroup`] and [`runtime`] add the container processes the `pont` CLI runs
//! and their resource limits.

pub mod cgroup;
pub mod container;
pub mod engine;
pub mod fault;
pub mod firewall;
pub mod ipam;
pub mod model;
pub mod netlink;
pub mod runtime;
pub mod state;

/// Fill `buf` from the kernel's random source.
pub fn random_bytes(buf: &mut [u8]) {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .expect("/dev/urandom is readable");
}

/// A new 64-hex-digit identifier, like Docker's.
pub fn new_id() -> String {
    let mut bytes = [0u8; 32];
    random_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
