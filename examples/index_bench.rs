//! What kubelet's relisting costs with the index, beside the same work done
//! straight on Docker (what docker-cri did before the index: a filtered
//! `GET /containers/json` per list, an inspect per status).
//!
//!     cargo build --release --bin docker-cri --example index_bench
//!     target/release/examples/index_bench [PODS,..] [CONTAINERS] [ITERATIONS] [SECS] [KUBELET_SECS]
//!
//! Defaults: 30,100 pods, 2 containers each (busybox `sleep`, from an image
//! built from the host's /bin/busybox: nothing is pulled), 300 relists,
//! 3 s per throughput phase, 30 s of kubelet-style relisting at the largest
//! pod count. Runs the release docker-cri binary as a child process so that
//! its CPU and RSS are its own. For each pod count it prints:
//! - relist (ListPodSandbox + ListContainers) p50/p99 latency, beside two
//!   filtered Docker lists;
//! - closed-loop throughput with 4 clients for ListContainers (beside a
//!   filtered Docker list) and ContainerStatus (beside an inspect);
//! - dockerd's CPU during each phase (and docker-cri's);
//! - docker-cri's RSS;
//! - at the largest count, docker-cri's and dockerd's CPU while relisting
//!   once a second, as kubelet's PLEG does.
//!
//! Everything it creates carries a namespace unique to the run and is
//! removed at the end, also after an error or ctrl-c.

#[path = "bench_util/mod.rs"]
mod bench_util;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench_util::{BoxError, CpuUse, CpuWatch, quantile_ms};
use docker_cri::api;
use docker_cri::api::runtime_service_client::RuntimeServiceClient;
use futures_util::StreamExt;
use tonic::transport::Channel;

const CLIENTS: usize = 4;
const SANDBOX_FILTER: &str = "io.kubernetes.docker.type=podsandbox";
const CONTAINER_FILTER: &str = "io.kubernetes.docker.type=container";

struct Args {
    pods: Vec<usize>,
    containers: usize,
    iterations: usize,
    phase: Duration,
    kubelet: Duration,
}

struct Ctx {
    rt: RuntimeServiceClient<Channel>,
    docker: bollard::Docker,
    namespace: String,
    busybox: String,
    logs: std::path::PathBuf,
    /// dockerd, docker-cri.
    pids: [Option<u32>; 2],
    sandboxes: Vec<String>,
    containers: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut argv = std::env::args().skip(1);
    let pods = argv
        .next()
        .map(|a| a.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![30, 100]);
    let mut num = |default: u64| argv.next().and_then(|a| a.parse().ok()).unwrap_or(default);
    let args = Args {
        pods,
        containers: num(2) as usize,
        iterations: num(300) as usize,
        phase: Duration::from_secs(num(3)),
        kubelet: Duration::from_secs(num(30)),
    };

    let binary = bench_util::docker_cri_binary()?;
    let docker = bench_util::docker().await?;
    let run = std::process::id();
    let namespace = format!("docker-cri-bench-{run}");
    let pause = format!("docker-cri-bench/pause:{run}");
    let busybox = format!("docker-cri-bench/busybox:{run}");
    let dir = tempfile::tempdir()?;

    let outcome = bench_util::until_interrupted(async {
        bench_util::build_pause_image(&binary, &pause).await?;
        bench_util::build_busybox(&docker, &busybox).await?;
        let server = bench_util::Server::start(&binary, dir.path(), &pause, &[]).await?;
        let channel = docker_cri::client::connect(&server.socket).await?;
        let mut ctx = Ctx {
            rt: docker_cri::client::runtime_client(channel),
            docker: docker.clone(),
            namespace: namespace.clone(),
            busybox: busybox.clone(),
            logs: dir.path().join("pods"),
            pids: [bench_util::dockerd_pid(), server.pid()],
            sandboxes: Vec::new(),
            containers: Vec::new(),
        };
        print_machine(&docker).await;
        let largest = args.pods.iter().copied().max().unwrap_or(0);
        for &n in &args.pods {
            grow(&mut ctx, n, args.containers).await?;
            measure(&mut ctx, &args).await?;
            if n == largest && !args.kubelet.is_zero() {
                kubelet_style(&mut ctx, args.kubelet).await?;
            }
        }
        server.stop().await;
        Ok(())
    })
    .await;

