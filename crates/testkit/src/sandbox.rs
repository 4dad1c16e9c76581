//! The sandbox: named namespaces, a state root and a runtime dir for pont,
//! and the cleanup that removes them all.

use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::cmd::{self, CmdError, COMMAND_TIMEOUT};
use crate::names::{self, TempDir};
use crate::spawned::Spawned;
use crate::topology::{self, Batch, Names, Ns};

static SPAWN_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A throwaway set of network namespaces with pont's directories.
/// See the crate documentation for the topology.
#[derive(Debug)]
pub struct Sandbox {
    pont_bin: PathBuf,
    /// The namespaces this sandbox made (or tried to make), in creation order.
    namespaces: Vec<(Ns, String)>,
    root: TempDir,
    run_dir: TempDir,
    /// Captured output of helper commands and spawned processes.
    scratch: TempDir,
}

impl Sandbox {
    /// The full topology: host, LAN switch, neighbour, router and WAN host.
    /// Panics (after removing what it made) when setup fails.
    pub fn new(pont_bin: impl AsRef<Path>) -> Sandbox {
        Sandbox::build(pont_bin.as_ref(), &Ns::ALL)
    }

    /// Only the host namespace, with `lo` up: for tests that need no LAN or WAN.
    pub fn host_only(pont_bin: impl AsRef<Path>) -> Sandbox {
        Sandbox::build(pont_bin.as_ref(), &[Ns::Host])
    }

    fn build(pont_bin: &Path, wanted: &[Ns]) -> Sandbox {
        crate::require_root();
        let sandbox = Sandbox::allocate(pont_bin, wanted);
        if let Err(e) = sandbox.wire(wanted.len() == Ns::ALL.len()) {
            // Clean up first, so the panic leaves nothing behind even if the
            // test harness aborts on it.
            drop(sandbox);
            panic!("sandbox setup failed: {e}");
        }
        sandbox
    }

    /// Chooses the names and makes the temp dirs; creates no namespace yet.
    fn allocate(pont_bin: &Path, wanted: &[Ns]) -> Sandbox {
        let stem = fresh_stem(wanted);
        let dirs = (|| {
            let root = TempDir::create(&stem, "root")?;
            let run_dir = TempDir::create(&stem, "run")?;
            let scratch = TempDir::create(&stem, "scratch")?;
            Ok::<_, std::io::Error>((root, run_dir, scratch))
        })();
        let (root, run_dir, scratch) = match dirs {
            Ok(dirs) => dirs,
            Err(e) => panic!("sandbox setup: cannot create temp dirs for {stem}: {e}"),
        };
        let namespaces = wanted
            .iter()
            .map(|&ns| (ns, format!("{stem}-{}", ns.role())))
            .collect();
        Sandbox {
            pont_bin: pont_bin.to_path_buf(),
            namespaces,
            root,
            run_dir,
            scratch,
        }
    }

    fn wire(&self, full: bool) -> Result<(), CmdError> {
        let mut add = String::new();
        for (_, name) in &self.namespaces {
            add += &format!("netns add {name}\n");
        }
        self.ip_batch(None, &add)?;
        self.sysctl(Ns::Host)?;
        if !full {
            return self.run_batch(&topology::host_only_batch());
        }
        let names = Names {
            host: self.netns_name(Ns::Host),
            neighbour: self.netns_name(Ns::Neighbour),
            router: self.netns_name(Ns::Router),
            wan: self.netns_name(Ns::Wan),
        };
        for batch in topology::full_batches(&names) {
            self.run_batch(&batch)?;
        }
        self.sysctl(Ns::Router)
    }

    fn run_batch(&self, batch: &Batch) -> Result<(), CmdError> {
        self.ip_batch(Some(batch.ns), &batch.script)
    }

    fn ip_batch(&self, ns: Option<Ns>, script: &str) -> Result<(), CmdError> {
        let mut ip = Command::new("ip");
        if let Some(ns) = ns {
            ip.arg("-n").arg(self.netns_name(ns));
        }
        ip.args(["-batch", "-"]);
        cmd::run_checked(
            ip,
            Some(script.as_bytes()),
            self.scratch.path(),
            COMMAND_TIMEOUT,
        )?;
        Ok(())
    }

    fn sysctl(&self, ns: Ns) -> Result<(), CmdError> {
        let settings = topology::sysctls(ns);
        if settings.is_empty() {
            return Ok(());
        }
        let mut argv = vec!["sysctl", "-q", "-w"];
        argv.extend_from_slice(settings);
        let cmd = self.command_in(ns, &argv);
        cmd::run_checked(cmd, None, self.scratch.path(), COMMAND_TIMEOUT)?;
        Ok(())
    }

    /// The name of a namespace (for `ip -n NAME`, `ip netns exec NAME`).
    /// Panics if this sandbox does not have it (a host-only sandbox has only
    /// [`Ns::Host`]).
    pub fn netns_name(&self, ns: Ns) -> &str {
        match self.namespaces.iter().find(|(have, _)| *have == ns) {
            Some((_, name)) => name,
            None => panic!("this sandbox has no {ns:?} namespace (it was made host-only)"),
        }
    }

    /// The state root handed to pont as `PONT_ROOT`.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The runtime dir handed to pont as `PONT_RUN_DIR`.
    pub fn run_dir(&self) -> &Path {
        self.run_dir.path()
    }

    /// The pont binary this sandbox runs.
    pub fn pont_bin(&self) -> &Path {
        &self.pont_bin
    }

