//! Helpers for the crash, concurrency and hostile-input tests: whether a
//! sandbox host is consistent with pont's records, in normalised snapshots,
//! records and processes.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use testkit::Sandbox;

/// The host snapshot with the parts that differ from one run to the next
/// replaced or left out, its lines sorted so that set elements listed in
/// another order compare equal: veth and bridge names (from random ids), and
/// what the kernel derives from the carrier of a bridge, which depends on
/// whether it ever had a port (carrier flags, `linkdown`, IPv6 link-local
/// addresses and routes, which follow the random MAC addresses too).
pub fn normalized_snapshot(sb: &Sandbox) -> String {
    normalize(&sb.host_snapshot())
}

pub fn normalize(text: &str) -> String {
    let text = replace_hex_names(text, "veth", 11);
    let text = replace_hex_names(&text, "br-", 12);
    let text = replace_macs(&text);
    let text = text
        .replace("NO-CARRIER,", "")
        .replace(",LOWER_UP", "")
        .replace(" linkdown", "");
    let mut lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("fe80::") && !l.contains("ff00::/8"))
        .collect();
    lines.sort_unstable();
    lines.join("\n") + "\n"
}

/// MAC addresses (random, and in the anti-spoofing rules) become `<mac>`.
fn replace_macs(text: &str) -> String {
    let is_mac = |w: &[u8]| {
        w.len() == 17
            && w.iter().enumerate().all(|(i, b)| {
                if i % 3 == 2 {
                    *b == b':'
                } else {
                    b.is_ascii_hexdigit()
                }
            })
    };
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if i + 17 <= bytes.len() && is_mac(&bytes[i..i + 17]) {
            out.push_str("<mac>");
            i += 17;
        } else {
            let ch = text[i..].chars().next().expect("in bounds");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// `prefix` followed by exactly `len` lowercase hex digits becomes `prefix<id>`.
fn replace_hex_names(text: &str, prefix: &str, len: usize) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        out.push_str(&rest[..at]);
        let after = &rest[at + prefix.len()..];
        let hex = after
            .bytes()
            .take_while(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            .count();
        out.push_str(prefix);
        if hex == len {
            out.push_str("<id>");
            rest = &after[len..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Waits until the normalised snapshot is one of `expected`; returns the index
/// of the one it matched, or panics showing the difference from each.
pub fn wait_snapshot_in(sb: &Sandbox, expected: &[(&str, &str)], why: &str) -> usize {
    let mut last = String::new();
    let mut matched = None;
    testkit::wait_until(Duration::from_secs(5), || {
        last = normalized_snapshot(sb);
        matched = expected.iter().position(|(_, s)| *s == last);
        matched.is_some()
    });
    match matched {
        Some(i) => i,
        None => {
            let diffs: Vec<String> = expected
                .iter()
                .map(|(name, s)| format!("--- versus {name}:\n{}", diff(s, &last)))
                .collect();
            panic!(
                "{why}: the host matches no expected state\n{}",
                diffs.join("\n")
            )
        }
    }
}

/// Lines only in `want` (-) and only in `got` (+).
pub fn diff(want: &str, got: &str) -> String {
    let w: BTreeSet<&str> = want.lines().collect();
    let g: BTreeSet<&str> = got.lines().collect();
    let mut out = String::new();
    for l in w.difference(&g) {
        out += &format!("- {l}\n");
    }
    for l in g.difference(&w) {
        out += &format!("+ {l}\n");
    }
    out
}

/// The container records, read straight from the state root.
pub fn records(sb: &Sandbox) -> Vec<serde_json::Value> {
    let dir = sb.root().join("containers");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return vec![];
    };
    entries
        .filter_map(|e| std::fs::read(e.ok()?.path().join("config.json")).ok())
        .map(|bytes| serde_json::from_slice(&bytes).expect("a record is JSON"))
        .collect()
}

/// The ids of the container records now in the state root.
pub fn record_ids(sb: &Sandbox) -> BTreeSet<String> {
    records(sb)
        .iter()
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect()
}

/// Asserts that no container among `ids` (every id the test saw) that has no
/// record any more left a cgroup behind: cgroups are machine-wide, `pont/ID`
/// under each hierarchy (v1) or the unified root (v2).
pub fn assert_no_orphan_cgroups(sb: &Sandbox, ids: &BTreeSet<String>, why: &str) {
    let live = record_ids(sb);
    let mut roots: Vec<std::path::PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .map(|d| {
            d.filter_map(|e| Some(e.ok()?.path().join("pont")))
                .collect()
        })
        .unwrap_or_default();
    roots.push("/sys/fs/cgroup/pont".into());
    for id in ids.difference(&live) {
        for root in &roots {
            let dir = root.join(id);
            assert!(!dir.exists(), "{why}: cgroup {} left behind", dir.display());
        }
    }
}

/// Processes of pont (monitors, and container inits before they exec) that
/// belong to this sandbox: their environment names its state root.
pub fn pont_processes(sb: &Sandbox) -> BTreeSet<i32> {
    let needle = format!("PONT_ROOT={}", sb.root().display());
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return BTreeSet::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
                return false;
            };
            let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'))
            });
            !zombie && env.split(|b| *b == 0).any(|v| v == needle.as_bytes())
        })
        .collect()
}

/// Asserts what a consistent host means in records and processes: no launch
/// left half-made, no exited container holding an address or port, no
/// running one whose process is gone, no pont process that no record
/// explains, no loose state, and `pont system check` agrees.
pub fn assert_consistent(sb: &Sandbox, why: &str) {
    let recs = records(sb);
    let mut explained = BTreeSet::new();
    for r in &recs {
        let name = &r["name"];
        assert_ne!(r["state"], "creating", "{why}: {name} left creating");
        if r["state"] == "exited" {
            assert_eq!(
                r["endpoints"],
                serde_json::json!([]),
                "{why}: {name} holds an address"
            );
            assert!(r["pid"].is_null(), "{why}: exited {name} has a pid");
        } else {
            let pid = r["pid"].as_i64().expect("a running record has a pid") as i32;
            assert!(
                Path::new(&format!("/proc/{pid}")).exists(),
                "{why}: {name} is dead"
            );
            explained.insert(pid);
            if let Some(m) = r["monitor_pid"].as_i64() {
                explained.insert(m as i32);
            }
        }
    }
    let mut stray = BTreeSet::new();
    // A killed monitor's init needs a moment to notice and exit.
    testkit::wait_until(Duration::from_secs(5), || {
        stray = &pont_processes(sb) - &explained;
        stray.is_empty()
    });
    assert!(
        stray.is_empty(),
        "{why}: pont processes no record explains: {stray:?}"
    );
    let intents = std::fs::read_dir(sb.root().join("intents"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(intents, 0, "{why}: a network intent is left");
    let out = sb.pont(&["system", "check"]);
    assert!(
        out.status.success(),
        "{why}: system check found differences:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_random_names() {
        let text =
            "veth0123456789a kind=veth master=br-0123456789ab\nvethfoo br-xyz 02:42:ac:11:00:02\n";
        assert_eq!(
            normalize(text),
            "veth<id> kind=veth master=br-<id>\nvethfoo br-xyz <mac>\n"
        );
    }
}
