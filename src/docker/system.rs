//! Docker system endpoints: ping, version, info.

use bollard::models::{SystemInfo, SystemVersion};

use super::DockerClient;
use crate::error::Result;

impl DockerClient {
    pub async fn ping(&self) -> Result<()> {
        self.call("ping docker", |d| async move { d.ping().await })
            .await
            .map(|_| ())
    }

    pub async fn version(&self) -> Result<SystemVersion> {
        self.call("docker version", |d| async move { d.version().await })
            .await
    }

    pub async fn info(&self) -> Result<SystemInfo> {
        self.call("docker info", |d| async move { d.info().await })
            .await
    }
}
