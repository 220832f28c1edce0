//! Pod sandboxes as pause containers: one file per operation.

mod list;
mod network;
mod remove;
mod run;
mod status;
mod stop;
mod update;

use super::{Managed, Runtime};
use crate::error::{Error, Result};
use crate::mapping::labels;

/// Seconds a pod's containers get to stop when the whole sandbox stops.
const SANDBOX_STOP_GRACE_SECS: i64 = 10;

/// A sandbox an RPC refers to.
pub(crate) enum SandboxRef {
    /// The pause container exists.
    Docker(Managed),
    /// Only our checkpoint is left (Docker lost the container).
    CheckpointOnly(String),
}

impl SandboxRef {
    pub fn id(&self) -> &str {
        match self {
            SandboxRef::Docker(c) => &c.id,
            SandboxRef::CheckpointOnly(id) => id,
        }
    }
}

pub(crate) fn sandbox_filter() -> Vec<String> {
    vec![format!("{}={}", labels::TYPE, labels::TYPE_SANDBOX)]
}

impl Runtime {
    /// Resolves a full ID or unique prefix among the sandboxes docker-cri
    /// manages, including those only a checkpoint remembers. `None`: no
    /// such sandbox.
    pub(crate) async fn find_sandbox(&self, id: &str) -> Result<Option<SandboxRef>> {
        if id.is_empty() {
            return Err(Error::invalid("pod_sandbox_id is required"));
        }
        let docker = self
            .resolve_managed(id, labels::TYPE_SANDBOX)
            .await
            .map_err(|e| e.context("pod_sandbox_id"))?;
        let checkpointed: Vec<String> = self
            .checkpoints
            .ids()
            .into_iter()
            .filter(|cp| cp.starts_with(id) && docker.as_ref().is_none_or(|d| &d.id != cp))
            .collect();
        match (docker, checkpointed.len()) {
            (Some(d), 0) => Ok(Some(SandboxRef::Docker(d))),
            (None, 0) => Ok(None),
            (None, 1) => Ok(checkpointed
                .into_iter()
                .next()
                .map(SandboxRef::CheckpointOnly)),
            _ => Err(Error::invalid(format!(
                "pod sandbox ID prefix {id:?} is ambiguous"
            ))),
        }
    }

    /// IDs of the app containers of a sandbox: from the index when it is
    /// synced (docker-cri's own creates are in it before they return),
    /// else from a Docker list.
    pub(crate) async fn sandbox_container_ids(&self, sandbox_id: &str) -> Result<Vec<String>> {
        let filter = vec![
            format!("{}={}", labels::TYPE, labels::TYPE_CONTAINER),
            format!("{}={sandbox_id}", labels::SANDBOX_ID),
        ];
        if let Some(listed) = self.index.listed(&filter) {
            return Ok(listed.into_iter().map(|c| c.id).collect());
        }
        Ok(self
            .docker()
            .list_containers(&filter)
            .await?
            .into_iter()
            .filter_map(|c| c.id)
            .collect())
    }
}
