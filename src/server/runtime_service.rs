//! RuntimeService adapter. An RPC not served answers `Unimplemented`
//! naming the RPC and the reason, never a fake success.

use std::sync::Arc;

use tokio_stream::StreamExt;
use tonic::{Request, Response, Status};
use tracing::info_span;

use super::list_streams::{self, BoxStream};
use super::pod_rpcs;
use super::rpc::{detached, handle, required};
use crate::api::{self, runtime_service_server::RuntimeService};
use crate::runtime::Runtime;

pub struct RuntimeServiceImpl {
    runtime: Arc<Runtime>,
}

impl RuntimeServiceImpl {
    pub fn new(runtime: Arc<Runtime>) -> Self {
        RuntimeServiceImpl { runtime }
    }
}

#[tonic::async_trait]
impl RuntimeService for RuntimeServiceImpl {
    async fn version(
        &self,
        request: Request<api::VersionRequest>,
    ) -> Result<Response<api::VersionResponse>, Status> {
        handle(
            "Version",
            info_span!("Version"),
            request.metadata(),
            async { self.runtime.version().await },
        )
        .await
    }

    async fn status(
        &self,
        request: Request<api::StatusRequest>,
    ) -> Result<Response<api::StatusResponse>, Status> {
        let verbose = request.get_ref().verbose;
        handle(
            "Status",
            info_span!("Status", verbose),
            request.metadata(),
            async { self.runtime.status(verbose).await },
        )
        .await
    }

    async fn runtime_config(
        &self,
        request: Request<api::RuntimeConfigRequest>,
    ) -> Result<Response<api::RuntimeConfigResponse>, Status> {
        handle(
            "RuntimeConfig",
            info_span!("RuntimeConfig"),
            request.metadata(),
            async { self.runtime.runtime_config().await },
        )
        .await
    }

    async fn update_runtime_config(
        &self,
        request: Request<api::UpdateRuntimeConfigRequest>,
    ) -> Result<Response<api::UpdateRuntimeConfigResponse>, Status> {
        let pod_cidr = request
            .get_ref()
            .runtime_config
            .as_ref()
            .and_then(|c| c.network_config.as_ref())
            .map(|n| n.pod_cidr.clone())
            .unwrap_or_default();
        let span = info_span!("UpdateRuntimeConfig", pod_cidr = %pod_cidr);
        handle("UpdateRuntimeConfig", span, request.metadata(), async {
            self.runtime.update_runtime_config(&pod_cidr).await?;
            Ok(api::UpdateRuntimeConfigResponse {})
        })
        .await
    }

    async fn run_pod_sandbox(
        &self,
        request: Request<api::RunPodSandboxRequest>,
    ) -> Result<Response<api::RunPodSandboxResponse>, Status> {
        let req = request.get_ref();
        let meta = req.config.as_ref().and_then(|c| c.metadata.as_ref());
        let span = info_span!(
            "RunPodSandbox",
            pod = meta.map_or("", |m| m.name.as_str()),
            namespace = meta.map_or("", |m| m.namespace.as_str()),
            uid = meta.map_or("", |m| m.uid.as_str()),
            attempt = meta.map_or(0, |m| m.attempt),
            handler = req.runtime_handler.as_str(),
        );
        tracing::trace!(parent: &span, request = ?req, "request");
        handle("RunPodSandbox", span, request.metadata(), async {
            let config = required(&req.config, "config")?.clone();
            let (runtime, handler) = (self.runtime.clone(), req.runtime_handler.clone());
            let work = async move { runtime.run_pod_sandbox(&config, &handler).await };
            let pod_sandbox_id = detached(self.runtime.detached_work(), work).await?;
            Ok(api::RunPodSandboxResponse { pod_sandbox_id })
        })
        .await
    }

    async fn stop_pod_sandbox(
        &self,
        request: Request<api::StopPodSandboxRequest>,
    ) -> Result<Response<api::StopPodSandboxResponse>, Status> {
        let id = request.get_ref().pod_sandbox_id.clone();
        let span = info_span!("StopPodSandbox", sandbox = %id);
        handle("StopPodSandbox", span, request.metadata(), async {
            self.runtime.stop_pod_sandbox(&id).await?;
            Ok(api::StopPodSandboxResponse {})
        })
        .await
    }

