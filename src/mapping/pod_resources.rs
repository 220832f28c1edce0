//! UpdatePodSandboxResources, the pure part: which pod-level cgroup limits a
//! request asks for, and where a sandbox's cgroup parent lives in the
//! hierarchy.
//!
//! kubelet sends `resources` (the sum over the pod's containers) and
//! `overhead` (the RuntimeClass's pod overhead) apart; the pod cgroup holds
//! both, as kubelet itself sizes it. Zero means "leave as it is", as in
//! UpdateContainerResources (runc's reading); a CPU quota of -1 lifts the
//! limit.

use std::path::PathBuf;

use crate::api;
use crate::error::{Error, Result};
use crate::mapping::sandbox::CgroupDriver;

/// The pod cgroup limits to bring about; `None`: leave as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodLimits {
    pub cpu_shares: Option<u64>,
    /// Microseconds per period; -1: unlimited.
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub memory_limit: Option<i64>,
}

impl PodLimits {
    pub fn is_empty(&self) -> bool {
        *self == PodLimits::default()
    }
}

/// The kernel's bounds on a CFS period and the smallest quota (v1 and v2).
const MIN_PERIOD_US: i64 = 1_000;
const MAX_PERIOD_US: i64 = 1_000_000;
const MIN_QUOTA_US: i64 = 1_000;

/// The limits `resources` plus `overhead` ask for, or why they cannot be
/// applied to a pod cgroup. Checked whole before anything is written.
pub fn pod_limits(
    overhead: Option<&api::LinuxContainerResources>,
    resources: Option<&api::LinuxContainerResources>,
) -> Result<PodLimits> {
    let empty = api::LinuxContainerResources::default();
    let (o, r) = (overhead.unwrap_or(&empty), resources.unwrap_or(&empty));
    for (field, part) in [("overhead", o), ("resources", r)] {
        refuse_unapplied(field, part)?;
        for (name, value) in [
            ("cpu_shares", part.cpu_shares),
            ("cpu_period", part.cpu_period),
            ("memory_limit_in_bytes", part.memory_limit_in_bytes),
        ] {
            if value < 0 {
                return Err(Error::invalid(format!(
                    "{field}.{name} must not be negative (got {value})"
                )));
            }
        }
        if part.cpu_quota < -1 {
            return Err(Error::invalid(format!(
                "{field}.cpu_quota must be -1 (unlimited), 0 (unchanged) or positive (got {})",
                part.cpu_quota
            )));
        }
        if part.cpu_period != 0 && !(MIN_PERIOD_US..=MAX_PERIOD_US).contains(&part.cpu_period) {
            return Err(Error::invalid(format!(
                "{field}.cpu_period {} is outside the kernel's {MIN_PERIOD_US}..={MAX_PERIOD_US} µs",
                part.cpu_period
            )));
        }
    }

    let sum = |a: i64, b: i64| {
        a.checked_add(b)
            .ok_or_else(|| Error::invalid("resources plus overhead overflow"))
    };
    let mut limits = PodLimits::default();
    if r.cpu_shares > 0 || o.cpu_shares > 0 {
        // The kernel clamps shares below 2; say so rather than surprise.
        limits.cpu_shares = Some(sum(r.cpu_shares, o.cpu_shares)?.max(2) as u64);
    }
    let period = if r.cpu_period > 0 {
        r.cpu_period
    } else {
        o.cpu_period
    };
    if period > 0 {
        limits.cpu_period = Some(period as u64);
    }
    limits.cpu_quota = match (r.cpu_quota, o.cpu_quota) {
        (0, _) => None,
        (-1, _) => Some(-1),
        (q, 0 | -1) => Some(q),
        (q, oq) => {
            // The overhead's quota is per its own period: rescale it to the
            // period the pod cgroup runs with.
            let scaled = match (period, o.cpu_period) {
                (p, op) if p > 0 && op > 0 && p != op => oq
                    .checked_mul(p)
                    .map(|x| x / op)
                    .ok_or_else(|| Error::invalid("overhead.cpu_quota overflows"))?,
                _ => oq,
            };
            Some(sum(q, scaled)?)
        }
    };
    if let Some(q) = limits.cpu_quota.filter(|q| *q > 0 && *q < MIN_QUOTA_US) {
        return Err(Error::invalid(format!(
            "cpu_quota {q} µs is below the kernel's minimum of {MIN_QUOTA_US} µs"
        )));
    }
    if r.memory_limit_in_bytes > 0 {
        limits.memory_limit = Some(sum(r.memory_limit_in_bytes, o.memory_limit_in_bytes)?);
    }
    Ok(limits)
}

