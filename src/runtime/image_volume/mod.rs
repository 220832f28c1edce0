//! Image volumes (`Mount.image`) on Docker older than 28, which has no
//! image mounts of its own: docker-cri unpacks the image's filesystem once
//! per image ID (Docker's export of a created, never started container)
//! into `<root>/image-volumes/<id>/rootfs`, bind-mounts that read-only,
//! nosuid and nodev at `<id>/mnt`, and gives containers a bind of the mount
//! point. Not noexec: critest's image volume spec runs a binary from the
//! volume (as containerd and CRI-O allow).
//!
//! That bind is handed to Docker as *read-write*: runc remounts read-only
//! binds, and its remount clears the source's nosuid/nodev; a plain bind
//! keeps every flag of the (read-only) source mount, so the container sees
//! `ro,nosuid,nodev`. A request for a writable image volume is refused.
//!
//! An unpacked image is in use while a docker-cri container (in any state)
//! binds it, or while a CreateContainer is between unpacking and creating;
//! RemoveImage refuses an image in use, and unused copies are removed
//! after RemoveContainer and before RemoveImage.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bollard::models::ContainerSummaryStateEnum;

use crate::api;
use crate::error::{Error, Result};
use crate::mapping::image_ref::ImageLookup;
use crate::mapping::info::{ApiVersion, IMAGE_MOUNT_API_VERSION};
use crate::runtime::Runtime;
use crate::runtime::host::KeyedLocks;

/// Labels the containers [`Runtime::export_image`] creates (value: the
/// image ID); what the startup sweep looks for.
const EXPORT_LABEL: &str = "io.docker-cri.image-volume-export";

/// Between attempts to list export containers while Docker is down.
const SWEEP_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// The unpacked images and who is about to use them.
pub(crate) struct ImageVolumes {
    dir: PathBuf,
    locks: KeyedLocks,
    /// Image IDs (hex) a CreateContainer has unpacked but not yet created
    /// its container for: not to be collected meanwhile.
    pending: Mutex<HashMap<String, usize>>,
}

/// Holds unpacked images against collection until dropped (after the
/// container that binds them exists).
pub(crate) struct Pending<'a> {
    volumes: &'a ImageVolumes,
    ids: Vec<String>,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        let mut pending = self
            .volumes
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for id in &self.ids {
            if let Some(n) = pending.get_mut(id) {
                *n -= 1;
                if *n == 0 {
                    pending.remove(id);
                }
            }
        }
    }
}

/// The hex of an image ID (`sha256:<64 hex>`), safe as a directory name.
fn id_hex(id: &str) -> Result<String> {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hex.to_ascii_lowercase())
    } else {
        Err(Error::internal(format!("unexpected image ID {id:?}")))
    }
}

/// Whether the CRI mount is an image volume.
fn is_image(m: &api::Mount) -> bool {
    m.image.as_ref().is_some_and(|i| !i.image.is_empty())
}

/// Image mounts as the binds they will become, for validating a request
/// before anything is unpacked: Docker 28 takes them as they are.
pub(crate) fn stand_ins(mounts: &[api::Mount], api: ApiVersion) -> Result<Vec<api::Mount>> {
    if api >= IMAGE_MOUNT_API_VERSION {
        return Ok(mounts.to_vec());
    }
    mounts
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if !is_image(m) {
                return Ok(m.clone());
            }
            check_sub_path(&format!("mounts[{i}]"), m)?;
            Ok(as_bind(m, Path::new("/image-volume")))
        })
        .collect()
}

fn check_sub_path(field: &str, m: &api::Mount) -> Result<()> {
    if !m.readonly {
        return Err(Error::invalid(format!(
            "{field}: an image volume is read-only; readonly must be true"
        )));
    }
    let sub = m.image_sub_path.as_str();
    if sub.starts_with('/') || sub.split('/').any(|s| s == "..") || sub.contains('\0') {
        return Err(Error::invalid(format!(
            "{field}.image_sub_path {sub:?} must be relative and stay inside the image"
        )));
    }
    if !m.host_path.is_empty() {
        return Err(Error::invalid(format!(
            "{field}: an image mount takes no host_path (got {:?})",
            m.host_path
        )));
    }
    Ok(())
}

