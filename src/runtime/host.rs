//! Facts about the host that change how docker-cri asks Docker for things.

use std::fs;

/// The lowest `oom_score_adj` this host lets us (and so Docker, running with
/// the same privileges) set. Lowering needs CAP_SYS_RESOURCE; without it a
/// container asking for a negative score fails to start. Probed once by
/// lowering our own score and restoring it.
pub fn min_oom_score_adj() -> i64 {
    const PATH: &str = "/proc/self/oom_score_adj";
    let Some(current) = fs::read_to_string(PATH)
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
    else {
        return 0;
    };
    if fs::write(PATH, "-1000").is_ok() {
        let _ = fs::write(PATH, current.to_string());
        -1000
    } else {
        current
    }
}

/// Whether the host enforces SELinux: selinuxfs is mounted with a policy
/// (libselinux asks the same). Without it, relabel requests mean nothing.
pub fn selinux_enabled() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}

/// Whether the kernel enforces AppArmor profiles (what Docker asks too;
/// without it Docker silently runs containers unconfined).
pub fn apparmor_enabled() -> bool {
    fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|v| v.trim() == "Y")
}

/// The `security.selinux` attribute.
const SELINUX_XATTR: &str = "security.selinux";

/// Directories never relabelled: what Docker and the SELinux library refuse
/// for `:Z`, since relabelling them would break the host.
const NEVER_RELABEL: &[&str] = &[
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/etc/passwd",
    "/etc/shadow",
    "/home",
    "/lib",
    "/lib64",
    "/media",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/var",
    "/var/lib",
    "/var/log",
];

/// Gives `path` and everything below it on the same file system the SELinux
/// `label`, as Docker's `:Z` does for binds. The walk goes by directory file
/// descriptor and never follows a symlink, so a container sharing the tree
/// cannot swap in a link that points the relabel elsewhere; it stays on the
/// source's file system. Blocking: call it off the async workers.
pub fn relabel_tree(path: &std::path::Path, label: &str) -> std::io::Result<()> {
    use nix::fcntl::OFlag;
    use nix::sys::stat::Mode;
    if NEVER_RELABEL
        .iter()
        .any(|p| std::path::Path::new(p) == path)
    {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{} is a system directory and is never relabelled",
                path.display()
            ),
        ));
    }
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let root = match nix::dir::Dir::open(path, flags, Mode::empty()) {
        Ok(d) => d,
        // Not a directory: a single file (or a symlink, labelled itself).
        Err(nix::errno::Errno::ENOTDIR | nix::errno::Errno::ELOOP) => {
            return xattr::set(path, SELINUX_XATTR, label.as_bytes());
        }
        Err(e) => return Err(e.into()),
    };
    let device = nix::sys::stat::fstat(&root)?.st_dev;
    xattr::set(fd_path(&root, "."), SELINUX_XATTR, label.as_bytes())?;
    relabel_below(root, device, label)
}

/// `/proc/self/fd/<dir>/<name>`: the entry in the directory the descriptor
/// holds, however its path may have changed since.
fn fd_path(dir: &nix::dir::Dir, name: &str) -> std::path::PathBuf {
    use std::os::fd::AsRawFd;
    std::path::Path::new("/proc/self/fd")
        .join(dir.as_raw_fd().to_string())
        .join(name)
}

fn relabel_below(mut dir: nix::dir::Dir, device: u64, label: &str) -> std::io::Result<()> {
    use nix::fcntl::OFlag;
    use nix::sys::stat::Mode;
    let mut entries = Vec::new();
    for entry in dir.iter() {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != "." && name != ".." {
            entries.push((name, entry.file_type() == Some(nix::dir::Type::Directory)));
        }
    }
    let mut children = Vec::new();
    for (name, is_dir) in entries {
        // lsetxattr on the entry itself: a symlink is labelled, not followed.
        xattr::set(fd_path(&dir, &name), SELINUX_XATTR, label.as_bytes())?;
        if is_dir {
            children.push(name);
        }
    }
    for name in children {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        // Swapped for a link or a file meanwhile: not ours to follow.
        let Ok(child) = nix::dir::Dir::openat(&dir, name.as_str(), flags, Mode::empty()) else {
            continue;
        };
        if nix::sys::stat::fstat(&child)?.st_dev != device {
            continue;
        }
        relabel_below(child, device, label)?;
    }
    Ok(())
}

/// Keyed async locks: one mutex per key (a sandbox name, a sandbox ID), freed
/// when nobody holds or waits for it.
#[derive(Default)]
pub struct KeyedLocks {
    map: std::sync::Mutex<
        std::collections::HashMap<String, std::sync::Weak<tokio::sync::Mutex<()>>>,
    >,
}

impl KeyedLocks {
    pub async fn lock(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let mutex = {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            map.retain(|_, weak| weak.strong_count() > 0);
            match map.get(key).and_then(|w| w.upgrade()) {
                Some(m) => m,
                None => {
                    let m = std::sync::Arc::new(tokio::sync::Mutex::new(()));
                    map.insert(key.to_string(), std::sync::Arc::downgrade(&m));
                    m
                }
            }
        };
        mutex.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn oom_probe_returns_a_valid_score() {
        let min = min_oom_score_adj();
        assert!((-1000..=1000).contains(&min));
        // The probe restored our own score.
        let now: i64 = fs::read_to_string("/proc/self/oom_score_adj")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(now >= min);
    }

    #[test]
    fn relabel_labels_the_whole_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("vol");
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(root.join("a/b/f"), "x").unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("target");
        fs::write(&target, "outside").unwrap();
        std::os::unix::fs::symlink(&target, root.join("link")).unwrap();
        let label = "system_u:object_r:container_file_t:s0:c1,c2";
        match relabel_tree(&root, label) {
            Ok(()) => {}
            // A file system without security xattrs cannot be labelled; on
            // such a host SELinux would not be enforcing on it either.
            Err(e) if e.raw_os_error() == Some(nix::libc::EOPNOTSUPP) => return,
            Err(e) => panic!("relabel: {e}"),
        }
        for p in ["", "a", "a/b", "a/b/f"] {
            let got = xattr::get(root.join(p), SELINUX_XATTR).unwrap();
            assert_eq!(got.as_deref(), Some(label.as_bytes()), "{p}");
        }
        // The link's target outside the tree is untouched.
        assert_ne!(
            xattr::get("/etc/hostname", SELINUX_XATTR)
                .unwrap()
                .as_deref(),
            Some(label.as_bytes())
        );
    }

    #[tokio::test]
    async fn same_key_serialises_other_keys_do_not() {
        let locks = Arc::new(KeyedLocks::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (locks, inside) = (locks.clone(), inside.clone());
            tasks.push(tokio::spawn(async move {
                let _g = locks.lock("k").await;
                assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        let _other = locks.lock("other").await;
        for t in tasks {
            t.await.unwrap();
        }
    }
}
