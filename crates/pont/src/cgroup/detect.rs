//! Which cgroup layout this machine has (read from `/proc/self/cgroup`) and where its
//! hierarchies are mounted in this mount namespace (read from `/proc/self/mountinfo`).
//! Pure parsing: the callers read the files.

use std::path::PathBuf;

use super::Controller;

/// A cgroup v1 hierarchy holding some of pont's controllers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct V1Hierarchy {
    /// What names the hierarchy when mounting it: all its controllers, and `name=X` for a
    /// named one, exactly as `/proc/self/cgroup` lists them. A v1 mount must name the
    /// whole set (mounting `cpu` alone where `cpu,cpuacct` share a hierarchy is EBUSY).
    pub options: Vec<String>,
    /// pont's controllers on it.
    pub controllers: Vec<Controller>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Layout {
    /// Some of pont's controllers are bound to v1 hierarchies: pont uses those (and only
    /// those) controllers through v1, even if a v2 hierarchy is mounted too (systemd's
    /// "hybrid" layout, and this project's test machines).
    V1(Vec<V1Hierarchy>),
    /// None is: the unified hierarchy.
    V2,
}

/// The layout from the text of `/proc/self/cgroup` (`ID:CONTROLLERS:PATH` per line; ID 0
/// with no controllers is the v2 hierarchy).
pub(super) fn layout(proc_self_cgroup: &str) -> Layout {
    let mut hierarchies = Vec::new();
    for line in proc_self_cgroup.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(id), Some(list)) = (fields.next(), fields.next()) else {
            continue;
        };
        if id == "0" || list.is_empty() {
            continue;
        }
        let options: Vec<String> = list.split(',').map(str::to_string).collect();
        let controllers: Vec<Controller> = Controller::ALL
            .into_iter()
            .filter(|c| options.iter().any(|o| o == c.name()))
            .collect();
        if !controllers.is_empty() {
            hierarchies.push(V1Hierarchy {
                options,
                controllers,
            });
        }
    }
    if hierarchies.is_empty() {
        Layout::V2
    } else {
        Layout::V1(hierarchies)
    }
}

/// One line of `/proc/self/mountinfo` (proc(5)), the fields pont needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Mount {
    /// The directory of the file system that is mounted (`/` for a whole hierarchy).
    pub root: String,
    pub mount_point: PathBuf,
    pub read_only: bool,
    pub fs_type: String,
    pub super_options: Vec<String>,
}

pub(super) fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_mount_line).collect()
}

fn parse_mount_line(line: &str) -> Option<Mount> {
    // ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS
    let (left, right) = line.split_once(" - ")?;
    let left: Vec<&str> = left.split(' ').collect();
    let right: Vec<&str> = right.split(' ').collect();
    let (root, mount_point, options) = (left.get(3)?, left.get(4)?, left.get(5)?);
    Some(Mount {
        root: unescape(root),
        mount_point: PathBuf::from(unescape(mount_point)),
        read_only: options.split(',').any(|o| o == "ro"),
        fs_type: right.first()?.to_string(),
        super_options: right
            .get(2)
            .map(|o| o.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
    })
}

/// mountinfo writes space, tab, newline and backslash as `\ooo` octal escapes.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal.and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok()) {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A whole (root `/`), writable mount of the v1 hierarchy `hierarchy`. A mount of a
/// subdirectory (a container's view) would put pont's cgroups somewhere else than where
/// another pont process, mounting the hierarchy itself, puts them.
pub(super) fn find_v1(mounts: &[Mount], hierarchy: &V1Hierarchy) -> Option<PathBuf> {
    let first = hierarchy.options.first()?;
    mounts
        .iter()
        .find(|m| {
            m.fs_type == "cgroup"
                && m.root == "/"
                && !m.read_only
                && m.super_options.iter().any(|o| o == first)
        })
        .map(|m| m.mount_point.clone())
}

/// A whole, writable mount of the v2 hierarchy.
pub(super) fn find_v2(mounts: &[Mount]) -> Option<PathBuf> {
    mounts
        .iter()
        .find(|m| m.fs_type == "cgroup2" && m.root == "/" && !m.read_only)
        .map(|m| m.mount_point.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This project's machines: every controller on its own v1 hierarchy, plus v2.
    const SPLIT_V1: &str = "9:name=systemd:/\n8:pids:/\n7:blkio:/\n4:memory:/process_api/x\n\
                            3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n";

    #[test]
    fn v1_hierarchies_with_pont_controllers() {
        let Layout::V1(list) = layout(SPLIT_V1) else {
            panic!("not v1");
        };
        let names: Vec<Vec<String>> = list.iter().map(|h| h.options.clone()).collect();
        assert_eq!(names, [["pids"], ["memory"], ["cpuacct"], ["cpu"]]);
        assert_eq!(list[1].controllers, [Controller::Memory]);
    }

    #[test]
    fn shared_and_named_v1_hierarchies_keep_all_their_options() {
        let text = "3:cpu,cpuacct,name=x:/\n2:memory:/\n1:name=systemd:/\n";
        let Layout::V1(list) = layout(text) else {
            panic!("not v1");
        };
        assert_eq!(list[0].options, ["cpu", "cpuacct", "name=x"]);
        assert_eq!(list[0].controllers, [Controller::Cpu, Controller::CpuAcct]);
        assert_eq!(list.len(), 2, "name=systemd holds no controller of pont's");
    }

    #[test]
    fn unified_only_is_v2() {
        assert_eq!(layout("0::/user.slice/session-1.scope\n"), Layout::V2);
        assert_eq!(layout("1:name=systemd:/\n0::/\n"), Layout::V2);
    }

    #[test]
    fn mountinfo_finds_whole_writable_hierarchies() {
        let text = "\
35 24 0:30 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory
36 24 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
37 24 0:30 /docker/abc /mnt/mem rw,relatime - cgroup cgroup rw,memory
38 24 0:32 / /sys/fs/cgroup/unified ro,relatime - cgroup2 cgroup2 rw,nsdelegate
39 24 0:32 / /run/my\\040cg rw,relatime - cgroup2 cgroup2 rw
";
        let mounts = parse_mountinfo(text);
        assert_eq!(mounts.len(), 5);
        let memory = V1Hierarchy {
            options: vec!["memory".into()],
            controllers: vec![Controller::Memory],
        };
        let cpu = V1Hierarchy {
            options: vec!["cpu".into(), "cpuacct".into()],
            controllers: vec![Controller::Cpu, Controller::CpuAcct],
        };
        let pids = V1Hierarchy {
            options: vec!["pids".into()],
            controllers: vec![Controller::Pids],
        };
        assert_eq!(
            find_v1(&mounts, &memory),
            Some(PathBuf::from("/sys/fs/cgroup/memory"))
        );
        assert_eq!(
            find_v1(&mounts, &cpu),
            Some(PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"))
        );
        assert_eq!(find_v1(&mounts, &pids), None);
        // The read-only one is skipped; the escaped space is decoded.
        assert_eq!(find_v2(&mounts), Some(PathBuf::from("/run/my cg")));
        assert_eq!(find_v2(&mounts[..4]), None);
    }

    #[test]
    fn no_cgroup_mounts_under_ip_netns_exec() {
        let text = "500 499 0:22 / /sys rw,relatime - sysfs pont-t-1 rw\n";
        let mounts = parse_mountinfo(text);
        assert_eq!(find_v2(&mounts), None);
        assert_eq!(unescape("a\\134b\\011"), "a\\b\t");
        assert_eq!(unescape("tail\\"), "tail\\");
    }
}
