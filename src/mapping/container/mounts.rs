//! Bind mounts and devices: CRI mounts → Docker `Binds`/`Mounts`, device
//! mappings and CDI requests, and Docker mount points back for status.

use bollard::models::{
    DeviceMapping, DeviceRequest, Mount, MountBindOptions, MountBindOptionsPropagationEnum,
    MountImageOptions, MountPoint, MountType,
};

use crate::api;
use crate::error::{Error, Result};
use crate::mapping::info::{ApiVersion, IMAGE_MOUNT_API_VERSION, RRO_API_VERSION};

fn propagation_suffix(p: i32) -> Result<&'static str> {
    match api::MountPropagation::try_from(p) {
        Ok(api::MountPropagation::PropagationPrivate) => Ok("rprivate"),
        Ok(api::MountPropagation::PropagationHostToContainer) => Ok("rslave"),
        Ok(api::MountPropagation::PropagationBidirectional) => Ok("rshared"),
        Err(_) => Err(Error::invalid(format!("mount propagation {p} is unknown"))),
    }
}

/// A mount Docker's `Binds` strings cannot express: recursive read-only,
/// or a path with ':' or ','. Those go through Docker's `Mounts` API.
fn needs_typed_mount(m: &api::Mount) -> bool {
    let awkward = |p: &str| p.contains(':') || p.contains(',');
    m.recursive_read_only || awkward(&m.host_path) || awkward(&m.container_path)
}

/// Sources docker-cri relabels itself, after create, with the container's
/// mount label: Docker's `Mounts` API has no relabel option. Only where
/// SELinux is enabled; elsewhere relabelling means nothing (as in kubelet
/// and containerd).
pub fn relabel_sources(list: &[api::Mount], selinux_enabled: bool) -> Vec<String> {
    if !selinux_enabled {
        return Vec::new();
    }
    list.iter()
        .filter(|m| m.selinux_relabel && needs_typed_mount(m))
        .map(|m| m.host_path.clone())
        .collect()
}

/// Bind mounts: Docker's `Binds` strings (which carry SELinux relabelling
/// as `Z`), or `Mounts` entries where a string cannot express them.
pub fn mounts(
    list: &[api::Mount],
    api: ApiVersion,
    selinux_enabled: bool,
) -> Result<(Vec<String>, Vec<Mount>)> {
    let mut binds = Vec::new();
    let mut typed = Vec::new();
    for (i, m) in list.iter().enumerate() {
        let field = format!("mounts[{i}]");
        if let Some(image) = m.image.as_ref().filter(|img| !img.image.is_empty()) {
            typed.push(image_mount(&field, m, &image.image, api)?);
            continue;
        }
        if !m.uid_mappings.is_empty() || !m.gid_mappings.is_empty() {
            return Err(Error::Unimplemented(format!(
                "{field}: ID-mapped mounts (user namespaces) are not supported on Docker"
            )));
        }
        if !m.mount_options.is_empty() {
            return Err(Error::Unimplemented(format!(
                "{field}: mount_options are not supported on Docker"
            )));
        }
        if !m.container_path.starts_with('/') {
            return Err(Error::invalid(format!(
                "{field}.container_path {:?} must be absolute",
                m.container_path
            )));
        }
        if !m.host_path.starts_with('/') {
            return Err(Error::invalid(format!(
                "{field}.host_path {:?} must be absolute",
                m.host_path
            )));
        }
        let propagation = propagation_suffix(m.propagation).map_err(|e| e.context(&field))?;
        if m.recursive_read_only {
            if !m.readonly {
                return Err(Error::invalid(format!(
                    "{field}: recursive_read_only needs readonly"
                )));
            }
            if propagation != "rprivate" {
                return Err(Error::invalid(format!(
                    "{field}: recursive_read_only needs private propagation"
                )));
            }
            if api < RRO_API_VERSION {
                return Err(Error::invalid(format!(
                    "{field}: recursive read-only mounts need Docker API {RRO_API_VERSION} (this Docker speaks {api})"
                )));
            }
        }
        if needs_typed_mount(m) {
            // Relabelling, if any, is done by docker-cri (`relabel_sources`).
            typed.push(Mount {
                target: Some(m.container_path.clone()),
                source: Some(m.host_path.clone()),
                typ: Some(MountType::BIND),
                read_only: Some(m.readonly),
                bind_options: Some(MountBindOptions {
                    propagation: Some(match propagation {
                        "rslave" => MountBindOptionsPropagationEnum::RSLAVE,
                        "rshared" => MountBindOptionsPropagationEnum::RSHARED,
                        _ => MountBindOptionsPropagationEnum::RPRIVATE,
                    }),
                    read_only_force_recursive: m.recursive_read_only.then_some(true),
                    ..Default::default()
                }),
                ..Default::default()
            });
            continue;
        }
        let mut options = vec![if m.readonly { "ro" } else { "rw" }, propagation];
        if m.selinux_relabel && selinux_enabled {
            options.push("Z");
        }
        binds.push(format!(
            "{}:{}:{}",
            m.host_path,
            m.container_path,
            options.join(",")
        ));
    }
    Ok((binds, typed))
}

