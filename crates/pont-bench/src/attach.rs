//! `attach` and `detach`: the per-container work of a network backend,
//! done the way pont's runtime does it for `pont run`, minus the process.
//!
//! attach: record the intent, make the namespace, plumb the endpoint, add
//! its firewall elements, record it running. detach: drop the record, remove
//! the firewall elements, unpin the namespace (the kernel removes the veth).

use std::os::fd::AsFd;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use pont::engine::{AttachOptions, Engine};
use pont::firewall::{Backend, RuleSet};
use pont::ipam::{parse_pools, DEFAULT_POOLS};
use pont::model::{
    ContainerRecord, ContainerState, NetMode, PortMapping, PortRange, PortSpec, Protocol,
};
use pont::netlink::Netlink;
use pont::state::Store;

use super::{netns, AttachArgs, Common};

/// Wall time of each step, printed when the command is done.
struct Steps {
    last: Instant,
    done: Vec<(&'static str, u128)>,
}

impl Steps {
    fn start() -> Steps {
        Steps {
            last: Instant::now(),
            done: Vec::new(),
        }
    }

    fn mark(&mut self, step: &'static str) {
        let now = Instant::now();
        self.done.push((step, (now - self.last).as_micros()));
        self.last = now;
    }

    /// One JSON line on stdout: `extra` plus `steps_us`, the time of each step.
    fn print(&self, mut extra: serde_json::Map<String, serde_json::Value>) {
        let steps: serde_json::Map<String, serde_json::Value> = self
            .done
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v as u64)))
            .collect();
        extra.insert("steps_us".into(), steps.into());
        println!("{}", serde_json::Value::Object(extra));
    }
}

fn open_engine(common: &Common) -> Result<Engine> {
    if common.id.len() != 64 || !common.id.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("--id must be 64 hex digits, got '{}'", common.id);
    }
    let backend = common
        .firewall
        .as_deref()
        .map(str::parse::<Backend>)
        .transpose()?;
    let pools = parse_pools(DEFAULT_POOLS).map_err(anyhow::Error::msg)?;
    Ok(Engine::open(Store::open(&common.root)?, pools, backend)?)
}

pub fn attach(args: &AttachArgs) -> Result<()> {
    let common = &args.common;
    let mut steps = Steps::start();
    let engine = open_engine(common)?;
    let ports = mappings(args)?;
    steps.mark("open");
    let lock = engine.store().lock()?;
    let net = engine.network(&args.network)?;
    let mut rec = new_record(common, &net.name, ports);
    rec.endpoints = vec![engine.reserve_endpoint(&net, &AttachOptions::default())?];
    engine.store().save_container(&lock, &rec)?;
    steps.mark("reserve");
    let made = (|| -> Result<()> {
        let ns = netns::create_pinned(&common.netns)?;
        steps.mark("netns");
        let mut host = Netlink::open()?;
        engine.plumb_endpoint(&mut host, ns.as_fd(), &net, &rec.endpoints[0])?;
        steps.mark("plumb");
        // The order of `pont run`: rules first, the record says running last.
        let none = RuleSet::default();
        engine.change_container_rules(&lock, &none, &engine.rules_of(&rec)?)?;
        steps.mark("firewall");
        rec.state = ContainerState::Running;
        engine.store().save_container(&lock, &rec)?;
        steps.mark("commit");
        Ok(())
    })();
    if let Err(err) = made {
        // Best effort: the namespace takes the veth with it, the record goes,
        // and the next firewall sync drops whatever elements were added.
        let _ = netns::release(&common.netns);
        let _ = engine.store().remove_container(&lock, &rec.id);
        return Err(err);
    }
    let mut out = serde_json::Map::new();
    out.insert("ipv4".into(), rec.endpoints[0].ipv4.to_string().into());
    steps.print(out);
    Ok(())
}

