//! Container RPCs against the real dockerd through the real binary. Output
//! of a container is read with Docker's log API (CRI logs are a later
//! feature).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::pod::{Pod, resources, security};
use common::{Server, TestImage, docker, docker_logs, unique};
use docker_cri::api;
use tonic::Code;

#[tokio::test]
async fn lifecycle_and_graceful_stop_against_a_sigterm_ignorer() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let mut config = pod.ctr("life", "trap '' TERM; while true; do sleep 1; done");
    config.labels = HashMap::from([("tier".to_string(), "web".to_string())]);
    config.annotations = HashMap::from([("a".to_string(), "b".to_string())]);
    let id = pod.create(&config).await.unwrap();
    let s = pod.status(&id).await.unwrap();
    assert_eq!(s.state, api::ContainerState::ContainerCreated as i32);
    assert!(s.created_at > 0);
    assert_eq!(s.metadata, config.metadata);
    assert_eq!(s.labels, config.labels, "labels exactly as given");
    assert_eq!(s.annotations, config.annotations);
    assert_eq!(s.image.as_ref().unwrap().image, pod.image.name);
    assert_eq!(
        s.image_ref, pod.image.id,
        "image_ref is the image ID the image service reports"
    );
    assert_eq!(s.image_id, pod.image.id);
    assert_eq!(
        s.log_path,
        pod.logs.path().join("life/0.log").display().to_string()
    );
    let docker_name = docker()
        .await
        .inspect_container(&id, None)
        .await
        .unwrap()
        .name
        .unwrap();
    assert_eq!(
        docker_name,
        format!(
            "/k8s_life_ctrpod_docker-cri-test_{}_0",
            pod.config.metadata.as_ref().unwrap().uid
        )
    );

    pod.start(&id).await.unwrap();
    let s = pod.status(&id).await.unwrap();
    assert_eq!(s.state, api::ContainerState::ContainerRunning as i32);
    assert!(s.started_at >= s.created_at);
    let listed = pod
        .list(api::ContainerFilter {
            id: id.clone(),
            ..Default::default()
        })
        .await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].pod_sandbox_id, pod.id);
    assert_eq!(listed[0].image_ref, pod.image.id);

    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    pod.stop(&id, 1).await.unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(10),
        "grace then SIGKILL: {took:?}"
    );
    let s = pod.status(&id).await.unwrap();
    assert_eq!(s.state, api::ContainerState::ContainerExited as i32);
    assert_eq!(s.exit_code, 137);
    assert_eq!(s.reason, "Error");
    assert!(s.finished_at >= s.started_at);
    pod.stop(&id, 1).await.unwrap();
    // An exited container is not started again under the same ID.
    let err = pod.start(&id).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");

    pod.remove(&id).await.unwrap();
    pod.remove(&id).await.unwrap();
    pod.stop(&id, 0).await.unwrap();
    assert_eq!(pod.status(&id).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(pod.start(&id).await.unwrap_err().code(), Code::NotFound);
}

#[tokio::test]
async fn completed_container_and_env_and_workdir() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let mut config = pod.ctr("env", "echo FOO=$FOO; echo PWD=$(pwd)");
    config.envs = vec![api::KeyValue {
        key: "FOO".into(),
        value: b"bar baz=1".to_vec(),
    }];
    config.working_dir = "/tmp".into();
    let (s, out) = pod.run(&config).await;
    assert_eq!(s.exit_code, 0);
    assert_eq!(s.reason, "Completed");
    assert!(out.contains("FOO=bar baz=1"), "{out}");
    assert!(out.contains("PWD=/tmp"), "{out}");
}

#[tokio::test]
async fn command_args_and_the_image_entrypoint() {
    let image = TestImage::busybox_with("ENTRYPOINT [\"echo\", \"ep\"]\nCMD [\"default\"]\n").await;
    let server = Server::start(&[]).await;
    let mut pod = Pod::with_image(&server, image).await;
    let cases: [(&[&str], &[&str], &str); 4] = [
        (&[], &[], "ep default"),
        (&[], &["a1"], "ep a1"),
        (&["echo", "cmd"], &[], "cmd"),
        (&["echo"], &["x", "y"], "x y"),
    ];
    for (i, (command, args, want)) in cases.iter().enumerate() {
        let mut config = pod.ctr(&format!("cmd{i}"), "");
        config.command = command.iter().map(|s| s.to_string()).collect();
        config.args = args.iter().map(|s| s.to_string()).collect();
        let (_, out) = pod.run(&config).await;
        assert_eq!(out.trim(), *want, "command {command:?} args {args:?}");
    }
}