/// What docker-cri does not apply to a pod cgroup, named with the reason.
fn refuse_unapplied(field: &str, r: &api::LinuxContainerResources) -> Result<()> {
    let refuse = |name: &str, why: &str| {
        Err(Error::Unimplemented(format!(
            "UpdatePodSandboxResources: {field}.{name} is not applied to the pod cgroup: {why}; \
             docker-cri applies cpu_shares, cpu_quota, cpu_period and memory_limit_in_bytes"
        )))
    };
    if r.oom_score_adj != 0 {
        return refuse(
            "oom_score_adj",
            "it is a per-process setting with no pod-level cgroup file",
        );
    }
    if !r.cpuset_cpus.is_empty() || !r.cpuset_mems.is_empty() {
        return refuse(
            "cpuset_cpus/cpuset_mems",
            "pod-level cpusets are kubelet's CPU manager's, set on each container",
        );
    }
    if r.hugepage_limits.iter().any(|h| h.limit != 0) {
        return refuse("hugepage_limits", "pod hugetlb limits are kubelet's to set");
    }
    if !r.unified.is_empty() {
        return refuse(
            "unified",
            "free-form cgroup v2 files are set per container only",
        );
    }
    if r.memory_swap_limit_in_bytes != 0 {
        return refuse(
            "memory_swap_limit_in_bytes",
            "pod swap limits are kubelet's to set",
        );
    }
    Ok(())
}

/// The pod cgroup's directory relative to a controller's root, from the
/// cgroup parent Docker holds: a path under cgroupfs; under the systemd
/// driver a slice name, which systemd nests by its dashes
/// (`kubepods-burstable-pod1.slice` lives in
/// `kubepods.slice/kubepods-burstable.slice/`).
pub fn pod_cgroup_path(docker_parent: &str, driver: CgroupDriver) -> Result<PathBuf> {
    let bad = |why: &str| {
        Error::FailedPrecondition(format!(
            "the sandbox's cgroup parent {docker_parent:?} {why}"
        ))
    };
    if docker_parent.is_empty() {
        return Err(bad(
            "is empty: the pod was run without linux.cgroup_parent, so it has no pod cgroup of its own",
        ));
    }
    if docker_parent.contains('\0') {
        return Err(bad("is not a path"));
    }
    match driver {
        CgroupDriver::Cgroupfs => {
            let rel = docker_parent.trim_matches('/');
            if rel.is_empty() || rel.split('/').any(|s| s == "..") {
                return Err(bad("does not name a cgroup below the root"));
            }
            Ok(PathBuf::from(rel))
        }
        CgroupDriver::Systemd => {
            let leaf = docker_parent.trim_end_matches('/');
            let leaf = leaf.rsplit('/').next().unwrap_or_default();
            let Some(stem) = leaf.strip_suffix(".slice") else {
                return Err(bad("is not a systemd slice"));
            };
            if stem.is_empty() || stem == "-" || stem.split('-').any(str::is_empty) {
                return Err(bad("is not a slice below the root slice"));
            }
            let mut path = PathBuf::new();
            let mut prefix = String::new();
            for part in stem.split('-') {
                if !prefix.is_empty() {
                    prefix.push('-');
                }
                prefix.push_str(part);
                path.push(format!("{prefix}.slice"));
            }
            Ok(path)
        }
    }
}

/// cgroup v2 `cpu.weight` for v1 shares: the linear mapping runc has long
/// used (and crun, and Docker's own update).
pub fn weight_linear(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9_999) / 262_142
}

