//! The reader task: decodes frames from the connection and applies them to
//! the session state. It never waits on the writer (control frames go to a
//! bounded queue it checks), only on a stream buffer that is full.

use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::compression::HeaderDecompressor;
use super::error::SpdyError;
use super::frame::{self, Frame, rst};
use super::session::{Out, PeerFlowControl, Reset, Shared, State, StreamState, control_full};
use super::stream::Stream;

/// Reads at least this much spare room before each read call (a bulk
/// transfer's frames are 32 KiB and up; smaller reads cost syscalls).
const READ_CHUNK: usize = 64 << 10;
/// Control frame bytes allowed beyond `max_header_block`.
const CONTROL_SLACK: usize = 4 << 10;

pub(crate) async fn run<R: AsyncRead + Unpin>(shared: Arc<Shared>, mut rd: R) {
    let mut buf = BytesMut::with_capacity(READ_CHUNK * 4);
    // A compressed header block is at most a little larger than the
    // decompressed one; other control frames are tiny.
    let max_control = shared.config.max_header_block.saturating_add(CONTROL_SLACK);
    let mut reader = Reader {
        shared: shared.clone(),
        headers: HeaderDecompressor::new(shared.config.max_header_block),
    };
    loop {
        loop {
            match frame::decode_bounded(&mut buf, shared.config.max_frame_payload, max_control) {
                Ok(Some(f)) => {
                    if let Err(e) = reader.handle(f).await {
                        shared.lock().fail(e, &shared);
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    shared.lock().fail(e, &shared);
                    return;
                }
            }
        }
        if shared.lock().dead.is_some() {
            return;
        }
        if buf.capacity() - buf.len() < READ_CHUNK {
            buf.reserve(READ_CHUNK);
        }
        tokio::select! {
            r = rd.read_buf(&mut buf) => match r {
                Ok(0) => {
                    shared.lock().disconnected("connection closed by peer".into(), &shared);
                    return;
                }
                Ok(_) => {}
                Err(e) => {
                    shared.lock().disconnected(format!("read: {e}"), &shared);
                    return;
                }
            },
            _ = shared.reader_stop.notified() => return,
        }
    }
}

struct Reader {
    shared: Arc<Shared>,
    headers: HeaderDecompressor,
}

impl Reader {
    async fn handle(&mut self, f: Frame) -> Result<(), SpdyError> {
        let shared = &*self.shared;
        match f {
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                let full = {
                    let mut st = shared.lock();
                    on_data(&mut st, shared, stream_id, flags, data)?
                };
                if full {
                    self.wait_for_room(stream_id).await;
                }
            }
            Frame::SynStream {
                flags,
                stream_id,
                header_block,
                ..
            } => {
                // Always decompress: the zlib context must see every block.
                let headers = self.headers.decompress(&header_block)?;
                let accepted = {
                    let mut st = shared.lock();
                    on_syn_stream(&mut st, shared, stream_id, flags)?
                };
                if let Some(tx) = accepted {
                    let stream = Stream::new(self.shared.clone(), stream_id, headers);
                    // A failed send drops the stream outside the lock; its
                    // Drop half-closes it.
                    let _ = tx.send(stream);
                }
            }
            Frame::SynReply {
                stream_id,
                header_block,
                ..
            } => {
                self.headers.decompress(&header_block)?;
                // We open no streams, so there is nothing to reply to.
                let mut st = shared.lock();
                reset_stream(&mut st, shared, stream_id, rst::PROTOCOL_ERROR)?;
            }
            Frame::Headers {
                flags,
                stream_id,
                header_block,
            } => {
                self.headers.decompress(&header_block)?;
                if flags & frame::FLAG_FIN != 0 {
                    let mut st = shared.lock();
                    if let Some(s) = st.streams.get_mut(&stream_id) {
                        s.remote_fin = true;
                        s.wake();
                    }
                }
            }
            Frame::RstStream { stream_id, status } => {
                let mut st = shared.lock();
                tracing::debug!(stream_id, status, "spdy stream reset by peer");
                if let Some(s) = st.streams.get_mut(&stream_id)
                    && s.reset.is_none()
                {
                    s.reset = Some(Reset::ByPeer(status));
                    s.wake();
                    st.purge(stream_id);
                    st.maybe_remove(stream_id);
                }
            }
            Frame::Settings { entries, .. } => {
                let mut st = shared.lock();
                for e in entries {
                    if e.id == frame::SETTINGS_INITIAL_WINDOW_SIZE {
                        set_initial_window(&mut st, shared, e.value)?;
                    }
                }
            }
            Frame::Ping { id } => {
                // Odd ids are the client's: echo them. Even ones would be
                // replies to our pings, and we send none.
                if id % 2 == 1 {
                    let mut st = shared.lock();
                    push_control(&mut st, shared, Out::Frame(Frame::Ping { id }))?;
                }
            }
            Frame::GoAway { status, .. } => {
                tracing::debug!(status, "spdy GOAWAY from peer");
                let mut st = shared.lock();
                st.accepting = false;
                st.incoming_tx = None;
            }
            Frame::WindowUpdate { stream_id, delta } => {
                let mut st = shared.lock();
                on_window_update(&mut st, shared, stream_id, delta)?;
            }
            Frame::Unknown { frame_type, .. } => {
                tracing::debug!(frame_type, "spdy control frame of unknown type ignored");
            }
        }
        Ok(())
    }

    /// Waits until stream `id` has room again, its handle is gone, or the
    /// session ends. Meanwhile nothing else is read: that is the only
    /// backpressure a peer ignoring our window gets.
    async fn wait_for_room(&self, id: u32) {
        let shared = &*self.shared;
        loop {
            {
                let st = shared.lock();
                if st.dead.is_some() {
                    return;
                }
                if !over_limit(&st, shared, id) {
                    return;
                }
            }
            tokio::select! {
                _ = shared.reader_wake.notified() => {}
                _ = shared.reader_stop.notified() => {
                    // Keep the stop for the main loop.
                    shared.reader_stop.notify_one();
                    return;
                }
            }
        }
    }
}