#[tokio::test]
async fn missing_image_is_not_found() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let mut config = pod.ctr("noimg", "true");
    let name = format!("docker-cri-test/{}:absent", unique("img"));
    config.image.as_mut().unwrap().image = name.clone();
    let err = pod.create(&config).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains(&name), "{err:?}");
}

#[tokio::test]
async fn pid_namespace_modes() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let pid_cfg = |pod: &Pod, name: &str, mode: api::NamespaceMode, target: &str| {
        let mut c = pod.ctr(name, "cat /proc/1/cmdline | tr '\\0' ' '; echo");
        security(&mut c).namespace_options = Some(api::NamespaceOption {
            pid: mode as i32,
            target_id: target.into(),
            ..Default::default()
        });
        c
    };
    let (_, out) = pod
        .run(&pid_cfg(&pod, "pidpod", api::NamespaceMode::Pod, ""))
        .await;
    assert!(
        out.contains("/pause"),
        "POD: pid 1 is the pause process: {out}"
    );
    let (_, out) = pod
        .run(&pid_cfg(&pod, "pidctr", api::NamespaceMode::Container, ""))
        .await;
    assert!(
        out.starts_with("sh -c"),
        "CONTAINER: pid 1 is our own shell: {out}"
    );
    let (_, out) = pod
        .run(&pid_cfg(&pod, "pidnode", api::NamespaceMode::Node, ""))
        .await;
    assert!(
        !out.contains("/pause") && !out.starts_with("sh -c"),
        "NODE: the host's pid 1: {out}"
    );

    let mut target_cfg = pod.ctr("target", "exec sleep 300");
    security(&mut target_cfg).namespace_options = Some(api::NamespaceOption {
        pid: api::NamespaceMode::Container as i32,
        ..Default::default()
    });
    let target = pod.create(&target_cfg).await.unwrap();
    pod.start(&target).await.unwrap();
    let (_, out) = pod
        .run(&pid_cfg(
            &pod,
            "pidtarget",
            api::NamespaceMode::Target,
            &target,
        ))
        .await;
    assert!(
        out.starts_with("sleep 300"),
        "TARGET: pid 1 is the target's: {out}"
    );

    // A target in another pod is refused.
    let mut other = Pod::new(&server).await;
    let err = other
        .create(&pid_cfg(
            &other,
            "foreign-target",
            api::NamespaceMode::Target,
            &target,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("another pod"), "{err:?}");
    pod.stop(&target, 0).await.unwrap();
}

