//! Docker's json-file log read straight from disk: the [`LogSource`] the
//! log writers use, with Docker's logs API as the fallback.
//!
//! The logs API makes dockerd re-read its own file, decode each line and
//! encode it again into the multiplexed stream; on a small host that tops
//! out near 15 MB/s for all containers together. docker-cri sets json-file
//! on every container it creates, so for those it reads the file Docker
//! writes (`LogPath` in inspect) itself. Containers with another driver
//! (created by cri-dockerd, say), compressed rotation, or a path docker-cri
//! cannot open go through the API as before.

mod follow;
mod parse;
mod watch;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use bollard::models::ContainerInspectResponse;
use futures_util::future::BoxFuture;
use tokio::sync::Notify;

use super::DockerClient;
use super::logs::{CriLines, KnownStates, LogBatches, LogReader, LogSource, RunState};
use crate::error::{Error, Result};
use follow::Timing;

/// Where Docker keeps a container's json-file log, when docker-cri can
/// read it itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonLog {
    pub path: PathBuf,
    /// Docker's `max-file`: how many files (the current one and rotated
    /// `.1` … `.N-1`) may exist.
    pub max_file: u32,
}

/// The container's json-file log, unless its driver is another one or
/// rotated files are gzipped (`compress`: not something docker-cri sets).
pub fn json_log_of(c: &ContainerInspectResponse) -> Option<JsonLog> {
    let config = c.host_config.as_ref()?.log_config.as_ref()?;
    if config.typ.as_deref() != Some("json-file") {
        return None;
    }
    let option = |key: &str| config.config.as_ref().and_then(|o| o.get(key));
    if option("compress").is_some_and(|v| v != "false") {
        return None;
    }
    let path = PathBuf::from(c.log_path.as_deref().filter(|p| !p.is_empty())?);
    if !path.is_absolute() {
        return None;
    }
    // Docker's default is one file; an unreadable value counts as that
    // plus the files actually there (open_files stops at missing ones).
    let max_file = option("max-file").map_or(Some(1), |v| v.parse().ok());
    Some(JsonLog {
        path,
        max_file: max_file.unwrap_or(100),
    })
}

/// Container logs from Docker's json file when possible, else its API.
pub struct DockerLogs {
    timing: Timing,
    /// The wake-ups of the followers, by container ID.
    followers: Followers,
    /// Made on first use (it needs the runtime); `None`: inotify is not
    /// available and idle followers poll.
    files: Arc<OnceLock<Option<watch::FileWatch>>>,
    /// Answers "does it still run?" from memory when it can.
    states: States,
}

/// Docker, asked only when `known` cannot say.
#[derive(Clone)]
struct States {
    docker: Arc<DockerClient>,
    known: Option<Arc<dyn KnownStates>>,
}

impl States {
    async fn run_state(&self, id: &str) -> Result<RunState> {
        match self.known.as_ref().and_then(|k| k.known_state(id)) {
            Some(state) => Ok(state),
            None => self.docker.run_state(id).await,
        }
    }
}

type Followers = Arc<Mutex<HashMap<String, Arc<Notify>>>>;

impl DockerLogs {
    pub fn new(docker: Arc<DockerClient>) -> Self {
        DockerLogs {
            timing: Timing::default(),
            followers: Followers::default(),
            files: Arc::default(),
            states: States {
                docker,
                known: None,
            },
        }
    }

    /// Takes run states from `known` (the index) instead of an inspect
    /// whenever it has them: each follower asks at every stop wake-up and
    /// each writer as its stream ends.
    pub fn with_known_states(mut self, known: Arc<dyn KnownStates>) -> Self {
        self.states.known = Some(known);
        self
    }
}

impl LogSource for DockerLogs {
    fn logs(&self, id: &str, since_nanos: Option<i64>) -> LogBatches {
        Box::new(Opening {
            start: Start {
                docker: self.states.docker.clone(),
                id: id.to_string(),
                since: since_nanos,
                timing: self.timing,
                followers: self.followers.clone(),
                files: self.files.clone(),
                states: self.states.clone(),
            },
            reader: None,
        })
    }

    fn run_state<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<RunState>> {
        Box::pin(self.states.run_state(id))
    }

    fn stopped(&self, id: &str) {
        if let Some(wake) = lock(&self.followers).get(id) {
            wake.notify_one();
        }
    }
}

