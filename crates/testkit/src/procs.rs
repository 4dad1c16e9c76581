//! Finding and killing the processes a sandbox left running.
//!
//! A process belongs to a sandbox when its network namespace is one of the
//! sandbox's, or when it descends from such a process (a container's init
//! sits in a namespace of its own, but its parent, pont's monitor, runs in
//! the sandbox host). Everything here reads `/proc`; nothing is matched by
//! name, so no process of anyone else can be hit.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

/// The inode of a named network namespace, as `/proc/PID/ns/net` shows it.
pub fn netns_inode(netns_file: &Path) -> Option<u64> {
    fs::metadata(netns_file).ok().map(|m| m.ino())
}

struct ProcEntry {
    pid: u32,
    ppid: u32,
    netns: Option<u64>,
}

fn scan_proc() -> Vec<ProcEntry> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        let ppid = read_ppid(pid)?;
        Some(ProcEntry {
            pid,
            ppid,
            netns: read_netns(pid),
        })
    })
    .collect()
}

fn read_ppid(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself hold spaces or
    // parentheses, so fields are counted from the last ')'.
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(1)?.parse().ok()
}

fn read_netns(pid: u32) -> Option<u64> {
    // "net:[4026532297]"; unreadable for zombies, which hold no namespace.
    let link = fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
    let text = link.to_str()?;
    text.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

/// Processes in one of `netns_inodes`, and all their descendants.
pub fn sandbox_pids(netns_inodes: &HashSet<u64>) -> Vec<u32> {
    let procs = scan_proc();
    let me = std::process::id();
    let mut members: HashSet<u32> = procs
        .iter()
        .filter(|p| p.netns.is_some_and(|ino| netns_inodes.contains(&ino)))
        .map(|p| p.pid)
        .collect();
    // Grow the set by children until it stops changing (a tree is shallow).
    loop {
        let before = members.len();
        for p in &procs {
            if members.contains(&p.ppid) {
                members.insert(p.pid);
            }
        }
        if members.len() == before {
            break;
        }
    }
    members.remove(&me);
    let mut pids: Vec<u32> = members.into_iter().collect();
    pids.sort_unstable();
    pids
}

/// SIGKILLs every process of the sandbox until none is left (or gives up
/// after a few rounds). Returns the pids that were still there at the end.
pub fn kill_sandbox_processes(netns_inodes: &HashSet<u64>) -> Vec<u32> {
    for _ in 0..50 {
        let pids = sandbox_pids(netns_inodes);
        if pids.is_empty() {
            return pids;
        }
        kill_pids(&pids);
        thread::sleep(Duration::from_millis(10));
    }
    sandbox_pids(netns_inodes)
}

fn kill_pids(pids: &[u32]) {
    // std has no kill(2) for processes that are not our children; procps'
    // kill(1) sends the signal by pid. Errors (already gone) do not matter:
    // the caller scans again.
    let _ = Command::new("kill")
        .arg("-KILL")
        .args(pids.iter().map(u32::to_string))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
