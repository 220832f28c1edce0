//! Stats and metrics through the real binary against the real dockerd:
//! figures read from the kernel for containers doing known work.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::pod::{ParentedPod, Pod, Runtime, resources};
use common::{Server, unique};
use docker_cri::api;

const MIB: u64 = 1 << 20;

fn v(x: &Option<api::UInt64Value>) -> u64 {
    x.as_ref().expect("value present").value
}

async fn container_stats(rt: &mut Runtime, id: &str) -> api::ContainerStats {
    rt.container_stats(api::ContainerStatsRequest {
        container_id: id.into(),
    })
    .await
    .unwrap()
    .into_inner()
    .stats
    .unwrap()
}

async fn list_container_stats(
    rt: &mut Runtime,
    filter: api::ContainerStatsFilter,
) -> Vec<api::ContainerStats> {
    rt.list_container_stats(api::ListContainerStatsRequest {
        filter: Some(filter),
    })
    .await
    .unwrap()
    .into_inner()
    .stats
}

async fn pod_stats(rt: &mut Runtime, id: &str) -> api::PodSandboxStats {
    rt.pod_sandbox_stats(api::PodSandboxStatsRequest {
        pod_sandbox_id: id.into(),
    })
    .await
    .unwrap()
    .into_inner()
    .stats
    .unwrap()
}

async fn start(pod: &mut Pod, config: &api::ContainerConfig) -> String {
    let id = pod.create(config).await.unwrap();
    pod.start(&id).await.unwrap();
    id
}

async fn run(pod: &mut Pod, name: &str, script: &str) -> String {
    let config = pod.ctr(name, script);
    start(pod, &config).await
}

/// The least share of a core a spinning process can be expected to get
/// here: 0.3 on an idle box, less on a loaded one (a shared 2-core test
/// host may run ten times more runnable threads than cores).
fn spinner_floor_nano_cores() -> u64 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(1.0);
    let share = (0.5 * cores / load.max(1.0)).clamp(0.05, 0.3);
    (share * 1e9) as u64
}

/// `usage_nano_cores` must be exactly the rate between the two cumulative
/// samples the caller saw (the earlier one is the server's base).
fn assert_rate_between(a: &api::CpuUsage, b: &api::CpuUsage) {
    let used = v(&b.usage_core_nano_seconds) - v(&a.usage_core_nano_seconds);
    let wall = (b.timestamp - a.timestamp) as u128;
    let expected = (used as u128 * 1_000_000_000 / wall) as u64;
    let rate = v(&b.usage_nano_cores);
    assert!(
        rate.abs_diff(expected) <= 1,
        "usage_nano_cores {rate}, but {used} ns over {wall} ns is {expected}"
    );
}

