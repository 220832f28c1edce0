//! Adapters for UpdatePodSandboxResources and the checkpoint RPCs (kept
//! apart from `runtime_service.rs`, which only delegates here).

use tonic::{Request, Response, Status};
use tracing::info_span;

use super::rpc::handle;
use crate::api;
use crate::runtime::Runtime;

pub async fn update_pod_sandbox_resources(
    runtime: &Runtime,
    request: Request<api::UpdatePodSandboxResourcesRequest>,
) -> Result<Response<api::UpdatePodSandboxResourcesResponse>, Status> {
    let (metadata, _, req) = request.into_parts();
    let span = info_span!("UpdatePodSandboxResources", sandbox = %req.pod_sandbox_id);
    tracing::debug!(parent: &span, overhead = ?req.overhead, resources = ?req.resources, "request");
    handle("UpdatePodSandboxResources", span, &metadata, async {
        runtime
            .update_pod_sandbox_resources(
                &req.pod_sandbox_id,
                req.overhead.as_ref(),
                req.resources.as_ref(),
            )
            .await?;
        Ok(api::UpdatePodSandboxResourcesResponse {})
    })
    .await
}

pub async fn checkpoint_container(
    runtime: &Runtime,
    request: Request<api::CheckpointContainerRequest>,
) -> Result<Response<api::CheckpointContainerResponse>, Status> {
    let (metadata, _, req) = request.into_parts();
    let span = info_span!(
        "CheckpointContainer",
        container = %req.container_id,
        location = %req.location,
        timeout = req.timeout,
    );
    handle("CheckpointContainer", span, &metadata, async {
        runtime
            .checkpoint_container(&req.container_id, &req.location, req.timeout)
            .await?;
        Ok(api::CheckpointContainerResponse {})
    })
    .await
}

pub async fn checkpoint_pod(
    runtime: &Runtime,
    request: Request<api::CheckpointPodRequest>,
) -> Result<Response<api::CheckpointPodResponse>, Status> {
    let (metadata, _, req) = request.into_parts();
    let span = info_span!("CheckpointPod", sandbox = %req.pod_sandbox_id);
    handle("CheckpointPod", span, &metadata, async {
        runtime.checkpoint_pod().await?;
        Ok(api::CheckpointPodResponse {})
    })
    .await
}

pub async fn restore_pod(
    runtime: &Runtime,
    request: Request<api::RestorePodRequest>,
) -> Result<Response<api::RestorePodResponse>, Status> {
    let (metadata, _, req) = request.into_parts();
    let span = info_span!("RestorePod", checkpoint = %req.checkpoint_path);
    handle("RestorePod", span, &metadata, async {
        runtime.restore_pod().await?;
        Ok(api::RestorePodResponse::default())
    })
    .await
}
