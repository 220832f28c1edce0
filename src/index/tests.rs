//! The index against a scripted Docker: ordering, duplicate and missed
//! events, removals, relists, a broken stream, and the events it fans out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::record::{Body, Phase, Record};
use super::source::StateSource;
use super::{EVENT_SETTLE, Index, Lookup, now_nanos};
use crate::api;
use crate::api::ContainerEventType as Kind;
use crate::docker::events::{ContainerEvent, EventStream};
use crate::docker::view::Listed;
use crate::error::{Error, Result};

/// Docker as a map the test edits, an event channel per subscription, and a
/// switch that makes it unreachable.
#[derive(Default)]
struct Fake {
    containers: Mutex<HashMap<String, Record>>,
    subscriptions: Mutex<Vec<mpsc::UnboundedSender<Result<ContainerEvent>>>>,
    down: Mutex<bool>,
    inspects: Mutex<usize>,
}

impl Fake {
    fn put(&self, r: Record) {
        self.containers.lock().unwrap().insert(r.id.clone(), r);
    }
    fn remove(&self, id: &str) {
        self.containers.lock().unwrap().remove(id);
    }
    fn emit(&self, id: &str, action: &str) {
        let event = ContainerEvent {
            id: id.into(),
            action: action.into(),
            time_nanos: now_nanos(),
        };
        for s in self.subscriptions.lock().unwrap().iter() {
            let _ = s.send(Ok(event.clone()));
        }
    }
    /// Ends every subscription, as a dockerd restart does.
    fn break_streams(&self) {
        self.subscriptions.lock().unwrap().clear();
    }
    fn inspects(&self) -> usize {
        *self.inspects.lock().unwrap()
    }
    fn check_up(&self) -> Result<()> {
        if *self.down.lock().unwrap() {
            Err(Error::DockerUnavailable("fake docker is down".into()))
        } else {
            Ok(())
        }
    }
}

impl StateSource for Fake {
    async fn managed_ids(&self) -> Result<Vec<String>> {
        self.check_up()?;
        Ok(self.containers.lock().unwrap().keys().cloned().collect())
    }
    async fn record(&self, id: &str) -> Result<Option<Record>> {
        self.check_up()?;
        *self.inspects.lock().unwrap() += 1;
        Ok(self.containers.lock().unwrap().get(id).cloned())
    }
    async fn events(&self, _since: i64) -> Result<EventStream> {
        self.check_up()?;
        let (tx, rx) = mpsc::unbounded_channel();
        self.subscriptions.lock().unwrap().push(tx);
        Ok(Box::pin(
            tokio_stream::wrappers::UnboundedReceiverStream::new(rx),
        ))
    }
}

fn sandbox(id: &str, phase: Phase) -> Record {
    let state = if phase == Phase::Running {
        api::PodSandboxState::SandboxReady
    } else {
        api::PodSandboxState::SandboxNotready
    } as i32;
    let metadata = Some(api::PodSandboxMetadata {
        name: format!("pod-{id}"),
        uid: format!("uid-{id}"),
        namespace: "ns".into(),
        attempt: 0,
    });
    Record {
        id: id.into(),
        sandbox_id: id.into(),
        phase,
        listed: listed(id, "podsandbox"),
        body: Body::Sandbox {
            list: api::PodSandbox {
                id: id.into(),
                metadata: metadata.clone(),
                state,
                ..Default::default()
            },
            status: api::PodSandboxStatus {
                id: id.into(),
                metadata,
                state,
                ..Default::default()
            },
        },
    }
}

fn container(id: &str, pod: &str, phase: Phase) -> Record {
    let state = match phase {
        Phase::Created => api::ContainerState::ContainerCreated,
        Phase::Running => api::ContainerState::ContainerRunning,
        Phase::Exited => api::ContainerState::ContainerExited,
    } as i32;
    Record {
        id: id.into(),
        sandbox_id: pod.into(),
        phase,
        listed: listed(id, "container"),
        body: Body::Container {
            list: api::Container {
                id: id.into(),
                pod_sandbox_id: pod.into(),
                state,
                ..Default::default()
            },
            status: api::ContainerStatus {
                id: id.into(),
                state,
                ..Default::default()
            },
        },
    }
}

fn listed(id: &str, kind: &str) -> Listed {
    Listed {
        id: id.into(),
        labels: HashMap::from([("io.kubernetes.docker.type".to_string(), kind.to_string())]),
        ..Default::default()
    }
}

