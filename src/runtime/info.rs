//! Version, Status, RuntimeConfig and UpdateRuntimeConfig.

use std::collections::HashMap;

use crate::api;
use crate::docker::DaemonFacts;
use crate::error::Result;
use crate::mapping::info::{cgroup_driver, recursive_read_only_supported, runtime_handlers};

use super::Runtime;

pub const RUNTIME_NAME: &str = "docker";
pub const CRI_API_VERSION: &str = "v1";
/// The `version` field of VersionResponse: the kubelet runtime API version.
pub const KUBE_RUNTIME_API_VERSION: &str = "0.1.0";

impl Runtime {
    /// From the facts cached with the connection: no call to Docker.
    pub async fn version(&self) -> Result<api::VersionResponse> {
        let v = self.docker().version().await?;
        Ok(api::VersionResponse {
            version: KUBE_RUNTIME_API_VERSION.into(),
            runtime_name: RUNTIME_NAME.into(),
            runtime_version: v.version.clone().unwrap_or_default(),
            runtime_api_version: CRI_API_VERSION.into(),
        })
    }

    /// Never fails because Docker is down: that is reported as a condition.
    /// Costs one ping; the rest comes from the facts cached with the
    /// connection, and a slow or absent daemon is reported within a second.
    pub async fn status(&self, verbose: bool) -> Result<api::StatusResponse> {
        let facts = match self.docker().facts().await {
            Ok(facts) => self.docker().ping().await.map(|()| facts),
            Err(e) => Err(e),
        };
        let (runtime_ready, reason, message) = match &facts {
            Ok(_) => (true, String::new(), String::new()),
            // Status never fails for Docker's sake: kubelet would mark the
            // node NotReady either way, and a condition says why.
            Err(e) => (false, "DockerDaemonNotReady".to_string(), e.to_string()),
        };
        let mut handlers = runtime_handlers(None, false);
        let mut info = HashMap::new();
        if let Ok(facts) = &facts {
            let (h, details) = self.docker_details(facts, verbose).await;
            handlers = h;
            if let Some(details) = details {
                info.insert("info".to_string(), details.to_string());
            }
        }
        if verbose {
            let config = serde_json::json!({
                "containerRuntimeEndpoint": self.config().listen.to_string(),
                "dockerEndpoint": self.config().docker_socket,
                "podInfraContainerImage": self.config().pause_image,
                "rootDirectory": self.config().root_directory,
                "runtimeRequestTimeout": format!("{:?}", self.config().runtime_request_timeout),
                "networkPlugin": format!("{:?}", self.config().network_plugin).to_lowercase(),
                "cniConfDir": self.config().cni_conf_dir,
                "cniBinDirs": self.config().cni_bin_dirs,
                "cniCacheDir": self.config().cni_cache_dir,
                "cniNetwork": self.cni.as_deref().and_then(|c| c.ready().ok()).map(|n| {
                    serde_json::json!({ "name": n.name, "file": n.file, "cniVersion": n.cni_version })
                }),
            });
            info.insert("config".to_string(), config.to_string());
        }
        // Docker's bridge network comes with the daemon, so it is ready
        // exactly when Docker is; CNI needs a valid config as well, and
        // plugins that answer STATUS (CNI 1.1) must say they are ready.
        let cni_status = match self.cni.as_deref() {
            Some(cni) if runtime_ready => Some(cni.status().await),
            _ => None,
        };
        let network = match cni_status {
            Some(Err(why)) => (false, "NetworkPluginNotReady".to_string(), why),
            _ => (runtime_ready, reason.clone(), message.clone()),
        };
        let runtime = api::RuntimeCondition {
            r#type: "RuntimeReady".to_string(),
            status: runtime_ready,
            reason,
            message,
        };
        let network = api::RuntimeCondition {
            r#type: "NetworkReady".to_string(),
            status: network.0,
            reason: network.1,
            message: network.2,
        };
        Ok(api::StatusResponse {
            status: Some(api::RuntimeStatus {
                conditions: vec![runtime, network],
            }),
            info,
            runtime_handlers: handlers,
            features: Some(api::RuntimeFeatures {
                supplemental_groups_policy: false,
                user_namespaces_host_network: false,
                mount_options: false,
            }),
        })
    }

    /// Runtime handlers and, when verbose, the JSON details from `docker info`.
    async fn docker_details(
        &self,
        facts: &DaemonFacts,
        verbose: bool,
    ) -> (Vec<api::RuntimeHandler>, Option<serde_json::Value>) {
        let docker_info = &facts.info;
        let kernel = docker_info.kernel_version.clone().unwrap_or_default();
        let handlers = runtime_handlers(
            docker_info.runtimes.as_ref(),
            recursive_read_only_supported(facts.api, &kernel),
        );
        if !verbose {
            return (handlers, None);
        }
        let pod_cidr = self.pod_cidr.read().await.clone();
        let details = serde_json::json!({
            "podCIDR": pod_cidr,
            "dockerCriVersion": env!("CARGO_PKG_VERSION"),
            "dockerVersion": docker_info.server_version,
            "dockerApiVersion": facts.api.to_string(),
            "defaultRuntime": docker_info.default_runtime,
            "cgroupDriver": docker_info.cgroup_driver.map(|d| d.to_string()),
            "storageDriver": docker_info.driver,
            "dockerRootDir": docker_info.docker_root_dir,
            "sandboxImage": self.config().pause_image,
        });
        (handlers, Some(details))
    }

    pub async fn runtime_config(&self) -> Result<api::RuntimeConfigResponse> {
        let info = self.docker().info().await?;
        let driver = info.cgroup_driver.map(|d| d.to_string());
        Ok(api::RuntimeConfigResponse {
            linux: Some(api::LinuxRuntimeConfiguration {
                cgroup_driver: cgroup_driver(driver.as_deref()) as i32,
            }),
        })
    }

    pub async fn update_runtime_config(&self, pod_cidr: &str) -> Result<()> {
        let mut current = self.pod_cidr.write().await;
        if *current != pod_cidr {
            tracing::info!(pod_cidr, "pod CIDR updated");
            *current = pod_cidr.to_string();
        }
        Ok(())
    }
}
