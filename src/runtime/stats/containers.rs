//! ContainerStats and ListContainerStats.

use std::collections::HashSet;

use super::{StatsCollector, container_attributes, kind, label_match, unique};
use crate::api;
use crate::docker::view::{ContainerView, Listed};
use crate::error::Result;
use crate::mapping::{labels, stats as map};
use crate::stats::reader::Depth;
use crate::stats::reading::Reading;

impl<D: ContainerView> StatsCollector<D> {
    pub async fn container_stats(&self, id: &str) -> Result<api::ContainerStats> {
        let listed = self.docker.list(&[type_label()]).await?;
        let one = unique(&listed, id, "container")?;
        let mut stats = self.stats_of(&[one]).await;
        // Gone between the list and the read.
        stats
            .pop()
            .ok_or_else(|| crate::Error::not_found(format!("container {id:?} not found")))
    }

    pub async fn list_container_stats(
        &self,
        filter: Option<&api::ContainerStatsFilter>,
    ) -> Result<Vec<api::ContainerStats>> {
        let mut docker_filter = vec![type_label()];
        if let Some(f) = filter {
            // Narrow on Docker's side; re-checked below.
            docker_filter.extend(f.label_selector.iter().map(|(k, v)| format!("{k}={v}")));
            if f.pod_sandbox_id.len() == 64 {
                docker_filter.push(format!("{}={}", labels::SANDBOX_ID, f.pod_sandbox_id));
            }
        }
        let listed = self.docker.list(&docker_filter).await?;
        let unfiltered = filter.is_none_or(|f| {
            f.id.is_empty() && f.pod_sandbox_id.is_empty() && f.label_selector.is_empty()
        });
        if unfiltered {
            // Sandboxes keep theirs: only pod requests list them.
            let mut alive: HashSet<&str> = listed.iter().map(|l| l.id.as_str()).collect();
            let sandboxes = self.sandbox_ids();
            alive.extend(sandboxes.iter().map(String::as_str));
            self.forget_all_but(&alive);
        }
        let chosen: Vec<&Listed> = listed
            .iter()
            .filter(|l| kind(l) == labels::TYPE_CONTAINER)
            .filter(|l| filter.is_none_or(|f| matches(l, f)))
            .collect();
        Ok(self.stats_of(&chosen).await)
    }

    /// Stats of listed containers: usage for running ones, attributes alone
    /// for the rest (as kubelet expects); ones Docker lost meanwhile are
    /// left out.
    pub(super) async fn stats_of(&self, listed: &[&Listed]) -> Vec<api::ContainerStats> {
        let running: Vec<&Listed> = listed.iter().copied().filter(|l| l.running).collect();
        let known = self.locate(&running).await;
        let placements = running
            .iter()
            .filter_map(|l| known.get(&l.id).map(|k| k.placement.clone()))
            .collect();
        let mut readings = self.read_all(placements, Depth::Stats).await.into_iter();
        let mut out = Vec::with_capacity(listed.len());
        for l in listed {
            let reading = if !l.running {
                None
            } else if known.contains_key(&l.id) {
                readings.next()
            } else {
                // Docker no longer has it, or it stopped before we could
                // find its process.
                continue;
            };
            out.push(self.container_stats_from(l, reading));
        }
        out
    }

    /// One container's stats from its reading (`None`: not running).
    pub(super) fn container_stats_from(
        &self,
        l: &Listed,
        reading: Option<Reading>,
    ) -> api::ContainerStats {
        let mut stats = api::ContainerStats {
            attributes: Some(container_attributes(l)),
            ..Default::default()
        };
        match reading {
            None => {}
            Some(r) if r.is_empty() => {
                // Stopped since: find it afresh if it runs again.
                self.known().remove(&l.id);
            }
            Some(r) => {
                stats.cpu = map::cpu(&r, self.nano_cores(&l.id, &r));
                stats.memory = map::memory(&r);
                stats.swap = map::swap(&r);
                stats.io = map::io(&r);
                stats.writable_layer = self.layers.get(&l.id).map(|u| map::writable_layer(&u));
            }
        }
        stats
    }

    fn sandbox_ids(&self) -> Vec<String> {
        self.known()
            .iter()
            .filter(|(_, k)| k.is_sandbox)
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// Every container docker-cri manages carries its type label.
fn type_label() -> String {
    format!("{}={}", labels::TYPE, labels::TYPE_CONTAINER)
}

fn matches(l: &Listed, f: &api::ContainerStatsFilter) -> bool {
    let sandbox = l.labels.get(labels::SANDBOX_ID).map_or("", String::as_str);
    l.id.starts_with(&f.id)
        && sandbox.starts_with(&f.pod_sandbox_id)
        && label_match(l, &f.label_selector)
}
