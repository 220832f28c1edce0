//! What a plugin is told besides its config: `CNI_ARGS` with the pod's
//! identity, and the `runtimeConfig` capability arguments (`portMappings`,
//! `bandwidth`, `ipRanges`, `dns`), each passed only to plugins that
//! declare it in `capabilities`, as libcni does.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::api;
use crate::error::{Error, Result};

pub const INGRESS_BANDWIDTH: &str = "kubernetes.io/ingress-bandwidth";
pub const EGRESS_BANDWIDTH: &str = "kubernetes.io/egress-bandwidth";

/// The pod a plugin call is for.
#[derive(Debug, Clone, Default)]
pub struct PodIdentity {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub sandbox_id: String,
}

/// `CNI_ARGS`, kubelet's keys (cri-dockerd and containerd pass the same).
pub fn cni_args(pod: &PodIdentity) -> Vec<(String, String)> {
    vec![
        ("IgnoreUnknown".into(), "1".into()),
        ("K8S_POD_NAMESPACE".into(), pod.namespace.clone()),
        ("K8S_POD_NAME".into(), pod.name.clone()),
        ("K8S_POD_INFRA_CONTAINER_ID".into(), pod.sandbox_id.clone()),
        ("K8S_POD_UID".into(), pod.uid.clone()),
    ]
}

/// The `CNI_ARGS` environment value: `K=V` pairs joined by `;`.
pub fn cni_args_env(args: &[(String, String)]) -> String {
    args.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";")
}

/// Every capability argument the pod has; plugins get the subset they
/// declare (see [`plugin_stdin`]).
pub fn capability_args(
    config: &api::PodSandboxConfig,
    pod_cidr: &str,
) -> Result<Map<String, Value>> {
    let mut caps = Map::new();
    let ports: Vec<Value> = config
        .port_mappings
        .iter()
        .filter(|p| p.host_port > 0)
        .map(|p| {
            let protocol = api::Protocol::try_from(p.protocol)
                .map(|p| p.as_str_name().to_lowercase())
                .unwrap_or_else(|_| "tcp".into());
            json!({
                "hostPort": p.host_port,
                "containerPort": p.container_port,
                "protocol": protocol,
                "hostIP": p.host_ip,
            })
        })
        .collect();
    if !ports.is_empty() {
        caps.insert("portMappings".into(), Value::Array(ports));
    }
    if let Some(bw) = bandwidth(&config.annotations)? {
        caps.insert("bandwidth".into(), bw);
    }
    let ranges: Vec<Value> = pod_cidr
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| json!([{ "subnet": c }]))
        .collect();
    if !ranges.is_empty() {
        caps.insert("ipRanges".into(), Value::Array(ranges));
    }
    if let Some(dns) = &config.dns_config
        && !(dns.servers.is_empty() && dns.searches.is_empty() && dns.options.is_empty())
    {
        caps.insert(
            "dns".into(),
            json!({ "servers": dns.servers, "searches": dns.searches, "options": dns.options }),
        );
    }
    Ok(caps)
}

/// The bandwidth plugin's arguments from the pod's annotations, in bits
/// per second, with the burst cri-dockerd passes (no burst limit).
fn bandwidth(annotations: &HashMap<String, String>) -> Result<Option<Value>> {
    let rate = |key: &str| -> Result<Option<u64>> {
        annotations
            .get(key)
            .map(|v| {
                parse_quantity(v).ok_or_else(|| {
                    Error::invalid(format!(
                        "annotation {key}: {v:?} is not a Kubernetes quantity"
                    ))
                })
            })
            .transpose()
    };
    let (ingress, egress) = (rate(INGRESS_BANDWIDTH)?, rate(EGRESS_BANDWIDTH)?);
    if ingress.is_none() && egress.is_none() {
        return Ok(None);
    }
    let mut bw = Map::new();
    if let Some(r) = ingress {
        bw.insert("ingressRate".into(), r.into());
        bw.insert("ingressBurst".into(), i32::MAX.into());
    }
    if let Some(r) = egress {
        bw.insert("egressRate".into(), r.into());
        bw.insert("egressBurst".into(), i32::MAX.into());
    }
    Ok(Some(Value::Object(bw)))
}

/// A Kubernetes quantity (`10M`, `1Gi`, `500k`, `2.5M`) as a whole number,
/// rounded up as `Quantity.Value()` does.
pub fn parse_quantity(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let multiplier: f64 = match suffix {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => return None,
    };
    if number.is_empty() || number.matches('.').count() > 1 {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let total = (value * multiplier).ceil();
    (total.is_finite() && total >= 0.0 && total < u64::MAX as f64).then_some(total as u64)
}

/// The stdin config of one plugin of the chain: its own object with the
/// network's `name` and `cniVersion`, the previous result (`prevResult`)
/// and the `runtimeConfig` keys it declares among `capabilities`.
pub fn plugin_stdin(
    plugin: &Value,
    name: &str,
    cni_version: &str,
    prev_result: Option<&Value>,
    caps: &Map<String, Value>,
) -> Value {
    let mut conf = plugin.as_object().cloned().unwrap_or_default();
    conf.insert("name".into(), name.into());
    conf.insert("cniVersion".into(), cni_version.into());
    if let Some(prev) = prev_result {
        conf.insert("prevResult".into(), prev.clone());
    }
    let declared: Vec<&String> = plugin
        .get("capabilities")
        .and_then(Value::as_object)
        .map(|c| {
            c.iter()
                .filter(|(_, on)| on.as_bool() == Some(true))
                .map(|(k, _)| k)
                .collect()
        })
        .unwrap_or_default();
    let runtime: Map<String, Value> = declared
        .into_iter()
        .filter_map(|k| caps.get(k).map(|v| (k.clone(), v.clone())))
        .collect();
    if !runtime.is_empty() {
        conf.insert("runtimeConfig".into(), Value::Object(runtime));
    }
    Value::Object(conf)
}
