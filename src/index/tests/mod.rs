//! The index against a scripted Docker: ordering, duplicate and missed
//! events, removals, relists, a broken stream, and the events it fans out.
//! The scripted Docker and record builders are here; the reads in
//! `reads.rs`, events and their inspects in `events.rs`.

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

mod events;
mod reads;
