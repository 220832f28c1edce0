//! cgroup v1 and v2 from fixture trees laid out as the cgroupfs and systemd
//! drivers lay them out.

use std::fs;
use std::path::Path;

use super::*;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join(rel)
    }
    fn file(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    fn cgroups(&self) -> Cgroups {
        Cgroups::at(&self.path("cg"), &self.path("proc"), &self.path("hp"))
    }
}

fn unified(key: &str, value: &str) -> CgroupSetting {
    CgroupSetting::Unified {
        key: key.into(),
        value: value.into(),
    }
}

fn huge(size: &str, limit: u64) -> CgroupSetting {
    CgroupSetting::Hugepage {
        page_size: size.into(),
        limit,
    }
}

/// cgroup v2 under the systemd driver.
fn v2() -> Fixture {
    let f = Fixture::new();
    f.file(
        "cg/cgroup.controllers",
        "cpuset cpu io memory hugetlb pids\n",
    );
    let scope = "cg/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podu1.slice/docker-abc.scope";
    for file in [
        "memory.high",
        "memory.min",
        "memory.oom.group",
        "hugetlb.2MB.max",
    ] {
        f.file(&format!("{scope}/{file}"), "max\n");
    }
    f.file(
        "proc/4242/cgroup",
        "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podu1.slice/docker-abc.scope\n",
    );
    fs::create_dir_all(f.path("hp/hugepages-2048kB")).unwrap();
    f
}

/// cgroup v1 under the cgroupfs driver, with a hugetlb controller.
fn v1() -> Fixture {
    let f = Fixture::new();
    for c in ["memory", "cpu,cpuacct", "hugetlb"] {
        fs::create_dir_all(f.path(&format!("cg/{c}"))).unwrap();
    }
    f.file(
        "cg/hugetlb/kubepods/burstable/podu1/abc/hugetlb.2MB.limit_in_bytes",
        "9223372036854771712\n",
    );
    f.file(
        "proc/77/cgroup",
        "12:hugetlb:/kubepods/burstable/podu1/abc\n4:memory:/kubepods/burstable/podu1/abc\n\
         1:name=systemd:/kubepods/burstable/podu1/abc\n0::/\n",
    );
    fs::create_dir_all(f.path("hp/hugepages-2048kB")).unwrap();
    f
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap()
}

#[test]
fn detects_the_version() {
    assert_eq!(v2().cgroups().version(), Version::V2);
    assert_eq!(v1().cgroups().version(), Version::V1);
}

#[test]
fn v2_writes_unified_keys_and_hugepages_into_the_scope() {
    let f = v2();
    let cg = f.cgroups();
    let wanted = vec![
        unified("memory.high", "104857600"),
        unified("memory.oom.group", "1"),
        huge("2MB", 4 << 20),
    ];
    let plan = cg.plan(&wanted).unwrap();
    assert_eq!(plan, wanted);
    cg.apply(4242, "abc", &plan).unwrap();
    let scope = f.path(
        "cg/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podu1.slice/docker-abc.scope",
    );
    assert_eq!(read(&scope.join("memory.high")), "104857600");
    assert_eq!(read(&scope.join("memory.oom.group")), "1");
    assert_eq!(read(&scope.join("hugetlb.2MB.max")), "4194304");
    // Untouched files keep their content.
    assert_eq!(read(&scope.join("memory.min")), "max\n");
}

#[test]
fn v2_never_creates_a_file_the_kernel_does_not_offer() {
    let f = v2();
    let err = f
        .cgroups()
        .apply(4242, "abc", &[unified("memory.nonexistent", "1")])
        .unwrap_err();
    assert!(
        matches!(&err, Error::FailedPrecondition(m) if m.contains("memory.nonexistent")),
        "{err}"
    );
    assert!(
        !f.path("cg/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podu1.slice/docker-abc.scope/memory.nonexistent")
            .exists()
    );
}

#[test]
fn v1_refuses_unified_keys_and_writes_hugetlb() {
    let f = v1();
    let cg = f.cgroups();
    let err = cg.plan(&[unified("memory.high", "1")]).unwrap_err();
    assert!(
        matches!(&err, Error::FailedPrecondition(m) if m.contains("cgroup v1")),
        "{err}"
    );
    let plan = cg.plan(&[huge("2MB", 2 << 20)]).unwrap();
    cg.apply(77, "abc", &plan).unwrap();
    assert_eq!(
        read(&f.path("cg/hugetlb/kubepods/burstable/podu1/abc/hugetlb.2MB.limit_in_bytes")),
        "2097152"
    );
}

