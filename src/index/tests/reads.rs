//! What the index answers: reads, prefixes, run states, refresh failures.

use super::*;

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
