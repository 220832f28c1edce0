//! Container resources: CRI Linux resources → Docker's resource fields for
//! create and update, and Docker's host config back for status.

use std::collections::HashMap;

use bollard::models::{ContainerUpdateBody, HostConfig};
use serde::{Deserialize, Serialize};

use crate::api;
use crate::error::{Error, Result};

use super::{UNIFIED_PIDS_MAX, UNIFIED_SWAP_MAX};

/// A limit Docker has no field for, written straight into the container's
/// cgroup once it runs (see `crate::cgroups`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupSetting {
    /// A cgroup v2 interface file of the container's cgroup, e.g.
    /// `memory.high` (kubelet's MemoryQoS) or `memory.oom.group`.
    Unified { key: String, value: String },
    /// A hugetlb limit in bytes for one page size ("2MB", "1GB").
    Hugepage { page_size: String, limit: u64 },
}

impl CgroupSetting {
    pub fn describe(&self) -> String {
        match self {
            CgroupSetting::Unified { key, .. } => format!("resources.unified[{key}]"),
            CgroupSetting::Hugepage { page_size, .. } => {
                format!("resources.hugepage_limits[{page_size}]")
            }
        }
    }
}

/// Resource fields shared by create and update.
#[derive(Debug, Default, PartialEq)]
pub struct Resources {
    pub cpu_period: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpu_shares: Option<i64>,
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    /// What only the container's cgroup files can carry.
    pub cgroup_settings: Vec<CgroupSetting>,
}

/// A cgroup interface file name kubelet could mean: `<controller>.<name>`
/// in lower case, never a path, and never the `cgroup.*` core files (which
/// move processes or change the hierarchy).
pub fn valid_unified_key(key: &str) -> bool {
    let mut parts = key.splitn(2, '.');
    let (Some(controller), Some(rest)) = (parts.next(), parts.next()) else {
        return false;
    };
    controller != "cgroup"
        && !controller.is_empty()
        && !rest.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
        && !key.contains("..")
        && !key.ends_with('.')
}

/// A page size as kubelet names it: digits and KB, MB or GB ("2MB").
pub fn hugepage_size_kib(page_size: &str) -> Option<u64> {
    let unit_at = page_size.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = page_size.split_at(unit_at);
    let n: u64 = n.parse().ok().filter(|n| *n > 0)?;
    let scale = match unit {
        "KB" => 1,
        "MB" => 1024,
        "GB" => 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(scale)
}

pub fn resources(r: &api::LinuxContainerResources) -> Result<Resources> {
    let non_negative = |name: &str, v: i64| {
        if v < 0 {
            Err(Error::invalid(format!(
                "resources.{name} {v} must not be negative"
            )))
        } else {
            Ok((v > 0).then_some(v))
        }
    };
    let cpu_period = non_negative("cpu_period", r.cpu_period)?;
    if let Some(p) = cpu_period
        && !(1_000..=1_000_000).contains(&p)
    {
        return Err(Error::invalid(format!(
            "resources.cpu_period {p} is not in 1000..1000000 µs"
        )));
    }
    let cpu_quota = match r.cpu_quota {
        -1 | 0 => None,
        q if q < 1_000 => {
            return Err(Error::invalid(format!(
                "resources.cpu_quota {q} is below 1000 µs"
            )));
        }
        q => Some(q),
    };
    let cpu_shares = non_negative("cpu_shares", r.cpu_shares)?;
    if let Some(s) = cpu_shares
        && !(2..=262_144).contains(&s)
    {
        return Err(Error::invalid(format!(
            "resources.cpu_shares {s} is not in 2..262144"
        )));
    }
    let memory = non_negative("memory_limit_in_bytes", r.memory_limit_in_bytes)?;
    if let Some(m) = memory
        && m < 6 * 1024 * 1024
    {
        return Err(Error::invalid(format!(
            "resources.memory_limit_in_bytes {m} is below Docker's 6 MiB minimum"
        )));
    }
    let memory_swap = match r.memory_swap_limit_in_bytes {
        0 => None,
        -1 => Some(-1),
        s if s < 0 => {
            return Err(Error::invalid(format!(
                "resources.memory_swap_limit_in_bytes {s} is invalid"
            )));
        }
        s => {
            if memory.is_some_and(|m| s < m) {
                return Err(Error::invalid(
                    "resources.memory_swap_limit_in_bytes is below the memory limit",
                ));
            }
            Some(s)
        }
    };
    if !(-1000..=1000).contains(&r.oom_score_adj) {
        return Err(Error::invalid(format!(
            "resources.oom_score_adj {} is not in -1000..1000",
            r.oom_score_adj
        )));
    }
    let cpuset = |name: &str, v: &str| {
        if v.chars()
            .all(|c| c.is_ascii_digit() || c == ',' || c == '-')
        {
            Ok((!v.is_empty()).then(|| v.to_string()))
        } else {
            Err(Error::invalid(format!(
                "resources.{name} {v:?} is not a CPU/node list"
            )))
        }
    };
    let mut cgroup_settings = Vec::new();
    for h in &r.hugepage_limits {
        if hugepage_size_kib(&h.page_size).is_none() {
            return Err(Error::invalid(format!(
                "resources.hugepage_limits: page size {:?} is not like 2MB or 1GB",
                h.page_size
            )));
        }
        // kubelet sends a zero limit for every size the pod does not use.
        cgroup_settings.push(CgroupSetting::Hugepage {
            page_size: h.page_size.clone(),
            limit: h.limit,
        });
    }
    let mut pids_limit = None;
    let mut memory_swap = memory_swap;
    let mut keys: Vec<&String> = r.unified.keys().collect();
    keys.sort();
    for key in keys {
        let value = &r.unified[key];
        match key.as_str() {
            // Docker's MemorySwap is memory plus swap.
            UNIFIED_SWAP_MAX => {
                memory_swap = match (value.as_str(), memory) {
                    ("max", _) => Some(-1),
                    (n, Some(m)) => {
                        let swap = n.parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
                            Error::invalid(format!(
                                "resources.unified[memory.swap.max] {value:?} is not a byte count or max"
                            ))
                        })?;
                        Some(m.saturating_add(swap))
                    }
                    (_, None) => {
                        tracing::debug!(
                            "memory.swap.max without a memory limit cannot be expressed in Docker"
                        );
                        memory_swap
                    }
                };
            }
            UNIFIED_PIDS_MAX => {
                pids_limit = Some(if value == "max" {
                    -1
                } else {
                    value.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| {
                        Error::invalid(format!("resources.unified[pids.max] {value:?} is not a positive number or max"))
                    })?
                });
            }
            other => {
                if !valid_unified_key(other) {
                    return Err(Error::invalid(format!(
                        "resources.unified[{other:?}] is not a cgroup interface file name"
                    )));
                }
                if value.is_empty() || value.len() > 256 || value.contains(['\n', '\0']) {
                    return Err(Error::invalid(format!(
                        "resources.unified[{other}] value {value:?} is empty, too long or has a newline or NUL"
                    )));
                }
                cgroup_settings.push(CgroupSetting::Unified {
                    key: other.to_string(),
                    value: value.clone(),
                });
            }
        }
    }
    Ok(Resources {
        cpu_period,
        cpu_quota,
        cpu_shares,
        memory,
        memory_swap,
        cpuset_cpus: cpuset("cpuset_cpus", &r.cpuset_cpus)?,
        cpuset_mems: cpuset("cpuset_mems", &r.cpuset_mems)?,
        pids_limit,
        cgroup_settings,
    })
}

