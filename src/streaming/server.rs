//! The HTTP side: routes `/{exec,attach,portforward}/<token>`, consumes the
//! token, and dispatches on the upgrade the client asks for: WebSocket
//! (channel protocols, or SPDY tunnelled in it) or SPDY/3.1.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::remotecommand::Target;
use super::spdywire::{self, Version};
use super::tokens::TokenCache;
use super::transport::run_session;
use super::websocket::{self, StdioOptions, channel};
use super::{StreamRequest, portforward, remotecommand};
use crate::docker::DockerClient;

/// After the protocol ends, how long its last bytes get to reach the client.
const LINGER: Duration = Duration::from_secs(10);

type Body = Full<Bytes>;

pub struct StreamingServer {
    listener: tokio::net::TcpListener,
    state: Arc<State>,
}

struct State {
    tokens: Arc<TokenCache>,
    docker: Arc<DockerClient>,
    idle_timeout: Duration,
}

impl StreamingServer {
    pub(super) fn new(
        listener: tokio::net::TcpListener,
        tokens: Arc<TokenCache>,
        docker: Arc<DockerClient>,
        idle_timeout: Duration,
    ) -> Self {
        StreamingServer {
            listener,
            state: Arc::new(State {
                tokens,
                docker,
                idle_timeout,
            }),
        }
    }

    /// Accepts connections until the task is dropped.
    pub async fn run(self) {
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of fds, typically: back off instead of spinning.
                    tracing::warn!(%error, "streaming server accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            // As Go's net package does for kubelet's: a session's small
            // frames (a prompt, a status, a WINDOW_UPDATE) must not wait
            // for the ACK of the previous ones.
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%peer, %error, "streaming connection: TCP_NODELAY not set");
            }
            let state = self.state.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(route(state, req)) }
                });
                let conn = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades();
                if let Err(error) = conn.await {
                    tracing::debug!(%peer, %error, "streaming connection ended");
                }
            });
        }
    }
}

fn route(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let (Some(kind), Some(token)) = (parts.next(), parts.next()) else {
        return plain(StatusCode::NOT_FOUND, "not found");
    };
    if !matches!(kind, "exec" | "attach" | "portforward") {
        return plain(StatusCode::NOT_FOUND, "not found");
    }
    let Some(request) = state.tokens.consume(token) else {
        return plain(
            StatusCode::NOT_FOUND,
            "unknown, used or expired streaming token",
        );
    };
    if request.kind() != kind {
        return plain(
            StatusCode::NOT_FOUND,
            "token was minted for another operation",
        );
    }
    let upgrade = header_str(&req, header::UPGRADE).to_ascii_lowercase();
    if upgrade.contains("spdy/3.1") {
        return spdy_upgrade(state, req, request);
    }
    if upgrade != "websocket" {
        return plain(
            StatusCode::BAD_REQUEST,
            "expected an upgrade to websocket or SPDY/3.1",
        );
    }
    websocket_upgrade(state, req, request)
}

fn websocket_upgrade(
    state: Arc<State>,
    mut req: Request<Incoming>,
    request: StreamRequest,
) -> Response<Body> {
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY) else {
        return plain(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key");
    };
    let accept = derive_accept_key(key.as_bytes());
    let offered = channel::offered(
        req.headers()
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    let session: Session = match split(request) {
        Split::RemoteCommand(opts, target) => match channel::negotiate_remote_command(&offered) {
            Some(p) => Session::RemoteCommand(p, opts, target),
            None => return unsupported(&offered, &channel::remote_command_names()),
        },
        Split::PortForward { sandbox_id, .. }
            if offered
                .iter()
                .any(|p| p.eq_ignore_ascii_case(spdywire::TUNNEL_PORT_FORWARD)) =>
        {
            Session::Tunnel(sandbox_id)
        }
        Split::PortForward { sandbox_id, ports } => {
            let Some((name, encoding)) = channel::negotiate_port_forward(&offered) else {
                let mut accepted = channel::port_forward_names();
                accepted.push(spdywire::TUNNEL_PORT_FORWARD);
                return unsupported(&offered, &accepted);
            };
            let ports = if ports.is_empty() {
                query_ports(req.uri().query().unwrap_or(""))
            } else {
                ports
            };
            if ports.is_empty() || ports.len() > websocket::MAX_PORTS {
                return plain(
                    StatusCode::BAD_REQUEST,
                    "port-forward needs 1 to 64 ports (?port=N)",
                );
            }
            Session::PortForward(name, encoding, sandbox_id, ports)
        }
    };
    let protocol = session.protocol_name();
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(error) => {
                tracing::debug!(%error, "websocket upgrade failed");
                return;
            }
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        session.run(ws, &state).await;
    });
    let mut response = Response::new(Body::default());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if !protocol.is_empty() {
        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(protocol),
        );
    }
    response
}

