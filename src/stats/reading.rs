//! What one read of a cgroup yields, in docker-cri's own terms, and the
//! figures derived from it (working set, available memory, sums).

use super::parse::{DeviceIo, Psi};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cpu {
    /// Cumulative CPU time of every task in the cgroup, nanoseconds.
    pub usage_ns: u64,
    pub user_ns: Option<u64>,
    pub system_ns: Option<u64>,
    pub periods: Option<u64>,
    pub throttled_periods: Option<u64>,
    pub throttled_ns: Option<u64>,
    pub psi: Option<Psi>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Memory {
    pub usage: u64,
    /// `usage - inactive_file`: what kubelet evicts on and cAdvisor reports.
    pub working_set: u64,
    pub limit: Option<u64>,
    pub rss: Option<u64>,
    pub cache: Option<u64>,
    pub mapped_file: Option<u64>,
    pub active_file: Option<u64>,
    pub inactive_file: Option<u64>,
    /// Faults of the whole subtree (hierarchy scope).
    pub pgfault: Option<u64>,
    pub pgmajfault: Option<u64>,
    /// Faults of this cgroup alone (container scope; v2 has only the subtree).
    pub own_pgfault: Option<u64>,
    pub own_pgmajfault: Option<u64>,
    pub failcnt: Option<u64>,
    pub max_usage: Option<u64>,
    pub reservation: Option<u64>,
    /// Kernel memory charged to the cgroup (v1 kmem, v2 `kernel` or its
    /// parts).
    pub kernel: Option<u64>,
    /// Processes the OOM killer killed in the cgroup.
    pub oom_kills: Option<u64>,
    pub psi: Option<Psi>,
}

impl Memory {
    /// Room left before the limit, as kubelet computes it (limit minus
    /// working set); `None` without a limit.
    pub fn available(&self) -> Option<u64> {
        self.limit.map(|l| l.saturating_sub(self.working_set))
    }
}

/// The working set: usage less the inactive file cache the kernel can drop
/// without pain. v1 takes `total_inactive_file`, v2 `inactive_file`.
pub fn working_set(usage: u64, inactive_file: Option<u64>) -> u64 {
    usage.saturating_sub(inactive_file.unwrap_or(0))
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swap {
    pub usage: u64,
    pub limit: Option<u64>,
}

impl Swap {
    pub fn available(&self) -> Option<u64> {
        self.limit.map(|l| l.saturating_sub(self.usage))
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pids {
    pub current: u64,
    pub max: Option<u64>,
}

/// Limits as the kernel holds them (for the `container_spec_*` metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spec {
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<u64>,
    pub cpu_period: Option<u64>,
    pub memory_reservation: Option<u64>,
    pub swap_limit: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// Unix nanoseconds when the files were read.
    pub timestamp_ns: i64,
    pub cpu: Option<Cpu>,
    pub memory: Option<Memory>,
    pub swap: Option<Swap>,
    pub pids: Option<Pids>,
    pub threads: Option<u64>,
    pub io: Vec<DeviceIo>,
    pub io_psi: Option<Psi>,
    pub spec: Spec,
}

impl Reading {
    /// Nothing could be read: the cgroup is gone.
    pub fn is_empty(&self) -> bool {
        self.cpu.is_none() && self.memory.is_none() && self.pids.is_none()
    }

    /// The sum of several cgroups' readings, for a pod whose own cgroup is
    /// unknown (no cgroup parent): counters and sizes add up, limits and
    /// pressure do not, so they are left out.
    pub fn sum<'a>(readings: impl IntoIterator<Item = &'a Reading>) -> Reading {
        let mut out = Reading::default();
        let add = |a: &mut Option<u64>, b: Option<u64>| {
            if let Some(b) = b {
                *a = Some(a.unwrap_or(0) + b);
            }
        };
        for r in readings {
            out.timestamp_ns = out.timestamp_ns.max(r.timestamp_ns);
            if let Some(c) = &r.cpu {
                let o = out.cpu.get_or_insert_with(Cpu::default);
                o.usage_ns += c.usage_ns;
                add(&mut o.user_ns, c.user_ns);
                add(&mut o.system_ns, c.system_ns);
            }
            if let Some(m) = &r.memory {
                let o = out.memory.get_or_insert_with(Memory::default);
                o.usage += m.usage;
                o.working_set += m.working_set;
                add(&mut o.rss, m.rss);
                add(&mut o.cache, m.cache);
                add(&mut o.mapped_file, m.mapped_file);
                add(&mut o.pgfault, m.pgfault);
                add(&mut o.pgmajfault, m.pgmajfault);
            }
            if let Some(s) = &r.swap {
                out.swap.get_or_insert_with(Swap::default).usage += s.usage;
            }
            if let Some(p) = &r.pids {
                out.pids.get_or_insert_with(Pids::default).current += p.current;
            }
            add(&mut out.threads, r.threads);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_set_subtracts_inactive_file_and_never_underflows() {
        assert_eq!(working_set(100 << 20, Some(30 << 20)), 70 << 20);
        assert_eq!(working_set(100 << 20, None), 100 << 20);
        // memory.stat and the usage file are not read atomically.
        assert_eq!(working_set(10, Some(11)), 0);
    }

    #[test]
    fn available_is_limit_minus_working_set() {
        let m = Memory {
            usage: 80,
            working_set: 60,
            limit: Some(100),
            ..Default::default()
        };
        assert_eq!(m.available(), Some(40));
        let unlimited = Memory {
            limit: None,
            ..m.clone()
        };
        assert_eq!(unlimited.available(), None);
        let over = Memory {
            working_set: 120,
            ..m
        };
        assert_eq!(over.available(), Some(0));
    }

    #[test]
    fn sums_counters_but_not_limits() {
        let one = Reading {
            timestamp_ns: 5,
            cpu: Some(Cpu {
                usage_ns: 10,
                ..Default::default()
            }),
            memory: Some(Memory {
                usage: 100,
                working_set: 80,
                limit: Some(1000),
                rss: Some(50),
                ..Default::default()
            }),
            pids: Some(Pids {
                current: 2,
                max: Some(10),
            }),
            ..Default::default()
        };
        let two = Reading {
            timestamp_ns: 7,
            memory: Some(Memory {
                usage: 1,
                working_set: 1,
                ..Default::default()
            }),
            ..one.clone()
        };
        let s = Reading::sum([&one, &two]);
        assert_eq!(s.timestamp_ns, 7);
        assert_eq!(s.cpu.as_ref().map(|c| c.usage_ns), Some(20));
        let m = s.memory.unwrap();
        assert_eq!((m.usage, m.working_set, m.rss), (101, 81, Some(50)));
        assert_eq!(m.limit, None);
        assert_eq!(
            s.pids,
            Some(Pids {
                current: 4,
                max: None
            })
        );
        assert!(Reading::sum([]).is_empty());
    }
}