    // Whatever happened: our containers (docker-cri's process is gone or
    // killed by now, so Docker is asked directly), then our images.
    let removed =
        bench_util::remove_labelled(&docker, &format!("io.kubernetes.pod.namespace={namespace}"))
            .await?;
    bench_util::remove_image(&docker, &busybox).await;
    bench_util::remove_image(&docker, &pause).await;
    println!("\nremoved {removed} containers and the two images");
    outcome
}

async fn print_machine(docker: &bollard::Docker) {
    let version = docker
        .version()
        .await
        .ok()
        .and_then(|v| v.version)
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("machine: {cores} cores, Docker {version}");
}

/// Adds pods (each with its containers started) until there are `pods`;
/// four at a time, as kubelet's pod workers would.
async fn grow(ctx: &mut Ctx, pods: usize, per_pod: usize) -> Result<(), BoxError> {
    let started = Instant::now();
    let from = ctx.sandboxes.len();
    let made: Vec<Result<(String, Vec<String>), BoxError>> = futures_util::stream::iter(from..pods)
        .map(|i| {
            let mut rt = ctx.rt.clone();
            let config = bench_util::sandbox_config(&ctx.namespace, &format!("pod-{i}"), &ctx.logs);
            let image = ctx.busybox.clone();
            async move {
                let sandbox = rt
                    .run_pod_sandbox(api::RunPodSandboxRequest {
                        config: Some(config.clone()),
                        runtime_handler: String::new(),
                    })
                    .await?
                    .into_inner()
                    .pod_sandbox_id;
                let mut ids = Vec::new();
                for c in 0..per_pod {
                    let spec =
                        bench_util::container_config(&format!("c{c}"), &image, &["sleep", "3600"]);
                    let id = rt
                        .create_container(api::CreateContainerRequest {
                            pod_sandbox_id: sandbox.clone(),
                            config: Some(spec),
                            sandbox_config: Some(config.clone()),
                        })
                        .await?
                        .into_inner()
                        .container_id;
                    rt.start_container(api::StartContainerRequest {
                        container_id: id.clone(),
                    })
                    .await?;
                    ids.push(id);
                }
                Ok((sandbox, ids))
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    for m in made {
        let (sandbox, ids) = m?;
        ctx.sandboxes.push(sandbox);
        ctx.containers.extend(ids);
    }
    // Let the events of the setup settle before anything is measured.
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "\n== {pods} pods x {per_pod} containers (set up in {:.1}s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One row: a label, the docker-cri figure, the straight-to-Docker figure.
fn row(label: &str, cri: String, direct: String) {
    println!("{label:<40} {cri:>22} {direct:>22}");
}

fn cpu_ms_per(cpu: &CpuUse, i: usize, calls: usize) -> String {
    match cpu.ms.get(i).copied().flatten() {
        Some(ms) => format!(
            "{:.2} ms/call ({})",
            ms / calls.max(1) as f64,
            cpu.percent(i)
        ),
        None => "?".into(),
    }
}

async fn measure(ctx: &mut Ctx, args: &Args) -> Result<(), BoxError> {
    let listed = ctx
        .rt
        .list_containers(api::ListContainersRequest { filter: None })
        .await?
        .into_inner()
        .containers
        .len();
    let sandboxes = ctx
        .rt
        .list_pod_sandbox(api::ListPodSandboxRequest { filter: None })
        .await?
        .into_inner()
        .items
        .len();
    println!(
        "(every relist returns {sandboxes} sandboxes, {listed} containers: all managed ones on this dockerd)"
    );
    row("", "docker-cri".into(), "Docker direct".into());
    row("docker-cri RSS before the load", rss(ctx), "-".into());
    // dockerd is shared: what it burns with no calls from us is the floor
    // the CPU figures below stand on.
    let idle = CpuWatch::start(&ctx.pids);
    tokio::time::sleep(args.phase).await;
    let idle = idle.stop();
    println!(
        "(no calls for {} s: dockerd {}, docker-cri {} of a core)",
        args.phase.as_secs(),
        idle.percent(0),
        idle.percent(1)
    );

    // Relist latency, one at a time.
    let n = args.iterations;
    let (cri, cri_cpu) = timed(ctx.pids, n, || {
        let mut rt = ctx.rt.clone();
        async move {
            rt.list_pod_sandbox(api::ListPodSandboxRequest { filter: None })
                .await?;
            rt.list_containers(api::ListContainersRequest { filter: None })
                .await?;
            Ok(())
        }
    })
    .await?;
    let (direct, direct_cpu) = timed(ctx.pids, n, || {
        let docker = ctx.docker.clone();
        async move {
            docker_list(&docker, SANDBOX_FILTER).await?;
            docker_list(&docker, CONTAINER_FILTER).await?;
            Ok(())
        }
    })
    .await?;
    let lat = |s: &[Duration]| format!("{:.2} / {:.2}", quantile_ms(s, 0.5), quantile_ms(s, 0.99));
    row("relist p50 / p99 ms", lat(&cri), lat(&direct));
    row(
        "  dockerd CPU",
        cpu_ms_per(&cri_cpu, 0, n),
        cpu_ms_per(&direct_cpu, 0, n),
    );
    row(
        "  docker-cri CPU",
        cpu_ms_per(&cri_cpu, 1, n),
        cpu_ms_per(&direct_cpu, 1, n),
    );

    // Closed-loop throughput, 4 clients.
    let (rt, docker) = (ctx.rt.clone(), ctx.docker.clone());
    let (cri, cri_cpu) = closed_loop(ctx.pids, args.phase, move |_| {
        let mut rt = rt.clone();
        async move {
            rt.list_containers(api::ListContainersRequest { filter: None })
                .await?;
            Ok(())
        }
    })
    .await?;
    let (direct, direct_cpu) = closed_loop(ctx.pids, args.phase, move |_| {
        let docker = docker.clone();
        async move { docker_list(&docker, CONTAINER_FILTER).await.map(|_| ()) }
    })
    .await?;
    throughput_rows("ListContainers", &cri, &cri_cpu, &direct, &direct_cpu);

    let ids = Arc::new(ctx.containers.clone());
    let (rt, docker, cri_ids) = (ctx.rt.clone(), ctx.docker.clone(), ids.clone());
    let (cri, cri_cpu) = closed_loop(ctx.pids, args.phase, move |i| {
        let mut rt = rt.clone();
        let id = cri_ids[i % cri_ids.len()].clone();
        async move {
            rt.container_status(api::ContainerStatusRequest {
                container_id: id,
                verbose: false,
            })
            .await?;
            Ok(())
        }
    })
    .await?;
    let (direct, direct_cpu) = closed_loop(ctx.pids, args.phase, move |i| {
        let docker = docker.clone();
        let id = ids[i % ids.len()].clone();
        async move {
            docker.inspect_container(&id, None).await?;
            Ok(())
        }
    })
    .await?;
    throughput_rows("ContainerStatus", &cri, &cri_cpu, &direct, &direct_cpu);

    row("docker-cri RSS after the load", rss(ctx), "-".into());
    Ok(())
}

fn rss(ctx: &Ctx) -> String {
    let kib = ctx.pids[1].and_then(bench_util::rss_kib);
    kib.map_or("?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn throughput_rows(name: &str, cri: &Loop, cri_cpu: &CpuUse, direct: &Loop, direct_cpu: &CpuUse) {
    let rate = |l: &Loop| format!("{:.0}", l.calls as f64 / l.wall.as_secs_f64());
    let lat = |l: &Loop| {
        format!(
            "{:.2} / {:.2}",
            quantile_ms(&l.samples, 0.5),
            quantile_ms(&l.samples, 0.99)
        )
    };
    row(
        &format!("{name} calls/s ({CLIENTS} clients)"),
        rate(cri),
        rate(direct),
    );
    row("  p50 / p99 ms", lat(cri), lat(direct));
    row(
        "  dockerd CPU",
        cpu_ms_per(cri_cpu, 0, cri.calls),
        cpu_ms_per(direct_cpu, 0, direct.calls),
    );
    row(
        "  docker-cri CPU",
        cpu_ms_per(cri_cpu, 1, cri.calls),
        cpu_ms_per(direct_cpu, 1, direct.calls),
    );
}

/// Relisting once a second, as kubelet's PLEG does: docker-cri's and
/// dockerd's CPU over `span`, beside the same lists made straight to Docker.
async fn kubelet_style(ctx: &mut Ctx, span: Duration) -> Result<(), BoxError> {
    let ticks = span.as_secs().max(1);
    let watch = CpuWatch::start(&ctx.pids);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    for _ in 0..ticks {
        tick.tick().await;
        ctx.rt
            .list_pod_sandbox(api::ListPodSandboxRequest { filter: None })
            .await?;
        ctx.rt
            .list_containers(api::ListContainersRequest { filter: None })
            .await?;
    }
    let cri = watch.stop();
    let watch = CpuWatch::start(&ctx.pids);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    for _ in 0..ticks {
        tick.tick().await;
        docker_list(&ctx.docker, SANDBOX_FILTER).await?;
        docker_list(&ctx.docker, CONTAINER_FILTER).await?;
    }
    let direct = watch.stop();
    println!("\nrelisting once a second for {ticks} s:");
    row("", "docker-cri".into(), "Docker direct".into());
    row(
        "  docker-cri CPU (of one core)",
        cri.percent(1),
        direct.percent(1),
    );
    row(
        "  dockerd CPU (of one core)",
        cri.percent(0),
        direct.percent(0),
    );
    row("  docker-cri RSS after", rss(ctx), "-".into());
    Ok(())
}

async fn docker_list(
    docker: &bollard::Docker,
    label: &str,
) -> Result<Vec<bollard::models::ContainerSummary>, BoxError> {
    let filters: HashMap<&str, Vec<String>> = HashMap::from([("label", vec![label.to_string()])]);
    let options = bollard::query_parameters::ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    Ok(docker.list_containers(Some(options)).await?)
}

/// `n` calls one after another: sorted latencies and the CPU they cost.
async fn timed<F, Fut>(
    pids: [Option<u32>; 2],
    n: usize,
    mut call: F,
) -> Result<(Vec<Duration>, CpuUse), BoxError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), BoxError>>,
{
    // One warm-up call: connections, first-touch allocations.
    call().await?;
    let watch = CpuWatch::start(&pids);
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        call().await?;
        samples.push(t.elapsed());
    }
    let cpu = watch.stop();
    samples.sort();
    Ok((samples, cpu))
}

struct Loop {
    calls: usize,
    wall: Duration,
    samples: Vec<Duration>,
}

/// CLIENTS workers each calling as fast as answers come back, for `span`.
/// `call(i)` makes the i-th call of a worker.
async fn closed_loop<F, Fut>(
    pids: [Option<u32>; 2],
    span: Duration,
    call: F,
) -> Result<(Loop, CpuUse), BoxError>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), BoxError>> + Send,
{
    let watch = CpuWatch::start(&pids);
    let started = Instant::now();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|w| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut i = w;
                while started.elapsed() < span {
                    let t = Instant::now();
                    call(i).await?;
                    samples.push(t.elapsed());
                    i += CLIENTS;
                }
                Ok::<_, BoxError>(samples)
            })
        })
        .collect();
    let mut samples = Vec::new();
    for w in workers {
        samples.extend(w.await??);
    }
    let wall = started.elapsed();
    let cpu = watch.stop();
    samples.sort();
    Ok((
        Loop {
            calls: samples.len(),
            wall,
            samples,
        },
        cpu,
    ))
}
