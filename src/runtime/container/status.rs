//! ContainerStatus: from the index, unless verbose (which inspects) or the
//! index is not in sync.

use std::collections::HashMap;

use crate::api;
use crate::error::{Error, Result};
use crate::index::Lookup;
use crate::mapping::container::container_status;
use crate::runtime::Runtime;

impl Runtime {
    pub async fn container_status(
        &self,
        id: &str,
        verbose: bool,
    ) -> Result<(api::ContainerStatus, HashMap<String, String>)> {
        if id.is_empty() {
            return Err(Error::invalid("container_id is required"));
        }
        if !verbose && let Some(found) = self.index.container_status(id) {
            let mut status = match found {
                Lookup::Found(status) => status,
                Lookup::Missing => {
                    return Err(Error::not_found(format!("container {id:?} not found")));
                }
                Lookup::Ambiguous(n) => {
                    return Err(Error::invalid(format!(
                        "ID prefix {id:?} is ambiguous ({n} match)"
                    ))
                    .context("container_id"));
                }
            };
            if status.state == api::ContainerState::ContainerExited as i32 {
                // Its last lines reach the log file before EXITED is reported.
                self.drain_container_log(&status.id).await;
            }
            self.image_volumes.describe(&mut status.mounts);
            return Ok((status, HashMap::new()));
        }
        let inspect = self.inspect_managed_container(id).await?;
        if let Some(id) = inspect.id.as_deref().filter(|_| exited(&inspect)) {
            // Its last lines reach the log file before EXITED is reported.
            self.drain_container_log(id).await;
        }
        let pid = inspect
            .state
            .as_ref()
            .and_then(|s| s.pid)
            .filter(|p| *p > 0);
        // The user in effect is what the kernel says, while there is a process.
        let proc_status = match pid {
            Some(pid) => tokio::fs::read_to_string(format!("/proc/{pid}/status"))
                .await
                .ok(),
            None => None,
        };
        let mut status = container_status(&inspect, proc_status.as_deref());
        self.image_volumes.describe(&mut status.mounts);
        let mut info = HashMap::new();
        if verbose {
            let hc = inspect.host_config.clone().unwrap_or_default();
            let mut details = serde_json::json!({
                "pid": pid,
                "dockerName": inspect.name,
                "sandboxId": status_label(&inspect, crate::mapping::labels::SANDBOX_ID),
                "image": inspect.image,
                "privileged": hc.privileged,
                "networkMode": hc.network_mode,
                "pidMode": hc.pid_mode,
                "ipcMode": hc.ipc_mode,
                "cgroupParent": hc.cgroup_parent,
                "restartCount": inspect.restart_count,
            });
            // Where the process lives: namespaces (with inodes, so shared
            // ones show) and cgroup directories.
            if let Some(pid) = pid {
                details["process"] = crate::stats::process::placement_info(&self.cgroups, pid);
            }
            info.insert("info".to_string(), details.to_string());
        }
        Ok((status, info))
    }
}

fn exited(c: &bollard::models::ContainerInspectResponse) -> bool {
    use bollard::models::ContainerStateStatusEnum as S;
    matches!(
        c.state.as_ref().and_then(|s| s.status),
        Some(S::EXITED | S::DEAD)
    )
}

fn status_label(c: &bollard::models::ContainerInspectResponse, key: &str) -> Option<String> {
    c.config.as_ref()?.labels.as_ref()?.get(key).cloned()
}
