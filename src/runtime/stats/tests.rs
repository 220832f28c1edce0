//! The stats logic against a fake Docker and the fixture cgroup trees.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::StatsCollector;
use crate::api;
use crate::cgroups::Cgroups;
use crate::docker::view::{ContainerView, Details, Listed};
use crate::error::Result;
use crate::mapping::labels;
use crate::stats::layer::Budget;

#[derive(Default)]
struct FakeDocker {
    listed: Mutex<Vec<Listed>>,
    details: HashMap<String, Details>,
    inspects: AtomicUsize,
    lists: AtomicUsize,
}

impl ContainerView for FakeDocker {
    async fn list(&self, filters: &[String]) -> Result<Vec<Listed>> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        let listed = self.listed.lock().unwrap().clone();
        Ok(listed
            .into_iter()
            .filter(|l| {
                filters.iter().all(|f| match f.split_once('=') {
                    Some((k, v)) => l.labels.get(k).map(String::as_str) == Some(v),
                    None => l.labels.contains_key(f),
                })
            })
            .collect())
    }

    async fn details(&self, id: &str) -> Result<Option<Details>> {
        self.inspects.fetch_add(1, Ordering::SeqCst);
        Ok(self.details.get(id).cloned())
    }
}

const POD: &str = "p000000000000000000000000000000000000000000000000000000000000001";
const C1: &str = "c100000000000000000000000000000000000000000000000000000000000001";
const C2: &str = "c200000000000000000000000000000000000000000000000000000000000002";
const GONE: &str = "c300000000000000000000000000000000000000000000000000000000000003";

fn listed(id: &str, kind: &str, running: bool, extra: &[(&str, &str)]) -> Listed {
    let mut l = HashMap::from([
        (labels::TYPE.to_string(), kind.to_string()),
        (labels::SANDBOX_ID.to_string(), POD.to_string()),
        (
            labels::CONTAINER_NAME.to_string(),
            format!("name-{}", &id[..2]),
        ),
        (labels::POD_NAME.to_string(), "web".to_string()),
        (labels::POD_NAMESPACE.to_string(), "ns".to_string()),
        (labels::POD_UID.to_string(), "uid1".to_string()),
    ]);
    for (k, v) in extra {
        l.insert(k.to_string(), v.to_string());
    }
    Listed {
        id: id.into(),
        name: format!("/k8s_{}", &id[..2]),
        image: "busybox".into(),
        image_id: "sha256:1".into(),
        labels: l,
        running,
        created: 1_700_000_000,
    }
}

fn fixture_cgroups() -> Cgroups {
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/stats/fixtures/v2");
    Cgroups::at(&f.join("cg"), &f.join("proc"), &f.join("hp"))
}

fn collector(fake: FakeDocker) -> StatsCollector<FakeDocker> {
    StatsCollector::new(
        fake,
        fixture_cgroups(),
        "/nonexistent-sys".into(),
        Budget::default(),
    )
}

fn fake() -> FakeDocker {
    FakeDocker {
        listed: Mutex::new(vec![
            listed(POD, labels::TYPE_SANDBOX, true, &[]),
            listed(C1, labels::TYPE_CONTAINER, true, &[("app", "a")]),
            listed(C2, labels::TYPE_CONTAINER, false, &[("app", "b")]),
            listed(GONE, labels::TYPE_CONTAINER, true, &[("app", "a")]),
        ]),
        details: HashMap::from([
            (
                POD.to_string(),
                Details {
                    pid: Some(4242),
                    upper_dir: None,
                    cgroup_parent: "kubepods-burstable-pod1234.slice".into(),
                },
            ),
            (
                C1.to_string(),
                Details {
                    pid: Some(4343),
                    upper_dir: None,
                    cgroup_parent: "kubepods-burstable-pod1234.slice".into(),
                },
            ),
        ]),
        ..Default::default()
    }
}

fn ids(stats: &[api::ContainerStats]) -> Vec<&str> {
    stats
        .iter()
        .map(|s| s.attributes.as_ref().unwrap().id.as_str())
        .collect()
}

#[tokio::test]
async fn running_containers_have_usage_stopped_ones_attributes_and_vanished_ones_none() {
    let c = collector(fake());
    let stats = c.list_container_stats(None).await.unwrap();
    assert_eq!(
        ids(&stats),
        vec![C1, C2],
        "the sandbox and the vanished one are left out"
    );
    let running = &stats[0];
    let attrs = running.attributes.as_ref().unwrap();
    assert_eq!(attrs.metadata.as_ref().unwrap().name, "name-c1");
    assert_eq!(attrs.labels.get("app").map(String::as_str), Some("a"));
    let cpu = running.cpu.as_ref().unwrap();
    assert_eq!(
        cpu.usage_core_nano_seconds.as_ref().unwrap().value,
        1_000_000
    );
    assert_eq!(cpu.usage_nano_cores, None, "no earlier sample yet");
    assert_eq!(
        running
            .memory
            .as_ref()
            .unwrap()
            .working_set_bytes
            .as_ref()
            .unwrap()
            .value,
        7 << 20
    );
    let stopped = &stats[1];
    assert!(stopped.cpu.is_none() && stopped.memory.is_none() && stopped.writable_layer.is_none());
}

#[tokio::test]
async fn each_container_is_inspected_once_then_remembered() {
    let c = collector(fake());
    c.list_container_stats(None).await.unwrap();
    let after_first = c.docker.inspects.load(Ordering::SeqCst);
    // C1 found, GONE asked about and missing.
    assert_eq!(after_first, 2);
    c.list_container_stats(None).await.unwrap();
    // Only the one Docker could not name is asked about again.
    assert_eq!(c.docker.inspects.load(Ordering::SeqCst), after_first + 1);
    assert_eq!(
        c.docker.lists.load(Ordering::SeqCst),
        2,
        "one list per call"
    );
}

