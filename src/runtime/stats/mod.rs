//! The stats RPCs: ContainerStats, PodSandboxStats, their List forms and
//! the metrics. One Docker list call per request names the containers;
//! usage comes from the kernel (`crate::stats`). A container's cgroup is
//! found once, from one inspect when first seen running, and remembered: the
//! directory is named after the container ID, so it stays right across
//! restarts of the same container and is forgotten when it can no longer be
//! read. Docker is asked for no usage figure at all.

mod containers;
mod metrics;
mod pods;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use futures_util::StreamExt;

use crate::api;
use crate::cgroups::{Cgroups, Placement};
use crate::docker::view::{ContainerView, Listed};
use crate::error::{Error, Result};
use crate::mapping::labels;
use crate::stats::layer::{Budget, LayerSampler};
use crate::stats::rate::{Rates, Sample};
use crate::stats::reader::{self, Depth};
use crate::stats::reading::Reading;

/// Inspects at most this many unknown containers at once.
const LOCATE_CONCURRENCY: usize = 8;
/// How long a stats call waits for the first figure of a layer it has just
/// found (a container just started): its first walk is usually a
/// millisecond, and stats without the layer would lack `writable_layer`
/// and the `container_fs_*` metrics.
const FIRST_FIGURE_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// Where a running container lives, learnt once.
#[derive(Debug, Clone)]
struct Known {
    placement: Placement,
    /// The pod cgroup, for a sandbox started under a cgroup parent.
    pod: Option<Placement>,
    is_sandbox: bool,
}

pub struct StatsCollector<D> {
    docker: D,
    cgroups: Cgroups,
    sys_root: PathBuf,
    known: Mutex<HashMap<String, Known>>,
    rates: Rates,
    layers: LayerSampler,
}

impl<D: ContainerView> StatsCollector<D> {
    pub fn new(docker: D, cgroups: Cgroups, sys_root: PathBuf, budget: Budget) -> Self {
        StatsCollector {
            docker,
            cgroups,
            sys_root,
            known: Mutex::default(),
            rates: Rates::default(),
            layers: LayerSampler::new(budget),
        }
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<String, Known>> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The placements of running containers, inspecting those not yet
    /// known. Containers Docker no longer has are left out.
    async fn locate(&self, running: &[&Listed]) -> HashMap<String, Known> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        {
            let known = self.known();
            for l in running {
                match known.get(&l.id) {
                    Some(k) => {
                        found.insert(l.id.clone(), k.clone());
                    }
                    None => missing.push((l.id.clone(), kind(l) == labels::TYPE_SANDBOX)),
                }
            }
        }
        let learnt: Vec<(String, Option<Known>)> = futures_util::stream::iter(missing)
            .map(|(id, is_sandbox)| async move {
                let known = self.learn(&id, is_sandbox).await;
                (id, known)
            })
            .buffer_unordered(LOCATE_CONCURRENCY)
            .collect()
            .await;
        {
            let mut known = self.known();
            for (id, k) in &learnt {
                if let Some(k) = k {
                    known.insert(id.clone(), k.clone());
                    found.insert(id.clone(), k.clone());
                }
            }
        }
        let new: Vec<&str> = learnt
            .iter()
            .filter(|(_, k)| k.as_ref().is_some_and(|k| !k.is_sandbox))
            .map(|(id, _)| id.as_str())
            .collect();
        self.layers.first_figures(&new, FIRST_FIGURE_WAIT).await;
        found
    }

    /// One inspect: the process's cgroups, the pod cgroup above a sandbox
    /// with a cgroup parent, and the writable layer to sample.
    async fn learn(&self, id: &str, is_sandbox: bool) -> Option<Known> {
        let details = match self.docker.details(id).await {
            Ok(Some(d)) => d,
            Ok(None) => return None,
            Err(e) => {
                tracing::debug!(container = id, error = %e, "inspect for stats failed");
                return None;
            }
        };
        let pid = details.pid?;
        let placement = match self.cgroups.placement_of(pid) {
            Ok(p) if !p.is_empty() => p,
            _ => return None,
        };
        // A pause container writes nothing worth walking for.
        if let Some(upper) = details.upper_dir.as_ref().filter(|_| !is_sandbox) {
            self.layers.register(id, upper);
        }
        let pod = (is_sandbox && !details.cgroup_parent.is_empty()).then(|| placement.parent());
        Some(Known {
            placement,
            pod,
            is_sandbox,
        })
    }

    /// Reads many cgroups in one blocking task.
    async fn read_all(&self, placements: Vec<Placement>, depth: Depth) -> Vec<Reading> {
        let version = self.cgroups.version();
        tokio::task::spawn_blocking(move || {
            placements
                .iter()
                .map(|p| reader::read(p, version, depth))
                .collect()
        })
        .await
        .unwrap_or_default()
    }

    /// The CPU rate of a cgroup since its previous reading.
    fn nano_cores(&self, key: &str, r: &Reading) -> Option<u64> {
        let cpu = r.cpu.as_ref()?;
        self.rates.observe(
            key,
            Sample {
                timestamp_ns: r.timestamp_ns,
                usage_ns: cpu.usage_ns,
            },
        )
    }

    /// Forgets what belongs to containers no longer listed.
    fn forget_all_but(&self, alive: &std::collections::HashSet<&str>) {
        self.known().retain(|id, _| alive.contains(id.as_str()));
        self.layers.retain(|id| alive.contains(id));
        self.rates
            .retain(|key| alive.contains(key.strip_prefix("pod:").unwrap_or(key)));
    }
}

fn kind(l: &Listed) -> &str {
    l.labels.get(labels::TYPE).map_or("", String::as_str)
}

fn label_match(l: &Listed, selector: &HashMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| l.labels.get(k) == Some(v))
}

/// The one match of an ID or unique prefix.
fn unique<'a>(listed: &'a [Listed], id: &str, what: &str) -> Result<&'a Listed> {
    if id.is_empty() {
        return Err(Error::invalid(format!("{what} ID is required")));
    }
    let mut hits = listed.iter().filter(|l| l.id.starts_with(id));
    match (hits.next(), hits.next()) {
        (Some(l), None) => Ok(l),
        (None, _) => Err(Error::not_found(format!("{what} {id:?} not found"))),
        (Some(_), Some(_)) => Err(Error::invalid(format!(
            "{what} ID prefix {id:?} is ambiguous"
        ))),
    }
}

fn container_attributes(l: &Listed) -> api::ContainerAttributes {
    let (cri_labels, annotations) = labels::split_labels(&l.labels);
    api::ContainerAttributes {
        id: l.id.clone(),
        metadata: Some(labels::container_metadata(&l.labels, &l.name)),
        labels: cri_labels,
        annotations,
    }
}

fn sandbox_attributes(l: &Listed) -> api::PodSandboxAttributes {
    let (cri_labels, annotations) = labels::split_labels(&l.labels);
    api::PodSandboxAttributes {
        id: l.id.clone(),
        metadata: Some(labels::sandbox_metadata(&l.labels, &l.name)),
        labels: cri_labels,
        annotations,
    }
}
