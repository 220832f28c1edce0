//! A CRI pod sandbox config → the Docker pause container that holds the
//! pod's namespaces, and that container back → CRI sandbox records.

use std::collections::HashMap;
use std::net::IpAddr;

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerSummary, ContainerSummaryStateEnum,
    HostConfig, PortBinding, PortMap,
};

use crate::api;
use crate::error::{Error, Result};
use crate::mapping::labels;

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

/// Which kernel namespace a sysctl belongs to, if any.
#[derive(Debug, PartialEq, Eq)]
enum SysctlNs {
    Net,
    Ipc,
    Uts,
}

fn sysctl_namespace(name: &str) -> Option<SysctlNs> {
    const IPC: &[&str] = &[
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
    ];
    if name.starts_with("net.") {
        Some(SysctlNs::Net)
    } else if IPC.contains(&name) || name.starts_with("fs.mqueue.") {
        Some(SysctlNs::Ipc)
    } else if name == "kernel.hostname" || name == "kernel.domainname" {
        Some(SysctlNs::Uts)
    } else {
        None
    }
}

/// A sysctl name in the dotted form the runtime expects, as kubelet's own
/// helper converts it: when the first separator is `/`, every `.` and `/`
/// swap places, so `net/ipv4/conf/eth0.100/forwarding` keeps the VLAN
/// interface `eth0.100` whole (`net.ipv4.conf.eth0/100.forwarding`).
pub fn dotted_sysctl_name(name: &str) -> String {
    match name.find(['.', '/']) {
        Some(i) if name.as_bytes()[i] == b'/' => name
            .chars()
            .map(|c| match c {
                '.' => '/',
                '/' => '.',
                c => c,
            })
            .collect(),
        _ => name.to_string(),
    }
}

/// Validates pod sysctls as kubelet does: only namespaced ones, and none of a
/// namespace the pod shares with the host. Slash-separated names are
/// converted with [`dotted_sysctl_name`].
pub fn sysctls(
    given: &HashMap<String, String>,
    ns: &api::NamespaceOption,
) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for (raw, value) in given {
        let name = dotted_sysctl_name(raw);
        // After conversion a '/' can only stand inside a segment (an
        // interface name such as eth0.100 in net.ipv4.conf.eth0/100.rp_filter).
        let valid_name = !name.is_empty()
            && name.split('.').all(|seg| {
                !seg.is_empty()
                    && !seg.starts_with('/')
                    && !seg.ends_with('/')
                    && seg.bytes().all(|b| {
                        b.is_ascii_lowercase()
                            || b.is_ascii_digit()
                            || matches!(b, b'_' | b'-' | b'/')
                    })
            });
        if !valid_name {
            return Err(Error::invalid(format!(
                "sysctls: {raw:?} is not a valid sysctl name"
            )));
        }
        if value.contains('\n') || value.contains('\0') {
            return Err(Error::invalid(format!(
                "sysctls: value of {raw} has a newline or NUL"
            )));
        }
        match sysctl_namespace(&name) {
            None => {
                return Err(Error::invalid(format!(
                    "sysctls: {raw} is not namespaced and cannot be set per pod"
                )));
            }
            Some(SysctlNs::Net | SysctlNs::Uts) if is_node(ns.network) => {
                return Err(Error::invalid(format!(
                    "sysctls: {raw} cannot be set on a pod that uses the host network"
                )));
            }
            Some(SysctlNs::Ipc) if is_node(ns.ipc) => {
                return Err(Error::invalid(format!(
                    "sysctls: {raw} cannot be set on a pod that uses the host IPC namespace"
                )));
            }
            Some(_) => {}
        }
        out.insert(name, value.clone());
    }
    Ok(out)
}

