//! The writer against a fake Docker log: what lands in the file, and that
//! a restart, a torn line or a reopen neither loses nor doubles a line.

use std::sync::Mutex;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::{self, StreamExt};
use tokio::sync::broadcast;

use super::*;
use crate::docker::logs::{LogBatches, LogMessage, LogStream, reader};
use crate::error::Result;

const BASE: i64 = 1_796_040_000_000_000_000; // 2026-11-30T12:00:00Z

#[derive(Clone)]
enum Live {
    Line(LogMessage),
    /// The container stopped: streams end.
    End,
    /// The daemon went away (a dockerd restart under live-restore).
    Break,
}

/// Docker as the writer sees it: a log with timestamps, `since` in whole
/// seconds, following while "running".
struct FakeDocker {
    history: Mutex<Vec<LogMessage>>,
    live: broadcast::Sender<Live>,
    state: Mutex<RunState>,
    /// Containers whose state differs from `state`.
    others: Mutex<HashMap<String, RunState>>,
    sinces: Mutex<Vec<Option<i64>>>,
}

impl FakeDocker {
    fn new(state: RunState) -> Arc<Self> {
        Arc::new(FakeDocker {
            history: Mutex::new(Vec::new()),
            live: broadcast::channel(1024).0,
            state: Mutex::new(state),
            others: Mutex::new(HashMap::new()),
            sinces: Mutex::new(Vec::new()),
        })
    }

    fn print(&self, offset_nanos: i64, stream: LogStream, content: &str) {
        let nanos = BASE + offset_nanos;
        let msg = LogMessage {
            timestamp: Bytes::from(format!(
                "2026-11-30T12:00:{:02}.{:09}Z",
                offset_nanos / 1_000_000_000,
                offset_nanos % 1_000_000_000
            )),
            nanos,
            stream,
            content: Bytes::from(content.to_string()),
        };
        let mut history = self.history.lock().unwrap();
        history.push(msg.clone());
        let _ = self.live.send(Live::Line(msg));
    }

    fn state_of(&self, id: &str) -> RunState {
        let others = self.others.lock().unwrap();
        others
            .get(id)
            .copied()
            .unwrap_or(*self.state.lock().unwrap())
    }

    fn stop(&self) {
        *self.state.lock().unwrap() = RunState::Stopped;
        let _ = self.live.send(Live::End);
    }
}

impl LogSource for FakeDocker {
    fn logs(&self, id: &str, since: Option<i64>) -> LogBatches {
        self.sinces.lock().unwrap().push(since);
        let floor = since.map_or(0, |n| n - n.rem_euclid(1_000_000_000));
        let history = self.history.lock().unwrap();
        let past: Vec<_> = history
            .iter()
            .filter(|m| m.nanos >= floor)
            .cloned()
            .map(Ok)
            .collect();
        let past = stream::iter(past);
        if self.state_of(id) != RunState::Running {
            return reader(past);
        }
        let rx = self.live.subscribe();
        let live = stream::unfold(Some(rx), |rx| async move {
            let mut rx = rx?;
            match rx.recv().await {
                Ok(Live::Line(m)) => Some((Ok(m), Some(rx))),
                Ok(Live::Break) => Some((
                    Err(crate::Error::DockerUnavailable("connection reset".into())),
                    None,
                )),
                _ => None,
            }
        });
        reader(past.chain(live))
    }

    fn run_state<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<RunState>> {
        let state = self.state_of(id);
        Box::pin(async move { Ok(state) })
    }
}

fn manager(docker: &Arc<FakeDocker>, root: &Path) -> LogManager {
    LogManager::new(docker.clone(), root.join("state"), Default::default())
}

/// The file's lines without their timestamps; a long content as
/// `<first char>*<length>`.
fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let rest = l.split_once(' ').unwrap().1;
            match rest.len() > 64 {
                true => format!("{}<{}*{}>", &rest[..9], &rest[9..10], rest.len() - 9),
                false => rest.to_string(),
            }
        })
        .collect()
}

