//! Disk usage of Docker's image store and of container writable layers, for
//! ImageFsInfo. Measuring walks the layer directories, so it never happens on
//! every call: the last sample is served, and a stale one is refreshed in the
//! background (stale-while-revalidate) at most once per interval.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Mutex;

use crate::api;
use crate::docker::DockerClient;
use crate::error::{Error, Result};

pub use crate::stats::du::Usage;
use crate::stats::du::walk;

#[derive(Debug, Clone)]
pub struct FsUsage {
    pub mountpoint: PathBuf,
    pub images: Usage,
    pub containers: Usage,
    pub timestamp_ns: i64,
    taken: Instant,
}

impl FsUsage {
    pub fn to_response(&self) -> api::ImageFsInfoResponse {
        let usage = |u: Usage| api::FilesystemUsage {
            timestamp: self.timestamp_ns,
            fs_id: Some(api::FilesystemIdentifier {
                mountpoint: self.mountpoint.to_string_lossy().into_owned(),
            }),
            used_bytes: Some(api::UInt64Value { value: u.bytes }),
            inodes_used: Some(api::UInt64Value { value: u.inodes }),
        };
        api::ImageFsInfoResponse {
            image_filesystems: vec![usage(self.images)],
            container_filesystems: vec![usage(self.containers)],
        }
    }
}

#[derive(Default)]
struct State {
    sample: Option<Arc<FsUsage>>,
    /// A measurement task is running.
    measuring: bool,
    /// How the last measurement failed, for callers waiting on it.
    last_error: Option<(bool, String)>,
}

pub struct FsUsageSampler {
    docker: Arc<DockerClient>,
    interval: Duration,
    state: Arc<Mutex<State>>,
    measured: Arc<tokio::sync::Notify>,
}

impl FsUsageSampler {
    pub fn new(docker: Arc<DockerClient>, interval: Duration) -> Self {
        FsUsageSampler {
            docker,
            interval,
            state: Arc::new(Mutex::new(State::default())),
            measured: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// The latest sample. Measuring runs on its own task, at most one at a
    /// time, and survives callers that give up; a stale sample is served
    /// while a fresh one is taken.
    pub async fn latest(&self) -> Result<Arc<FsUsage>> {
        loop {
            let measured = self.measured.notified();
            {
                let mut state = self.state.lock().await;
                if let Some(sample) = state.sample.clone() {
                    if sample.taken.elapsed() >= self.interval && !state.measuring {
                        self.start_measuring(&mut state);
                    }
                    return Ok(sample);
                }
                if let Some((unavailable, message)) = state.last_error.take() {
                    return Err(if unavailable {
                        Error::DockerUnavailable(message)
                    } else {
                        Error::FailedPrecondition(message)
                    });
                }
                if !state.measuring {
                    self.start_measuring(&mut state);
                }
            }
            measured.await;
        }
    }

    fn start_measuring(&self, state: &mut State) {
        state.measuring = true;
        let (docker, shared, measured) = (
            self.docker.clone(),
            self.state.clone(),
            self.measured.clone(),
        );
        tokio::spawn(async move {
            let result = measure(&docker).await;
            let mut state = shared.lock().await;
            state.measuring = false;
            match result {
                Ok(sample) => state.sample = Some(Arc::new(sample)),
                Err(e) => {
                    tracing::warn!(error = %e, "measuring image filesystem usage failed");
                    state.last_error =
                        Some((matches!(e, Error::DockerUnavailable(_)), e.to_string()));
                }
            }
            drop(state);
            measured.notify_waiters();
        });
    }
}

async fn measure(docker: &DockerClient) -> Result<FsUsage> {
    let info = docker.info().await?;
    let root = PathBuf::from(
        info.docker_root_dir
            .unwrap_or_else(|| "/var/lib/docker".into()),
    );
    let driver = info.driver.unwrap_or_default();
    tokio::task::spawn_blocking(move || measure_layers(&root, &driver))
        .await
        .map_err(|e| Error::internal(format!("measuring image filesystem: {e}")))?
}

/// Splits `<root>/<driver>` into container writable layers and everything
/// else, which is image layers. A container's writable layer is the `diff`
/// directory of its mount (the layer store's `mounts/*/mount-id`): exactly
/// what ContainerStats reports as its writable layer, so the two agree. The
/// rest of a container's layer directory (overlay's work dir, the init layer
/// Docker derives from the image) counts with the images.
pub fn measure_layers(root: &Path, driver: &str) -> Result<FsUsage> {
    let layers_dir = root.join(driver);
    let (mountpoint, scan_dir) = if !driver.is_empty() && layers_dir.is_dir() {
        (layers_dir.clone(), layers_dir)
    } else {
        // Drivers without a per-driver directory (e.g. containerd's image
        // store): count Docker's whole root as image storage.
        (root.to_path_buf(), root.to_path_buf())
    };
    let container_layers = container_layer_ids(&root.join("image").join(driver));
    let entries = fs::read_dir(&scan_dir).map_err(|e| {
        Error::FailedPrecondition(format!(
            "cannot read Docker's storage at {}: {e}",
            scan_dir.display()
        ))
    })?;
    let mut images = Usage::default();
    let mut containers = Usage::default();
    let mut seen = HashSet::new();
    // Running containers' `merged` overlay mounts show their whole root
    // filesystem; staying on one device keeps them out.
    let device = fs::metadata(&scan_dir).map(|m| m.dev()).unwrap_or(0);
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let is_container = container_layers.contains(&name) && path.join("diff").is_dir();
        if !is_container {
            images += walk(&path, device, &mut seen);
            continue;
        }
        // The layer directory's own inode, then its parts.
        images += Usage {
            bytes: fs::symlink_metadata(&path).map_or(0, |m| m.blocks() * 512),
            inodes: 1,
        };
        for part in fs::read_dir(&path).into_iter().flatten().flatten() {
            let usage = walk(&part.path(), device, &mut seen);
            if part.file_name() == "diff" {
                containers += usage;
            } else {
                images += usage;
            }
        }
    }
    Ok(FsUsage {
        mountpoint,
        images,
        containers,
        timestamp_ns: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64),
        taken: Instant::now(),
    })
}

