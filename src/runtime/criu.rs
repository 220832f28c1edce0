//! CheckpointContainer, CheckpointPod and RestorePod.
//!
//! Docker checkpoints one running container through CRIU, behind its
//! experimental API; docker-cri uses that for CheckpointContainer and packs
//! the CRIU images into the tar archive at the `location` kubelet names.
//! Where the daemon lacks experimental mode or the host lacks CRIU, the
//! refusal names each missing piece. Docker has no pod checkpoint and
//! restores only into the container a checkpoint was taken from, so the
//! pod RPCs are refused with that reason.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::runtime::Runtime;

/// CheckpointContainer's deadline when the request gives none.
const DEFAULT_CHECKPOINT_TIMEOUT: Duration = Duration::from_secs(300);

/// Where a CRIU binary is looked for besides `$PATH` (dockerd and runc
/// often run with the sbin directories on theirs while docker-cri's unit
/// may not).
const CRIU_DIRS: &[&str] = &["/usr/local/sbin", "/usr/sbin", "/sbin"];

/// What Docker checkpoints need, as found on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointSupport {
    pub docker_version: String,
    pub experimental: bool,
    /// The criu binary found, or the directories searched.
    pub criu: std::result::Result<PathBuf, Vec<PathBuf>>,
}

impl CheckpointSupport {
    /// Why checkpoints cannot be taken here, naming every missing piece;
    /// `None` when they can.
    pub fn missing(&self) -> Option<String> {
        let mut lacks = Vec::new();
        if !self.experimental {
            lacks.push(format!(
                "Docker {} runs without experimental features (start dockerd with \
                 --experimental, or \"experimental\": true in daemon.json)",
                self.docker_version
            ));
        }
        if let Err(searched) = &self.criu {
            let dirs: Vec<String> = searched.iter().map(|d| d.display().to_string()).collect();
            lacks.push(format!(
                "no criu binary was found (searched {}; install CRIU)",
                dirs.join(":")
            ));
        }
        (!lacks.is_empty()).then(|| {
            format!(
                "CheckpointContainer needs Docker's checkpoint API, which requires experimental \
                 features and CRIU: {}",
                lacks.join("; and ")
            )
        })
    }
}

/// The first executable `criu` in `path_env`'s directories, then the sbin
/// directories; or every directory searched.
pub fn find_criu(path_env: Option<&str>) -> std::result::Result<PathBuf, Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = path_env
        .unwrap_or_default()
        .split(':')
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .collect();
    for d in CRIU_DIRS {
        if !dirs.iter().any(|x| x == Path::new(d)) {
            dirs.push(PathBuf::from(d));
        }
    }
    use std::os::unix::fs::PermissionsExt;
    for dir in &dirs {
        let candidate = dir.join("criu");
        if std::fs::metadata(&candidate)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        {
            return Ok(candidate);
        }
    }
    Err(dirs)
}

/// The archive kubelet's checkpoint API hands out, laid out as CRI-O's and
/// containerd's are (which kubelet's e2e test looks for): CRIU's images
/// under `checkpoint/`, and beside them `files` such as `config.dump` and
/// `spec.dump`. Written at `location` (created anew; its directory must
/// exist). Blocking.
pub fn pack_archive(images: &Path, files: &[(&str, Vec<u8>)], location: &Path) -> Result<()> {
    let io = |what: &str, e: std::io::Error| {
        Error::internal(format!("{what} {}: {e}", location.display()))
    };
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(location)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                Error::AlreadyExists(format!("location {} already exists", location.display()))
            }
            std::io::ErrorKind::NotFound => Error::invalid(format!(
                "location {}: its directory does not exist",
                location.display()
            )),
            _ => io("creating", e),
        })?;
    let mut tar = tar::Builder::new(file);
    tar.follow_symlinks(false);
    let mut packed = tar.append_dir_all("checkpoint", images);
    for (name, bytes) in files {
        if packed.is_err() {
            break;
        }
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        );
        header.set_cksum();
        packed = tar.append_data(&mut header, name, bytes.as_slice());
    }
    let packed = packed
        .and_then(|()| tar.into_inner())
        .and_then(|f| f.sync_all());
    if let Err(e) = packed {
        let _ = std::fs::remove_file(location);
        return Err(io("writing", e));
    }
    Ok(())
}