pub fn detach(common: &Common) -> Result<()> {
    let mut steps = Steps::start();
    let engine = open_engine(common)?;
    steps.mark("open");
    let lock = engine.store().lock()?;
    let rec = engine
        .store()
        .find_container(&common.id)?
        .with_context(|| format!("no container {} in {}", common.id, common.root.display()))?;
    let rules_before = engine.rules_of(&rec)?;
    engine.store().remove_container(&lock, &rec.id)?;
    steps.mark("commit");
    engine.change_container_rules(&lock, &rules_before, &RuleSet::default())?;
    steps.mark("firewall");
    release(&common.netns)?;
    steps.mark("netns");
    steps.print(serde_json::Map::new());
    Ok(())
}

fn release(path: &Path) -> Result<()> {
    // Opening it first tells a wrong path (an error) from an unpinned one.
    drop(netns::open(path)?);
    netns::release(path)
}

fn new_record(common: &Common, network: &str, ports: Vec<PortMapping>) -> ContainerRecord {
    let name = format!("bench-{}", &common.id[..12]);
    ContainerRecord {
        id: common.id.clone(),
        hostname: name.clone(),
        name,
        state: ContainerState::Creating,
        pid: None,
        start_time: None,
        monitor_pid: None,
        monitor_start_time: None,
        exit_code: None,
        created: pont::now(),
        created_subsec_ns: 0,
        started: Some(pont::now()),
        finished: None,
        // Records must name a command; this one says who made the record.
        argv: vec!["(attached by pont-bench)".into()],
        env: vec![],
        workdir: None,
        rootfs: None,
        net_mode: NetMode::Bridge(network.to_string()),
        requested_ip: None,
        requested_mac: None,
        last_ipv4: None,
        endpoints: vec![],
        ports,
        auto_remove: false,
        detached: true,
        limits: Default::default(),
        oom_killed: false,
    }
}

/// The mappings `--publish` and `--many` ask for. Host ports must be given:
/// like netavark, which takes them from its caller, this checks no conflicts.
fn mappings(args: &AttachArgs) -> Result<Vec<PortMapping>> {
    let mut out = Vec::new();
    for text in &args.publish {
        let spec: PortSpec = text.parse()?;
        let Some(host_ports) = spec.host_ports else {
            bail!("--publish {text}: give the host port");
        };
        out.push(PortMapping {
            host_ip: spec.host_ip,
            host_ports,
            container_ports: spec.container_ports,
            protocol: spec.protocol,
        });
    }
    if let Some(many) = &args.many {
        out.extend(many_mappings(many)?);
    }
    Ok(out)
}

fn many_mappings(text: &str) -> Result<Vec<PortMapping>> {
    let parse = || -> Option<(u16, u16, u16)> {
        let (range, port) = text.split_once(':')?;
        let (start, end) = range.split_once('-')?;
        Some((start.parse().ok()?, end.parse().ok()?, port.parse().ok()?))
    };
    let Some((start, end, port)) = parse().filter(|(s, e, _)| s <= e) else {
        bail!("--many {text}: expected START-END:PORT");
    };
    Ok((start..=end)
        .map(|host| PortMapping {
            host_ip: None,
            host_ports: PortRange::single(host),
            container_ports: PortRange::single(port),
            protocol: Protocol::Tcp,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_makes_one_single_port_mapping_per_host_port() {
        let got = many_mappings("20000-20002:80").unwrap();
        let hosts: Vec<u16> = got.iter().map(|m| m.host_ports.start).collect();
        assert_eq!(hosts, [20000, 20001, 20002]);
        assert!(got
            .iter()
            .all(|m| m.container_ports == PortRange::single(80) && m.host_ports.is_single()));
    }

    #[test]
    fn many_refuses_what_it_cannot_read() {
        for bad in ["20000:80", "20002-20000:80", "a-b:80", "1-2"] {
            assert!(many_mappings(bad).is_err(), "{bad}");
        }
    }
}
