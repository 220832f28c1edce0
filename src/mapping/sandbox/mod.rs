//! A CRI pod sandbox config → the Docker pause container that holds the
//! pod's namespaces, and that container back → CRI sandbox records.

use bollard::models::{ContainerCreateBody, HostConfig};

use crate::api;
use crate::error::{Error, Result};
use crate::mapping::labels;

mod network;
mod status;

use network::validate_hostname;
pub use network::{dotted_sysctl_name, port_bindings, resolv_conf, sysctl_proc_path, sysctls};
pub use status::{pod_sandbox_from_summary, sandbox_ips, sandbox_namespaces, sandbox_status};

/// The Docker network a non-host sandbox joins.
pub const NETWORK_NONE: &str = "none";
/// dockershim's OOM score for pause containers: killed almost last.
pub const PAUSE_OOM_SCORE_ADJ: i64 = -998;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupDriver {
    Cgroupfs,
    Systemd,
}

/// Everything docker-cri decided, besides the config, for one sandbox.
pub struct SandboxPlan<'a> {
    pub config: &'a api::PodSandboxConfig,
    pub runtime_handler: &'a str,
    /// Docker runtime for the handler (None: Docker's default).
    pub docker_runtime: Option<&'a str>,
    pub pause_image: &'a str,
    pub network: &'a str,
    pub cgroup_driver: CgroupDriver,
    pub oom_score_adj: i64,
    pub seccomp_opt: Option<String>,
    pub created_nanos: i64,
}

pub fn metadata(config: &api::PodSandboxConfig) -> Result<&api::PodSandboxMetadata> {
    let m = config
        .metadata
        .as_ref()
        .ok_or_else(|| Error::invalid("config.metadata is required"))?;
    for (field, value) in [
        ("name", &m.name),
        ("namespace", &m.namespace),
        ("uid", &m.uid),
    ] {
        name_part(field, value)?;
    }
    Ok(m)
}

/// One field of a Docker container name: non-empty, `[a-zA-Z0-9_.-]`.
/// Metadata is read back from labels, so '_' is fine even though it blurs
/// the name's fields.
pub fn name_part(field: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(format!(
            "config.metadata.{field} must not be empty"
        )));
    }
    let max = crate::mapping::validate::MAX_NAME_LEN;
    if value.len() > max {
        return Err(Error::invalid(format!(
            "config.metadata.{field} is {} characters long (at most {max})",
            value.len()
        )));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(Error::invalid(format!(
            "config.metadata.{field} {value:?} has {c:?}, which a Docker container name cannot hold"
        )));
    }
    Ok(())
}

/// dockershim's name: `k8s_POD_<name>_<namespace>_<uid>_<attempt>`.
pub fn docker_name(m: &api::PodSandboxMetadata) -> String {
    format!("k8s_POD_{}_{}_{}_{}", m.name, m.namespace, m.uid, m.attempt)
}

pub fn namespace_options(config: &api::PodSandboxConfig) -> api::NamespaceOption {
    config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.clone())
        .unwrap_or_default()
}

fn mode(m: i32) -> api::NamespaceMode {
    api::NamespaceMode::try_from(m).unwrap_or(api::NamespaceMode::Pod)
}

pub fn is_node(m: i32) -> bool {
    mode(m) == api::NamespaceMode::Node
}

/// "network=POD,pid=CONTAINER,ipc=POD", kept in a label.
pub fn encode_namespaces(ns: &api::NamespaceOption) -> String {
    format!(
        "network={},pid={},ipc={}",
        mode(ns.network).as_str_name(),
        mode(ns.pid).as_str_name(),
        mode(ns.ipc).as_str_name()
    )
}

pub fn decode_namespaces(text: &str) -> api::NamespaceOption {
    let mut ns = api::NamespaceOption::default();
    for part in text.split(',') {
        if let Some((k, v)) = part.split_once('=') {
            let m = api::NamespaceMode::from_str_name(v).unwrap_or(api::NamespaceMode::Pod) as i32;
            match k {
                "network" => ns.network = m,
                "pid" => ns.pid = m,
                "ipc" => ns.ipc = m,
                _ => {}
            }
        }
    }
    ns
}

/// Docker's systemd driver wants the leaf slice name ("x-y.slice"), while
/// kubelet sends the whole path; cgroupfs takes the path as is.
pub fn cgroup_parent(parent: &str, driver: CgroupDriver) -> Result<Option<String>> {
    if parent.is_empty() {
        return Ok(None);
    }
    match driver {
        CgroupDriver::Cgroupfs => Ok(Some(parent.to_string())),
        CgroupDriver::Systemd => {
            let leaf = parent
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default();
            if !leaf.ends_with(".slice") || leaf.len() <= ".slice".len() {
                return Err(Error::invalid(format!(
                    "linux.cgroup_parent {parent:?}: Docker's systemd cgroup driver needs a \
                     systemd slice such as /kubepods.slice/kubepods-pod1.slice"
                )));
            }
            Ok(Some(leaf.to_string()))
        }
    }
}