    async fn remove_pod_sandbox(
        &self,
        request: Request<api::RemovePodSandboxRequest>,
    ) -> Result<Response<api::RemovePodSandboxResponse>, Status> {
        let id = request.get_ref().pod_sandbox_id.clone();
        let span = info_span!("RemovePodSandbox", sandbox = %id);
        handle("RemovePodSandbox", span, request.metadata(), async {
            self.runtime.remove_pod_sandbox(&id).await?;
            Ok(api::RemovePodSandboxResponse {})
        })
        .await
    }

    async fn pod_sandbox_status(
        &self,
        request: Request<api::PodSandboxStatusRequest>,
    ) -> Result<Response<api::PodSandboxStatusResponse>, Status> {
        let req = request.get_ref();
        let span = info_span!("PodSandboxStatus", sandbox = %req.pod_sandbox_id);
        handle("PodSandboxStatus", span, request.metadata(), async {
            let (status, info) = self
                .runtime
                .pod_sandbox_status(&req.pod_sandbox_id, req.verbose)
                .await?;
            Ok(api::PodSandboxStatusResponse {
                status: Some(status),
                info,
                containers_statuses: Vec::new(),
                timestamp: 0,
            })
        })
        .await
    }

    async fn list_pod_sandbox(
        &self,
        request: Request<api::ListPodSandboxRequest>,
    ) -> Result<Response<api::ListPodSandboxResponse>, Status> {
        let filter = request.get_ref().filter.clone();
        handle(
            "ListPodSandbox",
            info_span!("ListPodSandbox"),
            request.metadata(),
            async {
                let items = self.runtime.list_pod_sandbox(filter.as_ref()).await?;
                Ok(api::ListPodSandboxResponse { items })
            },
        )
        .await
    }

    type StreamPodSandboxesStream = BoxStream<api::StreamPodSandboxesResponse>;

    async fn stream_pod_sandboxes(
        &self,
        request: Request<api::StreamPodSandboxesRequest>,
    ) -> Result<Response<Self::StreamPodSandboxesStream>, Status> {
        list_streams::pod_sandboxes(&self.runtime, request).await
    }

    async fn create_container(
        &self,
        request: Request<api::CreateContainerRequest>,
    ) -> Result<Response<api::CreateContainerResponse>, Status> {
        let req = request.get_ref();
        let meta = req.config.as_ref().and_then(|c| c.metadata.as_ref());
        let span = info_span!(
            "CreateContainer",
            sandbox = %req.pod_sandbox_id,
            container = meta.map_or("", |m| m.name.as_str()),
            attempt = meta.map_or(0, |m| m.attempt),
        );
        // Full requests hold env values: trace level only.
        tracing::trace!(parent: &span, request = ?req, "request");
        handle("CreateContainer", span, request.metadata(), async {
            let config = required(&req.config, "config")?.clone();
            let runtime = self.runtime.clone();
            let (sandbox_id, sandbox_config) =
                (req.pod_sandbox_id.clone(), req.sandbox_config.clone());
            let container_id = detached(self.runtime.detached_work(), async move {
                runtime
                    .create_container(&sandbox_id, &config, sandbox_config.as_ref())
                    .await
            })
            .await?;
            Ok(api::CreateContainerResponse { container_id })
        })
        .await
    }

    async fn start_container(
        &self,
        request: Request<api::StartContainerRequest>,
    ) -> Result<Response<api::StartContainerResponse>, Status> {
        let id = request.get_ref().container_id.clone();
        let span = info_span!("StartContainer", container = %id);
        handle("StartContainer", span, request.metadata(), async {
            self.runtime.start_container(&id).await?;
            Ok(api::StartContainerResponse {})
        })
        .await
    }

    async fn stop_container(
        &self,
        request: Request<api::StopContainerRequest>,
    ) -> Result<Response<api::StopContainerResponse>, Status> {
        let req = request.get_ref();
        let span =
            info_span!("StopContainer", container = %req.container_id, timeout = req.timeout);
        handle("StopContainer", span, request.metadata(), async {
            self.runtime
                .stop_container(&req.container_id, req.timeout)
                .await?;
            Ok(api::StopContainerResponse {})
        })
        .await
    }

    async fn remove_container(
        &self,
        request: Request<api::RemoveContainerRequest>,
    ) -> Result<Response<api::RemoveContainerResponse>, Status> {
        let id = request.get_ref().container_id.clone();
        let span = info_span!("RemoveContainer", container = %id);
        handle("RemoveContainer", span, request.metadata(), async {
            self.runtime.remove_container(&id).await?;
            Ok(api::RemoveContainerResponse {})
        })
        .await
    }

