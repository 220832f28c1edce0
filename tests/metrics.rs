//! `/metrics` after a few CRI calls: counters by method and code, latency
//! histograms, Docker call counts and the connection gauge.

mod common;

use std::io::{Read, Write};

use common::Server;
use docker_cri::api;

fn scrape(port: u16, path: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

/// The value of the series whose line starts with `series`.
fn value(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn counters_and_histograms_move_with_calls() {
    let port = common::free_port();
    let server = Server::start(&["--metrics-bind-addr", &port.to_string()]).await;
    let mut rt = server.runtime().await;
    for _ in 0..3 {
        rt.version(api::VersionRequest::default()).await.unwrap();
    }
    let absent = "0".repeat(64);
    for _ in 0..2 {
        let err = rt
            .container_status(api::ContainerStatusRequest {
                container_id: absent.clone(),
                verbose: false,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::NotFound);
    }

    let mut images = server.images().await;
    for _ in 0..2 {
        let absent = images
            .image_status(api::ImageStatusRequest {
                image: common::image_spec("docker-cri-test/absent:none"),
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(absent.image.is_none());
    }

    let (head, body) = scrape(port, "/metrics");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    assert_eq!(
        value(
            &body,
            "docker_cri_grpc_requests_total{method=\"Version\",code=\"OK\"}"
        ),
        Some(3.0),
        "{body}"
    );
    assert_eq!(
        value(
            &body,
            "docker_cri_grpc_requests_total{method=\"ContainerStatus\",code=\"NotFound\"}"
        ),
        Some(2.0),
        "{body}"
    );
    assert_eq!(
        value(
            &body,
            "docker_cri_grpc_request_duration_seconds_count{method=\"Version\"}"
        ),
        Some(3.0)
    );
    // Every Version call took under two minutes: all in the last finite bucket.
    assert_eq!(
        value(
            &body,
            "docker_cri_grpc_request_duration_seconds_bucket{le=\"120.0\",method=\"Version\"}"
        ),
        Some(3.0),
        "{body}"
    );
    // ContainerStatus of an unknown ID is answered from the index (once
    // in sync) without asking Docker; ImageStatus of an absent image asks
    // Docker once each: two 404s. (The index inspects containers — also
    // other tests' — so container inspects are not counted here.)
    assert_eq!(
        value(
            &body,
            "docker_cri_docker_calls_total{call=\"inspect image\",outcome=\"not_found\"}"
        ),
        Some(2.0),
        "{body}"
    );
    assert_eq!(value(&body, "docker_cri_docker_connected"), Some(1.0));
    assert!(body.contains("docker_cri_build_info{version=\""), "{body}");

    // One more call shows up in the next scrape.
    rt.version(api::VersionRequest::default()).await.unwrap();
    let (_, body) = scrape(port, "/metrics");
    assert_eq!(
        value(
            &body,
            "docker_cri_grpc_requests_total{method=\"Version\",code=\"OK\"}"
        ),
        Some(4.0)
    );
    let (head, _) = scrape(port, "/other");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");

    // A running container that prints has a log writer and written bytes.
    let mut pod = common::pod::Pod::new(&server).await;
    let id = pod
        .create(&pod.ctr("talker", "echo hello from the log; exec sleep 300"))
        .await
        .unwrap();
    pod.start(&id).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, body) = scrape(port, "/metrics");
        let writers = value(&body, "docker_cri_log_writers").unwrap_or(0.0);
        let bytes = value(&body, "docker_cri_log_bytes_total").unwrap_or(0.0);
        if writers >= 1.0 && bytes > 0.0 {
            assert!(
                value(&body, "docker_cri_log_lag_seconds_count").unwrap_or(0.0) >= 1.0,
                "{body}"
            );
            assert_eq!(value(&body, "docker_cri_streaming_sessions"), Some(0.0));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    pod.stop(&id, 0).await.unwrap();
}

/// A container that exits with nobody asking its status: its log writer
/// still finishes at once (the index's stop event wakes it), not at the
/// follower's minute-long backstop check.
#[tokio::test]
async fn a_log_writer_finishes_when_its_container_stops_unasked() {
    let port = common::free_port();
    let server = Server::start(&["--metrics-bind-addr", &port.to_string()]).await;
    let writers = || {
        let (_, body) = scrape(port, "/metrics");
        value(&body, "docker_cri_log_writers")
    };
    let mut pod = common::pod::Pod::new(&server).await;
    let id = pod
        .create(&pod.ctr("brief", "echo hi; sleep 2"))
        .await
        .unwrap();
    pod.start(&id).await.unwrap();
    assert_eq!(writers(), Some(1.0), "the running container's writer");
    let started = std::time::Instant::now();
    while writers() != Some(0.0) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "the writer of the exited container is still running"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(pod.logs.path().join("brief/0.log")).unwrap();
    assert!(log.ends_with(" stdout F hi\n"), "{log:?}");
}