/// Where Docker's containerd keeps a running container's OCI bundle: the
/// system containerd's, or the one dockerd starts itself.
const BUNDLE_ROOTS: &[&str] = &[
    "/run/containerd/io.containerd.runtime.v2.task/moby",
    "/run/docker/containerd/daemon/io.containerd.runtime.v2.task/moby",
];

/// `config.dump`: Docker's inspect of the container (CRI-O writes its own
/// container config there; Docker's is what describes this container).
/// `spec.dump`: the OCI spec runc ran it with, where its bundle is found.
fn dump_files(
    inspect: &bollard::models::ContainerInspectResponse,
    id: &str,
) -> Vec<(&'static str, Vec<u8>)> {
    let mut files = Vec::new();
    match serde_json::to_vec_pretty(inspect) {
        Ok(json) => files.push(("config.dump", json)),
        Err(e) => tracing::warn!(error = %e, "checkpoint without config.dump"),
    }
    let spec = BUNDLE_ROOTS
        .iter()
        .find_map(|root| std::fs::read(Path::new(root).join(id).join("config.json")).ok());
    match spec {
        Some(spec) => files.push(("spec.dump", spec)),
        None => {
            tracing::warn!("checkpoint without spec.dump: the container's OCI bundle was not found")
        }
    }
    files
}

impl Runtime {
    /// What this host offers for checkpoints, from the cached `docker
    /// info` and a look for criu.
    async fn checkpoint_support(&self) -> Result<CheckpointSupport> {
        let version = self.docker().version().await?;
        let info = self.docker().info().await?;
        let path = std::env::var("PATH").ok();
        Ok(CheckpointSupport {
            docker_version: version.version.clone().unwrap_or_else(|| "?".into()),
            experimental: info.experimental_build.unwrap_or(false),
            criu: find_criu(path.as_deref()),
        })
    }