/// The bind a container gets for an image volume whose source is `source`
/// (see the module note on why read-write).
fn as_bind(m: &api::Mount, source: &Path) -> api::Mount {
    api::Mount {
        container_path: m.container_path.clone(),
        host_path: source.display().to_string(),
        readonly: false,
        propagation: api::MountPropagation::PropagationPrivate as i32,
        ..Default::default()
    }
}

/// Whether `path` is a mount point, from `/proc/self/mountinfo` (a bind
/// of the same file system has the same device, so `stat` cannot tell).
fn is_mount_point(path: &Path) -> bool {
    let wanted = path
        .display()
        .to_string()
        .replace('\\', "\\134")
        .replace(' ', "\\040")
        .replace('\t', "\\011")
        .replace('\n', "\\012");
    std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|info| {
        info.lines()
            .any(|l| l.split(' ').nth(4) == Some(wanted.as_str()))
    })
}

/// `rootfs` bind-mounted at `mnt`, then made read-only, nosuid and nodev.
/// Blocking.
fn mount_read_only(rootfs: &Path, mnt: &Path) -> Result<()> {
    use nix::mount::{MsFlags, mount};
    let fail = |what: &str, e: nix::Error| {
        Error::internal(format!(
            "{what} {} at {}: {e}",
            rootfs.display(),
            mnt.display()
        ))
    };
    mount(
        Some(rootfs),
        mnt,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| fail("bind-mounting", e))?;
    let flags = MsFlags::MS_REMOUNT
        | MsFlags::MS_BIND
        | MsFlags::MS_RDONLY
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV;
    if let Err(e) = mount(None::<&str>, mnt, None::<&str>, flags, None::<&str>) {
        let _ = nix::mount::umount2(mnt, nix::mount::MntFlags::MNT_DETACH);
        return Err(fail("making read-only", e));
    }
    Ok(())
}

/// Whether an export container is a leftover to sweep: created at least
/// `min_age` before `now` (Unix seconds, as Docker reports `Created`) and
/// not running. One in any other or an unknown state, or of unknown age,
/// is left alone.
fn is_stale_export(
    state: Option<ContainerSummaryStateEnum>,
    created: Option<i64>,
    now: i64,
    min_age: std::time::Duration,
) -> bool {
    use ContainerSummaryStateEnum as S;
    let stopped = matches!(state, Some(S::CREATED | S::EXITED | S::DEAD));
    let min_age = i64::try_from(min_age.as_secs()).unwrap_or(i64::MAX);
    stopped && created.is_some_and(|c| now.saturating_sub(c) >= min_age)
}

/// Unpacks Docker's export `tar` into `dest` (created), keeping modes and
/// owners. Device nodes come out as empty files: the mount is nodev.
/// Blocking.
fn unpack(tar: &Path, dest: &Path) -> Result<()> {
    // tar's errors name the entry and keep the cause as their source.
    let fail = |e: std::io::Error| {
        let cause = std::error::Error::source(&e)
            .map(|c| format!(": {c}"))
            .unwrap_or_default();
        Error::internal(format!(
            "unpacking {} into {}: {e}{cause}",
            tar.display(),
            dest.display()
        ))
    };
    std::fs::create_dir_all(dest).map_err(fail)?;
    let file = std::fs::File::open(tar).map_err(fail)?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    archive.unpack(dest).map_err(fail)
}

impl ImageVolumes {
    pub fn new(root: &Path) -> ImageVolumes {
        // Docker reports bind sources resolved: so must the store's path
        // be, for containers' binds to be recognised as its.
        let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        ImageVolumes {
            dir: root.join("image-volumes"),
            locks: KeyedLocks::default(),
            pending: Mutex::new(HashMap::new()),
        }
    }

    fn entry(&self, hex: &str) -> PathBuf {
        self.dir.join(hex)
    }