fn push_control(st: &mut State, shared: &Shared, out: Out) -> Result<(), SpdyError> {
    if control_full(st, shared) {
        return Err(SpdyError::protocol("peer does not read its control frames"));
    }
    st.control.push_back(out);
    shared.writer_wake.notify_one();
    Ok(())
}

/// Returns whether the stream's buffer is now over its bound.
fn on_data(
    st: &mut State,
    shared: &Shared,
    id: u32,
    flags: u8,
    data: bytes::Bytes,
) -> Result<bool, SpdyError> {
    let n = data.len();
    let fin = flags & frame::FLAG_FIN != 0;
    let Some(s) = st.streams.get_mut(&id) else {
        // Data can trail a stream we forgot; credit it and drop it. A
        // stream the peer never opened is an error on that stream.
        st.credit_session(n, shared);
        if id > st.last_stream_id || id.is_multiple_of(2) {
            push_control(st, shared, rst_frame(id, rst::INVALID_STREAM))?;
        }
        return Ok(false);
    };
    if s.reset.is_some() {
        st.credit_session(n, shared);
        return Ok(false);
    }
    if s.remote_fin {
        st.credit_session(n, shared);
        return reset_stream(st, shared, id, rst::STREAM_ALREADY_CLOSED).map(|_| false);
    }
    if !s.handle {
        // Nobody will read it: drop the data but keep the peer's windows
        // moving.
        s.remote_fin |= fin;
        st.credit_session(n, shared);
        st.maybe_remove(id);
        return Ok(false);
    }
    if n > 0 {
        s.recv_len += n;
        s.recv.push_back(data);
    }
    s.remote_fin |= fin;
    if let Some(w) = s.read_waker.take() {
        w.wake();
    }
    st.recv_total += n;
    Ok(over_limit(st, shared, id))
}

/// Whether the reader must pause after data for stream `id`: its buffer or
/// the session's is over the bound.
fn over_limit(st: &State, shared: &Shared, id: u32) -> bool {
    let stream_full = st
        .streams
        .get(&id)
        .is_some_and(|s| s.handle && s.recv_len > shared.config.max_stream_buffer);
    stream_full || st.recv_total > shared.config.max_session_buffer
}

