//! `pont run` and `pont start`: record the intent, make the container and its
//! endpoint, start it, and wait for it as its monitor.

use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use super::{etc_files, names, Runtime, RuntimeError};
use crate::container::{self, Running, Spec, Stdio};
use crate::engine::AttachOptions;
use crate::fault;
use crate::model::{
    validate_name, ContainerRecord, ContainerState, Limits, MacAddr, NetMode, PortSpec,
};
use crate::netlink::Netlink;
use crate::state::Lock;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetworkChoice {
    /// The default network, created on first use.
    Default,
    Named(String),
    None,
    Host,
}

#[derive(Clone, Debug)]
pub struct RunRequest {
    pub name: Option<String>,
    pub network: NetworkChoice,
    pub ip: Option<Ipv4Addr>,
    pub mac: Option<MacAddr>,
    pub hostname: Option<String>,
    pub env: Vec<(String, String)>,
    pub workdir: Option<PathBuf>,
    pub rootfs: Option<PathBuf>,
    pub argv: Vec<String>,
    pub ports: Vec<PortSpec>,
    pub auto_remove: bool,
    pub detach: bool,
    /// Resource limits, checked by `run` against each other, the machine's CPUs and the
    /// cgroup controllers it has.
    pub limits: Limits,
}

/// What the monitor is asked to launch.
enum Launch<'a> {
    New(&'a RunRequest),
    Restart(&'a str),
}

impl Runtime {
    /// Run in the foreground: stdio attached, signals forwarded; returns the exit code.
    pub fn run_foreground(&self, req: &RunRequest) -> Result<i32, RuntimeError> {
        let (id, running) = self.launch(Launch::New(req), false)?;
        self.wait_and_finish(&id, running)
    }

    /// Run detached: a monitor process is forked that launches the container and
    /// stays its parent. Returns the new container's id once it runs.
    pub fn run_detached(&self, req: &RunRequest) -> Result<String, RuntimeError> {
        self.in_monitor(|rt| rt.launch(Launch::New(req), true))
    }

    /// `pont start`: run an exited container again, detached, with the same name,
    /// network and (if still free) address.
    pub fn start(&self, key: &str) -> Result<String, RuntimeError> {
        let id = self.container(key)?.id;
        self.in_monitor(|rt| rt.launch(Launch::Restart(&id), true))
    }

    /// Fork the monitor. It reports the launch's outcome over a pipe, then waits
    /// for the container and cleans up; it never returns.
    fn in_monitor(
        &self,
        launch: impl FnOnce(&Runtime) -> Result<(String, Running), RuntimeError>,
    ) -> Result<String, RuntimeError> {
        let (mut report_rx, report_tx) = pipe()?;
        // SAFETY: pont is single-threaded here (the CLI starts no threads before
        // this point), so the child may run ordinary code after fork.
        match unsafe { nix::unistd::fork() }.map_err(|e| monitor_err("fork", e))? {
            nix::unistd::ForkResult::Child => {
                drop(report_rx);
                detach_from_caller();
                let mut report_tx = std::fs::File::from(report_tx);
                let code = match launch(self) {
                    Ok((id, running)) => {
                        let _ = writeln!(report_tx, "ok {id}");
                        drop(report_tx);
                        self.wait_and_finish(&id, running).map_or(125, |_| 0)
                    }
                    Err(err) => {
                        let _ = write!(report_tx, "error {}", with_sources(&err));
                        125
                    }
                };
                crate::firewall::release_before_exit();
                std::process::exit(code)
            }
            nix::unistd::ForkResult::Parent { .. } => {
                drop(report_tx);
                let mut report = String::new();
                let _ = report_rx.read_to_string(&mut report);
                if let Some(id) = report.strip_prefix("ok ") {
                    Ok(id.trim().to_string())
                } else if let Some(err) = report.strip_prefix("error ") {
                    Err(RuntimeError::Launch(err.into()))
                } else {
                    Err(RuntimeError::Monitor("exited without a report".into()))
                }
            }
        }
    }

    fn wait_and_finish(&self, id: &str, running: Running) -> Result<i32, RuntimeError> {
        let exit = running.wait()?;
        self.finish(id, Some(exit.code()))?;
        Ok(exit.code())
    }

    /// Under the lock: record the intent, make the container and its endpoint,
    /// start it, record it running. Any failure undoes every step.
    fn launch(&self, what: Launch<'_>, detached: bool) -> Result<(String, Running), RuntimeError> {
        let lock = self.engine.store().lock()?;
        self.reconcile(&lock)?;
        let (mut rec, port_specs) = match what {
            Launch::New(req) => {
                let rec =
                    self.retry_on_conflict(&lock, || self.new_record(&lock, req, detached))?;
                (rec, req.ports.clone())
            }
            Launch::Restart(id) => {
                let rec = self.restart_record(&lock, id)?;
                let specs = rec.ports.iter().map(super::ports::spec_of).collect();
                (rec, specs)
            }
        };
        self.check_limits(&rec.limits)?;
        rec.monitor_pid = Some(std::process::id() as i32);
        rec.monitor_start_time = container::start_time(std::process::id() as i32);
        // A new or exited container holds no rules yet.
        let rules_before = self.engine.rules_of(&rec)?;
        self.retry_on_conflict(&lock, || self.reserve(&lock, &mut rec, &port_specs))?;
        fault::point("run:after-record");
        let made = self.make_container(&lock, &mut rec).and_then(|c| {
            let rules = self.engine.rules_of(&rec)?;
            self.engine
                .change_container_rules(&lock, &rules_before, &rules)?;
            fault::point("run:after-firewall");
            Ok(c)
        });
        let created = match made {
            Ok(created) => created,
            Err(err) => {
                let undo = self.roll_back(&lock, &rec);
                return Err(with_undo(err, undo));
            }
        };
        // Best effort, like the cleanup on exit: a failure here only leaves
        // a UDP client that kept sending pinned until its entry times out.
        let _ = super::ports::forget_untranslated_udp(&rec.ports);
        // Started under the lock, and recorded running only once the command
        // runs: until then the record stays `creating`, so a crash anywhere
        // before is rolled back and the same request can simply be repeated.
        let running = match created.start() {
            Ok(running) => running,
            Err(err) => {
                // The init exits by itself on a failed start; clean up as for any exit.
                let _ = self.release(&lock, &mut rec, None);
                return Err(err.into());
            }
        };
        fault::point("run:after-start");
        rec.state = ContainerState::Running;
        rec.exit_code = None;
        rec.oom_killed = false;
        rec.started = Some(crate::now());
        self.engine.store().save_container(&lock, &rec)?;
        fault::point("run:after-running-record");
        Ok((rec.id, running))
    }

    fn new_record(
        &self,
        lock: &Lock,
        req: &RunRequest,
        detached: bool,
    ) -> Result<ContainerRecord, RuntimeError> {
        if req.argv.is_empty() {
            return Err(RuntimeError::Invalid(
                "no command given: pont run [OPTIONS] -- CMD".into(),
            ));
        }
        let store = self.engine.store();
        let name = match &req.name {
            Some(name) => {
                validate_name("container", name).map_err(crate::engine::EngineError::from)?;
                if store.name_taken(name)? {
                    return Err(RuntimeError::NameInUse(name.clone()));
                }
                name.clone()
            }
            // An error reading the index shows again when the record is saved.
            None => names::generate(|n| store.name_taken(n).unwrap_or(true)),
        };
        if let Some(h) = &req.hostname {
            validate_hostname(h)?;
        }
        let net_mode = match &req.network {
            NetworkChoice::Default => NetMode::Bridge(self.engine.default_network(lock)?.name),
            NetworkChoice::Named(n) => NetMode::Bridge(self.engine.network(n)?.name),
            NetworkChoice::None => NetMode::None,
            NetworkChoice::Host => NetMode::Host,
        };
        if !matches!(net_mode, NetMode::Bridge(_)) && (req.ip.is_some() || req.mac.is_some()) {
            return Err(RuntimeError::Invalid(
                "--ip and --mac need a bridge network, not --network none or host".into(),
            ));
        }
        // Ids are shown and accepted by their first 12 digits.
        let existing = store.container_ids()?;
        let id = loop {
            let id = crate::new_id();
            if !existing.iter().any(|c| c[..12] == id[..12]) {
                break id;
            }
        };
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Ok(ContainerRecord {
            hostname: req.hostname.clone().unwrap_or_else(|| name.clone()),
            id,
            name,
            state: ContainerState::Creating,
            pid: None,
            start_time: None,
            monitor_pid: None,
            monitor_start_time: None,
            exit_code: None,
            created: created.as_secs(),
            created_subsec_ns: created.subsec_nanos(),
            started: None,
            finished: None,
            argv: req.argv.clone(),
            env: req.env.clone(),
            workdir: req.workdir.clone(),
            rootfs: req.rootfs.clone(),
            net_mode,
            requested_ip: req.ip,
            requested_mac: req.mac,
            last_ipv4: None,
            endpoints: vec![],
            ports: vec![],
            auto_remove: req.auto_remove,
            detached,
            limits: req.limits,
            oom_killed: false,
        })
    }

    fn restart_record(&self, lock: &Lock, id: &str) -> Result<ContainerRecord, RuntimeError> {
        let mut rec = self.live_container(lock, id)?;
        if rec.state != ContainerState::Exited {
            return Err(RuntimeError::AlreadyRunning(rec.name));
        }
        // The last exit code and OOM flag stay until the new run starts, so a
        // failed start leaves the record as it was.
        rec.state = ContainerState::Creating;
        rec.detached = true;
        Ok(rec)
    }

    /// Choose the endpoint and save the record in state `creating`: from here on
    /// the address is taken, and a crash is rolled back by the next command.
    fn reserve(
        &self,
        lock: &Lock,
        rec: &mut ContainerRecord,
        ports: &[PortSpec],
    ) -> Result<(), RuntimeError> {
        if let NetMode::Bridge(network) = &rec.net_mode {
            let net = self.engine.network(network)?;
            let opts = AttachOptions {
                ip: rec.requested_ip,
                preferred_ip: rec.last_ipv4,
                mac: rec.requested_mac,
            };
            rec.endpoints = vec![self.engine.reserve_endpoint(&net, &opts)?];
        }
        rec.ports = self.resolve_ports(rec, ports, false)?;
        self.engine.store().save_container(lock, rec)?;
        Ok(())
    }

    fn make_container(
        &self,
        lock: &Lock,
        rec: &mut ContainerRecord,
    ) -> Result<container::Created, RuntimeError> {
        let spec = self.spec(lock, rec)?;
        fault::point("run:after-etc-files");
        // The cgroup first, so a limit the kernel refuses stops the launch before any
        // process exists; init joins it before it forks the command.
        let cgroup = self.make_cgroup(rec)?;
        fault::point("run:after-cgroup");
        let created = container::create(&spec)?;
        cgroup.add_process(created.pid())?;
        fault::point("run:after-clone");
        if rec.net_mode != NetMode::Host {
            let netns: OwnedFd = created.netns()?;
            self.plumb(rec, netns)?;
        }
        rec.pid = Some(created.pid());
        rec.start_time = container::start_time(created.pid());
        self.engine.store().save_container(lock, rec)?;
        fault::point("run:after-pid-record");
        Ok(created)
    }

    /// Connect the container's fresh namespace. The namespace handle and the
    /// socket inside it are dropped on return, so the namespace (and with it
    /// the veth) goes away as soon as the container's last process exits.
    fn plumb(&self, rec: &ContainerRecord, netns: OwnedFd) -> Result<(), RuntimeError> {
        if rec.endpoints.is_empty() {
            return Ok(crate::engine::loopback_up(netns.as_fd())?);
        }
        let mut host = Netlink::open()?;
        for ep in &rec.endpoints {
            let net = self.engine.network(&ep.network)?;
            self.engine
                .plumb_endpoint(&mut host, netns.as_fd(), &net, ep)?;
        }
        Ok(())
    }

    fn spec(&self, lock: &Lock, rec: &ContainerRecord) -> Result<Spec, RuntimeError> {
        let store = self.engine.store();
        let mut bind_files = Vec::new();
        if rec.net_mode != NetMode::Host {
            let ipv4 = rec.endpoints.first().map(|e| e.ipv4);
            let hosts = etc_files::hosts(&rec.hostname, &rec.name, ipv4);
            let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            let upstream = std::fs::read_to_string("/run/systemd/resolve/resolv.conf").ok();
            let resolv = etc_files::resolv_conf(&host_resolv, upstream.as_deref());
            let hosts_path = store.write_container_file(lock, &rec.id, "hosts", &hosts)?;
            let resolv_path = store.write_container_file(lock, &rec.id, "resolv.conf", &resolv)?;
            bind_files.push((hosts_path, "/etc/hosts".into()));
            bind_files.push((resolv_path, "/etc/resolv.conf".into()));
        }
        let stdio = if rec.detached {
            Stdio::Log(store.container_dir(&rec.id).join("log"))
        } else {
            Stdio::Inherit
        };
        Ok(Spec {
            argv: rec.argv.clone(),
            env: rec.env.clone(),
            workdir: rec.workdir.clone(),
            hostname: rec.hostname.clone(),
            rootfs: rec.rootfs.clone(),
            new_netns: rec.net_mode != NetMode::Host,
            bind_files,
            stdio,
        })
    }
}

/// RFC 1123 host names: labels of letters, digits and '-', at most 63 bytes each.
fn validate_hostname(h: &str) -> Result<(), RuntimeError> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if h.len() <= 253 && h.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(RuntimeError::Invalid(format!("invalid hostname '{h}'")))
    }
}

