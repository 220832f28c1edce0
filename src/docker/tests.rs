//! The connection state machine against a fake daemon on a UNIX socket.

use std::collections::HashMap;
use std::sync::Mutex as StdMutex;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

use super::*;

/// A fake Docker daemon: answers `/version` and `/info` with the version it
/// is told, or accepts and never answers; counts what it was asked.
struct FakeDaemon {
    version: Arc<StdMutex<String>>,
    requests: Arc<StdMutex<HashMap<String, usize>>>,
    connections: Arc<StdMutex<usize>>,
    _dir: tempfile::TempDir,
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl FakeDaemon {
    fn start(answer: bool) -> FakeDaemon {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        Self::start_at(dir, path, answer)
    }

    fn start_at(dir: tempfile::TempDir, path: PathBuf, answer: bool) -> FakeDaemon {
        Self::start_with(dir, path, answer, Duration::ZERO)
    }

    /// `info_delay`: a loaded daemon, slow over `docker info`.
    fn start_with(
        dir: tempfile::TempDir,
        path: PathBuf,
        answer: bool,
        info_delay: Duration,
    ) -> FakeDaemon {
        let listener = UnixListener::bind(&path).unwrap();
        let version = Arc::new(StdMutex::new("24.0.1".to_string()));
        let requests = Arc::new(StdMutex::new(HashMap::new()));
        let connections = Arc::new(StdMutex::new(0));
        let (v, r, c) = (version.clone(), requests.clone(), connections.clone());
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut conn, _)) = listener.accept().await {
                *c.lock().unwrap() += 1;
                if !answer {
                    held.push(conn);
                    continue;
                }
                let (v, r) = (v.clone(), r.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head);
                    let path = head.split(' ').nth(1).unwrap_or("").to_string();
                    let endpoint = path.rsplit('/').next().unwrap_or("").to_string();
                    *r.lock().unwrap().entry(endpoint.clone()).or_default() += 1;
                    if endpoint == "info" {
                        tokio::time::sleep(info_delay).await;
                    }
                    let version = v.lock().unwrap().clone();
                    let body = match endpoint.as_str() {
                        "version" => format!(r#"{{"Version":"{version}","ApiVersion":"1.43"}}"#),
                        "info" => format!(r#"{{"ServerVersion":"{version}","Driver":"overlay2"}}"#),
                        _ => "OK".to_string(),
                    };
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(reply.as_bytes()).await;
                });
            }
        });
        FakeDaemon {
            version,
            requests,
            connections,
            _dir: dir,
            path,
            task,
        }
    }

    fn asked(&self, endpoint: &str) -> usize {
        self.requests
            .lock()
            .unwrap()
            .get(endpoint)
            .copied()
            .unwrap_or(0)
    }

    fn set_version(&self, v: &str) {
        *self.version.lock().unwrap() = v.to_string();
    }
}

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn client(
    socket: &Path,
    probe: Duration,
    first_retry: Duration,
    refresh: Duration,
) -> DockerClient {
    DockerClient::with_timings(
        socket,
        Duration::from_secs(120),
        Timings {
            probe,
            join_wait: Duration::from_secs(5),
            first_retry,
            refresh,
        },
    )
}

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn facts_are_cached_and_refreshed_on_reconnect() {
    let fake = FakeDaemon::start(true);
    let docker = client(&fake.path, Duration::from_secs(10), HOUR, HOUR);
    assert_eq!(
        docker.version().await.unwrap().version.as_deref(),
        Some("24.0.1")
    );
    assert_eq!(docker.api_version().await.unwrap(), ApiVersion(1, 43));
    let (versions, infos) = (fake.asked("version"), fake.asked("info"));
    assert_eq!(infos, 1);
    for _ in 0..10 {
        docker.info().await.unwrap();
        docker.version().await.unwrap();
    }
    assert_eq!(fake.asked("version"), versions, "version is cached");
    assert_eq!(fake.asked("info"), infos, "info is cached");

    // A restarted daemon is noticed through a failed call: the reconnect
    // reads the facts again.
    fake.set_version("25.0.3");
    assert_eq!(
        docker.version().await.unwrap().version.as_deref(),
        Some("24.0.1")
    );
    docker
        .note_error(&Error::DockerUnavailable("connection reset".into()))
        .await;
    let info = docker.info().await.unwrap();
    assert_eq!(info.server_version.as_deref(), Some("25.0.3"));
    assert_eq!(
        docker.version().await.unwrap().version.as_deref(),
        Some("25.0.3")
    );
    assert_eq!(fake.asked("info"), infos + 1);
}

