//! `-p` specs: parsing never panics, and an accepted spec means what it says
//! (ranges ordered and of equal length) and prints back to the same spec.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pont::model::{PortMapping, PortSpec};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(spec) = text.parse::<PortSpec>() else {
        return;
    };
    let c = spec.container_ports;
    assert!(c.start >= 1 && c.start <= c.end, "{text:?} -> {spec:?}");
    if let Some(h) = spec.host_ports {
        assert!(h.start >= 1 && h.start <= h.end, "{text:?} -> {spec:?}");
        assert_eq!(h.count(), c.count(), "{text:?}");
        let m = PortMapping {
            host_ip: spec.host_ip,
            host_ports: h,
            container_ports: c,
            protocol: spec.protocol,
        };
        assert!(m.matches(&spec) && m.conflicts_with(&m), "{text:?}");
        let _ = m.display();
    }
    let ip = match spec.host_ip {
        Some(std::net::IpAddr::V6(v6)) => format!("[{v6}]:"),
        Some(ip) => format!("{ip}:"),
        None => String::new(),
    };
    let host = spec.host_ports.map(|h| h.to_string()).unwrap_or_default();
    let canonical = if ip.is_empty() && host.is_empty() {
        format!("{c}/{}", spec.protocol)
    } else {
        format!("{ip}{host}:{c}/{}", spec.protocol)
    };
    let again: PortSpec = canonical
        .parse()
        .unwrap_or_else(|e| panic!("{text:?} accepted, its canonical {canonical:?} refused: {e}"));
    assert_eq!(again, spec, "{text:?} versus {canonical:?}");
});
