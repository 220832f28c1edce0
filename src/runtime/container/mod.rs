//! App containers in pod sandboxes: one file per operation.

mod create;
mod lifecycle;
mod list;
mod status;
mod update;

use bollard::models::ContainerSummary;

use super::Runtime;
use crate::error::{Error, Result};
use crate::mapping::labels;

pub(crate) fn container_filter() -> Vec<String> {
    vec![format!("{}={}", labels::TYPE, labels::TYPE_CONTAINER)]
}

impl Runtime {
    /// Resolves a full ID or unique prefix among the app containers
    /// docker-cri manages; sandboxes, names and foreign containers never
    /// match. `None`: no such container.
    pub(crate) async fn find_container(&self, id: &str) -> Result<Option<ContainerSummary>> {
        if id.is_empty() {
            return Err(Error::invalid("container_id is required"));
        }
        let mut found: Vec<ContainerSummary> = self
            .docker()
            .list_containers(&container_filter())
            .await?
            .into_iter()
            .filter(|c| c.id.as_deref().is_some_and(|cid| cid.starts_with(id)))
            .collect();
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop()),
            n => Err(Error::invalid(format!(
                "container ID prefix {id:?} is ambiguous ({n} containers match)"
            ))),
        }
    }

    /// Like `find_container`, but absence is NotFound.
    pub(crate) async fn require_container(&self, id: &str) -> Result<String> {
        self.find_container(id)
            .await?
            .and_then(|c| c.id)
            .ok_or_else(|| Error::not_found(format!("container {id:?} not found")))
    }
}
