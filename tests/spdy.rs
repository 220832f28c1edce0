//! Exec and port-forward over SPDY/3.1 through the real binary and dockerd,
//! with a small SPDY client standing in for client-go (and crictl).

mod common;

use std::time::Duration;

use common::Server;
use common::pod::{Pod, Runtime};
use common::spdy::{SpdyClient, connect};
use docker_cri::api;

const LIMIT: Duration = Duration::from_secs(30);
const V4: &str = "v4.channel.k8s.io";

/// A pod with one running container (`sleep`), ready for execs.
async fn running(server: &Server) -> (Pod, String) {
    let mut pod = Pod::new(server).await;
    let id = pod.create(&pod.ctr("box", "sleep 3600")).await.unwrap();
    pod.start(&id).await.unwrap();
    (pod, id)
}

async fn exec_url(rt: &mut Runtime, id: &str, cmd: &[&str], stdin: bool) -> String {
    rt.exec(api::ExecRequest {
        container_id: id.into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        tty: false,
        stdin,
        stdout: true,
        stderr: true,
    })
    .await
    .unwrap()
    .into_inner()
    .url
}

/// Opens the streams client-go opens for a non-TTY exec: (error, stdin,
/// stdout, stderr); stdin is 0 when not asked for.
async fn exec_streams(client: &SpdyClient, stdin: bool) -> (u32, u32, u32, u32) {
    let error = client.open(&[("streamtype", "error")], false).await;
    let stdin = if stdin {
        client.open(&[("streamtype", "stdin")], false).await
    } else {
        0
    };
    let stdout = client.open(&[("streamtype", "stdout")], false).await;
    let stderr = client.open(&[("streamtype", "stderr")], false).await;
    (error, stdin, stdout, stderr)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn exec_keeps_stdout_and_stderr_apart_with_v4_and_v5_status() {
    let server = Server::start(&[]).await;
    let (mut pod, id) = running(&server).await;
    // client-go offers every version it knows, newest first; v5 over SPDY
    // is v4 (its close signal is WebSocket's).
    let v5 = "v5.channel.k8s.io";
    let cases = [
        (
            "echo out; echo err >&2",
            [V4, "v3.channel.k8s.io", "v2.channel.k8s.io"],
        ),
        (
            "echo out; echo err >&2; exit 3",
            [V4, "v3.channel.k8s.io", "v2.channel.k8s.io"],
        ),
        ("echo out; echo err >&2", [v5, V4, "v3.channel.k8s.io"]),
        (
            "echo out; echo err >&2; exit 3",
            [v5, V4, "v3.channel.k8s.io"],
        ),
    ];
    for (script, offered) in cases {
        let url = exec_url(&mut pod.rt, &id, &["sh", "-c", script], false).await;
        let client = connect(&url, &offered).await.unwrap();
        assert_eq!(client.protocol, offered[0]);
        let (error, _, stdout, stderr) = exec_streams(&client, false).await;
        let error = client.read_to_end(error, LIMIT).await;
        assert!(error.replied);
        assert_eq!(text(&client.read_to_end(stdout, LIMIT).await.data), "out\n");
        assert_eq!(text(&client.read_to_end(stderr, LIMIT).await.data), "err\n");
        let status = text(&error.data);
        if script.contains("exit 3") {
            let v: serde_json::Value = serde_json::from_str(&status).unwrap();
            assert_eq!(v["details"]["causes"][0]["reason"], "ExitCode");
            assert_eq!(v["details"]["causes"][0]["message"], "3");
        } else {
            assert_eq!(status, r#"{"metadata":{},"status":"Success"}"#);
        }
        // Everything delivered, the server ends the session.
        client.closed(LIMIT).await;
    }
}

#[tokio::test]
async fn exec_with_stdin_over_v3_and_text_status_over_v2_and_v1() {
    let server = Server::start(&[]).await;
    let (mut pod, id) = running(&server).await;

    let url = exec_url(&mut pod.rt, &id, &["cat"], true).await;
    let client = connect(&url, &["v3.channel.k8s.io"]).await.unwrap();
    assert_eq!(client.protocol, "v3.channel.k8s.io");
    let (error, stdin, stdout, stderr) = exec_streams(&client, true).await;
    let big: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    client.data(stdin, &big, false).await;
    client.data(stdin, b"\nbye\n", true).await;
    let out = client.read_to_end(stdout, LIMIT).await;
    assert_eq!(out.data.len(), big.len() + 5);
    assert!(out.data.ends_with(b"\nbye\n"));
    assert!(client.read_to_end(stderr, LIMIT).await.data.is_empty());
    // Before v4 success says nothing.
    assert!(client.read_to_end(error, LIMIT).await.data.is_empty());

    // v2 and the unversioned channel.k8s.io: the exit code as text.
    for version in ["v2.channel.k8s.io", "channel.k8s.io"] {
        let url = exec_url(&mut pod.rt, &id, &["sh", "-c", "echo out; exit 5"], false).await;
        let client = connect(&url, &[version]).await.unwrap();
        assert_eq!(client.protocol, version);
        let (error, _, stdout, _) = exec_streams(&client, false).await;
        assert_eq!(text(&client.read_to_end(stdout, LIMIT).await.data), "out\n");
        let status = text(&client.read_to_end(error, LIMIT).await.data);
        assert!(
            status.contains("non-zero exit code: exit status 5"),
            "{version}: {status}"
        );
    }
}

#[tokio::test]
async fn refusals_unknown_or_used_tokens_and_unknown_versions() {
    let server = Server::start(&[]).await;
    let (mut pod, id) = running(&server).await;
    let url = exec_url(&mut pod.rt, &id, &["true"], false).await;

    // A version nobody serves: 403 naming what is accepted.
    let refused = connect(&url, &["v9.channel.k8s.io"]).await.err().unwrap();
    assert_eq!(refused.status, 403, "{}", refused.response);
    assert!(
        refused.response.contains("v4.channel.k8s.io"),
        "{}",
        refused.response
    );
    // The token went with the refused request (good once, as kubelet's).
    let refused = connect(&url, &[V4]).await.err().unwrap();
    assert_eq!(refused.status, 404, "{}", refused.response);
    let url = exec_url(&mut pod.rt, &id, &["true"], false).await;
    let refused = connect(&url, &[]).await.err().unwrap();
    assert_eq!(refused.status, 403, "{}", refused.response);

    // A token used by a session is gone too.
    let url = exec_url(&mut pod.rt, &id, &["true"], false).await;
    let client = connect(&url, &[V4]).await.unwrap();
    let (error, _, _, _) = exec_streams(&client, false).await;
    client.read_to_end(error, LIMIT).await;
    let refused = connect(&url, &[V4]).await.err().unwrap();
    assert_eq!(refused.status, 404, "{}", refused.response);

    let url = exec_url(&mut pod.rt, &id, &["true"], false).await;
    let unknown = format!("{}x", &url[..url.len() - 1]);
    let refused = connect(&unknown, &[V4]).await.err().unwrap();
    assert_eq!(refused.status, 404, "{}", refused.response);

    // Port-forward speaks portforward.k8s.io only.
    let pf = pf_url(&mut pod).await;
    let refused = connect(&pf, &[V4]).await.err().unwrap();
    assert_eq!(refused.status, 403, "{}", refused.response);
    assert!(
        refused.response.contains("portforward.k8s.io"),
        "{}",
        refused.response
    );
}

async fn pf_url(pod: &mut Pod) -> String {
    pod.rt
        .port_forward(api::PortForwardRequest {
            pod_sandbox_id: pod.id.clone(),
            port: vec![],
        })
        .await
        .unwrap()
        .into_inner()
        .url
}

/// A pod serving `hello from pod` over HTTP on 8080 and echoing on 7000
/// (busybox nc, one `cat` per connection).
async fn serving_pod(server: &Server) -> Pod {
    let mut pod = Pod::new(server).await;
    let script = "mkdir -p /www && echo hello from pod > /www/index.html && \
                  exec httpd -f -p 8080 -h /www";
    let id = pod.create(&pod.ctr("web", script)).await.unwrap();
    pod.start(&id).await.unwrap();
    let id = pod
        .create(&pod.ctr("echo", "exec nc -ll -p 7000 -e cat"))
        .await
        .unwrap();
    pod.start(&id).await.unwrap();
    pod
}

/// Sends `line` and FIN through a pair; all that came back.
async fn echo(client: &SpdyClient, data: u32, line: &[u8]) -> Vec<u8> {
    client.data(data, line, true).await;
    client.read_to_end(data, LIMIT).await.data
}

/// Opens a pair as client-go does: the error stream (half-closed at once),
/// then the data stream. (error, data).
async fn open_pair(client: &SpdyClient, port: u16, request: u32) -> (u32, u32) {
    let port = port.to_string();
    let request = request.to_string();
    let error = client
        .open(
            &[
                ("streamtype", "error"),
                ("port", &port),
                ("requestid", &request),
            ],
            true,
        )
        .await;
    let data = client
        .open(
            &[
                ("streamtype", "data"),
                ("port", &port),
                ("requestid", &request),
            ],
            false,
        )
        .await;
    (error, data)
}

async fn http_get(client: &SpdyClient, data: u32) -> String {
    client
        .data(data, b"GET /index.html HTTP/1.0\r\n\r\n", false)
        .await;
    text(&client.read_to_end(data, LIMIT).await.data)
}

#[tokio::test]
async fn port_forward_pairs_concurrently_and_reports_a_closed_port() {
    let server = Server::start(&[]).await;
    let mut pod = serving_pod(&server).await;
    let url = pf_url(&mut pod).await;
    let client = connect(&url, &["portforward.k8s.io"]).await.unwrap();
    assert_eq!(client.protocol, "portforward.k8s.io");

    // Wait for httpd: each try is a pair of its own.
    let mut request = 0;
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let (_, data) = open_pair(&client, 8080, request).await;
        request += 1;
        if http_get(&client, data).await.contains("hello from pod") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "httpd never came up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A closed port: reported on that pair's error stream only.
    let (error, data) = open_pair(&client, 1, request).await;
    request += 1;
    let why = text(&client.read_to_end(error, LIMIT).await.data);
    assert!(why.contains("port 1"), "{why}");
    assert!(client.read_to_end(data, LIMIT).await.data.is_empty());

    // Two pairs at once, interleaved, still on the same session.
    let (e1, d1) = open_pair(&client, 8080, request).await;
    let (e2, d2) = open_pair(&client, 8080, request + 1).await;
    client
        .data(d2, b"GET /index.html HTTP/1.0\r\n\r\n", false)
        .await;
    client
        .data(d1, b"GET /index.html HTTP/1.0\r\n\r\n", false)
        .await;
    for (e, d) in [(e1, d1), (e2, d2)] {
        assert!(text(&client.read_to_end(d, LIMIT).await.data).contains("hello from pod"));
        let e = client.read_to_end(e, LIMIT).await;
        assert!(e.fin && e.data.is_empty(), "{e:?}");
    }

    // Two connections to the nc listener, open at once.
    request += 2;
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let (_, d) = open_pair(&client, 7000, request).await;
        request += 1;
        if echo(&client, d, b"probe\n").await == b"probe\n" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "nc never came up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, d1) = open_pair(&client, 7000, request).await;
    let (_, d2) = open_pair(&client, 7000, request + 1).await;
    client.data(d1, b"one\n", false).await;
    client.data(d2, b"two\n", false).await;
    // Both answer while both are open.
    assert_eq!(client.read_at_least(d2, 4, LIMIT).await.data, b"two\n");
    assert_eq!(client.read_at_least(d1, 4, LIMIT).await.data, b"one\n");
    assert_eq!(echo(&client, d2, b"").await, b"two\n");
    assert_eq!(echo(&client, d1, b"").await, b"one\n");
    assert!(!client.saw_goaway());

    // The client hangs up: the session ends.
    client.hang_up().await;
    client.closed(LIMIT).await;
}

#[tokio::test]
async fn exec_with_tty_sees_the_resize_and_attach_takes_stdin() {
    let server = Server::start(&[]).await;
    let (mut pod, id) = running(&server).await;
    let url = pod
        .rt
        .exec(api::ExecRequest {
            container_id: id.clone(),
            cmd: vec!["sh".into(), "-c".into(), "read go; stty size".into()],
            tty: true,
            stdin: true,
            stdout: true,
            stderr: false,
        })
        .await
        .unwrap()
        .into_inner()
        .url;
    let client = connect(&url, &[V4]).await.unwrap();
    let error = client.open(&[("streamtype", "error")], false).await;
    let stdin = client.open(&[("streamtype", "stdin")], false).await;
    let stdout = client.open(&[("streamtype", "stdout")], false).await;
    let resize = client.open(&[("streamtype", "resize")], false).await;
    client
        .data(resize, br#"{"Width":123,"Height":45}"#, false)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    client.data(stdin, b"go\r", false).await;
    let out = text(&client.read_to_end(stdout, LIMIT).await.data);
    assert!(out.contains("45 123"), "{out:?}");
    assert!(!out.contains('\0'), "{out:?}");
    let status = text(&client.read_to_end(error, LIMIT).await.data);
    assert_eq!(status, r#"{"metadata":{},"status":"Success"}"#);

    let mut config = pod.ctr("reader", "cat; echo bye");
    config.stdin = true;
    config.stdin_once = true;
    let reader = pod.create(&config).await.unwrap();
    pod.start(&reader).await.unwrap();
    let url = pod
        .rt
        .attach(api::AttachRequest {
            container_id: reader.clone(),
            stdin: true,
            stdout: true,
            stderr: true,
            tty: false,
        })
        .await
        .unwrap()
        .into_inner()
        .url;
    let client = connect(&url, &[V4]).await.unwrap();
    let (_, stdin, stdout, _) = exec_streams(&client, true).await;
    client.data(stdin, b"through attach\n", true).await;
    let out = text(&client.read_to_end(stdout, LIMIT).await.data);
    assert_eq!(out, "through attach\nbye\n");
    assert_eq!(pod.wait_exit(&reader).await.exit_code, 0);
}

/// Processes in the container whose command line contains `marker`.
async fn processes_with(rt: &mut Runtime, id: &str, marker: &str) -> usize {
    let ps = rt
        .exec_sync(api::ExecSyncRequest {
            container_id: id.into(),
            cmd: vec!["ps".into(), "-o".into(), "pid,args".into()],
            timeout: 10,
        })
        .await
        .unwrap()
        .into_inner();
    String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|l| l.contains(marker) && !l.contains("ps -o"))
        .count()
}

#[tokio::test]
async fn a_vanished_client_ends_its_exec() {
    let metrics = common::free_port();
    let server = Server::start(&["--metrics-bind-addr", &metrics.to_string()]).await;
    let (mut pod, id) = running(&server).await;

    // A client that hangs up mid-session: the exec's stdin closes.
    let url = exec_url(&mut pod.rt, &id, &["cat"], true).await;
    let client = connect(&url, &[V4]).await.unwrap();
    let (_, stdin, stdout, _) = exec_streams(&client, true).await;
    client.data(stdin, b"x", false).await;
    client.read_at_least(stdout, 1, LIMIT).await;
    assert_eq!(processes_with(&mut pod.rt, &id, "cat").await, 1);
    assert_eq!(streaming_sessions(metrics).await, 1);
    // The connection ends without a word (no GOAWAY, streams open).
    client.hang_up().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while processes_with(&mut pod.rt, &id, "cat").await > 0 {
        assert!(std::time::Instant::now() < deadline, "the exec lingers");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    client.closed(LIMIT).await;
    while streaming_sessions(metrics).await != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the session is still counted"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The docker_cri_streaming_sessions gauge.
async fn streaming_sessions(port: u16) -> u64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("docker_cri_streaming_sessions "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no session gauge in {text}"))
}

#[tokio::test]
async fn idle_sessions_time_out() {
    let server = Server::start(&["--streaming-connection-idle-timeout", "3s"]).await;
    let (mut pod, id) = running(&server).await;
    let url = exec_url(&mut pod.rt, &id, &["sleep", "60"], false).await;
    let client = connect(&url, &[V4]).await.unwrap();
    exec_streams(&client, false).await;
    let started = std::time::Instant::now();
    client.closed(LIMIT).await;
    let took = started.elapsed();
    assert!(
        // The server's clock starts at its last write, a moment before ours.
        took >= Duration::from_millis(2500) && took < Duration::from_secs(20),
        "{took:?}"
    );
}

#[tokio::test]
async fn streams_the_client_never_opens_time_out() {
    let server = Server::start(&[]).await;
    let (mut pod, id) = running(&server).await;
    let exec = exec_url(&mut pod.rt, &id, &["true"], false).await;
    let pf = pf_url(&mut pod).await;
    let started = std::time::Instant::now();
    // An exec whose stdout and stderr streams never come: dropped, unrun.
    let exec = async {
        let client = connect(&exec, &[V4]).await.unwrap();
        client.open(&[("streamtype", "error")], false).await;
        client.closed(Duration::from_secs(60)).await;
    };
    // A port-forward pair whose data stream never comes: its error stream
    // says so, the session stays.
    let pf = async {
        let client = connect(&pf, &["portforward.k8s.io"]).await.unwrap();
        let lone = client
            .open(
                &[
                    ("streamtype", "error"),
                    ("port", "8080"),
                    ("requestid", "1"),
                ],
                true,
            )
            .await;
        let why = text(&client.read_to_end(lone, Duration::from_secs(60)).await.data);
        assert!(why.contains("timed out"), "{why}");
        assert!(!client.saw_goaway());
    };
    tokio::join!(exec, pf);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(29) && took < Duration::from_secs(50),
        "{took:?}"
    );
}