    /// The image (hex ID) an unpacked-volume bind source belongs to.
    fn image_of_source(&self, source: &str) -> Option<String> {
        let rest = Path::new(source).strip_prefix(&self.dir).ok()?;
        let first = rest.components().next()?;
        Some(first.as_os_str().to_string_lossy().into_owned())
    }

    /// Status mounts that bind an unpacked image, reported as the image
    /// volumes they are: the image by ID (what PullImage answered) as
    /// `image` and `image_ref`, and the sub path.
    pub fn describe(&self, mounts: &mut [api::Mount]) {
        for m in mounts {
            let Ok(rest) = Path::new(&m.host_path).strip_prefix(&self.dir) else {
                continue;
            };
            let mut parts = rest.components();
            let (Some(hex), Some(mnt)) = (parts.next(), parts.next()) else {
                continue;
            };
            if mnt.as_os_str() != "mnt" {
                continue;
            }
            let id = format!("sha256:{}", hex.as_os_str().to_string_lossy());
            m.image_sub_path = parts.as_path().display().to_string();
            m.image = Some(api::ImageSpec {
                image: id.clone(),
                image_ref: id,
                ..Default::default()
            });
            m.host_path.clear();
            m.readonly = true;
        }
    }

    fn pend(&self, hex: &str) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        *pending.entry(hex.to_string()).or_default() += 1;
    }

    fn is_pending(&self, hex: &str) -> bool {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(hex)
    }
}

impl Runtime {
    /// The mounts with each image volume turned into a bind of its unpacked
    /// copy (unpacking it first if need be), and a guard holding those
    /// copies until the container exists. Docker 28 mounts images itself:
    /// the mounts are returned as they are.
    pub(crate) async fn unpack_image_volumes(
        &self,
        mounts: &[api::Mount],
        api: ApiVersion,
    ) -> Result<(Vec<api::Mount>, Pending<'_>)> {
        let mut guard = Pending {
            volumes: &self.image_volumes,
            ids: Vec::new(),
        };
        if api >= IMAGE_MOUNT_API_VERSION || !mounts.iter().any(is_image) {
            return Ok((mounts.to_vec(), guard));
        }
        let mut out = Vec::with_capacity(mounts.len());
        for (i, m) in mounts.iter().enumerate() {
            let Some(image) = m.image.as_ref().filter(|_| is_image(m)) else {
                out.push(m.clone());
                continue;
            };
            let field = format!("mounts[{i}]");
            check_sub_path(&field, m)?;
            let lookup = ImageLookup::parse(&image.image)
                .map_err(|e| e.context(format!("{field}.image")))?;
            let id = self
                .docker()
                .inspect_image(&lookup.docker_key())
                .await?
                .and_then(|i| i.id)
                .ok_or_else(|| {
                    Error::not_found(format!(
                        "{field}: image {:?} is not present; pull it first",
                        image.image
                    ))
                })?;
            let hex = id_hex(&id)?;
            // Pending before unpacking: a collection between here and the
            // container's creation must leave this copy alone.
            self.image_volumes.pend(&hex);
            guard.ids.push(hex.clone());
            let mnt = self.ensure_unpacked(&id, &hex).await?;
            let source = if m.image_sub_path.is_empty() {
                mnt
            } else {
                // Symlinks inside the image must not lead the bind out of it.
                let real = tokio::fs::canonicalize(mnt.join(&m.image_sub_path))
                    .await
                    .map_err(|e| {
                        Error::invalid(format!(
                            "{field}.image_sub_path {:?} in image {:?}: {e}",
                            m.image_sub_path, image.image
                        ))
                    })?;
                if !real.starts_with(&mnt) {
                    return Err(Error::invalid(format!(
                        "{field}.image_sub_path {:?} leads out of the image",
                        m.image_sub_path
                    )));
                }
                real
            };
            out.push(as_bind(m, &source));
        }
        Ok((out, guard))
    }

