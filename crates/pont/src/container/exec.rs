//! Running a further command inside a running container (`pont exec`).
//!
//! ```text
//!  caller ──clone──▶ helper: join cgroups; setns ipc, uts, net, pid, mnt
//!    ▲                 └─clone(CLONE_PARENT)─▶ command: new session, chdir, exec
//!    └──────────── parent of the command, waits for it and forwards signals
//! ```
//!
//! setns into a mount namespace needs a single-threaded process (a thread sharing its
//! `fs_struct` gets EINVAL), and joining a PID namespace only affects children, so the
//! caller clones a helper to join, and the helper clones the command with `CLONE_PARENT`:
//! the command is then in the container's PID namespace yet the caller's own child, whose
//! exit status the caller can wait for.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sched::{setns, CloneFlags};
use nix::unistd::{chdir, gethostname, setsid, Pid};

use super::channel::{self, Record};
use super::command;
use super::error::Failure;
use super::init::SETUP_FAILED;
use super::plan::{base_env, c_path, invalid, merge_env, CommandPlan};
use super::sys::{self, ExitOnUnwind, Forked};
use super::{proc, wait, ContainerError, SetupStep};

/// The namespaces a container's processes see, joined in this order. Not the user
/// namespace (containers have none of their own) nor cgroup and time namespaces.
const NAMESPACES: [(&str, CloneFlags); 5] = [
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

/// Run `argv` inside the namespaces of the container whose init is `pid`, with stdio
/// inherited, in `workdir` (default `/`), with the base environment (`PATH`, `HOSTNAME`
/// read from the container, `HOME`, `TERM`) plus `env`. Waits for it,
/// forwarding signals as [`Running::wait`](super::Running::wait) does, and returns its
/// exit status: 128 + n if killed by signal n, 127 if not found, 126 if not runnable.
///
/// The caller should check `pid` against its recorded start time first
/// ([`is_alive`](super::is_alive)). The command joins no cgroup: see [`exec_joining`].
pub fn exec(
    pid: i32,
    argv: &[String],
    env: &[(String, String)],
    workdir: Option<&Path>,
) -> Result<i32, ContainerError> {
    exec_joining(pid, argv, env, workdir, &[])
}

/// [`exec`], with the command first moved into a cgroup: the helper writes itself into
/// each of `cgroup_procs` (`cgroup.procs` files open for writing, one per hierarchy)
/// before it joins the namespaces, so the command it forks starts inside the cgroup and
/// no process of it ever runs outside. Descriptors, not paths, because the helper then
/// enters the container's mount namespace, where pont's cgroup mounts are not.
pub fn exec_joining(
    pid: i32,
    argv: &[String],
    env: &[(String, String)],
    workdir: Option<&Path>,
    cgroup_procs: &[OwnedFd],
) -> Result<i32, ContainerError> {
    let plan = HelperPlan::prepare(pid, argv, env, workdir, cgroup_procs)?;
    let (caller_end, helper_end) =
        sys::seqpacket_pair().map_err(|source| ContainerError::Channel { source })?;
    let helper = spawn_helper(&plan, helper_end)?;
    wait::reap(helper)?;
    let command = command_pid(pid, &plan, &caller_end)?;
    Ok(wait::wait_forwarding(command)?.code())
}

/// Index of the UTS namespace in [`NAMESPACES`].
const UTS: usize = 1;

/// The container's host name, for `HOSTNAME`. Read on a short-lived thread that joins the
/// container's UTS namespace (a single thread may), so the caller's threads stay put.
fn container_hostname(uts: &OwnedFd) -> Result<String, Errno> {
    std::thread::scope(|scope| {
        let reader = scope.spawn(|| -> Result<String, Errno> {
            setns(uts, CloneFlags::CLONE_NEWUTS)?;
            Ok(gethostname()?.to_string_lossy().into_owned())
        });
        reader.join().unwrap_or(Err(Errno::EIO))
    })
}

struct HelperPlan<'a> {
    namespaces: Vec<OwnedFd>,
    cgroup_procs: &'a [OwnedFd],
    workdir_path: PathBuf,
    workdir: std::ffi::CString,
    command: CommandPlan,
}

impl<'a> HelperPlan<'a> {
    fn prepare(
        pid: i32,
        argv: &[String],
        env: &[(String, String)],
        workdir: Option<&Path>,
        cgroup_procs: &'a [OwnedFd],
    ) -> Result<HelperPlan<'a>, ContainerError> {
        let workdir_path = workdir.unwrap_or(Path::new("/")).to_owned();
        if !workdir_path.is_absolute() {
            let value = workdir_path.display().to_string();
            return Err(invalid("workdir", &value, "must be an absolute path"));
        }
        let namespaces: Vec<OwnedFd> = NAMESPACES
            .iter()
            .map(|(name, _)| proc::open_namespace(pid, name))
            .collect::<Result<_, _>>()?;
        let hostname =
            container_hostname(&namespaces[UTS]).map_err(|errno| ContainerError::Setup {
                pid,
                step: SetupStep::JoinNamespace,
                path: Some(PathBuf::from(format!("/proc/{pid}/ns/uts"))),
                source: errno,
            })?;
        let base = base_env(Some(&hostname), std::env::var("TERM").ok());
        let env = merge_env(base, env);
        Ok(HelperPlan {
            namespaces,
            cgroup_procs,
            workdir: c_path("workdir", &workdir_path)?,
            workdir_path,
            command: CommandPlan::new(argv, &env)?,
        })
    }
}

