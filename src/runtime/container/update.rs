//! UpdateContainerResources: what Docker can change in place, through its
//! update API; anything else is refused, and nothing is half-applied.

use crate::api;
use crate::error::{Error, Result};
use crate::mapping::container::{resources, restore_body, update_body};
use crate::runtime::Runtime;

impl Runtime {
    pub async fn update_container_resources(
        &self,
        id: &str,
        linux: Option<&api::LinuxContainerResources>,
    ) -> Result<()> {
        let inspect = self.inspect_managed_container(id).await?;
        let full = inspect.id.clone().unwrap_or_default();
        let Some(linux) = linux else {
            return Ok(());
        };
        let current = inspect.host_config.unwrap_or_default();
        let body = update_body(
            linux,
            current.memory.unwrap_or(0),
            current.memory_swap.unwrap_or(0),
        )?;
        let settings = self.cgroups.plan(&resources(linux)?.cgroup_settings)?;
        let pid = inspect
            .state
            .as_ref()
            .and_then(|s| s.pid)
            .filter(|p| *p > 0);
        if !settings.is_empty() && pid.is_none() {
            return Err(Error::FailedPrecondition(format!(
                "container {full} is not running: {} can only be applied to a running container",
                settings[0].describe()
            )));
        }
        // Docker cannot change oom_score_adj in place. In-place resize
        // sends a new one with every update; failing the whole update for it
        // would block the CPU and memory change, so it is left as it is.
        let wanted_oom = self.clamp_oom_score_adj(linux.oom_score_adj);
        let current_oom = current.oom_score_adj.unwrap_or(0);
        if wanted_oom != current_oom && self.note_oom_update_once(&full) {
            tracing::debug!(
                container = %full,
                current_oom,
                wanted_oom,
                "oom_score_adj cannot be changed on a running Docker container; left as it is"
            );
        }
        let mut updated = self
            .docker()
            .update_container(&full, body)
            .await
            .map_err(|e| e.context(format!("updating container {full}")));
        if updated.is_ok()
            && let Some(pid) = pid.filter(|_| !settings.is_empty())
            && let Err(e) = self.apply_cgroup_settings(pid, &full, settings).await
        {
            // The kernel refused a cgroup-only value: put Docker's part
            // back, so the update is all or nothing.
            let undo = self
                .docker()
                .update_container(&full, restore_body(&current))
                .await;
            updated = Err(match undo {
                Ok(()) => e.context("nothing was changed"),
                Err(undo) => {
                    tracing::warn!(container = %full, error = %undo, "undoing a partial resource update failed");
                    e.context(format!(
                        "Docker's part of the update stays applied ({undo})"
                    ))
                }
            });
        }
        self.reread(&[&full]).await;
        updated
    }

    /// True the first time for a container (keeps the debug line to one).
    fn note_oom_update_once(&self, id: &str) -> bool {
        let mut noted = self
            .oom_update_noted
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // Bounded: forget everything rather than grow without limit.
        if noted.len() > 10_000 {
            noted.clear();
        }
        noted.insert(id.to_string())
    }
}
