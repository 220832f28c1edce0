//! A WebSocket client for docker-cri's streaming server, written against
//! Kubernetes' channel protocols, plus raw HTTP for refusals.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct WsClient {
    ws: WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
    /// The subprotocol the server chose.
    pub protocol: String,
    base64: bool,
}

/// Everything received until the server closed, per channel, and the
/// channels in the order frames arrived.
#[derive(Debug, Default)]
pub struct Received {
    pub channels: HashMap<u8, Vec<u8>>,
    pub order: Vec<u8>,
}

impl Received {
    pub fn text(&self, ch: u8) -> String {
        String::from_utf8_lossy(self.channels.get(&ch).map(Vec::as_slice).unwrap_or(&[]))
            .into_owned()
    }
}

impl WsClient {
    pub async fn connect(url: &str, protocols: &[&str]) -> Result<WsClient, tungstenite::Error> {
        let ws_url = url.replacen("http://", "ws://", 1);
        let mut request = ws_url.into_client_request()?;
        if !protocols.is_empty() {
            request.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_str(&protocols.join(", ")).unwrap(),
            );
        }
        let (ws, response) = tokio_tungstenite::connect_async(request).await?;
        let protocol = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let base64 = protocol.contains("base64");
        Ok(WsClient {
            ws,
            protocol,
            base64,
        })
    }

    pub async fn send(&mut self, channel: u8, data: &[u8]) {
        let message = if self.base64 {
            let mut text = String::from(char::from(b'0' + channel));
            text.push_str(&base64::engine::general_purpose::STANDARD.encode(data));
            Message::text(text)
        } else {
            let mut frame = vec![channel];
            frame.extend_from_slice(data);
            Message::binary(frame)
        };
        self.ws.send(message).await.unwrap();
    }

    /// v5: tells the server this channel is done (stdin EOF).
    pub async fn close_stream(&mut self, channel: u8) {
        self.ws
            .send(Message::binary(vec![255, channel]))
            .await
            .unwrap();
    }

    /// The next data frame, or `None` once the server closed.
    pub async fn recv(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            match self.ws.next().await? {
                Ok(Message::Binary(b)) if !self.base64 => {
                    let (&ch, rest) = b.split_first()?;
                    return Some((ch, rest.to_vec()));
                }
                Ok(Message::Text(t)) if self.base64 => {
                    let (&digit, rest) = t.as_bytes().split_first()?;
                    let data = base64::engine::general_purpose::STANDARD
                        .decode(rest)
                        .expect("server sent bad base64");
                    return Some((digit - b'0', data));
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(Message::Binary(_) | Message::Text(_)) => panic!("frame of the wrong type"),
                Ok(_) => continue,
            }
        }
    }

    /// Reads until the server closes (or `limit` passes: a panic).
    pub async fn collect(&mut self, limit: Duration) -> Received {
        let mut got = Received::default();
        tokio::time::timeout(limit, async {
            while let Some((ch, data)) = self.recv().await {
                got.order.push(ch);
                got.channels.entry(ch).or_default().extend(data);
            }
        })
        .await
        .expect("the server did not end the session in time");
        got
    }

    /// Reads frames until `ch` has received at least `n` bytes (beyond what
    /// `got` already holds), keeping everything.
    pub async fn read_until(&mut self, got: &mut Received, ch: u8, n: usize, limit: Duration) {
        let arrived = tokio::time::timeout(limit, async {
            while got.channels.get(&ch).map_or(0, Vec::len) < n {
                let Some((c, data)) = self.recv().await else {
                    return false;
                };
                got.order.push(c);
                got.channels.entry(c).or_default().extend(data);
            }
            true
        })
        .await;
        assert!(
            arrived == Ok(true),
            "{n} bytes on channel {ch} did not arrive ({arrived:?}); got {got:?}"
        );
    }
}

/// A raw HTTP GET with the given headers: (status, body).
pub async fn http_get(url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut conn = tokio::net::TcpStream::connect(host).await.unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// Headers of a WebSocket upgrade request, for raw requests.
pub fn websocket_headers(protocol: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Protocol", protocol),
    ]
}

/// One unlabelled sample from docker-cri's `/metrics` on `port`.
pub async fn metric(port: u16, name: &str) -> i64 {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    let prefix = format!("{name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}
