//! Pod sandbox RPCs against the real dockerd through the real binary.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::Duration;

use common::{PodCleanup, Server, TestImage, docker, run_in_pod, unique};
use docker_cri::api;
use tonic::Code;

type Runtime =
    docker_cri::api::runtime_service_client::RuntimeServiceClient<tonic::transport::Channel>;

fn pod_config(name: &str) -> (api::PodSandboxConfig, PodCleanup) {
    let uid = unique("uid");
    let config = api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: name.to_string(),
            namespace: "docker-cri-test".into(),
            uid: uid.clone(),
            attempt: 0,
        }),
        hostname: "podhost".into(),
        labels: HashMap::from([("app".to_string(), name.to_string())]),
        annotations: HashMap::from([("note".to_string(), "kept".to_string())]),
        ..Default::default()
    };
    (config, PodCleanup(uid))
}

fn with_namespaces(
    config: &mut api::PodSandboxConfig,
    network: api::NamespaceMode,
    pid: api::NamespaceMode,
    ipc: api::NamespaceMode,
) {
    let linux = config.linux.get_or_insert_with(Default::default);
    let sc = linux.security_context.get_or_insert_with(Default::default);
    sc.namespace_options = Some(api::NamespaceOption {
        network: network as i32,
        pid: pid as i32,
        ipc: ipc as i32,
        ..Default::default()
    });
}

async fn run(rt: &mut Runtime, config: &api::PodSandboxConfig) -> Result<String, tonic::Status> {
    rt.run_pod_sandbox(api::RunPodSandboxRequest {
        config: Some(config.clone()),
        runtime_handler: String::new(),
    })
    .await
    .map(|r| r.into_inner().pod_sandbox_id)
}

async fn status(
    rt: &mut Runtime,
    id: &str,
) -> Result<api::PodSandboxStatusResponse, tonic::Status> {
    rt.pod_sandbox_status(api::PodSandboxStatusRequest {
        pod_sandbox_id: id.to_string(),
        verbose: true,
    })
    .await
    .map(|r| r.into_inner())
}

async fn list(rt: &mut Runtime, filter: Option<api::PodSandboxFilter>) -> Vec<api::PodSandbox> {
    rt.list_pod_sandbox(api::ListPodSandboxRequest { filter })
        .await
        .unwrap()
        .into_inner()
        .items
}

async fn stop(rt: &mut Runtime, id: &str) -> Result<(), tonic::Status> {
    rt.stop_pod_sandbox(api::StopPodSandboxRequest {
        pod_sandbox_id: id.to_string(),
    })
    .await
    .map(|_| ())
}

async fn remove(rt: &mut Runtime, id: &str) -> Result<(), tonic::Status> {
    rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
        pod_sandbox_id: id.to_string(),
    })
    .await
    .map(|_| ())
}

fn ready() -> i32 {
    api::PodSandboxState::SandboxReady as i32
}

fn not_ready() -> i32 {
    api::PodSandboxState::SandboxNotready as i32
}

#[tokio::test]
async fn lifecycle_on_the_bridge_network() {
    let server = Server::start(&[]).await;
    let mut rt = server.runtime().await;
    let (config, _cleanup) = pod_config("life");
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let id = run(&mut rt, &config).await.unwrap();
    assert_eq!(id.len(), 64);

    let resp = status(&mut rt, &id).await.unwrap();
    let s = resp.status.unwrap();
    assert_eq!(s.id, id);
    assert_eq!(s.metadata, config.metadata);
    assert_eq!(s.state, ready());
    assert!(
        s.created_at >= before && s.created_at < before + 60_000_000_000,
        "created_at is in ns"
    );
    assert_eq!(s.labels, config.labels, "labels exactly as given");
    assert_eq!(s.annotations, config.annotations);
    assert_eq!(s.runtime_handler, "");
    let ip = s.network.unwrap().ip;
    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "pod IP {ip:?}");
    let ns = s.linux.unwrap().namespaces.unwrap().options.unwrap();
    assert_eq!(ns.network, api::NamespaceMode::Pod as i32);
    let info: serde_json::Value = serde_json::from_str(&resp.info["info"]).unwrap();
    assert!(info["pid"].as_i64().unwrap() > 0);
    assert_eq!(info["config"]["hostname"], "podhost");

    let docker_c = docker().await.inspect_container(&id, None).await.unwrap();
    assert_eq!(
        docker_c.name.unwrap(),
        format!(
            "/k8s_POD_life_docker-cri-test_{}_0",
            config.metadata.as_ref().unwrap().uid
        )
    );

    let listed = list(&mut rt, None).await;
    let mine = listed.iter().find(|p| p.id == id).expect("listed");
    assert_eq!(mine.state, ready());
    assert_eq!(mine.labels, config.labels);
    assert_eq!(mine.created_at, s.created_at, "list and status agree");

    stop(&mut rt, &id).await.unwrap();
    stop(&mut rt, &id).await.unwrap();
    assert_eq!(
        status(&mut rt, &id).await.unwrap().status.unwrap().state,
        not_ready()
    );
    remove(&mut rt, &id).await.unwrap();
    remove(&mut rt, &id).await.unwrap();
    assert_eq!(
        status(&mut rt, &id).await.unwrap_err().code(),
        Code::NotFound
    );
    assert!(list(&mut rt, None).await.iter().all(|p| p.id != id));
    assert!(
        docker().await.inspect_container(&id, None).await.is_err(),
        "pause container gone"
    );
}

