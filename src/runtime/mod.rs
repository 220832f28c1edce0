//! The runtime: CRI operations carried out on Docker. The gRPC adapters in
//! `server/` call into this; it calls `docker/` and the pure `mapping/`.

mod attach;
pub mod checkpoint;
mod container;
mod criu;
mod events;
mod exec;
mod exec_kill;
mod exec_sync;
mod fs_usage;
pub mod host;
mod image_volume;
mod images;
mod info;
mod logs;
pub mod pause_image;
mod port_forward;
mod sandbox;
mod stats;
pub mod work;

use std::sync::Arc;

use tokio::sync::RwLock;

use crate::config::Config;
use crate::docker::DockerClient;
use crate::error::Result;
use crate::mapping::image::PinnedImages;
use checkpoint::CheckpointStore;
use host::KeyedLocks;

pub use exec::Stdio;
pub use exec_sync::{ExecSyncOutput, MAX_EXEC_SYNC_OUTPUT};
pub use fs_usage::FsUsageSampler;
pub use stats::StatsCollector;

/// A Docker container docker-cri manages (a sandbox or an app container),
/// as much as the RPCs need to know to act on it.
#[derive(Debug, Clone)]
pub(crate) struct Managed {
    pub id: String,
    pub name: String,
    pub labels: std::collections::HashMap<String, String>,
    /// The inspect that resolved a full ID, kept so callers that need it do
    /// not ask Docker twice (status is on kubelet's hot path).
    pub inspected: Option<Box<bollard::models::ContainerInspectResponse>>,
}

pub struct Runtime {
    config: Arc<Config>,
    docker: Arc<DockerClient>,
    pinned: PinnedImages,
    fs_usage: FsUsageSampler,
    /// Set by kubelet through UpdateRuntimeConfig; used by pod networking.
    pod_cidr: RwLock<String>,
    checkpoints: Arc<CheckpointStore>,
    /// Serialises RunPodSandbox per sandbox name.
    sandbox_name_locks: KeyedLocks,
    /// Serialises CreateContainer per container name.
    container_name_locks: KeyedLocks,
    /// Serialises RemoveImage per image ID.
    image_remove_locks: KeyedLocks,
    /// The lowest oom_score_adj the host allows (see `host::min_oom_score_adj`).
    min_oom_score_adj: i64,
    /// One pull-or-build of the sandbox image at a time.
    pause_image_lock: tokio::sync::Mutex<()>,
    /// The host's cgroup hierarchy, for limits Docker has no field for.
    cgroups: crate::cgroups::Cgroups,
    /// What `/metrics` serves.
    metrics: Arc<crate::metrics::Metrics>,
    /// Whether the host enforces SELinux (probed once).
    selinux_enabled: bool,
    /// Whether the host enforces AppArmor (probed once).
    apparmor_enabled: bool,
    /// Containers whose start failed (final: they are never started again),
    /// so ListContainers inspects each only once.
    failed_starts: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Containers whose oom_score_adj change was already noted as skipped.
    oom_update_noted: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Mints exec/attach/port-forward URLs once the streaming server is up.
    streaming: std::sync::OnceLock<Arc<crate::streaming::Streaming>>,
    /// Stats and metrics, read from the kernel.
    stats: StatsCollector<crate::index::view::IndexedView>,
    /// Calls that finish even when their caller goes away; shutdown waits.
    detached: work::WorkTracker,
    /// CNI pod networking; `None` under `--network-plugin docker`.
    cni: Option<Arc<crate::cni::Cni>>,
    /// The CRI log file writers of running containers.
    logs: crate::logs::LogManager,
    /// Sandboxes and containers as Docker's events last showed them.
    index: Arc<crate::index::Index<Arc<DockerClient>>>,
    /// Cancelled when shutdown begins.
    shutting_down: tokio_util::sync::CancellationToken,
    /// Images unpacked for image volumes on Docker before 28.
    image_volumes: image_volume::ImageVolumes,
}

