//! A WebSocket connection turned into named byte streams (the transport
//! seam of `streaming::transport`): client frames are written into one
//! pipe per readable channel, and everything the protocol writes goes out
//! through one ordered queue, so stdout, stderr and the status keep their
//! order on the wire.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::PollSender;

use super::channel::{Encoding, Frame, decode, encode};
use crate::streaming::transport::{BoxRead, BoxWrite, Driver};

/// The largest payload put in one message.
const MAX_FRAME: usize = 64 * 1024;
/// Per-channel pipe for client data not yet read by the protocol.
const PIPE_BYTES: usize = 64 * 1024;
/// After our close frame, how long the client gets to answer with its own
/// (closing with its data unread would reset the connection).
const CLOSE_WAIT: Duration = Duration::from_secs(2);

pub struct ChannelSetup {
    pub encoding: Encoding,
    /// v5: honour the client's close-stream signal.
    pub close_signal: bool,
    /// Channels the client writes to (stdin, resize, port data).
    pub readable: Vec<u8>,
    /// Channels docker-cri writes to.
    pub writable: Vec<u8>,
    /// Frames sent first (the "ready" frame, port prefixes).
    pub initial: Vec<(u8, Bytes)>,
    pub idle_timeout: Duration,
}

pub struct Channels {
    pub readers: HashMap<u8, BoxRead>,
    pub writers: HashMap<u8, BoxWrite>,
    pub driver: Driver,
}

pub fn open<S>(ws: WebSocketStream<S>, setup: ChannelSetup) -> Channels
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<(u8, Bytes)>(16 + setup.initial.len());
    for frame in &setup.initial {
        // Room was made for these above; a full queue is impossible.
        let _ = tx.try_send(frame.clone());
    }
    let mut readers: HashMap<u8, BoxRead> = HashMap::new();
    let mut pipes: HashMap<u8, DuplexStream> = HashMap::new();
    for ch in &setup.readable {
        let (ours, theirs) = tokio::io::duplex(PIPE_BYTES);
        pipes.insert(*ch, ours);
        readers.insert(*ch, Box::pin(theirs));
    }
    let writers: HashMap<u8, BoxWrite> = setup
        .writable
        .iter()
        .map(|ch| {
            let w: BoxWrite = Box::pin(ChannelWriter {
                channel: *ch,
                tx: PollSender::new(tx.clone()),
            });
            (*ch, w)
        })
        .collect();
    drop(tx);
    let driver = Box::pin(drive(ws, setup, pipes, rx));
    Channels {
        readers,
        writers,
        driver,
    }
}

async fn drive<S>(
    ws: WebSocketStream<S>,
    setup: ChannelSetup,
    mut pipes: HashMap<u8, DuplexStream>,
    mut rx: mpsc::Receiver<(u8, Bytes)>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut stream) = ws.split();
    let started = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let touch = || last.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
    let encoding = setup.encoding;

    let finished = {
        let inbound = async {
            while let Some(Ok(message)) = stream.next().await {
                touch();
                if matches!(message, Message::Close(_)) {
                    return;
                }
                match decode(encoding, setup.close_signal, message) {
                    Ok(Frame::Data(ch, data)) => {
                        let Some(pipe) = pipes.get_mut(&ch) else {
                            continue; // a channel this session ignores
                        };
                        if !data.is_empty() && pipe.write_all(&data).await.is_err() {
                            pipes.remove(&ch); // the protocol stopped reading it
                        }
                    }
                    Ok(Frame::Close(ch)) => {
                        if let Some(mut pipe) = pipes.remove(&ch) {
                            let _ = pipe.shutdown().await;
                        }
                    }
                    Ok(Frame::Skip) => {}
                    Err(why) => {
                        tracing::debug!(why, "closing a streaming session on a bad frame");
                        return;
                    }
                }
            }
        };
        let outbound = async {
            while let Some((ch, data)) = rx.recv().await {
                touch();
                if sink.send(encode(encoding, ch, &data)).await.is_err() {
                    return false;
                }
            }
            // A status code: client-go takes only a normal closure as EOF.
            let normal = CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            };
            sink.send(Message::Close(Some(normal))).await.is_ok()
        };
        let idle = async {
            loop {
                let since = started
                    .elapsed()
                    .saturating_sub(Duration::from_millis(last.load(Ordering::Relaxed)));
                if since >= setup.idle_timeout {
                    tracing::info!(timeout = ?setup.idle_timeout, "streaming session idle; closing");
                    return;
                }
                tokio::time::sleep(setup.idle_timeout - since).await;
            }
        };
        tokio::select! {
            () = inbound => false,
            done = outbound => done,
            () = idle => false,
        }
    };
    drop(pipes);
    if finished {
        // Let the client read everything and answer our close.
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            while let Some(Ok(m)) = stream.next().await {
                if matches!(m, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}

/// The protocol's end of one outgoing channel.
struct ChannelWriter {
    channel: u8,
    tx: PollSender<(u8, Bytes)>,
}

impl AsyncWrite for ChannelWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        ready!(self.tx.poll_reserve(cx)).map_err(|_| gone())?;
        let n = buf.len().min(MAX_FRAME);
        let item = (self.channel, Bytes::copy_from_slice(&buf[..n]));
        self.tx.send_item(item).map_err(|_| gone())?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tx.close();
        Poll::Ready(Ok(()))
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "streaming client is gone")
}
