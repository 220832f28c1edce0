//! The real docker-cri binary running on a temporary socket, with CRI clients to it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use docker_cri::api::image_service_client::ImageServiceClient;
use docker_cri::api::runtime_service_client::RuntimeServiceClient;
use docker_cri::client;
use tonic::transport::Channel;

use super::{docker_socket, test_pause_image};

/// A running docker-cri process.
pub struct Server {
    child: Child,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub log: PathBuf,
}

impl Server {
    pub async fn start(extra: &[&str]) -> Server {
        Self::start_with_docker(&docker_socket(), extra).await
    }

    pub async fn start_with_docker(docker_socket: &str, extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        Self::launch(dir, docker_socket, &root, extra).await
    }

    /// A server whose state directory outlives it (for restart tests).
    pub async fn start_with_root(root: &Path, extra: &[&str]) -> Server {
        Self::launch(tempfile::tempdir().unwrap(), &docker_socket(), root, extra).await
    }

    async fn launch(
        dir: tempfile::TempDir,
        docker_socket: &str,
        root: &Path,
        extra: &[&str],
    ) -> Server {
        let socket = dir.path().join("cri.sock");
        let log = dir.path().join("docker-cri.log");
        // Hermetic: pods use a pause image built offline by docker-cri itself,
        // unless the test chooses one.
        let mut pause = Vec::new();
        if !extra.contains(&"--pod-infra-container-image") {
            pause = vec![
                "--pod-infra-container-image".to_string(),
                test_pause_image().to_string(),
            ];
        }
        let child = Command::new(env!("CARGO_BIN_EXE_docker-cri"))
            .arg("--container-runtime-endpoint")
            .arg(format!("unix://{}", socket.display()))
            .arg("--docker-endpoint")
            .arg(format!("unix://{docker_socket}"))
            .arg("--root-directory")
            .arg(root)
            .args(&pause)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawning docker-cri");
        let mut server = Server {
            child,
            dir,
            socket,
            log,
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("docker-cri exited early ({status}): {}", self.log_text());
            }
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("docker-cri did not listen in time: {}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn channel(&self) -> Channel {
        client::connect(&self.socket).await.unwrap()
    }

    pub async fn runtime(&self) -> RuntimeServiceClient<Channel> {
        client::runtime_client(self.channel().await)
    }

    pub async fn images(&self) -> ImageServiceClient<Channel> {
        client::image_client(self.channel().await)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGKILL: a crash, as far as docker-cri can tell.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid()),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "docker-cri ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