    /// `<root>/image-volumes/<hex>/mnt`, unpacked and mounted once per
    /// image ID.
    async fn ensure_unpacked(&self, id: &str, hex: &str) -> Result<PathBuf> {
        let volumes = &self.image_volumes;
        let _lock = volumes.locks.lock(hex).await;
        let entry = volumes.entry(hex);
        let (rootfs, mnt) = (entry.join("rootfs"), entry.join("mnt"));
        if is_mount_point(&mnt) {
            return Ok(mnt);
        }
        let io = |what: &str, p: &Path, e: std::io::Error| {
            Error::internal(format!("{what} {}: {e}", p.display()))
        };
        // `rootfs` appears (by rename) only once complete: a host reboot
        // leaves it unmounted, a crash mid-unpack leaves only `unpacking`.
        if !rootfs.is_dir() {
            let staging = entry.join("unpacking");
            let _ = tokio::fs::remove_dir_all(&staging).await;
            tokio::fs::create_dir_all(&staging)
                .await
                .map_err(|e| io("creating", &staging, e))?;
            let tar = staging.join("export.tar");
            self.export_image(id, hex, &tar).await?;
            let tree = staging.join("rootfs");
            let (t, d) = (tar.clone(), tree.clone());
            tokio::task::spawn_blocking(move || unpack(&t, &d))
                .await
                .map_err(|e| Error::internal(format!("unpack task: {e}")))??;
            tokio::fs::rename(&tree, &rootfs)
                .await
                .map_err(|e| io("moving into place", &rootfs, e))?;
            let _ = tokio::fs::remove_dir_all(&staging).await;
            tracing::info!(image = %id, dir = %rootfs.display(), "image unpacked for image volumes");
        }
        tokio::fs::create_dir_all(&mnt)
            .await
            .map_err(|e| io("creating", &mnt, e))?;
        let (r, m) = (rootfs.clone(), mnt.clone());
        tokio::task::spawn_blocking(move || mount_read_only(&r, &m))
            .await
            .map_err(|e| Error::internal(format!("mount task: {e}")))??;
        Ok(mnt)
    }

