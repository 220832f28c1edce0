//! ExecSync latency and exec stream throughput, docker-cri beside Docker's
//! own exec API on the same container.
//!
//!     cargo run --release --example exec_bench -- [ITERATIONS] [MIB] [ROUNDS]
//!
//! Starts docker-cri in-process on a temporary socket, builds a busybox
//! image from the host's /bin/busybox (Debian busybox-static), runs one pod
//! with a `sleep` container, then measures:
//! - ExecSync `true` round trips (p50/p99) beside the same exec done
//!   directly through Docker (create + start + inspect);
//! - MIB MiB (default 256, the figure) pushed through `cat`, stdin
//!   in and stdout back, over a v5 WebSocket session and over a SPDY/3.1
//!   (`v4.channel.k8s.io`) session, beside the same through Docker's
//!   hijacked exec stream; ROUNDS rounds (default 3) with the three
//!   interleaved, each round printed. The medians compare each transport
//!   with docker exec by the ratio within a round (neighbours in time see
//!   the same load from elsewhere on the machine) and give this process's
//!   CPU per GiB (the clients and docker-cri together).
//!
//! `EXEC_BENCH_ONLY=docker|websocket|spdy` runs one transport's transfers
//! alone (for profiling).
//!
//! The SPDY client is the integration tests' own (`tests/common/spdy.rs`,
//! included by path): one client for both, and no test-only code in the
//! library.
//!
//! Removes everything it created.

use std::time::{Duration, Instant};

use bollard::exec::{CreateExecOptions, StartExecResults};
use docker_cri::api;
use docker_cri::api::runtime_service_client::RuntimeServiceClient;
use docker_cri::client;
use docker_cri::config::Config;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

// The tests' SPDY client; the benchmark uses only part of it.
#[allow(dead_code)]
#[path = "../tests/common/spdy.rs"]
mod spdy;

#[path = "bench_util/mod.rs"]
mod bench_util;
use bench_util::build_busybox;

type BoxError = Box<dyn std::error::Error>;

/// How much to measure (the command line).
struct Size {
    /// ExecSync round trips.
    iterations: usize,
    /// MiB per transfer through `cat`.
    mib: usize,
    /// Transfers per transport.
    rounds: usize,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let size = Size {
        iterations: args.next().and_then(|a| a.parse().ok()).unwrap_or(200),
        mib: args.next().and_then(|a| a.parse().ok()).unwrap_or(256),
        rounds: args.next().and_then(|a| a.parse().ok()).unwrap_or(3).max(1),
    };

