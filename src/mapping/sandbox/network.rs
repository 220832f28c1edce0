//! The pod's host-facing settings: sysctls, port bindings, DNS and hostname.

use std::collections::HashMap;
use std::net::IpAddr;

use bollard::models::{PortBinding, PortMap};

use crate::api;
use crate::error::{Error, Result};

use super::is_node;

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

/// The `/proc/sys` file of a sysctl (dotted or slash form): dots separate,
/// and a slash in the dotted form was a dot inside a name (eth0.100).
pub fn sysctl_proc_path(name: &str) -> String {
    let file: String = dotted_sysctl_name(name)
        .chars()
        .map(|c| match c {
            '.' => '/',
            '/' => '.',
            c => c,
        })
        .collect();
    format!("/proc/sys/{file}")
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

pub(super) fn validate_hostname(hostname: &str) -> Result<()> {
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
