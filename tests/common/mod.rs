//! Shared fixtures for the integration tests: the real docker-cri binary on
//! a temporary socket, a CRI client, locally built test images, a loopback
//! registry. Everything is uniquely named and cleaned up on drop, so a daemon
//! with leftovers never breaks a test.
#![allow(dead_code)]

pub mod pod;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, PushImageOptionsBuilder, RemoveImageOptionsBuilder,
    TagImageOptionsBuilder,
};
use docker_cri::api::image_service_client::ImageServiceClient;
use docker_cri::api::runtime_service_client::RuntimeServiceClient;
use docker_cri::client;
use futures_util::StreamExt;
use tonic::transport::Channel;

pub mod proxy;

/// The Docker daemon under test: `/var/run/docker.sock`, or the socket path
/// in DOCKER_CRI_TEST_DOCKER_SOCKET (to run the suite against another
/// Docker version side by side).
pub fn docker_socket() -> String {
    std::env::var("DOCKER_CRI_TEST_DOCKER_SOCKET").unwrap_or_else(|_| "/var/run/docker.sock".into())
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{}-{nanos:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The Docker daemon, or a panic that says what is missing.
pub async fn docker() -> Docker {
    let fail = |why: String| -> ! {
        panic!(
            "these tests need a running Docker daemon at {} ({why}); \
             start dockerd, or run ./scripts/test.sh which does",
            docker_socket()
        )
    };
    let docker = Docker::connect_with_unix(&docker_socket(), 120, bollard::API_DEFAULT_VERSION)
        .unwrap_or_else(|e| fail(e.to_string()))
        .negotiate_version()
        .await
        .unwrap_or_else(|e| fail(e.to_string()));
    docker.ping().await.unwrap_or_else(|e| fail(e.to_string()));
    docker
}

/// The pause image the tests' pods use, built once per test binary with
/// `docker-cri pause-image` (no registry involved).
pub fn test_pause_image() -> &'static str {
    static IMAGE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    IMAGE.get_or_init(|| {
        let tag = format!("docker-cri-test/pause:{}", env!("CARGO_PKG_VERSION"));
        let out = Command::new(env!("CARGO_BIN_EXE_docker-cri"))
            .args(["pause-image", "--tag", &tag])
            .arg(format!("--docker-endpoint=unix://{}", docker_socket()))
            .output()
            .expect("running docker-cri pause-image");
        assert!(
            out.status.success(),
            "building the test pause image failed (is dockerd running?): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tag
    })
}

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

/// A Docker image built for one test, removed on drop.
pub struct TestImage {
    pub name: String,
    pub id: String,
}

impl TestImage {
    /// A `FROM scratch` image with busybox-static and an optional `USER`.
    pub async fn busybox(user: Option<&str>) -> TestImage {
        let extra = user.map(|u| format!("USER {u}\n")).unwrap_or_default();
        Self::busybox_with(&extra).await
    }

    /// The busybox image with extra Dockerfile lines at the end.
    pub async fn busybox_with(extra: &str) -> TestImage {
        let busybox = std::fs::read("/bin/busybox").expect(
            "/bin/busybox is missing: install Debian's busybox-static (scripts/test.sh does)",
        );
        let mut dockerfile = String::from(
            "FROM scratch\nCOPY busybox /bin/busybox\n\
             RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
        );
        dockerfile.push_str(extra);
        dockerfile.push_str(&format!("LABEL docker-cri-test=\"{}\"\n", unique("label")));
        let name = format!("docker-cri-test/{}:t1", unique("img"));
        let id = build(&name, &dockerfile, &[("busybox", &busybox, 0o755)]).await;
        TestImage { name, id }
    }

    pub async fn tag(&self, name: &str) {
        let (repo, tag) = name.rsplit_once(':').unwrap();
        docker()
            .await
            .tag_image(
                &self.id,
                Some(TagImageOptionsBuilder::new().repo(repo).tag(tag).build()),
            )
            .await
            .unwrap();
    }
}

impl Drop for TestImage {
    fn drop(&mut self) {
        let id = self.id.clone();
        // Drop cannot be async; a short-lived runtime on another thread is fine.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let docker = docker().await;
                let _ = docker
                    .remove_image(
                        &id,
                        Some(RemoveImageOptionsBuilder::new().force(true).build()),
                        None,
                    )
                    .await;
            });
        })
        .join();
    }
}

