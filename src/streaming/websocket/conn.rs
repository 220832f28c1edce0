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
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::PollSender;

use super::channel::{Encoding, Frame, decode, encode, encode_parts};
use super::pipe::{PipeWriter, pipe};
use crate::streaming::transport::{BoxRead, BoxWrite, Driver};

/// The largest payload put in one message.
const MAX_FRAME: usize = 64 * 1024;
/// How much queued output goes into the socket per flush. Docker hands
/// output over in pieces of a few KiB; one write (and one flush) per piece
/// cost a third of the throughput.
const MAX_BATCH: usize = 256 * 1024;
/// Per-channel bound on client data not yet read by the protocol.
const PIPE_BYTES: usize = 256 * 1024;
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
    let (tx, rx) = mpsc::channel::<(u8, Bytes)>(16);
    let mut readers: HashMap<u8, BoxRead> = HashMap::new();
    let mut pipes: HashMap<u8, PipeWriter> = HashMap::new();
    for ch in &setup.readable {
        let (ours, theirs) = pipe(PIPE_BYTES);
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
    mut pipes: HashMap<u8, PipeWriter>,
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
                        // The message's own bytes, not a copy.
                        if pipe.send(data).await.is_err() {
                            pipes.remove(&ch); // the protocol stopped reading it
                        }
                    }
                    Ok(Frame::Close(ch)) => {
                        if let Some(pipe) = pipes.remove(&ch) {
                            pipe.close();
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
            // Sent as they are, never merged: the empty "ready" frame and
            // the port prefixes are messages of their own.
            for (ch, data) in &setup.initial {
                if sink.feed(encode(encoding, *ch, data)).await.is_err() {
                    return false;
                }
            }
            if sink.flush().await.is_err() {
                return false;
            }
            while let Some(first) = rx.recv().await {
                touch();
                // Whatever else is queued goes out with it, in order, and
                // the socket is flushed once for the lot.
                let mut batch = Batch::default();
                batch.push(first);
                while batch.bytes < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                for (ch, parts, _) in batch.messages {
                    if sink.feed(encode_parts(encoding, ch, &parts)).await.is_err() {
                        return false;
                    }
                }
                if sink.flush().await.is_err() {
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

/// Output chunks gathered for one flush; consecutive chunks of a channel
/// share a message up to MAX_FRAME (the client sees the same bytes in the
/// same order, in fewer messages), joined once when encoded.
#[derive(Default)]
struct Batch {
    messages: Vec<(u8, Vec<Bytes>, usize)>,
    bytes: usize,
}

impl Batch {
    fn push(&mut self, (ch, data): (u8, Bytes)) {
        self.bytes += data.len();
        if let Some((last_ch, parts, len)) = self.messages.last_mut()
            && *last_ch == ch
            && *len + data.len() <= MAX_FRAME
        {
            *len += data.len();
            parts.push(data);
            return;
        }
        let len = data.len();
        self.messages.push((ch, vec![data], len));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(n: usize) -> Bytes {
        Bytes::from(vec![b'x'; n])
    }

    #[test]
    fn a_batch_joins_runs_of_one_channel_up_to_a_frame() {
        let mut batch = Batch::default();
        for (ch, n) in [
            (1, 4096),
            (1, 4096),
            (2, 10),
            (1, 100),
            (1, MAX_FRAME - 100),
            (1, 1),
        ] {
            batch.push((ch, chunk(n)));
        }
        let shape: Vec<(u8, usize, usize)> = batch
            .messages
            .iter()
            .map(|(ch, parts, len)| (*ch, parts.len(), *len))
            .collect();
        // stdout, then stderr between, then stdout again filling a whole
        // frame, and the byte that did not fit in a message of its own.
        assert_eq!(
            shape,
            [(1, 2, 8192), (2, 1, 10), (1, 2, MAX_FRAME), (1, 1, 1)]
        );
        assert_eq!(batch.bytes, 8192 + 10 + MAX_FRAME + 1);
    }
}
