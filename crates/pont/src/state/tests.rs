use super::*;
use crate::model::{ContainerState, Ipv4Net, NetMode};

fn temp_root(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pont-state-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn network(name: &str) -> NetworkRecord {
    NetworkRecord {
        name: name.into(),
        id: "ab".repeat(32),
        bridge: "br-abababababab".into(),
        subnet: "10.1.0.0/24".parse::<Ipv4Net>().unwrap(),
        gateway: "10.1.0.1".parse().unwrap(),
        ip_range: None,
        mtu: 1500,
        internal: false,
        icc: true,
        created: 1,
    }
}

fn container(id: &str, name: &str) -> ContainerRecord {
    ContainerRecord {
        id: id.into(),
        name: name.into(),
        state: ContainerState::Running,
        pid: Some(1),
        start_time: Some(2),
        monitor_pid: None,
        monitor_start_time: None,
        exit_code: None,
        created: 3,
        created_subsec_ns: 0,
        started: None,
        finished: None,
        argv: vec!["true".into()],
        env: vec![],
        workdir: None,
        rootfs: None,
        hostname: name.into(),
        net_mode: NetMode::None,
        requested_ip: None,
        requested_mac: None,
        last_ipv4: None,
        endpoints: vec![],
        ports: vec![],
        auto_remove: false,
        detached: false,
        limits: Default::default(),
        oom_killed: false,
    }
}

#[test]
fn records_round_trip() {
    let root = temp_root("roundtrip");
    let store = Store::open(&root).unwrap();
    let lock = store.lock().unwrap();
    store.save_network(&lock, &network("web")).unwrap();
    assert_eq!(store.network("web").unwrap(), Some(network("web")));
    assert_eq!(store.networks().unwrap(), vec![network("web")]);
    store.remove_network(&lock, "web").unwrap();
    store.remove_network(&lock, "web").unwrap(); // repeatable
    assert_eq!(store.networks().unwrap(), vec![]);

    let id = "0123456789abcdef".repeat(4);
    store.save_container(&lock, &container(&id, "api")).unwrap();
    assert_eq!(store.find_container("api").unwrap().unwrap().id, id);
    assert_eq!(store.find_container(&id[..5]).unwrap().unwrap().name, "api");
    assert!(store.find_container("nope").unwrap().is_none());
    store.remove_container(&lock, &id).unwrap();
    assert!(store.containers().unwrap().is_empty());
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn ambiguous_prefix_finds_nothing() {
    let root = temp_root("prefix");
    let store = Store::open(&root).unwrap();
    let lock = store.lock().unwrap();
    store
        .save_container(&lock, &container(&"a1".repeat(32), "one"))
        .unwrap();
    store
        .save_container(&lock, &container(&"a2".repeat(32), "two"))
        .unwrap();
    assert!(store.find_container("a").unwrap().is_none());
    assert_eq!(store.find_container("a2").unwrap().unwrap().name, "two");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn corrupt_record_names_the_file_and_is_not_dropped() {
    let root = temp_root("corrupt");
    let store = Store::open(&root).unwrap();
    let lock = store.lock().unwrap();
    store.save_network(&lock, &network("good")).unwrap();
    std::fs::write(root.join("networks/bad.json"), b"{\"name\": \"bad\", tru").unwrap();
    let err = store.networks().unwrap_err().to_string();
    assert!(err.starts_with("corrupt state file "), "{err}");
    assert!(err.contains("networks/bad.json"), "{err}");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn interrupted_write_temporaries_are_ignored() {
    let root = temp_root("tmp");
    let store = Store::open(&root).unwrap();
    std::fs::write(root.join("networks/.web.json.tmp.99"), b"{").unwrap();
    assert!(store.networks().unwrap().is_empty());
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn container_records_from_before_limits_load() {
    let mut json = serde_json::to_value(container("0123456789abcdef", "old")).unwrap();
    let fields = json.as_object_mut().unwrap();
    fields.remove("limits").unwrap();
    fields.remove("oom_killed").unwrap();
    let old: ContainerRecord = serde_json::from_value(json).unwrap();
    assert!(old.limits.is_empty());
    assert!(!old.oom_killed);
}

#[test]
fn records_that_break_invariants_are_refused_naming_file_and_field() {
    let root = temp_root("invalid");
    let store = Store::open(&root).unwrap();
    let lock = store.lock().unwrap();
    let id = "0123456789abcdef".repeat(4);
    let mut bad = container(&id, "api");
    bad.ports.push(crate::model::PortMapping {
        host_ip: None,
        host_ports: crate::model::PortRange { start: 90, end: 80 },
        container_ports: crate::model::PortRange { start: 90, end: 80 },
        protocol: crate::model::Protocol::Tcp,
    });
    store.save_container(&lock, &bad).unwrap();
    let err = store.containers().unwrap_err().to_string();
    assert!(err.starts_with("invalid state file "), "{err}");
    assert!(
        err.contains(&format!("containers/{id}/config.json")),
        "{err}"
    );
    assert!(err.contains("reversed"), "{err}");

    // A record in another container's directory, and an id too short to slice.
    let short = serde_json::to_string(&container("abc", "x")).unwrap();
    let path = Path::new("containers/abc/config.json");
    let err = decode_container(path, short.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(err.contains("not 64 hex digits"), "{err}");
    let other = serde_json::to_string(&container(&id, "x")).unwrap();
    let err = decode_container(path, other.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not match its directory"), "{err}");

    let mut net = network("web");
    net.gateway = "10.2.0.1".parse().unwrap();
    let text = serde_json::to_string(&net).unwrap();
    let err = decode_network(Path::new("networks/web.json"), text.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("gateway 10.2.0.1 is outside subnet 10.1.0.0/24"),
        "{err}"
    );
    let text = serde_json::to_string(&network("web")).unwrap();
    let err = decode_network(Path::new("networks/other.json"), text.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not match the file name"), "{err}");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn lock_remembers_a_holder_that_died_holding_it() {
    let root = temp_root("lockmark");
    let store = Store::open(&root).unwrap();
    drop(store.lock().unwrap());
    assert!(
        !store.lock().unwrap().needs_repair(),
        "a clean unlock leaves no mark"
    );
    // What a killed holder leaves: its PID in the file.
    std::fs::write(root.join("lock"), b"4242\n").unwrap();
    let lock = store.lock().unwrap();
    assert!(lock.needs_repair());
    drop(lock);
    let lock = store.lock().unwrap();
    assert!(lock.needs_repair(), "the mark stays until someone repairs");
    lock.repaired();
    drop(lock);
    assert!(!store.lock().unwrap().needs_repair());
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_directory_without_its_record_is_loose_not_a_record() {
    let root = temp_root("loose");
    let store = Store::open(&root).unwrap();
    let lock = store.lock().unwrap();
    let dir = root.join("containers").join("ab".repeat(32));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("hosts"), b"").unwrap();
    assert!(store.containers().unwrap().is_empty());
    assert_eq!(store.loose_container_dirs().unwrap(), vec![dir.clone()]);
    store.remove_loose_dir(&lock, &dir).unwrap();
    assert!(!dir.exists());
    std::fs::remove_dir_all(&root).unwrap();
}

fn endpoint(network: &str, ip: &str) -> crate::model::Endpoint {
    let ipv4: std::net::Ipv4Addr = ip.parse().unwrap();
    crate::model::Endpoint {
        network: network.into(),
        interface: "eth0".into(),
        host_interface: "veth0123456789a".into(),
        mac: crate::engine::mac_for(ipv4),
        ipv4,
        prefix_len: 24,
        gateway: "10.1.0.1".parse().unwrap(),
        static_ip: false,
    }
}

fn held(store: &Store, network: &str) -> Vec<String> {
    let mut ips: Vec<String> = store
        .allocations(network)
        .unwrap()
        .iter()
        .map(|a| a.ipv4.to_string())
        .collect();
    ips.sort();
    ips
}

#[test]
fn the_indexes_follow_every_save_and_removal() {
    let root = temp_root("indexes");
    let store = Store::open(&root).unwrap();
    let lock = store.lock().unwrap();
    let (a, b) = ("a".repeat(64), "b".repeat(64));
    let mut one = container(&a, "one");
    one.endpoints = vec![endpoint("web", "10.1.0.2")];
    store.save_container(&lock, &one).unwrap();
    let mut two = container(&b, "two");
    two.endpoints = vec![endpoint("web", "10.1.0.3")];
    let http = crate::model::PortMapping {
        host_ip: Some("127.0.0.1".parse().unwrap()),
        host_ports: crate::model::PortRange {
            start: 8080,
            end: 8081,
        },
        container_ports: crate::model::PortRange { start: 80, end: 81 },
        protocol: crate::model::Protocol::Tcp,
    };
    two.ports = vec![http.clone()];
    store.save_container(&lock, &two).unwrap();
    assert_eq!(held(&store, "web"), ["10.1.0.2", "10.1.0.3"]);
    assert_eq!(
        store.published_ports().unwrap(),
        std::slice::from_ref(&http)
    );
    assert_eq!(store.port_owner(&http).unwrap(), "two");
    assert_eq!(store.allocation_count().unwrap(), 2);
    assert_eq!(store.find_container("two").unwrap().unwrap().id, b);
    assert!(store.name_taken("one").unwrap());

    // Exited: the address is free, the name is still taken (as with Docker).
    one.state = ContainerState::Exited;
    store.save_container(&lock, &one).unwrap();
    assert_eq!(held(&store, "web"), ["10.1.0.3"]);
    assert!(store.name_taken("one").unwrap());

    two.state = ContainerState::Exited;
    store.save_container(&lock, &two).unwrap();
    assert!(
        store.published_ports().unwrap().is_empty(),
        "exited: port free"
    );

    // Removed: the name is free too.
    store.remove_container(&lock, &a).unwrap();
    assert!(!store.name_taken("one").unwrap());
    assert!(store.find_container("one").unwrap().is_none());
    let all = store.containers().unwrap();
    assert!(store.indexes_match(&all).unwrap());
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn indexes_are_rebuilt_from_the_records() {
    let root = temp_root("rebuild");
    let store = Store::open(&root).unwrap();
    let lock = store.lock().unwrap();
    assert!(!store.has_indexes(), "a root from before the indexes");
    let mut one = container(&"c".repeat(64), "one");
    one.endpoints = vec![endpoint("web", "10.1.0.7")];
    store.save_container(&lock, &one).unwrap();
    // What a crash between an index entry and its record leaves: a stale entry
    // (10.1.0.9 in web's address map: byte 1, bit 1).
    let map = root.join("addresses/web/10.1.0.0-24");
    let mut bits = std::fs::read(&map).unwrap();
    bits.resize(2, 0);
    bits[1] |= 0b10;
    std::fs::write(&map, bits).unwrap();
    std::fs::write(root.join("names/ghost"), "d".repeat(64)).unwrap();
    let all = store.containers().unwrap();
    assert!(!store.indexes_match(&all).unwrap());
    assert!(
        !store.name_taken("ghost").unwrap(),
        "a name without a record is free"
    );
    store.rebuild_indexes(&lock, &all).unwrap();
    assert!(store.indexes_match(&all).unwrap());
    assert_eq!(held(&store, "web"), ["10.1.0.7"]);
    assert!(store.has_indexes());
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_root_with_the_old_address_index_is_rebuilt() {
    let root = temp_root("old-index");
    let store = Store::open(&root).unwrap();
    let lock = store.lock().unwrap();
    // What the previous layout left: names/ and allocations/, no addresses/.
    std::fs::create_dir_all(root.join("names")).unwrap();
    std::fs::create_dir_all(root.join("allocations/web")).unwrap();
    std::fs::write(root.join("allocations/web/10.1.0.9,02:42:0a:01:00:09"), "x").unwrap();
    assert!(!store.has_indexes());
    store.rebuild_indexes(&lock, &[]).unwrap();
    assert!(store.has_indexes());
    assert!(!root.join("allocations").exists(), "the old index is gone");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn address_map_and_mac_entries_follow_the_endpoints() {
    let root = temp_root("addresses");
    let store = Store::open(&root).unwrap();
    let lock = store.lock().unwrap();
    let subnet: Ipv4Net = "10.1.0.0/24".parse().unwrap();
    let (a, b, c) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
    let mut one = container(&a, "one");
    one.endpoints = vec![endpoint("web", "10.1.0.2")];
    store.save_container(&lock, &one).unwrap();
    // Two containers given the same --mac (which nothing forbids): each is indexed.
    let own = crate::model::MacAddr([0x02, 0, 0, 0, 0, 7]);
    let mut two = container(&b, "two");
    two.endpoints = vec![endpoint("web", "10.1.0.3")];
    two.endpoints[0].mac = own;
    store.save_container(&lock, &two).unwrap();
    let mut three = container(&c, "three");
    three.endpoints = vec![endpoint("web", "10.1.0.4")];
    three.endpoints[0].mac = own;
    store.save_container(&lock, &three).unwrap();

    let held = store.address_map("web", subnet).unwrap();
    use crate::ipam::AddressesInUse;
    assert!(held.contains("10.1.0.2".parse().unwrap()));
    assert_eq!(
        held.first_free("10.1.0.2".parse().unwrap()),
        "10.1.0.5".parse().ok()
    );
    assert!(store.mac_taken("web", own, &held).unwrap());
    let derived = crate::engine::mac_for("10.1.0.2".parse().unwrap());
    assert!(store.mac_taken("web", derived, &held).unwrap());
    let free = crate::engine::mac_for("10.1.0.9".parse().unwrap());
    assert!(!store.mac_taken("web", free, &held).unwrap());
    let all = store.containers().unwrap();
    assert!(store.indexes_match(&all).unwrap());
    assert_eq!(store.allocation_count().unwrap(), 3);

    store.remove_container(&lock, &b).unwrap();
    let held = store.address_map("web", subnet).unwrap();
    assert!(!held.contains("10.1.0.3".parse().unwrap()));
    assert!(
        store.mac_taken("web", own, &held).unwrap(),
        "three still has it"
    );
    store.remove_container(&lock, &c).unwrap();
    let held = store.address_map("web", subnet).unwrap();
    assert!(!store.mac_taken("web", own, &held).unwrap());
    assert!(!root.join("addresses/web").join(own.to_string()).exists());
    assert_eq!(store.allocation_count().unwrap(), 1);
    let all = store.containers().unwrap();
    assert!(store.indexes_match(&all).unwrap());
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_saved_record_keeps_the_one_it_replaced_and_never_rewrites_a_file() {
    use std::os::unix::fs::MetadataExt;
    let root = temp_root("previous");
    let store = Store::open(&root).unwrap();
    let lock = store.lock().unwrap();
    let id = "d".repeat(64);
    let mut rec = container(&id, "keep");
    rec.state = ContainerState::Creating;
    store.save_container(&lock, &rec).unwrap();
    let path = store.container_dir(&id).join("config.json");
    let prev = store.container_dir(&id).join(".config.json.prev");
    let first = std::fs::metadata(&path).unwrap().ino();
    assert!(!prev.exists(), "a first save replaces nothing");

    rec.state = ContainerState::Running;
    store.save_container(&lock, &rec).unwrap();
    // The replaced record is the same file, untouched: a reader that had it
    // open still reads it whole.
    assert_eq!(std::fs::metadata(&prev).unwrap().ino(), first);
    let kept: ContainerRecord = serde_json::from_slice(&std::fs::read(&prev).unwrap()).unwrap();
    assert_eq!(kept.state, ContainerState::Creating);
    assert_eq!(
        store.container(&id).unwrap().unwrap().state,
        ContainerState::Running
    );
    assert!(
        store.containers().unwrap().len() == 1,
        "the kept one is no record"
    );

    rec.state = ContainerState::Exited;
    store.save_container(&lock, &rec).unwrap();
    let kept: ContainerRecord = serde_json::from_slice(&std::fs::read(&prev).unwrap()).unwrap();
    assert_eq!(kept.state, ContainerState::Running);
    store.remove_container(&lock, &id).unwrap();
    assert!(!store.container_dir(&id).exists());
    std::fs::remove_dir_all(&root).unwrap();
}

fn tcp(host: (u16, u16), ip: Option<&str>) -> crate::model::PortMapping {
    use crate::model::{PortMapping, PortRange, Protocol};
    let (start, end) = host;
    PortMapping {
        host_ip: ip.map(|i| i.parse().unwrap()),
        host_ports: PortRange { start, end },
        container_ports: PortRange {
            start: 1000,
            end: 1000 + (end - start),
        },
        protocol: Protocol::Tcp,
    }
}

#[test]
fn a_port_range_is_indexed_in_every_block_it_spans_and_listed_once() {
    use crate::model::{PortRange, Protocol};
    let root = temp_root("port-blocks");
    let store = Store::open(&root).unwrap();
    let lock = store.lock().unwrap();
    store.rebuild_indexes(&lock, &[]).unwrap();
    // 500-1100: blocks 1 (256-511) to 4 (1024-1279).
    let wide = tcp((500, 1100), None);
    let mut one = container(&"a".repeat(64), "one");
    one.ports = vec![wide.clone(), tcp((40000, 40000), Some("127.0.0.1"))];
    store.save_container(&lock, &one).unwrap();
    let name = "tcp,*,500-1100,1000-1600";
    for block in 1..=4 {
        assert!(root.join(format!("ports/tcp/{block}/{name}")).exists());
    }
    assert!(!root.join(format!("ports/tcp/0/{name}")).exists());
    assert!(!root.join(format!("ports/tcp/5/{name}")).exists());
    assert_eq!(store.published_ports().unwrap().len(), 2, "deduped");
    // A query spanning blocks 3 and 4 sees it once; one past its end, none.
    let near = |s, e| store.published_ports_near(Protocol::Tcp, PortRange { start: s, end: e });
    assert_eq!(near(800, 1279).unwrap(), std::slice::from_ref(&wide));
    assert!(
        near(1101, 1279).unwrap().is_empty(),
        "same block, no overlap"
    );
    assert!(store
        .published_ports_near(
            Protocol::Udp,
            PortRange {
                start: 500,
                end: 500
            }
        )
        .unwrap()
        .is_empty());
    assert_eq!(store.port_owner(&wide).unwrap(), "one");
    assert!(store.indexes_match(&store.containers().unwrap()).unwrap());

    one.state = ContainerState::Exited;
    store.save_container(&lock, &one).unwrap();
    assert!(store.published_ports().unwrap().is_empty());
    for block in 1..=4 {
        assert!(!root.join(format!("ports/tcp/{block}/{name}")).exists());
    }
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_conflict_is_found_across_a_block_boundary() {
    use crate::model::{PortRange, Protocol};
    let root = temp_root("port-boundary");
    let store = Store::open(&root).unwrap();
    let lock = store.lock().unwrap();
    // 39900-39940 ends in block 155 (39680-39935) and reaches into 156.
    let mut one = container(&"a".repeat(64), "one");
    one.ports = vec![tcp((39900, 39940), None)];
    store.save_container(&lock, &one).unwrap();
    // A request that lies wholly in block 156 still meets it.
    let asked = tcp((39936, 39936), Some("127.0.0.1"));
    let near = store
        .published_ports_near(Protocol::Tcp, PortRange::single(39936))
        .unwrap();
    assert_eq!(near.len(), 1);
    assert!(near[0].conflicts_with(&asked));
    assert_eq!(store.port_owner(&near[0]).unwrap(), "one");
    assert!(store
        .published_ports_near(Protocol::Tcp, PortRange::single(39941))
        .unwrap()
        .is_empty());
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_port_missing_from_one_of_its_blocks_is_a_difference() {
    let root = temp_root("port-partial");
    let store = Store::open(&root).unwrap();
    let lock = store.lock().unwrap();
    let mut one = container(&"a".repeat(64), "one");
    one.ports = vec![tcp((250, 260), None)];
    store.save_container(&lock, &one).unwrap();
    let all = store.containers().unwrap();
    assert!(store.indexes_match(&all).unwrap());
    std::fs::remove_file(root.join("ports/tcp/1/tcp,*,250-260,1000-1010")).unwrap();
    assert!(!store.indexes_match(&all).unwrap());
    store.rebuild_indexes(&lock, &all).unwrap();
    assert!(store.indexes_match(&all).unwrap());
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_root_with_the_flat_port_index_is_rebuilt() {
    let root = temp_root("old-ports");
    let store = Store::open(&root).unwrap();
    let lock = store.lock().unwrap();
    let mut one = container(&"a".repeat(64), "one");
    one.ports = vec![tcp((8080, 8080), None)];
    store.save_container(&lock, &one).unwrap();
    // What the previous layout left: names/, addresses/, ports/ with flat entries.
    std::fs::remove_dir_all(root.join("ports")).unwrap();
    std::fs::create_dir_all(root.join("ports")).unwrap();
    std::fs::write(root.join("ports/tcp,*,8080-8080,1000-1000"), "one").unwrap();
    assert!(!store.has_indexes(), "the flat layout is no index");
    let all = store.containers().unwrap();
    store.rebuild_indexes(&lock, &all).unwrap();
    assert!(store.has_indexes());
    assert!(!root.join("ports/tcp,*,8080-8080,1000-1000").exists());
    assert!(root.join("ports/tcp/31/tcp,*,8080-8080,1000-1000").exists());
    assert!(store.indexes_match(&all).unwrap());
    std::fs::remove_dir_all(&root).unwrap();
}
