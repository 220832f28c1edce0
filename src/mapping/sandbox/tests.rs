//! Table tests of the sandbox mapping; no daemon.

use std::collections::HashMap;

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
    let (exposed, bindings) = port_bindings(&[pm(80, 0, 0, ""), pm(81, 8081, 2, "::1")]).unwrap();
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
    let one = |k: &str| -> HashMap<String, String> { [(k.to_string(), "1".to_string())].into() };
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
