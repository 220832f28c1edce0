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

/// Gives `path` and everything below it the SELinux `label`, as Docker's
/// `:Z` does for binds; symlinks are labelled, never followed. Blocking:
/// call it off the async workers.
pub fn relabel_tree(path: &std::path::Path, label: &str) -> std::io::Result<()> {
    xattr::set(path, SELINUX_XATTR, label.as_bytes())?;
    let meta = fs::symlink_metadata(path)?;
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            relabel_tree(&entry?.path(), label)?;
        }
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
        std::os::unix::fs::symlink("/etc/hostname", root.join("link")).unwrap();
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
