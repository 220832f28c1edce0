//! The writer task: the only code that writes to the connection. It
//! drains the session's queues in batches: control frames first, then due
//! WINDOW_UPDATEs, then data in write order.

use std::future::Future;
use std::io;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::compression::HeaderCompressor;
use super::frame::{self, Frame};
use super::session::{Out, Shared, State};

/// How much the writer gathers before one write to the connection: as much
/// as the session may queue (`write_queue_bytes`), so that a writer that
/// fell behind catches up in one syscall.
const WRITE_BATCH: usize = 256 << 10;

/// The writer task: the only code that writes to the connection.
pub(crate) async fn run<W: AsyncWrite + Unpin>(shared: Arc<Shared>, mut wr: W) {
    let mut compressor = match HeaderCompressor::new() {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!(error = %e, "spdy header compressor");
            None
        }
    };
    let mut buf = BytesMut::with_capacity(WRITE_BATCH);
    let mut written: Vec<(u32, usize)> = Vec::new();
    loop {
        let closing = {
            let mut st = shared.lock();
            gather(&mut st, &mut buf, &mut written, &mut compressor);
            st.closing
        };
        if buf.is_empty() {
            if let Err(e) = or_abort(&shared, wr.flush()).await {
                shared.lock().disconnected(format!("write: {e}"), &shared);
                break;
            }
            if closing {
                break;
            }
            shared.writer_wake.notified().await;
            continue;
        }
        if let Err(e) = or_abort(&shared, wr.write_all(&buf)).await {
            shared.lock().disconnected(format!("write: {e}"), &shared);
            break;
        }
        buf.clear();
        let mut st = shared.lock();
        for (id, n) in written.drain(..) {
            if let Some(s) = st.streams.get_mut(&id) {
                s.queued_out -= n.min(s.queued_out);
                if s.queued_out == 0
                    && let Some(w) = s.write_waker.take()
                {
                    w.wake();
                }
            }
            st.maybe_remove(id);
        }
    }
    let _ = or_abort(&shared, wr.shutdown()).await;
    let mut st = shared.lock();
    st.disconnected("session closed".to_string(), &shared);
    st.writer_done = true;
    drop(st);
    shared.done.notify_waiters();
}

/// Runs a write unless `Session::abort` cuts it short: a peer that stops
/// reading must not hold the task forever.
async fn or_abort(shared: &Shared, op: impl Future<Output = io::Result<()>>) -> io::Result<()> {
    tokio::select! {
        r = op => r,
        _ = shared.writer_abort.notified() => {
            // Keep the permit for the next write (the final shutdown).
            shared.writer_abort.notify_one();
            Err(io::Error::other("session aborted"))
        }
    }
}

/// Moves queued frames into `buf` under the lock: control frames first,
/// then due window updates, then ordered data, up to one batch.
fn gather(
    st: &mut State,
    buf: &mut BytesMut,
    written: &mut Vec<(u32, usize)>,
    compressor: &mut Option<HeaderCompressor>,
) {
    let encode = |f: &Frame, buf: &mut BytesMut| {
        if let Err(e) = f.encode(buf) {
            tracing::warn!(error = %e, "spdy frame not sent");
        }
    };
    while buf.len() < WRITE_BATCH {
        let Some(out) = st.control.pop_front() else {
            break;
        };
        match out {
            Out::Frame(f) => encode(&f, buf),
            Out::Reply { stream_id } => match compressor.as_mut().map(|c| c.compress(&[])) {
                Some(Ok(block)) => encode(
                    &Frame::SynReply {
                        flags: 0,
                        stream_id,
                        header_block: block.into(),
                    },
                    buf,
                ),
                _ => tracing::error!(stream_id, "spdy SYN_REPLY not compressed"),
            },
            Out::Data { .. } => {}
        }
    }
    if st.session_unacked >= frame::DEFAULT_WINDOW / 2 {
        let delta = take_delta(&mut st.session_unacked);
        encode(
            &Frame::WindowUpdate {
                stream_id: 0,
                delta,
            },
            buf,
        );
    }
    while let Some(id) = st.updates_due.pop_front() {
        if let Some(s) = st.streams.get_mut(&id) {
            s.update_queued = false;
            if s.unacked > 0 && !s.remote_fin && s.reset.is_none() {
                let delta = take_delta(&mut s.unacked);
                encode(
                    &Frame::WindowUpdate {
                        stream_id: id,
                        delta,
                    },
                    buf,
                );
            }
        }
    }
    let mut freed = false;
    while buf.len() < WRITE_BATCH {
        let Some(out) = st.ordered.pop_front() else {
            break;
        };
        match out {
            Out::Data {
                stream_id,
                data,
                fin,
            } => {
                st.ordered_bytes -= data.len();
                freed = true;
                written.push((stream_id, data.len()));
                let flags = if fin { frame::FLAG_FIN } else { 0 };
                encode(
                    &Frame::Data {
                        stream_id,
                        flags,
                        data,
                    },
                    buf,
                );
            }
            Out::Frame(f) => encode(&f, buf),
            Out::Reply { .. } => {}
        }
    }
    if freed {
        // Writers blocked on a full queue may go on.
        for s in st.streams.values_mut() {
            if let Some(w) = s.write_waker.take() {
                w.wake();
            }
        }
    }
}

/// Takes what a WINDOW_UPDATE can carry (31 bits) from an unacked count;
/// any rest goes out with a later update.
fn take_delta(unacked: &mut u32) -> u32 {
    let delta = (*unacked).min(frame::MAX_STREAM_ID);
    *unacked -= delta;
    delta
}
