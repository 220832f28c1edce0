//! Container logs in CRI format: one writer task per running container fed by Docker's log stream, resume positions, reopen.
//!
//! Each started container with a log path gets a [`writer::Writer`] task on
//! the tokio runtime that follows Docker's log (json-file, which docker-cri
//! sets on every container it creates) with Docker's own timestamps and
//! appends CRI lines to the file. Where to resume is read back from the
//! file itself (see [`resume`]), so a restart or crash of docker-cri loses
//! and doubles nothing that Docker still holds.

pub mod files;
pub mod resume;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use crate::docker::logs::{LogSource, RunState};
use crate::error::{Error, Result};
use files::{StateDir, open_log};
use writer::{Command, Writer};

/// How long a reopen may take before the caller hears of it.
const REOPEN_TIMEOUT: Duration = Duration::from_secs(10);

struct Handle {
    generation: u64,
    commands: mpsc::Sender<Command>,
    done: watch::Receiver<bool>,
    task: tokio::task::AbortHandle,
}

type Writers = Arc<Mutex<HashMap<String, Handle>>>;

/// The writers of all containers, by container ID.
pub struct LogManager {
    source: Arc<dyn LogSource>,
    metrics: Arc<crate::metrics::Metrics>,
    state: StateDir,
    writers: Writers,
    next_generation: std::sync::atomic::AtomicU64,
}

/// A container found at startup, for [`LogManager::recover`].
#[derive(Debug, Clone)]
pub struct Found {
    pub id: String,
    pub log_path: PathBuf,
    pub state: RunState,
    /// Docker says it ran at some point (created-only containers have no
    /// output to copy).
    pub started: bool,
}

impl LogManager {
    /// `state_dir` holds the saved resume positions (`<root>/logs`).
    pub fn new(
        source: Arc<dyn LogSource>,
        state_dir: PathBuf,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        LogManager {
            source,
            metrics,
            state: StateDir::new(state_dir),
            writers: Default::default(),
            next_generation: Default::default(),
        }
    }

    /// Creates the (empty) log file and its directory, before the container
    /// starts: a container that cannot log does not start. Its saved state
    /// marks it as this docker-cri's to resume after a restart (other
    /// docker-cri instances may share the Docker daemon).
    pub async fn create_file(&self, id: &str, path: &Path) -> Result<()> {
        let (state, id, path) = (self.state.clone(), id.to_string(), path.to_path_buf());
        blocking(move || {
            open_log(&path)?;
            // A saved position (from a reopen before a restart) stays.
            match state.exists(&id) {
                true => Ok(()),
                false => state.save(&id, &files::Saved::default()),
            }
        })
        .await
        .map_err(|e| e.context("creating the container log file"))
    }

    /// Starts the container's writer unless one is running.
    pub async fn attach(&self, id: &str, path: &Path) -> Result<()> {
        if self.is_attached(id) {
            return Ok(());
        }
        let (state, id_owned, path_owned) =
            (self.state.clone(), id.to_string(), path.to_path_buf());
        let (file, saved) = blocking(move || Ok((open_log(&path_owned)?, state.load(&id_owned))))
            .await
            .map_err(|e| e.context(format!("opening the log of container {id}")))?;
        let (commands_tx, commands) = mpsc::channel(4);
        let (done, done_rx) = watch::channel(false);
        let generation = self
            .next_generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let writer = Writer {
            id: id.to_string(),
            path: path.to_path_buf(),
            source: self.source.clone(),
            metrics: self.metrics.clone(),
            state: self.state.clone(),
            file: Some(file),
            saved: saved.position,
            commands,
            done,
        };
        let mut map = lock(&self.writers);
        if map.get(id).is_some_and(|h| !*h.done.borrow()) {
            return Ok(()); // another caller won the race
        }
        let writers = Arc::downgrade(&self.writers);
        let key = id.to_string();
        let task = tokio::spawn(async move {
            writer.run().await;
            // Leave nothing behind per exited container.
            if let Some(writers) = writers.upgrade() {
                let mut map = lock(&writers);
                if map.get(&key).is_some_and(|h| h.generation == generation) {
                    map.remove(&key);
                }
            }
        });
        map.insert(
            id.to_string(),
            Handle {
                generation,
                commands: commands_tx,
                done: done_rx,
                task: task.abort_handle(),
            },
        );
        tracing::debug!(container = id, path = %path.display(), "container log writer started");
        Ok(())
    }

    fn is_attached(&self, id: &str) -> bool {
        lock(&self.writers)
            .get(id)
            .is_some_and(|h| !*h.done.borrow())
    }

