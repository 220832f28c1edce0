//! What kubelet does that crictl walk-throughs do not: failed starts,
//! RuntimeClass, partial resource updates, cgroup-only limits, pod
//! teardown, image health checks and SELinux relabel requests, against the
//! real dockerd through the real binary.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::pod::{Pod, resources};
use common::{Server, TestImage, docker};
use docker_cri::api;
use tonic::Code;

async fn inspect(id: &str) -> bollard::models::ContainerInspectResponse {
    docker().await.inspect_container(id, None).await.unwrap()
}

#[tokio::test]
async fn a_failed_start_is_exited_and_never_restarted() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let mut config = pod.ctr("nostart", "");
    config.command = vec!["/no/such/executable".into()];
    let id = pod.create(&config).await.unwrap();
    let err = pod.start(&id).await.unwrap_err();
    // Docker answers a missing executable with HTTP 400, naming it.
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("/no/such/executable"), "{err:?}");

    let s = pod.status(&id).await.unwrap();
    assert_eq!(
        s.state,
        api::ContainerState::ContainerExited as i32,
        "{s:?}"
    );
    assert_eq!(s.reason, "ContainerCannotRun");
    assert_ne!(s.exit_code, 0);
    assert!(s.message.contains("/no/such/executable"), "{}", s.message);
    assert!(s.finished_at > 0 && s.finished_at >= s.created_at, "{s:?}");

    // kubelet's relist sees the same state.
    let listed = pod
        .list(api::ContainerFilter {
            id: id.clone(),
            ..Default::default()
        })
        .await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, api::ContainerState::ContainerExited as i32);
    let exited_only = pod
        .list(api::ContainerFilter {
            id: id.clone(),
            state: Some(api::ContainerStateValue {
                state: api::ContainerState::ContainerExited as i32,
            }),
            ..Default::default()
        })
        .await;
    assert_eq!(exited_only.len(), 1);

    // It is not started again behind the pod's restart policy.
    let again = pod.start(&id).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
    pod.remove(&id).await.unwrap();
}

