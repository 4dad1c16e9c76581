//! A fault switch for crash tests: `PONT_FAULT=STEP` makes pont kill itself
//! with SIGKILL when it reaches the named step, so a test can check that the
//! next command finds the host consistent whatever step a crash hit.
//!
//! A step is named `COMMAND:after-WHAT`, after the kernel or state change it
//! follows. [`STEPS`] lists them all; every [`point`] names one of them.
//! Without the variable a point costs one load of a cached value.

use std::sync::OnceLock;

/// The environment variable that arms the switch.
pub const ENV: &str = "PONT_FAULT";

/// Every step that has a fault point, by command, in the order a command
/// reaches them. The `exit:` steps are the bookkeeping after a container's
/// init exits, done by its monitor (or by whichever command notices first).
pub const STEPS: &[&str] = &[
    "run:after-record",
    "run:after-etc-files",
    "run:after-cgroup",
    "run:after-clone",
    "run:after-veth",
    "run:after-bridge-port",
    "run:after-address",
    "run:after-route",
    "run:after-pid-record",
    "run:after-firewall",
    "run:after-start",
    "run:after-running-record",
    "stop:after-signal",
    "stop:after-kill",
    "exit:after-record",
    "exit:after-firewall",
    "rm:after-stop",
    "rm:after-record",
    "network-create:after-intent",
    "network-create:after-bridge",
    "network-create:after-network-record",
    "network-create:after-firewall",
    "network-rm:after-firewall",
    "network-rm:after-bridge",
    "network-rm:after-record",
    "port-add:after-firewall",
    "port-add:after-record",
    "port-rm:after-firewall",
    "port-rm:after-record",
];

/// Kill this process with SIGKILL if `PONT_FAULT` names `step`.
pub fn point(step: &'static str) {
    debug_assert!(STEPS.contains(&step), "fault step {step} is not in STEPS");
    if armed().as_deref() == Some(step) {
        // SAFETY: raise(2) with a valid signal number has no memory effects; SIGKILL
        // cannot be caught, so it does not return.
        unsafe { libc::raise(libc::SIGKILL) };
    }
}

fn armed() -> &'static Option<String> {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    ARMED.get_or_init(|| std::env::var(ENV).ok().filter(|s| !s.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_are_unique_and_well_formed() {
        let mut seen = std::collections::BTreeSet::new();
        for step in STEPS {
            assert!(seen.insert(step), "{step} listed twice");
            let (command, what) = step.split_once(':').expect("COMMAND:STEP");
            assert!(!command.is_empty() && what.starts_with("after-"), "{step}");
        }
    }

    #[test]
    fn unarmed_point_returns() {
        point("run:after-record");
    }
}
