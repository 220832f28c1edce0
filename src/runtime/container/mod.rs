//! App containers in pod sandboxes: one file per operation.

mod create;
mod lifecycle;
mod list;
mod status;
mod update;

use super::{Managed, Runtime};
use crate::error::{Error, Result};
use crate::mapping::labels;

pub(crate) fn container_filter() -> Vec<String> {
    vec![format!("{}={}", labels::TYPE, labels::TYPE_CONTAINER)]
}

impl Runtime {
    /// Resolves a full ID or unique prefix among the app containers
    /// docker-cri manages; sandboxes, names and foreign containers never
    /// match. `None`: no such container.
    pub(crate) async fn find_container(&self, id: &str) -> Result<Option<Managed>> {
        if id.is_empty() {
            return Err(Error::invalid("container_id is required"));
        }
        self.resolve_managed(id, labels::TYPE_CONTAINER)
            .await
            .map_err(|e| e.context("container_id"))
    }

    /// Like `find_container`, but absence is NotFound.
    pub(crate) async fn require_container(&self, id: &str) -> Result<String> {
        self.find_container(id)
            .await?
            .map(|c| c.id)
            .ok_or_else(|| Error::not_found(format!("container {id:?} not found")))
    }
}
