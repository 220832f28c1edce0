//! A CNI network of one test: its conflist (bridge +
//! host-local + firewall + portmap), temp conf/cache/IPAM directories, and
//! counts of what it leaves on the host (leases, veths, iptables rules).
//! Dropping it removes the bridge and the shared CNI iptables chains.
//! Included by tests/cni.rs and tests/cni_extra.rs, each using part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::common::Server;

pub const PLUGINS: &str = "/usr/lib/cni";

/// The tests share iptables' CNI chains: one at a time.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A CNI network of one test.
pub struct Net {
    pub name: String,
    pub bridge: String,
    /// The subnet's first three octets ("10.213.7").
    pub prefix: String,
    /// The IPv6 /64 of a dual-stack config ("fd0d:1a2b:3c4d").
    pub prefix6: String,
    pub dir: tempfile::TempDir,
    _chains: ChainsGuard,
}

/// The Nets alive in this test process, and whether the shared CNI chains
/// existed before the first of them: they are removed when the last Net
/// goes, never while another test's pods still use them (tests of one
/// binary run in parallel).
static LIVE_NETS: std::sync::Mutex<(usize, bool)> = std::sync::Mutex::new((0, false));

struct ChainsGuard;

impl ChainsGuard {
    fn new() -> Self {
        let mut live = LIVE_NETS.lock().unwrap_or_else(|p| p.into_inner());
        if live.0 == 0 {
            live.1 = iptables_save().contains(":CNI-FORWARD")
                || ip6tables_save().contains(":CNI-FORWARD");
        }
        live.0 += 1;
        ChainsGuard
    }
}

impl Drop for ChainsGuard {
    fn drop(&mut self) {
        let mut live = LIVE_NETS.lock().unwrap_or_else(|p| p.into_inner());
        live.0 -= 1;
        if live.0 == 0 && !live.1 {
            remove_cni_chains();
        }
    }
}

impl Net {
    pub fn new() -> Net {
        assert!(
            Path::new(PLUGINS).join("bridge").exists(),
            "these tests need Debian's containernetworking-plugins in {PLUGINS} \
             (scripts/test.sh installs it)"
        );
        static N: AtomicU32 = AtomicU32::new(0);
        let pid = std::process::id();
        let n = N.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("10.{}.{}", 200 + pid % 50, (pid / 50 + n * 37) % 250 + 1);
        let tag = format!(
            "{:08x}",
            (pid << 8)
                ^ n
                ^ SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos())
        );
        let dir = tempfile::tempdir().unwrap();
        for d in ["conf", "cache", "ipam"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        let tail = &tag[tag.len() - 8..];
        Net {
            name: format!("dcri-test-{tag}"),
            bridge: format!("dcri{tail}"),
            prefix,
            // As Rust and ip print it: hex groups without leading zeros.
            prefix6: format!(
                "fd0d:{:x}:{:x}",
                u16::from_str_radix(&tail[..4], 16).unwrap_or(1),
                u16::from_str_radix(&tail[4..], 16).unwrap_or(1)
            ),
            dir,
            _chains: ChainsGuard::new(),
        }
    }

