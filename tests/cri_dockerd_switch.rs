//! Switching a host from cri-dockerd to docker-cri: docker-cri started on
//! cri-dockerd's root directory keeps every pod cri-dockerd knew, and leaves
//! cri-dockerd's checkpoint files alone until their pod is removed.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::SystemTime;

use bollard::query_parameters::RemoveContainerOptionsBuilder;
use common::{PodCleanup, Server, docker, test_pause_image, unique};
use docker_cri::api;

type Runtime =
    docker_cri::api::runtime_service_client::RuntimeServiceClient<tonic::transport::Channel>;

/// A checkpoint exactly as cri-dockerd's `json.Marshal` writes it. The
/// checksum covers only `data` (go-spew text of `core.CheckpointData`,
/// FNV-1a 32); the values are the Go-checked fixtures of
/// `src/runtime/checkpoint/checksum.rs`.
fn cri_dockerd_checkpoint(name: &str, namespace: &str, host_network: bool) -> String {
    let (data, checksum) = if host_network {
        (r#"{"host_network":true}"#, 12315789u64)
    } else {
        (
            r#"{"port_mappings":[{"protocol":"tcp","container_port":80,"host_port":8080}]}"#,
            3712672205,
        )
    };
    format!(
        r#"{{"version":"v1","name":"{name}","namespace":"{namespace}","data":{data},"checksum":{checksum}}}"#
    )
}

/// The pause container as cri-dockerd creates it: dockershim's name and
/// labels (kubelet's pod labels, the sandbox type, container name `POD`,
/// annotations as `annotation.<key>`).
async fn cri_dockerd_pause_container(name: &str, namespace: &str, uid: &str) -> String {
    let docker = docker().await;
    let labels = HashMap::from([
        (
            "io.kubernetes.docker.type".to_string(),
            "podsandbox".to_string(),
        ),
        ("io.kubernetes.container.name".into(), "POD".into()),
        ("io.kubernetes.pod.name".into(), name.into()),
        ("io.kubernetes.pod.namespace".into(), namespace.into()),
        ("io.kubernetes.pod.uid".into(), uid.into()),
        ("app".into(), name.into()),
        (
            "annotation.kubernetes.io/config.source".into(),
            "api".into(),
        ),
    ]);
    let body = bollard::models::ContainerCreateBody {
        image: Some(test_pause_image().to_string()),
        labels: Some(labels),
        ..Default::default()
    };
    let name = format!("k8s_POD_{name}_{namespace}_{uid}_0");
    common::create_and_start(&docker, &name, body).await
}

/// Name, content and modification time of every file in `dir`.
fn files(dir: &Path) -> Vec<(String, Vec<u8>, SystemTime)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
                e.metadata().unwrap().modified().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

async fn status(rt: &mut Runtime, id: &str) -> api::PodSandboxStatusResponse {
    rt.pod_sandbox_status(api::PodSandboxStatusRequest {
        pod_sandbox_id: id.to_string(),
        verbose: true,
    })
    .await
    .unwrap_or_else(|e| panic!("status of {id}: {e}"))
    .into_inner()
}

async fn list(rt: &mut Runtime) -> Vec<api::PodSandbox> {
    rt.list_pod_sandbox(api::ListPodSandboxRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .items
}

fn meta(name: &str, namespace: &str, uid: &str) -> Option<api::PodSandboxMetadata> {
    Some(api::PodSandboxMetadata {
        name: name.into(),
        namespace: namespace.into(),
        uid: uid.into(),
        attempt: 0,
    })
}

#[tokio::test]
async fn pods_cri_dockerd_checkpointed_survive_the_switch() {
    let ns = "cri-dockerd-switch";
    let (live_name, gone_name) = (unique("live"), unique("gone"));
    let uid = unique("uid");
    let _cleanup = PodCleanup(uid.clone());
    let live = cri_dockerd_pause_container(&live_name, ns, &uid).await;
    // A sandbox whose pause container Docker no longer has.
    let gone = format!("{:0>64}", unique("f").replace(['-', 'f'], ""));

    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("sandbox");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(&live),
        cri_dockerd_checkpoint(&live_name, ns, false),
    )
    .unwrap();
    std::fs::write(
        dir.join(&gone),
        cri_dockerd_checkpoint(&gone_name, ns, true),
    )
    .unwrap();
    let before = files(&dir);

    // As `--cri-dockerd-root-directory` (an alias) would point it there.
    let server = Server::start_with_root(root.path(), &[]).await;
    let mut rt = server.runtime().await;

    let pods = list(&mut rt).await;
    let listed = |id: &str| {
        pods.iter()
            .find(|p| p.id == id)
            .unwrap_or_else(|| panic!("{id} not listed; log: {}", server.log_text()))
            .clone()
    };
    let live_pod = listed(&live);
    assert_eq!(live_pod.state, api::PodSandboxState::SandboxReady as i32);
    assert_eq!(live_pod.metadata, meta(&live_name, ns, &uid));
    let gone_pod = listed(&gone);
    assert_eq!(gone_pod.state, api::PodSandboxState::SandboxNotready as i32);
    // cri-dockerd's checkpoints have no uid, as in cri-dockerd's own listing.
    assert_eq!(gone_pod.metadata, meta(&gone_name, ns, ""));

    let live_status = status(&mut rt, &live).await;
    let s = live_status.status.unwrap();
    assert_eq!(s.state, api::PodSandboxState::SandboxReady as i32);
    assert_eq!(s.metadata, meta(&live_name, ns, &uid));
    let info: serde_json::Value = serde_json::from_str(&live_status.info["info"]).unwrap();
    assert_eq!(
        info["portMappings"],
        serde_json::json!([{"protocol": "tcp", "container_port": 80, "host_port": 8080, "host_ip": ""}]),
        "the checkpoint's port mappings are used"
    );
    let gone_status = status(&mut rt, &gone).await;
    let s = gone_status.status.unwrap();
    assert_eq!(s.state, api::PodSandboxState::SandboxNotready as i32);
    assert_eq!(s.metadata, meta(&gone_name, ns, ""));
    let network = s
        .linux
        .unwrap()
        .namespaces
        .unwrap()
        .options
        .unwrap()
        .network;
    assert_eq!(
        network,
        api::NamespaceMode::Node as i32,
        "the checkpoint's host_network is used"
    );

    for id in [&live, &gone] {
        rt.stop_pod_sandbox(api::StopPodSandboxRequest {
            pod_sandbox_id: id.to_string(),
        })
        .await
        .unwrap_or_else(|e| panic!("stopping {id}: {e}"));
    }
    let after_stop = status(&mut rt, &live).await.status.unwrap();
    assert_eq!(
        after_stop.state,
        api::PodSandboxState::SandboxNotready as i32
    );
    assert_eq!(
        files(&dir),
        before,
        "cri-dockerd's checkpoints are byte-for-byte untouched until removal"
    );

    for id in [&live, &gone] {
        rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
            pod_sandbox_id: id.to_string(),
        })
        .await
        .unwrap_or_else(|e| panic!("removing {id}: {e}"));
        assert!(
            !dir.join(id).exists(),
            "RemovePodSandbox deletes {id}'s checkpoint"
        );
    }
    assert!(docker().await.inspect_container(&live, None).await.is_err());
    let pods = list(&mut rt).await;
    assert!(pods.iter().all(|p| p.id != live && p.id != gone));
}