    /// The image's filesystem as Docker exports it, through a container
    /// created (never started) for the purpose and removed after.
    async fn export_image(&self, id: &str, hex: &str, tar: &Path) -> Result<()> {
        let name = format!(
            "docker-cri-image-volume-{}-{}",
            &hex[..12],
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        let body = bollard::models::ContainerCreateBody {
            image: Some(id.to_string()),
            // Never run; Docker only wants something to create.
            entrypoint: Some(vec!["/docker-cri-image-volume".into()]),
            cmd: Some(Vec::new()),
            network_disabled: Some(true),
            labels: Some(HashMap::from([(EXPORT_LABEL.to_string(), id.to_string())])),
            ..Default::default()
        };
        let container = self
            .docker()
            .create_container(&name, body)
            .await
            .map_err(|e| e.context(format!("creating a container to export image {id}")))?;
        let exported = self.docker().export_container(&container, tar).await;
        if let Err(e) = self.docker().remove_container(&container).await {
            tracing::warn!(container = %container, error = %e, "export container left behind");
        }
        exported.map_err(|e| e.context(format!("exporting image {id}")))
    }

    /// Removes the export containers a docker-cri killed mid-export left
    /// behind: labelled [`EXPORT_LABEL`], not running, and older than the
    /// configured age. Runs once at startup, waiting for Docker if it is
    /// down; a failed removal is logged and left for the next start.
    pub async fn sweep_image_volume_exports(&self) {
        let filter = vec![EXPORT_LABEL.to_string()];
        let mut warned = false;
        let list = loop {
            match self.docker().list_containers(&filter).await {
                Ok(list) => break list,
                Err(e @ (Error::DockerUnavailable(_) | Error::DeadlineExceeded { .. })) => {
                    if !warned {
                        tracing::warn!(error = %e, "cannot list image volume export containers; retrying");
                        warned = true;
                    }
                    tokio::time::sleep(SWEEP_RETRY).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "image volume export sweep skipped");
                    return;
                }
            }
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let min_age = self.config().image_volume_export_sweep_age;
        for c in list {
            let Some(id) = c.id else { continue };
            if !is_stale_export(c.state, c.created, now, min_age) {
                continue;
            }
            match self.docker().remove_stopped_container(&id).await {
                Ok(()) => {
                    tracing::info!(container = %id, "leftover image volume export container removed")
                }
                Err(e) => {
                    tracing::warn!(container = %id, error = %e, "leftover image volume export container not removed")
                }
            }
        }
    }

    /// docker-cri containers (any state) binding each unpacked image.
    async fn image_volume_users(&self) -> Result<HashMap<String, Vec<String>>> {
        let filter = vec![format!(
            "{}={}",
            crate::mapping::labels::TYPE,
            crate::mapping::labels::TYPE_CONTAINER
        )];
        let mut users: HashMap<String, Vec<String>> = HashMap::new();
        for c in self.docker().list_containers(&filter).await? {
            let id = c.id.clone().unwrap_or_default();
            for m in c.mounts.iter().flatten() {
                if let Some(hex) = m
                    .source
                    .as_deref()
                    .and_then(|s| self.image_volumes.image_of_source(s))
                {
                    users.entry(hex).or_default().push(id.clone());
                }
            }
        }
        Ok(users)
    }

    /// Refuses removing image `id` while a container binds its unpacked
    /// copy; removes the copy otherwise.
    pub(crate) async fn release_image_volume(&self, id: &str, image: &str) -> Result<()> {
        let hex = id_hex(id)?;
        if !self.image_volumes.entry(&hex).exists() {
            return Ok(());
        }
        if let Some(users) = self.image_volume_users().await?.remove(&hex) {
            return Err(Error::FailedPrecondition(format!(
                "image {image} is in use as an image volume by container(s) {}",
                users.join(", ")
            )));
        }
        if self.image_volumes.is_pending(&hex) {
            return Err(Error::FailedPrecondition(format!(
                "image {image} is being mounted as an image volume"
            )));
        }
        self.drop_unpacked(&hex).await
    }

    /// Removes every unpacked image no container binds and no
    /// CreateContainer is about to. Failures are logged: the next
    /// collection tries again.
    pub(crate) async fn collect_image_volumes(&self) {
        let mut unpacked = Vec::new();
        if let Ok(mut dir) = tokio::fs::read_dir(&self.image_volumes.dir).await {
            while let Ok(Some(entry)) = dir.next_entry().await {
                unpacked.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        // Most nodes use no image volumes: no Docker call for them.
        if unpacked.is_empty() {
            return;
        }
        let users = match self.image_volume_users().await {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(error = %e, "image volume collection skipped");
                return;
            }
        };
        for hex in unpacked {
            if users.contains_key(&hex) || self.image_volumes.is_pending(&hex) {
                continue;
            }
            if let Err(e) = self.drop_unpacked(&hex).await {
                tracing::warn!(image = %hex, error = %e, "unused image volume left behind");
            }
        }
    }

    async fn drop_unpacked(&self, hex: &str) -> Result<()> {
        let _lock = self.image_volumes.locks.lock(hex).await;
        // Asked again under the lock: a CreateContainer may have created
        // its container (and let go of its hold) since the caller looked.
        // One that holds now waits for this lock and unpacks afresh.
        if self.image_volumes.is_pending(hex) || self.image_volume_users().await?.contains_key(hex)
        {
            return Ok(());
        }
        let entry = self.image_volumes.entry(hex);
        let mnt = entry.join("mnt");
        if is_mount_point(&mnt) {
            let m = mnt.clone();
            tokio::task::spawn_blocking(move || {
                nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH)
            })
            .await
            .map_err(|e| Error::internal(format!("unmount task: {e}")))?
            .map_err(|e| Error::internal(format!("unmounting {}: {e}", mnt.display())))?;
        }
        tokio::fs::remove_dir_all(&entry)
            .await
            .map_err(|e| Error::internal(format!("removing {}: {e}", entry.display())))?;
        tracing::info!(image = %hex, "unused image volume removed");
        Ok(())
    }
}

#[cfg(test)]
mod tests;
