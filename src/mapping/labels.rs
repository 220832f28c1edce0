//! Docker labels that carry CRI state. The keys are dockershim's and
//! cri-dockerd's, so pods they created on a host are recognised after a
//! switch to docker-cri:
//!
//! | key | meaning |
//! | --- | --- |
//! | `io.kubernetes.docker.type` | `podsandbox` or `container` |
//! | `io.kubernetes.sandbox.id` | a container's sandbox |
//! | `io.kubernetes.container.logpath` | a container's log file |
//! | `io.kubernetes.container.name` | `POD` on sandboxes |
//! | `io.kubernetes.pod.name` / `.namespace` / `.uid` | pod metadata |
//! | `annotation.<key>` | a CRI annotation |
//! | `io.docker-cri.*` | docker-cri's own bookkeeping (below) |
//!
//! CRI labels are stored verbatim, and their keys are listed (JSON) in
//! `io.docker-cri.label-keys`: Docker merges the image's labels into a
//! container's, and only the listed keys are reported back as CRI labels.
//! Containers another shim created have no list; for them every label that
//! is not bookkeeping counts, as dockershim did.

use std::collections::HashMap;

use crate::api;
use crate::error::{Error, Result};

pub const TYPE: &str = "io.kubernetes.docker.type";
pub const TYPE_SANDBOX: &str = "podsandbox";
pub const TYPE_CONTAINER: &str = "container";
pub const SANDBOX_ID: &str = "io.kubernetes.sandbox.id";
pub const LOG_PATH: &str = "io.kubernetes.container.logpath";
pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
pub const SANDBOX_CONTAINER_NAME: &str = "POD";
pub const POD_NAME: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const POD_UID: &str = "io.kubernetes.pod.uid";
pub const ANNOTATION_PREFIX: &str = "annotation.";

/// Prefix of every docker-cri bookkeeping label.
pub const OWN_PREFIX: &str = "io.docker-cri.";
/// Metadata as docker-cri recorded it. kubelet's `io.kubernetes.*` keys
/// carry the same facts for other tools, but a caller may set those labels
/// to anything, so these are what docker-cri reads back.
pub const META_POD_NAME: &str = "io.docker-cri.pod-name";
pub const META_POD_NAMESPACE: &str = "io.docker-cri.pod-namespace";
pub const META_POD_UID: &str = "io.docker-cri.pod-uid";
pub const META_CONTAINER_NAME: &str = "io.docker-cri.container-name";
pub const ATTEMPT: &str = "io.docker-cri.attempt";
pub const LABEL_KEYS: &str = "io.docker-cri.label-keys";
pub const RUNTIME_HANDLER: &str = "io.docker-cri.runtime-handler";
pub const NAMESPACE_OPTIONS: &str = "io.docker-cri.namespace-options";
pub const CREATED_NANOS: &str = "io.docker-cri.created";

/// Keys that are always bookkeeping, never a caller's label.
const INTERNAL: &[&str] = &[
    TYPE,
    SANDBOX_ID,
    LOG_PATH,
    ATTEMPT,
    LABEL_KEYS,
    RUNTIME_HANDLER,
    NAMESPACE_OPTIONS,
    CREATED_NANOS,
];

/// Docker labels for a sandbox: CRI labels, annotations, metadata and `extra`
/// bookkeeping. Refuses caller labels that would be read back as something
/// else.
pub fn sandbox_labels(
    metadata: &api::PodSandboxMetadata,
    labels: &HashMap<String, String>,
    annotations: &HashMap<String, String>,
    extra: &[(&str, String)],
) -> Result<HashMap<String, String>> {
    if labels.contains_key(CONTAINER_NAME) {
        return Err(Error::invalid(format!(
            "labels: key {CONTAINER_NAME:?} is reserved on pod sandboxes"
        )));
    }
    let mut out = build(
        TYPE_SANDBOX,
        labels,
        annotations,
        &[
            (META_POD_NAME, POD_NAME, &metadata.name),
            (META_POD_NAMESPACE, POD_NAMESPACE, &metadata.namespace),
            (META_POD_UID, POD_UID, &metadata.uid),
        ],
        metadata.attempt,
        extra,
    )?;
    out.insert(CONTAINER_NAME.into(), SANDBOX_CONTAINER_NAME.into());
    Ok(out)
}

/// Docker labels for an app container. kubelet's own `io.kubernetes.*`
/// labels are allowed; metadata keys it did not set are added.
pub fn container_labels(
    metadata: &api::ContainerMetadata,
    pod: &api::PodSandboxMetadata,
    labels: &HashMap<String, String>,
    annotations: &HashMap<String, String>,
    extra: &[(&str, String)],
) -> Result<HashMap<String, String>> {
    build(
        TYPE_CONTAINER,
        labels,
        annotations,
        &[
            (META_CONTAINER_NAME, CONTAINER_NAME, &metadata.name),
            (META_POD_NAME, POD_NAME, &pod.name),
            (META_POD_NAMESPACE, POD_NAMESPACE, &pod.namespace),
            (META_POD_UID, POD_UID, &pod.uid),
        ],
        metadata.attempt,
        extra,
    )
}

