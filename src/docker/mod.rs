//! The Docker Engine client: a version-negotiated bollard handle with a
//! per-call timeout. Nothing in here knows about gRPC.
//!
//! Connecting (`docker version` to negotiate, `docker info` for the facts
//! the runtime needs) runs as one background attempt at a time under a
//! short probe timeout. Callers never wait on a lock held across I/O, and
//! wait for a daemon that has not answered yet only briefly: while Docker is
//! starting (socket-activated dockerd accepts and answers late) or down,
//! calls fail fast with Unavailable and Status reports NotReady, instead of
//! queueing behind one slow connect.

pub mod containers;
mod error;
pub mod events;
pub mod exec;
pub mod images;
pub mod json_file;
pub mod logs;
pub mod system;
pub mod view;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bollard::{ClientVersion, Docker};
use tokio::sync::Notify;

use crate::error::{Error, Result};
use crate::mapping::info::ApiVersion;
use crate::metrics::{DockerOutcome, Metrics};

pub use error::from_bollard;
pub use system::DaemonFacts;

/// bollard's own timeout only covers the response head; our per-call timeout
/// wraps whole calls, so bollard's is set out of the way (pulls may stream for
/// a long time).
const BOLLARD_HEAD_TIMEOUT_SECS: u64 = 24 * 3600;

/// How long a connection attempt's calls (and Status's ping) may take. A
/// daemon that has not answered `docker version` by then is not ready.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a caller waits for an attempt in flight whose daemon has not
/// answered yet before answering Unavailable: a daemon that is starting
/// does not hold up kubelet's calls. Once it has answered `docker version`
/// it is alive, and callers wait for the rest of the attempt (a loaded
/// daemon may take a while over `docker info`), still within the probe
/// timeout.
const JOIN_WAIT: Duration = Duration::from_secs(1);

/// Back-off between failed attempts, doubling up to the cap, so that a down
/// daemon is not hammered while recovery stays prompt.
const FIRST_RETRY: Duration = Duration::from_millis(200);
const MAX_RETRY: Duration = Duration::from_secs(2);

/// `docker info`/`docker version` change only with a daemon restart (a
/// reconnect); refreshing this often catches a restart no call noticed.
const FACTS_REFRESH: Duration = Duration::from_secs(60);

/// The newest API bollard knows. We never ask for more than this.
fn client_max_version() -> ApiVersion {
    let v = bollard::API_DEFAULT_VERSION;
    ApiVersion(v.major_version as u32, v.minor_version as u32)
}

#[derive(Clone)]
struct Connection {
    docker: Docker,
    api: ApiVersion,
    facts: Arc<DaemonFacts>,
    /// Which connection this is, so that late news about an old one
    /// (a refresh, an error) does not overwrite a newer one.
    generation: u64,
}

/// Why the last attempt failed; replayed to callers during the back-off.
struct Failure {
    too_old: bool,
    message: String,
    at: Instant,
    retry_after: Duration,
}

impl Failure {
    fn to_error(&self) -> Error {
        if self.too_old {
            Error::DockerTooOld(self.message.clone())
        } else {
            Error::DockerUnavailable(self.message.clone())
        }
    }
}

#[derive(Default)]
struct State {
    conn: Option<Connection>,
    /// When the attempt in flight started.
    attempt_started: Option<Instant>,
    /// The attempt in flight has had an answer from the daemon.
    attempt_answered: bool,
    failure: Option<Failure>,
    generation: u64,
    refreshing: bool,
    refresh_due: Option<Instant>,
}

struct Timings {
    probe: Duration,
    join_wait: Duration,
    first_retry: Duration,
    refresh: Duration,
}

struct Shared {
    socket: PathBuf,
    call_timeout: Duration,
    timings: Timings,
    /// Only ever held for a few instructions, never across an await.
    state: Mutex<State>,
    /// Woken when an attempt settles.
    settled: Notify,
    /// Call counts and latencies, connection state.
    metrics: Arc<Metrics>,
}

pub struct DockerClient {
    shared: Arc<Shared>,
}

/// What a caller finds when it looks for a connection.
enum Found {
    Ready(Connection),
    Failed(Error),
    Pending { started: Instant, answered: bool },
}

impl DockerClient {
    /// Does not touch the daemon: docker-cri must start (and report "not
    /// ready") while Docker is down.
    pub fn new(socket: &Path, call_timeout: Duration) -> Self {
        Self::with_timings(
            socket,
            call_timeout,
            Timings {
                probe: PROBE_TIMEOUT.min(call_timeout),
                join_wait: JOIN_WAIT,
                first_retry: FIRST_RETRY,
                refresh: FACTS_REFRESH,
            },
        )
    }