/// One of Docker's partial messages: a part of a longer line.
fn part(c: char) -> String {
    c.to_string()
        .repeat(crate::docker::logs::DOCKER_PARTIAL_SIZE)
}

async fn wait_lines(path: &Path, n: usize) {
    for _ in 0..200 {
        if std::fs::read_to_string(path).map_or(0, |t| t.lines().count()) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} never had {n} lines", path.display());
}

#[tokio::test]
async fn a_stopped_container_is_drained_and_its_writer_ends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c/0.log");
    let docker = FakeDocker::new(RunState::Stopped);
    docker.print(1, LogStream::Stdout, "out\n");
    docker.print(2, LogStream::Stderr, "err\n");
    docker.print(3, LogStream::Stdout, "no newline yet");
    docker.print(4, LogStream::Stdout, "last\n");
    let logs = manager(&docker, dir.path());
    logs.attach("c1", &path).await.unwrap();
    logs.wait_drained("c1", Duration::from_secs(5)).await;
    assert_eq!(
        lines(&path),
        [
            "stdout F out",
            "stderr F err",
            "stdout F no newline yet",
            "stdout F last"
        ]
    );
    assert_eq!(logs.writer_count(), 0);
    assert!(logs.state.load("c1").complete);
}

#[tokio::test]
async fn a_restart_resumes_after_same_timestamp_lines_and_a_torn_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c/0.log");
    let docker = FakeDocker::new(RunState::Running);
    // Three parts of one long line share a timestamp; a stderr line
    // stamped earlier lands between them.
    docker.print(1_000_000_000, LogStream::Stdout, "a\n");
    docker.print(1_500_000_000, LogStream::Stdout, &part('1'));
    docker.print(1_400_000_000, LogStream::Stderr, "between\n");
    docker.print(1_500_000_000, LogStream::Stdout, &part('2'));
    let first = manager(&docker, dir.path());
    first.attach("c1", &path).await.unwrap();
    wait_lines(&path, 4).await;
    drop(first); // a crash: the writer is gone mid-stream
    // ...with half a line on disk.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"2026-11-30T12:00:01.500000000Z stdout F lon")
        .unwrap();
    docker.print(1_500_000_000, LogStream::Stdout, "long-3\n");
    docker.print(1_200_000_000, LogStream::Stderr, "late stderr\n");
    docker.print(2_000_000_000, LogStream::Stdout, "b\n");

    let second = manager(&docker, dir.path());
    second.attach("c1", &path).await.unwrap();
    wait_lines(&path, 7).await;
    docker.stop();
    second.wait_drained("c1", Duration::from_secs(5)).await;
    assert_eq!(
        lines(&path),
        [
            "stdout F a",
            "stdout P <1*16384>",
            "stderr F between",
            "stdout P <2*16384>",
            "stdout F long-3",
            "stderr F late stderr",
            "stdout F b"
        ]
    );
    let sinces = docker.sinces.lock().unwrap().clone();
    assert_eq!(sinces[0], None);
    assert_eq!(sinces[1], Some(BASE + 1_500_000_000));
}

#[tokio::test]
async fn reopen_switches_files_and_a_restart_after_it_resumes_from_the_saved_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c/0.log");
    let rotated = dir.path().join("c/0.log.1");
    let docker = FakeDocker::new(RunState::Running);
    docker.print(1, LogStream::Stdout, "one\n");
    let logs = manager(&docker, dir.path());
    logs.attach("c1", &path).await.unwrap();
    wait_lines(&path, 1).await;
    std::fs::rename(&path, &rotated).unwrap();
    // Written after the rename, before the reopen: still the old file's.
    docker.print(2, LogStream::Stdout, "two\n");
    wait_lines(&rotated, 2).await;
    logs.reopen("c1", &path).await.unwrap();
    assert!(path.exists());
    docker.print(3, LogStream::Stdout, "three\n");
    wait_lines(&path, 1).await;
    assert_eq!(lines(&rotated), ["stdout F one", "stdout F two"]);
    assert_eq!(lines(&path), ["stdout F three"]);

    // Rotate again and crash before anything new: the empty new file says
    // nothing, the saved position does.
    std::fs::rename(&path, dir.path().join("c/0.log.2")).unwrap();
    logs.reopen("c1", &path).await.unwrap();
    drop(logs);
    docker.print(4, LogStream::Stdout, "four\n");
    docker.stop();
    let again = manager(&docker, dir.path());
    again.attach("c1", &path).await.unwrap();
    again.wait_drained("c1", Duration::from_secs(5)).await;
    assert_eq!(lines(&path), ["stdout F four"]);
}