fn container_ids(index: &Index<Arc<Fake>>) -> Option<Vec<(String, i32)>> {
    index.containers(|_| true).map(|mut v| {
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v.into_iter().map(|c| (c.id, c.state)).collect()
    })
}

const RUNNING: i32 = api::ContainerState::ContainerRunning as i32;
const EXITED: i32 = api::ContainerState::ContainerExited as i32;

#[tokio::test]
async fn reads_answer_nothing_until_the_first_relist_then_what_docker_has() {
    let fake = Arc::new(Fake::default());
    fake.put(sandbox("s1", Phase::Running));
    fake.put(container("c1", "s1", Phase::Running));
    let index = Index::new(fake.clone());
    assert_eq!(index.containers(|_| true), None);
    assert_eq!(index.sandbox_status("s1"), None);
    index.relist().await.unwrap();
    assert_eq!(container_ids(&index), Some(vec![("c1".into(), RUNNING)]));
    assert_eq!(index.sandboxes(|_| true).map(|v| v.len()), Some(1));
    // The kinds stay apart: a container ID is no sandbox.
    assert_eq!(index.sandbox_status("c1"), Some(Lookup::Missing));
}

#[tokio::test]
async fn an_older_read_never_replaces_a_newer_one_nor_revives_a_removal() {
    let index = Index::new(Arc::new(Fake::default()));
    index.lock().synced = true;
    let (old, new) = (index.next_ticket(), index.next_ticket());
    index.apply(
        "c1",
        new,
        now_nanos(),
        Some(container("c1", "s1", Phase::Exited)),
    );
    index.apply(
        "c1",
        old,
        now_nanos(),
        Some(container("c1", "s1", Phase::Running)),
    );
    assert_eq!(container_ids(&index), Some(vec![("c1".into(), EXITED)]));

    let before_removal = index.next_ticket();
    index.forget("c1");
    index.apply(
        "c1",
        before_removal,
        now_nanos(),
        Some(container("c1", "s1", Phase::Exited)),
    );
    assert_eq!(container_ids(&index), Some(vec![]));
}

#[tokio::test]
async fn prefixes_resolve_when_unique_and_are_refused_when_ambiguous() {
    let fake = Arc::new(Fake::default());
    for id in ["abc1", "abc2", "abd3"] {
        fake.put(container(id, "s1", Phase::Running));
    }
    let index = Index::new(fake);
    index.relist().await.unwrap();
    assert!(matches!(index.container_status("abd"), Some(Lookup::Found(s)) if s.id == "abd3"));
    assert_eq!(
        index
            .container_status("abc")
            .map(|l| matches!(l, Lookup::Ambiguous(2))),
        Some(true)
    );
    assert_eq!(index.container_status("zzz"), Some(Lookup::Missing));
    assert_eq!(index.container_status(""), Some(Lookup::Missing));
}

#[tokio::test]
async fn a_pod_lifecycle_yields_its_events_in_order_with_the_statuses_of_that_moment() {
    let fake = Arc::new(Fake::default());
    let index = Index::new(fake.clone());
    index.relist().await.unwrap();
    let mut events = index.subscribe();
    let step = |r: Record| {
        fake.put(r.clone());
        r.id
    };
    let s = step(sandbox("s1", Phase::Created));
    index.refresh(&s).await;
    step(sandbox("s1", Phase::Running));
    index.refresh("s1").await;
    step(container("c1", "s1", Phase::Created));
    index.refresh("c1").await;
    step(container("c1", "s1", Phase::Running));
    index.refresh("c1").await;
    step(container("c1", "s1", Phase::Exited));
    index.refresh("c1").await;
    fake.remove("c1");
    index.refresh("c1").await;
    step(sandbox("s1", Phase::Exited));
    index.refresh("s1").await;
    fake.remove("s1");
    index.forget("s1");

    let mut got = Vec::new();
    while let Ok(e) = events.try_recv() {
        got.push(e);
    }
    let kinds: Vec<(String, i32)> = got
        .iter()
        .map(|e| (e.container_id.clone(), e.container_event_type))
        .collect();
    let k = |id: &str, kind: Kind| (id.to_string(), kind as i32);
    assert_eq!(
        kinds,
        vec![
            k("s1", Kind::ContainerCreatedEvent),
            k("s1", Kind::ContainerStartedEvent),
            k("c1", Kind::ContainerCreatedEvent),
            k("c1", Kind::ContainerStartedEvent),
            k("c1", Kind::ContainerStoppedEvent),
            k("c1", Kind::ContainerDeletedEvent),
            k("s1", Kind::ContainerStoppedEvent),
            k("s1", Kind::ContainerDeletedEvent),
        ]
    );
    // Every event names the pod, even the sandbox's own removal.
    assert!(
        got.iter()
            .all(|e| e.pod_sandbox_status.as_ref().is_some_and(|s| s.id == "s1"))
    );
    // The container's statuses are those of the moment: running when it
    // started, gone once deleted.
    assert_eq!(got[3].containers_statuses.len(), 1);
    assert_eq!(got[3].containers_statuses[0].state, RUNNING);
    assert!(got[5].containers_statuses.is_empty());
    assert!(got.windows(2).all(|w| w[0].created_at <= w[1].created_at));
}

