//! ExecSync, Exec and Attach through the real binary and dockerd, with a
//! WebSocket client speaking Kubernetes' channel protocols (and the SPDY
//! client where a check covers both transports).

mod common;

use std::time::Duration;

use common::pod::{Pod, Runtime};
use common::stream::{WsClient, http_get, metric, websocket_headers};
use common::{Server, TestImage, force_remove, start_plain_container, unique};
use docker_cri::api;
use tonic::Code;

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
const LIMIT: Duration = Duration::from_secs(30);

/// A pod with one running container (`sleep`), ready for execs.
async fn running(server: &Server) -> (Pod, String) {
    let mut pod = Pod::new(server).await;
    let id = pod.create(&pod.ctr("box", "sleep 3600")).await.unwrap();
    pod.start(&id).await.unwrap();
    (pod, id)
}

async fn exec_sync(
    rt: &mut Runtime,
    id: &str,
    cmd: &[&str],
    timeout: i64,
) -> Result<api::ExecSyncResponse, tonic::Status> {
    rt.exec_sync(api::ExecSyncRequest {
        container_id: id.into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        timeout,
    })
    .await
    .map(|r| r.into_inner())
}

fn exec_request(id: &str, cmd: &[&str], tty: bool, stdin: bool) -> api::ExecRequest {
    api::ExecRequest {
        container_id: id.into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        tty,
        stdin,
        stdout: true,
        stderr: !tty,
    }
}

async fn exec_url(rt: &mut Runtime, request: api::ExecRequest) -> String {
    rt.exec(request).await.unwrap().into_inner().url
}

