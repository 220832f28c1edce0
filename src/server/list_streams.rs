//! The Stream* list RPCs (`StreamPodSandboxes`, `StreamContainers`,
//! `StreamImages`, `StreamContainerStats`, `StreamPodSandboxStats`,
//! `StreamPodSandboxMetrics`): the answer of the List counterpart, with the
//! same filter, cut into messages each bounded in encoded size, so that a
//! node with thousands of objects never meets gRPC's 16 MiB message limit.
//!
//! The whole list is gathered before the first message goes out: a failure
//! is the call's status rather than a stream cut short, and the messages
//! together are one consistent snapshot, like the List answer. An empty
//! list is a stream with no messages.

use std::pin::Pin;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tracing::info_span;

use super::rpc::handle;
use crate::api;
use crate::runtime::Runtime;

pub type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// What one item costs inside its message: the field key (field 1, one
/// byte), the length prefix, then the item.
fn framed_len<T: prost::Message>(item: &T) -> usize {
    let len = item.encoded_len();
    1 + prost::length_delimiter_len(len) + len
}

/// Cuts `items` into runs whose framed size stays within `max_bytes`, in
/// order. An item larger than the bound on its own cannot be split and goes
/// out alone (the bound is a quarter of gRPC's limit, so it still fits).
pub fn chunk<T: prost::Message>(items: Vec<T>, max_bytes: usize) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut size = 0usize;
    for item in items {
        let cost = framed_len(&item);
        if !current.is_empty() && size + cost > max_bytes {
            out.push(std::mem::take(&mut current));
            size = 0;
        }
        if cost > max_bytes {
            tracing::warn!(
                bytes = cost,
                bound = max_bytes,
                "one object is larger than the stream message bound; sent alone"
            );
        }
        size += cost;
        current.push(item);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn into_stream<T, M>(items: Vec<T>, max_bytes: usize, wrap: fn(Vec<T>) -> M) -> BoxStream<M>
where
    T: prost::Message + Send + 'static,
    M: Send + 'static,
{
    let messages: Vec<Result<M, Status>> = chunk(items, max_bytes)
        .into_iter()
        .map(|run| Ok(wrap(run)))
        .collect();
    Box::pin(tokio_stream::iter(messages))
}

fn bound(runtime: &Runtime) -> usize {
    runtime.config().list_stream_message_bytes
}

pub async fn pod_sandboxes(
    runtime: &Runtime,
    request: Request<api::StreamPodSandboxesRequest>,
) -> Result<Response<BoxStream<api::StreamPodSandboxesResponse>>, Status> {
    let (metadata, _, req) = request.into_parts();
    let span = info_span!("StreamPodSandboxes");
    handle("StreamPodSandboxes", span, &metadata, async {
        let items = runtime.list_pod_sandbox(req.filter.as_ref()).await?;
        Ok(into_stream(items, bound(runtime), |pod_sandboxes| {
            api::StreamPodSandboxesResponse { pod_sandboxes }
        }))
    })
    .await
}

pub async fn containers(
    runtime: &Runtime,
    request: Request<api::StreamContainersRequest>,
) -> Result<Response<BoxStream<api::StreamContainersResponse>>, Status> {
    let (metadata, _, req) = request.into_parts();
    let span = info_span!("StreamContainers");
    handle("StreamContainers", span, &metadata, async {
        let items = runtime.list_containers(req.filter.as_ref()).await?;
        Ok(into_stream(items, bound(runtime), |containers| {
            api::StreamContainersResponse { containers }
        }))
    })
    .await
}

pub async fn images(
    runtime: &Runtime,
    request: Request<api::StreamImagesRequest>,
) -> Result<Response<BoxStream<api::StreamImagesResponse>>, Status> {
    let (metadata, _, req) = request.into_parts();
    // The same filter reading as ListImages: only the image name counts.
    let filter = req
        .filter
        .and_then(|f| f.image)
        .map(|s| s.image)
        .filter(|s| !s.is_empty());
    let span = info_span!("StreamImages", filter = filter.as_deref().unwrap_or(""));
    handle("StreamImages", span, &metadata, async {
        let items = runtime.list_images(filter.as_deref()).await?;
        Ok(into_stream(items, bound(runtime), |images| {
            api::StreamImagesResponse { images }
        }))
    })
    .await
}

pub async fn container_stats(
    runtime: &Runtime,
    request: Request<api::StreamContainerStatsRequest>,
) -> Result<Response<BoxStream<api::StreamContainerStatsResponse>>, Status> {
    let (metadata, _, req) = request.into_parts();
    let span = info_span!("StreamContainerStats");
    handle("StreamContainerStats", span, &metadata, async {
        let items = runtime
            .stats()
            .list_container_stats(req.filter.as_ref())
            .await?;
        Ok(into_stream(items, bound(runtime), |container_stats| {
            api::StreamContainerStatsResponse { container_stats }
        }))
    })
    .await
}

pub async fn pod_sandbox_stats(
    runtime: &Runtime,
    request: Request<api::StreamPodSandboxStatsRequest>,
) -> Result<Response<BoxStream<api::StreamPodSandboxStatsResponse>>, Status> {
    let (metadata, _, req) = request.into_parts();
    let span = info_span!("StreamPodSandboxStats");
    handle("StreamPodSandboxStats", span, &metadata, async {
        let items = runtime
            .stats()
            .list_pod_sandbox_stats(req.filter.as_ref())
            .await?;
        Ok(into_stream(items, bound(runtime), |pod_sandbox_stats| {
            api::StreamPodSandboxStatsResponse { pod_sandbox_stats }
        }))
    })
    .await
}

pub async fn pod_sandbox_metrics(
    runtime: &Runtime,
    request: Request<api::StreamPodSandboxMetricsRequest>,
) -> Result<Response<BoxStream<api::StreamPodSandboxMetricsResponse>>, Status> {
    let (metadata, _, _) = request.into_parts();
    let span = info_span!("StreamPodSandboxMetrics");
    handle("StreamPodSandboxMetrics", span, &metadata, async {
        let items = runtime.stats().pod_sandbox_metrics().await?;
        Ok(into_stream(items, bound(runtime), |pod_sandbox_metrics| {
            api::StreamPodSandboxMetricsResponse {
                pod_sandbox_metrics,
            }
        }))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn image(id: &str, tags: usize) -> api::Image {
        api::Image {
            id: id.to_string(),
            repo_tags: (0..tags).map(|i| format!("registry/{id}:{i}")).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn empty_list_is_no_messages() {
        assert!(chunk(Vec::<api::Image>::new(), 1024).is_empty());
    }

    #[test]
    fn everything_fits_in_one_message() {
        let items: Vec<_> = (0..10).map(|i| image(&format!("sha256:{i}"), 1)).collect();
        let runs = chunk(items.clone(), 4 << 20);
        assert_eq!(runs, vec![items]);
    }

    #[test]
    fn runs_stay_within_the_bound_keep_order_and_lose_nothing() {
        let items: Vec<_> = (0..200)
            .map(|i| image(&format!("sha256:{i:064}"), i % 7))
            .collect();
        let bound = 1024;
        let runs = chunk(items.clone(), bound);
        assert!(runs.len() > 10, "{} runs", runs.len());
        for run in &runs {
            assert!(!run.is_empty());
            let encoded = api::StreamImagesResponse {
                images: run.clone(),
            }
            .encoded_len();
            assert!(encoded <= bound, "a message of {encoded} bytes");
        }
        // Each message is as full as it can be: the next item did not fit.
        for pair in runs.windows(2) {
            let mut with_next = pair[0].clone();
            with_next.push(pair[1][0].clone());
            let encoded = api::StreamImagesResponse { images: with_next }.encoded_len();
            assert!(encoded > bound);
        }
        let joined: Vec<_> = runs.into_iter().flatten().collect();
        assert_eq!(joined, items);
    }

    #[test]
    fn an_item_over_the_bound_goes_alone() {
        let small = image("sha256:small", 0);
        let huge = image("sha256:huge", 100);
        assert!(huge.encoded_len() > 1024);
        let runs = chunk(vec![small.clone(), huge.clone(), small.clone()], 1024);
        assert_eq!(runs, vec![vec![small.clone()], vec![huge], vec![small]]);
    }
}