#[tokio::test]
async fn a_broken_stream_of_a_running_container_is_resumed_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c/0.log");
    let docker = FakeDocker::new(RunState::Running);
    let logs = manager(&docker, dir.path());
    logs.attach("c1", &path).await.unwrap();
    docker.print(1, LogStream::Stdout, "one\n");
    docker.print(1, LogStream::Stdout, "one again\n");
    wait_lines(&path, 2).await;
    let _ = docker.live.send(Live::Break);
    docker.print(2, LogStream::Stderr, "while away\n");
    docker.print(3, LogStream::Stdout, "back\n");
    wait_lines(&path, 4).await;
    docker.stop();
    logs.wait_drained("c1", Duration::from_secs(5)).await;
    assert_eq!(
        lines(&path),
        [
            "stdout F one",
            "stdout F one again",
            "stderr F while away",
            "stdout F back"
        ]
    );
    let sinces = docker.sinces.lock().unwrap().clone();
    assert_eq!(sinces[1], Some(BASE + 1), "resumed from the file's tail");
}

#[tokio::test]
async fn forget_stops_the_writer_and_removes_file_and_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c/0.log");
    let docker = FakeDocker::new(RunState::Running);
    let logs = manager(&docker, dir.path());
    logs.attach("c1", &path).await.unwrap();
    std::fs::rename(&path, dir.path().join("c/old")).unwrap();
    logs.reopen("c1", &path).await.unwrap(); // leaves saved state
    assert_eq!(logs.writer_count(), 1);
    logs.forget("c1", Some(&path)).await.unwrap();
    assert_eq!(logs.writer_count(), 0);
    assert!(!path.exists());
    assert!(logs.state.ids().is_empty());
}

#[tokio::test]
async fn recover_attaches_running_and_unfinished_stopped_containers_only() {
    let dir = tempfile::tempdir().unwrap();
    let docker = FakeDocker::new(RunState::Running);
    let logs = manager(&docker, dir.path());
    let p = |n: &str| dir.path().join(n).join("0.log");
    for n in ["done", "unfinished"] {
        std::fs::create_dir_all(p(n).parent().unwrap()).unwrap();
        std::fs::write(p(n), b"").unwrap();
    }
    logs.state
        .save(
            "done",
            &files::Saved {
                position: None,
                complete: true,
            },
        )
        .unwrap();
    for id in ["orphan", "running", "unfinished", "created"] {
        logs.state.save(id, &files::Saved::default()).unwrap();
    }
    for id in ["done", "unfinished", "created"] {
        docker
            .others
            .lock()
            .unwrap()
            .insert(id.to_string(), RunState::Stopped);
    }
    let found = |id: &str, state, started| Found {
        id: id.into(),
        log_path: p(id),
        state,
        started,
    };
    logs.recover(vec![
        found("running", RunState::Running, true),
        found("done", RunState::Stopped, true),
        found("unfinished", RunState::Stopped, true),
        found("created", RunState::Stopped, false),
        // Another docker-cri's container on the same daemon.
        found("foreign", RunState::Running, true),
    ])
    .await;
    let attached: std::collections::BTreeSet<String> =
        lock(&logs.writers).keys().cloned().collect();
    assert!(attached.contains("running"));
    for id in ["done", "created", "foreign"] {
        assert!(!attached.contains(id), "{id}");
    }
    // "unfinished" got a writer, which drains and marks it complete.
    logs.wait_drained("unfinished", Duration::from_secs(5))
        .await;
    assert!(logs.state.load("unfinished").complete);
    assert!(!logs.state.ids().contains(&"orphan".to_string()));
}

use std::io::Write as _;
