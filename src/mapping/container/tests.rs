//! Table tests of the container mapping, field by field; no daemon.

use std::collections::HashMap;

use bollard::models::{ContainerStateStatusEnum, MountPoint};

use super::status::stop_signal_of;
use super::*;

fn pod() -> PodContext {
    PodContext {
        sandbox_id: "sb1".into(),
        pod: api::PodSandboxMetadata {
            name: "web".into(),
            namespace: "ns".into(),
            uid: "u1".into(),
            attempt: 0,
        },
        namespaces: api::NamespaceOption::default(),
        log_directory: "/var/log/pods/ns_web_u1".into(),
        runtime_handler: String::new(),
        docker_runtime: None,
    }
}

fn config() -> api::ContainerConfig {
    api::ContainerConfig {
        metadata: Some(api::ContainerMetadata {
            name: "app".into(),
            attempt: 2,
        }),
        image: Some(api::ImageSpec {
            image: "busybox:1".into(),
            ..Default::default()
        }),
        log_path: "app/2.log".into(),
        ..Default::default()
    }
}

fn body_of(config: &api::ContainerConfig, pod: &PodContext) -> Result<ContainerCreateBody> {
    let mounts = config.mounts.clone();
    let plan = ContainerPlan {
        config,
        pod,
        image_id: "sha256:img",
        display_image: "busybox:1",
        api_version: ApiVersion(1, 41),
        cgroup_driver: CgroupDriver::Cgroupfs,
        cgroup_parent: "",
        min_oom_score_adj: 0,
        seccomp_opt: None,
        apparmor_opt: None,
        mounts: &mounts,
        pid_target: Some("target-id"),
        created_nanos: 7,
        cgroup_settings: &[],
        selinux_enabled: true,
    };
    create_body(&plan)
}

fn body(config: &api::ContainerConfig) -> ContainerCreateBody {
    body_of(config, &pod()).unwrap()
}

#[test]
fn name_labels_and_log_path() {
    let c = config();
    assert_eq!(
        docker_name(c.metadata.as_ref().unwrap(), &pod().pod),
        "k8s_app_web_ns_u1_2"
    );
    let b = body(&c);
    let l = b.labels.unwrap();
    assert_eq!(l[labels::TYPE], labels::TYPE_CONTAINER);
    assert_eq!(l[labels::SANDBOX_ID], "sb1");
    assert_eq!(l[labels::LOG_PATH], "/var/log/pods/ns_web_u1/app/2.log");
    assert_eq!(l[IMAGE_LABEL], "busybox:1");
    assert_eq!(l[labels::CONTAINER_NAME], "app");
    assert_eq!(b.image.as_deref(), Some("sha256:img"));
    let meta = labels::container_metadata(&l, "/whatever");
    assert_eq!((meta.name.as_str(), meta.attempt), ("app", 2));
    let (cri, _) = labels::split_labels(&l);
    assert!(
        cri.is_empty(),
        "bookkeeping is not reported as labels: {cri:?}"
    );
}

#[test]
fn log_path_must_stay_inside_the_directory() {
    for bad in ["../x", "/etc/x", "a/../../x", "./x"] {
        let err = log_path("/var/log/pods/p", bad).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{bad}");
    }
    assert!(log_path("", "x.log").is_err());
    assert!(log_path("relative/dir", "x.log").is_err());
    assert_eq!(log_path("/d", "").unwrap(), None);
    assert_eq!(
        log_path("/d", "c/0.log").unwrap().unwrap(),
        PathBuf::from("/d/c/0.log")
    );
}

#[test]
fn command_and_args_follow_kubernetes() {
    type Case<'a> = (
        &'a [&'a str],
        &'a [&'a str],
        Option<Vec<&'a str>>,
        Option<Vec<&'a str>>,
    );
    let cases: [Case; 4] = [
        (&[], &[], None, None),
        (&["/bin/sh"], &[], Some(vec!["/bin/sh"]), None),
        (&[], &["-c", "x"], None, Some(vec!["-c", "x"])),
        (
            &["/bin/sh"],
            &["-c", "x"],
            Some(vec!["/bin/sh"]),
            Some(vec!["-c", "x"]),
        ),
    ];
    for (command, args, entrypoint, cmd) in cases {
        let mut c = config();
        c.command = command.iter().map(|s| s.to_string()).collect();
        c.args = args.iter().map(|s| s.to_string()).collect();
        let b = body(&c);
        let own =
            |v: Option<Vec<&str>>| v.map(|v| v.into_iter().map(String::from).collect::<Vec<_>>());
        assert_eq!(b.entrypoint, own(entrypoint), "{command:?} {args:?}");
        assert_eq!(b.cmd, own(cmd), "{command:?} {args:?}");
    }
}

