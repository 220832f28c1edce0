//! `docker-cri check`: is this host ready to run pods through docker-cri?
//! One line per fact, OK / WARN / FAIL with what to do; FAIL only for what
//! would stop pods from running.

use std::path::Path;
use std::sync::Arc;

use crate::cgroups::{Cgroups, Version};
use crate::config::{Config, Listen};
use crate::runtime::{Runtime, host};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub outcome: Outcome,
    pub detail: String,
}

#[derive(Debug, Default)]
pub struct CheckReport {
    pub checks: Vec<Check>,
}

impl CheckReport {
    fn add(&mut self, name: &'static str, outcome: Outcome, detail: impl Into<String>) {
        self.checks.push(Check {
            name,
            outcome,
            detail: detail.into(),
        });
    }

    /// Whether nothing would stop pods from running.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.outcome != Outcome::Fail)
    }
}

impl std::fmt::Display for CheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in &self.checks {
            let tag = match c.outcome {
                Outcome::Ok => "OK  ",
                Outcome::Warn => "WARN",
                Outcome::Fail => "FAIL",
            };
            writeln!(f, "{tag} {:<16} {}", c.name, c.detail)?;
        }
        Ok(())
    }
}

/// Runs every check. `kubelet_cgroup_driver`: the `--cgroup-driver` kubelet
/// will be given, if known. `log_root`: where kubelet writes pod logs.
pub async fn check(
    config: Config,
    kubelet_cgroup_driver: Option<&str>,
    log_root: &Path,
) -> CheckReport {
    let mut report = CheckReport::default();
    let listen = config.listen.clone();
    let runtime = match Runtime::new(Arc::new(config)) {
        Ok(r) => r,
        Err(e) => {
            report.add("state directory", Outcome::Fail, e.to_string());
            return report;
        }
    };
    report.add(
        "state directory",
        Outcome::Ok,
        runtime.config().root_directory.display().to_string(),
    );
    docker_checks(&runtime, kubelet_cgroup_driver, &mut report).await;

    let cgroups = Cgroups::host();
    report.add(
        "cgroup version",
        Outcome::Ok,
        match cgroups.version() {
            Version::V1 => "v1 (cgroup v2 only limits such as memory.high are refused)",
            Version::V2 => "v2",
        },
    );
    let min_oom = host::min_oom_score_adj();
    report.add(
        "oom_score_adj",
        if min_oom > -998 {
            Outcome::Warn
        } else {
            Outcome::Ok
        },
        if min_oom > -998 {
            format!(
                "this host cannot lower OOM scores below {min_oom} (no CAP_SYS_RESOURCE); \
                 pause and critical pods are clamped"
            )
        } else {
            "-1000..1000".to_string()
        },
    );
    match &listen {
        Listen::Unix(path) => {
            let dir = path.parent().unwrap_or(Path::new("/"));
            match writable(dir) {
                Ok(()) => report.add("socket", Outcome::Ok, format!("{} can be created", path.display())),
                Err(e) => report.add(
                    "socket",
                    Outcome::Fail,
                    format!("cannot create {} ({e}); run as root or pick another --container-runtime-endpoint", path.display()),
                ),
            }
        }
        Listen::Systemd { .. } => report.add(
            "socket",
            Outcome::Ok,
            "fd:// (systemd socket activation: the socket unit owns it)",
        ),
    }
    match writable(log_root) {
        Ok(()) => report.add("log directory", Outcome::Ok, log_root.display().to_string()),
        Err(e) => report.add(
            "log directory",
            Outcome::Fail,
            format!(
                "{} is not writable ({e}); kubelet's pod logs go there",
                log_root.display()
            ),
        ),
    }
    network_check(runtime.config(), &mut report);
    report
}

/// Docker's own networks, or a CNI configuration docker-cri can use.
fn network_check(config: &Config, report: &mut CheckReport) {
    if config.network_plugin != crate::config::NetworkPlugin::Cni {
        report.add(
            "pod network",
            Outcome::Ok,
            format!("Docker network {:?}", config.sandbox_network),
        );
        return;
    }
    let cni = crate::cni::Cni::new(crate::cni::Settings {
        conf_dir: config.cni_conf_dir.clone(),
        bin_dirs: config.cni_bin_dirs.clone(),
        cache_dir: config.cni_cache_dir.clone(),
        plugin_timeout: config.cni_plugin_timeout,
        tuning: config.cni_tuning,
    });
    match cni.ready() {
        Ok(list) => report.add(
            "pod network",
            Outcome::Ok,
            format!("CNI network {:?} from {}", list.name, list.file.display()),
        ),
        Err(why) => report.add(
            "pod network",
            Outcome::Fail,
            format!(
                "{why}; install the cluster's network plugin (it writes its config into {})",
                config.cni_conf_dir.display()
            ),
        ),
    }
}

