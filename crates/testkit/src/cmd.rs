//! Running helper commands (`ip`, `nft`, pont itself) with a deadline.
//!
//! Output goes to files, not pipes: `pont run -d` leaves a monitor process
//! behind, and if that process inherited a pipe, reading the pipe to its end
//! would hang the test. With files, waiting for the direct child is enough.

use std::error::Error;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How long one command may run before the test kit kills it.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

static CAPTURE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A helper command that could not run or failed.
#[derive(Debug)]
pub enum CmdError {
    /// The command could not be started, or its output could not be captured.
    Spawn { argv: String, source: io::Error },
    /// The command ran past its deadline and was killed.
    Timeout {
        argv: String,
        after: Duration,
        stderr: String,
    },
    /// The command exited unsuccessfully.
    Failed {
        argv: String,
        status: ExitStatus,
        stderr: String,
    },
}

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdError::Spawn { argv, .. } => write!(f, "could not run `{argv}`"),
            CmdError::Timeout {
                argv,
                after,
                stderr,
            } => {
                let secs = after.as_secs();
                write!(
                    f,
                    "`{argv}` still running after {secs} s, killed: {}",
                    stderr.trim_end()
                )
            }
            CmdError::Failed {
                argv,
                status,
                stderr,
            } => {
                write!(f, "`{argv}` failed ({status}): {}", stderr.trim_end())
            }
        }
    }
}

impl Error for CmdError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            CmdError::Spawn { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The command line as a reader would type it, for messages.
pub fn describe(cmd: &Command) -> String {
    let mut words = vec![cmd.get_program().to_string_lossy().into_owned()];
    words.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    words.join(" ")
}

/// Runs `cmd` with stdin from `stdin` (or nothing), output captured through
/// files in `scratch`, killed after `timeout`.
pub fn run_captured(
    mut cmd: Command,
    stdin: Option<&[u8]>,
    scratch: &Path,
    timeout: Duration,
) -> Result<Output, CmdError> {
    let argv = describe(&cmd);
    let spawn_err = |source| CmdError::Spawn {
        argv: argv.clone(),
        source,
    };
    let n = CAPTURE_COUNTER.fetch_add(1, Ordering::Relaxed);
    let out_path = scratch.join(format!("cmd-{n}.out"));
    let err_path = scratch.join(format!("cmd-{n}.err"));
    cmd.stdout(File::create(&out_path).map_err(spawn_err)?);
    cmd.stderr(File::create(&err_path).map_err(spawn_err)?);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let Some(bytes) = stdin {
        feed_stdin(&mut child, bytes);
    }
    let status = wait_deadline(&mut child, timeout).map_err(spawn_err)?;
    let stdout = take_file(out_path);
    let stderr = take_file(err_path);
    match status {
        Some(status) => Ok(Output {
            status,
            stdout,
            stderr,
        }),
        None => {
            let stderr = String::from_utf8_lossy(&stderr).into_owned();
            Err(CmdError::Timeout {
                argv,
                after: timeout,
                stderr,
            })
        }
    }
}

/// Like [`run_captured`], but an unsuccessful exit is an error too.
pub fn run_checked(
    cmd: Command,
    stdin: Option<&[u8]>,
    scratch: &Path,
    timeout: Duration,
) -> Result<Output, CmdError> {
    let argv = describe(&cmd);
    let output = run_captured(cmd, stdin, scratch, timeout)?;
    if output.status.success() {
        return Ok(output);
    }
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    Err(CmdError::Failed {
        argv,
        status: output.status,
        stderr,
    })
}

fn feed_stdin(child: &mut Child, bytes: &[u8]) {
    if let Some(mut pipe) = child.stdin.take() {
        // A write error means the child stopped reading early, which only a
        // failing child does; its exit status and stderr say why, so the
        // error itself adds nothing. Dropping `pipe` closes it: end of input.
        let _ = pipe.write_all(bytes);
    }
}

/// Waits for `child` until `timeout`; on expiry kills and reaps it and returns `None`.
pub fn wait_deadline(child: &mut Child, timeout: Duration) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    // Start with short naps: most helper commands finish within a few milliseconds.
    let mut nap = Duration::from_micros(500);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(20));
    }
}

fn take_file(path: PathBuf) -> Vec<u8> {
    let bytes = fs::read(&path).unwrap_or_default();
    let _ = fs::remove_file(&path);
    bytes
}
