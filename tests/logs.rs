//! CRI log files written by the real binary from the real dockerd's log:
//! the format kubelet parses, and nothing lost or doubled across
//! restarts, crashes and rotation.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::Server;
use common::pod::Pod;
use docker_cri::api;
use tonic::Code;

/// One parsed CRI log line.
#[derive(Debug, Clone, PartialEq)]
struct Line {
    nanos: i64,
    stream: String,
    tag: String,
    content: Vec<u8>,
}

fn parse(bytes: &[u8]) -> Vec<Line> {
    assert!(
        bytes.is_empty() || bytes.ends_with(b"\n"),
        "the file ends in a whole line"
    );
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut parts = l.splitn(4, |b| *b == b' ');
            let ts = std::str::from_utf8(parts.next().unwrap()).unwrap();
            let nanos = docker_cri::mapping::time::rfc3339_nanos(ts)
                .unwrap_or_else(|| panic!("bad timestamp {ts:?}"));
            let stream = String::from_utf8(parts.next().unwrap().to_vec()).unwrap();
            let tag = String::from_utf8(parts.next().unwrap().to_vec()).unwrap();
            assert!(
                ["stdout", "stderr"].contains(&stream.as_str()),
                "stream {stream}"
            );
            assert!(["P", "F"].contains(&tag.as_str()), "tag {tag}");
            Line {
                nanos,
                stream,
                tag,
                content: parts.next().unwrap_or_default().to_vec(),
            }
        })
        .collect()
}

fn read(path: &Path) -> Vec<Line> {
    parse(&std::fs::read(path).unwrap_or_default())
}

/// Whole lines as kubelet rebuilds them: P parts joined up to their F.
fn joined(lines: &[Line]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pending: HashMap<String, Vec<u8>> = HashMap::new();
    for l in lines {
        let buf = pending.entry(l.stream.clone()).or_default();
        buf.extend_from_slice(&l.content);
        if l.tag == "F" {
            out.push((
                l.stream.clone(),
                String::from_utf8(std::mem::take(buf)).unwrap(),
            ));
        }
    }
    out
}

fn log_file(pod: &Pod, name: &str) -> PathBuf {
    pod.logs.path().join(name).join("0.log")
}

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Prints `out <n>` every 10 ms, and `err <n>` to stderr every third.
const SEQ: &str = "i=0; while true; do i=$((i+1)); echo \"out $i\"; \
                   if [ $((i % 3)) = 0 ]; then echo \"err $i\" >&2; fi; sleep 0.01; done";

/// Highest `out <n>` among lines.
fn last_seq(lines: &[Line]) -> u64 {
    joined(lines)
        .iter()
        .filter_map(|(_, t)| t.strip_prefix("out ")?.parse().ok())
        .max()
        .unwrap_or(0)
}

/// Every `out n` from 1 to the last exactly once, every `err n` (n % 3 == 0)
/// exactly once, each on its own stream.
fn assert_sequence_complete(lines: &[Line]) -> u64 {
    let whole = joined(lines);
    let mut outs = Vec::new();
    let mut errs = Vec::new();
    for (stream, text) in &whole {
        let (kind, n) = text.split_once(' ').expect("a sequence line");
        let n: u64 = n.parse().unwrap();
        match (stream.as_str(), kind) {
            ("stdout", "out") => outs.push(n),
            ("stderr", "err") => errs.push(n),
            other => panic!("{other:?} {text}"),
        }
    }
    let last = *outs.last().expect("some output");
    assert_eq!(
        outs,
        (1..=last).collect::<Vec<_>>(),
        "stdout: none lost, none doubled"
    );
    let last_err = *errs.last().unwrap_or(&0);
    assert_eq!(
        errs,
        (1..=last_err / 3).map(|k| k * 3).collect::<Vec<_>>(),
        "stderr: none lost, none doubled"
    );
    assert!(last_err + 3 > last, "stderr kept up: {last_err} vs {last}");
    last
}

async fn reopen(pod: &mut Pod, id: &str) -> Result<(), tonic::Status> {
    pod.rt
        .reopen_container_log(api::ReopenContainerLogRequest {
            container_id: id.into(),
        })
        .await
        .map(|_| ())
}