#[tokio::test]
async fn mounts_readonly_symlink_missing_and_propagation() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let host = tempfile::tempdir().unwrap();
    let data = host.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("file"), "from-host").unwrap();
    let link = host.path().join("link");
    std::os::unix::fs::symlink(&data, &link).unwrap();
    let missing = host.path().join("created/by/runtime");
    // Propagation needs a shared source mount.
    let shared = host.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    let sh = |cmd: String| {
        assert!(
            std::process::Command::new("sh")
                .arg("-c")
                .arg(&cmd)
                .status()
                .unwrap()
                .success(),
            "{cmd}"
        )
    };
    sh(format!(
        "mount --bind {0} {0} && mount --make-rshared {0}",
        shared.display()
    ));

    let mount =
        |host: &std::path::Path, ctr: &str, ro: bool, prop: api::MountPropagation| api::Mount {
            host_path: host.display().to_string(),
            container_path: ctr.into(),
            readonly: ro,
            propagation: prop as i32,
            ..Default::default()
        };
    let mut config = pod.ctr(
        "mounts",
        "cat /ro/file; echo; touch /ro/x 2>&1; cat /viasymlink/file; echo; test -d /made && echo MADE; \
         grep -E ' /slave | /bidi ' /proc/self/mountinfo",
    );
    use api::MountPropagation::*;
    config.mounts = vec![
        mount(&data, "/ro", true, PropagationPrivate),
        mount(&link, "/viasymlink", false, PropagationPrivate),
        mount(&missing, "/made", false, PropagationPrivate),
        mount(&shared, "/slave", false, PropagationHostToContainer),
        mount(&shared, "/bidi", false, PropagationBidirectional),
    ];
    let id = pod.create(&config).await.unwrap();
    pod.start(&id).await.unwrap();
    let status = pod.wait_exit(&id).await;
    let out = docker_logs(&id).await;
    sh(format!("umount {}", shared.display()));
    assert!(out.contains("from-host"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(out.contains("MADE"), "{out}");
    assert!(
        missing.is_dir(),
        "a missing host path is created as a directory"
    );
    let slave_line = out
        .lines()
        .find(|l| l.contains(" /slave "))
        .expect("slave mount");
    assert!(slave_line.contains("master:"), "{slave_line}");
    let bidi_line = out
        .lines()
        .find(|l| l.contains(" /bidi "))
        .expect("bidi mount");
    assert!(bidi_line.contains("shared:"), "{bidi_line}");

    let by_path = |p: &str| {
        status
            .mounts
            .iter()
            .find(|m| m.container_path == p)
            .unwrap()
            .clone()
    };
    assert!(by_path("/ro").readonly);
    assert_eq!(
        by_path("/viasymlink").host_path,
        data.display().to_string(),
        "symlink resolved"
    );
    assert_eq!(
        by_path("/slave").propagation,
        PropagationHostToContainer as i32
    );
    assert_eq!(
        by_path("/bidi").propagation,
        PropagationBidirectional as i32
    );
    assert_eq!(by_path("/ro").propagation, PropagationPrivate as i32);

    let mut image_mount = pod.ctr("imgmount", "true");
    image_mount.mounts = vec![api::Mount {
        container_path: "/img".into(),
        image: Some(api::ImageSpec {
            image: pod.image.name.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }];
    // Image volumes work (tests/image_volumes.rs), read-only only.
    let err = pod.create(&image_mount).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("readonly must be true"), "{err:?}");
}

#[tokio::test]
async fn users_and_groups() {
    let image = TestImage::busybox_with(
        "RUN [\"/bin/sh\", \"-c\", \"echo 'root:x:0:0::/:/bin/sh' > /etc/passwd && echo 'tester:x:1500:1600::/:/bin/sh' >> /etc/passwd && echo 'root:x:0:' > /etc/group && echo 'testers:x:1600:' >> /etc/group\"]\n",
    )
    .await;
    let server = Server::start(&[]).await;
    let mut pod = Pod::with_image(&server, image).await;

    let mut numeric = pod.ctr("uid", "id; sleep 2");
    let sc = security(&mut numeric);
    sc.run_as_user = Some(api::Int64Value { value: 1234 });
    sc.run_as_group = Some(api::Int64Value { value: 5678 });
    sc.supplemental_groups = vec![4000];
    let id = pod.create(&numeric).await.unwrap();
    pod.start(&id).await.unwrap();
    let running = pod.status(&id).await.unwrap();
    let user = running.user.unwrap().linux.unwrap();
    assert_eq!((user.uid, user.gid), (1234, 5678));
    assert!(user.supplemental_groups.contains(&4000), "{user:?}");
    pod.wait_exit(&id).await;
    let out = docker_logs(&id).await;
    assert!(
        out.contains("uid=1234") && out.contains("gid=5678") && out.contains("4000"),
        "{out}"
    );

    let mut named = pod.ctr("uname", "id");
    security(&mut named).run_as_username = "tester".into();
    let (_, out) = pod.run(&named).await;
    assert!(out.contains("uid=1500(tester)"), "{out}");
    assert!(out.contains("gid=1600"), "{out}");

    let mut group_only = pod.ctr("gonly", "id");
    security(&mut group_only).run_as_group = Some(api::Int64Value { value: 5 });
    assert_eq!(
        pod.create(&group_only).await.unwrap_err().code(),
        Code::InvalidArgument
    );
}

#[tokio::test]
async fn security_context_inside_the_container() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let mut config = pod.ctr(
        "sec",
        "touch /rootfs-write 2>&1; grep -E 'CapEff|NoNewPrivs' /proc/self/status; \
         echo TIMER=$(wc -c < /proc/timer_list); grep ' /proc/sys ' /proc/self/mountinfo",
    );
    let sc = security(&mut config);
    sc.readonly_rootfs = true;
    sc.no_new_privs = true;
    sc.capabilities = Some(api::Capability {
        add_capabilities: vec!["NET_ADMIN".into()],
        drop_capabilities: vec!["ALL".into()],
        add_ambient_capabilities: vec![],
    });
    sc.masked_paths = vec!["/proc/timer_list".into()];
    sc.readonly_paths = vec!["/proc/sys".into()];
    let (_, out) = pod.run(&config).await;
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(
        out.contains("CapEff:\t0000000000001000"),
        "only NET_ADMIN: {out}"
    );
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(out.contains("TIMER=0"), "masked: {out}");
    let sys = out
        .lines()
        .find(|l| l.contains(" /proc/sys "))
        .expect("/proc/sys mount");
    assert!(sys.contains(" ro,") || sys.contains(" ro "), "{sys}");
}

#[tokio::test]
async fn seccomp_localhost_profiles() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    let with_profile = |pod: &Pod, name: &str, path: &std::path::Path| {
        let mut c = pod.ctr(name, "mkdir /tmp/blocked 2>&1; echo done");
        security(&mut c).seccomp = Some(api::SecurityProfile {
            profile_type: api::security_profile::ProfileType::Localhost as i32,
            localhost_ref: path.display().to_string(),
        });
        c
    };
    let (_, out) = pod.run(&with_profile(&pod, "seccomp", &profile)).await;
    assert!(out.contains("Operation not permitted"), "{out}");

    let malformed = dir.path().join("bad.json");
    std::fs::write(&malformed, "{not json").unwrap();
    let err = pod
        .create(&with_profile(&pod, "badjson", &malformed))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let missing = dir.path().join("missing.json");
    let err = pod
        .create(&with_profile(&pod, "missing", &missing))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains(&missing.display().to_string()),
        "{err:?}"
    );
}

