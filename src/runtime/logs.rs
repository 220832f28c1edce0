//! The container-log hooks of the CRI operations: the file before a start,
//! the writer after it, ReopenContainerLog, the drain before EXITED is
//! reported, removal, and writers for containers found at startup. The
//! writing itself is `crate::logs`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::models::{ContainerCreateBody, ContainerSummaryStateEnum};

use crate::docker::logs::RunState;
use crate::error::{Error, Result};
use crate::logs::Found;
use crate::mapping::labels;
use crate::runtime::Runtime;
use crate::runtime::container::container_filter;

/// How long ContainerStatus waits for an exited container's last lines to
/// reach its log file (kubelet reads the termination message from it
/// right after). Normally milliseconds.
const DRAIN_BOUND: Duration = Duration::from_secs(2);
const STARTUP_RETRY: Duration = Duration::from_secs(5);

impl Runtime {
    /// Docker's side of the log: json-file with the configured buffer.
    pub(crate) fn set_docker_log_config(&self, body: &mut ContainerCreateBody) {
        let config = crate::mapping::logs::docker_log_config(
            &self.config.docker_log_max_size,
            self.config.docker_log_max_file,
        );
        body.host_config
            .get_or_insert_with(Default::default)
            .log_config = Some(config);
    }

    /// Creates the log file of a container about to start (an empty file
    /// is there once StartContainer returns). `None`: it has no log path.
    pub(crate) async fn create_container_log(
        &self,
        id: &str,
        docker_labels: Option<&HashMap<String, String>>,
    ) -> Result<Option<PathBuf>> {
        let Some(path) = log_path_of(docker_labels) else {
            return Ok(None);
        };
        self.logs.create_file(id, &path).await?;
        Ok(Some(path))
    }

    /// Starts copying a started container's output into its log file.
    pub(crate) async fn follow_container_log(&self, id: &str, path: &Path) {
        if let Err(e) = self.logs.attach(id, path).await {
            tracing::warn!(container = id, error = %e, "cannot write the container log");
        }
    }

    pub async fn reopen_container_log(&self, id: &str) -> Result<()> {
        let inspect = self.inspect_managed_container(id).await?;
        let id = inspect.id.clone().unwrap_or_default();
        if inspect.state.as_ref().and_then(|s| s.running) != Some(true) {
            return Err(Error::FailedPrecondition(format!(
                "container {id} is not running; only a running container's log can be reopened"
            )));
        }
        let path = log_path_of(inspect.config.as_ref().and_then(|c| c.labels.as_ref()))
            .ok_or_else(|| Error::FailedPrecondition(format!("container {id} has no log path")))?;
        self.logs.reopen(&id, &path).await
    }

    /// For an exited container: waits (bounded) until its writer has
    /// written everything Docker holds.
    pub(crate) async fn drain_container_log(&self, id: &str) {
        self.logs.wait_drained(id, DRAIN_BOUND).await;
    }

    /// After the Docker container is gone: its writer, saved state and (when
    /// its labels are at hand) log file go too. A failure is only logged:
    /// the container is already removed.
    pub(crate) async fn forget_container_log(
        &self,
        id: &str,
        docker_labels: Option<&HashMap<String, String>>,
    ) {
        let path = log_path_of(docker_labels);
        if let Err(e) = self.logs.forget(id, path.as_deref()).await {
            tracing::warn!(container = id, error = %e, "container log not removed");
        }
    }

    /// Writers for the containers docker-cri finds at startup (running, or
    /// exited with lines not yet copied). Waits for Docker if it is down.
    pub async fn resume_container_logs(&self) {
        let mut warned = false;
        let list = loop {
            match self.docker().list_containers(&container_filter()).await {
                Ok(list) => break list,
                Err(e) => {
                    if !warned {
                        tracing::warn!(error = %e, "cannot list containers to resume their logs; retrying");
                        warned = true;
                    }
                    tokio::time::sleep(STARTUP_RETRY).await;
                }
            }
        };
        let found = list
            .into_iter()
            .filter_map(|c| {
                let log_path = log_path_of(c.labels.as_ref())?;
                use ContainerSummaryStateEnum as S;
                let (state, started) = match c.state {
                    Some(S::RUNNING | S::PAUSED | S::RESTARTING) => (RunState::Running, true),
                    Some(S::EXITED | S::DEAD | S::REMOVING) => (RunState::Stopped, true),
                    _ => (RunState::Stopped, false),
                };
                Some(Found {
                    id: c.id?,
                    log_path,
                    state,
                    started,
                })
            })
            .collect();
        self.logs.recover(found).await;
    }
}

fn log_path_of(docker_labels: Option<&HashMap<String, String>>) -> Option<PathBuf> {
    docker_labels?
        .get(labels::LOG_PATH)
        .filter(|p| Path::new(p).is_absolute())
        .map(PathBuf::from)
}

impl Runtime {
    /// Wakes a container's log follower as soon as the index sees the
    /// container stop, so it finishes without polling Docker. Runs for the
    /// life of the process.
    pub async fn wake_log_followers_on_stop(&self) {
        use tokio::sync::broadcast::error::RecvError;
        let mut stops = self.index.subscribe_stops();
        loop {
            match stops.recv().await {
                Ok(id) => self.logs.container_stopped(&id),
                // Missed stops are caught by the followers' own checks.
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
        }
    }
}
