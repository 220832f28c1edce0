//! CreateContainer: resolve the pod, image, profiles and mounts, then create
//! the Docker container joined to the pause container.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::api;
use crate::error::{Error, Result};
use crate::mapping::container::{self as map, ContainerPlan, PodContext};
use crate::mapping::image_ref::ImageLookup;
use crate::mapping::labels;
use crate::mapping::sandbox::{CgroupDriver, sandbox_namespaces};
use crate::mapping::security::{apparmor_opt, seccomp_choice};
use crate::runtime::Runtime;
use crate::runtime::image_volume;
use crate::runtime::sandbox::SandboxRef;

impl Runtime {
    pub async fn create_container(
        &self,
        sandbox_id: &str,
        config: &api::ContainerConfig,
        sandbox_config: Option<&api::PodSandboxConfig>,
    ) -> Result<String> {
        let created = self
            .create_container_once(sandbox_id, config, sandbox_config)
            .await;
        // An image unpacked for a container that was then not created
        // (a sub path missing, Docker refusing) has no user to wait for.
        if created.is_err() && config.mounts.iter().any(|m| m.image.is_some()) {
            self.collect_image_volumes().await;
        }
        created
    }

    async fn create_container_once(
        &self,
        sandbox_id: &str,
        config: &api::ContainerConfig,
        sandbox_config: Option<&api::PodSandboxConfig>,
    ) -> Result<String> {
        let meta = map::metadata(config)?;
        let image_name = config
            .image
            .as_ref()
            .map(|i| i.image.as_str())
            .filter(|i| !i.is_empty())
            .ok_or_else(|| Error::invalid("config.image.image is required"))?;
        let lookup = ImageLookup::parse(image_name).map_err(|e| e.context("config.image"))?;

        let (pod, cgroup_parent) = self.pod_context(sandbox_id, sandbox_config).await?;
        let image = self
            .docker()
            .inspect_image(&lookup.docker_key())
            .await?
            .ok_or_else(|| {
                Error::not_found(format!(
                    "image {image_name:?} is not present; pull it first"
                ))
            })?;
        let image_id = image.id.clone().unwrap_or_default();
        // What status reports as the image: kubelet passes the image ID in
        // `image` and the pod spec's name in `user_specified_image`.
        let spec = config.image.clone().unwrap_or_default();
        let display_image = if !spec.user_specified_image.is_empty() {
            spec.user_specified_image.clone()
        } else if matches!(lookup, ImageLookup::Id(_))
            || image_id
                .trim_start_matches("sha256:")
                .starts_with(image_name)
        {
            image
                .repo_tags
                .as_ref()
                .and_then(|t| t.first().cloned())
                .unwrap_or_else(|| image_name.to_string())
        } else {
            image_name.to_string()
        };

        let sc = config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref());
        #[allow(deprecated)]
        let (seccomp_path, apparmor_string) = sc.map_or(("", ""), |s| {
            (s.seccomp_profile_path.as_str(), s.apparmor_profile.as_str())
        });
        let seccomp = seccomp_choice(sc.and_then(|s| s.seccomp.as_ref()), seccomp_path)?;
        // Docker ignores seccomp for privileged containers anyway.
        let privileged = sc.is_some_and(|s| s.privileged);
        let seccomp_opt = if privileged {
            None
        } else {
            self.seccomp_security_opt(&seccomp).await?
        };
        let apparmor_opt = apparmor_opt(sc.and_then(|s| s.apparmor.as_ref()), apparmor_string)?;
        // Docker ignores AppArmor options where the kernel has no AppArmor,
        // so a named profile would silently not apply: refuse it, as
        // kubelet and containerd do.
        if let Some(profile) = apparmor_opt
            .as_deref()
            .and_then(|o| o.strip_prefix("apparmor="))
            && profile != "unconfined"
            && !self.apparmor_enabled
        {
            return Err(Error::invalid(format!(
                "linux.security_context.apparmor: profile {profile:?} cannot be enforced: \
                 AppArmor is not enabled on this host"
            )));
        }