fn file_watch() -> Option<watch::FileWatch> {
    watch::FileWatch::new()
        .inspect_err(
            |e| tracing::warn!(error = %e, "inotify not available; idle container logs are polled"),
        )
        .ok()
}

fn lock(followers: &Followers) -> MutexGuard<'_, HashMap<String, Arc<Notify>>> {
    followers.lock().unwrap_or_else(|p| p.into_inner())
}

/// A follower's entry in [`DockerLogs::followers`], removed with it.
struct Registered {
    followers: Followers,
    id: String,
    wake: Arc<Notify>,
}

impl Registered {
    fn new(followers: Followers, id: &str) -> Self {
        let wake = Arc::new(Notify::new());
        lock(&followers).insert(id.to_string(), wake.clone());
        Registered {
            followers,
            id: id.to_string(),
            wake,
        }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut map = lock(&self.followers);
        if map
            .get(&self.id)
            .is_some_and(|w| Arc::ptr_eq(w, &self.wake))
        {
            map.remove(&self.id);
        }
    }
}

/// What a reader needs to pick its way: the file, or Docker's API.
struct Start {
    docker: Arc<DockerClient>,
    id: String,
    since: Option<i64>,
    timing: Timing,
    followers: Followers,
    files: Arc<OnceLock<Option<watch::FileWatch>>>,
    states: States,
}

impl Start {
    async fn open(&self) -> LogBatches {
        let files = self.files.get_or_init(file_watch).clone();
        match direct(self, files).await {
            Some(reader) => reader,
            None => self.docker.logs(&self.id, self.since),
        }
    }
}

/// Picks its way at the first read (which may be dropped and tried again:
/// nothing is read until a reader is there).
struct Opening {
    start: Start,
    reader: Option<LogBatches>,
}

impl LogReader for Opening {
    fn read_into<'a>(&'a mut self, into: &'a mut CriLines) -> BoxFuture<'a, Option<Result<()>>> {
        Box::pin(async move {
            let reader = match &mut self.reader {
                Some(reader) => reader,
                None => self.reader.insert(self.start.open().await),
            };
            reader.read_into(into).await
        })
    }
}

/// The reader of the json file, or `None` for the API.
async fn direct(start: &Start, watch: Option<watch::FileWatch>) -> Option<LogBatches> {
    let (docker, id, since, timing) = (&start.docker, start.id.as_str(), start.since, start.timing);
    let log = match docker.inspect_container(id).await {
        Ok(Some(c)) => json_log_of(&c)?,
        // The API answers these with the same error, in the stream.
        Ok(None) | Err(_) => return None,
    };
    let (path, max_file) = (log.path.clone(), log.max_file);
    let opened =
        tokio::task::spawn_blocking(move || follow::open_files(&log.path, log.max_file, since))
            .await
            .map_err(|e| Error::internal(e.to_string()));
    let files = match opened {
        Ok(Ok(files)) => files,
        Ok(Err(e)) => {
            tracing::debug!(container = id, path = %path.display(), error = %e, "json log not readable; using Docker's logs API");
            return None;
        }
        Err(e) => {
            tracing::debug!(container = id, error = %e, "json log not opened; using Docker's logs API");
            return None;
        }
    };
    let stop_check: follow::StopCheck = {
        let (states, id) = (start.states.clone(), id.to_string());
        Box::new(move || {
            let (states, id) = (states.clone(), id.clone());
            Box::pin(async move { states.run_state(&id).await })
        })
    };
    let registered = Registered::new(start.followers.clone(), id);
    let wake = follow::Wake {
        stopped: registered.wake.clone(),
        files: watch,
    };
    let follower = match follow::Follower::new(
        path, max_file, files, since, stop_check, wake, timing,
    ) {
        Ok(f) => f,
        Err(e) => {
            tracing::debug!(container = id, error = %e, "json log not readable; using Docker's logs API");
            return None;
        }
    };
    tracing::debug!(container = id, "following the container's json log file");
    Some(Box::new(FileReader {
        follower,
        _registered: registered,
    }))
}

/// The follower, registered for stop wake-ups while it lives.
struct FileReader {
    follower: follow::Follower,
    _registered: Registered,
}

impl LogReader for FileReader {
    fn read_into<'a>(&'a mut self, into: &'a mut CriLines) -> BoxFuture<'a, Option<Result<()>>> {
        Box::pin(self.follower.next_batch(into))
    }
}

#[cfg(test)]
mod tests;