/// Polls `f` until it returns `Some`, for up to `secs`.
async fn eventually<T, F, Fut>(secs: u64, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(t) = f().await {
            return Some(t);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn a_busy_container_uses_about_a_core() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let id = run(&mut pod, "burn", "while :; do :; done").await;
    let mut rt = server.runtime().await;
    let first = container_stats(&mut rt, &id).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let second = container_stats(&mut rt, &id).await;
    let (a, b) = (first.cpu.unwrap(), second.cpu.unwrap());
    let used = v(&b.usage_core_nano_seconds) - v(&a.usage_core_nano_seconds);
    assert!(b.timestamp - a.timestamp >= 2_000_000_000);
    assert!(used > 0, "the counter rises");
    // The rate is the rise over the time between the two readings, and a
    // spinner's share of a core on this host.
    assert_rate_between(&a, &b);
    // One core is 1e9; a spinner cannot use more than one.
    let rate = v(&b.usage_nano_cores);
    let floor = spinner_floor_nano_cores();
    assert!(
        (floor..=1_050_000_000).contains(&rate),
        "usage_nano_cores {rate} (at least {floor} expected)"
    );
}

#[tokio::test]
async fn memory_shows_what_a_container_holds_and_its_limit() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    // 48 MiB in the pod's /dev/shm (tmpfs, 64 MiB): anonymous-like memory,
    // charged to the writer and never "inactive file".
    let holder = run(
        &mut pod,
        "hold",
        "dd if=/dev/zero of=/dev/shm/blob bs=1M count=48; sleep 3600",
    )
    .await;
    let mut limited = pod.ctr("limited", "sleep 3600");
    resources(&mut limited).memory_limit_in_bytes = 64 * MIB as i64;
    let limited = start(&mut pod, &limited).await;
    let mut rt = server.runtime().await;

    let ws = eventually(20, || {
        let mut rt = rt.clone();
        let holder = holder.clone();
        async move {
            let m = container_stats(&mut rt, &holder).await.memory?;
            let ws = v(&m.working_set_bytes);
            (ws >= 40 * MIB).then_some((ws, m))
        }
    })
    .await;
    let (ws, m) = ws.expect("the 48 MiB show up in the working set");
    assert!(
        (48 * MIB * 9 / 10..=48 * MIB * 12 / 10).contains(&ws),
        "working set {} MiB for 48 MiB held",
        ws / MIB
    );
    assert!(v(&m.usage_bytes) >= ws);
    assert!(m.page_faults.is_some() && m.major_page_faults.is_some());
    assert!(m.rss_bytes.is_some());
    assert!(m.available_bytes.is_none(), "no limit, no available_bytes");

    let m = container_stats(&mut rt, &limited).await.memory.unwrap();
    let available = v(&m.available_bytes);
    assert!(
        available <= 64 * MIB && available > 60 * MIB,
        "available {available} of a 64 MiB limit with a sleeping shell"
    );
    assert_eq!(available, 64 * MIB - v(&m.working_set_bytes));
}

