//! Docker image records → CRI `Image` messages.

use std::collections::BTreeMap;

use bollard::models::{ImageInspect, ImageSummary};

use crate::api;
use crate::mapping::image_ref::ImageRef;

/// Which images are pinned: those carrying the sandbox image's tag. kubelet's
/// image GC never removes a pinned image.
#[derive(Debug, Clone)]
pub struct PinnedImages {
    normalized_refs: Vec<String>,
}

impl PinnedImages {
    pub fn new(refs: &[&str]) -> Self {
        PinnedImages {
            normalized_refs: refs
                .iter()
                .filter_map(|r| ImageRef::parse(r).ok())
                .map(|r| r.normalized())
                .collect(),
        }
    }

    pub fn is_pinned(&self, repo_tags: &[String]) -> bool {
        repo_tags.iter().any(|tag| {
            ImageRef::parse(tag)
                .map(|r| self.normalized_refs.contains(&r.normalized()))
                .unwrap_or(false)
        })
    }
}

/// A Docker image user (`USER` line) split into what CRI reports: a numeric
/// user becomes `uid`, a named one `username`; any `:group` part is dropped.
pub fn image_user(user: &str) -> (Option<i64>, String) {
    let name = user.split(':').next().unwrap_or_default();
    if name.is_empty() {
        return (None, String::new());
    }
    match name.parse::<i64>() {
        Ok(uid) if uid >= 0 => (Some(uid), String::new()),
        _ => (None, name.to_string()),
    }
}

/// Docker reports `<none>:<none>` and `<none>@<none>` for dangling images.
fn real_names(names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter(|n| !n.starts_with("<none>"))
        .cloned()
        .collect()
}

fn clamp_size(size: Option<i64>) -> u64 {
    size.unwrap_or(0).max(0) as u64
}

fn image_spec(id: &str) -> Option<api::ImageSpec> {
    Some(api::ImageSpec {
        image: id.to_string(),
        ..Default::default()
    })
}

pub fn image_from_summary(s: &ImageSummary, pinned: &PinnedImages) -> api::Image {
    let repo_tags = real_names(&s.repo_tags);
    api::Image {
        id: s.id.clone(),
        pinned: pinned.is_pinned(&repo_tags),
        repo_tags,
        repo_digests: real_names(&s.repo_digests),
        size: clamp_size(Some(s.size)),
        uid: None,
        username: String::new(),
        spec: image_spec(&s.id),
    }
}

pub fn image_from_inspect(i: &ImageInspect, pinned: &PinnedImages) -> api::Image {
    let id = i.id.clone().unwrap_or_default();
    let repo_tags = real_names(i.repo_tags.as_deref().unwrap_or_default());
    let user = i
        .config
        .as_ref()
        .and_then(|c| c.user.as_deref())
        .unwrap_or_default();
    let (uid, username) = image_user(user);
    api::Image {
        pinned: pinned.is_pinned(&repo_tags),
        repo_tags,
        repo_digests: real_names(i.repo_digests.as_deref().unwrap_or_default()),
        size: clamp_size(i.size),
        uid: uid.map(|value| api::Int64Value { value }),
        username,
        spec: image_spec(&id),
        id,
    }
}

/// `ImageStatus` verbose info: a JSON summary of the image config under
/// the key `info`.
pub fn image_verbose_info(i: &ImageInspect) -> BTreeMap<String, String> {
    let config = i.config.as_ref();
    let info = serde_json::json!({
        "id": i.id,
        "repoTags": i.repo_tags,
        "repoDigests": i.repo_digests,
        "created": i.created.as_ref().map(|d| d.to_string()),
        "architecture": i.architecture,
        "os": i.os,
        "size": i.size,
        "config": {
            "user": config.and_then(|c| c.user.clone()),
            "entrypoint": config.and_then(|c| c.entrypoint.clone()),
            "cmd": config.and_then(|c| c.cmd.clone()),
            "workingDir": config.and_then(|c| c.working_dir.clone()),
            "exposedPorts": config.and_then(|c| c.exposed_ports.clone()),
            "volumes": config.and_then(|c| c.volumes.clone()),
            "labels": config.and_then(|c| c.labels.clone()),
            "stopSignal": config.and_then(|c| c.stop_signal.clone()),
        },
    });
    BTreeMap::from([("info".to_string(), info.to_string())])
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::ImageConfig;

    #[test]
    fn user_table() {
        let cases = [
            ("", None, ""),
            ("0", Some(0), ""),
            ("1000", Some(1000), ""),
            ("1000:100", Some(1000), ""),
            ("nobody", None, "nobody"),
            ("nobody:nogroup", None, "nobody"),
            ("www-data:33", None, "www-data"),
            (":100", None, ""),
            ("-5", None, "-5"),
        ];
        for (user, uid, name) in cases {
            assert_eq!(image_user(user), (uid, name.to_string()), "{user:?}");
        }
    }

    #[test]
    fn pinned_matches_normalized_tags() {
        let p = PinnedImages::new(&["registry.k8s.io/pause:3.10"]);
        assert!(p.is_pinned(&["registry.k8s.io/pause:3.10".into()]));
        assert!(!p.is_pinned(&["registry.k8s.io/pause:3.9".into()]));
        let hub = PinnedImages::new(&["docker.io/library/pause"]);
        assert!(hub.is_pinned(&["pause:latest".into()]));
        assert!(!hub.is_pinned(&["<none>:<none>".into()]));
    }

    #[test]
    fn inspect_maps_every_field() {
        let inspect = ImageInspect {
            id: Some("sha256:abc".into()),
            repo_tags: Some(vec!["a:1".into(), "b:2".into()]),
            repo_digests: Some(vec!["a@sha256:def".into()]),
            size: Some(1234),
            config: Some(ImageConfig {
                user: Some("101:101".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let img = image_from_inspect(&inspect, &PinnedImages::new(&["b:2"]));
        assert_eq!(img.id, "sha256:abc");
        assert_eq!(img.repo_tags, vec!["a:1", "b:2"]);
        assert_eq!(img.repo_digests, vec!["a@sha256:def"]);
        assert_eq!(img.size, 1234);
        assert_eq!(img.uid, Some(api::Int64Value { value: 101 }));
        assert!(img.username.is_empty());
        assert!(img.pinned);
        assert_eq!(img.spec.unwrap().image, "sha256:abc");
    }

    #[test]
    fn dangling_names_and_negative_sizes_are_dropped() {
        let s = ImageSummary {
            id: "sha256:1".into(),
            repo_tags: vec!["<none>:<none>".into()],
            repo_digests: vec!["<none>@<none>".into()],
            size: -1,
            ..Default::default()
        };
        let img = image_from_summary(&s, &PinnedImages::new(&[]));
        assert!(img.repo_tags.is_empty());
        assert!(img.repo_digests.is_empty());
        assert_eq!(img.size, 0);
    }

    #[test]
    fn verbose_info_is_json() {
        let info = image_verbose_info(&ImageInspect {
            id: Some("sha256:x".into()),
            ..Default::default()
        });
        let v: serde_json::Value = serde_json::from_str(&info["info"]).unwrap();
        assert_eq!(v["id"], "sha256:x");
    }
}
