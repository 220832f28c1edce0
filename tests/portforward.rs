//! PortForward through the real binary and dockerd: WebSocket channel
//! sessions whose connections docker-cri opens inside the pod's network
//! namespace.

mod common;

use std::time::Duration;

use common::Server;
use common::pod::Pod;
use common::stream::{Received, WsClient, http_get, websocket_headers};
use docker_cri::api;
use tonic::Code;

const LIMIT: Duration = Duration::from_secs(30);

/// A pod serving `hello from pod` over HTTP on 8080 (all addresses) and
/// 8081 (IPv6 loopback only; Docker turns IPv6 off in containers unless a
/// sysctl turns it back on).
async fn serving_pod(server: &Server) -> Pod {
    let image = common::TestImage::busybox(None).await;
    let mut pod = Pod::with_sandbox_config(server, image, "", |c| {
        c.linux
            .get_or_insert_with(Default::default)
            .sysctls
            .insert("net.ipv6.conf.all.disable_ipv6".into(), "0".into());
    })
    .await;
    let script = "mkdir -p /www && echo hello from pod > /www/index.html && \
                  httpd -p [::1]:8081 -h /www; exec httpd -f -p 8080 -h /www";
    let id = pod.create(&pod.ctr("web", script)).await.unwrap();
    pod.start(&id).await.unwrap();
    // Wait for the listener: port-forward itself is the probe.
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let mut ws = open(&mut pod, &[8080]).await;
        if get(&mut ws, 0).await.is_some() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "httpd never came up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    pod
}

async fn open(pod: &mut Pod, ports: &[i32]) -> WsClient {
    let url = pod
        .rt
        .port_forward(api::PortForwardRequest {
            pod_sandbox_id: pod.id.clone(),
            port: ports.to_vec(),
        })
        .await
        .unwrap()
        .into_inner()
        .url;
    assert!(url.contains("/portforward/"), "{url}");
    WsClient::connect(&url, &["v4.channel.k8s.io"])
        .await
        .unwrap()
}

/// An HTTP GET through the data channel `data`; the body, or `None` when
/// the connection failed (the reason is on channel data+1).
async fn get(ws: &mut WsClient, data: u8) -> Option<String> {
    let mut got = Received::default();
    ws.send(data, b"GET /index.html HTTP/1.0\r\n\r\n").await;
    loop {
        let Some((ch, bytes)) = tokio::time::timeout(LIMIT, ws.recv()).await.unwrap() else {
            break;
        };
        got.channels.entry(ch).or_default().extend(bytes);
        let text = got.text(data);
        if text.contains("hello from pod") {
            return Some(text);
        }
        if got.channels.get(&(data + 1)).is_some_and(|e| e.len() > 2) {
            return None;
        }
    }
    None
}

#[tokio::test]
async fn two_concurrent_connections_to_a_listener_in_the_pod() {
    let server = Server::start(&[]).await;
    let mut pod = serving_pod(&server).await;
    // Two sessions at once, and one session forwarding the port twice.
    let mut a = open(&mut pod, &[8080]).await;
    let mut b = open(&mut pod, &[8080]).await;
    let mut both = open(&mut pod, &[8080, 8080]).await;
    let (ra, rb) = tokio::join!(get(&mut a, 0), get(&mut b, 0));
    assert!(ra.unwrap().contains(" 200 OK"));
    assert!(rb.unwrap().contains(" 200 OK"));
    let mut got = Received::default();
    both.read_until(&mut got, 3, 2, LIMIT).await;
    assert_eq!(got.channels[&0], 8080u16.to_le_bytes(), "port prefix");
    assert_eq!(got.channels[&2], 8080u16.to_le_bytes());
    both.send(0, b"GET /index.html HTTP/1.0\r\n\r\n").await;
    both.send(2, b"GET /index.html HTTP/1.0\r\n\r\n").await;
    let got = both.collect(LIMIT).await;
    assert!(got.text(0).contains("hello from pod"), "{}", got.text(0));
    assert!(got.text(2).contains("hello from pod"), "{}", got.text(2));
}

#[tokio::test]
async fn ipv6_loopback_listener() {
    let server = Server::start(&[]).await;
    let mut pod = serving_pod(&server).await;
    let mut ws = open(&mut pod, &[8081]).await;
    let body = get(&mut ws, 0).await;
    assert!(body.is_some_and(|b| b.contains("hello from pod")));
}

#[tokio::test]
async fn a_closed_port_is_reported_on_its_error_channel() {
    let server = Server::start(&[]).await;
    let mut pod = serving_pod(&server).await;
    let mut ws = open(&mut pod, &[9, 8080]).await;
    let mut got = Received::default();
    ws.read_until(&mut got, 1, 3, LIMIT).await;
    let error = String::from_utf8_lossy(&got.channels[&1][2..]).into_owned();
    assert!(
        error.contains("port 9") && error.contains("refused"),
        "{error}"
    );
    // The session stays up for the other port.
    assert!(get(&mut ws, 2).await.unwrap().contains("hello from pod"));
}

#[tokio::test]
async fn port_forward_is_validated() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let bad = pod
        .rt
        .port_forward(api::PortForwardRequest {
            pod_sandbox_id: pod.id.clone(),
            port: vec![70000],
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let missing = pod
        .rt
        .port_forward(api::PortForwardRequest {
            pod_sandbox_id: "0".repeat(64),
            port: vec![80],
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    pod.rt
        .stop_pod_sandbox(api::StopPodSandboxRequest {
            pod_sandbox_id: pod.id.clone(),
        })
        .await
        .unwrap();
    let stopped = pod
        .rt
        .port_forward(api::PortForwardRequest {
            pod_sandbox_id: pod.id.clone(),
            port: vec![80],
        })
        .await
        .unwrap_err();
    assert_eq!(stopped.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn spdy_tunnelled_in_websocket_is_refused_clearly() {
    let server = Server::start(&[]).await;
    let mut pod = Pod::new(&server).await;
    let url = pod
        .rt
        .port_forward(api::PortForwardRequest {
            pod_sandbox_id: pod.id.clone(),
            port: vec![],
        })
        .await
        .unwrap()
        .into_inner()
        .url;
    // What client-go's port-forward dialer (and crictl) offer.
    let (status, body) = http_get(&url, &websocket_headers("SPDY/3.1+portforward.k8s.io")).await;
    assert_eq!(status, 501, "{body}");
    assert!(body.contains("not yet supported"), "{body}");
}
