//! A pod sandbox with helpers to create, start, inspect and remove its
//! containers through the CRI, for the integration tests.

use std::time::{Duration, Instant};

use docker_cri::api;

use super::{PodCleanup, Server, TestImage, docker_logs, unique};

pub type Runtime =
    docker_cri::api::runtime_service_client::RuntimeServiceClient<tonic::transport::Channel>;

pub struct Pod {
    pub rt: Runtime,
    pub id: String,
    pub config: api::PodSandboxConfig,
    // Fields drop in this order: the pod's containers must be gone before
    // the image is removed (Docker refuses to remove an image a running
    // container uses, even with force, and the image stayed behind).
    _cleanup: PodCleanup,
    pub image: TestImage,
    pub logs: tempfile::TempDir,
}

impl Pod {
    pub async fn new(server: &Server) -> Pod {
        Self::with_image(server, TestImage::busybox(None).await).await
    }

    pub async fn with_image(server: &Server, image: TestImage) -> Pod {
        Self::with_handler(server, image, "").await
    }

    /// A pod under a RuntimeClass handler ("" for the default).
    pub async fn with_handler(server: &Server, image: TestImage, handler: &str) -> Pod {
        Self::with_sandbox_config(server, image, handler, |_| {}).await
    }

    /// A pod with Linux settings (a cgroup parent, namespaces).
    pub async fn with_linux(
        server: &Server,
        image: TestImage,
        handler: &str,
        linux: Option<api::LinuxPodSandboxConfig>,
    ) -> Pod {
        Self::with_sandbox_config(server, image, handler, |c| c.linux = linux).await
    }

    /// A pod whose sandbox config `edit` adjusts before RunPodSandbox.
    pub async fn with_sandbox_config(
        server: &Server,
        image: TestImage,
        handler: &str,
        edit: impl FnOnce(&mut api::PodSandboxConfig),
    ) -> Pod {
        let mut rt = server.runtime().await;
        let uid = unique("uid");
        let logs = tempfile::tempdir().unwrap();
        let config = api::PodSandboxConfig {
            metadata: Some(api::PodSandboxMetadata {
                name: "ctrpod".into(),
                namespace: "docker-cri-test".into(),
                uid: uid.clone(),
                attempt: 0,
            }),
            log_directory: logs.path().display().to_string(),
            ..Default::default()
        };
        let mut config = config;
        edit(&mut config);
        let id = rt
            .run_pod_sandbox(api::RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: handler.to_string(),
            })
            .await
            .unwrap()
            .into_inner()
            .pod_sandbox_id;
        Pod {
            rt,
            id,
            config,
            image,
            logs,
            _cleanup: PodCleanup(uid),
        }
    }

    pub fn ctr(&self, name: &str, script: &str) -> api::ContainerConfig {
        api::ContainerConfig {
            metadata: Some(api::ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(api::ImageSpec {
                image: self.image.name.clone(),
                ..Default::default()
            }),
            command: vec!["sh".into(), "-c".into(), script.into()],
            log_path: format!("{name}/0.log"),
            linux: Some(api::LinuxContainerConfig::default()),
            ..Default::default()
        }
    }

    pub async fn create(&mut self, config: &api::ContainerConfig) -> Result<String, tonic::Status> {
        self.create_in(&self.id.clone(), config).await
    }

    pub async fn create_in(
        &mut self,
        sandbox: &str,
        config: &api::ContainerConfig,
    ) -> Result<String, tonic::Status> {
        self.rt
            .create_container(api::CreateContainerRequest {
                pod_sandbox_id: sandbox.to_string(),
                config: Some(config.clone()),
                sandbox_config: Some(self.config.clone()),
            })
            .await
            .map(|r| r.into_inner().container_id)
    }

    pub async fn start(&mut self, id: &str) -> Result<(), tonic::Status> {
        self.rt
            .start_container(api::StartContainerRequest {
                container_id: id.into(),
            })
            .await
            .map(|_| ())
    }

    pub async fn status(&mut self, id: &str) -> Result<api::ContainerStatus, tonic::Status> {
        self.rt
            .container_status(api::ContainerStatusRequest {
                container_id: id.into(),
                verbose: false,
            })
            .await
            .map(|r| r.into_inner().status.unwrap())
    }

    pub async fn wait_exit(&mut self, id: &str) -> api::ContainerStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.status(id).await.unwrap();
            if s.state == api::ContainerState::ContainerExited as i32 {
                return s;
            }
            assert!(Instant::now() < deadline, "container {id} did not exit");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Create, start, wait for the exit; the status and the output.
    pub async fn run(&mut self, config: &api::ContainerConfig) -> (api::ContainerStatus, String) {
        let id = self.create(config).await.unwrap();
        self.start(&id).await.unwrap();
        let status = self.wait_exit(&id).await;
        (status, docker_logs(&id).await)
    }

    pub async fn stop(&mut self, id: &str, timeout: i64) -> Result<(), tonic::Status> {
        self.rt
            .stop_container(api::StopContainerRequest {
                container_id: id.into(),
                timeout,
            })
            .await
            .map(|_| ())
    }

    pub async fn remove(&mut self, id: &str) -> Result<(), tonic::Status> {
        self.rt
            .remove_container(api::RemoveContainerRequest {
                container_id: id.into(),
            })
            .await
            .map(|_| ())
    }

    pub async fn list(&mut self, filter: api::ContainerFilter) -> Vec<api::Container> {
        self.rt
            .list_containers(api::ListContainersRequest {
                filter: Some(filter),
            })
            .await
            .unwrap()
            .into_inner()
            .containers
    }
}

pub fn security(c: &mut api::ContainerConfig) -> &mut api::LinuxContainerSecurityContext {
    c.linux
        .get_or_insert_with(Default::default)
        .security_context
        .get_or_insert_with(Default::default)
}

pub fn resources(c: &mut api::ContainerConfig) -> &mut api::LinuxContainerResources {
    c.linux
        .get_or_insert_with(Default::default)
        .resources
        .get_or_insert_with(Default::default)
}

/// A pod under its own cgroupfs parent (as kubelet runs them), its cgroup
/// directories removed at the end (Docker leaves the parent's behind).
pub struct ParentedPod {
    pod: Option<Pod>,
    parent: String,
}

impl ParentedPod {
    pub async fn new(server: &Server) -> ParentedPod {
        let parent = format!("/{}", unique("docker-cri-test"));
        let linux = api::LinuxPodSandboxConfig {
            cgroup_parent: parent.clone(),
            ..Default::default()
        };
        let pod = Pod::with_linux(server, TestImage::busybox(None).await, "", Some(linux)).await;
        ParentedPod {
            pod: Some(pod),
            parent,
        }
    }

    pub fn pod(&mut self) -> &mut Pod {
        self.pod.as_mut().expect("pod until drop")
    }

    /// A file of the parent's cgroup directory under a v1 controller.
    pub fn read(&self, controller: &str, file: &str) -> String {
        let path = format!(
            "/sys/fs/cgroup/{controller}/{}/{file}",
            self.parent.trim_start_matches('/')
        );
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .trim()
            .to_string()
    }
}

impl Drop for ParentedPod {
    fn drop(&mut self) {
        drop(self.pod.take());
        let rel = self.parent.trim_start_matches('/');
        for dir in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::remove_dir(dir.path().join(rel));
        }
    }
}