#[tokio::test]
async fn stdout_and_stderr_lines_in_order_with_their_tags() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let script = "sleep 0.3; echo out-1; sleep 0.05; echo err-1 >&2; sleep 0.05; \
                  echo; sleep 0.05; printf 'tab\\there \\303\\251\\n'; sleep 0.05; \
                  printf 'no newline'";
    let id = pod.create(&pod.ctr("order", script)).await.unwrap();
    pod.start(&id).await.unwrap();
    let path = log_file(&pod, "order");
    assert!(path.exists(), "the file exists once StartContainer returns");
    pod.wait_exit(&id).await;
    let lines = read(&path);
    let got: Vec<(&str, &str, &[u8])> = lines
        .iter()
        .map(|l| (l.stream.as_str(), l.tag.as_str(), l.content.as_slice()))
        .collect();
    assert_eq!(
        got,
        [
            ("stdout", "F", b"out-1".as_slice()),
            ("stderr", "F", b"err-1"),
            ("stdout", "F", b""),
            ("stdout", "F", "tab\there é".as_bytes()),
            ("stdout", "F", b"no newline"),
        ]
    );
    assert!(lines.windows(2).all(|w| w[0].nanos <= w[1].nanos));
    let status = pod.status(&id).await.unwrap();
    assert_eq!(status.log_path, path.display().to_string());
}

#[tokio::test]
async fn a_line_longer_than_the_split_size_is_partial_lines_then_a_full_one() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let script = "head -c 40000 /dev/zero | tr '\\0' a; echo; echo short";
    let id = pod.create(&pod.ctr("long", script)).await.unwrap();
    pod.start(&id).await.unwrap();
    pod.wait_exit(&id).await;
    let lines = read(&log_file(&pod, "long"));
    let shape: Vec<(&str, usize)> = lines
        .iter()
        .map(|l| (l.tag.as_str(), l.content.len()))
        .collect();
    assert_eq!(
        shape,
        [
            ("P", 16384),
            ("P", 16384),
            ("F", 40000 - 2 * 16384),
            ("F", 5)
        ]
    );
    assert_eq!(
        joined(&lines),
        [
            ("stdout".to_string(), "a".repeat(40000)),
            ("stdout".to_string(), "short".to_string())
        ]
    );
}

#[tokio::test]
async fn a_tty_container_logs_everything_as_stdout() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let mut config = pod.ctr("tty", "echo tty-out; sleep 0.05; echo tty-err >&2");
    config.tty = true;
    let id = pod.create(&config).await.unwrap();
    pod.start(&id).await.unwrap();
    pod.wait_exit(&id).await;
    assert_eq!(
        joined(&read(&log_file(&pod, "tty"))),
        [
            ("stdout".to_string(), "tty-out".to_string()),
            ("stdout".to_string(), "tty-err".to_string())
        ],
        "no \\r from the terminal's line endings"
    );
}

/// Lines printed while docker-cri is down are in the file after it comes
/// back, once each.
async fn survives_downtime(crash: bool) {
    let root = tempfile::tempdir().unwrap();
    let mut server = Server::start_with_root(root.path(), &[]).await;
    let mut pod = Pod::new(&server).await;
    let id = pod.create(&pod.ctr("seq", SEQ)).await.unwrap();
    pod.start(&id).await.unwrap();
    let path = log_file(&pod, "seq");
    wait_for("output before the stop", || last_seq(&read(&path)) >= 30).await;
    if crash {
        server.kill();
    } else {
        assert!(server.terminate().success());
    }
    let at_stop = last_seq(&read(&path));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        last_seq(&read(&path)),
        at_stop,
        "nobody writes while docker-cri is down"
    );

    let server = Server::start_with_root(root.path(), &[]).await;
    pod.rt = server.runtime().await;
    wait_for("output printed while down", || {
        last_seq(&read(&path)) >= at_stop + 150
    })
    .await;
    pod.stop(&id, 0).await.unwrap();
    pod.wait_exit(&id).await;
    let last = assert_sequence_complete(&read(&path));
    assert!(last >= at_stop + 150);
}

#[tokio::test]
async fn lines_printed_while_docker_cri_was_stopped_are_resumed_exactly() {
    survives_downtime(false).await;
}

#[tokio::test]
async fn lines_printed_while_docker_cri_was_killed_are_resumed_exactly() {
    survives_downtime(true).await;
}

#[tokio::test]
async fn rotation_by_rename_and_reopen_loses_nothing() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let id = pod.create(&pod.ctr("rot", SEQ)).await.unwrap();
    pod.start(&id).await.unwrap();
    let path = log_file(&pod, "rot");
    let mut files = Vec::new();
    for round in 1..=3 {
        wait_for("output in the current file", || {
            last_seq(&read(&path)) >= 20
        })
        .await;
        // As kubelet rotates: rename, then ask for a new file.
        let rotated = path.with_extension(format!("log.{round}"));
        std::fs::rename(&path, &rotated).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        reopen(&mut pod, &id).await.unwrap();
        assert!(path.exists(), "a new file at the path");
        files.push(rotated);
    }
    wait_for("output after the last reopen", || {
        last_seq(&read(&path)) >= 20
    })
    .await;
    pod.stop(&id, 0).await.unwrap();
    pod.wait_exit(&id).await;
    files.push(path);
    let mut all = Vec::new();
    for f in &files {
        let lines = read(f);
        assert!(!lines.is_empty(), "{} has lines", f.display());
        all.extend(lines);
    }
    assert_sequence_complete(&all);
}