#[tokio::test]
async fn filters_by_id_prefix_sandbox_and_labels() {
    let c = collector(fake());
    let by_id = |id: &str| api::ContainerStatsFilter {
        id: id.into(),
        ..Default::default()
    };
    let got = c.list_container_stats(Some(&by_id("c2"))).await.unwrap();
    assert_eq!(ids(&got), vec![C2]);
    let by_label = api::ContainerStatsFilter {
        label_selector: HashMap::from([("app".to_string(), "a".to_string())]),
        ..Default::default()
    };
    assert_eq!(
        ids(&c.list_container_stats(Some(&by_label)).await.unwrap()),
        vec![C1]
    );
    let other_pod = api::ContainerStatsFilter {
        pod_sandbox_id: "ffff".into(),
        ..Default::default()
    };
    assert!(
        c.list_container_stats(Some(&other_pod))
            .await
            .unwrap()
            .is_empty()
    );
    let this_pod = api::ContainerStatsFilter {
        pod_sandbox_id: POD[..6].into(),
        ..Default::default()
    };
    assert_eq!(
        c.list_container_stats(Some(&this_pod)).await.unwrap().len(),
        2
    );
}

#[tokio::test]
async fn container_stats_by_prefix_and_errors() {
    let c = collector(fake());
    let s = c.container_stats("c1").await.unwrap();
    assert_eq!(s.attributes.unwrap().id, C1);
    assert!(c.container_stats("dead").await.unwrap_err().is_not_found());
    assert!(matches!(
        c.container_stats("c").await.unwrap_err(),
        crate::Error::InvalidArgument(_)
    ));
    assert!(c.container_stats(GONE).await.unwrap_err().is_not_found());
    assert!(
        c.container_stats(POD).await.unwrap_err().is_not_found(),
        "a sandbox is no container"
    );
}

#[tokio::test]
async fn pod_stats_read_the_pod_cgroup_and_the_pause_network() {
    let c = collector(fake());
    let stats = c.list_pod_sandbox_stats(None).await.unwrap();
    assert_eq!(stats.len(), 1);
    let pod = &stats[0];
    assert_eq!(
        pod.attributes
            .as_ref()
            .unwrap()
            .metadata
            .as_ref()
            .unwrap()
            .name,
        "web"
    );
    let linux = pod.linux.as_ref().unwrap();
    // The slice above the pause scope, not the pause scope itself.
    assert_eq!(
        linux
            .cpu
            .as_ref()
            .unwrap()
            .usage_core_nano_seconds
            .as_ref()
            .unwrap()
            .value,
        2_600_000_000
    );
    assert_eq!(
        linux
            .process
            .as_ref()
            .unwrap()
            .process_count
            .as_ref()
            .unwrap()
            .value,
        4
    );
    let net = linux.network.as_ref().unwrap();
    let eth0 = net.default_interface.as_ref().unwrap();
    assert_eq!(eth0.name, "eth0");
    assert_eq!(eth0.rx_bytes.as_ref().unwrap().value, 5_000_000);
    // Running containers only, with their own usage.
    assert_eq!(ids(&linux.containers), vec![C1]);
    assert!(linux.containers[0].cpu.is_some());

    let filtered = api::PodSandboxStatsFilter {
        id: "nope".into(),
        ..Default::default()
    };
    assert!(
        c.list_pod_sandbox_stats(Some(&filtered))
            .await
            .unwrap()
            .is_empty()
    );
    let one = c.pod_sandbox_stats(&POD[..4]).await.unwrap();
    assert!(one.linux.is_some());
}

#[tokio::test]
async fn a_pod_without_cgroup_parent_sums_its_parts() {
    let mut f = fake();
    for d in f.details.values_mut() {
        d.cgroup_parent.clear();
    }
    let c = collector(f);
    let stats = c.list_pod_sandbox_stats(None).await.unwrap();
    let cpu = stats[0].linux.as_ref().unwrap().cpu.as_ref().unwrap();
    // pause scope (2.5 s) + C1 (1 ms)
    assert_eq!(
        cpu.usage_core_nano_seconds.as_ref().unwrap().value,
        2_501_000_000
    );
}

#[tokio::test]
async fn metrics_match_their_descriptors() {
    let c = collector(fake());
    let descriptors: HashMap<String, api::MetricDescriptor> = c
        .metric_descriptors()
        .into_iter()
        .map(|d| (d.name.clone(), d))
        .collect();
    let pods = c.pod_sandbox_metrics().await.unwrap();
    assert_eq!(pods.len(), 1);
    assert_eq!(pods[0].pod_sandbox_id, POD);
    let mut names = Vec::new();
    let all = pods[0].metrics.iter().chain(
        pods[0]
            .container_metrics
            .iter()
            .flat_map(|c| c.metrics.iter()),
    );
    for m in all {
        let d = descriptors
            .get(&m.name)
            .unwrap_or_else(|| panic!("{} has no descriptor", m.name));
        assert_eq!(m.label_values.len(), d.label_keys.len(), "{}", m.name);
        names.push(m.name.as_str());
    }
    assert!(names.contains(&"container_network_receive_bytes_total"));
    let ctr = &pods[0].container_metrics[0];
    assert_eq!(ctr.container_id, C1);
    let ws = ctr
        .metrics
        .iter()
        .find(|m| m.name == "container_memory_working_set_bytes")
        .unwrap();
    assert_eq!(ws.value.as_ref().unwrap().value, 7 << 20);
    assert_eq!(
        ws.label_values,
        vec![C1.to_string(), "k8s_c1".into(), "busybox".into()]
    );
}
