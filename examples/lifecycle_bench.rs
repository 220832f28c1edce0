//! The pod lifecycle, one pod at a time, through docker-cri beside the same
//! Docker calls made directly.
//!
//!     cargo build --release --bin docker-cri --example lifecycle_bench
//!     target/release/examples/lifecycle_bench [ITERATIONS]
//!
//! docker-cri: RunPodSandbox, CreateContainer, StartContainer,
//! StopContainer, RemoveContainer, StopPodSandbox, RemovePodSandbox, as
//! kubelet sends them (a log directory and log path; no DNS config, no
//! port mappings). Docker: create and start a pause container, create an
//! app container joined to its namespaces and start it, stop it, remove
//! it, stop and remove the pause container, with the very create bodies
//! docker-cri sent for a pod of the same spec (read back by inspect). The app
//! container runs busybox `sleep` behind a shell that exits on SIGTERM, so
//! both columns stop it within the same grace period. The two columns
//! alternate pod by pod so that the machine's other load falls on both.
//! Prints p50 (and p90) per step and for the full cycle.
//!
//! Runs the release docker-cri binary as a child process; removes
//! everything it created, also after an error or ctrl-c.

#[path = "bench_util/mod.rs"]
mod bench_util;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bench_util::{BoxError, quantile_ms};
use bollard::models::{ContainerCreateBody, ContainerInspectResponse};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use docker_cri::api;
use docker_cri::api::runtime_service_client::RuntimeServiceClient;
use tonic::transport::Channel;

const STEPS: [&str; 7] = [
    "RunPodSandbox",
    "CreateContainer",
    "StartContainer",
    "StopContainer",
    "RemoveContainer",
    "StopPodSandbox",
    "RemovePodSandbox",
];

/// What each step is made of when done straight on Docker.
const DIRECT: [&str; 7] = [
    "create+start pause",
    "create app",
    "start app",
    "stop app",
    "remove app",
    "stop pause",
    "remove pause",
];

/// The grace period both columns stop the app container with (it exits
/// on SIGTERM at once) and the pause container with (docker-cri's).
const STOP_GRACE_SECS: i64 = 10;

/// The app container: exits on SIGTERM, unlike a bare `sleep` as PID 1.
const APP_COMMAND: [&str; 3] = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"];

struct Ctx {
    rt: RuntimeServiceClient<Channel>,
    docker: bollard::Docker,
    namespace: String,
    busybox: String,
    logs: std::path::PathBuf,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(30);
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
        let metrics = bench_util::free_port()?;
        let metrics_flag = format!("--metrics-bind-addr={metrics}");
        let server =
            bench_util::Server::start(&binary, dir.path(), &pause, &[metrics_flag.as_str()])
                .await?;
        let channel = docker_cri::client::connect(&server.socket).await?;
        let ctx = Ctx {
            rt: docker_cri::client::runtime_client(channel),
            docker: docker.clone(),
            namespace: namespace.clone(),

            busybox: busybox.clone(),
            logs: dir.path().join("pods"),
        };
        let version = docker.version().await?.version.unwrap_or_default();
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        println!("machine: {cores} cores, Docker {version}; {iterations} pods per column");
        // One of each first: images into the page cache, connections up.
        let bodies = bodies_of_a_cri_pod(&ctx).await?;
        cri_cycle(&ctx, usize::MAX).await?;
        direct_cycle(&ctx, &bodies, usize::MAX).await?;
        let before = bench_util::scrape(metrics)?;
        let mut cri = vec![Vec::new(); STEPS.len() + 1];
        let mut direct = vec![Vec::new(); STEPS.len() + 1];
        for i in 0..iterations {
            // Which column goes first alternates: a pod's teardown leaves
            // Docker work behind (events, log readers, network cleanup)
            // that would otherwise always slow the same column's start.
            let (c, d) = if i % 2 == 0 {
                let c = cri_cycle(&ctx, i).await?;
                (c, direct_cycle(&ctx, &bodies, i).await?)
            } else {
                let d = direct_cycle(&ctx, &bodies, i).await?;
                (cri_cycle(&ctx, i).await?, d)
            };
            for (into, times) in [(&mut cri, c), (&mut direct, d)] {
                let total: Duration = times.iter().sum();
                for (k, t) in times.into_iter().chain([total]).enumerate() {
                    into[k].push(t);
                }
            }
        }
        report(&mut cri, &mut direct);
        let after = bench_util::scrape(metrics)?;
        docker_calls(&before, &after, iterations);
        server.stop().await;
        Ok(())
    })
    .await;

    let label = format!("io.kubernetes.pod.namespace={namespace}");
    let removed = bench_util::remove_labelled(&docker, &label).await?;
    bench_util::remove_image(&docker, &busybox).await;
    bench_util::remove_image(&docker, &pause).await;
    if removed > 0 {
        println!("removed {removed} containers left behind");
    }
    outcome
}

