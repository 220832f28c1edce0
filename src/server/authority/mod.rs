//! Accepts any `:authority` on the UNIX socket.
//!
//! gRPC C-core (Python, C++, Ruby), grpc-java and grpc-swift send the socket
//! path (`/run/x.sock`, or `%2Frun%2Fx.sock`) as `:authority` on UNIX
//! sockets. h2 turns `:authority` into an `http::uri::Authority` before the
//! request reaches tonic and resets the stream with PROTOCOL_ERROR when that
//! fails; neither h2, hyper nor tonic has a setting to relax it. On a UNIX
//! socket the authority means nothing, so each accepted connection is
//! wrapped in [`AnyAuthority`], which rewrites such values to `localhost` in
//! the client's header blocks before h2 reads them. The server→client
//! direction is untouched.

mod frames;
mod hpack;
mod huffman;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

use frames::Rewriter;

/// The accepted connections, each wrapped in [`AnyAuthority`].
pub fn wrap<IO>(
    incoming: impl Stream<Item = io::Result<IO>>,
) -> impl Stream<Item = io::Result<AnyAuthority<IO>>> {
    incoming.map(|conn| conn.map(AnyAuthority::new))
}

/// A server-side connection whose reads have unparseable `:authority`
/// values replaced. Bytes outside header blocks are read straight into the
/// caller's buffer; only header frames are copied and decoded.
pub struct AnyAuthority<IO> {
    io: IO,
    rewriter: Rewriter,
    /// Received bytes from the start of a header frame (or of a frame
    /// header cut short by a read), not yet processed.
    pending: Vec<u8>,
    /// Processed bytes not yet handed to the reader, from `out_pos`.
    out: Vec<u8>,
    out_pos: usize,
    /// Set once the client sent malformed HTTP/2; every later read fails.
    failed: bool,
}

impl<IO> AnyAuthority<IO> {
    pub fn new(io: IO) -> Self {
        AnyAuthority {
            io,
            rewriter: Rewriter::default(),
            pending: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            failed: false,
        }
    }

    fn fail(&mut self, e: crate::error::Error) -> io::Error {
        tracing::debug!(error = %e, "closing a connection that sent malformed HTTP/2");
        self.failed = true;
        io::Error::new(io::ErrorKind::InvalidData, e.to_string())
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for AnyAuthority<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.failed {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "malformed HTTP/2 from client",
                )));
            }
            if this.out_pos < this.out.len() {
                let n = buf.remaining().min(this.out.len() - this.out_pos);
                buf.put_slice(&this.out[this.out_pos..this.out_pos + n]);
                this.out_pos += n;
                if this.out_pos == this.out.len() {
                    this.out.clear();
                    this.out_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if !this.pending.is_empty() {
                let consumed = match this.rewriter.process(&this.pending, &mut this.out) {
                    Ok(n) => n,
                    Err(e) => return Poll::Ready(Err(this.fail(e))),
                };
                this.pending.drain(..consumed);
                if consumed > 0 {
                    continue;
                }
                // A partial frame: read more behind it.
                let mut chunk = [0u8; 8192];
                let mut chunk_buf = ReadBuf::new(&mut chunk);
                ready!(Pin::new(&mut this.io).poll_read(cx, &mut chunk_buf))?;
                if chunk_buf.filled().is_empty() {
                    // EOF inside a frame: the server sees the end of stream.
                    return Poll::Ready(Ok(()));
                }
                this.pending.extend_from_slice(chunk_buf.filled());
                continue;
            }
            // Fast path: read into the caller's buffer, keep what passes
            // unchanged, and take back what starts a header frame.
            let start = buf.filled().len();
            ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
            let fresh = &buf.filled()[start..];
            if fresh.is_empty() {
                return Poll::Ready(Ok(()));
            }
            let pass = match this.rewriter.pass_len(fresh) {
                Ok(n) => n,
                Err(e) => {
                    buf.set_filled(start);
                    return Poll::Ready(Err(this.fail(e)));
                }
            };
            if pass < fresh.len() {
                this.pending.extend_from_slice(&fresh[pass..]);
                buf.set_filled(start + pass);
            }
            if pass > 0 {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for AnyAuthority<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl<IO: Connected> Connected for AnyAuthority<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

#[cfg(test)]
mod tests;
