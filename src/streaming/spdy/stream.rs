//! A client-opened stream as the application sees it: the SYN_STREAM's
//! headers, `AsyncRead` for the peer's data, `AsyncWrite` for ours.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::compression::Headers;
use super::frame::{Frame, rst};
use super::session::{Out, Reset, Shared, State, StreamState};

/// One stream of a session. Dropping it without `shutdown` still
/// half-closes it gracefully (data already written is delivered, then FIN);
/// use `reset` to abort.
pub struct Stream {
    shared: Arc<Shared>,
    id: u32,
    headers: Headers,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("id", &self.id)
            .field("headers", &self.headers)
            .finish()
    }
}

impl Stream {
    pub(crate) fn new(shared: Arc<Shared>, id: u32, headers: Headers) -> Self {
        Stream {
            shared,
            id,
            headers,
        }
    }

    /// The stream id (odd: the client opened it).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The SYN_STREAM's name/value pairs; names are lowercase (e.g.
    /// `streamtype`, `port`, `requestid`).
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The first value of header `name` (ASCII case-insensitive). A SPDY
    /// value may carry several values separated by NUL; this is the first.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split('\0').next().unwrap_or_default())
    }

    /// Aborts the stream: RST_STREAM CANCEL, queued data is dropped, reads
    /// and writes fail from now on.
    pub fn reset(&self) {
        let mut st = self.shared.lock();
        if st.dead.is_some() {
            return;
        }
        let Some(s) = st.streams.get_mut(&self.id) else {
            return;
        };
        if s.reset.is_some() {
            return;
        }
        s.reset = Some(Reset::Local);
        s.wake();
        st.purge(self.id);
        st.control.push_back(Out::Frame(Frame::RstStream {
            stream_id: self.id,
            status: rst::CANCEL,
        }));
        self.shared.writer_wake.notify_one();
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State, &Shared) -> T) -> T {
        let mut st = self.shared.lock();
        f(&mut st, &self.shared)
    }
}

fn closed(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, format!("spdy session: {why}"))
}

fn reset_error(r: Reset) -> io::Error {
    match r {
        Reset::ByPeer(status) => io::Error::new(
            io::ErrorKind::ConnectionReset,
            format!("spdy stream reset by peer (status {status})"),
        ),
        Reset::Local => io::Error::new(io::ErrorKind::ConnectionReset, "spdy stream was reset"),
    }
}

/// The stream's state while a handle exists; absent only if the session
/// dropped it, which it does not while `handle` is set.
fn entry(st: &mut State, id: u32) -> io::Result<&mut StreamState> {
    st.streams
        .get_mut(&id)
        .ok_or_else(|| closed("stream no longer exists"))
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let id = self.id;
        self.with_state(|st, shared| {
            let dead = st.dead.clone();
            let s = match entry(st, id) {
                Ok(s) => s,
                Err(e) => return Poll::Ready(Err(e)),
            };
            if !s.recv.is_empty() {
                let mut n = 0;
                while buf.remaining() > 0 {
                    let Some(chunk) = s.recv.front_mut() else {
                        break;
                    };
                    let take = chunk.len().min(buf.remaining());
                    buf.put_slice(&chunk[..take]);
                    chunk.advance(take);
                    if chunk.is_empty() {
                        s.recv.pop_front();
                    }
                    n += take;
                }
                s.recv_len -= n;
                st.recv_total -= n;
                st.credit_stream(id, n, shared);
                // The reader may be waiting for this buffer to drain.
                shared.reader_wake.notify_one();
                return Poll::Ready(Ok(()));
            }
            if let Some(r) = s.reset {
                return Poll::Ready(Err(reset_error(r)));
            }
            if s.remote_fin {
                return Poll::Ready(Ok(()));
            }
            if let Some(why) = dead {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    format!("spdy session: {why}"),
                )));
            }
            s.read_waker = Some(cx.waker().clone());
            Poll::Pending
        })
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let id = self.id;
        self.with_state(|st, shared| {
            if let Some(why) = &st.dead {
                return Poll::Ready(Err(closed(why)));
            }
            if st.closing {
                return Poll::Ready(Err(closed("closing")));
            }
            let room = shared
                .config
                .write_queue_bytes
                .saturating_sub(st.ordered_bytes);
            let enforce = st.enforce_send_window;
            let session_window = st.session_send_window;
            let s = match entry(st, id) {
                Ok(s) => s,
                Err(e) => return Poll::Ready(Err(e)),
            };
            if let Some(r) = s.reset {
                return Poll::Ready(Err(reset_error(r)));
            }
            if s.local_fin {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "spdy stream: write after shutdown",
                )));
            }
            if buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            let mut n = buf.len().min(shared.config.max_data_frame.max(1));
            n = n.min(room);
            if enforce {
                let window = s.send_window.min(session_window);
                n = n.min(usize::try_from(window.max(0)).unwrap_or(usize::MAX));
            }
            if n == 0 {
                s.write_waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            // The windows are tracked even when not enforced, so that a
            // switch to enforcing starts from the peer's own accounting.
            s.send_window -= n as i64;
            s.queued_out += n;
            st.session_send_window -= n as i64;
            st.ordered_bytes += n;
            st.ordered.push_back(Out::Data {
                stream_id: id,
                data: Bytes::copy_from_slice(&buf[..n]),
                fin: false,
            });
            shared.writer_wake.notify_one();
            Poll::Ready(Ok(n))
        })
    }

    /// Ready once this stream's queued data has been written to the
    /// connection.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let id = self.id;
        self.with_state(|st, _| poll_drained(st, id, cx))
    }

    /// Sends FIN (a DATA frame with FLAG_FIN) once, then waits until it
    /// has been written.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let id = self.id;
        self.with_state(|st, shared| {
            let alive = st.dead.is_none();
            if let Ok(s) = entry(st, id)
                && alive
                && !s.local_fin
                && s.reset.is_none()
            {
                queue_fin(st, shared, id);
            }
            poll_drained(st, id, cx)
        })
    }
}

fn poll_drained(st: &mut State, id: u32, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    let dead = st.dead.clone();
    let s = match entry(st, id) {
        Ok(s) => s,
        Err(e) => return Poll::Ready(Err(e)),
    };
    if s.queued_out == 0 {
        return Poll::Ready(Ok(()));
    }
    if let Some(why) = dead {
        return Poll::Ready(Err(closed(&why)));
    }
    s.write_waker = Some(cx.waker().clone());
    Poll::Pending
}

/// Queues our FIN behind the stream's data.
fn queue_fin(st: &mut State, shared: &Shared, id: u32) {
    if let Some(s) = st.streams.get_mut(&id) {
        s.local_fin = true;
        st.ordered.push_back(Out::Data {
            stream_id: id,
            data: Bytes::new(),
            fin: true,
        });
        shared.writer_wake.notify_one();
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let shared = self.shared.clone();
        let mut st = shared.lock();
        let dead = st.dead.is_some();
        let Some(s) = st.streams.get_mut(&self.id) else {
            return;
        };
        s.handle = false;
        s.read_waker = None;
        s.write_waker = None;
        // Unread data is discarded; the peer still gets its credit.
        let unread = std::mem::take(&mut s.recv_len);
        s.recv.clear();
        let fin_needed = !dead && !s.local_fin && s.reset.is_none();
        st.recv_total -= unread;
        st.credit_session(unread, &shared);
        if fin_needed {
            queue_fin(&mut st, &shared, self.id);
        }
        st.maybe_remove(self.id);
        st.maybe_auto_close(&shared);
        // The reader may be waiting for this stream's buffer.
        shared.reader_wake.notify_one();
    }
}
