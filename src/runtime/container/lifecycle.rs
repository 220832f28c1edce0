//! StartContainer, StopContainer, RemoveContainer.

use bollard::models::ContainerStateStatusEnum;

use crate::error::{Error, Result};
use crate::runtime::Runtime;

impl Runtime {
    /// Only a created container starts; starting a running one is a no-op.
    /// Docker would happily re-run an exited container under the same ID,
    /// which CRI does not allow.
    pub async fn start_container(&self, id: &str) -> Result<()> {
        let inspect = self.inspect_managed_container(id).await?;
        let id = inspect.id.clone().unwrap_or_default();
        let state = inspect.state.and_then(|s| s.status);
        match state {
            Some(ContainerStateStatusEnum::CREATED) => {}
            Some(ContainerStateStatusEnum::RUNNING) => return Ok(()),
            other => {
                return Err(Error::FailedPrecondition(format!(
                    "container {id} cannot be started: it is {}",
                    other.map_or("gone".to_string(), |s| s.to_string())
                )));
            }
        }
        self.docker()
            .start_container(&id)
            .await
            .map_err(|e| e.context(format!("starting container {id}")))
    }

    /// Stops with the container's stop signal, then SIGKILL after
    /// `timeout_secs`. Missing or stopped containers are success.
    pub async fn stop_container(&self, id: &str, timeout_secs: i64) -> Result<()> {
        let Some(id) = self.find_container(id).await?.map(|c| c.id) else {
            return Ok(());
        };
        match self
            .docker()
            .stop_container(&id, timeout_secs.max(0), None)
            .await
        {
            Ok(()) | Err(Error::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn remove_container(&self, id: &str) -> Result<()> {
        let Some(id) = self.find_container(id).await?.map(|c| c.id) else {
            return Ok(());
        };
        self.docker().remove_container(&id).await
    }
}
