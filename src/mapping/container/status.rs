//! Docker containers back to CRI records: list entries, status, state,
//! user and stop signal.

use std::collections::HashMap;

use bollard::models::{
    ContainerInspectResponse, ContainerState, ContainerStateStatusEnum, ContainerSummary,
    ContainerSummaryStateEnum,
};

use crate::api;
use crate::mapping::labels;

use super::mounts::mount_status;
use super::resources::resources_status;
use super::{IMAGE_LABEL, STOP_SIGNAL_LABEL};

/// Docker container state → CRI container state.
pub fn container_state(status: Option<ContainerStateStatusEnum>) -> api::ContainerState {
    use ContainerStateStatusEnum as S;
    match status {
        Some(S::CREATED) => api::ContainerState::ContainerCreated,
        Some(S::RUNNING | S::PAUSED | S::RESTARTING) => api::ContainerState::ContainerRunning,
        Some(S::EXITED | S::DEAD) => api::ContainerState::ContainerExited,
        _ => api::ContainerState::ContainerUnknown,
    }
}

fn summary_state(state: Option<ContainerSummaryStateEnum>) -> api::ContainerState {
    use ContainerSummaryStateEnum as S;
    match state {
        Some(S::CREATED) => api::ContainerState::ContainerCreated,
        Some(S::RUNNING | S::PAUSED | S::RESTARTING) => api::ContainerState::ContainerRunning,
        Some(S::EXITED | S::DEAD) => api::ContainerState::ContainerExited,
        _ => api::ContainerState::ContainerUnknown,
    }
}

fn image_spec(docker_labels: &HashMap<String, String>, fallback: &str) -> api::ImageSpec {
    api::ImageSpec {
        // The pod's RuntimeClass handler the container runs under.
        runtime_handler: docker_labels
            .get(labels::RUNTIME_HANDLER)
            .cloned()
            .unwrap_or_default(),
        image: docker_labels
            .get(IMAGE_LABEL)
            .filter(|v| !v.is_empty())
            .cloned()
            .unwrap_or_else(|| fallback.to_string()),
        ..Default::default()
    }
}

pub fn container_from_summary(s: &ContainerSummary) -> api::Container {
    let docker_labels = s.labels.clone().unwrap_or_default();
    let name = s
        .names
        .as_ref()
        .and_then(|n| n.first())
        .map_or("", String::as_str);
    let (cri_labels, annotations) = labels::split_labels(&docker_labels);
    let image_id = s.image_id.clone().unwrap_or_default();
    api::Container {
        id: s.id.clone().unwrap_or_default(),
        pod_sandbox_id: docker_labels
            .get(labels::SANDBOX_ID)
            .cloned()
            .unwrap_or_default(),
        metadata: Some(labels::container_metadata(&docker_labels, name)),
        image: Some(image_spec(
            &docker_labels,
            s.image.as_deref().unwrap_or_default(),
        )),
        image_ref: image_id.clone(),
        image_id,
        state: summary_state(s.state) as i32,
        created_at: docker_labels
            .get(labels::CREATED_NANOS)
            .and_then(|v| v.parse().ok())
            .unwrap_or(s.created.unwrap_or(0).saturating_mul(1_000_000_000)),
        labels: cri_labels,
        annotations,
    }
}

/// The user in effect: from /proc/<pid>/status while running (`proc_status`),
/// else from a numeric Docker `User`.
pub fn user_status(docker_user: &str, proc_status: Option<&str>) -> Option<api::ContainerUser> {
    let linux = if let Some(text) = proc_status {
        let field = |name: &str| {
            text.lines().find_map(|l| l.strip_prefix(name)).map(|rest| {
                rest.split_whitespace()
                    .filter_map(|v| v.parse::<i64>().ok())
                    .collect::<Vec<_>>()
            })
        };
        let uid = field("Uid:")?.first().copied()?;
        let gid = field("Gid:")?.first().copied()?;
        let groups = field("Groups:").unwrap_or_default();
        api::LinuxContainerUser {
            uid,
            gid,
            supplemental_groups: groups,
        }
    } else {
        let mut parts = docker_user.split(':');
        let uid = parts
            .next()
            .filter(|s| !s.is_empty())
            .map_or(Some(0), |u| u.parse().ok())?;
        let gid = parts.next().map_or(Some(0), |g| g.parse().ok())?;
        api::LinuxContainerUser {
            uid,
            gid,
            supplemental_groups: Vec::new(),
        }
    };
    Some(api::ContainerUser { linux: Some(linux) })
}

