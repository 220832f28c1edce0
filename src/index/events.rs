//! Index changes → CRI container events, each carrying the pod's sandbox
//! status and its containers' statuses as they are at that change (what
//! kubelet's Evented PLEG puts in its cache).

use crate::api;
use crate::api::ContainerEventType as Kind;

use super::State;
use super::record::{Body, Phase, Record};

/// The events one change amounts to, oldest first. A change the index saw
/// only in part (an event missed, a relist) still yields every step a
/// consumer needs: a container first seen running was also created; one
/// removed while running also stopped.
pub(super) fn transitions(old: Option<Phase>, new: Option<Phase>) -> Vec<Kind> {
    use Phase::*;
    match (old, new) {
        (None, None) => vec![],
        (None, Some(Created)) => vec![Kind::ContainerCreatedEvent],
        (None, Some(Running)) => vec![Kind::ContainerCreatedEvent, Kind::ContainerStartedEvent],
        (None, Some(Exited)) => vec![Kind::ContainerCreatedEvent, Kind::ContainerStoppedEvent],
        (Some(a), Some(b)) if a == b => vec![],
        (Some(_), Some(Running)) => vec![Kind::ContainerStartedEvent],
        (Some(_), Some(Exited)) => vec![Kind::ContainerStoppedEvent],
        // Docker has no way back to created.
        (Some(_), Some(Created)) => vec![],
        (Some(Exited), None) => vec![Kind::ContainerDeletedEvent],
        (Some(_), None) => vec![Kind::ContainerStoppedEvent, Kind::ContainerDeletedEvent],
    }
}

/// The events for the entry `id` having changed from `old` to what `state`
/// now holds.
pub(super) fn changes(
    state: &State,
    id: &str,
    old: Option<&Record>,
) -> Vec<api::ContainerEventResponse> {
    let new = state.slots.get(id).and_then(|s| s.record.as_ref());
    let kinds = transitions(old.map(|r| r.phase), new.map(|r| r.phase));
    let Some(subject) = new.or(old) else {
        return Vec::new();
    };
    if kinds.is_empty() {
        return Vec::new();
    }
    let pod = &subject.sandbox_id;
    // A sandbox just removed is described by its last known status: kubelet
    // drops events without one.
    let sandbox = state
        .slots
        .get(pod)
        .and_then(|s| s.record.as_ref())
        .or(old.filter(|o| o.is_sandbox()));
    let pod_sandbox_status = sandbox.and_then(|r| match &r.body {
        Body::Sandbox { status, .. } => Some(status.clone()),
        Body::Container { .. } => None,
    });
    let mut containers_statuses: Vec<api::ContainerStatus> = state
        .slots
        .values()
        .filter_map(|s| s.record.as_ref())
        .filter(|r| &r.sandbox_id == pod)
        .filter_map(|r| match &r.body {
            Body::Container { status, .. } => Some(status.clone()),
            Body::Sandbox { .. } => None,
        })
        .collect();
    containers_statuses.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let created_at = super::now_nanos();
    kinds
        .into_iter()
        .map(|kind| api::ContainerEventResponse {
            container_id: id.to_string(),
            container_event_type: kind as i32,
            created_at,
            pod_sandbox_status: pod_sandbox_status.clone(),
            containers_statuses: containers_statuses.clone(),
        })
        .collect()
}
