//! Where Docker keeps its layers, and how much they use: a walk of the
//! layer directories, or statvfs of the filesystem holding them.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bollard::models::SystemInfo;

use crate::api;
use crate::error::{Error, Result};

const DEFAULT_DOCKER_ROOT: &str = "/var/lib/docker";
/// containerd's default root, where Docker's containerd image store keeps
/// its snapshots when Docker uses the system containerd.
const CONTAINERD_ROOT: &str = "/var/lib/containerd";

pub use crate::stats::du::Usage;
use crate::stats::du::walk;

#[derive(Debug, Clone)]
pub struct FsUsage {
    pub mountpoint: PathBuf,
    pub images: Usage,
    pub containers: Usage,
    pub timestamp_ns: i64,
    pub(super) taken: Instant,
}

impl FsUsage {
    pub(super) fn new(mountpoint: PathBuf, images: Usage, containers: Usage) -> FsUsage {
        FsUsage {
            mountpoint,
            images,
            containers,
            timestamp_ns: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i64),
            taken: Instant::now(),
        }
    }

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

/// Where Docker keeps its layers, as `docker info` tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerStore {
    /// A graph driver: layers under `<root>/<driver>`, container layers
    /// named by `<root>/image/<driver>/layerdb/mounts`.
    GraphDriver { root: PathBuf, driver: String },
    /// Docker 26+'s containerd image store (`features.containerd-snapshotter`):
    /// layers are containerd snapshots under containerd's root — the system
    /// containerd's, or the one dockerd runs itself under its own root. The
    /// first candidate that exists is measured, all of it as image storage
    /// (which snapshots are containers' is in containerd's database).
    Snapshotter { candidates: Vec<PathBuf> },
}

/// Reads the layer store from `docker info`: `DriverStatus` has
/// `driver-type: io.containerd.snapshotter.v1` under the containerd image
/// store, and `Driver` names the snapshotter.
pub fn layer_store(info: &SystemInfo) -> LayerStore {
    let root = PathBuf::from(
        info.docker_root_dir
            .as_deref()
            .filter(|r| !r.is_empty())
            .unwrap_or(DEFAULT_DOCKER_ROOT),
    );
    let driver = info.driver.clone().unwrap_or_default();
    let snapshotter = info.driver_status.iter().flatten().any(|pair| {
        matches!(pair.as_slice(), [key, value]
            if key == "driver-type" && value == "io.containerd.snapshotter.v1")
    });
    if !snapshotter {
        return LayerStore::GraphDriver { root, driver };
    }
    let name = if driver.is_empty() {
        "overlayfs"
    } else {
        driver.as_str()
    };
    let dir = format!("io.containerd.snapshotter.v1.{name}");
    LayerStore::Snapshotter {
        candidates: vec![
            Path::new(CONTAINERD_ROOT).join(&dir),
            root.join("containerd").join("daemon").join(&dir),
        ],
    }
}

impl LayerStore {
    /// Walks the store. Blocking; may take minutes on a large store.
    pub fn measure(&self) -> Result<FsUsage> {
        match self {
            LayerStore::GraphDriver { root, driver } => measure_layers(root, driver),
            LayerStore::Snapshotter { .. } => {
                let dir = self.directory()?;
                let device = fs::metadata(&dir).map(|m| m.dev()).unwrap_or(0);
                let images = walk(&dir, device, &mut HashSet::new());
                Ok(FsUsage::new(dir, images, Usage::default()))
            }
        }
    }

    /// The statvfs figure of the filesystem holding the store: one syscall.
    pub fn estimate(&self) -> Result<FsUsage> {
        let dir = self.directory()?;
        let stat = nix::sys::statvfs::statvfs(&dir)
            .map_err(|e| Error::FailedPrecondition(format!("statvfs {}: {e}", dir.display())))?;
        let images = Usage {
            bytes: (stat.blocks() as u64).saturating_sub(stat.blocks_free() as u64)
                * stat.fragment_size() as u64,
            inodes: (stat.files() as u64).saturating_sub(stat.files_free() as u64),
        };
        Ok(FsUsage::new(dir, images, Usage::default()))
    }