    async fn list_containers(
        &self,
        request: Request<api::ListContainersRequest>,
    ) -> Result<Response<api::ListContainersResponse>, Status> {
        let filter = request.get_ref().filter.clone();
        handle(
            "ListContainers",
            info_span!("ListContainers"),
            request.metadata(),
            async {
                let containers = self.runtime.list_containers(filter.as_ref()).await?;
                Ok(api::ListContainersResponse { containers })
            },
        )
        .await
    }

    type StreamContainersStream = BoxStream<api::StreamContainersResponse>;

    async fn stream_containers(
        &self,
        request: Request<api::StreamContainersRequest>,
    ) -> Result<Response<Self::StreamContainersStream>, Status> {
        list_streams::containers(&self.runtime, request).await
    }

    async fn container_status(
        &self,
        request: Request<api::ContainerStatusRequest>,
    ) -> Result<Response<api::ContainerStatusResponse>, Status> {
        let req = request.get_ref();
        let span = info_span!("ContainerStatus", container = %req.container_id);
        handle("ContainerStatus", span, request.metadata(), async {
            let (status, info) = self
                .runtime
                .container_status(&req.container_id, req.verbose)
                .await?;
            Ok(api::ContainerStatusResponse {
                status: Some(status),
                info,
            })
        })
        .await
    }

    async fn update_container_resources(
        &self,
        request: Request<api::UpdateContainerResourcesRequest>,
    ) -> Result<Response<api::UpdateContainerResourcesResponse>, Status> {
        let req = request.get_ref();
        let span = info_span!("UpdateContainerResources", container = %req.container_id);
        handle(
            "UpdateContainerResources",
            span,
            request.metadata(),
            async {
                self.runtime
                    .update_container_resources(&req.container_id, req.linux.as_ref())
                    .await?;
                Ok(api::UpdateContainerResourcesResponse {})
            },
        )
        .await
    }

    async fn reopen_container_log(
        &self,
        request: Request<api::ReopenContainerLogRequest>,
    ) -> Result<Response<api::ReopenContainerLogResponse>, Status> {
        let id = request.get_ref().container_id.clone();
        let span = info_span!("ReopenContainerLog", container = %id);
        handle("ReopenContainerLog", span, request.metadata(), async {
            self.runtime.reopen_container_log(&id).await?;
            Ok(api::ReopenContainerLogResponse {})
        })
        .await
    }

    async fn exec_sync(
        &self,
        request: Request<api::ExecSyncRequest>,
    ) -> Result<Response<api::ExecSyncResponse>, Status> {
        super::streaming_rpcs::exec_sync(&self.runtime, request).await
    }

    async fn exec(
        &self,
        request: Request<api::ExecRequest>,
    ) -> Result<Response<api::ExecResponse>, Status> {
        super::streaming_rpcs::exec(&self.runtime, request).await
    }

    async fn attach(
        &self,
        request: Request<api::AttachRequest>,
    ) -> Result<Response<api::AttachResponse>, Status> {
        super::streaming_rpcs::attach(&self.runtime, request).await
    }

    async fn port_forward(
        &self,
        request: Request<api::PortForwardRequest>,
    ) -> Result<Response<api::PortForwardResponse>, Status> {
        super::streaming_rpcs::port_forward(&self.runtime, request).await
    }

    async fn container_stats(
        &self,
        request: Request<api::ContainerStatsRequest>,
    ) -> Result<Response<api::ContainerStatsResponse>, Status> {
        let id = request.get_ref().container_id.clone();
        let span = info_span!("ContainerStats", container = %id);
        handle("ContainerStats", span, request.metadata(), async {
            let stats = self.runtime.stats().container_stats(&id).await?;
            Ok(api::ContainerStatsResponse { stats: Some(stats) })
        })
        .await
    }

    async fn list_container_stats(
        &self,
        request: Request<api::ListContainerStatsRequest>,
    ) -> Result<Response<api::ListContainerStatsResponse>, Status> {
        let filter = request.get_ref().filter.clone();
        let span = info_span!("ListContainerStats");
        handle("ListContainerStats", span, request.metadata(), async {
            let stats = self
                .runtime
                .stats()
                .list_container_stats(filter.as_ref())
                .await?;
            Ok(api::ListContainerStatsResponse { stats })
        })
        .await
    }

    type StreamContainerStatsStream = BoxStream<api::StreamContainerStatsResponse>;

    async fn stream_container_stats(
        &self,
        request: Request<api::StreamContainerStatsRequest>,
    ) -> Result<Response<Self::StreamContainerStatsStream>, Status> {
        list_streams::container_stats(&self.runtime, request).await
    }

