//! Every one of the 43 CRI RPCs, called through the real binary: each works,
//! or answers the specific refusal the README's status table documents —
//! never a bare Unimplemented. The list of RPCs comes from the vendored
//! proto, so a new RPC fails this test until it is covered.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::pod::Pod;
use common::{Registry, Server, TestImage, image_spec};
use docker_cri::api;
use tonic::{Code, Status};

/// What an RPC answered: Ok, or the refusal.
type Outcome = Result<(), Status>;

/// Drains a server stream, so that a stream failing midway counts.
async fn drain<M>(
    answer: Result<tonic::Response<tonic::Streaming<M>>, Status>,
) -> Result<(), Status> {
    let mut stream = answer?.into_inner();
    while stream.message().await?.is_some() {}
    Ok(())
}

fn done<T>(answer: Result<tonic::Response<T>, Status>) -> Outcome {
    answer.map(|_| ())
}

/// The RPC names of both services, in the proto's order.
fn proto_rpcs() -> Vec<String> {
    include_str!("../proto/api.proto")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("rpc "))
        .filter_map(|l| l.split('(').next())
        .map(|n| n.trim().to_string())
        .collect()
}

/// The README's "## Status" section.
fn readme_status() -> &'static str {
    let readme = include_str!("../README.md");
    let start = readme
        .find("## Status")
        .expect("README has a Status section");
    let rest = &readme[start + 2..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

/// The refusals docker-cri documents: the code and a phrase of the reason.
/// Any other RPC must work. CheckpointContainer works where Docker can
/// checkpoint (experimental mode and CRIU), which the check allows.
fn documented_refusal(rpc: &str) -> Option<(Code, &'static str)> {
    match rpc {
        "CheckpointContainer" => Some((
            Code::FailedPrecondition,
            "CheckpointContainer needs Docker's checkpoint API, which requires experimental \
             features and CRIU: ",
        )),
        "CheckpointPod" => Some((Code::Unimplemented, "Docker has no pod-level checkpoint")),
        "RestorePod" => Some((
            Code::Unimplemented,
            "Docker restores a checkpoint only into the container it was taken from",
        )),
        _ => None,
    }
}

#[tokio::test]
async fn every_rpc_works_or_gives_its_documented_reason() {
    let server = Server::start(&[]).await;
    let mut rt = server.runtime().await;
    let mut images = server.images().await;
    let mut seen: BTreeMap<&'static str, Outcome> = BTreeMap::new();

    // Runtime information.
    seen.insert(
        "Version",
        done(rt.version(api::VersionRequest::default()).await),
    );
    seen.insert(
        "Status",
        done(rt.status(api::StatusRequest { verbose: true }).await),
    );
    seen.insert(
        "RuntimeConfig",
        done(rt.runtime_config(api::RuntimeConfigRequest {}).await),
    );
    seen.insert(
        "UpdateRuntimeConfig",
        done(
            rt.update_runtime_config(api::UpdateRuntimeConfigRequest::default())
                .await,
        ),
    );

    // A pod with a running container (RunPodSandbox, CreateContainer and
    // StartContainer are what Pod does; their failure would panic there).
    let mut pod = Pod::new(&server).await;
    seen.insert("RunPodSandbox", Ok(()));
    let mut config = pod.ctr("app", "while true; do echo tick; sleep 1; done");
    config.stdin = true;
    let created = pod.create(&config).await;
    let ctr = created.clone().unwrap_or_default();
    seen.insert("CreateContainer", created.map(|_| ()));
    seen.insert("StartContainer", pod.start(&ctr).await);
    let sandbox = pod.id.clone();

    seen.insert(
        "PodSandboxStatus",
        done(
            rt.pod_sandbox_status(api::PodSandboxStatusRequest {
                pod_sandbox_id: sandbox.clone(),
                verbose: true,
            })
            .await,
        ),
    );
    seen.insert(
        "ListPodSandbox",
        done(
            rt.list_pod_sandbox(api::ListPodSandboxRequest::default())
                .await,
        ),
    );
    seen.insert(
        "StreamPodSandboxes",
        drain(
            rt.stream_pod_sandboxes(api::StreamPodSandboxesRequest::default())
                .await,
        )
        .await,
    );
    seen.insert(
        "ContainerStatus",
        done(
            rt.container_status(api::ContainerStatusRequest {
                container_id: ctr.clone(),
                verbose: true,
            })
            .await,
        ),
    );
    seen.insert(
        "ListContainers",
        done(
            rt.list_containers(api::ListContainersRequest::default())
                .await,
        ),
    );
    seen.insert(
        "StreamContainers",
        drain(
            rt.stream_containers(api::StreamContainersRequest::default())
                .await,
        )
        .await,
    );
    seen.insert(
        "UpdateContainerResources",
        done(
            rt.update_container_resources(api::UpdateContainerResourcesRequest {
                container_id: ctr.clone(),
                linux: Some(api::LinuxContainerResources {
                    cpu_shares: 512,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await,
        ),
    );
    seen.insert(
        "UpdatePodSandboxResources",
        done(
            rt.update_pod_sandbox_resources(api::UpdatePodSandboxResourcesRequest {
                pod_sandbox_id: sandbox.clone(),
                ..Default::default()
            })
            .await,
        ),
    );
    seen.insert(
        "ReopenContainerLog",
        done(
            rt.reopen_container_log(api::ReopenContainerLogRequest {
                container_id: ctr.clone(),
            })
            .await,
        ),
    );

    // Exec and friends.
    let exec_sync = rt
        .exec_sync(api::ExecSyncRequest {
            container_id: ctr.clone(),
            cmd: vec!["echo".into(), "hi".into()],
            timeout: 10,
        })
        .await;
    if let Ok(r) = &exec_sync {
        assert_eq!(r.get_ref().stdout, b"hi\n");
    }
    seen.insert("ExecSync", done(exec_sync));
    seen.insert(
        "Exec",
        done(
            rt.exec(api::ExecRequest {
                container_id: ctr.clone(),
                cmd: vec!["true".into()],
                stdout: true,
                ..Default::default()
            })
            .await,
        ),
    );
    seen.insert(
        "Attach",
        done(
            rt.attach(api::AttachRequest {
                container_id: ctr.clone(),
                stdin: true,
                stdout: true,
                stderr: true,
                ..Default::default()
            })
            .await,
        ),
    );
    seen.insert(
        "PortForward",
        done(
            rt.port_forward(api::PortForwardRequest {
                pod_sandbox_id: sandbox.clone(),
                port: vec![80],
            })
            .await,
        ),
    );

    // Stats and metrics.
    seen.insert(
        "ContainerStats",
        done(
            rt.container_stats(api::ContainerStatsRequest {
                container_id: ctr.clone(),
            })
            .await,
        ),
    );
    seen.insert(
        "ListContainerStats",
        done(
            rt.list_container_stats(api::ListContainerStatsRequest::default())
                .await,
        ),
    );
    seen.insert(
        "StreamContainerStats",
        drain(
            rt.stream_container_stats(api::StreamContainerStatsRequest::default())
                .await,
        )
        .await,
    );
    seen.insert(
        "PodSandboxStats",
        done(
            rt.pod_sandbox_stats(api::PodSandboxStatsRequest {
                pod_sandbox_id: sandbox.clone(),
            })
            .await,
        ),
    );
    seen.insert(
        "ListPodSandboxStats",
        done(
            rt.list_pod_sandbox_stats(api::ListPodSandboxStatsRequest::default())
                .await,
        ),
    );
    seen.insert(
        "StreamPodSandboxStats",
        drain(
            rt.stream_pod_sandbox_stats(api::StreamPodSandboxStatsRequest::default())
                .await,
        )
        .await,
    );
    seen.insert(
        "ListMetricDescriptors",
        done(
            rt.list_metric_descriptors(api::ListMetricDescriptorsRequest {})
                .await,
        ),
    );
    seen.insert(
        "ListPodSandboxMetrics",
        done(
            rt.list_pod_sandbox_metrics(api::ListPodSandboxMetricsRequest {})
                .await,
        ),
    );
    seen.insert(
        "StreamPodSandboxMetrics",
        drain(
            rt.stream_pod_sandbox_metrics(api::StreamPodSandboxMetricsRequest {})
                .await,
        )
        .await,
    );

    // Events: a stream that stays open when served; opening it is enough.
    let events = tokio::time::timeout(
        Duration::from_secs(5),
        rt.get_container_events(api::GetEventsRequest {}),
    )
    .await
    .expect("GetContainerEvents answers");
    seen.insert("GetContainerEvents", done(events));

    // Checkpoints.
    let out = tempfile::tempdir().unwrap();
    seen.insert(
        "CheckpointContainer",
        done(
            rt.checkpoint_container(api::CheckpointContainerRequest {
                container_id: ctr.clone(),
                location: out.path().join("ctr.tar").display().to_string(),
                timeout: 60,
            })
            .await,
        ),
    );
    seen.insert(
        "CheckpointPod",
        done(
            rt.checkpoint_pod(api::CheckpointPodRequest {
                pod_sandbox_id: sandbox.clone(),
                output_path: out.path().join("pod.tar").display().to_string(),
                ..Default::default()
            })
            .await,
        ),
    );
    seen.insert(
        "RestorePod",
        done(
            rt.restore_pod(api::RestorePodRequest {
                checkpoint_path: out.path().join("pod.tar").display().to_string(),
                config: Some(pod.config.clone()),
                ..Default::default()
            })
            .await,
        ),
    );

    // Tear down.
    seen.insert(
        "StopContainer",
        done(
            rt.stop_container(api::StopContainerRequest {
                container_id: ctr.clone(),
                timeout: 1,
            })
            .await,
        ),
    );
    seen.insert(
        "RemoveContainer",
        done(
            rt.remove_container(api::RemoveContainerRequest {
                container_id: ctr.clone(),
            })
            .await,
        ),
    );
    seen.insert(
        "StopPodSandbox",
        done(
            rt.stop_pod_sandbox(api::StopPodSandboxRequest {
                pod_sandbox_id: sandbox.clone(),
            })
            .await,
        ),
    );
    seen.insert(
        "RemovePodSandbox",
        done(
            rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
                pod_sandbox_id: sandbox.clone(),
            })
            .await,
        ),
    );

    // Images: pulled from a local registry, then removed.
    let registry = Registry::start(false).await;
    let image = TestImage::busybox(None).await;
    let pushed = registry.push(&image, "docker-cri-test/surface:v1").await;
    seen.insert(
        "PullImage",
        done(
            images
                .pull_image(api::PullImageRequest {
                    image: image_spec(&pushed),
                    ..Default::default()
                })
                .await,
        ),
    );
    seen.insert(
        "ImageStatus",
        done(
            images
                .image_status(api::ImageStatusRequest {
                    image: image_spec(&pushed),
                    verbose: true,
                })
                .await,
        ),
    );
    seen.insert(
        "ListImages",
        done(images.list_images(api::ListImagesRequest::default()).await),
    );
    seen.insert(
        "StreamImages",
        drain(
            images
                .stream_images(api::StreamImagesRequest::default())
                .await,
        )
        .await,
    );
    seen.insert(
        "ImageFsInfo",
        done(images.image_fs_info(api::ImageFsInfoRequest {}).await),
    );
    seen.insert(
        "RemoveImage",
        done(
            images
                .remove_image(api::RemoveImageRequest {
                    image: image_spec(&pushed),
                })
                .await,
        ),
    );

    // Every RPC of the proto was called, and nothing else.
    let rpcs = proto_rpcs();
    assert_eq!(rpcs.len(), 43, "{rpcs:?}");
    let called: Vec<&str> = seen.keys().copied().collect();
    let mut wanted: Vec<&str> = rpcs.iter().map(String::as_str).collect();
    wanted.sort();
    assert_eq!(called, wanted);

    let status_table = readme_status();
    let mut failures = Vec::new();
    for (rpc, outcome) in &seen {
        assert!(
            status_table.contains(rpc),
            "{rpc} is missing from the README's status table"
        );
        match (outcome, documented_refusal(rpc)) {
            (Ok(()), _) => {}
            (Err(status), Some((code, reason)))
                if status.code() == code
                    && status.message().contains(reason)
                    && status.message().contains(rpc) => {}
            (Err(status), _) => {
                failures.push(format!("{rpc}: {:?} {:?}", status.code(), status.message()))
            }
        }
        // Never a bare Unimplemented: a reason follows the RPC's name.
        if let Err(status) = outcome
            && status.code() == Code::Unimplemented
        {
            let reason = status.message().split_once(": ").map_or("", |(_, r)| r);
            assert!(reason.len() > 20, "{rpc}: {:?}", status.message());
        }
    }
    assert!(
        failures.is_empty(),
        "unexpected answers:\n{}",
        failures.join("\n")
    );
    // On this project's test host (Docker 20.10 without experimental mode)
    // the refusals are what they document.
    let refused: Vec<&str> = seen
        .iter()
        .filter(|(_, o)| o.is_err())
        .map(|(rpc, _)| *rpc)
        .collect();
    for rpc in &refused {
        assert!(documented_refusal(rpc).is_some(), "{rpc}");
    }
}
