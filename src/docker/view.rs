//! The narrow view of Docker the stats code needs, as a trait returning
//! docker-cri's own types, so the stats logic runs against a fake in unit
//! tests. Only listing and a one-off inspect per container: usage figures
//! never come from Docker.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use bollard::models::ContainerSummaryStateEnum;

use super::DockerClient;
use crate::error::Result;

/// A container as one Docker list call shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listed {
    pub id: String,
    /// Docker's name, with its leading `/`.
    pub name: String,
    pub image: String,
    pub image_id: String,
    pub labels: HashMap<String, String>,
    pub running: bool,
    /// Unix seconds.
    pub created: i64,
}

/// What a single inspect tells about a running container, kept by the
/// caller for the container's life.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Details {
    /// The init process; `None` when not running.
    pub pid: Option<i64>,
    /// The overlay upper (writable) directory, for drivers that have one.
    pub upper_dir: Option<PathBuf>,
    /// `HostConfig.CgroupParent` as Docker holds it ("" for Docker's default).
    pub cgroup_parent: String,
}

pub trait ContainerView: Send + Sync {
    /// Containers (running or not) carrying every `key` or `key=value` label.
    fn list(&self, labels: &[String]) -> impl Future<Output = Result<Vec<Listed>>> + Send;
    /// `None` when Docker has no such container.
    fn details(&self, id: &str) -> impl Future<Output = Result<Option<Details>>> + Send;
}

impl ContainerView for DockerClient {
    async fn list(&self, labels: &[String]) -> Result<Vec<Listed>> {
        let summaries = self.list_containers(labels).await?;
        Ok(summaries
            .into_iter()
            .map(|s| Listed {
                id: s.id.unwrap_or_default(),
                name: s
                    .names
                    .and_then(|n| n.into_iter().next())
                    .unwrap_or_default(),
                image: s.image.unwrap_or_default(),
                image_id: s.image_id.unwrap_or_default(),
                labels: s.labels.unwrap_or_default(),
                running: s.state == Some(ContainerSummaryStateEnum::RUNNING),
                created: s.created.unwrap_or(0),
            })
            .collect())
    }

    async fn details(&self, id: &str) -> Result<Option<Details>> {
        let Some(c) = self.inspect_container(id).await? else {
            return Ok(None);
        };
        let running = c.state.as_ref().and_then(|s| s.running) == Some(true);
        Ok(Some(Details {
            pid: c
                .state
                .as_ref()
                .and_then(|s| s.pid)
                .filter(|p| running && *p > 0),
            upper_dir: c
                .graph_driver
                .as_ref()
                .and_then(|g| g.data.get("UpperDir"))
                .map(PathBuf::from),
            cgroup_parent: c
                .host_config
                .as_ref()
                .and_then(|h| h.cgroup_parent.clone())
                .unwrap_or_default(),
        }))
    }
}

impl<T: ContainerView> ContainerView for Arc<T> {
    fn list(&self, labels: &[String]) -> impl Future<Output = Result<Vec<Listed>>> + Send {
        (**self).list(labels)
    }
    fn details(&self, id: &str) -> impl Future<Output = Result<Option<Details>>> + Send {
        (**self).details(id)
    }
}
