//! How records look to users: aligned tables and JSON documents.

use pont::model::{ContainerRecord, ContainerState, Limits, NetMode, NetworkRecord, PortMapping};
use serde_json::{json, Map, Value};

pub fn print_table(rows: &[Vec<String>]) {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", line.join("   ").trim_end());
    }
}

/// One name asked for: one object. Several: an array in the same order.
pub fn print_json_one_or_many(mut docs: Vec<Value>) -> anyhow::Result<()> {
    let doc = if docs.len() == 1 {
        docs.remove(0)
    } else {
        Value::Array(docs)
    };
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}

pub fn network_json(n: &NetworkRecord, containers: &[ContainerRecord]) -> Value {
    let mut attached = Map::new();
    for c in containers {
        for e in c.endpoints.iter().filter(|e| e.network == n.name) {
            attached.insert(
                c.name.clone(),
                json!({
                    "id": c.id,
                    "ipv4": format!("{}/{}", e.ipv4, e.prefix_len),
                    "mac": e.mac.to_string(),
                    "host_interface": e.host_interface,
                }),
            );
        }
    }
    json!({
        "name": n.name,
        "id": n.id,
        "bridge": n.bridge,
        "subnets": [{
            "subnet": n.subnet.to_string(),
            "gateway": n.gateway.to_string(),
            "ip_range": n.ip_range.map(|r| r.to_string()),
        }],
        "mtu": n.mtu,
        "internal": n.internal,
        "icc": n.icc,
        "created": n.created,
        "containers": attached,
    })
}

pub fn state_name(s: ContainerState) -> &'static str {
    match s {
        ContainerState::Creating => "created",
        ContainerState::Running => "running",
        ContainerState::Exited => "exited",
    }
}

pub fn container_json(c: &ContainerRecord) -> Value {
    let mut networks = Map::new();
    for e in &c.endpoints {
        networks.insert(
            e.network.clone(),
            json!({
                "interface": e.interface,
                "mac": e.mac.to_string(),
                "ipv4": format!("{}/{}", e.ipv4, e.prefix_len),
                "gateway": e.gateway.to_string(),
                "host_interface": e.host_interface,
            }),
        );
    }
    let network_mode = match &c.net_mode {
        NetMode::Bridge(n) => n.as_str(),
        NetMode::None => "none",
        NetMode::Host => "host",
    };
    json!({
        "id": c.id,
        "name": c.name,
        "state": state_name(c.state),
        "pid": c.pid,
        "exit_code": c.exit_code,
        "created": c.created,
        "started": c.started,
        "finished": c.finished,
        "command": c.argv,
        "hostname": c.hostname,
        "network_mode": network_mode,
        "networks": networks,
        "ports": c.ports.iter().map(port_json).collect::<Vec<_>>(),
        "limits": limits_json(&c.limits),
        "oom_killed": c.oom_killed,
    })
}

/// The limits in effect (null: none). `memory_swap` is memory plus swap, -1 for
/// unlimited swap, twice `memory` when not given (as Docker).
fn limits_json(l: &Limits) -> Value {
    let memory_swap = match l.effective_memory_swap() {
        Some(Some(total)) => json!(total),
        Some(None) => json!(-1),
        None => Value::Null,
    };
    json!({
        "memory": l.memory,
        "memory_swap": memory_swap,
        "cpus": l.cpus(),
        "cpu_shares": l.cpu_shares,
        "pids_limit": l.pids,
    })
}

fn port_json(m: &PortMapping) -> Value {
    json!({
        "host_ip": m.host_ip.map_or("0.0.0.0".to_string(), |ip| ip.to_string()),
        "host_port": m.host_ports.to_string(),
        "container_port": m.container_ports.to_string(),
        "protocol": m.protocol.as_str(),
    })
}

/// `80/tcp -> 0.0.0.0:8080`, as `docker port` prints it.
pub fn port_line(m: &PortMapping) -> String {
    let ip = match m.host_ip {
        None => "0.0.0.0".to_string(),
        Some(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
        Some(ip) => ip.to_string(),
    };
    format!(
        "{}/{} -> {ip}:{}",
        m.container_ports, m.protocol, m.host_ports
    )
}
