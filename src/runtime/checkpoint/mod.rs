//! Sandbox checkpoints: what kubelet still needs once Docker has forgotten a
//! sandbox (metadata, port mappings, host-network flag, the config summary),
//! one file per sandbox under `<root>/sandbox/<id>`. Loaded once at startup
//! and cached, so listing sandboxes reads no files.
//!
//! The files are cri-dockerd's `PodSandboxCheckpoint`
//! format with its exact checksum (`format.rs`, `checksum.rs`), so the two
//! tools can share a root directory (`--cri-dockerd-root-directory`):
//!
//! - files cri-dockerd wrote are loaded and never renamed, rewritten or
//!   deleted while valid, except by RemovePodSandbox of their pod (as
//!   cri-dockerd itself does);
//! - files docker-cri writes pass cri-dockerd's checksum, so switching back
//!   keeps the pods too (cri-dockerd deletes checkpoints it finds corrupt).
//!   docker-cri's extra fields (uid, attempt, config, creation time) sit in
//!   a `docker_cri` object that cri-dockerd's decoder ignores and its
//!   checksum does not cover;
//! - files in docker-cri's earlier format (a 64-bit checksum over all of it,
//!   `legacy.rs`) are still read, and rewritten once in the shared format;
//! - anything else is corrupt: reported and set aside as `<id>.corrupt`,
//!   never fatal and never deleted.
//!
//! Writes are atomic (a `.<id>.tmp` file, fsync, rename); names starting
//! with a dot are temporary files of either tool and are never read.

mod checksum;
mod format;
mod legacy;

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::api;
use crate::error::{Error, Result};

pub const CHECKPOINT_VERSION: &str = "v1";
const CORRUPT_SUFFIX: &str = ".corrupt";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortMappingRecord {
    pub protocol: String,
    pub container_port: i32,
    pub host_port: i32,
    #[serde(default)]
    pub host_ip: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointData {
    #[serde(default)]
    pub port_mappings: Vec<PortMappingRecord>,
    #[serde(default)]
    pub host_network: bool,
}

/// A sandbox's checkpoint. The serde form is docker-cri's earlier file
/// format (see `legacy.rs`); files are written by `format::encode`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxCheckpoint {
    pub version: String,
    pub name: String,
    pub namespace: String,
    /// Empty for sandboxes cri-dockerd checkpointed: its format has no uid.
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub attempt: u32,
    pub data: CheckpointData,
    #[serde(default)]
    pub config: serde_json::Value,
    /// Nanoseconds since the epoch, as the sandbox reported it.
    #[serde(default)]
    pub created_at: i64,
    #[serde(default)]
    pub checksum: u64,
}

impl SandboxCheckpoint {
    /// PodSandboxStatus of a sandbox only its checkpoint remembers (Docker
    /// lost the pause container): NOTREADY, no network.
    pub fn not_ready_status(&self, id: &str) -> api::PodSandboxStatus {
        let network = if self.data.host_network {
            api::NamespaceMode::Node
        } else {
            api::NamespaceMode::Pod
        };
        api::PodSandboxStatus {
            id: id.to_string(),
            metadata: Some(api::PodSandboxMetadata {
                name: self.name.clone(),
                namespace: self.namespace.clone(),
                uid: self.uid.clone(),
                attempt: self.attempt,
            }),
            state: api::PodSandboxState::SandboxNotready as i32,
            created_at: self.created_at,
            linux: Some(api::LinuxPodSandboxStatus {
                namespaces: Some(api::Namespace {
                    options: Some(api::NamespaceOption {
                        network: network as i32,
                        ..Default::default()
                    }),
                }),
            }),
            ..Default::default()
        }
    }

    /// The verbose `info` of such a status.
    pub fn verbose_info(&self) -> serde_json::Value {
        serde_json::json!({
            "checkpointOnly": true,
            "config": self.config,
            "portMappings": self.data.port_mappings,
            "hostNetwork": self.data.host_network,
        })
    }
}

/// How a file on disk was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// cri-dockerd's format: written by cri-dockerd or by docker-cri.
    Shared,
    /// docker-cri's earlier format.
    Legacy,
}

