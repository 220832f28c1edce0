//! Sandbox checkpoints: what kubelet still needs once Docker has forgotten a
//! sandbox (metadata, port mappings, host-network flag, the config summary),
//! kept under `<root>/sandbox/<id>`. Written atomically with a checksum;
//! a corrupt or foreign file (cri-dockerd's checksums differ) is reported
//! and set aside as `<id>.corrupt`, never fatal and never deleted. Loaded once at
//! startup and cached, so listing sandboxes reads no files.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxCheckpoint {
    pub version: String,
    pub name: String,
    pub namespace: String,
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
    /// FNV-1a over the JSON form with the checksum field zeroed.
    fn compute_checksum(&self) -> u64 {
        let mut copy = self.clone();
        copy.checksum = 0;
        let bytes = serde_json::to_vec(&copy).unwrap_or_default();
        bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }
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
        let mut cache = HashMap::new();
        let entries = fs::read_dir(&dir)
            .map_err(|e| Error::internal(format!("reading {}: {e}", dir.display())))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(".tmp") {
                // Leftover temporary file of an interrupted write of ours.
                let _ = fs::remove_file(entry.path());
                continue;
            }
            if name.starts_with('.') || name.ends_with(CORRUPT_SUFFIX) {
                continue;
            }
            match read_checkpoint(&entry.path()) {
                Ok(cp) => {
                    cache.insert(name, cp);
                }
                Err(why) => {
                    let aside = dir.join(format!("{name}{CORRUPT_SUFFIX}"));
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
        Ok(CheckpointStore {
            dir,
            cache: Mutex::new(cache),
        })
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

    pub fn write(&self, id: &str, mut cp: SandboxCheckpoint) -> Result<()> {
        cp.version = CHECKPOINT_VERSION.into();
        cp.checksum = cp.compute_checksum();
        let bytes = serde_json::to_vec(&cp).map_err(|e| Error::internal(e.to_string()))?;
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

fn read_checkpoint(path: &Path) -> std::result::Result<SandboxCheckpoint, String> {
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
    let cp: SandboxCheckpoint =
        serde_json::from_slice(&bytes).map_err(|e| format!("not a checkpoint: {e}"))?;
    if cp.checksum != cp.compute_checksum() {
        return Err("checksum mismatch".into());
    }
    Ok(cp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SandboxCheckpoint {
        SandboxCheckpoint {
            version: String::new(),
            name: "web".into(),
            namespace: "ns".into(),
            uid: "u".into(),
            attempt: 1,
            data: CheckpointData {
                port_mappings: vec![PortMappingRecord {
                    protocol: "tcp".into(),
                    container_port: 80,
                    host_port: 8080,
                    host_ip: String::new(),
                }],
                host_network: false,
            },
            config: serde_json::json!({"hostname": "web"}),
            created_at: 5,
            checksum: 0,
        }
    }

    #[test]
    fn write_reload_remove() {
        let root = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(root.path()).unwrap();
        store.write("abc", sample()).unwrap();
        let reopened = CheckpointStore::open(root.path()).unwrap();
        let cp = reopened.get("abc").unwrap();
        assert_eq!(cp.name, "web");
        assert_eq!(cp.data.port_mappings[0].host_port, 8080);
        assert_eq!(reopened.ids(), vec!["abc".to_string()]);
        reopened.remove("abc").unwrap();
        reopened.remove("abc").unwrap();
        assert!(
            CheckpointStore::open(root.path())
                .unwrap()
                .get("abc")
                .is_none()
        );
    }

    #[test]
    fn corrupt_and_tampered_files_are_set_aside() {
        let root = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(root.path()).unwrap();
        store.write("good", sample()).unwrap();
        store.write("tampered", sample()).unwrap();
        let dir = root.path().join("sandbox");
        let text = fs::read_to_string(dir.join("tampered")).unwrap();
        fs::write(dir.join("tampered"), text.replace("8080", "9090")).unwrap();
        fs::write(dir.join("garbage"), "{not json").unwrap();
        fs::write(dir.join(".half.tmp"), "x").unwrap();
        let reopened = CheckpointStore::open(root.path()).unwrap();
        assert_eq!(reopened.ids(), vec!["good".to_string()]);
        assert!(!dir.join("tampered").exists());
        assert!(dir.join("tampered.corrupt").exists(), "kept for inspection");
        assert!(dir.join("garbage.corrupt").exists());
        assert!(!dir.join(".half.tmp").exists());
        // Set-aside files are not read again.
        assert_eq!(
            CheckpointStore::open(root.path()).unwrap().ids(),
            vec!["good".to_string()]
        );
    }
}
