//! Disk usage of a directory tree: allocated bytes and inodes, the one
//! measure both ImageFsInfo and the writable-layer stats use, so their
//! figures agree.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub bytes: u64,
    pub inodes: u64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        self.bytes += other.bytes;
        self.inodes += other.inodes;
    }
}

/// Allocated bytes and inodes below `path` on `device`, without following
/// symlinks or crossing mounts, counting hard-linked files once (across
/// calls sharing `seen`).
pub fn walk(path: &Path, device: u64, seen: &mut HashSet<(u64, u64)>) -> Usage {
    let mut usage = Usage::default();
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(meta) = fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.dev() != device {
            continue;
        }
        if meta.nlink() > 1 && !meta.is_dir() && !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        usage.bytes += meta.blocks() * 512;
        usage.inodes += 1;
        if meta.is_dir()
            && let Ok(children) = fs::read_dir(&p)
        {
            stack.extend(children.flatten().map(|c| c.path()));
        }
    }
    usage
}

/// A directory measured on its own device.
pub fn measure(path: &Path) -> Option<Usage> {
    let device = fs::symlink_metadata(path).ok()?.dev();
    Some(walk(path, device, &mut HashSet::new()))
}
