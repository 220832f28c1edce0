//! A CRI container config → a Docker container that joins its pod's pause
//! container, and Docker containers back → CRI container records.

use std::path::{Component, Path, PathBuf};

use bollard::models::{ContainerCreateBody, HealthConfig, HostConfig};

use crate::api;
use crate::error::{Error, Result};
use crate::mapping::info::ApiVersion;
use crate::mapping::labels;
use crate::mapping::sandbox::{CgroupDriver, cgroup_parent, is_node};
use crate::mapping::security::docker_user;

mod mounts;
mod resources;
mod status;

pub use mounts::{cdi_devices, devices, mount_status, mounts, relabel_sources};
/// The cgroup settings recorded at create, from the container's labels.
/// A label that does not parse is an error: silently starting the
/// container without its limits would be worse.
pub fn recorded_cgroup_settings(
    docker_labels: &std::collections::HashMap<String, String>,
) -> Result<Vec<CgroupSetting>> {
    match docker_labels.get(CGROUP_SETTINGS_LABEL) {
        None => Ok(Vec::new()),
        Some(json) => serde_json::from_str(json).map_err(|e| {
            Error::FailedPrecondition(format!(
                "label {CGROUP_SETTINGS_LABEL} does not hold cgroup settings: {e}"
            ))
        }),
    }
}

pub use resources::{
    CgroupSetting, Resources, hugepage_size_kib, resources, resources_status, restore_body,
    update_body, valid_unified_key,
};
pub use status::{
    container_from_summary, container_state, container_status, failed_start, inspected_state,
    user_status,
};

/// The image name the caller asked for (Docker only keeps the ID we pass).
pub const IMAGE_LABEL: &str = "io.docker-cri.image";
/// The container's stop signal as CRI named it.
pub const STOP_SIGNAL_LABEL: &str = "io.docker-cri.stop-signal";

/// The limits written into the container's cgroup after it starts (JSON).
pub const CGROUP_SETTINGS_LABEL: &str = "io.docker-cri.cgroup-settings";

/// cgroup v2 keys docker-cri can carry through Docker.
const UNIFIED_PIDS_MAX: &str = "pids.max";
/// kubelet sets this on cgroup v2 hosts with swap accounting ("0": no swap).
const UNIFIED_SWAP_MAX: &str = "memory.swap.max";

/// Facts about the pod a container joins, read from its pause container.
#[derive(Debug, Clone)]
pub struct PodContext {
    pub sandbox_id: String,
    pub pod: api::PodSandboxMetadata,
    pub namespaces: api::NamespaceOption,
    /// Absolute directory for container logs (empty: none configured).
    pub log_directory: String,
    /// The pod's RuntimeClass handler ("" for the default) and the Docker
    /// runtime its pause container runs under; app containers use the same.
    pub runtime_handler: String,
    pub docker_runtime: Option<String>,
}

/// Everything docker-cri decided, besides the config, for one container.
pub struct ContainerPlan<'a> {
    pub config: &'a api::ContainerConfig,
    pub pod: &'a PodContext,
    pub image_id: &'a str,
    /// The image name status reports (the user's, not the ID).
    pub display_image: &'a str,
    pub api_version: ApiVersion,
    pub cgroup_driver: CgroupDriver,
    pub cgroup_parent: &'a str,
    pub min_oom_score_adj: i64,
    pub seccomp_opt: Option<String>,
    pub apparmor_opt: Option<String>,
    /// Bind mounts with host paths already resolved (symlinks, creation).
    pub mounts: &'a [api::Mount],
    /// Full ID of the TARGET pid-namespace container, if any.
    pub pid_target: Option<&'a str>,
    pub created_nanos: i64,
    /// The cgroup settings this host will apply at start (see `crate::cgroups`).
    pub cgroup_settings: &'a [CgroupSetting],
    /// Whether the host enforces SELinux (relabelling means nothing otherwise).
    pub selinux_enabled: bool,
}

pub fn metadata(config: &api::ContainerConfig) -> Result<&api::ContainerMetadata> {
    let m = config
        .metadata
        .as_ref()
        .ok_or_else(|| Error::invalid("config.metadata is required"))?;
    crate::mapping::sandbox::name_part("name", &m.name)?;
    Ok(m)
}

