//! Malformed requests, generated field by field for every RPC that takes a
//! config (empty, oversize, NUL, invalid enum, bad path, out of range):
//! each gets its exact gRPC code, and nothing is created or changed — no
//! Docker container, no file under docker-cri's root or the pod's log
//! directory. Against the real binary and dockerd.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use common::{Server, TestImage, docker, unique};
use docker_cri::api;
use tonic::Code;

/// What a request could have left behind: the test's Docker containers
/// (every name carries the test's token) and the files below some roots.
#[derive(Debug, PartialEq)]
struct Snapshot {
    containers: BTreeMap<String, String>,
    files: BTreeMap<PathBuf, (u64, std::time::SystemTime)>,
}

async fn snapshot(token: &str, roots: &[&Path]) -> Snapshot {
    let listed = docker()
        .await
        .list_containers(Some(
            bollard::query_parameters::ListContainersOptionsBuilder::new()
                .all(true)
                .build(),
        ))
        .await
        .unwrap();
    let containers = listed
        .into_iter()
        .filter(|c| c.names.iter().flatten().any(|n| n.contains(token)))
        .map(|c| (c.id.unwrap_or_default(), format!("{:?}", c.state)))
        .collect();
    let mut files = BTreeMap::new();
    for root in roots {
        walk(root, &mut files);
    }
    Snapshot { containers, files }
}

fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, (u64, std::time::SystemTime)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let meta = e.metadata().unwrap();
        if meta.is_dir() {
            // A directory's own times change when a refused request's
            // temporary file comes and goes; what it holds is what counts.
            out.insert(e.path(), (0, std::time::UNIX_EPOCH));
            walk(&e.path(), out);
        } else {
            out.insert(e.path(), (meta.len(), meta.modified().unwrap()));
        }
    }
}

#[path = "bad_input/cases.rs"]
mod cases;
use cases::{container_cases, sandbox_cases};

