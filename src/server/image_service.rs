//! ImageService adapter.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use tracing::info_span;

use super::list_streams::BoxStream;
use super::rpc::{handle, required};
use crate::api::{self, image_service_server::ImageService};
use crate::error::Error;
use crate::mapping::auth::redact_pull_request;
use crate::runtime::Runtime;

pub struct ImageServiceImpl {
    runtime: Arc<Runtime>,
}

impl ImageServiceImpl {
    pub fn new(runtime: Arc<Runtime>) -> Self {
        ImageServiceImpl { runtime }
    }
}

/// The image name of a required ImageSpec, non-empty.
fn image_name<'a>(spec: &'a Option<api::ImageSpec>, field: &str) -> crate::Result<&'a str> {
    let spec = required(spec, field)?;
    if spec.image.is_empty() {
        return Err(Error::invalid(format!("{field}.image must not be empty")));
    }
    Ok(&spec.image)
}

fn spec_name(spec: &Option<api::ImageSpec>) -> &str {
    spec.as_ref().map_or("", |s| s.image.as_str())
}

#[tonic::async_trait]
impl ImageService for ImageServiceImpl {
    async fn list_images(
        &self,
        request: Request<api::ListImagesRequest>,
    ) -> Result<Response<api::ListImagesResponse>, Status> {
        let filter = request
            .get_ref()
            .filter
            .as_ref()
            .and_then(|f| f.image.as_ref())
            .map(|s| s.image.clone());
        let span = info_span!("ListImages", filter = filter.as_deref().unwrap_or(""));
        handle("ListImages", span, request.metadata(), async {
            let images = self.runtime.list_images(filter.as_deref()).await?;
            Ok(api::ListImagesResponse { images })
        })
        .await
    }

    type StreamImagesStream = BoxStream<api::StreamImagesResponse>;

    async fn stream_images(
        &self,
        request: Request<api::StreamImagesRequest>,
    ) -> Result<Response<Self::StreamImagesStream>, Status> {
        super::list_streams::images(&self.runtime, request).await
    }

    async fn image_status(
        &self,
        request: Request<api::ImageStatusRequest>,
    ) -> Result<Response<api::ImageStatusResponse>, Status> {
        let req = request.get_ref();
        let span = info_span!("ImageStatus", image = spec_name(&req.image));
        handle("ImageStatus", span, request.metadata(), async {
            let name = image_name(&req.image, "image")?;
            Ok(match self.runtime.image_status(name, req.verbose).await? {
                Some((image, info)) => api::ImageStatusResponse {
                    image: Some(image),
                    info: info.into_iter().collect(),
                },
                None => api::ImageStatusResponse::default(),
            })
        })
        .await
    }

    async fn pull_image(
        &self,
        request: Request<api::PullImageRequest>,
    ) -> Result<Response<api::PullImageResponse>, Status> {
        let req = request.get_ref();
        let span = info_span!("PullImage", image = spec_name(&req.image));
        tracing::trace!(parent: &span, request = ?redact_pull_request(req), "request");
        handle("PullImage", span, request.metadata(), async {
            let name = image_name(&req.image, "image")?;
            let image_ref = self.runtime.pull_image(name, req.auth.as_ref()).await?;
            tracing::info!(image_ref, "pulled");
            Ok(api::PullImageResponse { image_ref })
        })
        .await
    }

    async fn remove_image(
        &self,
        request: Request<api::RemoveImageRequest>,
    ) -> Result<Response<api::RemoveImageResponse>, Status> {
        let req = request.get_ref();
        let span = info_span!("RemoveImage", image = spec_name(&req.image));
        handle("RemoveImage", span, request.metadata(), async {
            self.runtime
                .remove_image(image_name(&req.image, "image")?)
                .await?;
            Ok(api::RemoveImageResponse {})
        })
        .await
    }

    async fn image_fs_info(
        &self,
        request: Request<api::ImageFsInfoRequest>,
    ) -> Result<Response<api::ImageFsInfoResponse>, Status> {
        handle(
            "ImageFsInfo",
            info_span!("ImageFsInfo"),
            request.metadata(),
            async { self.runtime.image_fs_info().await },
        )
        .await
    }
}