/// dockershim's name: `k8s_<container>_<pod>_<namespace>_<uid>_<attempt>`.
pub fn docker_name(m: &api::ContainerMetadata, pod: &api::PodSandboxMetadata) -> String {
    format!(
        "k8s_{}_{}_{}_{}_{}",
        m.name, pod.name, pod.namespace, pod.uid, m.attempt
    )
}

/// `log_path` is relative to the pod's log directory and must stay inside
/// it. Returns the absolute path, or None when no log is asked for.
pub fn log_path(log_directory: &str, log_path: &str) -> Result<Option<PathBuf>> {
    if log_path.is_empty() {
        return Ok(None);
    }
    let rel = Path::new(log_path);
    if rel.is_absolute() {
        return Err(Error::invalid(format!(
            "log_path {log_path:?} must be relative to the pod's log directory"
        )));
    }
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(Error::invalid(format!(
            "log_path {log_path:?} must not contain '..' or '.' components"
        )));
    }
    if log_directory.is_empty() || !Path::new(log_directory).is_absolute() {
        return Err(Error::invalid(format!(
            "log_path {log_path:?} needs an absolute sandbox log_directory (got {log_directory:?})"
        )));
    }
    Ok(Some(Path::new(log_directory).join(rel)))
}

/// Docker's name for a CRI signal: SIGNAL_SIGRTMINPLUS3 → SIGRTMIN+3.
pub fn docker_signal(signal: i32) -> Result<Option<String>> {
    let s = api::Signal::try_from(signal)
        .map_err(|_| Error::invalid(format!("stop_signal {signal} is not a known signal")))?;
    if s == api::Signal::RuntimeDefault {
        return Ok(None);
    }
    let name = s.as_str_name().trim_start_matches("SIGNAL_");
    Ok(Some(name.replace("PLUS", "+").replace("MINUS", "-")))
}

fn env(config: &api::ContainerConfig) -> Result<Vec<String>> {
    config
        .envs
        .iter()
        .enumerate()
        .map(|(i, kv)| {
            if kv.key.is_empty() || kv.key.contains('=') || kv.key.contains('\0') {
                return Err(Error::invalid(format!(
                    "envs[{i}].key {:?} is not a valid name",
                    kv.key
                )));
            }
            let value = std::str::from_utf8(&kv.value)
                .map_err(|_| Error::invalid(format!("envs[{i}] ({}) is not UTF-8", kv.key)))?;
            if value.contains('\0') {
                return Err(Error::invalid(format!(
                    "envs[{i}] ({}) contains NUL",
                    kv.key
                )));
            }
            Ok(format!("{}={value}", kv.key))
        })
        .collect()
}

