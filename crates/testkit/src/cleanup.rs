//! Removing a sandbox: pont's containers first, then every process left in
//! its namespaces, then the namespaces. Each step is best effort and never
//! panics: a panic in drop while a failing test unwinds would abort the whole
//! test binary, and the next step may still clean what this one could not.

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use crate::cmd;
use crate::names;
use crate::procs;
use crate::sandbox::Sandbox;
use crate::topology::Ns;

/// How long the best-effort `pont ps` and `pont rm -f` may take.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);

impl Sandbox {
    /// The netns inodes of the namespaces that (still) exist.
    fn netns_inodes(&self) -> HashSet<u64> {
        let paths = self.netns_names().map(names::netns_path);
        paths.filter_map(|path| procs::netns_inode(&path)).collect()
    }

    /// Step 1 of cleanup: ask pont to remove its containers (best effort).
    fn remove_containers(&self) {
        let list = self.pont_command(&["ps", "-a", "-q"]);
        let scratch = self.scratch_dir();
        let Ok(out) = cmd::run_captured(list, None, scratch, CLEANUP_TIMEOUT) else {
            return;
        };
        let listing = String::from_utf8_lossy(&out.stdout);
        let ids: Vec<&str> = listing.split_whitespace().collect();
        if !out.status.success() || ids.is_empty() {
            return;
        }
        let mut args = vec!["rm", "-f"];
        args.extend(ids);
        let _ = cmd::run_captured(self.pont_command(&args), None, scratch, CLEANUP_TIMEOUT);
    }

    fn delete_namespaces(&self) {
        for name in self.netns_names().rev() {
            let path = names::netns_path(name);
            for _ in 0..5 {
                if !path.exists() {
                    break;
                }
                let mut del = Command::new("ip");
                del.args(["netns", "del", name]);
                let _ = cmd::run_captured(del, None, self.scratch_dir(), CLEANUP_TIMEOUT);
            }
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if self.pont_bin().exists() && names::netns_path(self.netns_name(Ns::Host)).exists() {
            self.remove_containers();
        }
        procs::kill_sandbox_processes(&self.netns_inodes());
        self.delete_namespaces();
        // The temp dirs go when the fields are dropped, after this.
    }
}
