//! Disk usage of Docker's image store and of container writable layers, for
//! ImageFsInfo. Measuring walks the layer directories, so it never happens on
//! every call: the last sample is served, and a stale one is refreshed in the
//! background (stale-while-revalidate) at most once per interval.
//!
//! Before the first walk finishes (minutes on a large store, longer than
//! kubelet waits), callers get a statvfs figure of the filesystem holding
//! the layers: everything used on it counts as image storage and container
//! layers as none. It is an upper bound, cheap and immediate, and it is
//! replaced by the walk's figure as soon as that exists.

mod store;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use tokio::sync::Mutex;

use crate::docker::DockerClient;
use crate::error::{Error, Result};

use store::{FsUsage, LayerStore, layer_store};

/// How long the first call waits for the first walk before it is served the
/// statvfs figure instead. Small stores are measured well within it.
const FIRST_WAIT: Duration = Duration::from_secs(1);

/// Where the figures come from; tests stand in a slow walk.
pub(crate) trait Source: Send + Sync + 'static {
    fn measure(&self) -> BoxFuture<'static, Result<FsUsage>>;
    fn estimate(&self) -> BoxFuture<'static, Result<FsUsage>>;
}

struct DockerSource(Arc<DockerClient>);

impl DockerSource {
    /// Runs `f` on the layer store off the async workers: both touch disk.
    fn with_store(
        &self,
        what: &'static str,
        f: fn(&LayerStore) -> Result<FsUsage>,
    ) -> BoxFuture<'static, Result<FsUsage>> {
        let docker = self.0.clone();
        Box::pin(async move {
            let store = layer_store(&*docker.info().await?);
            tokio::task::spawn_blocking(move || f(&store))
                .await
                .map_err(|e| Error::internal(format!("{what}: {e}")))?
        })
    }
}

impl Source for DockerSource {
    fn measure(&self) -> BoxFuture<'static, Result<FsUsage>> {
        self.with_store("measuring image filesystem", LayerStore::measure)
    }

    fn estimate(&self) -> BoxFuture<'static, Result<FsUsage>> {
        self.with_store("estimating image filesystem", LayerStore::estimate)
    }
}

#[derive(Default)]
struct State {
    sample: Option<Arc<FsUsage>>,
    /// A measurement task is running, since then.
    measuring: Option<Instant>,
    /// How the last measurement failed, for callers waiting on it.
    last_error: Option<(bool, String)>,
}

pub struct FsUsageSampler {
    source: Arc<dyn Source>,
    interval: Duration,
    first_wait: Duration,
    state: Arc<Mutex<State>>,
    measured: Arc<tokio::sync::Notify>,
}

impl FsUsageSampler {
    pub fn new(docker: Arc<DockerClient>, interval: Duration) -> Self {
        Self::with_source(Arc::new(DockerSource(docker)), interval, FIRST_WAIT)
    }

    pub(crate) fn with_source(
        source: Arc<dyn Source>,
        interval: Duration,
        first_wait: Duration,
    ) -> Self {
        FsUsageSampler {
            source,
            interval,
            first_wait,
            state: Arc::new(Mutex::new(State::default())),
            measured: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// The latest sample. Measuring runs on its own task, at most one at a
    /// time, and survives callers that give up; a stale sample is served
    /// while a fresh one is taken, and the statvfs figure while the first
    /// one is.
    pub async fn latest(&self) -> Result<Arc<FsUsage>> {
        let measured = self.measured.notified();
        let since;
        {
            let mut state = self.state.lock().await;
            if let Some(sample) = state.sample.clone() {
                if sample.taken.elapsed() >= self.interval && state.measuring.is_none() {
                    self.start_measuring(&mut state);
                }
                return Ok(sample);
            }
            if state.measuring.is_none() {
                state.last_error = None;
                self.start_measuring(&mut state);
            }
            // Only the first second of a walk is waited for, in all.
            since = state.measuring.unwrap_or_else(Instant::now);
        }
        let wait = self.first_wait.saturating_sub(since.elapsed());
        let finished = tokio::time::timeout(wait, measured).await.is_ok();
        if finished {
            let state = self.state.lock().await;
            if let Some(sample) = state.sample.clone() {
                return Ok(sample);
            }
            if let Some((unavailable, message)) = state.last_error.clone() {
                return Err(if unavailable {
                    Error::DockerUnavailable(message)
                } else {
                    Error::FailedPrecondition(message)
                });
            }
        }
        tracing::debug!("first image filesystem walk still running; serving the statvfs figure");
        Ok(Arc::new(self.source.estimate().await?))
    }

    fn start_measuring(&self, state: &mut State) {
        state.measuring = Some(Instant::now());
        let (source, shared, measured) = (
            self.source.clone(),
            self.state.clone(),
            self.measured.clone(),
        );
        tokio::spawn(async move {
            let result = source.measure().await;
            let mut state = shared.lock().await;
            state.measuring = None;
            match result {
                Ok(sample) => state.sample = Some(Arc::new(sample)),
                Err(e) => {
                    tracing::warn!(error = %e, "measuring image filesystem usage failed");
                    state.last_error =
                        Some((matches!(e, Error::DockerUnavailable(_)), e.to_string()));
                }
            }
            drop(state);
            measured.notify_waiters();
        });
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::store::Usage;

    use super::*;

    /// A walk that finishes only when told to.
    struct SlowSource {
        release: Arc<tokio::sync::Semaphore>,
        walks: Arc<std::sync::atomic::AtomicUsize>,
    }

    fn usage(bytes: u64) -> FsUsage {
        FsUsage::new(
            PathBuf::from("/x"),
            Usage { bytes, inodes: 1 },
            Usage::default(),
        )
    }

    impl Source for SlowSource {
        fn measure(&self) -> BoxFuture<'static, Result<FsUsage>> {
            let (release, walks) = (self.release.clone(), self.walks.clone());
            Box::pin(async move {
                walks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _permit = release.acquire().await;
                Ok(usage(1000))
            })
        }

        fn estimate(&self) -> BoxFuture<'static, Result<FsUsage>> {
            Box::pin(async { Ok(usage(7)) })
        }
    }

    #[tokio::test]
    async fn the_first_call_does_not_wait_for_a_long_walk() {
        let release = Arc::new(tokio::sync::Semaphore::new(0));
        let walks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let source = SlowSource {
            release: release.clone(),
            walks: walks.clone(),
        };
        let sampler = FsUsageSampler::with_source(
            Arc::new(source),
            Duration::from_secs(3600),
            Duration::from_millis(50),
        );
        // The walk never ends until released: before, this waited forever.
        for _ in 0..3 {
            let first = tokio::time::timeout(Duration::from_secs(20), sampler.latest())
                .await
                .expect("the first ImageFsInfo waited for the whole walk")
                .unwrap();
            assert_eq!(first.images.bytes, 7, "the estimate is served");
        }
        assert_eq!(
            walks.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "one walk"
        );
        release.add_permits(1);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if sampler.latest().await.unwrap().images.bytes == 1000 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the walk's figure never replaced the estimate"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
