//! PortForward: validates the sandbox and ports and mints a streaming URL.

use super::Runtime;
use super::sandbox::SandboxRef;
use crate::error::{Error, Result};
use crate::streaming::StreamRequest;
use crate::streaming::websocket::MAX_PORTS;

impl Runtime {
    pub async fn port_forward(&self, sandbox_id: &str, ports: &[i32]) -> Result<String> {
        let ports = ports
            .iter()
            .map(|p| {
                u16::try_from(*p)
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| Error::invalid(format!("port {p} is not in 1-65535")))
            })
            .collect::<Result<Vec<u16>>>()?;
        if ports.len() > MAX_PORTS {
            return Err(Error::invalid(format!(
                "at most {MAX_PORTS} ports per port-forward"
            )));
        }
        let not_found = || Error::not_found(format!("pod sandbox {sandbox_id:?} not found"));
        let mut sandbox = match self.find_sandbox(sandbox_id).await? {
            Some(SandboxRef::Docker(managed)) => managed,
            Some(SandboxRef::CheckpointOnly(_)) | None => return Err(not_found()),
        };
        let inspect = self
            .take_inspect(&mut sandbox)
            .await?
            .ok_or_else(not_found)?;
        let running = inspect
            .state
            .as_ref()
            .and_then(|s| s.running)
            .unwrap_or(false);
        if !running {
            return Err(Error::FailedPrecondition(format!(
                "pod sandbox {sandbox_id} is not running"
            )));
        }
        self.mint_stream_url(StreamRequest::PortForward {
            sandbox_id: sandbox.id,
            ports,
        })
    }
}
