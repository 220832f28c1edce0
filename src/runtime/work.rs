//! Work that runs to its end even when its caller goes away (RunPodSandbox,
//! CreateContainer build and clean up Docker objects), counted so that
//! shutdown can wait for it instead of dropping it half done.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

#[derive(Default)]
struct Inner {
    running: AtomicUsize,
    idle: Notify,
}

#[derive(Default)]
pub struct WorkTracker {
    inner: Arc<Inner>,
}

/// Counts one task out however it ends: finished, panicked or aborted.
struct Running(Arc<Inner>);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl WorkTracker {
    /// Spawns `work` on its own task, counted until it ends.
    pub fn spawn<F>(&self, work: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        // Counted before it exists, so a waiter never sees a gap.
        self.inner.running.fetch_add(1, Ordering::SeqCst);
        let running = Running(self.inner.clone());
        tokio::spawn(async move {
            let _running = running;
            work.await
        })
    }

    pub fn running(&self) -> usize {
        self.inner.running.load(Ordering::SeqCst)
    }

    /// Waits until no tracked work runs, for at most `limit`. True when
    /// none is left.
    pub async fn wait_idle(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let idle = self.inner.idle.notified();
            if self.running() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return self.running() == 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_for_running_work_within_the_limit() {
        let tracker = WorkTracker::default();
        assert!(
            tracker.wait_idle(Duration::ZERO).await,
            "idle when nothing ran"
        );
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let done = tracker.spawn(async move {
            let _ = released.await;
            42
        });
        assert_eq!(tracker.running(), 1);
        assert!(
            !tracker.wait_idle(Duration::from_millis(50)).await,
            "still running"
        );
        release.send(()).unwrap();
        assert!(tracker.wait_idle(Duration::from_secs(20)).await);
        assert_eq!(done.await.unwrap(), 42);
    }

    #[tokio::test]
    async fn aborted_and_panicked_work_is_counted_out() {
        let tracker = WorkTracker::default();
        let forever = tracker.spawn(std::future::pending::<()>());
        let panics = tracker.spawn(async { panic!("boom") });
        assert!(panics.await.is_err());
        assert_eq!(tracker.running(), 1);
        forever.abort();
        assert!(tracker.wait_idle(Duration::from_secs(20)).await);
    }
}
