//! Timings of one container's firewall change, native against `nft -f`, for
//! the speed issue. Ignored by default; run with a release build:
//! `cargo test --release -p pont --lib timing -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use super::*;
use crate::firewall::nfnl::{Batch, Nfnl};
use crate::firewall::{EndpointRules, MappingRules};
use crate::model::{PortMapping, PortRange, Protocol};
use crate::netlink::tests::in_fresh_netns;

const RUNS: usize = 20;

/// One container: its 3 anti-spoofing elements and one published port.
fn one_container() -> RuleSet {
    RuleSet {
        networks: vec![],
        endpoints: vec![EndpointRules {
            container: "probe".into(),
            network: "web".into(),
            port: "veth0000000000f".into(),
            mac: "02:42:0a:4d:01:0f".parse().unwrap(),
            ipv4: "10.77.1.15".parse().unwrap(),
            isolated: false,
        }],
        mappings: vec![MappingRules {
            container: "probe".into(),
            network: "web".into(),
            container_ip: "10.77.1.15".parse().unwrap(),
            mapping: PortMapping {
                host_ip: None,
                host_ports: PortRange::single(18080),
                container_ports: PortRange::single(80),
                protocol: Protocol::Tcp,
            },
        }],
    }
}

/// 10000 published ports of other containers.
fn others() -> RuleSet {
    let template = one_container().mappings[0].clone();
    let mappings = (0..10_000u16)
        .map(|i| {
            let mut m = template.clone();
            m.container = "other".into();
            m.mapping.host_ports = PortRange::single(30000 + i);
            m
        })
        .collect();
    RuleSet {
        mappings,
        ..RuleSet::default()
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Median setup and teardown of one container, by `change(before, after)`.
fn time_change(change: impl Fn(&RuleSet, &RuleSet)) -> (Duration, Duration) {
    let (none, one) = (RuleSet::default(), one_container());
    let (mut setup, mut teardown) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let t = Instant::now();
        change(&none, &one);
        setup.push(t.elapsed());
        let t = Instant::now();
        change(&one, &none);
        teardown.push(t.elapsed());
    }
    (median(setup), median(teardown))
}

fn native(before: &RuleSet, after: &RuleSet) {
    apply_container_change(before, after).unwrap();
}

fn text(before: &RuleSet, after: &RuleSet) {
    tool::run("nft", &["-f", "-"], &render_change(before, after)).unwrap();
}

#[test]
#[ignore = "a measurement: run by hand with --release --ignored --nocapture"]
fn measure_container_change() {
    for (label, extra) in [("alone", RuleSet::default()), ("10000 others", others())] {
        in_fresh_netns(|| {
            let mut rules = crate::firewall::iptables::tests::with_mappings();
            rules.mappings.extend(extra.mappings.clone());
            apply(&rules).unwrap();
            let (ns, nt) = time_change(native);
            let (ts, tt) = time_change(text);
            println!("{label}: native setup {} teardown {}", ms(ns), ms(nt));
            println!("{label}: nft -f setup {} teardown {}", ms(ts), ms(tt));
            let (mut native_check, mut old_check) = (Vec::new(), Vec::new());
            for _ in 0..RUNS {
                let t = Instant::now();
                assert!(is_installed(&rules.networks, rules.endpoints.len()).unwrap());
                native_check.push(t.elapsed());
                let t = Instant::now();
                old_presence_check();
                old_check.push(t.elapsed());
            }
            let (n, o) = (median(native_check), median(old_check));
            println!("{label}: presence check native {} old {}", ms(n), ms(o));
        });
    }
}

/// What the presence check ran before: two `nft` listings and `iptables -S`.
fn old_presence_check() {
    let q = "list chain inet pont forward\nlist set inet pont bridges\n";
    tool::run("nft", &["-f", "-"], q).unwrap();
    let q = "list chain bridge pont antispoof\nlist set bridge pont guarded_ports\n";
    tool::run("nft", &["-f", "-"], q).unwrap();
    tool::run("iptables", &["-w", "-S"], "").unwrap();
}

/// Where a teardown's time goes: open, send and acks (the commit), close.
#[test]
#[ignore = "a measurement: run by hand with --release --ignored --nocapture"]
fn measure_where_teardown_time_goes() {
    in_fresh_netns(|| {
        apply(&crate::firewall::iptables::tests::with_mappings()).unwrap();
        let (none, one) = (RuleSet::default(), one_container());
        let mut phases: [Vec<Duration>; 6] = Default::default();
        for _ in 0..RUNS {
            for (i, (before, after)) in [(&none, &one), (&one, &none)].into_iter().enumerate() {
                let (old, new) = element_sets(before, after);
                let (delete, add) = difference(&old, &new);
                let t = Instant::now();
                let mut nl = Nfnl::open().unwrap();
                let opened = t.elapsed();
                let mut batch = Batch::new();
                native::write_for_timing(&mut batch, &delete, &add);
                let t = Instant::now();
                nl.commit(batch).unwrap();
                let committed = t.elapsed();
                let t = Instant::now();
                drop(nl);
                let closed = t.elapsed();
                phases[i * 3].push(opened);
                phases[i * 3 + 1].push(committed);
                phases[i * 3 + 2].push(closed);
            }
        }
        let [ao, ac, ax, dopen, dc, dx] = phases.map(median);
        println!("add:    open {} commit {} close {}", ms(ao), ms(ac), ms(ax));
        println!(
            "delete: open {} commit {} close {}",
            ms(dopen),
            ms(dc),
            ms(dx)
        );
    });
}

/// A close after a deletion waits only for what is left of the grace period:
/// other work between the deletion and the close hides the wait.
#[test]
#[ignore = "a measurement: run by hand with --release --ignored --nocapture"]
fn measure_close_after_other_work() {
    in_fresh_netns(|| {
        apply(&crate::firewall::iptables::tests::with_mappings()).unwrap();
        let (none, one) = (RuleSet::default(), one_container());
        for pause_ms in [0, 2, 5, 10, 20, 40] {
            let mut closes = Vec::new();
            for _ in 0..10 {
                apply_container_change(&none, &one).unwrap();
                let (old, new) = element_sets(&one, &none);
                let (delete, add) = difference(&old, &new);
                let mut nl = Nfnl::open().unwrap();
                let mut batch = Batch::new();
                native::write_for_timing(&mut batch, &delete, &add);
                nl.commit(batch).unwrap();
                std::thread::sleep(Duration::from_millis(pause_ms));
                let t = Instant::now();
                drop(nl);
                closes.push(t.elapsed());
            }
            println!(
                "close {pause_ms} ms after a deletion: {}",
                ms(median(closes))
            );
        }
    });
}

/// Native changes and presence checks only, after a marker line: run under
/// `strace -f -e trace=execve,write` to count the processes they start (none).
#[test]
#[ignore = "a measurement: run by hand under strace"]
fn native_path_for_a_process_count() {
    in_fresh_netns(|| {
        let rules = crate::firewall::iptables::tests::with_mappings();
        apply(&rules).unwrap();
        let (none, one) = (RuleSet::default(), one_container());
        println!("MARK native path starts");
        for _ in 0..RUNS {
            assert!(is_installed(&rules.networks, rules.endpoints.len()).unwrap());
            apply_container_change(&none, &one).unwrap();
            apply_container_change(&one, &none).unwrap();
        }
        println!("MARK native path ends");
    });
}