    let dir = tempfile::tempdir()?;
    let socket = dir.path().join("cri.sock");
    let config = Config {
        listen: docker_cri::config::Listen::Unix(socket.clone()),
        root_directory: dir.path().join("root"),
        ..Config::default()
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(docker_cri::server::serve(config, async {
        let _ = stop_rx.await;
    }));
    for _ in 0..100 {
        if socket.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let docker = bollard::Docker::connect_with_unix_defaults()?;
    let image = format!("docker-cri-bench/busybox:{}", std::process::id());
    build_busybox(&docker, &image)
        .await
        .map_err(|e| -> BoxError { e.to_string().into() })?;
    let mut rt = client::runtime_client(client::connect(&socket).await?);

    let uid = format!("exec-bench-{}", std::process::id());
    let sandbox_config = api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: "exec-bench".into(),
            namespace: "docker-cri-bench".into(),
            uid,
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
    let result = measure(&mut rt, &docker, &sandbox, &sandbox_config, &image, &size).await;

    let _ = rt
        .stop_pod_sandbox(api::StopPodSandboxRequest {
            pod_sandbox_id: sandbox.clone(),
        })
        .await;
    let _ = rt
        .remove_pod_sandbox(api::RemovePodSandboxRequest {
            pod_sandbox_id: sandbox,
        })
        .await;
    let _ = docker
        .remove_image(
            &image,
            Some(
                bollard::query_parameters::RemoveImageOptionsBuilder::new()
                    .force(true)
                    .build(),
            ),
            None,
        )
        .await;
    let _ = stop_tx.send(());
    let _ = server.await;
    result
}

async fn measure(
    rt: &mut RuntimeServiceClient<tonic::transport::Channel>,
    docker: &bollard::Docker,
    sandbox: &str,
    sandbox_config: &api::PodSandboxConfig,
    image: &str,
    size: &Size,
) -> Result<(), BoxError> {
    let Size {
        iterations,
        mib,
        rounds,
    } = *size;
    let container = rt
        .create_container(api::CreateContainerRequest {
            pod_sandbox_id: sandbox.to_string(),
            config: Some(api::ContainerConfig {
                metadata: Some(api::ContainerMetadata {
                    name: "app".into(),
                    attempt: 0,
                }),
                image: Some(api::ImageSpec {
                    image: image.to_string(),
                    ..Default::default()
                }),
                command: vec!["sleep".into(), "3600".into()],
                ..Default::default()
            }),
            sandbox_config: Some(sandbox_config.clone()),
        })
        .await?
        .into_inner()
        .container_id;
    rt.start_container(api::StartContainerRequest {
        container_id: container.clone(),
    })
    .await?;

    // ExecSync `true` vs. Docker's create + start + inspect.
    let mut ours = Vec::with_capacity(iterations);
    let mut theirs = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        let r = rt
            .exec_sync(api::ExecSyncRequest {
                container_id: container.clone(),
                cmd: vec!["true".into()],
                timeout: 10,
            })
            .await?
            .into_inner();
        ours.push(t.elapsed());
        assert_eq!(r.exit_code, 0);
        let t = Instant::now();
        docker_exec_true(docker, &container).await?;
        theirs.push(t.elapsed());
    }
    println!("ExecSync `true` ({iterations} round trips):");
    let (ours50, ours99) = report("  docker-cri ExecSync", &mut ours);
    let (theirs50, theirs99) = report("  docker exec API   ", &mut theirs);
    println!(
        "  docker-cri / docker: p50 {:+.1} %, p99 {:+.1} % (goal: within 10 %)",
        100.0 * (ours50 / theirs50 - 1.0),
        100.0 * (ours99 / theirs99 - 1.0)
    );

    // Throughput through `cat`, the transports interleaved round by round
    // so that load from elsewhere on the machine hits all three alike.
    let total = mib * 1024 * 1024;
    let chunk = vec![b'x'; CHUNK];
    let gib = total as f64 / f64::from(1u32 << 30);
    let mut columns = [
        Column::new("docker exec"),
        Column::new("WebSocket v5"),
        Column::new("SPDY/3.1 v4"),
    ];
    println!("{mib} MiB through `cat` (stdin in, stdout back), {rounds} rounds:");
    // EXEC_BENCH_ONLY=docker|websocket|spdy runs one transport (to profile it).
    let only = std::env::var("EXEC_BENCH_ONLY").unwrap_or_default();
    let runs = |name: &str| only.is_empty() || only == name;
    for round in 1..=rounds {
        // (seconds, CPU seconds of this process) per transport.
        let mut took = [(f64::NAN, f64::NAN); 3];
        if runs("docker") {
            let cpu = cpu_seconds();
            took[0] = (docker_cat(docker, &container, total, &chunk).await?, 0.0);
            took[0].1 = cpu_seconds() - cpu;
        }
        if runs("websocket") {
            let cpu = cpu_seconds();
            took[1] = (websocket_cat(rt, &container, total, &chunk).await?, 0.0);
            took[1].1 = cpu_seconds() - cpu;
        }
        if runs("spdy") {
            let cpu = cpu_seconds();
            took[2] = (spdy_cat(rt, &container, total, &chunk).await?, 0.0);
            took[2].1 = cpu_seconds() - cpu;
        }
        let direct = mib as f64 / took[0].0;
        let mut line = format!("  round {round}:");
        for (column, (secs, cpu)) in columns.iter_mut().zip(took) {
            let rate = mib as f64 / secs;
            column.rates.push(rate);
            column.ratios.push(rate / direct);
            column.cpu.push(cpu / gib);
            line.push_str(&format!(" {} {rate:.0} MiB/s", column.name));
        }
        println!("{line}");
    }
    println!(
        "  medians (vs docker exec: the ratio within each round, so that load from \
         elsewhere hits both alike;\n   CPU: this process, i.e. the clients and \
         docker-cri, per GiB through cat):"
    );
    for (i, column) in columns.iter_mut().enumerate() {
        let ratio = if i == 0 {
            String::new()
        } else {
            format!(
                ", {:.0} % of docker exec (goal >= 80 %)",
                100.0 * median(&mut column.ratios)
            )
        };
        println!(
            "    {:<13} {:>5.0} MiB/s{ratio}, CPU {:.2} s/GiB",
            column.name,
            median(&mut column.rates),
            median(&mut column.cpu)
        );
    }
    Ok(())
}

/// One transport's figures, a value per round.
struct Column {
    name: &'static str,
    rates: Vec<f64>,
    ratios: Vec<f64>,
    cpu: Vec<f64>,
}

impl Column {
    fn new(name: &'static str) -> Self {
        Column {
            name,
            rates: Vec::new(),
            ratios: Vec::new(),
            cpu: Vec::new(),
        }
    }
}

/// User + system CPU time of this process so far (`/proc/self/stat`, in
/// the kernel's fixed USER_HZ of 100 ticks a second); NaN if unreadable.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which may hold spaces: state is the
    // first, utime the 12th and stime the 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    match (tick(11), tick(12)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => f64::NAN,
    }
}

