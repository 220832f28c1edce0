//! CNI beyond a pod's basic lifecycle (tests/cni.rs), through the binary:
//! dual-stack addresses, bandwidth shaping and the MTU/hairpin flags with
//! Debian's plugins; and CNI 1.1 with a fake plugin (Debian's
//! containernetworking-plugins stop at spec 1.0.0, which has neither
//! STATUS nor GC): STATUS decides NetworkReady, and the startup GC cleans
//! docker-cri's stale cache entries and tells the plugins what is valid.

mod common;

#[path = "common/cni_net.rs"]
mod net;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::collections::HashMap;
use std::process::Command;

use common::{PodCleanup, Server, TestImage, run_in_pod, unique};
use docker_cri::api;
use net::{Net, SERIAL, network_condition, stop_and_remove};

type Rt = api::runtime_service_client::RuntimeServiceClient<tonic::transport::Channel>;

fn pod_config(name: &str, annotations: HashMap<String, String>) -> api::PodSandboxConfig {
    api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: name.into(),
            namespace: "docker-cri-cni-test".into(),
            uid: unique("uid"),
            attempt: 0,
        }),
        annotations,
        ..Default::default()
    }
}

async fn run_pod(rt: &mut Rt, config: &api::PodSandboxConfig) -> (String, PodCleanup) {
    let cleanup = PodCleanup(config.metadata.as_ref().unwrap().uid.clone());
    let id = rt
        .run_pod_sandbox(api::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .pod_sandbox_id;
    (id, cleanup)
}

/// host-local with an IPv4 and an IPv6 range set: the pod gets one of
/// each; `ip` is the IPv4 one (kubelet's primary; cri-dockerd and
/// containerd put IPv4 first too) and `additional_ips` the IPv6 one.
/// Docker 20.10 sets `disable_ipv6=1` in a `none` container's namespace;
/// the reference plugins turn it off there when they add an IPv6
/// address, so the host's own setting does not matter.
#[tokio::test]
async fn dual_stack_gives_an_ipv4_and_an_ipv6_address() {
    let _serial = SERIAL.lock().await;
    let net = Net::new();
    std::fs::write(
        net.conf_dir().join("10-dual.conflist"),
        net.conflist_dual_stack(),
    )
    .unwrap();
    let server = net.server().await;
    let mut rt = server.runtime().await;
    let image = TestImage::busybox(None).await;
    let (id, _c) = run_pod(&mut rt, &pod_config("dual", HashMap::new())).await;
    let network = rt
        .pod_sandbox_status(api::PodSandboxStatusRequest {
            pod_sandbox_id: id.clone(),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap()
        .network
        .expect("a network status");
    assert!(
        network.ip.starts_with(&format!("{}.", net.prefix)),
        "{network:?}"
    );
    let extra: Vec<&str> = network
        .additional_ips
        .iter()
        .map(|p| p.ip.as_str())
        .collect();
    assert_eq!(extra.len(), 1, "{network:?}");
    assert!(
        extra[0].starts_with(&format!("{}:", net.prefix6)),
        "{network:?}"
    );
    assert!(
        extra[0].parse::<std::net::Ipv6Addr>().is_ok(),
        "{network:?}"
    );
    assert_eq!(net.ipam_files().len(), 2, "{:?}", net.ipam_files());
    // Both are on the pod's eth0.
    let shown = run_in_pod(&image, &id, "ip -o addr show eth0").await;
    assert!(shown.contains(&format!("{}/24", network.ip)), "{shown}");
    assert!(shown.contains(&format!("{}/64", extra[0])), "{shown}");
    stop_and_remove(&mut rt, &id).await;
    assert!(net.ipam_files().is_empty(), "{:?}", net.ipam_files());
    assert_eq!(net.veths(), 0);
    assert!(net.rules().is_empty(), "{:?}", net.rules());
    assert!(net.rules6().is_empty(), "{:?}", net.rules6());
    assert_eq!(net.cache_entries(), 0);
}

/// Output of a host command (ip, tc), for what the plugins left.
fn host(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The host-side veth of the network's one pod.
fn host_veth(net: &Net) -> String {
    let links = host("ip", &["-o", "link", "show", "master", &net.bridge]);
    links
        .lines()
        .next()
        .and_then(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
        .unwrap_or_else(|| panic!("no veth on {}: {links}", net.bridge))
}

/// The bandwidth plugin's ifb devices (`bwp…`), which carry egress shaping.
fn ifb_devices() -> Vec<String> {
    host("ip", &["-o", "link", "show", "type", "ifb"])
        .lines()
        .filter_map(|l| l.split(':').nth(1).map(|n| n.trim().to_string()))
        .filter(|n| n.starts_with("bwp"))
        .collect()
}

/// The `kubernetes.io/ingress-bandwidth` / `egress-bandwidth` annotations
/// reach the bandwidth plugin as its `bandwidth` capability: a token bucket
/// on the pod's host-side veth for ingress, an ifb device for egress, both
/// gone with the pod.
#[tokio::test]
async fn bandwidth_annotations_shape_the_pod_through_the_bandwidth_plugin() {
    let _serial = SERIAL.lock().await;
    let net = Net::new();
    let mut list: serde_json::Value = serde_json::from_str(&net.conflist()).unwrap();
    list["plugins"].as_array_mut().unwrap().insert(
        2,
        serde_json::json!({"type": "bandwidth", "capabilities": {"bandwidth": true}}),
    );
    std::fs::write(net.conf_dir().join("10-bw.conflist"), list.to_string()).unwrap();
    let server = net.server().await;
    let mut rt = server.runtime().await;
    let ifbs_before = ifb_devices();
    let annotations = HashMap::from([
        (
            "kubernetes.io/ingress-bandwidth".to_string(),
            "1M".to_string(),
        ),
        (
            "kubernetes.io/egress-bandwidth".to_string(),
            "2M".to_string(),
        ),
    ]);
    let (id, _c) = run_pod(&mut rt, &pod_config("shaped", annotations)).await;
    let veth = host_veth(&net);
    let qdisc = host("tc", &["qdisc", "show", "dev", &veth]);
    assert!(
        qdisc.contains("tbf") && qdisc.contains("rate 1Mbit"),
        "{veth}: {qdisc}"
    );
    let ifbs: Vec<String> = ifb_devices()
        .into_iter()
        .filter(|d| !ifbs_before.contains(d))
        .collect();
    assert_eq!(ifbs.len(), 1, "{ifbs:?}");
    let qdisc = host("tc", &["qdisc", "show", "dev", &ifbs[0]]);
    assert!(
        qdisc.contains("tbf") && qdisc.contains("rate 2Mbit"),
        "{}: {qdisc}",
        ifbs[0]
    );
    stop_and_remove(&mut rt, &id).await;
    assert_eq!(ifb_devices(), ifbs_before);
    assert_eq!(net.veths(), 0);
    assert!(net.ipam_files().is_empty(), "{:?}", net.ipam_files());
    assert_eq!(net.cache_entries(), 0);
}

/// `--network-plugin-mtu` and `--hairpin-mode` reach the real bridge
/// plugin when its config leaves them out: the pod's eth0 has the MTU
/// and the host-side veth hairpins.
#[tokio::test]
async fn mtu_and_hairpin_flags_reach_the_bridge_plugin() {
    let _serial = SERIAL.lock().await;
    let net = Net::new();
    let mut list: serde_json::Value = serde_json::from_str(&net.conflist()).unwrap();
    list["plugins"][0]
        .as_object_mut()
        .unwrap()
        .remove("hairpinMode");
    std::fs::write(net.conf_dir().join("10-tuned.conflist"), list.to_string()).unwrap();
    let mut flags = net.flags();
    flags.extend(
        [
            "--network-plugin-mtu",
            "1400",
            "--hairpin-mode",
            "hairpin-veth",
        ]
        .map(String::from),
    );
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = Server::start(&args).await;
    let mut rt = server.runtime().await;
    let image = TestImage::busybox(None).await;
    let (id, _c) = run_pod(&mut rt, &pod_config("tuned", HashMap::new())).await;
    let mtu = run_in_pod(&image, &id, "cat /sys/class/net/eth0/mtu").await;
    assert_eq!(mtu.trim(), "1400");
    let veth = host_veth(&net);
    let hairpin =
        std::fs::read_to_string(format!("/sys/class/net/{veth}/brport/hairpin_mode")).unwrap();
    assert_eq!(hairpin.trim(), "1", "{veth}");
    stop_and_remove(&mut rt, &id).await;
    assert_eq!(net.veths(), 0);
}

/// A CNI 1.1 plugin (Debian's stop at 1.0.0): STATUS fails with code 50
/// while `<dir>/down` exists; every call is logged to `<dir>/calls` as
/// `<command> <container id>` and its stdin.
fn cni_1_1_plugin(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = format!(
        "#!/bin/sh\ninput=$(cat)\necho \"$CNI_COMMAND ${{CNI_CONTAINERID-}}\" >> {d}/calls\necho \"$input\" >> {d}/calls\n\
         if [ \"$CNI_COMMAND\" = STATUS ] && [ -e {d}/down ]; then\n\
           echo '{{\"cniVersion\":\"1.1.0\",\"code\":50,\"msg\":\"agent not running\"}}'; exit 1\nfi\nexit 0\n",
        d = dir.display()
    );
    std::fs::write(bin.join("fake11"), script).unwrap();
    std::fs::set_permissions(bin.join("fake11"), std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

/// A result cache entry as ADD leaves it; `ours` adds docker-cri's mark.
fn cache_entry(net: &Net, list: &str, id: &str, ours: bool) -> PathBuf {
    use base64::Engine;
    let dir = net.cache_dir().join("results");
    std::fs::create_dir_all(&dir).unwrap();
    let mut entry = serde_json::json!({
        "kind": "cniCacheV1",
        "containerId": id,
        "config": base64::engine::general_purpose::STANDARD.encode(list),
        "ifName": "eth0",
        "networkName": net.name,
        "result": {"cniVersion": "1.1.0", "ips": [{"address": "10.99.0.2/24"}]},
    });
    if ours {
        entry["dockerCri"] = true.into();
    }
    let path = dir.join(format!("{}-{id}-eth0", net.name));
    std::fs::write(&path, entry.to_string()).unwrap();
    path
}

/// Through the binary: STATUS of a 1.1 network decides NetworkReady, and
/// the startup GC runs DEL for docker-cri's stale cache entry (leaving
/// another runtime's alone), then the plugins' GC with what is valid.
#[tokio::test]
async fn cni_1_1_status_and_startup_gc() {
    let _serial = SERIAL.lock().await;
    let net = Net::new();
    let list = serde_json::json!({
        "cniVersion": "1.1.0",
        "name": net.name,
        "plugins": [{"type": "fake11"}]
    })
    .to_string();
    std::fs::write(net.conf_dir().join("10-fake.conflist"), &list).unwrap();
    let stale = format!("{:0>64}", "5ta1e");
    let foreign = format!("{:0>64}", "f0e19");
    let stale_path = cache_entry(&net, &list, &stale, true);
    let foreign_path = cache_entry(&net, &list, &foreign, false);
    let bin = cni_1_1_plugin(net.dir.path());
    std::fs::write(net.dir.path().join("down"), "").unwrap();
    let mut flags = net.flags();
    flags[5] = bin.display().to_string();
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = Server::start(&args).await;
    let mut rt = server.runtime().await;

    let calls = || std::fs::read_to_string(net.dir.path().join("calls")).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !calls().contains("GC ") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let text = calls();
    assert!(text.contains(&format!("DEL {stale}\n")), "{text}");
    assert!(!text.contains(&format!("DEL {foreign}")), "{text}");
    assert!(!stale_path.exists());
    assert!(foreign_path.exists());
    let gc_stdin: serde_json::Value = text
        .lines()
        .skip_while(|l| !l.starts_with("GC"))
        .nth(1)
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no GC stdin in {text}"));
    assert_eq!(
        gc_stdin["cni.dev/valid-attachments"],
        serde_json::json!([{"containerID": foreign, "ifname": "eth0"}]),
        "{gc_stdin}"
    );

    let cond = network_condition(&mut rt).await;
    assert!(!cond.status, "{cond:?}");
    assert_eq!(cond.reason, "NetworkPluginNotReady");
    assert!(
        cond.message
            .contains("CNI plugin fake11 STATUS failed: CNI error 50: agent not running"),
        "{}",
        cond.message
    );
    std::fs::remove_file(net.dir.path().join("down")).unwrap();
    let cond = network_condition(&mut rt).await;
    assert!(cond.status, "{cond:?}");
}
