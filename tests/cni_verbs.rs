//! CNI 1.1 through the binary, with a fake plugin (Debian's
//! containernetworking-plugins stop at spec 1.0.0, which has neither
//! STATUS nor GC): STATUS decides NetworkReady, and the startup GC cleans
//! docker-cri's stale cache entries and tells the plugins what is valid.

mod common;

// Shared with tests/cni.rs, which uses the rest of it.
#[path = "common/cni_net.rs"]
#[allow(dead_code)]
mod net;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::Server;
use docker_cri::api;
use net::Net;

type Rt = api::runtime_service_client::RuntimeServiceClient<tonic::transport::Channel>;

async fn network_condition(rt: &mut Rt) -> api::RuntimeCondition {
    rt.status(api::StatusRequest { verbose: false })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.r#type == "NetworkReady")
        .unwrap()
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
