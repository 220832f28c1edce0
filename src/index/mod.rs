//! The event-fed, in-memory state of docker-cri's own sandboxes and
//! containers: List and Status answers come from here, and container
//! events for kubelet's Evented PLEG fan out from here.
//!
//! Every entry is made from one inspect. Each inspect takes a ticket before
//! it is sent; an answer only replaces an entry holding an older ticket, so
//! a slow inspect never overwrites a newer one, and a removal (a tombstone
//! with its ticket) is never undone by an inspect sent before it. Docker's
//! events trigger inspects; docker-cri's own operations refresh the entries
//! they changed before they return (read-your-writes). While the event
//! stream is down the index says so (`None` from every read) and callers
//! ask Docker instead.

mod events;
pub mod record;
pub mod source;
mod sync;
#[cfg(test)]
mod tests;
pub mod view;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore, broadcast};

use crate::api;
use crate::docker::view::Listed;
use record::{Body, Record};
use source::StateSource;

/// How long a removal is remembered, so that an inspect sent before it
/// and answered after it cannot bring the container back. Longer than any
/// Docker call may take.
const TOMBSTONE_TTL: Duration = Duration::from_secs(600);

/// Inspects in flight for events at once; the rest wait their turn.
const EVENT_REFRESHES: usize = 16;
/// How long an event waits before its inspect: docker-cri's own operations
/// re-read what they changed as Docker answers them, which is usually
/// within a few ms of Docker's event for the change, so after this pause
/// their read mostly covers the event and it costs no inspect of its own.
/// Changes made outside docker-cri are seen this much later.
const EVENT_SETTLE: Duration = Duration::from_millis(25);

/// Container events a slow subscriber may fall behind by before its stream
/// is ended (it then relists, as kubelet does on a broken stream).
const EVENT_BUFFER: usize = 4096;

/// The answer to a lookup by full ID or unique prefix.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup<T> {
    Found(T),
    Missing,
    Ambiguous(usize),
}

struct Slot {
    ticket: u64,
    /// Wall-clock Unix nanoseconds when the inspect behind this entry was
    /// sent: an event older than that is already reflected.
    observed_at: i64,
    record: Option<Record>,
    removed: Option<Instant>,
}

#[derive(Default)]
struct State {
    synced: bool,
    slots: HashMap<String, Slot>,
}

pub struct Index<S> {
    source: S,
    state: Mutex<State>,
    tickets: AtomicU64,
    events: broadcast::Sender<api::ContainerEventResponse>,
    /// IDs of containers that just stopped: a light feed for the log
    /// followers, so full events are only built while someone wants them.
    stops: broadcast::Sender<String>,
    /// Set when an entry could not be refreshed: the index no longer knows
    /// it is right, and the sync loop relists.
    resync: Notify,
    /// Event-triggered refreshes queued and not yet sent, with the time of
    /// the newest event behind each: another event for the same container
    /// needs no inspect of its own.
    queued: Mutex<HashMap<String, i64>>,
    /// Reads sent and not yet answered, by container, with the ticket and
    /// send time of the latest: an event older than that read needs no
    /// inspect of its own (docker-cri's own operations re-read as Docker
    /// reports their events, which would otherwise double every inspect).
    reading: Mutex<HashMap<String, (u64, i64)>>,
    refresh_slots: Semaphore,
}

impl<S: StateSource> crate::docker::logs::KnownStates for Index<S> {
    fn known_state(&self, id: &str) -> Option<crate::docker::logs::RunState> {
        self.run_state(id)
    }
}

