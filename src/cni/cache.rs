//! The result cache, in libcni's layout and format
//! (`<cache-dir>/results/<network>-<container-id>-<ifname>`, kind
//! `cniCacheV1`): everything DEL needs (the network config as used at ADD,
//! `CNI_ARGS`, capability arguments, the ADD result) survives a restart of
//! docker-cri and a change of the conf directory. A file is written before
//! ADD runs, so even an interrupted ADD is torn down later; it is removed
//! only when DEL succeeds.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CachedInfo {
    pub kind: String,
    #[serde(rename = "containerId")]
    pub container_id: String,
    /// The network config list's bytes, base64 (Go's `[]byte`).
    pub config: String,
    #[serde(rename = "ifName")]
    pub if_name: String,
    #[serde(rename = "networkName")]
    pub network_name: String,
    #[serde(rename = "cniArgs", default, skip_serializing_if = "Vec::is_empty")]
    pub cni_args: Vec<(String, String)>,
    #[serde(
        rename = "capabilityArgs",
        default,
        skip_serializing_if = "Map::is_empty"
    )]
    pub capability_args: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// docker-cri's mark on the entries it wrote. The cache directory may
    /// be shared with other runtimes (libcni's default path is), and GC
    /// must never run DEL for their pods; libcni ignores the extra key.
    #[serde(rename = "dockerCri", default, skip_serializing_if = "is_false")]
    pub docker_cri: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

pub const KIND: &str = "cniCacheV1";

impl CachedInfo {
    pub fn config_json(&self) -> Result<Value, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.config)
            .map_err(|e| format!("cached config is not base64: {e}"))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("cached config is not JSON: {e}"))
    }

    pub fn encode_config(raw: &Value) -> String {
        base64::engine::general_purpose::STANDARD.encode(raw.to_string())
    }
}

fn results_dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join("results")
}

pub fn path(cache_dir: &Path, network: &str, container_id: &str, if_name: &str) -> PathBuf {
    results_dir(cache_dir).join(format!("{network}-{container_id}-{if_name}"))
}

/// Writes atomically (temporary file, fsync, rename).
pub fn write(cache_dir: &Path, info: &CachedInfo) -> std::io::Result<PathBuf> {
    use std::io::Write;
    let dir = results_dir(cache_dir);
    std::fs::create_dir_all(&dir)?;
    let target = path(
        cache_dir,
        &info.network_name,
        &info.container_id,
        &info.if_name,
    );
    let tmp = dir.join(format!(".{}.tmp", info.container_id));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(info).map_err(std::io::Error::other)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, &target)?;
    Ok(target)
}

/// The cache entries of a container, whatever network they were made on.
/// Unreadable entries are reported as errors, not skipped: DEL must not be
/// forgotten silently.
pub fn find(
    cache_dir: &Path,
    container_id: &str,
    if_name: &str,
) -> Vec<(PathBuf, Result<CachedInfo, String>)> {
    if container_id.is_empty() {
        return Vec::new();
    }
    let suffix = format!("-{container_id}-{if_name}");
    read_matching(cache_dir, |name| name.ends_with(&suffix))
}

/// Every entry of the cache (GC's view), sorted by file name.
pub fn all(cache_dir: &Path) -> Vec<(PathBuf, Result<CachedInfo, String>)> {
    read_matching(cache_dir, |_| true)
}

fn read_matching(
    cache_dir: &Path,
    wanted: impl Fn(&str) -> bool,
) -> Vec<(PathBuf, Result<CachedInfo, String>)> {
    let Ok(entries) = std::fs::read_dir(results_dir(cache_dir)) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| wanted(n) && !n.starts_with('.'))
        })
        .map(|p| {
            let info = std::fs::read(&p)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<CachedInfo>(&b).map_err(|e| e.to_string()))
                .map_err(|e| format!("{}: {e}", p.display()));
            (p, info)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