fn rst_frame(stream_id: u32, status: u32) -> Out {
    Out::Frame(Frame::RstStream { stream_id, status })
}

/// Resets a stream on our side with `status` (a stream error).
fn reset_stream(st: &mut State, shared: &Shared, id: u32, status: u32) -> Result<(), SpdyError> {
    if let Some(s) = st.streams.get_mut(&id) {
        if s.reset.is_some() {
            return Ok(());
        }
        s.reset = Some(Reset::Local);
        s.wake();
        st.purge(id);
        st.maybe_remove(id);
    }
    push_control(st, shared, rst_frame(id, status))
}

/// Accepts a client stream; returns where to deliver it, or `None` if it
/// was refused.
fn on_syn_stream(
    st: &mut State,
    shared: &Shared,
    id: u32,
    flags: u8,
) -> Result<Option<tokio::sync::mpsc::UnboundedSender<Stream>>, SpdyError> {
    if id.is_multiple_of(2) {
        return Err(SpdyError::protocol(format!(
            "client opened even stream id {id}"
        )));
    }
    if id <= st.last_stream_id {
        return Err(SpdyError::protocol(format!(
            "stream id {id} not above {}",
            st.last_stream_id
        )));
    }
    st.last_stream_id = id;
    let tx = match &st.incoming_tx {
        Some(tx) if st.accepting && st.streams.len() < shared.config.max_streams => tx.clone(),
        _ => {
            tracing::debug!(stream_id = id, "spdy stream refused");
            push_control(st, shared, rst_frame(id, rst::REFUSED_STREAM))?;
            return Ok(None);
        }
    };
    st.last_accepted_id = id;
    let remote_fin = flags & frame::FLAG_FIN != 0;
    let local_fin = flags & frame::FLAG_UNIDIRECTIONAL != 0;
    st.streams.insert(
        id,
        StreamState::new(st.peer_initial_window, remote_fin, local_fin),
    );
    // The Kubernetes client waits for this reply before using the stream
    // (and drops DATA that arrives before it).
    push_control(st, shared, Out::Reply { stream_id: id })?;
    Ok(Some(tx))
}

fn set_initial_window(st: &mut State, shared: &Shared, value: u32) -> Result<(), SpdyError> {
    let value = i64::from(value);
    if value > frame::MAX_WINDOW {
        return Err(SpdyError::FlowControl(format!(
            "initial window {value} too large"
        )));
    }
    if shared.config.peer_flow_control == PeerFlowControl::Auto {
        st.enforce_send_window = true;
    }
    // The change applies to the windows of open streams too.
    let delta = value - st.peer_initial_window;
    st.peer_initial_window = value;
    for s in st.streams.values_mut() {
        s.send_window += delta;
        if delta > 0 {
            s.wake();
        }
    }
    Ok(())
}

fn on_window_update(st: &mut State, shared: &Shared, id: u32, delta: u32) -> Result<(), SpdyError> {
    if shared.config.peer_flow_control == PeerFlowControl::Auto && !st.enforce_send_window {
        tracing::debug!("spdy peer keeps flow-control windows; enforcing them");
        st.enforce_send_window = true;
    }
    if delta == 0 {
        return Ok(());
    }
    let delta = i64::from(delta);
    if id == 0 {
        st.session_send_window += delta;
        if st.session_send_window > frame::MAX_WINDOW {
            return Err(SpdyError::FlowControl("session window above 2^31-1".into()));
        }
        st.wake_all();
        return Ok(());
    }
    let overflow = match st.streams.get_mut(&id) {
        Some(s) => {
            s.send_window += delta;
            if let Some(w) = s.write_waker.take() {
                w.wake();
            }
            s.send_window > frame::MAX_WINDOW
        }
        None => false,
    };
    if overflow {
        reset_stream(st, shared, id, rst::FLOW_CONTROL_ERROR)?;
    }
    Ok(())
}