    async fn pod_sandbox_stats(
        &self,
        request: Request<api::PodSandboxStatsRequest>,
    ) -> Result<Response<api::PodSandboxStatsResponse>, Status> {
        let id = request.get_ref().pod_sandbox_id.clone();
        let span = info_span!("PodSandboxStats", sandbox = %id);
        handle("PodSandboxStats", span, request.metadata(), async {
            let stats = self.runtime.stats().pod_sandbox_stats(&id).await?;
            Ok(api::PodSandboxStatsResponse { stats: Some(stats) })
        })
        .await
    }

    async fn list_pod_sandbox_stats(
        &self,
        request: Request<api::ListPodSandboxStatsRequest>,
    ) -> Result<Response<api::ListPodSandboxStatsResponse>, Status> {
        let filter = request.get_ref().filter.clone();
        let span = info_span!("ListPodSandboxStats");
        handle("ListPodSandboxStats", span, request.metadata(), async {
            let stats = self
                .runtime
                .stats()
                .list_pod_sandbox_stats(filter.as_ref())
                .await?;
            Ok(api::ListPodSandboxStatsResponse { stats })
        })
        .await
    }

    type StreamPodSandboxStatsStream = BoxStream<api::StreamPodSandboxStatsResponse>;

    async fn stream_pod_sandbox_stats(
        &self,
        request: Request<api::StreamPodSandboxStatsRequest>,
    ) -> Result<Response<Self::StreamPodSandboxStatsStream>, Status> {
        list_streams::pod_sandbox_stats(&self.runtime, request).await
    }

    async fn checkpoint_container(
        &self,
        request: Request<api::CheckpointContainerRequest>,
    ) -> Result<Response<api::CheckpointContainerResponse>, Status> {
        pod_rpcs::checkpoint_container(&self.runtime, request).await
    }

    async fn checkpoint_pod(
        &self,
        request: Request<api::CheckpointPodRequest>,
    ) -> Result<Response<api::CheckpointPodResponse>, Status> {
        pod_rpcs::checkpoint_pod(&self.runtime, request).await
    }

    async fn restore_pod(
        &self,
        request: Request<api::RestorePodRequest>,
    ) -> Result<Response<api::RestorePodResponse>, Status> {
        pod_rpcs::restore_pod(&self.runtime, request).await
    }

    type GetContainerEventsStream = BoxStream<api::ContainerEventResponse>;

    async fn get_container_events(
        &self,
        _request: Request<api::GetEventsRequest>,
    ) -> Result<Response<Self::GetContainerEventsStream>, Status> {
        tracing::debug!("GetContainerEvents subscriber");
        let events = self
            .runtime
            .container_events()
            .map(|item| item.map_err(super::status::to_status));
        Ok(Response::new(Box::pin(events)))
    }

    async fn list_metric_descriptors(
        &self,
        request: Request<api::ListMetricDescriptorsRequest>,
    ) -> Result<Response<api::ListMetricDescriptorsResponse>, Status> {
        let span = info_span!("ListMetricDescriptors");
        handle("ListMetricDescriptors", span, request.metadata(), async {
            Ok(api::ListMetricDescriptorsResponse {
                descriptors: self.runtime.stats().metric_descriptors(),
            })
        })
        .await
    }

    async fn list_pod_sandbox_metrics(
        &self,
        request: Request<api::ListPodSandboxMetricsRequest>,
    ) -> Result<Response<api::ListPodSandboxMetricsResponse>, Status> {
        let span = info_span!("ListPodSandboxMetrics");
        handle("ListPodSandboxMetrics", span, request.metadata(), async {
            let pod_metrics = self.runtime.stats().pod_sandbox_metrics().await?;
            Ok(api::ListPodSandboxMetricsResponse { pod_metrics })
        })
        .await
    }

    type StreamPodSandboxMetricsStream = BoxStream<api::StreamPodSandboxMetricsResponse>;

    async fn stream_pod_sandbox_metrics(
        &self,
        request: Request<api::StreamPodSandboxMetricsRequest>,
    ) -> Result<Response<Self::StreamPodSandboxMetricsStream>, Status> {
        list_streams::pod_sandbox_metrics(&self.runtime, request).await
    }

    async fn update_pod_sandbox_resources(
        &self,
        request: Request<api::UpdatePodSandboxResourcesRequest>,
    ) -> Result<Response<api::UpdatePodSandboxResourcesResponse>, Status> {
        pod_rpcs::update_pod_sandbox_resources(&self.runtime, request).await
    }
}
