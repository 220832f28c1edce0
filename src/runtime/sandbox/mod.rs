//! Pod sandboxes as pause containers: one file per operation.

mod list;
mod remove;
mod run;
mod status;
mod stop;

use bollard::models::ContainerSummary;

use super::Runtime;
use crate::error::{Error, Result};
use crate::mapping::labels;

/// Seconds a pod's containers get to stop when the whole sandbox stops.
const SANDBOX_STOP_GRACE_SECS: i64 = 10;

/// A sandbox an RPC refers to.
pub(crate) enum SandboxRef {
    /// The pause container exists.
    Docker(Box<ContainerSummary>),
    /// Only our checkpoint is left (Docker lost the container).
    CheckpointOnly(String),
}

impl SandboxRef {
    pub fn id(&self) -> &str {
        match self {
            SandboxRef::Docker(c) => c.id.as_deref().unwrap_or_default(),
            SandboxRef::CheckpointOnly(id) => id,
        }
    }
}

pub(crate) fn sandbox_filter() -> Vec<String> {
    vec![format!("{}={}", labels::TYPE, labels::TYPE_SANDBOX)]
}

impl Runtime {
    /// Resolves a full ID or unique prefix among the sandboxes docker-cri
    /// manages. Docker names, container IDs and foreign containers never
    /// match. `None`: no such sandbox.
    pub(crate) async fn find_sandbox(&self, id: &str) -> Result<Option<SandboxRef>> {
        if id.is_empty() {
            return Err(Error::invalid("pod_sandbox_id is required"));
        }
        let sandboxes = self.docker().list_containers(&sandbox_filter()).await?;
        let mut found: Vec<SandboxRef> = sandboxes
            .into_iter()
            .filter(|c| c.id.as_deref().is_some_and(|cid| cid.starts_with(id)))
            .map(|c| SandboxRef::Docker(Box::new(c)))
            .collect();
        for cp_id in self.checkpoints.ids() {
            if cp_id.starts_with(id) && !found.iter().any(|f| f.id() == cp_id) {
                found.push(SandboxRef::CheckpointOnly(cp_id));
            }
        }
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop()),
            n => Err(Error::invalid(format!(
                "pod sandbox ID prefix {id:?} is ambiguous ({n} sandboxes match)"
            ))),
        }
    }

    /// IDs of the app containers of a sandbox.
    pub(crate) async fn sandbox_container_ids(&self, sandbox_id: &str) -> Result<Vec<String>> {
        let filter = vec![
            format!("{}={}", labels::TYPE, labels::TYPE_CONTAINER),
            format!("{}={sandbox_id}", labels::SANDBOX_ID),
        ];
        Ok(self
            .docker()
            .list_containers(&filter)
            .await?
            .into_iter()
            .filter_map(|c| c.id)
            .collect())
    }
}