fn spawn_helper(plan: &HelperPlan, channel: OwnedFd) -> Result<Pid, ContainerError> {
    let mut keep_fds: Vec<RawFd> = plan
        .namespaces
        .iter()
        .chain(plan.cgroup_procs)
        .map(|fd| fd.as_raw_fd())
        .collect();
    keep_fds.push(channel.as_raw_fd());
    keep_fds.sort_unstable();
    // SAFETY: the child runs only `join_and_spawn`, which makes system calls without
    // allocating or locking and ends in execve or _exit.
    match unsafe { sys::clone_process(0) } {
        Ok(Forked::Child) => join_and_spawn(plan, &channel, &keep_fds),
        Ok(Forked::Parent(pid)) => Ok(pid),
        Err(source) => Err(ContainerError::Clone { source }),
    }
    // `channel` drops here, so the caller's end sees end-of-file once the helper and the
    // command have let go of theirs.
}

/// The command's PID, sent by the helper; or the step that failed.
fn command_pid(pid: i32, plan: &HelperPlan, channel: &OwnedFd) -> Result<Pid, ContainerError> {
    let control = |source| ContainerError::Control { pid, source };
    let mut command = None;
    let mut failure = None;
    while let Some(record) = channel::recv(channel.as_fd()).map_err(control)? {
        match record {
            Record::Child(child) => command = Some(child),
            Record::Failed(failed) => failure = Some(failed),
            _ => return Err(ContainerError::Protocol { pid }),
        }
    }
    if let Some(failure) = failure {
        if let Some(command) = command {
            // It failed before exec and exits 125; reap it.
            let _ = wait::reap(command);
        }
        return Err(setup_error(pid, plan, failure));
    }
    command.ok_or(ContainerError::SetupAborted { pid })
}

fn setup_error(pid: i32, plan: &HelperPlan, failure: Failure) -> ContainerError {
    let index = usize::try_from(failure.index).unwrap_or(usize::MAX);
    let path = match failure.step {
        SetupStep::JoinNamespace => NAMESPACES
            .get(index)
            .map(|(name, _)| PathBuf::from(format!("/proc/{pid}/ns/{name}"))),
        SetupStep::ChangeDir => Some(plan.workdir_path.clone()),
        _ => None,
    };
    ContainerError::Setup {
        pid,
        step: failure.step,
        path,
        source: failure.errno,
    }
}

/// The helper's whole life, after the clone.
fn join_and_spawn(plan: &HelperPlan, channel: &OwnedFd, keep_fds: &[RawFd]) -> ! {
    let _unwind = ExitOnUnwind(SETUP_FAILED);
    let spawned = sys::close_fds_except(3, keep_fds)
        .map_err(|errno| Failure::new(SetupStep::CloseInheritedFds, errno))
        .and_then(|()| join_cgroups(plan))
        .and_then(|()| join_namespaces(plan))
        .and_then(|()| spawn_command(plan, channel));
    match spawned {
        Ok(command) => {
            let _ = channel::send(channel.as_fd(), Record::Child(command));
            sys::exit_now(0)
        }
        Err(failure) => {
            let _ = channel::send(channel.as_fd(), Record::Failed(failure));
            sys::exit_now(SETUP_FAILED)
        }
    }
}

/// Writing "0" to `cgroup.procs` moves the writer itself (kernel/cgroup/cgroup.c,
/// `cgroup_procs_write_start`): the helper needs no PID formatted, and its PID namespace
/// does not matter.
fn join_cgroups(plan: &HelperPlan) -> Result<(), Failure> {
    for (index, fd) in plan.cgroup_procs.iter().enumerate() {
        nix::unistd::write(fd, b"0")
            .map_err(|errno| Failure::at(SetupStep::JoinCgroup, index, errno))?;
    }
    Ok(())
}

fn join_namespaces(plan: &HelperPlan) -> Result<(), Failure> {
    for (index, (fd, (_, flag))) in plan.namespaces.iter().zip(NAMESPACES).enumerate() {
        setns(fd, flag).map_err(|errno| Failure::at(SetupStep::JoinNamespace, index, errno))?;
    }
    Ok(())
}

fn spawn_command(plan: &HelperPlan, channel: &OwnedFd) -> Result<Pid, Failure> {
    let flags = CloneFlags::CLONE_PARENT.bits();
    // SAFETY: the child runs only `enter_and_exec`, which makes system calls without
    // allocating or locking and ends in execve or _exit.
    match unsafe { sys::clone_process(flags) } {
        Ok(Forked::Child) => enter_and_exec(plan, channel),
        Ok(Forked::Parent(pid)) => Ok(pid),
        Err(errno) => Err(Failure::new(SetupStep::ForkCommand, errno)),
    }
}

fn enter_and_exec(plan: &HelperPlan, channel: &OwnedFd) -> ! {
    let _unwind = ExitOnUnwind(SETUP_FAILED);
    let entered = setsid()
        .map_err(|errno| Failure::new(SetupStep::NewSession, errno))
        .and_then(|_| {
            chdir(plan.workdir.as_c_str()).map_err(|e| Failure::new(SetupStep::ChangeDir, e))
        });
    if let Err(failure) = entered {
        let _ = channel::send(channel.as_fd(), Record::Failed(failure));
        sys::exit_now(SETUP_FAILED);
    }
    command::exec_command(&plan.command)
}
