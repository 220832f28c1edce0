//! A byte-bounded queue of client messages, read as one byte stream: the
//! WebSocket driver hands each message's payload over as it came (no copy
//! into a pipe buffer), the protocol reads it through `AsyncRead`.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, ReadBuf};

#[derive(Default)]
struct State {
    chunks: VecDeque<Bytes>,
    /// Bytes queued and not yet read.
    len: usize,
    /// The driver will send no more (client closed the channel or left).
    eof: bool,
    /// The reader was dropped: nobody wants this channel any more.
    reader_gone: bool,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
}

struct Shared {
    state: Mutex<State>,
    capacity: usize,
}

impl Shared {
    /// A panic elsewhere must not wedge the session.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The driver's end.
pub struct PipeWriter {
    shared: Arc<Shared>,
}

/// The protocol's end: the channel's bytes in order, EOF once the writer
/// is closed or dropped and everything was read.
pub struct PipeReader {
    shared: Arc<Shared>,
}

/// A pipe holding up to about `capacity` unread bytes: a write waits while
/// that much is queued, so one message may take it past the bound (the
/// message is in memory already; splitting it would only add a copy).
pub fn pipe(capacity: usize) -> (PipeWriter, PipeReader) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        capacity,
    });
    (
        PipeWriter {
            shared: shared.clone(),
        },
        PipeReader { shared },
    )
}

/// The reader is gone; the message was not delivered.
#[derive(Debug, PartialEq, Eq)]
pub struct ReaderGone;

impl PipeWriter {
    /// Queues `data`, waiting while the pipe is full.
    pub async fn send(&mut self, data: Bytes) -> Result<(), ReaderGone> {
        std::future::poll_fn(|cx| self.poll_room(cx)).await?;
        if data.is_empty() {
            return Ok(());
        }
        let mut st = self.shared.lock();
        st.len += data.len();
        st.chunks.push_back(data);
        if let Some(w) = st.read_waker.take() {
            w.wake();
        }
        Ok(())
    }

    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ReaderGone>> {
        let mut st = self.shared.lock();
        if st.reader_gone {
            return Poll::Ready(Err(ReaderGone));
        }
        if st.len < self.shared.capacity {
            return Poll::Ready(Ok(()));
        }
        st.write_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// The channel's end: the reader sees EOF after what is queued.
    pub fn close(self) {}
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.eof = true;
        if let Some(w) = st.read_waker.take() {
            w.wake();
        }
    }
}

impl AsyncRead for PipeReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut st = self.shared.lock();
        if st.chunks.is_empty() {
            if st.eof {
                return Poll::Ready(Ok(()));
            }
            st.read_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let mut n = 0;
        while buf.remaining() > 0 {
            let Some(chunk) = st.chunks.front_mut() else {
                break;
            };
            let take = chunk.len().min(buf.remaining());
            buf.put_slice(&chunk[..take]);
            chunk.advance(take);
            if chunk.is_empty() {
                st.chunks.pop_front();
            }
            n += take;
        }
        st.len -= n;
        if st.len < self.shared.capacity
            && let Some(w) = st.write_waker.take()
        {
            w.wake();
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for PipeReader {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.reader_gone = true;
        st.chunks.clear();
        st.len = 0;
        if let Some(w) = st.write_waker.take() {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn messages_read_as_one_stream_then_eof() {
        let (mut tx, mut rx) = pipe(1024);
        tx.send(Bytes::from_static(b"hello ")).await.unwrap();
        tx.send(Bytes::new()).await.unwrap();
        tx.send(Bytes::from_static(b"world")).await.unwrap();
        let mut small = [0u8; 4];
        assert_eq!(rx.read(&mut small).await.unwrap(), 4);
        assert_eq!(&small, b"hell");
        tx.close();
        let mut rest = Vec::new();
        rx.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"o world");
    }

    #[tokio::test]
    async fn a_full_pipe_waits_for_the_reader() {
        let (mut tx, mut rx) = pipe(8);
        // One message may pass the bound; the next waits.
        tx.send(Bytes::from_static(b"0123456789")).await.unwrap();
        {
            let second = tx.send(Bytes::from_static(b"ab"));
            tokio::pin!(second);
            assert!(futures_util::poll!(second.as_mut()).is_pending());
            let mut buf = [0u8; 4];
            rx.read_exact(&mut buf).await.unwrap();
            assert_eq!(second.await, Ok(()));
        }
        let mut rest = Vec::new();
        drop(tx);
        rx.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"456789ab");
    }

    #[tokio::test]
    async fn a_dropped_reader_fails_the_writer() {
        let (mut tx, rx) = pipe(8);
        drop(rx);
        assert_eq!(tx.send(Bytes::from_static(b"x")).await, Err(ReaderGone));
    }
}
