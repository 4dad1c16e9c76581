//! Forgetting connection-tracking entries whose translation went stale.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use crate::model::PortRange;

/// Delete the UDP conntrack entries whose replies come from `target` (and, if
/// given, from one of `ports`): the flows a removed mapping or a gone
/// container was translating to. Best effort, by the `conntrack` tool; UDP
/// has no connection to close, so without this a client that keeps sending
/// would stay pinned to the old target until the entry timed out.
pub fn forget_udp_to(target: Ipv4Addr, ports: Option<PortRange>) {
    let ip = target.to_string();
    let run = |port: Option<u16>| {
        let mut cmd = Command::new("conntrack");
        cmd.args(["-D", "-p", "udp", "--reply-src", &ip]);
        if let Some(p) = port {
            cmd.args(["--reply-port-src", &p.to_string()]);
        }
        let _ = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    };
    match ports {
        // One call per port for short ranges; a whole container address for long ones.
        Some(r) if r.count() <= 16 => (r.start..=r.end).for_each(|p| run(Some(p))),
        _ => run(None),
    }
}
