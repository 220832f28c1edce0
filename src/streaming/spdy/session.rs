//! The server side of a SPDY/3.1 session: the shared stream table,
//! flow-control windows and outgoing queues. The reader task lives in
//! `reader`, the writer task in `writer`, the per-stream handle in `stream`.
//!
//! Flow control and the Kubernetes client: moby/spdystream (client-go's
//! SPDY) neither sends WINDOW_UPDATE nor honours ours; it treats both as
//! unknown frames. Blocking our writers on its window would stall every
//! transfer after 64 KiB, so by default (`PeerFlowControl::Auto`) the peer's
//! window is only enforced once the peer shows it keeps one (a
//! WINDOW_UPDATE or SETTINGS_INITIAL_WINDOW_SIZE). Incoming data beyond our
//! window is tolerated for the same reason; memory stays bounded because
//! the reader stops reading the connection while a stream's buffer is full.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, mpsc};

use super::error::SpdyError;
use super::frame::{self, Frame, Setting, goaway};
use super::reader;
use super::stream::Stream;
use super::writer;

/// Whether our writers wait for the peer's flow-control windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PeerFlowControl {
    /// Enforce once the peer has sent a WINDOW_UPDATE or an initial window
    /// setting; until then track the windows but do not wait on them.
    #[default]
    Auto,
    /// Always enforce (a peer that implements SPDY/3.1 flow control).
    Enforce,
    /// Never wait (a peer known to be spdystream).
    Ignore,
}

/// Limits and tunables of one session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Our per-stream receive window, advertised with SETTINGS if it is not
    /// the default 64 KiB; WINDOW_UPDATEs go out after half is consumed.
    pub initial_window_size: u32,
    /// Streams open at once (including ones not yet taken from `Incoming`);
    /// more are refused with RST_STREAM REFUSED_STREAM.
    pub max_streams: usize,
    /// Largest decompressed header block accepted.
    pub max_header_block: usize,
    /// Largest DATA payload accepted (the wire allows 16 MiB - 1); control
    /// frames are bounded by `max_header_block` plus some slack.
    pub max_frame_payload: usize,
    /// Unread bytes buffered per stream before the reader stops reading the
    /// connection (the backpressure for peers that ignore our window).
    pub max_stream_buffer: usize,
    /// Unread bytes buffered across all streams before the reader stops
    /// reading the connection.
    pub max_session_buffer: usize,
    /// Largest DATA frame we send.
    pub max_data_frame: usize,
    /// Outgoing data queued for the writer, all streams together.
    pub write_queue_bytes: usize,
    /// Control frames (replies, pings, resets) waiting for the writer; a
    /// peer that makes us exceed it without reading is dropped.
    pub max_control_queue: usize,
    pub peer_flow_control: PeerFlowControl,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            initial_window_size: frame::DEFAULT_WINDOW,
            max_streams: 1024,
            max_header_block: 1 << 20,
            max_frame_payload: frame::MAX_PAYLOAD,
            max_stream_buffer: 1 << 20,
            max_session_buffer: 16 << 20,
            max_data_frame: 32 << 10,
            write_queue_bytes: 256 << 10,
            max_control_queue: 1024,
            peer_flow_control: PeerFlowControl::Auto,
        }
    }
}

