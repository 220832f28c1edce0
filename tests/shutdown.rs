//! SIGTERM while a RunPodSandbox is half-way: docker-cri finishes (or
//! cleans up) the started work within the grace period before it exits, even
//! when the caller already gave up.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::proxy::{DockerProxy, Hold};
use common::{PodCleanup, Server, containers_with_label, unique};
use docker_cri::api;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_started_run_pod_sandbox_finish() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docker.sock");
    // The pause container's start is held for a while: RunPodSandbox is then
    // past create and its checkpoint, before start — a half-built pod if
    // docker-cri stopped here.
    let seen = Arc::new(tokio::sync::Notify::new());
    let _proxy = DockerProxy::start(
        &path,
        Some(Hold {
            needle: "/start HTTP/1.1".into(),
            delay: Duration::from_secs(3),
            seen: seen.clone(),
        }),
    );
    let mut server =
        Server::start_with_docker(path.to_str().unwrap(), &["--shutdown-grace-period", "60s"])
            .await;
    let uid = unique("uid");
    let _cleanup = PodCleanup(uid.clone());
    let mut request = tonic::Request::new(api::RunPodSandboxRequest {
        config: Some(api::PodSandboxConfig {
            metadata: Some(api::PodSandboxMetadata {
                name: "shutdown".into(),
                namespace: "docker-cri-test".into(),
                uid: uid.clone(),
                attempt: 0,
            }),
            ..Default::default()
        }),
        runtime_handler: String::new(),
    });
    // The caller gives up long before the start is let through, so no
    // in-flight RPC keeps the server alive: only the detached work remains.
    request.set_timeout(Duration::from_secs(1));
    let err = server
        .runtime()
        .await
        .run_pod_sandbox(request)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    tokio::time::timeout(Duration::from_secs(60), seen.notified())
        .await
        .expect("RunPodSandbox never reached the pause container's start");

    let exit = tokio::task::block_in_place(|| server.terminate());
    assert!(exit.success(), "{exit}: {}", server.log_text());

    let docker = common::docker().await;
    let ids = containers_with_label(&docker, &format!("io.kubernetes.pod.uid={uid}")).await;
    // Whole means running with its checkpoint, or gone without a trace;
    // with a 60 s grace and a 3 s hold, it must have been finished.
    let [id] = ids.as_slice() else {
        panic!("want the one sandbox, have {ids:?}: {}", server.log_text());
    };
    let state = docker
        .inspect_container(id, None)
        .await
        .unwrap()
        .state
        .unwrap();
    assert_eq!(
        state.running,
        Some(true),
        "half-built sandbox left behind: {state:?}\n{}",
        server.log_text()
    );
    let checkpoint = server.dir.path().join("root").join("sandbox").join(id);
    assert!(
        checkpoint.exists(),
        "running sandbox without its checkpoint"
    );
}