#[test]
fn hugepages_without_the_controller_or_the_size() {
    let f = v1();
    fs::remove_dir_all(f.path("cg/hugetlb")).unwrap();
    let cg = f.cgroups();
    // kubelet's zero limits for unrequested sizes: nothing to enforce.
    assert_eq!(cg.plan(&[huge("2MB", 0), huge("1GB", 0)]).unwrap(), vec![]);
    let err = cg.plan(&[huge("2MB", 2 << 20)]).unwrap_err();
    assert!(err.to_string().contains("hugetlb"), "{err}");

    let f = v2();
    let err = f.cgroups().plan(&[huge("1GB", 1 << 30)]).unwrap_err();
    assert!(err.to_string().contains("no 1GB hugepages"), "{err}");
    // kubelet's zero limit for a size this host lacks: nothing to do.
    assert_eq!(f.cgroups().plan(&[huge("1GB", 0)]).unwrap(), vec![]);
}

#[test]
fn limits_go_to_the_containers_own_cgroup_only() {
    let f = v2();
    let cg = f.cgroups();
    let scope = "cg/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podu1.slice/docker-abc.scope";
    // The process moved itself into a child cgroup (Docker-in-Docker,
    // systemd in a container): the limit still goes to the scope.
    fs::create_dir_all(f.path(&format!("{scope}/init"))).unwrap();
    f.file(
        "proc/5000/cgroup",
        "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podu1.slice/docker-abc.scope/init\n",
    );
    cg.apply(5000, "abc", &[unified("memory.high", "7")])
        .unwrap();
    assert_eq!(read(&f.path(&format!("{scope}/memory.high"))), "7");
    // A pid that now belongs to another container (reused): refused.
    let err = cg
        .apply(4242, "def", &[unified("memory.high", "8")])
        .unwrap_err();
    assert!(err.to_string().contains("not in container def"), "{err}");
    assert_eq!(read(&f.path(&format!("{scope}/memory.high"))), "7");
    // A doctored label naming another file is refused before any write.
    for bad in ["../memory.high", "cgroup.procs", "/etc/passwd"] {
        assert!(
            cg.apply(4242, "abc", &[unified(bad, "1")]).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn zero_hugepage_limits_tolerate_a_cgroup_without_hugetlb_files() {
    let f = v2();
    let cg = f.cgroups();
    // The scope has hugetlb.2MB.max but no 1GB file.
    fs::create_dir_all(f.path("hp/hugepages-1048576kB")).unwrap();
    cg.apply(4242, "abc", &[huge("1GB", 0), huge("2MB", 0)])
        .unwrap();
    let err = cg.apply(4242, "abc", &[huge("1GB", 1 << 30)]).unwrap_err();
    assert!(err.to_string().contains("1GB"), "{err}");
}

#[test]
fn cgroup_paths_from_proc() {
    let f = v1();
    let cg = f.cgroups();
    assert_eq!(
        cg.dir_of(77, Some("memory")).unwrap(),
        f.path("cg/memory/kubepods/burstable/podu1/abc")
    );
    assert!(cg.dir_of(77, Some("blkio")).is_err());
    assert!(cg.dir_of(78, Some("memory")).is_err(), "no such process");
    // A path that climbs out of the hierarchy is not followed.
    f.file("proc/79/cgroup", "4:memory:/../../etc\n");
    assert!(cg.dir_of(79, Some("memory")).is_err());
}

mod pod_limits {
    use super::*;
    use crate::mapping::pod_resources::PodLimits;

    const REL: &str = "kubepods/burstable/pod1";

    fn limits() -> PodLimits {
        PodLimits {
            cpu_shares: Some(1024),
            cpu_quota: Some(50_000),
            cpu_period: Some(100_000),
            memory_limit: Some(100_000_000),
        }
    }

    fn v1() -> Fixture {
        let f = Fixture::new();
        let cpu = format!("cg/cpu,cpuacct/{REL}");
        f.file(&format!("{cpu}/cpu.shares"), "2\n");
        f.file(&format!("{cpu}/cpu.cfs_quota_us"), "-1\n");
        f.file(&format!("{cpu}/cpu.cfs_period_us"), "100000\n");
        // As on hosts: `cpu` is a link to the co-mount.
        std::os::unix::fs::symlink("cpu,cpuacct", f.path("cg/cpu")).unwrap();
        f.file(
            &format!("cg/memory/{REL}/memory.limit_in_bytes"),
            "9223372036854771712\n",
        );
        f
    }

    fn v2() -> Fixture {
        let f = Fixture::new();
        f.file("cg/cgroup.controllers", "cpu memory pids\n");
        f.file(&format!("cg/{REL}/cpu.weight"), "1\n");
        f.file(&format!("cg/{REL}/cpu.max"), "max 100000\n");
        f.file(&format!("cg/{REL}/memory.max"), "max\n");
        f
    }

    fn read(f: &Fixture, rel: &str) -> String {
        fs::read_to_string(f.path(rel)).unwrap().trim().to_string()
    }

    #[test]
    fn v1_writes_then_holds() {
        let f = v1();
        let cg = f.cgroups();
        assert_eq!(cg.version(), Version::V1);
        let changes = cg.apply_pod_limits(Path::new(REL), &limits()).unwrap();
        assert_eq!(changes.len(), 3, "{changes:?}"); // the period held already
        let cpu = format!("cg/cpu,cpuacct/{REL}");
        assert_eq!(read(&f, &format!("{cpu}/cpu.shares")), "1024");
        assert_eq!(read(&f, &format!("{cpu}/cpu.cfs_quota_us")), "50000");
        assert_eq!(read(&f, &format!("{cpu}/cpu.cfs_period_us")), "100000");
        let mem = format!("cg/memory/{REL}/memory.limit_in_bytes");
        assert_eq!(read(&f, &mem), "100000000");
        // The kernel reads memory back in whole pages: still held.
        fs::write(f.path(&mem), "99999744\n").unwrap();
        assert!(
            cg.apply_pod_limits(Path::new(REL), &limits())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn v1_unlimited_quota() {
        let f = v1();
        let unlimited = PodLimits {
            cpu_quota: Some(-1),
            ..Default::default()
        };
        let cg = f.cgroups();
        assert!(
            cg.apply_pod_limits(Path::new(REL), &unlimited)
                .unwrap()
                .is_empty()
        );
        cg.apply_pod_limits(Path::new(REL), &limits()).unwrap();
        let changes = cg.apply_pod_limits(Path::new(REL), &unlimited).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(
            read(&f, &format!("cg/cpu,cpuacct/{REL}/cpu.cfs_quota_us")),
            "-1"
        );
    }

    #[test]
    fn v2_writes_then_holds() {
        let f = v2();
        let cg = f.cgroups();
        assert_eq!(cg.version(), Version::V2);
        let changes = cg.apply_pod_limits(Path::new(REL), &limits()).unwrap();
        assert_eq!(changes.len(), 3, "{changes:?}");
        assert_eq!(read(&f, &format!("cg/{REL}/cpu.weight")), "39");
        assert_eq!(read(&f, &format!("cg/{REL}/cpu.max")), "50000 100000");
        assert_eq!(read(&f, &format!("cg/{REL}/memory.max")), "100000000");
        assert!(
            cg.apply_pod_limits(Path::new(REL), &limits())
                .unwrap()
                .is_empty()
        );
        // A weight kubelet wrote through newer runc's curve is kept.
        fs::write(f.path(&format!("cg/{REL}/cpu.weight")), "100\n").unwrap();
        assert!(
            cg.apply_pod_limits(Path::new(REL), &limits())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn v2_quota_and_period_apart() {
        let f = v2();
        let cg = f.cgroups();
        let period_only = PodLimits {
            cpu_period: Some(50_000),
            ..Default::default()
        };
        cg.apply_pod_limits(Path::new(REL), &period_only).unwrap();
        assert_eq!(read(&f, &format!("cg/{REL}/cpu.max")), "max 50000");
        let quota_only = PodLimits {
            cpu_quota: Some(20_000),
            ..Default::default()
        };
        cg.apply_pod_limits(Path::new(REL), &quota_only).unwrap();
        assert_eq!(read(&f, &format!("cg/{REL}/cpu.max")), "20000 50000");
        let unlimited = PodLimits {
            cpu_quota: Some(-1),
            ..Default::default()
        };
        cg.apply_pod_limits(Path::new(REL), &unlimited).unwrap();
        assert_eq!(read(&f, &format!("cg/{REL}/cpu.max")), "max 50000");
    }

    #[test]
    fn a_missing_pod_cgroup_is_refused_by_path() {
        for f in [v1(), v2()] {
            let e = f
                .cgroups()
                .apply_pod_limits(Path::new("kubepods/gone"), &limits())
                .unwrap_err();
            assert!(matches!(e, Error::FailedPrecondition(_)), "{e}");
            assert!(e.to_string().contains("kubepods/gone"), "{e}");
            assert!(e.to_string().contains("does not exist"), "{e}");
        }
    }

    #[test]
    fn nothing_asked_touches_nothing() {
        let f = Fixture::new();
        // Not even a hierarchy: no file is looked at.
        let changes = f
            .cgroups()
            .apply_pod_limits(Path::new(REL), &PodLimits::default())
            .unwrap();
        assert!(changes.is_empty());
    }
}