#[tokio::test]
async fn list_filters_and_stopped_containers() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let mut labelled = pod.ctr("labelled", "sleep 3600");
    let tag = unique("tag");
    labelled.labels.insert("stats-test".into(), tag.clone());
    let a = start(&mut pod, &labelled).await;
    let b = run(&mut pod, "short", "true").await;
    pod.wait_exit(&b).await;
    let mut other = Pod::new(&server).await;
    let c = run(&mut other, "other", "sleep 3600").await;
    let mut rt = server.runtime().await;

    let ids = |s: &[api::ContainerStats]| -> Vec<String> {
        let mut v: Vec<String> = s
            .iter()
            .map(|s| s.attributes.as_ref().unwrap().id.clone())
            .collect();
        v.sort();
        v
    };
    let in_pod = list_container_stats(
        &mut rt,
        api::ContainerStatsFilter {
            pod_sandbox_id: pod.id.clone(),
            ..Default::default()
        },
    )
    .await;
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(ids(&in_pod), want);
    // The exited one is listed, with attributes and no usage.
    let exited = in_pod
        .iter()
        .find(|s| s.attributes.as_ref().unwrap().id == b)
        .unwrap();
    assert_eq!(
        exited
            .attributes
            .as_ref()
            .unwrap()
            .metadata
            .as_ref()
            .unwrap()
            .name,
        "short"
    );
    assert!(exited.cpu.is_none() && exited.memory.is_none());
    let running = in_pod
        .iter()
        .find(|s| s.attributes.as_ref().unwrap().id == a)
        .unwrap();
    assert!(running.cpu.is_some() && running.memory.is_some());

    let by_prefix = list_container_stats(
        &mut rt,
        api::ContainerStatsFilter {
            id: c[..12].to_string(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ids(&by_prefix), vec![c.clone()]);
    let by_label = list_container_stats(
        &mut rt,
        api::ContainerStatsFilter {
            label_selector: HashMap::from([("stats-test".to_string(), tag)]),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ids(&by_label), vec![a.clone()]);
    let by_pod_prefix = list_container_stats(
        &mut rt,
        api::ContainerStatsFilter {
            pod_sandbox_id: other.id[..10].to_string(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ids(&by_pod_prefix), vec![c.clone()]);

    let missing = rt
        .container_stats(api::ContainerStatsRequest {
            container_id: "0123456789ab".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    // A removed container is gone from the list, not an error.
    pod.remove(&b).await.unwrap();
    let after = list_container_stats(
        &mut rt,
        api::ContainerStatsFilter {
            pod_sandbox_id: pod.id.clone(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ids(&after), vec![a]);
}

#[tokio::test]
async fn pod_stats_sum_their_containers_and_count_network_traffic() {
    let server = Server::start(&[]).await;
    let mut p = ParentedPod::new(&server).await;
    let pod = p.pod();
    let burn = run(pod, "burn", "while :; do :; done").await;
    let idle = run(pod, "idle", "sleep 3600").await;
    let mut rt = server.runtime().await;

    let first = pod_stats(&mut rt, &pod.id).await;
    // Traffic out of eth0: ping the bridge's gateway with large packets.
    let ping = run(
        pod,
        "ping",
        "gw=$(ip route | awk '/default/ {print $3}'); ping -c 20 -i 0.2 -s 1200 $gw; sleep 3600",
    )
    .await;
    // Until ping is done, and what it says it got back: on a loaded host
    // it may take longer than its four seconds, and the host's network may
    // drop a reply; the counters must match what really crossed eth0.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let replies = loop {
        let out = common::docker_logs(&ping).await;
        if let Some(n) = out
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .and_then(|l| l.split(", ").nth(1))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
        {
            break n;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ping did not finish: {out}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(replies > 0, "no ping reply came back at all");
    let second = pod_stats(&mut rt, &pod.id).await;

    let attrs = second.attributes.as_ref().unwrap();
    assert_eq!(attrs.id, pod.id);
    assert_eq!(attrs.metadata.as_ref().unwrap().name, "ctrpod");
    let linux = second.linux.as_ref().unwrap();
    let mut ids: Vec<&str> = linux
        .containers
        .iter()
        .map(|c| c.attributes.as_ref().unwrap().id.as_str())
        .collect();
    ids.sort();
    let mut want = vec![burn.as_str(), idle.as_str(), ping.as_str()];
    want.sort();
    assert_eq!(ids, want);

    // The pod cgroup holds every container: its CPU is at least theirs.
    let pod_cpu = v(&linux.cpu.as_ref().unwrap().usage_core_nano_seconds);
    let sum: u64 = linux
        .containers
        .iter()
        .map(|c| v(&c.cpu.as_ref().unwrap().usage_core_nano_seconds))
        .sum();
    assert!(pod_cpu >= sum, "pod {pod_cpu} < containers {sum}");
    assert!(
        pod_cpu < sum + sum / 2 + 1_000_000_000,
        "pod {pod_cpu}, containers {sum}"
    );
    let before_cpu = first.linux.as_ref().unwrap().cpu.unwrap();
    assert_rate_between(&before_cpu, linux.cpu.as_ref().unwrap());
    let rate = v(&linux.cpu.as_ref().unwrap().usage_nano_cores);
    let floor = spinner_floor_nano_cores();
    assert!(
        rate >= floor,
        "pod usage_nano_cores {rate} (at least {floor} expected)"
    );
    let pod_ws = v(&linux.memory.as_ref().unwrap().working_set_bytes);
    let ws_sum: u64 = linux
        .containers
        .iter()
        .map(|c| v(&c.memory.as_ref().unwrap().working_set_bytes))
        .sum();
    assert!(
        pod_ws >= ws_sum,
        "pod working set {pod_ws} < containers {ws_sum}"
    );
    // pause + three shells (+ ping while it runs)
    assert!(v(&linux.process.as_ref().unwrap().process_count) >= 4);

    let before = first.linux.unwrap().network.unwrap();
    let after = linux.network.as_ref().unwrap();
    let (b0, a0) = (
        before.default_interface.unwrap(),
        after.default_interface.clone().unwrap(),
    );
    assert_eq!(a0.name, "eth0");
    assert!(after.interfaces.iter().all(|i| i.name != "lo"));
    let tx = v(&a0.tx_bytes) - v(&b0.tx_bytes);
    let rx = v(&a0.rx_bytes) - v(&b0.rx_bytes);
    assert!(tx >= 20 * 1200, "eth0 sent {tx} bytes for 20 pings of 1200");
    assert!(
        rx >= replies * 1200,
        "eth0 received {rx} bytes for {replies} replies"
    );

    let listed = rt
        .list_pod_sandbox_stats(api::ListPodSandboxStatsRequest {
            filter: Some(api::PodSandboxStatsFilter {
                id: pod.id[..8].to_string(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .stats;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].attributes.as_ref().unwrap().id, pod.id);
}

#[tokio::test]
async fn writable_layer_agrees_with_image_fs_info() {
    let server = Server::start(&["--image-fs-sample-interval", "1s"]).await;
    let mut pod = Pod::new(&server).await;
    let id = run(
        &mut pod,
        "writer",
        "dd if=/dev/urandom of=/big bs=1M count=8; sleep 3600",
    )
    .await;
    let rt = server.runtime().await;
    let mut images = server.images().await;
    // Sampled in the background: the first figure may predate the write.
    let layer = eventually(30, || {
        let mut rt = rt.clone();
        let id = id.clone();
        async move {
            let l = container_stats(&mut rt, &id).await.writable_layer?;
            (v(&l.used_bytes) >= 8 * MIB).then_some(l)
        }
    })
    .await
    .expect("the 8 MiB written show in the writable layer");
    assert!(v(&layer.used_bytes) < 9 * MIB, "{layer:?}");
    assert!(v(&layer.inodes_used) >= 2);
    let fs = images
        .image_fs_info(api::ImageFsInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        layer.fs_id, fs.container_filesystems[0].fs_id,
        "the same filesystem identifier"
    );
    let total = eventually(20, || {
        let mut images = images.clone();
        async move {
            let fs = images
                .image_fs_info(api::ImageFsInfoRequest {})
                .await
                .ok()?
                .into_inner();
            let c = v(&fs.container_filesystems[0].used_bytes);
            (c >= v(&layer.used_bytes)).then_some(c)
        }
    })
    .await;
    assert!(
        total.is_some(),
        "ImageFsInfo's container figure covers this writable layer"
    );
}

#[tokio::test]
async fn metric_descriptors_and_values_agree_with_stats() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let id = run(
        &mut pod,
        "metered",
        "dd if=/dev/zero of=/dev/shm/m bs=1M count=16; sleep 3600",
    )
    .await;
    let mut rt = server.runtime().await;
    let descriptors: HashMap<String, api::MetricDescriptor> = rt
        .list_metric_descriptors(api::ListMetricDescriptorsRequest {})
        .await
        .unwrap()
        .into_inner()
        .descriptors
        .into_iter()
        .map(|d| (d.name.clone(), d))
        .collect();
    for name in [
        "container_cpu_usage_seconds_total",
        "container_memory_working_set_bytes",
        "container_memory_rss",
        "container_memory_cache",
        "container_memory_failures_total",
        "container_network_receive_bytes_total",
        "container_network_transmit_errors_total",
        "container_fs_usage_bytes",
        "container_processes",
        "container_threads",
        "container_file_descriptors",
        "container_start_time_seconds",
        "container_spec_memory_limit_bytes",
    ] {
        let d = descriptors.get(name).unwrap_or_else(|| panic!("no {name}"));
        assert!(!d.help.is_empty());
        assert_eq!(&d.label_keys[..3], ["id", "name", "image"]);
    }
    assert_eq!(
        descriptors["container_network_receive_bytes_total"].label_keys[3],
        "interface"
    );

    let ws = eventually(20, || {
        let mut rt = rt.clone();
        let id = id.clone();
        async move {
            let m = container_stats(&mut rt, &id).await.memory?;
            let ws = v(&m.working_set_bytes);
            (ws >= 14 * MIB).then_some(ws)
        }
    })
    .await
    .expect("16 MiB held");
    let pods = rt
        .list_pod_sandbox_metrics(api::ListPodSandboxMetricsRequest {})
        .await
        .unwrap()
        .into_inner()
        .pod_metrics;
    let ours = pods
        .iter()
        .find(|p| p.pod_sandbox_id == pod.id)
        .expect("our pod has metrics");
    assert!(
        ours.metrics
            .iter()
            .any(|m| m.name == "container_network_receive_bytes_total"
                && m.label_values.last().map(String::as_str) == Some("eth0")),
        "the pod's network"
    );
    let ctr = ours
        .container_metrics
        .iter()
        .find(|c| c.container_id == id)
        .expect("our container has metrics");
    for m in ours.metrics.iter().chain(&ctr.metrics) {
        let d = &descriptors[&m.name];
        assert_eq!(m.label_values.len(), d.label_keys.len(), "{}", m.name);
    }
    let get = |name: &str| {
        ctr.metrics
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let metric_ws = v(&get("container_memory_working_set_bytes").value);
    assert!(
        metric_ws.abs_diff(ws) < 4 * MIB,
        "metric {metric_ws} vs stats {ws}"
    );
    assert_eq!(
        get("container_memory_working_set_bytes").label_values[0],
        id
    );
    assert!(v(&get("container_processes").value) >= 1);
    assert!(v(&get("container_file_descriptors").value) >= 3);
    let started = v(&get("container_start_time_seconds").value);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(started <= now && started + 300 > now);
}

#[tokio::test]
async fn verbose_status_shows_namespaces_and_cgroups() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let a = run(&mut pod, "a", "sleep 3600").await;
    let b = run(&mut pod, "b", "sleep 3600").await;
    let mut rt = server.runtime().await;
    let info = |id: String| {
        let mut rt = rt.clone();
        async move {
            let resp = rt
                .container_status(api::ContainerStatusRequest {
                    container_id: id,
                    verbose: true,
                })
                .await
                .unwrap()
                .into_inner();
            serde_json::from_str::<serde_json::Value>(&resp.info["info"]).unwrap()
        }
    };
    let (ia, ib) = (info(a.clone()).await, info(b.clone()).await);
    let ns = |i: &serde_json::Value, n: &str| i["process"]["namespaces"][n]["inode"].as_u64();
    assert!(ns(&ia, "net").is_some());
    assert_eq!(
        ns(&ia, "net"),
        ns(&ib, "net"),
        "the pod's network is shared"
    );
    assert_eq!(ns(&ia, "ipc"), ns(&ib, "ipc"), "and its IPC");
    assert_ne!(ns(&ia, "mnt"), ns(&ib, "mnt"), "each has its own mounts");
    let pid = ia["pid"].as_i64().unwrap();
    assert_eq!(
        ia["process"]["namespaces"]["net"]["path"],
        format!("/proc/{pid}/ns/net")
    );
    let paths = ia["process"]["cgroupPaths"].as_object().unwrap();
    assert!(
        paths.values().any(|p| p.as_str().unwrap().contains(&a)),
        "the container's cgroup is named after it: {paths:?}"
    );

    let sandbox = rt
        .pod_sandbox_status(api::PodSandboxStatusRequest {
            pod_sandbox_id: pod.id.clone(),
            verbose: true,
        })
        .await
        .unwrap()
        .into_inner();
    let si: serde_json::Value = serde_json::from_str(&sandbox.info["info"]).unwrap();
    assert_eq!(
        ns(&si, "net"),
        ns(&ia, "net"),
        "the pause holds the pod's network"
    );
}
