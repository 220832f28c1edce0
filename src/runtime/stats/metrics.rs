//! ListMetricDescriptors and ListPodSandboxMetrics: cAdvisor's families from
//! the same readings as the stats RPCs (read deeper: limits, throttling,
//! block I/O, threads, file descriptors).

use super::StatsCollector;
use crate::api;
use crate::docker::view::{ContainerView, Listed};
use crate::error::Result;
use crate::mapping::labels;
use crate::stats::metrics::{self, Builder, device_name, fs_capacity};
use crate::stats::process;
use crate::stats::reader::{self, Depth, now_ns};

impl<D: ContainerView> StatsCollector<D> {
    pub fn metric_descriptors(&self) -> Vec<api::MetricDescriptor> {
        metrics::descriptors()
    }

    pub async fn pod_sandbox_metrics(&self) -> Result<Vec<api::PodSandboxMetrics>> {
        let listed = self.docker.list(&[labels::TYPE.to_string()]).await?;
        let sandboxes: Vec<&Listed> = listed
            .iter()
            .filter(|l| super::kind(l) == labels::TYPE_SANDBOX && l.running)
            .collect();
        let pods = self.read_pods(&listed, &sandboxes, Depth::Metrics).await;
        let containers: Vec<&Listed> = pods
            .iter()
            .flat_map(|p| p.containers.iter().copied())
            .collect();
        let known = self.locate(&containers).await;
        let placements: Vec<_> = containers
            .iter()
            .map(|c| known.get(&c.id).map(|k| k.placement.clone()))
            .collect();
        let (version, proc_root, sys_root) = (
            self.cgroups.version(),
            self.cgroups.proc_root().to_path_buf(),
            self.sys_root.clone(),
        );
        let layers: Vec<_> = containers.iter().map(|c| self.layers.get(&c.id)).collect();
        // Everything that touches files, in one blocking task.
        let mut per_container = tokio::task::spawn_blocking(move || {
            let mut capacity = std::collections::HashMap::new();
            placements
                .into_iter()
                .zip(layers)
                .map(|(placement, layer)| {
                    let placement = placement?;
                    let r = reader::read(&placement, version, Depth::Metrics);
                    if r.is_empty() {
                        return None;
                    }
                    let fds = placement
                        .unified
                        .as_deref()
                        .or_else(|| placement.controller("pids"))
                        .or_else(|| placement.controller("cpuacct"))
                        .map(|dir| process::file_descriptors(&proc_root, &process::pids_in(dir)));
                    let fs = layer.as_ref().and_then(|l| {
                        *capacity
                            .entry(l.mountpoint.clone())
                            .or_insert_with(|| fs_capacity(&l.mountpoint))
                    });
                    let mut io_names = Vec::new();
                    for d in &r.io {
                        io_names
                            .push(((d.major, d.minor), device_name(&sys_root, d.major, d.minor)));
                    }
                    Some((r, fds, layer, fs, io_names))
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default()
        .into_iter();
        let mut out = Vec::with_capacity(pods.len());
        for p in &pods {
            let mut pod = Builder::new(base(p.sandbox), p.pod.timestamp_ns.max(now_ns()));
            if let Some(interfaces) = &p.interfaces {
                pod.network(interfaces);
            }
            let mut container_metrics = Vec::new();
            for c in &p.containers {
                let Some(Some((r, fds, layer, fs, io_names))) = per_container.next() else {
                    continue;
                };
                let mut b = Builder::new(base(c), r.timestamp_ns);
                b.cgroup(&r);
                b.block_io(&r, |major, minor| {
                    io_names
                        .iter()
                        .find(|(k, _)| *k == (major, minor))
                        .map_or_else(|| format!("{major}:{minor}"), |(_, n)| n.clone())
                });
                if let Some(layer) = &layer {
                    b.writable_layer(layer, fs);
                }
                b.file_descriptors(fds);
                b.start_time(c.created);
                container_metrics.push(api::ContainerMetrics {
                    container_id: c.id.clone(),
                    metrics: b.finish(),
                });
            }
            out.push(api::PodSandboxMetrics {
                pod_sandbox_id: p.sandbox.id.clone(),
                metrics: pod.finish(),
                container_metrics,
            });
        }
        Ok(out)
    }
}

/// The `id`, `name` and `image` label values: cAdvisor names a container by
/// its runtime name.
fn base(l: &Listed) -> [String; 3] {
    [
        l.id.clone(),
        l.name.trim_start_matches('/').to_string(),
        l.image.clone(),
    ]
}
