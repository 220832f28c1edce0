//! The port-forward protocol over any transport: each stream pair becomes
//! a TCP connection to localhost inside the pod's network namespace.

use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;

use super::netns;
use super::transport::{PortStreamSource, PortStreams};

/// Forwards every pair the transport yields until it yields no more and
/// all connections ended. `pause_pid` names the pod's network namespace;
/// `Err` carries why the pod cannot be reached.
pub async fn serve(pause_pid: Result<i32, String>, mut pairs: PortStreamSource) {
    // Dropped with the session: connections close with it.
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            pair = pairs.recv() => match pair {
                Some(pair) => {
                    tasks.spawn(forward(pause_pid.clone(), pair));
                }
                None => break,
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    while tasks.join_next().await.is_some() {}
}

async fn forward(pause_pid: Result<i32, String>, pair: PortStreams) {
    let PortStreams {
        port,
        mut data_in,
        mut data_out,
        mut error,
    } = pair;
    let connected = match pause_pid {
        Ok(pid) => netns::connect(pid, port)
            .await
            .map_err(|e| format!("error forwarding port {port} to pod: {e}")),
        Err(why) => Err(format!("error forwarding port {port} to pod: {why}")),
    };
    let conn = match connected {
        Ok(conn) => conn,
        Err(message) => {
            tracing::info!(port, %message, "port-forward failed");
            let _ = error.write_all(message.as_bytes()).await;
            let _ = error.shutdown().await;
            let _ = data_out.shutdown().await;
            return;
        }
    };
    let (mut from_pod, mut to_pod) = conn.into_split();
    let upstream = async {
        let _ = tokio::io::copy(&mut data_in, &mut to_pod).await;
        let _ = to_pod.shutdown().await;
        // The client ended its side; the pod may still answer.
        std::future::pending::<()>().await
    };
    let downstream = async {
        let _ = tokio::io::copy(&mut from_pod, &mut data_out).await;
    };
    // As kubelet: the connection is over when the pod closes its side.
    tokio::select! {
        () = upstream => {}
        () = downstream => {}
    }
    let _ = data_out.shutdown().await;
    let _ = error.shutdown().await;
}
