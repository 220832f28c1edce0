//! A CRI container config → a Docker container that joins its pod's pause
//! container, and Docker containers back → CRI container records.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum, ContainerSummary,
    ContainerSummaryStateEnum, ContainerUpdateBody, DeviceMapping, DeviceRequest, HostConfig,
    Mount, MountBindOptions, MountBindOptionsPropagationEnum, MountPoint, MountType,
};

use crate::api;
use crate::error::{Error, Result};
use crate::mapping::info::{ApiVersion, RRO_API_VERSION};
use crate::mapping::labels;
use crate::mapping::sandbox::{CgroupDriver, cgroup_parent, is_node};
use crate::mapping::security::docker_user;

/// The image name the caller asked for (Docker only keeps the ID we pass).
pub const IMAGE_LABEL: &str = "io.docker-cri.image";
/// The container's stop signal as CRI named it.
pub const STOP_SIGNAL_LABEL: &str = "io.docker-cri.stop-signal";

/// cgroup v2 keys docker-cri can carry through Docker.
const UNIFIED_PIDS_MAX: &str = "pids.max";
/// kubelet sets this on cgroup v2 hosts with swap accounting ("0": no swap).
const UNIFIED_SWAP_MAX: &str = "memory.swap.max";
/// kubelet sets this on cgroup v2; Docker cannot, and the default (kill one
/// process) is the older Kubernetes behaviour, so it is accepted and noted.
const UNIFIED_OOM_GROUP: &str = "memory.oom.group";

/// Facts about the pod a container joins, read from its pause container.
#[derive(Debug, Clone)]
pub struct PodContext {
    pub sandbox_id: String,
    pub pod: api::PodSandboxMetadata,
    pub namespaces: api::NamespaceOption,
    /// Absolute directory for container logs (empty: none configured).
    pub log_directory: String,
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

fn propagation_suffix(p: i32) -> Result<&'static str> {
    match api::MountPropagation::try_from(p) {
        Ok(api::MountPropagation::PropagationPrivate) => Ok("rprivate"),
        Ok(api::MountPropagation::PropagationHostToContainer) => Ok("rslave"),
        Ok(api::MountPropagation::PropagationBidirectional) => Ok("rshared"),
        Err(_) => Err(Error::invalid(format!("mount propagation {p} is unknown"))),
    }
}

