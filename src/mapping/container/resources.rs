//! Container resources: CRI Linux resources → Docker's resource fields for
//! create and update, and Docker's host config back for status.

use std::collections::HashMap;

use bollard::models::{ContainerUpdateBody, HostConfig};

use crate::api;
use crate::error::{Error, Result};

use super::{UNIFIED_OOM_GROUP, UNIFIED_PIDS_MAX, UNIFIED_SWAP_MAX};

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
    if let Some(h) = r.hugepage_limits.iter().find(|h| h.limit > 0) {
        return Err(Error::invalid(format!(
            "resources.hugepage_limits: Docker cannot limit {} hugepages",
            h.page_size
        )));
    }
    let mut pids_limit = None;
    let mut memory_swap = memory_swap;
    for (key, value) in &r.unified {
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
            UNIFIED_OOM_GROUP => {
                tracing::debug!(
                    "memory.oom.group cannot be set through Docker; left at the kernel default"
                );
            }
            other => {
                return Err(Error::invalid(format!(
                    "resources.unified[{other}] cannot be applied through Docker \
                     (supported: {UNIFIED_PIDS_MAX}, {UNIFIED_SWAP_MAX})"
                )));
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
    // moves with memory, keeping the swap allowance the container had.
    let memory_swap = res.memory_swap.or_else(|| {
        let new_memory = res.memory?;
        Some(if current_swap == -1 {
            -1
        } else if current_swap > 0 && current_memory > 0 {
            new_memory.saturating_add((current_swap - current_memory).max(0))
        } else {
            new_memory.saturating_mul(2)
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
