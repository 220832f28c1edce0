//! StartContainer, StopContainer, RemoveContainer.

use bollard::models::ContainerStateStatusEnum;

use crate::error::{Error, Result};
use crate::mapping::container::{CgroupSetting, failed_start, recorded_cgroup_settings};
use crate::runtime::Runtime;

impl Runtime {
    /// Only a created container starts; starting a running one is a no-op.
    /// Docker would happily re-run an exited container under the same ID,
    /// which CRI does not allow.
    pub async fn start_container(&self, id: &str) -> Result<()> {
        let inspect = self.inspect_managed_container(id).await?;
        let id = inspect.id.clone().unwrap_or_default();
        // Whatever the outcome (a failed start is final too), the next
        // List and Status show it.
        let started = self.start_inspected(&id, inspect).await;
        self.reread(&[&id]).await;
        started
    }

    async fn start_inspected(
        &self,
        id: &str,
        inspect: bollard::models::ContainerInspectResponse,
    ) -> Result<()> {
        let id = id.to_string();
        if inspect.state.as_ref().is_some_and(failed_start) {
            return Err(Error::FailedPrecondition(format!(
                "container {id} cannot be started: an earlier start failed (it is exited)"
            )));
        }
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
        let log_path = self
            .create_container_log(&id, inspect.config.as_ref().and_then(|c| c.labels.as_ref()))
            .await?;
        self.docker()
            .start_container(&id)
            .await
            .map_err(|e| e.context(format!("starting container {id}")))?;
        if let Some(path) = &log_path {
            self.follow_container_log(&id, path).await;
        }
        let labels = inspect
            .config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default();
        let settings = recorded_cgroup_settings(&labels)?;
        if settings.is_empty() {
            return Ok(());
        }
        let applied = match self.docker().inspect_container(&id).await? {
            Some(now) => match now.state.and_then(|s| s.pid).filter(|p| *p > 0) {
                Some(pid) => self.apply_cgroup_settings(pid, &id, settings).await,
                // It already exited: nothing left to limit.
                None => Ok(()),
            },
            None => Ok(()),
        };
        if let Err(e) = applied {
            // A container must not run without limits it was created with.
            tracing::warn!(container = %id, %e, "cgroup limits could not be applied; stopping it");
            let _ = self.docker().stop_container(&id, 0, None).await;
            return Err(e.context(format!("container {id} was stopped")));
        }
        Ok(())
    }

    /// Writes cgroup settings for a running process, off the async workers.
    pub(crate) async fn apply_cgroup_settings(
        &self,
        pid: i64,
        id: &str,
        settings: Vec<CgroupSetting>,
    ) -> Result<()> {
        let (cgroups, id) = (self.cgroups.clone(), id.to_string());
        tokio::task::spawn_blocking(move || cgroups.apply(pid, &id, &settings))
            .await
            .map_err(|e| Error::internal(format!("cgroup task: {e}")))?
    }

    /// Stops with the container's stop signal, then SIGKILL after
    /// `timeout_secs`. Missing or stopped containers are success.
    pub async fn stop_container(&self, id: &str, timeout_secs: i64) -> Result<()> {
        let Some(id) = self.find_container(id).await?.map(|c| c.id) else {
            return Ok(());
        };
        let stopped = match self
            .docker()
            .stop_container(&id, timeout_secs.max(0), None)
            .await
        {
            Ok(()) | Err(Error::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        };
        self.reread(&[&id]).await;
        stopped
    }

    pub async fn remove_container(&self, id: &str) -> Result<()> {
        let Some(container) = self.find_container(id).await? else {
            return Ok(());
        };
        self.docker().remove_container(&container.id).await?;
        self.index.forget(&container.id);
        self.failed_starts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&container.id);
        self.forget_container_log(&container.id, Some(&container.labels))
            .await;
        self.collect_image_volumes().await;
        Ok(())
    }
}