/// Docker leaves a container whose start failed (e.g. its executable is
/// missing) in `created`, with an exit code and the error. kubelet must see
/// it as exited, or it starts it again on every sync and ignores the pod's
/// restart policy.
pub fn failed_start(st: &ContainerState) -> bool {
    st.status == Some(ContainerStateStatusEnum::CREATED)
        && (st.exit_code.is_some_and(|c| c != 0)
            || st.error.as_deref().is_some_and(|e| !e.is_empty()))
}

/// The CRI state of an inspected container, failed starts included.
pub fn inspected_state(st: &ContainerState) -> api::ContainerState {
    if failed_start(st) {
        api::ContainerState::ContainerExited
    } else {
        container_state(st.status)
    }
}

pub fn container_status(
    c: &ContainerInspectResponse,
    proc_status: Option<&str>,
) -> api::ContainerStatus {
    use crate::mapping::time::rfc3339_to_nanos;
    let config = c.config.clone().unwrap_or_default();
    let docker_labels = config.labels.clone().unwrap_or_default();
    let (cri_labels, annotations) = labels::split_labels(&docker_labels);
    let st = c.state.clone().unwrap_or_default();
    let state = inspected_state(&st);
    let exit_code = st.exit_code.unwrap_or(0) as i32;
    let cannot_run = failed_start(&st);
    let (reason, message) = match state {
        // dockershim's and cri-dockerd's reason for a start that failed.
        api::ContainerState::ContainerExited if cannot_run => (
            "ContainerCannotRun".to_string(),
            st.error.clone().unwrap_or_default(),
        ),
        api::ContainerState::ContainerExited => {
            let reason = if st.oom_killed == Some(true) {
                "OOMKilled"
            } else if exit_code == 0 {
                "Completed"
            } else {
                "Error"
            };
            (reason.to_string(), st.error.clone().unwrap_or_default())
        }
        _ => (String::new(), st.error.clone().unwrap_or_default()),
    };
    let image_id = c.image.clone().unwrap_or_default();
    let hc = c.host_config.clone().unwrap_or_default();
    let created = docker_labels
        .get(labels::CREATED_NANOS)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| c.created.as_deref().map_or(0, rfc3339_to_nanos));
    api::ContainerStatus {
        id: c.id.clone().unwrap_or_default(),
        metadata: Some(labels::container_metadata(
            &docker_labels,
            c.name.as_deref().unwrap_or(""),
        )),
        state: state as i32,
        created_at: created,
        started_at: st.started_at.as_deref().map_or(0, rfc3339_to_nanos),
        finished_at: if state == api::ContainerState::ContainerExited {
            // A failed start never ran, so Docker has no finish time; the
            // creation time is the stable stand-in (kubelet needs non-zero).
            match st.finished_at.as_deref().map_or(0, rfc3339_to_nanos) {
                0 if cannot_run => created,
                t => t,
            }
        } else {
            0
        },
        exit_code,
        image: Some(image_spec(
            &docker_labels,
            config.image.as_deref().unwrap_or_default(),
        )),
        image_ref: image_id.clone(),
        image_id,
        reason,
        message,
        labels: cri_labels,
        annotations,
        mounts: c.mounts.iter().flatten().filter_map(mount_status).collect(),
        log_path: docker_labels
            .get(labels::LOG_PATH)
            .cloned()
            .unwrap_or_default(),
        resources: Some(resources_status(&hc)),
        user: user_status(config.user.as_deref().unwrap_or(""), proc_status),
        stop_signal: stop_signal_of(&docker_labels),
    }
}

pub(super) fn stop_signal_of(docker_labels: &HashMap<String, String>) -> i32 {
    let Some(name) = docker_labels.get(STOP_SIGNAL_LABEL) else {
        return 0;
    };
    let cri = format!("SIGNAL_{}", name.replace('+', "PLUS").replace('-', "MINUS"));
    api::Signal::from_str_name(&cri).map_or(0, |s| s as i32)
}
