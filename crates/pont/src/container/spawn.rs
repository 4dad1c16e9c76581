//! Creating, starting and waiting for a container: the caller's side of init.

use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::channel::{self, Record};
use super::error::Failure;
use super::init::{self, InitPlan, LogFds};
use super::mounts::{FsPlan, MOUNT_POINTS};
use super::plan::{base_env, c_path, invalid, merge_env, CommandPlan};
use super::sys::{self, Forked};
use super::{proc, wait, ContainerError, Exit, SetupStep, Spec, Stdio};

/// Longest host name the kernel accepts (`HOST_NAME_MAX`, include/uapi/linux/utsname.h).
const HOST_NAME_MAX: usize = 64;

/// Clone the container's init, PID 1 of a new PID namespace, with new UTS, IPC and mount
/// namespaces and, if `spec.new_netns`, a new network namespace. Init waits until
/// [`Created::start`]; the command has not been forked yet when this returns.
///
/// Files named by the spec (log file, bind-mount sources, rootfs) are opened or resolved
/// here, in the caller's mount namespace, so their errors come back from `create`.
///
/// Fork safety: the caller may be multi-threaded (init runs only system calls before the
/// exec, see the module documentation), but signal forwarding in [`Running::wait`] is
/// reliable only in a single-threaded caller.
pub fn create(spec: &Spec) -> Result<Created, ContainerError> {
    let paths = SetupPaths::new(spec)?;
    let (caller_end, init_end) =
        sys::seqpacket_pair().map_err(|source| ContainerError::Channel { source })?;
    let plan = prepare(spec, &paths, init_end)?;
    let keep_fds = plan.keep_fds();
    // SAFETY: the child runs only `init::run`, which makes system calls without allocating
    // or locking and ends in _exit; the plan it reads was fully built before the clone.
    match unsafe { sys::clone_process(namespace_flags(spec.new_netns)) } {
        Ok(Forked::Child) => init::run(&plan, &keep_fds),
        Ok(Forked::Parent(pid)) => Ok(Created {
            pid,
            channel: caller_end,
            paths,
            armed: true,
        }),
        Err(source) => Err(ContainerError::Clone { source }),
    }
    // `plan` drops here: the caller's copies of init's descriptors close.
}

fn namespace_flags(new_netns: bool) -> libc::c_int {
    let mut flags = CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWNS;
    if new_netns {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    flags.bits()
}

fn prepare(spec: &Spec, paths: &SetupPaths, channel: OwnedFd) -> Result<InitPlan, ContainerError> {
    let base = base_env(Some(&spec.hostname), std::env::var("TERM").ok());
    let env = merge_env(base, &spec.env);
    Ok(InitPlan {
        channel,
        log: open_log(&spec.stdio)?,
        fs: FsPlan::prepare(paths.rootfs.as_deref(), &spec.bind_files)?,
        hostname: spec.hostname.clone(),
        workdir: c_path("workdir", &paths.workdir)?,
        command: CommandPlan::new(&spec.argv, &env)?,
    })
}

fn open_log(stdio: &Stdio) -> Result<Option<LogFds>, ContainerError> {
    let Stdio::Log(path) = stdio else {
        return Ok(None);
    };
    let stdin = File::open("/dev/null").map_err(|source| ContainerError::OpenDevNull { source })?;
    let output = OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|source| ContainerError::OpenLog {
            path: path.clone(),
            source,
        })?;
    Ok(Some(LogFds {
        stdin: stdin.into(),
        output: output.into(),
    }))
}

/// The paths a setup step may act on, kept by the caller to name them in errors.
#[derive(Debug)]
struct SetupPaths {
    rootfs: Option<PathBuf>,
    log: Option<PathBuf>,
    bind_files: Vec<(PathBuf, PathBuf)>,
    workdir: PathBuf,
}

impl SetupPaths {
    /// Check the spec's fields that init would otherwise trip over.
    fn new(spec: &Spec) -> Result<SetupPaths, ContainerError> {
        let hostname = &spec.hostname;
        if hostname.is_empty() || hostname.len() > HOST_NAME_MAX || hostname.contains('\0') {
            return Err(invalid(
                "hostname",
                hostname,
                "must be 1 to 64 bytes without NUL",
            ));
        }
        let workdir = spec.workdir.clone().unwrap_or_else(|| PathBuf::from("/"));
        if !workdir.is_absolute() {
            let value = workdir.display().to_string();
            return Err(invalid("workdir", &value, "must be an absolute path"));
        }
        let rootfs = spec.rootfs.as_deref().map(canonical_rootfs).transpose()?;
        Ok(SetupPaths {
            rootfs,
            log: match &spec.stdio {
                Stdio::Log(path) => Some(path.clone()),
                Stdio::Inherit => None,
            },
            bind_files: spec.bind_files.clone(),
            workdir,
        })
    }

