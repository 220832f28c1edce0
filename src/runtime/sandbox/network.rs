//! CNI pod networking for sandboxes (`--network-plugin cni`): ADD after the
//! pause container starts, DEL at stop (retried at remove), the pod IPs
//! from the result cache for status, CHECK for verbose status and
//! restored pods, GC at startup and periodically.

use std::collections::HashSet;
use std::time::Duration;

use bollard::models::ContainerInspectResponse;
use serde_json::{Map, Value};

use crate::api;
use crate::cni::args::{self, PodIdentity};
use crate::cni::{Checked, Cni};
use crate::error::{Error, Result};
use crate::mapping::sandbox as map;
use crate::runtime::Runtime;

/// How often stale CNI attachments are looked for after the startup pass.
const GC_INTERVAL: Duration = Duration::from_secs(10 * 60);

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

    /// For verbose status: the CNI network and ADD result, if cached, and
    /// what a CHECK of the attachment on `netns` says (verbose status is
    /// asked by people, not by kubelet's sync loop, so it can afford one).
    pub(super) async fn cni_details(&self, id: &str, netns: &str) -> Option<Value> {
        let cni = self.cni()?;
        let (network, result) = cni.cached_result(id)?;
        let check = match cni.check(id, netns).await {
            Ok(Checked::Passed) => "passed".to_string(),
            Ok(Checked::Skipped(why)) => format!("skipped: {why}"),
            Err(e) => format!("failed: {e}"),
        };
        Some(serde_json::json!({ "network": network, "result": result, "check": check }))
    }

    /// CNI upkeep for the life of the server: once Docker answers, a GC
    /// pass and a CHECK of every pod found running (their networks were
    /// set up by an earlier run), then a GC pass every [`GC_INTERVAL`].
    pub async fn cni_maintenance(&self) {
        let Some(cni) = self.cni() else {
            return;
        };
        let mut warned = false;
        let sandboxes = loop {
            match self
                .docker()
                .list_containers(&super::sandbox_filter())
                .await
            {
                Ok(list) => break list,
                Err(e) => {
                    if !warned {
                        tracing::warn!(error = %e, "CNI upkeep waits for Docker");
                        warned = true;
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        };
        self.cni_gc_pass().await;
        // Only running ones have a namespace to check.
        for sandbox in sandboxes {
            let Some(id) = sandbox.id else { continue };
            let Ok(Some(inspect)) = self.docker().inspect_container(&id).await else {
                continue;
            };
            let netns = netns_path(&inspect);
            if netns.is_empty() {
                continue;
            }
            match cni.check(&id, &netns).await {
                Ok(Checked::Passed) => tracing::info!(sandbox = %id, "CNI CHECK passed"),
                Ok(Checked::Skipped(why)) => {
                    tracing::debug!(sandbox = %id, why, "CNI CHECK skipped")
                }
                Err(e) => {
                    tracing::warn!(sandbox = %id, error = %e, "CNI CHECK failed: the pod's network is not as ADD left it")
                }
            }
        }
        loop {
            tokio::time::sleep(GC_INTERVAL).await;
            self.cni_gc_pass().await;
        }
    }

    /// One GC pass; the valid attachments are those of every sandbox
    /// Docker or a checkpoint knows (a sandbox Docker forgot still gets
    /// its DEL from StopPodSandbox, with its cached port mappings).
    pub async fn cni_gc_pass(&self) {
        let Some(cni) = self.cni() else {
            return;
        };
        let known = || async {
            let mut ids: HashSet<String> = self
                .docker()
                .list_containers(&super::sandbox_filter())
                .await?
                .into_iter()
                .filter_map(|c| c.id)
                .collect();
            ids.extend(self.checkpoints.ids());
            Ok(ids)
        };
        match cni.gc(known).await {
            Ok(report) => {
                if !report.deleted.is_empty() || report.plugins_collected {
                    tracing::info!(deleted = ?report.deleted, plugins_collected = report.plugins_collected, "CNI GC");
                }
                for e in &report.errors {
                    tracing::warn!(error = %e, "CNI GC");
                }
            }
            Err(e) => tracing::warn!(error = %e, "CNI GC pass failed"),
        }
    }

    /// The CNI IPs of a running sandbox, IPv4 first, from the result cache.
    pub(super) fn cni_ips(&self, id: &str) -> Vec<String> {
        self.cni()
            .map(|c| c.cached_ips(id).iter().map(|ip| ip.to_string()).collect())
            .unwrap_or_default()
    }
}
