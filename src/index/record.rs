//! What the index keeps per sandbox or container: the List and Status
//! answers, made once per change from one Docker inspect.

use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum};

use crate::api;
use crate::docker::view::Listed;
use crate::mapping::container::{container_status, inspected_state};
use crate::mapping::labels;
use crate::mapping::sandbox::sandbox_status;

/// Where a container is in its life, as container events count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Created,
    Running,
    Exited,
}

// A few hundred bytes per entry either way; boxing would only add a
// pointer chase to every read.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Sandbox {
        list: api::PodSandbox,
        status: api::PodSandboxStatus,
    },
    Container {
        list: api::Container,
        status: api::ContainerStatus,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: String,
    /// The pod it belongs to; its own ID for a sandbox.
    pub sandbox_id: String,
    pub phase: Phase,
    /// The Docker-side view (name, Docker labels, image) stats need.
    pub listed: Listed,
    pub body: Body,
}

impl Record {
    pub fn is_sandbox(&self) -> bool {
        matches!(self.body, Body::Sandbox { .. })
    }

    /// Builds the record of an inspected container; `None` when it is not
    /// one docker-cri manages. `proc_status`: `/proc/<pid>/status` of its
    /// process while it runs (for the user in effect).
    pub fn from_inspect(c: &ContainerInspectResponse, proc_status: Option<&str>) -> Option<Record> {
        let id = c.id.clone().filter(|id| !id.is_empty())?;
        let config = c.config.as_ref();
        let docker_labels = config.and_then(|c| c.labels.clone()).unwrap_or_default();
        let state = c.state.clone().unwrap_or_default();
        let listed = Listed {
            id: id.clone(),
            name: c.name.clone().unwrap_or_default(),
            image: config.and_then(|c| c.image.clone()).unwrap_or_default(),
            image_id: c.image.clone().unwrap_or_default(),
            labels: docker_labels.clone(),
            running: state.running == Some(true),
            created: c
                .created
                .as_deref()
                .map_or(0, crate::mapping::time::rfc3339_to_nanos)
                / 1_000_000_000,
        };
        match docker_labels.get(labels::TYPE).map(String::as_str) {
            Some(labels::TYPE_SANDBOX) => {
                let status = sandbox_status(c);
                let list = api::PodSandbox {
                    id: id.clone(),
                    metadata: status.metadata.clone(),
                    state: status.state,
                    created_at: status.created_at,
                    labels: status.labels.clone(),
                    annotations: status.annotations.clone(),
                    runtime_handler: status.runtime_handler.clone(),
                };
                Some(Record {
                    sandbox_id: id.clone(),
                    id,
                    phase: docker_phase(state.status),
                    listed,
                    body: Body::Sandbox { list, status },
                })
            }
            Some(labels::TYPE_CONTAINER) => {
                let status = container_status(c, proc_status);
                let sandbox_id = docker_labels
                    .get(labels::SANDBOX_ID)
                    .cloned()
                    .unwrap_or_default();
                let list = api::Container {
                    id: id.clone(),
                    pod_sandbox_id: sandbox_id.clone(),
                    metadata: status.metadata.clone(),
                    image: status.image.clone(),
                    image_ref: status.image_ref.clone(),
                    image_id: status.image_id.clone(),
                    state: status.state,
                    created_at: status.created_at,
                    labels: status.labels.clone(),
                    annotations: status.annotations.clone(),
                };
                Some(Record {
                    id,
                    sandbox_id,
                    // A failed start is over: it counts as exited.
                    phase: match inspected_state(&state) {
                        api::ContainerState::ContainerCreated => Phase::Created,
                        api::ContainerState::ContainerRunning => Phase::Running,
                        _ => Phase::Exited,
                    },
                    listed,
                    body: Body::Container { list, status },
                })
            }
            _ => None,
        }
    }
}

fn docker_phase(status: Option<ContainerStateStatusEnum>) -> Phase {
    use ContainerStateStatusEnum as S;
    match status {
        Some(S::CREATED) => Phase::Created,
        Some(S::RUNNING | S::PAUSED | S::RESTARTING) => Phase::Running,
        _ => Phase::Exited,
    }
}
