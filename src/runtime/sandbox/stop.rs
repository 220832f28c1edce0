//! StopPodSandbox: tear down the pod's CNI network (if it has one), kill
//! the pod's containers that still run, then stop the pause container,
//! which releases a Docker network. Unknown or stopped sandboxes succeed.

use futures_util::future::join_all;

use super::network::netns_path;
use super::{SANDBOX_STOP_GRACE_SECS, SandboxRef};
use crate::error::{Error, Result};
use crate::runtime::Runtime;

impl Runtime {
    pub async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        let Some(sandbox) = self.find_sandbox(id).await? else {
            tracing::info!(
                sandbox = id,
                "StopPodSandbox: no such sandbox; nothing to do"
            );
            // Docker and the checkpoint forgot it, but a CNI result cache
            // entry may remain: DEL without a namespace.
            return self.teardown_cni(id, "").await;
        };
        let mut managed = match sandbox {
            SandboxRef::Docker(m) => m,
            SandboxRef::CheckpointOnly(id) => return self.teardown_cni(&id, "").await,
        };
        let id = managed.id.clone();
        // DEL while the namespace still exists; a failure does not keep the
        // pod running, it is reported after the stop (and DEL is retried by
        // the next StopPodSandbox or by RemovePodSandbox).
        let netns = match self.cni() {
            Some(_) => self
                .take_inspect(&mut managed)
                .await?
                .map(|inspect| netns_path(&inspect))
                .unwrap_or_default(),
            None => String::new(),
        };
        let network = self.teardown_cni(&id, &netns).await;
        let containers = self.sandbox_container_ids(&id).await?;
        // The CRI says containers still running are forcibly terminated:
        // kubelet has already stopped, with their grace periods, the ones it
        // wanted stopped gently (containerd kills at once too).
        let results = join_all(
            containers
                .iter()
                .map(|c| self.docker().stop_container(c, 0, None)),
        )
        .await;
        let pause = self
            .docker()
            .stop_container(&id, SANDBOX_STOP_GRACE_SECS, None)
            .await;
        let mut changed: Vec<&str> = containers.iter().map(String::as_str).collect();
        changed.push(&id);
        self.reread(&changed).await;
        for r in results {
            ignore_gone(r)?;
        }
        ignore_gone(pause).map_err(|e| e.context("stopping the pause container"))?;
        network
    }
}

/// A container removed under our feet is as good as stopped.
fn ignore_gone(r: Result<()>) -> Result<()> {
    match r {
        Err(Error::NotFound(_)) => Ok(()),
        other => other,
    }
}
