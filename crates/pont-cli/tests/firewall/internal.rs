//! Behaviour 3: an internal network has no way out, not even by a default
//! route its container sets itself, and the host's addresses are closed to it.

use testkit::Ns;

use crate::lab::*;
use crate::probe::*;

/// Everything an internal container must not reach (given the lab's addresses).
fn outside<'a>(lab: &Lab, from: From<'a>, other: &str) -> Vec<Vec<Check>> {
    [WAN, NEIGHBOUR, HOST_IP, "10.83.1.1", "10.83.2.1", other]
        .iter()
        .map(|ip| lab.blocked(from, ip, ALL))
        .collect()
}

fn internal_network_has_no_way_out(backend: &'static str) {
    let lab = Lab::new(backend);
    let servers = lab.servers(&[
        (Ns::Wan, WAN),
        (Ns::Neighbour, NEIGHBOUR),
        (Ns::Host, "0.0.0.0"),
    ]);
    let (outside_servers, host) = servers.split_at(2);
    lab.network("vault", "10.83.1.0/24", &["--internal"]);
    lab.network("web", "10.83.2.0/24", &[]);
    let i = lab.service("i", "vault", &[]);
    let j = lab.service("j", "vault", &[]);
    let w = lab.service("w", "web", &[]);
    let routes = lab.in_container("i", &["ip", "-4", "route", "show"]);
    assert_eq!(
        String::from_utf8_lossy(&routes.stdout),
        format!("10.83.1.0/24 dev eth0 proto kernel scope link src {i} \n"),
        "{backend}: an internal network's container gets no default route"
    );
    lab.sb.run_ok(
        Ns::Neighbour,
        &["ip", "route", "add", "10.83.1.0/24", "via", HOST_IP],
    );
    let mut checks = outside(&lab, From::C("i"), &w);
    checks.extend([
        lab.reach(From::C("i"), &j, ALL),
        lab.blocked(From::C("w"), &i, ALL),
        lab.blocked(From::Ns(Ns::Neighbour), &i, ALL),
        // The controls: the same services answer an ordinary network.
        lab.reach(From::C("w"), HOST_IP, ALL),
        lab.reach(From::C("w"), WAN, ALL),
    ]);
    lab.expect(checks);

    // The container is root with CAP_NET_ADMIN: its own default route changes nothing.
    lab.pont_ok(&[
        "exec",
        "i",
        "--",
        "ip",
        "route",
        "add",
        "default",
        "via",
        "10.83.1.1",
    ]);
    lab.expect(outside(&lab, From::C("i"), &w));
    for server in outside_servers {
        let seen = testkit::reported_peers(server);
        assert!(
            seen.iter().all(|p| p == HOST_IP),
            "{backend}: only the masqueraded web container may have reached {}: {seen:?}",
            server.argv()
        );
    }
    let seen_by_host: Vec<String> = host.iter().flat_map(testkit::reported_peers).collect();
    assert!(
        seen_by_host.iter().all(|p| *p == w),
        "{backend}: the host's services saw {seen_by_host:?}; only {w} may reach them"
    );
}

on_both_backends!(internal_network_has_no_way_out);
