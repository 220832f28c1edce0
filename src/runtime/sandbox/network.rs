//! CNI pod networking for sandboxes (`--network-plugin cni`): ADD after the
//! pause container starts, DEL at stop (retried at remove), the pod IPs
//! from the result cache for status.

use bollard::models::ContainerInspectResponse;
use serde_json::{Map, Value};

use crate::api;
use crate::cni::Cni;
use crate::cni::args::{self, PodIdentity};
use crate::error::{Error, Result};
use crate::mapping::sandbox as map;
use crate::runtime::Runtime;

/// What RunPodSandbox settles before creating anything: `None` for pods
/// that Docker networks (Docker mode, host network).
pub(super) struct CniPlan {
    pub caps: Map<String, Value>,
}

/// The network namespace of a running pause container, or empty (DEL
/// then runs without one, as the spec allows).
pub(super) fn netns_path(inspect: &ContainerInspectResponse) -> String {
    let state = inspect.state.as_ref();
    let running = state.and_then(|s| s.running).unwrap_or(false);
    match state.and_then(|s| s.pid) {
        Some(pid) if running && pid > 0 => format!("/proc/{pid}/ns/net"),
        _ => String::new(),
    }
}

impl Runtime {
    pub(super) fn cni(&self) -> Option<&Cni> {
        self.cni.as_deref()
    }

    /// Checks, before anything is created, that a non-host pod can be
    /// networked: a valid config exists and the capability arguments
    /// (bandwidth annotations) are well-formed.
    pub(super) async fn plan_cni(&self, config: &api::PodSandboxConfig) -> Result<Option<CniPlan>> {
        let Some(cni) = self.cni() else {
            return Ok(None);
        };
        if map::is_node(map::namespace_options(config).network) {
            return Ok(None);
        }
        cni.ready()
            .map_err(|why| Error::FailedPrecondition(format!("pod network is not ready: {why}")))?;
        let pod_cidr = self.pod_cidr.read().await.clone();
        let caps = args::capability_args(config, &pod_cidr)?;
        Ok(Some(CniPlan { caps }))
    }

    /// ADD on the running pause container's network namespace.
    pub(super) async fn setup_cni(
        &self,
        id: &str,
        config: &api::PodSandboxConfig,
        plan: CniPlan,
    ) -> Result<()> {
        let Some(cni) = self.cni() else {
            return Ok(());
        };
        let inspect = self
            .docker()
            .inspect_container(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("pause container {id} vanished")))?;
        let netns = netns_path(&inspect);
        if netns.is_empty() {
            return Err(Error::internal(
                "the pause container is not running: no network namespace for CNI",
            ));
        }
        let meta = config.metadata.clone().unwrap_or_default();
        let pod = PodIdentity {
            namespace: meta.namespace,
            name: meta.name,
            uid: meta.uid,
            sandbox_id: id.to_string(),
        };
        let ips = cni.setup(&pod, &netns, plan.caps).await?;
        tracing::info!(sandbox = id, ?ips, "CNI network set up");
        Ok(())
    }

    /// DEL for whatever the cache holds for this sandbox (nothing for
    /// Docker-networked and host-network pods).
    pub(super) async fn teardown_cni(&self, id: &str, netns: &str) -> Result<()> {
        if let Some(cni) = self.cni() {
            cni.teardown(id, netns)
                .await
                .map_err(|e| e.context("tearing down the pod network"))?;
        }
        Ok(())
    }

    /// For verbose status: the CNI network and ADD result, if cached.
    pub(super) fn cni_details(&self, id: &str) -> Option<Value> {
        let (network, result) = self.cni()?.cached_result(id)?;
        Some(serde_json::json!({ "network": network, "result": result }))
    }

    /// The CNI IPs of a running sandbox, IPv4 first, from the result cache.
    pub(super) fn cni_ips(&self, id: &str) -> Vec<String> {
        self.cni()
            .map(|c| c.cached_ips(id).iter().map(|ip| ip.to_string()).collect())
            .unwrap_or_default()
    }
}
