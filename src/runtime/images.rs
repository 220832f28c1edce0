//! The CRI image service on Docker: list, status, pull, remove, fs info.

use crate::api;
use crate::error::{Error, Result};
use crate::mapping::auth::docker_credentials;
use crate::mapping::image::{image_from_inspect, image_from_summary, image_verbose_info};
use crate::mapping::image_ref::{ImageLookup, ImageRef};

use super::Runtime;

impl Runtime {
    /// All images, or just the one the filter names (0 or 1 result).
    pub async fn list_images(&self, filter: Option<&str>) -> Result<Vec<api::Image>> {
        if let Some(name) = filter.filter(|f| !f.is_empty()) {
            let lookup = ImageLookup::parse(name).map_err(|e| e.context("filter.image"))?;
            let found = self.docker().inspect_image(&lookup.docker_key()).await?;
            return Ok(found
                .iter()
                .map(|i| image_from_inspect(i, &self.pinned))
                .collect());
        }
        let images = self.docker().list_images().await?;
        Ok(images
            .iter()
            .map(|s| image_from_summary(s, &self.pinned))
            .collect())
    }

    /// `None` when the image is absent, which CRI reports as a nil image.
    pub async fn image_status(
        &self,
        image: &str,
        verbose: bool,
    ) -> Result<Option<(api::Image, std::collections::BTreeMap<String, String>)>> {
        let lookup = ImageLookup::parse(image).map_err(|e| e.context("image.image"))?;
        let Some(inspect) = self.docker().inspect_image(&lookup.docker_key()).await? else {
            return Ok(None);
        };
        let info = if verbose {
            image_verbose_info(&inspect)
        } else {
            Default::default()
        };
        Ok(Some((image_from_inspect(&inspect, &self.pinned), info)))
    }

    /// Pulls and returns the image ID, the same identifier ListImages and
    /// ImageStatus report, whichever name the image was pulled under.
    pub async fn pull_image(&self, image: &str, auth: Option<&api::AuthConfig>) -> Result<String> {
        let reference = ImageRef::parse(image).map_err(|e| e.context("image.image"))?;
        let credentials = docker_credentials(auth, reference.registry())?;
        tracing::info!(image = %reference, authenticated = credentials.is_some(), "pulling image");
        self.docker()
            .pull_image(
                &reference.familiar_repository(),
                &reference.pull_tag(),
                credentials,
                self.config().image_pull_progress_deadline,
            )
            .await
            .map_err(|e| e.context(format!("pulling {reference}")))?;
        let inspect = self
            .docker()
            .inspect_image(&reference.normalized())
            .await?
            .ok_or_else(|| {
                Error::internal(format!(
                    "{reference} was pulled but Docker does not list it"
                ))
            })?;
        inspect
            .id
            .ok_or_else(|| Error::internal(format!("{reference}: Docker reported no image ID")))
    }

    /// Removes the image with all its tags. Absent is success, so concurrent
    /// removals of one image all succeed.
    pub async fn remove_image(&self, image: &str) -> Result<()> {
        let lookup = ImageLookup::parse(image).map_err(|e| e.context("image.image"))?;
        let key = lookup.docker_key();
        let Some(id) = self.docker().inspect_image(&key).await?.and_then(|i| i.id) else {
            return Ok(());
        };
        // One removal per image at a time: a call that finds a removal in
        // progress waits for it, so when any call returns the image is gone
        // (kubelet's image GC and a user may remove the same image at once).
        let _guard = self.image_remove_locks.lock(&id).await;
        if self.docker().inspect_image(&id).await?.is_none() {
            return Ok(());
        }
        // Docker's forced removal would not see a container binding the
        // image's unpacked copy (image volumes before Docker 28).
        self.release_image_volume(&id, image).await?;
        match self.docker().remove_image(&id).await {
            Ok(()) => Ok(()),
            Err(e @ Error::DockerUnavailable(_)) => Err(e),
            // A removal by someone else (docker rmi) may still race us; if
            // the image is gone now, the caller got what it asked for.
            Err(e) => match self.docker().inspect_image(&id).await? {
                None => Ok(()),
                Some(_) => Err(e.context(format!("removing image {image}"))),
            },
        }
    }

    pub async fn image_fs_info(&self) -> Result<api::ImageFsInfoResponse> {
        let usage = self.fs_usage.latest().await?;
        Ok(usage.to_response())
    }
}
