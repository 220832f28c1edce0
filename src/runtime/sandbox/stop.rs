//! StopPodSandbox: kill the pod's containers that still run, then stop the
//! pause container, which releases its network. Unknown or stopped
//! sandboxes succeed.

use futures_util::future::join_all;

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
            return Ok(());
        };
        let SandboxRef::Docker(_) = &sandbox else {
            return Ok(());
        };
        let id = sandbox.id().to_string();
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
        for r in results {
            ignore_gone(r)?;
        }
        ignore_gone(
            self.docker()
                .stop_container(&id, SANDBOX_STOP_GRACE_SECS, None)
                .await,
        )
        .map_err(|e| e.context("stopping the pause container"))
    }
}

/// A container removed under our feet is as good as stopped.
fn ignore_gone(r: Result<()>) -> Result<()> {
    match r {
        Err(Error::NotFound(_)) => Ok(()),
        other => other,
    }
}