#[tokio::test]
async fn malformed_sandboxes_and_containers_change_nothing() {
    let server = Server::start(&[]).await;
    let root = server.dir.path().join("root");
    let mut rt = server.runtime().await;
    let token = unique("badin").replace('_', "-");
    let logs = tempfile::tempdir().unwrap();
    let _cleanup = common::PodCleanup(token.clone());
    let base = api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: format!("{token}-pod"),
            namespace: format!("{token}-ns"),
            uid: token.clone(),
            attempt: 0,
        }),
        log_directory: logs.path().display().to_string(),
        ..Default::default()
    };

    let before = snapshot(&token, &[&root, logs.path()]).await;
    for (field, code, mutate) in sandbox_cases() {
        let mut config = base.clone();
        mutate(&mut config);
        let err = rt
            .run_pod_sandbox(api::RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: String::new(),
            })
            .await
            .expect_err(field);
        assert_eq!(err.code(), code, "RunPodSandbox {field}: {err:?}");
        let message = err.message().to_ascii_lowercase();
        let key = field.rsplit('.').next().unwrap().trim_end_matches("[0]");
        assert!(
            message.contains(&key.replace("_config", "")) || message.contains(field),
            "RunPodSandbox {field}: the message names the field: {err:?}"
        );
        assert_eq!(
            snapshot(&token, &[&root, logs.path()]).await,
            before,
            "RunPodSandbox {field} left something behind"
        );
    }
    let err = rt
        .run_pod_sandbox(api::RunPodSandboxRequest {
            config: Some(base.clone()),
            runtime_handler: "no-such-handler".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert_eq!(snapshot(&token, &[&root, logs.path()]).await, before);

    // A real pod for the container cases.
    let sandbox = rt
        .run_pod_sandbox(api::RunPodSandboxRequest {
            config: Some(base.clone()),
            runtime_handler: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .pod_sandbox_id;
    let image = TestImage::busybox(None).await;
    let good = api::ContainerConfig {
        metadata: Some(api::ContainerMetadata {
            name: format!("{token}-ctr"),
            attempt: 0,
        }),
        image: Some(api::ImageSpec {
            image: image.name.clone(),
            ..Default::default()
        }),
        command: vec!["sleep".into(), "60".into()],
        log_path: "ctr/0.log".into(),
        ..Default::default()
    };
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|v| v.trim() == "Y");
    let before = snapshot(&token, &[&root, logs.path()]).await;
    for (field, code, mutate) in container_cases(apparmor) {
        let mut config = good.clone();
        mutate(&mut config);
        let err = rt
            .create_container(api::CreateContainerRequest {
                pod_sandbox_id: sandbox.clone(),
                config: Some(config),
                sandbox_config: Some(base.clone()),
            })
            .await
            .expect_err(field);
        assert_eq!(err.code(), code, "CreateContainer {field}: {err:?}");
        if code == Code::InvalidArgument {
            let key = field.rsplit('.').next().unwrap();
            assert!(
                err.message().contains(key),
                "CreateContainer {field}: the message names the field: {err:?}"
            );
        }
        assert_eq!(
            snapshot(&token, &[&root, logs.path()]).await,
            before,
            "CreateContainer {field} left something behind"
        );
    }
    // The pod that is not there, and IDs that are not IDs.
    for (sandbox_id, code) in [
        ("", Code::InvalidArgument),
        (
            "0000000000000000000000000000000000000000000000000000000000000000",
            Code::NotFound,
        ),
        ("nosuchprefix", Code::NotFound),
    ] {
        let err = rt
            .create_container(api::CreateContainerRequest {
                pod_sandbox_id: sandbox_id.into(),
                config: Some(good.clone()),
                sandbox_config: Some(base.clone()),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "pod_sandbox_id {sandbox_id:?}: {err:?}");
    }
    assert_eq!(snapshot(&token, &[&root, logs.path()]).await, before);
}

#[tokio::test]
async fn malformed_ids_updates_lists_and_images() {
    let server = Server::start(&[]).await;
    let mut rt = server.runtime().await;
    let mut images = server.images().await;

    // Empty IDs are the caller's mistake everywhere.
    let empty = |code: Code, r: Result<(), tonic::Status>, what: &str| {
        let err = r.expect_err(what);
        assert_eq!(err.code(), code, "{what}: {err:?}");
    };
    empty(
        Code::InvalidArgument,
        rt.container_status(api::ContainerStatusRequest::default())
            .await
            .map(|_| ()),
        "ContainerStatus",
    );
    empty(
        Code::InvalidArgument,
        rt.pod_sandbox_status(api::PodSandboxStatusRequest::default())
            .await
            .map(|_| ()),
        "PodSandboxStatus",
    );
    empty(
        Code::InvalidArgument,
        rt.start_container(api::StartContainerRequest::default())
            .await
            .map(|_| ()),
        "StartContainer",
    );
    empty(
        Code::InvalidArgument,
        rt.update_container_resources(api::UpdateContainerResourcesRequest::default())
            .await
            .map(|_| ()),
        "UpdateContainerResources",
    );
    // Unknown IDs: NotFound where the object must exist.
    let absent = "f".repeat(64);
    empty(
        Code::NotFound,
        rt.container_status(api::ContainerStatusRequest {
            container_id: absent.clone(),
            verbose: false,
        })
        .await
        .map(|_| ()),
        "ContainerStatus absent",
    );
    empty(
        Code::NotFound,
        rt.start_container(api::StartContainerRequest {
            container_id: absent.clone(),
        })
        .await
        .map(|_| ()),
        "StartContainer absent",
    );

    // A label selector far too large for Docker's URL is filtered by
    // docker-cri: an answer, not an error.
    let huge = HashMap::from([("app".to_string(), "x".repeat(1 << 20))]);
    let listed = rt
        .list_containers(api::ListContainersRequest {
            filter: Some(api::ContainerFilter {
                label_selector: huge.clone(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert!(listed.is_empty());
    let pods = rt
        .list_pod_sandbox(api::ListPodSandboxRequest {
            filter: Some(api::PodSandboxFilter {
                label_selector: huge,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .items;
    assert!(pods.is_empty());

    // Images: malformed references and ports, an unreachable registry.
    for (image, code) in [
        ("", Code::InvalidArgument),
        ("Bad Name", Code::InvalidArgument),
        ("localhost:0/x:v1", Code::InvalidArgument),
        ("127.0.0.1:99999/x:v1", Code::InvalidArgument),
        ("a\0b", Code::InvalidArgument),
    ] {
        let err = images
            .pull_image(api::PullImageRequest {
                image: common::image_spec(image),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "PullImage {image:?}: {err:?}");
        let err = images
            .image_status(api::ImageStatusRequest {
                image: common::image_spec(image),
                verbose: false,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "ImageStatus {image:?}: {err:?}");
    }
    let closed = common::free_port();
    let err = images
        .pull_image(api::PullImageRequest {
            image: common::image_spec(&format!("127.0.0.1:{closed}/nothing:v1")),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
}

#[tokio::test]
async fn id_prefixes_resolve_only_when_unique() {
    let server = Server::start(&[]).await;
    let mut pod = common::pod::Pod::new(&server).await;
    // Create containers until two share a first hex digit (at most 17).
    let mut by_first: HashMap<char, Vec<String>> = HashMap::new();
    let mut shared = None;
    for i in 0..17 {
        let id = pod
            .create(&pod.ctr(&format!("p{i}"), "true"))
            .await
            .unwrap();
        let first = id.chars().next().unwrap();
        let same = by_first.entry(first).or_default();
        same.push(id);
        if same.len() == 2 {
            shared = Some(first);
            break;
        }
    }
    let shared = shared.expect("17 IDs share a first digit");
    let err = pod.status(&shared.to_string()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    // Other managed containers on the daemon may share the digit too.
    assert!(err.message().contains("ambiguous"), "{err:?}");
    // A unique prefix resolves to that container.
    let one = by_first[&shared][0].clone();
    let s = pod.status(&one[..20]).await.unwrap();
    assert_eq!(s.id, one);
    // Docker's name for it, or the pod's ID, never resolves as a container.
    let name = docker()
        .await
        .inspect_container(&one, None)
        .await
        .unwrap()
        .name
        .unwrap();
    for not_a_container in [name.trim_start_matches('/').to_string(), pod.id.clone()] {
        let err = pod.status(&not_a_container).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{not_a_container}: {err:?}");
    }
}
