//! CNI pod networking: config loading and watching, plugin invocation, result
//! cache, CHECK/STATUS/GC and the hairpin/MTU tuning of plugin configs.

pub mod args;
pub mod cache;
pub mod conf;
pub mod invoke;
pub mod result;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_verbs;
pub mod tuning;
mod verbs;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use args::PodIdentity;
use cache::CachedInfo;
use conf::{Loaded, NetworkList};
pub use verbs::{Checked, GcReport, version_at_least};

/// The interface every pod gets, as in kubelet's runtimes.
pub const IF_NAME: &str = "eth0";
/// Where Debian's containernetworking-plugins puts the plugins; always
/// searched after the configured directories.
pub const DEBIAN_PLUGIN_DIR: &str = "/usr/lib/cni";

/// Where CNI looks, and how long a plugin may take.
#[derive(Debug, Clone)]
pub struct Settings {
    pub conf_dir: PathBuf,
    pub bin_dirs: Vec<PathBuf>,
    pub cache_dir: PathBuf,
    pub plugin_timeout: Duration,
    /// `--hairpin-mode` / `--network-plugin-mtu` fields for the chain.
    pub tuning: tuning::Tuning,
}

type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// The CNI side of pod networking. The conf directory is re-read when its
/// fingerprint changes, checked on `Status` and before every ADD.
pub struct Cni {
    settings: Settings,
    bin_dirs: Vec<PathBuf>,
    loaded: Mutex<Option<(Fingerprint, Loaded)>>,
    /// ADDs share it; GC takes it alone, so no attachment is made between
    /// GC's listing of the valid ones and the plugins' GC.
    gc_lock: tokio::sync::RwLock<()>,
}

