//! Reads a cgroup's interface files into a [`Reading`]: cgroup v1 (one
//! directory per controller) or v2 (one unified directory). A file that
//! cannot be read leaves its field absent; nothing here fails.

use std::fs;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::parse;
use super::reading::{Cpu, Memory, Pids, Reading, Spec, Swap, working_set};
use crate::cgroups::{Placement, Version};

/// How much to read: the stats RPCs need a handful of files, the metrics
/// families the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// A container's stats: CPU, memory, swap, pressure.
    Stats,
    /// A pod's: the same and its process count.
    Pod,
    /// Everything the metrics families need.
    Metrics,
}

/// USER_HZ: the unit of v1 `cpuacct.stat`; 100 on every Linux ABI.
const USER_HZ_NS: u64 = 10_000_000;

pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

fn text(dir: &Path, file: &str) -> Option<String> {
    fs::read_to_string(dir.join(file)).ok()
}

fn single(dir: &Path, file: &str) -> Option<u64> {
    parse::single(&text(dir, file)?)
}

fn limit(dir: &Path, file: &str) -> Option<u64> {
    parse::limit(&text(dir, file)?)
}

fn psi(dir: &Path, file: &str) -> Option<parse::Psi> {
    parse::psi(&text(dir, file)?)
}

fn lines(dir: &Path, file: &str) -> Option<u64> {
    Some(text(dir, file)?.lines().count() as u64)
}

pub fn read(placement: &Placement, version: Version, depth: Depth) -> Reading {
    let mut r = match version {
        Version::V2 => match &placement.unified {
            Some(dir) => read_v2(dir, depth),
            None => Reading::default(),
        },
        Version::V1 => read_v1(placement, depth),
    };
    r.timestamp_ns = now_ns();
    r
}

fn read_v2(dir: &Path, depth: Depth) -> Reading {
    let full = depth == Depth::Metrics;
    let mut r = Reading::default();
    if let Some(stat) = text(dir, "cpu.stat") {
        let s = parse::flat_keyed(&stat);
        let us = |k: &str| s.get(k).map(|v| v.saturating_mul(1000));
        if let Some(usage_ns) = us("usage_usec") {
            r.cpu = Some(Cpu {
                usage_ns,
                user_ns: us("user_usec"),
                system_ns: us("system_usec"),
                periods: s.get("nr_periods").copied(),
                throttled_periods: s.get("nr_throttled").copied(),
                throttled_ns: us("throttled_usec"),
                psi: psi(dir, "cpu.pressure"),
            });
        }
    }
    if let Some(usage) = single(dir, "memory.current") {
        let stat_text = text(dir, "memory.stat").unwrap_or_default();
        let s = parse::flat_keyed(&stat_text);
        let get = |k: &str| s.get(k).copied();
        r.memory = Some(Memory {
            usage,
            working_set: working_set(usage, get("inactive_file")),
            limit: limit(dir, "memory.max"),
            rss: get("anon"),
            cache: get("file"),
            mapped_file: get("file_mapped"),
            active_file: get("active_file"),
            inactive_file: get("inactive_file"),
            pgfault: get("pgfault"),
            pgmajfault: get("pgmajfault"),
            own_pgfault: get("pgfault"),
            own_pgmajfault: get("pgmajfault"),
            failcnt: None,
            max_usage: if full {
                single(dir, "memory.peak")
            } else {
                None
            },
            reservation: None,
            // Newer kernels sum it up as `kernel`; older ones list parts.
            kernel: get("kernel").or_else(|| {
                let parts = ["kernel_stack", "pagetables", "percpu", "sock", "slab"];
                let found: Vec<u64> = parts.iter().filter_map(|k| get(k)).collect();
                (!found.is_empty()).then(|| found.iter().sum())
            }),
            oom_kills: if full {
                text(dir, "memory.events")
                    .and_then(|t| parse::flat_keyed(&t).get("oom_kill").copied())
            } else {
                None
            },
            psi: psi(dir, "memory.pressure"),
        });
    }
    // memory.swap.* exist only where the kernel accounts swap.
    if let Some(usage) = single(dir, "memory.swap.current") {
        r.swap = Some(Swap {
            usage,
            limit: limit(dir, "memory.swap.max"),
        });
    }
    if depth != Depth::Stats
        && let Some(current) = single(dir, "pids.current")
    {
        r.pids = Some(Pids {
            current,
            max: if full { limit(dir, "pids.max") } else { None },
        });
    }
    r.io_psi = psi(dir, "io.pressure");
    if full {
        r.threads = lines(dir, "cgroup.threads");
        r.io = text(dir, "io.stat")
            .map(|t| parse::io_stat(&t))
            .unwrap_or_default();
        let (quota, period) = text(dir, "cpu.max")
            .map(|t| parse::cpu_max(&t))
            .unwrap_or_default();
        r.spec = Spec {
            // cAdvisor's mapping of cpu.weight [1, 10000] back to shares.
            cpu_shares: single(dir, "cpu.weight")
                .map(|w| 2 + (w.saturating_sub(1) * 262_142) / 9_999),
            cpu_quota: quota,
            cpu_period: period,
            memory_reservation: limit(dir, "memory.low").filter(|v| *v > 0),
            swap_limit: r.swap.and_then(|s| s.limit),
        };
    }
    r
}