#[tokio::test]
async fn a_relist_reports_what_happened_while_the_stream_was_down() {
    let fake = Arc::new(Fake::default());
    fake.put(sandbox("s1", Phase::Running));
    fake.put(container("c1", "s1", Phase::Running));
    fake.put(container("c2", "s1", Phase::Running));
    let index = Index::new(fake.clone());
    index.relist().await.unwrap();
    let mut events = index.subscribe();
    // Missed: c1 died and was removed, c2 died, c3 came and is running.
    fake.remove("c1");
    fake.put(container("c2", "s1", Phase::Exited));
    fake.put(container("c3", "s1", Phase::Running));
    index.relist().await.unwrap();
    let mut got: Vec<(String, i32)> = Vec::new();
    while let Ok(e) = events.try_recv() {
        got.push((e.container_id, e.container_event_type));
    }
    got.sort();
    let k = |id: &str, kind: Kind| (id.to_string(), kind as i32);
    assert_eq!(
        got,
        vec![
            k("c1", Kind::ContainerStoppedEvent),
            k("c1", Kind::ContainerDeletedEvent),
            k("c2", Kind::ContainerStoppedEvent),
            k("c3", Kind::ContainerCreatedEvent),
            k("c3", Kind::ContainerStartedEvent),
        ]
    );
    assert_eq!(
        container_ids(&index),
        Some(vec![("c2".into(), EXITED), ("c3".into(), RUNNING)])
    );
}

/// Polls `check` until it holds, for up to two seconds.
async fn eventually(what: &str, check: impl Fn() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test]
async fn the_sync_loop_follows_events_and_relists_after_the_stream_breaks() {
    let fake = Arc::new(Fake::default());
    fake.put(sandbox("s1", Phase::Running));
    let index = Arc::new(Index::new(fake.clone()));
    let task = tokio::spawn(index.clone().run());
    eventually("first sync", || index.is_synced()).await;

    fake.put(container("c1", "s1", Phase::Running));
    fake.emit("c1", "start");
    eventually("c1 listed", || {
        container_ids(&index) == Some(vec![("c1".into(), RUNNING)])
    })
    .await;

    // dockerd goes away: reads stop answering rather than go stale.
    *fake.down.lock().unwrap() = true;
    fake.break_streams();
    eventually("unsynced", || !index.is_synced()).await;
    assert_eq!(index.containers(|_| true), None);
    // Meanwhile c1 exits; nobody tells the index.
    fake.put(container("c1", "s1", Phase::Exited));
    *fake.down.lock().unwrap() = false;
    eventually("resynced", || index.is_synced()).await;
    assert_eq!(container_ids(&index), Some(vec![("c1".into(), EXITED)]));

    fake.remove("c1");
    fake.emit("c1", "destroy");
    eventually("c1 gone", || container_ids(&index) == Some(vec![])).await;
    task.abort();
}

