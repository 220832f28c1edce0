//! The Stream* list RPCs through the real binary: the same objects as the
//! List answers with the same filters, cut into several messages under a
//! lowered message bound.

mod common;

use std::collections::{BTreeSet, HashMap};

use common::pod::Pod;
use common::{Server, TestImage, unique};
use docker_cri::api;
use prost::Message;

/// Small enough that a few pods already need several messages.
const BOUND: usize = 1024;

/// Every message of a server stream, checked against the bound: only an
/// object larger than the bound by itself may make a larger message, alone.
async fn messages<M: Message + Items>(mut stream: tonic::Streaming<M>) -> Vec<M> {
    let mut out = Vec::new();
    while let Some(m) = stream.message().await.expect("stream message") {
        assert!(
            m.encoded_len() <= BOUND || m.items() == 1,
            "a message of {} bytes with {} objects",
            m.encoded_len(),
            m.items()
        );
        assert!(m.items() > 0, "an empty message");
        out.push(m);
    }
    out
}

trait Items {
    fn items(&self) -> usize;
}

macro_rules! items {
    ($($t:ty => $field:ident),* $(,)?) => {
        $(impl Items for $t {
            fn items(&self) -> usize {
                self.$field.len()
            }
        })*
    };
}

items!(
    api::StreamPodSandboxesResponse => pod_sandboxes,
    api::StreamContainersResponse => containers,
    api::StreamContainerStatsResponse => container_stats,
    api::StreamPodSandboxStatsResponse => pod_sandbox_stats,
    api::StreamPodSandboxMetricsResponse => pod_sandbox_metrics,
    api::StreamImagesResponse => images,
);

fn selector(run: &str) -> HashMap<String, String> {
    HashMap::from([("docker-cri-test-run".to_string(), run.to_string())])
}

/// Makes each object a few hundred bytes, so that a handful of them is
/// more than one message's worth.
fn padding() -> HashMap<String, String> {
    HashMap::from([("docker-cri-test/padding".to_string(), "x".repeat(300))])
}

fn sorted<T: Clone>(items: &[T], key: impl Fn(&T) -> String) -> Vec<T> {
    let mut v = items.to_vec();
    v.sort_by_key(|i| key(i));
    v
}