#[tokio::test]
async fn facts_are_refreshed_in_the_background_when_due() {
    let fake = FakeDaemon::start(true);
    let docker = client(
        &fake.path,
        Duration::from_secs(10),
        HOUR,
        Duration::from_millis(50),
    );
    docker.facts().await.unwrap();
    fake.set_version("26.1.0");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // Served from the cache while the refresh runs.
        let v = docker.version().await.unwrap().version.clone();
        if v.as_deref() == Some("26.1.0") {
            break;
        }
        assert_eq!(v.as_deref(), Some("24.0.1"));
        assert!(Instant::now() < deadline, "the facts were never refreshed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_daemon_that_never_answers_holds_no_caller_and_gets_one_attempt() {
    let fake = FakeDaemon::start(false);
    let mut docker = client(&fake.path, HOUR, HOUR, HOUR);
    if let Some(shared) = Arc::get_mut(&mut docker.shared) {
        shared.timings.join_wait = Duration::from_millis(100);
    }
    let docker = Arc::new(docker);
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let docker = docker.clone();
            tokio::spawn(async move { docker.api_version().await })
        })
        .collect();
    for call in calls {
        // The attempt itself may take an hour: callers must not wait for it.
        let result = tokio::time::timeout(Duration::from_secs(30), call)
            .await
            .expect("a caller waited for the slow attempt")
            .unwrap();
        match result {
            Err(Error::DockerUnavailable(m)) => assert!(m.contains("still connecting"), "{m}"),
            other => panic!("want Unavailable, got {other:?}"),
        }
    }
    assert_eq!(
        *fake.connections.lock().unwrap(),
        1,
        "one attempt at a time"
    );
}

#[tokio::test]
async fn a_failed_attempt_is_retried_after_the_back_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docker.sock");
    let patient = client(&path, Duration::from_secs(10), HOUR, HOUR);
    let eager = client(&path, Duration::from_secs(10), Duration::ZERO, HOUR);
    for docker in [&patient, &eager] {
        let err = docker.api_version().await.unwrap_err();
        assert!(matches!(err, Error::DockerUnavailable(_)), "{err:?}");
    }
    let fake = FakeDaemon::start_at(dir, path, true);
    // Within its back-off a client replays the failure without asking.
    let err = patient.api_version().await.unwrap_err();
    assert!(err.to_string().contains("no socket"), "{err}");
    assert_eq!(*fake.connections.lock().unwrap(), 0);
    // After it, the next call tries again.
    assert_eq!(eager.api_version().await.unwrap(), ApiVersion(1, 43));
}

#[tokio::test]
async fn callers_wait_for_a_daemon_that_answered_but_is_slow() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docker.sock");
    let fake = FakeDaemon::start_with(dir, path, true, Duration::from_millis(600));
    let mut docker = client(&fake.path, Duration::from_secs(10), HOUR, HOUR);
    if let Some(shared) = Arc::get_mut(&mut docker.shared) {
        shared.timings.join_wait = Duration::from_millis(100);
    }
    // It answered `docker version` at once, so it is alive: the caller
    // waits out the slow `docker info` instead of failing after join_wait.
    let facts = docker.facts().await.unwrap();
    assert_eq!(facts.info.server_version.as_deref(), Some("24.0.1"));
}

#[tokio::test]
async fn one_shot_commands_wait_for_a_daemon_that_comes_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docker.sock");
    let docker = client(
        &path,
        Duration::from_secs(10),
        Duration::from_millis(20),
        HOUR,
    );
    let start_later = {
        let path = path.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            FakeDaemon::start_at(dir, path, true)
        })
    };
    docker
        .wait_connected(Duration::from_secs(30))
        .await
        .unwrap();
    drop(start_later.await.unwrap());
    // Without waiting, a client gives up on an absent daemon at once.
    let gone = client(
        Path::new("/nonexistent/docker-cri-test/docker.sock"),
        Duration::from_secs(10),
        HOUR,
        HOUR,
    );
    let err = gone.wait_connected(Duration::ZERO).await.unwrap_err();
    assert!(matches!(err, Error::DockerUnavailable(_)), "{err:?}");
}
