//! Issue 4's bad-input list: each bad port spec, host address or `port rm`
//! is a one-line error naming the value, a non-zero exit, and nothing
//! changed in the kernel or the records.

mod common;
#[macro_use]
mod ports_support;

use ports_support::*;

/// Each spec and the text its error must hold.
const BAD_SPECS: &[(&str, &str)] = &[
    (
        "0:80",
        "invalid port spec '0:80': host port 0 is not a port",
    ),
    ("80:0", "container port 0 is not a port"),
    ("0", "container port 0 is not a port"),
    ("70000:80", "host port 70000 is above 65535"),
    ("80:65536", "container port 65536 is above 65535"),
    ("-1:80", "host port '-1' is not a number"),
    ("80:-5", "container port '-5' is not a number"),
    ("8080--8081:80", "'8080--8081'"),
    ("abc:80", "host port 'abc' is not a number"),
    ("80:8x", "container port '8x' is not a number"),
    ("8080:", "container port '' is not a number"),
    ("90-80:90-80", "port range 90-80 is reversed"),
    ("90-80:80", "host port range 90-80 is reversed"),
    (
        "8000-8001:80",
        "host range 8000-8001 and container range 80 differ in length",
    ),
    (
        "8000-8002:80-81",
        "host range 8000-8002 and container range 80-81 differ in length",
    ),
    ("80/icmp", "unknown protocol 'icmp'"),
    ("80/", "unknown protocol ''"),
    ("::1:8080:80", "must be in brackets"),
    ("fe80::1:8080:80", "must be in brackets"),
    ("[::1:8080:80", "unclosed '['"),
    ("[::g]:8080:80", "invalid IPv6 address '::g'"),
    ("[::1]8080:80", "expected ':' after the bracketed address"),
    ("1.2.3:8080:80", "invalid host address '1.2.3'"),
    ("1.2.3.4:80", "'1.2.3.4' is an address, not a host port"),
    ("1:2:3:4", "invalid port spec '1:2:3:4'"),
];

/// Well formed, but not for this host: refused by run and port add; port rm
/// finds no such mapping.
const UNSERVABLE: &[(&str, &str)] = &[
    (
        "[::1]:8080:80",
        "host address ::1 in '[::1]:8080:80/tcp': IPv6 port publishing is not supported yet",
    ),
    (
        "203.0.113.99:8080:80",
        "host address 203.0.113.99 in '203.0.113.99:8080:80/tcp' is not an address of this host",
    ),
    ("10.66.8.2:8080:80", "host address 10.66.8.2"),
];

fn bad_input(backend: Backend) {
    let sb = host_lab(backend);
    sb.pont_ok(&["network", "create", "web", "--subnet", "10.66.8.0/24"]);
    sb.pont_ok(&[
        "network",
        "create",
        "vault",
        "--internal",
        "--subnet",
        "10.66.9.0/24",
    ]);
    run_idle(&sb, "srv", "web");
    sb.pont_ok(&["port", "add", "srv", "8080:80", "127.0.0.1:5353:53/udp"]);
    run_idle(&sb, "stopped", "web");
    sb.pont_ok(&["stop", "-t", "0", "stopped"]);
    run_idle(&sb, "alone", "none");
    let before = host_state(&sb);
    let ids_before = sb.pont_ok(&["ps", "-a", "-q"]);
    let ports_before = sb.pont_ok(&["port", "srv"]);

    for (spec, needle) in BAD_SPECS {
        let run = ["run", "--network", "web", "-p", spec, "--", "true"];
        assert_refused(&sb, &run, needle);
        assert_refused(&sb, &["port", "add", "srv", spec], needle);
        assert_refused(&sb, &["port", "rm", "srv", spec], needle);
    }
    for (spec, needle) in UNSERVABLE {
        let run = ["run", "--network", "web", "-p", spec, "--", "true"];
        assert_refused(&sb, &run, needle);
        assert_refused(&sb, &["port", "add", "srv", spec], needle);
        let missing = format!("no published port matching '{spec}/tcp'");
        assert_refused(&sb, &["port", "rm", "srv", spec], &missing);
    }
    let refusals: &[(&[&str], &str)] = &[
        (
            &["port", "rm", "srv", "9999:80"],
            "container srv has no published port matching '9999:80/tcp'",
        ),
        (
            &["port", "rm", "srv", "8080:80/udp"],
            "no published port matching '8080:80/udp'",
        ),
        (
            &["port", "rm", "srv", "127.0.0.2:5353:53/udp"],
            "no published port matching '127.0.0.2:5353:53/udp'",
        ),
        (
            &["port", "rm", "srv", "8080:80", "9999:80"],
            "'9999:80/tcp'",
        ),
        (&["port", "add", "ghost", "80"], "no such container: ghost"),
        (&["port", "rm", "ghost", "80"], "no such container: ghost"),
        (&["port", "ghost"], "no such container: ghost"),
        (
            &["port", "add", "stopped", "9000:80"],
            "container stopped is not running",
        ),
        (
            &["port", "add", "alone", "9000:80"],
            "need a bridge network",
        ),
        (
            &["run", "--network", "none", "-p", "9000:80", "--", "true"],
            "need a bridge network",
        ),
        (
            &["run", "--network", "vault", "-p", "9000:80", "--", "true"],
            "network vault is internal",
        ),
    ];
    for (args, needle) in refusals {
        assert_refused(&sb, args, needle);
    }
    assert_same_host(&before, &host_state(&sb), "after the refusals");
    assert_eq!(sb.pont_ok(&["ps", "-a", "-q"]), ids_before);
    assert_eq!(sb.pont_ok(&["port", "srv"]), ports_before);
    // `port rm` of two mappings where the second is missing removed neither.
    assert!(
        ports_before.contains("80/tcp -> 0.0.0.0:8080"),
        "{ports_before}"
    );
}

on_both_backends!(bad_input);