#[tokio::test]
async fn host_namespaces() {
    let server = Server::start(&[]).await;
    let mut rt = server.runtime().await;
    let (mut config, _cleanup) = pod_config("hostns");
    use api::NamespaceMode::Node;
    with_namespaces(&mut config, Node, Node, Node);
    let id = run(&mut rt, &config).await.unwrap();
    let s = status(&mut rt, &id).await.unwrap().status.unwrap();
    let ns = s.linux.unwrap().namespaces.unwrap().options.unwrap();
    assert_eq!(
        (ns.network, ns.pid, ns.ipc),
        (Node as i32, Node as i32, Node as i32)
    );
    assert_eq!(
        s.network.unwrap_or_default().ip,
        "",
        "host-network pods report no pod IP"
    );
    let hc = docker()
        .await
        .inspect_container(&id, None)
        .await
        .unwrap()
        .host_config
        .unwrap();
    assert_eq!(hc.network_mode.as_deref(), Some("host"));
    assert_eq!(hc.pid_mode.as_deref(), Some("host"));
    assert_eq!(hc.ipc_mode.as_deref(), Some("host"));
    stop(&mut rt, &id).await.unwrap();
    remove(&mut rt, &id).await.unwrap();
}

#[tokio::test]
async fn dns_hostname_sysctls_inside_the_pod() {
    let image = TestImage::busybox(None).await;
    let server = Server::start(&[]).await;
    let mut rt = server.runtime().await;
    let (mut config, _cleanup) = pod_config("dns");
    config.dns_config = Some(api::DnsConfig {
        servers: vec!["10.96.0.10".into()],
        searches: vec!["docker-cri-test.svc.cluster.local".into()],
        options: vec!["ndots:5".into()],
    });
    config.linux.get_or_insert_with(Default::default).sysctls = HashMap::from([
        (
            "net.ipv4.ip_local_port_range".to_string(),
            "20000 30000".to_string(),
        ),
        ("kernel.shm_rmid_forced".to_string(), "1".to_string()),
    ]);
    let id = run(&mut rt, &config).await.unwrap();
    let out = run_in_pod(
        &image,
        &id,
        "cat /etc/resolv.conf; echo HOST=$(hostname); echo RANGE=$(cat /proc/sys/net/ipv4/ip_local_port_range); echo SHM=$(cat /proc/sys/kernel/shm_rmid_forced)",
    )
    .await;
    assert!(out.contains("nameserver 10.96.0.10"), "{out}");
    assert!(
        out.contains("search docker-cri-test.svc.cluster.local"),
        "{out}"
    );
    assert!(out.contains("options ndots:5"), "{out}");
    assert!(out.contains("HOST=podhost"), "{out}");
    assert!(
        out.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .contains("RANGE=20000 30000"),
        "{out}"
    );
    assert!(out.contains("SHM=1"), "{out}");
    remove(&mut rt, &id).await.unwrap();
}