/// What the writer sends; SYN_REPLY is compressed by the writer itself so
/// that the compression context follows wire order.
pub(crate) enum Out {
    Frame(Frame),
    Reply {
        stream_id: u32,
    },
    Data {
        stream_id: u32,
        data: Bytes,
        fin: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reset {
    ByPeer(u32),
    Local,
}

pub(crate) struct StreamState {
    pub recv: VecDeque<Bytes>,
    pub recv_len: usize,
    pub remote_fin: bool,
    pub local_fin: bool,
    pub reset: Option<Reset>,
    /// The peer's window for this stream; negative while not enforced.
    pub send_window: i64,
    /// Bytes consumed by the application and not yet credited.
    pub unacked: u32,
    pub update_queued: bool,
    /// Bytes of this stream waiting in the ordered queue.
    pub queued_out: usize,
    /// A `Stream` handle exists.
    pub handle: bool,
    pub read_waker: Option<Waker>,
    pub write_waker: Option<Waker>,
}

impl StreamState {
    pub(crate) fn new(send_window: i64, remote_fin: bool, local_fin: bool) -> Self {
        StreamState {
            recv: VecDeque::new(),
            recv_len: 0,
            remote_fin,
            local_fin,
            reset: None,
            send_window,
            unacked: 0,
            update_queued: false,
            queued_out: 0,
            handle: true,
            read_waker: None,
            write_waker: None,
        }
    }

    pub(crate) fn wake(&mut self) {
        if let Some(w) = self.read_waker.take() {
            w.wake();
        }
        if let Some(w) = self.write_waker.take() {
            w.wake();
        }
    }
}

pub(crate) struct State {
    pub streams: HashMap<u32, StreamState>,
    /// Urgent frames: replies, resets, pings, window updates, error GOAWAY.
    pub control: VecDeque<Out>,
    /// DATA (and FIN) in write order, then a graceful GOAWAY behind them:
    /// spdystream stops reading at GOAWAY, so nothing may overtake it.
    pub ordered: VecDeque<Out>,
    pub ordered_bytes: usize,
    pub updates_due: VecDeque<u32>,
    /// Unread bytes buffered over all streams.
    pub recv_total: usize,
    pub session_unacked: u32,
    pub session_send_window: i64,
    pub peer_initial_window: i64,
    pub enforce_send_window: bool,
    /// Highest client stream id seen in a SYN_STREAM.
    pub last_stream_id: u32,
    /// Highest stream id accepted, for GOAWAY's last-good-stream-id.
    pub last_accepted_id: u32,
    pub accepting: bool,
    pub goaway_sent: bool,
    /// The writer flushes what is queued, shuts the connection and exits.
    pub closing: bool,
    /// The session can carry no more data; why.
    pub dead: Option<String>,
    pub writer_done: bool,
    pub error: Option<SpdyError>,
    pub incoming_tx: Option<mpsc::UnboundedSender<Stream>>,
    pub incoming_alive: bool,
    pub session_alive: bool,
}

impl State {
    /// Credits `n` bytes of the session receive window, now or soon.
    pub(crate) fn credit_session(&mut self, n: usize, shared: &Shared) {
        self.session_unacked = self.session_unacked.saturating_add(n as u32);
        if self.session_unacked >= frame::DEFAULT_WINDOW / 2 {
            shared.writer_wake.notify_one();
        }
    }

    /// Credits `n` consumed bytes of stream `id` and of the session.
    pub(crate) fn credit_stream(&mut self, id: u32, n: usize, shared: &Shared) {
        self.credit_session(n, shared);
        let threshold = (shared.config.initial_window_size / 2).max(1);
        if let Some(s) = self.streams.get_mut(&id) {
            s.unacked = s.unacked.saturating_add(n as u32);
            if s.unacked >= threshold && !s.update_queued && !s.remote_fin {
                s.update_queued = true;
                self.updates_due.push_back(id);
                shared.writer_wake.notify_one();
            }
        }
    }

    /// Drops the queued data of a stream (after a reset).
    pub(crate) fn purge(&mut self, id: u32) {
        let mut freed = 0;
        self.ordered.retain(|o| match o {
            Out::Data {
                stream_id, data, ..
            } if *stream_id == id => {
                freed += data.len();
                false
            }
            _ => true,
        });
        self.ordered_bytes -= freed;
        if let Some(s) = self.streams.get_mut(&id) {
            s.queued_out = 0;
        }
    }

    /// Forgets a stream nobody can use any more.
    pub(crate) fn maybe_remove(&mut self, id: u32) {
        let dead = self.dead.is_some();
        if let Some(s) = self.streams.get(&id)
            && !s.handle
            && (dead || (s.queued_out == 0 && (s.local_fin || s.reset.is_some())))
        {
            self.streams.remove(&id);
        }
    }

    pub(crate) fn wake_all(&mut self) {
        for s in self.streams.values_mut() {
            s.wake();
        }
    }

    /// Queues a graceful GOAWAY behind all data queued so far.
    pub(crate) fn goaway(&mut self, shared: &Shared) {
        self.accepting = false;
        self.incoming_tx = None;
        if !self.goaway_sent && self.dead.is_none() {
            self.goaway_sent = true;
            self.ordered.push_back(Out::Frame(Frame::GoAway {
                last_good_stream_id: self.last_accepted_id,
                status: goaway::OK,
            }));
            shared.writer_wake.notify_one();
        }
    }

    /// GOAWAY, then close the connection once everything queued is out.
    pub(crate) fn close(&mut self, shared: &Shared) {
        self.goaway(shared);
        self.closing = true;
        shared.writer_wake.notify_one();
        self.wake_all();
    }

    /// Ends the session after a protocol violation: GOAWAY PROTOCOL_ERROR
    /// goes out ahead of anything else, streams fail.
    pub(crate) fn fail(&mut self, err: SpdyError, shared: &Shared) {
        tracing::debug!(error = %err, "spdy session error");
        if self.dead.is_none() {
            self.ordered.clear();
            self.ordered_bytes = 0;
            self.control.push_back(Out::Frame(Frame::GoAway {
                last_good_stream_id: self.last_accepted_id,
                status: goaway::PROTOCOL_ERROR,
            }));
            self.dead = Some(err.to_string());
            self.error = Some(err);
        }
        self.accepting = false;
        self.incoming_tx = None;
        self.closing = true;
        shared.writer_wake.notify_one();
        self.wake_all();
    }

    /// The connection is gone: nothing more can be sent or received.
    pub(crate) fn disconnected(&mut self, why: String, shared: &Shared) {
        if self.dead.is_none() {
            tracing::debug!(reason = %why, "spdy connection ended");
            self.dead = Some(why);
        }
        self.control.clear();
        self.ordered.clear();
        self.ordered_bytes = 0;
        self.accepting = false;
        self.incoming_tx = None;
        self.closing = true;
        shared.writer_wake.notify_one();
        shared.reader_stop.notify_one();
        self.wake_all();
    }

    /// Closes the session once no handle can use it any more.
    pub(crate) fn maybe_auto_close(&mut self, shared: &Shared) {
        if !self.incoming_alive
            && !self.session_alive
            && !self.closing
            && self.streams.values().all(|s| !s.handle)
        {
            self.close(shared);
        }
    }
}

pub(crate) struct Shared {
    state: Mutex<State>,
    pub config: SessionConfig,
    /// Wakes the writer task (one waiter: `notify_one` keeps a permit).
    pub writer_wake: Notify,
    /// Wakes the reader task waiting for a stream buffer to drain.
    pub reader_wake: Notify,
    /// Tells the reader task to stop.
    pub reader_stop: Notify,
    /// Cuts the writer's current write short (`Session::abort`).
    pub writer_abort: Notify,
    /// Signals `Session::closed` waiters.
    pub done: Notify,
}

impl Shared {
    /// The state lock; a panic elsewhere must not wedge the session.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A handle on a server session; cloning is cheap. When every clone and
/// the `Incoming` are dropped and no stream handle remains, the session
/// sends GOAWAY and closes the connection on its own.
#[derive(Clone)]
pub struct Session {
    inner: Arc<SessionHandle>,
}

struct SessionHandle {
    shared: Arc<Shared>,
}

impl Drop for SessionHandle {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.session_alive = false;
        st.maybe_auto_close(&self.shared);
    }
}

/// The streams the client opens, in SYN_STREAM order.
pub struct Incoming {
    rx: mpsc::UnboundedReceiver<Stream>,
    shared: Arc<Shared>,
}

impl Incoming {
    /// The next stream, already answered with SYN_REPLY. `None` once the
    /// session accepts no more streams; a session error is returned once.
    pub async fn next(&mut self) -> Option<Result<Stream, SpdyError>> {
        match self.rx.recv().await {
            Some(s) => Some(Ok(s)),
            None => self.shared.lock().error.take().map(Err),
        }
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        // Streams still in the channel are dropped after the lock is
        // released (their own Drop takes it).
        let mut st = self.shared.lock();
        st.incoming_alive = false;
        st.accepting = false;
        st.incoming_tx = None;
        st.maybe_auto_close(&self.shared);
    }
}

impl Session {
    /// Runs the server side of a session over an upgraded connection:
    /// spawns one reader and one writer task on the current runtime.
    ///
    /// `io` is the byte stream after the HTTP/1.1 handshake, in which the
    /// server answered `101 Switching Protocols` with `Connection: Upgrade`,
    /// `Upgrade: SPDY/3.1` and the negotiated `X-Stream-Protocol-Version`;
    /// bytes the client sent after its request belong to `io` too. Every
    /// stream the client opens is answered with an empty SYN_REPLY before
    /// it is handed out (client-go waits for that reply); refuse one with
    /// `Stream::reset`. When done, shut the streams down and call `close`:
    /// spdystream stops reading at GOAWAY, so it goes out after all data.
    pub fn server<IO>(io: IO, config: SessionConfig) -> (Session, Incoming)
    where
        IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut control = VecDeque::new();
        if config.initial_window_size != frame::DEFAULT_WINDOW {
            control.push_back(Out::Frame(Frame::Settings {
                flags: 0,
                entries: vec![Setting {
                    flags: 0,
                    id: frame::SETTINGS_INITIAL_WINDOW_SIZE,
                    value: config.initial_window_size,
                }],
            }));
        }
        let state = State {
            streams: HashMap::new(),
            control,
            ordered: VecDeque::new(),
            ordered_bytes: 0,
            updates_due: VecDeque::new(),
            recv_total: 0,
            session_unacked: 0,
            session_send_window: i64::from(frame::DEFAULT_WINDOW),
            peer_initial_window: i64::from(frame::DEFAULT_WINDOW),
            enforce_send_window: config.peer_flow_control == PeerFlowControl::Enforce,
            last_stream_id: 0,
            last_accepted_id: 0,
            accepting: true,
            goaway_sent: false,
            closing: false,
            dead: None,
            writer_done: false,
            error: None,
            incoming_tx: Some(tx),
            incoming_alive: true,
            session_alive: true,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            config,
            writer_wake: Notify::new(),
            reader_wake: Notify::new(),
            reader_stop: Notify::new(),
            writer_abort: Notify::new(),
            done: Notify::new(),
        });
        let (rd, wr) = tokio::io::split(io);
        tokio::spawn(reader::run(shared.clone(), rd));
        tokio::spawn(writer::run(shared.clone(), wr));
        let session = Session {
            inner: Arc::new(SessionHandle {
                shared: shared.clone(),
            }),
        };
        (session, Incoming { rx, shared })
    }

