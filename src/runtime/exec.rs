//! Exec: validates the request and mints a streaming URL. Also the check
//! shared by ExecSync, Exec and Attach: a managed container, running.

use super::Runtime;
use crate::error::{Error, Result};
use crate::streaming::StreamRequest;

/// A running container docker-cri manages.
pub(crate) struct RunningContainer {
    pub id: String,
    /// Its init process on the host.
    pub pid: i32,
}

/// What a streaming request asks of the process's stdio.
#[derive(Debug, Clone, Copy)]
pub struct Stdio {
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

impl Stdio {
    /// As the CRI says: at least one stream, and no stderr with a TTY
    /// (a terminal has only one output).
    pub(crate) fn validate(&self) -> Result<()> {
        if !(self.stdin || self.stdout || self.stderr) {
            return Err(Error::invalid(
                "one of stdin, stdout and stderr must be requested",
            ));
        }
        if self.tty && self.stderr {
            return Err(Error::invalid(
                "tty and stderr cannot both be true: a terminal merges its output",
            ));
        }
        Ok(())
    }
}

impl Runtime {
    /// The container, if docker-cri manages it and it is running. Foreign
    /// containers are NotFound; stopped ones FailedPrecondition.
    pub(crate) async fn running_container(&self, id: &str) -> Result<RunningContainer> {
        let inspect = self.inspect_managed_container(id).await?;
        let state = inspect.state.as_ref();
        let running = state.and_then(|s| s.running).unwrap_or(false);
        let pid = state
            .and_then(|s| s.pid)
            .and_then(|p| i32::try_from(p).ok())
            .unwrap_or(0);
        if !running || pid <= 0 {
            let status = state
                .and_then(|s| s.status)
                .map(|s| s.to_string())
                .unwrap_or_else(|| "unknown".into());
            return Err(Error::FailedPrecondition(format!(
                "container {id} is not running (state {status})"
            )));
        }
        Ok(RunningContainer {
            id: inspect.id.unwrap_or_else(|| id.to_string()),
            pid,
        })
    }

    pub(crate) fn mint_stream_url(&self, request: StreamRequest) -> Result<String> {
        self.streaming
            .get()
            .ok_or_else(|| Error::Unimplemented("the streaming server is not running".into()))?
            .mint(request)
    }

    pub async fn exec(&self, container_id: &str, cmd: Vec<String>, stdio: Stdio) -> Result<String> {
        if cmd.is_empty() {
            return Err(Error::invalid("cmd is required"));
        }
        stdio.validate()?;
        let target = self.running_container(container_id).await?;
        self.mint_stream_url(StreamRequest::Exec {
            container_id: target.id,
            cmd,
            tty: stdio.tty,
            stdin: stdio.stdin,
            stdout: stdio.stdout,
            stderr: stdio.stderr,
        })
    }
}
