//! UpdatePodSandboxResources: kubelet's in-place pod resize tells the
//! runtime the pod's new totals after it has resized the pod cgroup itself
//! (best effort: a failure does not stop the resize). docker-cri brings
//! the pod cgroup, the sandbox's cgroup parent, to those totals: CPU
//! shares (v2: weight), CFS quota and period, memory limit. Files already
//! holding the value are not written, so the usual call changes nothing.

use super::SandboxRef;
use crate::api;
use crate::error::{Error, Result};
use crate::mapping::pod_resources::{pod_cgroup_path, pod_limits};
use crate::mapping::sandbox::CgroupDriver;
use crate::runtime::Runtime;

impl Runtime {
    pub async fn update_pod_sandbox_resources(
        &self,
        id: &str,
        overhead: Option<&api::LinuxContainerResources>,
        resources: Option<&api::LinuxContainerResources>,
    ) -> Result<()> {
        let not_found = || Error::not_found(format!("pod sandbox {id:?} not found"));
        // Whole request checked before the sandbox is looked up: a refusal
        // names the field whatever the pod's state.
        let limits = pod_limits(overhead, resources)?;
        let mut sandbox = match self.find_sandbox(id).await? {
            Some(SandboxRef::Docker(s)) => s,
            Some(SandboxRef::CheckpointOnly(full)) if limits.is_empty() => {
                tracing::debug!(sandbox = %full, "no pod limits asked; nothing to do");
                return Ok(());
            }
            Some(SandboxRef::CheckpointOnly(full)) => {
                return Err(Error::FailedPrecondition(format!(
                    "pod sandbox {full}'s pause container is gone from Docker; its pod cgroup \
                     cannot be found"
                )));
            }
            None => return Err(not_found()),
        };
        if limits.is_empty() {
            return Ok(());
        }
        let inspect = self
            .take_inspect(&mut sandbox)
            .await?
            .ok_or_else(not_found)?;
        let parent = inspect
            .host_config
            .as_ref()
            .and_then(|h| h.cgroup_parent.clone())
            .unwrap_or_default();
        let info = self.docker().info().await?;
        let driver = match info.cgroup_driver.map(|d| d.to_string()).as_deref() {
            Some("systemd") => CgroupDriver::Systemd,
            _ => CgroupDriver::Cgroupfs,
        };
        let rel = pod_cgroup_path(&parent, driver)
            .map_err(|e| e.context(format!("pod sandbox {}", sandbox.id)))?;
        let cgroups = self.cgroups.clone();
        let changes = tokio::task::spawn_blocking(move || cgroups.apply_pod_limits(&rel, &limits))
            .await
            .map_err(|e| Error::internal(format!("pod cgroup update task: {e}")))??;
        if changes.is_empty() {
            tracing::debug!("pod cgroup already holds the limits");
        } else {
            tracing::info!(?changes, "pod cgroup updated");
        }
        Ok(())
    }
}
