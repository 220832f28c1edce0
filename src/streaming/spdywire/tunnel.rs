//! client-go's port-forward over WebSocket: a SPDY session whose bytes
//! travel in binary WebSocket messages (subprotocol
//! `SPDY/3.1+portforward.k8s.io`), with no HTTP upgrade inside. The bridge
//! turns the messages back into a byte stream for the SPDY session.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Bytes buffered between the WebSocket and the SPDY session.
const BRIDGE_BUFFER: usize = 64 << 10;
/// After one direction ended, how long the other gets to finish.
const WIND_DOWN: Duration = Duration::from_secs(5);

/// The SPDY session's end of the bridge; a task pumps the other end.
pub fn bridge<S>(ws: WebSocketStream<S>) -> DuplexStream
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (ours, theirs) = tokio::io::duplex(BRIDGE_BUFFER);
    tokio::spawn(pump(ws, theirs));
    ours
}

async fn pump<S>(ws: WebSocketStream<S>, io: DuplexStream)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut messages) = ws.split();
    let (mut from_session, mut to_session) = tokio::io::split(io);
    let inbound = async move {
        while let Some(Ok(message)) = messages.next().await {
            match message {
                Message::Binary(bytes) if to_session.write_all(&bytes).await.is_err() => break,
                Message::Close(_) => break,
                // Pings are answered by tungstenite; text has no meaning here.
                _ => {}
            }
        }
        // The session reads EOF: the client is gone.
        let _ = to_session.shutdown().await;
    };
    let outbound = async move {
        let mut buf = vec![0u8; 32 << 10];
        loop {
            match from_session.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let chunk = bytes::Bytes::copy_from_slice(&buf[..n]);
                    if sink.send(Message::Binary(chunk)).await.is_err() {
                        return;
                    }
                }
            }
        }
        let normal = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        let _ = sink.send(Message::Close(Some(normal))).await;
    };
    tokio::pin!(inbound, outbound);
    tokio::select! {
        () = &mut inbound => {
            let _ = tokio::time::timeout(WIND_DOWN, outbound).await;
        }
        () = &mut outbound => {
            let _ = tokio::time::timeout(WIND_DOWN, inbound).await;
        }
    }
}