#[tokio::test]
async fn port_mapping_is_reachable_on_loopback() {
    let image = TestImage::busybox(None).await;
    let server = Server::start(&[]).await;
    let mut rt = server.runtime().await;
    let (mut config, _cleanup) = pod_config("ports");
    let host_port = common::free_port();
    config.port_mappings = vec![api::PortMapping {
        protocol: api::Protocol::Tcp as i32,
        container_port: 8080,
        host_port: host_port as i32,
        host_ip: "127.0.0.1".into(),
    }];
    let id = run(&mut rt, &config).await.unwrap();
    // A web server in the pod's network namespace, as an app container would be.
    let web = common::start_in_pod(
        &image,
        &id,
        "mkdir -p /www && echo hello-from-pod > /www/index.html && exec httpd -f -p 8080 -h /www",
    )
    .await;
    let mut body = String::new();
    for _ in 0..100 {
        if let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", host_port)) {
            conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let _ = conn.write_all(b"GET /index.html HTTP/1.0\r\n\r\n");
            body.clear();
            let _ = conn.read_to_string(&mut body);
            if body.contains("hello-from-pod") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    common::force_remove(&web).await;
    assert!(body.contains("hello-from-pod"), "got {body:?}");
    remove(&mut rt, &id).await.unwrap();
}

#[tokio::test]
async fn list_filters() {
    let server = Server::start(&[]).await;
    let mut rt = server.runtime().await;
    let (a_cfg, _ca) = pod_config("filter-a");
    let (mut b_cfg, _cb) = pod_config("filter-b");
    let tag = unique("tag");
    b_cfg.labels.insert("tag".into(), tag.clone());
    let a = run(&mut rt, &a_cfg).await.unwrap();
    let b = run(&mut rt, &b_cfg).await.unwrap();
    stop(&mut rt, &a).await.unwrap();

    let by = |id: &str| api::PodSandboxFilter {
        id: id.into(),
        ..Default::default()
    };
    assert_eq!(list(&mut rt, Some(by(&a))).await.len(), 1);
    let prefix = list(&mut rt, Some(by(&b[..12]))).await;
    assert_eq!(prefix.len(), 1);
    assert_eq!(prefix[0].id, b);

    let label = api::PodSandboxFilter {
        label_selector: HashMap::from([("tag".to_string(), tag.clone())]),
        ..Default::default()
    };
    let labelled = list(&mut rt, Some(label.clone())).await;
    assert_eq!(
        labelled.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        vec![b.as_str()]
    );

    let state = |s: i32| Some(api::PodSandboxStateValue { state: s });
    let ready_list = list(
        &mut rt,
        Some(api::PodSandboxFilter {
            state: state(ready()),
            ..Default::default()
        }),
    )
    .await;
    assert!(ready_list.iter().any(|p| p.id == b));
    assert!(ready_list.iter().all(|p| p.id != a));
    let not_ready_list = list(
        &mut rt,
        Some(api::PodSandboxFilter {
            state: state(not_ready()),
            ..Default::default()
        }),
    )
    .await;
    assert!(not_ready_list.iter().any(|p| p.id == a));
    let none = list(
        &mut rt,
        Some(api::PodSandboxFilter {
            state: state(not_ready()),
            ..label
        }),
    )
    .await;
    assert!(none.is_empty());
    // A metadata key docker-cri stored for itself is not a label of the pod.
    let hidden = api::PodSandboxFilter {
        label_selector: HashMap::from([(
            "io.kubernetes.pod.uid".to_string(),
            b_cfg.metadata.as_ref().unwrap().uid.clone(),
        )]),
        ..Default::default()
    };
    assert!(list(&mut rt, Some(hidden)).await.is_empty());

    remove(&mut rt, &a).await.unwrap();
    remove(&mut rt, &b).await.unwrap();
}

#[tokio::test]
async fn concurrent_identical_runs_leave_one_sandbox() {
    let server = Server::start(&[]).await;
    let channel = server.channel().await;
    let (config, _cleanup) = pod_config("twice");
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let mut rt = docker_cri::client::runtime_client(channel.clone());
            let config = config.clone();
            tokio::spawn(async move { run(&mut rt, &config).await })
        })
        .collect();
    let mut ok = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(id) => ok.push(id),
            Err(e) => assert_eq!(e.code(), Code::AlreadyExists, "{e:?}"),
        }
    }
    assert_eq!(ok.len(), 1, "exactly one run succeeds");
    let uid = &config.metadata.as_ref().unwrap().uid;
    let containers =
        common::containers_with_label(&docker().await, &format!("io.kubernetes.pod.uid={uid}"))
            .await;
    assert_eq!(containers, ok, "one pause container, the one returned");
    let mut rt = server.runtime().await;
    remove(&mut rt, &ok[0]).await.unwrap();
}

