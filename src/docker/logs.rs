//! A container's output as Docker stored it (logs API, `timestamps=true`),
//! behind the [`LogSource`] seam the log writers use.

use std::sync::Arc;

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Either};
use futures_util::stream::{self, BoxStream, Stream, StreamExt};

use super::DockerClient;
use crate::error::Result;
use crate::mapping::time::rfc3339_nanos;

pub use crate::mapping::cri_log::{CriLines, DOCKER_PARTIAL_SIZE, LogStream};

/// One message of Docker's log: a whole line (ending in `\n`) or a part of
/// a longer one (no `\n`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogMessage {
    /// Docker's timestamp as it sent it (RFC 3339, nanoseconds, UTC); a
    /// slice of the received frame, not a copy.
    pub timestamp: Bytes,
    pub nanos: i64,
    pub stream: LogStream,
    pub content: Bytes,
}

/// Whether a container is there and running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Running,
    Stopped,
    Gone,
}

/// A container's log being read: each call appends the next lines, as
/// many as were there at once, to the caller's buffer, which the writer
/// reuses (at hundreds of thousands of lines a second, a stream step, an
/// allocation or a copy per line is a good part of the cost).
///
/// A call may be dropped before it finishes (the writer serves a reopen
/// meanwhile): nothing read is lost then.
pub trait LogReader: Send {
    /// `None`: the container has stopped and everything is read.
    fn read_into<'a>(&'a mut self, into: &'a mut CriLines) -> BoxFuture<'a, Option<Result<()>>>;
}

pub type LogBatches = Box<dyn LogReader>;

/// Most messages taken at once by [`reader`].
const BATCH: usize = 1024;

/// Reads a stream of single messages: whatever is ready at once goes into
/// one call's lines; an error comes after the messages before it.
pub fn reader(messages: impl Stream<Item = Result<LogMessage>> + Send + 'static) -> LogBatches {
    Box::new(MessageReader {
        messages: messages.boxed(),
        held: None,
    })
}

struct MessageReader {
    messages: BoxStream<'static, Result<LogMessage>>,
    /// The end or an error found while gathering: the next call's answer.
    held: Option<Option<Result<()>>>,
}

impl LogReader for MessageReader {
    fn read_into<'a>(&'a mut self, into: &'a mut CriLines) -> BoxFuture<'a, Option<Result<()>>> {
        Box::pin(async move {
            if let Some(held) = self.held.take() {
                return held;
            }
            // Dropped while waiting here, nothing is lost: the stream
            // keeps what it has not handed out.
            let first = match self.messages.next().await? {
                Ok(m) => m,
                Err(e) => return Some(Err(e)),
            };
            into.push_message(&first.timestamp, first.nanos, first.stream, &first.content);
            for _ in 1..BATCH {
                match self.messages.next().now_or_never() {
                    Some(Some(Ok(m))) => {
                        into.push_message(&m.timestamp, m.nanos, m.stream, &m.content);
                    }
                    Some(Some(Err(e))) => {
                        self.held = Some(Some(Err(e)));
                        break;
                    }
                    Some(None) => {
                        self.held = Some(None);
                        break;
                    }
                    None => break,
                }
            }
            Some(Ok(()))
        })
    }
}

/// Run states docker-cri already knows without asking Docker (the index).
pub trait KnownStates: Send + Sync + 'static {
    /// `None`: not known here (or not current): ask Docker.
    fn known_state(&self, id: &str) -> Option<RunState>;
}

/// The Docker calls a log writer needs.
pub trait LogSource: Send + Sync + 'static {
    /// The container's log from `since_nanos` on (inclusive; earlier
    /// messages may come too), following it while the container runs, in
    /// batches of what was there at once (a batch of empty messages makes
    /// no line). It ends when the container has stopped and all is sent.
    fn logs(&self, id: &str, since_nanos: Option<i64>) -> LogBatches;

    fn run_state<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<RunState>>;

    /// Docker reports the container stopped: a source that learns of the
    /// stop by asking now and then asks now. (The API's stream ends by
    /// itself.)
    fn stopped(&self, _id: &str) {}
}

