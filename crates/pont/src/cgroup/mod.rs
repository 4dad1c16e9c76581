//! Control groups: what a container may use (memory, CPU, processes) and what it uses.
//!
//! Every container gets the cgroup `pont/ID` under the root of each hierarchy pont uses,
//! made before its command runs; init is moved into it before it forks the command, and
//! `pont exec` moves its command in before the command starts, so every process of the
//! container is in it. It stays after the container exits (so the OOM killer's count can
//! be read, as Docker's `OOMKilled`) and is removed with the container.
//!
//! ```text
//!   v1 (separate hierarchies)                 v2 (unified)
//!   <memory root>/pont/ID/memory.limit_in_bytes   <root>/pont/ID/memory.max
//!   <cpu root>/pont/ID/cpu.cfs_quota_us           <root>/pont/ID/cpu.max
//!   <cpuacct root>/pont/ID/cpuacct.usage          <root>/pont/ID/cpu.stat
//!   <pids root>/pont/ID/pids.max                  <root>/pont/ID/pids.max
//! ```
//!
//! # Finding the hierarchies
//!
//! The version is chosen at run time: v1 if `/proc/self/cgroup` shows any of pont's
//! controllers (memory, cpu, cpuacct, pids) bound to a v1 hierarchy, else v2. Each
//! hierarchy is taken from `/proc/self/mountinfo` when this mount namespace shows a
//! whole, writable mount of it; otherwise (under `ip netns exec`, whose fresh `/sys` has
//! no cgroup mounts) pont mounts it itself, detached: see the `mount` submodule. A
//! controller that is not there makes only the requests that need it fail
//! ([`CgroupError::MissingController`]); containers without such limits still run.
//!
//! # Why not the `cgroups-rs` crate
//!
//! cgroups-rs 0.5 (kata-containers) was evaluated for this module. It handles both
//! versions, but it locates hierarchies only through paths: v1 from mountinfo and v2 at
//! a fixed `/sys/fs/cgroup`, with no way to mount one or to work relative to a
//! descriptor, so under `ip netns exec` it finds nothing. It also depends on zbus
//! (systemd's D-Bus) unconditionally: about 60 crates more, including an async runtime,
//! and about 90 s of extra CPU time for a clean build on this project's 2-core
//! machines. What pont needs is a handful of files per version, so this module writes
//! them itself: `dir.rs` opens every file relative to a directory descriptor,
//! `v1.rs` and `v2.rs` know the file names and formats.

mod detect;
mod dir;
mod error;
mod group;
mod hierarchies;
mod mount;
mod v1;
mod v2;

#[cfg(test)]
mod kernel_tests;
#[cfg(test)]
mod layout_tests;

pub use error::CgroupError;
pub use group::{Cgroup, Stats};
pub use hierarchies::Cgroups;

/// The directory under each hierarchy's root that holds pont's cgroups.
pub const PARENT: &str = "pont";

/// Where a process is written to join a cgroup (both versions).
const PROCS: &str = "cgroup.procs";

/// The controllers pont uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Controller {
    Memory,
    Cpu,
    /// CPU time accounting (a controller of its own in v1, built into v2).
    CpuAcct,
    Pids,
}

impl Controller {
    pub const ALL: [Controller; 4] = [
        Controller::Memory,
        Controller::Cpu,
        Controller::CpuAcct,
        Controller::Pids,
    ];

    /// The v1 name, as `/proc/self/cgroup` and mount options spell it.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::CpuAcct => "cpuacct",
            Controller::Pids => "pids",
        }
    }
}

impl std::fmt::Display for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        })
    }
}