/// A SPDY/3.1 upgrade, as kubelet's: the client offers versions in
/// `X-Stream-Protocol-Version` headers, the first one served wins, then the
/// session runs over the upgraded connection.
fn spdy_upgrade(
    state: Arc<State>,
    mut req: Request<Incoming>,
    request: StreamRequest,
) -> Response<Body> {
    let offered = channel::offered(
        req.headers()
            .get_all("x-stream-protocol-version")
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    let accepted: &[&'static str] = match request {
        StreamRequest::PortForward { .. } => &spdywire::PORT_FORWARD_PROTOCOLS,
        _ => &spdywire::REMOTE_COMMAND_PROTOCOLS,
    };
    let Some(chosen) = spdywire::negotiate(&offered, accepted) else {
        let mut response = plain(
            StatusCode::FORBIDDEN,
            &format!(
                "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, \
                 server accepts {accepted:?}"
            ),
        );
        for version in accepted {
            response.headers_mut().append(
                "x-accepted-stream-protocol-versions",
                HeaderValue::from_static(version),
            );
        }
        return response;
    };
    let job = match split(request) {
        Split::RemoteCommand(opts, target) => SpdyJob::RemoteCommand(chosen, opts, target),
        Split::PortForward { sandbox_id, .. } => SpdyJob::PortForward(sandbox_id),
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let _counted = state.docker.metrics().streaming_session();
                job.run(TokioIo::new(upgraded), &state).await;
            }
            Err(error) => tracing::debug!(%error, "spdy upgrade failed"),
        }
    });
    let mut response = Response::new(Body::default());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    headers.insert(
        "x-stream-protocol-version",
        HeaderValue::from_static(chosen),
    );
    response
}

/// A negotiated SPDY session, waiting for its connection.
enum SpdyJob {
    RemoteCommand(&'static str, StdioOptions, Target),
    PortForward(String),
}

impl SpdyJob {
    async fn run<IO>(self, io: IO, state: &State)
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        match self {
            SpdyJob::RemoteCommand(name, opts, target) => {
                let version = Version::from_name(name).unwrap_or(Version::V1);
                let Some((streams, driver)) =
                    spdywire::remote_command(io, version, opts, state.idle_timeout).await
                else {
                    return;
                };
                let protocol = remotecommand::serve(state.docker.clone(), target, streams);
                run_session(driver, protocol, LINGER).await;
            }
            SpdyJob::PortForward(sandbox_id) => {
                let pid = pause_pid(&state.docker, &sandbox_id).await;
                let (pairs, driver) = spdywire::port_forward(io, state.idle_timeout);
                run_session(driver, portforward::serve(pid, pairs), LINGER).await;
            }
        }
    }
}

enum Session {
    RemoteCommand(channel::RemoteCommandProtocol, StdioOptions, Target),
    PortForward(&'static str, channel::Encoding, String, Vec<u16>),
    /// client-go's SPDY session tunnelled in binary WebSocket messages.
    Tunnel(String),
}

impl Session {
    fn protocol_name(&self) -> &'static str {
        match self {
            Session::RemoteCommand(p, ..) => p.name,
            Session::PortForward(name, ..) => name,
            Session::Tunnel(_) => spdywire::TUNNEL_PORT_FORWARD,
        }
    }

