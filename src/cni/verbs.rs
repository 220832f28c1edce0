//! CHECK, STATUS and GC, each only where the network's `cniVersion` has
//! it (CHECK from 0.4.0, STATUS and GC from 1.1.0), as libcni gates them.
//!
//! - STATUS runs on every `Status` call for the network in use; a plugin
//!   that answers with an error makes `NetworkReady` false.
//! - CHECK runs from the result cache (the config and result of the ADD),
//!   on demand: verbose PodSandboxStatus and, once, for the pods found
//!   running at startup. A failure is reported, nothing is re-done: kubelet
//!   decides what to do with a pod whose network broke.
//! - GC: DEL for docker-cri's cache entries whose sandbox no longer exists,
//!   then, on a 1.1.0 network, the plugins' own GC told every attachment
//!   that is still valid.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::cache::{self, CachedInfo};
use super::conf::NetworkList;
use super::{Cni, IF_NAME, args, invoke, plugin_type};
use crate::error::{Error, Result};

/// STATUS is asked on kubelet's Status path: it gets at most this long.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);

/// `a.b.c` at least `min`; a version that does not parse is not.
pub fn version_at_least(version: &str, min: &str) -> bool {
    fn parse(v: &str) -> Option<(u64, u64, u64)> {
        let mut parts = v.trim().split('.').map(|p| p.parse::<u64>().ok());
        let out = (
            parts.next()??,
            parts.next()??,
            parts.next().unwrap_or(Some(0))?,
        );
        parts.next().is_none().then_some(out)
    }
    match (parse(version), parse(min)) {
        (Some(v), Some(m)) => v >= m,
        _ => false,
    }
}

/// What a CHECK came to, besides a failure (which is an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    Passed,
    /// Not run, and why (no cache entry, spec version, `disableCheck`...).
    Skipped(String),
}

/// What one GC pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// Sandbox IDs whose stale cache entries got a successful DEL.
    pub deleted: Vec<String>,
    /// Whether the plugins' GC ran (a 1.1.0 network, every DEL done).
    pub plugins_collected: bool,
    /// One line per failure; the pass goes on past each.
    pub errors: Vec<String>,
}

impl Cni {
    /// `Ok` when pods can be networked: a valid config and, on a 1.1.0
    /// network, every plugin answering STATUS without an error.
    pub async fn status(&self) -> std::result::Result<(), String> {
        let network = self.ready()?;
        if !version_at_least(&network.cni_version, "1.1.0") {
            return Ok(());
        }
        let mut call = self.call("STATUS", "", "", "");
        call.timeout = call.timeout.min(STATUS_TIMEOUT);
        for plugin in &network.plugins {
            let stdin = args::plugin_stdin(
                plugin,
                &network.name,
                &network.cni_version,
                None,
                &Map::new(),
            );
            invoke::run(&call, plugin_type(plugin), &stdin)
                .await
                .map_err(|e| format!("CNI network {:?}: {e}", network.name))?;
        }
        Ok(())
    }

    /// CHECK of the sandbox's cached attachment on `netns`: the plugins in
    /// order, each with the cached ADD result as `prevResult`.
    pub async fn check(&self, sandbox_id: &str, netns: &str) -> Result<Checked> {
        let skipped = |why: &str| Ok(Checked::Skipped(why.to_string()));
        let entries = cache::find(&self.settings.cache_dir, sandbox_id, IF_NAME);
        let Some((path, info)) = entries.into_iter().next() else {
            return skipped("no CNI result cached for this sandbox");
        };
        let info = info.map_err(|e| Error::internal(format!("CNI result cache: {e}")))?;
        let network = cached_network(&path, &info)?;
        if !version_at_least(&network.cni_version, "0.4.0") {
            return skipped(&format!("CNI version {} has no CHECK", network.cni_version));
        }
        if network.raw.get("disableCheck").and_then(Value::as_bool) == Some(true) {
            return skipped("the network config sets disableCheck");
        }
        let Some(result) = info.result.as_ref() else {
            return skipped("ADD did not finish: no result to check");
        };
        if netns.is_empty() {
            return skipped("the sandbox has no network namespace");
        }
        let args_env = args::cni_args_env(&info.cni_args);
        let call = self.call("CHECK", &info.container_id, netns, &args_env);
        for plugin in &network.plugins {
            let stdin = args::plugin_stdin(
                plugin,
                &network.name,
                &network.cni_version,
                Some(result),
                &info.capability_args,
            );
            invoke::run(&call, plugin_type(plugin), &stdin)
                .await
                .map_err(|e| e.context(format!("CNI network {:?}", network.name)))?;
        }
        Ok(Checked::Passed)
    }

