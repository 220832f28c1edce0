//! dockerd restarting under a running docker-cri, with live-restore on and
//! off: while Docker is away List/Status answer Unavailable (never stale
//! data), and once it is back they show what Docker shows, and container
//! events resume on the same subscription.
//!
//! Each test runs its own dockerd (the host's binary, its own socket, data
//! root, bridge and containerd namespace, host-network pods) so that
//! restarting it disturbs nothing else.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Server;
use docker_cri::api;
use tonic::Code;

/// A dockerd of the test's own.
struct PrivateDocker {
    child: Option<Child>,
    run_dir: PathBuf,
    data_root: PathBuf,
    bridge: String,
    live_restore: bool,
}

impl PrivateDocker {
    fn new(live_restore: bool) -> PrivateDocker {
        // Short: containerd's socket lives under the exec root and UNIX
        // socket paths are limited to 108 bytes.
        let tag = format!("{}-{}", std::process::id(), live_restore as u8);
        let docker = PrivateDocker {
            child: None,
            run_dir: PathBuf::from(format!("/run/dcri-rst-{tag}")),
            data_root: PathBuf::from(format!("/var/lib/docker-cri-test/restart-{tag}")),
            bridge: format!("dcrirst{}", live_restore as u8),
            live_restore,
        };
        std::fs::create_dir_all(&docker.run_dir).unwrap();
        std::fs::write(docker.run_dir.join("daemon.json"), "{}").unwrap();
        // A bridge of its own: with `--bridge none` dockerd deletes the
        // host's docker0, which the shared daemon needs.
        let bridge = docker.bridge.clone();
        let _ = ip(&["link", "del", &bridge]);
        assert!(
            ip(&["link", "add", &bridge, "type", "bridge"]),
            "creating {bridge}"
        );
        let subnet = format!("198.18.{}.1/24", 252 + live_restore as u8);
        assert!(ip(&["addr", "add", &subnet, "dev", &bridge]));
        assert!(ip(&["link", "set", &bridge, "up"]));
        docker
    }