/// The shared layout: caller labels verbatim (and their key list),
/// annotations prefixed, metadata under docker-cri's keys and, unless the
/// caller set them, kubelet's; then bookkeeping.
fn build(
    kind: &str,
    labels: &HashMap<String, String>,
    annotations: &HashMap<String, String>,
    metadata: &[(&str, &str, &String)],
    attempt: u32,
    extra: &[(&str, String)],
) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for (k, v) in labels {
        if is_reserved(k) {
            return Err(Error::invalid(format!(
                "labels: key {k:?} is reserved for docker-cri's bookkeeping"
            )));
        }
        out.insert(k.clone(), v.clone());
    }
    for (k, v) in annotations {
        out.insert(format!("{ANNOTATION_PREFIX}{k}"), v.clone());
    }
    for (own_key, kubelet_key, value) in metadata {
        out.insert(own_key.to_string(), (*value).clone());
        if !labels.contains_key(*kubelet_key) {
            out.insert(kubelet_key.to_string(), (*value).clone());
        }
    }
    let mut keys: Vec<&String> = labels.keys().collect();
    keys.sort();
    out.insert(
        LABEL_KEYS.into(),
        serde_json::to_string(&keys).unwrap_or_else(|_| "[]".into()),
    );
    out.insert(TYPE.into(), kind.into());
    out.insert(ATTEMPT.into(), attempt.to_string());
    for (k, v) in extra {
        out.insert(k.to_string(), v.clone());
    }
    Ok(out)
}

fn is_reserved(key: &str) -> bool {
    INTERNAL.contains(&key) || key.starts_with(ANNOTATION_PREFIX) || key.starts_with(OWN_PREFIX)
}

/// Container metadata from labels, or from the dockershim name
/// `k8s_<container>_<pod>_<ns>_<uid>_<attempt>`.
pub fn container_metadata(
    docker: &HashMap<String, String>,
    docker_name: &str,
) -> api::ContainerMetadata {
    let parts: Vec<&str> = docker_name.trim_start_matches('/').split('_').collect();
    let from_name =
        (parts.len() == 6 && parts[0] == "k8s").then(|| (parts[1], parts[5].parse::<u32>().ok()));
    api::ContainerMetadata {
        name: docker
            .get(META_CONTAINER_NAME)
            .or_else(|| docker.get(CONTAINER_NAME))
            .cloned()
            .or_else(|| from_name.map(|p| p.0.to_string()))
            .unwrap_or_default(),
        attempt: docker
            .get(ATTEMPT)
            .and_then(|a| a.parse().ok())
            .or(from_name.and_then(|p| p.1))
            .unwrap_or(0),
    }
}

/// Splits Docker labels back into the caller's CRI labels and annotations.
pub fn split_labels(
    docker: &HashMap<String, String>,
) -> (HashMap<String, String>, HashMap<String, String>) {
    let listed: Option<Vec<String>> = docker
        .get(LABEL_KEYS)
        .and_then(|k| serde_json::from_str(k).ok());
    let is_sandbox = docker.get(TYPE).map(String::as_str) == Some(TYPE_SANDBOX);
    let mut labels = HashMap::new();
    let mut annotations = HashMap::new();
    for (k, v) in docker {
        if INTERNAL.contains(&k.as_str()) || k.starts_with(OWN_PREFIX) {
            continue;
        }
        if let Some(key) = k.strip_prefix(ANNOTATION_PREFIX) {
            annotations.insert(key.to_string(), v.clone());
            continue;
        }
        let is_label = match &listed {
            Some(keys) => keys.contains(k),
            None => !(is_sandbox && k == CONTAINER_NAME),
        };
        if is_label {
            labels.insert(k.clone(), v.clone());
        }
    }
    (labels, annotations)
}

/// Sandbox metadata from labels, or — for sandboxes that another shim made
/// without them — from the dockershim name `k8s_POD_<name>_<ns>_<uid>_<attempt>`.
pub fn sandbox_metadata(
    docker: &HashMap<String, String>,
    docker_name: &str,
) -> api::PodSandboxMetadata {
    let from_name = parse_sandbox_name(docker_name);
    let pick = |key: &str, fallback: Option<&str>| {
        docker
            .get(key)
            .cloned()
            .or_else(|| fallback.map(str::to_string))
            .unwrap_or_default()
    };
    let parts = from_name.as_ref();
    let pick = |own: &str, kubelet: &str, fallback: Option<&str>| {
        docker
            .get(own)
            .cloned()
            .unwrap_or_else(|| pick(kubelet, fallback))
    };
    api::PodSandboxMetadata {
        name: pick(META_POD_NAME, POD_NAME, parts.map(|p| p.0.as_str())),
        namespace: pick(
            META_POD_NAMESPACE,
            POD_NAMESPACE,
            parts.map(|p| p.1.as_str()),
        ),
        uid: pick(META_POD_UID, POD_UID, parts.map(|p| p.2.as_str())),
        attempt: docker
            .get(ATTEMPT)
            .and_then(|a| a.parse().ok())
            .or(parts.map(|p| p.3))
            .unwrap_or(0),
    }
}