#[tokio::test]
async fn the_last_line_is_in_the_file_when_status_says_exited() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    for attempt in 0..3 {
        let name = format!("term{attempt}");
        let script = "i=0; while [ $i -lt 500 ]; do i=$((i+1)); echo \"line $i\"; done; \
                      echo 'fatal: the last words' >&2; exit 3";
        let id = pod.create(&pod.ctr(&name, script)).await.unwrap();
        pod.start(&id).await.unwrap();
        // Read the file the moment EXITED is reported, as kubelet does for
        // FallbackToLogsOnError.
        let status = pod.wait_exit(&id).await;
        let lines = read(&log_file(&pod, &name));
        assert_eq!(status.exit_code, 3);
        // Docker copies the two streams apart, so the stderr line need not
        // come last in the file; it, and every stdout line, must be there.
        let stderr: Vec<&[u8]> = lines
            .iter()
            .filter(|l| l.stream == "stderr")
            .map(|l| l.content.as_slice())
            .collect();
        assert_eq!(stderr, [b"fatal: the last words".as_slice()]);
        assert_eq!(lines.len(), 501);
        assert_eq!(
            lines
                .iter()
                .rfind(|l| l.stream == "stdout")
                .unwrap()
                .content,
            b"line 500"
        );
    }
}

#[tokio::test]
async fn remove_container_removes_the_log_file_and_its_state() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let id = pod.create(&pod.ctr("gone", SEQ)).await.unwrap();
    pod.start(&id).await.unwrap();
    let path = log_file(&pod, "gone");
    wait_for("some output", || last_seq(&read(&path)) >= 5).await;
    // A reopen leaves saved state behind, which must go too.
    std::fs::rename(&path, path.with_extension("old")).unwrap();
    reopen(&mut pod, &id).await.unwrap();
    let state = server
        .dir
        .path()
        .join("root/logs")
        .join(format!("{id}.json"));
    assert!(state.exists(), "saved position at {}", state.display());
    pod.remove(&id).await.unwrap();
    assert!(!path.exists());
    assert!(!state.exists());
}

#[tokio::test]
async fn reopen_needs_a_running_container() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let id = pod.create(&pod.ctr("done", "echo bye")).await.unwrap();
    let created = reopen(&mut pod, &id).await.unwrap_err();
    assert_eq!(created.code(), Code::FailedPrecondition, "{created:?}");
    pod.start(&id).await.unwrap();
    pod.wait_exit(&id).await;
    let exited = reopen(&mut pod, &id).await.unwrap_err();
    assert_eq!(exited.code(), Code::FailedPrecondition, "{exited:?}");
    assert!(exited.message().contains("not running"), "{exited:?}");
    let missing = reopen(&mut pod, &"0".repeat(64)).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[tokio::test]
async fn short_lived_containers_leave_no_fd_or_writer_behind() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    // Warm up: connections and the blocking pool's threads.
    let warm = pod.create(&pod.ctr("warm", "echo warm")).await.unwrap();
    pod.start(&warm).await.unwrap();
    pod.wait_exit(&warm).await;
    let before = open_fds(server.pid());
    let mut ids = Vec::new();
    for batch in 0..10 {
        let mut started = Vec::new();
        for k in 0..5 {
            let name = format!("short{batch}x{k}");
            let id = pod
                .create(&pod.ctr(&name, "echo one; echo two >&2"))
                .await
                .unwrap();
            pod.start(&id).await.unwrap();
            started.push((name, id));
        }
        for (name, id) in started {
            pod.wait_exit(&id).await;
            assert_eq!(read(&log_file(&pod, &name)).len(), 2, "{name}");
            ids.push(id);
        }
    }
    assert_eq!(ids.len(), 50);
    let mut after = open_fds(server.pid());
    // Docker connections close a moment after their stream ends.
    for _ in 0..40 {
        if after <= before + 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = open_fds(server.pid());
    }
    assert!(
        after <= before + 2,
        "fds before {before}, after 50 exited containers {after}"
    );
}

