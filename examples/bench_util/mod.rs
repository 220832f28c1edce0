//! Shared by the benchmarks that run the real docker-cri binary as a child
//! process (so its CPU and RSS are its own, not the client's): spawning it,
//! reading CPU and memory from /proc, percentiles, the images the pods run,
//! and removing everything a run created, also after an error or ctrl-c.
//!
//! Not an example of its own: cargo only builds `examples/*.rs` and
//! `examples/*/main.rs`; the benchmarks include this with `#[path]`.

#![allow(dead_code)] // each benchmark uses a different part

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::StreamExt;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// utime + stime of a process, in clock ticks (USER_HZ, 100 a second).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is parenthesised and may hold spaces: count fields
    // after its closing parenthesis (utime, stime are fields 14 and 15).
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Resident memory in KiB (VmRSS).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// dockerd's pid: its pid file, else the first process named dockerd.
pub fn dockerd_pid() -> Option<u32> {
    let from_file = std::fs::read_to_string("/var/run/docker.pid")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|pid| comm(*pid).as_deref() == Some("dockerd"));
    from_file.or_else(|| {
        std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            (comm(pid).as_deref() == Some("dockerd")).then_some(pid)
        })
    })
}

fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// CPU used by a set of processes between `start` and `stop`.
pub struct CpuWatch {
    pids: Vec<Option<u32>>,
    before: Vec<Option<u64>>,
    at: Instant,
}

/// CPU time per watched process (milliseconds) over a wall-clock span.
pub struct CpuUse {
    pub ms: Vec<Option<f64>>,
    pub wall: Duration,
}

impl CpuWatch {
    pub fn start(pids: &[Option<u32>]) -> CpuWatch {
        CpuWatch {
            pids: pids.to_vec(),
            before: pids.iter().map(|p| p.and_then(cpu_ticks)).collect(),
            at: Instant::now(),
        }
    }

    pub fn stop(self) -> CpuUse {
        let ms = self
            .pids
            .iter()
            .zip(&self.before)
            .map(|(pid, before)| {
                let after = pid.and_then(cpu_ticks)?;
                // USER_HZ is 100 on every Linux ABI Docker runs on.
                Some(after.saturating_sub((*before)?) as f64 * 10.0)
            })
            .collect();
        CpuUse {
            ms,
            wall: self.at.elapsed(),
        }
    }
}

impl CpuUse {
    /// Percent of one core used by process `i` ("?" when unreadable).
    pub fn percent(&self, i: usize) -> String {
        match self.ms.get(i).copied().flatten() {
            Some(ms) => format!("{:.1}%", ms / self.wall.as_secs_f64() / 10.0),
            None => "?".into(),
        }
    }
}

/// The `q` quantile (0..=1) of sorted samples, in milliseconds.
pub fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// The release docker-cri binary beside the running example
/// (target/release/examples/x -> target/release/docker-cri), or
/// `DOCKER_CRI_BIN`.
pub fn docker_cri_binary() -> Result<PathBuf, BoxError> {
    if let Some(bin) = std::env::var_os("DOCKER_CRI_BIN") {
        return Ok(bin.into());
    }
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("docker-cri"))
        .filter(|b| b.exists())
        .ok_or("docker-cri binary not found: `cargo build --release --bin docker-cri` first, or set DOCKER_CRI_BIN")?;
    Ok(bin)
}

/// A docker-cri process of our own; killed when dropped (also on panic).
pub struct Server {
    child: tokio::process::Child,
    pub socket: PathBuf,
    pub log: PathBuf,
}

