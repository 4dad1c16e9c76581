//! Issue 2 end to end: networks, containers, veths, addresses, masquerade,
//! lifecycle and cleanup, each in its own sandbox.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn two_containers_on_one_network_ping_and_reach_tcp() {
    let sb = sandbox();
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.77.1.0/24"]);
    sb.pont_ok(&[
        "run",
        "-d",
        "--name",
        "api",
        "--network",
        "web",
        "--",
        "python3",
        "-m",
        "http.server",
        "80",
    ]);
    sb.pont_ok(&[
        "run",
        "-d",
        "--name",
        "client",
        "--network",
        "web",
        "--",
        "sleep",
        "100",
    ]);
    let api = ip_of(&sb, "api", "web");
    assert_eq!(api, "10.77.1.2", "addresses are handed out lowest first");
    assert_eq!(ip_of(&sb, "client", "web"), "10.77.1.3");

    sb.pont_ok(&["exec", "client", "--", "ping", "-c1", "-W2", &api]);
    let fetch = format!(
        "exec 3<>/dev/tcp/{api}/80 && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && head -1 <&3"
    );
    let ok = testkit::wait_until(Duration::from_secs(5), || {
        sb.pont(&["exec", "client", "--", "bash", "-c", &fetch])
            .status
            .success()
    });
    assert!(ok, "client could not fetch http://{api}/");
    let line = sb.pont_ok(&["exec", "client", "--", "bash", "-c", &fetch]);
    assert!(line.starts_with("HTTP/1.0 200"), "{line}");

    // The host namespace reaches the container directly.
    assert!(sb.can_tcp_connect(Ns::Host, &format!("{api}:80"), SECOND));
    assert!(sb.can_ping(Ns::Host, &api, SECOND));
}

#[test]
fn container_reaches_wan_behind_masquerade() {
    let sb = sandbox();
    let reporter = sb.spawn_peer_reporter(Ns::Wan, "203.0.113.10:9000");
    sb.pont_ok(&["network", "create", "out", "--subnet", "10.77.2.0/24"]);
    sb.pont_ok(&[
        "run",
        "-d",
        "--name",
        "c",
        "--network",
        "out",
        "--",
        "sleep",
        "100",
    ]);
    sb.pont_ok(&["exec", "c", "--", "ping", "-c1", "-W2", "203.0.113.10"]);
    let seen = sb.pont_ok(&[
        "exec",
        "c",
        "--",
        "bash",
        "-c",
        "exec 3<>/dev/tcp/203.0.113.10/9000 && head -1 <&3",
    ]);
    assert_eq!(
        seen.trim(),
        "192.0.2.2",
        "the WAN host must see the sandbox host's address"
    );
    assert!(testkit::reported_peers(&reporter)
        .iter()
        .all(|p| p == "192.0.2.2"));
}

#[test]
fn networks_without_subnet_get_distinct_free_subnets() {
    let sb = sandbox();
    // A route on the sandbox host that covers the first pool entry must be skipped.
    sb.run_ok(
        Ns::Host,
        &["ip", "route", "add", "172.17.0.0/16", "via", "192.0.2.1"],
    );
    sb.pont_ok(&["network", "create", "a"]);
    sb.pont_ok(&["network", "create", "b"]);
    let a = json(&sb.pont_ok(&["network", "inspect", "a"]));
    let b = json(&sb.pont_ok(&["network", "inspect", "b"]));
    assert_eq!(a["subnets"][0]["subnet"], "172.18.0.0/16");
    assert_eq!(a["subnets"][0]["gateway"], "172.18.0.1");
    assert_eq!(b["subnets"][0]["subnet"], "172.19.0.0/16");
    // And an explicit subnet over that route is refused, naming the route.
    let err = sb.pont_err(&["network", "create", "c", "--subnet", "172.17.5.0/24"]);
    assert!(
        err.contains("172.17.5.0/24") && err.contains("route 172.17.0.0/16"),
        "{err}"
    );
}

