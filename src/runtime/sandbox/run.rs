//! RunPodSandbox: create and start the pause container, checkpoint it and
//! write the pod's resolv.conf. Any failure removes what was made.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::api;
use crate::error::{Error, Result};
use crate::mapping::image_ref::ImageRef;
use crate::mapping::sandbox::{self as map, CgroupDriver, SandboxPlan};
use crate::mapping::security::seccomp_choice;
use crate::runtime::Runtime;
use crate::runtime::checkpoint::{CheckpointData, PortMappingRecord, SandboxCheckpoint};

impl Runtime {
    pub async fn run_pod_sandbox(
        &self,
        config: &api::PodSandboxConfig,
        runtime_handler: &str,
    ) -> Result<String> {
        let meta = map::metadata(config)?;
        let name = map::docker_name(meta);
        // Validate everything that needs no I/O before touching Docker.
        let resolv = map::resolv_conf(config.dns_config.as_ref())?;
        let security = config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref());
        // The deprecated path field is still what older kubelets send.
        #[allow(deprecated)]
        let deprecated_path = security.map_or("", |s| s.seccomp_profile_path.as_str());
        let seccomp = seccomp_choice(security.and_then(|s| s.seccomp.as_ref()), deprecated_path)?;
        let seccomp_opt = self.seccomp_security_opt(&seccomp).await?;
        let cni_plan = self.plan_cni(config).await?;

        let info = self.docker().info().await?;
        let docker_runtime = match runtime_handler {
            "" => None,
            handler => {
                let known = info
                    .runtimes
                    .as_ref()
                    .is_some_and(|r| r.contains_key(handler));
                if !known {
                    let mut names: Vec<String> = info
                        .runtimes
                        .iter()
                        .flat_map(|r| r.keys().cloned())
                        .collect();
                    names.sort();
                    return Err(Error::not_found(format!(
                        "runtime handler {handler:?} is not a Docker runtime on this host (have: {})",
                        names.join(", ")
                    )));
                }
                Some(handler)
            }
        };
        let cgroup_driver = match info.cgroup_driver.map(|d| d.to_string()).as_deref() {
            Some("systemd") => CgroupDriver::Systemd,
            _ => CgroupDriver::Cgroupfs,
        };
        let created_nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        let plan = SandboxPlan {
            config,
            runtime_handler,
            docker_runtime,
            pause_image: &self.config().pause_image,
            // CNI networks the pod itself, in a namespace Docker leaves empty.
            network: if cni_plan.is_some() {
                map::NETWORK_NONE
            } else {
                &self.config().sandbox_network
            },
            cgroup_driver,
            oom_score_adj: self.clamp_oom_score_adj(map::PAUSE_OOM_SCORE_ADJ),
            seccomp_opt,
            created_nanos,
        };
        let mut body = map::create_body(&plan)?;
        if cni_plan.is_some() {
            // Host ports are portmap's job (capability portMappings).
            body.exposed_ports = None;
            if let Some(hc) = body.host_config.as_mut() {
                hc.port_bindings = None;
            }
        }