#[tokio::test]
async fn events_already_reflected_or_already_queued_cause_no_extra_inspect() {
    let fake = Arc::new(Fake::default());
    let index = Arc::new(Index::new(fake.clone()));
    let task = tokio::spawn(index.clone().run());
    eventually("first sync", || index.is_synced()).await;
    // docker-cri's own operation read c1 after Docker stamped its event.
    fake.put(container("c1", "s1", Phase::Running));
    let stamped = now_nanos();
    tokio::time::sleep(Duration::from_millis(2)).await;
    index.refresh("c1").await;
    let before = fake.inspects();
    index.on_event(ContainerEvent {
        id: "c1".into(),
        action: "start".into(),
        time_nanos: stamped,
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        fake.inspects(),
        before,
        "an event older than the last read re-read it"
    );
    task.abort();
}

#[tokio::test]
async fn a_subscriber_that_never_reads_does_not_hold_up_the_index() {
    let fake = Arc::new(Fake::default());
    let index = Index::new(fake.clone());
    index.relist().await.unwrap();
    let mut idle = index.subscribe();
    for i in 0..(super::EVENT_BUFFER + 10) {
        let id = format!("c{i}");
        fake.put(container(&id, &format!("s{i}"), Phase::Running));
        index.refresh(&id).await;
    }
    assert_eq!(
        index.containers(|_| true).map(|v| v.len()),
        Some(super::EVENT_BUFFER + 10)
    );
    // The idle subscriber is told it fell behind.
    assert!(matches!(
        idle.try_recv(),
        Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_))
    ));
}

#[tokio::test]
async fn a_failed_refresh_makes_the_index_stop_answering_until_relisted() {
    let fake = Arc::new(Fake::default());
    fake.put(container("c1", "s1", Phase::Running));
    let index = Index::new(fake.clone());
    index.relist().await.unwrap();
    *fake.down.lock().unwrap() = true;
    index.refresh("c1").await;
    assert_eq!(index.containers(|_| true), None);
    *fake.down.lock().unwrap() = false;
    index.relist().await.unwrap();
    assert_eq!(container_ids(&index), Some(vec![("c1".into(), RUNNING)]));
}

#[test]
fn transitions_fill_in_the_steps_a_consumer_missed() {
    use super::events::transitions;
    use Phase::*;
    assert_eq!(
        transitions(None, Some(Exited)),
        vec![Kind::ContainerCreatedEvent, Kind::ContainerStoppedEvent]
    );
    assert_eq!(
        transitions(Some(Running), None),
        vec![Kind::ContainerStoppedEvent, Kind::ContainerDeletedEvent]
    );
    assert_eq!(
        transitions(Some(Created), Some(Exited)),
        vec![Kind::ContainerStoppedEvent]
    );
    assert_eq!(
        transitions(Some(Exited), Some(Running)),
        vec![Kind::ContainerStartedEvent]
    );
    assert_eq!(transitions(Some(Running), Some(Running)), vec![]);
}

