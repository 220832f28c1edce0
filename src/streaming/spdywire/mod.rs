//! Kubernetes' streaming protocols over SPDY/3.1: the stream types client-go
//! opens (`streamtype` headers) turned into the transport seam's named
//! streams, with the same idle timeout and client-vanish handling as the
//! WebSocket transport.

mod exec;
mod pairs;
pub mod tunnel;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

use super::spdy::{Session, SessionConfig, Stream};
use super::transport::Driver;

pub use exec::remote_command;
pub use pairs::port_forward;

/// As kubelet's streamCreationTimeout: how long a client gets to open the
/// streams a request needs (exec/attach) or a pair's second half.
pub const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Exec/attach versions over SPDY, newest first. v5 only adds the
/// WebSocket close signal; SPDY closes a stream by itself, so over SPDY v5
/// is v4 (as client-go's SPDY executor treats it).
pub const REMOTE_COMMAND_PROTOCOLS: [&str; 5] = [
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];

pub const PORT_FORWARD_PROTOCOLS: [&str; 1] = ["portforward.k8s.io"];

/// The WebSocket subprotocol client-go's port-forward dialer offers when it
/// tunnels a SPDY session in binary WebSocket messages.
pub const TUNNEL_PORT_FORWARD: &str = "SPDY/3.1+portforward.k8s.io";

/// Remote-command protocol versions and what sets them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    V1,
    V2,
    V3,
    V4,
    V5,
}

impl Version {
    pub fn from_name(name: &str) -> Option<Version> {
        match name {
            "v5.channel.k8s.io" => Some(Version::V5),
            "v4.channel.k8s.io" => Some(Version::V4),
            "v3.channel.k8s.io" => Some(Version::V3),
            "v2.channel.k8s.io" => Some(Version::V2),
            "channel.k8s.io" => Some(Version::V1),
            _ => None,
        }
    }
}

/// As kubelet's httpstream handshake: the first version in the client's
/// order that the server accepts.
pub fn negotiate(offered: &[String], accepted: &[&'static str]) -> Option<&'static str> {
    offered
        .iter()
        .find_map(|o| accepted.iter().find(|a| **a == o.as_str()).copied())
}

/// When the connection last carried bytes, for the idle timeout.
#[derive(Clone)]
struct Activity {
    started: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Self {
        Activity {
            started: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    fn touch(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(now, Ordering::Relaxed);
    }

    /// Resolves once `timeout` passes without traffic.
    async fn idle(&self, timeout: Duration) {
        loop {
            let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let since = self.started.elapsed().saturating_sub(last);
            if since >= timeout {
                tracing::info!(?timeout, "spdy streaming session idle; closing");
                return;
            }
            tokio::time::sleep(timeout - since).await;
        }
    }
}

/// The connection, noting each transfer in `Activity`.
struct Watched<IO> {
    io: IO,
    activity: Activity,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Starts the server session on `io` with its activity watched.
fn start<IO>(io: IO) -> (Session, super::spdy::Incoming, Activity)
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let activity = Activity::new();
    let watched = Watched {
        io,
        activity: activity.clone(),
    };
    let (session, incoming) = Session::server(watched, SessionConfig::default());
    (session, incoming, activity)
}

/// A stream handed to a protocol; the driver learns when all are dropped
/// (each holds a sender of a channel nobody sends on).
struct Tracked {
    stream: Stream,
    _alive: mpsc::Sender<()>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Aborts the session if the driver is dropped before it ended cleanly
/// (run_session's linger ran out): a client that does not read must not
/// hold the connection.
struct AbortOnDrop(Option<Session>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(session) = self.0.take() {
            session.abort();
        }
    }
}

/// The driver: ends when the connection is gone, when it idles for
/// `idle_timeout` (aborting it), or once every tracked stream is dropped
/// (closing it gracefully after the queued data). `streams` serves the
/// client's further streams meanwhile and may return when they end.
fn driver(
    session: Session,
    activity: Activity,
    idle_timeout: Duration,
    mut handles: mpsc::Receiver<()>,
    streams: impl Future<Output = ()> + Send + 'static,
) -> Driver {
    Box::pin(async move {
        let mut guard = AbortOnDrop(Some(session.clone()));
        let streams = async {
            streams.await;
            std::future::pending::<()>().await
        };
        tokio::select! {
            () = session.closed() => {}
            () = activity.idle(idle_timeout) => session.abort(),
            () = streams => {}
            None = handles.recv() => {
                session.close();
                session.closed().await;
            }
        }
        guard.0 = None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn client_order_wins() {
        let offered = owned(&[
            "v9.channel.k8s.io",
            "v3.channel.k8s.io",
            "v4.channel.k8s.io",
        ]);
        assert_eq!(
            negotiate(&offered, &REMOTE_COMMAND_PROTOCOLS),
            Some("v3.channel.k8s.io")
        );
        assert_eq!(
            negotiate(&owned(&["v5.channel.k8s.io"]), &REMOTE_COMMAND_PROTOCOLS),
            Some("v5.channel.k8s.io")
        );
        assert_eq!(
            negotiate(&owned(&["v9.channel.k8s.io"]), &REMOTE_COMMAND_PROTOCOLS),
            None
        );
        assert_eq!(negotiate(&[], &PORT_FORWARD_PROTOCOLS), None);
    }

    #[test]
    fn versions_by_name() {
        assert_eq!(Version::from_name("channel.k8s.io"), Some(Version::V1));
        assert!(Version::from_name("v4.channel.k8s.io") > Version::from_name("v3.channel.k8s.io"));
        assert!(Version::from_name("v5.channel.k8s.io") > Version::from_name("v4.channel.k8s.io"));
        assert_eq!(Version::from_name("portforward.k8s.io"), None);
    }
}
