//! UpdatePodSandboxResources through the real binary: the pod cgroup (the
//! sandbox's cgroup parent) takes the pod's totals, a repeat changes
//! nothing, and what cannot be applied is refused with the reason.

mod common;

use common::Server;
use common::pod::{ParentedPod, Pod};
use docker_cri::api;
use tonic::Code;

/// The test reads v1 files at the cgroupfs driver's paths; the daemon under
/// test (DOCKER_CRI_TEST_DOCKER_SOCKET or the host's) says which driver.
async fn cgroup_v1_cgroupfs() -> bool {
    let v1 = !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let driver = common::docker()
        .await
        .info()
        .await
        .unwrap()
        .cgroup_driver
        .map(|d| d.to_string());
    v1 && driver.as_deref() == Some("cgroupfs")
}

async fn update(
    pod: &mut Pod,
    overhead: Option<api::LinuxContainerResources>,
    resources: Option<api::LinuxContainerResources>,
) -> Result<(), tonic::Status> {
    let id = pod.id.clone();
    pod.rt
        .update_pod_sandbox_resources(api::UpdatePodSandboxResourcesRequest {
            pod_sandbox_id: id,
            overhead,
            resources,
        })
        .await
        .map(|_| ())
}

#[tokio::test]
async fn pod_cgroup_takes_the_totals_once_and_refusals_say_why() {
    if !cgroup_v1_cgroupfs().await {
        // v2 is covered by the fixture tests in src/cgroups; this test
        // reads v1 files under the cgroupfs driver's paths.
        eprintln!("skipped: needs cgroup v1 with Docker's cgroupfs driver");
        return;
    }
    let server = Server::start(&["--log-level", "debug"]).await;
    let mut p = ParentedPod::new(&server).await;
    let ctr = p.pod().ctr("app", "sleep 600");
    let id = p.pod().create(&ctr).await.unwrap();
    p.pod().start(&id).await.unwrap();

    let resources = api::LinuxContainerResources {
        cpu_shares: 512,
        cpu_quota: 50_000,
        cpu_period: 100_000,
        memory_limit_in_bytes: 256 << 20,
        ..Default::default()
    };
    let overhead = api::LinuxContainerResources {
        cpu_shares: 100,
        memory_limit_in_bytes: 16 << 20,
        ..Default::default()
    };
    update(p.pod(), Some(overhead.clone()), Some(resources.clone()))
        .await
        .unwrap();
    assert_eq!(p.read("cpu", "cpu.shares"), "612");
    assert_eq!(p.read("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(p.read("cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(
        p.read("memory", "memory.limit_in_bytes"),
        (272u64 << 20).to_string()
    );

    // The same again: success, and no file written.
    update(p.pod(), Some(overhead), Some(resources))
        .await
        .unwrap();
    let log = server.log_text();
    assert_eq!(log.matches("pod cgroup updated").count(), 1, "{log}");
    assert!(log.contains("pod cgroup already holds the limits"));

    // Lifting the CPU limit; nothing asked is a no-op.
    let unlimited = api::LinuxContainerResources {
        cpu_quota: -1,
        ..Default::default()
    };
    update(p.pod(), None, Some(unlimited)).await.unwrap();
    assert_eq!(p.read("cpu", "cpu.cfs_quota_us"), "-1");
    update(p.pod(), None, None).await.unwrap();
    assert_eq!(p.read("cpu", "cpu.shares"), "612");

    // What has no pod-level file is refused, naming the field.
    let oom = api::LinuxContainerResources {
        oom_score_adj: 100,
        ..Default::default()
    };
    let e = update(p.pod(), None, Some(oom)).await.unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
    assert!(e.message().contains("resources.oom_score_adj"), "{e:?}");
    let bad = api::LinuxContainerResources {
        cpu_period: 10,
        ..Default::default()
    };
    let e = update(p.pod(), None, Some(bad)).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("resources.cpu_period"), "{e:?}");

    // A sandbox that does not exist.
    let mut rt = server.runtime().await;
    let e = rt
        .update_pod_sandbox_resources(api::UpdatePodSandboxResourcesRequest {
            pod_sandbox_id: "f".repeat(64),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn a_pod_without_a_cgroup_parent_has_no_pod_cgroup_to_update() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    update(&mut pod, None, None).await.unwrap();
    let e = update(
        &mut pod,
        None,
        Some(api::LinuxContainerResources {
            memory_limit_in_bytes: 64 << 20,
            ..Default::default()
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message().contains("run without linux.cgroup_parent"),
        "{e:?}"
    );
}
