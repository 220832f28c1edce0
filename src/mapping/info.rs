//! `docker version` / `docker info` → CRI runtime information: API version
//! arithmetic, runtime handlers and the cgroup driver.

use std::collections::HashMap;

use crate::api;

/// Docker API version as (major, minor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32, pub u32);

/// The oldest Docker API docker-cri speaks: Docker 20.10.
pub const MIN_API_VERSION: ApiVersion = ApiVersion(1, 41);

/// First API with `BindOptions.ReadOnlyForceRecursive`.
pub const RRO_API_VERSION: ApiVersion = ApiVersion(1, 44);

/// First API (Docker 28) with `image` mounts (and `ImageOptions.Subpath`).
pub const IMAGE_MOUNT_API_VERSION: ApiVersion = ApiVersion(1, 48);

impl ApiVersion {
    pub fn parse(text: &str) -> Option<ApiVersion> {
        let (major, minor) = text.trim().split_once('.')?;
        Some(ApiVersion(major.parse().ok()?, minor.parse().ok()?))
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// Kernel release "6.1.0-18-amd64" → (6, 1).
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Recursive read-only mounts need Docker's API for them and
/// `mount_setattr(2)` (Linux 5.12).
pub fn recursive_read_only_supported(api: ApiVersion, kernel_release: &str) -> bool {
    api >= RRO_API_VERSION && kernel_version(kernel_release).is_some_and(|k| k >= (5, 12))
}

/// One CRI runtime handler per Docker runtime, plus the empty-named handler
/// for Docker's default runtime. Sorted so the answer is stable.
pub fn runtime_handlers(
    runtimes: Option<&HashMap<String, bollard::models::Runtime>>,
    rro: bool,
) -> Vec<api::RuntimeHandler> {
    let features = || {
        Some(api::RuntimeHandlerFeatures {
            recursive_read_only_mounts: rro,
            user_namespaces: false,
        })
    };
    let mut names: Vec<&String> = runtimes.map(|r| r.keys().collect()).unwrap_or_default();
    names.sort();
    std::iter::once(String::new())
        .chain(names.into_iter().cloned())
        .map(|name| api::RuntimeHandler {
            name,
            features: features(),
        })
        .collect()
}

pub fn cgroup_driver(driver: Option<&str>) -> api::CgroupDriver {
    match driver {
        Some("systemd") => api::CgroupDriver::Systemd,
        _ => api::CgroupDriver::Cgroupfs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_compare() {
        assert_eq!(ApiVersion::parse("1.41"), Some(ApiVersion(1, 41)));
        assert_eq!(ApiVersion::parse(" 1.45 "), Some(ApiVersion(1, 45)));
        assert!(ApiVersion::parse("1").is_none());
        assert!(ApiVersion::parse("x.y").is_none());
        assert!(ApiVersion(1, 40) < MIN_API_VERSION);
        assert!(ApiVersion(1, 100) > ApiVersion(1, 53));
    }

    #[test]
    fn rro_needs_api_and_kernel() {
        let cases = [
            (ApiVersion(1, 41), "6.1.0", false),
            (ApiVersion(1, 44), "5.10.0-21-amd64", false),
            (ApiVersion(1, 44), "5.12.0", true),
            (ApiVersion(1, 45), "6.18.44-fc", true),
            (ApiVersion(1, 45), "garbage", false),
        ];
        for (api, kernel, want) in cases {
            assert_eq!(
                recursive_read_only_supported(api, kernel),
                want,
                "{api} {kernel}"
            );
        }
    }

    #[test]
    fn handlers_include_default_and_each_runtime() {
        let runtimes: HashMap<String, bollard::models::Runtime> = ["runc", "io.containerd.runc.v2"]
            .into_iter()
            .map(|n| (n.to_string(), Default::default()))
            .collect();
        let handlers = runtime_handlers(Some(&runtimes), true);
        let names: Vec<&str> = handlers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["", "io.containerd.runc.v2", "runc"]);
        assert!(
            handlers
                .iter()
                .all(|h| h.features.unwrap().recursive_read_only_mounts)
        );
        assert_eq!(runtime_handlers(None, false).len(), 1);
    }

    #[test]
    fn cgroup_driver_table() {
        assert_eq!(cgroup_driver(Some("systemd")), api::CgroupDriver::Systemd);
        assert_eq!(cgroup_driver(Some("cgroupfs")), api::CgroupDriver::Cgroupfs);
        assert_eq!(cgroup_driver(None), api::CgroupDriver::Cgroupfs);
    }
}
