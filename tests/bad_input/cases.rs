//! The malformed variants of a RunPodSandbox and a CreateContainer config,
//! field by field: what each changes, and the exact code it must get.

use std::collections::HashMap;

use docker_cri::api;
use tonic::Code;

pub type Mutation<T> = (&'static str, Code, Box<dyn Fn(&mut T)>);

pub fn big() -> String {
    "x".repeat(1 << 20)
}

pub fn sandbox_cases() -> Vec<Mutation<api::PodSandboxConfig>> {
    fn meta(c: &mut api::PodSandboxConfig) -> &mut api::PodSandboxMetadata {
        c.metadata.as_mut().unwrap()
    }
    fn linux(c: &mut api::PodSandboxConfig) -> &mut api::LinuxPodSandboxConfig {
        c.linux.get_or_insert_with(Default::default)
    }
    fn sc(c: &mut api::PodSandboxConfig) -> &mut api::LinuxSandboxSecurityContext {
        linux(c)
            .security_context
            .get_or_insert_with(Default::default)
    }
    fn ns(c: &mut api::PodSandboxConfig) -> &mut api::NamespaceOption {
        sc(c).namespace_options.get_or_insert_with(Default::default)
    }
    use Code::InvalidArgument as Invalid;
    vec![
        ("metadata", Invalid, Box::new(|c| c.metadata = None)),
        ("metadata.name", Invalid, Box::new(|c| meta(c).name.clear())),
        ("metadata.name", Invalid, Box::new(|c| meta(c).name = big())),
        (
            "metadata.name",
            Invalid,
            Box::new(|c| meta(c).name.push('\0')),
        ),
        (
            "metadata.name",
            Invalid,
            Box::new(|c| meta(c).name.push('/')),
        ),
        (
            "metadata.namespace",
            Invalid,
            Box::new(|c| meta(c).namespace = big()),
        ),
        (
            "metadata.namespace",
            Invalid,
            Box::new(|c| meta(c).namespace.clear()),
        ),
        ("metadata.uid", Invalid, Box::new(|c| meta(c).uid = big())),
        ("metadata.uid", Invalid, Box::new(|c| meta(c).uid.push(' '))),
        (
            "log_directory",
            Invalid,
            Box::new(|c| c.log_directory = "relative/logs".into()),
        ),
        (
            "log_directory",
            Invalid,
            Box::new(|c| c.log_directory = "/var/log/../../etc".into()),
        ),
        (
            "log_directory",
            Invalid,
            Box::new(|c| c.log_directory = "/var/log\0".into()),
        ),
        ("hostname", Invalid, Box::new(|c| c.hostname = big())),
        (
            "hostname",
            Invalid,
            Box::new(|c| c.hostname = "a\0b".into()),
        ),
        (
            "port_mappings",
            Invalid,
            Box::new(|c| {
                c.port_mappings = vec![api::PortMapping {
                    container_port: 0,
                    ..Default::default()
                }]
            }),
        ),
        (
            "port_mappings",
            Invalid,
            Box::new(|c| {
                c.port_mappings = vec![api::PortMapping {
                    container_port: 70000,
                    ..Default::default()
                }]
            }),
        ),
        (
            "port_mappings",
            Invalid,
            Box::new(|c| {
                c.port_mappings = vec![api::PortMapping {
                    container_port: 80,
                    host_port: -1,
                    ..Default::default()
                }]
            }),
        ),
        (
            "port_mappings",
            Invalid,
            Box::new(|c| {
                c.port_mappings = vec![api::PortMapping {
                    container_port: 80,
                    protocol: 99,
                    ..Default::default()
                }]
            }),
        ),
        (
            "cgroup_parent",
            Invalid,
            Box::new(|c| linux(c).cgroup_parent = "/kubepods/../../escape".into()),
        ),
        (
            "sysctls",
            Invalid,
            Box::new(|c| linux(c).sysctls = HashMap::from([("Not A Sysctl".into(), "1".into())])),
        ),
        (
            "sysctls",
            Invalid,
            Box::new(|c| {
                linux(c).sysctls = HashMap::from([("net.ipv4.ip_forward".into(), "1\0".into())])
            }),
        ),
        // The kernel refuses the value; only runc finds out.
        (
            "sysctls",
            Invalid,
            Box::new(|c| {
                linux(c).sysctls = HashMap::from([("net.ipv4.ip_forward".into(), "banana".into())])
            }),
        ),
        (
            "namespace_options.network",
            Invalid,
            Box::new(|c| ns(c).network = 99),
        ),
        (
            "namespace_options.pid",
            Invalid,
            Box::new(|c| ns(c).pid = -1),
        ),
        (
            "namespace_options.ipc",
            Invalid,
            Box::new(|c| ns(c).ipc = api::NamespaceMode::Target as i32),
        ),
        (
            "supplemental_groups",
            Invalid,
            Box::new(|c| sc(c).supplemental_groups = vec![5, -1]),
        ),
        (
            "run_as_user",
            Invalid,
            Box::new(|c| sc(c).run_as_user = Some(api::Int64Value { value: -1 })),
        ),
        (
            "overhead",
            Invalid,
            Box::new(|c| {
                linux(c).overhead = Some(api::LinuxContainerResources {
                    memory_limit_in_bytes: -1,
                    ..Default::default()
                })
            }),
        ),
        (
            "resources",
            Invalid,
            Box::new(|c| {
                linux(c).resources = Some(api::LinuxContainerResources {
                    cpu_shares: -2,
                    ..Default::default()
                })
            }),
        ),
        (
            "seccomp",
            Invalid,
            Box::new(|c| {
                sc(c).seccomp = Some(api::SecurityProfile {
                    profile_type: 99,
                    localhost_ref: String::new(),
                })
            }),
        ),
        (
            "seccomp",
            Invalid,
            Box::new(|c| {
                sc(c).seccomp = Some(api::SecurityProfile {
                    profile_type: api::security_profile::ProfileType::Localhost as i32,
                    localhost_ref: "/no/such/profile.json".into(),
                })
            }),
        ),
        (
            "dns_config",
            Invalid,
            Box::new(|c| {
                c.dns_config = Some(api::DnsConfig {
                    servers: vec!["not-an-ip".into()],
                    ..Default::default()
                })
            }),
        ),
    ]
}

pub fn container_cases(apparmor: bool) -> Vec<Mutation<api::ContainerConfig>> {
    fn linux(c: &mut api::ContainerConfig) -> &mut api::LinuxContainerConfig {
        c.linux.get_or_insert_with(Default::default)
    }
    fn sc(c: &mut api::ContainerConfig) -> &mut api::LinuxContainerSecurityContext {
        linux(c)
            .security_context
            .get_or_insert_with(Default::default)
    }
    fn res(c: &mut api::ContainerConfig) -> &mut api::LinuxContainerResources {
        linux(c).resources.get_or_insert_with(Default::default)
    }
    fn ns(c: &mut api::ContainerConfig) -> &mut api::NamespaceOption {
        sc(c).namespace_options.get_or_insert_with(Default::default)
    }
    fn mount<'a>(c: &'a mut api::ContainerConfig, host: &str, ctr: &str) -> &'a mut api::Mount {
        c.mounts.push(api::Mount {
            host_path: host.into(),
            container_path: ctr.into(),
            ..Default::default()
        });
        c.mounts.last_mut().unwrap()
    }
    use Code::InvalidArgument as Invalid;
    let mut cases: Vec<Mutation<api::ContainerConfig>> = vec![
        ("metadata", Invalid, Box::new(|c| c.metadata = None)),
        (
            "metadata.name",
            Invalid,
            Box::new(|c| c.metadata.as_mut().unwrap().name = big()),
        ),
        (
            "metadata.name",
            Invalid,
            Box::new(|c| c.metadata.as_mut().unwrap().name = "a\0".into()),
        ),
        ("image", Invalid, Box::new(|c| c.image = None)),
        (
            "image",
            Invalid,
            Box::new(|c| c.image.as_mut().unwrap().image = "Bad Image".into()),
        ),
        (
            "image",
            Invalid,
            Box::new(|c| c.image.as_mut().unwrap().image = "localhost:0/x".into()),
        ),
        (
            "image",
            Invalid,
            Box::new(|c| c.image.as_mut().unwrap().image = "127.0.0.1:99999/x".into()),
        ),
        (
            "image",
            Code::NotFound,
            Box::new(|c| c.image.as_mut().unwrap().image = "docker-cri-test/absent:v0".into()),
        ),
        (
            "command",
            Invalid,
            Box::new(|c| c.command = vec!["sh".into(), "a\0b".into()]),
        ),
        ("args", Invalid, Box::new(|c| c.args = vec![big()])),
        ("args", Invalid, Box::new(|c| c.args = vec!["\0".into()])),
        (
            "working_dir",
            Invalid,
            Box::new(|c| c.working_dir = "relative".into()),
        ),
        (
            "working_dir",
            Invalid,
            Box::new(|c| c.working_dir = "/a/../b".into()),
        ),
        (
            "envs",
            Invalid,
            Box::new(|c| {
                c.envs = vec![api::KeyValue {
                    key: String::new(),
                    value: "v".into(),
                }]
            }),
        ),
        (
            "envs",
            Invalid,
            Box::new(|c| {
                c.envs = vec![api::KeyValue {
                    key: "A=B".into(),
                    value: "v".into(),
                }]
            }),
        ),
        (
            "envs",
            Invalid,
            Box::new(|c| {
                c.envs = vec![api::KeyValue {
                    key: "A".into(),
                    value: "v\0".into(),
                }]
            }),
        ),
        (
            "mounts[0].container_path",
            Invalid,
            Box::new(|c| {
                mount(c, "/tmp", "relative");
            }),
        ),
        (
            "mounts[0].container_path",
            Invalid,
            Box::new(|c| {
                mount(c, "/tmp", "/a/../etc");
            }),
        ),
        (
            "mounts[0].host_path",
            Invalid,
            Box::new(|c| {
                mount(c, "tmp", "/m");
            }),
        ),
        (
            "mounts[0].host_path",
            Invalid,
            Box::new(|c| {
                mount(c, "/tmp/../etc", "/m");
            }),
        ),
        (
            "mounts[0]",
            Invalid,
            Box::new(|c| {
                mount(c, "/tmp", "/m").propagation = 99;
            }),
        ),
        (
            "mounts[0]",
            Code::Unimplemented,
            Box::new(|c| {
                mount(c, "/tmp", "/m").mount_options = vec!["nosuid".into()];
            }),
        ),
        (
            "devices[0]",
            Invalid,
            Box::new(|c| {
                c.devices = vec![api::Device {
                    host_path: "null".into(),
                    container_path: "/dev/x".into(),
                    permissions: "rwm".into(),
                }]
            }),
        ),
        (
            "devices[0]",
            Invalid,
            Box::new(|c| {
                c.devices = vec![api::Device {
                    host_path: "/dev/null".into(),
                    container_path: "/dev/x".into(),
                    permissions: "rwx".into(),
                }]
            }),
        ),
        (
            "log_path",
            Invalid,
            Box::new(|c| c.log_path = "/etc/evil.log".into()),
        ),
        (
            "log_path",
            Invalid,
            Box::new(|c| c.log_path = "../escape.log".into()),
        ),
        (
            "log_path",
            Invalid,
            Box::new(|c| c.log_path = "a\0.log".into()),
        ),
        (
            "masked_paths",
            Invalid,
            Box::new(|c| sc(c).masked_paths = vec!["proc/kcore".into()]),
        ),
        (
            "masked_paths",
            Invalid,
            Box::new(|c| sc(c).masked_paths = vec!["/proc/../etc".into()]),
        ),
        (
            "readonly_paths",
            Invalid,
            Box::new(|c| sc(c).readonly_paths = vec!["relative".into()]),
        ),
        (
            "namespace_options.pid",
            Invalid,
            Box::new(|c| ns(c).pid = 99),
        ),
        (
            "namespace_options.network",
            Invalid,
            Box::new(|c| ns(c).network = 42),
        ),
        (
            "namespace_options.ipc",
            Invalid,
            Box::new(|c| ns(c).ipc = api::NamespaceMode::Target as i32),
        ),
        (
            "target_id",
            Invalid,
            Box::new(|c| ns(c).pid = api::NamespaceMode::Target as i32),
        ),
        (
            "supplemental_groups",
            Invalid,
            Box::new(|c| sc(c).supplemental_groups = vec![-4]),
        ),
        (
            "run_as_user",
            Invalid,
            Box::new(|c| sc(c).run_as_user = Some(api::Int64Value { value: -7 })),
        ),
        (
            "run_as_group",
            Invalid,
            Box::new(|c| sc(c).run_as_group = Some(api::Int64Value { value: 1 })),
        ),
        (
            "run_as_username",
            Invalid,
            Box::new(|c| sc(c).run_as_username = "root\0".into()),
        ),
        (
            "run_as_username",
            Invalid,
            Box::new(|c| sc(c).run_as_username = "root:root".into()),
        ),
        (
            "memory_limit_in_bytes",
            Invalid,
            Box::new(|c| res(c).memory_limit_in_bytes = -1),
        ),
        (
            "cpu_shares",
            Invalid,
            Box::new(|c| res(c).cpu_shares = 1 << 40),
        ),
        (
            "oom_score_adj",
            Invalid,
            Box::new(|c| res(c).oom_score_adj = 5000),
        ),
        (
            "unified",
            Invalid,
            Box::new(|c| {
                res(c).unified.insert("cgroup.procs".into(), "1".into());
            }),
        ),
        (
            "unified",
            Invalid,
            Box::new(|c| {
                res(c).unified.insert("../memory.max".into(), "1".into());
            }),
        ),
        (
            "hugepage_limits",
            Invalid,
            Box::new(|c| {
                res(c).hugepage_limits = vec![api::HugepageLimit {
                    page_size: "3XB".into(),
                    limit: 1,
                }]
            }),
        ),
        ("stop_signal", Invalid, Box::new(|c| c.stop_signal = 999)),
        (
            "seccomp",
            Invalid,
            Box::new(|c| {
                sc(c).seccomp = Some(api::SecurityProfile {
                    profile_type: 7,
                    localhost_ref: String::new(),
                })
            }),
        ),
        (
            "apparmor",
            Invalid,
            Box::new(|c| {
                sc(c).apparmor = Some(api::SecurityProfile {
                    profile_type: 99,
                    localhost_ref: String::new(),
                })
            }),
        ),
        (
            "add_ambient_capabilities",
            Code::Unimplemented,
            Box::new(|c| {
                sc(c).capabilities = Some(api::Capability {
                    add_ambient_capabilities: vec!["NET_RAW".into()],
                    ..Default::default()
                })
            }),
        ),
    ];
    if !apparmor {
        // Docker would silently run it unconfined.
        cases.push((
            "apparmor",
            Invalid,
            Box::new(|c| {
                sc(c).apparmor = Some(api::SecurityProfile {
                    profile_type: api::security_profile::ProfileType::Localhost as i32,
                    localhost_ref: "docker-cri-test-profile".into(),
                })
            }),
        ));
    }
    cases
}