#[test]
fn exited_container_frees_everything_and_keeps_its_exit_code() {
    let sb = host_only();
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.77.3.0/24"]);
    sb.pont_ok(&[
        "run",
        "-d",
        "--name",
        "brief",
        "--network",
        "web",
        "--",
        "sh",
        "-c",
        "sleep 0.5; exit 3",
    ]);
    let veth = inspect(&sb, "brief")["networks"]["web"]["host_interface"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(host_links(&sb).contains(&veth));
    let doc = wait_exited(&sb, "brief");
    assert_eq!(doc["exit_code"], 3);
    assert_eq!(doc["networks"], serde_json::json!({}));
    let gone = testkit::wait_until(SECOND, || !host_links(&sb).contains(&veth));
    assert!(gone, "veth {veth} still present after the container exited");
    // The address is free again: the next container gets it.
    sb.pont_ok(&[
        "run",
        "-d",
        "--name",
        "next",
        "--network",
        "web",
        "--",
        "sleep",
        "100",
    ]);
    assert_eq!(ip_of(&sb, "next", "web"), "10.77.3.2");
}

#[test]
fn signal_exit_is_recorded_as_128_plus_signal() {
    let sb = host_only();
    sb.pont_ok(&[
        "run",
        "-d",
        "--name",
        "victim",
        "--network",
        "none",
        "--",
        "sleep",
        "100",
    ]);
    sb.pont_ok(&["stop", "-t", "5", "victim"]);
    // sleep dies of the forwarded SIGTERM.
    assert_eq!(wait_exited(&sb, "victim")["exit_code"], 128 + 15);
}

#[test]
fn rm_force_and_network_rm_leave_the_host_as_it_was() {
    let sb = sandbox();
    let before = sb.host_snapshot();
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.77.4.0/24"]);
    sb.pont_ok(&[
        "run",
        "-d",
        "--name",
        "a",
        "--network",
        "web",
        "--",
        "sleep",
        "100",
    ]);
    sb.pont_ok(&[
        "run",
        "-d",
        "--name",
        "b",
        "--network",
        "web",
        "--",
        "sleep",
        "100",
    ]);
    let err = sb.pont_err(&["network", "rm", "web"]);
    assert!(
        err.contains("in use") && err.contains('a') && err.contains('b'),
        "{err}"
    );
    let err = sb.pont_err(&["rm", "a"]);
    assert!(err.contains("running"), "{err}");
    sb.pont_ok(&["rm", "-f", "a", "b"]);
    assert_eq!(sb.pont_ok(&["ps", "-a", "-q"]), "");
    sb.pont_ok(&["network", "rm", "web"]);
    let clean = testkit::wait_until(Duration::from_secs(2), || sb.host_snapshot() == before);
    assert!(
        clean,
        "host differs:\nbefore:\n{before}\nafter:\n{}",
        sb.host_snapshot()
    );
}

#[test]
fn foreground_run_passes_exit_codes_and_stdio() {
    let sb = host_only();
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.77.5.0/24"]);
    let out = sb.pont(&[
        "run",
        "--rm",
        "--network",
        "web",
        "--",
        "sh",
        "-c",
        "echo hi; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    assert_eq!(
        sb.pont(&["run", "--rm", "--network", "web", "--", "no-such-cmd"])
            .status
            .code(),
        Some(127)
    );
    assert_eq!(
        sb.pont(&["run", "--rm", "--network", "web", "--", "/etc/hosts"])
            .status
            .code(),
        Some(126)
    );
    assert_eq!(
        sb.pont(&["run", "--rm", "--network", "nope", "--", "true"])
            .status
            .code(),
        Some(125)
    );
    assert_eq!(sb.pont_ok(&["ps", "-a", "-q"]), "", "--rm leaves no record");
}

#[test]
fn container_sees_its_own_namespaces_and_files() {
    let sb = host_only();
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.77.6.0/24"]);
    let out = sb.pont_ok(&[
        "run", "--rm", "--name", "box", "--network", "web", "-e", "GREETING=hello", "--",
        "sh", "-c", "hostname; echo $GREETING; echo $$; cat /etc/hosts | tail -1; ls /sys/class/net | sort | tr '\\n' ' '; echo; ip -4 route show default",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "box");
    assert_eq!(lines[1], "hello");
    assert_eq!(
        lines[2], "2",
        "the command is PID 2 under pont's init in a new PID namespace"
    );
    assert_eq!(lines[3], "10.77.6.2\tbox");
    assert_eq!(lines[4].trim(), "eth0 lo");
    assert!(
        lines[5].starts_with("default via 10.77.6.1 dev eth0"),
        "{out}"
    );
    let resolv = sb.pont_ok(&[
        "run",
        "--rm",
        "--network",
        "web",
        "--",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert!(
        !resolv.contains("127.0.0."),
        "loopback name servers leak into the container: {resolv}"
    );
    assert!(resolv.contains("nameserver"), "{resolv}");
}

#[test]
fn network_none_and_host() {
    let sb = sandbox();
    let none = sb.pont_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--",
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(none.trim(), "lo");
    let host = sb.pont_ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--",
        "ls",
        "/sys/class/net",
    ]);
    assert!(host.contains("uplink0"), "{host}");
}

#[test]
fn default_network_is_made_on_first_use() {
    let sb = host_only();
    sb.pont_ok(&["run", "-d", "--name", "d", "--", "sleep", "100"]);
    let net = json(&sb.pont_ok(&["network", "inspect", "pont"]));
    assert_eq!(net["bridge"], "pont0");
    assert_eq!(net["subnets"][0]["subnet"], "172.17.0.0/16");
    assert_eq!(ip_of(&sb, "d", "pont"), "172.17.0.2");
    assert!(host_links(&sb).contains(&"pont0".to_string()));
}

#[test]
fn stop_then_start_keeps_name_network_and_address() {
    let sb = host_only();
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.77.7.0/24"]);
    sb.pont_ok(&[
        "run",
        "-d",
        "--name",
        "svc",
        "--network",
        "web",
        "--ip",
        "10.77.7.50",
        "--",
        "sleep",
        "100",
    ]);
    sb.pont_ok(&[
        "run",
        "-d",
        "--name",
        "dyn",
        "--network",
        "web",
        "--",
        "sleep",
        "100",
    ]);
    assert_eq!(ip_of(&sb, "dyn", "web"), "10.77.7.2");
    sb.pont_ok(&["stop", "-t", "1", "svc", "dyn"]);
    assert_eq!(inspect(&sb, "svc")["state"], "exited");
    sb.pont_ok(&["start", "svc", "dyn"]);
    assert_eq!(ip_of(&sb, "svc", "web"), "10.77.7.50");
    assert_eq!(ip_of(&sb, "dyn", "web"), "10.77.7.2");
    assert!(sb.can_ping(Ns::Host, "10.77.7.50", SECOND));
    let err = sb.pont_err(&["start", "svc"]);
    assert!(err.contains("already running"), "{err}");
}

#[test]
fn logs_show_detached_output() {
    let sb = host_only();
    sb.pont_ok(&[
        "run",
        "-d",
        "--name",
        "talker",
        "--network",
        "none",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2",
    ]);
    wait_exited(&sb, "talker");
    let logs = sb.pont_ok(&["logs", "talker"]);
    assert!(logs.contains("out\n") && logs.contains("err\n"), "{logs}");
    let followed = sb.pont_ok(&["logs", "-f", "talker"]);
    assert_eq!(followed, logs);
}

#[test]
fn ps_and_network_ls_formats() {
    let sb = host_only();
    sb.pont_ok(&[
        "network",
        "create",
        "web",
        "--subnet",
        "10.77.8.0/24",
        "--internal",
        "--opt",
        "icc=false",
        "--mtu",
        "1400",
    ]);
    sb.pont_ok(&[
        "run",
        "-d",
        "--name",
        "p",
        "--network",
        "web",
        "--",
        "sleep",
        "100",
    ]);
    let nets = json(&sb.pont_ok(&["network", "ls", "--format", "json"]));
    assert_eq!(nets[0]["name"], "web");
    assert_eq!(nets[0]["internal"], true);
    assert_eq!(nets[0]["icc"], false);
    assert_eq!(nets[0]["mtu"], 1400);
    assert_eq!(nets[0]["containers"]["p"]["ipv4"], "10.77.8.2/24");
    let mtu = sb.pont_ok(&["exec", "p", "--", "cat", "/sys/class/net/eth0/mtu"]);
    assert_eq!(mtu.trim(), "1400");
    let ps = json(&sb.pont_ok(&["ps", "--format", "json"]));
    assert_eq!(ps[0]["name"], "p");
    assert_eq!(ps[0]["state"], "running");
    assert_eq!(ps[0]["ports"], serde_json::json!([]));
    let table = sb.pont_ok(&["ps"]);
    assert!(
        table.lines().nth(1).unwrap().contains("web:10.77.8.2"),
        "{table}"
    );
}

#[test]
fn twenty_parallel_runs_get_distinct_addresses_that_all_answer() {
    let sb = host_only();
    sb.pont_ok(&["network", "create", "many", "--subnet", "10.77.9.0/24"]);
    std::thread::scope(|s| {
        let runs: Vec<_> = (0..20)
            .map(|i| {
                let sb = &sb;
                s.spawn(move || {
                    let name = format!("c{i}");
                    sb.pont_ok(&[
                        "run",
                        "-d",
                        "--name",
                        &name,
                        "--network",
                        "many",
                        "--",
                        "sleep",
                        "100",
                    ])
                })
            })
            .collect();
        runs.into_iter().for_each(|r| drop(r.join().unwrap()));
    });
    let mut ips: Vec<String> = (0..20)
        .map(|i| ip_of(&sb, &format!("c{i}"), "many"))
        .collect();
    for ip in &ips {
        assert!(sb.can_ping(Ns::Host, ip, SECOND), "{ip} does not answer");
    }
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 20, "addresses collided: {ips:?}");
}

#[test]
fn run_options_reach_the_container() {
    let sb = host_only();
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.77.10.0/24"]);
    let out = sb.pont_ok(&[
        "run",
        "--rm",
        "--network",
        "web",
        "--ip",
        "10.77.10.77",
        "--mac",
        "02:42:0a:4d:0a:4d",
        "--hostname",
        "box.example",
        "-w",
        "/tmp",
        "--",
        "sh",
        "-c",
        "hostname; pwd; cat /sys/class/net/eth0/address; ip -4 -o addr show eth0",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        &lines[..3],
        ["box.example", "/tmp", "02:42:0a:4d:0a:4d"],
        "{out}"
    );
    assert!(lines[3].contains("inet 10.77.10.77/24"), "{out}");
    sb.pont_ok(&[
        "run",
        "-d",
        "--name",
        "envy",
        "--network",
        "web",
        "-e",
        "A=1",
        "--",
        "sleep",
        "100",
    ]);
    let env = sb.pont_ok(&["exec", "-e", "B=2", "envy", "--", "sh", "-c", "echo $A$B"]);
    assert_eq!(env, "12\n");
    assert_eq!(
        sb.pont(&["exec", "envy", "--", "sh", "-c", "exit 4"])
            .status
            .code(),
        Some(4)
    );
}

#[test]
fn foreground_pont_forwards_signals_to_the_container() {
    let sb = host_only();
    let mut child = sb
        .pont_command(&["run", "--rm", "--network", "none", "--", "sleep", "100"])
        .spawn()
        .expect("pont runs");
    // Wait until the container runs, then signal pont itself (the monitor).
    let running = testkit::wait_until(Duration::from_secs(5), || {
        sb.pont_ok(&["ps", "-q"]).lines().count() == 1
    });
    assert!(running, "the container did not start");
    // `ip netns exec` execs pont, so the child's pid is pont's.
    let pid = child.id().to_string();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    assert!(term.unwrap().success());
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(128 + 15),
        "sleep must die of the forwarded SIGTERM"
    );
    assert_eq!(sb.pont_ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn rootfs_pivots_into_a_directory() {
    let sb = host_only();
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let busybox = busybox.expect("busybox-static is installed by scripts/install-deps.sh");
    let root = sb.root().join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    for dir in ["proc", "sys", "dev", "etc", "tmp"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
    for tool in ["sh", "ls", "cat", "hostname"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(tool)).unwrap();
    }
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.77.11.0/24"]);
    let rootfs = root.to_str().unwrap();
    let out = sb.pont_ok(&[
        "run",
        "--rm",
        "--name",
        "tiny",
        "--network",
        "web",
        "--rootfs",
        rootfs,
        "--",
        "/bin/sh",
        "-c",
        "ls /; tail -1 /etc/hosts; ls /sys/class/net",
    ]);
    assert!(out.starts_with("bin\ndev\netc\nproc\nsys\ntmp\n"), "{out}");
    assert!(out.contains("10.77.11.2\ttiny\n"), "{out}");
    assert!(out.contains("eth0"), "{out}");
}

#[test]
fn start_right_after_an_exit_succeeds() {
    // The kernel removes an exited container's veth in the background; a
    // restart must not trip over it (each launch names its veth afresh).
    let sb = host_only();
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.77.12.0/24"]);
    for i in 0..5 {
        let name = format!("again{i}");
        let out = sb.pont(&[
            "run",
            "--name",
            &name,
            "--network",
            "web",
            "--",
            "sh",
            "-c",
            "exit 3",
        ]);
        assert_eq!(out.status.code(), Some(3));
        sb.pont_ok(&["start", &name]);
        let doc = wait_exited(&sb, &name);
        assert_eq!(doc["exit_code"], 3, "{doc}");
    }
}

#[test]
fn run_e_name_passes_ponts_value_or_leaves_it_unset() {
    let sb = host_only();
    let mut cmd = sb.pont_command(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-e",
        "PONT_T_SET",
        "-e",
        "PONT_T_UNSET",
        "-e",
        "HOME",
        "--",
        "env",
    ]);
    cmd.env("PONT_T_SET", "from pont")
        .env_remove("PONT_T_UNSET")
        .env_remove("HOME");
    let out = sb.output(cmd);
    assert!(out.status.success(), "{out:?}");
    let env = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = env.lines().collect();
    assert!(lines.contains(&"PONT_T_SET=from pont"), "{env}");
    assert!(
        !lines.iter().any(|l| l.starts_with("PONT_T_UNSET")),
        "-e of an unset variable must leave it unset, as Docker: {env}"
    );
    // Unset in pont, so the container keeps its own default rather than "".
    assert!(lines.contains(&"HOME=/root"), "{env}");
}

#[test]
fn ps_lists_newest_first_and_ports_only_while_published() {
    let sb = host_only();
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.77.13.0/24"]);
    let run = |name: &str, extra: &[&str]| {
        let mut args = vec!["run", "-d", "--name", name, "--network", "web"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "sleep", "100"]);
        sb.pont_ok(&args)[..12].to_string()
    };
    let first = run("first", &["-p", "8080:80"]);
    let second = run("second", &[]);
    let third = run("third", &[]);
    // Made within the same second: the order still holds.
    assert_eq!(
        sb.pont_ok(&["ps", "-q"]),
        format!("{third}\n{second}\n{first}\n")
    );
    let names = |doc: &serde_json::Value| -> Vec<String> {
        let all = doc.as_array().unwrap();
        all.iter()
            .map(|c| c["name"].as_str().unwrap().into())
            .collect()
    };
    let ps = json(&sb.pont_ok(&["ps", "--format", "json"]));
    assert_eq!(names(&ps), ["third", "second", "first"]);
    assert_eq!(ps[2]["ports"][0]["host_port"], "8080", "{ps}");
    let table = sb.pont_ok(&["ps"]);
    assert!(table.lines().nth(3).unwrap().contains("8080"), "{table}");

    sb.pont_ok(&["stop", "-t", "1", "first"]);
    let ps = json(&sb.pont_ok(&["ps", "-a", "--format", "json"]));
    assert_eq!(names(&ps), ["third", "second", "first"]);
    assert_eq!(ps[2]["state"], "exited");
    assert_eq!(ps[2]["ports"], serde_json::json!([]), "as docker ps: {ps}");
    let table = sb.pont_ok(&["ps", "-a"]);
    assert!(!table.contains("8080"), "{table}");
    // The record keeps them for `start`.
    assert_eq!(inspect(&sb, "first")["ports"][0]["host_port"], "8080");
    sb.pont_ok(&["start", "first"]);
    let ps = json(&sb.pont_ok(&["ps", "--format", "json"]));
    assert_eq!(
        names(&ps),
        ["third", "second", "first"],
        "by creation, not start"
    );
    assert_eq!(ps[2]["ports"][0]["host_port"], "8080");
}

/// What keeps a container's setup from costing more as containers are added
/// (issue 6): the bridge has no multicast snooping, and neither end of an
/// endpoint does IPv6 autoconfiguration, whose multicast the bridge would copy
/// to every port.
#[test]
fn endpoints_add_no_per_port_work_to_the_bridge() {
    let sb = host_only();
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.77.30.0/24"]);
    sb.pont_ok(&[
        "run",
        "-d",
        "--name",
        "quiet",
        "--network",
        "web",
        "--",
        "sleep",
        "100",
    ]);
    let net = json(&sb.pont_ok(&["network", "inspect", "web"]));
    let bridge = net["bridge"].as_str().unwrap();
    let details = sb.run_ok(Ns::Host, &["ip", "-d", "link", "show", bridge]);
    assert!(details.contains("mcast_snooping 0"), "{details}");
    let veth = inspect(&sb, "quiet")["networks"]["web"]["host_interface"]
        .as_str()
        .unwrap()
        .to_string();
    let sysctl = format!("net.ipv6.conf.{veth}.disable_ipv6");
    assert_eq!(sb.run_ok(Ns::Host, &["sysctl", "-n", &sysctl]).trim(), "1");
    let inet6 = sb.pont_ok(&[
        "exec", "quiet", "--", "ip", "-6", "-o", "addr", "show", "eth0",
    ]);
    assert_eq!(inet6.trim(), "", "eth0 has no IPv6 address");
    let ping = sb.pont(&["exec", "quiet", "--", "ping", "-c1", "-W2", "10.77.30.1"]);
    assert!(ping.status.success(), "the gateway answers over IPv4");
    sb.pont_ok(&["rm", "-f", "quiet"]);
}
