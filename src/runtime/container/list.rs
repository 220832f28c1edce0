//! ListContainers: one Docker list call narrowed by label on Docker's side.

use crate::api;
use crate::error::Result;
use futures_util::future::join_all;

use crate::mapping::container::{container_from_summary, inspected_state};
use crate::mapping::labels;
use crate::runtime::Runtime;

use super::container_filter;

impl Runtime {
    pub async fn list_containers(
        &self,
        filter: Option<&api::ContainerFilter>,
    ) -> Result<Vec<api::Container>> {
        let mut docker_filter = container_filter();
        if let Some(f) = filter {
            docker_filter.extend(labels::docker_label_filters(&f.label_selector));
            if f.pod_sandbox_id.len() == 64 {
                docker_filter.push(format!("{}={}", labels::SANDBOX_ID, f.pod_sandbox_id));
            }
        }
        let summaries = self.docker().list_containers(&docker_filter).await?;
        let mut out: Vec<api::Container> = summaries.iter().map(container_from_summary).collect();
        self.mark_failed_starts(&mut out).await;
        if let Some(f) = filter {
            out.retain(|c| matches(c, f));
        }
        Ok(out)
    }
}

impl Runtime {
    /// Docker's list shows a container whose start failed as `created`
    /// with no exit code; only an inspect tells it apart. Created
    /// containers are few and short-lived, so the inspects stay rare.
    async fn mark_failed_starts(&self, containers: &mut [api::Container]) {
        let created = api::ContainerState::ContainerCreated as i32;
        let checks = containers
            .iter()
            .enumerate()
            .filter(|(_, c)| c.state == created)
            .map(|(i, c)| async move { (i, self.docker().inspect_container(&c.id).await) });
        for (i, inspected) in join_all(checks).await {
            match inspected {
                Ok(Some(inspect)) => {
                    if let Some(st) = &inspect.state {
                        containers[i].state = inspected_state(st) as i32;
                    }
                }
                // Gone meanwhile: the next relist drops it.
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(container = %containers[i].id, %e, "inspect of a created container failed")
                }
            }
        }
    }
}

fn matches(c: &api::Container, f: &api::ContainerFilter) -> bool {
    if !f.id.is_empty() && !c.id.starts_with(&f.id) {
        return false;
    }
    if !f.pod_sandbox_id.is_empty() && !c.pod_sandbox_id.starts_with(&f.pod_sandbox_id) {
        return false;
    }
    if let Some(state) = &f.state
        && state.state != c.state
    {
        return false;
    }
    f.label_selector
        .iter()
        .all(|(k, v)| c.labels.get(k) == Some(v))
}