    /// The directory measured, which is also the reported mountpoint.
    fn directory(&self) -> Result<PathBuf> {
        match self {
            LayerStore::GraphDriver { root, driver } => {
                let layers = root.join(driver);
                Ok(if !driver.is_empty() && layers.is_dir() {
                    layers
                } else {
                    root.clone()
                })
            }
            LayerStore::Snapshotter { candidates } => candidates
                .iter()
                .find(|c| c.is_dir())
                .cloned()
                .ok_or_else(|| {
                    let tried: Vec<String> =
                        candidates.iter().map(|c| c.display().to_string()).collect();
                    Error::FailedPrecondition(format!(
                        "Docker uses the containerd image store, but its snapshots are in none of {}",
                        tried.join(", ")
                    ))
                }),
        }
    }
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
    Ok(FsUsage::new(mountpoint, images, containers))
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

    fn info(json: &str) -> SystemInfo {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_containerd_image_store_is_detected_from_docker_info() {
        // `docker info` of Docker 27 with features.containerd-snapshotter.
        let snapshotter = info(
            r#"{"Driver":"overlayfs","DockerRootDir":"/data/docker",
                "DriverStatus":[["driver-type","io.containerd.snapshotter.v1"]]}"#,
        );
        assert_eq!(
            layer_store(&snapshotter),
            LayerStore::Snapshotter {
                candidates: vec![
                    PathBuf::from("/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs"),
                    PathBuf::from(
                        "/data/docker/containerd/daemon/io.containerd.snapshotter.v1.overlayfs"
                    ),
                ]
            }
        );
        let graph = info(
            r#"{"Driver":"overlay2","DockerRootDir":"/var/lib/docker",
                "DriverStatus":[["Backing Filesystem","extfs"],["Supports d_type","true"]]}"#,
        );
        assert_eq!(
            layer_store(&graph),
            LayerStore::GraphDriver {
                root: PathBuf::from("/var/lib/docker"),
                driver: "overlay2".into()
            }
        );
        // Nothing reported: Docker's defaults, not a panic.
        assert_eq!(
            layer_store(&info("{}")),
            LayerStore::GraphDriver {
                root: PathBuf::from(DEFAULT_DOCKER_ROOT),
                driver: String::new()
            }
        );
    }

    #[test]
    fn snapshotter_store_is_measured_where_the_snapshots_are() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        write(&r.join("managed/snapshots/1/fs/bin/busybox"), 32 * 1024);
        let store = LayerStore::Snapshotter {
            candidates: vec![r.join("absent"), r.join("managed")],
        };
        let u = store.measure().unwrap();
        assert_eq!(u.mountpoint, r.join("managed"));
        // managed, snapshots, 1, fs, bin, busybox
        assert_eq!(u.images.inodes, 6);
        assert!(u.images.bytes >= 32 * 1024, "{u:?}");
        assert_eq!(u.containers, Usage::default());

        let missing = LayerStore::Snapshotter {
            candidates: vec![r.join("absent")],
        };
        let err = missing.measure().unwrap_err();
        assert!(err.to_string().contains("absent"), "{err}");
    }

    #[test]
    fn the_estimate_is_the_filesystem_usage() {
        let root = tempfile::tempdir().unwrap();
        write(&root.path().join("overlay2/l/x"), 4096);
        let store = LayerStore::GraphDriver {
            root: root.path().to_path_buf(),
            driver: "overlay2".into(),
        };
        let estimate = store.estimate().unwrap();
        assert_eq!(estimate.mountpoint, root.path().join("overlay2"));
        let walked = store.measure().unwrap();
        // The whole filesystem holds at least what the walk found.
        assert!(estimate.images.bytes >= walked.images.bytes, "{estimate:?}");
        assert!(
            estimate.images.inodes >= walked.images.inodes,
            "{estimate:?}"
        );
    }
}
