//! Table tests of the container mapping, field by field; no daemon.

mod create;
mod mounts;
mod resources;
mod security;
mod status;

use super::*;

fn pod() -> PodContext {
    PodContext {
        sandbox_id: "sb1".into(),
        pod: api::PodSandboxMetadata {
            name: "web".into(),
            namespace: "ns".into(),
            uid: "u1".into(),
            attempt: 0,
        },
        namespaces: api::NamespaceOption::default(),
        log_directory: "/var/log/pods/ns_web_u1".into(),
        runtime_handler: String::new(),
        docker_runtime: None,
    }
}

fn config() -> api::ContainerConfig {
    api::ContainerConfig {
        metadata: Some(api::ContainerMetadata {
            name: "app".into(),
            attempt: 2,
        }),
        image: Some(api::ImageSpec {
            image: "busybox:1".into(),
            ..Default::default()
        }),
        log_path: "app/2.log".into(),
        ..Default::default()
    }
}

fn body_of(config: &api::ContainerConfig, pod: &PodContext) -> Result<ContainerCreateBody> {
    let mounts = config.mounts.clone();
    let plan = ContainerPlan {
        config,
        pod,
        image_id: "sha256:img",
        display_image: "busybox:1",
        api_version: ApiVersion(1, 41),
        cgroup_driver: CgroupDriver::Cgroupfs,
        cgroup_parent: "",
        min_oom_score_adj: 0,
        seccomp_opt: None,
        apparmor_opt: None,
        mounts: &mounts,
        pid_target: Some("target-id"),
        created_nanos: 7,
        cgroup_settings: &[],
        selinux_enabled: true,
    };
    create_body(&plan)
}

fn body(config: &api::ContainerConfig) -> ContainerCreateBody {
    body_of(config, &pod()).unwrap()
}