/// The layers of containers' writable mounts (not their init layers).
fn container_layer_ids(layer_store: &Path) -> HashSet<String> {
    let mut ids = HashSet::new();
    let Ok(mounts) = fs::read_dir(layer_store.join("layerdb").join("mounts")) else {
        return ids;
    };
    for mount in mounts.flatten() {
        if let Ok(id) = fs::read_to_string(mount.path().join("mount-id")) {
            ids.insert(id.trim().to_string());
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, bytes: usize) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, vec![7u8; bytes]).unwrap();
    }

    #[test]
    fn splits_image_and_container_layers() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        write(&r.join("overlay2/imagelayer/diff/big"), 64 * 1024);
        write(&r.join("overlay2/ctrlayer/diff/small"), 4096);
        write(&r.join("overlay2/ctrlayer-init/diff/x"), 10);
        write(&r.join("image/overlay2/layerdb/mounts/c1/mount-id"), 0);
        fs::write(
            r.join("image/overlay2/layerdb/mounts/c1/mount-id"),
            "ctrlayer",
        )
        .unwrap();
        fs::write(
            r.join("image/overlay2/layerdb/mounts/c1/init-id"),
            "ctrlayer-init\n",
        )
        .unwrap();

        let u = measure_layers(r, "overlay2").unwrap();
        assert_eq!(u.mountpoint, r.join("overlay2"));
        // The container figure is its writable layer (`diff`), measured as
        // the writable-layer stats measure it.
        let writable = crate::stats::du::measure(&r.join("overlay2/ctrlayer/diff")).unwrap();
        assert_eq!(u.containers, writable);
        assert!(u.containers.bytes >= 4096, "{u:?}");
        assert!(u.images.bytes >= 64 * 1024, "{u:?}");
        // diff dir and its file
        assert_eq!(u.containers.inodes, 2);
        // imagelayer, diff, big; ctrlayer itself; the init layer, its diff, x
        assert_eq!(u.images.inodes, 7);

        let resp = u.to_response();
        assert_eq!(resp.image_filesystems.len(), 1);
        assert_eq!(resp.container_filesystems.len(), 1);
        assert_eq!(
            resp.image_filesystems[0].fs_id.as_ref().unwrap().mountpoint,
            r.join("overlay2").to_string_lossy()
        );
    }

    #[test]
    fn hard_links_count_once() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        write(&r.join("vfs/a/file"), 8192);
        fs::create_dir_all(r.join("vfs/b")).unwrap();
        fs::hard_link(r.join("vfs/a/file"), r.join("vfs/b/link")).unwrap();
        let u = measure_layers(r, "vfs").unwrap();
        assert_eq!(u.images.inodes, 3);
        assert!(u.images.bytes < 2 * 8192 + 8192);
    }

    #[test]
    fn unreadable_root_is_a_clear_error() {
        let err = measure_layers(Path::new("/nonexistent/docker"), "overlay2").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/docker"));
    }
}