    /// `ip netns exec <ns> ARGV...`, not started, stdin closed.
    pub fn command_in(&self, ns: Ns, argv: &[impl AsRef<OsStr>]) -> Command {
        assert!(!argv.is_empty(), "command_in needs a program to run");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec"])
            .arg(self.netns_name(ns))
            .args(argv);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// `pont ARGS` in the host namespace with `PONT_ROOT` and `PONT_RUN_DIR`
    /// set, not started: for tests that need to change more (stdin, env).
    pub fn pont_command(&self, args: &[impl AsRef<OsStr>]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec"])
            .arg(self.netns_name(Ns::Host))
            .arg(&self.pont_bin)
            .args(args);
        cmd.env("PONT_ROOT", self.root())
            .env("PONT_RUN_DIR", self.run_dir());
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs `pont ARGS` in the host namespace and waits (killing it after
    /// [`COMMAND_TIMEOUT`]: a hang is a failure, and panics).
    pub fn pont(&self, args: &[&str]) -> Output {
        self.wait_output(self.pont_command(args))
    }

    /// Runs `pont ARGS`, panics (with args, status, stdout and stderr) unless it
    /// succeeds, and returns its stdout.
    pub fn pont_ok(&self, args: &[&str]) -> String {
        let out = self.pont(args);
        if !out.status.success() {
            panic!("pont {args:?} failed ({}){}", out.status, show_output(&out));
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `pont ARGS`, panics unless it fails, and returns its stderr: for
    /// tests of refusals and error messages.
    pub fn pont_err(&self, args: &[&str]) -> String {
        let out = self.pont(args);
        if out.status.success() {
            panic!(
                "pont {args:?} succeeded but should have failed{}",
                show_output(&out)
            );
        }
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Runs a command made by [`Sandbox::pont_command`] or
    /// [`Sandbox::command_in`] (and then changed: env, args) and waits, with
    /// output captured and the same deadline as [`Sandbox::pont`].
    pub fn output(&self, cmd: Command) -> Output {
        self.wait_output(cmd)
    }

    /// Runs ARGV in a namespace and waits (killed after [`COMMAND_TIMEOUT`],
    /// which panics).
    pub fn run_in(&self, ns: Ns, argv: &[&str]) -> Output {
        self.wait_output(self.command_in(ns, argv))
    }

    /// Runs ARGV in a namespace, panics unless it succeeds, returns stdout.
    pub fn run_ok(&self, ns: Ns, argv: &[&str]) -> String {
        let out = self.run_in(ns, argv);
        if !out.status.success() {
            panic!(
                "{argv:?} in {ns:?} failed ({}){}",
                out.status,
                show_output(&out)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Where helper commands' output is captured.
    pub(crate) fn scratch_dir(&self) -> &Path {
        self.scratch.path()
    }

    /// The names of the namespaces this sandbox made (or tried to), in creation order.
    pub(crate) fn netns_names(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.namespaces.iter().map(|(_, name)| name.as_str())
    }

    fn wait_output(&self, cmd: Command) -> Output {
        match cmd::run_captured(cmd, None, self.scratch.path(), COMMAND_TIMEOUT) {
            Ok(out) => out,
            Err(e) => panic!("{e}"),
        }
    }

    /// Starts ARGV in a namespace and returns at once; the guard kills and
    /// reaps it when dropped. Output is kept in files: see [`Spawned::stdout`].
    pub fn spawn_in(&self, ns: Ns, argv: &[&str]) -> Spawned<'_> {
        let mut cmd = self.command_in(ns, argv);
        let n = SPAWN_COUNTER.fetch_add(1, Ordering::Relaxed);
        let stdout_path = self.scratch.path().join(format!("spawn-{n}.out"));
        let stderr_path = self.scratch.path().join(format!("spawn-{n}.err"));
        let argv_text = cmd::describe(&cmd);
        let open = |path: &Path| match File::create(path) {
            Ok(file) => file,
            Err(e) => panic!("spawn `{argv_text}`: cannot create {}: {e}", path.display()),
        };
        cmd.stdout(open(&stdout_path)).stderr(open(&stderr_path));
        match cmd.spawn() {
            Ok(child) => Spawned::new(child, argv_text, stdout_path, stderr_path),
            Err(e) => panic!("cannot spawn `{argv_text}`: {e}"),
        }
    }
}

/// Chooses a stem none of whose names exist yet (a crashed earlier process
/// with the same pid may have left some; they are not ours to delete).
fn fresh_stem(wanted: &[Ns]) -> String {
    loop {
        let stem = names::next_stem();
        let taken = wanted
            .iter()
            .any(|ns| names::netns_path(&format!("{stem}-{}", ns.role())).exists())
            || ["root", "run", "scratch"]
                .iter()
                .any(|role| std::env::temp_dir().join(format!("{stem}-{role}")).exists());
        if !taken {
            return stem;
        }
    }
}

fn show_output(out: &Output) -> String {
    format!(
        "\n--- stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout).trim_end(),
        String::from_utf8_lossy(&out.stderr).trim_end()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A setup that fails half-way (here: only two of five namespaces
    /// exist, and a batch failed) is cleaned up by drop like a full one.
    #[test]
    fn drop_cleans_a_half_built_sandbox() {
        crate::require_root();
        let sandbox = Sandbox::allocate(Path::new("/nonexistent/pont"), &Ns::ALL);
        let names: Vec<String> = sandbox.namespaces.iter().map(|(_, n)| n.clone()).collect();
        let add = format!("netns add {}\nnetns add {}\n", names[0], names[1]);
        sandbox.ip_batch(None, &add).unwrap();
        let err = sandbox
            .ip_batch(Some(Ns::Host), "link add x type no-such-kind\n")
            .unwrap_err();
        assert!(matches!(err, CmdError::Failed { .. }), "{err}");
        let scratch = sandbox.scratch.path().to_path_buf();
        drop(sandbox);
        for name in &names {
            assert!(!names::netns_path(name).exists(), "{name} left behind");
        }
        assert!(!scratch.exists());
    }
}
