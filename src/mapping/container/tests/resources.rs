//! Table tests of resources: limits, hugepages, swap, OOM score, and updates and their undo.

use std::collections::HashMap;

use super::*;

#[test]
fn resources_table() {
    let r = api::LinuxContainerResources {
        cpu_period: 100_000,
        cpu_quota: 50_000,
        cpu_shares: 512,
        memory_limit_in_bytes: 64 << 20,
        memory_swap_limit_in_bytes: 128 << 20,
        oom_score_adj: 500,
        cpuset_cpus: "0-1".into(),
        cpuset_mems: "0".into(),
        hugepage_limits: vec![api::HugepageLimit {
            page_size: "2MB".into(),
            limit: 0,
        }],
        unified: HashMap::from([
            ("pids.max".to_string(), "100".to_string()),
            ("memory.oom.group".to_string(), "1".to_string()),
        ]),
    };
    let res = resources(&r).unwrap();
    assert_eq!(res.cpu_quota, Some(50_000));
    assert_eq!(res.memory, Some(64 << 20));
    assert_eq!(res.memory_swap, Some(128 << 20));
    assert_eq!(res.pids_limit, Some(100));
    // What Docker has no field for goes to the cgroup files, in key order.
    assert_eq!(
        res.cgroup_settings,
        vec![
            CgroupSetting::Hugepage {
                page_size: "2MB".into(),
                limit: 0
            },
            CgroupSetting::Unified {
                key: "memory.oom.group".into(),
                value: "1".into()
            },
        ]
    );
    let mut c = config();
    c.linux = Some(api::LinuxContainerConfig {
        resources: Some(r.clone()),
        ..Default::default()
    });
    let hc = body(&c).host_config.unwrap();
    assert_eq!(hc.oom_score_adj, Some(500));
    assert_eq!(hc.cpuset_cpus.as_deref(), Some("0-1"));

    type Mutation = Box<dyn Fn(&mut api::LinuxContainerResources)>;
    let bad: Vec<(&str, Mutation)> = vec![
        (
            "memory_limit_in_bytes",
            Box::new(|r| r.memory_limit_in_bytes = -1),
        ),
        (
            "memory_limit_in_bytes",
            Box::new(|r| r.memory_limit_in_bytes = 1024),
        ),
        ("cpu_shares", Box::new(|r| r.cpu_shares = -3)),
        ("cpu_shares", Box::new(|r| r.cpu_shares = 1 << 40)),
        ("cpu_period", Box::new(|r| r.cpu_period = 10)),
        ("cpu_quota", Box::new(|r| r.cpu_quota = 5)),
        ("oom_score_adj", Box::new(|r| r.oom_score_adj = 5000)),
        ("cpuset_cpus", Box::new(|r| r.cpuset_cpus = "abc".into())),
        (
            "memory_swap_limit_in_bytes",
            Box::new(|r| r.memory_swap_limit_in_bytes = 1 << 20),
        ),
        (
            "hugepage_limits",
            Box::new(|r| r.hugepage_limits[0].page_size = "2XB".into()),
        ),
        (
            "unified",
            Box::new(|r| {
                r.unified.insert("cgroup.procs".into(), "1".into());
            }),
        ),
        (
            "unified",
            Box::new(|r| {
                r.unified.insert("../memory.high".into(), "1".into());
            }),
        ),
        (
            "unified",
            Box::new(|r| {
                r.unified.insert("memory.high".into(), "1\n2".into());
            }),
        ),
        (
            "pids.max",
            Box::new(|r| {
                r.unified.insert("pids.max".into(), "-7".into());
            }),
        ),
    ];
    for (field, mutate) in bad {
        let mut r2 = r.clone();
        mutate(&mut r2);
        let err = resources(&r2).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{field}");
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
}

#[test]
fn hugepage_sizes() {
    assert_eq!(hugepage_size_kib("2MB"), Some(2048));
    assert_eq!(hugepage_size_kib("1GB"), Some(1 << 20));
    assert_eq!(hugepage_size_kib("64KB"), Some(64));
    for bad in ["", "MB", "2", "2mb", "0MB", "2MiB", "-2MB"] {
        assert_eq!(hugepage_size_kib(bad), None, "{bad}");
    }
}

fn resources_mut(c: &mut api::ContainerConfig) -> &mut api::LinuxContainerResources {
    c.linux
        .get_or_insert_with(Default::default)
        .resources
        .get_or_insert_with(Default::default)
}

#[test]
fn swap_defaults_to_none_at_create() {
    let mut c = config();
    resources_mut(&mut c).memory_limit_in_bytes = 64 << 20;
    let hc = body(&c).host_config.unwrap();
    assert_eq!(hc.memory_swap, Some(64 << 20));
    assert_eq!(body(&config()).host_config.unwrap().memory_swap, None);
}

#[test]
fn oom_score_is_clamped_to_the_host_minimum() {
    let mut c = config();
    c.linux = Some(api::LinuxContainerConfig {
        resources: Some(api::LinuxContainerResources {
            oom_score_adj: -997,
            ..Default::default()
        }),
        ..Default::default()
    });
    assert_eq!(body(&c).host_config.unwrap().oom_score_adj, Some(0));
}

#[test]
fn update_body_keeps_the_swap_allowance() {
    let r = api::LinuxContainerResources {
        memory_limit_in_bytes: 100 << 20,
        cpu_quota: 20_000,
        ..Default::default()
    };
    // No swap before (MemorySwap == memory): none after.
    let u = update_body(&r, 64 << 20, 64 << 20).unwrap();
    assert_eq!(u.memory, Some(100 << 20));
    assert_eq!(u.memory_swap, Some(100 << 20));
    assert_eq!(u.cpu_quota, Some(20_000));
    // 10 MiB of swap before: 10 MiB after.
    assert_eq!(
        update_body(&r, 64 << 20, 74 << 20).unwrap().memory_swap,
        Some(110 << 20)
    );
    assert_eq!(update_body(&r, 64 << 20, -1).unwrap().memory_swap, Some(-1));
    // No limit before: no swap after either (not Docker's twice the memory).
    assert_eq!(update_body(&r, 0, 0).unwrap().memory_swap, Some(100 << 20));
    assert_eq!(update_body(&Default::default(), 0, 0).unwrap().memory, None);
}

#[test]
fn restore_body_puts_back_every_field_an_update_changes() {
    let before = bollard::models::HostConfig {
        cpu_period: Some(100_000),
        cpu_quota: Some(50_000),
        cpu_shares: Some(512),
        memory: Some(64 << 20),
        memory_swap: Some(64 << 20),
        cpuset_cpus: Some("0".into()),
        cpuset_mems: Some("0".into()),
        pids_limit: Some(100),
        ..Default::default()
    };
    let r = api::LinuxContainerResources {
        cpu_period: 200_000,
        cpu_quota: 10_000,
        cpu_shares: 2,
        memory_limit_in_bytes: 128 << 20,
        cpuset_cpus: "1".into(),
        cpuset_mems: "1".into(),
        ..Default::default()
    };
    let update = update_body(&r, 64 << 20, 64 << 20).unwrap();
    let undo = restore_body(&before);
    // Whatever the update sets, the undo sets back to the old value.
    for (changed, restored, old) in [
        (update.cpu_period, undo.cpu_period, before.cpu_period),
        (update.cpu_quota, undo.cpu_quota, before.cpu_quota),
        (update.cpu_shares, undo.cpu_shares, before.cpu_shares),
        (update.memory, undo.memory, before.memory),
        (update.memory_swap, undo.memory_swap, before.memory_swap),
    ] {
        assert!(changed.is_some());
        assert_eq!(restored, old);
    }
    assert_eq!(undo.cpuset_cpus.as_deref(), Some("0"));
    assert_eq!(undo.cpuset_mems.as_deref(), Some("0"));
    assert_eq!(undo.pids_limit, Some(100));
}

#[test]
fn kubelet_swap_settings_on_cgroup_v2() {
    let with = |swap: &str| api::LinuxContainerResources {
        memory_limit_in_bytes: 64 << 20,
        unified: HashMap::from([("memory.swap.max".to_string(), swap.to_string())]),
        ..Default::default()
    };
    assert_eq!(
        resources(&with("0")).unwrap().memory_swap,
        Some(64 << 20),
        "no swap"
    );
    assert_eq!(
        resources(&with("1048576")).unwrap().memory_swap,
        Some(65 << 20)
    );
    assert_eq!(resources(&with("max")).unwrap().memory_swap, Some(-1));
    assert!(resources(&with("lots")).is_err());
    let no_memory = api::LinuxContainerResources {
        unified: HashMap::from([("memory.swap.max".to_string(), "0".to_string())]),
        ..Default::default()
    };
    assert_eq!(resources(&no_memory).unwrap().memory_swap, None);
}
