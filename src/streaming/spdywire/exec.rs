//! Exec and attach over SPDY: the client opens one stream per stdio
//! channel it wants, named by its `streamtype` header, before anything runs.

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use super::{STREAM_CREATION_TIMEOUT, Tracked, Version, driver, start};
use crate::streaming::spdy::{Incoming, Stream};
use crate::streaming::transport::{BoxRead, BoxWrite, Driver, RemoteCommandStreams, StatusFormat};
use crate::streaming::websocket::StdioOptions;

/// The stream types kubelet waits for before it runs the command.
fn expected(version: Version, opts: StdioOptions) -> Vec<&'static str> {
    let mut kinds = vec!["error"];
    if opts.stdin {
        kinds.push("stdin");
    }
    if opts.stdout {
        kinds.push("stdout");
    }
    // A terminal merges stderr into stdout; the CRI refuses both anyway.
    if opts.stderr && !opts.tty {
        kinds.push("stderr");
    }
    // Resizes arrived with v3.
    if opts.tty && version >= Version::V3 {
        kinds.push("resize");
    }
    kinds
}

/// Runs the session on `io` and waits (at most STREAM_CREATION_TIMEOUT)
/// for the streams the request needs. `None`: the client left or was too
/// slow, and the session is over.
///
/// v1 (`channel.k8s.io`) is served like v2: kubelet's v1 handler resets
/// the error stream once the streams are in, so a v1 client never sees a
/// status; here it gets the text status as v2 and v3 clients do.
pub async fn remote_command<IO>(
    io: IO,
    version: Version,
    opts: StdioOptions,
    idle_timeout: Duration,
) -> Option<(RemoteCommandStreams, Driver)>
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (session, mut incoming, activity) = start(io);
    let kinds = expected(version, opts);
    let collected =
        tokio::time::timeout(STREAM_CREATION_TIMEOUT, collect(&mut incoming, &kinds)).await;
    let mut got = match collected {
        Ok(Some(got)) => got,
        Ok(None) => {
            tracing::debug!("spdy client left before opening its streams");
            session.abort();
            return None;
        }
        Err(_) => {
            tracing::info!(?kinds, "timed out waiting for the client to create streams");
            session.abort();
            return None;
        }
    };
    let (alive, handles) = mpsc::channel(1);
    let mut take_read = |kind: &str| -> Option<BoxRead> {
        got.remove(kind).map(|stream| -> BoxRead {
            Box::pin(Tracked {
                stream,
                _alive: alive.clone(),
            })
        })
    };
    let stdin = take_read("stdin");
    let resize = take_read("resize");
    let mut take_write = |kind: &str| -> Option<BoxWrite> {
        got.remove(kind).map(|stream| -> BoxWrite {
            Box::pin(Tracked {
                stream,
                _alive: alive.clone(),
            })
        })
    };
    let stdout = take_write("stdout");
    let stderr = take_write("stderr");
    let error = take_write("error")?;
    drop(alive);
    let streams = RemoteCommandStreams {
        stdin,
        stdout,
        stderr,
        resize,
        error,
        status_format: if version >= Version::V4 {
            StatusFormat::Json
        } else {
            StatusFormat::Text
        },
    };
    let refuse_more = async move {
        while let Some(Ok(stream)) = incoming.next().await {
            refuse(&stream, "after the session started");
        }
    };
    let driver = driver(session, activity, idle_timeout, handles, refuse_more);
    Some((streams, driver))
}

/// Gathers one stream of each expected kind; others are reset, as kubelet
/// ignores them. `None` when the session ends first.
async fn collect(
    incoming: &mut Incoming,
    kinds: &[&'static str],
) -> Option<HashMap<&'static str, Stream>> {
    let mut got = HashMap::new();
    while got.len() < kinds.len() {
        let stream = match incoming.next().await? {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!(%error, "spdy session failed while opening streams");
                return None;
            }
        };
        let kind = stream.header("streamtype").unwrap_or_default();
        match kinds.iter().find(|k| k.eq_ignore_ascii_case(kind)) {
            Some(k) if !got.contains_key(k) => {
                got.insert(*k, stream);
            }
            Some(_) => refuse(&stream, "a second stream of this type"),
            None => refuse(&stream, "a stream type this request does not use"),
        }
    }
    Some(got)
}

fn refuse(stream: &Stream, why: &str) {
    tracing::debug!(
        streamtype = stream.header("streamtype").unwrap_or_default(),
        why,
        "resetting an unexpected spdy stream"
    );
    stream.reset();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(stdin: bool, stdout: bool, stderr: bool, tty: bool) -> StdioOptions {
        StdioOptions {
            stdin,
            stdout,
            stderr,
            tty,
        }
    }

    #[test]
    fn streams_kubelet_waits_for() {
        assert_eq!(
            expected(Version::V4, opts(false, true, true, false)),
            ["error", "stdout", "stderr"]
        );
        assert_eq!(
            expected(Version::V4, opts(true, true, false, true)),
            ["error", "stdin", "stdout", "resize"]
        );
        assert_eq!(
            expected(Version::V2, opts(true, true, false, true)),
            ["error", "stdin", "stdout"]
        );
    }
}