fn report(cri: &mut [Vec<Duration>], direct: &mut [Vec<Duration>]) {
    // The two pods of one iteration ran back to back, under the same load
    // from the rest of the machine: their difference is the steadier
    // estimate of docker-cri's overhead on a shared host.
    let cycle = STEPS.len();
    let mut paired: Vec<f64> = cri[cycle]
        .iter()
        .zip(&direct[cycle])
        .map(|(c, d)| (c.as_secs_f64() - d.as_secs_f64()) * 1000.0)
        .collect();
    paired.sort_by(f64::total_cmp);
    let paired_p50 = paired.get(paired.len() / 2).copied().unwrap_or(f64::NAN);
    println!(
        "\n{:<18} {:>14} {:>14} {:>12}   {:<20}",
        "step (p50 ms)", "docker-cri", "Docker direct", "overhead", "Docker calls"
    );
    for (k, (c, d)) in cri.iter_mut().zip(direct.iter_mut()).enumerate() {
        c.sort();
        d.sort();
        let (name, calls) = match k {
            k if k < STEPS.len() => (STEPS[k], DIRECT[k]),
            _ => ("full cycle", "all of the above"),
        };
        let (pc, pd) = (quantile_ms(c, 0.5), quantile_ms(d, 0.5));
        println!(
            "{name:<18} {pc:>14.1} {pd:>14.1} {:>+12.1}   {calls:<20}",
            pc - pd
        );
    }
    let (c, d) = (&cri[STEPS.len()], &direct[STEPS.len()]);
    println!(
        "\nfull cycle p90: docker-cri {:.1} ms, Docker {:.1} ms; speed vs Docker (p50): {:.3}x",
        quantile_ms(c, 0.9),
        quantile_ms(d, 0.9),
        quantile_ms(d, 0.5) / quantile_ms(c, 0.5)
    );
    println!(
        "paired: median of (docker-cri - Docker) per iteration {paired_p50:+.1} ms ({:+.1}% of Docker's p50)",
        paired_p50 / quantile_ms(d, 0.5) * 100.0
    );
}

/// The Docker calls docker-cri made per pod (from its /metrics): where its
/// time beyond Docker's own goes. Stops are not counted there (they are
/// timed by their grace period, not the call timeout).
fn docker_calls(before: &HashMap<String, f64>, after: &HashMap<String, f64>, pods: usize) {
    let per_pod = |key: &str| {
        (after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0))
            / pods.max(1) as f64
    };
    println!("\ndocker-cri's Docker calls per pod (excluding stops):");
    let mut keys: Vec<&String> = after
        .keys()
        .filter(|k| k.starts_with("docker_cri_docker_call_duration_seconds_count{"))
        .collect();
    keys.sort();
    for key in keys {
        let n = per_pod(key);
        if n == 0.0 {
            continue;
        }
        let sum = per_pod(&key.replace("_count{", "_sum{"));
        let call = key.split('"').nth(1).unwrap_or(key);
        println!("  {call:<24} {n:>5.2} x {:>7.2} ms", sum * 1000.0 / n);
    }
}

/// One pod through docker-cri; the time of each step.
async fn cri_cycle(ctx: &Ctx, i: usize) -> Result<Vec<Duration>, BoxError> {
    let mut rt = ctx.rt.clone();
    let config = bench_util::sandbox_config(&ctx.namespace, &format!("cri-{i}"), &ctx.logs);
    let mut times = Vec::with_capacity(STEPS.len());
    let mut t = Instant::now();
    let mut lap = |times: &mut Vec<Duration>| {
        times.push(t.elapsed());
        t = Instant::now();
    };
    let sandbox = rt
        .run_pod_sandbox(api::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        })
        .await?
        .into_inner()
        .pod_sandbox_id;
    lap(&mut times);
    let container = rt
        .create_container(api::CreateContainerRequest {
            pod_sandbox_id: sandbox.clone(),
            config: Some(bench_util::container_config(
                "app",
                &ctx.busybox,
                &APP_COMMAND,
            )),
            sandbox_config: Some(config),
        })
        .await?
        .into_inner()
        .container_id;
    lap(&mut times);
    rt.start_container(api::StartContainerRequest {
        container_id: container.clone(),
    })
    .await?;
    lap(&mut times);
    rt.stop_container(api::StopContainerRequest {
        container_id: container.clone(),
        timeout: STOP_GRACE_SECS,
    })
    .await?;
    lap(&mut times);
    rt.remove_container(api::RemoveContainerRequest {
        container_id: container,
    })
    .await?;
    lap(&mut times);
    rt.stop_pod_sandbox(api::StopPodSandboxRequest {
        pod_sandbox_id: sandbox.clone(),
    })
    .await?;
    lap(&mut times);
    rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
        pod_sandbox_id: sandbox,
    })
    .await?;
    lap(&mut times);
    Ok(times)
}