/// Port mappings → Docker exposed ports and bindings. Mappings without a
/// host port need no binding, as in dockershim.
pub fn port_bindings(mappings: &[api::PortMapping]) -> Result<(Vec<String>, PortMap)> {
    let mut exposed = Vec::new();
    let mut bindings: PortMap = HashMap::new();
    for (i, pm) in mappings.iter().enumerate() {
        let field = format!("port_mappings[{i}]");
        if !(1..=65535).contains(&pm.container_port) {
            return Err(Error::invalid(format!(
                "{field}.container_port {} is not in 1..65535",
                pm.container_port
            )));
        }
        if !(0..=65535).contains(&pm.host_port) {
            return Err(Error::invalid(format!(
                "{field}.host_port {} is not in 0..65535",
                pm.host_port
            )));
        }
        let protocol = match api::Protocol::try_from(pm.protocol) {
            Ok(api::Protocol::Tcp) => "tcp",
            Ok(api::Protocol::Udp) => "udp",
            Ok(api::Protocol::Sctp) => "sctp",
            Err(_) => {
                return Err(Error::invalid(format!(
                    "{field}.protocol {} is unknown",
                    pm.protocol
                )));
            }
        };
        if !pm.host_ip.is_empty() && pm.host_ip.parse::<IpAddr>().is_err() {
            return Err(Error::invalid(format!(
                "{field}.host_ip {:?} is not an IP address",
                pm.host_ip
            )));
        }
        if pm.host_port == 0 {
            continue;
        }
        let key = format!("{}/{protocol}", pm.container_port);
        if !exposed.contains(&key) {
            exposed.push(key.clone());
        }
        bindings
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: (!pm.host_ip.is_empty()).then(|| pm.host_ip.clone()),
                host_port: Some(pm.host_port.to_string()),
            });
    }
    Ok((exposed, bindings))
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

/// The pod's resolv.conf, shared by its containers; None keeps Docker's.
pub fn resolv_conf(dns: Option<&api::DnsConfig>) -> Result<Option<String>> {
    let Some(dns) = dns else {
        return Ok(None);
    };
    if dns.servers.is_empty() && dns.searches.is_empty() && dns.options.is_empty() {
        return Ok(None);
    }
    for s in &dns.servers {
        if s.parse::<IpAddr>().is_err() {
            return Err(Error::invalid(format!(
                "dns_config.servers: {s:?} is not an IP address"
            )));
        }
    }
    let bad = |v: &String| v.is_empty() || v.chars().any(|c| c.is_whitespace());
    if let Some(s) = dns.searches.iter().chain(&dns.options).find(|v| bad(v)) {
        return Err(Error::invalid(format!(
            "dns_config: {s:?} is empty or has whitespace"
        )));
    }
    let mut out = String::new();
    if !dns.searches.is_empty() {
        out.push_str(&format!("search {}\n", dns.searches.join(" ")));
    }
    for s in &dns.servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !dns.options.is_empty() {
        out.push_str(&format!("options {}\n", dns.options.join(" ")));
    }
    Ok(Some(out))
}

fn validate_hostname(hostname: &str) -> Result<()> {
    let ok = hostname.len() <= 64
        && hostname.split('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "config.hostname {hostname:?} is not a valid hostname"
        )))
    }
}

