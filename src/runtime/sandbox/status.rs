//! PodSandboxStatus: from the index, unless verbose (which inspects), the
//! index is not in sync, or only a checkpoint remembers the sandbox.

use std::collections::HashMap;

use super::SandboxRef;
use super::network::netns_path;
use crate::api;
use crate::error::{Error, Result};
use crate::index::Lookup;
use crate::mapping::sandbox::sandbox_status;
use crate::runtime::Runtime;

impl Runtime {
    pub async fn pod_sandbox_status(
        &self,
        id: &str,
        verbose: bool,
    ) -> Result<(api::PodSandboxStatus, HashMap<String, String>)> {
        let not_found = || Error::not_found(format!("pod sandbox {id:?} not found"));
        if id.is_empty() {
            return Err(Error::invalid("pod_sandbox_id is required"));
        }
        if !verbose && let Some(found) = self.index.sandbox_status(id) {
            match found {
                Lookup::Found(mut status) => {
                    self.add_cni_network(&mut status);
                    return Ok((status, HashMap::new()));
                }
                Lookup::Ambiguous(n) => {
                    return Err(Error::invalid(format!(
                        "pod sandbox ID prefix {id:?} is ambiguous ({n} match)"
                    )));
                }
                // Perhaps one only a checkpoint remembers: asked below.
                Lookup::Missing => {}
            }
        }
        let mut sandbox = match self.find_sandbox(id).await? {
            Some(SandboxRef::Docker(s)) => s,
            Some(SandboxRef::CheckpointOnly(full_id)) => {
                let cp = self.checkpoints.get(&full_id).ok_or_else(not_found)?;
                let info = verbose
                    .then(|| ("info".to_string(), cp.verbose_info().to_string()))
                    .into_iter()
                    .collect();
                return Ok((cp.not_ready_status(&full_id), info));
            }
            None => return Err(not_found()),
        };
        let full_id = sandbox.id.clone();
        let inspect = self
            .take_inspect(&mut sandbox)
            .await?
            .ok_or_else(not_found)?;
        let mut status = sandbox_status(&inspect);
        self.add_cni_network(&mut status);
        let mut info = HashMap::new();
        if verbose {
            let checkpoint = self.checkpoints.get(&full_id);
            let pid = inspect.state.as_ref().and_then(|s| s.pid);
            let mut details = serde_json::json!({
                "pid": pid,
                "image": inspect.config.as_ref().and_then(|c| c.image.clone()),
                "dockerName": inspect.name,
                "networkMode": inspect.host_config.as_ref().and_then(|h| h.network_mode.clone()),
                "config": checkpoint.as_ref().map(|c| c.config.clone()),
                "portMappings": checkpoint.as_ref().map(|c| serde_json::to_value(&c.data.port_mappings).unwrap_or_default()),
                "cni": self.cni_details(&full_id, &netns_path(&inspect)).await,
            });
            if let Some(pid) = pid.filter(|p| *p > 0) {
                details["process"] = crate::stats::process::placement_info(&self.cgroups, pid);
            }
            info.insert("info".to_string(), details.to_string());
        }
        Ok((status, info))
    }
}

impl Runtime {
    /// A CNI-networked pod's addresses: Docker knows none (network none).
    pub(crate) fn add_cni_network(&self, status: &mut api::PodSandboxStatus) {
        if status.network.is_some() || status.state != api::PodSandboxState::SandboxReady as i32 {
            return;
        }
        let mut ips = self.cni_ips(&status.id);
        if !ips.is_empty() {
            let first = ips.remove(0);
            status.network = Some(api::PodSandboxNetworkStatus {
                ip: first,
                additional_ips: ips.into_iter().map(|ip| api::PodIp { ip }).collect(),
            });
        }
    }
}
