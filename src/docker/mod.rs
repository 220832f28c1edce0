//! The Docker Engine client: a lazily connected, version-negotiated bollard
//! handle with a per-call timeout. Nothing in here knows about gRPC.

pub mod containers;
mod error;
pub mod images;
pub mod system;
pub mod view;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::{ClientVersion, Docker};
use tokio::sync::RwLock;

use crate::error::{Error, Result};
use crate::mapping::info::{ApiVersion, MIN_API_VERSION};

pub use error::from_bollard;

/// bollard's own timeout only covers the response head; our per-call timeout
/// wraps whole calls, so bollard's is set out of the way (pulls may stream for
/// a long time).
const BOLLARD_HEAD_TIMEOUT_SECS: u64 = 24 * 3600;

/// The newest API bollard knows. We never ask for more than this.
fn client_max_version() -> ApiVersion {
    let v = bollard::API_DEFAULT_VERSION;
    ApiVersion(v.major_version as u32, v.minor_version as u32)
}

#[derive(Clone)]
struct Connection {
    docker: Docker,
    api: ApiVersion,
}

pub struct DockerClient {
    socket: PathBuf,
    call_timeout: Duration,
    conn: RwLock<Option<Connection>>,
}

impl DockerClient {
    /// Does not touch the daemon: docker-cri must start (and report "not
    /// ready") while Docker is down.
    pub fn new(socket: &Path, call_timeout: Duration) -> Self {
        DockerClient {
            socket: socket.to_path_buf(),
            call_timeout,
            conn: RwLock::new(None),
        }
    }

    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    /// The negotiated API version, connecting first if needed.
    pub async fn api_version(&self) -> Result<ApiVersion> {
        Ok(self.connection().await?.api)
    }

    async fn connection(&self) -> Result<Connection> {
        if let Some(c) = self.conn.read().await.as_ref() {
            return Ok(c.clone());
        }
        let mut slot = self.conn.write().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let conn = self.negotiate().await?;
        tracing::info!(api = %conn.api, socket = %self.socket.display(), "connected to docker");
        *slot = Some(conn.clone());
        Ok(conn)
    }

    async fn negotiate(&self) -> Result<Connection> {
        let probe = self.connect(MIN_API_VERSION)?;
        let version = with_timeout("docker version", self.call_timeout, probe.version()).await?;
        let server = version
            .api_version
            .as_deref()
            .and_then(ApiVersion::parse)
            .ok_or_else(|| Error::internal("docker version: no parsable ApiVersion"))?;
        if server < MIN_API_VERSION {
            return Err(Error::DockerTooOld(format!(
                "Docker {} speaks API {server}; docker-cri needs API {MIN_API_VERSION} \
                 (Docker 20.10) or newer",
                version.version.as_deref().unwrap_or("?"),
            )));
        }
        let api = server.min(client_max_version());
        Ok(Connection {
            docker: self.connect(api)?,
            api,
        })
    }

    fn connect(&self, api: ApiVersion) -> Result<Docker> {
        let path = self.socket.to_string_lossy();
        let version = ClientVersion {
            major_version: api.0 as usize,
            minor_version: api.1 as usize,
        };
        Docker::connect_with_unix(&path, BOLLARD_HEAD_TIMEOUT_SECS, &version).map_err(from_bollard)
    }

    /// Runs one non-streaming Docker call under the per-call timeout.
    pub async fn call<T, F, Fut>(&self, what: &str, f: F) -> Result<T>
    where
        F: FnOnce(Docker) -> Fut,
        Fut: Future<Output = Result<T, bollard::errors::Error>>,
    {
        let docker = self.handle().await?;
        let result = with_timeout(what, self.call_timeout, f(docker)).await;
        if let Err(e) = &result {
            self.note_error(e).await;
        }
        result
    }

    /// A handle for streaming calls (pull, build) that manage time themselves.
    pub async fn handle(&self) -> Result<Docker> {
        Ok(self.connection().await?.docker)
    }

    /// After Docker went away, renegotiate next time: it may come back as a
    /// different version.
    pub async fn note_error(&self, error: &Error) {
        if matches!(error, Error::DockerUnavailable(_)) {
            *self.conn.write().await = None;
        }
    }
}

async fn with_timeout<T>(
    what: &str,
    after: Duration,
    fut: impl Future<Output = Result<T, bollard::errors::Error>>,
) -> Result<T> {
    match tokio::time::timeout(after, fut).await {
        Ok(r) => r.map_err(|e| from_bollard(e).context(what)),
        Err(_) => Err(Error::DeadlineExceeded {
            what: what.to_string(),
            after,
        }),
    }
}