#[test]
fn env_working_dir_and_stdio() {
    let mut c = config();
    c.envs = vec![api::KeyValue {
        key: "A".into(),
        value: b"x=y z".to_vec(),
    }];
    c.working_dir = "/work".into();
    c.tty = true;
    c.stdin = true;
    c.stdin_once = true;
    let b = body(&c);
    assert_eq!(b.env.unwrap(), vec!["A=x=y z"]);
    assert_eq!(b.working_dir.as_deref(), Some("/work"));
    assert_eq!(
        (b.tty, b.open_stdin, b.stdin_once),
        (Some(true), Some(true), Some(true))
    );
    for bad in [
        ("", "v".as_bytes()),
        ("A=B", b"v"),
        ("K", &[0xff, 0xfe][..]),
    ] {
        let mut c = config();
        c.envs = vec![api::KeyValue {
            key: bad.0.into(),
            value: bad.1.to_vec(),
        }];
        assert!(body_of(&c, &pod()).is_err(), "{bad:?}");
    }
}

#[test]
fn namespaces_join_the_pause_container() {
    use api::NamespaceMode::*;
    let cases = [
        (Pod, Some("container:sb1")),
        (Container, None),
        (Node, Some("host")),
        (Target, Some("container:target-id")),
    ];
    for (pid, want) in cases {
        let mut c = config();
        c.linux = Some(api::LinuxContainerConfig {
            security_context: Some(api::LinuxContainerSecurityContext {
                namespace_options: Some(api::NamespaceOption {
                    pid: pid as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        let hc = body(&c).host_config.unwrap();
        assert_eq!(hc.pid_mode.as_deref(), want, "{pid:?}");
        assert_eq!(hc.network_mode.as_deref(), Some("container:sb1"));
        assert_eq!(hc.ipc_mode.as_deref(), Some("container:sb1"));
    }
    let mut host_pod = pod();
    host_pod.namespaces.network = Node as i32;
    host_pod.namespaces.ipc = Node as i32;
    let hc = body_of(&config(), &host_pod).unwrap().host_config.unwrap();
    assert_eq!(hc.network_mode.as_deref(), Some("host"));
    assert_eq!(hc.uts_mode.as_deref(), Some("host"));
    assert_eq!(hc.ipc_mode.as_deref(), Some("host"));
}

fn mount(host: &str, ctr: &str, ro: bool, prop: api::MountPropagation) -> api::Mount {
    api::Mount {
        container_path: ctr.into(),
        host_path: host.into(),
        readonly: ro,
        propagation: prop as i32,
        ..Default::default()
    }
}

#[test]
fn mounts_table() {
    use api::MountPropagation::*;
    let (binds, typed) = mounts(
        &[
            mount("/h/a", "/c/a", true, PropagationPrivate),
            mount("/h/b", "/c/b", false, PropagationHostToContainer),
            api::Mount {
                selinux_relabel: true,
                ..mount("/h/c", "/c/c", false, PropagationBidirectional)
            },
            mount("/h/with:colon", "/c/d", false, PropagationPrivate),
        ],
        ApiVersion(1, 41),
        true,
    )
    .unwrap();
    assert_eq!(
        binds,
        vec![
            "/h/a:/c/a:ro,rprivate",
            "/h/b:/c/b:rw,rslave",
            "/h/c:/c/c:rw,rshared,Z"
        ]
    );
    assert_eq!(typed.len(), 1);
    assert_eq!(typed[0].source.as_deref(), Some("/h/with:colon"));

    let rro = api::Mount {
        recursive_read_only: true,
        ..mount("/h", "/c", true, PropagationPrivate)
    };
    assert!(
        mounts(std::slice::from_ref(&rro), ApiVersion(1, 41), true).is_err(),
        "needs API 1.44"
    );
    let (_, typed) = mounts(std::slice::from_ref(&rro), ApiVersion(1, 45), true).unwrap();
    assert_eq!(
        typed[0]
            .bind_options
            .as_ref()
            .unwrap()
            .read_only_force_recursive,
        Some(true)
    );
    let rro_rw = api::Mount {
        readonly: false,
        ..rro.clone()
    };
    assert!(
        mounts(&[rro_rw], ApiVersion(1, 45), true)
            .unwrap_err()
            .to_string()
            .contains("readonly")
    );
    let rro_slave = api::Mount {
        propagation: PropagationHostToContainer as i32,
        ..rro
    };
    assert!(
        mounts(&[rro_slave], ApiVersion(1, 45), true)
            .unwrap_err()
            .to_string()
            .contains("private")
    );

    let image = api::Mount {
        image: Some(api::ImageSpec {
            image: "x".into(),
            ..Default::default()
        }),
        ..mount("", "/c", true, PropagationPrivate)
    };
    let old_docker = mounts(std::slice::from_ref(&image), ApiVersion(1, 45), true).unwrap_err();
    assert!(matches!(old_docker, Error::Unimplemented(_)));
    assert!(
        old_docker
            .to_string()
            .contains("need Docker API 1.48 (Docker 28) or newer"),
        "{old_docker}"
    );
    let writable = api::Mount {
        readonly: false,
        ..image.clone()
    };
    assert!(matches!(
        mounts(&[writable], ApiVersion(1, 48), true),
        Err(Error::InvalidArgument(_))
    ));
    let (binds, typed) = mounts(
        &[api::Mount {
            image_sub_path: "etc/conf".into(),
            ..image.clone()
        }],
        ApiVersion(1, 48),
        true,
    )
    .unwrap();
    assert!(binds.is_empty());
    assert_eq!(
        typed,
        vec![bollard::models::Mount {
            target: Some("/c".into()),
            source: Some("x".into()),
            typ: Some(bollard::models::MountType::IMAGE),
            read_only: Some(true),
            image_options: Some(bollard::models::MountImageOptions {
                subpath: Some("etc/conf".into()),
            }),
            ..Default::default()
        }]
    );
    for (sub, host) in [("../etc", ""), ("/etc", ""), ("", "/h")] {
        let bad = api::Mount {
            image_sub_path: sub.into(),
            host_path: host.into(),
            ..image.clone()
        };
        assert!(
            matches!(
                mounts(&[bad], ApiVersion(1, 48), true),
                Err(Error::InvalidArgument(_))
            ),
            "{sub:?} {host:?}"
        );
    }
    assert!(
        mounts(
            &[mount("rel", "/c", false, PropagationPrivate)],
            ApiVersion(1, 41),
            true
        )
        .is_err()
    );
    assert!(
        mounts(
            &[mount("/h", "rel", false, PropagationPrivate)],
            ApiVersion(1, 41),
            true
        )
        .is_err()
    );
}

#[test]
fn devices_and_cdi() {
    let d = devices(&[api::Device {
        container_path: "/dev/x".into(),
        host_path: "/dev/null".into(),
        permissions: "rw".into(),
    }])
    .unwrap();
    assert_eq!(d[0].cgroup_permissions.as_deref(), Some("rw"));
    assert!(
        devices(&[api::Device {
            container_path: "/dev/x".into(),
            host_path: "/dev/null".into(),
            permissions: "rwx".into(),
        }])
        .is_err()
    );
    let cdi = [api::CdiDevice {
        name: "vendor.com/gpu=0".into(),
    }];
    assert!(cdi_devices(&cdi, ApiVersion(1, 41)).is_err());
    let req = cdi_devices(&cdi, ApiVersion(1, 45)).unwrap().unwrap();
    assert_eq!(req[0].driver.as_deref(), Some("cdi"));
    assert_eq!(cdi_devices(&[], ApiVersion(1, 41)).unwrap(), None);
}

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
fn selinux_relabel_per_host_and_mount_form() {
    use api::MountPropagation::*;
    let relabel = |m: api::Mount| api::Mount {
        selinux_relabel: true,
        ..m
    };
    let list = [
        relabel(mount("/h/plain", "/c/a", false, PropagationPrivate)),
        relabel(api::Mount {
            recursive_read_only: true,
            ..mount("/h/rro", "/c/b", true, PropagationPrivate)
        }),
        relabel(mount("/h/with:colon", "/c/d", false, PropagationPrivate)),
        mount("/h/keep", "/c/e", false, PropagationPrivate),
    ];
    // SELinux enforced: binds carry Z, the others are relabelled by us.
    let (binds, typed) = mounts(&list, ApiVersion(1, 45), true).unwrap();
    assert_eq!(
        binds,
        vec!["/h/plain:/c/a:rw,rprivate,Z", "/h/keep:/c/e:rw,rprivate"]
    );
    assert_eq!(typed.len(), 2);
    assert_eq!(
        relabel_sources(&list, true),
        vec!["/h/rro", "/h/with:colon"]
    );
    // No SELinux: relabelling is a no-op, never a refusal.
    let (binds, typed) = mounts(&list, ApiVersion(1, 45), false).unwrap();
    assert_eq!(
        binds,
        vec!["/h/plain:/c/a:rw,rprivate", "/h/keep:/c/e:rw,rprivate"]
    );
    assert_eq!(typed.len(), 2);
    assert!(relabel_sources(&list, false).is_empty());
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
fn images_health_checks_are_disabled() {
    let b = body(&config());
    assert_eq!(
        b.healthcheck.and_then(|h| h.test),
        Some(vec!["NONE".to_string()])
    );
}

#[test]
fn failed_start_is_exited_with_the_reason() {
    use bollard::models::{ContainerInspectResponse, ContainerState};
    let created_nanos = 1_700_000_000_000_000_000i64;
    let inspect = ContainerInspectResponse {
        id: Some("c1".into()),
        state: Some(ContainerState {
            status: Some(ContainerStateStatusEnum::CREATED),
            exit_code: Some(127),
            error: Some("exec: \"/nope\": stat /nope: no such file or directory".into()),
            started_at: Some("0001-01-01T00:00:00Z".into()),
            finished_at: Some("0001-01-01T00:00:00Z".into()),
            ..Default::default()
        }),
        config: Some(bollard::models::ContainerConfig {
            labels: Some(HashMap::from([(
                labels::CREATED_NANOS.to_string(),
                created_nanos.to_string(),
            )])),
            ..Default::default()
        }),
        ..Default::default()
    };
    let s = container_status(&inspect, None);
    assert_eq!(s.state, api::ContainerState::ContainerExited as i32);
    assert_eq!(s.reason, "ContainerCannotRun");
    assert_eq!(s.exit_code, 127);
    assert!(s.message.contains("/nope"), "{}", s.message);
    assert_eq!(s.finished_at, created_nanos);
    // A container merely not started yet stays created.
    let mut fresh = inspect.clone();
    let st = fresh.state.as_mut().unwrap();
    st.exit_code = Some(0);
    st.error = Some(String::new());
    let s = container_status(&fresh, None);
    assert_eq!(s.state, api::ContainerState::ContainerCreated as i32);
    assert_eq!(s.reason, "");
}

#[test]
fn runtime_handler_applies_to_app_containers() {
    let mut pod = pod();
    pod.runtime_handler = "gvisor".into();
    pod.docker_runtime = Some("runsc".into());
    let b = body_of(&config(), &pod).unwrap();
    assert_eq!(b.host_config.unwrap().runtime.as_deref(), Some("runsc"));
    assert_eq!(b.labels.unwrap()[labels::RUNTIME_HANDLER], "gvisor");
    assert_eq!(body(&config()).host_config.unwrap().runtime, None);
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

#[test]
fn security_context_table() {
    let mut c = config();
    c.linux = Some(api::LinuxContainerConfig {
        security_context: Some(api::LinuxContainerSecurityContext {
            capabilities: Some(api::Capability {
                add_capabilities: vec!["NET_ADMIN".into(), "CAP_SYS_TIME".into()],
                drop_capabilities: vec!["ALL".into()],
                add_ambient_capabilities: vec![],
            }),
            run_as_user: Some(api::Int64Value { value: 1000 }),
            run_as_group: Some(api::Int64Value { value: 2000 }),
            supplemental_groups: vec![3000],
            readonly_rootfs: true,
            no_new_privs: true,
            masked_paths: vec!["/proc/kcore".into()],
            readonly_paths: vec!["/proc/sys".into()],
            ..Default::default()
        }),
        ..Default::default()
    });
    let b = body(&c);
    assert_eq!(b.user.as_deref(), Some("1000:2000"));
    let hc = b.host_config.unwrap();
    assert_eq!(hc.cap_add.unwrap(), vec!["CAP_NET_ADMIN", "CAP_SYS_TIME"]);
    assert_eq!(hc.cap_drop.unwrap(), vec!["ALL"]);
    assert_eq!(hc.group_add.unwrap(), vec!["3000"]);
    assert!(
        hc.security_opt
            .unwrap()
            .contains(&"no-new-privileges".to_string())
    );
    assert_eq!(hc.masked_paths.unwrap(), vec!["/proc/kcore"]);
    assert_eq!(hc.readonly_paths.unwrap(), vec!["/proc/sys"]);

    let sc = c.linux.as_mut().unwrap().security_context.as_mut().unwrap();
    sc.privileged = true;
    let hc = body(&c).host_config.unwrap();
    assert_eq!(hc.privileged, Some(true));
    assert!(hc.masked_paths.is_none(), "no masked paths when privileged");

    let mut strict = config();
    strict.linux = Some(api::LinuxContainerConfig {
        security_context: Some(api::LinuxContainerSecurityContext {
            supplemental_groups_policy: api::SupplementalGroupsPolicy::Strict as i32,
            ..Default::default()
        }),
        ..Default::default()
    });
    assert!(matches!(
        body_of(&strict, &pod()),
        Err(Error::Unimplemented(_))
    ));
    let mut group_only = config();
    group_only.linux = Some(api::LinuxContainerConfig {
        security_context: Some(api::LinuxContainerSecurityContext {
            run_as_group: Some(api::Int64Value { value: 5 }),
            ..Default::default()
        }),
        ..Default::default()
    });
    assert!(body_of(&group_only, &pod()).is_err());
}

#[test]
fn stop_signal_names() {
    assert_eq!(docker_signal(0).unwrap(), None);
    assert_eq!(
        docker_signal(api::Signal::Sigterm as i32).unwrap().unwrap(),
        "SIGTERM"
    );
    assert_eq!(
        docker_signal(api::Signal::Sigrtminplus3 as i32)
            .unwrap()
            .unwrap(),
        "SIGRTMIN+3"
    );
    assert_eq!(
        docker_signal(api::Signal::Sigrtmaxminus1 as i32)
            .unwrap()
            .unwrap(),
        "SIGRTMAX-1"
    );
    assert!(docker_signal(999).is_err());
    let l = HashMap::from([(STOP_SIGNAL_LABEL.to_string(), "SIGRTMIN+3".to_string())]);
    assert_eq!(stop_signal_of(&l), api::Signal::Sigrtminplus3 as i32);
}

#[test]
fn states_and_users() {
    use ContainerStateStatusEnum as S;
    assert_eq!(
        container_state(Some(S::CREATED)),
        api::ContainerState::ContainerCreated
    );
    assert_eq!(
        container_state(Some(S::RUNNING)),
        api::ContainerState::ContainerRunning
    );
    assert_eq!(
        container_state(Some(S::EXITED)),
        api::ContainerState::ContainerExited
    );
    assert_eq!(
        container_state(Some(S::DEAD)),
        api::ContainerState::ContainerExited
    );
    assert_eq!(container_state(None), api::ContainerState::ContainerUnknown);

    let proc = "Name:\tsh\nUid:\t1000\t1000\t1000\t1000\nGid:\t2000\t2000\t2000\t2000\nGroups:\t3000 4000 \n";
    let u = user_status("", Some(proc)).unwrap().linux.unwrap();
    assert_eq!(
        (u.uid, u.gid, u.supplemental_groups),
        (1000, 2000, vec![3000, 4000])
    );
    let u = user_status("7:8", None).unwrap().linux.unwrap();
    assert_eq!((u.uid, u.gid), (7, 8));
    assert_eq!(user_status("", None).unwrap().linux.unwrap().uid, 0);
    assert!(user_status("nobody", None).is_none());
}

#[test]
fn mount_status_reads_propagation_back() {
    let mp = MountPoint {
        typ: Some("bind".into()),
        source: Some("/h".into()),
        destination: Some("/c".into()),
        mode: Some("ro,rslave,Z".into()),
        rw: Some(false),
        propagation: Some("rslave".into()),
        ..Default::default()
    };
    let m = mount_status(&mp).unwrap();
    assert!(m.readonly && m.selinux_relabel);
    assert_eq!(
        m.propagation,
        api::MountPropagation::PropagationHostToContainer as i32
    );
    let volume = MountPoint {
        typ: Some("volume".into()),
        ..Default::default()
    };
    assert!(mount_status(&volume).is_none());
}
