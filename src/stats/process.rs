//! Per-process facts from `/proc`: network counters of a namespace, open
//! file descriptors, and the namespaces and cgroups a process lives in.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::parse::{self, Interface};
use crate::cgroups::Cgroups;

/// The interfaces of `pid`'s network namespace, loopback left out.
pub fn interfaces(proc_root: &Path, pid: i64) -> Option<Vec<Interface>> {
    let text = fs::read_to_string(proc_root.join(pid.to_string()).join("net/dev")).ok()?;
    Some(
        parse::net_dev(&text)
            .into_iter()
            .filter(|i| i.name != "lo")
            .collect(),
    )
}

/// The interface kubelet treats as the pod's own: `eth0` where present.
pub const DEFAULT_INTERFACE: &str = "eth0";

/// Open file descriptors of every process in `pids`.
pub fn file_descriptors(proc_root: &Path, pids: &[i64]) -> u64 {
    descriptors(proc_root, pids).0
}

/// Open file descriptors, and how many of them are sockets, of every
/// process in `pids`.
pub fn descriptors(proc_root: &Path, pids: &[i64]) -> (u64, u64) {
    let (mut fds, mut sockets) = (0, 0);
    for pid in pids {
        let Ok(dir) = fs::read_dir(proc_root.join(pid.to_string()).join("fd")) else {
            continue;
        };
        for entry in dir.flatten() {
            fds += 1;
            if fs::read_link(entry.path())
                .is_ok_and(|t| t.as_os_str().as_encoded_bytes().starts_with(b"socket:"))
            {
                sockets += 1;
            }
        }
    }
    (fds, sockets)
}

pub const NAMESPACES: [&str; 6] = ["net", "ipc", "pid", "uts", "mnt", "cgroup"];

/// Where `pid` lives, for verbose status: each namespace's path and inode
/// (two processes sharing a namespace show the same inode) and its cgroup
/// directories.
pub fn placement_info(cgroups: &Cgroups, pid: i64) -> serde_json::Value {
    let proc_dir = cgroups.proc_root().join(pid.to_string());
    let mut namespaces = serde_json::Map::new();
    for ns in NAMESPACES {
        let path = proc_dir.join("ns").join(ns);
        // stat follows the magic link to the namespace inode itself.
        let inode = fs::metadata(&path).ok().map(|m| m.ino());
        namespaces.insert(
            ns.to_string(),
            serde_json::json!({ "path": path.display().to_string(), "inode": inode }),
        );
    }
    let mut cgroup_paths = serde_json::Map::new();
    if let Ok(placement) = cgroups.placement_of(pid) {
        if let Some(dir) = &placement.unified {
            cgroup_paths.insert("unified".into(), dir.display().to_string().into());
        }
        for (controller, dir) in &placement.v1 {
            cgroup_paths.insert(controller.clone(), dir.display().to_string().into());
        }
    }
    serde_json::json!({ "namespaces": namespaces, "cgroupPaths": cgroup_paths })
}

/// Every process of a cgroup directory.
pub fn pids_in(dir: &Path) -> Vec<i64> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}
