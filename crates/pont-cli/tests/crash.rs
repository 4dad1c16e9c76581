//! Issue 7, crash safety: every named step of every command that changes the
//! kernel or the state is interrupted by SIGKILL (`PONT_FAULT=STEP`), then
//! any pont command runs, and the host must be consistent: in the state from
//! before the request (rolled back) or after it (done, for the steps past the
//! point where the request is committed), with no orphan link, rule, process,
//! record, address or port; and the request, repeated, succeeds with the
//! same static address and host port (or, when it was already done, says so).

mod common;
mod support;

use std::collections::BTreeSet;

use common::*;
use support::*;

const SUBNET: &str = "10.88.0.0/24";
const IP: &str = "10.88.0.5";
const HOST_PORT: &str = "8080";
/// Ignores SIGTERM, so `stop -t 1` has to escalate to SIGKILL.
const STUBBORN: &[&str] = &["sh", "-c", "trap '' TERM; while :; do sleep 1; done"];

/// What the host must look like after the interrupted request and one more command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum After {
    /// As before the request: it was rolled back.
    Before,
    /// As after the request: it was committed before the kill.
    Done,
}

/// What repeating the request must do.
#[derive(Clone, Copy, Debug)]
enum Repeat {
    Succeeds,
    /// The request had been carried out; the message says so.
    Refused(&'static str),
}

struct Case {
    step: &'static str,
    after: After,
    repeat: Repeat,
}

const fn case(step: &'static str, after: After, repeat: Repeat) -> Case {
    Case {
        step,
        after,
        repeat,
    }
}

use After::{Before, Done};
use Repeat::{Refused, Succeeds};

/// One command: how to prepare the host, the request, and a case per step.
struct Command {
    name: &'static str,
    setup: fn(&Sandbox),
    /// The interrupted request, run with `PONT_FAULT` set.
    request: fn(&Sandbox, Option<&str>) -> std::process::Output,
    /// Checks the request's result (address, port) once it succeeded.
    verify: fn(&Sandbox),
    cases: &'static [Case],
}

fn run_args() -> Vec<&'static str> {
    let mut args = vec![
        "run",
        "-d",
        "--name",
        "c",
        "--network",
        "web",
        "--ip",
        IP,
        "-p",
        "8080:80",
        "--",
    ];
    args.extend_from_slice(STUBBORN);
    args
}

fn pont_with_fault(sb: &Sandbox, args: &[&str], fault: Option<&str>) -> std::process::Output {
    let mut cmd = sb.pont_command(args);
    if let Some(step) = fault {
        cmd.env("PONT_FAULT", step);
    }
    cmd.output().expect("pont runs")
}

fn network(sb: &Sandbox) {
    sb.pont_ok(&["network", "create", "web", "--subnet", SUBNET]);
}

fn network_and_container(sb: &Sandbox) {
    network(sb);
    sb.pont_ok(&run_args());
}

fn network_and_container_without_port(sb: &Sandbox) {
    network(sb);
    let mut args = vec![
        "run",
        "-d",
        "--name",
        "c",
        "--network",
        "web",
        "--ip",
        IP,
        "--",
    ];
    args.extend_from_slice(STUBBORN);
    sb.pont_ok(&args);
}

fn verify_container(sb: &Sandbox) {
    assert_eq!(ip_of(sb, "c", "web"), IP, "the static address is kept");
    let ports = sb.pont_ok(&["port", "c"]);
    assert_eq!(ports.trim(), format!("80/tcp -> 0.0.0.0:{HOST_PORT}"));
}

fn verify_nothing(_: &Sandbox) {}

fn verify_network(sb: &Sandbox) {
    let doc = json(&sb.pont_ok(&["network", "inspect", "web"]));
    assert_eq!(doc["subnets"][0]["subnet"], SUBNET);
}

fn verify_stopped(sb: &Sandbox) {
    assert_eq!(inspect(sb, "c")["state"], "exited");
}