        let pid_target = self.pid_target(config, &pod.sandbox_id).await?;
        let api_version = self.docker().api_version().await?;
        let wanted_settings = map::resources(
            &config
                .linux
                .as_ref()
                .and_then(|l| l.resources.clone())
                .unwrap_or_default(),
        )?
        .cgroup_settings;
        let cgroup_settings = self.cgroups.plan(&wanted_settings)?;
        let created_nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        let mut plan = ContainerPlan {
            config,
            pod: &pod,
            image_id: &image_id,
            display_image: &display_image,
            api_version,
            // The pause container's parent is already in Docker's form.
            cgroup_driver: CgroupDriver::Cgroupfs,
            cgroup_parent: &cgroup_parent,
            min_oom_score_adj: self.clamp_oom_score_adj(-1000),
            seccomp_opt,
            apparmor_opt,
            mounts: &config.mounts,
            pid_target: pid_target.as_deref(),
            created_nanos,
            cgroup_settings: &cgroup_settings,
            selinux_enabled: self.selinux_enabled,
        };
        // Validate everything before anything is written to the host (image
        // volumes as the binds they become on Docker before 28).
        let stand_ins = image_volume::stand_ins(&config.mounts, api_version)?;
        plan.mounts = &stand_ins;
        map::create_body(&plan)?;
        // Holds the unpacked images until the container binding them exists.
        let (with_volumes, _unpacked) = self
            .unpack_image_volumes(&config.mounts, api_version)
            .await?;
        let resolved = prepare_host_paths(&with_volumes).await?;
        plan.mounts = &resolved;
        let mut body = map::create_body(&plan)?;
        self.set_docker_log_config(&mut body);

