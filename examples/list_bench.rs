//! Latency and throughput of the calls kubelet makes every second or so
//! (ListPodSandbox, ListContainers, PodSandboxStatus, ContainerStatus,
//! ImageFsInfo, Status, Version, a /metrics scrape) against a docker-cri server with N pods.
//!
//!     cargo run --release --example list_bench -- [PODS] [ITERATIONS]
//!
//! Starts docker-cri in-process on a temporary socket against the local
//! Docker, creates PODS sandboxes each with one running container (from the
//! configured pause image, so nothing needs pulling), measures, then removes
//! everything it created. Prints p50/p99 latency and calls per second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use docker_cri::api;
use docker_cri::client;
use docker_cri::config::Config;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let pods: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let iterations: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);

    let dir = tempfile::tempdir()?;
    // A free loopback port for /metrics.
    let metrics_addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let socket = dir.path().join("cri.sock");
    let config = Arc::new(Config {
        listen: docker_cri::config::Listen::Unix(socket.clone()),
        metrics_bind_addr: Some(metrics_addr),
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
    let mut rt = client::runtime_client(channel.clone());
    let mut images = client::image_client(channel);

    let run_id = std::process::id();
    println!("setting up {pods} pods with one container each...");
    let setup = Instant::now();
    let mut sandboxes = Vec::new();
    let mut containers = Vec::new();
    for i in 0..pods {
        let sandbox_config = api::PodSandboxConfig {
            metadata: Some(api::PodSandboxMetadata {
                name: format!("bench-{i}"),
                namespace: "docker-cri-bench".into(),
                uid: format!("bench-{run_id}-{i}"),
                attempt: 0,
            }),
            labels: [("bench".to_string(), run_id.to_string())].into(),
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
        let container = rt
            .create_container(api::CreateContainerRequest {
                pod_sandbox_id: sandbox.clone(),
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
            container_id: container.clone(),
        })
        .await?;
        sandboxes.push(sandbox);
        containers.push(container);
    }
    println!("setup took {:.1}s\n", setup.elapsed().as_secs_f64());
    println!(
        "{:<22} {:>10} {:>10} {:>10} {:>12}",
        "call", "p50 ms", "p99 ms", "max ms", "calls/s"
    );

    macro_rules! measure {
        ($name:expr, $call:expr) => {{
            let mut samples = Vec::with_capacity(iterations);
            let all = Instant::now();
            for _ in 0..iterations {
                let t = Instant::now();
                $call;
                samples.push(t.elapsed());
            }
            report($name, &mut samples, all.elapsed());
        }};
    }
    measure!(
        "ListPodSandbox",
        rt.list_pod_sandbox(api::ListPodSandboxRequest { filter: None })
            .await?
    );
    measure!(
        "ListContainers",
        rt.list_containers(api::ListContainersRequest { filter: None })
            .await?
    );
    let sandbox = sandboxes[0].clone();
    measure!(
        "PodSandboxStatus",
        rt.pod_sandbox_status(api::PodSandboxStatusRequest {
            pod_sandbox_id: sandbox.clone(),
            verbose: false
        })
        .await?
    );
    let container = containers[0].clone();
    measure!(
        "ContainerStatus",
        rt.container_status(api::ContainerStatusRequest {
            container_id: container.clone(),
            verbose: false
        })
        .await?
    );
    measure!(
        "ImageFsInfo",
        images.image_fs_info(api::ImageFsInfoRequest {}).await?
    );
    measure!(
        "Status",
        rt.status(api::StatusRequest { verbose: false }).await?
    );
    measure!("Version", rt.version(api::VersionRequest::default()).await?);
    // A Prometheus scrape after all the calls above (its cost does not grow
    // with pods: the series are per method and per Docker call).
    measure!("GET /metrics", scrape(metrics_addr)?);

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

/// One plain HTTP/1.1 scrape; returns the body length.
fn scrape(addr: std::net::SocketAddr) -> std::io::Result<usize> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )?;
    let mut body = Vec::new();
    s.read_to_end(&mut body)?;
    Ok(body.len())
}

fn report(name: &str, samples: &mut [Duration], total: Duration) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{:<22} {:>10.2} {:>10.2} {:>10.2} {:>12.0}",
        name,
        ms(at(0.5)),
        ms(at(0.99)),
        ms(*samples.last().unwrap_or(&Duration::ZERO)),
        samples.len() as f64 / total.as_secs_f64()
    );
}
