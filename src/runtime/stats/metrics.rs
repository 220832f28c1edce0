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
use crate::stats::reader::Depth;

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
        // What the cgroup reading lacks, per container (in pod order): open
        // file descriptors, the layer's filesystem size, device names.
        let wanted: Vec<_> = pods
            .iter()
            .flat_map(|p| p.containers.iter())
            .map(|(c, read)| {
                let devices: Vec<(u64, u64)> = read
                    .as_ref()
                    .map(|(_, r)| r.io.iter().map(|d| (d.major, d.minor)).collect())
                    .unwrap_or_default();
                (
                    read.as_ref().map(|(p, _)| p.clone()),
                    self.layers.get(&c.id),
                    devices,
                )
            })
            .collect();
        let (proc_root, sys_root) = (
            self.cgroups.proc_root().to_path_buf(),
            self.sys_root.clone(),
        );
        let mut extras = tokio::task::spawn_blocking(move || {
            // Per call, as most containers share the node's few devices.
            let mut capacity = std::collections::HashMap::new();
            let mut device_names = std::collections::HashMap::new();
            wanted
                .into_iter()
                .map(|(placement, layer, devices)| {
                    let fds = placement.as_ref().and_then(|p| {
                        let dir = p
                            .unified
                            .as_deref()
                            .or_else(|| p.controller("pids"))
                            .or_else(|| p.controller("cpuacct"))?;
                        Some(process::descriptors(&proc_root, &process::pids_in(dir)))
                    });
                    let fs = layer.as_ref().and_then(|l| {
                        *capacity
                            .entry(l.mountpoint.clone())
                            .or_insert_with(|| fs_capacity(&l.mountpoint))
                    });
                    let names: Vec<((u64, u64), String)> = devices
                        .into_iter()
                        .map(|(major, minor)| {
                            let name = device_names
                                .entry((major, minor))
                                .or_insert_with(|| device_name(&sys_root, major, minor));
                            ((major, minor), name.clone())
                        })
                        .collect();
                    (fds, layer, fs, names)
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default()
        .into_iter();
        let mut out = Vec::with_capacity(pods.len());
        for p in &pods {
            let mut pod = Builder::new(base(p.sandbox), p.pod.timestamp_ns);
            if let Some(interfaces) = &p.interfaces {
                pod.network(interfaces);
            }
            let mut container_metrics = Vec::new();
            for (c, read) in &p.containers {
                let Some((fds, layer, fs, io_names)) = extras.next() else {
                    continue;
                };
                let Some((_, r)) = read else { continue };
                if r.is_empty() {
                    continue;
                }
                let mut b = Builder::new(base(c), r.timestamp_ns);
                b.cgroup(r);
                b.block_io(r, |major, minor| {
                    io_names
                        .iter()
                        .find(|(k, _)| *k == (major, minor))
                        .map_or_else(|| format!("{major}:{minor}"), |(_, n)| n.clone())
                });
                if let Some(layer) = &layer {
                    b.writable_layer(layer, fs);
                }
                b.file_descriptors(fds.map(|(all, _)| all));
                b.sockets(fds.map(|(_, sockets)| sockets));
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
