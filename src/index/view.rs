//! The index as the stats code's view of Docker: listings from memory while
//! the index is in sync, from Docker otherwise; one-off details from Docker.

use std::sync::Arc;

use crate::docker::DockerClient;
use crate::docker::view::{ContainerView, Details, Listed};
use crate::error::Result;

use super::Index;

pub struct IndexedView {
    pub index: Arc<Index<Arc<DockerClient>>>,
    pub docker: Arc<DockerClient>,
}

impl ContainerView for IndexedView {
    async fn list(&self, labels: &[String]) -> Result<Vec<Listed>> {
        match self.index.listed(labels) {
            Some(listed) => Ok(listed),
            None => self.docker.list(labels).await,
        }
    }

    async fn details(&self, id: &str) -> Result<Option<Details>> {
        self.docker.details(id).await
    }
}