        let _guard = self.sandbox_name_locks.lock(&name).await;
        // The pause image is looked for only when Docker says something is
        // missing (almost always it is there, and an inspect per pod is
        // time kubelet waits for).
        let id = match self.create_sandbox_container(&name, body.clone()).await {
            Err(Error::NotFound(missing)) => {
                tracing::debug!(%missing, "creating the pause container: making sure the pause image is there");
                self.ensure_pause_image().await?;
                self.create_sandbox_container(&name, body).await?
            }
            created => created?,
        };
        let finished = self
            .finish_sandbox(&id, config, resolv.as_deref(), created_nanos, cni_plan)
            .await;
        if let Err(e) = finished {
            tracing::warn!(sandbox = %id, error = %e, "RunPodSandbox failed; removing what it created");
            if let Err(del) = self.teardown_cni(&id, "").await {
                tracing::warn!(sandbox = %id, error = %del, "CNI DEL after the failed RunPodSandbox failed; its cache entry stays");
            }
            if self.docker().remove_container(&id).await.is_ok() {
                self.index.forget(&id);
            }
            let _ = self.forget_checkpoint(&id).await;
            return Err(e);
        }
        tracing::info!(sandbox = %id, name, "pod sandbox running");
        Ok(id)
    }

    async fn finish_sandbox(
        &self,
        id: &str,
        config: &api::PodSandboxConfig,
        resolv: Option<&str>,
        created_nanos: i64,
        cni_plan: Option<super::network::CniPlan>,
    ) -> Result<()> {
        let meta = config.metadata.clone().unwrap_or_default();
        let host_network = map::is_node(map::namespace_options(config).network);
        let checkpoint = SandboxCheckpoint {
            version: String::new(),
            name: meta.name,
            namespace: meta.namespace,
            uid: meta.uid,
            attempt: meta.attempt,
            data: CheckpointData {
                port_mappings: config
                    .port_mappings
                    .iter()
                    .map(|p| PortMappingRecord {
                        protocol: api::Protocol::try_from(p.protocol)
                            .map(|p| p.as_str_name().to_lowercase())
                            .unwrap_or_default(),
                        container_port: p.container_port,
                        host_port: p.host_port,
                        host_ip: p.host_ip.clone(),
                    })
                    .collect(),
                host_network,
            },
            config: map::config_summary(config),
            created_at: created_nanos,
            checksum: 0,
        };
        // The checkpoint's fsyncs overlap the start: both must succeed
        // before RunPodSandbox answers, and on any failure the caller
        // removes the container and the checkpoint alike.
        let (saved, started) = tokio::join!(
            self.save_checkpoint(id, checkpoint),
            self.docker().start_container(id)
        );
        started.map_err(|e| sysctl_refusal(e, config).context("starting the pause container"))?;
        saved.map_err(|e| e.context("writing the sandbox checkpoint"))?;
        // One inspect after the start serves both the resolv.conf path and
        // the index (read-your-writes), rather than one each.
        let inspect = self
            .index
            .refresh_from(id, async {
                let inspect = self.docker().inspect_container(id).await?;
                let record = match &inspect {
                    Some(i) => crate::index::source::record_of(i).await,
                    None => None,
                };
                Ok((inspect, record))
            })
            .await;
        // Without DNS settings to write, a failed read only costs the
        // index a relist (it says so itself), not the pod.
        if let Some(content) = resolv {
            let inspect = inspect?
                .ok_or_else(|| Error::not_found(format!("pause container {id} vanished")))?;
            write_resolv_conf(inspect, content)
                .await
                .map_err(|e| e.context("writing the pod's resolv.conf"))?;
        }
        if let Some(plan) = cni_plan {
            self.setup_cni(id, config, plan).await?;
        }
        Ok(())
    }

    /// Creates the pause container. A leftover container of the same name
    /// that is not running (a crash mid-way, an old attempt) is removed and
    /// the create retried, as dockershim did; a running one is a duplicate.
    async fn create_sandbox_container(
        &self,
        name: &str,
        body: bollard::models::ContainerCreateBody,
    ) -> Result<String> {
        match self.docker().create_container(name, body.clone()).await {
            Ok(id) => Ok(id),
            Err(Error::FailedPrecondition(msg))
                if msg.contains("already in use") || msg.contains("Conflict") =>
            {
                let existing = self.docker().inspect_container(name).await?;
                if let Some(c) = existing {
                    let id = c.id.clone().unwrap_or_default();
                    if c.state.as_ref().and_then(|s| s.running).unwrap_or(false) {
                        return Err(Error::AlreadyExists(format!(
                            "pod sandbox {name} is already running as {id}"
                        )));
                    }
                    tracing::info!(name, stale = %id, "removing a stale container with the sandbox's name");
                    // An attempt that crashed after ADD left a CNI cache entry.
                    self.teardown_cni(&id, "").await?;
                    self.docker().remove_container(&id).await?;
                    let _ = self.forget_checkpoint(&id).await;
                }
                self.docker()
                    .create_container(name, body)
                    .await
                    .map_err(|e| e.context("creating the pause container"))
            }
            Err(e) => Err(e.context("creating the pause container")),
        }
    }

    /// The sandbox image must be there; kubelet never pulls it. Pull it, and
    /// when no registry answers, build docker-cri's own offline.
    pub(crate) async fn ensure_pause_image(&self) -> Result<()> {
        let image = &self.config().pause_image;
        let reference = ImageRef::parse(image)?;
        let present = || async { self.docker().inspect_image(&reference.normalized()).await };
        if present().await?.is_some() {
            return Ok(());
        }
        let _one_at_a_time = self.pause_image_lock.lock().await;
        if present().await?.is_some() {
            return Ok(());
        }
        match self.pull_image(image, None).await {
            Ok(_) => Ok(()),
            Err(pull_error) => {
                tracing::warn!(image, error = %pull_error, "pulling the pause image failed; building it offline");
                self.build_pause_image(None).await.map(|_| ()).map_err(|e| {
                    e.context(format!(
                        "the pause image {image} could not be pulled ({pull_error}) or built"
                    ))
                })
            }
        }
    }
}

/// Docker rewrites the pause container's resolv.conf when it starts it;
/// the pod's DNS settings go in after that.
async fn write_resolv_conf(
    inspect: bollard::models::ContainerInspectResponse,
    content: &str,
) -> Result<()> {
    let path = inspect
        .resolv_conf_path
        .filter(|p| !p.is_empty())
        .ok_or_else(|| Error::internal("Docker reported no resolv.conf path"))?;
    tokio::fs::write(&path, content)
        .await
        .map_err(|e| Error::internal(format!("{path}: {e}")))
}

/// runc applies the pod's sysctls when the pause container starts; a value
/// the kernel refuses fails only then, as Docker's HTTP 500 like any start
/// failure, naming the `/proc/sys` file it wrote. That is the caller's
/// mistake, so it is InvalidArgument.
fn sysctl_refusal(error: Error, config: &api::PodSandboxConfig) -> Error {
    let Some(sysctls) = config.linux.as_ref().map(|l| &l.sysctls) else {
        return error;
    };
    match error {
        Error::Docker {
            status: 500,
            message,
        } if sysctls
            .keys()
            .any(|k| message.contains(&format!("{}:", map::sysctl_proc_path(k)))) =>
        {
            Error::invalid(format!(
                "linux.sysctls: the kernel refused a value: {message}"
            ))
        }
        other => other,
    }
}