    /// Closes the current file and opens a new one at `path`, after
    /// everything read so far is written to the old one. A running
    /// container without a writer (started by cri-dockerd, say) gets one,
    /// and is from then on this docker-cri's to resume.
    pub async fn reopen(&self, id: &str, path: &Path) -> Result<()> {
        let commands = lock(&self.writers)
            .get(id)
            .filter(|h| !*h.done.borrow())
            .map(|h| h.commands.clone());
        let Some(commands) = commands else {
            self.create_file(id, path).await?;
            return self.attach(id, path).await;
        };
        let (reply, answer) = oneshot::channel();
        let gone = || Error::FailedPrecondition(format!("container {id} stopped logging"));
        commands
            .send(Command::Reopen(reply))
            .await
            .map_err(|_| gone())?;
        match tokio::time::timeout(REOPEN_TIMEOUT, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(gone()),
            Err(_) => Err(Error::DeadlineExceeded {
                what: format!("reopening the log of container {id}"),
                after: REOPEN_TIMEOUT,
            }),
        }
    }

    /// Tells the container's log source it stopped (a follower of Docker's
    /// file then reads to the end and finishes, instead of waiting for its
    /// periodic check).
    pub fn container_stopped(&self, id: &str) {
        self.source.stopped(id);
    }

    /// Waits, up to `bound`, for the writer of a stopped container to
    /// write its last lines.
    pub async fn wait_drained(&self, id: &str, bound: Duration) {
        self.source.stopped(id);
        let done = lock(&self.writers).get(id).map(|h| h.done.clone());
        let Some(mut done) = done else {
            return;
        };
        if tokio::time::timeout(bound, done.wait_for(|d| *d))
            .await
            .is_err()
        {
            tracing::warn!(container = id, ?bound, "container log still being written");
        }
    }

    /// Stops the writer and removes the log file and the saved state.
    pub async fn forget(&self, id: &str, path: Option<&Path>) -> Result<()> {
        if let Some(h) = lock(&self.writers).remove(id) {
            h.task.abort();
        }
        let (state, id, path) = (
            self.state.clone(),
            id.to_string(),
            path.map(Path::to_path_buf),
        );
        blocking(move || {
            state.remove(&id)?;
            if let Some(path) = path {
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| e.context("removing the container log"))
    }

    /// Sets up writers for the containers this docker-cri started (those
    /// with saved state) found at startup: running ones, and stopped ones
    /// whose last lines may not all be written yet. Saved state of
    /// containers that no longer exist is dropped.
    pub async fn recover(&self, found: Vec<Found>) {
        let known: std::collections::HashSet<&str> = found.iter().map(|f| f.id.as_str()).collect();
        let state = self.state.clone();
        let ours = state.ids();
        let orphans: Vec<String> = ours
            .iter()
            .filter(|id| !known.contains(id.as_str()))
            .cloned()
            .collect();
        let _ = blocking(move || {
            for id in orphans {
                state.remove(&id)?;
            }
            Ok(())
        })
        .await;
        let mut attached = 0;
        for f in found.into_iter().filter(|f| ours.contains(&f.id)) {
            let wanted = match f.state {
                RunState::Running => true,
                RunState::Stopped if f.started => {
                    let (state, id, path) = (self.state.clone(), f.id.clone(), f.log_path.clone());
                    blocking(move || Ok(!state.load(&id).complete && path.exists()))
                        .await
                        .unwrap_or(false)
                }
                _ => false,
            };
            if !wanted {
                continue;
            }
            match self.attach(&f.id, &f.log_path).await {
                Ok(()) => attached += 1,
                Err(e) => {
                    tracing::warn!(container = %f.id, error = %e, "cannot resume the container log")
                }
            }
        }
        tracing::info!(writers = attached, "container log writers resumed");
    }

    /// Live writers (for tests and the benchmark's sanity checks).
    pub fn writer_count(&self) -> usize {
        lock(&self.writers)
            .values()
            .filter(|h| !*h.done.borrow())
            .count()
    }
}

impl Drop for LogManager {
    fn drop(&mut self) {
        for (_, h) in lock(&self.writers).drain() {
            h.task.abort();
        }
    }
}

fn lock(writers: &Writers) -> std::sync::MutexGuard<'_, HashMap<String, Handle>> {
    writers.lock().unwrap_or_else(|p| p.into_inner())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("log file task: {e}")))?
        .map_err(|e| Error::internal(e.to_string()))
}

#[cfg(test)]
mod tests;
