//! Version, Status, RuntimeConfig, UpdateRuntimeConfig, unimplemented RPCs,
//! and behaviour when Docker goes away, through the real binary.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Server, docker};
use docker_cri::api;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tonic::Code;

#[tokio::test]
async fn version_reports_docker() {
    let engine = docker().await.version().await.unwrap();
    let server = Server::start(&[]).await;
    let v = server
        .runtime()
        .await
        .version(api::VersionRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.runtime_name, "docker");
    assert_eq!(v.runtime_api_version, "v1");
    assert_eq!(Some(v.runtime_version), engine.version);
}

#[tokio::test]
async fn status_ready_with_handlers_and_verbose_info() {
    let info = docker().await.info().await.unwrap();
    let server = Server::start(&[]).await;
    let resp = server
        .runtime()
        .await
        .status(api::StatusRequest { verbose: true })
        .await
        .unwrap()
        .into_inner();
    let conditions = resp.status.unwrap().conditions;
    for kind in ["RuntimeReady", "NetworkReady"] {
        let c = conditions.iter().find(|c| c.r#type == kind).unwrap();
        assert!(c.status, "{kind} is true");
    }
    let names: Vec<&str> = resp
        .runtime_handlers
        .iter()
        .map(|h| h.name.as_str())
        .collect();
    assert_eq!(
        names[0], "",
        "the default runtime is the empty-name handler"
    );
    for runtime in info.runtimes.unwrap().keys() {
        assert!(names.contains(&runtime.as_str()), "{runtime} listed");
    }
    let details: serde_json::Value = serde_json::from_str(&resp.info["info"]).unwrap();
    assert_eq!(details["dockerVersion"], info.server_version.unwrap());
    assert_eq!(details["sandboxImage"], common::test_pause_image());
    let config: serde_json::Value = serde_json::from_str(&resp.info["config"]).unwrap();
    assert!(config["dockerEndpoint"].is_string());
}

#[tokio::test]
async fn runtime_config_reports_the_cgroup_driver() {
    let info = docker().await.info().await.unwrap();
    let server = Server::start(&[]).await;
    let resp = server
        .runtime()
        .await
        .runtime_config(api::RuntimeConfigRequest {})
        .await
        .unwrap()
        .into_inner();
    let want = match info.cgroup_driver.map(|d| d.to_string()).as_deref() {
        Some("systemd") => api::CgroupDriver::Systemd,
        _ => api::CgroupDriver::Cgroupfs,
    };
    assert_eq!(resp.linux.unwrap().cgroup_driver, want as i32);
}

#[tokio::test]
async fn update_runtime_config_stores_the_pod_cidr() {
    let server = Server::start(&[]).await;
    let mut runtime = server.runtime().await;
    runtime
        .update_runtime_config(api::UpdateRuntimeConfigRequest {
            runtime_config: Some(api::RuntimeConfig {
                network_config: Some(api::NetworkConfig {
                    pod_cidr: "10.244.3.0/24".into(),
                }),
            }),
        })
        .await
        .unwrap();
    let resp = runtime
        .status(api::StatusRequest { verbose: true })
        .await
        .unwrap()
        .into_inner();
    let details: serde_json::Value = serde_json::from_str(&resp.info["info"]).unwrap();
    assert_eq!(details["podCIDR"], "10.244.3.0/24");
    // An empty request is a no-op, not a crash.
    runtime
        .update_runtime_config(api::UpdateRuntimeConfigRequest::default())
        .await
        .unwrap();
}

/// A UNIX-socket proxy to the real dockerd that the test can cut, to play
/// "Docker stopped" without stopping the daemon other tests use.
struct DockerProxy {
    path: PathBuf,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl DockerProxy {
    fn start(path: &Path) -> DockerProxy {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).unwrap();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                tokio::spawn(async move {
                    if let Ok(mut outbound) = UnixStream::connect(common::docker_socket()).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        DockerProxy {
            path: path.to_path_buf(),
            task: Some(task),
        }
    }

    fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for DockerProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn docker_down_means_not_ready_and_unavailable_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let proxy_path = dir.path().join("docker.sock");
    let mut proxy = DockerProxy::start(&proxy_path);
    let server = Server::start_with_docker(
        proxy_path.to_str().unwrap(),
        &["--runtime-request-timeout", "5s"],
    )
    .await;
    let mut runtime = server.runtime().await;
    let mut images = server.images().await;
    let ready = |s: &api::StatusResponse| {
        s.status
            .as_ref()
            .unwrap()
            .conditions
            .iter()
            .find(|c| c.r#type == "RuntimeReady")
            .unwrap()
            .clone()
    };
    let status = runtime
        .status(api::StatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(ready(&status).status);

    proxy.stop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let status = runtime
        .status(api::StatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    let condition = ready(&status);
    assert!(!condition.status, "not ready while Docker is away");
    assert!(!condition.reason.is_empty());
    assert!(!condition.message.is_empty());
    let err = images
        .list_images(api::ListImagesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    let err = runtime
        .version(api::VersionRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);

    // Failed connects are retried after a back-off of at most 2 s.
    let _proxy = DockerProxy::start(&proxy_path);
    let back = std::time::Instant::now();
    loop {
        let status = runtime
            .status(api::StatusRequest::default())
            .await
            .unwrap()
            .into_inner();
        if ready(&status).status {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "not ready again once Docker is back: {:?}",
            ready(&status)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    images
        .list_images(api::ListImagesRequest::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn docker_older_than_api_1_41_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old-docker.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let _fake = tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let body = r#"{"Version":"19.03.15","ApiVersion":"1.40","MinAPIVersion":"1.12"}"#;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(reply.as_bytes()).await;
            });
        }
    });
    let server = Server::start_with_docker(path.to_str().unwrap(), &[]).await;
    let status = server
        .runtime()
        .await
        .status(api::StatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    let c = &status.status.unwrap().conditions[0];
    assert!(!c.status);
    assert!(c.message.contains("1.41"), "{}", c.message);
    let err = server
        .images()
        .await
        .list_images(api::ListImagesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("1.41"));
}