impl LogSource for Arc<DockerClient> {
    fn logs(&self, id: &str, since_nanos: Option<i64>) -> LogBatches {
        let client = self.clone();
        let id = id.to_string();
        // The API takes whole seconds here; rounding down only resends a
        // little, which the writer's resume position skips.
        let since = since_nanos.map_or(0, |n| {
            (n.div_euclid(1_000_000_000)).clamp(0, i32::MAX as i64) as i32
        });
        let options = LogsOptionsBuilder::new()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .since(since)
            .build();
        reader(
            stream::once(async move {
                match client.handle().await {
                    Ok(docker) => {
                        docker
                            .logs(&id, Some(options))
                            .flat_map(|item| match item {
                                // One message per multiplexed frame: no Vec.
                                Ok(LogOutput::StdOut { message }) => Either::Left(stream::iter(
                                    parse_frame(message, LogStream::Stdout).map(Ok),
                                )),
                                Ok(LogOutput::StdErr { message }) => Either::Left(stream::iter(
                                    parse_frame(message, LogStream::Stderr).map(Ok),
                                )),
                                Ok(out) => Either::Right(stream::iter(
                                    messages(out).into_iter().map(Ok).collect::<Vec<_>>(),
                                )),
                                Err(e) => Either::Right(stream::iter(vec![Err(
                                    super::from_bollard(e).context("container logs"),
                                )])),
                            })
                            .boxed()
                    }
                    Err(e) => stream::once(async move { Err(e) }).boxed(),
                }
            })
            .flatten(),
        )
    }

    fn run_state<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<RunState>> {
        Box::pin(async move {
            Ok(match self.inspect_container(id).await? {
                None => RunState::Gone,
                Some(c) if c.state.as_ref().and_then(|s| s.running) == Some(true) => {
                    RunState::Running
                }
                Some(_) => RunState::Stopped,
            })
        })
    }
}

/// Turns a bollard log item into messages. A TTY container's log comes as
/// one raw stream that bollard cuts at newlines, so a partial message
/// (which has none) arrives glued to the next one.
pub fn messages(out: LogOutput) -> Vec<LogMessage> {
    match out {
        LogOutput::StdOut { message } => parse_frame(message, LogStream::Stdout)
            .into_iter()
            .collect(),
        LogOutput::StdErr { message } => parse_frame(message, LogStream::Stderr)
            .into_iter()
            .collect(),
        LogOutput::Console { message } => split_raw(message),
        LogOutput::StdIn { .. } => Vec::new(),
    }
}

/// `<timestamp> <content>` → a message; `None` when there is no timestamp
/// (Docker never sends that; such bytes are dropped with a warning).
fn parse_frame(frame: Bytes, stream: LogStream) -> Option<LogMessage> {
    let space = frame.iter().position(|b| *b == b' ');
    let parsed = space.and_then(|at| {
        let ts = std::str::from_utf8(&frame[..at]).ok()?;
        Some((frame.slice(..at), rfc3339_nanos(ts)?, at))
    });
    let Some((timestamp, nanos, at)) = parsed else {
        tracing::warn!(
            bytes = frame.len(),
            "docker log frame without a timestamp dropped"
        );
        return None;
    };
    Some(LogMessage {
        timestamp,
        nanos,
        stream,
        content: frame.slice(at + 1..),
    })
}

/// Raw (TTY) items: a message whose content runs past Docker's partial size
/// and has a timestamp right there is two messages.
fn split_raw(mut item: Bytes) -> Vec<LogMessage> {
    let mut out = Vec::new();
    loop {
        let Some(mut msg) = parse_frame(item.clone(), LogStream::Stdout) else {
            return out;
        };
        let next = msg
            .content
            .get(DOCKER_PARTIAL_SIZE..)
            .and_then(timestamp_prefix)
            .map(|_| DOCKER_PARTIAL_SIZE);
        match next {
            Some(cut) => {
                let head_len = item.len() - msg.content.len();
                let rest = item.slice(head_len + cut..);
                msg.content = msg.content.slice(..cut);
                out.push(msg);
                item = rest;
            }
            None => {
                out.push(msg);
                return out;
            }
        }
    }
}

