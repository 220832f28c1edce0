//! RemovePodSandbox: retry a CNI DEL that StopPodSandbox could not finish,
//! force-remove the pod's containers and the pause container, and forget
//! the sandbox. Idempotent, also when concurrent.

use futures_util::future::join_all;

use super::SandboxRef;
use super::network::netns_path;
use crate::error::Result;
use crate::runtime::Runtime;

impl Runtime {
    pub async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        let Some(sandbox) = self.find_sandbox(id).await? else {
            return self.teardown_cni(id, "").await;
        };
        let id = sandbox.id().to_string();
        let netns = match sandbox {
            SandboxRef::Docker(mut managed) if self.cni().is_some() => self
                .take_inspect(&mut managed)
                .await?
                .map(|inspect| netns_path(&inspect))
                .unwrap_or_default(),
            _ => String::new(),
        };
        // Nothing is removed while DEL fails: the pod's addresses and
        // rules would leak with no record left to free them.
        self.teardown_cni(&id, &netns).await?;
        let containers = self.sandbox_container_ids(&id).await?;
        let removed = join_all(containers.iter().map(|c| self.docker().remove_container(c))).await;
        for (c, r) in containers.iter().zip(removed) {
            match r {
                Ok(()) => self.index.forget(c),
                Err(e) => {
                    self.reread(&[c]).await;
                    return Err(e.context("removing a container of the pod"));
                }
            }
        }
        // Their log files stay for kubelet, which removes the pod's log
        // directory; docker-cri's state for them goes.
        for c in &containers {
            self.forget_container_log(c, None).await;
        }
        self.docker()
            .remove_container(&id)
            .await
            .map_err(|e| e.context("removing the pause container"))?;
        self.index.forget(&id);
        self.forget_checkpoint(&id).await?;
        tracing::info!(sandbox = %id, "pod sandbox removed");
        Ok(())
    }
}