    pub fn conf_dir(&self) -> PathBuf {
        self.dir.path().join("conf")
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    pub fn conflist(&self) -> String {
        serde_json::json!({
            "cniVersion": "1.0.0",
            "name": self.name,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": self.bridge,
                    "isGateway": true,
                    "ipMasq": false,
                    "hairpinMode": true,
                    "ipam": {
                        "type": "host-local",
                        "dataDir": self.dir.path().join("ipam"),
                        "ranges": [[{"subnet": format!("{}.0/24", self.prefix)}]],
                        "routes": [{"dst": "0.0.0.0/0"}]
                    }
                },
                // Docker sets FORWARD's policy to DROP and br_netfilter
                // sends bridged frames through it: the firewall plugin
                // lets the pod's traffic pass.
                {"type": "firewall", "backend": "iptables"},
                {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}
            ]
        })
        .to_string()
    }

    /// The same chain with a second range set, IPv6: host-local leases one
    /// address from each.
    pub fn conflist_dual_stack(&self) -> String {
        let mut list: serde_json::Value = serde_json::from_str(&self.conflist()).unwrap();
        let ipam = &mut list["plugins"][0]["ipam"];
        ipam["ranges"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!([{"subnet": format!("{}::/64", self.prefix6)}]));
        ipam["routes"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"dst": "::/0"}));
        list.to_string()
    }

    pub fn write_config(&self) {
        std::fs::write(self.conf_dir().join("10-test.conflist"), self.conflist()).unwrap();
    }

    pub fn flags(&self) -> Vec<String> {
        vec![
            "--network-plugin".into(),
            "cni".into(),
            "--cni-conf-dir".into(),
            self.conf_dir().display().to_string(),
            "--cni-bin-dir".into(),
            PLUGINS.into(),
            "--cni-cache-dir".into(),
            self.cache_dir().display().to_string(),
        ]
    }

    pub async fn server(&self) -> Server {
        let flags = self.flags();
        let args: Vec<&str> = flags.iter().map(String::as_str).collect();
        Server::start(&args).await
    }

    pub async fn server_with_root(&self, root: &Path) -> Server {
        let flags = self.flags();
        let args: Vec<&str> = flags.iter().map(String::as_str).collect();
        Server::start_with_root(root, &args).await
    }

    /// host-local's reservations (one file per leased address).
    pub fn leases(&self) -> Vec<String> {
        let dir = self.dir.path().join("ipam").join(&self.name);
        std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(&self.prefix))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every file host-local keeps for this network but its lock and its
    /// last-reserved markers: one per leased address, of either family.
    pub fn ipam_files(&self) -> Vec<String> {
        let dir = self.dir.path().join("ipam").join(&self.name);
        std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n != "lock" && !n.starts_with("last_reserved_ip"))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Interfaces enslaved to the bridge: the pods' host-side veths.
    pub fn veths(&self) -> usize {
        let out = Command::new("ip")
            .args(["-o", "link", "show", "master", &self.bridge])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).lines().count()
    }

    /// iptables rules that name this network or its subnet.
    pub fn rules(&self) -> Vec<String> {
        iptables_save()
            .lines()
            .filter(|l| l.starts_with("-A"))
            .filter(|l| l.contains(&self.name) || l.contains(&format!("{}.", self.prefix)))
            .map(str::to_string)
            .collect()
    }

    /// ip6tables rules that name this network or its IPv6 subnet.
    pub fn rules6(&self) -> Vec<String> {
        ip6tables_save()
            .lines()
            .filter(|l| l.starts_with("-A"))
            .filter(|l| l.contains(&self.name) || l.contains(&format!("{}:", self.prefix6)))
            .map(str::to_string)
            .collect()
    }

    pub fn cache_entries(&self) -> usize {
        std::fs::read_dir(self.cache_dir().join("results"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
        // The shared chains go with the last Net (`ChainsGuard`).
    }
}

pub fn iptables_save() -> String {
    let out = Command::new("iptables-save").output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn ip6tables_save() -> String {
    Command::new("ip6tables-save")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default()
}

/// Removes the chains the firewall and portmap plugins share between pods
/// (CNI-FORWARD, CNI-ADMIN, CNI-HOSTPORT-*) and the jumps to them, for
/// IPv4 and IPv6.
fn remove_cni_chains() {
    remove_cni_chains_of("iptables", &iptables_save());
    remove_cni_chains_of("ip6tables", &ip6tables_save());
}

fn remove_cni_chains_of(tool: &str, saved: &str) {
    let mut table = String::new();
    let mut chains = Vec::new();
    for line in saved.lines() {
        if let Some(t) = line.strip_prefix('*') {
            table = t.to_string();
        } else if let Some(rule) = line.strip_prefix("-A ")
            && rule.contains("-j CNI-")
            && !rule.starts_with("CNI-")
        {
            let mut args = vec!["-t".to_string(), table.clone(), "-D".to_string()];
            args.extend(shell_words(rule));
            let _ = Command::new(tool).args(&args).output();
        } else if let Some(chain) = line.strip_prefix(":CNI-") {
            let name = format!("CNI-{}", chain.split_whitespace().next().unwrap_or(""));
            chains.push((table.clone(), name));
        }
    }
    for (t, c) in &chains {
        let _ = Command::new(tool).args(["-t", t, "-F", c]).output();
    }
    for (t, c) in &chains {
        let _ = Command::new(tool).args(["-t", t, "-X", c]).output();
    }
}

/// iptables-save's quoting: words, with "double quoted" ones kept whole.
fn shell_words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

type Rt = docker_cri::api::runtime_service_client::RuntimeServiceClient<tonic::transport::Channel>;

pub async fn stop_and_remove(rt: &mut Rt, id: &str) {
    use docker_cri::api;
    rt.stop_pod_sandbox(api::StopPodSandboxRequest {
        pod_sandbox_id: id.into(),
    })
    .await
    .unwrap();
    rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
        pod_sandbox_id: id.into(),
    })
    .await
    .unwrap();
}

/// The NetworkReady condition of Status.
pub async fn network_condition(rt: &mut Rt) -> docker_cri::api::RuntimeCondition {
    rt.status(docker_cri::api::StatusRequest { verbose: false })
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