impl Runtime {
    /// Opens docker-cri's state under the root directory; does not contact
    /// Docker.
    pub fn new(config: Arc<Config>) -> Result<Self> {
        let checkpoints = Arc::new(CheckpointStore::open(&config.root_directory)?);
        let min_oom_score_adj = host::min_oom_score_adj();
        if min_oom_score_adj > crate::mapping::sandbox::PAUSE_OOM_SCORE_ADJ {
            tracing::warn!(
                min_oom_score_adj,
                "this host does not allow lowering oom_score_adj (no CAP_SYS_RESOURCE); \
                 negative OOM scores for pause and app containers are clamped to {min_oom_score_adj}"
            );
        }
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let docker = Arc::new(
            DockerClient::new(&config.docker_socket, config.runtime_request_timeout)
                .with_metrics(metrics.clone()),
        );
        let fs_usage = FsUsageSampler::new(docker.clone(), config.image_fs_sample_interval);
        let index = Arc::new(crate::index::Index::new(docker.clone()));
        let logs = crate::logs::LogManager::new(
            Arc::new(
                crate::docker::json_file::DockerLogs::new(docker.clone())
                    .with_known_states(index.clone()),
            ),
            config.root_directory.join("logs"),
            metrics.clone(),
        );
        let stats = StatsCollector::new(
            crate::index::view::IndexedView {
                index: index.clone(),
                docker: docker.clone(),
            },
            crate::cgroups::Cgroups::host(),
            std::path::PathBuf::from("/sys"),
            crate::stats::layer::Budget::default(),
        );
        Ok(Runtime {
            index,
            shutting_down: tokio_util::sync::CancellationToken::new(),
            pinned: PinnedImages::new(&[config.pause_image.as_str()]),
            docker,
            fs_usage,
            pod_cidr: RwLock::new(String::new()),
            checkpoints,
            sandbox_name_locks: KeyedLocks::default(),
            container_name_locks: KeyedLocks::default(),
            image_remove_locks: KeyedLocks::default(),
            min_oom_score_adj,
            pause_image_lock: tokio::sync::Mutex::new(()),
            cgroups: crate::cgroups::Cgroups::host(),
            metrics,
            selinux_enabled: host::selinux_enabled(),
            apparmor_enabled: host::apparmor_enabled(),
            oom_update_noted: Default::default(),
            streaming: std::sync::OnceLock::new(),
            stats,
            failed_starts: Default::default(),
            detached: work::WorkTracker::default(),
            cni: (config.network_plugin == crate::config::NetworkPlugin::Cni).then(|| {
                Arc::new(crate::cni::Cni::new(crate::cni::Settings {
                    conf_dir: config.cni_conf_dir.clone(),
                    bin_dirs: config.cni_bin_dirs.clone(),
                    cache_dir: config.cni_cache_dir.clone(),
                    plugin_timeout: config.cni_plugin_timeout,
                    tuning: config.cni_tuning,
                }))
            }),
            image_volumes: image_volume::ImageVolumes::new(&config.root_directory),
            config,
            logs,
        })
    }

    /// The Docker seccomp option for a profile choice, reading a Localhost
    /// profile from the host. A missing or unreadable file names its path.
    pub(crate) async fn seccomp_security_opt(
        &self,
        choice: &crate::mapping::security::Seccomp,
    ) -> Result<Option<String>> {
        use crate::mapping::security::{Seccomp, seccomp_opt};
        let profile = match choice {
            Seccomp::Localhost(path) => {
                Some(tokio::fs::read_to_string(path).await.map_err(|e| {
                    crate::Error::invalid(format!("seccomp profile {path} cannot be read: {e}"))
                })?)
            }
            _ => None,
        };
        seccomp_opt(choice, profile.as_deref())
    }