        let name = map::docker_name(meta, &pod.pod);
        let _guard = self.container_name_locks.lock(&name).await;
        let id = match self.docker().create_container(&name, body.clone()).await {
            Ok(id) => id,
            Err(Error::FailedPrecondition(msg))
                if msg.contains("already in use") || msg.contains("Conflict") =>
            {
                self.replace_stale_container(&name).await?;
                self.docker().create_container(&name, body).await?
            }
            Err(e) => return Err(e.context("creating the container")),
        };
        let relabel = map::relabel_sources(&resolved, self.selinux_enabled);
        if !relabel.is_empty()
            && let Err(e) = self.relabel_for(&id, relabel).await
        {
            let _ = self.docker().remove_container(&id).await;
            return Err(e);
        }
        self.reread(&[&id]).await;
        tracing::info!(container = %id, name, sandbox = %pod.sandbox_id, "container created");
        Ok(id)
    }

    /// Relabels mount sources Docker cannot relabel with the label Docker
    /// gave the container's mounts, as `:Z` would.
    async fn relabel_for(&self, id: &str, sources: Vec<String>) -> Result<()> {
        let label = self
            .docker()
            .inspect_container(id)
            .await?
            .and_then(|c| c.mount_label)
            .filter(|l| !l.is_empty())
            .ok_or_else(|| {
                Error::FailedPrecondition(format!(
                    "container {id} has no SELinux mount label to relabel its mounts with"
                ))
            })?;
        tokio::task::spawn_blocking(move || {
            for source in &sources {
                crate::runtime::host::relabel_tree(Path::new(source), &label).map_err(|e| {
                    Error::FailedPrecondition(format!(
                        "relabelling mount source {source} for SELinux: {e}"
                    ))
                })?;
            }
            Ok(())
        })
        .await
        .map_err(|e| Error::internal(format!("relabel task: {e}")))?
    }

    /// A leftover container holding the name: an exited one (an old
    /// attempt) is removed; a created or running one means a duplicate
    /// request.
    async fn replace_stale_container(&self, name: &str) -> Result<()> {
        use bollard::models::ContainerStateStatusEnum as S;
        if let Some(c) = self.docker().inspect_container(name).await? {
            let id = c.id.clone().unwrap_or_default();
            let status = c.state.as_ref().and_then(|s| s.status);
            if !matches!(status, Some(S::EXITED | S::DEAD)) {
                return Err(Error::AlreadyExists(format!(
                    "container {name} already exists as {id}"
                )));
            }
            tracing::info!(name, stale = %id, "removing a stale container with the same name");
            self.docker().remove_container(&id).await?;
        }
        Ok(())
    }

    /// What a new container needs to know about its pod.
    async fn pod_context(
        &self,
        sandbox_id: &str,
        sandbox_config: Option<&api::PodSandboxConfig>,
    ) -> Result<(PodContext, String)> {
        let not_found = || Error::not_found(format!("pod sandbox {sandbox_id:?} not found"));
        let mut sandbox = match self.find_sandbox(sandbox_id).await? {
            Some(SandboxRef::Docker(s)) => s,
            _ => return Err(not_found()),
        };
        let full_id = sandbox.id.clone();
        let inspect = self
            .take_inspect(&mut sandbox)
            .await?
            .ok_or_else(not_found)?;
        if !inspect
            .state
            .as_ref()
            .and_then(|s| s.running)
            .unwrap_or(false)
        {
            return Err(Error::FailedPrecondition(format!(
                "pod sandbox {full_id} is not ready"
            )));
        }
        let docker_labels = sandbox.labels.clone();
        let name = sandbox.name.clone();
        let log_directory = sandbox_config
            .map(|c| c.log_directory.clone())
            .filter(|d| !d.is_empty())
            .or_else(|| {
                self.checkpoints.get(&full_id).and_then(|cp| {
                    cp.config
                        .get("logDirectory")
                        .and_then(|v| v.as_str())
                        .map(str::to_string)
                })
            })
            .unwrap_or_default();
        // The pause container's parent is already in Docker's form.
        let cgroup_parent = inspect
            .host_config
            .as_ref()
            .and_then(|h| h.cgroup_parent.clone())
            .unwrap_or_default();
        let docker_runtime = inspect
            .host_config
            .as_ref()
            .and_then(|h| h.runtime.clone())
            .filter(|r| !r.is_empty());
        let pod = PodContext {
            runtime_handler: docker_labels
                .get(labels::RUNTIME_HANDLER)
                .cloned()
                .unwrap_or_default(),
            docker_runtime,
            namespaces: sandbox_namespaces(&inspect),
            pod: labels::sandbox_metadata(&docker_labels, &name),
            sandbox_id: full_id,
            log_directory,
        };
        Ok((pod, cgroup_parent))
    }

    /// TARGET pid mode: the target must be a container of the same pod.
    async fn pid_target(
        &self,
        config: &api::ContainerConfig,
        sandbox_id: &str,
    ) -> Result<Option<String>> {
        let ns = config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.as_ref());
        let Some(ns) = ns.filter(|n| n.pid == api::NamespaceMode::Target as i32) else {
            return Ok(None);
        };
        if ns.target_id.is_empty() {
            return Err(Error::invalid(
                "namespace_options.target_id is required for TARGET pid mode",
            ));
        }
        let target = self.find_container(&ns.target_id).await?.ok_or_else(|| {
            Error::invalid(format!(
                "namespace_options.target_id {:?} is not a container",
                ns.target_id
            ))
        })?;
        let target_sandbox = target
            .labels
            .get(labels::SANDBOX_ID)
            .cloned()
            .unwrap_or_default();
        if target_sandbox != sandbox_id {
            return Err(Error::invalid(format!(
                "namespace_options.target_id {:?} belongs to another pod",
                ns.target_id
            )));
        }
        Ok(Some(target.id))
    }
}

/// Bind sources as kubelet expects them: symlinks resolved, missing paths
/// created as directories. Image volumes have no host path: Docker mounts
/// the image.
async fn prepare_host_paths(mounts: &[api::Mount]) -> Result<Vec<api::Mount>> {
    let mut out = Vec::with_capacity(mounts.len());
    for m in mounts {
        let mut m = m.clone();
        if m.image.as_ref().is_some_and(|i| !i.image.is_empty()) {
            out.push(m);
            continue;
        }
        let path = Path::new(&m.host_path);
        if tokio::fs::symlink_metadata(path).await.is_err() {
            tokio::fs::create_dir_all(path).await.map_err(|e| {
                Error::internal(format!("creating mount source {}: {e}", m.host_path))
            })?;
        }
        let real = tokio::fs::canonicalize(path)
            .await
            .map_err(|e| Error::invalid(format!("mount source {}: {e}", m.host_path)))?;
        m.host_path = real.to_string_lossy().into_owned();
        out.push(m);
    }
    Ok(out)
}
