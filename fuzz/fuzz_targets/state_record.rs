//! The state-record loader: any bytes give a record or an error naming the
//! file, never a panic; and a record it accepts can go through everything
//! pont does with records (names, interface names, firewall plans, rules).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pont::firewall::{plan, Backend};
use pont::state::{decode_container, decode_network};

fuzz_target!(|data: &[u8]| {
    let path = Path::new("config.json");
    let container = decode_container(path, data);
    let network = decode_network(Path::new(""), data);
    if let Err(e) = &container {
        assert!(e.to_string().contains("config.json"), "{e}");
    }
    let containers: Vec<_> = container.into_iter().collect();
    let networks: Vec<_> = network.into_iter().collect();
    for c in &containers {
        let _ = c.short_id();
        for m in &c.ports {
            let _ = m.display();
        }
    }
    let rules = plan(&networks, &containers);
    for backend in Backend::ALL {
        let _ = backend.render(&rules);
    }
});
