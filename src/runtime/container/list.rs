//! ListContainers: from the index, or (while it is not in sync) one Docker
//! list call narrowed by label on Docker's side.

use crate::api;
use crate::error::Result;
use futures_util::future::join_all;

use crate::mapping::container::{container_from_summary, failed_start, inspected_state};
use crate::mapping::labels;
use crate::runtime::Runtime;

use super::container_filter;

impl Runtime {
    pub async fn list_containers(
        &self,
        filter: Option<&api::ContainerFilter>,
    ) -> Result<Vec<api::Container>> {
        let from_index = self.index.containers(|c| {
            filter.is_none_or(|f| {
                matches(c, f) && f.state.as_ref().is_none_or(|s| s.state == c.state)
            })
        });
        if let Some(found) = from_index {
            return Ok(found);
        }
        let mut docker_filter = container_filter();
        if let Some(f) = filter {
            docker_filter.extend(labels::docker_label_filters(&f.label_selector));
            if f.pod_sandbox_id.len() == 64 {
                docker_filter.push(format!("{}={}", labels::SANDBOX_ID, f.pod_sandbox_id));
            }
        }
        let summaries = self.docker().list_containers(&docker_filter).await?;
        let mut out: Vec<api::Container> = summaries.iter().map(container_from_summary).collect();
        // Narrow first, so only the created containers the caller asked
        // about may need an inspect.
        if let Some(f) = filter {
            out.retain(|c| matches(c, f));
        }
        // A RUNNING-only list (kubelet's most common) drops created
        // containers whatever they are.
        let wants_running = filter
            .and_then(|f| f.state.as_ref())
            .is_some_and(|s| s.state == api::ContainerState::ContainerRunning as i32);
        if !wants_running {
            self.mark_failed_starts(&mut out, filter.is_none()).await;
        }
        if let Some(state) = filter.and_then(|f| f.state.as_ref()) {
            out.retain(|c| c.state == state.state);
        }
        Ok(out)
    }

    /// Docker's list shows a container whose start failed as `created`
    /// with no exit code; only an inspect tells it apart. A failed start is
    /// final (StartContainer refuses it), so each is inspected once and
    /// then remembered; only containers not started yet are inspected on
    /// every list, and those are few and short-lived. `complete`: the list
    /// holds every container, so the memory can drop the ones gone.
    async fn mark_failed_starts(&self, containers: &mut [api::Container], complete: bool) {
        let created = api::ContainerState::ContainerCreated as i32;
        let exited = api::ContainerState::ContainerExited as i32;
        let unknown: Vec<usize> = {
            let mut known = self.failed_starts.lock().unwrap_or_else(|p| p.into_inner());
            if complete {
                known.retain(|id| containers.iter().any(|c| &c.id == id));
            }
            containers
                .iter_mut()
                .enumerate()
                .filter(|(_, c)| c.state == created)
                .filter_map(|(i, c)| {
                    if known.contains(&c.id) {
                        c.state = exited;
                        None
                    } else {
                        Some(i)
                    }
                })
                .collect()
        };
        let checks = unknown.into_iter().map(|i| {
            let id = containers[i].id.clone();
            async move { (i, self.docker().inspect_container(&id).await) }
        });
        for (i, inspected) in join_all(checks).await {
            match inspected {
                Ok(Some(inspect)) => {
                    if let Some(st) = inspect.state.as_ref().filter(|st| failed_start(st)) {
                        containers[i].state = inspected_state(st) as i32;
                        self.failed_starts
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(containers[i].id.clone());
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
    f.label_selector
        .iter()
        .all(|(k, v)| c.labels.get(k) == Some(v))
}
