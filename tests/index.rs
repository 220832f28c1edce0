//! The event-fed index through the real binary against the real dockerd:
//! GetContainerEvents over a pod's life, changes made behind docker-cri's
//! back, and List/Status checked against Docker under churn and across a
//! docker-cri crash.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::pod::{Pod, resources};
use common::{Server, TestImage, docker, unique};
use docker_cri::api;
use docker_cri::api::ContainerEventType as Kind;
use tonic::Code;

const CREATED: i32 = api::ContainerState::ContainerCreated as i32;
const RUNNING: i32 = api::ContainerState::ContainerRunning as i32;
const EXITED: i32 = api::ContainerState::ContainerExited as i32;

/// How long docker-cri may lag behind Docker before a difference counts.
const EVENT_LAG: Duration = Duration::from_millis(150);

/// Waits until docker-cri logs that its index caught up with Docker.
async fn wait_synced(server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server.log_text().contains("container index in sync") {
        assert!(
            Instant::now() < deadline,
            "index never synced: {}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A GetContainerEvents subscriber collecting everything it receives.
struct Subscriber {
    got: Arc<Mutex<Vec<api::ContainerEventResponse>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Subscriber {
    async fn start(server: &Server) -> Subscriber {
        let mut rt = server.runtime().await;
        let mut stream = rt
            .get_container_events(api::GetEventsRequest {})
            .await
            .unwrap()
            .into_inner();
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        let task = tokio::spawn(async move {
            while let Ok(Some(event)) = stream.message().await {
                sink.lock().unwrap().push(event);
            }
        });
        Subscriber { got, task }
    }

    /// The events about `ids`, once `done` holds of them (or 10 s passed).
    async fn about(
        &self,
        ids: &[&str],
        done: impl Fn(&[api::ContainerEventResponse]) -> bool,
    ) -> Vec<api::ContainerEventResponse> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mine: Vec<_> = self
                .got
                .lock()
                .unwrap()
                .iter()
                .filter(|e| ids.contains(&e.container_id.as_str()))
                .cloned()
                .collect();
            if done(&mine) || Instant::now() > deadline {
                return mine;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn kinds(events: &[api::ContainerEventResponse]) -> Vec<(String, i32)> {
    events
        .iter()
        .map(|e| (e.container_id.clone(), e.container_event_type))
        .collect()
}

fn deleted(id: &str) -> impl Fn(&[api::ContainerEventResponse]) -> bool + '_ {
    move |events| {
        events.iter().any(|e| {
            e.container_id == id && e.container_event_type == Kind::ContainerDeletedEvent as i32
        })
    }
}

#[tokio::test]
async fn container_events_follow_a_pod_lifecycle_in_order_for_every_subscriber() {
    let server = Server::start(&[]).await;
    wait_synced(&server).await;
    let first = Subscriber::start(&server).await;
    let second = Subscriber::start(&server).await;
    // A subscriber that never reads holds up nobody.
    let mut idle = server.runtime().await;
    let _idle_stream = idle
        .get_container_events(api::GetEventsRequest {})
        .await
        .unwrap()
        .into_inner();

    let mut pod = Pod::new(&server).await;
    let sandbox = pod.id.clone();
    let ctr = pod.create(&pod.ctr("ev", "exec sleep 300")).await.unwrap();
    pod.start(&ctr).await.unwrap();
    pod.stop(&ctr, 0).await.unwrap();
    let exit_code = docker()
        .await
        .inspect_container(&ctr, None)
        .await
        .unwrap()
        .state
        .and_then(|s| s.exit_code)
        .unwrap();
    pod.remove(&ctr).await.unwrap();
    pod.rt
        .stop_pod_sandbox(api::StopPodSandboxRequest {
            pod_sandbox_id: sandbox.clone(),
        })
        .await
        .unwrap();
    pod.rt
        .remove_pod_sandbox(api::RemovePodSandboxRequest {
            pod_sandbox_id: sandbox.clone(),
        })
        .await
        .unwrap();

    let k = |id: &str, kind: Kind| (id.to_string(), kind as i32);
    let expected = vec![
        k(&sandbox, Kind::ContainerCreatedEvent),
        k(&sandbox, Kind::ContainerStartedEvent),
        k(&ctr, Kind::ContainerCreatedEvent),
        k(&ctr, Kind::ContainerStartedEvent),
        k(&ctr, Kind::ContainerStoppedEvent),
        k(&ctr, Kind::ContainerDeletedEvent),
        k(&sandbox, Kind::ContainerStoppedEvent),
        k(&sandbox, Kind::ContainerDeletedEvent),
    ];
    let ids = [sandbox.as_str(), ctr.as_str()];
    let events = first.about(&ids, deleted(&sandbox)).await;
    assert_eq!(kinds(&events), expected);
    let other = second.about(&ids, deleted(&sandbox)).await;
    assert_eq!(
        kinds(&other),
        expected,
        "the second subscriber saw the same"
    );

    // Each event carries the pod and its containers as they were then.
    let uid = pod.config.metadata.as_ref().unwrap().uid.clone();
    for e in &events {
        let pod_status = e.pod_sandbox_status.as_ref().expect("pod status");
        assert_eq!(pod_status.id, sandbox);
        assert_eq!(pod_status.metadata.as_ref().unwrap().uid, uid);
        assert!(e.created_at > 0);
    }
    assert!(
        events
            .windows(2)
            .all(|w| w[0].created_at <= w[1].created_at)
    );
    let started = &events[3];
    assert_eq!(started.containers_statuses.len(), 1);
    assert_eq!(started.containers_statuses[0].id, ctr);
    assert_eq!(started.containers_statuses[0].state, RUNNING);
    assert_eq!(
        started.pod_sandbox_status.as_ref().unwrap().state,
        api::PodSandboxState::SandboxReady as i32
    );
    let stopped = &events[4];
    assert_eq!(stopped.containers_statuses[0].state, EXITED);
    assert_eq!(
        i64::from(stopped.containers_statuses[0].exit_code),
        exit_code
    );
    assert_ne!(exit_code, 0);
    assert!(events[5].containers_statuses.is_empty());
    assert_eq!(
        events[6].pod_sandbox_status.as_ref().unwrap().state,
        api::PodSandboxState::SandboxNotready as i32
    );
}

/// Polls ContainerStatus until `want` holds; the time it took.
async fn until_status(
    pod: &mut Pod,
    id: &str,
    want: impl Fn(&Result<api::ContainerStatus, tonic::Status>) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let status = pod.status(id).await;
        if want(&status) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "container {id}: still {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn kills_oom_kills_and_removals_behind_its_back_show_at_once() {
    let server = Server::start(&[]).await;
    wait_synced(&server).await;
    let events = Subscriber::start(&server).await;
    let mut pod = Pod::new(&server).await;
    let killed = pod
        .create(&pod.ctr("killed", "exec sleep 300"))
        .await
        .unwrap();
    pod.start(&killed).await.unwrap();
    let mut oom_config = pod.ctr("oom", "sleep 1; x=a; while true; do x=$x$x$x$x; done");
    let r = resources(&mut oom_config);
    r.memory_limit_in_bytes = 16 << 20;
    r.memory_swap_limit_in_bytes = 16 << 20;
    let oom = pod.create(&oom_config).await.unwrap();
    pod.start(&oom).await.unwrap();

    let d = docker().await;
    d.kill_container(
        &killed,
        None::<bollard::query_parameters::KillContainerOptions>,
    )
    .await
    .unwrap();
    let lag = until_status(&mut pod, &killed, |s| {
        s.as_ref()
            .is_ok_and(|s| s.state == EXITED && s.exit_code == 137)
    })
    .await;
    assert!(
        lag < Duration::from_secs(2),
        "the kill took {lag:?} to show"
    );
    let s = until_status(&mut pod, &oom, |s| {
        s.as_ref().is_ok_and(|s| s.state == EXITED)
    })
    .await;
    let oom_status = pod.status(&oom).await.unwrap();
    assert_eq!(oom_status.reason, "OOMKilled", "{oom_status:?} after {s:?}");
    assert_eq!(oom_status.exit_code, 137);
    // The relist agrees with the statuses.
    let listed = pod
        .list(api::ContainerFilter {
            pod_sandbox_id: pod.id.clone(),
            ..Default::default()
        })
        .await;
    let states: HashMap<String, i32> = listed.into_iter().map(|c| (c.id, c.state)).collect();
    assert_eq!(states.get(&killed), Some(&EXITED));
    assert_eq!(states.get(&oom), Some(&EXITED));

    common::force_remove(&killed).await;
    until_status(&mut pod, &killed, |s| {
        s.as_ref().is_err_and(|e| e.code() == Code::NotFound)
    })
    .await;
    let seen = events.about(&[killed.as_str()], deleted(&killed)).await;
    let k = |kind: Kind| (killed.clone(), kind as i32);
    assert_eq!(
        kinds(&seen),
        vec![
            k(Kind::ContainerCreatedEvent),
            k(Kind::ContainerStartedEvent),
            k(Kind::ContainerStoppedEvent),
            k(Kind::ContainerDeletedEvent),
        ]
    );
}

/// A removal under way: Docker still shows the container ("removing")
/// while docker-cri, whose RemoveContainer already returned (Docker said
/// the removal is in progress), no longer does. Not a state to compare.
const BEING_REMOVED: i32 = -1;

/// Docker's own answer for a container, in CRI terms (a failed start is
/// exited, as docker-cri reports it); `None` when Docker has none.
async fn docker_state(id: &str) -> Option<i32> {
    let c = docker().await.inspect_container(id, None).await.ok()?;
    let st = c.state?;
    use bollard::models::ContainerStateStatusEnum as S;
    if st.status == Some(S::REMOVING) {
        return Some(BEING_REMOVED);
    }
    let failed_start = st.status == Some(S::CREATED)
        && (st.exit_code.is_some_and(|c| c != 0)
            || st.error.as_deref().is_some_and(|e| !e.is_empty()));
    Some(match st.status {
        Some(S::CREATED) if failed_start => EXITED,
        Some(S::CREATED) => CREATED,
        Some(S::RUNNING | S::PAUSED | S::RESTARTING) => RUNNING,
        _ => EXITED,
    })
}

/// Every container docker-cri lists for the run's namespace, and every one
/// Docker has with that label, must agree; a difference is tolerated only
/// if it is gone once the event lag has passed (Docker moved on meanwhile).
/// Returns how many containers were compared.
async fn check_consistency(
    rt: &mut common::pod::Runtime,
    namespace: &str,
) -> Result<usize, String> {
    let label = HashMap::from([(
        "io.kubernetes.pod.namespace".to_string(),
        namespace.to_string(),
    )]);
    let listed = rt
        .list_containers(api::ListContainersRequest {
            filter: Some(api::ContainerFilter {
                label_selector: label.clone(),
                ..Default::default()
            }),
        })
        .await
        .map_err(|e| format!("ListContainers: {e}"))?
        .into_inner()
        .containers;
    let ours: HashMap<String, i32> = listed.into_iter().map(|c| (c.id, c.state)).collect();
    let theirs = app_containers(namespace).await;
    let mut ids: Vec<String> = ours.keys().cloned().collect();
    ids.extend(theirs);
    ids.sort();
    ids.dedup();
    let mut compared = 0;
    for id in &ids {
        let docker_now = docker_state(id).await;
        if docker_now == Some(BEING_REMOVED) {
            continue;
        }
        compared += 1;
        if ours.get(id).copied() == docker_now {
            continue;
        }
        // Maybe Docker just changed it: ask both again after the lag.
        tokio::time::sleep(EVENT_LAG).await;
        let docker_then = docker_state(id).await;
        let ours_then = match rt
            .container_status(api::ContainerStatusRequest {
                container_id: id.clone(),
                verbose: false,
            })
            .await
        {
            Ok(r) => r.into_inner().status.map(|s| s.state),
            Err(e) if e.code() == Code::NotFound => None,
            Err(e) => return Err(format!("ContainerStatus {id}: {e}")),
        };
        if docker_then == docker_now && ours_then != docker_then {
            let raw = docker()
                .await
                .inspect_container(id, None)
                .await
                .ok()
                .and_then(|c| c.state);
            return Err(format!(
                "container {id}: docker-cri says {ours_then:?} (listed {:?}), Docker says {docker_then:?} for longer than {EVENT_LAG:?}; Docker's state: {raw:?}",
                ours.get(id)
            ));
        }
    }
    Ok(compared)
}

/// The app containers (not sandboxes) of the run's namespace, as Docker
/// lists them.
async fn app_containers(namespace: &str) -> Vec<String> {
    let namespace = format!("io.kubernetes.pod.namespace={namespace}");
    let labels = [namespace.as_str(), "io.kubernetes.docker.type=container"];
    common::containers_with_labels(&docker().await, &labels).await
}

/// One worker's pod lifecycles; errors from containers killed or removed
/// behind its back, or from docker-cri crashing, are expected and skipped.
async fn churn_worker(socket: std::path::PathBuf, image: String, namespace: String, rounds: usize) {
    for round in 0..rounds {
        let Ok(channel) = docker_cri::client::connect(&socket).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let mut rt = docker_cri::client::runtime_client(channel);
        let uid = unique("churn");
        let config = api::PodSandboxConfig {
            metadata: Some(api::PodSandboxMetadata {
                name: format!("churn-{round}"),
                namespace: namespace.clone(),
                uid: uid.clone(),
                attempt: 0,
            }),
            ..Default::default()
        };
        let Ok(sandbox) = rt
            .run_pod_sandbox(api::RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: String::new(),
            })
            .await
        else {
            continue;
        };
        let sandbox = sandbox.into_inner().pod_sandbox_id;
        let mut ids = Vec::new();
        for (i, script) in ["exec sleep 300", "sleep 0.3; exit 3"].iter().enumerate() {
            let ctr = api::ContainerConfig {
                metadata: Some(api::ContainerMetadata {
                    name: format!("c{i}"),
                    attempt: 0,
                }),
                image: common::image_spec(&image),
                command: vec!["sh".into(), "-c".into(), script.to_string()],
                ..Default::default()
            };
            if let Ok(r) = rt
                .create_container(api::CreateContainerRequest {
                    pod_sandbox_id: sandbox.clone(),
                    config: Some(ctr),
                    sandbox_config: Some(config.clone()),
                })
                .await
            {
                let id = r.into_inner().container_id;
                let _ = rt
                    .start_container(api::StartContainerRequest {
                        container_id: id.clone(),
                    })
                    .await;
                ids.push(id);
            }
        }
        tokio::time::sleep(Duration::from_millis(200 + 100 * (round as u64 % 3))).await;
        if let Some(first) = ids.first() {
            let _ = rt
                .stop_container(api::StopContainerRequest {
                    container_id: first.clone(),
                    timeout: 0,
                })
                .await;
        }
        if round % 2 == 0 {
            for id in &ids {
                let _ = rt
                    .remove_container(api::RemoveContainerRequest {
                        container_id: id.clone(),
                    })
                    .await;
            }
            let _ = rt
                .stop_pod_sandbox(api::StopPodSandboxRequest {
                    pod_sandbox_id: sandbox.clone(),
                })
                .await;
            let _ = rt
                .remove_pod_sandbox(api::RemovePodSandboxRequest {
                    pod_sandbox_id: sandbox.clone(),
                })
                .await;
        }
    }
}

/// Kills (and now and then removes) running containers of the run
/// directly through Docker, as an operator or the OOM killer would.
async fn outside_killer(namespace: String, stop: Arc<std::sync::atomic::AtomicBool>) {
    let d = docker().await;
    let mut n = 0u32;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let ids = app_containers(&namespace).await;
        if let Some(id) = ids.get(n as usize % 3) {
            if n % 4 == 3 {
                common::force_remove(id).await;
            } else {
                let _ = d
                    .kill_container(id, None::<bollard::query_parameters::KillContainerOptions>)
                    .await;
            }
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// Removes every container of the run's namespace.
async fn remove_namespace(namespace: &str) {
    let d = docker().await;
    for id in
        common::containers_with_label(&d, &format!("io.kubernetes.pod.namespace={namespace}")).await
    {
        common::force_remove(&id).await;
    }
}

#[tokio::test]
async fn lists_and_statuses_match_docker_under_churn_and_across_a_crash() {
    let root = tempfile::tempdir().unwrap();
    let mut server = Server::start_with_root(root.path(), &[]).await;
    wait_synced(&server).await;
    let image = TestImage::busybox(None).await;
    let namespace = unique("churn-ns");
    struct Cleanup(String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let ns = self.0.clone();
            let _ = std::thread::spawn(move || {
                tokio::runtime::Runtime::new()
                    .unwrap()
                    .block_on(remove_namespace(&ns));
            })
            .join();
        }
    }
    let _cleanup = Cleanup(namespace.clone());

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killer = tokio::spawn(outside_killer(namespace.clone(), stop.clone()));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            tokio::spawn(churn_worker(
                server.socket.clone(),
                image.name.clone(),
                namespace.clone(),
                4,
            ))
        })
        .collect();
    let mut rt = server.runtime().await;
    let mut checks = 0;
    let mut compared = 0;
    while workers.iter().any(|w| !w.is_finished()) {
        compared += check_consistency(&mut rt, &namespace).await.unwrap();
        checks += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for w in workers {
        w.await.unwrap();
    }
    assert!(
        checks >= 5 && compared > 0,
        "the checker ran {checks} times over {compared} containers"
    );

    // docker-cri crashes mid-churn; Docker goes on changing meanwhile.
    let workers: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn(churn_worker(
                server.socket.clone(),
                image.name.clone(),
                namespace.clone(),
                2,
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let server = Server::start_with_root(root.path(), &[]).await;
    // Right away (answered from Docker until the index has caught up) and
    // after it has: the same truth.
    let mut rt = server.runtime().await;
    check_consistency(&mut rt, &namespace).await.unwrap();
    wait_synced(&server).await;
    for w in workers {
        // Their connection died with the first server; they stop early.
        let _ = w.await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    killer.await.unwrap();
    let compared = check_consistency(&mut rt, &namespace).await.unwrap();
    assert!(compared > 0, "containers left to compare after the crash");
    // And a quiet moment later, with no event lag left to excuse anything,
    // every status agrees exactly.
    tokio::time::sleep(EVENT_LAG).await;
    check_consistency(&mut rt, &namespace).await.unwrap();
}
