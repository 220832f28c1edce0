//! Docker's events into the index: order, gaps, relists, the pause
//! before an inspect, and the events the index fans out.

use super::*;

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
    for i in 0..(crate::index::EVENT_BUFFER + 10) {
        let id = format!("c{i}");
        fake.put(container(&id, &format!("s{i}"), Phase::Running));
        index.refresh(&id).await;
    }
    assert_eq!(
        index.containers(|_| true).map(|v| v.len()),
        Some(crate::index::EVENT_BUFFER + 10)
    );
    // The idle subscriber is told it fell behind.
    assert!(matches!(
        idle.try_recv(),
        Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_))
    ));
}

#[test]
fn transitions_fill_in_the_steps_a_consumer_missed() {
    use crate::index::events::transitions;
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
