//! End to end: a bridge in one namespace, a "container" namespace attached by a veth pair,
//! and UDP datagrams from the container to the bridge's addresses. Also times the netlink
//! work of attaching one container (printed; run with `--nocapture` to see it).

use std::{
    net::{IpAddr, SocketAddr, UdpSocket},
    os::fd::{AsFd, BorrowedFd},
    time::{Duration, Instant},
};

use super::{fresh_netns, in_fresh_netns, in_netns};
use crate::netlink::Netlink;

const GATEWAY: &str = "10.99.0.1";
const CONTAINER: &str = "10.99.0.2";
/// Only reachable from the container through its default route.
const BEYOND: &str = "10.98.0.1";

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// Host side: a bridge that is up, with the gateway address and one more address.
fn host_bridge(host: &mut Netlink) -> u32 {
    let bridge = host.create_bridge("pont-br0", 1500).unwrap();
    host.add_address(bridge, ip(GATEWAY), 24).unwrap();
    host.add_address(bridge, ip(BEYOND), 32).unwrap();
    host.set_up(bridge).unwrap();
    bridge
}

/// The steps of [`attach`], in order, as the timing report names them.
const STEPS: [&str; 8] = [
    "open_in",
    "create_veth",
    "set_master",
    "set_up (host end)",
    "link_by_name (peer)",
    "set_up (peer)",
    "add_address",
    "add_route",
];

/// Time between successive laps.
struct Stopwatch {
    last: Instant,
    laps: Vec<Duration>,
}

impl Stopwatch {
    fn start() -> Stopwatch {
        Stopwatch {
            last: Instant::now(),
            laps: Vec::with_capacity(STEPS.len()),
        }
    }

    fn lap(&mut self) {
        let now = Instant::now();
        self.laps.push(now - self.last);
        self.last = now;
    }
}

/// Attach `container` to `bridge`, as the engine will for each container; returns the time
/// each of the [`STEPS`] took.
fn attach(host: &mut Netlink, bridge: u32, container: BorrowedFd<'_>, name: &str) -> Vec<Duration> {
    let mut watch = Stopwatch::start();
    let mut guest = Netlink::open_in(container).unwrap();
    watch.lap();
    let mac = [0x02, 0x42, 0x0a, 0x63, 0x00, 0x02];
    let veth = host
        .create_veth(name, "eth0", container, 1500, Some(mac))
        .unwrap();
    watch.lap();
    host.set_master(veth, bridge).unwrap();
    watch.lap();
    host.set_up(veth).unwrap();
    watch.lap();
    let eth0 = guest.link_by_name("eth0").unwrap().unwrap().index;
    watch.lap();
    guest.set_up(eth0).unwrap();
    watch.lap();
    guest.add_address(eth0, ip(CONTAINER), 24).unwrap();
    watch.lap();
    guest.add_route(None, Some(ip(GATEWAY)), None).unwrap();
    watch.lap();
    watch.laps
}

/// Send datagrams from a thread in `container` to `to` until one arrives at `rx` (the first
/// may be lost while the new links come up), and return its sender.
fn udp_round(container: BorrowedFd<'_>, rx: &UdpSocket, to: SocketAddr) -> SocketAddr {
    rx.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let tx = in_netns(container, || UdpSocket::bind("0.0.0.0:0").unwrap());
    let mut buf = [0; 64];
    for _ in 0..25 {
        tx.send_to(b"pont", to).unwrap();
        if let Ok((len, from)) = rx.recv_from(&mut buf) {
            assert_eq!(&buf[..len], b"pont");
            return from;
        }
    }
    panic!("no datagram from the container reached {to} in 5 s");
}

#[test]
fn udp_from_container_reaches_bridge_addresses() {
    in_fresh_netns(|| {
        let container = fresh_netns();
        let mut host = Netlink::open().unwrap();
        let bridge = host_bridge(&mut host);
        attach(&mut host, bridge, container.as_fd(), "veth-c0");

        // This thread is in the host namespace, so its sockets are too.
        for to in [GATEWAY, BEYOND] {
            let rx = UdpSocket::bind((ip(to), 0)).unwrap();
            let from = udp_round(container.as_fd(), &rx, rx.local_addr().unwrap());
            assert_eq!(from.ip(), ip(CONTAINER), "datagram to {to}");
        }
    });
}

#[test]
fn time_attaching_containers() {
    const CONTAINERS: u32 = 20;
    in_fresh_netns(|| {
        let mut host = Netlink::open().unwrap();
        let bridge = host_bridge(&mut host);
        let mut all = Vec::new();
        for i in 0..CONTAINERS {
            let container = fresh_netns();
            all.push(attach(
                &mut host,
                bridge,
                container.as_fd(),
                &format!("veth-c{i}"),
            ));
        }
        report(&all);
    });
}

/// Print the mean time of each step and the median of the totals.
fn report(all: &[Vec<Duration>]) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("netlink work per container, {} containers (ms):", all.len());
    for (step, name) in STEPS.iter().enumerate() {
        let mean = all.iter().map(|laps| ms(laps[step])).sum::<f64>() / all.len() as f64;
        println!("  {name:<20} mean {mean:7.3}");
    }
    let mut totals: Vec<f64> = all
        .iter()
        .map(|laps| laps.iter().copied().map(ms).sum())
        .collect();
    totals.sort_by(f64::total_cmp);
    let median = totals[totals.len() / 2];
    let (min, max) = (totals[0], totals[totals.len() - 1]);
    println!("  total: median {median:.3}, min {min:.3}, max {max:.3}");
}
