//! Docker system endpoints: ping, and the `docker version`/`docker info`
//! facts kept with the connection (see `DockerClient::facts`).

use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{SystemInfo, SystemVersion};

use super::{DockerClient, with_timeout};
use crate::error::{Error, Result};
use crate::mapping::info::{ApiVersion, MIN_API_VERSION};

/// What the daemon told us about itself when we connected. It changes only
/// when the daemon restarts, which is a reconnect.
#[derive(Debug)]
pub struct DaemonFacts {
    pub api: ApiVersion,
    pub version: Arc<SystemVersion>,
    pub info: Arc<SystemInfo>,
}

impl DockerClient {
    /// A liveness check under the short probe timeout, so that Status
    /// answers promptly even when the daemon hangs.
    pub async fn ping(&self) -> Result<()> {
        let probe = self.shared.timings.probe;
        self.call_within("ping docker", probe, |d| async move { d.ping().await })
            .await
            .map(|_| ())
    }

    /// `docker version` as of the last (re)connect: no call to Docker.
    pub async fn version(&self) -> Result<Arc<SystemVersion>> {
        Ok(self.facts().await?.version.clone())
    }

    /// `docker info` as of the last (re)connect or periodic refresh.
    pub async fn info(&self) -> Result<Arc<SystemInfo>> {
        Ok(self.facts().await?.info.clone())
    }
}

/// The API version the server speaks, refusing servers older than ours.
pub(super) async fn negotiate_api(probe: &Docker, timeout: Duration) -> Result<ApiVersion> {
    let version = with_timeout("docker version", timeout, probe.version()).await?;
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
    Ok(server)
}

pub(super) async fn fetch_facts(
    docker: &Docker,
    api: ApiVersion,
    timeout: Duration,
) -> Result<DaemonFacts> {
    let (version, info) = tokio::try_join!(
        with_timeout("docker version", timeout, docker.version()),
        with_timeout("docker info", timeout, docker.info()),
    )?;
    Ok(DaemonFacts {
        api,
        version: Arc::new(version),
        info: Arc::new(info),
    })
}