    async fn run<S>(self, ws: WebSocketStream<S>, state: &State)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let _counted = state.docker.metrics().streaming_session();
        match self {
            Session::RemoteCommand(protocol, opts, target) => {
                let (streams, driver) =
                    websocket::remote_command(ws, protocol, opts, state.idle_timeout);
                let protocol = remotecommand::serve(state.docker.clone(), target, streams);
                run_session(driver, protocol, LINGER).await;
            }
            Session::PortForward(_, encoding, sandbox_id, ports) => {
                let pid = pause_pid(&state.docker, &sandbox_id).await;
                let (pairs, driver) =
                    websocket::port_forward(ws, encoding, &ports, state.idle_timeout);
                run_session(driver, portforward::serve(pid, pairs), LINGER).await;
            }
            Session::Tunnel(sandbox_id) => {
                let io = spdywire::tunnel::bridge(ws);
                SpdyJob::PortForward(sandbox_id).run(io, state).await;
            }
        }
    }
}

/// The pause process whose network namespace is the pod's.
async fn pause_pid(docker: &DockerClient, sandbox_id: &str) -> Result<i32, String> {
    match docker.inspect_container(sandbox_id).await {
        Ok(Some(c)) => c
            .state
            .and_then(|s| s.pid)
            .and_then(|p| i32::try_from(p).ok())
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("pod sandbox {sandbox_id} is not running")),
        Ok(None) => Err(format!("pod sandbox {sandbox_id} not found")),
        Err(e) => Err(e.to_string()),
    }
}

fn query_ports(query: &str) -> Vec<u16> {
    query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("port="))
        .filter_map(|v| v.parse::<u16>().ok())
        .filter(|p| *p > 0)
        .collect()
}

/// No offered WebSocket subprotocol is served: 403, as kubelet's WebSocket
/// handshake answers, naming what is (in the body and, as for SPDY, in
/// `X-Accepted-Stream-Protocol-Versions`).
fn unsupported(offered: &[String], accepted: &[&'static str]) -> Response<Body> {
    let spdy = offered
        .iter()
        .any(|p| p.to_ascii_lowercase().contains("spdy"));
    if spdy {
        return plain(
            StatusCode::NOT_IMPLEMENTED,
            "SPDY over WebSocket is served for port-forward only (SPDY/3.1+portforward.k8s.io)",
        );
    }
    let mut response = plain(
        StatusCode::FORBIDDEN,
        &format!(
            "unable to upgrade: none of the offered subprotocols {offered:?} is supported; \
             server accepts {accepted:?}"
        ),
    );
    for name in accepted {
        response.headers_mut().append(
            "x-accepted-stream-protocol-versions",
            HeaderValue::from_static(name),
        );
    }
    response
}

fn header_str(req: &Request<Incoming>, name: header::HeaderName) -> String {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

fn plain(status: StatusCode, message: &str) -> Response<Body> {
    let mut response = Response::new(Body::new(Bytes::from(format!("{message}\n"))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A request as the transports need it: exec and attach are both a remote
/// command (stdio options and what to run or attach to).
enum Split {
    RemoteCommand(StdioOptions, Target),
    PortForward { sandbox_id: String, ports: Vec<u16> },
}

fn split(request: StreamRequest) -> Split {
    match request {
        StreamRequest::Exec {
            container_id,
            cmd,
            tty,
            stdin,
            stdout,
            stderr,
        } => Split::RemoteCommand(
            StdioOptions {
                stdin,
                stdout,
                stderr,
                tty,
            },
            Target::Exec {
                container_id,
                cmd,
                tty,
            },
        ),
        StreamRequest::Attach {
            container_id,
            tty,
            stdin,
            stdout,
            stderr,
        } => Split::RemoteCommand(
            StdioOptions {
                stdin,
                stdout,
                stderr,
                tty,
            },
            Target::Attach { container_id, tty },
        ),
        StreamRequest::PortForward { sandbox_id, ports } => {
            Split::PortForward { sandbox_id, ports }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_from_the_query() {
        assert_eq!(
            query_ports("port=80&port=8080&x=1&port=0&port=z"),
            vec![80, 8080]
        );
        assert!(query_ports("").is_empty());
    }
}