fn read_checkpoint(path: &Path) -> std::result::Result<(SandboxCheckpoint, Origin), String> {
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
    let shared = format::decode(&bytes);
    if let Ok(decoded) = &shared
        && decoded.verifies()
    {
        let (cp, extras_problem) = format::to_model(decoded.clone());
        if let Some(why) = extras_problem {
            tracing::warn!(
                file = %path.display(),
                %why,
                "using only the cri-dockerd part of a sandbox checkpoint"
            );
        }
        return Ok((cp, Origin::Shared));
    }
    if let Some(cp) = legacy::decode(&bytes) {
        return Ok((cp, Origin::Legacy));
    }
    Err(match shared {
        Ok(_) => "checksum mismatch".into(),
        Err(why) => format!("not a checkpoint: {why}"),
    })
}

pub struct CheckpointStore {
    dir: PathBuf,
    cache: Mutex<HashMap<String, SandboxCheckpoint>>,
}

impl CheckpointStore {
    /// Opens (creating) `<root>/sandbox` and loads every valid checkpoint.
    pub fn open(root: &Path) -> Result<CheckpointStore> {
        let dir = root.join("sandbox");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::internal(format!("creating {}: {e}", dir.display())))?;
        let store = CheckpointStore {
            dir,
            cache: Mutex::new(HashMap::new()),
        };
        let entries = fs::read_dir(&store.dir)
            .map_err(|e| Error::internal(format!("reading {}: {e}", store.dir.display())))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(".tmp") {
                // Leftover temporary file of an interrupted write of ours
                // (cri-dockerd's are `.<digits>`: left alone).
                let _ = fs::remove_file(entry.path());
                continue;
            }
            // Not ours to judge: other tools' temporaries, set-aside files,
            // and directories someone put there.
            if name.starts_with('.')
                || name.ends_with(CORRUPT_SUFFIX)
                || entry.file_type().is_ok_and(|t| t.is_dir())
            {
                continue;
            }
            match read_checkpoint(&entry.path()) {
                Ok((cp, Origin::Shared)) => {
                    store.lock().insert(name, cp);
                }
                Ok((cp, Origin::Legacy)) => {
                    // Our own earlier file: rewrite it so that cri-dockerd
                    // can read it too. Failing that, the old file still works.
                    tracing::info!(file = %entry.path().display(), "upgrading a sandbox checkpoint to the shared format");
                    if let Err(e) = store.write(&name, cp.clone()) {
                        tracing::warn!(error = %e, "keeping the checkpoint in the earlier format");
                        store.lock().insert(name, cp);
                    }
                }
                Err(why) => {
                    let aside = store.dir.join(format!("{name}{CORRUPT_SUFFIX}"));
                    tracing::warn!(
                        file = %entry.path().display(),
                        %why,
                        moved_to = %aside.display(),
                        "ignoring an unreadable sandbox checkpoint"
                    );
                    let _ = fs::rename(entry.path(), aside);
                }
            }
        }
        Ok(store)
    }

    pub fn get(&self, id: &str) -> Option<SandboxCheckpoint> {
        self.lock().get(id).cloned()
    }

    pub fn ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    pub fn snapshot(&self) -> Vec<(String, SandboxCheckpoint)> {
        self.lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Writes `cp` in the shared format (see the module doc).
    pub fn write(&self, id: &str, mut cp: SandboxCheckpoint) -> Result<()> {
        let (bytes, checksum) = format::encode(&cp).map_err(|e| Error::internal(e.to_string()))?;
        cp.version = CHECKPOINT_VERSION.into();
        cp.checksum = checksum;
        let path = self.dir.join(id);
        let tmp = self.dir.join(format!(".{id}.tmp"));
        let io = |e: std::io::Error| {
            Error::internal(format!("writing checkpoint {}: {e}", path.display()))
        };
        {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io)?;
            f.write_all(&bytes).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        fs::rename(&tmp, &path).map_err(io)?;
        if let Ok(d) = fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        self.lock().insert(id.to_string(), cp);
        Ok(())
    }

    pub fn remove(&self, id: &str) -> Result<()> {
        self.lock().remove(id);
        match fs::remove_file(self.dir.join(id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::internal(format!("removing checkpoint of {id}: {e}"))),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SandboxCheckpoint>> {
        // A panic while holding this lock cannot leave the map half-written.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests;