/// Builds an image from a Dockerfile and files, returning its ID.
pub async fn build(name: &str, dockerfile: &str, files: &[(&str, &[u8], u32)]) -> String {
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8], mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_cksum();
        tar.append_data(&mut h, path, data).unwrap();
    };
    add("Dockerfile", dockerfile.as_bytes(), 0o644);
    for (path, data, mode) in files {
        add(path, data, *mode);
    }
    let context = tar.into_inner().unwrap();
    let docker = docker().await;
    // No cache: concurrent tests removing their images would otherwise prune
    // intermediate layers another build is reusing.
    let options = BuildImageOptionsBuilder::new()
        .t(name)
        .rm(true)
        .nocache(true)
        .build();
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(item) = stream.next().await {
        let info = item.unwrap_or_else(|e| panic!("building {name}: {e}"));
        if let Some(err) = info.error_detail.and_then(|d| d.message) {
            panic!("building {name}: {err}");
        }
    }
    docker.inspect_image(name).await.unwrap().id.unwrap()
}

pub async fn remove_image_quietly(name: &str) {
    let _ = docker()
        .await
        .remove_image(
            name,
            Some(RemoveImageOptionsBuilder::new().force(true).build()),
            None,
        )
        .await;
}

pub async fn image_exists(name: &str) -> bool {
    docker().await.inspect_image(name).await.is_ok()
}

/// Debian's docker-registry on a free loopback port, optionally behind
/// htpasswd auth. Docker treats 127.0.0.0/8 registries as insecure (plain
/// HTTP) by default, so no TLS is needed.
pub struct Registry {
    child: Child,
    _dir: tempfile::TempDir,
    pub host: String,
    pub credentials: Option<(String, String)>,
}

impl Registry {
    pub async fn start(with_auth: bool) -> Registry {
        let binary = Path::new("/usr/bin/docker-registry");
        assert!(
            binary.exists(),
            "{} is missing: install Debian's docker-registry (scripts/test.sh does)",
            binary.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: {host}\n",
            dir.path().join("data").display()
        );
        let credentials = with_auth.then(|| ("tester".to_string(), unique("pw")));
        if let Some((user, password)) = &credentials {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("htpasswd is missing: install apache2-utils (scripts/test.sh does)");
            assert!(out.status.success());
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, out.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::File::create(&config_path)
            .unwrap()
            .write_all(config.as_bytes())
            .unwrap();
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&host).is_err() {
            assert!(
                Instant::now() < deadline,
                "registry did not start on {host}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Registry {
            child,
            _dir: dir,
            host,
            credentials,
        }
    }

    /// Pushes a local image to `<host>/<path>` and drops the local tag.
    pub async fn push(&self, image: &TestImage, path_and_tag: &str) -> String {
        let target = format!("{}/{path_and_tag}", self.host);
        image.tag(&target).await;
        let (repo, tag) = target.rsplit_once(':').unwrap();
        // Docker 20.10 wants an X-Registry-Auth header on push even when
        // the registry is anonymous.
        let creds = Some(bollard::auth::DockerCredentials {
            username: self.credentials.as_ref().map(|c| c.0.clone()),
            password: self.credentials.as_ref().map(|c| c.1.clone()),
            serveraddress: Some(self.host.clone()),
            ..Default::default()
        });
        let docker = docker().await;
        let mut stream = docker.push_image(
            repo,
            Some(PushImageOptionsBuilder::new().tag(tag).build()),
            creds,
        );
        while let Some(item) = stream.next().await {
            let info = item.unwrap_or_else(|e| panic!("pushing {target}: {e}"));
            if let Some(err) = info.error_detail.and_then(|d| d.message) {
                panic!("pushing {target}: {err}");
            }
        }
        docker
            .remove_image(
                &target,
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await
            .unwrap();
        target
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn image_spec(name: &str) -> Option<docker_cri::api::ImageSpec> {
    Some(docker_cri::api::ImageSpec {
        image: name.to_string(),
        ..Default::default()
    })
}

/// Removes every Docker container of a pod (by its UID label) on drop, so a
/// failed test leaves nothing running.
pub struct PodCleanup(pub String);

impl Drop for PodCleanup {
    fn drop(&mut self) {
        let uid = self.0.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let docker = docker().await;
                for c in
                    containers_with_label(&docker, &format!("io.kubernetes.pod.uid={uid}")).await
                {
                    let _ = docker
                        .remove_container(
                            &c,
                            Some(
                                bollard::query_parameters::RemoveContainerOptionsBuilder::new()
                                    .force(true)
                                    .build(),
                            ),
                        )
                        .await;
                }
            });
        })
        .join();
    }
}

