//! The streaming server for exec, attach and port-forward: HTTP with single-use tokens, WebSocket channel protocols, the remote-command and port-forward protocols over a transport seam, and Docker exec/attach underneath.

mod netns;
mod portforward;
mod remotecommand;
mod server;
pub mod spdy;
pub mod status;
pub mod tokens;
pub mod transport;
pub mod websocket;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::docker::DockerClient;
use crate::error::{Error, Result};
use tokens::TokenCache;

pub use remotecommand::{TerminalSize, parse_sizes};
pub use server::StreamingServer;

/// A validated Exec, Attach or PortForward request, waiting for its client.
#[derive(Debug, Clone)]
pub enum StreamRequest {
    Exec {
        container_id: String,
        cmd: Vec<String>,
        tty: bool,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    Attach {
        container_id: String,
        tty: bool,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    PortForward {
        /// The sandbox's pause container.
        sandbox_id: String,
        /// Empty: the client names them (`?port=` in the URL).
        ports: Vec<u16>,
    },
}

impl StreamRequest {
    /// The URL path segment of this kind of request.
    pub fn kind(&self) -> &'static str {
        match self {
            StreamRequest::Exec { .. } => "exec",
            StreamRequest::Attach { .. } => "attach",
            StreamRequest::PortForward { .. } => "portforward",
        }
    }
}

/// The runtime's handle: mints URLs for validated requests.
pub struct Streaming {
    tokens: Arc<TokenCache>,
    base_url: String,
}

impl Streaming {
    /// `http://<addr>:<port>/<kind>/<token>`, good once, for a minute.
    pub fn mint(&self, request: StreamRequest) -> Result<String> {
        let kind = request.kind();
        let token = self.tokens.insert(request)?;
        Ok(format!("{}/{kind}/{token}", self.base_url))
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }
}

/// Binds the streaming listener; the URLs carry the port actually bound.
/// A wildcard address is advertised as loopback: kubelet dials it locally.
pub async fn bind(
    addr: SocketAddr,
    docker: Arc<DockerClient>,
    idle_timeout: Duration,
) -> Result<(Arc<Streaming>, StreamingServer)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::internal(format!("streaming server cannot bind {addr}: {e}")))?;
    let mut local = listener
        .local_addr()
        .map_err(|e| Error::internal(format!("streaming server address: {e}")))?;
    if local.ip().is_unspecified() {
        local.set_ip(match local.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    let tokens = Arc::new(TokenCache::default());
    let streaming = Arc::new(Streaming {
        tokens: tokens.clone(),
        base_url: format!("http://{local}"),
    });
    let server = StreamingServer::new(listener, tokens, docker, idle_timeout);
    Ok((streaming, server))
}
