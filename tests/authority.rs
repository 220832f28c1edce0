//! gRPC C-core (Python, C++, Ruby), grpc-java and grpc-swift send the
//! socket path as `:authority` on UNIX sockets. Requests carrying such
//! authorities, written by h2's own frame codec (Huffman-coded, indexed in
//! the dynamic table like any real client's), get ordinary answers.

mod common;

use std::path::Path;
use std::time::Duration;

use common::Server;
use docker_cri::api;
use futures_util::StreamExt;
use h2::Codec;
use h2::frame::{BytesStr, Data, Frame, Headers, Pseudo, Settings, StreamId};
use prost::Message;
use prost::bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tonic::codegen::http::{HeaderMap, HeaderValue, Method, Uri};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[derive(Debug, Default)]
struct Reply {
    status: Option<u16>,
    grpc_status: Option<String>,
    body: Vec<u8>,
    reset: Option<h2::Reason>,
    done: bool,
}

impl Reply {
    /// Asserts a successful call and decodes its one message.
    fn version(&self, authority: &str) -> api::VersionResponse {
        assert_eq!(self.reset, None, "{authority:?}: stream reset");
        assert_eq!(self.status, Some(200), "{authority:?}");
        assert_eq!(self.grpc_status.as_deref(), Some("0"), "{authority:?}");
        // gRPC framing: compressed flag, 4-byte length, message.
        assert!(self.body.len() >= 5, "{authority:?}: body {:?}", self.body);
        assert_eq!(self.body[0], 0, "uncompressed");
        let len = u32::from_be_bytes(self.body[1..5].try_into().unwrap()) as usize;
        assert_eq!(self.body.len(), 5 + len);
        api::VersionResponse::decode(&self.body[5..]).expect("a VersionResponse")
    }
}

/// Codec implements futures' Sink; this crate's futures-util has no
/// sink support, so the same three steps by hand.
async fn send(codec: &mut Codec<UnixStream, Bytes>, frame: Frame<Bytes>) {
    std::future::poll_fn(|cx| codec.poll_ready(cx))
        .await
        .unwrap();
    codec.buffer(frame).unwrap();
    std::future::poll_fn(|cx| codec.flush(cx)).await.unwrap();
}

/// One connection; one `RuntimeService/Version` call per authority, each
/// on its own stream, all sent before any answer is read.
async fn version_calls(socket: &Path, authorities: &[&str]) -> Vec<Reply> {
    let mut io = UnixStream::connect(socket).await.unwrap();
    io.write_all(PREFACE).await.unwrap();
    let mut codec: Codec<UnixStream, Bytes> = Codec::new(io);
    send(&mut codec, Settings::default().into()).await;
    let request = api::VersionRequest {
        version: "v1".into(),
    };
    let mut message = vec![0];
    message.extend_from_slice(&(request.encoded_len() as u32).to_be_bytes());
    request.encode(&mut message).unwrap();
    for (i, authority) in authorities.iter().enumerate() {
        let id = StreamId::from(1 + 2 * i as u32);
        let uri = Uri::from_static("http://placeholder/runtime.v1.RuntimeService/Version");
        let mut pseudo = Pseudo::request(Method::POST, uri, None);
        pseudo.authority =
            Some(BytesStr::try_from(Bytes::copy_from_slice(authority.as_bytes())).unwrap());
        let mut fields = HeaderMap::new();
        fields.insert("content-type", HeaderValue::from_static("application/grpc"));
        fields.insert("te", HeaderValue::from_static("trailers"));
        send(&mut codec, Headers::new(id, pseudo, fields).into()).await;
        let mut data = Data::new(id, Bytes::from(message.clone()));
        data.set_end_stream(true);
        send(&mut codec, data.into()).await;
    }

    let mut replies: Vec<Reply> = authorities.iter().map(|_| Reply::default()).collect();
    let read_all = async {
        while !replies.iter().all(|r| r.done) {
            let frame = codec
                .next()
                .await
                .expect("connection open")
                .expect("a frame");
            let index = |id: StreamId| (u32::from(id) as usize - 1) / 2;
            match frame {
                Frame::Settings(s) if !s.is_ack() => send(&mut codec, Settings::ack().into()).await,
                Frame::Headers(h) => {
                    let reply = &mut replies[index(h.stream_id())];
                    reply.done = h.is_end_stream();
                    let (pseudo, fields) = h.into_parts();
                    if let Some(status) = pseudo.status {
                        reply.status = Some(status.as_u16());
                    }
                    if let Some(v) = fields.get("grpc-status") {
                        reply.grpc_status = Some(v.to_str().unwrap().to_string());
                    }
                }
                Frame::Data(d) => {
                    let reply = &mut replies[index(d.stream_id())];
                    reply.done = d.is_end_stream();
                    reply.body.extend_from_slice(d.payload());
                }
                Frame::Reset(r) => {
                    let reply = &mut replies[index(r.stream_id())];
                    reply.reset = Some(r.reason());
                    reply.done = true;
                }
                Frame::GoAway(g) => panic!("GOAWAY {:?}", g.reason()),
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read_all)
        .await
        .expect("all calls answered");
    replies
}

#[tokio::test]
async fn socket_paths_and_empty_authorities_are_served() {
    let server = Server::start(&[]).await;
    let raw_path = server.socket.display().to_string();
    let encoded_path = raw_path.replace('/', "%2F");
    for authority in [encoded_path.as_str(), raw_path.as_str(), "", "localhost"] {
        // Twice on one connection: the second call's authority comes from
        // the client's dynamic table.
        let replies = version_calls(&server.socket, &[authority, authority]).await;
        for reply in &replies {
            let version = reply.version(authority);
            assert_eq!(version.runtime_api_version, "v1");
            assert!(!version.runtime_name.is_empty());
        }
    }
    // Good and bad authorities mixed on one connection.
    let mixed = [
        "localhost",
        encoded_path.as_str(),
        "localhost",
        raw_path.as_str(),
        "",
    ];
    let replies = version_calls(&server.socket, &mixed).await;
    for (reply, authority) in replies.iter().zip(mixed) {
        reply.version(authority);
    }
}
