//! Writing pod-level limits (UpdatePodSandboxResources) into a pod cgroup,
//! on cgroup v1 and v2. Each file is read first and written only when its
//! value differs, so a repeated request changes nothing; the changes made
//! are returned for the log.
//!
//! Blocking file I/O: call it off the async workers.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Cgroups, Version};
use crate::error::{Error, Result};
use crate::mapping::pod_resources::{PodLimits, weight_linear, weight_quadratic};

/// Both cgroup versions hold memory in whole pages and read back the
/// written value rounded down; 4 KiB pages on a host with larger ones only
/// cost one needless (same-value) write.
const PAGE: i64 = 4096;

impl Cgroups {
    /// Brings the pod cgroup at `rel` (see `pod_cgroup_path`) to `limits`.
    /// Returns one line per file changed; empty when all already held.
    pub fn apply_pod_limits(&self, rel: &Path, limits: &PodLimits) -> Result<Vec<String>> {
        let mut changes = Vec::new();
        if limits.is_empty() {
            return Ok(changes);
        }
        let cpu_wanted = limits.cpu_shares.is_some()
            || limits.cpu_quota.is_some()
            || limits.cpu_period.is_some();
        match self.version {
            Version::V1 => {
                if cpu_wanted {
                    let cpu = self.pod_dir_v1("cpu", "cpu,cpuacct", rel)?;
                    if let Some(shares) = limits.cpu_shares {
                        set(
                            &cpu.join("cpu.shares"),
                            &shares.to_string(),
                            same,
                            &mut changes,
                        )?;
                    }
                    if let Some(period) = limits.cpu_period {
                        let file = cpu.join("cpu.cfs_period_us");
                        set(&file, &period.to_string(), same, &mut changes)?;
                    }
                    if let Some(quota) = limits.cpu_quota {
                        let file = cpu.join("cpu.cfs_quota_us");
                        set(&file, &quota.to_string(), same, &mut changes)?;
                    }
                }
                if let Some(memory) = limits.memory_limit {
                    let dir = self.pod_dir_v1("memory", "memory", rel)?;
                    let file = dir.join("memory.limit_in_bytes");
                    set(&file, &memory.to_string(), same_pages, &mut changes)?;
                }
            }
            Version::V2 => {
                let dir = self.root.join(rel);
                if !dir.is_dir() {
                    return Err(missing(&dir));
                }
                if let Some(shares) = limits.cpu_shares {
                    // Either runc mapping kubelet may have written counts.
                    let weight = weight_linear(shares);
                    let quadratic = weight_quadratic(shares).to_string();
                    let held = move |current: &str, wanted: &str| {
                        current == wanted || current == quadratic
                    };
                    set(
                        &dir.join("cpu.weight"),
                        &weight.to_string(),
                        held,
                        &mut changes,
                    )?;
                }
                if limits.cpu_quota.is_some() || limits.cpu_period.is_some() {
                    let file = dir.join("cpu.max");
                    let current = read(&file)?;
                    let mut parts = current.split_whitespace();
                    let (held_quota, held_period) = (parts.next(), parts.next());
                    let quota = match limits.cpu_quota {
                        Some(-1) => "max".to_string(),
                        Some(q) => q.to_string(),
                        None => held_quota.unwrap_or("max").to_string(),
                    };
                    let period = match limits.cpu_period {
                        Some(p) => p.to_string(),
                        None => held_period.unwrap_or("100000").to_string(),
                    };
                    set(&file, &format!("{quota} {period}"), same, &mut changes)?;
                }
                if let Some(memory) = limits.memory_limit {
                    let file = dir.join("memory.max");
                    set(&file, &memory.to_string(), same_pages, &mut changes)?;
                }
            }
        }
        Ok(changes)
    }

    /// A v1 controller's directory of the pod cgroup; the controller may be
    /// co-mounted (`cpu,cpuacct`).
    fn pod_dir_v1(&self, controller: &str, comount: &str, rel: &Path) -> Result<PathBuf> {
        let base = self.v1_controller_dir(controller, comount).ok_or_else(|| {
            Error::FailedPrecondition(format!(
                "the {controller} cgroup controller is not mounted under {}",
                self.root.display()
            ))
        })?;
        let dir = base.join(rel);
        if !dir.is_dir() {
            return Err(missing(&dir));
        }
        Ok(dir)
    }
}

fn missing(dir: &Path) -> Error {
    Error::FailedPrecondition(format!(
        "pod cgroup {} does not exist (has the pod's cgroup parent been removed?)",
        dir.display()
    ))
}

fn same(current: &str, wanted: &str) -> bool {
    current == wanted
}

/// Memory limits read back in whole pages; "max" and v1's huge
/// "unlimited" number never equal a byte count asked for.
fn same_pages(current: &str, wanted: &str) -> bool {
    match (current.parse::<i64>(), wanted.parse::<i64>()) {
        (Ok(c), Ok(w)) => c == w || c == w - w % PAGE,
        _ => false,
    }
}

fn read(file: &Path) -> Result<String> {
    fs::read_to_string(file)
        .map(|s| s.trim().to_string())
        .map_err(|e| Error::FailedPrecondition(format!("reading {}: {e}", file.display())))
}

/// Writes `wanted` into `file` unless `held(current, wanted)`.
fn set(
    file: &Path,
    wanted: &str,
    held: impl Fn(&str, &str) -> bool,
    changes: &mut Vec<String>,
) -> Result<()> {
    let current = read(file)?;
    if held(&current, wanted) {
        return Ok(());
    }
    // Interface files exist already; never create one.
    let mut f = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(file)
        .map_err(|e| Error::FailedPrecondition(format!("opening {}: {e}", file.display())))?;
    // The kernel's refusals are the reason to report: EBUSY for a memory
    // limit below what the pod uses (v1), EINVAL for a quota below one of
    // its containers' (v1).
    f.write_all(wanted.as_bytes()).map_err(|e| {
        Error::FailedPrecondition(format!(
            "writing {wanted:?} to {} (was {current:?}): {e}",
            file.display()
        ))
    })?;
    changes.push(format!("{}: {current} -> {wanted}", file.display()));
    Ok(())
}