fn verify_no_port(sb: &Sandbox) {
    assert_eq!(sb.pont_ok(&["port", "c"]), "");
}

const COMMANDS: &[Command] = &[
    Command {
        name: "run",
        setup: network,
        request: |sb, fault| pont_with_fault(sb, &run_args(), fault),
        verify: verify_container,
        cases: &[
            case("run:after-record", Before, Succeeds),
            case("run:after-etc-files", Before, Succeeds),
            case("run:after-cgroup", Before, Succeeds),
            case("run:after-clone", Before, Succeeds),
            case("run:after-veth", Before, Succeeds),
            case("run:after-bridge-port", Before, Succeeds),
            case("run:after-address", Before, Succeeds),
            case("run:after-route", Before, Succeeds),
            case("run:after-pid-record", Before, Succeeds),
            case("run:after-firewall", Before, Succeeds),
            case("run:after-start", Before, Succeeds),
            case("run:after-running-record", Done, Refused("already in use")),
        ],
    },
    Command {
        name: "stop",
        setup: network_and_container,
        request: |sb, fault| pont_with_fault(sb, &["stop", "-t", "1", "c"], fault),
        verify: verify_stopped,
        cases: &[
            // The container ignores SIGTERM: nothing happened yet.
            case("stop:after-signal", Before, Succeeds),
            case("stop:after-kill", Done, Succeeds),
        ],
    },
    Command {
        // The monitor's bookkeeping when the container exits: the fault is
        // armed in the monitor (through `run`), the exit caused by `stop`.
        name: "exit",
        setup: network,
        // Repeated, the request is the stop alone.
        request: |sb, fault| {
            if fault.is_some() || !sb.pont(&["inspect", "c"]).status.success() {
                let out = pont_with_fault(sb, &run_args(), fault);
                assert!(out.status.success(), "run: {out:?}");
            }
            pont_with_fault(sb, &["stop", "-t", "1", "c"], None)
        },
        verify: verify_stopped,
        cases: &[
            case("exit:after-record", Done, Succeeds),
            case("exit:after-firewall", Done, Succeeds),
        ],
    },
    Command {
        name: "rm",
        setup: network_and_container,
        request: |sb, fault| pont_with_fault(sb, &["rm", "-f", "c"], fault),
        verify: verify_nothing,
        cases: &[
            case("rm:after-stop", Done, Succeeds),
            case("rm:after-record", Done, Refused("no such container")),
        ],
    },
    Command {
        name: "network-create",
        setup: |_| {},
        request: |sb, fault| {
            pont_with_fault(sb, &["network", "create", "web", "--subnet", SUBNET], fault)
        },
        verify: verify_network,
        cases: &[
            case("network-create:after-intent", Before, Succeeds),
            case("network-create:after-bridge", Before, Succeeds),
            case("network-create:after-network-record", Before, Succeeds),
            case("network-create:after-firewall", Before, Succeeds),
        ],
    },
    Command {
        name: "network-rm",
        setup: network,
        request: |sb, fault| pont_with_fault(sb, &["network", "rm", "web"], fault),
        verify: verify_nothing,
        cases: &[
            case("network-rm:after-firewall", Before, Succeeds),
            case("network-rm:after-bridge", Before, Succeeds),
            case("network-rm:after-record", Done, Refused("not found")),
        ],
    },
    Command {
        name: "port-add",
        setup: network_and_container_without_port,
        request: |sb, fault| pont_with_fault(sb, &["port", "add", "c", "8080:80"], fault),
        verify: verify_container,
        cases: &[
            case("port-add:after-firewall", Before, Succeeds),
            case("port-add:after-record", Done, Refused("already published")),
        ],
    },
    Command {
        name: "port-rm",
        setup: network_and_container,
        request: |sb, fault| pont_with_fault(sb, &["port", "rm", "c", "8080:80"], fault),
        verify: verify_no_port,
        cases: &[
            case("port-rm:after-firewall", Before, Succeeds),
            case(
                "port-rm:after-record",
                Done,
                Refused("no published port matching"),
            ),
        ],
    },
];

