//! Adapters for ExecSync, Exec, Attach and PortForward (kept apart from
//! `runtime_service.rs`, which only delegates here).

use tonic::{Request, Response, Status};
use tracing::info_span;

use super::rpc::handle;
use crate::api;
use crate::runtime::{Runtime, Stdio};

pub async fn exec_sync(
    runtime: &Runtime,
    request: Request<api::ExecSyncRequest>,
) -> Result<Response<api::ExecSyncResponse>, Status> {
    let (metadata, _, req) = request.into_parts();
    let span = info_span!("ExecSync", container = %req.container_id, timeout = req.timeout);
    handle("ExecSync", span, &metadata, async {
        let out = runtime
            .exec_sync(&req.container_id, req.cmd, req.timeout)
            .await?;
        Ok(api::ExecSyncResponse {
            stdout: out.stdout,
            stderr: out.stderr,
            exit_code: out.exit_code,
        })
    })
    .await
}

pub async fn exec(
    runtime: &Runtime,
    request: Request<api::ExecRequest>,
) -> Result<Response<api::ExecResponse>, Status> {
    let (metadata, _, req) = request.into_parts();
    let span = info_span!("Exec", container = %req.container_id, tty = req.tty);
    let stdio = Stdio {
        tty: req.tty,
        stdin: req.stdin,
        stdout: req.stdout,
        stderr: req.stderr,
    };
    handle("Exec", span, &metadata, async {
        let url = runtime.exec(&req.container_id, req.cmd, stdio).await?;
        Ok(api::ExecResponse { url })
    })
    .await
}

pub async fn attach(
    runtime: &Runtime,
    request: Request<api::AttachRequest>,
) -> Result<Response<api::AttachResponse>, Status> {
    let (metadata, _, req) = request.into_parts();
    let span = info_span!("Attach", container = %req.container_id, tty = req.tty);
    let stdio = Stdio {
        tty: req.tty,
        stdin: req.stdin,
        stdout: req.stdout,
        stderr: req.stderr,
    };
    handle("Attach", span, &metadata, async {
        let url = runtime.attach(&req.container_id, stdio).await?;
        Ok(api::AttachResponse { url })
    })
    .await
}

pub async fn port_forward(
    runtime: &Runtime,
    request: Request<api::PortForwardRequest>,
) -> Result<Response<api::PortForwardResponse>, Status> {
    let (metadata, _, req) = request.into_parts();
    let span = info_span!("PortForward", sandbox = %req.pod_sandbox_id);
    handle("PortForward", span, &metadata, async {
        let url = runtime.port_forward(&req.pod_sandbox_id, &req.port).await?;
        Ok(api::PortForwardResponse { url })
    })
    .await
}