/// What each client writes at a time, for all three transports alike.
const CHUNK: usize = 256 * 1024;
/// A transfer that takes longer than this is a failure, not a figure.
const TRANSFER_LIMIT: Duration = Duration::from_secs(600);

/// Exec `cat` with stdin and stdout only, as a streaming URL.
async fn cat_url(
    rt: &mut RuntimeServiceClient<tonic::transport::Channel>,
    container: &str,
) -> Result<String, BoxError> {
    Ok(rt
        .exec(api::ExecRequest {
            container_id: container.to_string(),
            cmd: vec!["cat".into()],
            stdin: true,
            stdout: true,
            ..Default::default()
        })
        .await?
        .into_inner()
        .url)
}

/// `total` bytes through `cat` over a v5 WebSocket session; seconds taken.
async fn websocket_cat(
    rt: &mut RuntimeServiceClient<tonic::transport::Channel>,
    container: &str,
    total: usize,
    chunk: &[u8],
) -> Result<f64, BoxError> {
    let url = cat_url(rt, container).await?;
    let mut request = url.replacen("http://", "ws://", 1).into_client_request()?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "v5.channel.k8s.io".parse()?);
    let (ws, _) = tokio_tungstenite::connect_async(request).await?;
    let (mut sink, mut stream) = ws.split();
    let t = Instant::now();
    let writer = async {
        let mut sent = 0;
        while sent < total {
            let mut frame = Vec::with_capacity(chunk.len() + 1);
            frame.push(0u8);
            frame.extend_from_slice(chunk);
            sink.send(Message::binary(frame)).await?;
            sent += chunk.len();
        }
        // v5's close signal: stdin is done.
        sink.send(Message::binary(vec![255u8, 0])).await?;
        Ok::<_, BoxError>(sink)
    };
    let reader = async {
        let mut got = 0usize;
        while let Some(Ok(m)) = stream.next().await {
            if let Message::Binary(b) = m
                && b.first() == Some(&1)
            {
                got += b.len() - 1;
            }
        }
        got
    };
    let (sink, got) = tokio::time::timeout(TRANSFER_LIMIT, async { tokio::join!(writer, reader) })
        .await
        .map_err(|_| "WebSocket transfer timed out")?;
    drop(sink?);
    let secs = t.elapsed().as_secs_f64();
    if got != total {
        return Err(format!("WebSocket: {got} of {total} bytes came back through cat").into());
    }
    Ok(secs)
}

