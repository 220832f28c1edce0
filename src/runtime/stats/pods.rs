//! PodSandboxStats and ListPodSandboxStats: the pod cgroup's CPU, memory and
//! processes, the pause process's network namespace, and the stats of the
//! pod's running containers.

use std::collections::{HashMap, HashSet};

use super::{StatsCollector, kind, label_match, sandbox_attributes, unique};
use crate::api;
use crate::cgroups::Placement;
use crate::docker::view::{ContainerView, Listed};
use crate::error::Result;
use crate::mapping::{labels, stats as map};
use crate::stats::process::{self, DEFAULT_INTERFACE};
use crate::stats::reader::{self, Depth};
use crate::stats::reading::Reading;

/// One running pod as read from the kernel.
pub(super) struct PodReading<'a> {
    pub sandbox: &'a Listed,
    /// The pod cgroup, or the sum of its pause and containers where the
    /// pod has no cgroup of its own (no cgroup parent).
    pub pod: Reading,
    pub interfaces: Option<Vec<crate::stats::parse::Interface>>,
    /// Its running containers, each read once (`None`: not found).
    pub containers: Vec<(&'a Listed, Option<(Placement, Reading)>)>,
}

impl<D: ContainerView> StatsCollector<D> {
    pub async fn pod_sandbox_stats(&self, id: &str) -> Result<api::PodSandboxStats> {
        let listed = self.docker.list(&[labels::TYPE.to_string()]).await?;
        let sandboxes: Vec<Listed> = listed
            .iter()
            .filter(|l| kind(l) == labels::TYPE_SANDBOX)
            .cloned()
            .collect();
        let one = unique(&sandboxes, id, "pod sandbox")?;
        let mut stats = self.pods_stats(&listed, &[one]).await;
        Ok(stats.pop().unwrap_or_else(|| api::PodSandboxStats {
            attributes: Some(sandbox_attributes(one)),
            ..Default::default()
        }))
    }

    pub async fn list_pod_sandbox_stats(
        &self,
        filter: Option<&api::PodSandboxStatsFilter>,
    ) -> Result<Vec<api::PodSandboxStats>> {
        // Sandboxes and containers in one call: every one docker-cri manages
        // carries the type label.
        let listed = self.docker.list(&[labels::TYPE.to_string()]).await?;
        if filter.is_none_or(|f| f.id.is_empty() && f.label_selector.is_empty()) {
            let alive: HashSet<&str> = listed.iter().map(|l| l.id.as_str()).collect();
            self.forget_all_but(&alive);
        }
        let chosen: Vec<&Listed> = listed
            .iter()
            .filter(|l| kind(l) == labels::TYPE_SANDBOX && l.running)
            .filter(|l| {
                filter.is_none_or(|f| l.id.starts_with(&f.id) && label_match(l, &f.label_selector))
            })
            .collect();
        Ok(self.pods_stats(&listed, &chosen).await)
    }

    async fn pods_stats(
        &self,
        listed: &[Listed],
        sandboxes: &[&Listed],
    ) -> Vec<api::PodSandboxStats> {
        let pods = self.read_pods(listed, sandboxes, Depth::Stats).await;
        let mut out = Vec::with_capacity(pods.len());
        for p in pods {
            let r = &p.pod;
            let key = format!("pod:{}", p.sandbox.id);
            let containers = p
                .containers
                .into_iter()
                .filter_map(|(c, read)| {
                    let (_, reading) = read?;
                    Some(self.container_stats_from(c, Some(reading)))
                })
                .collect();
            out.push(api::PodSandboxStats {
                attributes: Some(sandbox_attributes(p.sandbox)),
                linux: Some(api::LinuxPodSandboxStats {
                    cpu: map::cpu(r, self.nano_cores(&key, r)),
                    memory: map::memory(r),
                    network: p
                        .interfaces
                        .as_ref()
                        .map(|i| map::network(r.timestamp_ns, i, DEFAULT_INTERFACE)),
                    process: map::process(r),
                    containers,
                    io: map::io(r),
                }),
                windows: None,
            });
        }
        out
    }

    /// Reads the pods' cgroups, their containers' and their network
    /// counters, each file once, in one blocking task. Sandboxes that are
    /// not running, or that vanished meanwhile, are left out.
    pub(super) async fn read_pods<'a>(
        &self,
        listed: &'a [Listed],
        sandboxes: &[&'a Listed],
        depth: Depth,
    ) -> Vec<PodReading<'a>> {
        let running: Vec<&Listed> = sandboxes.iter().copied().filter(|s| s.running).collect();
        let mut by_pod: HashMap<&str, Vec<&Listed>> = HashMap::new();
        for c in listed {
            if kind(c) == labels::TYPE_CONTAINER
                && c.running
                && let Some(pod) = c.labels.get(labels::SANDBOX_ID)
            {
                by_pod.entry(pod.as_str()).or_default().push(c);
            }
        }
        let mut everyone: Vec<&Listed> = running.clone();
        for s in &running {
            everyone.extend(by_pod.get(s.id.as_str()).into_iter().flatten().copied());
        }
        let known = self.locate(&everyone).await;
        let mut pods = Vec::new();
        let mut jobs = Vec::new();
        for s in running {
            let Some(k) = known.get(&s.id) else { continue };
            let containers = by_pod.remove(s.id.as_str()).unwrap_or_default();
            let placements: Vec<Option<Placement>> = containers
                .iter()
                .map(|c| known.get(&c.id).map(|k| k.placement.clone()))
                .collect();
            jobs.push((k.placement.clone(), k.pod.clone(), placements));
            pods.push((s, containers));
        }
        let (version, proc_root) = (
            self.cgroups.version(),
            self.cgroups.proc_root().to_path_buf(),
        );
        let read = tokio::task::spawn_blocking(move || {
            jobs.into_iter()
                .map(|(pause, pod, placements)| {
                    // Process counts are the pod's; its containers need them
                    // only when they make up the pod's figures.
                    let pod_depth = match depth {
                        Depth::Metrics => Depth::Metrics,
                        _ => Depth::Pod,
                    };
                    let container_depth = match (depth, &pod) {
                        (Depth::Metrics, _) => Depth::Metrics,
                        (_, Some(_)) => Depth::Stats,
                        (_, None) => Depth::Pod,
                    };
                    let containers: Vec<Option<(Placement, Reading)>> = placements
                        .into_iter()
                        .map(|p| {
                            let p = p?;
                            let r = reader::read(&p, version, container_depth);
                            Some((p, r))
                        })
                        .collect();
                    let pod = match pod {
                        Some(pod) => reader::read(&pod, version, pod_depth),
                        None => {
                            let pause = reader::read(&pause, version, pod_depth);
                            Reading::sum(
                                std::iter::once(&pause)
                                    .chain(containers.iter().flatten().map(|(_, r)| r)),
                            )
                        }
                    };
                    let interfaces = reader::first_pid(&pause, version)
                        .and_then(|pid| process::interfaces(&proc_root, pid));
                    (pod, interfaces, containers)
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        pods.into_iter()
            .zip(read)
            .filter(|(_, (pod, _, _))| !pod.is_empty())
            .map(|((sandbox, listed), (pod, interfaces, read))| PodReading {
                sandbox,
                pod,
                interfaces,
                containers: listed.into_iter().zip(read).collect(),
            })
            .collect()
    }
}