async fn docker_checks(runtime: &Runtime, kubelet_driver: Option<&str>, report: &mut CheckReport) {
    let docker = runtime.docker();
    if let Err(e) = docker.wait_connected(docker.call_timeout()).await {
        report.add(
            "docker",
            Outcome::Fail,
            format!(
                "{e}; start dockerd (systemctl start docker) or fix --docker-endpoint ({})",
                runtime.config().docker_socket.display()
            ),
        );
        return;
    }
    match (docker.version().await, docker.api_version().await) {
        (Ok(v), Ok(api)) => report.add(
            "docker",
            Outcome::Ok,
            format!("Docker {} (API {api})", v.version.as_deref().unwrap_or("?")),
        ),
        (Err(e), _) | (_, Err(e)) => report.add("docker", Outcome::Fail, e.to_string()),
    }
    let Ok(info) = docker.info().await else {
        report.add("docker info", Outcome::Fail, "docker info failed");
        return;
    };
    let driver = info
        .cgroup_driver
        .map(|d| d.to_string())
        .unwrap_or_else(|| "cgroupfs".into());
    match kubelet_driver {
        Some(k) if k != driver => report.add(
            "cgroup driver",
            Outcome::Fail,
            format!(
                "Docker uses {driver} but kubelet would use {k}; give kubelet --cgroup-driver={driver} \
                 or set Docker's exec-opts native.cgroupdriver={k}"
            ),
        ),
        Some(_) => report.add("cgroup driver", Outcome::Ok, format!("{driver}, as kubelet's")),
        None => report.add(
            "cgroup driver",
            Outcome::Ok,
            format!("{driver} (give kubelet --cgroup-driver={driver})"),
        ),
    }
    match info.live_restore_enabled {
        Some(true) => report.add("live-restore", Outcome::Ok, "on: containers survive dockerd restarts"),
        _ => report.add(
            "live-restore",
            Outcome::Warn,
            "off: restarting dockerd stops every pod; set \"live-restore\": true in /etc/docker/daemon.json",
        ),
    }
    match runtime.pause_image_id(None).await {
        Ok(Some(id)) => report.add(
            "pause image",
            Outcome::Ok,
            format!("{} ({id})", runtime.config().pause_image),
        ),
        Ok(None) => report.add(
            "pause image",
            Outcome::Warn,
            format!(
                "{} is missing; docker-cri builds it on the first pod, or now with `docker-cri pause-image`",
                runtime.config().pause_image
            ),
        ),
        Err(e) => report.add("pause image", Outcome::Fail, e.to_string()),
    }
}

/// Whether files can be created in `dir`, or (when it does not exist yet)
/// in the nearest ancestor it would be created under. Asks the kernel
/// (`access`, which also sees read-only mounts) instead of writing: a
/// check leaves the host as it found it.
fn writable(dir: &Path) -> std::io::Result<()> {
    use nix::unistd::{AccessFlags, access};
    let existing = dir
        .ancestors()
        .find(|d| d.exists())
        .unwrap_or_else(|| Path::new("/"));
    access(existing, AccessFlags::W_OK | AccessFlags::X_OK).map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_log_directory_is_judged_by_its_parent_and_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("var/log/pods");
        writable(&missing).unwrap();
        assert!(!missing.exists());
        assert!(!dir.path().join("var").exists());
    }

    #[test]
    fn report_fails_only_on_fail() {
        let mut r = CheckReport::default();
        r.add("a", Outcome::Ok, "fine");
        r.add("b", Outcome::Warn, "meh");
        assert!(r.passed());
        r.add("c", Outcome::Fail, "broken");
        assert!(!r.passed());
        let text = r.to_string();
        assert!(text.contains("FAIL c"), "{text}");
        assert!(text.contains("WARN b"), "{text}");
    }

    #[test]
    fn writable_directories() {
        let dir = tempfile::tempdir().unwrap();
        assert!(writable(&dir.path().join("new/sub")).is_ok());
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(writable(&file.join("below-a-file")).is_err());
    }
}
