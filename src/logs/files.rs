//! The files behind a container's log: the CRI file at its log path (opened
//! for appending, its tail read back) and docker-cri's saved resume
//! position beside its other state. Blocking; called off the async workers.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::resume::{Position, TailScan, scan_tail};

/// First tail window; doubled while the scan needs more.
const TAIL_WINDOW: u64 = 64 * 1024;
/// Past this, the scanned window is trusted as if it were the whole file.
const TAIL_MAX: u64 = 8 * 1024 * 1024;

/// Opens (creating it and its directory) a log file for appending, and
/// for reading its tail back. 0640 like containerd: the node's log agents
/// read it as a group. A symlink there (cri-dockerd links the path to
/// Docker's own JSON file) is replaced, never written through.
pub fn open_log(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        std::fs::remove_file(path)?;
    }
    OpenOptions::new()
        .read(true)
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

/// Where the file's written lines stop, cutting off a torn last line (a
/// write cut short by a crash) so that the resumed lines follow whole ones.
pub fn tail_position(file: &File) -> io::Result<Option<Position>> {
    let len = file.metadata()?.len();
    let mut window = TAIL_WINDOW;
    loop {
        let start = len.saturating_sub(window);
        let mut buf = vec![0u8; (len - start) as usize];
        file.read_exact_at(&mut buf, start)?;
        let whole = start == 0 || window >= TAIL_MAX;
        match scan_tail(&buf, whole) {
            TailScan::NeedMore => window *= 2,
            TailScan::Done {
                position,
                complete_len,
            } => {
                let complete = start + complete_len as u64;
                if complete < len {
                    tracing::warn!(
                        torn = len - complete,
                        "cutting a torn last line off a container log"
                    );
                    file.set_len(complete)?;
                }
                return Ok(position);
            }
        }
    }
}

/// What docker-cri keeps about one container's log between its runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// Where the log stood when the file was last reopened (the rotated
    /// file no longer tells).
    pub position: Option<Position>,
    /// The container stopped and every line of it is written.
    pub complete: bool,
}

/// `<root>/logs/<container id>.json`, one per container with a log.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    pub fn new(dir: PathBuf) -> Self {
        StateDir { dir }
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// An unreadable file counts as absent: the log file's tail still
    /// tells where to resume.
    pub fn load(&self, id: &str) -> Saved {
        std::fs::read(self.path(id))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Durable and atomic: a temporary file, fsync, rename, fsync the
    /// directory. A reopen relies on it before the old file is let go.
    pub fn save(&self, id: &str, saved: &Saved) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join(format!(".{id}.json.tmp"));
        let mut f = File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(saved).map_err(io::Error::other)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, self.path(id))?;
        File::open(&self.dir)?.sync_all()
    }

    pub fn exists(&self, id: &str) -> bool {
        self.path(id).exists()
    }

    pub fn remove(&self, id: &str) -> io::Result<()> {
        match std::fs::remove_file(self.path(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Container IDs that have a saved state.
    pub fn ids(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let id = name.strip_suffix(".json")?;
                (!id.starts_with('.')).then(|| id.to_string())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &str = "2026-11-30T12:00:01.000000000Z";

    #[test]
    fn tail_position_cuts_a_torn_line_and_reads_long_tails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c/0.log");
        let mut f = open_log(&path).unwrap();
        // More same-timestamp lines than the first window holds.
        let line = format!("{T1} stdout P {}\n", "x".repeat(1000));
        for _ in 0..100 {
            f.write_all(line.as_bytes()).unwrap();
        }
        let whole = f.metadata().unwrap().len();
        f.write_all(b"2026-11-30T12:00:09.000000000Z stdout F torn")
            .unwrap();
        let pos = tail_position(&f).unwrap().unwrap();
        assert_eq!(pos.count, 100);
        assert_eq!(f.metadata().unwrap().len(), whole);
        // Appending continues after the last whole line.
        f.write_all(b"next\n").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with(&format!("{}\nnext\n", "x".repeat(1000))));
    }

    #[test]
    fn a_symlink_at_the_path_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("docker-json.log");
        std::fs::write(&target, b"{}\n").unwrap();
        let path = dir.path().join("0.log");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let mut f = open_log(&path).unwrap();
        f.write_all(b"line\n").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"{}\n");
        assert!(
            !std::fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"line\n");
    }

    #[test]
    fn state_round_trip_and_listing() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("logs"));
        assert_eq!(state.load("abc"), Saved::default());
        let saved = Saved {
            position: Some(Position { nanos: 5, count: 2 }),
            complete: true,
        };
        state.save("abc", &saved).unwrap();
        assert_eq!(state.load("abc"), saved);
        assert_eq!(state.ids(), vec!["abc".to_string()]);
        state.remove("abc").unwrap();
        state.remove("abc").unwrap();
        assert!(state.ids().is_empty());
    }
}