#[test]
fn every_fault_step_has_a_case() {
    let covered: BTreeSet<&str> = COMMANDS
        .iter()
        .flat_map(|c| c.cases.iter().map(|k| k.step))
        .collect();
    let all: BTreeSet<&str> = pont::fault::STEPS.iter().copied().collect();
    assert_eq!(
        covered, all,
        "steps without a crash case, or cases of no step"
    );
}

/// The normalised host before and after an uninterrupted request.
fn reference(cmd: &Command) -> (String, String) {
    let sb = host_only();
    (cmd.setup)(&sb);
    let before = normalized_snapshot(&sb);
    let out = (cmd.request)(&sb, None);
    assert!(
        out.status.success(),
        "{}: uninterrupted request failed: {out:?}",
        cmd.name
    );
    (cmd.verify)(&sb);
    // Also waits for the kernel to remove the veth of an exited container.
    assert_consistent(&sb, cmd.name);
    let done = normalized_snapshot(&sb);
    (before, done)
}

fn crash_every_step(name: &str) {
    let cmd = COMMANDS.iter().find(|c| c.name == name).expect("a command");
    let (before, done) = reference(cmd);
    for case in cmd.cases {
        let why = case.step;
        let sb = host_only();
        (cmd.setup)(&sb);
        let mut ids = record_ids(&sb);
        let out = (cmd.request)(&sb, Some(case.step));
        ids.extend(record_ids(&sb));
        let killed = out.status.code().is_none()
            || String::from_utf8_lossy(&out.stderr).contains("exited without a report");
        assert!(
            killed || cmd.name == "exit",
            "{why}: the fault did not fire: {out:?}"
        );
        // Any command: here the most harmless one.
        sb.pont_ok(&["ps"]);
        let expected: &[(&str, &str)] = match case.after {
            Before => &[("the state before the request", &before)],
            Done => &[("the state after the request", &done)],
        };
        wait_snapshot_in(&sb, expected, why);
        assert_consistent(&sb, why);
        assert_no_orphan_cgroups(&sb, &ids, why);
        let again = (cmd.request)(&sb, None);
        match case.repeat {
            Succeeds => {
                assert!(
                    again.status.success(),
                    "{why}: the repeated request failed: {again:?}"
                );
                (cmd.verify)(&sb);
            }
            Refused(message) => {
                let err = String::from_utf8_lossy(&again.stderr);
                assert!(
                    err.contains(message),
                    "{why}: repeat should say '{message}': {err}"
                );
            }
        }
        wait_snapshot_in(&sb, &[("the state after the request", &done)], why);
        assert_consistent(&sb, why);
        ids.extend(record_ids(&sb));
        // Removed, every container takes its cgroup with it.
        let all = sb.pont_ok(&["ps", "-a", "-q"]);
        let mut rm = vec!["rm", "-f"];
        rm.extend(all.split_whitespace());
        if rm.len() > 2 {
            sb.pont_ok(&rm);
        }
        assert_no_orphan_cgroups(&sb, &ids, why);
    }
}

#[test]
fn crash_in_run() {
    crash_every_step("run");
}

#[test]
fn crash_in_stop() {
    crash_every_step("stop");
}

#[test]
fn crash_in_exit_bookkeeping() {
    crash_every_step("exit");
}

#[test]
fn crash_in_rm() {
    crash_every_step("rm");
}

#[test]
fn crash_in_network_create() {
    crash_every_step("network-create");
}

#[test]
fn crash_in_network_rm() {
    crash_every_step("network-rm");
}

#[test]
fn crash_in_port_add() {
    crash_every_step("port-add");
}

#[test]
fn crash_in_port_rm() {
    crash_every_step("port-rm");
}