/// The update for new resources, given the container's current memory and
/// MemorySwap (memory plus swap) as Docker reports them.
pub fn update_body(
    r: &api::LinuxContainerResources,
    current_memory: i64,
    current_swap: i64,
) -> Result<ContainerUpdateBody> {
    let res = resources(r)?;
    // Docker refuses a memory limit above the current swap limit, so swap
    // moves with memory. Without swap fields the container keeps the swap
    // allowance it had (none, for a container created without one: never
    // Docker's default of twice the memory).
    let memory_swap = res.memory_swap.or_else(|| {
        let new_memory = res.memory?;
        Some(if current_swap == -1 {
            -1
        } else if current_swap > 0 && current_memory > 0 {
            new_memory.saturating_add((current_swap - current_memory).max(0))
        } else {
            new_memory
        })
    });
    Ok(ContainerUpdateBody {
        cpu_period: res.cpu_period,
        cpu_quota: res.cpu_quota,
        cpu_shares: res.cpu_shares,
        memory: res.memory,
        memory_swap,
        cpuset_cpus: res.cpuset_cpus,
        cpuset_mems: res.cpuset_mems,
        pids_limit: res.pids_limit,
        ..Default::default()
    })
}

/// The update that puts back what Docker applied before (from the
/// container's host config), for undoing an update whose cgroup-only part
/// the kernel then refused. Only the fields `update_body` can change.
pub fn restore_body(before: &HostConfig) -> ContainerUpdateBody {
    ContainerUpdateBody {
        cpu_period: before.cpu_period,
        cpu_quota: before.cpu_quota,
        cpu_shares: before.cpu_shares,
        memory: before.memory,
        memory_swap: before.memory_swap,
        cpuset_cpus: before.cpuset_cpus.clone(),
        cpuset_mems: before.cpuset_mems.clone(),
        pids_limit: before.pids_limit,
        ..Default::default()
    }
}

/// The resources Docker applies now.
pub fn resources_status(hc: &HostConfig) -> api::ContainerResources {
    api::ContainerResources {
        linux: Some(api::LinuxContainerResources {
            cpu_period: hc.cpu_period.unwrap_or(0),
            cpu_quota: hc.cpu_quota.unwrap_or(0),
            cpu_shares: hc.cpu_shares.unwrap_or(0),
            memory_limit_in_bytes: hc.memory.unwrap_or(0),
            memory_swap_limit_in_bytes: hc.memory_swap.unwrap_or(0),
            oom_score_adj: hc.oom_score_adj.unwrap_or(0),
            cpuset_cpus: hc.cpuset_cpus.clone().unwrap_or_default(),
            cpuset_mems: hc.cpuset_mems.clone().unwrap_or_default(),
            unified: hc
                .pids_limit
                .filter(|p| *p > 0)
                .map(|p| HashMap::from([(UNIFIED_PIDS_MAX.to_string(), p.to_string())]))
                .unwrap_or_default(),
            hugepage_limits: Vec::new(),
        }),
        windows: None,
    }
}
