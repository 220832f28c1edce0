//! ExecSync: a command run to completion through Docker exec.

use std::time::Duration;

use bollard::container::LogOutput;
use futures_util::StreamExt;

use super::Runtime;
use super::exec_kill::KillOnDrop;
use crate::docker::exec::ExecSpec;
use crate::error::{Error, Result};

/// Each output stream is kept up to this size; the rest is dropped, as
/// kubelet's own limit on probe output.
pub const MAX_EXEC_SYNC_OUTPUT: usize = 16 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct ExecSyncOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i32,
}

impl Runtime {
    /// Runs `cmd` in the container. `timeout_secs` > 0 bounds it; on timeout
    /// (or when the caller gives up) the process is killed.
    pub async fn exec_sync(
        &self,
        container_id: &str,
        cmd: Vec<String>,
        timeout_secs: i64,
    ) -> Result<ExecSyncOutput> {
        if cmd.is_empty() {
            return Err(Error::invalid("cmd is required"));
        }
        let target = self.running_container(container_id).await?;
        let spec = ExecSpec {
            cmd,
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let exec_id = self.docker.create_exec(&target.id, &spec).await?;
        let mut guard = KillOnDrop::new(self.docker.clone(), exec_id.clone(), target.pid);
        let hijacked = self.docker.start_exec(&exec_id, false).await?;
        let mut output = ExecSyncOutput::default();
        let collect = async {
            let mut stream = hijacked.output;
            while let Some(item) = stream.next().await {
                match item {
                    Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                        append_capped(&mut output.stdout, &message)
                    }
                    Ok(LogOutput::StdErr { message }) => {
                        append_capped(&mut output.stderr, &message)
                    }
                    Ok(LogOutput::StdIn { .. }) => {}
                    Err(e) => {
                        return Err(crate::docker::from_bollard(e).context("exec output"));
                    }
                }
            }
            Ok(())
        };
        if timeout_secs > 0 {
            let limit = Duration::from_secs(timeout_secs as u64);
            match tokio::time::timeout(limit, collect).await {
                Ok(r) => r?,
                Err(_) => {
                    guard.kill().await;
                    return Err(Error::DeadlineExceeded {
                        what: format!("command in container {}", target.id),
                        after: limit,
                    });
                }
            }
        } else {
            collect.await?;
        }
        output.exit_code = self.exec_exit_code(&exec_id).await?;
        guard.disarm();
        Ok(output)
    }

    /// The exit code once Docker has recorded it: it may still report the
    /// exec running for a moment after its streams closed.
    pub(crate) async fn exec_exit_code(&self, exec_id: &str) -> Result<i32> {
        let mut delay = Duration::from_millis(5);
        for _ in 0..40 {
            let state = self.docker.inspect_exec(exec_id).await?;
            if !state.running {
                let code = state.exit_code.unwrap_or(-1);
                return Ok(i32::try_from(code).unwrap_or(-1));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(250));
        }
        Err(Error::internal(format!(
            "exec {exec_id}: output closed but docker still reports it running"
        )))
    }
}

fn append_capped(buf: &mut Vec<u8>, data: &[u8]) {
    let room = MAX_EXEC_SYNC_OUTPUT.saturating_sub(buf.len());
    buf.extend_from_slice(&data[..data.len().min(room)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_truncated_at_the_cap() {
        let mut buf = vec![0u8; MAX_EXEC_SYNC_OUTPUT - 2];
        append_capped(&mut buf, b"abcdef");
        assert_eq!(buf.len(), MAX_EXEC_SYNC_OUTPUT);
        assert_eq!(&buf[buf.len() - 2..], b"ab");
        append_capped(&mut buf, b"x");
        assert_eq!(buf.len(), MAX_EXEC_SYNC_OUTPUT);
    }
}