#[tokio::test]
async fn concurrent_removals_all_succeed() {
    let server = Server::start(&[]).await;
    let channel = server.channel().await;
    let (config, _cleanup) = pod_config("rm20");
    let mut rt = server.runtime().await;
    let id = run(&mut rt, &config).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let mut rt = docker_cri::client::runtime_client(channel.clone());
            let id = id.clone();
            tokio::spawn(async move { remove(&mut rt, &id).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().expect("every concurrent removal succeeds");
    }
    assert!(docker().await.inspect_container(&id, None).await.is_err());
}

#[tokio::test]
async fn restart_keeps_sandboxes_manageable() {
    let root = tempfile::tempdir().unwrap();
    let (config, _cleanup) = pod_config("restart");
    let mut first = Server::start_with_root(root.path(), &[]).await;
    let id = run(&mut first.runtime().await, &config).await.unwrap();
    first.kill();

    let second = Server::start_with_root(root.path(), &[]).await;
    let mut rt = second.runtime().await;
    let listed = list(&mut rt, None).await;
    let mine = listed
        .iter()
        .find(|p| p.id == id)
        .expect("still listed after a restart");
    assert_eq!(mine.state, ready(), "the pod kept running");
    assert_eq!(mine.metadata, config.metadata);
    assert_eq!(
        status(&mut rt, &id).await.unwrap().status.unwrap().labels,
        config.labels
    );
    stop(&mut rt, &id).await.unwrap();
    remove(&mut rt, &id).await.unwrap();
}

#[tokio::test]
async fn checkpoint_outlives_the_docker_container() {
    let root = tempfile::tempdir().unwrap();
    let server = Server::start_with_root(root.path(), &[]).await;
    let mut rt = server.runtime().await;
    let (config, _cleanup) = pod_config("orphan");
    let id = run(&mut rt, &config).await.unwrap();
    assert!(root.path().join("sandbox").join(&id).exists());
    // Docker loses the container behind docker-cri's back.
    docker()
        .await
        .remove_container(
            &id,
            Some(
                bollard::query_parameters::RemoveContainerOptionsBuilder::new()
                    .force(true)
                    .build(),
            ),
        )
        .await
        .unwrap();
    let listed = list(&mut rt, None).await;
    let orphan = listed
        .iter()
        .find(|p| p.id == id)
        .expect("kubelet still sees it to clean up");
    assert_eq!(orphan.state, not_ready());
    assert_eq!(orphan.metadata.as_ref().unwrap().name, "orphan");
    stop(&mut rt, &id).await.unwrap();
    remove(&mut rt, &id).await.unwrap();
    assert!(!root.path().join("sandbox").join(&id).exists());
    assert!(list(&mut rt, None).await.iter().all(|p| p.id != id));
}

#[tokio::test]
async fn foreign_docker_containers_are_invisible_and_untouched() {
    let image = TestImage::busybox(None).await;
    let docker = docker().await;
    let name = unique("foreign");
    let foreign = common::start_plain_container(&image.id, &name).await;
    let server = Server::start(&[]).await;
    let mut rt = server.runtime().await;
    assert!(list(&mut rt, None).await.iter().all(|p| p.id != foreign));
    for reference in [foreign.as_str(), &foreign[..12], name.as_str()] {
        assert_eq!(
            status(&mut rt, reference).await.unwrap_err().code(),
            Code::NotFound
        );
        stop(&mut rt, reference).await.unwrap();
        remove(&mut rt, reference).await.unwrap();
    }
    let still = docker.inspect_container(&foreign, None).await.unwrap();
    assert_eq!(
        still.state.unwrap().running,
        Some(true),
        "not stopped, not removed"
    );
    let _ = docker
        .remove_container(
            &foreign,
            Some(
                bollard::query_parameters::RemoveContainerOptionsBuilder::new()
                    .force(true)
                    .build(),
            ),
        )
        .await;
}

#[tokio::test]
async fn names_with_underscores_round_trip() {
    let server = Server::start(&[]).await;
    let mut rt = server.runtime().await;
    let (mut config, _cleanup) = pod_config("under_score");
    config.metadata.as_mut().unwrap().namespace = "ns_with_underscore".into();
    let id = run(&mut rt, &config).await.unwrap();
    let s = status(&mut rt, &id).await.unwrap().status.unwrap();
    assert_eq!(
        s.metadata, config.metadata,
        "metadata is read from labels, not the name"
    );
    remove(&mut rt, &id).await.unwrap();
}

#[tokio::test]
async fn runtime_handlers_and_cgroup_parent() {
    let server = Server::start(&[]).await;
    let mut rt = server.runtime().await;
    let (mut config, _cleanup) = pod_config("handler");
    let parent = format!("/{}", unique("docker-cri-test"));
    config
        .linux
        .get_or_insert_with(Default::default)
        .cgroup_parent = parent.clone();
    let cgroup_driver = docker()
        .await
        .info()
        .await
        .unwrap()
        .cgroup_driver
        .map(|d| d.to_string());
    let id = rt
        .run_pod_sandbox(api::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: "runc".into(),
        })
        .await;
    if cgroup_driver.as_deref() == Some("systemd") {
        assert_eq!(
            id.unwrap_err().code(),
            Code::InvalidArgument,
            "cgroupfs path under systemd"
        );
        return;
    }
    let id = id.unwrap().into_inner().pod_sandbox_id;
    let s = status(&mut rt, &id).await.unwrap().status.unwrap();
    assert_eq!(s.runtime_handler, "runc");
    let hc = docker()
        .await
        .inspect_container(&id, None)
        .await
        .unwrap()
        .host_config
        .unwrap();
    assert_eq!(hc.runtime.as_deref(), Some("runc"));
    assert_eq!(hc.cgroup_parent.as_deref(), Some(parent.as_str()));
    // The pause container asks for -998; a host that cannot lower scores
    // gets the lowest it allows.
    assert_eq!(
        hc.oom_score_adj,
        Some((-998i64).max(common::host_min_oom_score_adj()))
    );
    remove(&mut rt, &id).await.unwrap();

    let (config2, _c2) = pod_config("nohandler");
    let err = rt
        .run_pod_sandbox(api::RunPodSandboxRequest {
            config: Some(config2),
            runtime_handler: "no-such-runtime".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("no-such-runtime"));
}

#[tokio::test]
async fn bad_sandbox_configs_are_refused_and_leave_nothing() {
    let server = Server::start(&[]).await;
    let mut rt = server.runtime().await;
    let base = || pod_config("bad");
    type Case = (&'static str, Box<dyn Fn(&mut api::PodSandboxConfig)>);
    let cases: Vec<Case> = vec![
        ("metadata", Box::new(|c| c.metadata = None)),
        (
            "name",
            Box::new(|c| c.metadata.as_mut().unwrap().name.clear()),
        ),
        (
            "namespace",
            Box::new(|c| c.metadata.as_mut().unwrap().namespace.clear()),
        ),
        (
            "uid",
            Box::new(|c| c.metadata.as_mut().unwrap().uid.clear()),
        ),
        (
            "name",
            Box::new(|c| c.metadata.as_mut().unwrap().name = "a/b".into()),
        ),
        (
            "sysctls",
            Box::new(|c| {
                c.linux.get_or_insert_with(Default::default).sysctls =
                    HashMap::from([("vm.swappiness".into(), "1".into())]);
            }),
        ),
        (
            "sysctls",
            Box::new(|c| {
                with_namespaces(
                    c,
                    api::NamespaceMode::Node,
                    api::NamespaceMode::Pod,
                    api::NamespaceMode::Pod,
                );
                c.linux.as_mut().unwrap().sysctls =
                    HashMap::from([("net.ipv4.ip_forward".into(), "1".into())]);
            }),
        ),
        (
            "container_port",
            Box::new(|c| {
                c.port_mappings = vec![api::PortMapping {
                    container_port: 70000,
                    host_port: 80,
                    ..Default::default()
                }];
            }),
        ),
        (
            "host_port",
            Box::new(|c| {
                c.port_mappings = vec![api::PortMapping {
                    container_port: 80,
                    host_port: -5,
                    ..Default::default()
                }];
            }),
        ),
        (
            "hostname",
            Box::new(|c| c.hostname = "no spaces allowed".into()),
        ),
        (
            "dns_config",
            Box::new(|c| {
                c.dns_config = Some(api::DnsConfig {
                    servers: vec!["not-an-ip".into()],
                    ..Default::default()
                });
            }),
        ),
        (
            "seccomp",
            Box::new(|c| {
                let sc = c
                    .linux
                    .get_or_insert_with(Default::default)
                    .security_context
                    .get_or_insert_with(Default::default);
                sc.seccomp = Some(api::SecurityProfile {
                    profile_type: api::security_profile::ProfileType::Localhost as i32,
                    localhost_ref: "/nonexistent/docker-cri/profile.json".into(),
                });
            }),
        ),
        (
            "labels",
            Box::new(|c| {
                c.labels
                    .insert("io.kubernetes.docker.type".into(), "container".into());
            }),
        ),
    ];
    for (field, mutate) in cases {
        let (mut config, _cleanup) = base();
        mutate(&mut config);
        let err = run(&mut rt, &config).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert!(
            err.message().contains(field),
            "{field} named in {:?}",
            err.message()
        );
        if let Some(m) = &config.metadata
            && !m.uid.is_empty()
        {
            let left = common::containers_with_label(
                &docker().await,
                &format!("io.kubernetes.pod.uid={}", m.uid),
            )
            .await;
            assert!(left.is_empty(), "{field}: nothing left behind");
        }
    }
    let missing = rt
        .run_pod_sandbox(api::RunPodSandboxRequest::default())
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);
    for rpc_id in ["", "   "] {
        let e = status(&mut rt, rpc_id).await.unwrap_err();
        assert!(
            matches!(e.code(), Code::InvalidArgument | Code::NotFound),
            "{e:?}"
        );
    }
    // The server is alive after all of it.
    list(&mut rt, None).await;
}

#[tokio::test]
async fn user_defined_and_none_networks() {
    let docker = docker().await;
    let network = unique("dcri-net");
    docker
        .create_network(bollard::models::NetworkCreateRequest {
            name: network.clone(),
            driver: Some("bridge".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let custom = Server::start(&["--sandbox-network", &network]).await;
    let mut rt = custom.runtime().await;
    let (config, _c1) = pod_config("usernet");
    let id = run(&mut rt, &config).await.unwrap();
    let s = status(&mut rt, &id).await.unwrap().status.unwrap();
    let ip = s.network.unwrap().ip;
    let inspect = docker
        .inspect_network(
            &network,
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
        .unwrap();
    let attached = inspect.containers.unwrap_or_default();
    assert!(
        attached.contains_key(&id),
        "pause container joined {network}"
    );
    assert!(!ip.is_empty());
    remove(&mut rt, &id).await.unwrap();
    let _ = docker.remove_network(&network).await;

    let none = Server::start(&["--sandbox-network", "none"]).await;
    let mut rt = none.runtime().await;
    let (config, _c2) = pod_config("nonet");
    let id = run(&mut rt, &config).await.unwrap();
    let s = status(&mut rt, &id).await.unwrap().status.unwrap();
    assert_eq!(s.network.unwrap_or_default().ip, "");
    assert_eq!(s.state, ready());
    remove(&mut rt, &id).await.unwrap();
}

#[tokio::test]
async fn sandbox_security_context() {
    let server = Server::start(&[]).await;
    let mut rt = server.runtime().await;
    let (mut config, _cleanup) = pod_config("secctx");
    let sc = config
        .linux
        .get_or_insert_with(Default::default)
        .security_context
        .get_or_insert_with(Default::default);
    sc.run_as_user = Some(api::Int64Value { value: 65534 });
    sc.run_as_group = Some(api::Int64Value { value: 65534 });
    sc.readonly_rootfs = true;
    sc.supplemental_groups = vec![1234];
    sc.seccomp = Some(api::SecurityProfile {
        profile_type: api::security_profile::ProfileType::Unconfined as i32,
        localhost_ref: String::new(),
    });
    let id = run(&mut rt, &config).await.unwrap();
    let c = docker().await.inspect_container(&id, None).await.unwrap();
    assert_eq!(c.config.unwrap().user.as_deref(), Some("65534:65534"));
    let hc = c.host_config.unwrap();
    assert_eq!(hc.readonly_rootfs, Some(true));
    assert_eq!(hc.group_add, Some(vec!["1234".to_string()]));
    assert!(
        hc.security_opt
            .unwrap()
            .contains(&"seccomp=unconfined".to_string())
    );
    assert_eq!(c.state.unwrap().running, Some(true));
    remove(&mut rt, &id).await.unwrap();
}

/// Privileged sandboxes work on a normal host. Where root lacks the needed
/// capabilities (as in some CI sandboxes) the start fails: then the error
/// must name the step and nothing may be left behind.
#[tokio::test]
async fn privileged_sandbox_or_a_clean_failure() {
    let server = Server::start(&[]).await;
    let mut rt = server.runtime().await;
    let (mut config, _cleanup) = pod_config("priv");
    config
        .linux
        .get_or_insert_with(Default::default)
        .security_context
        .get_or_insert_with(Default::default)
        .privileged = true;
    let uid = config.metadata.as_ref().unwrap().uid.clone();
    let host_allows = common::host_runs_privileged(common::test_pause_image(), None).await;
    let outcome = run(&mut rt, &config).await;
    assert_eq!(
        outcome.is_ok(),
        host_allows,
        "docker-cri must do what Docker itself can: {outcome:?}"
    );
    match outcome {
        Ok(id) => {
            let hc = docker()
                .await
                .inspect_container(&id, None)
                .await
                .unwrap()
                .host_config
                .unwrap();
            assert_eq!(hc.privileged, Some(true));
            remove(&mut rt, &id).await.unwrap();
        }
        Err(e) => {
            assert!(
                e.message().contains("starting the pause container"),
                "{e:?}"
            );
            let left = common::containers_with_label(
                &docker().await,
                &format!("io.kubernetes.pod.uid={uid}"),
            )
            .await;
            assert!(left.is_empty(), "a failed run leaves nothing behind");
            assert!(
                list(&mut rt, None)
                    .await
                    .iter()
                    .all(|p| p.metadata.as_ref().unwrap().uid != uid)
            );
        }
    }
}

#[tokio::test]
async fn dual_stack_network_reports_both_ips() {
    let docker = docker().await;
    let network = unique("dcri-v6");
    let created = docker
        .create_network(bollard::models::NetworkCreateRequest {
            name: network.clone(),
            driver: Some("bridge".into()),
            enable_ipv6: Some(true),
            ipam: Some(bollard::models::Ipam {
                config: Some(vec![bollard::models::IpamConfig {
                    subnet: Some(format!("fd00:dc:{:x}::/64", std::process::id() % 0xffff)),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    if let Err(e) = created {
        panic!("this Docker cannot create an IPv6 bridge network: {e}");
    }
    let server = Server::start(&["--sandbox-network", &network]).await;
    let mut rt = server.runtime().await;
    let (config, _cleanup) = pod_config("dual");
    let id = run(&mut rt, &config).await.unwrap();
    let net = status(&mut rt, &id)
        .await
        .unwrap()
        .status
        .unwrap()
        .network
        .unwrap();
    remove(&mut rt, &id).await.unwrap();
    let _ = docker.remove_network(&network).await;
    assert!(net.ip.parse::<std::net::Ipv4Addr>().is_ok(), "{net:?}");
    assert_eq!(net.additional_ips.len(), 1, "{net:?}");
    assert!(
        net.additional_ips[0]
            .ip
            .parse::<std::net::Ipv6Addr>()
            .is_ok(),
        "{net:?}"
    );
}

#[tokio::test]
async fn a_missing_pause_image_that_cannot_be_pulled_is_built_offline() {
    // Port 1 on loopback refuses at once: the pull fails, the build succeeds.
    let pause = format!("127.0.0.1:1/docker-cri-test/{}:3.10", unique("pause"));
    let server = Server::start(&["--pod-infra-container-image", &pause]).await;
    let mut rt = server.runtime().await;
    let (config, _cleanup) = pod_config("offline");
    let id = run(&mut rt, &config).await.unwrap();
    let image = docker()
        .await
        .inspect_image(&pause)
        .await
        .expect("built and tagged");
    assert_eq!(
        image.config.unwrap().entrypoint,
        Some(vec!["/pause".to_string()])
    );
    remove(&mut rt, &id).await.unwrap();
    common::remove_image_quietly(&pause).await;
}
