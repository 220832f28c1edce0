//! A small SPDY/3.1 client for docker-cri's streaming server, standing in
//! for client-go: the HTTP/1.1 upgrade by hand, then streams opened with
//! SYN_STREAM and read to their FIN. Built on docker-cri's own frame and
//! header-compression code. `examples/exec_bench.rs` includes this file
//! too (by `#[path]`), so the benchmark's SPDY figures come from the same
//! client the tests check.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use docker_cri::streaming::spdy::compression::{HeaderCompressor, HeaderDecompressor};
use docker_cri::streaming::spdy::frame::{self, Frame};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

/// What the server sent on one stream.
#[derive(Debug, Default, Clone)]
pub struct Inbound {
    /// The stream's bytes (empty for a stream set to `discard`).
    pub data: Vec<u8>,
    /// Bytes received, kept or not.
    pub received: usize,
    pub replied: bool,
    pub fin: bool,
    pub reset: Option<u32>,
}

#[derive(Default)]
struct Shared {
    streams: HashMap<u32, Inbound>,
    /// Streams whose bytes are counted, not kept (bulk transfers).
    discard: HashSet<u32>,
    goaway: bool,
    /// The server closed the connection.
    eof: bool,
}

type Writer = Box<dyn AsyncWrite + Send + Unpin>;

pub struct SpdyClient {
    writer: tokio::sync::Mutex<(Writer, HeaderCompressor, u32)>,
    shared: Arc<Mutex<Shared>>,
    changed: Arc<Notify>,
    /// The X-Stream-Protocol-Version the server chose.
    pub protocol: String,
}

/// The refusal when the server does not upgrade: status and whole response.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub response: String,
}

/// Upgrades `url` to SPDY/3.1 offering `versions` (one header each, as
/// client-go sends them).
pub async fn connect(url: &str, versions: &[&str]) -> Result<SpdyClient, Refused> {
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest.split_at(rest.find('/').expect("path"));
    let mut conn = tokio::net::TcpStream::connect(host).await.expect("connect");
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
    );
    for v in versions {
        request.push_str(&format!("X-Stream-Protocol-Version: {v}\r\n"));
    }
    request.push_str("Content-Length: 0\r\n\r\n");
    conn.write_all(request.as_bytes())
        .await
        .expect("write request");
    let mut buf = BytesMut::new();
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read_buf(&mut buf))
            .await
            .expect("response in time")
            .expect("read response");
        assert!(n > 0, "server closed before answering: {buf:?}");
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if status != 101 {
        let mut rest = buf[end..].to_vec();
        let _ = tokio::time::timeout(Duration::from_secs(2), conn.read_to_end(&mut rest)).await;
        return Err(Refused {
            status,
            response: format!("{head}{}", String::from_utf8_lossy(&rest)),
        });
    }
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
            .unwrap_or_default()
    };
    assert!(header("upgrade").eq_ignore_ascii_case("SPDY/3.1"), "{head}");
    let protocol = header("x-stream-protocol-version");
    let _ = buf.split_to(end);
    let (rd, wr) = tokio::io::split(conn);
    Ok(SpdyClient::over(rd, Box::new(wr), buf, protocol))
}

