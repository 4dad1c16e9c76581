//! Issue 3 end to end: isolation, internal networks, icc, the admin chain,
//! coexistence with other rules, restore after a flush, and clean removal.
//! Every scenario is a function of the backend and runs as one test on each:
//! `firewall::<module>::nftables::<scenario>` and `...::iptables::...`.

/// One `#[test]` per backend for each `fn scenario(backend: &'static str)`.
macro_rules! on_both_backends {
    ($($scenario:ident),+ $(,)?) => {
        mod nftables {
            $( #[test] fn $scenario() { super::$scenario("nftables") } )+
        }
        mod iptables {
            $( #[test] fn $scenario() { super::$scenario("iptables") } )+
        }
    };
}

#[path = "firewall/lab.rs"]
mod lab;
#[path = "firewall/probe.rs"]
mod probe;

#[path = "firewall/isolation.rs"]
mod isolation;

#[path = "firewall/internal.rs"]
mod internal;

#[path = "firewall/admin.rs"]
mod admin;

#[path = "firewall/restore.rs"]
mod restore;

#[path = "firewall/backends.rs"]
mod backends;