/// The pause container for a sandbox.
pub fn create_body(plan: &SandboxPlan<'_>) -> Result<ContainerCreateBody> {
    let config = plan.config;
    let meta = metadata(config)?;
    let ns = namespace_options(config);
    let linux = config.linux.clone().unwrap_or_default();
    let security = linux.security_context.clone().unwrap_or_default();
    let host_network = is_node(ns.network);
    if mode(ns.network) == api::NamespaceMode::Target || mode(ns.ipc) == api::NamespaceMode::Target
    {
        return Err(Error::invalid(
            "namespace_options: TARGET is only valid for pid of a container",
        ));
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> api::PodSandboxConfig {
        api::PodSandboxConfig {
            metadata: Some(api::PodSandboxMetadata {
                name: "web".into(),
                namespace: "default".into(),
                uid: "uid-1".into(),
                attempt: 1,
            }),
            hostname: "web-0".into(),
            ..Default::default()
        }
    }

    fn plan(config: &api::PodSandboxConfig) -> SandboxPlan<'_> {
        SandboxPlan {
            config,
            runtime_handler: "",
            docker_runtime: None,
            pause_image: "registry.k8s.io/pause:3.10",
            network: "bridge",
            cgroup_driver: CgroupDriver::Cgroupfs,
            oom_score_adj: PAUSE_OOM_SCORE_ADJ,
            seccomp_opt: None,
            created_nanos: 42,
        }
    }

    fn with_ns(
        network: api::NamespaceMode,
        pid: api::NamespaceMode,
        ipc: api::NamespaceMode,
    ) -> api::PodSandboxConfig {
        let mut c = config();
        c.linux = Some(api::LinuxPodSandboxConfig {
            security_context: Some(api::LinuxSandboxSecurityContext {
                namespace_options: Some(api::NamespaceOption {
                    network: network as i32,
                    pid: pid as i32,
                    ipc: ipc as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        c
    }

    #[test]
    fn name_and_metadata_validation() {
        assert_eq!(
            docker_name(metadata(&config()).unwrap()),
            "k8s_POD_web_default_uid-1_1"
        );
        let mut c = config();
        c.metadata = None;
        assert!(metadata(&c).unwrap_err().to_string().contains("metadata"));
        for (field, value) in [
            ("name", ""),
            ("namespace", ""),
            ("uid", ""),
            ("name", "a/b"),
            ("uid", "x y"),
        ] {
            let mut c = config();
            let m = c.metadata.as_mut().unwrap();
            match field {
                "name" => m.name = value.into(),
                "namespace" => m.namespace = value.into(),
                _ => m.uid = value.into(),
            }
            let err = metadata(&c).unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
        let mut underscore = config();
        underscore.metadata.as_mut().unwrap().name = "a_b".into();
        assert!(metadata(&underscore).is_ok());
    }

    #[test]
    fn namespaces_map_to_docker_modes() {
        use api::NamespaceMode::*;
        let cases = [
            ((Pod, Container, Pod), ("bridge", None, "shareable")),
            ((Node, Node, Node), ("host", Some("host"), "host")),
            ((Pod, Pod, Node), ("bridge", None, "host")),
        ];
        for ((n, p, i), (net, pid, ipc)) in cases {
            let c = with_ns(n, p, i);
            let body = create_body(&plan(&c)).unwrap();
            let hc = body.host_config.unwrap();
            assert_eq!(hc.network_mode.as_deref(), Some(net));
            assert_eq!(hc.pid_mode.as_deref(), pid);
            assert_eq!(hc.ipc_mode.as_deref(), Some(ipc));
            if n == Node {
                assert!(
                    body.hostname.is_none(),
                    "Docker refuses a hostname with host network"
                );
            }
            let label = body.labels.unwrap()[labels::NAMESPACE_OPTIONS].clone();
            let back = decode_namespaces(&label);
            assert_eq!(
                (back.network, back.pid, back.ipc),
                (n as i32, p as i32, i as i32)
            );
        }
    }

    #[test]
    fn body_carries_labels_ports_and_security() {
        let mut c = config();
        c.labels = [("app".to_string(), "web".to_string())].into();
        c.annotations = [("a".to_string(), "b".to_string())].into();
        c.port_mappings = vec![api::PortMapping {
            protocol: api::Protocol::Udp as i32,
            container_port: 53,
            host_port: 5353,
            host_ip: "127.0.0.1".into(),
        }];
        c.linux = Some(api::LinuxPodSandboxConfig {
            cgroup_parent: "/kubepods/pod1".into(),
            security_context: Some(api::LinuxSandboxSecurityContext {
                run_as_user: Some(api::Int64Value { value: 65535 }),
                readonly_rootfs: true,
                supplemental_groups: vec![5, 6],
                ..Default::default()
            }),
            ..Default::default()
        });
        let mut p = plan(&c);
        p.docker_runtime = Some("runc");
        p.seccomp_opt = Some("seccomp=unconfined".into());
        let body = create_body(&p).unwrap();
        let labels = body.labels.unwrap();
        assert_eq!(labels["app"], "web");
        assert_eq!(labels["annotation.a"], "b");
        assert_eq!(labels[labels::TYPE], labels::TYPE_SANDBOX);
        assert_eq!(labels[labels::CREATED_NANOS], "42");
        assert_eq!(body.user.as_deref(), Some("65535"));
        assert_eq!(body.hostname.as_deref(), Some("web-0"));
        assert_eq!(body.exposed_ports.unwrap(), vec!["53/udp"]);
        let hc = body.host_config.unwrap();
        let binding = &hc.port_bindings.unwrap()["53/udp"].clone().unwrap()[0];
        assert_eq!(binding.host_port.as_deref(), Some("5353"));
        assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(hc.cgroup_parent.as_deref(), Some("/kubepods/pod1"));
        assert_eq!(hc.runtime.as_deref(), Some("runc"));
        assert_eq!(hc.oom_score_adj, Some(PAUSE_OOM_SCORE_ADJ));
        assert_eq!(hc.readonly_rootfs, Some(true));
        assert_eq!(hc.group_add.unwrap(), vec!["5", "6"]);
        assert!(
            hc.security_opt
                .unwrap()
                .contains(&"seccomp=unconfined".to_string())
        );
    }

    #[test]
    fn port_validation() {
        let pm = |c, h, proto, ip: &str| api::PortMapping {
            protocol: proto,
            container_port: c,
            host_port: h,
            host_ip: ip.into(),
        };
        assert!(
            port_bindings(&[pm(0, 80, 0, "")])
                .unwrap_err()
                .to_string()
                .contains("container_port")
        );
        assert!(port_bindings(&[pm(70000, 80, 0, "")]).is_err());
        assert!(
            port_bindings(&[pm(80, -1, 0, "")])
                .unwrap_err()
                .to_string()
                .contains("host_port")
        );
        assert!(port_bindings(&[pm(80, 65536, 0, "")]).is_err());
        assert!(
            port_bindings(&[pm(80, 80, 7, "")])
                .unwrap_err()
                .to_string()
                .contains("protocol")
        );
        assert!(
            port_bindings(&[pm(80, 80, 0, "nope")])
                .unwrap_err()
                .to_string()
                .contains("host_ip")
        );
        let (exposed, bindings) =
            port_bindings(&[pm(80, 0, 0, ""), pm(81, 8081, 2, "::1")]).unwrap();
        assert_eq!(exposed, vec!["81/sctp"]);
        assert_eq!(bindings.len(), 1);
    }

    #[test]
    fn sysctl_rules() {
        use api::NamespaceMode::*;
        let pod = with_ns(Pod, Container, Pod);
        let ns = namespace_options(&pod);
        let ok: HashMap<String, String> = [
            ("net.ipv4.ip_forward", "1"),
            ("net/ipv4/ping_group_range", "0 1"),
            ("kernel.shm_rmid_forced", "1"),
            ("fs.mqueue.msg_max", "20"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let out = sysctls(&ok, &ns).unwrap();
        assert!(out.contains_key("net.ipv4.ping_group_range"));
        let host_net = namespace_options(&with_ns(Node, Container, Pod));
        let host_ipc = namespace_options(&with_ns(Pod, Container, Node));
        let one =
            |k: &str| -> HashMap<String, String> { [(k.to_string(), "1".to_string())].into() };
        assert!(sysctls(&one("net.ipv4.ip_forward"), &host_net).is_err());
        assert!(sysctls(&one("kernel.shmmax"), &host_ipc).is_err());
        assert!(sysctls(&one("kernel.shmmax"), &host_net).is_ok());
        assert!(
            sysctls(&one("vm.swappiness"), &ns)
                .unwrap_err()
                .to_string()
                .contains("not namespaced")
        );
        assert!(sysctls(&one("Net.IPv4"), &ns).is_err());
        assert!(sysctls(&one("net..x"), &ns).is_err());
        assert!(sysctls(&one("net/ipv4//x"), &ns).is_err());
        // A VLAN interface in a slash-separated name stays whole.
        let vlan = sysctls(&one("net/ipv4/conf/eth0.100/forwarding"), &ns).unwrap();
        assert_eq!(
            vlan.keys().collect::<Vec<_>>(),
            ["net.ipv4.conf.eth0/100.forwarding"]
        );
    }

    #[test]
    fn sysctl_names_convert_as_kubelet_does() {
        for (given, want) in [
            ("net.ipv4.ip_forward", "net.ipv4.ip_forward"),
            ("net/ipv4/ip_forward", "net.ipv4.ip_forward"),
            (
                "net/ipv4/conf/eth0.100/forwarding",
                "net.ipv4.conf.eth0/100.forwarding",
            ),
            // The first separator is '.', so the name is already dotted.
            (
                "net.ipv4.conf.eth0/100.forwarding",
                "net.ipv4.conf.eth0/100.forwarding",
            ),
            ("kernel", "kernel"),
            ("", ""),
        ] {
            assert_eq!(dotted_sysctl_name(given), want, "{given}");
        }
    }

    #[test]
    fn cgroup_parent_per_driver() {
        assert_eq!(cgroup_parent("", CgroupDriver::Systemd).unwrap(), None);
        assert_eq!(
            cgroup_parent("/kubepods/burstable/pod1", CgroupDriver::Cgroupfs)
                .unwrap()
                .unwrap(),
            "/kubepods/burstable/pod1"
        );
        assert_eq!(
            cgroup_parent(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice",
                CgroupDriver::Systemd
            )
            .unwrap()
            .unwrap(),
            "kubepods-burstable-pod1.slice"
        );
        assert_eq!(
            cgroup_parent("system.slice", CgroupDriver::Systemd)
                .unwrap()
                .unwrap(),
            "system.slice"
        );
        assert!(cgroup_parent("/kubepods/pod1", CgroupDriver::Systemd).is_err());
    }

    #[test]
    fn resolv_conf_content() {
        let dns = api::DnsConfig {
            servers: vec!["10.0.0.10".into(), "fd00::10".into()],
            searches: vec!["ns.svc.cluster.local".into(), "svc.cluster.local".into()],
            options: vec!["ndots:5".into()],
        };
        assert_eq!(
            resolv_conf(Some(&dns)).unwrap().unwrap(),
            "search ns.svc.cluster.local svc.cluster.local\nnameserver 10.0.0.10\nnameserver fd00::10\noptions ndots:5\n"
        );
        assert_eq!(resolv_conf(None).unwrap(), None);
        assert_eq!(resolv_conf(Some(&api::DnsConfig::default())).unwrap(), None);
        let bad = api::DnsConfig {
            servers: vec!["not-an-ip".into()],
            ..Default::default()
        };
        assert!(resolv_conf(Some(&bad)).is_err());
        let injected = api::DnsConfig {
            searches: vec!["a\nnameserver 6.6.6.6".into()],
            ..Default::default()
        };
        assert!(resolv_conf(Some(&injected)).is_err());
    }

    #[test]
    fn hostname_and_target_validation() {
        let mut c = config();
        c.hostname = "bad_host!".into();
        assert!(
            create_body(&plan(&c))
                .unwrap_err()
                .to_string()
                .contains("hostname")
        );
        let c = with_ns(
            api::NamespaceMode::Target,
            api::NamespaceMode::Pod,
            api::NamespaceMode::Pod,
        );
        assert!(create_body(&plan(&c)).is_err());
    }
}