    /// One GC pass. `known` lists the sandboxes that exist (in Docker or
    /// in a checkpoint); it is called with ADDs held off, after the cache
    /// was read, so an attachment made meanwhile is never taken for stale.
    pub async fn gc<F, Fut>(&self, known: F) -> Result<GcReport>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<HashSet<String>>>,
    {
        let _alone = self.gc_lock.write().await;
        let dir = self.settings.cache_dir.clone();
        let entries = tokio::task::spawn_blocking(move || cache::all(&dir))
            .await
            .map_err(|e| Error::internal(format!("CNI cache task: {e}")))?;
        let known = known().await?;
        let mut report = GcReport::default();
        // Entries that stay: their attachments are valid for the plugins.
        let mut kept: Vec<CachedInfo> = Vec::new();
        for (path, info) in entries {
            let info = match info {
                Ok(info) => info,
                Err(e) => {
                    report.errors.push(e);
                    continue;
                }
            };
            if !info.docker_cri || known.contains(&info.container_id) {
                kept.push(info);
                continue;
            }
            match self.del_entry(&path, &info, "").await {
                Ok(()) => report.deleted.push(info.container_id.clone()),
                Err(e) => {
                    report.errors.push(format!("{}: {e}", info.container_id));
                    kept.push(info);
                }
            }
        }
        if !report.errors.is_empty() {
            // As libcni: the plugins' GC would free what a failed DEL
            // still needs to find.
            return Ok(report);
        }
        let Ok(network) = self.ready() else {
            return Ok(report);
        };
        if !version_at_least(&network.cni_version, "1.1.0") {
            return Ok(report);
        }
        let valid: Vec<Value> = kept
            .iter()
            .filter(|i| i.network_name == network.name)
            .map(|i| json!({ "containerID": i.container_id, "ifname": i.if_name }))
            .collect();
        let call = self.call("GC", "", "", "");
        for plugin in &network.plugins {
            let stdin = gc_stdin(plugin, &network, &valid);
            if let Err(e) = invoke::run(&call, plugin_type(plugin), &stdin).await {
                report
                    .errors
                    .push(format!("CNI network {:?}: {e}", network.name));
            }
        }
        report.plugins_collected = report.errors.is_empty();
        Ok(report)
    }
}

/// A plugin's GC config: its own, with the valid attachments. The key is
/// `cni.dev/valid-attachments` in the spec; libcni sends the same list as
/// `cni.dev/attachments` too (the spelling of an earlier draft), and so do we.
pub fn gc_stdin(plugin: &Value, network: &NetworkList, valid: &[Value]) -> Value {
    let mut conf = args::plugin_stdin(
        plugin,
        &network.name,
        &network.cni_version,
        None,
        &Map::new(),
    );
    if let Some(obj) = conf.as_object_mut() {
        obj.insert("cni.dev/valid-attachments".into(), valid.to_vec().into());
        obj.insert("cni.dev/attachments".into(), valid.to_vec().into());
    }
    conf
}

/// The network list a cache entry was made with.
pub(super) fn cached_network(path: &std::path::Path, info: &CachedInfo) -> Result<NetworkList> {
    info.config_json()
        .and_then(|raw| NetworkList::from_cached(&raw))
        .map_err(|e| Error::internal(format!("CNI result cache {}: {e}", path.display())))
}