pub async fn docker_logs(id: &str) -> String {
    let docker = docker().await;
    let mut logs = docker.logs(
        id,
        Some(
            bollard::query_parameters::LogsOptionsBuilder::new()
                .stdout(true)
                .stderr(true)
                .build(),
        ),
    );
    let mut out = String::new();
    while let Some(Ok(chunk)) = logs.next().await {
        out.push_str(&chunk.to_string());
    }
    out
}

pub async fn containers_with_label(docker: &Docker, label: &str) -> Vec<String> {
    let filters = std::collections::HashMap::from([("label", vec![label.to_string()])]);
    docker
        .list_containers(Some(
            bollard::query_parameters::ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|c| c.id)
        .collect()
}

/// Starts a busybox helper container that joins the sandbox's network and
/// IPC namespaces (as an app container will) running `script`; returns its ID.
pub async fn start_in_pod(image: &TestImage, sandbox_id: &str, script: &str) -> String {
    use bollard::models::{ContainerCreateBody, HostConfig};
    let docker = docker().await;
    let name = unique("helper");
    let body = ContainerCreateBody {
        image: Some(image.id.clone()),
        cmd: Some(vec!["sh".into(), "-c".into(), script.into()]),
        host_config: Some(HostConfig {
            network_mode: Some(format!("container:{sandbox_id}")),
            ipc_mode: Some(format!("container:{sandbox_id}")),
            ..Default::default()
        }),
        ..Default::default()
    };
    create_and_start(&docker, &name, body).await
}

pub async fn force_remove(id: &str) {
    let _ = docker()
        .await
        .remove_container(
            id,
            Some(
                bollard::query_parameters::RemoveContainerOptionsBuilder::new()
                    .force(true)
                    .build(),
            ),
        )
        .await;
}

/// Runs `script` in a helper container in the pod and returns its output.
pub async fn run_in_pod(image: &TestImage, sandbox_id: &str, script: &str) -> String {
    let docker = docker().await;
    let id = start_in_pod(image, sandbox_id, script).await;
    let mut wait =
        docker.wait_container(&id, None::<bollard::query_parameters::WaitContainerOptions>);
    let waited = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(_r) = wait.next().await {}
    })
    .await;
    let out = docker_logs(&id).await;
    force_remove(&id).await;
    assert!(waited.is_ok(), "helper did not finish: {out}");
    out
}

/// A plain `docker run`-style container (not made through CRI) running
/// `sleep 300`; returns its ID.
pub async fn start_plain_container(image_id: &str, name: &str) -> String {
    let docker = docker().await;
    create_and_start(
        &docker,
        name,
        bollard::models::ContainerCreateBody {
            image: Some(image_id.to_string()),
            cmd: Some(vec!["sleep".into(), "300".into()]),
            ..Default::default()
        },
    )
    .await
}

async fn create_and_start(
    docker: &Docker,
    name: &str,
    body: bollard::models::ContainerCreateBody,
) -> String {
    let id = docker
        .create_container(
            Some(
                bollard::query_parameters::CreateContainerOptionsBuilder::new()
                    .name(name)
                    .build(),
            ),
            body,
        )
        .await
        .unwrap()
        .id;
    docker
        .start_container(
            &id,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .unwrap();
    id
}

/// Whether this host lets Docker start a privileged container of `image_id`
/// with its own command, or `cmd` (some CI sandboxes' root lacks the
/// capabilities; whether it matters depends on the image's user). Asked of
/// Docker directly, so a test can demand the outcome the host allows
/// instead of accepting either.
pub async fn host_runs_privileged(image_id: &str, cmd: Option<&[&str]>) -> bool {
    let docker = docker().await;
    let name = unique("privprobe");
    let id = docker
        .create_container(
            Some(
                bollard::query_parameters::CreateContainerOptionsBuilder::new()
                    .name(&name)
                    .build(),
            ),
            bollard::models::ContainerCreateBody {
                image: Some(image_id.to_string()),
                cmd: cmd.map(|c| c.iter().map(|s| s.to_string()).collect()),
                host_config: Some(bollard::models::HostConfig {
                    privileged: Some(true),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .id;
    let started = docker
        .start_container(
            &id,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .is_ok();
    force_remove(&id).await;
    started
}

/// The lowest oom_score_adj this host lets a root process set, probed on
/// the test process itself (and restored).
pub fn host_min_oom_score_adj() -> i64 {
    const PATH: &str = "/proc/self/oom_score_adj";
    let current: i64 = std::fs::read_to_string(PATH)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    if std::fs::write(PATH, "-1000").is_ok() {
        std::fs::write(PATH, current.to_string()).unwrap();
        -1000
    } else {
        current
    }
}
