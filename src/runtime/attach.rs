//! Attach: validates the request and mints a streaming URL.

use super::Runtime;
use super::exec::Stdio;
use crate::error::Result;
use crate::streaming::StreamRequest;

impl Runtime {
    pub async fn attach(&self, container_id: &str, stdio: Stdio) -> Result<String> {
        stdio.validate()?;
        let target = self.running_container(container_id).await?;
        self.mint_stream_url(StreamRequest::Attach {
            container_id: target.id,
            tty: stdio.tty,
            stdin: stdio.stdin,
            stdout: stdio.stdout,
            stderr: stdio.stderr,
        })
    }
}
