//! One inotify instance for every follower: an idle follower sleeps until
//! Docker touches its file instead of polling it.
//!
//! A follower arms a watch only while its file is idle and drops it as
//! soon as it is woken: a busy file (Docker writes once per line) would
//! otherwise flood the inotify queue with an event per line, while a busy
//! follower reads in batches on its own poll anyway.
//!
//! The watch is on the inode the follower holds (through its
//! `/proc/self/fd` link), not on the path, so Docker's rotation (a rename
//! of that inode) wakes it too. Several followers of one file share the
//! kernel's watch; it goes when the last of them lets go.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

/// What wakes a follower: appends and truncations, rotation (a rename of
/// the file), and its removal.
const MASK: AddWatchFlags = AddWatchFlags::IN_MODIFY
    .union(AddWatchFlags::IN_MOVE_SELF)
    .union(AddWatchFlags::IN_DELETE_SELF)
    .union(AddWatchFlags::IN_ATTRIB);

/// The inotify descriptor as tokio's reactor wants it.
struct Fd(Inotify);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// Who is woken by which kernel watch.
type Waiters = HashMap<WatchDescriptor, Vec<(u64, Arc<Notify>)>>;

struct Shared {
    fd: AsyncFd<Fd>,
    waiters: Mutex<Waiters>,
    next: std::sync::atomic::AtomicU64,
}

impl Shared {
    fn waiters(&self) -> MutexGuard<'_, Waiters> {
        self.waiters.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The shared inotify instance; cheap to clone.
#[derive(Clone)]
pub struct FileWatch {
    shared: Arc<Shared>,
    /// Ends the dispatch task when the last clone goes.
    _stop: Arc<tokio_util::sync::DropGuard>,
}

impl FileWatch {
    /// Opens the instance and starts the task that hands its events out.
    /// Must be called within the tokio runtime.
    pub fn new() -> io::Result<Self> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        // SAFETY: `Fd` owns the descriptor (an `OwnedFd` inside `Inotify`)
        // and nothing closes or replaces it while the `AsyncFd` holds it;
        // registering it with the reactor is all this does.
        let fd = unsafe { AsyncFd::register(Fd(inotify))? };
        let shared = Arc::new(Shared {
            fd,
            waiters: Mutex::default(),
            next: Default::default(),
        });
        let stop = tokio_util::sync::CancellationToken::new();
        tokio::spawn(dispatch(shared.clone(), stop.clone()));
        Ok(FileWatch {
            shared,
            _stop: Arc::new(stop.drop_guard()),
        })
    }

    /// Wakes `notify` whenever `file` changes, until the returned guard is
    /// dropped.
    pub fn watch(&self, file: &File, notify: Arc<Notify>) -> io::Result<Armed> {
        let link = format!("/proc/self/fd/{}", file.as_raw_fd());
        // Under the lock: a concurrent disarm of the same inode must not
        // remove the kernel's watch between this add and the entry.
        let mut waiters = self.shared.waiters();
        let wd = self.shared.fd.get_ref().0.add_watch(link.as_str(), MASK)?;
        let token = self
            .shared
            .next
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        waiters.entry(wd).or_default().push((token, notify));
        Ok(Armed {
            shared: self.shared.clone(),
            wd,
            token,
        })
    }

    #[cfg(test)]
    fn kernel_watches(&self) -> usize {
        self.shared.waiters().len()
    }
}

/// A follower's registration; dropping it stops the wake-ups.
pub struct Armed {
    shared: Arc<Shared>,
    wd: WatchDescriptor,
    token: u64,
}

impl Drop for Armed {
    fn drop(&mut self) {
        let mut waiters = self.shared.waiters();
        let Some(list) = waiters.get_mut(&self.wd) else {
            // The kernel dropped the watch already (IN_IGNORED).
            return;
        };
        list.retain(|(t, _)| *t != self.token);
        if list.is_empty() {
            waiters.remove(&self.wd);
            // Fails harmlessly when the kernel removed it meanwhile.
            let _ = self.shared.fd.get_ref().0.rm_watch(self.wd);
        }
    }
}

/// Reads events and wakes their waiters until the instance is dropped.
async fn dispatch(s: Arc<Shared>, stop: tokio_util::sync::CancellationToken) {
    loop {
        let readable = tokio::select! {
            () = stop.cancelled() => return,
            readable = s.fd.readable() => readable,
        };
        let mut ready = match readable {
            Ok(ready) => ready,
            Err(e) => {
                tracing::warn!(error = %e, "inotify failed; idle log followers fall back to polling");
                return;
            }
        };
        let events = match ready.try_io(|fd| fd.get_ref().0.read_events().map_err(io::Error::from))
        {
            Ok(Ok(events)) => events,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "reading inotify events failed; idle log followers fall back to polling");
                return;
            }
            Err(_would_block) => continue,
        };
        let mut waiters = s.waiters();
        for event in events {
            if event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                // Some events were lost: everyone looks.
                waiters.values().flatten().for_each(|(_, n)| n.notify_one());
                continue;
            }
            let Some(list) = waiters.get(&event.wd) else {
                continue;
            };
            list.iter().for_each(|(_, n)| n.notify_one());
            if event.mask.contains(AddWatchFlags::IN_IGNORED) {
                waiters.remove(&event.wd);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::Duration;

    use super::*;

    async fn woken(n: &Notify) -> bool {
        tokio::time::timeout(Duration::from_secs(2), n.notified())
            .await
            .is_ok()
    }

    async fn quiet(n: &Notify) -> bool {
        tokio::time::timeout(Duration::from_millis(200), n.notified())
            .await
            .is_err()
    }

    #[tokio::test]
    async fn appends_and_renames_wake_until_the_guard_goes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut writer = File::create(&path).unwrap();
        let reader = File::open(&path).unwrap();
        let watch = FileWatch::new().unwrap();
        let n = Arc::new(Notify::new());

        let armed = watch.watch(&reader, n.clone()).unwrap();
        assert!(quiet(&n).await, "woken with no change");
        writer.write_all(b"a line\n").unwrap();
        assert!(woken(&n).await, "an append did not wake");
        std::fs::rename(&path, dir.path().join("log.1")).unwrap();
        assert!(woken(&n).await, "a rotation did not wake");

        drop(armed);
        assert_eq!(watch.kernel_watches(), 0);
        writer.write_all(b"another\n").unwrap();
        assert!(quiet(&n).await, "woken after the guard was dropped");
    }

    #[tokio::test]
    async fn two_followers_of_one_file_share_the_kernel_watch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut writer = File::create(&path).unwrap();
        let (r1, r2) = (File::open(&path).unwrap(), File::open(&path).unwrap());
        let watch = FileWatch::new().unwrap();
        let (n1, n2) = (Arc::new(Notify::new()), Arc::new(Notify::new()));

        let a1 = watch.watch(&r1, n1.clone()).unwrap();
        let a2 = watch.watch(&r2, n2.clone()).unwrap();
        assert_eq!(watch.kernel_watches(), 1);
        writer.write_all(b"x\n").unwrap();
        assert!(woken(&n1).await && woken(&n2).await);

        // The first one leaving keeps the second one's wake-ups.
        drop(a1);
        writer.write_all(b"y\n").unwrap();
        assert!(woken(&n2).await, "the remaining follower lost its watch");
        assert!(quiet(&n1).await);
        drop(a2);
        assert_eq!(watch.kernel_watches(), 0);
    }
}
