//! Port-forward over SPDY: per forwarded connection the client opens an
//! `error` and a `data` stream with the same `requestid` and a `port`
//! header; each complete pair goes to the port-forward protocol.

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{STREAM_CREATION_TIMEOUT, Tracked, driver, start};
use crate::streaming::spdy::{Incoming, Stream};
use crate::streaming::transport::{Driver, PortStreamSource, PortStreams};

/// Pairs waiting for their second stream, at most; more are refused.
const MAX_PENDING: usize = 512;

#[derive(Default)]
struct Half {
    data: Option<Stream>,
    error: Option<Stream>,
}

struct Pending {
    half: Half,
    deadline: Instant,
}

/// Runs the session on `io`; pairs arrive on the source as the client
/// opens them, until the session ends.
pub fn port_forward<IO>(io: IO, idle_timeout: Duration) -> (PortStreamSource, Driver)
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (session, incoming, activity) = start(io);
    let (tx, rx) = mpsc::channel(16);
    // The protocol's streams do not end the session: the client does.
    let (alive, handles) = mpsc::channel(1);
    let pairing = pair_streams(incoming, tx, alive);
    (
        rx,
        driver(session, activity, idle_timeout, handles, pairing),
    )
}

/// The pair a stream belongs to. Clients before requestid existed open
/// error then data with consecutive odd ids, so kubelet pairs by id then.
fn request_id(stream: &Stream, kind: &str) -> String {
    match stream.header("requestid") {
        Some(id) if !id.is_empty() => id.to_string(),
        _ if kind == "data" => stream.id().saturating_sub(2).to_string(),
        _ => stream.id().to_string(),
    }
}

async fn pair_streams(
    mut incoming: Incoming,
    tx: mpsc::Sender<PortStreams>,
    alive: mpsc::Sender<()>,
) {
    let mut pending: HashMap<String, Pending> = HashMap::new();
    loop {
        let next_deadline = pending.values().map(|p| p.deadline).min();
        let stream = tokio::select! {
            next = incoming.next() => match next {
                Some(Ok(stream)) => stream,
                Some(Err(error)) => {
                    tracing::debug!(%error, "spdy port-forward session failed");
                    break;
                }
                None => break,
            },
            () = sleep_until(next_deadline), if next_deadline.is_some() => {
                expire(&mut pending);
                continue;
            }
        };
        let kind = stream
            .header("streamtype")
            .unwrap_or_default()
            .to_ascii_lowercase();
        if kind != "data" && kind != "error" {
            tracing::debug!(kind, "resetting a port-forward stream of unknown type");
            stream.reset();
            continue;
        }
        let id = request_id(&stream, &kind);
        if !pending.contains_key(&id) && pending.len() >= MAX_PENDING {
            tracing::debug!("too many half-open port-forward pairs; resetting");
            stream.reset();
            continue;
        }
        let entry = pending.entry(id.clone()).or_insert_with(|| Pending {
            half: Half::default(),
            deadline: Instant::now() + STREAM_CREATION_TIMEOUT,
        });
        let slot = if kind == "data" {
            &mut entry.half.data
        } else {
            &mut entry.half.error
        };
        if slot.is_some() {
            tracing::debug!(requestid = id, kind, "second port-forward stream of a type");
            stream.reset();
            continue;
        }
        *slot = Some(stream);
        if entry.half.data.is_some() && entry.half.error.is_some() {
            let Some(Pending { half, .. }) = pending.remove(&id) else {
                continue;
            };
            if let (Some(data), Some(error)) = (half.data, half.error) {
                complete(data, error, &tx, &alive).await;
            }
        }
    }
    // Streams of half-open pairs are dropped (FIN) with the session.
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Hands a complete pair to the protocol; a bad port is answered on the
/// pair's error stream, as kubelet does.
async fn complete(
    data: Stream,
    error: Stream,
    tx: &mpsc::Sender<PortStreams>,
    alive: &mpsc::Sender<()>,
) {
    let header = data
        .header("port")
        .or_else(|| error.header("port"))
        .unwrap_or_default()
        .to_string();
    let port = match header.parse::<u16>() {
        Ok(port) if port > 0 => port,
        _ => {
            let message = format!("invalid port {header:?} in the port-forward request");
            tokio::spawn(report(error, data, message));
            return;
        }
    };
    let track = |stream| Tracked {
        stream,
        _alive: alive.clone(),
    };
    let (data_in, data_out) = tokio::io::split(track(data));
    let pair = PortStreams {
        port,
        data_in: Box::pin(data_in),
        data_out: Box::pin(data_out),
        error: Box::pin(track(error)),
    };
    if tx.send(pair).await.is_err() {
        tracing::debug!("port-forward protocol gone; dropping a pair");
    }
}

/// Writes `message` on a pair's error stream and closes both.
async fn report(mut error: Stream, mut data: Stream, message: String) {
    tracing::info!(%message, "port-forward stream pair refused");
    let _ = error.write_all(message.as_bytes()).await;
    let _ = error.shutdown().await;
    let _ = data.shutdown().await;
}

/// Pairs whose partner did not come in time: the lone error stream says
/// why, a lone data stream is reset.
fn expire(pending: &mut HashMap<String, Pending>) {
    let now = Instant::now();
    let late: Vec<String> = pending
        .iter()
        .filter(|(_, p)| p.deadline <= now)
        .map(|(id, _)| id.clone())
        .collect();
    for id in late {
        let Some(Pending { half, .. }) = pending.remove(&id) else {
            continue;
        };
        tracing::info!(
            requestid = id,
            "timed out waiting for a port-forward stream pair"
        );
        if let Some(data) = half.data {
            data.reset();
        }
        if let Some(mut error) = half.error {
            let message = format!("timed out waiting for the streams of request {id}");
            tokio::spawn(async move {
                let _ = error.write_all(message.as_bytes()).await;
                let _ = error.shutdown().await;
            });
        }
    }
}
