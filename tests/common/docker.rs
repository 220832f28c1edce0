//! The Docker daemon under test, container lookups, logs and cleanup, and helper containers.

use std::time::Duration;

use bollard::Docker;
use futures_util::StreamExt;

use super::{TestImage, unique};

/// The Docker daemon under test: `/var/run/docker.sock`, or the socket path
/// in DOCKER_CRI_TEST_DOCKER_SOCKET (to run the suite against another
/// Docker version side by side).
pub fn docker_socket() -> String {
    std::env::var("DOCKER_CRI_TEST_DOCKER_SOCKET").unwrap_or_else(|_| "/var/run/docker.sock".into())
}

/// The Docker daemon, or a panic that says what is missing.
pub async fn docker() -> Docker {
    let fail = |why: String| -> ! {
        panic!(
            "these tests need a running Docker daemon at {} ({why}); \
             start dockerd, or run ./scripts/test.sh which does",
            docker_socket()
        )
    };
    let docker = Docker::connect_with_unix(&docker_socket(), 120, bollard::API_DEFAULT_VERSION)
        .unwrap_or_else(|e| fail(e.to_string()))
        .negotiate_version()
        .await
        .unwrap_or_else(|e| fail(e.to_string()));
    docker.ping().await.unwrap_or_else(|e| fail(e.to_string()));
    docker
}

/// Removes every Docker container of a pod (by its UID label) on drop, so a
/// failed test leaves nothing running.
pub struct PodCleanup(pub String);

/// Runs async cleanup from a `Drop` (which cannot await) to its end: on a
/// thread of its own with a short-lived runtime, so it works inside and
/// outside the test's runtime alike.
pub fn block_on_aside(cleanup: impl std::future::Future<Output = ()> + Send + 'static) {
    let _ = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(cleanup)
    })
    .join();
}

impl Drop for PodCleanup {
    fn drop(&mut self) {
        let uid = self.0.clone();
        block_on_aside(async move {
            let docker = docker().await;
            for c in containers_with_label(&docker, &format!("io.kubernetes.pod.uid={uid}")).await {
                force_remove(&c).await;
            }
        });
    }
}

pub async fn docker_logs(id: &str) -> String {
    let docker = docker().await;
    let mut logs = docker.logs(
        id,
        Some(
            bollard::query_parameters::LogsOptionsBuilder::new()
                .stdout(true)
                .stderr(true)
                .build(),
        ),
    );
    let mut out = String::new();
    while let Some(Ok(chunk)) = logs.next().await {
        out.push_str(&chunk.to_string());
    }
    out
}

pub async fn containers_with_label(docker: &Docker, label: &str) -> Vec<String> {
    containers_with_labels(docker, &[label]).await
}

/// The IDs of the containers (any state) that carry every one of `labels`
/// (`key=value`).
pub async fn containers_with_labels(docker: &Docker, labels: &[&str]) -> Vec<String> {
    let labels = labels.iter().map(|l| l.to_string()).collect();
    let filters = std::collections::HashMap::from([("label", labels)]);
    docker
        .list_containers(Some(
            bollard::query_parameters::ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|c| c.id)
        .collect()
}

/// Starts a busybox helper container that joins the sandbox's network and
/// IPC namespaces (as an app container will) running `script`; returns its ID.
pub async fn start_in_pod(image: &TestImage, sandbox_id: &str, script: &str) -> String {
    use bollard::models::{ContainerCreateBody, HostConfig};
    let docker = docker().await;
    let name = unique("helper");
    let body = ContainerCreateBody {
        image: Some(image.id.clone()),
        cmd: Some(vec!["sh".into(), "-c".into(), script.into()]),
        host_config: Some(HostConfig {
            network_mode: Some(format!("container:{sandbox_id}")),
            ipc_mode: Some(format!("container:{sandbox_id}")),
            ..Default::default()
        }),
        ..Default::default()
    };
    create_and_start(&docker, &name, body).await
}

pub async fn force_remove(id: &str) {
    let _ = docker()
        .await
        .remove_container(
            id,
            Some(
                bollard::query_parameters::RemoveContainerOptionsBuilder::new()
                    .force(true)
                    .build(),
            ),
        )
        .await;
}

/// Runs `script` in a helper container in the pod and returns its output.
pub async fn run_in_pod(image: &TestImage, sandbox_id: &str, script: &str) -> String {
    let docker = docker().await;
    let id = start_in_pod(image, sandbox_id, script).await;
    let mut wait =
        docker.wait_container(&id, None::<bollard::query_parameters::WaitContainerOptions>);
    let waited = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(_r) = wait.next().await {}
    })
    .await;
    let out = docker_logs(&id).await;
    force_remove(&id).await;
    assert!(waited.is_ok(), "helper did not finish: {out}");
    out
}

/// A plain `docker run`-style container (not made through CRI) running
/// `sleep 300`; returns its ID.
pub async fn start_plain_container(image_id: &str, name: &str) -> String {
    let docker = docker().await;
    create_and_start(
        &docker,
        name,
        bollard::models::ContainerCreateBody {
            image: Some(image_id.to_string()),
            cmd: Some(vec!["sleep".into(), "300".into()]),
            ..Default::default()
        },
    )
    .await
}

/// Creates a container named `name` from `body` and starts it; its ID.
pub async fn create_and_start(
    docker: &Docker,
    name: &str,
    body: bollard::models::ContainerCreateBody,
) -> String {
    let id = docker
        .create_container(
            Some(
                bollard::query_parameters::CreateContainerOptionsBuilder::new()
                    .name(name)
                    .build(),
            ),
            body,
        )
        .await
        .unwrap()
        .id;
    docker
        .start_container(
            &id,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .unwrap();
    id
}