/// What a sandbox config must satisfy beyond its metadata; the rest is
/// checked where each part is mapped.
fn validate_config(config: &api::PodSandboxConfig) -> Result<()> {
    use crate::mapping::validate;
    if !config.log_directory.is_empty() {
        validate::absolute_clean_path("log_directory", &config.log_directory)?;
    }
    validate::text("hostname", &config.hostname)?;
    let Some(linux) = config.linux.as_ref() else {
        return Ok(());
    };
    // kubelet's parents are absolute under cgroupfs and may be a bare slice
    // name under systemd: only climbing out is refused.
    validate::no_parent_dirs("linux.cgroup_parent", &linux.cgroup_parent)?;
    validate::resource_amounts("linux.overhead", linux.overhead.as_ref())?;
    validate::resource_amounts("linux.resources", linux.resources.as_ref())?;
    if let Some(sc) = linux.security_context.as_ref() {
        validate::namespace_options(
            "linux.security_context.namespace_options",
            sc.namespace_options.as_ref(),
            false,
        )?;
        validate::group_ids(
            "linux.security_context.supplemental_groups",
            &sc.supplemental_groups,
        )?;
    }
    Ok(())
}

/// The pause container for a sandbox.
pub fn create_body(plan: &SandboxPlan<'_>) -> Result<ContainerCreateBody> {
    let config = plan.config;
    let meta = metadata(config)?;
    let ns = namespace_options(config);
    let linux = config.linux.clone().unwrap_or_default();
    let security = linux.security_context.clone().unwrap_or_default();
    let host_network = is_node(ns.network);
    validate_config(config)?;

    let extra = [
        (labels::RUNTIME_HANDLER, plan.runtime_handler.to_string()),
        (labels::NAMESPACE_OPTIONS, encode_namespaces(&ns)),
        (labels::CREATED_NANOS, plan.created_nanos.to_string()),
    ];
    let docker_labels = labels::sandbox_labels(meta, &config.labels, &config.annotations, &extra)?;
    let sysctls = sysctls(&linux.sysctls, &ns)?;
    let (exposed, bindings) = port_bindings(&config.port_mappings)?;
    let cgroup_parent = cgroup_parent(&linux.cgroup_parent, plan.cgroup_driver)?;
    let user = crate::mapping::security::docker_user(
        security.run_as_user.as_ref(),
        "",
        security.run_as_group.as_ref(),
    )?;
    let hostname = if host_network || config.hostname.is_empty() {
        None
    } else {
        validate_hostname(&config.hostname)?;
        Some(config.hostname.clone())
    };

    let mut security_opt =
        crate::mapping::security::selinux_opts(security.selinux_options.as_ref());
    security_opt.extend(plan.seccomp_opt.clone());
    // The pause process needs no privileges of its own.
    security_opt.push("no-new-privileges".into());

    let network_mode = if host_network {
        "host".to_string()
    } else {
        plan.network.to_string()
    };
    let host_config = HostConfig {
        network_mode: Some(network_mode),
        ipc_mode: Some(if is_node(ns.ipc) { "host" } else { "shareable" }.into()),
        pid_mode: is_node(ns.pid).then(|| "host".to_string()),
        port_bindings: (!host_network && !bindings.is_empty()).then_some(bindings),
        sysctls: (!sysctls.is_empty()).then_some(sysctls),
        cgroup_parent,
        runtime: plan.docker_runtime.map(str::to_string),
        oom_score_adj: Some(plan.oom_score_adj),
        privileged: Some(security.privileged),
        readonly_rootfs: Some(security.readonly_rootfs),
        group_add: (!security.supplemental_groups.is_empty()).then(|| {
            security
                .supplemental_groups
                .iter()
                .map(|g| g.to_string())
                .collect()
        }),
        security_opt: Some(security_opt),
        ..Default::default()
    };
    Ok(ContainerCreateBody {
        image: Some(plan.pause_image.to_string()),
        hostname,
        user,
        labels: Some(docker_labels),
        exposed_ports: (!host_network && !exposed.is_empty()).then_some(exposed),
        host_config: Some(host_config),
        ..Default::default()
    })
}

/// The parts of a sandbox config kept for verbose status.
pub fn config_summary(config: &api::PodSandboxConfig) -> serde_json::Value {
    let ns = namespace_options(config);
    let linux = config.linux.as_ref();
    serde_json::json!({
        "metadata": config.metadata.as_ref().map(|m| serde_json::json!({
            "name": m.name, "namespace": m.namespace, "uid": m.uid, "attempt": m.attempt,
        })),
        "hostname": config.hostname,
        "logDirectory": config.log_directory,
        "dnsConfig": config.dns_config.as_ref().map(|d| serde_json::json!({
            "servers": d.servers, "searches": d.searches, "options": d.options,
        })),
        "portMappings": config.port_mappings.iter().map(|p| serde_json::json!({
            "protocol": api::Protocol::try_from(p.protocol).map(|p| p.as_str_name()).unwrap_or("?"),
            "containerPort": p.container_port, "hostPort": p.host_port, "hostIp": p.host_ip,
        })).collect::<Vec<_>>(),
        "namespaceOptions": encode_namespaces(&ns),
        "cgroupParent": linux.map(|l| l.cgroup_parent.clone()),
        "sysctls": linux.map(|l| l.sysctls.clone()),
    })
}

#[cfg(test)]
mod tests;