impl Server {
    pub async fn start(
        binary: &Path,
        dir: &Path,
        pause_image: &str,
        extra: &[&str],
    ) -> Result<Server, BoxError> {
        let socket = dir.join("cri.sock");
        let log = dir.join("docker-cri.log");
        let child = tokio::process::Command::new(binary)
            .arg(format!(
                "--container-runtime-endpoint=unix://{}",
                socket.display()
            ))
            .arg(format!("--root-directory={}", dir.join("root").display()))
            .arg(format!("--pod-infra-container-image={pause_image}"))
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .kill_on_drop(true)
            .spawn()?;
        let mut server = Server { child, socket, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = server.child.try_wait()? {
                return Err(format!(
                    "docker-cri exited early ({status}); see {}",
                    server.log.display()
                )
                .into());
            }
            if std::os::unix::net::UnixStream::connect(&server.socket).is_ok() {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err("docker-cri did not listen within 20 s".into())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// SIGTERM and wait, so it exits as it would under systemd.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
    }
}

pub async fn docker() -> Result<bollard::Docker, BoxError> {
    Ok(bollard::Docker::connect_with_unix_defaults()?
        .negotiate_version()
        .await?)
}

/// Builds docker-cri's own pause image under `tag` (offline).
pub async fn build_pause_image(binary: &Path, tag: &str) -> Result<(), BoxError> {
    let out = tokio::process::Command::new(binary)
        .args(["pause-image", "--tag", tag])
        .output()
        .await?;
    if !out.status.success() {
        return Err(format!(
            "docker-cri pause-image failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

/// A `FROM scratch` image holding the host's static busybox (Debian's
/// busybox-static), so the pods' `sleep` needs no registry.
pub async fn build_busybox(docker: &bollard::Docker, tag: &str) -> Result<(), BoxError> {
    let busybox = std::fs::read("/bin/busybox")
        .map_err(|e| format!("/bin/busybox (Debian busybox-static) is needed: {e}"))?;
    let dockerfile = "FROM scratch\nCOPY busybox /bin/busybox\n\
                      RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n";
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data, mode) in [
        ("Dockerfile", dockerfile.as_bytes(), 0o644),
        ("busybox", busybox.as_slice(), 0o755),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_cksum();
        tar.append_data(&mut h, path, data)?;
    }
    let options = bollard::query_parameters::BuildImageOptionsBuilder::new()
        .t(tag)
        .rm(true)
        .build();
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

/// Force-removes every container carrying `label` (`key=value`); returns
/// how many it found. Only this run's unique label is ever passed, so
/// nothing of anyone else's is touched. A busy dockerd sometimes leaves a
/// removal "in progress": it is asked again a few times.
pub async fn remove_labelled(docker: &bollard::Docker, label: &str) -> Result<usize, BoxError> {
    let filters: HashMap<&str, Vec<String>> = HashMap::from([("label", vec![label.to_string()])]);
    let options = bollard::query_parameters::ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let remove = bollard::query_parameters::RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    let mut first = None;
    for attempt in 0..5 {
        let found = docker.list_containers(Some(options.clone())).await?;
        first.get_or_insert(found.len());
        if found.is_empty() {
            break;
        }
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        futures_util::future::join_all(
            found
                .iter()
                .filter_map(|c| c.id.as_deref())
                .map(|id| docker.remove_container(id, Some(remove.clone()))),
        )
        .await;
    }
    let left = docker.list_containers(Some(options)).await?.len();
    if left > 0 {
        eprintln!(
            "{left} containers labelled {label} could not be removed yet; remove them with: docker rm -f $(docker ps -aq --filter label={label})"
        );
    }
    Ok(first.unwrap_or(0))
}

pub async fn remove_image(docker: &bollard::Docker, tag: &str) {
    let options = bollard::query_parameters::RemoveImageOptionsBuilder::new()
        .force(true)
        .build();
    let _ = docker.remove_image(tag, Some(options), None).await;
}

/// Runs `work` until it finishes or ctrl-c, whichever is first: the
/// caller's cleanup runs after either.
pub async fn until_interrupted<T>(
    work: impl std::future::Future<Output = Result<T, BoxError>>,
) -> Result<T, BoxError> {
    tokio::select! {
        r = work => r,
        _ = tokio::signal::ctrl_c() => Err("interrupted".into()),
    }
}

/// A pod as kubelet would send it: metadata, a log directory under `logs`.
pub fn sandbox_config(
    namespace: &str,
    name: &str,
    logs: &Path,
) -> docker_cri::api::PodSandboxConfig {
    use docker_cri::api;
    api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: name.to_string(),
            namespace: namespace.to_string(),
            uid: format!("{namespace}-{name}"),
            attempt: 0,
        }),
        log_directory: logs.join(name).to_string_lossy().into_owned(),
        ..Default::default()
    }
}

/// An app container running `command` from `image`, with a CRI log file.
pub fn container_config(
    name: &str,
    image: &str,
    command: &[&str],
) -> docker_cri::api::ContainerConfig {
    use docker_cri::api;
    api::ContainerConfig {
        metadata: Some(api::ContainerMetadata {
            name: name.to_string(),
            attempt: 0,
        }),
        image: Some(api::ImageSpec {
            image: image.to_string(),
            ..Default::default()
        }),
        command: command.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}/0.log"),
        ..Default::default()
    }
}

/// Every sample of a Prometheus text scrape of `http://addr/metrics`, by
/// its name and labels as written.
pub fn scrape(addr: std::net::SocketAddr) -> Result<HashMap<String, f64>, BoxError> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok(body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_string(), value.parse().ok()?))
        })
        .collect())
}

/// A free loopback port, for docker-cri's /metrics.
pub fn free_port() -> Result<std::net::SocketAddr, BoxError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}
