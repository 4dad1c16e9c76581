//! Test sandbox for pont: throwaway network namespaces in which the `pont`
//! binary runs as if on a real host with a LAN and a WAN behind a router.
//!
//! ```text
//!   WAN host 203.0.113.10
//!        │
//!   router 203.0.113.1 | 192.0.2.1   (forwarding, no NAT)
//!        │
//!   LAN switch (bridge lan0) ─┬─ neighbour 192.0.2.3
//!                             └─ sandbox host 192.0.2.2 on uplink0: pont runs here
//! ```
//!
//! Every name is unique (`pont-t-<pid>-<counter>-<role>`), so tests run in
//! parallel; dropping the [`Sandbox`] removes pont's containers, kills every
//! process left in its namespaces, deletes the namespaces and its temp dirs.
//! Nothing is ever created in the machine's own network namespace.
//!
//! UDP probes: [`Sandbox::spawn_udp_echo`], [`Sandbox::udp_request`] and
//! [`udp_client_argv`] (for probing from inside a container).
//!
//! The kit shells out to `ip`, `nft`, `iptables-save`, `ping`, `bash`,
//! `python3`, `timeout` and `kill`; `scripts/install-deps.sh` installs them.
//!
//! ```no_run
//! use std::time::Duration;
//! use testkit::{Ns, Sandbox};
//!
//! testkit::require_root();
//! let sb = Sandbox::new("/path/to/pont"); // env!("CARGO_BIN_EXE_pont") in pont-cli tests
//! assert!(sb.can_ping(Ns::Neighbour, "192.0.2.2", Duration::from_secs(1)));
//! ```

mod cleanup;
mod cmd;
mod names;
mod probe;
mod procs;
mod sandbox;
mod snapshot;
mod spawned;
pub mod topology;
mod udp;

use std::fs;

pub use cmd::COMMAND_TIMEOUT;
pub use names::NAME_PREFIX;
pub use probe::{reported_peers, wait_until};
pub use sandbox::Sandbox;
pub use spawned::Spawned;
pub use topology::Ns;
pub use udp::{udp_client_argv, UDP_ECHO};

/// The system's Python: a `python3` earlier on PATH may be a version manager's
/// shim that costs a few hundred milliseconds per start.
pub fn python() -> &'static str {
    if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// Panics unless the process runs with effective uid 0: the tests that call
/// it create network namespaces, and must fail, not silently pass, without root.
pub fn require_root() {
    if effective_uid() != Some(0) {
        panic!("these tests need root (they create network namespaces)");
    }
}

/// The effective uid, from the second field of `Uid:` in /proc/self/status.
fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn effective_uid_is_readable() {
        assert!(super::effective_uid().is_some());
    }
}