impl SpdyClient {
    /// A client on an already upgraded byte stream (`buf`: bytes read past
    /// the HTTP response).
    pub fn over<R>(rd: R, wr: Writer, buf: BytesMut, protocol: String) -> SpdyClient
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let changed = Arc::new(Notify::new());
        tokio::spawn(read_frames(rd, buf, shared.clone(), changed.clone()));
        SpdyClient {
            writer: tokio::sync::Mutex::new((wr, HeaderCompressor::new().expect("compressor"), 1)),
            shared,
            changed,
            protocol,
        }
    }

    async fn send(&self, writer: &mut Writer, f: Frame) {
        let mut out = BytesMut::new();
        f.encode(&mut out).expect("encode");
        // A server that already hung up makes this fail; readers see it.
        let _ = writer.write_all(&out).await;
    }

    /// Opens a stream with these headers (and FIN when `fin`); its id.
    pub async fn open(&self, headers: &[(&str, &str)], fin: bool) -> u32 {
        let mut w = self.writer.lock().await;
        let (writer, enc, next) = &mut *w;
        let id = *next;
        *next += 2;
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let block = enc.compress(&headers).expect("compress");
        let f = Frame::SynStream {
            flags: if fin { frame::FLAG_FIN } else { 0 },
            stream_id: id,
            associated_to: 0,
            priority: 0,
            slot: 0,
            header_block: block.into(),
        };
        let mut out = BytesMut::new();
        f.encode(&mut out).expect("encode");
        let _ = writer.write_all(&out).await;
        id
    }

    /// Sends `data` on stream `id`, with FIN when `fin`.
    pub async fn data(&self, id: u32, data: &[u8], fin: bool) {
        let mut w = self.writer.lock().await;
        let f = Frame::Data {
            stream_id: id,
            flags: if fin { frame::FLAG_FIN } else { 0 },
            data: Bytes::copy_from_slice(data),
        };
        self.send(&mut w.0, f).await;
    }

    /// Closes the connection's sending direction.
    pub async fn hang_up(&self) {
        let _ = self.writer.lock().await.0.shutdown().await;
    }

    /// Waits until `done` holds for the client's view (panics after `limit`).
    async fn wait_for(&self, limit: Duration, what: &str, done: impl Fn(&Shared) -> bool) {
        let waited = tokio::time::timeout(limit, async {
            loop {
                let notified = self.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if done(&self.shared.lock().unwrap()) {
                    return;
                }
                notified.await;
            }
        })
        .await;
        if waited.is_err() {
            let st = self.shared.lock().unwrap();
            panic!("waited too long for {what}; streams: {:?}", st.streams);
        }
    }

    /// Everything stream `id` carries until the server's FIN or reset.
    pub async fn read_to_end(&self, id: u32, limit: Duration) -> Inbound {
        self.wait_for(limit, "a stream's end", |st| {
            st.eof
                || st
                    .streams
                    .get(&id)
                    .is_some_and(|s| s.fin || s.reset.is_some())
        })
        .await;
        self.stream(id)
    }

    /// Counts stream `id`'s bytes from now on without keeping them.
    pub fn discard(&self, id: u32) {
        self.shared.lock().unwrap().discard.insert(id);
    }

    /// Waits until stream `id` has at least `n` bytes.
    pub async fn read_at_least(&self, id: u32, n: usize, limit: Duration) -> Inbound {
        self.wait_for(limit, "stream data", |st| {
            st.eof
                || st
                    .streams
                    .get(&id)
                    .is_some_and(|s| s.received >= n || s.fin || s.reset.is_some())
        })
        .await;
        self.stream(id)
    }

    /// Waits for the server to close the connection.
    pub async fn closed(&self, limit: Duration) {
        self.wait_for(limit, "the connection to close", |st| st.eof)
            .await;
    }

    pub fn stream(&self, id: u32) -> Inbound {
        self.shared
            .lock()
            .unwrap()
            .streams
            .get(&id)
            .cloned()
            .unwrap_or_default()
    }

    pub fn saw_goaway(&self) -> bool {
        self.shared.lock().unwrap().goaway
    }
}

async fn read_frames<R: AsyncRead + Unpin>(
    mut rd: R,
    mut buf: BytesMut,
    shared: Arc<Mutex<Shared>>,
    changed: Arc<Notify>,
) {
    let mut dec = HeaderDecompressor::new(1 << 20);
    loop {
        while let Ok(Some(f)) = frame::decode(&mut buf, frame::MAX_PAYLOAD) {
            let mut st = shared.lock().unwrap();
            match f {
                Frame::SynReply {
                    stream_id,
                    header_block,
                    ..
                } => {
                    let _ = dec.decompress(&header_block);
                    st.streams.entry(stream_id).or_default().replied = true;
                }
                Frame::Data {
                    stream_id,
                    flags,
                    data,
                } => {
                    let keep = !st.discard.contains(&stream_id);
                    let s = st.streams.entry(stream_id).or_default();
                    if keep {
                        s.data.extend_from_slice(&data);
                    }
                    s.received += data.len();
                    s.fin |= flags & frame::FLAG_FIN != 0;
                }
                Frame::RstStream { stream_id, status } => {
                    st.streams.entry(stream_id).or_default().reset = Some(status);
                }
                Frame::GoAway { .. } => st.goaway = true,
                _ => {}
            }
            drop(st);
            changed.notify_waiters();
        }
        buf.reserve(32 << 10);
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    shared.lock().unwrap().eof = true;
    changed.notify_waiters();
}

/// client-go's port-forward over WebSocket: the SPDY session's bytes in
/// binary messages of subprotocol `SPDY/3.1+portforward.k8s.io`.
pub async fn connect_tunnel(url: &str) -> SpdyClient {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;

    let mut request = url
        .replacen("http://", "ws://", 1)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("SPDY/3.1+portforward.k8s.io"),
    );
    let (ws, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket upgrade");
    let protocol = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let (ours, theirs) = tokio::io::duplex(64 << 10);
    let (mut from_client, mut to_client) = tokio::io::split(theirs);
    let (mut sink, mut messages) = ws.split();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 16 << 10];
        while let Ok(n) = from_client.read(&mut buf).await {
            if n == 0 || sink.send(Message::binary(buf[..n].to_vec())).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    tokio::spawn(async move {
        while let Some(Ok(message)) = messages.next().await {
            if let Message::Binary(b) = message
                && to_client.write_all(&b).await.is_err()
            {
                break;
            }
        }
        let _ = to_client.shutdown().await;
    });
    let (rd, wr) = tokio::io::split(ours);
    SpdyClient::over(rd, Box::new(wr), BytesMut::new(), protocol)
}
