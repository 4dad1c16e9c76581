//! Issue 7, concurrency: many pont processes at once on one state root, and
//! pont next to other programs that change the firewall.
//!
//! `PONT_CHURN_SECS` sets how long the churn test runs (default 10 s; the
//! issue's figure is 60).

mod common;
mod support;

use std::collections::BTreeSet;
use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use nix::fcntl::{Flock, FlockArg};
use serde_json::Value;
use support::*;

fn sleeper_args<'a>(name: &'a str, network: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run", "-d", "--name", name, "--network", network];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "sleep", "1000"]);
    args
}

/// (name, address, MAC) of every container that is not exited.
fn live_endpoints(recs: &[Value]) -> Vec<(String, String, String)> {
    recs.iter()
        .filter(|r| r["state"] != "exited")
        .flat_map(|r| {
            r["endpoints"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|e| {
                    (
                        r["name"].as_str().unwrap_or("").to_string(),
                        e["ipv4"].as_str().unwrap_or("").to_string(),
                        e["mac"].as_str().unwrap_or("").to_string(),
                    )
                })
        })
        .collect()
}

fn assert_unique(endpoints: &[(String, String, String)], when: &str) {
    let ips: BTreeSet<&str> = endpoints.iter().map(|e| e.1.as_str()).collect();
    let macs: BTreeSet<&str> = endpoints.iter().map(|e| e.2.as_str()).collect();
    assert_eq!(
        ips.len(),
        endpoints.len(),
        "{when}: duplicate address in {endpoints:?}"
    );
    assert_eq!(
        macs.len(),
        endpoints.len(),
        "{when}: duplicate MAC in {endpoints:?}"
    );
}

/// The records as one moment shows them: read under pont's own state lock.
fn records_locked(sb: &Sandbox) -> Vec<Value> {
    let file = File::options()
        .read(true)
        .write(true)
        .open(sb.root().join("lock"))
        .expect("the state lock exists");
    let _held = Flock::lock(file, FlockArg::LockExclusive).expect("lock");
    records(sb)
}

#[test]
fn sixty_parallel_runs_get_distinct_addresses_and_macs_and_all_answer() {
    let sb = host_only();
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.90.0.0/24"]);
    let names: Vec<String> = (0..60).map(|i| format!("c{i}")).collect();
    let started = Instant::now();
    std::thread::scope(|s| {
        for name in &names {
            let sb = &sb;
            s.spawn(move || sb.pont_ok(&sleeper_args(name, "web", &[])));
        }
    });
    let took = started.elapsed();
    let endpoints = live_endpoints(&records(&sb));
    assert_eq!(endpoints.len(), 60);
    assert_unique(&endpoints, "after 60 parallel runs");
    let ips: Vec<&str> = endpoints.iter().map(|e| e.1.as_str()).collect();
    let script =
        r#"for ip in "$@"; do (ping -n -q -c1 -W2 "$ip" >/dev/null || echo "$ip") & done; wait"#;
    let mut argv = vec!["bash", "-c", script, "ping-all"];
    argv.extend(ips.iter().copied());
    let silent = sb.run_ok(Ns::Host, &argv);
    assert_eq!(silent, "", "containers that did not answer a ping");
    eprintln!("60 parallel runs took {took:?}");
    assert_consistent(&sb, "after 60 parallel runs");
}