fn parse_sandbox_name(name: &str) -> Option<(String, String, String, u32)> {
    let name = name.trim_start_matches('/');
    let parts: Vec<&str> = name.split('_').collect();
    if parts.len() != 6 || parts[0] != "k8s" || parts[1] != SANDBOX_CONTAINER_NAME {
        return None;
    }
    Some((
        parts[2].to_string(),
        parts[3].to_string(),
        parts[4].to_string(),
        parts[5].parse().ok()?,
    ))
}

/// How many bytes of label filters go into Docker's list URL at most.
/// Docker's HTTP server refuses request lines past 1 MiB and proxies far
/// less; past this budget the list is filtered by docker-cri alone.
const DOCKER_FILTER_BUDGET: usize = 4096;

/// A label selector as Docker list filters (`key=value`), when it is small
/// and plain enough to travel in Docker's URL; otherwise none, and the
/// caller's own filtering (which always runs) does the work.
pub fn docker_label_filters(selector: &HashMap<String, String>) -> Vec<String> {
    let plain = |s: &str| !s.chars().any(char::is_control);
    let size: usize = selector.iter().map(|(k, v)| k.len() + v.len() + 1).sum();
    if size > DOCKER_FILTER_BUDGET
        || selector
            .iter()
            .any(|(k, v)| k.is_empty() || k.contains('=') || !plain(k) || !plain(v))
    {
        return Vec::new();
    }
    selector.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> api::PodSandboxMetadata {
        api::PodSandboxMetadata {
            name: "web".into(),
            namespace: "prod".into(),
            uid: "u-1".into(),
            attempt: 3,
        }
    }

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_filters_only_when_they_fit() {
        let small = map(&[("app", "web")]);
        assert_eq!(docker_label_filters(&small), vec!["app=web"]);
        let huge = map(&[("app", &"x".repeat(1 << 20))]);
        assert!(docker_label_filters(&huge).is_empty());
        let odd = map(&[("a=b", "c")]);
        assert!(docker_label_filters(&odd).is_empty());
        let ctl = map(&[("a", "line\nbreak")]);
        assert!(docker_label_filters(&ctl).is_empty());
    }

    #[test]
    fn round_trip_hides_bookkeeping() {
        let labels = map(&[("app", "web"), (POD_NAME, "web")]);
        let annotations = map(&[("note", "x"), ("annotation.nested", "y")]);
        let docker = sandbox_labels(
            &meta(),
            &labels,
            &annotations,
            &[(RUNTIME_HANDLER, "runc".into())],
        )
        .unwrap();
        assert_eq!(docker[TYPE], TYPE_SANDBOX);
        assert_eq!(docker[POD_NAMESPACE], "prod");
        assert_eq!(docker["annotation.note"], "x");
        let mut with_image_labels = docker.clone();
        with_image_labels.insert("maintainer".into(), "from the image".into());
        let (l, a) = split_labels(&with_image_labels);
        assert_eq!(l, labels, "labels come back exactly as given");
        assert_eq!(a, annotations);
        let m = sandbox_metadata(&docker, "/anything");
        assert_eq!(m, meta());
    }

    #[test]
    fn reserved_and_contradicting_labels_are_refused() {
        for bad in [
            map(&[(TYPE, "x")]),
            map(&[("annotation.x", "y")]),
            map(&[("io.docker-cri.anything", "y")]),
            map(&[(CONTAINER_NAME, "c")]),
        ] {
            assert!(
                sandbox_labels(&meta(), &bad, &HashMap::new(), &[]).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn caller_labels_may_differ_from_metadata() {
        let labels = map(&[(POD_NAME, "fake-pod-name")]);
        let docker = sandbox_labels(&meta(), &labels, &HashMap::new(), &[]).unwrap();
        assert_eq!(
            sandbox_metadata(&docker, "/x").name,
            "web",
            "metadata is docker-cri's own record"
        );
        assert_eq!(
            split_labels(&docker).0,
            labels,
            "the caller's label is kept verbatim"
        );
    }

    #[test]
    fn metadata_of_foreign_sandboxes_comes_from_the_name() {
        let docker = map(&[(TYPE, TYPE_SANDBOX)]);
        let m = sandbox_metadata(&docker, "/k8s_POD_nginx_default_abc-123_2");
        assert_eq!(m.name, "nginx");
        assert_eq!(m.namespace, "default");
        assert_eq!(m.uid, "abc-123");
        assert_eq!(m.attempt, 2);
        // Kubelet's own labels win over the name.
        let labelled = map(&[(TYPE, TYPE_SANDBOX), (POD_NAME, "real")]);
        assert_eq!(
            sandbox_metadata(&labelled, "/k8s_POD_nginx_default_abc_2").name,
            "real"
        );
        // A dockershim sandbox's CONTAINER_NAME label is internal.
        let (l, _) = split_labels(&map(&[
            (TYPE, TYPE_SANDBOX),
            (CONTAINER_NAME, "POD"),
            (POD_NAME, "p"),
        ]));
        assert_eq!(l, map(&[(POD_NAME, "p")]));
    }
}
