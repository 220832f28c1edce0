//! The remote-command protocol over any transport: a Docker exec or attach
//! wired to the client's streams, TTY resizes applied, and the outcome
//! written on the error stream.

use std::sync::Arc;

use bollard::container::LogOutput;
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

use super::status::{Outcome, encode};
use super::transport::{BoxRead, BoxWrite, RemoteCommandStreams};
use crate::docker::DockerClient;
use crate::docker::exec::{ExecSpec, Hijacked};
use crate::error::{Error, Result};

/// What the session runs.
#[derive(Debug, Clone)]
pub enum Target {
    Exec {
        container_id: String,
        cmd: Vec<String>,
        tty: bool,
    },
    Attach {
        container_id: String,
        tty: bool,
    },
}

/// Serves one session to its end. Dropping the future (client gone) drops
/// the Docker connection and every task it started.
pub async fn serve(docker: Arc<DockerClient>, target: Target, streams: RemoteCommandStreams) {
    let RemoteCommandStreams {
        stdin,
        stdout,
        stderr,
        resize,
        mut error,
        status_format,
    } = streams;
    let outcome = match run(&docker, &target, stdin, stdout, stderr, resize).await {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::info!(error = %e, "streaming session failed");
            Outcome::Error(e.to_string())
        }
    };
    if let Some(bytes) = encode(status_format, &outcome) {
        let _ = error.write_all(&bytes).await;
    }
    let _ = error.shutdown().await;
}

async fn run(
    docker: &Arc<DockerClient>,
    target: &Target,
    stdin: Option<BoxRead>,
    mut stdout: Option<BoxWrite>,
    mut stderr: Option<BoxWrite>,
    resize: Option<BoxRead>,
) -> Result<Outcome> {
    // Dropped on return: whatever is still copying stops with the session.
    let mut tasks = JoinSet::new();
    let mut resize = resize.map(Resizes::new);
    let (hijacked, exec_id) = match target {
        Target::Exec {
            container_id,
            cmd,
            tty,
        } => {
            // Clients send the terminal size first thing; a process that
            // asks for it at once should see it, not 0x0.
            let first = match (&mut resize, tty) {
                (Some(r), true) => r.first(FIRST_SIZE_WAIT).await,
                _ => None,
            };
            let spec = ExecSpec {
                cmd: cmd.clone(),
                tty: *tty,
                stdin: stdin.is_some(),
                stdout: stdout.is_some(),
                stderr: stderr.is_some(),
                console_size: first.as_ref().map(|s| (s.width, s.height)),
            };
            let id = docker.create_exec(container_id, &spec).await?;
            if let (Some(resize), true) = (resize.take(), tty) {
                // Started before the exec: Docker holds a resize until the
                // process runs, the earliest it can apply.
                let target = ResizeTarget::Exec(id.clone());
                tasks.spawn(apply_resizes(docker.clone(), target, first, resize));
            }
            (docker.start_exec(&id, *tty).await?, Some(id))
        }
        Target::Attach { container_id, tty } => {
            let attached = docker
                .attach_container(
                    container_id,
                    stdin.is_some(),
                    stdout.is_some(),
                    stderr.is_some(),
                )
                .await?;
            if let (Some(resize), true) = (resize.take(), tty) {
                let target = ResizeTarget::Container(container_id.clone());
                tasks.spawn(apply_resizes(docker.clone(), target, None, resize));
            }
            (attached, None)
        }
    };
    let Hijacked { mut output, input } = hijacked;
    if let Some(stdin) = stdin {
        let mut input = input;
        tasks.spawn(async move {
            // tokio's `copy` moves 8 KiB per write; each write costs dockerd
            // a read and a write too, so larger pieces go much faster.
            let mut stdin = tokio::io::BufReader::with_capacity(STDIN_BUFFER, stdin);
            let _ = tokio::io::copy_buf(&mut stdin, &mut input).await;
            // The client's EOF becomes the process's EOF (and, for a
            // stdin_once container, closes its stdin for good).
            let _ = input.shutdown().await;
        });
    }
    while let Some(item) = output.next().await {
        let (sink, data) = match item {
            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                (stdout.as_mut(), message)
            }
            Ok(LogOutput::StdErr { message }) => (stderr.as_mut(), message),
            Ok(LogOutput::StdIn { .. }) => continue,
            Err(e) => return Err(crate::docker::from_bollard(e).context("docker stream")),
        };
        if let Some(sink) = sink
            && sink.write_all(&data).await.is_err()
        {
            // The client is gone; the driver ends the session.
            return Ok(Outcome::Success);
        }
    }
    match exec_id {
        Some(id) => match exit_code(docker, &id).await? {
            0 => Ok(Outcome::Success),
            code => Ok(Outcome::ExitCode(code)),
        },
        None => Ok(Outcome::Success),
    }
}

