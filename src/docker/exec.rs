//! Docker exec and attach: the hijacked streams, resizes, and exec inspects.

use std::pin::Pin;

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::{AttachContainerOptions, ResizeContainerTTYOptions};
use futures_util::Stream;
use tokio::io::AsyncWrite;

use super::{DockerClient, from_bollard};
use crate::error::{Error, Result};
use crate::mapping::info::ApiVersion;

/// What a hijacked exec or attach connection yields: Docker's output
/// (demultiplexed unless a TTY) and the process's stdin.
pub struct Hijacked {
    pub output: Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>,
    pub input: Pin<Box<dyn AsyncWrite + Send>>,
}

/// The parts of an exec inspect docker-cri acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecState {
    pub running: bool,
    pub exit_code: Option<i64>,
    /// The exec'd process as the host sees it.
    pub pid: Option<i32>,
}

#[derive(Debug, Clone, Default)]
pub struct ExecSpec {
    pub cmd: Vec<String>,
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// The terminal's initial (width, height), when known.
    pub console_size: Option<(u16, u16)>,
}

/// Exec create takes a console size from this API on (Docker 23).
const CONSOLE_SIZE_API: ApiVersion = ApiVersion(1, 42);

/// Output larger than this per read would only be split again downstream.
const OUTPUT_CAPACITY: usize = 64 * 1024;

impl DockerClient {
    /// Creates an exec instance; returns its ID.
    pub async fn create_exec(&self, container: &str, spec: &ExecSpec) -> Result<String> {
        let mut options: bollard::models::ExecConfig = CreateExecOptions::<String> {
            attach_stdin: Some(spec.stdin),
            attach_stdout: Some(spec.stdout),
            attach_stderr: Some(spec.stderr),
            tty: Some(spec.tty),
            cmd: Some(spec.cmd.clone()),
            ..Default::default()
        }
        .into();
        // Older daemons reject the field; they get a resize right after
        // the start instead.
        if let Some((w, h)) = spec.console_size.filter(|_| spec.tty)
            && self.api_version().await? >= CONSOLE_SIZE_API
        {
            options.console_size = Some(vec![usize::from(h), usize::from(w)]);
        }
        let created = self
            .call("create exec", |d| async move {
                d.create_exec(container, options).await
            })
            .await?;
        Ok(created.id)
    }

    /// Starts an exec and hijacks its connection.
    pub async fn start_exec(&self, exec_id: &str, tty: bool) -> Result<Hijacked> {
        let options = StartExecOptions {
            detach: false,
            tty,
            output_capacity: Some(OUTPUT_CAPACITY),
        };
        let started = self
            .call("start exec", |d| async move {
                d.start_exec(exec_id, Some(options)).await
            })
            .await?;
        match started {
            StartExecResults::Attached { output, input } => Ok(Hijacked { output, input }),
            StartExecResults::Detached => Err(Error::internal("start exec: docker detached it")),
        }
    }

    pub async fn inspect_exec(&self, exec_id: &str) -> Result<ExecState> {
        let inspect = self
            .call(
                "inspect exec",
                |d| async move { d.inspect_exec(exec_id).await },
            )
            .await?;
        Ok(ExecState {
            running: inspect.running.unwrap_or(false),
            exit_code: inspect.exit_code,
            pid: inspect
                .pid
                .and_then(|p| i32::try_from(p).ok())
                .filter(|p| *p > 0),
        })
    }

    pub async fn resize_exec(&self, exec_id: &str, width: u16, height: u16) -> Result<()> {
        let options = ResizeExecOptions { width, height };
        self.call("resize exec", |d| async move {
            d.resize_exec(exec_id, options).await
        })
        .await
    }

    /// Attaches to a running container's stdio (no past logs).
    pub async fn attach_container(
        &self,
        container: &str,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Result<Hijacked> {
        let options = AttachContainerOptions {
            stdin,
            stdout,
            stderr,
            stream: true,
            logs: false,
            detach_keys: None,
        };
        let docker = self.handle().await?;
        // The attach itself streams for as long as the session lasts; only
        // its start is bounded.
        let attached = tokio::time::timeout(
            self.call_timeout(),
            docker.attach_container(container, Some(options)),
        )
        .await
        .map_err(|_| Error::DeadlineExceeded {
            what: "attach container".into(),
            after: self.call_timeout(),
        })?
        .map_err(|e| from_bollard(e).context("attach container"))?;
        Ok(Hijacked {
            output: attached.output,
            input: attached.input,
        })
    }

    pub async fn resize_container(&self, container: &str, width: u16, height: u16) -> Result<()> {
        let options = ResizeContainerTTYOptions {
            w: i32::from(width),
            h: i32::from(height),
        };
        self.call("resize container", |d| async move {
            d.resize_container_tty(container, options).await
        })
        .await
    }
}
