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

    /// The Docker inspect of a managed container; absence is NotFound.
    pub(crate) async fn inspect_managed_container(
        &self,
        id: &str,
    ) -> Result<bollard::models::ContainerInspectResponse> {
        let not_found = || Error::not_found(format!("container {id:?} not found"));
        let mut managed = self.find_container(id).await?.ok_or_else(not_found)?;
        self.take_inspect(&mut managed).await?.ok_or_else(not_found)
    }
}