/// Bind mounts: Docker's `Binds` strings (which carry SELinux relabelling),
/// or `Mounts` entries where a string cannot express them (recursive
/// read-only, paths with ':' or ',').
pub fn mounts(list: &[api::Mount], api: ApiVersion) -> Result<(Vec<String>, Vec<Mount>)> {
    let mut binds = Vec::new();
    let mut typed = Vec::new();
    for (i, m) in list.iter().enumerate() {
        let field = format!("mounts[{i}]");
        if m.image.as_ref().is_some_and(|img| !img.image.is_empty()) {
            return Err(Error::Unimplemented(format!(
                "{field}: image volume mounts are not supported on Docker"
            )));
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
        let propagation = propagation_suffix(m.propagation)?;
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
        let awkward = |p: &str| p.contains(':') || p.contains(',');
        if m.recursive_read_only || awkward(&m.host_path) || awkward(&m.container_path) {
            if m.selinux_relabel {
                return Err(Error::invalid(format!(
                    "{field}: SELinux relabelling is not possible for this mount through Docker"
                )));
            }
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
        if m.selinux_relabel {
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

/// Resource fields shared by create and update.
#[derive(Debug, Default, PartialEq)]
pub struct Resources {
    pub cpu_period: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpu_shares: Option<i64>,
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
}

pub fn resources(r: &api::LinuxContainerResources) -> Result<Resources> {
    let non_negative = |name: &str, v: i64| {
        if v < 0 {
            Err(Error::invalid(format!(
                "resources.{name} {v} must not be negative"
            )))
        } else {
            Ok((v > 0).then_some(v))
        }
    };
    let cpu_period = non_negative("cpu_period", r.cpu_period)?;
    if let Some(p) = cpu_period
        && !(1_000..=1_000_000).contains(&p)
    {
        return Err(Error::invalid(format!(
            "resources.cpu_period {p} is not in 1000..1000000 µs"
        )));
    }
    let cpu_quota = match r.cpu_quota {
        -1 | 0 => None,
        q if q < 1_000 => {
            return Err(Error::invalid(format!(
                "resources.cpu_quota {q} is below 1000 µs"
            )));
        }
        q => Some(q),
    };
    let cpu_shares = non_negative("cpu_shares", r.cpu_shares)?;
    if let Some(s) = cpu_shares
        && !(2..=262_144).contains(&s)
    {
        return Err(Error::invalid(format!(
            "resources.cpu_shares {s} is not in 2..262144"
        )));
    }
    let memory = non_negative("memory_limit_in_bytes", r.memory_limit_in_bytes)?;
    if let Some(m) = memory
        && m < 6 * 1024 * 1024
    {
        return Err(Error::invalid(format!(
            "resources.memory_limit_in_bytes {m} is below Docker's 6 MiB minimum"
        )));
    }
    let memory_swap = match r.memory_swap_limit_in_bytes {
        0 => None,
        -1 => Some(-1),
        s if s < 0 => {
            return Err(Error::invalid(format!(
                "resources.memory_swap_limit_in_bytes {s} is invalid"
            )));
        }
        s => {
            if memory.is_some_and(|m| s < m) {
                return Err(Error::invalid(
                    "resources.memory_swap_limit_in_bytes is below the memory limit",
                ));
            }
            Some(s)
        }
    };
    if !(-1000..=1000).contains(&r.oom_score_adj) {
        return Err(Error::invalid(format!(
            "resources.oom_score_adj {} is not in -1000..1000",
            r.oom_score_adj
        )));
    }
    let cpuset = |name: &str, v: &str| {
        if v.chars()
            .all(|c| c.is_ascii_digit() || c == ',' || c == '-')
        {
            Ok((!v.is_empty()).then(|| v.to_string()))
        } else {
            Err(Error::invalid(format!(
                "resources.{name} {v:?} is not a CPU/node list"
            )))
        }
    };
    if let Some(h) = r.hugepage_limits.iter().find(|h| h.limit > 0) {
        return Err(Error::invalid(format!(
            "resources.hugepage_limits: Docker cannot limit {} hugepages",
            h.page_size
        )));
    }
    let mut pids_limit = None;
    let mut memory_swap = memory_swap;
    for (key, value) in &r.unified {
        match key.as_str() {
            // Docker's MemorySwap is memory plus swap.
            UNIFIED_SWAP_MAX => {
                memory_swap = match (value.as_str(), memory) {
                    ("max", _) => Some(-1),
                    (n, Some(m)) => {
                        let swap = n.parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
                            Error::invalid(format!(
                                "resources.unified[memory.swap.max] {value:?} is not a byte count or max"
                            ))
                        })?;
                        Some(m.saturating_add(swap))
                    }
                    (_, None) => {
                        tracing::debug!(
                            "memory.swap.max without a memory limit cannot be expressed in Docker"
                        );
                        memory_swap
                    }
                };
            }
            UNIFIED_PIDS_MAX => {
                pids_limit = Some(if value == "max" {
                    -1
                } else {
                    value.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| {
                        Error::invalid(format!("resources.unified[pids.max] {value:?} is not a positive number or max"))
                    })?
                });
            }
            UNIFIED_OOM_GROUP => {
                tracing::debug!(
                    "memory.oom.group cannot be set through Docker; left at the kernel default"
                );
            }
            other => {
                return Err(Error::invalid(format!(
                    "resources.unified[{other}] cannot be applied through Docker \
                     (supported: {UNIFIED_PIDS_MAX}, {UNIFIED_SWAP_MAX})"
                )));
            }
        }
    }
    Ok(Resources {
        cpu_period,
        cpu_quota,
        cpu_shares,
        memory,
        memory_swap,
        cpuset_cpus: cpuset("cpuset_cpus", &r.cpuset_cpus)?,
        cpuset_mems: cpuset("cpuset_mems", &r.cpuset_mems)?,
        pids_limit,
    })
}

/// The update for new resources, given the container's current memory and
/// MemorySwap (memory plus swap) as Docker reports them.
pub fn update_body(
    r: &api::LinuxContainerResources,
    current_memory: i64,
    current_swap: i64,
) -> Result<ContainerUpdateBody> {
    let res = resources(r)?;
    // Docker refuses a memory limit above the current swap limit, so swap
    // moves with memory, keeping the swap allowance the container had.
    let memory_swap = res.memory_swap.or_else(|| {
        let new_memory = res.memory?;
        Some(if current_swap == -1 {
            -1
        } else if current_swap > 0 && current_memory > 0 {
            new_memory.saturating_add((current_swap - current_memory).max(0))
        } else {
            new_memory.saturating_mul(2)
        })
    });
    Ok(ContainerUpdateBody {
        cpu_period: res.cpu_period,
        cpu_quota: res.cpu_quota,
        cpu_shares: res.cpu_shares,
        memory: res.memory,
        memory_swap,
        cpuset_cpus: res.cpuset_cpus,
        cpuset_mems: res.cpuset_mems,
        pids_limit: res.pids_limit,
        ..Default::default()
    })
}

fn capability(name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    if upper == "ALL" || upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

pub fn create_body(plan: &ContainerPlan<'_>) -> Result<ContainerCreateBody> {
    let config = plan.config;
    let meta = metadata(config)?;
    let linux = config.linux.clone().unwrap_or_default();
    let sc = linux.security_context.clone().unwrap_or_default();
    let ns = sc.namespace_options.clone().unwrap_or_default();
    let sandbox = &plan.pod.sandbox_id;
    let pod_host_network = is_node(plan.pod.namespaces.network);

    let log = log_path(&plan.pod.log_directory, &config.log_path)?;
    let stop_signal = docker_signal(config.stop_signal)?;
    let env = env(config)?;
    let res = resources(&linux.resources.clone().unwrap_or_default())?;
    let (binds, typed_mounts) = mounts(plan.mounts, plan.api_version)?;
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
    let docker_labels = labels::container_labels(
        meta,
        &plan.pod.pod,
        &config.labels,
        &config.annotations,
        &extra,
    )?;

    let host_config = HostConfig {
        network_mode: Some(network_mode),
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
        memory_swap: res.memory_swap,
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
        labels: Some(docker_labels),
        host_config: Some(host_config),
        ..Default::default()
    })
}

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

/// The resources Docker applies now.
pub fn resources_status(hc: &HostConfig) -> api::ContainerResources {
    api::ContainerResources {
        linux: Some(api::LinuxContainerResources {
            cpu_period: hc.cpu_period.unwrap_or(0),
            cpu_quota: hc.cpu_quota.unwrap_or(0),
            cpu_shares: hc.cpu_shares.unwrap_or(0),
            memory_limit_in_bytes: hc.memory.unwrap_or(0),
            memory_swap_limit_in_bytes: hc.memory_swap.unwrap_or(0),
            oom_score_adj: hc.oom_score_adj.unwrap_or(0),
            cpuset_cpus: hc.cpuset_cpus.clone().unwrap_or_default(),
            cpuset_mems: hc.cpuset_mems.clone().unwrap_or_default(),
            unified: hc
                .pids_limit
                .filter(|p| *p > 0)
                .map(|p| HashMap::from([(UNIFIED_PIDS_MAX.to_string(), p.to_string())]))
                .unwrap_or_default(),
            hugepage_limits: Vec::new(),
        }),
        windows: None,
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

pub fn container_status(
    c: &ContainerInspectResponse,
    proc_status: Option<&str>,
) -> api::ContainerStatus {
    use crate::mapping::time::rfc3339_to_nanos;
    let config = c.config.clone().unwrap_or_default();
    let docker_labels = config.labels.clone().unwrap_or_default();
    let (cri_labels, annotations) = labels::split_labels(&docker_labels);
    let st = c.state.clone().unwrap_or_default();
    let state = container_state(st.status);
    let exit_code = st.exit_code.unwrap_or(0) as i32;
    let (reason, message) = match state {
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
            st.finished_at.as_deref().map_or(0, rfc3339_to_nanos)
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

fn stop_signal_of(docker_labels: &HashMap<String, String>) -> i32 {
    let Some(name) = docker_labels.get(STOP_SIGNAL_LABEL) else {
        return 0;
    };
    let cri = format!("SIGNAL_{}", name.replace('+', "PLUS").replace('-', "MINUS"));
    api::Signal::from_str_name(&cri).map_or(0, |s| s as i32)
}

#[cfg(test)]
mod tests;
