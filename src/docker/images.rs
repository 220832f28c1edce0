//! Docker image endpoints: list, inspect, pull, remove, build.

use bollard::auth::DockerCredentials;
use bollard::models::{ImageInspect, ImageSummary};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateImageOptionsBuilder, ListImagesOptions,
    RemoveImageOptionsBuilder,
};
use futures_util::StreamExt;

use super::{DockerClient, from_bollard};
use crate::error::{Error, Result};

impl DockerClient {
    pub async fn list_images(&self) -> Result<Vec<ImageSummary>> {
        self.call("list images", |d| async move {
            d.list_images(None::<ListImagesOptions>).await
        })
        .await
    }

    /// `None` when Docker has no such image. `key` must come from
    /// `ImageLookup::docker_key` (validated, safe in a URL path).
    pub async fn inspect_image(&self, key: &str) -> Result<Option<ImageInspect>> {
        match self
            .call(
                "inspect image",
                |d| async move { d.inspect_image(key).await },
            )
            .await
        {
            Ok(i) => Ok(Some(i)),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Pulls `repository:tag` (or `repository@digest` when `tag` is a digest),
    /// following progress at debug level. A pull may take long, but one that
    /// reports nothing for `stall_after` is cancelled; dropping this future
    /// aborts the pull too.
    pub async fn pull_image(
        &self,
        repository: &str,
        tag: &str,
        credentials: Option<DockerCredentials>,
        stall_after: std::time::Duration,
    ) -> Result<()> {
        let docker = self.handle().await?;
        let options = CreateImageOptionsBuilder::new()
            .from_image(repository)
            .tag(tag)
            .build();
        let mut progress = docker.create_image(Some(options), None, credentials);
        loop {
            let Some(item) = tokio::time::timeout(stall_after, progress.next())
                .await
                .map_err(|_| Error::DeadlineExceeded {
                    what: format!("pulling {repository}:{tag} (no progress)"),
                    after: stall_after,
                })?
            else {
                break;
            };
            match item {
                Ok(info) => {
                    if let Some(message) = info.error_detail.and_then(|d| d.message) {
                        return Err(from_bollard(bollard::errors::Error::DockerStreamError {
                            error: message,
                        }));
                    }
                    tracing::debug!(
                        layer = info.id.as_deref().unwrap_or(""),
                        status = info.status.as_deref().unwrap_or(""),
                        current = info.progress_detail.as_ref().and_then(|p| p.current),
                        total = info.progress_detail.as_ref().and_then(|p| p.total),
                        "pull progress"
                    );
                }
                Err(e) => {
                    let err = match from_bollard(e) {
                        Error::Docker {
                            status: 500,
                            message,
                        } if super::error::is_registry_unreachable(&message) => {
                            Error::RegistryUnavailable(message)
                        }
                        other => other,
                    };
                    self.note_error(&err).await;
                    return Err(err);
                }
            }
        }
        Ok(())
    }

    /// Removes an image by ID with all its tags. Absent → Ok.
    pub async fn remove_image(&self, id: &str) -> Result<()> {
        let options = RemoveImageOptionsBuilder::new().force(true).build();
        match self
            .call("remove image", |d| async move {
                d.remove_image(id, Some(options), None).await
            })
            .await
        {
            Ok(_) | Err(Error::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Builds an image from a tar build context (a Dockerfile at its root)
    /// with the classic builder, which needs no registry for `FROM scratch`.
    pub async fn build_image(&self, context_tar: Vec<u8>, tag: &str) -> Result<()> {
        let docker = self.handle().await?;
        let options = BuildImageOptionsBuilder::new()
            .t(tag)
            .rm(true)
            .forcerm(true)
            .build();
        let body = bollard::body_full(context_tar.into());
        let mut stream = docker.build_image(options, None, Some(body));
        let deadline = tokio::time::Instant::now() + self.call_timeout();
        loop {
            let next = tokio::time::timeout_at(deadline, stream.next())
                .await
                .map_err(|_| Error::DeadlineExceeded {
                    what: format!("building image {tag}"),
                    after: self.call_timeout(),
                })?;
            match next {
                None => return Ok(()),
                Some(Ok(info)) => {
                    if let Some(message) = info.error_detail.and_then(|d| d.message) {
                        return Err(Error::internal(format!("building image {tag}: {message}")));
                    }
                    if let Some(line) = info.stream.as_deref().map(str::trim_end)
                        && !line.is_empty()
                    {
                        tracing::debug!(tag, "{line}");
                    }
                }
                Some(Err(e)) => {
                    return Err(from_bollard(e).context(format!("building image {tag}")));
                }
            }
        }
    }
}
