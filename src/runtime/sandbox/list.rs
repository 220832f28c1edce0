//! ListPodSandbox: from the index (or, while it is not in sync, one Docker
//! list call, filtered by label on Docker's side),
//! plus sandboxes only our checkpoints remember (NOTREADY), so kubelet can
//! still clean those up.

use crate::api;
use crate::error::Result;
use crate::mapping::sandbox::pod_sandbox_from_summary;
use crate::runtime::Runtime;

use super::sandbox_filter;

impl Runtime {
    pub async fn list_pod_sandbox(
        &self,
        filter: Option<&api::PodSandboxFilter>,
    ) -> Result<Vec<api::PodSandbox>> {
        let mut out = match self
            .index
            .sandboxes(|s| filter.is_none_or(|f| matches(s, f)))
        {
            Some(found) => found,
            None => {
                let mut docker_filter = sandbox_filter();
                if let Some(f) = filter {
                    // Narrow on Docker's side; re-checked below against the
                    // labels as the caller gave them.
                    docker_filter.extend(crate::mapping::labels::docker_label_filters(
                        &f.label_selector,
                    ));
                }
                let summaries = self.docker().list_containers(&docker_filter).await?;
                summaries.iter().map(pod_sandbox_from_summary).collect()
            }
        };
        for id in self.checkpoints.ids() {
            if out.iter().any(|s| s.id == id) {
                continue;
            }
            if let Some(cp) = self.checkpoints.get(&id) {
                out.push(api::PodSandbox {
                    id,
                    metadata: Some(api::PodSandboxMetadata {
                        name: cp.name,
                        namespace: cp.namespace,
                        uid: cp.uid,
                        attempt: cp.attempt,
                    }),
                    state: api::PodSandboxState::SandboxNotready as i32,
                    created_at: cp.created_at,
                    ..Default::default()
                });
            }
        }
        if let Some(f) = filter {
            out.retain(|s| matches(s, f));
        }
        Ok(out)
    }
}

fn matches(s: &api::PodSandbox, f: &api::PodSandboxFilter) -> bool {
    if !f.id.is_empty() && !s.id.starts_with(&f.id) {
        return false;
    }
    if let Some(state) = &f.state
        && state.state != s.state
    {
        return false;
    }
    f.label_selector
        .iter()
        .all(|(k, v)| s.labels.get(k) == Some(v))
}