impl Cni {
    pub fn new(settings: Settings) -> Cni {
        let mut bin_dirs = settings.bin_dirs.clone();
        if !bin_dirs.iter().any(|d| d == Path::new(DEBIAN_PLUGIN_DIR)) {
            bin_dirs.push(PathBuf::from(DEBIAN_PLUGIN_DIR));
        }
        Cni {
            settings,
            bin_dirs,
            loaded: Mutex::new(None),
            gc_lock: tokio::sync::RwLock::new(()),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The network in use, re-read when the directory changed.
    pub fn network(&self) -> Loaded {
        let print = conf::fingerprint(&self.settings.conf_dir);
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((old, current)) = loaded.as_ref()
            && *old == print
        {
            return current.clone();
        }
        let fresh = conf::load(&self.settings.conf_dir);
        match &fresh {
            Loaded::Ready(list) => tracing::info!(
                network = %list.name,
                file = %list.file.display(),
                "using CNI network config"
            ),
            Loaded::NotReady(why) => tracing::warn!(reason = %why, "CNI network not ready"),
        }
        *loaded = Some((print, fresh.clone()));
        fresh
    }

    /// `Ok` when pods can be networked; otherwise why not.
    pub fn ready(&self) -> std::result::Result<NetworkList, String> {
        match self.network() {
            Loaded::Ready(list) => Ok(list),
            Loaded::NotReady(why) => Err(format!("cni config uninitialized: {why}")),
        }
    }

    /// ADD on the pod's network namespace. The cache entry is written
    /// before the plugins run and completed with the result; a failed ADD
    /// is undone with DEL before the error is returned.
    pub async fn setup(
        &self,
        pod: &PodIdentity,
        netns: &str,
        caps: Map<String, Value>,
    ) -> Result<Vec<IpAddr>> {
        let _no_gc = self.gc_lock.read().await;
        let mut network = self.ready().map_err(Error::FailedPrecondition)?;
        self.settings.tuning.apply(&mut network);
        let mut info = CachedInfo {
            kind: cache::KIND.into(),
            container_id: pod.sandbox_id.clone(),
            config: CachedInfo::encode_config(&network.raw),
            if_name: IF_NAME.into(),
            network_name: network.name.clone(),
            cni_args: args::cni_args(pod),
            capability_args: caps,
            result: None,
            docker_cri: true,
        };
        self.write_cache(&info).await?;
        let added = self.add_chain(&network, &info, netns).await;
        let result = match added {
            Ok(result) => result,
            Err(e) => {
                if let Err(del) = self.teardown(&pod.sandbox_id, netns).await {
                    tracing::warn!(sandbox = %pod.sandbox_id, error = %del, "DEL after a failed ADD failed too; retried at stop or remove");
                }
                return Err(e.context(format!("CNI network {:?}", network.name)));
            }
        };
        let ips = result::pod_ips(&result).map_err(|e| {
            Error::internal(format!(
                "CNI network {:?}: unusable ADD result: {e}",
                network.name
            ))
        });
        info.result = Some(result);
        self.write_cache(&info).await?;
        ips
    }

    async fn add_chain(
        &self,
        network: &NetworkList,
        info: &CachedInfo,
        netns: &str,
    ) -> Result<Value> {
        let args_env = args::cni_args_env(&info.cni_args);
        let call = self.call("ADD", &info.container_id, netns, &args_env);
        let mut prev: Option<Value> = None;
        for plugin in &network.plugins {
            let stdin = args::plugin_stdin(
                plugin,
                &network.name,
                &network.cni_version,
                prev.as_ref(),
                &info.capability_args,
            );
            let ty = plugin_type(plugin);
            if let Some(out) = invoke::run(&call, ty, &stdin).await? {
                prev = Some(out);
            }
        }
        prev.ok_or_else(|| Error::internal("the CNI plugin chain returned no result"))
    }

    /// DEL for every cache entry of the sandbox, plugins in reverse order,
    /// with the cached ADD result as `prevResult`. Each entry is removed
    /// once its DEL succeeded. `Ok(false)`: there was nothing to tear down.
    /// `netns` may be empty: the spec has plugins tolerate a missing one.
    pub async fn teardown(&self, sandbox_id: &str, netns: &str) -> Result<bool> {
        let entries = {
            let dir = self.settings.cache_dir.clone();
            let id = sandbox_id.to_string();
            tokio::task::spawn_blocking(move || cache::find(&dir, &id, IF_NAME))
                .await
                .map_err(|e| Error::internal(format!("CNI cache task: {e}")))?
        };
        if entries.is_empty() {
            return Ok(false);
        }
        for (path, info) in entries {
            let info = info.map_err(|e| Error::internal(format!("CNI result cache: {e}")))?;
            self.del_entry(&path, &info, netns).await?;
        }
        Ok(true)
    }

    /// DEL of one cache entry with the config and result it holds; the
    /// entry goes once DEL succeeded.
    async fn del_entry(&self, path: &Path, info: &CachedInfo, netns: &str) -> Result<()> {
        let network = verbs::cached_network(path, info)?;
        let args_env = args::cni_args_env(&info.cni_args);
        let call = self.call("DEL", &info.container_id, netns, &args_env);
        for plugin in network.plugins.iter().rev() {
            let stdin = args::plugin_stdin(
                plugin,
                &network.name,
                &network.cni_version,
                info.result.as_ref(),
                &info.capability_args,
            );
            invoke::run(&call, plugin_type(plugin), &stdin)
                .await
                .map_err(|e| e.context(format!("CNI network {:?}", network.name)))?;
        }
        match tokio::fs::remove_file(path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::internal(format!("{}: {e}", path.display()))),
        }
        tracing::info!(sandbox = %info.container_id, network = %network.name, "CNI network torn down");
        Ok(())
    }

    /// The pod IPs of the sandbox's last successful ADD, if any is cached.
    pub fn cached_ips(&self, sandbox_id: &str) -> Vec<IpAddr> {
        self.cached_result(sandbox_id)
            .and_then(|(_, r)| result::pod_ips(&r).ok())
            .unwrap_or_default()
    }

    /// The network name and ADD result cached for the sandbox.
    pub fn cached_result(&self, sandbox_id: &str) -> Option<(String, Value)> {
        cache::find(&self.settings.cache_dir, sandbox_id, IF_NAME)
            .into_iter()
            .filter_map(|(_, info)| info.ok())
            .find_map(|info| Some((info.network_name, info.result?)))
    }

    fn call<'a>(
        &'a self,
        command: &'static str,
        id: &'a str,
        netns: &'a str,
        args: &'a str,
    ) -> invoke::Call<'a> {
        invoke::Call {
            command,
            container_id: id,
            netns,
            if_name: IF_NAME,
            args,
            bin_dirs: &self.bin_dirs,
            timeout: self.settings.plugin_timeout,
        }
    }

    async fn write_cache(&self, info: &CachedInfo) -> Result<()> {
        let (dir, info) = (self.settings.cache_dir.clone(), info.clone());
        tokio::task::spawn_blocking(move || cache::write(&dir, &info))
            .await
            .map_err(|e| Error::internal(format!("CNI cache task: {e}")))?
            .map(|_| ())
            .map_err(|e| Error::internal(format!("writing the CNI result cache: {e}")))
    }
}

fn plugin_type(plugin: &Value) -> &str {
    plugin.get("type").and_then(Value::as_str).unwrap_or("")
}