fn read_v1(placement: &Placement, depth: Depth) -> Reading {
    let full = depth == Depth::Metrics;
    let mut r = Reading::default();
    let cpuacct = placement.controller("cpuacct");
    let cpu = placement.controller("cpu");
    if let Some(usage_ns) = cpuacct.and_then(|d| single(d, "cpuacct.usage")) {
        let (mut user_ns, mut system_ns) = (None, None);
        let (mut periods, mut throttled_periods, mut throttled_ns) = (None, None, None);
        if full {
            if let Some(t) = cpuacct.and_then(|d| text(d, "cpuacct.stat")) {
                let s = parse::flat_keyed(&t);
                user_ns = s.get("user").map(|v| v.saturating_mul(USER_HZ_NS));
                system_ns = s.get("system").map(|v| v.saturating_mul(USER_HZ_NS));
            }
            if let Some(t) = cpu.and_then(|d| text(d, "cpu.stat")) {
                let s = parse::flat_keyed(&t);
                periods = s.get("nr_periods").copied();
                throttled_periods = s.get("nr_throttled").copied();
                throttled_ns = s.get("throttled_time").copied();
            }
        }
        r.cpu = Some(Cpu {
            usage_ns,
            user_ns,
            system_ns,
            periods,
            throttled_periods,
            throttled_ns,
            // Pressure files, where a kernel offers them under v1.
            psi: cpuacct.and_then(|d| psi(d, "cpu.pressure")),
        });
    }
    let memory = placement.controller("memory");
    if let Some(dir) = memory
        && let Some(usage) = single(dir, "memory.usage_in_bytes")
    {
        let stat_text = text(dir, "memory.stat").unwrap_or_default();
        let s = parse::flat_keyed(&stat_text);
        let get = |k: &str| s.get(k).copied();
        r.memory = Some(Memory {
            usage,
            working_set: working_set(usage, get("total_inactive_file")),
            // The limit in force (the tighter of the container's and its
            // ancestors'), from the file already read; one read fewer.
            limit: match get("hierarchical_memory_limit") {
                Some(v) => parse::limited(v),
                None => limit(dir, "memory.limit_in_bytes"),
            },
            rss: get("total_rss"),
            cache: get("total_cache"),
            mapped_file: get("total_mapped_file"),
            active_file: get("total_active_file"),
            inactive_file: get("total_inactive_file"),
            pgfault: get("total_pgfault"),
            pgmajfault: get("total_pgmajfault"),
            own_pgfault: get("pgfault"),
            own_pgmajfault: get("pgmajfault"),
            failcnt: if full {
                single(dir, "memory.failcnt")
            } else {
                None
            },
            max_usage: if full {
                single(dir, "memory.max_usage_in_bytes")
            } else {
                None
            },
            reservation: if full {
                limit(dir, "memory.soft_limit_in_bytes")
            } else {
                None
            },
            kernel: if full {
                single(dir, "memory.kmem.usage_in_bytes")
            } else {
                None
            },
            // `oom_kill` in memory.oom_control since Linux 4.13.
            oom_kills: if full {
                text(dir, "memory.oom_control")
                    .and_then(|t| parse::flat_keyed(&t).get("oom_kill").copied())
            } else {
                None
            },
            psi: psi(dir, "memory.pressure"),
        });
        // total_swap appears only with swap accounting (swapaccount=1).
        if let Some(usage) = get("total_swap") {
            let mem_limit = r.memory.as_ref().and_then(|m| m.limit);
            let memsw_limit = get("hierarchical_memsw_limit").and_then(parse::limited);
            r.swap = Some(Swap {
                usage,
                limit: memsw_limit.map(|sw| sw.saturating_sub(mem_limit.unwrap_or(0))),
            });
        }
    }
    let pids = placement.controller("pids");
    if depth != Depth::Stats
        && let Some(current) = pids.and_then(|d| single(d, "pids.current"))
    {
        r.pids = Some(Pids {
            current,
            max: if full {
                pids.and_then(|d| limit(d, "pids.max"))
            } else {
                None
            },
        });
    }
    if full {
        r.threads = pids.or(cpuacct).and_then(|d| lines(d, "tasks"));
        if let Some(dir) = placement.controller("blkio") {
            let bytes = text(dir, "blkio.throttle.io_service_bytes_recursive")
                .or_else(|| text(dir, "blkio.throttle.io_service_bytes"))
                .unwrap_or_default();
            let ops = text(dir, "blkio.throttle.io_serviced_recursive")
                .or_else(|| text(dir, "blkio.throttle.io_serviced"))
                .unwrap_or_default();
            r.io = parse::blkio(&bytes, &ops);
        }
        r.spec = Spec {
            cpu_shares: cpu.and_then(|d| single(d, "cpu.shares")),
            // -1 is "no quota" and does not parse as u64.
            cpu_quota: cpu.and_then(|d| single(d, "cpu.cfs_quota_us")),
            cpu_period: cpu.and_then(|d| single(d, "cpu.cfs_period_us")),
            memory_reservation: r.memory.as_ref().and_then(|m| m.reservation),
            swap_limit: r.swap.and_then(|s| s.limit),
        };
    }
    r
}

/// The first process of a cgroup: a container's init, a pod's pause.
pub fn first_pid(placement: &Placement, version: Version) -> Option<i64> {
    let dir = match version {
        Version::V2 => placement.unified.clone(),
        Version::V1 => placement
            .controller("pids")
            .or_else(|| placement.controller("memory"))
            .or_else(|| placement.controller("cpuacct"))
            .map(Path::to_path_buf),
    }?;
    parse::first_pid(&text(&dir, "cgroup.procs")?)
}