    /// Resolves a full ID or unique prefix among the containers of one
    /// docker-cri type (sandbox or container). A full ID — what kubelet
    /// always sends — costs nothing when the index knows it, else one
    /// inspect; a prefix costs one filtered list. Names, other types and
    /// foreign containers never match.
    pub(crate) async fn resolve_managed(&self, id: &str, kind: &str) -> Result<Option<Managed>> {
        use crate::mapping::labels;
        let is_full_id = id.len() == 64
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        // A container's ID and labels never change, so the index's word
        // that this ID is ours and of this kind holds even if it lags: a
        // container removed meanwhile makes the caller's Docker call
        // answer NotFound, which every caller already handles as "gone".
        if is_full_id
            && let Some(known) = self.index.known(id)
            && known.labels.get(labels::TYPE).map(String::as_str) == Some(kind)
        {
            return Ok(Some(Managed {
                id: known.id,
                name: known.name,
                labels: known.labels,
                inspected: None,
            }));
        }
        if is_full_id {
            let Some(c) = self.docker().inspect_container(id).await? else {
                return Ok(None);
            };
            let docker_labels = c
                .config
                .as_ref()
                .and_then(|c| c.labels.clone())
                .unwrap_or_default();
            if docker_labels.get(labels::TYPE).map(String::as_str) != Some(kind)
                || c.id.as_deref() != Some(id)
            {
                return Ok(None);
            }
            return Ok(Some(Managed {
                id: id.to_string(),
                name: c.name.clone().unwrap_or_default(),
                labels: docker_labels,
                inspected: Some(Box::new(c)),
            }));
        }
        let filter = vec![format!("{}={kind}", labels::TYPE)];
        let mut found: Vec<Managed> = self
            .docker()
            .list_containers(&filter)
            .await?
            .into_iter()
            .filter(|c| c.id.as_deref().is_some_and(|cid| cid.starts_with(id)))
            .map(|c| Managed {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .unwrap_or_default(),
                labels: c.labels.unwrap_or_default(),
                inspected: None,
            })
            .collect();
        match found.len() {
            0 | 1 => Ok(found.pop()),
            n => Err(crate::Error::invalid(format!(
                "ID prefix {id:?} is ambiguous ({n} match)"
            ))),
        }
    }

    /// The Docker inspect of a resolved container: the one resolution made,
    /// or a fresh one after a prefix lookup. `None`: it vanished meanwhile.
    pub(crate) async fn take_inspect(
        &self,
        managed: &mut Managed,
    ) -> Result<Option<bollard::models::ContainerInspectResponse>> {
        match managed.inspected.take() {
            Some(inspect) => Ok(Some(*inspect)),
            None => self.docker().inspect_container(&managed.id).await,
        }
    }

    /// Writes a checkpoint off the async workers: it fsyncs.
    pub(crate) async fn save_checkpoint(
        &self,
        id: &str,
        checkpoint: checkpoint::SandboxCheckpoint,
    ) -> Result<()> {
        let (store, id) = (self.checkpoints.clone(), id.to_string());
        tokio::task::spawn_blocking(move || store.write(&id, checkpoint))
            .await
            .map_err(|e| crate::Error::internal(format!("checkpoint task: {e}")))?
    }

    pub(crate) async fn forget_checkpoint(&self, id: &str) -> Result<()> {
        let (store, id) = (self.checkpoints.clone(), id.to_string());
        tokio::task::spawn_blocking(move || store.remove(&id))
            .await
            .map_err(|e| crate::Error::internal(format!("checkpoint task: {e}")))?
    }

    /// An OOM score the host can actually apply.
    pub fn clamp_oom_score_adj(&self, wanted: i64) -> i64 {
        wanted.clamp(self.min_oom_score_adj, 1000)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.metrics
    }

    pub fn docker(&self) -> &DockerClient {
        &self.docker
    }

    /// The Docker client, shared (the streaming server uses it too).
    pub fn docker_handle(&self) -> Arc<DockerClient> {
        self.docker.clone()
    }

    /// Connects Exec/Attach/PortForward to the streaming server; once.
    pub fn set_streaming(&self, streaming: Arc<crate::streaming::Streaming>) {
        let _ = self.streaming.set(streaming);
    }

    pub fn stats(&self) -> &StatsCollector<crate::index::view::IndexedView> {
        &self.stats
    }

    /// The event-fed index; `serve` runs its sync loop.
    pub fn index(&self) -> &Arc<crate::index::Index<Arc<DockerClient>>> {
        &self.index
    }

    /// Makes changes docker-cri just made visible to the next List and
    /// Status (the events that also report them may come later).
    pub(crate) async fn reread(&self, ids: &[&str]) {
        futures_util::future::join_all(ids.iter().map(|id| self.index.refresh(id))).await;
    }

    /// Where calls that must outlive their caller run (see `rpc::detached`).
    pub fn detached_work(&self) -> &work::WorkTracker {
        &self.detached
    }
}
