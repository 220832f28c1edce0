//! Docker container endpoints used for sandboxes and containers.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, ContainerInspectResponse, ContainerSummary};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    StartContainerOptions, StopContainerOptionsBuilder,
};

use super::DockerClient;
use crate::error::{Error, Result};

impl DockerClient {
    /// All containers (running or not) carrying every `key=value` label.
    pub async fn list_containers(&self, labels: &[String]) -> Result<Vec<ContainerSummary>> {
        let filters: HashMap<&str, Vec<String>> = HashMap::from([("label", labels.to_vec())]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        self.call("list containers", |d| async move {
            d.list_containers(Some(options)).await
        })
        .await
    }

    pub async fn create_container(&self, name: &str, body: ContainerCreateBody) -> Result<String> {
        let options = CreateContainerOptionsBuilder::new().name(name).build();
        let created = self
            .call("create container", |d| async move {
                d.create_container(Some(options), body).await
            })
            .await?;
        for warning in &created.warnings {
            tracing::warn!(container = name, "docker: {warning}");
        }
        Ok(created.id)
    }

    pub async fn start_container(&self, id: &str) -> Result<()> {
        self.call("start container", |d| async move {
            d.start_container(id, None::<StartContainerOptions>).await
        })
        .await
    }

    /// Stops with a grace period; Docker sends SIGKILL after it. Already
    /// stopped (304) is success.
    pub async fn stop_container(
        &self,
        id: &str,
        grace_secs: i64,
        signal: Option<&str>,
    ) -> Result<()> {
        let mut builder =
            StopContainerOptionsBuilder::new().t(grace_secs.clamp(0, i32::MAX as i64) as i32);
        if let Some(signal) = signal {
            builder = builder.signal(signal);
        }
        let options = builder.build();
        // The grace period is on top of the per-call timeout.
        let outer = std::time::Duration::from_secs(grace_secs.max(0) as u64) + self.call_timeout();
        let docker = self.handle().await?;
        match tokio::time::timeout(outer, docker.stop_container(id, Some(options))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                let err = super::from_bollard(e);
                self.note_error(&err).await;
                Err(err.context("stop container"))
            }
            Err(_) => Err(Error::DeadlineExceeded {
                what: format!("stopping container {id}"),
                after: outer,
            }),
        }
    }

    /// Force-removes a container and its anonymous volumes. Absent, or a
    /// removal already under way, is success.
    pub async fn remove_container(&self, id: &str) -> Result<()> {
        self.remove(id, true).await
    }

    /// Removes a container that is not running, with its anonymous
    /// volumes: Docker refuses (`FailedPrecondition`) one that is. Absent,
    /// or a removal already under way, is success.
    pub async fn remove_stopped_container(&self, id: &str) -> Result<()> {
        self.remove(id, false).await
    }

    async fn remove(&self, id: &str, force: bool) -> Result<()> {
        let options = RemoveContainerOptionsBuilder::new()
            .force(force)
            .v(true)
            .build();
        match self
            .call("remove container", |d| async move {
                d.remove_container(id, Some(options)).await
            })
            .await
        {
            Ok(()) | Err(Error::NotFound(_)) => Ok(()),
            Err(Error::FailedPrecondition(m)) if m.contains("already in progress") => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn update_container(
        &self,
        id: &str,
        body: bollard::models::ContainerUpdateBody,
    ) -> Result<()> {
        self.call("update container", |d| async move {
            d.update_container(id, body).await
        })
        .await
    }

    /// `None` when Docker has no such container.
    pub async fn inspect_container(&self, id: &str) -> Result<Option<ContainerInspectResponse>> {
        match self
            .call("inspect container", |d| async move {
                d.inspect_container(id, None).await
            })
            .await
        {
            Ok(c) => Ok(Some(c)),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Docker's experimental checkpoint API: CRIU dumps the running
    /// container into `dir/<name>`, leaving it running. CRIU may take long
    /// for a large process: `within` bounds it instead of the usual
    /// per-call timeout.
    pub async fn create_checkpoint(
        &self,
        id: &str,
        name: &str,
        dir: &str,
        within: std::time::Duration,
    ) -> Result<()> {
        #[allow(deprecated)] // bollard's only form of this call
        let options = bollard::container::CreateCheckpointOptions {
            checkpoint_id: name.to_string(),
            checkpoint_dir: Some(dir.to_string()),
            exit: false,
        };
        self.call_within("create checkpoint", within, |d| async move {
            #[allow(deprecated)]
            d.create_checkpoint(id, options).await
        })
        .await
    }

    /// Docker's export of container `id`'s filesystem (a flattened tar:
    /// no layers, no whiteouts) written to `dest`. Streamed to disk, as an
    /// image may be large; no per-call timeout for the same reason.
    pub async fn export_container(&self, id: &str, dest: &std::path::Path) -> Result<()> {
        use futures_util::StreamExt;
        use tokio::io::AsyncWriteExt;
        let docker = self.handle().await?;
        let io = |e: std::io::Error| Error::internal(format!("writing {}: {e}", dest.display()));
        let mut file = tokio::fs::File::create(dest).await.map_err(io)?;
        let mut stream = docker.export_container(id);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(super::error::from_bollard)?;
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.flush().await.map_err(io)
    }
}