/// The same over SPDY/3.1 (`v4.channel.k8s.io`), opening the streams
/// client-go opens; seconds taken.
async fn spdy_cat(
    rt: &mut RuntimeServiceClient<tonic::transport::Channel>,
    container: &str,
    total: usize,
    chunk: &[u8],
) -> Result<f64, BoxError> {
    let url = cat_url(rt, container).await?;
    let client = spdy::connect(&url, &["v4.channel.k8s.io"])
        .await
        .map_err(|r| format!("SPDY upgrade refused ({}): {}", r.status, r.response))?;
    let error = client.open(&[("streamtype", "error")], false).await;
    let stdin = client.open(&[("streamtype", "stdin")], false).await;
    let stdout = client.open(&[("streamtype", "stdout")], false).await;
    client.discard(stdout);
    let t = Instant::now();
    let mut sent = 0;
    while sent < total {
        client.data(stdin, chunk, false).await;
        sent += chunk.len();
    }
    client.data(stdin, &[], true).await;
    let out = client.read_to_end(stdout, TRANSFER_LIMIT).await;
    let secs = t.elapsed().as_secs_f64();
    if out.received != total {
        return Err(format!(
            "SPDY: {} of {total} bytes came back through cat",
            out.received
        )
        .into());
    }
    let status = client.read_to_end(error, TRANSFER_LIMIT).await;
    let status = String::from_utf8_lossy(&status.data);
    if !status.contains("Success") {
        return Err(format!("SPDY exec status: {status}").into());
    }
    Ok(secs)
}

/// The same straight through Docker's hijacked exec stream; seconds taken.
async fn docker_cat(
    docker: &bollard::Docker,
    container: &str,
    total: usize,
    chunk: &[u8],
) -> Result<f64, BoxError> {
    let t = Instant::now();
    let exec = docker
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(vec!["cat"]),
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                ..Default::default()
            },
        )
        .await?
        .id;
    let StartExecResults::Attached {
        mut output,
        mut input,
    } = docker.start_exec(&exec, None).await?
    else {
        return Err("docker detached the exec".into());
    };
    let writer = async {
        let mut sent = 0;
        while sent < total {
            input.write_all(chunk).await?;
            sent += chunk.len();
        }
        input.shutdown().await?;
        Ok::<_, BoxError>(())
    };
    let reader = async {
        let mut got = 0usize;
        while let Some(Ok(item)) = output.next().await {
            got += item.into_bytes().len();
        }
        got
    };
    let (w, got) = tokio::time::timeout(TRANSFER_LIMIT, async { tokio::join!(writer, reader) })
        .await
        .map_err(|_| "docker exec transfer timed out")?;
    w?;
    let secs = t.elapsed().as_secs_f64();
    if got != total {
        return Err(format!("docker exec: {got} of {total} bytes came back through cat").into());
    }
    Ok(secs)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

async fn docker_exec_true(docker: &bollard::Docker, container: &str) -> Result<(), BoxError> {
    let id = docker
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(vec!["true"]),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await?
        .id;
    if let StartExecResults::Attached { mut output, .. } = docker.start_exec(&id, None).await? {
        while output.next().await.is_some() {}
    }
    docker.inspect_exec(&id).await?;
    Ok(())
}

/// Prints and returns p50 and p99 in milliseconds.
fn report(label: &str, samples: &mut [Duration]) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 * q) as usize).min(samples.len().saturating_sub(1));
        samples
            .get(i)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    };
    let (p50, p99) = (at(0.50), at(0.99));
    println!("{label}: p50 {p50:.2} ms, p99 {p99:.2} ms");
    (p50, p99)
}