/// A Kubernetes image volume: Docker 28 (API 1.48) mounts the image's
/// filesystem itself (`--mount type=image`), read-only as the CRI wants
/// image volumes (a writable one is refused). For older Docker the runtime turns
/// image volumes into binds of its own unpacked copies before they get
/// here (`runtime::image_volume`).
fn image_mount(field: &str, m: &api::Mount, image: &str, api: ApiVersion) -> Result<Mount> {
    if api < IMAGE_MOUNT_API_VERSION {
        return Err(Error::Unimplemented(format!(
            "{field}: Docker's image mounts need Docker API {IMAGE_MOUNT_API_VERSION} (Docker 28) \
             or newer; this Docker speaks {api}"
        )));
    }
    if !m.container_path.starts_with('/') {
        return Err(Error::invalid(format!(
            "{field}.container_path {:?} must be absolute",
            m.container_path
        )));
    }
    if !m.host_path.is_empty() {
        return Err(Error::invalid(format!(
            "{field}: an image mount takes no host_path (got {:?})",
            m.host_path
        )));
    }
    if !m.readonly {
        return Err(Error::invalid(format!(
            "{field}: an image volume is read-only; readonly must be true"
        )));
    }
    let sub = m.image_sub_path.as_str();
    if sub.starts_with('/') || sub.split('/').any(|s| s == "..") || sub.contains('\0') {
        return Err(Error::invalid(format!(
            "{field}.image_sub_path {sub:?} must be relative and stay inside the image"
        )));
    }
    Ok(Mount {
        target: Some(m.container_path.clone()),
        source: Some(image.to_string()),
        typ: Some(MountType::IMAGE),
        read_only: Some(true),
        image_options: (!sub.is_empty()).then(|| MountImageOptions {
            subpath: Some(sub.to_string()),
        }),
        ..Default::default()
    })
}

pub fn devices(list: &[api::Device]) -> Result<Vec<DeviceMapping>> {
    list.iter()
        .enumerate()
        .map(|(i, d)| {
            if !d.host_path.starts_with('/') || !d.container_path.starts_with('/') {
                return Err(Error::invalid(format!(
                    "devices[{i}]: paths must be absolute"
                )));
            }
            let perms = if d.permissions.is_empty() {
                "rwm"
            } else {
                d.permissions.as_str()
            };
            if !perms.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
                return Err(Error::invalid(format!(
                    "devices[{i}].permissions {:?} must be made of r, w and m",
                    d.permissions
                )));
            }
            Ok(DeviceMapping {
                path_on_host: Some(d.host_path.clone()),
                path_in_container: Some(d.container_path.clone()),
                cgroup_permissions: Some(perms.to_string()),
            })
        })
        .collect()
}

/// CDI devices go through Docker's device requests (the `cdi` driver,
/// Docker API 1.44+).
pub fn cdi_devices(list: &[api::CdiDevice], api: ApiVersion) -> Result<Option<Vec<DeviceRequest>>> {
    if list.is_empty() {
        return Ok(None);
    }
    if api < RRO_API_VERSION {
        return Err(Error::invalid(format!(
            "CDI_devices need Docker API 1.44 or newer (this Docker speaks {api})"
        )));
    }
    Ok(Some(vec![DeviceRequest {
        driver: Some("cdi".into()),
        device_ids: Some(list.iter().map(|d| d.name.clone()).collect()),
        ..Default::default()
    }]))
}

fn propagation_of(p: Option<&str>) -> i32 {
    match p {
        Some("rslave" | "slave") => api::MountPropagation::PropagationHostToContainer as i32,
        Some("rshared" | "shared") => api::MountPropagation::PropagationBidirectional as i32,
        _ => api::MountPropagation::PropagationPrivate as i32,
    }
}

pub fn mount_status(m: &MountPoint) -> Option<api::Mount> {
    if m.typ.as_deref() != Some("bind") {
        return None;
    }
    let mode = m.mode.clone().unwrap_or_default();
    Some(api::Mount {
        container_path: m.destination.clone().unwrap_or_default(),
        host_path: m.source.clone().unwrap_or_default(),
        readonly: !m.rw.unwrap_or(true),
        selinux_relabel: mode.split(',').any(|o| o == "Z" || o == "z"),
        propagation: propagation_of(m.propagation.as_deref()),
        ..Default::default()
    })
}
