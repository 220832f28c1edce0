//! One container's writer task: Docker's log stream in, CRI lines out,
//! resuming from the file's own tail, reopening on request, reconnecting
//! while the container runs.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use super::blocking;
use super::files::{Saved, StateDir, open_log, tail_position};
use super::resume::{Position, Skip};
use crate::docker::logs::{CriLines, LogSource, RunState};
use crate::error::{Error, Result};

/// What a quiet container's batch buffer shrinks back to: with hundreds of
/// mostly idle containers, one large buffer each would be most of
/// docker-cri's memory.
const QUIET_BUF: usize = 4 * 1024;

const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(10);

pub enum Command {
    /// Close the file, open a new one at the path (kubelet renamed it).
    Reopen(oneshot::Sender<Result<()>>),
}

pub struct Writer {
    pub id: String,
    pub path: PathBuf,
    pub source: Arc<dyn LogSource>,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub state: StateDir,
    pub file: Option<File>,
    /// Where the log stood at the last reopen (or in the saved state).
    pub saved: Option<Position>,
    pub commands: mpsc::Receiver<Command>,
    pub done: watch::Sender<bool>,
}

enum Outcome {
    Ended,
    Failed(Error),
}

impl Writer {
    pub async fn run(mut self) {
        let metrics = self.metrics.clone();
        let _counted = metrics.log_writer();
        let mut retry = RETRY_FIRST;
        let mut warned = false;
        let mut last_pass = false;
        loop {
            let position = self.position().await;
            let outcome = self.copy(Skip::new(position)).await;
            let state = self.source.run_state(&self.id).await;
            match (&outcome, state) {
                (_, Ok(RunState::Gone)) => break,
                // Docker 20.10's follow can end before the last lines of
                // a stopped container; one more read (not following, as the
                // container stopped) picks them up, the resume skip drops
                // what is already written.
                (Outcome::Ended, Ok(RunState::Stopped)) if !last_pass => {
                    last_pass = true;
                    continue;
                }
                (Outcome::Ended, Ok(RunState::Stopped)) => {
                    self.finish().await;
                    break;
                }
                (Outcome::Failed(Error::NotFound(_)), _) => break,
                (Outcome::Failed(e), state) => {
                    if !warned {
                        tracing::warn!(container = %self.id, error = %e, ?state, "container log stream failed; retrying");
                        warned = true;
                    }
                }
                // Docker went away and came back (live-restore), or the
                // stream ended while the container is starting to stop.
                (Outcome::Ended, state) => {
                    tracing::debug!(container = %self.id, ?state, "container log stream ended; reconnecting");
                }
            }
            if self.wait_or_serve(retry).await.is_err() {
                break;
            }
            retry = match outcome {
                Outcome::Ended => RETRY_FIRST,
                Outcome::Failed(_) => (retry * 2).min(RETRY_MAX),
            };
        }
        let _ = self.done.send(true);
        tracing::debug!(container = %self.id, "container log writer finished");
    }

    /// Copies until the log ends, serving commands between batches.
    async fn copy(&mut self, mut skip: Skip) -> Outcome {
        let mut reader = self.source.logs(&self.id, skip.since());
        let mut lines = CriLines::new();
        // The recent largest batch, slowly forgotten: the buffer keeps room
        // for it. Shrinking and regrowing with every batch size would cost
        // a fresh mapping (page faults, zeroing) per batch; keeping the
        // largest ever would hold a once-busy container's buffer for good.
        let mut peak = 0usize;
        loop {
            // Each batch is one file read (or what Docker's API stream had
            // ready), written at once. No timer to gather more: the file
            // follower polls at its own pace, so waiting here would only
            // add a wake-up per batch.
            let item = tokio::select! {
                biased;
                Some(cmd) = self.commands.recv() => {
                    // The read is dropped and started again: it loses
                    // nothing (see `LogReader`).
                    self.serve(cmd).await;
                    continue;
                }
                item = reader.read_into(&mut lines) => item,
            };
            peak = lines.bytes().len().max(peak - peak / 8);
            if skip.is_skipping() {
                lines.retain(|nanos| skip.keep(nanos));
            }
            self.write(&lines);
            lines.clear(peak.max(QUIET_BUF));
            match item {
                Some(Ok(())) => {}
                Some(Err(e)) => return Outcome::Failed(e),
                None => return Outcome::Ended,
            }
        }
    }

    /// A page-cache append, done in place: a hop to the blocking pool per
    /// batch would cost more than the write.
    fn write(&mut self, lines: &CriLines) {
        let (buf, Some(newest)) = (lines.bytes(), lines.newest()) else {
            return;
        };
        let lag = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .and_then(|now| {
                let newest = u64::try_from(newest).ok()?;
                now.checked_sub(Duration::from_nanos(newest))
            });
        self.metrics.record_log_write(buf.len(), lag);
        let Some(file) = self.file.as_mut() else {
            return;
        };
        if let Err(e) = file.write_all(buf) {
            tracing::warn!(container = %self.id, path = %self.path.display(), error = %e, bytes = buf.len(), "writing the container log failed; these lines are lost");
        }
    }

    async fn serve(&mut self, cmd: Command) {
        match cmd {
            Command::Reopen(reply) => {
                let result = self.reopen().await;
                let _ = reply.send(result);
            }
        }
    }

    /// Sleeps before a retry, still serving reopen requests. Err: the
    /// manager is gone.
    async fn wait_or_serve(&mut self, pause: Duration) -> std::result::Result<(), ()> {
        let sleep = tokio::time::sleep(pause);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return Ok(()),
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.serve(cmd).await,
                    None => return Err(()),
                },
            }
        }
    }

    /// The file's tail is the truth; an empty file (just reopened) falls
    /// back to the position saved at the reopen.
    async fn position(&mut self) -> Option<Position> {
        let tail = match self.file.as_ref().map(File::try_clone) {
            Some(Ok(f)) => blocking(move || tail_position(&f)).await,
            Some(Err(e)) => Err(Error::internal(e.to_string())),
            None => Ok(None),
        };
        match tail {
            Ok(tail) => tail.or(self.saved),
            Err(e) => {
                tracing::warn!(container = %self.id, error = %e, "reading the container log's tail failed");
                self.saved
            }
        }
    }

    /// Saves where the old file ends, durably, before the new file exists:
    /// a restart then resumes after the rotated file, not from scratch.
    async fn reopen(&mut self) -> Result<()> {
        let position = self.position().await;
        let (state, id, path) = (self.state.clone(), self.id.clone(), self.path.clone());
        let saved = Saved {
            position,
            complete: false,
        };
        let file = blocking(move || {
            state.save(&id, &saved)?;
            open_log(&path)
        })
        .await
        .map_err(|e| e.context(format!("reopening {}", self.path.display())))?;
        self.saved = position;
        self.file = Some(file);
        tracing::info!(container = %self.id, path = %self.path.display(), "container log reopened");
        Ok(())
    }

    /// Notes that every line is written, so a restart need not ask again.
    async fn finish(&mut self) {
        let position = self.position().await;
        let (state, id) = (self.state.clone(), self.id.clone());
        let saved = Saved {
            position,
            complete: true,
        };
        if let Err(e) = blocking(move || state.save(&id, &saved)).await {
            tracing::warn!(container = %self.id, error = %e, "saving the container log state failed");
        }
    }
}