pub(super) fn with_undo(err: RuntimeError, undo: Result<(), RuntimeError>) -> RuntimeError {
    match undo {
        Ok(()) => err,
        Err(u) => RuntimeError::Invalid(format!("{err}; also failed to undo: {u}")),
    }
}

/// The error and its sources, `: `-separated, as the CLI prints an error it got
/// directly: the monitor's report must not lose the kernel's errno.
fn with_sources(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn pipe() -> Result<(std::fs::File, OwnedFd), RuntimeError> {
    let (rx, tx) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| monitor_err("pipe", e))?;
    Ok((std::fs::File::from(rx), tx))
}

fn monitor_err(op: &str, e: nix::Error) -> RuntimeError {
    RuntimeError::Monitor(format!("{op}: {e}"))
}

/// The monitor outlives the command that started it: its own session, and no
/// hold on the caller's terminal or pipes (a caller reading our stdout to EOF
/// must not wait for the container).
fn detach_from_caller() {
    let _ = nix::unistd::setsid();
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in 0..=2 {
            // SAFETY: dup2 onto the standard descriptors; `null` stays open for the call.
            unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), fd) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error with the kernel's errno as its source, as netlink's errors are.
    #[derive(Debug)]
    struct CreateVeth(std::io::Error);

    impl std::fmt::Display for CreateVeth {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("netlink: create veth v1 (peer eth0)")
        }
    }

    impl std::error::Error for CreateVeth {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_launch_error_crosses_the_pipe_with_its_sources() {
        let err = CreateVeth(std::io::Error::from_raw_os_error(libc::EEXIST));
        assert_eq!(
            with_sources(&err),
            "netlink: create veth v1 (peer eth0): File exists (os error 17)"
        );
    }
}
