//! Pause containers back to CRI records: list entries and status.

use std::collections::HashMap;

use bollard::models::{ContainerInspectResponse, ContainerSummary, ContainerSummaryStateEnum};

use crate::api;
use crate::mapping::labels;

use super::{NETWORK_NONE, decode_namespaces};

fn state(ready: bool) -> i32 {
    if ready {
        api::PodSandboxState::SandboxReady as i32
    } else {
        api::PodSandboxState::SandboxNotready as i32
    }
}

fn created_nanos(labels: &HashMap<String, String>, docker_fallback: i64) -> i64 {
    labels
        .get(labels::CREATED_NANOS)
        .and_then(|v| v.parse().ok())
        .unwrap_or(docker_fallback)
}

/// A listed pause container → a CRI sandbox record (no inspect needed).
pub fn pod_sandbox_from_summary(s: &ContainerSummary) -> api::PodSandbox {
    let docker_labels = s.labels.clone().unwrap_or_default();
    let name = s
        .names
        .as_ref()
        .and_then(|n| n.first())
        .map_or("", String::as_str);
    let (cri_labels, annotations) = labels::split_labels(&docker_labels);
    api::PodSandbox {
        id: s.id.clone().unwrap_or_default(),
        metadata: Some(labels::sandbox_metadata(&docker_labels, name)),
        state: state(s.state == Some(ContainerSummaryStateEnum::RUNNING)),
        created_at: created_nanos(
            &docker_labels,
            s.created.unwrap_or(0).saturating_mul(1_000_000_000),
        ),
        labels: cri_labels,
        annotations,
        runtime_handler: docker_labels
            .get(labels::RUNTIME_HANDLER)
            .cloned()
            .unwrap_or_default(),
    }
}

/// The namespace options a sandbox was created with: from our label, or
/// read off Docker's modes for sandboxes another shim created.
pub fn sandbox_namespaces(c: &ContainerInspectResponse) -> api::NamespaceOption {
    let docker_labels = c.config.as_ref().and_then(|c| c.labels.as_ref());
    if let Some(text) = docker_labels.and_then(|l| l.get(labels::NAMESPACE_OPTIONS)) {
        return decode_namespaces(text);
    }
    let hc = c.host_config.clone().unwrap_or_default();
    let node_or = |mode: Option<&str>, other: api::NamespaceMode| {
        if mode == Some("host") {
            api::NamespaceMode::Node as i32
        } else {
            other as i32
        }
    };
    api::NamespaceOption {
        network: node_or(hc.network_mode.as_deref(), api::NamespaceMode::Pod),
        pid: node_or(hc.pid_mode.as_deref(), api::NamespaceMode::Container),
        ipc: node_or(hc.ipc_mode.as_deref(), api::NamespaceMode::Pod),
        ..Default::default()
    }
}

/// The pod's IPs: the address on the network the pause container joined,
/// IPv4 first, then IPv6. Host-network and `none` pods have none.
pub fn sandbox_ips(c: &ContainerInspectResponse) -> Vec<String> {
    let network = c
        .host_config
        .as_ref()
        .and_then(|h| h.network_mode.clone())
        .unwrap_or_default();
    if network == "host" || network == NETWORK_NONE {
        return Vec::new();
    }
    let networks = c
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref());
    let endpoint = networks.and_then(|n| {
        n.get(&network).or_else(|| {
            if network == "default" {
                n.get("bridge")
            } else {
                None
            }
        })
    });
    let Some(ep) = endpoint else {
        return Vec::new();
    };
    [ep.ip_address.clone(), ep.global_ipv6_address.clone()]
        .into_iter()
        .flatten()
        .filter(|ip| !ip.is_empty())
        .collect()
}

pub fn sandbox_status(c: &ContainerInspectResponse) -> api::PodSandboxStatus {
    let docker_labels = c
        .config
        .as_ref()
        .and_then(|c| c.labels.clone())
        .unwrap_or_default();
    let (cri_labels, annotations) = labels::split_labels(&docker_labels);
    let running = c.state.as_ref().and_then(|s| s.running).unwrap_or(false);
    let created = c
        .created
        .as_deref()
        .map(crate::mapping::time::rfc3339_to_nanos)
        .unwrap_or(0);
    let mut ips = if running { sandbox_ips(c) } else { Vec::new() };
    let network = (!ips.is_empty()).then(|| {
        let first = ips.remove(0);
        api::PodSandboxNetworkStatus {
            ip: first,
            additional_ips: ips.into_iter().map(|ip| api::PodIp { ip }).collect(),
        }
    });
    api::PodSandboxStatus {
        id: c.id.clone().unwrap_or_default(),
        metadata: Some(labels::sandbox_metadata(
            &docker_labels,
            c.name.as_deref().unwrap_or(""),
        )),
        state: state(running),
        created_at: created_nanos(&docker_labels, created),
        // kubelet recreates a non-host sandbox whose network status has an
        // empty IP; no IP means no network status at all.
        network,
        linux: Some(api::LinuxPodSandboxStatus {
            namespaces: Some(api::Namespace {
                options: Some(sandbox_namespaces(c)),
            }),
        }),
        labels: cri_labels,
        annotations,
        runtime_handler: docker_labels
            .get(labels::RUNTIME_HANDLER)
            .cloned()
            .unwrap_or_default(),
    }
}