/// The bodies docker-cri sends Docker for a pause and an app container,
/// read back from one pod it made: the direct column creates exactly
/// these, so both columns ask Docker for the same containers.
struct Bodies {
    pause: ContainerCreateBody,
    app: ContainerCreateBody,
}

async fn bodies_of_a_cri_pod(ctx: &Ctx) -> Result<Bodies, BoxError> {
    let mut rt = ctx.rt.clone();
    let config = bench_util::sandbox_config(&ctx.namespace, "template", &ctx.logs);
    let sandbox = rt
        .run_pod_sandbox(api::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        })
        .await?
        .into_inner()
        .pod_sandbox_id;
    let container = rt
        .create_container(api::CreateContainerRequest {
            pod_sandbox_id: sandbox.clone(),
            config: Some(bench_util::container_config(
                "app",
                &ctx.busybox,
                &APP_COMMAND,
            )),
            sandbox_config: Some(config),
        })
        .await?
        .into_inner()
        .container_id;
    let pause = ctx.docker.inspect_container(&sandbox, None).await?;
    let app = ctx.docker.inspect_container(&container, None).await?;
    rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
        pod_sandbox_id: sandbox,
    })
    .await?;
    let mut app = body_of(app, &ctx.namespace);
    // Docker fills these in from the joined container; it refuses them
    // given alongside a joined network.
    app.hostname = None;
    app.domainname = None;
    Ok(Bodies {
        pause: body_of(pause, &ctx.namespace),
        app,
    })
}

/// A create body from an inspect. The labels are replaced with the run's
/// namespace alone: docker-cri's index must not count these as its own.
fn body_of(inspect: ContainerInspectResponse, namespace: &str) -> ContainerCreateBody {
    let c = inspect.config.unwrap_or_default();
    ContainerCreateBody {
        hostname: c.hostname,
        domainname: c.domainname,
        user: c.user,
        attach_stdin: c.attach_stdin,
        attach_stdout: c.attach_stdout,
        attach_stderr: c.attach_stderr,
        exposed_ports: c.exposed_ports,
        tty: c.tty,
        open_stdin: c.open_stdin,
        stdin_once: c.stdin_once,
        env: c.env,
        cmd: c.cmd,
        image: c.image,
        working_dir: c.working_dir,
        entrypoint: c.entrypoint,
        stop_signal: c.stop_signal,
        stop_timeout: c.stop_timeout,
        labels: Some(HashMap::from([(
            "io.kubernetes.pod.namespace".to_string(),
            namespace.to_string(),
        )])),
        host_config: inspect.host_config,
        ..Default::default()
    }
}

/// `container:<old>` namespace modes pointed at `pause` instead.
fn joined_to(mut body: ContainerCreateBody, pause: &str) -> ContainerCreateBody {
    if let Some(hc) = body.host_config.as_mut() {
        for mode in [&mut hc.network_mode, &mut hc.ipc_mode, &mut hc.pid_mode] {
            if mode.as_deref().is_some_and(|m| m.starts_with("container:")) {
                *mode = Some(format!("container:{pause}"));
            }
        }
    }
    body
}

/// The same pod made straight on Docker, from docker-cri's own bodies.
async fn direct_cycle(ctx: &Ctx, bodies: &Bodies, i: usize) -> Result<Vec<Duration>, BoxError> {
    let docker = &ctx.docker;
    let mut times = Vec::with_capacity(STEPS.len());
    let mut t = Instant::now();
    let mut lap = |times: &mut Vec<Duration>| {
        times.push(t.elapsed());
        t = Instant::now();
    };
    let name = |part: &str| {
        CreateContainerOptionsBuilder::new()
            .name(&format!("{}-direct-{i}-{part}", ctx.namespace))
            .build()
    };
    let start = None::<bollard::query_parameters::StartContainerOptions>;
    let pause = docker
        .create_container(Some(name("pause")), bodies.pause.clone())
        .await?
        .id;
    docker.start_container(&pause, start.clone()).await?;
    lap(&mut times);
    let app = docker
        .create_container(Some(name("app")), joined_to(bodies.app.clone(), &pause))
        .await?
        .id;
    lap(&mut times);
    docker.start_container(&app, start).await?;
    lap(&mut times);
    let stop = StopContainerOptionsBuilder::new()
        .t(STOP_GRACE_SECS as i32)
        .build();
    docker.stop_container(&app, Some(stop.clone())).await?;
    lap(&mut times);
    let remove = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    docker.remove_container(&app, Some(remove.clone())).await?;
    lap(&mut times);
    docker.stop_container(&pause, Some(stop)).await?;
    lap(&mut times);
    docker.remove_container(&pause, Some(remove)).await?;
    lap(&mut times);
    Ok(times)
}