/// The same through the curve newer runc releases use, which keeps 1024
/// shares at the default weight of 100. A pod cgroup kubelet wrote with
/// either mapping already holds the right weight.
pub fn weight_quadratic(shares: u64) -> u64 {
    match shares {
        0 => 0,
        1 | 2 => 1,
        s if s >= 262_144 => 10_000,
        s => {
            let l = (s as f64).log2();
            let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
            10f64.powf(exponent).ceil() as u64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(f: impl FnOnce(&mut api::LinuxContainerResources)) -> api::LinuxContainerResources {
        let mut r = api::LinuxContainerResources::default();
        f(&mut r);
        r
    }

    #[test]
    fn nothing_asked_is_nothing_to_do() {
        assert!(pod_limits(None, None).unwrap().is_empty());
        let zero = api::LinuxContainerResources::default();
        assert!(pod_limits(Some(&zero), Some(&zero)).unwrap().is_empty());
    }

    #[test]
    fn resources_and_overhead_add_up() {
        let r = res(|r| {
            r.cpu_shares = 512;
            r.cpu_quota = 50_000;
            r.cpu_period = 100_000;
            r.memory_limit_in_bytes = 256 << 20;
        });
        let o = res(|o| {
            o.cpu_shares = 102;
            o.cpu_quota = 10_000;
            o.cpu_period = 100_000;
            o.memory_limit_in_bytes = 32 << 20;
        });
        assert_eq!(
            pod_limits(Some(&o), Some(&r)).unwrap(),
            PodLimits {
                cpu_shares: Some(614),
                cpu_quota: Some(60_000),
                cpu_period: Some(100_000),
                memory_limit: Some(288 << 20),
            }
        );
        // Without overhead: the resources as they are.
        assert_eq!(
            pod_limits(None, Some(&r)).unwrap(),
            PodLimits {
                cpu_shares: Some(512),
                cpu_quota: Some(50_000),
                cpu_period: Some(100_000),
                memory_limit: Some(256 << 20),
            }
        );
    }

    #[test]
    fn overhead_quota_is_rescaled_to_the_pod_period() {
        let r = res(|r| {
            r.cpu_quota = 100_000;
            r.cpu_period = 100_000;
        });
        let o = res(|o| {
            o.cpu_quota = 5_000;
            o.cpu_period = 50_000;
        });
        let l = pod_limits(Some(&o), Some(&r)).unwrap();
        assert_eq!(l.cpu_quota, Some(110_000));
        assert_eq!(l.cpu_period, Some(100_000));
    }

    #[test]
    fn unlimited_quota_stays_unlimited_and_zero_memory_is_untouched() {
        let r = res(|r| r.cpu_quota = -1);
        let o = res(|o| {
            o.cpu_quota = 10_000;
            o.memory_limit_in_bytes = 1 << 20;
        });
        assert_eq!(
            pod_limits(Some(&o), Some(&r)).unwrap(),
            PodLimits {
                cpu_quota: Some(-1),
                ..Default::default()
            }
        );
    }

    #[test]
    fn tiny_shares_are_raised_to_the_kernel_minimum() {
        let r = res(|r| r.cpu_shares = 1);
        assert_eq!(pod_limits(None, Some(&r)).unwrap().cpu_shares, Some(2));
    }

    #[test]
    fn refusals_name_the_field() {
        let cases: Vec<(api::LinuxContainerResources, &str)> = vec![
            (res(|r| r.cpu_shares = -5), "resources.cpu_shares"),
            (res(|r| r.cpu_quota = -2), "resources.cpu_quota"),
            (res(|r| r.cpu_period = 10), "resources.cpu_period"),
            (
                res(|r| r.memory_limit_in_bytes = -1),
                "memory_limit_in_bytes",
            ),
            (res(|r| r.cpu_quota = 500), "below the kernel's minimum"),
            (res(|r| r.oom_score_adj = 5), "resources.oom_score_adj"),
            (res(|r| r.cpuset_cpus = "0-1".into()), "cpuset_cpus"),
            (
                res(|r| {
                    r.hugepage_limits = vec![api::HugepageLimit {
                        page_size: "2MB".into(),
                        limit: 1 << 21,
                    }]
                }),
                "hugepage_limits",
            ),
            (
                res(|r| {
                    r.unified.insert("memory.high".into(), "1".into());
                }),
                "unified",
            ),
            (
                res(|r| r.memory_swap_limit_in_bytes = 1),
                "memory_swap_limit_in_bytes",
            ),
        ];
        for (r, want) in cases {
            let e = pod_limits(None, Some(&r)).unwrap_err();
            assert!(e.to_string().contains(want), "{e} lacks {want}");
        }
        let unapplied = pod_limits(None, Some(&res(|r| r.oom_score_adj = 5))).unwrap_err();
        assert!(matches!(unapplied, Error::Unimplemented(_)));
        // Zero hugepage limits (as kubelet sends for sizes not asked) pass.
        let zero_huge = res(|r| {
            r.hugepage_limits = vec![api::HugepageLimit {
                page_size: "2MB".into(),
                limit: 0,
            }]
        });
        assert!(pod_limits(Some(&zero_huge), None).unwrap().is_empty());
    }

    #[test]
    fn cgroup_parent_paths() {
        let cases = [
            (
                "/kubepods/burstable/pod1",
                CgroupDriver::Cgroupfs,
                Ok("kubepods/burstable/pod1"),
            ),
            (
                "kubepods/pod2/",
                CgroupDriver::Cgroupfs,
                Ok("kubepods/pod2"),
            ),
            (
                "kubepods-burstable-pod1.slice",
                CgroupDriver::Systemd,
                Ok("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice"),
            ),
            (
                "kubepods.slice",
                CgroupDriver::Systemd,
                Ok("kubepods.slice"),
            ),
            (
                "",
                CgroupDriver::Cgroupfs,
                Err("without linux.cgroup_parent"),
            ),
            ("/", CgroupDriver::Cgroupfs, Err("below the root")),
            ("/a/../../b", CgroupDriver::Cgroupfs, Err("below the root")),
            (
                "kubepods",
                CgroupDriver::Systemd,
                Err("not a systemd slice"),
            ),
            (
                "-.slice",
                CgroupDriver::Systemd,
                Err("below the root slice"),
            ),
            (
                "a--b.slice",
                CgroupDriver::Systemd,
                Err("below the root slice"),
            ),
        ];
        for (parent, driver, want) in cases {
            let got = pod_cgroup_path(parent, driver);
            match (got, want) {
                (Ok(p), Ok(w)) => assert_eq!(p, PathBuf::from(w), "{parent}"),
                (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{parent}: {e}"),
                (got, want) => panic!("{parent}: {got:?}, wanted {want:?}"),
            }
        }
    }

    #[test]
    fn shares_to_weight() {
        for (shares, linear, quadratic) in [
            (2, 1, 1),
            (1024, 39, 100),
            (262_144, 10_000, 10_000),
            (0, 0, 0),
        ] {
            assert_eq!(weight_linear(shares), linear, "{shares}");
            assert_eq!(weight_quadratic(shares), quadratic, "{shares}");
        }
    }
}