    /// Sends GOAWAY (after the data already queued) and refuses new
    /// streams; open streams carry on.
    pub fn goaway(&self) {
        let shared = &self.inner.shared;
        shared.lock().goaway(shared);
    }

    /// GOAWAY, then closes the connection once queued data is written.
    /// Writes after this fail; readers see the end of the session.
    pub fn close(&self) {
        let shared = &self.inner.shared;
        shared.lock().close(shared);
    }

    /// Ends the session at once, without GOAWAY and without waiting for
    /// queued data or for a peer that does not read (e.g. on an idle or
    /// deadline timeout). Streams fail; the connection is dropped.
    pub fn abort(&self) {
        let shared = &self.inner.shared;
        shared.lock().disconnected("session aborted".into(), shared);
        shared.writer_abort.notify_one();
    }

    /// Whether the session can no longer carry data.
    pub fn is_closed(&self) -> bool {
        self.inner.shared.lock().dead.is_some()
    }

    /// Waits until the writer has finished and the connection is closed.
    pub async fn closed(&self) {
        let shared = &self.inner.shared;
        loop {
            let notified = shared.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if shared.lock().writer_done {
                return;
            }
            notified.await;
        }
    }
}

/// Used by `reader` to check the control queue bound.
pub(crate) fn control_full(st: &State, shared: &Shared) -> bool {
    st.control.len() >= shared.config.max_control_queue
}