fn capability(name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    if upper == "ALL" || upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

/// What a container config must satisfy beyond what each part's mapping
/// checks: no NUL bytes, clean absolute paths, known enum values,
/// non-negative IDs.
fn validate_config(config: &api::ContainerConfig) -> Result<()> {
    use crate::mapping::validate;
    validate::texts("command", &config.command)?;
    validate::texts("args", &config.args)?;
    if !config.working_dir.is_empty() {
        validate::absolute_clean_path("working_dir", &config.working_dir)?;
    }
    validate::text("log_path", &config.log_path)?;
    if let Some(image) = &config.image {
        validate::text("image.image", &image.image)?;
    }
    for (i, m) in config.mounts.iter().enumerate() {
        validate::absolute_clean_path(&format!("mounts[{i}].container_path"), &m.container_path)?;
        // An image volume has no host path (see `mounts::image_mount`).
        if m.image.as_ref().is_none_or(|i| i.image.is_empty()) {
            validate::absolute_clean_path(&format!("mounts[{i}].host_path"), &m.host_path)?;
        }
    }
    for (i, d) in config.devices.iter().enumerate() {
        validate::absolute_clean_path(&format!("devices[{i}].container_path"), &d.container_path)?;
        validate::absolute_clean_path(&format!("devices[{i}].host_path"), &d.host_path)?;
    }
    let Some(sc) = config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
    else {
        return Ok(());
    };
    let field = "linux.security_context";
    validate::text(&format!("{field}.run_as_username"), &sc.run_as_username)?;
    if sc.run_as_username.contains(':') {
        return Err(Error::invalid(format!(
            "{field}.run_as_username {:?} must not contain ':'",
            sc.run_as_username
        )));
    }
    for (name, paths) in [
        ("masked_paths", &sc.masked_paths),
        ("readonly_paths", &sc.readonly_paths),
    ] {
        for (i, p) in paths.iter().enumerate() {
            validate::absolute_clean_path(&format!("{field}.{name}[{i}]"), p)?;
        }
    }
    validate::group_ids(
        &format!("{field}.supplemental_groups"),
        &sc.supplemental_groups,
    )?;
    validate::namespace_options(
        &format!("{field}.namespace_options"),
        sc.namespace_options.as_ref(),
        true,
    )
}

pub fn create_body(plan: &ContainerPlan<'_>) -> Result<ContainerCreateBody> {
    let config = plan.config;
    let meta = metadata(config)?;
    validate_config(config)?;
    let linux = config.linux.clone().unwrap_or_default();
    let sc = linux.security_context.clone().unwrap_or_default();
    let ns = sc.namespace_options.clone().unwrap_or_default();
    let sandbox = &plan.pod.sandbox_id;
    let pod_host_network = is_node(plan.pod.namespaces.network);

    let log = log_path(&plan.pod.log_directory, &config.log_path)?;
    let stop_signal = docker_signal(config.stop_signal)?;
    let env = env(config)?;
    let res = resources(&linux.resources.clone().unwrap_or_default())?;
    let (binds, typed_mounts) = mounts(plan.mounts, plan.api_version, plan.selinux_enabled)?;
    let devices = devices(&config.devices)?;
    let device_requests = cdi_devices(&config.cdi_devices, plan.api_version)?;

    if !sc
        .capabilities
        .as_ref()
        .is_none_or(|c| c.add_ambient_capabilities.is_empty())
    {
        return Err(Error::Unimplemented(
            "capabilities.add_ambient_capabilities: Docker cannot set ambient capabilities".into(),
        ));
    }
    if sc.supplemental_groups_policy == api::SupplementalGroupsPolicy::Strict as i32 {
        return Err(Error::Unimplemented(
            "supplemental_groups_policy Strict: Docker always merges the image's groups".into(),
        ));
    }
    let user = docker_user(
        sc.run_as_user.as_ref(),
        &sc.run_as_username,
        sc.run_as_group.as_ref(),
    )?;

    let pid_mode = match api::NamespaceMode::try_from(ns.pid).unwrap_or(api::NamespaceMode::Pod) {
        api::NamespaceMode::Pod => Some(format!("container:{sandbox}")),
        api::NamespaceMode::Container => None,
        api::NamespaceMode::Node => Some("host".to_string()),
        api::NamespaceMode::Target => {
            let target = plan.pid_target.ok_or_else(|| {
                Error::invalid("namespace_options.target_id is required for TARGET pid mode")
            })?;
            Some(format!("container:{target}"))
        }
    };
    let ipc_mode = if is_node(plan.pod.namespaces.ipc) {
        "host".to_string()
    } else {
        format!("container:{sandbox}")
    };
    let network_mode = if pod_host_network {
        "host".to_string()
    } else {
        format!("container:{sandbox}")
    };

    let mut security_opt = crate::mapping::security::selinux_opts(sc.selinux_options.as_ref());
    security_opt.extend(plan.seccomp_opt.clone());
    security_opt.extend(plan.apparmor_opt.clone());
    if sc.no_new_privs {
        security_opt.push("no-new-privileges".into());
    }
    let caps = sc.capabilities.clone().unwrap_or_default();

    let mut extra = vec![
        (labels::SANDBOX_ID, sandbox.clone()),
        (IMAGE_LABEL, plan.display_image.to_string()),
        (labels::CREATED_NANOS, plan.created_nanos.to_string()),
    ];
    if let Some(log) = &log {
        extra.push((labels::LOG_PATH, log.to_string_lossy().into_owned()));
    }
    if let Some(sig) = &stop_signal {
        extra.push((STOP_SIGNAL_LABEL, sig.clone()));
    }
    if !plan.cgroup_settings.is_empty() {
        let json = serde_json::to_string(plan.cgroup_settings)
            .map_err(|e| Error::internal(format!("encoding cgroup settings: {e}")))?;
        extra.push((CGROUP_SETTINGS_LABEL, json));
    }
    if !plan.pod.runtime_handler.is_empty() {
        extra.push((labels::RUNTIME_HANDLER, plan.pod.runtime_handler.clone()));
    }
    let docker_labels = labels::container_labels(
        meta,
        &plan.pod.pod,
        &config.labels,
        &config.annotations,
        &extra,
    )?;

    let host_config = HostConfig {
        network_mode: Some(network_mode),
        runtime: plan.pod.docker_runtime.clone(),
        uts_mode: pod_host_network.then(|| "host".to_string()),
        ipc_mode: Some(ipc_mode),
        pid_mode,
        binds: (!binds.is_empty()).then_some(binds),
        mounts: (!typed_mounts.is_empty()).then_some(typed_mounts),
        devices: (!devices.is_empty()).then_some(devices),
        device_requests,
        cgroup_parent: cgroup_parent(plan.cgroup_parent, plan.cgroup_driver)?,
        cpu_period: res.cpu_period,
        cpu_quota: res.cpu_quota,
        cpu_shares: res.cpu_shares,
        memory: res.memory,
        // No swap unless asked for: Docker's own default would be as much
        // swap as memory, which kubelet never means.
        memory_swap: res.memory_swap.or(res.memory),
        cpuset_cpus: res.cpuset_cpus,
        cpuset_mems: res.cpuset_mems,
        pids_limit: res.pids_limit,
        oom_score_adj: Some(
            linux
                .resources
                .as_ref()
                .map_or(0, |r| r.oom_score_adj)
                .clamp(plan.min_oom_score_adj, 1000),
        ),
        privileged: Some(sc.privileged),
        readonly_rootfs: Some(sc.readonly_rootfs),
        cap_add: (!caps.add_capabilities.is_empty()).then(|| {
            caps.add_capabilities
                .iter()
                .map(|c| capability(c))
                .collect()
        }),
        cap_drop: (!caps.drop_capabilities.is_empty()).then(|| {
            caps.drop_capabilities
                .iter()
                .map(|c| capability(c))
                .collect()
        }),
        group_add: (!sc.supplemental_groups.is_empty()).then(|| {
            sc.supplemental_groups
                .iter()
                .map(|g| g.to_string())
                .collect()
        }),
        security_opt: (!security_opt.is_empty()).then_some(security_opt),
        // Privileged containers see everything; Docker rejects the lists then.
        masked_paths: (!sc.privileged)
            .then(|| sc.masked_paths.clone())
            .filter(|p| !p.is_empty()),
        readonly_paths: (!sc.privileged)
            .then(|| sc.readonly_paths.clone())
            .filter(|p| !p.is_empty()),
        ..Default::default()
    };
    let list = |v: &[String]| (!v.is_empty()).then(|| v.to_vec());
    Ok(ContainerCreateBody {
        image: Some(plan.image_id.to_string()),
        entrypoint: list(&config.command),
        cmd: list(&config.args),
        working_dir: (!config.working_dir.is_empty()).then(|| config.working_dir.clone()),
        env: (!env.is_empty()).then_some(env),
        user,
        tty: Some(config.tty),
        open_stdin: Some(config.stdin),
        stdin_once: Some(config.stdin_once),
        attach_stdin: Some(config.stdin),
        attach_stdout: Some(true),
        attach_stderr: Some(!config.tty),
        stop_signal,
        // kubelet runs probes itself; an image's HEALTHCHECK must not run
        // (cri-dockerd disables it too).
        healthcheck: Some(HealthConfig {
            test: Some(vec!["NONE".to_string()]),
            ..Default::default()
        }),
        labels: Some(docker_labels),
        host_config: Some(host_config),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests;
