//! Latency of the stats calls kubelet polls (ListContainerStats,
//! ListPodSandboxStats, ListPodSandboxMetrics) with N running pods of one
//! container each, and the CPU dockerd spends meanwhile (it should be next to
//! nothing: the figures come from cgroup files, not from Docker).
//!
//!     cargo run --release --example stats_bench -- [PODS] [ITERATIONS]
//!
//! Starts docker-cri in-process on a temporary socket against the local
//! Docker, creates PODS sandboxes each with one running container (the
//! configured pause image, so nothing needs pulling), measures, then removes
//! everything it created. Prints the first (cold) call, p50/p99/max latency,
//! and CPU: dockerd's over each measured loop (and with no calls), and
//! CPU milliseconds per call for dockerd and for docker-cri with the client.

use std::sync::Arc;
use std::time::{Duration, Instant};

use docker_cri::api;
use docker_cri::client;
use docker_cri::config::Config;

#[path = "bench_util/mod.rs"]
mod bench_util;
use bench_util::{cpu_ticks, dockerd_pid};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let pods: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(60);
    let iterations: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);

    let dir = tempfile::tempdir()?;
    let socket = dir.path().join("cri.sock");
    let config = Arc::new(Config {
        listen: docker_cri::config::Listen::Unix(socket.clone()),
        root_directory: dir.path().join("root"),
        ..Config::default()
    });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server_config = (*config).clone();
    let server = tokio::spawn(async move {
        docker_cri::server::serve(server_config, async {
            let _ = stop_rx.await;
        })
        .await
    });
    for _ in 0..100 {
        if socket.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let channel = client::connect(&socket).await?;
    let mut rt = client::runtime_client(channel);

    let run_id = std::process::id();
    println!("setting up {pods} pods with one running container each...");
    let setup = Instant::now();
    let mut sandboxes = Vec::new();
    for i in 0..pods {
        let sandbox_config = api::PodSandboxConfig {
            metadata: Some(api::PodSandboxMetadata {
                name: format!("stats-bench-{i}"),
                namespace: "docker-cri-bench".into(),
                uid: format!("stats-bench-{run_id}-{i}"),
                attempt: 0,
            }),
            ..Default::default()
        };
        let sandbox = rt
            .run_pod_sandbox(api::RunPodSandboxRequest {
                config: Some(sandbox_config.clone()),
                runtime_handler: String::new(),
            })
            .await?
            .into_inner()
            .pod_sandbox_id;
        sandboxes.push(sandbox.clone());
        let container = rt
            .create_container(api::CreateContainerRequest {
                pod_sandbox_id: sandbox,
                config: Some(api::ContainerConfig {
                    metadata: Some(api::ContainerMetadata {
                        name: "app".into(),
                        attempt: 0,
                    }),
                    image: Some(api::ImageSpec {
                        image: config.pause_image.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                sandbox_config: Some(sandbox_config),
            })
            .await?
            .into_inner()
            .container_id;
        rt.start_container(api::StartContainerRequest {
            container_id: container,
        })
        .await?;
    }
    println!("setup took {:.1}s\n", setup.elapsed().as_secs_f64());
    let dockerd = dockerd_pid();
    // dockerd's own background work (and other users of this Docker), to
    // tell apart from what the calls cost it.
    let idle = {
        let before = dockerd.and_then(cpu_ticks);
        tokio::time::sleep(Duration::from_secs(5)).await;
        match (before, dockerd.and_then(cpu_ticks)) {
            (Some(b), Some(a)) => (a - b) as f64 * 0.01 / 5.0 * 100.0,
            _ => 0.0,
        }
    };
    println!("dockerd CPU with no calls: {idle:.1} % of a core\n");
    println!(
        "{:<22} {:>8} {:>7} {:>7} {:>7} {:>6} {:>10} {:>12} {:>14}",
        "call",
        "cold ms",
        "p50 ms",
        "p99 ms",
        "max ms",
        "items",
        "dockerd %",
        "dockerd ms/c",
        "docker-cri ms/c"
    );

    macro_rules! measure {
        ($name:expr, $call:expr, $count:expr) => {{
            let t = Instant::now();
            let first = $call;
            let cold = t.elapsed();
            let items = $count(&first);
            let before = dockerd.and_then(cpu_ticks);
            let own_before = cpu_ticks(std::process::id());
            let mut samples = Vec::with_capacity(iterations);
            let all = Instant::now();
            for _ in 0..iterations {
                let t = Instant::now();
                let _ = $call;
                samples.push(t.elapsed());
            }
            let wall = all.elapsed();
            let after = dockerd.and_then(cpu_ticks);
            let own_after = cpu_ticks(std::process::id());
            // Ticks are 10 ms; CPU milliseconds per call.
            let per_call = |b: Option<u64>, a: Option<u64>| match (b, a) {
                (Some(b), Some(a)) => format!("{:.2}", (a - b) as f64 * 10.0 / iterations as f64),
                _ => "?".into(),
            };
            let dockerd_pct = match (before, after) {
                (Some(b), Some(a)) => {
                    format!("{:.1}", (a - b) as f64 * 0.01 / wall.as_secs_f64() * 100.0)
                }
                _ => "?".into(),
            };
            report(
                $name,
                cold,
                &mut samples,
                items,
                &[
                    dockerd_pct,
                    per_call(before, after),
                    per_call(own_before, own_after),
                ],
            );
        }};
    }
    measure!(
        "ListContainerStats",
        rt.list_container_stats(api::ListContainerStatsRequest { filter: None })
            .await?
            .into_inner(),
        |r: &api::ListContainerStatsResponse| r.stats.len()
    );
    measure!(
        "ListPodSandboxStats",
        rt.list_pod_sandbox_stats(api::ListPodSandboxStatsRequest { filter: None })
            .await?
            .into_inner(),
        |r: &api::ListPodSandboxStatsResponse| r.stats.len()
    );
    measure!(
        "ListPodSandboxMetrics",
        rt.list_pod_sandbox_metrics(api::ListPodSandboxMetricsRequest {})
            .await?
            .into_inner(),
        |r: &api::ListPodSandboxMetricsResponse| r.pod_metrics.len()
    );

    println!("\ncleaning up...");
    for sandbox in &sandboxes {
        rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
            pod_sandbox_id: sandbox.clone(),
        })
        .await?;
    }
    let _ = stop_tx.send(());
    let _ = server.await;
    Ok(())
}

/// One line: latency, items, and CPU (dockerd's share of a core during the
/// loop, dockerd's and this process's CPU milliseconds per call; this
/// process is docker-cri and the client together).
fn report(name: &str, cold: Duration, samples: &mut [Duration], items: usize, cpu: &[String; 3]) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{:<22} {:>8.2} {:>7.2} {:>7.2} {:>7.2} {:>6} {:>10} {:>12} {:>14}",
        name,
        ms(cold),
        ms(at(0.5)),
        ms(at(0.99)),
        ms(*samples.last().unwrap_or(&Duration::ZERO)),
        items,
        cpu[0],
        cpu[1],
        cpu[2]
    );
}
