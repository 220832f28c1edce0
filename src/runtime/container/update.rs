//! UpdateContainerResources: what Docker can change in place, through its
//! update API; anything else is refused, and nothing is half-applied.

use crate::api;
use crate::error::{Error, Result};
use crate::mapping::container::update_body;
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
        let wanted_oom = self.clamp_oom_score_adj(linux.oom_score_adj);
        if wanted_oom != current.oom_score_adj.unwrap_or(0) {
            return Err(Error::invalid(format!(
                "resources.oom_score_adj cannot be changed on an existing Docker container \
                 (is {}, asked {wanted_oom})",
                current.oom_score_adj.unwrap_or(0)
            )));
        }
        self.docker()
            .update_container(&full, body)
            .await
            .map_err(|e| e.context(format!("updating container {full}")))
    }
}