#[tokio::test]
async fn corrupt_files_are_set_aside_and_our_files_are_cri_dockerds_format() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("sandbox");
    std::fs::create_dir_all(&dir).unwrap();
    let corrupt = cri_dockerd_checkpoint("x", "y", false).replace("3712672205", "1");
    std::fs::write(dir.join("bad"), &corrupt).unwrap();

    let server = Server::start_with_root(root.path(), &[]).await;
    let mut rt = server.runtime().await;
    assert!(!dir.join("bad").exists());
    assert_eq!(
        std::fs::read_to_string(dir.join("bad.corrupt")).unwrap(),
        corrupt
    );

    let uid = unique("uid");
    let _cleanup = PodCleanup(uid.clone());
    let id = rt
        .run_pod_sandbox(api::RunPodSandboxRequest {
            config: Some(api::PodSandboxConfig {
                metadata: Some(api::PodSandboxMetadata {
                    name: "ours".into(),
                    namespace: "cri-dockerd-switch".into(),
                    uid: uid.clone(),
                    attempt: 0,
                }),
                ..Default::default()
            }),
            runtime_handler: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .pod_sandbox_id;
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(&id)).unwrap()).unwrap();
    assert_eq!(written["version"], "v1");
    assert_eq!(written["name"], "ours");
    assert_eq!(written["namespace"], "cri-dockerd-switch");
    // No port mappings, pod network: cri-dockerd's data is `{}` and its
    // checksum that of `{PortMappings: nil, HostNetwork: false}`.
    assert_eq!(written["data"], serde_json::json!({}));
    assert_eq!(written["checksum"], 2305795928u64);
    assert_eq!(written["docker_cri"]["uid"], uid.as_str());
    rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
        pod_sandbox_id: id.clone(),
    })
    .await
    .unwrap();
    let _ = docker()
        .await
        .remove_container(
            &id,
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await;
}