    fn describe(&self, failure: Failure) -> Option<PathBuf> {
        let index = usize::try_from(failure.index).unwrap_or(usize::MAX);
        let under_root = |dir: &str| match &self.rootfs {
            Some(root) => root.join(dir),
            None => Path::new("/").join(dir),
        };
        match failure.step {
            SetupStep::RedirectStdio => self.log.clone(),
            SetupStep::BindRootfs | SetupStep::PivotRoot => self.rootfs.clone(),
            SetupStep::CreateMountPoint => MOUNT_POINTS.get(index).map(|dir| under_root(dir)),
            SetupStep::MountProc => Some(under_root("proc")),
            SetupStep::MountSysfs => Some(under_root("sys")),
            SetupStep::BindDev => Some(under_root("dev")),
            SetupStep::CloneBindSource => {
                self.bind_files.get(index).map(|(source, _)| source.clone())
            }
            SetupStep::BindFile | SetupStep::BindTargetMissing | SetupStep::CreateBindTarget => {
                self.bind_files.get(index).map(|(_, target)| target.clone())
            }
            SetupStep::ChangeDir => Some(self.workdir.clone()),
            _ => None,
        }
    }
}

fn canonical_rootfs(path: &Path) -> Result<PathBuf, ContainerError> {
    let canonical = path
        .canonicalize()
        .map_err(|source| ContainerError::Rootfs {
            path: path.to_owned(),
            source,
        })?;
    if !canonical.is_dir() {
        let value = path.display().to_string();
        return Err(invalid("rootfs", &value, "must be a directory"));
    }
    Ok(canonical)
}

/// A container whose init exists but has not started the command: the moment to set up
/// its network namespace and put it into a cgroup. Dropping it kills and reaps init.
#[derive(Debug)]
pub struct Created {
    pid: Pid,
    channel: OwnedFd,
    paths: SetupPaths,
    /// Whether dropping this must kill init (false once `start` succeeded).
    armed: bool,
}

impl Created {
    /// Init's PID as seen from the caller's PID namespace.
    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// Init's network namespace (`/proc/PID/ns/net`).
    pub fn netns(&self) -> Result<OwnedFd, ContainerError> {
        proc::open_namespace(self.pid(), "net")
    }

    /// Let init build the container and fork the command. Returns once the command has
    /// been exec'd (or has failed to: that shows as exit status 126 or 127 from
    /// [`Running::wait`]), so that [`exec`](super::exec) from now on sees the finished
    /// container. A failed setup step is returned as [`ContainerError::Setup`], and init
    /// is killed and reaped.
    pub fn start(mut self) -> Result<Running, ContainerError> {
        let pid = self.pid();
        let control = |source| ContainerError::Control { pid, source };
        channel::send(self.channel.as_fd(), Record::Go).map_err(control)?;
        let mut ready = false;
        loop {
            match channel::recv(self.channel.as_fd()).map_err(control)? {
                None => break,
                Some(Record::Ready) => ready = true,
                Some(Record::Failed(failure)) => return Err(self.setup_error(failure)),
                Some(_) => return Err(ContainerError::Protocol { pid }),
            }
        }
        if !ready {
            return Err(ContainerError::SetupAborted { pid });
        }
        self.armed = false;
        Ok(Running { pid: self.pid })
    }

    fn setup_error(&self, failure: Failure) -> ContainerError {
        ContainerError::Setup {
            pid: self.pid(),
            step: failure.step,
            path: self.paths.describe(failure),
            source: failure.errno,
        }
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        if self.armed {
            // Not started, or its setup failed: leave no process behind.
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = wait::reap(self.pid);
        }
    }
}

/// A started container. Dropping it without [`wait`](Running::wait) leaves it running
/// (detached); whoever is then init's parent reaps it.
#[derive(Debug)]
pub struct Running {
    pid: Pid,
}

impl Running {
    /// Init's PID as seen from the caller's PID namespace.
    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// Wait for init to exit and reap it. Meanwhile SIGINT, SIGTERM, SIGHUP, SIGQUIT,
    /// SIGUSR1, SIGUSR2 and SIGWINCH received by the calling thread are forwarded to init,
    /// which forwards them to the command.
    pub fn wait(self) -> Result<Exit, ContainerError> {
        wait::wait_forwarding(self.pid)
    }
}