#[tokio::test]
async fn oom_kill_is_reported() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let mut config = pod.ctr("oom", "x=a; while true; do x=$x$x$x$x; done");
    let r = resources(&mut config);
    r.memory_limit_in_bytes = 16 << 20;
    r.memory_swap_limit_in_bytes = 16 << 20;
    let (s, _) = pod.run(&config).await;
    assert_eq!(s.reason, "OOMKilled", "{s:?}");
    assert_eq!(s.exit_code, 137);
}

#[tokio::test]
async fn update_resources_shows_in_status() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let mut config = pod.ctr("upd", "exec sleep 300");
    let r = resources(&mut config);
    r.memory_limit_in_bytes = 64 << 20;
    r.cpu_period = 100_000;
    r.cpu_quota = 50_000;
    let id = pod.create(&config).await.unwrap();
    pod.start(&id).await.unwrap();
    let update =
        |linux: Option<api::LinuxContainerResources>| api::UpdateContainerResourcesRequest {
            container_id: id.clone(),
            linux,
            ..Default::default()
        };
    pod.rt
        .update_container_resources(update(Some(api::LinuxContainerResources {
            memory_limit_in_bytes: 128 << 20,
            cpu_period: 100_000,
            cpu_quota: 20_000,
            cpu_shares: 256,
            ..Default::default()
        })))
        .await
        .unwrap();
    let now = pod
        .status(&id)
        .await
        .unwrap()
        .resources
        .unwrap()
        .linux
        .unwrap();
    assert_eq!(now.memory_limit_in_bytes, 128 << 20);
    assert_eq!(now.cpu_quota, 20_000);
    assert_eq!(now.cpu_shares, 256);
    // No linux section: a no-op.
    pod.rt
        .update_container_resources(update(None))
        .await
        .unwrap();
    // Absurd values are refused, nothing applied.
    for bad in [
        api::LinuxContainerResources {
            memory_limit_in_bytes: -5,
            ..Default::default()
        },
        api::LinuxContainerResources {
            cpu_shares: 1 << 40,
            ..Default::default()
        },
        api::LinuxContainerResources {
            oom_score_adj: 5000,
            ..Default::default()
        },
    ] {
        let err = pod
            .rt
            .update_container_resources(update(Some(bad)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    }
    let after = pod
        .status(&id)
        .await
        .unwrap()
        .resources
        .unwrap()
        .linux
        .unwrap();
    assert_eq!(after.memory_limit_in_bytes, 128 << 20);
    pod.stop(&id, 0).await.unwrap();
}

#[tokio::test]
async fn list_filters() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let mut other = Pod::new(&server).await;
    let tag = unique("tag");
    let mut a_cfg = pod.ctr("a", "exec sleep 300");
    a_cfg.labels.insert("tag".into(), tag.clone());
    let a = pod.create(&a_cfg).await.unwrap();
    pod.start(&a).await.unwrap();
    let b = pod.create(&pod.ctr("b", "true")).await.unwrap();
    let c = other.create(&other.ctr("c", "true")).await.unwrap();

    let ids = |v: Vec<api::Container>| {
        let mut v: Vec<String> = v.into_iter().map(|c| c.id).collect();
        v.sort();
        v
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let f = api::ContainerFilter::default;
    assert_eq!(
        ids(pod
            .list(api::ContainerFilter {
                id: a[..10].into(),
                ..f()
            })
            .await),
        vec![a.clone()]
    );
    assert_eq!(
        ids(pod
            .list(api::ContainerFilter {
                pod_sandbox_id: pod.id.clone(),
                ..f()
            })
            .await),
        sorted(vec![a.clone(), b.clone()])
    );
    assert_eq!(
        ids(pod
            .list(api::ContainerFilter {
                pod_sandbox_id: other.id[..12].into(),
                ..f()
            })
            .await),
        vec![c.clone()]
    );
    let running = api::ContainerFilter {
        pod_sandbox_id: pod.id.clone(),
        state: Some(api::ContainerStateValue {
            state: api::ContainerState::ContainerRunning as i32,
        }),
        ..f()
    };
    assert_eq!(ids(pod.list(running).await), vec![a.clone()]);
    let created = api::ContainerFilter {
        pod_sandbox_id: pod.id.clone(),
        state: Some(api::ContainerStateValue {
            state: api::ContainerState::ContainerCreated as i32,
        }),
        ..f()
    };
    assert_eq!(ids(pod.list(created).await), vec![b.clone()]);
    let labelled = api::ContainerFilter {
        label_selector: HashMap::from([("tag".to_string(), tag)]),
        ..f()
    };
    assert_eq!(ids(pod.list(labelled).await), vec![a.clone()]);
    // Sandboxes are never listed as containers.
    assert!(pod.list(f()).await.iter().all(|x| x.id != pod.id));
    pod.stop(&a, 0).await.unwrap();
}

#[tokio::test]
async fn privileged_container_or_a_clear_error() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let mut config = pod.ctr("priv", "grep CapEff /proc/self/status");
    security(&mut config).privileged = true;
    let id = pod.create(&config).await.unwrap();
    let host_allows = common::host_runs_privileged(&pod.image.id, Some(&["true"])).await;
    let started = pod.start(&id).await;
    assert_eq!(
        started.is_ok(),
        host_allows,
        "docker-cri must do what Docker itself can: {started:?}"
    );
    match started {
        Ok(()) => {
            pod.wait_exit(&id).await;
            let out = docker_logs(&id).await;
            // Privileged: every capability the kernel has, which is the
            // bounding set of the host's init.
            let init = std::fs::read_to_string("/proc/1/status").unwrap();
            let bounding = init
                .lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .unwrap()
                .trim()
                .to_string();
            assert!(
                out.contains(&format!("CapEff:\t{bounding}")),
                "{out} vs {bounding}"
            );
        }
        Err(e) => {
            // Hosts whose root lacks the capability set (some CI sandboxes).
            assert!(e.message().contains("starting container"), "{e:?}");
            assert_ne!(e.code(), Code::Unknown);
        }
    }
    pod.remove(&id).await.unwrap();
}