#[tokio::test]
async fn containers_get_json_file_logs_with_the_configured_buffer() {
    let server =
        Server::start(&["--docker-log-max-size", "3m", "--docker-log-max-file", "2"]).await;
    let mut pod = Pod::new(&server).await;
    let id = pod.create(&pod.ctr("drv", "echo hi")).await.unwrap();
    let log_config = common::docker()
        .await
        .inspect_container(&id, None)
        .await
        .unwrap()
        .host_config
        .unwrap()
        .log_config
        .unwrap();
    assert_eq!(log_config.typ.as_deref(), Some("json-file"));
    let options = log_config.config.unwrap();
    assert_eq!(options.get("max-size").map(String::as_str), Some("3m"));
    assert_eq!(options.get("max-file").map(String::as_str), Some("2"));
}

#[tokio::test]
async fn remove_pod_sandbox_drops_the_state_of_its_containers() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let id = pod.create(&pod.ctr("inpod", SEQ)).await.unwrap();
    pod.start(&id).await.unwrap();
    let state = server
        .dir
        .path()
        .join("root/logs")
        .join(format!("{id}.json"));
    assert!(state.exists(), "started containers are marked as ours");
    pod.rt
        .remove_pod_sandbox(api::RemovePodSandboxRequest {
            pod_sandbox_id: pod.id.clone(),
        })
        .await
        .unwrap();
    assert!(!state.exists());
}

/// Prints `out 1` … `out 20000` (and `err n` for every third) in paced
/// bursts: Docker rotates its json file every ~150 ms meanwhile.
const BURSTS: &str = "awk 'BEGIN { for (i = 1; i <= 20000; i++) { print \"out \" i; \
                      if (i % 3 == 0) print \"err \" i > \"/dev/stderr\"; \
                      if (i % 500 == 0) { fflush(); system(\"sleep 0.05\") } } }'";

#[tokio::test]
async fn docker_rotating_its_json_file_while_copying_loses_nothing() {
    let server = Server::start(&[
        "--docker-log-max-size",
        "100k",
        "--docker-log-max-file",
        "3",
    ])
    .await;
    let mut pod = Pod::new(&server).await;
    let id = pod.create(&pod.ctr("burst", BURSTS)).await.unwrap();
    pod.start(&id).await.unwrap();
    pod.wait_exit(&id).await;
    let json = common::docker()
        .await
        .inspect_container(&id, None)
        .await
        .unwrap()
        .log_path
        .unwrap();
    assert!(
        Path::new(&format!("{json}.2")).exists(),
        "Docker rotated its file at least twice"
    );
    let last = assert_sequence_complete(&read(&log_file(&pod, "burst")));
    assert_eq!(last, 20000);
}

/// Fallback: a running container with a driver docker-cri does not read
/// itself (as cri-dockerd may have created it) is copied through Docker's
/// logs API once ReopenContainerLog gives it a writer.
#[tokio::test]
async fn a_container_with_another_log_driver_is_copied_through_the_api() {
    use bollard::query_parameters::{RemoveContainerOptionsBuilder, StopContainerOptionsBuilder};
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let docker = common::docker().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("foreign/0.log");
    let labels = HashMap::from([
        (
            "io.kubernetes.docker.type".to_string(),
            "container".to_string(),
        ),
        (
            "io.kubernetes.container.logpath".to_string(),
            path.display().to_string(),
        ),
    ]);
    let body = bollard::models::ContainerCreateBody {
        image: Some(pod.image.name.clone()),
        cmd: Some(vec!["sh".into(), "-c".into(), SEQ.into()]),
        labels: Some(labels),
        host_config: Some(bollard::models::HostConfig {
            log_config: Some(bollard::models::HostConfigLogConfig {
                typ: Some("local".into()),
                config: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let id = common::create_and_start(&docker, &common::unique("foreign-log"), body).await;
    // In a task: a failed assertion still lets the container be removed.
    let (task_docker, task_id) = (docker.clone(), id.clone());
    let result = tokio::spawn(async move {
        let (docker, id) = (task_docker, task_id);
        reopen(&mut pod, &id).await.unwrap();
        wait_for("output through the API", || last_seq(&read(&path)) >= 30).await;
        let stop = StopContainerOptionsBuilder::new().t(0).build();
        docker.stop_container(&id, Some(stop)).await.unwrap();
        let printed = common::docker_logs(&id).await;
        let docker_last = printed
            .lines()
            .filter_map(|l| l.strip_prefix("out ")?.parse::<u64>().ok())
            .max()
            .unwrap();
        wait_for("the last line", || last_seq(&read(&path)) == docker_last).await;
        assert_sequence_complete(&read(&path))
    })
    .await;
    let remove = RemoveContainerOptionsBuilder::new().force(true).build();
    docker.remove_container(&id, Some(remove)).await.unwrap();
    assert!(result.expect("the copy through the API") >= 30);
}
