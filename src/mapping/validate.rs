//! Field checks shared by every request: what the CRI and Kubernetes define
//! (name lengths, absolute clean paths, enum ranges, non-negative IDs),
//! applied at the edge so a caller's mistake is an `InvalidArgument` naming
//! the field, before anything is created.

use std::path::{Component, Path};

use crate::api;
use crate::error::{Error, Result};

/// The longest metadata field accepted: a Kubernetes DNS subdomain (pod
/// names) is at most 253 characters, and every other metadata field
/// (namespace, UID, container name) is shorter in Kubernetes.
pub const MAX_NAME_LEN: usize = 253;

/// The longest single string docker-cri passes on (a command argument, an
/// environment value, a path); Linux's own limit for one argument.
pub const MAX_STRING_LEN: usize = 128 * 1024;

/// No NUL byte (Docker, the kernel and C strings stop at it) and a bounded
/// length.
pub fn text(field: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(Error::invalid(format!("{field} contains a NUL byte")));
    }
    if value.len() > MAX_STRING_LEN {
        return Err(Error::invalid(format!(
            "{field} is {} bytes long (at most {MAX_STRING_LEN})",
            value.len()
        )));
    }
    Ok(())
}

/// Every element of a list of strings, named `field[i]`.
pub fn texts(field: &str, values: &[String]) -> Result<()> {
    values
        .iter()
        .enumerate()
        .try_for_each(|(i, v)| text(&format!("{field}[{i}]"), v))
}

/// An absolute path without `..` components (nothing that could climb out
/// of where it seems to point).
pub fn absolute_clean_path(field: &str, value: &str) -> Result<()> {
    text(field, value)?;
    let path = Path::new(value);
    if !path.is_absolute() {
        return Err(Error::invalid(format!(
            "{field} {value:?} must be an absolute path"
        )));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(Error::invalid(format!(
            "{field} {value:?} must not contain '..'"
        )));
    }
    Ok(())
}

/// A path that never climbs with `..` (absolute or not).
pub fn no_parent_dirs(field: &str, value: &str) -> Result<()> {
    text(field, value)?;
    if Path::new(value)
        .components()
        .any(|c| c == Component::ParentDir)
    {
        return Err(Error::invalid(format!(
            "{field} {value:?} must not contain '..'"
        )));
    }
    Ok(())
}

/// A namespace mode the CRI defines; `TARGET` only where `allow_target`.
pub fn namespace_mode(field: &str, value: i32, allow_target: bool) -> Result<()> {
    match api::NamespaceMode::try_from(value) {
        Ok(api::NamespaceMode::Target) if !allow_target => Err(Error::invalid(format!(
            "{field}: TARGET is only valid for a container's PID namespace"
        ))),
        Ok(_) => Ok(()),
        Err(_) => Err(Error::invalid(format!(
            "{field} {value} is not a known namespace mode"
        ))),
    }
}

/// Namespace options: known modes; TARGET only for a container's PID.
pub fn namespace_options(
    field: &str,
    ns: Option<&api::NamespaceOption>,
    container: bool,
) -> Result<()> {
    let Some(ns) = ns else { return Ok(()) };
    namespace_mode(&format!("{field}.network"), ns.network, false)?;
    namespace_mode(&format!("{field}.ipc"), ns.ipc, false)?;
    namespace_mode(&format!("{field}.pid"), ns.pid, container)?;
    if container && ns.network == api::NamespaceMode::Container as i32 {
        return Err(Error::invalid(format!(
            "{field}.network: a container always shares its pod's network"
        )));
    }
    Ok(())
}

/// Group IDs are never negative.
pub fn group_ids(field: &str, groups: &[i64]) -> Result<()> {
    match groups.iter().position(|g| *g < 0) {
        Some(i) => Err(Error::invalid(format!(
            "{field}[{i}] {} is negative",
            groups[i]
        ))),
        None => Ok(()),
    }
}

/// Resource amounts (a pod's overhead and its total resources) are never
/// negative; `cpu_quota` may be -1 (no limit), `memory_swap` likewise.
pub fn resource_amounts(field: &str, r: Option<&api::LinuxContainerResources>) -> Result<()> {
    let Some(r) = r else { return Ok(()) };
    for (name, value, floor) in [
        ("cpu_period", r.cpu_period, 0),
        ("cpu_quota", r.cpu_quota, -1),
        ("cpu_shares", r.cpu_shares, 0),
        ("memory_limit_in_bytes", r.memory_limit_in_bytes, 0),
        (
            "memory_swap_limit_in_bytes",
            r.memory_swap_limit_in_bytes,
            -1,
        ),
    ] {
        if value < floor {
            return Err(Error::invalid(format!(
                "{field}.{name} {value} must not be negative"
            )));
        }
    }
    if !(-1000..=1000).contains(&r.oom_score_adj) {
        return Err(Error::invalid(format!(
            "{field}.oom_score_adj {} is not in -1000..1000",
            r.oom_score_adj
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_and_paths() {
        assert!(text("f", "ok").is_ok());
        assert!(text("f", "a\0b").unwrap_err().to_string().contains("f"));
        assert!(text("f", &"x".repeat(MAX_STRING_LEN + 1)).is_err());
        assert!(
            texts("cmd", &["a".into(), "b\0".into()])
                .unwrap_err()
                .to_string()
                .contains("cmd[1]")
        );
        assert!(absolute_clean_path("p", "/a/b").is_ok());
        assert!(absolute_clean_path("p", "/a/./b").is_ok());
        for bad in ["a/b", "", "/a/../b", "/..", "/a\0"] {
            assert!(absolute_clean_path("p", bad).is_err(), "{bad:?}");
        }
        assert!(no_parent_dirs("c", "kubepods.slice").is_ok());
        assert!(no_parent_dirs("c", "").is_ok());
        assert!(no_parent_dirs("c", "/kubepods/../../etc").is_err());
    }

    #[test]
    fn namespace_modes() {
        let ns = |n, p, i| api::NamespaceOption {
            network: n,
            pid: p,
            ipc: i,
            ..Default::default()
        };
        assert!(namespace_options("ns", Some(&ns(0, 3, 0)), true).is_ok());
        assert!(namespace_options("ns", Some(&ns(0, 3, 0)), false).is_err());
        assert!(namespace_options("ns", Some(&ns(99, 0, 0)), false).is_err());
        let err = namespace_options("ns", Some(&ns(0, 0, -1)), false).unwrap_err();
        assert!(err.to_string().contains("ns.ipc"), "{err}");
        assert!(namespace_options("ns", Some(&ns(1, 0, 0)), true).is_err());
        assert!(namespace_options("ns", None, true).is_ok());
    }

    #[test]
    fn ids_and_amounts() {
        assert!(group_ids("g", &[0, 5]).is_ok());
        assert!(
            group_ids("g", &[0, -5])
                .unwrap_err()
                .to_string()
                .contains("g[1]")
        );
        let r = api::LinuxContainerResources {
            cpu_quota: -1,
            memory_swap_limit_in_bytes: -1,
            ..Default::default()
        };
        assert!(resource_amounts("overhead", Some(&r)).is_ok());
        let neg = api::LinuxContainerResources {
            memory_limit_in_bytes: -4,
            ..Default::default()
        };
        let err = resource_amounts("overhead", Some(&neg)).unwrap_err();
        assert!(
            err.to_string().contains("overhead.memory_limit_in_bytes"),
            "{err}"
        );
    }
}
