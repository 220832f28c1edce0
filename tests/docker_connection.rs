//! docker-cri's connection to Docker, through the real binary: a daemon that
//! is starting (accepts, answers late) or absent holds no call up, and
//! `docker info`/`docker version` are asked once per connection, not per
//! Status or Version.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Server;
use common::proxy::DockerProxy;
use docker_cri::api;
use tokio::net::UnixListener;
use tonic::Code;

/// Far below the 2-minute per-call timeout the server runs with, and
/// generous for a loaded machine: callers wait at most a second for a
/// daemon that has not answered.
const PROMPT: Duration = Duration::from_secs(3);

fn request<T>(message: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.set_timeout(Duration::from_secs(20));
    r
}

fn runtime_ready(status: &api::StatusResponse) -> api::RuntimeCondition {
    status
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.r#type == "RuntimeReady")
        .unwrap()
        .clone()
}

/// Status says NotReady promptly, and concurrent calls each fail promptly
/// with Unavailable instead of queueing behind one another.
async fn assert_prompt_and_not_ready(docker_socket: &Path, want_in_message: &str) {
    let server = Server::start_with_docker(docker_socket.to_str().unwrap(), &[]).await;
    let mut runtime = server.runtime().await;

    let started = Instant::now();
    let status = runtime
        .status(request(api::StatusRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let elapsed = started.elapsed();
    let ready = runtime_ready(&status);
    assert!(!ready.status, "{ready:?}");
    assert_eq!(ready.reason, "DockerDaemonNotReady");
    assert!(ready.message.contains(want_in_message), "{ready:?}");
    assert!(elapsed < PROMPT, "Status took {elapsed:?}");

    let started = Instant::now();
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let mut runtime = runtime.clone();
            tokio::spawn(async move {
                let err = runtime
                    .list_containers(request(api::ListContainersRequest::default()))
                    .await
                    .unwrap_err();
                (err, Instant::now())
            })
        })
        .collect();
    for call in calls {
        let (err, at) = call.await.unwrap();
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
        assert!(
            at - started < PROMPT,
            "a ListContainers took {:?}",
            at - started
        );
    }
}

#[tokio::test]
async fn a_docker_that_accepts_but_never_answers_holds_nothing_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docker.sock");
    let listener = UnixListener::bind(&path).unwrap();
    // Like dockerd behind docker.socket while it starts: connections are
    // accepted and left unanswered.
    let _silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    assert_prompt_and_not_ready(&path, "connecting").await;
}

#[tokio::test]
async fn an_absent_docker_socket_holds_nothing_up() {
    let dir = tempfile::tempdir().unwrap();
    assert_prompt_and_not_ready(&dir.path().join("absent.sock"), "absent.sock").await;
}

#[tokio::test]
async fn status_and_version_use_the_cached_docker_info() {
    let engine = common::docker().await;
    let (engine_info, engine_version) = (
        engine.info().await.unwrap(),
        engine.version().await.unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docker.sock");
    let proxy = DockerProxy::start(&path, None);
    let server = Server::start_with_docker(path.to_str().unwrap(), &[]).await;
    let mut runtime = server.runtime().await;
    for _ in 0..10 {
        let status = runtime
            .status(api::StatusRequest { verbose: true })
            .await
            .unwrap()
            .into_inner();
        assert!(runtime_ready(&status).status);
        let details: serde_json::Value = serde_json::from_str(&status.info["info"]).unwrap();
        assert_eq!(
            details["dockerVersion"],
            engine_info.server_version.clone().unwrap()
        );
        let version = runtime
            .version(api::VersionRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(Some(version.runtime_version), engine_version.version);
        runtime
            .runtime_config(api::RuntimeConfigRequest {})
            .await
            .unwrap();
    }
    // One connection: the version probe, then version and info once.
    assert_eq!(proxy.count("/info"), 1, "docker info per call");
    assert_eq!(proxy.count("/version"), 2, "docker version per call");
    // Docker being up is still checked on every Status.
    assert_eq!(proxy.count("/_ping"), 10);
}