#[tokio::test]
async fn app_containers_run_under_the_pods_runtime_handler() {
    // A Docker runtime other than the default, present on Docker 20.10 and 26.
    const HANDLER: &str = "io.containerd.runc.v2";
    let server = Server::start(&[]).await;
    let mut pod = Pod::with_handler(&server, TestImage::busybox(None).await, HANDLER).await;
    assert_eq!(
        inspect(&pod.id)
            .await
            .host_config
            .unwrap()
            .runtime
            .as_deref(),
        Some(HANDLER)
    );
    let id = pod.create(&pod.ctr("rc", "exec sleep 300")).await.unwrap();
    pod.start(&id).await.unwrap();
    assert_eq!(
        inspect(&id).await.host_config.unwrap().runtime.as_deref(),
        Some(HANDLER),
        "the app container runs under the pod's runtime"
    );
    let s = pod.status(&id).await.unwrap();
    assert_eq!(s.image.unwrap().runtime_handler, HANDLER);
    let sandbox = pod
        .rt
        .pod_sandbox_status(api::PodSandboxStatusRequest {
            pod_sandbox_id: pod.id.clone(),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    assert_eq!(sandbox.runtime_handler, HANDLER);
    pod.stop(&id, 0).await.unwrap();
}

fn linux_now(s: &api::ContainerStatus) -> api::LinuxContainerResources {
    s.resources.clone().unwrap().linux.unwrap()
}

#[tokio::test]
async fn kubelet_shaped_partial_updates() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let min_oom = common::host_min_oom_score_adj();
    for oom in [1000i64, -997, 500] {
        let mut config = pod.ctr(&format!("upd{}", oom.unsigned_abs()), "exec sleep 300");
        let r = resources(&mut config);
        r.memory_limit_in_bytes = 64 << 20;
        r.memory_swap_limit_in_bytes = 64 << 20;
        r.cpu_period = 100_000;
        r.cpu_quota = 50_000;
        r.cpu_shares = 512;
        r.oom_score_adj = oom;
        let id = pod.create(&config).await.unwrap();
        pod.start(&id).await.unwrap();
        let expected_oom = oom.max(min_oom);
        let update = |linux: api::LinuxContainerResources| api::UpdateContainerResourcesRequest {
            container_id: id.clone(),
            linux: Some(linux),
            ..Default::default()
        };

        // The CPU manager's reconcile: cpuset only, everything else zero.
        pod.rt
            .update_container_resources(update(api::LinuxContainerResources {
                cpuset_cpus: "0".into(),
                ..Default::default()
            }))
            .await
            .unwrap();
        let now = linux_now(&pod.status(&id).await.unwrap());
        assert_eq!(now.cpuset_cpus, "0");
        assert_eq!(now.memory_limit_in_bytes, 64 << 20, "memory kept");
        assert_eq!(now.cpu_quota, 50_000, "quota kept");
        assert_eq!(now.cpu_shares, 512, "shares kept");
        assert_eq!(now.oom_score_adj, expected_oom);

        // In-place resize: new CPU and memory, and an OOM score that
        // differs from the one the container was created with.
        pod.rt
            .update_container_resources(update(api::LinuxContainerResources {
                memory_limit_in_bytes: 96 << 20,
                memory_swap_limit_in_bytes: 96 << 20,
                cpu_period: 100_000,
                cpu_quota: 80_000,
                cpu_shares: 1024,
                oom_score_adj: if oom == 1000 { 999 } else { oom + 1 },
                ..Default::default()
            }))
            .await
            .unwrap();
        let now = linux_now(&pod.status(&id).await.unwrap());
        assert_eq!(now.memory_limit_in_bytes, 96 << 20);
        assert_eq!(now.memory_swap_limit_in_bytes, 96 << 20);
        assert_eq!(now.cpu_quota, 80_000);
        assert_eq!(now.cpu_shares, 1024);
        assert_eq!(now.cpuset_cpus, "0", "cpuset kept");
        assert_eq!(now.oom_score_adj, expected_oom, "left as it was");
        pod.stop(&id, 0).await.unwrap();
    }
}

#[tokio::test]
async fn swap_stays_equal_to_memory_without_swap_fields() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    // Created without any limit, then limited.
    let id = pod
        .create(&pod.ctr("noswap", "exec sleep 300"))
        .await
        .unwrap();
    pod.start(&id).await.unwrap();
    pod.rt
        .update_container_resources(api::UpdateContainerResourcesRequest {
            container_id: id.clone(),
            linux: Some(api::LinuxContainerResources {
                memory_limit_in_bytes: 100 << 20,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let hc = inspect(&id).await.host_config.unwrap();
    assert_eq!(hc.memory, Some(100 << 20));
    assert_eq!(hc.memory_swap, Some(100 << 20), "no swap, not twice memory");

    // Created with a memory limit and no swap field: no swap either.
    let mut config = pod.ctr("noswap2", "exec sleep 300");
    resources(&mut config).memory_limit_in_bytes = 64 << 20;
    let id2 = pod.create(&config).await.unwrap();
    let hc = inspect(&id2).await.host_config.unwrap();
    assert_eq!(hc.memory_swap, Some(64 << 20));
    pod.stop(&id, 0).await.unwrap();
}

#[tokio::test]
async fn limits_only_cgroup_files_carry() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let hugetlb = if v2 {
        std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .unwrap()
            .contains("hugetlb")
    } else {
        std::path::Path::new("/sys/fs/cgroup/hugetlb").is_dir()
    };
    let has_2mb = std::path::Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").is_dir();

    // kubelet sends a zero limit for every hugepage size the pod does not
    // use: always accepted.
    let mut zero = pod.ctr("hpzero", "exec sleep 300");
    resources(&mut zero).hugepage_limits = vec![api::HugepageLimit {
        page_size: "2MB".into(),
        limit: 0,
    }];
    let id = pod.create(&zero).await.unwrap();
    pod.start(&id).await.unwrap();
    pod.stop(&id, 0).await.unwrap();

    let mut two = pod.ctr("hptwo", "exec sleep 300");
    resources(&mut two).hugepage_limits = vec![api::HugepageLimit {
        page_size: "2MB".into(),
        limit: 4 << 20,
    }];
    let created = pod.create(&two).await;
    if hugetlb && has_2mb {
        let id = created.unwrap();
        pod.start(&id).await.unwrap();
        let pid = inspect(&id).await.state.unwrap().pid.unwrap();
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let (dir, file) = if v2 {
            let rel = cgroup.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
            (format!("/sys/fs/cgroup{rel}"), "hugetlb.2MB.max")
        } else {
            let rel = cgroup
                .lines()
                .find_map(|l| l.split_once(":hugetlb:").map(|(_, p)| p))
                .unwrap();
            (
                format!("/sys/fs/cgroup/hugetlb{rel}"),
                "hugetlb.2MB.limit_in_bytes",
            )
        };
        let value = std::fs::read_to_string(format!("{dir}/{file}")).unwrap();
        assert_eq!(value.trim(), (4u64 << 20).to_string());
        pod.stop(&id, 0).await.unwrap();
    } else {
        let err = created.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
        assert!(err.message().contains("hugepage"), "{err:?}");
    }

    // MemoryQoS's memory.high: written on cgroup v2, refused on v1.
    let mut qos = pod.ctr("qos", "exec sleep 300");
    let r = resources(&mut qos);
    r.memory_limit_in_bytes = 64 << 20;
    r.unified = HashMap::from([("memory.high".to_string(), (48u64 << 20).to_string())]);
    let created = pod.create(&qos).await;
    if v2 {
        let id = created.unwrap();
        pod.start(&id).await.unwrap();
        let pid = inspect(&id).await.state.unwrap().pid.unwrap();
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let rel = cgroup.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
        let high = std::fs::read_to_string(format!("/sys/fs/cgroup{rel}/memory.high")).unwrap();
        assert_eq!(high.trim(), (48u64 << 20).to_string());
        pod.stop(&id, 0).await.unwrap();
    } else {
        let err = created.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
        assert!(err.message().contains("cgroup v1"), "{err:?}");
    }
    // Refusals create nothing: only the containers made above exist.
    let listed = pod
        .list(api::ContainerFilter {
            pod_sandbox_id: pod.id.clone(),
            ..Default::default()
        })
        .await;
    let expected = 1 + usize::from(hugetlb && has_2mb) + usize::from(v2);
    assert_eq!(listed.len(), expected, "{listed:?}");
}

#[tokio::test]
async fn stop_pod_sandbox_kills_what_still_runs() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let mut ids = Vec::new();
    for name in ["stubborn1", "stubborn2"] {
        let script = "trap '' TERM; while true; do sleep 1; done";
        let id = pod.create(&pod.ctr(name, script)).await.unwrap();
        pod.start(&id).await.unwrap();
        ids.push(id);
    }
    let started = Instant::now();
    pod.rt
        .stop_pod_sandbox(api::StopPodSandboxRequest {
            pod_sandbox_id: pod.id.clone(),
        })
        .await
        .unwrap();
    let took = started.elapsed();
    // A graceful stop would wait out Docker's grace period (10 s) first.
    assert!(took < Duration::from_secs(8), "took {took:?}");
    for id in &ids {
        let s = pod.status(id).await.unwrap();
        assert_eq!(s.state, api::ContainerState::ContainerExited as i32);
        assert_eq!(s.exit_code, 137, "killed, not terminated: {s:?}");
    }
}

#[tokio::test]
async fn image_health_checks_do_not_run_in_pods() {
    let server = Server::start(&[]).await;
    let image =
        TestImage::busybox_with("HEALTHCHECK --interval=1s --timeout=1s CMD [\"/bin/false\"]\n")
            .await;
    let mut pod = Pod::with_image(&server, image).await;
    let id = pod.create(&pod.ctr("hc", "exec sleep 300")).await.unwrap();
    pod.start(&id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let c = inspect(&id).await;
    assert_eq!(
        c.config.unwrap().healthcheck.and_then(|h| h.test),
        Some(vec!["NONE".to_string()])
    );
    assert!(
        c.state.unwrap().health.is_none(),
        "Docker ran the image's health check"
    );
    pod.stop(&id, 0).await.unwrap();
}

#[tokio::test]
async fn selinux_relabel_requests_on_a_host_without_selinux() {
    let selinux = std::path::Path::new("/sys/fs/selinux/enforce").exists();
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain");
    // A ':' in the path sends the mount through Docker's Mounts API.
    let awkward = dir.path().join("with:colon");
    for d in [&plain, &awkward] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("f"), "x").unwrap();
    }
    let mut config = pod.ctr("relabel", "cat /m1/f /m2/f; echo ok");
    config.mounts = [(&plain, "/m1"), (&awkward, "/m2")]
        .iter()
        .map(|(host, ctr)| api::Mount {
            host_path: host.display().to_string(),
            container_path: ctr.to_string(),
            selinux_relabel: true,
            ..Default::default()
        })
        .collect();
    let (status, out) = pod.run(&config).await;
    assert_eq!(status.exit_code, 0, "{out}");
    assert!(out.contains("xxok"), "{out}");
    let c = inspect(&status.id).await;
    let binds = c.host_config.unwrap().binds.unwrap_or_default();
    assert_eq!(binds.len(), 1, "{binds:?}");
    assert_eq!(binds[0].ends_with(",Z"), selinux, "{binds:?}");
}

#[tokio::test]
async fn sysctl_names_in_slash_form_reach_docker_dotted() {
    let server = Server::start(&[]).await;
    let mut rt = server.runtime().await;
    let uid = common::unique("uid");
    let _cleanup = common::PodCleanup(uid.clone());
    let config = api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: "sysctl".into(),
            namespace: "docker-cri-test".into(),
            uid,
            attempt: 0,
        }),
        linux: Some(api::LinuxPodSandboxConfig {
            sysctls: HashMap::from([(
                "net/ipv4/conf/lo/accept_local".to_string(),
                "1".to_string(),
            )]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let id = rt
        .run_pod_sandbox(api::RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .pod_sandbox_id;
    let sysctls = inspect(&id).await.host_config.unwrap().sysctls.unwrap();
    assert_eq!(
        sysctls
            .get("net.ipv4.conf.lo.accept_local")
            .map(String::as_str),
        Some("1"),
        "{sysctls:?}"
    );
}
