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

type Mutation<T> = (&'static str, Code, Box<dyn Fn(&mut T)>);

fn big() -> String {
    "x".repeat(1 << 20)
}

fn sandbox_cases() -> Vec<Mutation<api::PodSandboxConfig>> {
    fn meta(c: &mut api::PodSandboxConfig) -> &mut api::PodSandboxMetadata {
        c.metadata.as_mut().unwrap()
    }
    fn linux(c: &mut api::PodSandboxConfig) -> &mut api::LinuxPodSandboxConfig {
        c.linux.get_or_insert_with(Default::default)
    }
    fn sc(c: &mut api::PodSandboxConfig) -> &mut api::LinuxSandboxSecurityContext {
        linux(c)
            .security_context
            .get_or_insert_with(Default::default)
    }
    fn ns(c: &mut api::PodSandboxConfig) -> &mut api::NamespaceOption {
        sc(c).namespace_options.get_or_insert_with(Default::default)
    }
    use Code::InvalidArgument as Invalid;
    vec![
        ("metadata", Invalid, Box::new(|c| c.metadata = None)),
        ("metadata.name", Invalid, Box::new(|c| meta(c).name.clear())),
        ("metadata.name", Invalid, Box::new(|c| meta(c).name = big())),
        (
            "metadata.name",
            Invalid,
            Box::new(|c| meta(c).name.push('\0')),
        ),
        (
            "metadata.name",
            Invalid,
            Box::new(|c| meta(c).name.push('/')),
        ),
        (
            "metadata.namespace",
            Invalid,
            Box::new(|c| meta(c).namespace = big()),
        ),
        (
            "metadata.namespace",
            Invalid,
            Box::new(|c| meta(c).namespace.clear()),
        ),
        ("metadata.uid", Invalid, Box::new(|c| meta(c).uid = big())),
        ("metadata.uid", Invalid, Box::new(|c| meta(c).uid.push(' '))),
        (
            "log_directory",
            Invalid,
            Box::new(|c| c.log_directory = "relative/logs".into()),
        ),
        (
            "log_directory",
            Invalid,
            Box::new(|c| c.log_directory = "/var/log/../../etc".into()),
        ),
        (
            "log_directory",
            Invalid,
            Box::new(|c| c.log_directory = "/var/log\0".into()),
        ),
        ("hostname", Invalid, Box::new(|c| c.hostname = big())),
        (
            "hostname",
            Invalid,
            Box::new(|c| c.hostname = "a\0b".into()),
        ),
        (
            "port_mappings",
            Invalid,
            Box::new(|c| {
                c.port_mappings = vec![api::PortMapping {
                    container_port: 0,
                    ..Default::default()
                }]
            }),
        ),
        (
            "port_mappings",
            Invalid,
            Box::new(|c| {
                c.port_mappings = vec![api::PortMapping {
                    container_port: 70000,
                    ..Default::default()
                }]
            }),
        ),
        (
            "port_mappings",
            Invalid,
            Box::new(|c| {
                c.port_mappings = vec![api::PortMapping {
                    container_port: 80,
                    host_port: -1,
                    ..Default::default()
                }]
            }),
        ),
        (
            "port_mappings",
            Invalid,
            Box::new(|c| {
                c.port_mappings = vec![api::PortMapping {
                    container_port: 80,
                    protocol: 99,
                    ..Default::default()
                }]
            }),
        ),
        (
            "cgroup_parent",
            Invalid,
            Box::new(|c| linux(c).cgroup_parent = "/kubepods/../../escape".into()),
        ),
        (
            "sysctls",
            Invalid,
            Box::new(|c| linux(c).sysctls = HashMap::from([("Not A Sysctl".into(), "1".into())])),
        ),
        (
            "sysctls",
            Invalid,
            Box::new(|c| {
                linux(c).sysctls = HashMap::from([("net.ipv4.ip_forward".into(), "1\0".into())])
            }),
        ),
        // The kernel refuses the value; only runc finds out.
        (
            "sysctls",
            Invalid,
            Box::new(|c| {
                linux(c).sysctls = HashMap::from([("net.ipv4.ip_forward".into(), "banana".into())])
            }),
        ),
        (
            "namespace_options.network",
            Invalid,
            Box::new(|c| ns(c).network = 99),
        ),
        (
            "namespace_options.pid",
            Invalid,
            Box::new(|c| ns(c).pid = -1),
        ),
        (
            "namespace_options.ipc",
            Invalid,
            Box::new(|c| ns(c).ipc = api::NamespaceMode::Target as i32),
        ),
        (
            "supplemental_groups",
            Invalid,
            Box::new(|c| sc(c).supplemental_groups = vec![5, -1]),
        ),
        (
            "run_as_user",
            Invalid,
            Box::new(|c| sc(c).run_as_user = Some(api::Int64Value { value: -1 })),
        ),
        (
            "overhead",
            Invalid,
            Box::new(|c| {
                linux(c).overhead = Some(api::LinuxContainerResources {
                    memory_limit_in_bytes: -1,
                    ..Default::default()
                })
            }),
        ),
        (
            "resources",
            Invalid,
            Box::new(|c| {
                linux(c).resources = Some(api::LinuxContainerResources {
                    cpu_shares: -2,
                    ..Default::default()
                })
            }),
        ),
        (
            "seccomp",
            Invalid,
            Box::new(|c| {
                sc(c).seccomp = Some(api::SecurityProfile {
                    profile_type: 99,
                    localhost_ref: String::new(),
                })
            }),
        ),
        (
            "seccomp",
            Invalid,
            Box::new(|c| {
                sc(c).seccomp = Some(api::SecurityProfile {
                    profile_type: api::security_profile::ProfileType::Localhost as i32,
                    localhost_ref: "/no/such/profile.json".into(),
                })
            }),
        ),
        (
            "dns_config",
            Invalid,
            Box::new(|c| {
                c.dns_config = Some(api::DnsConfig {
                    servers: vec!["not-an-ip".into()],
                    ..Default::default()
                })
            }),
        ),
    ]
}

fn container_cases(apparmor: bool) -> Vec<Mutation<api::ContainerConfig>> {
    fn linux(c: &mut api::ContainerConfig) -> &mut api::LinuxContainerConfig {
        c.linux.get_or_insert_with(Default::default)
    }
    fn sc(c: &mut api::ContainerConfig) -> &mut api::LinuxContainerSecurityContext {
        linux(c)
            .security_context
            .get_or_insert_with(Default::default)
    }
    fn res(c: &mut api::ContainerConfig) -> &mut api::LinuxContainerResources {
        linux(c).resources.get_or_insert_with(Default::default)
    }
    fn ns(c: &mut api::ContainerConfig) -> &mut api::NamespaceOption {
        sc(c).namespace_options.get_or_insert_with(Default::default)
    }
    fn mount<'a>(c: &'a mut api::ContainerConfig, host: &str, ctr: &str) -> &'a mut api::Mount {
        c.mounts.push(api::Mount {
            host_path: host.into(),
            container_path: ctr.into(),
            ..Default::default()
        });
        c.mounts.last_mut().unwrap()
    }
    use Code::InvalidArgument as Invalid;
    let mut cases: Vec<Mutation<api::ContainerConfig>> = vec![
        ("metadata", Invalid, Box::new(|c| c.metadata = None)),
        (
            "metadata.name",
            Invalid,
            Box::new(|c| c.metadata.as_mut().unwrap().name = big()),
        ),
        (
            "metadata.name",
            Invalid,
            Box::new(|c| c.metadata.as_mut().unwrap().name = "a\0".into()),
        ),
        ("image", Invalid, Box::new(|c| c.image = None)),
        (
            "image",
            Invalid,
            Box::new(|c| c.image.as_mut().unwrap().image = "Bad Image".into()),
        ),
        (
            "image",
            Invalid,
            Box::new(|c| c.image.as_mut().unwrap().image = "localhost:0/x".into()),
        ),
        (
            "image",
            Invalid,
            Box::new(|c| c.image.as_mut().unwrap().image = "127.0.0.1:99999/x".into()),
        ),
        (
            "image",
            Code::NotFound,
            Box::new(|c| c.image.as_mut().unwrap().image = "docker-cri-test/absent:v0".into()),
        ),
        (
            "command",
            Invalid,
            Box::new(|c| c.command = vec!["sh".into(), "a\0b".into()]),
        ),
        ("args", Invalid, Box::new(|c| c.args = vec![big()])),
        ("args", Invalid, Box::new(|c| c.args = vec!["\0".into()])),
        (
            "working_dir",
            Invalid,
            Box::new(|c| c.working_dir = "relative".into()),
        ),
        (
            "working_dir",
            Invalid,
            Box::new(|c| c.working_dir = "/a/../b".into()),
        ),
        (
            "envs",
            Invalid,
            Box::new(|c| {
                c.envs = vec![api::KeyValue {
                    key: String::new(),
                    value: "v".into(),
                }]
            }),
        ),
        (
            "envs",
            Invalid,
            Box::new(|c| {
                c.envs = vec![api::KeyValue {
                    key: "A=B".into(),
                    value: "v".into(),
                }]
            }),
        ),
        (
            "envs",
            Invalid,
            Box::new(|c| {
                c.envs = vec![api::KeyValue {
                    key: "A".into(),
                    value: "v\0".into(),
                }]
            }),
        ),
        (
            "mounts[0].container_path",
            Invalid,
            Box::new(|c| {
                mount(c, "/tmp", "relative");
            }),
        ),
        (
            "mounts[0].container_path",
            Invalid,
            Box::new(|c| {
                mount(c, "/tmp", "/a/../etc");
            }),
        ),
        (
            "mounts[0].host_path",
            Invalid,
            Box::new(|c| {
                mount(c, "tmp", "/m");
            }),
        ),
        (
            "mounts[0].host_path",
            Invalid,
            Box::new(|c| {
                mount(c, "/tmp/../etc", "/m");
            }),
        ),
        (
            "mounts[0]",
            Invalid,
            Box::new(|c| {
                mount(c, "/tmp", "/m").propagation = 99;
            }),
        ),
        (
            "mounts[0]",
            Code::Unimplemented,
            Box::new(|c| {
                mount(c, "/tmp", "/m").mount_options = vec!["nosuid".into()];
            }),
        ),
        (
            "devices[0]",
            Invalid,
            Box::new(|c| {
                c.devices = vec![api::Device {
                    host_path: "null".into(),
                    container_path: "/dev/x".into(),
                    permissions: "rwm".into(),
                }]
            }),
        ),
        (
            "devices[0]",
            Invalid,
            Box::new(|c| {
                c.devices = vec![api::Device {
                    host_path: "/dev/null".into(),
                    container_path: "/dev/x".into(),
                    permissions: "rwx".into(),
                }]
            }),
        ),
        (
            "log_path",
            Invalid,
            Box::new(|c| c.log_path = "/etc/evil.log".into()),
        ),
        (
            "log_path",
            Invalid,
            Box::new(|c| c.log_path = "../escape.log".into()),
        ),
        (
            "log_path",
            Invalid,
            Box::new(|c| c.log_path = "a\0.log".into()),
        ),
        (
            "masked_paths",
            Invalid,
            Box::new(|c| sc(c).masked_paths = vec!["proc/kcore".into()]),
        ),
        (
            "masked_paths",
            Invalid,
            Box::new(|c| sc(c).masked_paths = vec!["/proc/../etc".into()]),
        ),
        (
            "readonly_paths",
            Invalid,
            Box::new(|c| sc(c).readonly_paths = vec!["relative".into()]),
        ),
        (
            "namespace_options.pid",
            Invalid,
            Box::new(|c| ns(c).pid = 99),
        ),
        (
            "namespace_options.network",
            Invalid,
            Box::new(|c| ns(c).network = 42),
        ),
        (
            "namespace_options.ipc",
            Invalid,
            Box::new(|c| ns(c).ipc = api::NamespaceMode::Target as i32),
        ),
        (
            "target_id",
            Invalid,
            Box::new(|c| ns(c).pid = api::NamespaceMode::Target as i32),
        ),
        (
            "supplemental_groups",
            Invalid,
            Box::new(|c| sc(c).supplemental_groups = vec![-4]),
        ),
        (
            "run_as_user",
            Invalid,
            Box::new(|c| sc(c).run_as_user = Some(api::Int64Value { value: -7 })),
        ),
        (
            "run_as_group",
            Invalid,
            Box::new(|c| sc(c).run_as_group = Some(api::Int64Value { value: 1 })),
        ),
        (
            "run_as_username",
            Invalid,
            Box::new(|c| sc(c).run_as_username = "root\0".into()),
        ),
        (
            "run_as_username",
            Invalid,
            Box::new(|c| sc(c).run_as_username = "root:root".into()),
        ),
        (
            "memory_limit_in_bytes",
            Invalid,
            Box::new(|c| res(c).memory_limit_in_bytes = -1),
        ),
        (
            "cpu_shares",
            Invalid,
            Box::new(|c| res(c).cpu_shares = 1 << 40),
        ),
        (
            "oom_score_adj",
            Invalid,
            Box::new(|c| res(c).oom_score_adj = 5000),
        ),
        (
            "unified",
            Invalid,
            Box::new(|c| {
                res(c).unified.insert("cgroup.procs".into(), "1".into());
            }),
        ),
        (
            "unified",
            Invalid,
            Box::new(|c| {
                res(c).unified.insert("../memory.max".into(), "1".into());
            }),
        ),
        (
            "hugepage_limits",
            Invalid,
            Box::new(|c| {
                res(c).hugepage_limits = vec![api::HugepageLimit {
                    page_size: "3XB".into(),
                    limit: 1,
                }]
            }),
        ),
        ("stop_signal", Invalid, Box::new(|c| c.stop_signal = 999)),
        (
            "seccomp",
            Invalid,
            Box::new(|c| {
                sc(c).seccomp = Some(api::SecurityProfile {
                    profile_type: 7,
                    localhost_ref: String::new(),
                })
            }),
        ),
        (
            "apparmor",
            Invalid,
            Box::new(|c| {
                sc(c).apparmor = Some(api::SecurityProfile {
                    profile_type: 99,
                    localhost_ref: String::new(),
                })
            }),
        ),
        (
            "add_ambient_capabilities",
            Code::Unimplemented,
            Box::new(|c| {
                sc(c).capabilities = Some(api::Capability {
                    add_ambient_capabilities: vec!["NET_RAW".into()],
                    ..Default::default()
                })
            }),
        ),
    ];
    if !apparmor {
        // Docker would silently run it unconfined.
        cases.push((
            "apparmor",
            Invalid,
            Box::new(|c| {
                sc(c).apparmor = Some(api::SecurityProfile {
                    profile_type: api::security_profile::ProfileType::Localhost as i32,
                    localhost_ref: "docker-cri-test-profile".into(),
                })
            }),
        ));
    }
    cases
}

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
    assert!(
        err.message().contains("ambiguous") && err.message().contains('2'),
        "{err:?}"
    );
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
