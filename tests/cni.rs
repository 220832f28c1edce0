//! Pod networking through CNI with Debian's containernetworking-plugins
//! (bridge + host-local + firewall + portmap; Docker brings the `none`
//! namespace's `lo` up, so the loopback plugin has nothing to do):
//! each test writes its own conflist (a bridge and a 10.x.y.0/24 subnet of
//! its own, host-local's store in a temp dir) and starts docker-cri with
//! `--network-plugin cni`. The tests run one at a time and remove the
//! bridge and the shared CNI iptables chains they created.

mod common;

#[path = "common/cni_net.rs"]
mod net;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{PodCleanup, Server, TestImage, force_remove, run_in_pod, start_in_pod, unique};
use docker_cri::api;
use net::{Net, PLUGINS, SERIAL, iptables_save, network_condition, stop_and_remove};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Rt = api::runtime_service_client::RuntimeServiceClient<tonic::transport::Channel>;

fn pod_config(
    name: &str,
    ports: Vec<api::PortMapping>,
    host_network: bool,
) -> api::PodSandboxConfig {
    api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: name.into(),
            namespace: "docker-cri-cni-test".into(),
            uid: unique("uid"),
            attempt: 0,
        }),
        port_mappings: ports,
        linux: Some(api::LinuxPodSandboxConfig {
            security_context: Some(api::LinuxSandboxSecurityContext {
                namespace_options: Some(api::NamespaceOption {
                    network: if host_network {
                        api::NamespaceMode::Node as i32
                    } else {
                        api::NamespaceMode::Pod as i32
                    },
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn run_pod(
    rt: &mut Rt,
    config: &api::PodSandboxConfig,
) -> Result<(String, PodCleanup), tonic::Status> {
    let cleanup = PodCleanup(config.metadata.as_ref().unwrap().uid.clone());
    let id = rt
        .run_pod_sandbox(api::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        })
        .await?
        .into_inner()
        .pod_sandbox_id;
    Ok((id, cleanup))
}

async fn pod_ip(rt: &mut Rt, id: &str) -> Option<String> {
    rt.pod_sandbox_status(api::PodSandboxStatusRequest {
        pod_sandbox_id: id.into(),
        verbose: false,
    })
    .await
    .unwrap()
    .into_inner()
    .status
    .unwrap()
    .network
    .map(|n| n.ip)
}

const HTTPD: &str =
    "mkdir -p /www && echo hello-from-the-pod > /www/index.html && httpd -f -p 80 -h /www";

#[tokio::test]
async fn pods_get_distinct_addresses_and_reach_each_other() {
    let _serial = SERIAL.lock().await;
    let net = Net::new();
    net.write_config();
    let server = net.server().await;
    let mut rt = server.runtime().await;
    let image = TestImage::busybox(None).await;
    let (a, _ca) = run_pod(&mut rt, &pod_config("a", vec![], false))
        .await
        .unwrap();
    let (b, _cb) = run_pod(&mut rt, &pod_config("b", vec![], false))
        .await
        .unwrap();
    let ip_a = pod_ip(&mut rt, &a).await.expect("pod a has an IP");
    let ip_b = pod_ip(&mut rt, &b).await.expect("pod b has an IP");
    assert!(ip_a.starts_with(&format!("{}.", net.prefix)), "{ip_a}");
    assert!(ip_b.starts_with(&format!("{}.", net.prefix)), "{ip_b}");
    assert_ne!(ip_a, ip_b);
    assert_eq!(net.leases().len(), 2);
    assert_eq!(net.veths(), 2);
    let verbose = rt
        .pod_sandbox_status(api::PodSandboxStatusRequest {
            pod_sandbox_id: a.clone(),
            verbose: true,
        })
        .await
        .unwrap()
        .into_inner()
        .info;
    let info = verbose.get("info").expect("verbose info");
    assert!(
        info.contains(&net.name) && info.contains(&format!("{ip_a}/24")),
        "{info}"
    );
    // Verbose status CHECKs the attachment with the real plugins.
    let details: serde_json::Value = serde_json::from_str(info).unwrap();
    assert_eq!(details["cni"]["check"], "passed", "{info}");

    // The pod's own eth0 carries the address CNI reported.
    let shown = run_in_pod(&image, &a, "ip -o -4 addr show eth0; ip -o -4 addr show lo").await;
    assert!(shown.contains(&format!("{ip_a}/24")), "{shown}");
    // lo is up without a loopback plugin: Docker did it for `none`.
    assert!(shown.contains("lo    inet 127.0.0.1/8"), "{shown}");

    // busybox-static's wget segfaults in a scratch image (it does on the
    // host's Docker bridge too): nc speaks the HTTP instead.
    let httpd = start_in_pod(&image, &a, HTTPD).await;
    let fetched = run_in_pod(
        &image,
        &b,
        &format!(
            "for i in $(seq 20); do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {ip_a} 80 && exit 0; sleep 0.5; done; exit 1"
        ),
    )
    .await;
    force_remove(&httpd).await;
    assert!(
        fetched.contains("hello-from-the-pod"),
        "pod b got: {fetched}"
    );

    stop_and_remove(&mut rt, &a).await;
    stop_and_remove(&mut rt, &b).await;
    assert!(net.leases().is_empty(), "{:?}", net.leases());
    assert_eq!(net.veths(), 0);
    assert_eq!(net.cache_entries(), 0);
}

/// portmap DNATs the host port for 127.0.0.1 too (its `snat` sets
/// route_localnet on the bridge), so the test connects to loopback.
#[tokio::test]
async fn host_ports_answer_through_portmap() {
    let _serial = SERIAL.lock().await;
    let net = Net::new();
    net.write_config();
    let server = net.server().await;
    let mut rt = server.runtime().await;
    let image = TestImage::busybox(None).await;
    let host_port = common::free_port();
    let ports = vec![api::PortMapping {
        protocol: api::Protocol::Tcp as i32,
        container_port: 80,
        host_port: host_port as i32,
        host_ip: String::new(),
    }];
    let (id, _c) = run_pod(&mut rt, &pod_config("web", ports, false))
        .await
        .unwrap();
    let httpd = start_in_pod(&image, &id, HTTPD).await;
    let mut answer = String::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Ok(mut s)) = tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::TcpStream::connect(("127.0.0.1", host_port)),
        )
        .await
        {
            let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n").await;
            let mut buf = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut buf)).await;
            answer = String::from_utf8_lossy(&buf).into_owned();
            if answer.contains("hello-from-the-pod") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    force_remove(&httpd).await;
    assert!(
        answer.contains("hello-from-the-pod"),
        "127.0.0.1:{host_port} answered {answer:?}; rules: {:?}",
        net.rules()
    );
    assert!(
        net.rules()
            .iter()
            .any(|r| r.contains(&format!("--dport {host_port}"))),
        "{:?}",
        net.rules()
    );
    stop_and_remove(&mut rt, &id).await;
    assert!(net.rules().is_empty(), "{:?}", net.rules());
    assert!(
        !iptables_save().contains(&format!("--dport {host_port} ")),
        "the host port's DNAT rule is gone"
    );
}

#[tokio::test]
async fn teardown_survives_a_restart_and_docker_forgetting_the_pod() {
    let _serial = SERIAL.lock().await;
    let net = Net::new();
    net.write_config();
    let root = tempfile::tempdir().unwrap();
    let mut server = net.server_with_root(root.path()).await;
    let mut rt = server.runtime().await;
    let ports = |p: u16| {
        vec![api::PortMapping {
            protocol: api::Protocol::Tcp as i32,
            container_port: 80,
            host_port: p as i32,
            host_ip: String::new(),
        }]
    };
    let (kept, _c1) = run_pod(
        &mut rt,
        &pod_config("kept", ports(common::free_port()), false),
    )
    .await
    .unwrap();
    let (lost, _c2) = run_pod(
        &mut rt,
        &pod_config("lost", ports(common::free_port()), false),
    )
    .await
    .unwrap();
    let kept_ip = pod_ip(&mut rt, &kept).await.unwrap();
    assert_eq!(net.leases().len(), 2);
    assert!(!net.rules().is_empty());

    // docker-cri goes away between ADD and DEL; meanwhile Docker loses one
    // pause container altogether (its namespace is gone with it).
    server.kill();
    drop(rt);
    force_remove(&lost).await;
    let server = net.server_with_root(root.path()).await;
    let mut rt = server.runtime().await;
    assert_eq!(
        pod_ip(&mut rt, &kept).await.as_deref(),
        Some(kept_ip.as_str()),
        "the IP is known after a restart"
    );
    stop_and_remove(&mut rt, &kept).await;
    stop_and_remove(&mut rt, &lost).await;
    assert!(net.leases().is_empty(), "{:?}", net.leases());
    assert_eq!(net.veths(), 0);
    assert!(net.rules().is_empty(), "{:?}", net.rules());
    assert_eq!(net.cache_entries(), 0);
    drop(server);
}

/// The 50 create/delete cycles, five pods at a time (each worker
/// runs, checks and removes its pods in turn), with host ports through
/// portmap; what they leave is counted against what was there before.
#[tokio::test]
async fn fifty_cycles_leave_no_ipam_files_veths_or_rules() {
    const WORKERS: usize = 5;
    const CYCLES: usize = 50;
    let _serial = SERIAL.lock().await;
    let net = Net::new();
    net.write_config();
    let server = net.server().await;
    let rt = server.runtime().await;
    let before = (
        net.ipam_files().len(),
        net.veths(),
        net.rules().len(),
        net.cache_entries(),
    );
    assert_eq!(before, (0, 0, 0, 0));
    // One pod first, alone, with a port: the reference firewall and
    // portmap plugins create their shared chains (CNI-FORWARD,
    // CNI-HOSTPORT-DNAT) on first use without tolerating a concurrent
    // creator ("chain exists" fails one of two parallel first ADDs). That
    // race is the plugins'; kubelet would retry the sandbox.
    let mut warm = rt.clone();
    let warm_ports = vec![api::PortMapping {
        protocol: api::Protocol::Tcp as i32,
        container_port: 80,
        host_port: common::free_port() as i32,
        host_ip: String::new(),
    }];
    let (id, _c) = run_pod(&mut warm, &pod_config("warmup", warm_ports, false))
        .await
        .unwrap();
    stop_and_remove(&mut warm, &id).await;
    let workers = (0..WORKERS).map(|w| {
        let mut rt = rt.clone();
        async move {
            let mut seen = Vec::new();
            for i in (w..CYCLES).step_by(WORKERS) {
                let ports = vec![api::PortMapping {
                    protocol: api::Protocol::Tcp as i32,
                    container_port: 80,
                    host_port: common::free_port() as i32,
                    host_ip: String::new(),
                }];
                let (id, _c) = run_pod(&mut rt, &pod_config(&format!("cycle{i}"), ports, false))
                    .await
                    .unwrap_or_else(|e| panic!("cycle {i}: {e:?}"));
                seen.push(pod_ip(&mut rt, &id).await.expect("an IP"));
                stop_and_remove(&mut rt, &id).await;
            }
            seen
        }
    });
    let seen: Vec<String> = futures_util::future::join_all(workers)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(seen.len(), CYCLES);
    // Pods that lived at the same time never shared an address, and
    // host-local hands out the next address each time.
    let distinct: std::collections::HashSet<&String> = seen.iter().collect();
    assert!(distinct.len() >= WORKERS, "{seen:?}");
    assert!(
        seen.iter()
            .all(|ip| ip.starts_with(&format!("{}.", net.prefix))),
        "{seen:?}"
    );
    let after = (
        net.ipam_files().len(),
        net.veths(),
        net.rules().len(),
        net.cache_entries(),
    );
    assert_eq!(
        after,
        before,
        "(IPAM files, veths, rules, cache entries): {:?} {:?}",
        net.ipam_files(),
        net.rules()
    );
}

#[tokio::test]
async fn network_ready_follows_the_conf_dir() {
    let _serial = SERIAL.lock().await;
    let net = Net::new();
    let server = net.server().await;
    let mut rt = server.runtime().await;

    let cond = network_condition(&mut rt).await;
    assert!(!cond.status);
    assert_eq!(cond.reason, "NetworkPluginNotReady");
    assert!(
        cond.message.contains("no valid network config"),
        "{}",
        cond.message
    );
    let Err(err) = run_pod(&mut rt, &pod_config("early", vec![], false)).await else {
        panic!("RunPodSandbox succeeded without a network config");
    };
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert!(
        err.message().contains("network is not ready"),
        "{}",
        err.message()
    );

    // A host-network pod never needs CNI.
    let (host, _c) = run_pod(&mut rt, &pod_config("host", vec![], true))
        .await
        .unwrap();
    stop_and_remove(&mut rt, &host).await;
    assert_eq!(net.cache_entries(), 0);

    std::fs::write(
        net.conf_dir().join("10-broken.conflist"),
        "{\"name\": \"x\", ",
    )
    .unwrap();
    let cond = network_condition(&mut rt).await;
    assert!(!cond.status);
    assert!(
        cond.message.contains("10-broken.conflist: not JSON"),
        "{}",
        cond.message
    );

    // A later valid file is used; the broken one stays skipped.
    std::fs::write(net.conf_dir().join("20-good.conflist"), net.conflist()).unwrap();
    let cond = network_condition(&mut rt).await;
    assert!(cond.status, "{cond:?}");
    let verbose = rt
        .status(api::StatusRequest { verbose: true })
        .await
        .unwrap()
        .into_inner()
        .info;
    let config = verbose.get("config").expect("verbose config");
    assert!(
        config.contains(&net.name) && config.contains("20-good.conflist"),
        "{config}"
    );
    let (id, _c) = run_pod(&mut rt, &pod_config("late", vec![], false))
        .await
        .unwrap();
    assert!(pod_ip(&mut rt, &id).await.is_some());
    stop_and_remove(&mut rt, &id).await;
    assert!(net.leases().is_empty());

    // Removing it makes the node's network not ready again.
    std::fs::remove_file(net.conf_dir().join("20-good.conflist")).unwrap();
    assert!(!network_condition(&mut rt).await.status);
}

/// A last plugin of the chain that fails DEL while `<dir>/fail-del` exists
/// and hangs ADD while `<dir>/hang-add` exists (it passes ADD's result on by
/// printing nothing, which docker-cri tolerates).
fn gate_plugin(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("gate-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = format!(
        "#!/bin/sh\ncat >/dev/null\n\
         if [ \"$CNI_COMMAND\" = DEL ] && [ -e {d}/fail-del ]; then\n\
           echo '{{\"cniVersion\":\"1.0.0\",\"code\":999,\"msg\":\"gate refuses DEL\"}}'; echo gate-stderr >&2; exit 1\nfi\n\
         if [ \"$CNI_COMMAND\" = ADD ] && [ -e {d}/hang-add ]; then exec sleep 60; fi\nexit 0\n",
        d = dir.display()
    );
    std::fs::write(bin.join("gate"), script).unwrap();
    std::fs::set_permissions(bin.join("gate"), std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[tokio::test]
async fn a_failed_del_is_retried_at_remove_and_a_hanging_plugin_times_out() {
    let _serial = SERIAL.lock().await;
    let net = Net::new();
    let mut list: serde_json::Value = serde_json::from_str(&net.conflist()).unwrap();
    list["plugins"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"type": "gate"}));
    std::fs::write(net.conf_dir().join("10-gate.conflist"), list.to_string()).unwrap();
    let bin = gate_plugin(net.dir.path());
    let mut flags = net.flags();
    // Several directories, comma-separated.
    flags[5] = format!("{},{PLUGINS}", bin.display());
    flags.extend(["--cni-plugin-timeout".to_string(), "2s".to_string()]);
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = Server::start(&args).await;
    let mut rt = server.runtime().await;

    let (id, _c) = run_pod(&mut rt, &pod_config("gated", vec![], false))
        .await
        .unwrap();
    assert!(pod_ip(&mut rt, &id).await.is_some());
    std::fs::write(net.dir.path().join("fail-del"), "").unwrap();
    let err = rt
        .stop_pod_sandbox(api::StopPodSandboxRequest {
            pod_sandbox_id: id.clone(),
        })
        .await
        .unwrap_err();
    assert!(
        err.message()
            .contains("CNI error 999: gate refuses DEL; stderr: gate-stderr"),
        "{err:?}"
    );
    // The pod stopped anyway; its lease waits for a DEL that works.
    assert_eq!(net.leases().len(), 1);
    let err = rt
        .remove_pod_sandbox(api::RemovePodSandboxRequest {
            pod_sandbox_id: id.clone(),
        })
        .await
        .unwrap_err();
    assert!(err.message().contains("gate refuses DEL"), "{err:?}");
    assert_eq!(net.cache_entries(), 1);
    std::fs::remove_file(net.dir.path().join("fail-del")).unwrap();
    rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
        pod_sandbox_id: id.clone(),
    })
    .await
    .unwrap();
    assert!(net.leases().is_empty(), "{:?}", net.leases());
    assert_eq!(net.cache_entries(), 0);

    // A plugin that hangs fails RunPodSandbox after the timeout, and what
    // ADD made is undone.
    std::fs::write(net.dir.path().join("hang-add"), "").unwrap();
    let started = Instant::now();
    let Err(err) = run_pod(&mut rt, &pod_config("hang", vec![], false)).await else {
        panic!("RunPodSandbox succeeded with a hanging plugin");
    };
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(err.code(), tonic::Code::DeadlineExceeded, "{err:?}");
    assert!(err.message().contains("CNI plugin gate ADD"), "{err:?}");
    assert!(net.leases().is_empty(), "{:?}", net.leases());
    assert_eq!(net.cache_entries(), 0);
    assert_eq!(net.veths(), 0);
}

