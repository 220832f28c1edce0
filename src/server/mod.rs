//! The gRPC server: tonic adapters for RuntimeService and ImageService on a
//! UNIX socket, with graceful shutdown. Adapters only unpack requests, call
//! the runtime and pack responses.

mod authority;
mod image_service;
mod list_streams;
mod metrics_layer;
mod pod_rpcs;
pub mod rpc;
mod runtime_service;
pub mod socket;
pub mod status;
mod streaming_rpcs;
pub mod systemd;

use std::future::Future;
use std::sync::Arc;

use tokio_stream::wrappers::UnixListenerStream;
use tonic::codegen::http;
use tonic::transport::Server;

use crate::api::image_service_server::ImageServiceServer;
use crate::api::runtime_service_server::RuntimeServiceServer;
use crate::config::{Config, Listen};
use crate::error::{Error, Result};
use crate::runtime::Runtime;

pub use image_service::ImageServiceImpl;
pub use runtime_service::RuntimeServiceImpl;

/// kubelet's CRI client allows 16 MiB messages each way; so do we.
pub const MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// Serves CRI on the configured socket until `shutdown` resolves, then lets
/// in-flight calls, and detached work whose caller already left (a
/// RunPodSandbox past its deadline), finish for up to the grace period and
/// removes the socket.
pub async fn serve(config: Config, shutdown: impl Future<Output = ()>) -> Result<()> {
    let config = Arc::new(config);
    // State first (checkpoints loaded, corrupt ones set aside), then the
    // socket: a client that can connect sees docker-cri's state whole.
    let runtime = Arc::new(Runtime::new(config.clone())?);
    let listener = match &config.listen {
        Listen::Unix(path) => socket::bind(path, config.socket_group.as_deref())?,
        Listen::Systemd { name } => {
            let std_listener = systemd::take_listener(name.as_deref())?;
            tokio::net::UnixListener::from_std(std_listener)
                .map_err(|e| Error::internal(format!("systemd socket: {e}")))?
        }
    };
    let (streaming, streaming_server) = crate::streaming::bind(
        config.streaming_bind_addr,
        runtime.docker_handle(),
        config.streaming_connection_idle_timeout,
    )
    .await?;
    tracing::info!(url = streaming.base_url(), "streaming server listening");
    runtime.set_streaming(streaming);
    // Sessions in flight end with the process; the listener with serve().
    let streaming_task = tokio::spawn(streaming_server.run());
    // Lists and statuses come from memory once this has caught up.
    tokio::spawn(runtime.index().clone().run());
    tokio::spawn({
        let runtime = runtime.clone();
        async move { runtime.wake_log_followers_on_stop().await }
    });
    // Containers that kept running (or exited) while docker-cri was down.
    tokio::spawn({
        let runtime = runtime.clone();
        async move { runtime.resume_container_logs().await }
    });
    // Image volume export containers a killed run left behind.
    tokio::spawn({
        let runtime = runtime.clone();
        async move { runtime.sweep_image_volume_exports().await }
    });
    // CNI: GC and CHECK of what an earlier run left, then periodic GC.
    tokio::spawn({
        let runtime = runtime.clone();
        async move { runtime.cni_maintenance().await }
    });
    let runtime_service = RuntimeServiceServer::new(RuntimeServiceImpl::new(runtime.clone()))
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);
    let image_service = ImageServiceServer::new(ImageServiceImpl::new(runtime.clone()))
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    if let Some(addr) = config.metrics_bind_addr {
        let bound = crate::metrics::server::spawn(addr, runtime.metrics().clone()).await?;
        tracing::info!(%bound, "serving Prometheus metrics at /metrics");
    }
    let server = Server::builder()
        .layer(tower::util::MapResponseLayer::new(size_limit_status))
        .layer(metrics_layer::RecordLayer::new(runtime.metrics().clone()))
        .add_service(runtime_service)
        .add_service(image_service)
        .serve_with_incoming_shutdown(authority::wrap(UnixListenerStream::new(listener)), async {
            let _ = stop_rx.await;
        });
    let mut server = tokio::spawn(server);
    tracing::info!(
        endpoint = %config.listen,
        docker = %config.docker_socket.display(),
        version = env!("CARGO_PKG_VERSION"),
        "docker-cri serving"
    );
    systemd::notify("READY=1");
    systemd::spawn_watchdog();

    let outcome = tokio::select! {
        result = &mut server => Some(result),
        () = shutdown => None,
    };
    let result = match outcome {
        Some(done) => flatten(done),
        None => {
            tracing::info!(grace = ?config.shutdown_grace_period, "shutting down");
            systemd::notify("STOPPING=1");
            let deadline = tokio::time::Instant::now() + config.shutdown_grace_period;
            runtime.begin_shutdown();
            let _ = stop_tx.send(());
            let served = match tokio::time::timeout_at(deadline, &mut server).await {
                Ok(done) => flatten(done),
                Err(_) => {
                    tracing::warn!("in-flight calls did not finish within the grace period");
                    server.abort();
                    Ok(())
                }
            };
            // No call can start detached work any more; what runs may be
            // half-way through building a pod, and exiting now would leave
            // it so.
            let work = runtime.detached_work();
            if work.running() > 0 {
                tracing::info!(
                    running = work.running(),
                    "waiting for started sandbox/container work"
                );
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if !work.wait_idle(left).await {
                    tracing::warn!(
                        running = work.running(),
                        "started sandbox/container work did not finish within the grace period"
                    );
                }
            }
            served
        }
    };
    streaming_task.abort();
    // systemd's socket is systemd's to keep.
    if let Listen::Unix(path) = &config.listen {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// tonic reports an oversized request as OutOfRange; gRPC (and kubelet's
/// Go client) use ResourceExhausted for it. The decode error is a
/// trailers-only response, so the status sits in the headers.
fn size_limit_status<B>(mut response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers_mut();
    let out_of_range = headers
        .get("grpc-status")
        .is_some_and(|v| v.as_bytes() == b"11");
    let too_large = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .is_some_and(|m| {
            m.contains("message%20length%20too%20large") || m.contains("message length too large")
        });
    if out_of_range && too_large {
        headers.insert("grpc-status", http::HeaderValue::from_static("8"));
    }
    response
}

fn flatten(
    joined: std::result::Result<
        std::result::Result<(), tonic::transport::Error>,
        tokio::task::JoinError,
    >,
) -> Result<()> {
    match joined {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Error::internal(format!("gRPC server: {e}"))),
        Err(e) => Err(Error::internal(format!("gRPC server task: {e}"))),
    }
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is
/// called, not when the future is first polled: a SIGTERM that arrives while
/// the socket is being set up must stop the server gracefully, not kill it.
pub fn shutdown_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let handlers = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        let (Ok(mut term), Ok(mut int)) = handlers else {
            tracing::error!("cannot install signal handlers; stop with SIGKILL");
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    }
}
