//! The seam between transports (WebSocket today, SPDY later) and the
//! remote-command and port-forward protocols: a transport hands a protocol
//! named byte streams and a driver future; the protocol never sees frames.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

pub use super::status::StatusFormat;

/// Bytes from the client (its stdin, resize events, forwarded data).
/// EOF means the client closed that stream.
pub type BoxRead = Pin<Box<dyn AsyncRead + Send>>;
/// Bytes to the client. Dropping or shutting it down closes that stream.
pub type BoxWrite = Pin<Box<dyn AsyncWrite + Send>>;

/// Runs a transport's I/O. It resolves when the client is gone (closed,
/// vanished, idle too long) or when every `BoxWrite` it handed out was
/// dropped and all their bytes were delivered.
pub type Driver = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The streams of an exec or attach session, as the client asked for them.
pub struct RemoteCommandStreams {
    pub stdin: Option<BoxRead>,
    pub stdout: Option<BoxWrite>,
    pub stderr: Option<BoxWrite>,
    /// A stream of JSON `{"Width":w,"Height":h}` objects; only with a TTY.
    pub resize: Option<BoxRead>,
    /// Where the outcome goes, in `status_format`.
    pub error: BoxWrite,
    pub status_format: StatusFormat,
}

/// One forwarded connection: the client's data both ways, and an error
/// stream for why the port could not be reached.
pub struct PortStreams {
    pub port: u16,
    pub data_in: BoxRead,
    pub data_out: BoxWrite,
    pub error: BoxWrite,
}

/// Port-forward connections as the client opens them. A WebSocket session
/// opens one per requested port up front; SPDY opens them on demand.
pub type PortStreamSource = mpsc::Receiver<PortStreams>;

/// Runs `protocol` beside the transport's driver. A client that goes away
/// cancels the protocol (freeing its Docker connection and tasks); a
/// protocol that finishes gets `linger` for its last bytes to reach the
/// client.
pub async fn run_session(mut driver: Driver, protocol: impl Future<Output = ()>, linger: Duration) {
    tokio::select! {
        () = &mut driver => return,
        () = protocol => {}
    }
    if tokio::time::timeout(linger, driver).await.is_err() {
        tracing::debug!("client did not take the session's last bytes in time");
    }
}