/// host-local takes its ranges from `runtimeConfig.ipRanges` (added to any
/// static ones, one address per range set) when the bridge declares the
/// capability: the pod CIDR kubelet sets with UpdateRuntimeConfig decides
/// the pod's address.
#[tokio::test]
async fn the_pod_cidr_reaches_ipam_as_ip_ranges() {
    let _serial = SERIAL.lock().await;
    let net = Net::new();
    let mut list: serde_json::Value = serde_json::from_str(&net.conflist()).unwrap();
    let bridge = &mut list["plugins"][0];
    bridge["capabilities"] = serde_json::json!({"ipRanges": true});
    // No static range: without ipRanges host-local has nothing to lease.
    bridge["ipam"].as_object_mut().unwrap().remove("ranges");
    std::fs::write(net.conf_dir().join("10-ranges.conflist"), list.to_string()).unwrap();
    let server = net.server().await;
    let mut rt = server.runtime().await;
    let pod_cidr = format!("{}.0/24", net.prefix);
    rt.update_runtime_config(api::UpdateRuntimeConfigRequest {
        runtime_config: Some(api::RuntimeConfig {
            network_config: Some(api::NetworkConfig {
                pod_cidr: pod_cidr.clone(),
            }),
        }),
    })
    .await
    .unwrap();
    let (id, _c) = run_pod(&mut rt, &pod_config("ranged", vec![], false))
        .await
        .unwrap();
    let ip = pod_ip(&mut rt, &id).await.expect("an IP");
    assert!(
        ip.starts_with(&format!("{}.", net.prefix)),
        "{ip} is not in the pod CIDR {pod_cidr}"
    );
    stop_and_remove(&mut rt, &id).await;
    assert!(net.leases().is_empty(), "{:?}", net.leases());
}
