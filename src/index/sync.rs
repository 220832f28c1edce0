//! Keeping the index current: subscribe to Docker's events, relist, then
//! follow the events; start over when the stream breaks.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::mpsc;

use crate::docker::events::ContainerEvent;
use crate::error::Result;

use super::source::StateSource;
use super::{Index, now_nanos};

/// Back-off between attempts while Docker is away, doubling to the cap.
const FIRST_RETRY: Duration = Duration::from_millis(200);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// How far before "now" a fresh subscription starts, so that events
/// Docker stamped just before the request (clock granularity, the request
/// still in flight) are replayed rather than missed. Replays are harmless:
/// an event only causes a re-read.
const SUBSCRIBE_OVERLAP_NANOS: i64 = 1_000_000_000;

/// A resubscription resumes from the last event seen if it is this recent;
/// Docker keeps only a bounded backlog, and the relist covers the rest.
const RESUME_WINDOW_NANOS: i64 = 60 * 1_000_000_000;

/// Inspects in flight during a relist.
const RELIST_CONCURRENCY: usize = 8;

/// Ends the forwarding task with the subscription it serves.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<S: StateSource> Index<S> {
    /// Runs for the life of the process.
    pub async fn run(self: Arc<Self>) {
        let mut last_event: Option<i64> = None;
        let mut retry = FIRST_RETRY;
        loop {
            let now = now_nanos();
            let since = match last_event {
                Some(t) if now - t < RESUME_WINDOW_NANOS => t,
                _ => now - SUBSCRIBE_OVERLAP_NANOS,
            };
            match self.clone().follow(since, &mut last_event).await {
                Ok(()) => retry = FIRST_RETRY,
                Err(e) => {
                    tracing::warn!(error = %e, "container index lost Docker's event stream; answering from Docker until it is back");
                }
            }
            self.lock().synced = false;
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(MAX_RETRY);
        }
    }

    /// One subscription: relist, then apply events until the stream ends.
    async fn follow(self: Arc<Self>, since: i64, last_event: &mut Option<i64>) -> Result<()> {
        let mut stream = self.source.events(since).await?;
        // Docker only starts sending once the request is made, which a
        // stream does when polled: a task polls it from now on, while the
        // relist runs.
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _forward = AbortOnDrop(tokio::spawn(async move {
            while let Some(item) = stream.next().await {
                if tx.send(item).is_err() {
                    break;
                }
            }
        }));
        self.relist().await?;
        tracing::info!("container index in sync with Docker");
        loop {
            tokio::select! {
                item = rx.recv() => match item {
                    Some(Ok(event)) => {
                        *last_event = Some(last_event.map_or(event.time_nanos, |t| t.max(event.time_nanos)));
                        self.on_event(event);
                    }
                    Some(Err(e)) => return Err(e),
                    None => return Err(crate::Error::DockerUnavailable("Docker ended the event stream".into())),
                },
                () = self.resync.notified() => self.relist().await?,
            }
        }
    }

    /// Reads every managed container afresh; entries Docker no longer has
    /// are removed (unless something newer than the relist put them there).
    pub(super) async fn relist(&self) -> Result<()> {
        let started = self.next_ticket();
        let ids = self.source.managed_ids().await?;
        let mut reads: FuturesUnordered<_> = FuturesUnordered::new();
        let mut pending = ids.iter();
        loop {
            while reads.len() < RELIST_CONCURRENCY {
                let Some(id) = pending.next() else { break };
                reads.push(async move {
                    let ticket = self.next_ticket();
                    let observed_at = now_nanos();
                    (id, ticket, observed_at, self.source.record(id).await)
                });
            }
            let Some((id, ticket, observed_at, read)) = reads.next().await else {
                break;
            };
            self.apply(id, ticket, observed_at, read?);
        }
        let listed: HashSet<&String> = ids.iter().collect();
        let gone: Vec<String> = self
            .lock()
            .slots
            .iter()
            .filter(|(id, s)| s.record.is_some() && s.ticket < started && !listed.contains(id))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            self.apply(&id, started, now_nanos(), None);
        }
        self.lock().synced = true;
        Ok(())
    }

    /// An event means "read this container again", unless the entry was
    /// read (or a read was sent) after the event happened, or a read is
    /// already queued. A queued read waits a moment first (see
    /// `EVENT_SETTLE`) and is dropped if a read sent meanwhile covers it.
    pub(super) fn on_event(self: &Arc<Self>, event: ContainerEvent) {
        if event.action == "destroy" {
            self.forget(&event.id);
            return;
        }
        if self.covers(&event.id, event.time_nanos) {
            return;
        }
        {
            let mut queued = self.queued.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(newest) = queued.get_mut(&event.id) {
                *newest = (*newest).max(event.time_nanos);
                return;
            }
            queued.insert(event.id.clone(), event.time_nanos);
        }
        let index = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(super::EVENT_SETTLE).await;
            let _permit = index.refresh_slots.acquire().await;
            let newest = index
                .queued
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&event.id)
                .unwrap_or(event.time_nanos);
            if !index.covers(&event.id, newest) {
                index.refresh(&event.id).await;
            }
        });
    }
}
