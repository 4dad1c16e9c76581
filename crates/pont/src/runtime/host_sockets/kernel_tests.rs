//! Kernel tests: each runs in fresh network namespaces of its own, on threads that
//! unshared them (see `netlink::tests::in_fresh_netns`), so ports can be fixed.

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::diag::{Diag, Query};
use super::*;
use crate::netlink::tests::in_fresh_netns;
use crate::netlink::Netlink;

/// Loopback is down in a fresh namespace, without 127.0.0.1 or ::1 until it is up.
fn loopback_up() {
    // Index 1 is lo in every namespace.
    Netlink::open()
        .expect("netlink")
        .set_up(1)
        .expect("set lo up");
}

fn sorted(socks: &[Socket]) -> Vec<String> {
    let mut names: Vec<String> = socks.iter().map(Socket::to_string).collect();
    names.sort();
    names
}

/// What `listening()` reports, from sock_diag and from /proc, in the calling thread's
/// namespace.
fn both_ways() -> (Vec<String>, Vec<String>) {
    let diag = sorted(&list().expect("list over sock_diag"));
    let proc = sorted(&from_proc().expect("list from /proc"));
    (diag, proc)
}

#[test]
fn lists_listeners_and_bound_udp_of_its_own_namespace_only() {
    let (ready_tx, ready) = mpsc::channel();
    let (finish, finish_rx) = mpsc::channel::<()>();
    thread::scope(|scope| {
        // Another namespace's sockets, alive while the test's namespace is listed.
        scope.spawn(move || {
            in_fresh_netns(move || {
                let _tcp = TcpListener::bind("0.0.0.0:5010").expect("bind 5010");
                let _udp = UdpSocket::bind("0.0.0.0:5011").expect("bind 5011");
                ready_tx.send(()).expect("ready");
                let _ = finish_rx.recv();
            })
        });
        ready.recv().expect("other namespace ready");
        let (diag, proc) = in_fresh_netns(|| {
            loopback_up();
            let listener = TcpListener::bind("127.0.0.1:5001").expect("bind 127.0.0.1:5001");
            let _v6 = TcpListener::bind("[::]:5002").expect("bind [::]:5002");
            let _udp = UdpSocket::bind("0.0.0.0:5003").expect("bind 0.0.0.0:5003");
            // Connected TCP sockets on both ends (ESTABLISHED), neither listening.
            let client = TcpStream::connect("127.0.0.1:5001").expect("connect");
            let (_server_side, _) = listener.accept().expect("accept");
            let client_port = client.local_addr().expect("local addr").port();
            let (diag, proc) = both_ways();
            assert!(
                !diag.iter().any(|s| s.contains(&format!(":{client_port}/"))),
                "the connected socket (port {client_port}) is not listed: {diag:?}"
            );
            (diag, proc)
        });
        finish.send(()).expect("finish");
        assert_eq!(
            diag,
            ["0.0.0.0:5003/udp", "127.0.0.1:5001/tcp", "[::]:5002/tcp"],
            "exactly this namespace's listening and bound sockets"
        );
        assert_eq!(proc, diag, "the /proc fallback reports the same");
    });
}

#[test]
fn v4_mapped_and_ipv6_sockets_read_as_from_proc() {
    let (diag, proc) = in_fresh_netns(|| {
        loopback_up();
        let _mapped = TcpListener::bind("[::ffff:127.0.0.1]:5005").expect("bind v4-mapped");
        let _v6 = TcpListener::bind("[::1]:5006").expect("bind [::1]:5006");
        let _udp6 = UdpSocket::bind("[::1]:5007").expect("bind udp [::1]:5007");
        let _udp4 = UdpSocket::bind("127.0.0.1:5008").expect("bind udp 127.0.0.1:5008");
        // A connected UDP socket (ESTABLISHED) still holds its port.
        let connected = UdpSocket::bind("127.0.0.1:5009").expect("bind udp 127.0.0.1:5009");
        connected.connect("127.0.0.1:5008").expect("connect udp");
        both_ways()
    });
    assert_eq!(
        diag,
        [
            "127.0.0.1:5008/udp",
            "127.0.0.1:5009/udp",
            "[::1]:5006/tcp",
            "[::1]:5007/udp",
            "[::ffff:127.0.0.1]:5005/tcp",
        ]
    );
    assert_eq!(proc, diag, "the /proc fallback reports the same");
}

#[test]
fn nothing_listens_in_a_fresh_namespace() {
    let socks = in_fresh_netns(|| listening().expect("listening"));
    assert_eq!(socks, []);
}

#[test]
fn a_protocol_without_handler_is_unsupported() {
    // 253 is reserved for experiments (RFC 3692): no sock_diag handler and no module to
    // load, so the kernel answers as it does for a udp_diag module that failed to load.
    let error = in_fresh_netns(|| {
        let mut diag = Diag::open().expect("open sock_diag");
        let query = Query::new(libc::AF_INET, 253, u32::MAX);
        let err = diag
            .dump(query, Protocol::Udp, &mut Vec::new())
            .expect_err("no handler for protocol 253");
        // The socket is still usable afterwards.
        diag.dump(
            Query::udp_bound(libc::AF_INET),
            Protocol::Udp,
            &mut Vec::new(),
        )
        .expect("dump UDP after the refused dump");
        err
    });
    assert!(error.is_unsupported(), "{error:?}");
    assert_eq!(
        error.to_string(),
        "cannot list the host's protocol 253/IPv4 sockets over sock_diag"
    );
}

/// Median time of 50 calls of `listening()` and of the /proc fallback in a fresh namespace
/// (the established table /proc walks is shared with the host's namespace).
/// `cargo test --release -p pont --lib host_sockets::kernel_tests::speed -- --ignored --nocapture`
#[test]
#[ignore = "a measurement, not a test"]
fn speed() {
    in_fresh_netns(|| {
        let median = |f: &dyn Fn()| {
            let mut times: Vec<Duration> = (0..50)
                .map(|_| {
                    let start = Instant::now();
                    f();
                    start.elapsed()
                })
                .collect();
            times.sort();
            times[25]
        };
        let diag = median(&|| drop(listening().expect("listening")));
        let proc = median(&|| drop(from_proc().expect("from /proc")));
        println!("listening() over sock_diag: median {diag:?}; /proc fallback: {proc:?}");
    });
}