#[tokio::test]
async fn bad_container_requests_are_refused_and_leave_nothing() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    type Mutation = Box<dyn Fn(&mut api::ContainerConfig)>;
    let cases: Vec<(&str, Mutation)> = vec![
        ("metadata", Box::new(|c| c.metadata = None)),
        (
            "name",
            Box::new(|c| c.metadata.as_mut().unwrap().name.clear()),
        ),
        ("image", Box::new(|c| c.image = None)),
        (
            "log_path",
            Box::new(|c| c.log_path = "../escape.log".into()),
        ),
        (
            "log_path",
            Box::new(|c| c.log_path = "/etc/evil.log".into()),
        ),
        (
            "memory_limit_in_bytes",
            Box::new(|c| resources(c).memory_limit_in_bytes = -1),
        ),
        (
            "cpu_shares",
            Box::new(|c| resources(c).cpu_shares = i64::MAX),
        ),
        (
            "oom_score_adj",
            Box::new(|c| resources(c).oom_score_adj = -5000),
        ),
        (
            "envs",
            Box::new(|c| {
                c.envs = vec![api::KeyValue {
                    key: "A=B".into(),
                    value: vec![],
                }]
            }),
        ),
        (
            "container_path",
            Box::new(|c| {
                c.mounts = vec![api::Mount {
                    host_path: "/tmp".into(),
                    container_path: "relative".into(),
                    ..Default::default()
                }];
            }),
        ),
        (
            "recursive_read_only",
            Box::new(|c| {
                c.mounts = vec![api::Mount {
                    host_path: "/tmp".into(),
                    container_path: "/x".into(),
                    readonly: false,
                    recursive_read_only: true,
                    ..Default::default()
                }];
            }),
        ),
        (
            "target_id",
            Box::new(|c| {
                security(c).namespace_options = Some(api::NamespaceOption {
                    pid: api::NamespaceMode::Target as i32,
                    ..Default::default()
                });
            }),
        ),
        (
            "seccomp",
            Box::new(|c| {
                security(c).seccomp = Some(api::SecurityProfile {
                    profile_type: 42,
                    localhost_ref: String::new(),
                });
            }),
        ),
        (
            "labels",
            Box::new(|c| {
                c.labels
                    .insert("io.kubernetes.sandbox.id".into(), "x".into());
            }),
        ),
    ];
    for (field, mutate) in cases {
        let mut config = pod.ctr("bad", "true");
        mutate(&mut config);
        let err = pod.create(&config).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert!(
            err.message().contains(field),
            "{field} named in {:?}",
            err.message()
        );
    }
    let left = pod
        .list(api::ContainerFilter {
            pod_sandbox_id: pod.id.clone(),
            ..Default::default()
        })
        .await;
    assert!(left.is_empty(), "nothing was created: {left:?}");

    // Unknown or malformed IDs, and a missing config.
    let err = pod
        .rt
        .create_container(api::CreateContainerRequest {
            pod_sandbox_id: pod.id.clone(),
            config: None,
            sandbox_config: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let cfg = pod.ctr("nosandbox", "true");
    assert_eq!(
        pod.create_in("0123456789abcdef", &cfg)
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(
        pod.status("").await.unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_eq!(
        pod.status("zz-not-hex").await.unwrap_err().code(),
        Code::NotFound
    );
    // A sandbox ID is not a container ID.
    let sandbox = pod.id.clone();
    assert_eq!(
        pod.status(&sandbox).await.unwrap_err().code(),
        Code::NotFound
    );
    pod.stop(&sandbox, 0).await.unwrap();
    assert!(
        docker()
            .await
            .inspect_container(&sandbox, None)
            .await
            .unwrap()
            .state
            .unwrap()
            .running
            == Some(true),
        "StopContainer with a sandbox ID does nothing"
    );
}

#[tokio::test]
async fn plain_docker_containers_are_untouchable() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let docker = docker().await;
    let name = unique("plain");
    let plain = common::start_plain_container(&pod.image.id, &name).await;
    assert!(
        pod.list(api::ContainerFilter::default())
            .await
            .iter()
            .all(|c| c.id != plain)
    );
    for reference in [plain.clone(), plain[..12].to_string(), name.clone()] {
        assert_eq!(
            pod.status(&reference).await.unwrap_err().code(),
            Code::NotFound
        );
        assert_eq!(
            pod.start(&reference).await.unwrap_err().code(),
            Code::NotFound
        );
        let upd = pod
            .rt
            .update_container_resources(api::UpdateContainerResourcesRequest {
                container_id: reference.clone(),
                linux: Some(api::LinuxContainerResources {
                    memory_limit_in_bytes: 64 << 20,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(upd.code(), Code::NotFound);
        pod.stop(&reference, 0).await.unwrap();
        pod.remove(&reference).await.unwrap();
    }
    let still = docker.inspect_container(&plain, None).await.unwrap();
    assert_eq!(still.state.unwrap().running, Some(true));
    assert_eq!(still.host_config.unwrap().memory, Some(0));
    common::force_remove(&plain).await;
}

#[tokio::test]
async fn stop_signal_is_honoured() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let mut config = pod.ctr(
        "usr1",
        "trap 'exit 0' USR1; trap '' TERM; echo ready; while true; do sleep 0.1; done",
    );
    config.stop_signal = api::Signal::Sigusr1 as i32;
    let id = pod.create(&config).await.unwrap();
    assert_eq!(
        pod.status(&id).await.unwrap().stop_signal,
        api::Signal::Sigusr1 as i32
    );
    pod.start(&id).await.unwrap();
    for _ in 0..50 {
        if docker_logs(&id).await.contains("ready") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let started = Instant::now();
    pod.stop(&id, 30).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "SIGUSR1 ended it, not the SIGKILL after 30s"
    );
    let s = pod.status(&id).await.unwrap();
    assert_eq!(s.exit_code, 0, "the trap ran: {s:?}");
    assert_eq!(s.reason, "Completed");
}

#[tokio::test]
async fn concurrent_identical_creates_leave_one_container() {
    let server = Server::start(&[]).await;
    let pod = Pod::new(&server).await;
    let config = pod.ctr("same", "exec sleep 300");
    let channel = server.channel().await;
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let mut rt = docker_cri::client::runtime_client(channel.clone());
            let req = api::CreateContainerRequest {
                pod_sandbox_id: pod.id.clone(),
                config: Some(config.clone()),
                sandbox_config: Some(pod.config.clone()),
            };
            tokio::spawn(async move {
                rt.create_container(req)
                    .await
                    .map(|r| r.into_inner().container_id)
            })
        })
        .collect();
    let mut ok = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(id) => ok.push(id),
            Err(e) => assert_eq!(e.code(), Code::AlreadyExists, "{e:?}"),
        }
    }
    assert_eq!(ok.len(), 1, "exactly one create succeeds: {ok:?}");
    let mut pod = pod;
    pod.start(&ok[0])
        .await
        .expect("the winner's container still exists");
    pod.stop(&ok[0], 0).await.unwrap();
}

#[tokio::test]
async fn status_reports_the_image_name_kubelet_gave() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    // kubelet: the image ID in `image`, the pod spec's name alongside.
    let mut by_id = pod.ctr("byid", "true");
    by_id.image = Some(api::ImageSpec {
        image: pod.image.id.clone(),
        user_specified_image: "my-registry/app:v1".into(),
        ..Default::default()
    });
    let id = pod.create(&by_id).await.unwrap();
    let s = pod.status(&id).await.unwrap();
    assert_eq!(s.image.unwrap().image, "my-registry/app:v1");
    assert_eq!(s.image_ref, pod.image.id);
    // Only an ID: the image's tag, as dockershim reported it.
    let mut id_only = pod.ctr("idonly", "true");
    id_only.image = Some(api::ImageSpec {
        image: pod.image.id.clone(),
        ..Default::default()
    });
    let id = pod.create(&id_only).await.unwrap();
    assert_eq!(
        pod.status(&id).await.unwrap().image.unwrap().image,
        pod.image.name
    );
}

