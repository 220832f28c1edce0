//! The host's cgroup hierarchy: which version it is, where a container's
//! process sits in it, and writing the limits Docker has no field for
//! (cgroup v2 interface files such as `memory.high`, hugetlb limits).
//!
//! Those limits are written right after Docker starts the container, so for
//! the first moments of its life (between runc starting the process and
//! docker-cri's write, typically a few milliseconds) they are not in force.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::mapping::container::{CgroupSetting, hugepage_size_kib, valid_unified_key};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// Where the cgroup file systems and `/proc` are; the host's in production,
/// fixture trees in tests.
#[derive(Debug, Clone)]
pub struct Cgroups {
    root: PathBuf,
    proc_root: PathBuf,
    hugepages_root: PathBuf,
    version: Version,
}

impl Cgroups {
    /// The host's hierarchy under /sys/fs/cgroup.
    pub fn host() -> Cgroups {
        Cgroups::at(
            Path::new("/sys/fs/cgroup"),
            Path::new("/proc"),
            Path::new("/sys/kernel/mm/hugepages"),
        )
    }

    /// A hierarchy rooted elsewhere. A unified (v2) mount has
    /// `cgroup.controllers` at its root; v1 has a directory per controller.
    pub fn at(root: &Path, proc_root: &Path, hugepages_root: &Path) -> Cgroups {
        let version = if root.join("cgroup.controllers").exists() {
            Version::V2
        } else {
            Version::V1
        };
        Cgroups {
            root: root.to_path_buf(),
            proc_root: proc_root.to_path_buf(),
            hugepages_root: hugepages_root.to_path_buf(),
            version,
        }
    }

    pub fn version(&self) -> Version {
        self.version
    }

    fn hugetlb_available(&self) -> bool {
        match self.version {
            Version::V1 => self.root.join("hugetlb").is_dir(),
            Version::V2 => fs::read_to_string(self.root.join("cgroup.controllers"))
                .is_ok_and(|c| c.split_whitespace().any(|c| c == "hugetlb")),
        }
    }

    /// The settings that must be written for this container, or why they
    /// cannot be applied on this host at all. Zero hugepage limits (kubelet
    /// sends one for every size the pod does not request) are dropped where
    /// the hugetlb controller is absent: nothing could enforce them, as runc
    /// does the same.
    pub fn plan(&self, settings: &[CgroupSetting]) -> Result<Vec<CgroupSetting>> {
        let mut out = Vec::new();
        for s in settings {
            match s {
                CgroupSetting::Unified { key, .. } => {
                    if self.version == Version::V1 {
                        return Err(Error::FailedPrecondition(format!(
                            "resources.unified[{key}] is a cgroup v2 setting and this host runs cgroup v1"
                        )));
                    }
                    out.push(s.clone());
                }
                CgroupSetting::Hugepage { page_size, limit } => {
                    if !self.hugetlb_available() {
                        if *limit == 0 {
                            continue;
                        }
                        return Err(Error::FailedPrecondition(format!(
                            "resources.hugepage_limits[{page_size}]: the hugetlb cgroup controller \
                             is not available on this host"
                        )));
                    }
                    let kib = hugepage_size_kib(page_size).unwrap_or(0);
                    if !self
                        .hugepages_root
                        .join(format!("hugepages-{kib}kB"))
                        .is_dir()
                    {
                        if *limit == 0 {
                            continue;
                        }
                        return Err(Error::FailedPrecondition(format!(
                            "resources.hugepage_limits: this host has no {page_size} hugepages"
                        )));
                    }
                    out.push(s.clone());
                }
            }
        }
        Ok(out)
    }

    /// The cgroup directory of container `id` for a v1 controller (`None`
    /// on v2), found through its process `pid`. The path must name the
    /// container: a pid reused by another process after the container
    /// exited is refused, and a process that moved itself into a child
    /// cgroup (Docker-in-Docker, systemd) does not take the limits with it.
    pub fn container_dir(&self, pid: i64, id: &str, controller: Option<&str>) -> Result<PathBuf> {
        let dir = self.dir_of(pid, controller)?;
        let mut at = dir.as_path();
        loop {
            if at
                .file_name()
                .is_some_and(|n| !id.is_empty() && n.to_string_lossy().contains(id))
            {
                return Ok(at.to_path_buf());
            }
            match at.parent() {
                Some(parent) if parent.starts_with(&self.root) && parent != self.root => {
                    at = parent
                }
                _ => break,
            }
        }
        Err(Error::FailedPrecondition(format!(
            "process {pid} is not in container {id}'s cgroup ({}); did it exit?",
            dir.display()
        )))
    }

    /// The directory of `pid`'s cgroup for a v1 controller (`None` on v2:
    /// the unified hierarchy), from `/proc/<pid>/cgroup`.
    pub fn dir_of(&self, pid: i64, controller: Option<&str>) -> Result<PathBuf> {
        let placement = self.placement_of(pid)?;
        let wanted = match (self.version, controller) {
            (Version::V2, _) | (Version::V1, None) => None,
            (Version::V1, Some(c)) => Some(c),
        };
        let found = match wanted {
            None => placement.unified.clone(),
            Some(c) => placement.controller(c).map(Path::to_path_buf),
        };
        found.ok_or_else(|| {
            Error::internal(format!(
                "/proc/{pid}/cgroup names no {} cgroup",
                wanted.unwrap_or("unified")
            ))
        })
    }

