//! Kubernetes' WebSocket channel protocols: remote-command (exec/attach)
//! and port-forward sessions over one WebSocket each.

pub mod channel;
pub mod conn;
mod pipe;

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;

use self::channel::{Encoding, RemoteCommandProtocol};
use self::conn::{ChannelSetup, open};
use super::transport::{Driver, PortStreamSource, PortStreams, RemoteCommandStreams, StatusFormat};

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;

/// What the client asked to see of the process.
#[derive(Debug, Clone, Copy, Default)]
pub struct StdioOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// Channels as kubelet lays them out: 0 stdin, 1 stdout, 2 stderr, 3 error,
/// 4 resize; channels not asked for are ignored.
pub fn remote_command<S>(
    ws: WebSocketStream<S>,
    protocol: RemoteCommandProtocol,
    opts: StdioOptions,
    idle_timeout: Duration,
) -> (RemoteCommandStreams, Driver)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut readable = Vec::new();
    let mut writable = vec![ERROR];
    if opts.stdin {
        readable.push(STDIN);
    }
    if opts.tty {
        readable.push(RESIZE);
    }
    if opts.stdout {
        writable.push(STDOUT);
    }
    if opts.stderr {
        writable.push(STDERR);
    }
    // An empty message on the lowest writable channel tells the client the
    // session is up.
    let ready = if opts.stdout {
        STDOUT
    } else if opts.stderr {
        STDERR
    } else {
        ERROR
    };
    let mut channels = open(
        ws,
        ChannelSetup {
            encoding: protocol.encoding,
            close_signal: protocol.close_signal,
            readable,
            writable,
            initial: vec![(ready, Bytes::new())],
            idle_timeout,
        },
    );
    // `open` makes a writer for every writable channel; the sink is never used.
    let error = channels
        .writers
        .remove(&ERROR)
        .unwrap_or_else(|| Box::pin(tokio::io::sink()));
    let streams = RemoteCommandStreams {
        stdin: channels.readers.remove(&STDIN),
        stdout: channels.writers.remove(&STDOUT),
        stderr: channels.writers.remove(&STDERR),
        resize: channels.readers.remove(&RESIZE),
        error,
        status_format: if protocol.json_status {
            StatusFormat::Json
        } else {
            StatusFormat::Text
        },
    };
    (streams, channels.driver)
}

/// Channel numbers are bytes: at most this many ports per session.
pub const MAX_PORTS: usize = 64;

/// Per port i: data channel 2i (both ways), error channel 2i+1; each
/// starts with the port number (little-endian u16), as kubelet sends.
pub fn port_forward<S>(
    ws: WebSocketStream<S>,
    encoding: Encoding,
    ports: &[u16],
    idle_timeout: Duration,
) -> (PortStreamSource, Driver)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut readable = Vec::new();
    let mut writable = Vec::new();
    let mut initial = Vec::new();
    let ports = &ports[..ports.len().min(MAX_PORTS)];
    for (i, port) in ports.iter().enumerate() {
        let (data, error) = ((2 * i) as u8, (2 * i + 1) as u8);
        readable.push(data);
        writable.extend([data, error]);
        let prefix = Bytes::copy_from_slice(&port.to_le_bytes());
        initial.extend([(data, prefix.clone()), (error, prefix)]);
    }
    let mut channels = open(
        ws,
        ChannelSetup {
            encoding,
            close_signal: false,
            readable,
            writable,
            initial,
            idle_timeout,
        },
    );
    let (tx, rx) = mpsc::channel(ports.len().max(1));
    for (i, port) in ports.iter().enumerate() {
        let (data, error) = ((2 * i) as u8, (2 * i + 1) as u8);
        if let (Some(data_in), Some(data_out), Some(error)) = (
            channels.readers.remove(&data),
            channels.writers.remove(&data),
            channels.writers.remove(&error),
        ) {
            let _ = tx.try_send(PortStreams {
                port: *port,
                data_in,
                data_out,
                error,
            });
        }
    }
    (rx, channels.driver)
}