/// Docker may report the exec running for a moment after its streams end.
async fn exit_code(docker: &DockerClient, exec_id: &str) -> Result<i32> {
    let mut delay = std::time::Duration::from_millis(5);
    for _ in 0..40 {
        let state = docker.inspect_exec(exec_id).await?;
        if !state.running {
            return Ok(state
                .exit_code
                .and_then(|c| i32::try_from(c).ok())
                .unwrap_or(-1));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(std::time::Duration::from_millis(250));
    }
    Err(Error::internal(format!(
        "exec {exec_id}: streams closed but docker still reports it running"
    )))
}

enum ResizeTarget {
    Exec(String),
    Container(String),
}

/// kubelet's TerminalSize; Go decodes field names case-insensitively.
#[derive(Debug, Deserialize, PartialEq, Eq)]
pub struct TerminalSize {
    #[serde(alias = "width", default)]
    #[serde(rename = "Width")]
    pub width: u16,
    #[serde(alias = "height", default)]
    #[serde(rename = "Height")]
    pub height: u16,
}

/// The most client stdin handed to Docker in one write.
const STDIN_BUFFER: usize = 128 * 1024;

/// How long a TTY exec waits for the client's first terminal size.
const FIRST_SIZE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Terminal sizes as they arrive on the resize stream.
struct Resizes {
    stream: BoxRead,
    buf: Vec<u8>,
    ready: std::collections::VecDeque<TerminalSize>,
}

impl Resizes {
    fn new(stream: BoxRead) -> Self {
        Resizes {
            stream,
            buf: Vec::new(),
            ready: Default::default(),
        }
    }

    /// The next usable size; `None` at the end of the stream.
    async fn next(&mut self) -> Option<TerminalSize> {
        let mut chunk = [0u8; 1024];
        loop {
            if let Some(size) = self.ready.pop_front() {
                if size.width > 0 && size.height > 0 {
                    return Some(size);
                }
                continue;
            }
            let n = self.stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
            self.buf.extend_from_slice(&chunk[..n]);
            let (sizes, used) = parse_sizes(&self.buf);
            self.buf.drain(..used);
            self.ready.extend(sizes);
            if self.buf.len() > 64 * 1024 {
                tracing::debug!("resize stream is not JSON; ignoring it");
                return None;
            }
        }
    }

    async fn first(&mut self, wait: std::time::Duration) -> Option<TerminalSize> {
        tokio::time::timeout(wait, self.next()).await.ok().flatten()
    }
}

async fn apply_resizes(
    docker: Arc<DockerClient>,
    target: ResizeTarget,
    first: Option<TerminalSize>,
    mut resizes: Resizes,
) {
    let mut next = first;
    loop {
        let size = match next.take() {
            Some(size) => size,
            None => match resizes.next().await {
                Some(size) => size,
                None => return,
            },
        };
        let result = match &target {
            ResizeTarget::Exec(id) => docker.resize_exec(id, size.width, size.height).await,
            ResizeTarget::Container(id) => {
                docker.resize_container(id, size.width, size.height).await
            }
        };
        if let Err(error) = result {
            tracing::debug!(%error, "terminal resize failed");
        }
    }
}

/// Every complete JSON object at the front of `buf`, and how many bytes
/// they took. Objects may arrive split across frames or several per frame.
pub fn parse_sizes(buf: &[u8]) -> (Vec<TerminalSize>, usize) {
    let mut stream = serde_json::Deserializer::from_slice(buf).into_iter::<TerminalSize>();
    let mut sizes = Vec::new();
    let mut used = 0;
    loop {
        match stream.next() {
            Some(Ok(size)) => {
                used = stream.byte_offset();
                sizes.push(size);
            }
            Some(Err(e)) if e.is_eof() => break,
            Some(Err(_)) => {
                // Skip the garbage rather than wedge the stream.
                used = buf.len();
                break;
            }
            None => {
                used = buf.len();
                break;
            }
        }
    }
    (sizes, used)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_objects_split_and_joined() {
        let (sizes, used) = parse_sizes(br#"{"Width":80,"Height":24}{"width":100,"hei"#);
        assert_eq!(
            sizes,
            vec![TerminalSize {
                width: 80,
                height: 24
            }]
        );
        assert_eq!(used, 24);
        let (sizes, _) = parse_sizes(br#"{"width":100,"height":40}"#);
        assert_eq!(sizes[0].width, 100);
        let (sizes, used) = parse_sizes(b"not json");
        assert!(sizes.is_empty());
        assert_eq!(used, 8);
    }
}