#[tokio::test]
async fn stream_lists_match_list_answers_in_several_bounded_messages() {
    let bound = BOUND.to_string();
    let server = Server::start(&["--list-stream-message-bytes", &bound]).await;
    let mut rt = server.runtime().await;
    let run = unique("streams");
    let mut pods = Vec::new();
    let mut containers = Vec::new();
    for _ in 0..4 {
        let image = TestImage::busybox(None).await;
        let mut pod = Pod::with_sandbox_config(&server, image, "", |c| {
            c.labels = selector(&run);
            c.annotations = padding();
        })
        .await;
        for name in ["a", "b"] {
            let mut config = pod.ctr(name, "sleep 600");
            config.labels = selector(&run);
            config.annotations = padding();
            let id = pod.create(&config).await.unwrap();
            pod.start(&id).await.unwrap();
            containers.push(id);
        }
        pods.push(pod);
    }

    // Sandboxes.
    let filter = api::PodSandboxFilter {
        label_selector: selector(&run),
        ..Default::default()
    };
    let listed = rt
        .list_pod_sandbox(api::ListPodSandboxRequest {
            filter: Some(filter.clone()),
        })
        .await
        .unwrap()
        .into_inner()
        .items;
    let streamed = messages(
        rt.stream_pod_sandboxes(api::StreamPodSandboxesRequest {
            filter: Some(filter),
        })
        .await
        .unwrap()
        .into_inner(),
    )
    .await;
    assert!(streamed.len() >= 2, "{} messages", streamed.len());
    let joined: Vec<_> = streamed.into_iter().flat_map(|m| m.pod_sandboxes).collect();
    assert_eq!(listed.len(), 4);
    assert_eq!(
        sorted(&joined, |p| p.id.clone()),
        sorted(&listed, |p| p.id.clone())
    );

    // Containers, and the pod_sandbox_id filter.
    let filter = api::ContainerFilter {
        label_selector: selector(&run),
        ..Default::default()
    };
    let listed = rt
        .list_containers(api::ListContainersRequest {
            filter: Some(filter.clone()),
        })
        .await
        .unwrap()
        .into_inner()
        .containers;
    let streamed = messages(
        rt.stream_containers(api::StreamContainersRequest {
            filter: Some(filter),
        })
        .await
        .unwrap()
        .into_inner(),
    )
    .await;
    assert!(streamed.len() >= 2, "{} messages", streamed.len());
    let joined: Vec<_> = streamed.into_iter().flat_map(|m| m.containers).collect();
    assert_eq!(listed.len(), 8);
    assert_eq!(
        sorted(&joined, |c| c.id.clone()),
        sorted(&listed, |c| c.id.clone())
    );
    let one_pod = messages(
        rt.stream_containers(api::StreamContainersRequest {
            filter: Some(api::ContainerFilter {
                pod_sandbox_id: pods[0].id.clone(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner(),
    )
    .await;
    let ids: BTreeSet<_> = one_pod
        .iter()
        .flat_map(|m| &m.containers)
        .map(|c| c.id.clone())
        .collect();
    assert_eq!(ids, containers[..2].iter().cloned().collect());

    // Container stats: figures move between calls, so the same containers
    // with the same attributes.
    let filter = api::ContainerStatsFilter {
        label_selector: selector(&run),
        ..Default::default()
    };
    let listed = rt
        .list_container_stats(api::ListContainerStatsRequest {
            filter: Some(filter.clone()),
        })
        .await
        .unwrap()
        .into_inner()
        .stats;
    let streamed = messages(
        rt.stream_container_stats(api::StreamContainerStatsRequest {
            filter: Some(filter),
        })
        .await
        .unwrap()
        .into_inner(),
    )
    .await;
    assert!(streamed.len() >= 2, "{} messages", streamed.len());
    let attrs = |s: &[api::ContainerStats]| {
        sorted(
            &s.iter().map(|s| s.attributes.clone()).collect::<Vec<_>>(),
            |a| a.as_ref().map_or(String::new(), |a| a.id.clone()),
        )
    };
    let joined: Vec<_> = streamed
        .into_iter()
        .flat_map(|m| m.container_stats)
        .collect();
    assert_eq!(listed.len(), 8);
    assert_eq!(attrs(&joined), attrs(&listed));

    // Pod stats.
    let filter = api::PodSandboxStatsFilter {
        label_selector: selector(&run),
        ..Default::default()
    };
    let listed = rt
        .list_pod_sandbox_stats(api::ListPodSandboxStatsRequest {
            filter: Some(filter.clone()),
        })
        .await
        .unwrap()
        .into_inner()
        .stats;
    let streamed = messages(
        rt.stream_pod_sandbox_stats(api::StreamPodSandboxStatsRequest {
            filter: Some(filter),
        })
        .await
        .unwrap()
        .into_inner(),
    )
    .await;
    assert!(streamed.len() >= 2, "{} messages", streamed.len());
    let pod_ids = |s: &[api::PodSandboxStats]| -> BTreeSet<String> {
        s.iter()
            .filter_map(|s| s.attributes.as_ref().map(|a| a.id.clone()))
            .collect()
    };
    let joined: Vec<_> = streamed
        .into_iter()
        .flat_map(|m| m.pod_sandbox_stats)
        .collect();
    assert_eq!(joined.len(), 4);
    assert_eq!(pod_ids(&joined), pod_ids(&listed));

    // Pod metrics have no filter: ours are among them, each once.
    let listed: BTreeSet<_> = rt
        .list_pod_sandbox_metrics(api::ListPodSandboxMetricsRequest {})
        .await
        .unwrap()
        .into_inner()
        .pod_metrics
        .into_iter()
        .map(|m| m.pod_sandbox_id)
        .collect();
    let streamed = messages(
        rt.stream_pod_sandbox_metrics(api::StreamPodSandboxMetricsRequest {})
            .await
            .unwrap()
            .into_inner(),
    )
    .await;
    assert!(streamed.len() >= 2, "{} messages", streamed.len());
    let joined: Vec<_> = streamed
        .into_iter()
        .flat_map(|m| m.pod_sandbox_metrics)
        .map(|m| m.pod_sandbox_id)
        .collect();
    let unique_ids: BTreeSet<_> = joined.iter().cloned().collect();
    assert_eq!(unique_ids.len(), joined.len(), "a pod twice");
    for pod in &pods {
        assert!(unique_ids.contains(&pod.id), "{} missing", pod.id);
        assert!(listed.contains(&pod.id));
    }

    // An ID filter naming nothing: a stream with no messages.
    let none = messages(
        rt.stream_pod_sandboxes(api::StreamPodSandboxesRequest {
            filter: Some(api::PodSandboxFilter {
                id: "0".repeat(64),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner(),
    )
    .await;
    assert!(none.is_empty());
}

#[tokio::test]
async fn stream_images_matches_list_images() {
    let bound = BOUND.to_string();
    let server = Server::start(&["--list-stream-message-bytes", &bound]).await;
    let mut images = server.images().await;
    let image = TestImage::busybox(None).await;
    // Other tests pull and remove images meanwhile: the images this test
    // holds are in both answers, and the whole list spans several messages.
    let listed = images
        .list_images(api::ListImagesRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .images;
    let streamed = messages(
        images
            .stream_images(api::StreamImagesRequest { filter: None })
            .await
            .unwrap()
            .into_inner(),
    )
    .await;
    assert!(streamed.len() >= 2, "{} messages", streamed.len());
    let joined: Vec<_> = streamed.into_iter().flat_map(|m| m.images).collect();
    assert!(joined.iter().any(|i| i.id == image.id), "streamed");
    assert!(listed.iter().any(|i| i.id == image.id), "listed");

    // A name filter: exactly the List answer.
    let filter = api::ImageFilter {
        image: common::image_spec(&image.name),
    };
    let listed = images
        .list_images(api::ListImagesRequest {
            filter: Some(filter.clone()),
        })
        .await
        .unwrap()
        .into_inner()
        .images;
    let streamed = messages(
        images
            .stream_images(api::StreamImagesRequest {
                filter: Some(filter),
            })
            .await
            .unwrap()
            .into_inner(),
    )
    .await;
    assert_eq!(streamed.len(), 1);
    assert_eq!(streamed[0].images, listed);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, image.id);

    // A filter naming a missing image: no messages, as List answers none.
    let missing = messages(
        images
            .stream_images(api::StreamImagesRequest {
                filter: Some(api::ImageFilter {
                    image: common::image_spec(&format!("{}:absent", unique("no-such-image"))),
                }),
            })
            .await
            .unwrap()
            .into_inner(),
    )
    .await;
    assert!(missing.is_empty());
}