    /// Every cgroup directory of `pid`, from one read of `/proc/<pid>/cgroup`.
    pub fn placement_of(&self, pid: i64) -> Result<Placement> {
        let file = self.proc_root.join(pid.to_string()).join("cgroup");
        let text = fs::read_to_string(&file)
            .map_err(|e| Error::internal(format!("reading {}: {e}", file.display())))?;
        Ok(self.placement_from(&text))
    }

    /// Parses a `/proc/<pid>/cgroup` text into directories under this root.
    /// Lines that climb out of the hierarchy (`..`) are ignored.
    pub fn placement_from(&self, proc_cgroup: &str) -> Placement {
        let mut placement = Placement::default();
        for line in proc_cgroup.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let rel = path.trim_start_matches('/');
            if rel.split('/').any(|seg| seg == "..") {
                continue;
            }
            if controllers.is_empty() {
                if self.version == Version::V2 {
                    placement.unified = Some(self.root.join(rel));
                }
                continue;
            }
            if self.version == Version::V1 {
                for c in controllers.split(',') {
                    if let Some(dir) = self.v1_controller_dir(c, controllers) {
                        placement.v1.push((c.to_string(), dir.join(rel)));
                    }
                }
            }
        }
        placement
    }

    /// Where a v1 controller is mounted: its own directory (`memory`), or
    /// the co-mount's (`cpu,cpuacct`) reached by either name.
    fn v1_controller_dir(&self, controller: &str, comount: &str) -> Option<PathBuf> {
        if controller.starts_with("name=") {
            return None;
        }
        let own = self.root.join(controller);
        if own.is_dir() {
            return Some(own);
        }
        let joint = self.root.join(comount);
        joint.is_dir().then_some(joint)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn proc_root(&self) -> &Path {
        &self.proc_root
    }

    /// Writes each setting into container `id`'s cgroup, found through its
    /// process `pid`. Blocking file I/O: call it off the async workers.
    pub fn apply(&self, pid: i64, id: &str, settings: &[CgroupSetting]) -> Result<()> {
        for s in settings {
            // Settings come back from a Docker label: checked again, so a
            // doctored label cannot name a file outside the cgroup.
            let sound = match s {
                CgroupSetting::Unified { key, value } => {
                    valid_unified_key(key) && !value.contains(['\n', '\0'])
                }
                CgroupSetting::Hugepage { page_size, .. } => hugepage_size_kib(page_size).is_some(),
            };
            if !sound {
                return Err(Error::FailedPrecondition(format!(
                    "{}: not a cgroup setting docker-cri writes",
                    s.describe()
                )));
            }
            let (controller, file, value) = match s {
                CgroupSetting::Unified { key, value } => (None, key.clone(), value.clone()),
                CgroupSetting::Hugepage { page_size, limit } => match self.version {
                    Version::V1 => (
                        Some("hugetlb"),
                        format!("hugetlb.{page_size}.limit_in_bytes"),
                        limit.to_string(),
                    ),
                    Version::V2 => (None, format!("hugetlb.{page_size}.max"), limit.to_string()),
                },
            };
            let path = self.container_dir(pid, id, controller)?.join(&file);
            // Interface files exist already; never create one.
            let opened = fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&path);
            // A zero hugepage limit where the container's cgroup offers no
            // hugetlb files (the controller not delegated there): nothing
            // could use those pages anyway.
            if let (Err(e), CgroupSetting::Hugepage { limit: 0, .. }) = (&opened, s)
                && e.kind() == std::io::ErrorKind::NotFound
            {
                continue;
            }
            let mut f = opened.map_err(|e| {
                Error::FailedPrecondition(format!(
                    "{}: cannot open {}: {e}",
                    s.describe(),
                    path.display()
                ))
            })?;
            f.write_all(value.as_bytes()).map_err(|e| {
                Error::FailedPrecondition(format!(
                    "{}: writing {value:?} to {}: {e}",
                    s.describe(),
                    path.display()
                ))
            })?;
        }
        Ok(())
    }
}

/// A process's cgroup directories: the unified one (v2) or one per v1
/// controller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    pub unified: Option<PathBuf>,
    pub v1: Vec<(String, PathBuf)>,
}

impl Placement {
    /// The directory of a v1 controller.
    pub fn controller(&self, name: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|(c, _)| c == name)
            .map(|(_, p)| p.as_path())
    }

    /// The same placement one level up: a container's pod cgroup.
    pub fn parent(&self) -> Placement {
        let up = |p: &PathBuf| p.parent().map(Path::to_path_buf);
        Placement {
            unified: self.unified.as_ref().and_then(up),
            v1: self
                .v1
                .iter()
                .filter_map(|(c, p)| up(p).map(|p| (c.clone(), p)))
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.unified.is_none() && self.v1.is_empty()
    }
}

mod pod;

#[cfg(test)]
mod tests;