    pub async fn checkpoint_container(&self, id: &str, location: &str, timeout: i64) -> Result<()> {
        if id.is_empty() {
            return Err(Error::invalid("container_id is required"));
        }
        if location.is_empty() {
            return Err(Error::invalid("location is required"));
        }
        let location = Path::new(location);
        if !location.is_absolute() {
            return Err(Error::invalid(format!(
                "location {} must be an absolute path",
                location.display()
            )));
        }
        if timeout < 0 {
            return Err(Error::invalid("timeout must not be negative"));
        }
        let inspect = self.inspect_managed_container(id).await?;
        let full = inspect.id.clone().unwrap_or_default();
        if let Some(why) = self.checkpoint_support().await?.missing() {
            return Err(Error::FailedPrecondition(why));
        }
        if !inspect
            .state
            .as_ref()
            .and_then(|s| s.running)
            .unwrap_or(false)
        {
            return Err(Error::FailedPrecondition(format!(
                "container {full} is not running: only a running container can be checkpointed"
            )));
        }
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        // Docker writes the images to <dir>/<name>; docker-cri's own
        // directory keeps them off Docker's list of the container's
        // checkpoints and is removed once packed.
        let dir = self
            .config()
            .root_directory
            .join("criu")
            .join(format!("{}-{nanos}", &full[..full.len().min(12)]));
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| Error::internal(format!("creating {}: {e}", dir.display())))?;
        let within = match timeout {
            0 => DEFAULT_CHECKPOINT_TIMEOUT,
            s => Duration::from_secs(s as u64),
        };
        let name = "checkpoint";
        let taken = self
            .docker()
            .create_checkpoint(&full, name, &dir.display().to_string(), within)
            .await;
        let packed = match taken {
            Ok(()) => {
                let files = dump_files(&inspect, &full);
                let (images, location) = (dir.join(name), location.to_path_buf());
                tokio::task::spawn_blocking(move || pack_archive(&images, &files, &location))
                    .await
                    .map_err(|e| Error::internal(format!("checkpoint archive task: {e}")))?
            }
            Err(e) => Err(e.context(format!("checkpointing container {full}"))),
        };
        if let Err(e) = tokio::fs::remove_dir_all(&dir).await {
            tracing::warn!(dir = %dir.display(), error = %e, "leaving a checkpoint directory behind");
        }
        packed?;
        tracing::info!(container = %full, location = %location.display(), "checkpoint written");
        Ok(())
    }

    pub async fn checkpoint_pod(&self) -> Result<()> {
        Err(Error::Unimplemented(
            "CheckpointPod is not offered by docker-cri: Docker has no pod-level checkpoint \
             (its checkpoint API takes one container at a time), and a pod archive could not \
             be restored since RestorePod is not offered either; CheckpointContainer \
             checkpoints single containers where Docker allows"
                .into(),
        ))
    }

    pub async fn restore_pod(&self) -> Result<()> {
        Err(Error::Unimplemented(
            "RestorePod is not offered by docker-cri: Docker restores a checkpoint only into \
             the container it was taken from (docker start --checkpoint), not from an archive \
             into a new pod sandbox"
                .into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn support(experimental: bool, criu: bool) -> CheckpointSupport {
        CheckpointSupport {
            docker_version: "20.10.24".into(),
            experimental,
            criu: if criu {
                Ok(PathBuf::from("/usr/sbin/criu"))
            } else {
                Err(vec![PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
            },
        }
    }

    #[test]
    fn missing_names_each_piece() {
        assert_eq!(support(true, true).missing(), None);
        let neither = support(false, false).missing().unwrap();
        assert!(neither.contains("Docker 20.10.24 runs without experimental features"));
        assert!(neither.contains("no criu binary was found (searched /usr/bin:/usr/sbin"));
        let no_criu = support(true, false).missing().unwrap();
        assert!(!no_criu.contains("experimental features ("), "{no_criu}");
        assert!(no_criu.contains("no criu binary"));
        let no_experimental = support(false, true).missing().unwrap();
        assert!(no_experimental.contains("--experimental"));
        assert!(!no_experimental.contains("criu binary"));
    }

    #[test]
    fn criu_is_found_on_path_or_reported_with_the_search() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("criu");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        let path = format!("/nonexistent:{}", dir.path().display());
        // Not executable: not CRIU.
        assert_ne!(find_criu(Some(&path)), Ok(bin.clone()));
        let empty = tempfile::tempdir().unwrap();
        let only_empty = format!("{}", empty.path().display());
        if let Err(dirs) = find_criu(Some(&only_empty)) {
            assert_eq!(dirs[0], empty.path());
            assert!(dirs.contains(&PathBuf::from("/usr/sbin")));
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_criu(Some(&path)), Ok(bin));
    }

    #[test]
    fn archive_holds_the_images_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("images");
        std::fs::create_dir_all(images.join("sub")).unwrap();
        std::fs::write(images.join("core-1.img"), b"core").unwrap();
        std::fs::write(images.join("sub/pages-1.img"), b"pages").unwrap();
        let location = dir.path().join("out.tar");
        let files = vec![
            ("config.dump", b"{}".to_vec()),
            ("spec.dump", b"{\"ociVersion\":\"1.0.2\"}".to_vec()),
        ];
        pack_archive(&images, &files, &location).unwrap();
        let mut archive = tar::Archive::new(std::fs::File::open(&location).unwrap());
        let entries: Vec<(String, Vec<u8>)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = e.path().unwrap().display().to_string();
                let mut body = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut body).unwrap();
                (name, body)
            })
            .collect();
        let find = |n: &str| {
            entries
                .iter()
                .find(|(name, _)| name == n)
                .map(|(_, b)| b.clone())
        };
        // The names kubelet's e2e test looks for in a checkpoint archive.
        assert_eq!(find("checkpoint/core-1.img"), Some(b"core".to_vec()));
        assert_eq!(find("checkpoint/sub/pages-1.img"), Some(b"pages".to_vec()));
        assert_eq!(find("config.dump"), Some(b"{}".to_vec()));
        assert_eq!(find("spec.dump"), Some(files[1].1.clone()));
        let again = pack_archive(&images, &files, &location).unwrap_err();
        assert!(matches!(again, Error::AlreadyExists(_)), "{again}");
        let nowhere = pack_archive(&images, &[], &dir.path().join("no/such/dir.tar")).unwrap_err();
        assert!(matches!(nowhere, Error::InvalidArgument(_)), "{nowhere}");
    }
}
