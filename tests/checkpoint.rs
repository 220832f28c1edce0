//! CheckpointContainer, CheckpointPod and RestorePod through the real
//! binary. The test host's Docker (20.10) runs without experimental
//! features, so it cannot checkpoint whether or not CRIU is installed: the
//! refusal must name exactly what is missing.

mod common;

use common::pod::Pod;
use common::{Server, docker};
use docker_cri::api;
use tonic::Code;

fn criu_on_host() -> bool {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"])
        .any(|d| std::path::Path::new(d).join("criu").is_file())
}

/// The directories docker-cri searches for criu, given the PATH it runs
/// with (the test's own, inherited).
fn searched_dirs() -> String {
    let mut dirs: Vec<String> = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|d| !d.is_empty())
        .map(String::from)
        .collect();
    for d in ["/usr/local/sbin", "/usr/sbin", "/sbin"] {
        if !dirs.iter().any(|x| x == d) {
            dirs.push(d.to_string());
        }
    }
    dirs.join(":")
}

#[tokio::test]
async fn checkpoint_container_names_what_this_host_lacks() {
    let info = docker().await.info().await.unwrap();
    let version = docker().await.version().await.unwrap();
    let experimental = info.experimental_build.unwrap_or(false);
    let criu = criu_on_host();
    if experimental && criu {
        eprintln!("skipped: this host can checkpoint");
        return;
    }
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let ctr = pod.ctr("app", "sleep 600");
    let id = pod.create(&ctr).await.unwrap();
    pod.start(&id).await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let location = out.path().join("checkpoint.tar");

    let err = pod
        .rt
        .checkpoint_container(api::CheckpointContainerRequest {
            container_id: id.clone(),
            location: location.display().to_string(),
            timeout: 30,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let mut lacks = Vec::new();
    if !experimental {
        lacks.push(format!(
            "Docker {} runs without experimental features (start dockerd with \
             --experimental, or \"experimental\": true in daemon.json)",
            version.version.unwrap()
        ));
    }
    if !criu {
        lacks.push(format!(
            "no criu binary was found (searched {}; install CRIU)",
            searched_dirs()
        ));
    }
    let want = format!(
        "CheckpointContainer needs Docker's checkpoint API, which requires experimental \
         features and CRIU: {}",
        lacks.join("; and ")
    );
    assert_eq!(err.message(), want);
    assert!(!location.exists(), "no archive left behind");

    // Bad requests are told apart from the host's lack.
    let cases = [
        (
            String::new(),
            "/tmp/x.tar".to_string(),
            Code::InvalidArgument,
        ),
        (id.clone(), String::new(), Code::InvalidArgument),
        (
            id.clone(),
            "relative.tar".to_string(),
            Code::InvalidArgument,
        ),
        ("0".repeat(64), "/tmp/x.tar".to_string(), Code::NotFound),
    ];
    for (container_id, location, code) in cases {
        let err = pod
            .rt
            .checkpoint_container(api::CheckpointContainerRequest {
                container_id: container_id.clone(),
                location: location.clone(),
                timeout: 0,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{container_id:?} {location:?}: {err:?}");
    }
}

#[tokio::test]
async fn pod_checkpoint_and_restore_are_refused_with_the_reason() {
    let server = Server::start(&[]).await;
    let mut rt = server.runtime().await;
    let err = rt
        .checkpoint_pod(api::CheckpointPodRequest {
            pod_sandbox_id: "0".repeat(64),
            output_path: "/tmp/pod.tar".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    assert!(
        err.message().starts_with(
            "CheckpointPod is not offered by docker-cri: Docker has no pod-level checkpoint"
        ),
        "{err:?}"
    );
    let err = rt
        .restore_pod(api::RestorePodRequest {
            checkpoint_path: "/tmp/pod.tar".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    assert!(
        err.message().starts_with(
            "RestorePod is not offered by docker-cri: Docker restores a checkpoint only into \
             the container it was taken from"
        ),
        "{err:?}"
    );
}
