//! Container log throughput: N containers each printing about RATE KiB/s
//! for T seconds, copied by docker-cri into CRI log files.
//!
//!     cargo build --release --bin docker-cri --example log_bench
//!     target/release/examples/log_bench [N=50] [T=30] [RATE_KIB=1024]
//!
//! N may be a list (`10,25,50`): one run each, a fresh docker-cri per run,
//! and a summary table at the end.
//!
//! Runs the docker-cri binary built next to this example (or
//! $DOCKER_CRI_BIN) as a separate process against the local Docker and
//! prints: docker-cri's CPU (from /proc/<pid>/stat) and peak RSS, dockerd's
//! CPU for comparison, the bytes/s Docker wrote to its JSON files (the
//! floor: docker-cri cannot copy faster than Docker stores) and docker-cri
//! wrote to the CRI files, and the lag from Docker's timestamp of a line to
//! the moment the line is in the CRI file (sampled by polling every 20 ms,
//! so figures include up to 20 ms of polling delay). Lines per second are
//! the byte rates divided by each format's line length (every line the
//! containers print is the same 100 bytes), so the JSON and CRI rates
//! compare directly. Removes what it made.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bollard::Docker;
use bollard::query_parameters::{BuildImageOptionsBuilder, RemoveImageOptionsBuilder};
use docker_cri::{api, client};
use futures_util::StreamExt;

const IMAGE: &str = "docker-cri-bench/busybox:log";
const PAUSE: &str = "docker-cri-bench/pause:log";
const POLL: Duration = Duration::from_millis(20);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let ns: Vec<usize> = args
        .next()
        .map(|a| a.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![50]);
    let secs: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(30);
    let rate_kib: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1024);

    let bin = std::env::var_os("DOCKER_CRI_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().expect("own path");
            exe.parent()
                .and_then(Path::parent)
                .expect("target dir")
                .join("docker-cri")
        });
    let docker = Docker::connect_with_unix_defaults()?;
    println!("building the busybox and pause images...");
    build_busybox(&docker).await?;
    let built = Command::new(&bin)
        .args(["pause-image", "--tag", PAUSE])
        .output()?;
    assert!(
        built.status.success(),
        "pause-image: {}",
        String::from_utf8_lossy(&built.stderr)
    );

    let mut results = Vec::new();
    for &n in &ns {
        results.push(run(&docker, &bin, n, secs, rate_kib).await?);
    }
    if results.len() > 1 {
        println!(
            "\n   N  cri CPU%  dockerd CPU%  RSS MiB  JSON lines/s  CRI lines/s  lag p50/p99 ms"
        );
        for r in &results {
            println!(
                "{:>4}  {:>8.1}  {:>12.1}  {:>7.1}  {:>12.0}  {:>11.0}  {:.0}/{:.0}",
                r.n, r.cpu, r.dockerd_cpu, r.rss_mib, r.json_lines, r.cri_lines, r.p50_ms, r.p99_ms
            );
        }
    }
    for image in [IMAGE, PAUSE] {
        let _ = docker
            .remove_image(
                image,
                Some(RemoveImageOptionsBuilder::new().force(true).build()),
                None,
            )
            .await;
    }
    Ok(())
}

struct Figures {
    n: usize,
    cpu: f64,
    dockerd_cpu: f64,
    rss_mib: f64,
    json_lines: f64,
    cri_lines: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn run(
    docker: &Docker,
    bin: &Path,
    n: usize,
    secs: u64,
    rate_kib: u64,
) -> Result<Figures, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let socket = dir.path().join("cri.sock");
    let server = Command::new(bin)
        .arg(format!(
            "--container-runtime-endpoint=unix://{}",
            socket.display()
        ))
        .arg(format!(
            "--root-directory={}",
            dir.path().join("root").display()
        ))
        .arg(format!("--pod-infra-container-image={PAUSE}"))
        // No Docker-side rotation inside the window: its JSON sizes are the floor.
        .args(["--docker-log-max-size=1g", "--log-level=warn"])
        .stderr(Stdio::inherit())
        .spawn()?;
    // Killed however this run ends.
    let server = Reaped(server);
    let pid = server.0.id() as i32;
    for _ in 0..250 {
        if socket.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut rt = client::runtime_client(client::connect(&socket).await?);
    let logs = dir.path().join("pods");
    let sandbox_config = api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: "log-bench".into(),
            namespace: "docker-cri-bench".into(),
            uid: format!("log-bench-{}", std::process::id()),
            attempt: 0,
        }),
        log_directory: logs.display().to_string(),
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
    let measured = measure(
        &mut rt,
        docker,
        &sandbox,
        &sandbox_config,
        &logs,
        pid,
        n,
        secs,
        rate_kib,
    )
    .await;
    println!("\ncleaning up...");
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
    drop(server);
    measured
}

struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

type Runtime =
    docker_cri::api::runtime_service_client::RuntimeServiceClient<tonic::transport::Channel>;

#[allow(clippy::too_many_arguments)]
async fn measure(
    rt: &mut Runtime,
    docker: &Docker,
    sandbox: &str,
    sandbox_config: &api::PodSandboxConfig,
    logs: &Path,
    pid: i32,
    n: usize,
    secs: u64,
    rate_kib: u64,
) -> Result<Figures, Box<dyn std::error::Error>> {
    // ~100-byte lines in bursts ten times a second.
    let burst = rate_kib * 1024 / 10;
    let script = format!(
        "while true; do head -c {burst} /dev/zero | tr '\\0' x | fold -w 99; sleep 0.1; done"
    );
    println!("starting {n} containers printing ~{rate_kib} KiB/s each for {secs}s...");
    let mut containers = Vec::new();
    for i in 0..n {
        let id = rt
            .create_container(api::CreateContainerRequest {
                pod_sandbox_id: sandbox.to_string(),
                config: Some(api::ContainerConfig {
                    metadata: Some(api::ContainerMetadata {
                        name: format!("p{i}"),
                        attempt: 0,
                    }),
                    image: Some(api::ImageSpec {
                        image: IMAGE.into(),
                        ..Default::default()
                    }),
                    command: vec!["sh".into(), "-c".into(), script.clone()],
                    log_path: format!("p{i}/0.log"),
                    ..Default::default()
                }),
                sandbox_config: Some(sandbox_config.clone()),
            })
            .await?
            .into_inner()
            .container_id;
        rt.start_container(api::StartContainerRequest {
            container_id: id.clone(),
        })
        .await?;
        let json = docker
            .inspect_container(&id, None)
            .await?
            .log_path
            .map(PathBuf::from)
            .unwrap_or_default();
        containers.push((id, logs.join(format!("p{i}/0.log")), json));
    }
    // Let the first bursts settle before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let dockerd = pid_of("dockerd");
    let cpu0 = (cpu_ticks(pid), dockerd.map(cpu_ticks));
    let sizes = |which: fn(&(String, PathBuf, PathBuf)) -> &PathBuf| -> u64 {
        containers.iter().map(|c| file_len(which(c))).sum()
    };
    let (json0, cri0) = (sizes(|c| &c.2), sizes(|c| &c.1));
    let mut offsets: HashMap<PathBuf, u64> = containers
        .iter()
        .map(|c| (c.1.clone(), file_len(&c.1)))
        .collect();
    let mut lags = Vec::new();
    let mut peak_rss = 0;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(POLL).await;
        let now = now_nanos();
        for (path, offset) in offsets.iter_mut() {
            if let Some(ts) = first_new_timestamp(path, offset) {
                lags.push(Duration::from_nanos((now - ts).max(0) as u64));
            }
        }
        peak_rss = peak_rss.max(rss_kib(pid));
    }
    let window = start.elapsed().as_secs_f64();
    let (json1, cri1) = (sizes(|c| &c.2), sizes(|c| &c.1));
    let cpu1 = (cpu_ticks(pid), dockerd.map(cpu_ticks));

    let hz = 100.0; // USER_HZ on Linux
    let pct = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / hz / window * 100.0;
    lags.sort();
    let at = |q: f64| {
        lags.get(((lags.len().max(1) - 1) as f64 * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    let mb = |b: u64| b as f64 / window / 1e6;
    // Bytes per line of each format, from the first line of the first
    // container's files.
    let line_len = |path: &Path| {
        std::fs::read(path)
            .ok()
            .and_then(|b| b.iter().position(|c| *c == b'\n').map(|i| (i + 1) as f64))
    };
    let json_line = containers
        .first()
        .and_then(|c| line_len(&c.2))
        .unwrap_or(1.0);
    let cri_line = containers
        .first()
        .and_then(|c| line_len(&c.1))
        .unwrap_or(1.0);
    let per_sec = |b: u64, len: f64| b as f64 / len / window;
    let dockerd_cpu = match (cpu0.1, cpu1.1) {
        (Some(a), Some(b)) => pct(a, b),
        _ => f64::NAN,
    };
    let figures = Figures {
        n,
        cpu: pct(cpu0.0, cpu1.0),
        dockerd_cpu,
        rss_mib: peak_rss as f64 / 1024.0,
        json_lines: per_sec(json1 - json0, json_line),
        cri_lines: per_sec(cri1 - cri0, cri_line),
        p50_ms: at(0.5).as_secs_f64() * 1e3,
        p99_ms: at(0.99).as_secs_f64() * 1e3,
    };
    println!("\nwindow {window:.1}s, {n} containers, ~{rate_kib} KiB/s each");
    println!(
        "docker-cri CPU            {:>8.1} % of one core",
        figures.cpu
    );
    println!("dockerd CPU (reference)   {dockerd_cpu:>8.1} % of one core");
    println!("docker-cri peak RSS       {:>8.1} MiB", figures.rss_mib);
    println!(
        "Docker JSON written       {:>8.2} MB/s, {:>8.0} lines/s (the floor)",
        mb(json1 - json0),
        figures.json_lines
    );
    println!(
        "CRI files written         {:>8.2} MB/s, {:>8.0} lines/s",
        mb(cri1 - cri0),
        figures.cri_lines
    );
    println!(
        "lag p50 / p99 / max       {:>8.0} / {:.0} / {:.0} ms ({} samples)",
        figures.p50_ms,
        figures.p99_ms,
        lags.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        lags.len()
    );

    Ok(figures)
}

async fn build_busybox(docker: &Docker) -> Result<(), Box<dyn std::error::Error>> {
    let busybox = std::fs::read("/bin/busybox")?;
    let dockerfile = "FROM scratch\nCOPY busybox /bin/busybox\n\
                      RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n";
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data, mode) in [
        ("Dockerfile", dockerfile.as_bytes(), 0o644),
        ("busybox", &busybox[..], 0o755),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_cksum();
        tar.append_data(&mut h, path, data)?;
    }
    let options = BuildImageOptionsBuilder::new().t(IMAGE).rm(true).build();
    let mut stream = docker.build_image(
        options,
        None,
        Some(bollard::body_full(tar.into_inner()?.into())),
    );
    while let Some(item) = stream.next().await {
        if let Some(err) = item?.error_detail.and_then(|d| d.message) {
            return Err(err.into());
        }
    }
    Ok(())
}

/// The timestamp of the first whole line appended since `offset`, which
/// moves to the end of the last whole line.
fn first_new_timestamp(path: &Path, offset: &mut u64) -> Option<i64> {
    let mut f = std::fs::File::open(path).ok()?;
    f.seek(SeekFrom::Start(*offset)).ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    let end = buf.iter().rposition(|b| *b == b'\n')? + 1;
    *offset += end as u64;
    let first = &buf[..buf.iter().position(|b| *b == b' ')?];
    docker_cri::mapping::time::rfc3339_nanos(std::str::from_utf8(first).ok()?)
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th of the whole line.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn pid_of(name: &str) -> Option<i32> {
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok())
        .find_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
            (comm.trim() == name).then_some(pid)
        })
}
