//! `docker-cri pause-image`: build the configured pod infra image offline.

use std::sync::Arc;

use crate::config::Config;
use crate::error::Result;
use crate::runtime::Runtime;

/// Builds the pause image (or, with `if_missing`, only when Docker does not
/// have it) and returns its image ID. Waits for Docker to come up first, so
/// a unit's ExecStartPre works while dockerd is still starting.
pub async fn pause_image(config: Config, tag: Option<&str>, if_missing: bool) -> Result<String> {
    let runtime = Runtime::new(Arc::new(config))?;
    let docker = runtime.docker();
    docker.wait_connected(docker.call_timeout()).await?;
    if if_missing && let Some(id) = runtime.pause_image_id(tag).await? {
        return Ok(id);
    }
    runtime.build_pause_image(tag).await
}