#[tokio::test]
async fn an_event_older_than_a_read_in_flight_causes_no_extra_inspect() {
    let fake = Arc::new(Fake::default());
    let index = Arc::new(Index::new(fake.clone()));
    let task = tokio::spawn(index.clone().run());
    eventually("first sync", || index.is_synced()).await;
    // Docker stamps c1's start event, then docker-cri's own read of c1 is
    // sent and is still waiting for its answer when the event arrives.
    let stamped = now_nanos();
    tokio::time::sleep(Duration::from_millis(2)).await;
    let (answer, answered) = tokio::sync::oneshot::channel::<()>();
    let reader = index.clone();
    let read = tokio::spawn(async move {
        reader
            .refresh_from("c1", async {
                let _ = answered.await;
                Ok(("inspected", Some(container("c1", "s1", Phase::Running))))
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let before = fake.inspects();
    index.on_event(ContainerEvent {
        id: "c1".into(),
        action: "start".into(),
        time_nanos: stamped,
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(fake.inspects(), before, "the read under way covers it");
    let _ = answer.send(());
    assert_eq!(read.await.unwrap().unwrap(), "inspected");
    assert_eq!(container_ids(&index), Some(vec![("c1".into(), RUNNING)]));
    // An event after that read was sent still has c1 read again.
    fake.put(container("c1", "s1", Phase::Exited));
    fake.emit("c1", "die");
    eventually("c1 exited", || {
        container_ids(&index) == Some(vec![("c1".into(), EXITED)])
    })
    .await;
    task.abort();
}

#[tokio::test]
async fn a_read_the_caller_makes_feeds_the_index_and_its_failure_has_it_relist() {
    let fake = Arc::new(Fake::default());
    let index = Index::new(fake.clone());
    index.relist().await.unwrap();
    let got = index
        .refresh_from("c1", async {
            Ok((7, Some(container("c1", "s1", Phase::Created))))
        })
        .await;
    assert_eq!(got.unwrap(), 7);
    assert_eq!(fake.inspects(), 0, "no read of the index's own");
    let created = api::ContainerState::ContainerCreated as i32;
    assert_eq!(container_ids(&index), Some(vec![("c1".into(), created)]));
    let failed = index
        .refresh_from("c1", async {
            Err::<((), Option<Record>), _>(Error::DockerUnavailable("gone".into()))
        })
        .await;
    assert!(matches!(failed, Err(Error::DockerUnavailable(_))));
    assert_eq!(container_ids(&index), None, "not trusted until relisted");
}

#[tokio::test]
async fn known_answers_full_ids_of_what_it_holds_only_while_synced() {
    let fake = Arc::new(Fake::default());
    fake.put(sandbox("s1", Phase::Running));
    let index = Index::new(fake.clone());
    assert_eq!(index.known("s1"), None, "not synced yet");
    index.relist().await.unwrap();
    assert_eq!(index.known("s1").map(|l| l.id), Some("s1".to_string()));
    assert_eq!(index.known("s"), None, "prefixes are not resolved here");
    index.forget("s1");
    assert_eq!(index.known("s1"), None);
}

#[tokio::test]
async fn the_stop_feed_names_containers_as_they_stop_and_nothing_else() {
    let fake = Arc::new(Fake::default());
    let index = Index::new(fake.clone());
    index.relist().await.unwrap();
    let mut stops = index.subscribe_stops();
    fake.put(container("c1", "s1", Phase::Running));
    index.refresh("c1").await;
    fake.put(container("c1", "s1", Phase::Exited));
    index.refresh("c1").await;
    fake.put(container("c2", "s1", Phase::Running));
    index.refresh("c2").await;
    fake.remove("c2");
    index.forget("c2");
    let mut got = Vec::new();
    while let Ok(id) = stops.try_recv() {
        got.push(id);
    }
    assert_eq!(got, vec!["c1".to_string(), "c2".to_string()]);
}

#[tokio::test]
async fn run_states_come_from_the_entries_only_while_synced() {
    use crate::docker::logs::RunState;
    let fake = Arc::new(Fake::default());
    fake.put(container("c1", "s1", Phase::Created));
    let index = Index::new(fake.clone());
    assert_eq!(index.run_state("c1"), None, "not synced yet");
    index.relist().await.unwrap();
    // Started by now, perhaps, with the index not told yet.
    assert_eq!(index.run_state("c1"), None, "created: ask Docker");
    fake.put(container("c1", "s1", Phase::Running));
    index.refresh("c1").await;
    assert_eq!(index.run_state("c1"), Some(RunState::Running));
    assert_eq!(index.run_state("c9"), None, "unknown: ask Docker");
    fake.put(container("c1", "s1", Phase::Exited));
    index.refresh("c1").await;
    assert_eq!(index.run_state("c1"), Some(RunState::Stopped));
    fake.remove("c1");
    index.forget("c1");
    assert_eq!(index.run_state("c1"), Some(RunState::Gone));
}

#[tokio::test]
async fn an_event_docker_cri_re_reads_within_the_pause_costs_no_inspect() {
    let fake = Arc::new(Fake::default());
    let index = Arc::new(Index::new(fake.clone()));
    index.relist().await.unwrap();
    fake.put(container("c1", "s1", Phase::Running));
    let before = fake.inspects();
    // Docker's event for docker-cri's own start arrives before the
    // operation's own read of c1 is sent.
    index.on_event(ContainerEvent {
        id: "c1".into(),
        action: "start".into(),
        time_nanos: now_nanos(),
    });
    tokio::time::sleep(Duration::from_millis(2)).await;
    index.refresh("c1").await;
    tokio::time::sleep(EVENT_SETTLE * 4).await;
    assert_eq!(fake.inspects(), before + 1, "only the operation's read");

    // A newer event folded into a queued read still gets its inspect,
    // though an older one in the same queue was covered.
    let before = fake.inspects();
    index.on_event(ContainerEvent {
        id: "c1".into(),
        action: "update".into(),
        time_nanos: now_nanos(),
    });
    tokio::time::sleep(Duration::from_millis(2)).await;
    index.refresh("c1").await;
    tokio::time::sleep(Duration::from_millis(2)).await;
    fake.put(container("c1", "s1", Phase::Exited));
    index.on_event(ContainerEvent {
        id: "c1".into(),
        action: "die".into(),
        time_nanos: now_nanos(),
    });
    eventually("c1 exited", || {
        container_ids(&index) == Some(vec![("c1".into(), EXITED)])
    })
    .await;
    assert_eq!(
        fake.inspects(),
        before + 2,
        "the operation's read and the die's"
    );
}