    fn socket(&self) -> PathBuf {
        self.run_dir.join("docker.sock")
    }

    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.run_dir.join("dockerd.log"))
            .unwrap();
        let ns = self
            .run_dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        let mut cmd = Command::new("dockerd");
        cmd.arg("--host")
            .arg(format!("unix://{}", self.socket().display()))
            .arg("--data-root")
            .arg(&self.data_root)
            .arg("--exec-root")
            .arg(self.run_dir.join("exec"))
            .arg("--pidfile")
            .arg(self.run_dir.join("dockerd.pid"))
            .arg("--config-file")
            .arg(self.run_dir.join("daemon.json"))
            .arg("--containerd-namespace")
            .arg(&ns)
            .arg("--containerd-plugins-namespace")
            .arg(format!("{ns}-plugins"))
            .arg("--bridge")
            .arg(&self.bridge)
            .args(["--iptables=false", "--ip-masq=false"]);
        if self.live_restore {
            cmd.arg("--live-restore");
        }
        self.child = Some(
            cmd.stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("starting a private dockerd"),
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            assert!(
                Instant::now() < deadline,
                "private dockerd did not come up: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // Listening is not answering yet.
        while !Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.socket().display()))
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(
                Instant::now() < deadline,
                "private dockerd did not answer: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM and wait, as `systemctl stop docker` does.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(60);
            while child.try_wait().unwrap().is_none() {
                assert!(Instant::now() < deadline, "private dockerd did not stop");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.run_dir.join("dockerd.log")).unwrap_or_default()
    }

    fn docker_cli(&self, args: &[&str]) -> String {
        let out = Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.socket().display()))
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for PrivateDocker {
    fn drop(&mut self) {
        if self.child.is_none() {
            self.start();
        }
        // Leave nothing running: containers first, then the daemon.
        let ids = self.docker_cli(&["ps", "-aq"]);
        for id in ids.split_whitespace() {
            self.docker_cli(&["rm", "-f", id]);
        }
        self.live_restore = false;
        self.stop();
        // dockerd leaves its default network namespace mounted.
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        for target in mounts.lines().filter_map(|l| l.split(' ').nth(1)) {
            if Path::new(target).starts_with(&self.run_dir)
                || Path::new(target).starts_with(&self.data_root)
            {
                let _ = Command::new("umount").arg("-l").arg(target).status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.data_root);
        let _ = std::fs::remove_dir_all(&self.run_dir);
        ip(&["link", "del", &self.bridge]);
    }
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn build_pause_image(socket: &Path, tag: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_docker-cri"))
        .args(["pause-image", "--tag", tag])
        .arg(format!("--docker-endpoint=unix://{}", socket.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn wait_synced(server: &Server, times: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.log_text().matches("container index in sync").count() < times {
        assert!(
            Instant::now() < deadline,
            "index did not sync {times}x: {}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A host-network pod with one app container running the pause image.
async fn pod_with_container(
    rt: &mut common::pod::Runtime,
    image: &str,
    name: &str,
) -> (String, String) {
    let config = api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: name.into(),
            namespace: "docker-cri-restart".into(),
            uid: common::unique("uid"),
            attempt: 0,
        }),
        linux: Some(api::LinuxPodSandboxConfig {
            security_context: Some(api::LinuxSandboxSecurityContext {
                namespace_options: Some(api::NamespaceOption {
                    network: api::NamespaceMode::Node as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let sandbox = rt
        .run_pod_sandbox(api::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .pod_sandbox_id;
    let ctr = rt
        .create_container(api::CreateContainerRequest {
            pod_sandbox_id: sandbox.clone(),
            config: Some(api::ContainerConfig {
                metadata: Some(api::ContainerMetadata {
                    name: "app".into(),
                    attempt: 0,
                }),
                image: common::image_spec(image),
                ..Default::default()
            }),
            sandbox_config: Some(config),
        })
        .await
        .unwrap()
        .into_inner()
        .container_id;
    rt.start_container(api::StartContainerRequest {
        container_id: ctr.clone(),
    })
    .await
    .unwrap();
    (sandbox, ctr)
}

async fn container_state(rt: &mut common::pod::Runtime, id: &str) -> Result<i32, tonic::Status> {
    rt.container_status(api::ContainerStatusRequest {
        container_id: id.into(),
        verbose: false,
    })
    .await
    .map(|r| r.into_inner().status.unwrap().state)
}

async fn restart_dockerd_under_docker_cri(live_restore: bool) {
    let mut dockerd = PrivateDocker::new(live_restore);
    dockerd.start();
    let pause = "docker-cri-test/restart-pause:1";
    build_pause_image(&dockerd.socket(), pause);
    let socket = dockerd.socket().display().to_string();
    let server = Server::start_with_docker(&socket, &["--pod-infra-container-image", pause]).await;
    wait_synced(&server, 1).await;
    let mut rt = server.runtime().await;
    let mut events = rt
        .get_container_events(api::GetEventsRequest {})
        .await
        .unwrap()
        .into_inner();
    let (sandbox, ctr) = pod_with_container(&mut rt, pause, "before").await;
    assert_eq!(
        container_state(&mut rt, &ctr).await.unwrap(),
        api::ContainerState::ContainerRunning as i32
    );

    dockerd.stop();
    // Docker is away: no answer rather than a stale one.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match container_state(&mut rt, &ctr).await {
            Err(e) if e.code() == Code::Unavailable => break,
            other => assert!(
                Instant::now() < deadline,
                "while dockerd is down: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let listed = rt
        .list_containers(api::ListContainersRequest { filter: None })
        .await;
    assert_eq!(listed.map(|_| ()).unwrap_err().code(), Code::Unavailable);

    dockerd.start();
    wait_synced(&server, 2).await;
    let want = if live_restore {
        api::ContainerState::ContainerRunning
    } else {
        api::ContainerState::ContainerExited
    } as i32;
    assert_eq!(container_state(&mut rt, &ctr).await.unwrap(), want);
    let ready = rt
        .pod_sandbox_status(api::PodSandboxStatusRequest {
            pod_sandbox_id: sandbox.clone(),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap()
        .state;
    assert_eq!(
        ready == api::PodSandboxState::SandboxReady as i32,
        live_restore,
        "sandbox readiness after the restart"
    );

    // The subscription outlived dockerd's restart: it saw the pod come up,
    // the containers stop (without live-restore), and sees new pods.
    let (_, after) = pod_with_container(&mut rt, pause, "after").await;
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.contains(&(
        after.clone(),
        api::ContainerEventType::ContainerStartedEvent as i32,
    )) {
        assert!(
            Instant::now() < deadline,
            "events after the restart: {seen:?}"
        );
        let event = tokio::time::timeout(Duration::from_secs(10), events.message())
            .await
            .expect("an event")
            .unwrap()
            .unwrap();
        seen.push((event.container_id, event.container_event_type));
    }
    let stopped = seen.contains(&(
        ctr.clone(),
        api::ContainerEventType::ContainerStoppedEvent as i32,
    ));
    assert_eq!(stopped, !live_restore, "a stop event for {ctr} in {seen:?}");
}

#[tokio::test]
async fn dockerd_restart_with_live_restore_keeps_containers_running_and_the_index_right() {
    restart_dockerd_under_docker_cri(true).await;
}

#[tokio::test]
async fn dockerd_restart_without_live_restore_shows_the_containers_exited() {
    restart_dockerd_under_docker_cri(false).await;
}