#[test]
fn ten_runs_for_one_static_address_one_wins_nine_are_refused_nothing_leaks() {
    let sb = host_only();
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.90.1.0/24"]);
    let names: Vec<String> = (0..10).map(|i| format!("want{i}")).collect();
    let outs: Vec<std::process::Output> = std::thread::scope(|s| {
        let handles: Vec<_> = names
            .iter()
            .map(|name| {
                let sb = &sb;
                s.spawn(move || sb.pont(&sleeper_args(name, "web", &["--ip", "10.90.1.50"])))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(won, 1, "exactly one run gets the address: {outs:?}");
    for out in outs.iter().filter(|o| !o.status.success()) {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("address 10.90.1.50 is already in use on network web"),
            "{err}"
        );
    }
    let recs = records(&sb);
    assert_eq!(recs.len(), 1, "the refused runs leave no record");
    // The winner's address, once free, is free for the next one.
    let winner = recs[0]["name"].as_str().unwrap().to_string();
    sb.pont_ok(&["rm", "-f", &winner]);
    sb.pont_ok(&sleeper_args("after", "web", &["--ip", "10.90.1.50"]));
    assert_consistent(&sb, "after the race for one address");
}

fn churn_duration() -> Duration {
    let secs = std::env::var("PONT_CHURN_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    Duration::from_secs(secs)
}

#[test]
fn twenty_workers_churning_never_share_an_address_and_leak_no_reservation() {
    let sb = host_only();
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.90.2.0/24"]);
    let deadline = Instant::now() + churn_duration();
    let stop = AtomicBool::new(false);
    let cycles = AtomicUsize::new(0);
    let samples = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                assert_unique(&live_endpoints(&records_locked(&sb)), "during the churn");
                samples.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let workers: Vec<_> = (0..20)
            .map(|w| {
                let (sb, cycles) = (&sb, &cycles);
                s.spawn(move || {
                    let mut n = 0;
                    loop {
                        let name = format!("w{w}-{n}");
                        sb.pont_ok(&sleeper_args(&name, "web", &[]));
                        if Instant::now() >= deadline {
                            return; // the last one stays running
                        }
                        sb.pont_ok(&["stop", "-t", "0", &name]);
                        sb.pont_ok(&["rm", &name]);
                        cycles.fetch_add(1, Ordering::Relaxed);
                        n += 1;
                    }
                })
            })
            .collect();
        for w in workers {
            if let Err(panic) = w.join() {
                stop.store(true, Ordering::Relaxed);
                std::panic::resume_unwind(panic);
            }
        }
        stop.store(true, Ordering::Relaxed);
        sampler.join().unwrap();
    });
    let recs = records(&sb);
    let live = live_endpoints(&recs);
    assert_eq!(live.len(), 20, "one running container per worker: {live:?}");
    assert_eq!(recs.len(), 20, "every other record was removed");
    let listed = json(&sb.pont_ok(&["ps", "--format", "json"]));
    assert_eq!(listed.as_array().map(Vec::len), Some(20));
    eprintln!(
        "churn: {} run/stop/rm cycles by 20 workers in {:?}, {} samples",
        cycles.load(Ordering::Relaxed),
        churn_duration(),
        samples.load(Ordering::Relaxed)
    );
    assert_consistent(&sb, "after the churn");
}

#[test]
fn twenty_networks_created_in_parallel_get_twenty_distinct_subnets() {
    let sb = host_only();
    std::thread::scope(|s| {
        for i in 0..20 {
            let sb = &sb;
            s.spawn(move || sb.pont_ok(&["network", "create", &format!("n{i}")]));
        }
    });
    let nets = json(&sb.pont_ok(&["network", "ls", "--format", "json"]));
    let nets = nets.as_array().unwrap();
    assert_eq!(nets.len(), 20);
    let subnets: BTreeSet<&str> = nets
        .iter()
        .map(|n| n["subnets"][0]["subnet"].as_str().unwrap())
        .collect();
    let bridges: BTreeSet<&str> = nets.iter().map(|n| n["bridge"].as_str().unwrap()).collect();
    assert_eq!((subnets.len(), bridges.len()), (20, 20), "{subnets:?}");
    let links = host_links(&sb);
    assert!(
        bridges.iter().all(|b| links.iter().any(|l| l == b)),
        "{links:?}"
    );
    assert_consistent(&sb, "after 20 parallel network creations");
}

/// A few operations of each kind on `backend`, all of which must succeed.
fn exercise(sb: &Sandbox, backend: &str, env: &[(&str, &str)]) {
    let run = |args: &[&str]| {
        let mut full = vec!["--firewall", backend];
        full.extend_from_slice(args);
        let mut cmd = sb.pont_command(&full);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("pont runs");
        assert!(out.status.success(), "pont {full:?} failed: {out:?}");
    };
    run(&["network", "create", "busy", "--subnet", "10.90.3.0/24"]);
    run(&sleeper_args("s", "busy", &["-p", "8080:80"]));
    run(&["port", "add", "s", "8081:81/udp"]);
    run(&["port", "rm", "s", "8080:80"]);
    run(&["rm", "-f", "s"]);
    run(&["network", "rm", "busy"]);
}

#[test]
fn iptables_backend_works_while_another_process_holds_the_xtables_lock() {
    let sb = host_only();
    // iptables takes its lock at $XTABLES_LOCKFILE (default /run/xtables.lock,
    // shared by the whole machine): point pont's at a file of this sandbox.
    let lock = sb.root().join("xtables.lock");
    std::fs::write(&lock, b"").unwrap();
    let lock_text = lock.display().to_string();
    let mut holder = sb.spawn_in(Ns::Host, &["flock", &lock_text, "sleep", "3"]);
    let started = Instant::now();
    exercise(&sb, "iptables", &[("XTABLES_LOCKFILE", &lock_text)]);
    eprintln!(
        "iptables operations under a held xtables lock took {:?} (holder still running: {})",
        started.elapsed(),
        holder.try_wait().is_none()
    );
    assert_consistent(&sb, "after the iptables operations");
}

#[test]
fn nftables_backend_works_next_to_an_unrelated_nft_transaction_loop() {
    let sb = host_only();
    let script = r#"
nft add table inet other
nft add set inet other seen '{ type ipv4_addr; }'
end=$((SECONDS + 3)); n=0
while ((SECONDS < end)); do
    nft add element inet other seen "{ 192.0.2.$((n % 250 + 1)) }" || exit 1
    nft flush set inet other seen || exit 1
    n=$((n + 1))
done
echo "transactions $n"
"#;
    let mut other = sb.spawn_in(Ns::Host, &["bash", "-c", script]);
    let started = Instant::now();
    exercise(&sb, "nftables", &[]);
    let took = started.elapsed();
    let finished = testkit::wait_until(Duration::from_secs(10), || other.try_wait().is_some());
    assert!(finished, "the nft loop did not end");
    let report = other.stdout();
    assert!(
        report.starts_with("transactions "),
        "the nft loop failed: {}",
        other.stderr()
    );
    eprintln!("nftables operations next to an nft loop took {took:?}; loop: {report}");
    let other_table = sb.run_ok(Ns::Host, &["nft", "list", "table", "inet", "other"]);
    assert!(other_table.contains("set seen"), "{other_table}");
    assert_consistent(&sb, "after the nftables operations");
}
