//! A long-running command started inside a sandbox namespace.

use std::fs;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::process::{Child, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

use crate::sandbox::Sandbox;

/// A process started by [`Sandbox::spawn_in`]. Dropping the guard kills it
/// (SIGKILL, by its pid) and reaps it. The borrow of the sandbox makes sure
/// the guard goes before the namespaces do.
#[derive(Debug)]
pub struct Spawned<'sb> {
    child: Child,
    argv: String,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    _sandbox: PhantomData<&'sb Sandbox>,
}

impl Spawned<'_> {
    pub(crate) fn new(
        child: Child,
        argv: String,
        stdout_path: PathBuf,
        stderr_path: PathBuf,
    ) -> Self {
        Spawned {
            child,
            argv,
            stdout_path,
            stderr_path,
            _sandbox: PhantomData,
        }
    }

    /// The process id of the command itself: `ip netns exec` replaces itself
    /// with the command, it does not fork (for the first few milliseconds
    /// the process may still be `ip`, switching namespaces).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The command line, for messages.
    pub fn argv(&self) -> &str {
        &self.argv
    }

    /// Everything the command wrote to stdout so far.
    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    /// Everything the command wrote to stderr so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The exit status if the command has ended, `None` while it runs.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits until stdout contains `needle`; false if the command ended or
    /// `timeout` passed first. For servers that announce they are ready.
    pub fn wait_for_stdout(&mut self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stdout().contains(needle) {
                return true;
            }
            if self.try_wait().is_some() {
                // It may have printed the needle just before exiting.
                return self.stdout().contains(needle);
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Spawned<'_> {
    fn drop(&mut self) {
        // Killing an exited (not yet reaped) child is harmless, and wait
        // then reaps it; errors here mean it is already gone.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_file(&self.stdout_path);
        let _ = fs::remove_file(&self.stderr_path);
    }
}