    fn with_timings(socket: &Path, call_timeout: Duration, timings: Timings) -> Self {
        DockerClient {
            shared: Arc::new(Shared {
                socket: socket.to_path_buf(),
                call_timeout,
                timings,
                state: Mutex::new(State::default()),
                settled: Notify::new(),
                metrics: Arc::new(Metrics::default()),
            }),
        }
    }

    /// Records this client's calls and connection state into `metrics`.
    /// Call before the client is shared.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.metrics = metrics;
        }
        self
    }

    /// Where this client records its calls; shared with the rest of the
    /// process's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    pub fn call_timeout(&self) -> Duration {
        self.shared.call_timeout
    }

    /// The negotiated API version, connecting first if needed.
    pub async fn api_version(&self) -> Result<ApiVersion> {
        Ok(self.connection().await?.api)
    }

    /// `docker version` and `docker info` as of the (re)connect or the last
    /// periodic refresh: no call to Docker when connected.
    pub async fn facts(&self) -> Result<Arc<DaemonFacts>> {
        Ok(self.connection().await?.facts)
    }

    async fn connection(&self) -> Result<Connection> {
        let timings = &self.shared.timings;
        let entered = Instant::now();
        let mut may_start = true;
        loop {
            // Registered before looking, so an attempt settling in between
            // is not missed.
            let settled = self.shared.settled.notified();
            let (started, answered) = match self.shared.find(may_start) {
                Found::Ready(c) => return Ok(c),
                Found::Failed(e) => return Err(e),
                Found::Pending { started, answered } => (started, answered),
            };
            may_start = false;
            // An attempt ends within its two probe timeouts.
            let deadline = if answered {
                started + timings.probe * 2
            } else {
                entered + timings.join_wait
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::DockerUnavailable(format!(
                    "still connecting to {} (no answer for {:.1}s)",
                    self.shared.socket.display(),
                    started.elapsed().as_secs_f64()
                )));
            }
            let _ = tokio::time::timeout(left, settled).await;
        }
    }

    /// For one-shot commands, which have nothing better to do: waits up to
    /// `within` for a connection, through retries, rather than failing while
    /// the daemon starts.
    pub async fn wait_connected(&self, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            match self.connection().await {
                Ok(_) => return Ok(()),
                Err(e @ Error::DockerTooOld(_)) => return Err(e),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(self.shared.timings.first_retry).await,
            }
        }
    }

    /// Runs one non-streaming Docker call under the per-call timeout.
    pub async fn call<T, F, Fut>(&self, what: &'static str, f: F) -> Result<T>
    where
        F: FnOnce(Docker) -> Fut,
        Fut: Future<Output = Result<T, bollard::errors::Error>>,
    {
        self.call_within(what, self.shared.call_timeout, f).await
    }

    async fn call_within<T, F, Fut>(&self, what: &'static str, after: Duration, f: F) -> Result<T>
    where
        F: FnOnce(Docker) -> Fut,
        Fut: Future<Output = Result<T, bollard::errors::Error>>,
    {
        let docker = self.handle().await?;
        let started = std::time::Instant::now();
        let result = with_timeout(what, after, f(docker)).await;
        let outcome = match &result {
            Ok(_) => DockerOutcome::Ok,
            Err(Error::NotFound(_)) => DockerOutcome::NotFound,
            Err(Error::DockerUnavailable(_)) => DockerOutcome::Unavailable,
            Err(Error::DeadlineExceeded { .. }) => DockerOutcome::Timeout,
            Err(Error::InvalidArgument(_) | Error::FailedPrecondition(_)) => DockerOutcome::Refused,
            Err(_) => DockerOutcome::Error,
        };
        self.shared
            .metrics
            .record_docker(what, outcome, started.elapsed());
        if let Err(e) = &result {
            self.note_error(e).await;
        }
        result
    }

    /// A handle for streaming calls (pull, build) that manage time themselves.
    pub async fn handle(&self) -> Result<Docker> {
        Ok(self.connection().await?.docker)
    }

    /// After Docker went away, renegotiate next time: it may come back as a
    /// different version, with different facts.
    pub async fn note_error(&self, error: &Error) {
        if matches!(error, Error::DockerUnavailable(_)) {
            let mut state = self.shared.lock();
            if state.conn.take().is_some() {
                self.shared.metrics.set_docker_connected(false);
                tracing::warn!(%error, "lost the connection to docker");
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent at every step, so a panic elsewhere
        // while holding it leaves nothing to repair.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Looks at the state; with `may_start`, starts an attempt when none is
    /// in flight and the back-off has passed, and a refresh when one is due.
    fn find(self: &Arc<Self>, may_start: bool) -> Found {
        let mut state = self.lock();
        if let Some(conn) = state.conn.clone() {
            let due = state.refresh_due.is_some_and(|due| Instant::now() >= due);
            if may_start && due && !state.refreshing {
                state.refreshing = true;
                tokio::spawn(self.clone().refresh(conn.clone()));
            }
            return Found::Ready(conn);
        }
        if let Some(started) = state.attempt_started {
            return Found::Pending {
                started,
                answered: state.attempt_answered,
            };
        }
        if let Some(f) = &state.failure
            && (!may_start || f.at.elapsed() < f.retry_after)
        {
            return Found::Failed(f.to_error());
        }
        if !may_start {
            return Found::Failed(Error::DockerUnavailable(format!(
                "not connected to {}",
                self.socket.display()
            )));
        }
        let now = Instant::now();
        state.attempt_started = Some(now);
        state.attempt_answered = false;
        tokio::spawn(self.clone().attempt());
        Found::Pending {
            started: now,
            answered: false,
        }
    }

    /// One connection attempt; its outcome is recorded for every caller.
    async fn attempt(self: Arc<Self>) {
        let result = self.negotiate().await;
        let mut state = self.lock();
        state.attempt_started = None;
        match result {
            Ok((docker, facts)) => {
                tracing::info!(
                    api = %facts.api,
                    version = facts.version.version.as_deref().unwrap_or("?"),
                    socket = %self.socket.display(),
                    "connected to docker"
                );
                state.generation += 1;
                state.conn = Some(Connection {
                    docker,
                    api: facts.api,
                    facts: Arc::new(facts),
                    generation: state.generation,
                });
                state.failure = None;
                state.refresh_due = Some(Instant::now() + self.timings.refresh);
                self.metrics.set_docker_connected(true);
            }
            Err(e) => {
                let retry_after = match &state.failure {
                    Some(f) => (f.retry_after * 2).min(MAX_RETRY),
                    None => self.timings.first_retry,
                };
                let (too_old, message) = match e {
                    Error::DockerTooOld(m) => (true, m),
                    Error::DockerUnavailable(m) => (false, m),
                    other => (false, other.to_string()),
                };
                // Once per outage, not once per retry.
                if state.failure.as_ref().is_none_or(|f| f.message != message) {
                    tracing::warn!(error = %message, socket = %self.socket.display(), "cannot connect to docker");
                }
                state.failure = Some(Failure {
                    too_old,
                    message,
                    at: Instant::now(),
                    retry_after,
                });
            }
        }
        drop(state);
        self.settled.notify_waiters();
    }

    /// Re-reads the facts of a live connection, off the callers' path.
    async fn refresh(self: Arc<Self>, conn: Connection) {
        let result = system::fetch_facts(&conn.docker, conn.api, self.timings.probe).await;
        let mut state = self.lock();
        state.refreshing = false;
        state.refresh_due = Some(Instant::now() + self.timings.refresh);
        let Some(current) = state
            .conn
            .as_mut()
            .filter(|c| c.generation == conn.generation)
        else {
            return;
        };
        match result {
            Ok(facts) => {
                let server = facts
                    .version
                    .api_version
                    .as_deref()
                    .and_then(ApiVersion::parse);
                if server.map(|s| s.min(client_max_version())) == Some(current.api) {
                    current.facts = Arc::new(facts);
                } else {
                    // The daemon was replaced under us: renegotiate.
                    state.conn = None;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "refreshing docker info failed");
                if matches!(e, Error::DockerUnavailable(_)) {
                    state.conn = None;
                }
            }
        }
    }

    async fn negotiate(&self) -> Result<(Docker, DaemonFacts)> {
        let context = || format!("connecting to docker at {}", self.socket.display());
        let probe = self.connect(crate::mapping::info::MIN_API_VERSION)?;
        let api = system::negotiate_api(&probe, self.timings.probe)
            .await
            .map_err(|e| e.context(context()))?
            .min(client_max_version());
        // Alive: callers may now wait for the rest of this attempt.
        self.lock().attempt_answered = true;
        let docker = self.connect(api)?;
        let facts = system::fetch_facts(&docker, api, self.timings.probe)
            .await
            .map_err(|e| e.context(context()))?;
        Ok((docker, facts))
    }

    fn connect(&self, api: ApiVersion) -> Result<Docker> {
        let path = self.socket.to_string_lossy();
        let version = ClientVersion {
            major_version: api.0 as usize,
            minor_version: api.1 as usize,
        };
        Docker::connect_with_unix(&path, BOLLARD_HEAD_TIMEOUT_SECS, &version).map_err(from_bollard)
    }
}

async fn with_timeout<T>(
    what: &str,
    after: Duration,
    fut: impl Future<Output = Result<T, bollard::errors::Error>>,
) -> Result<T> {
    match tokio::time::timeout(after, fut).await {
        Ok(r) => r.map_err(|e| from_bollard(e).context(what)),
        Err(_) => Err(Error::DeadlineExceeded {
            what: what.to_string(),
            after,
        }),
    }
}

#[cfg(test)]
mod tests;