/// Recursive read-only mounts need Docker API 1.44 (and Linux 5.12): on such
/// a Docker a submount is read-only too, and Status advertises the feature;
/// on an older Docker the request is refused clearly.
#[tokio::test]
async fn recursive_read_only_mounts() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let handlers = server
        .runtime()
        .await
        .status(api::StatusRequest::default())
        .await
        .unwrap()
        .into_inner()
        .runtime_handlers;
    let advertised = handlers[0].features.unwrap().recursive_read_only_mounts;
    let host = tempfile::tempdir().unwrap();
    let sub = host.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs"])
        .arg(&sub)
        .status()
        .unwrap();
    assert!(mounted.success());
    let mut config = pod.ctr("rro", "touch /ro/sub/x 2>&1; echo end");
    config.mounts = vec![api::Mount {
        host_path: host.path().display().to_string(),
        container_path: "/ro".into(),
        readonly: true,
        recursive_read_only: true,
        ..Default::default()
    }];
    let created = pod.create(&config).await;
    let outcome = match created {
        Ok(id) => {
            pod.start(&id).await.unwrap();
            pod.wait_exit(&id).await;
            Ok(docker_logs(&id).await)
        }
        Err(e) => Err(e),
    };
    let _ = std::process::Command::new("umount").arg(&sub).status();
    match outcome {
        Ok(out) => {
            assert!(advertised, "RRO worked, so Status must advertise it");
            assert!(
                out.contains("Read-only file system"),
                "the submount is read-only too: {out}"
            );
        }
        Err(e) => {
            assert!(
                !advertised,
                "Status advertised RRO but the mount was refused: {e:?}"
            );
            assert_eq!(e.code(), Code::InvalidArgument);
            assert!(e.message().contains("1.44"), "{e:?}");
        }
    }
}