/// Processes in the container whose command line contains `marker`.
async fn processes_with(rt: &mut Runtime, id: &str, marker: &str) -> Vec<String> {
    let ps = exec_sync(rt, id, &["ps", "-o", "pid,args"], 10)
        .await
        .unwrap();
    String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|l| l.contains(marker) && !l.contains("ps -o"))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn exec_sync_keeps_stdout_and_stderr_apart_with_exit_codes() {
    let server = Server::start(&[]).await;
    let (mut pod, id) = running(&server).await;
    let out = exec_sync(
        &mut pod.rt,
        &id,
        &["sh", "-c", "echo out; echo err >&2; exit 7"],
        10,
    )
    .await
    .unwrap();
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
    assert_eq!(out.exit_code, 7);
    let ok = exec_sync(&mut pod.rt, &id, &["true"], 0).await.unwrap();
    assert_eq!((ok.exit_code, ok.stdout.len(), ok.stderr.len()), (0, 0, 0));
    let missing = exec_sync(&mut pod.rt, &id, &["/no/such/binary"], 10).await;
    // Docker refuses to start it, or it exits 126/127: either is not success.
    assert!(missing.map(|r| r.exit_code != 0).unwrap_or(true));
    let empty = exec_sync(&mut pod.rt, &id, &[], 10).await.unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn exec_sync_timeout_kills_the_process() {
    let server = Server::start(&[]).await;
    let (mut pod, id) = running(&server).await;
    // The request's own timeout.
    let err = exec_sync(&mut pod.rt, &id, &["sh", "-c", "sleep 4321; true"], 1)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    // The client's deadline, with no request timeout.
    let mut request = tonic::Request::new(api::ExecSyncRequest {
        container_id: id.clone(),
        cmd: vec!["sleep".into(), "4322".into()],
        timeout: 0,
    });
    request.set_timeout(Duration::from_secs(2));
    let err = pod.rt.exec_sync(request).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = processes_with(&mut pod.rt, &id, "sleep 432").await;
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed-out exec processes still run: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The container itself is untouched.
    let status = pod.status(&id).await.unwrap();
    assert_eq!(status.state, api::ContainerState::ContainerRunning as i32);
}

#[tokio::test]
async fn exec_refuses_foreign_and_stopped_containers() {
    let server = Server::start(&[]).await;
    let image = TestImage::busybox(None).await;
    let plain = start_plain_container(&image.id, &unique("plain")).await;
    let mut rt = server.runtime().await;
    let err = exec_sync(&mut rt, &plain, &["true"], 5).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let err = rt
        .exec(exec_request(&plain, &["true"], false, false))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = rt
        .attach(api::AttachRequest {
            container_id: plain.clone(),
            stdout: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let inspect = common::docker()
        .await
        .inspect_container(&plain, None)
        .await
        .unwrap();
    assert_eq!(inspect.state.unwrap().running, Some(true), "left untouched");
    force_remove(&plain).await;

    let mut pod = Pod::new(&server).await;
    let done = pod.create(&pod.ctr("done", "true")).await.unwrap();
    pod.start(&done).await.unwrap();
    pod.wait_exit(&done).await;
    let err = exec_sync(&mut pod.rt, &done, &["true"], 5)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let err = pod
        .rt
        .attach(api::AttachRequest {
            container_id: done.clone(),
            stdout: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
}

#[tokio::test]
async fn exec_requests_are_validated() {
    let server = Server::start(&[]).await;
    let (mut pod, id) = running(&server).await;
    let mut both = exec_request(&id, &["true"], true, false);
    both.stderr = true;
    let err = pod.rt.exec(both).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let mut none = exec_request(&id, &["true"], false, false);
    none.stdout = false;
    none.stderr = false;
    assert_eq!(
        pod.rt.exec(none).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    let url = exec_url(&mut pod.rt, exec_request(&id, &["true"], false, false)).await;
    assert!(
        url.starts_with("http://127.0.0.1:") && url.contains("/exec/"),
        "{url}"
    );
    assert!(!url.contains(":0/"), "the real port, not 0: {url}");
}

#[tokio::test]
async fn exec_over_websocket_v4_and_v5_with_exit_codes() {
    let server = Server::start(&[]).await;
    let (mut pod, id) = running(&server).await;
    let script = ["sh", "-c", "echo out; echo err >&2; exit 3"];
    for protocol in [
        "v4.channel.k8s.io",
        "v5.channel.k8s.io",
        "v4.base64.channel.k8s.io",
    ] {
        let url = exec_url(&mut pod.rt, exec_request(&id, &script, false, false)).await;
        let mut ws = WsClient::connect(&url, &[protocol]).await.unwrap();
        assert_eq!(ws.protocol, protocol);
        let got = ws.collect(LIMIT).await;
        assert_eq!(got.text(STDOUT), "out\n", "{protocol}");
        assert_eq!(got.text(STDERR), "err\n", "{protocol}");
        let status: serde_json::Value = serde_json::from_str(&got.text(ERROR)).unwrap();
        assert_eq!(status["status"], "Failure", "{protocol}");
        assert_eq!(status["reason"], "NonZeroExitCode");
        assert_eq!(status["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(status["details"]["causes"][0]["message"], "3");
        // The status comes after all output.
        assert_eq!(got.order.last(), Some(&ERROR));
    }
    for protocol in ["v4.channel.k8s.io", "v5.channel.k8s.io"] {
        let url = exec_url(
            &mut pod.rt,
            exec_request(&id, &["echo", "fine"], false, false),
        )
        .await;
        let mut ws = WsClient::connect(&url, &[protocol]).await.unwrap();
        let got = ws.collect(LIMIT).await;
        assert_eq!(got.text(STDOUT), "fine\n");
        assert_eq!(got.text(ERROR), r#"{"metadata":{},"status":"Success"}"#);
    }
    // Before v4 the error channel carries text, and nothing on success.
    let url = exec_url(&mut pod.rt, exec_request(&id, &script, false, false)).await;
    let mut ws = WsClient::connect(&url, &["channel.k8s.io"]).await.unwrap();
    let got = ws.collect(LIMIT).await;
    assert_eq!(got.text(STDOUT), "out\n");
    assert!(
        got.text(ERROR).contains("exit status 3"),
        "{}",
        got.text(ERROR)
    );
    let url = exec_url(&mut pod.rt, exec_request(&id, &["true"], false, false)).await;
    let mut ws = WsClient::connect(&url, &["base64.channel.k8s.io"])
        .await
        .unwrap();
    assert_eq!(ws.collect(LIMIT).await.text(ERROR), "");
}

#[tokio::test]
async fn exec_with_stdin_v5_close_and_v4() {
    let server = Server::start(&[]).await;
    let (mut pod, id) = running(&server).await;
    // v5: the close signal is the process's EOF.
    let url = exec_url(&mut pod.rt, exec_request(&id, &["cat"], false, true)).await;
    let mut ws = WsClient::connect(&url, &["v5.channel.k8s.io"])
        .await
        .unwrap();
    ws.send(STDIN, b"hello ").await;
    ws.send(STDIN, b"stdin").await;
    ws.close_stream(STDIN).await;
    let got = ws.collect(LIMIT).await;
    assert_eq!(got.text(STDOUT), "hello stdin");
    assert_eq!(got.text(ERROR), r#"{"metadata":{},"status":"Success"}"#);
    // v4 has no half-close: a command that stops reading by itself.
    let url = exec_url(
        &mut pod.rt,
        exec_request(&id, &["head", "-c", "4"], false, true),
    )
    .await;
    let mut ws = WsClient::connect(&url, &["v4.base64.channel.k8s.io"])
        .await
        .unwrap();
    ws.send(STDIN, b"abcdefgh").await;
    assert_eq!(ws.collect(LIMIT).await.text(STDOUT), "abcd");
}

#[tokio::test]
async fn exec_with_tty_sees_the_resize() {
    let server = Server::start(&[]).await;
    let (mut pod, id) = running(&server).await;
    let url = exec_url(
        &mut pod.rt,
        exec_request(&id, &["sh", "-c", "read go; stty size"], true, true),
    )
    .await;
    let mut ws = WsClient::connect(&url, &["v5.channel.k8s.io"])
        .await
        .unwrap();
    ws.send(RESIZE, br#"{"Width":123,"Height":45}"#).await;
    // The resize is applied before the shell is told to go on.
    tokio::time::sleep(Duration::from_millis(500)).await;
    ws.send(STDIN, b"go\r").await;
    let got = ws.collect(LIMIT).await;
    assert!(
        got.text(STDOUT).contains("45 123"),
        "{:?}",
        got.text(STDOUT)
    );
    assert!(!got.channels.contains_key(&STDERR), "a TTY has no stderr");
    assert_eq!(got.text(ERROR), r#"{"metadata":{},"status":"Success"}"#);
}

#[tokio::test]
async fn attach_with_stdin_once() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let mut config = pod.ctr("reader", "cat; echo bye");
    config.stdin = true;
    config.stdin_once = true;
    let id = pod.create(&config).await.unwrap();
    pod.start(&id).await.unwrap();
    let url = pod
        .rt
        .attach(api::AttachRequest {
            container_id: id.clone(),
            stdin: true,
            stdout: true,
            stderr: true,
            tty: false,
        })
        .await
        .unwrap()
        .into_inner()
        .url;
    assert!(url.contains("/attach/"), "{url}");
    let mut ws = WsClient::connect(&url, &["v5.channel.k8s.io"])
        .await
        .unwrap();
    ws.send(STDIN, b"through attach\n").await;
    ws.close_stream(STDIN).await;
    let got = ws.collect(LIMIT).await;
    assert_eq!(got.text(STDOUT), "through attach\nbye\n");
    // stdin_once: the EOF ended the container's input for good; it exited.
    let status = pod.wait_exit(&id).await;
    assert_eq!(status.exit_code, 0);
}

#[tokio::test]
async fn tokens_are_single_use_and_unknown_ones_refused() {
    let server = Server::start(&[]).await;
    let (mut pod, id) = running(&server).await;
    let url = exec_url(&mut pod.rt, exec_request(&id, &["true"], false, false)).await;
    let mut ws = WsClient::connect(&url, &["v4.channel.k8s.io"])
        .await
        .unwrap();
    ws.collect(LIMIT).await;
    let (status, _) = http_get(&url, &websocket_headers("v4.channel.k8s.io")).await;
    assert_eq!(status, 404, "a used token");
    assert!(
        WsClient::connect(&url, &["v4.channel.k8s.io"])
            .await
            .is_err()
    );
    let base = url.rsplit_once('/').unwrap().0;
    let (status, _) = http_get(
        &format!("{base}/AAAAAAAAAAAAAAAAAAAAAA"),
        &websocket_headers("v4.channel.k8s.io"),
    )
    .await;
    assert_eq!(status, 404, "a made-up token");
    // A token for exec does not open an attach.
    let url = exec_url(&mut pod.rt, exec_request(&id, &["true"], false, false)).await;
    let (status, _) = http_get(
        &url.replace("/exec/", "/attach/"),
        &websocket_headers("v4.channel.k8s.io"),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn unknown_websocket_subprotocols_get_403_naming_the_accepted_ones() {
    let server = Server::start(&[]).await;
    let (mut pod, id) = running(&server).await;
    let url = exec_url(&mut pod.rt, exec_request(&id, &["true"], false, false)).await;
    let (status, response) = http_get(&url, &websocket_headers("v9.channel.k8s.io")).await;
    assert_eq!(status, 403, "{response}");
    let lower = response.to_ascii_lowercase();
    for accepted in [
        "v5.channel.k8s.io",
        "v4.channel.k8s.io",
        "base64.channel.k8s.io",
    ] {
        assert!(
            lower.contains(&format!("x-accepted-stream-protocol-versions: {accepted}")),
            "{response}"
        );
    }
    assert!(response.contains("v9.channel.k8s.io"), "{response}");

    let url = pod
        .rt
        .port_forward(api::PortForwardRequest {
            pod_sandbox_id: pod.id.clone(),
            port: vec![80],
        })
        .await
        .unwrap()
        .into_inner()
        .url;
    let (status, response) = http_get(&url, &websocket_headers("v9.channel.k8s.io")).await;
    assert_eq!(status, 403, "{response}");
    assert!(
        response.contains("portforward.k8s.io") && response.contains("SPDY/3.1+portforward.k8s.io"),
        "{response}"
    );
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let server = Server::start(&[]).await;
    let (mut pod, id) = running(&server).await;
    let url = exec_url(&mut pod.rt, exec_request(&id, &["true"], false, false)).await;
    tokio::time::sleep(Duration::from_secs(61)).await;
    let (status, _) = http_get(&url, &websocket_headers("v4.channel.k8s.io")).await;
    assert_eq!(status, 404);
}

fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

fn threads(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count()
}

/// What a docker-cri process holds: (fds, OS threads, tokio tasks).
async fn holdings(server: &Server, metrics: u16) -> (usize, usize, i64) {
    let pid = server.pid();
    let tasks = metric(metrics, "docker_cri_runtime_tasks").await;
    (open_fds(pid), threads(pid), tasks)
}

/// Opens a `cat` exec over SPDY and makes sure it runs (a byte came back).
async fn spdy_cat(rt: &mut Runtime, id: &str) -> common::spdy::SpdyClient {
    let url = exec_url(rt, exec_request(id, &["cat"], false, true)).await;
    let client = common::spdy::connect(&url, &["v4.channel.k8s.io"])
        .await
        .unwrap();
    client.open(&[("streamtype", "error")], false).await;
    let stdin = client.open(&[("streamtype", "stdin")], false).await;
    let stdout = client.open(&[("streamtype", "stdout")], false).await;
    client.open(&[("streamtype", "stderr")], false).await;
    client.data(stdin, b"x", false).await;
    client.read_at_least(stdout, 1, LIMIT).await;
    client
}

#[tokio::test]
async fn abandoned_sessions_free_their_resources() {
    let metrics = common::free_port();
    let server = Server::start(&["--metrics-bind-addr", &metrics.to_string()]).await;
    let (mut pod, id) = running(&server).await;
    // Warm up: one full session per transport, so that lazily opened fds
    // and pooled threads exist before counting.
    let url = exec_url(&mut pod.rt, exec_request(&id, &["true"], false, false)).await;
    WsClient::connect(&url, &["v4.channel.k8s.io"])
        .await
        .unwrap()
        .collect(LIMIT)
        .await;
    let client = spdy_cat(&mut pod.rt, &id).await;
    client.hang_up().await;
    client.closed(LIMIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = holdings(&server, metrics).await;

    // 100 sessions, half over each transport, each with its exec running.
    let mut websockets = Vec::new();
    let mut spdys = Vec::new();
    for _ in 0..50 {
        let url = exec_url(&mut pod.rt, exec_request(&id, &["cat"], false, true)).await;
        let mut ws = WsClient::connect(&url, &["v4.channel.k8s.io"])
            .await
            .unwrap();
        ws.send(STDIN, b"x").await;
        let mut got = Default::default();
        ws.read_until(&mut got, STDOUT, 1, LIMIT).await;
        websockets.push(ws);
        spdys.push(spdy_cat(&mut pod.rt, &id).await);
    }
    let during = holdings(&server, metrics).await;
    assert!(
        during.0 >= before.0 + 100 && during.2 >= before.2 + 100,
        "sessions hold fds and tasks: {before:?} -> {during:?}"
    );
    assert_eq!(metric(metrics, "docker_cri_streaming_sessions").await, 100);

    // Vanish: WebSocket clients without a close frame, SPDY clients
    // without GOAWAY, streams left open.
    drop(websockets);
    for client in &spdys {
        client.hang_up().await;
    }
    drop(spdys);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let after = holdings(&server, metrics).await;
        let sessions = metric(metrics, "docker_cri_streaming_sessions").await;
        // Slack for what the runtime keeps on its own: an idle blocking
        // thread, a pooled Docker connection.
        if sessions == 0
            && after.0 <= before.0 + 2
            && after.1 <= before.1 + 2
            && after.2 <= before.2 + 2
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not freed (fds, threads, tasks): {before:?} before, {during:?} during, \
             {after:?} after, {sessions} sessions"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Docker's side ended too: the cats saw their stdin close.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !processes_with(&mut pod.rt, &id, "cat").await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "abandoned execs linger"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn idle_sessions_time_out() {
    let server = Server::start(&["--streaming-connection-idle-timeout", "2s"]).await;
    let (mut pod, id) = running(&server).await;
    let url = exec_url(
        &mut pod.rt,
        exec_request(&id, &["sleep", "60"], false, true),
    )
    .await;
    let mut ws = WsClient::connect(&url, &["v4.channel.k8s.io"])
        .await
        .unwrap();
    let started = std::time::Instant::now();
    ws.collect(LIMIT).await;
    let took = started.elapsed();
    // The server's idle clock starts at the upgrade, a moment before ours;
    // the command itself would run 60 s.
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(20),
        "{took:?}"
    );
}