impl<S: StateSource> Index<S> {
    pub fn new(source: S) -> Self {
        Index {
            source,
            state: Mutex::default(),
            tickets: AtomicU64::new(1),
            events: broadcast::channel(EVENT_BUFFER).0,
            stops: broadcast::channel(EVENT_BUFFER).0,
            resync: Notify::new(),
            queued: Mutex::default(),
            reading: Mutex::default(),
            refresh_slots: Semaphore::new(EVENT_REFRESHES),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update leaves the state whole, so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next_ticket(&self) -> u64 {
        self.tickets.fetch_add(1, Ordering::SeqCst)
    }

    /// Whether reads answer (the event stream is up and the index caught up).
    pub fn is_synced(&self) -> bool {
        self.lock().synced
    }

    /// Re-reads one container after docker-cri changed it, so the next read
    /// sees the change. A failure leaves the entry as it was and has the
    /// sync loop relist (reads fall back to Docker until it has).
    pub async fn refresh(&self, id: &str) {
        let _ = self
            .refresh_from(id, async {
                let record = self.source.record(id).await?;
                Ok(((), record))
            })
            .await;
    }

    /// `refresh` through a read the caller makes anyway (an inspect whose
    /// answer it needs too): `read` must ask Docker after this is called,
    /// and yields the caller's part and the record. Its error is returned,
    /// and, as in `refresh`, has the index relist.
    pub async fn refresh_from<T>(
        &self,
        id: &str,
        read: impl Future<Output = crate::error::Result<(T, Option<Record>)>>,
    ) -> crate::error::Result<T> {
        let ticket = self.next_ticket();
        let observed_at = now_nanos();
        self.lock_reading()
            .insert(id.to_string(), (ticket, observed_at));
        let result = read.await;
        {
            let mut reading = self.lock_reading();
            if reading.get(id).is_some_and(|(t, _)| *t == ticket) {
                reading.remove(id);
            }
        }
        match result {
            Ok((answer, record)) => {
                self.apply(id, ticket, observed_at, record);
                Ok(answer)
            }
            Err(e) => {
                tracing::debug!(container = id, error = %e, "index refresh failed; relisting");
                self.lock().synced = false;
                self.resync.notify_one();
                Err(e)
            }
        }
    }

    fn lock_reading(&self) -> MutexGuard<'_, HashMap<String, (u64, i64)>> {
        self.reading.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a read of `id` sent at or after `time_nanos` is done or
    /// under way, so that an event of that time is already covered.
    fn covers(&self, id: &str, time_nanos: i64) -> bool {
        self.lock()
            .slots
            .get(id)
            .is_some_and(|s| s.observed_at > time_nanos)
            || self
                .lock_reading()
                .get(id)
                .is_some_and(|(_, sent)| *sent > time_nanos)
    }

    /// Records that docker-cri removed a container.
    pub fn forget(&self, id: &str) {
        let ticket = self.next_ticket();
        self.apply(id, ticket, now_nanos(), None);
    }

    /// Puts an inspect's answer in place unless a newer one is there, and
    /// tells subscribers what changed.
    fn apply(&self, id: &str, ticket: u64, observed_at: i64, record: Option<Record>) {
        let mut state = self.lock();
        let old = match state.slots.get(id) {
            Some(slot) if slot.ticket >= ticket => return,
            Some(slot) => slot.record.clone(),
            None => None,
        };
        if old.is_none() && record.is_none() {
            // Never known, already gone: remember only the removal.
            state
                .slots
                .insert(id.to_string(), tombstone(ticket, observed_at));
            return;
        }
        let changed = old != record;
        let new_phase = record.as_ref().map(|r| r.phase);
        let removal = record.is_none();
        let slot = match record {
            Some(record) => Slot {
                ticket,
                observed_at,
                record: Some(record),
                removed: None,
            },
            None => tombstone(ticket, observed_at),
        };
        state.slots.insert(id.to_string(), slot);
        if changed && self.stops.receiver_count() > 0 {
            let stopped = events::transitions(old.as_ref().map(|r| r.phase), new_phase)
                .contains(&api::ContainerEventType::ContainerStoppedEvent);
            if stopped {
                let _ = self.stops.send(id.to_string());
            }
        }
        if changed && self.events.receiver_count() > 0 {
            for event in events::changes(&state, id, old.as_ref()) {
                // No subscriber left is not an error.
                let _ = self.events.send(event);
            }
        }
        if removal {
            state
                .slots
                .retain(|_, s| s.removed.is_none_or(|at| at.elapsed() < TOMBSTONE_TTL));
        }
    }

    /// The IDs of containers (and sandboxes) as they stop, from now on.
    pub fn subscribe_stops(&self) -> broadcast::Receiver<String> {
        self.stops.subscribe()
    }

    /// A stream of container events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<api::ContainerEventResponse> {
        self.events.subscribe()
    }

    /// The sandboxes `keep` selects; `None` while the index is not synced.
    pub fn sandboxes(
        &self,
        keep: impl Fn(&api::PodSandbox) -> bool,
    ) -> Option<Vec<api::PodSandbox>> {
        self.read(|r| match &r.body {
            Body::Sandbox { list, .. } if keep(list) => Some(list.clone()),
            _ => None,
        })
    }

    /// The containers `keep` selects; `None` while the index is not synced.
    pub fn containers(
        &self,
        keep: impl Fn(&api::Container) -> bool,
    ) -> Option<Vec<api::Container>> {
        self.read(|r| match &r.body {
            Body::Container { list, .. } if keep(list) => Some(list.clone()),
            _ => None,
        })
    }

    /// Docker's view of the managed containers carrying every `key` or
    /// `key=value` label (as Docker's label filter); `None` while not synced.
    pub fn listed(&self, label_filter: &[String]) -> Option<Vec<Listed>> {
        self.read(|r| {
            label_filter
                .iter()
                .all(|f| match f.split_once('=') {
                    Some((k, v)) => r.listed.labels.get(k).is_some_and(|have| have == v),
                    None => r.listed.labels.contains_key(f.as_str()),
                })
                .then(|| r.listed.clone())
        })
    }

    /// Docker's view of one managed container by full ID; `None` when the
    /// index does not know it (or is not synced): ask Docker then.
    pub fn known(&self, id: &str) -> Option<Listed> {
        let state = self.lock();
        if !state.synced {
            return None;
        }
        state
            .slots
            .get(id)
            .and_then(|s| s.record.as_ref())
            .map(|r| r.listed.clone())
    }

    /// Whether a container runs, as the events last showed it; `None` when
    /// the index does not know it or is not synced.
    pub fn run_state(&self, id: &str) -> Option<crate::docker::logs::RunState> {
        use crate::docker::logs::RunState;
        let state = self.lock();
        if !state.synced {
            return None;
        }
        let slot = state.slots.get(id)?;
        match (&slot.record, slot.removed) {
            (_, Some(_)) => Some(RunState::Gone),
            (Some(r), None) => match r.phase {
                record::Phase::Running => Some(RunState::Running),
                record::Phase::Exited => Some(RunState::Stopped),
                // Not started as far as the index has heard yet: a log
                // writer starts while StartContainer's own re-read may
                // still be under way, so only Docker can say.
                record::Phase::Created => None,
            },
            (None, None) => None,
        }
    }

    pub fn sandbox_status(&self, id: &str) -> Option<Lookup<api::PodSandboxStatus>> {
        self.lookup(id, |r| match &r.body {
            Body::Sandbox { status, .. } => Some(status.clone()),
            Body::Container { .. } => None,
        })
    }

    pub fn container_status(&self, id: &str) -> Option<Lookup<api::ContainerStatus>> {
        self.lookup(id, |r| match &r.body {
            Body::Container { status, .. } => Some(status.clone()),
            Body::Sandbox { .. } => None,
        })
    }

    fn read<T>(&self, pick: impl Fn(&Record) -> Option<T>) -> Option<Vec<T>> {
        let state = self.lock();
        state.synced.then(|| {
            state
                .slots
                .values()
                .filter_map(|s| s.record.as_ref())
                .filter_map(&pick)
                .collect()
        })
    }

    /// A full ID, or a prefix matching exactly one entry of the kind `pick`
    /// accepts.
    fn lookup<T>(&self, id: &str, pick: impl Fn(&Record) -> Option<T>) -> Option<Lookup<T>> {
        let state = self.lock();
        if !state.synced {
            return None;
        }
        if let Some(found) = state
            .slots
            .get(id)
            .and_then(|s| s.record.as_ref())
            .and_then(&pick)
        {
            return Some(Lookup::Found(found));
        }
        let mut matches = state
            .slots
            .iter()
            .filter(|(key, _)| !id.is_empty() && key.starts_with(id))
            .filter_map(|(_, s)| s.record.as_ref().and_then(&pick));
        Some(match (matches.next(), matches.count()) {
            (None, _) => Lookup::Missing,
            (Some(found), 0) => Lookup::Found(found),
            (Some(_), more) => Lookup::Ambiguous(more + 1),
        })
    }
}

fn tombstone(ticket: u64, observed_at: i64) -> Slot {
    Slot {
        ticket,
        observed_at,
        record: None,
        removed: Some(Instant::now()),
    }
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}