/// Docker's fixed-width timestamp and its space at the start of `b`.
fn timestamp_prefix(b: &[u8]) -> Option<usize> {
    // 2006-01-02T15:04:05.000000000Z
    const LEN: usize = 30;
    let head = b.get(..LEN + 1)?;
    if head[LEN] != b' ' || head[29] != b'Z' || head[10] != b'T' {
        return None;
    }
    let text = std::str::from_utf8(&head[..LEN]).ok()?;
    rfc3339_nanos(text).map(|_| LEN + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: &str = "2026-11-30T12:00:00.000000001Z";
    const TS2: &str = "2026-11-30T12:00:00.000000002Z";

    fn msg(text: &str) -> LogMessage {
        LogMessage {
            timestamp: Bytes::from_static(TS.as_bytes()),
            nanos: 1,
            stream: LogStream::Stdout,
            content: Bytes::copy_from_slice(text.as_bytes()),
        }
    }

    /// Every call's lines as text, until the end.
    async fn calls(mut r: LogBatches) -> Vec<Result<Vec<String>>> {
        let mut got = Vec::new();
        let mut lines = CriLines::new();
        while let Some(item) = r.read_into(&mut lines).await {
            got.push(item.map(|()| {
                String::from_utf8(lines.bytes().to_vec())
                    .unwrap()
                    .lines()
                    .map(|l| l[TS.len() + 10..].to_string())
                    .collect()
            }));
            lines.clear(0);
        }
        got
    }

    #[tokio::test]
    async fn ready_messages_go_together_and_an_error_after_what_came_before() {
        let items = vec![
            Ok(msg("a\n")),
            Ok(msg("b\n")),
            Err(crate::Error::DockerUnavailable("reset".into())),
            Ok(msg("c\n")),
        ];
        let got = calls(reader(stream::iter(items))).await;
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0].as_ref().unwrap(), &["a", "b"]);
        assert!(matches!(got[1], Err(crate::Error::DockerUnavailable(_))));
        assert_eq!(got[2].as_ref().unwrap(), &["c"]);
    }

    #[tokio::test]
    async fn a_message_that_comes_later_is_the_next_calls() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tx.send(Ok(msg("first\n"))).unwrap();
        let mut r = reader(tokio_stream::wrappers::UnboundedReceiverStream::new(rx));
        let mut lines = CriLines::new();
        assert!(matches!(r.read_into(&mut lines).await, Some(Ok(()))));
        assert_eq!(lines.len(), 1);
        // Nothing there: the call waits, and being dropped loses nothing.
        assert!(r.read_into(&mut lines).now_or_never().is_none());
        tx.send(Ok(msg("second\n"))).unwrap();
        drop(tx);
        assert!(matches!(r.read_into(&mut lines).await, Some(Ok(()))));
        assert_eq!(lines.len(), 2);
        assert!(r.read_into(&mut lines).await.is_none());
    }

    #[test]
    fn multiplexed_frames_keep_their_stream() {
        let out = messages(LogOutput::StdErr {
            message: Bytes::from(format!("{TS} oops\n")),
        });
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].stream, LogStream::Stderr);
        assert_eq!(&out[0].timestamp[..], TS.as_bytes());
        assert_eq!(out[0].nanos, 1_796_040_000_000_000_001);
        assert_eq!(&out[0].content[..], b"oops\n");
    }

    #[test]
    fn raw_item_with_a_glued_partial_is_split() {
        let long = "x".repeat(DOCKER_PARTIAL_SIZE);
        let item = format!("{TS} {long}{TS2} tail\r\n");
        let out = messages(LogOutput::Console {
            message: Bytes::from(item),
        });
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].content.len(), DOCKER_PARTIAL_SIZE);
        assert_eq!(&out[0].timestamp[..], TS.as_bytes());
        assert_eq!(&out[1].timestamp[..], TS2.as_bytes());
        assert_eq!(&out[1].content[..], b"tail\r\n");
        assert!(out.iter().all(|m| m.stream == LogStream::Stdout));
    }

    #[test]
    fn raw_item_without_glue_stays_whole() {
        let item = format!("{TS} a line with {TS2} inside\n");
        let out = messages(LogOutput::Console {
            message: Bytes::from(item),
        });
        assert_eq!(out.len(), 1);
        assert_eq!(
            &out[0].content[..],
            format!("a line with {TS2} inside\n").as_bytes()
        );
    }

    #[test]
    fn frame_without_timestamp_is_dropped() {
        let out = messages(LogOutput::StdOut {
            message: Bytes::from_static(b"no-timestamp-here\n"),
        });
        assert!(out.is_empty());
    }
}
