//! Following one container's json-file log on disk: the rotated files
//! (`<LogPath>.N` … `.1`, oldest first) then the current one, read by
//! offset, polled at EOF, across Docker's rotations and truncations.
//!
//! Docker's rotation closes the current file, renames `.N-1`→`.N` … and
//! `<LogPath>`→`.1`, then creates a new `<LogPath>`. A reader holding the
//! old descriptor only has to finish it and open the path again; the new
//! inode at the path says when. With `max-file=1` Docker truncates the one
//! file instead (same inode, smaller size): the reader starts it over.
//!
//! Reads are `pread`s of recently written data (page cache) done on the
//! async worker, as the writers' appends are: a hop to the blocking pool
//! per chunk would cost more than the read.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::parse::Parser;
use super::watch::{Armed, FileWatch};
use crate::docker::logs::{CriLines, RunState};
use crate::error::{Error, Result};

/// Most bytes asked for per read; also the batch the writer gets at once.
/// The buffer is sized to what is there to read and let go while the file
/// is idle, so a node of mostly quiet containers does not hold (or zero,
/// at every poll) one per container.
const READ_SIZE: usize = 128 * 1024;
/// A line longer than this (Docker's are at most 16 KiB of content, some
/// 100 KiB escaped) is not Docker's; it is dropped rather than buffered.
const MAX_LINE: usize = 4 * 1024 * 1024;
/// Lines stamped this much before `since` may still come after it in the
/// file (stdout and stderr are copied apart), so the first file read is
/// one that starts at least this much earlier.
const REORDER_WINDOW_NANOS: i64 = 1_000_000_000;

/// How often to look again at EOF, and how often to ask Docker whether
/// the container still runs: the poll backs off while the file is idle,
/// then (with a [`FileWatch`]) sleeps until Docker touches the file.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub poll_min: Duration,
    pub poll_max: Duration,
    /// The longest sleep of an idle follower whose file is watched: only
    /// a backstop, as the watch wakes it.
    pub idle: Duration,
    pub stop_check: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            poll_min: Duration::from_millis(50),
            poll_max: Duration::from_millis(250),
            idle: Duration::from_secs(30),
            // The index's stop events and ContainerStatus of an exited
            // container wake the follower (`DockerLogs::stopped`), so this
            // is only the backstop (an event stream down at that moment);
            // each check is an inspect, per idle container.
            stop_check: Duration::from_secs(60),
        }
    }
}

/// Busy followers wake on a shared grid of this step: many containers'
/// polls then fall on the same few instants, and the runtime's threads
/// wake once for all of them instead of once per container.
const TICK: Duration = Duration::from_millis(10);

/// `at`, moved later to the next point of the grid (at most `TICK`).
fn on_tick(at: Instant) -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    let step = TICK.as_nanos();
    let since = at.saturating_duration_since(epoch).as_nanos();
    let up = (step - since % step) % step;
    at + Duration::from_nanos(u64::try_from(up).unwrap_or(0))
}

/// What wakes a sleeping follower besides its timer.
pub struct Wake {
    /// docker-cri heard the container stopped: check now.
    pub stopped: Arc<Notify>,
    /// Watches the file while it is idle; `None`: polling only.
    pub files: Option<FileWatch>,
}

/// Asks whether the container still runs.
pub type StopCheck = Box<dyn FnMut() -> BoxFuture<'static, Result<RunState>> + Send>;

struct Open {
    file: File,
    ino: u64,
    offset: u64,
}

impl Open {
    fn new(file: File) -> io::Result<Self> {
        let ino = file.metadata()?.ino();
        Ok(Open {
            file,
            ino,
            offset: 0,
        })
    }
}

/// Opens `path` and its rotated files, oldest first, and positions the
/// reader for `since`. Fails when `path` itself cannot be opened.
pub fn open_files(path: &Path, max_file: u32, since: Option<i64>) -> io::Result<VecDeque<File>> {
    // Newest first: a rotation between two opens then shows up as the
    // same inode twice (dropped below), never as a file skipped.
    let mut files = vec![Open::new(File::open(path)?)?];
    for n in 1..=max_file.max(1) {
        match File::open(rotated(path, n)).and_then(Open::new) {
            Ok(f) if files.iter().all(|o| o.ino != f.ino) => files.push(f),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    // The newest file starting well before `since` is the first needed.
    let keep = match since {
        None => files.len(),
        Some(since) => files
            .iter()
            .position(|o| first_nanos(&o.file).is_some_and(|n| n < since - REORDER_WINDOW_NANOS))
            .map_or(files.len(), |i| i + 1),
    };
    files.truncate(keep);
    Ok(files.into_iter().rev().map(|o| o.file).collect())
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// The time of a file's first line (it need not parse: `None`). Most
/// lines fit the first small read; a long one takes a second, larger one.
fn first_nanos(file: &File) -> Option<i64> {
    let mut size = 4 * 1024;
    loop {
        let mut buf = vec![0u8; size];
        let n = file.read_at(&mut buf, 0).ok()?;
        if let Some(end) = memchr::memchr(b'\n', &buf[..n]) {
            return Parser::default()
                .line(&buf[..end], &mut CriLines::new())
                .ok();
        }
        if n < size || size >= MAX_LINE {
            return None;
        }
        size = (size * 8).min(MAX_LINE);
    }
}

pub struct Follower {
    path: PathBuf,
    max_file: u32,
    /// Older files still to read before `current`.
    queue: VecDeque<File>,
    current: Open,
    buf: Vec<u8>,
    /// `buf[..filled]` holds read bytes not yet parsed (a line's start).
    filled: usize,
    /// Dropping an over-long line up to its `\n`.
    discarding: bool,
    parser: Parser,
    /// Messages before the first one stamped at or after this are skipped.
    since: Option<i64>,
    stop_check: StopCheck,
    wake: Wake,
    /// Woken by `wake.files` while `armed`.
    changed: Arc<Notify>,
    armed: Option<Armed>,
    timing: Timing,
    poll: Duration,
    last_check: Option<Instant>,
    /// The container stopped: read to the end once more, then finish.
    final_pass: bool,
    /// The last read got less than it asked for: it reached the end, so
    /// the next call need not read again before looking for a rotation.
    at_end: bool,
    /// Nothing at the path at the last look (mid-rotation): a watch on
    /// the old file would not see the new one come.
    path_missing: bool,
}

impl Follower {
    /// `files`: oldest first, the current file last (from [`open_files`]).
    pub fn new(
        path: PathBuf,
        max_file: u32,
        mut files: VecDeque<File>,
        since: Option<i64>,
        stop_check: StopCheck,
        wake: Wake,
        timing: Timing,
    ) -> io::Result<Self> {
        let first = files
            .pop_front()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no log file"))?;
        Ok(Follower {
            path,
            max_file: max_file.max(1),
            queue: files,
            current: Open::new(first)?,
            buf: Vec::new(),
            filled: 0,
            discarding: false,
            parser: Parser::default(),
            since,
            stop_check,
            wake,
            changed: Arc::new(Notify::new()),
            armed: None,
            poll: timing.poll_min,
            timing,
            last_check: None,
            final_pass: false,
            at_end: false,
            path_missing: false,
        })
    }

    /// Appends the next lines in file order to `into`; `None` once the
    /// container has stopped and everything is read. Dropped at an await
    /// (the caller serves a reopen), it loses nothing: lines are read and
    /// put into `into` with no await between.
    pub async fn next_batch(&mut self, into: &mut CriLines) -> Option<Result<()>> {
        loop {
            // On the final pass every call reads: Docker may still have
            // flushed a last line after the short read.
            let read = match std::mem::take(&mut self.at_end) && !self.final_pass {
                true => Ok(None),
                false => self.read_some(into),
            };
            match read {
                Ok(Some(lines)) if lines > 0 => {
                    self.poll = self.timing.poll_min;
                    return Some(Ok(()));
                }
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(path = %self.path.display(), error = %e, "reading a json log file failed");
                    return Some(Err(io_error(e)));
                }
            }
            // At the end of the current file.
            if let Some(next) = self.queue.pop_front() {
                match Open::new(next) {
                    Ok(open) => self.switch(open),
                    Err(e) => return Some(Err(io_error(e))),
                }
                continue;
            }
            match self.rotated_or_truncated() {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => return Some(Err(io_error(e))),
            }
            if self.final_pass {
                return None;
            }
            if self.stop_due() {
                let state = (self.stop_check)().await;
                self.last_check = Some(Instant::now());
                match state {
                    // Docker closes the log before it reports the stop, so
                    // one more read gets the last lines.
                    Ok(RunState::Stopped | RunState::Gone) => {
                        self.final_pass = true;
                        continue;
                    }
                    Ok(RunState::Running) => {}
                    // Docker away (a restart with live-restore): the file
                    // is still there to follow.
                    Err(e) => tracing::debug!(error = %e, "container state unknown"),
                }
            }
            if self.poll < self.timing.poll_max || self.path_missing {
                // Just went quiet: poll, backing off, without a watch (a
                // busy file would raise an event per line).
                tokio::select! {
                    () = tokio::time::sleep_until(on_tick(Instant::now() + self.poll)) => {}
                    () = self.wake.stopped.notified() => self.last_check = None,
                }
                self.poll = (self.poll * 2).min(self.timing.poll_max);
                continue;
            }
            if self.filled == 0 {
                // Idle: the buffers go until data comes, the caller's too
                // (a container that printed a burst and went quiet would
                // otherwise hold the burst's room for good).
                self.buf = Vec::new();
                into.release();
            }
            let sleep = if self.armed.is_some() {
                self.timing.idle
            } else if self.arm() {
                // Whatever came before the watch was armed is read first.
                continue;
            } else {
                self.timing.poll_max
            };
            tokio::select! {
                () = tokio::time::sleep(sleep) => {}
                () = self.wake.stopped.notified() => self.last_check = None,
                () = self.changed.notified() => {
                    // Busy again (or rotated): back to quick polls.
                    self.armed = None;
                    self.poll = self.timing.poll_min;
                }
            }
        }
    }

    /// Starts watching the current file; false without a watch.
    fn arm(&mut self) -> bool {
        let Some(files) = &self.wake.files else {
            return false;
        };
        match files.watch(&self.current.file, self.changed.clone()) {
            Ok(armed) => {
                self.armed = Some(armed);
                true
            }
            Err(e) => {
                tracing::debug!(path = %self.path.display(), error = %e, "watching the json log failed; polling it");
                false
            }
        }
    }

    fn stop_due(&self) -> bool {
        self.last_check
            .is_none_or(|at| at.elapsed() >= self.timing.stop_check)
    }

    /// One read: `Ok(None)` at EOF, else how many CRI lines its whole
    /// lines made (appended to `into`).
    fn read_some(&mut self, into: &mut CriLines) -> io::Result<Option<usize>> {
        if self.filled == self.buf.len() {
            // No room: no buffer yet (idle), or a partial line fills it.
            // Only then is the file's size asked for, to size the buffer:
            // a busy follower just reads.
            if self.filled >= MAX_LINE {
                tracing::warn!(path = %self.path.display(), bytes = self.filled, "over-long json log line dropped");
                self.filled = 0;
                self.discarding = true;
            }
            let size = self.current.file.metadata()?.len();
            let Some(available) = size.checked_sub(self.current.offset).filter(|&n| n > 0) else {
                // At the end (or truncated: see `rotated_or_truncated`).
                return Ok(None);
            };
            // Room for what is there (at least a page), up to READ_SIZE
            // more than the partial line held (which grows for long lines).
            let more = usize::try_from(available).map_or(READ_SIZE, |a| a.clamp(4096, READ_SIZE));
            self.buf.resize(self.filled + more, 0);
        }
        let room = self.buf.len() - self.filled;
        let n = self
            .current
            .file
            .read_at(&mut self.buf[self.filled..], self.current.offset)?;
        if n == 0 {
            return Ok(None);
        }
        self.at_end = n < room;
        if n == room && self.buf.len() < READ_SIZE {
            // Filled to the brim: more is coming than the buffer was
            // sized for.
            self.buf.resize((self.buf.len() * 2).min(READ_SIZE), 0);
        }
        self.current.offset += n as u64;
        let end = self.filled + n;
        let before = into.len();
        let mut start = 0;
        // Only the new bytes can hold a `\n` not yet seen.
        let mut from = self.filled;
        while let Some(at) = memchr::memchr(b'\n', &self.buf[from..end]) {
            let line = &self.buf[start..from + at];
            if std::mem::take(&mut self.discarding) {
                // The tail of an over-long line.
            } else {
                let mark = into.checkpoint();
                match self.parser.line(line, into) {
                    // Before the `since` point: taken back.
                    Ok(nanos) if self.since.is_some_and(|since| nanos < since) => {
                        into.rollback(mark)
                    }
                    Ok(_) => self.since = None,
                    Err(e) => {
                        tracing::debug!(path = %self.path.display(), error = %e, "json log line skipped")
                    }
                }
            }
            start = from + at + 1;
            from = start;
        }
        self.buf.copy_within(start..end, 0);
        self.filled = end - start;
        if self.discarding {
            self.filled = 0;
        }
        // Back to the first read size once a long line has passed.
        if self.filled < READ_SIZE && self.buf.len() > READ_SIZE {
            self.buf.truncate(READ_SIZE);
            self.buf.shrink_to_fit();
        }
        Ok(Some(into.len() - before))
    }

    /// At EOF: whether Docker moved on to a new file at the path (switched
    /// to it once the old one is read to its end) or truncated this one.
    fn rotated_or_truncated(&mut self) -> io::Result<bool> {
        let size = self.current.file.metadata()?.len();
        if size < self.current.offset {
            tracing::debug!(path = %self.path.display(), "json log truncated by Docker; reading it from the start");
            self.current.offset = 0;
            self.filled = 0;
            return Ok(true);
        }
        let at_path = std::fs::metadata(&self.path);
        self.path_missing = at_path
            .as_ref()
            .is_err_and(|e| e.kind() == io::ErrorKind::NotFound);
        let at_path = match at_path {
            Ok(m) => m.ino(),
            // Between Docker's rename and its create, or the container is
            // gone: nothing new to read yet.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        if at_path == self.current.ino {
            return Ok(false);
        }
        // Docker closed the old file before the rename: what is in it now
        // is all there will be. Read it to its end, then take the new one.
        if self.current.file.metadata()?.len() > self.current.offset {
            return Ok(true);
        }
        // Docker may have rotated more than once since the last look: the
        // files between the old one (now `.k`, or deleted) and the path
        // come first.
        let mut newer = VecDeque::new();
        for n in 1..=self.max_file {
            let rotated = rotated(&self.path, n);
            match std::fs::metadata(&rotated) {
                Ok(m) if m.ino() == self.current.ino => break,
                Ok(_) => newer.push_front(File::open(&rotated)?),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        if !newer.is_empty() {
            tracing::debug!(path = %self.path.display(), files = newer.len(), "json log rotated more than once between reads");
        }
        newer.push_back(File::open(&self.path)?);
        let first = newer.pop_front().map(Open::new).transpose()?;
        self.queue = newer;
        if let Some(open) = first {
            self.switch(open);
        }
        Ok(true)
    }

    fn switch(&mut self, open: Open) {
        if self.filled > 0 && !self.discarding {
            tracing::debug!(path = %self.path.display(), bytes = self.filled, "json log file ended in a torn line; dropped");
        }
        self.filled = 0;
        self.discarding = false;
        // The watch was on the old file.
        self.armed = None;
        self.current = open;
    }
}

fn io_error(e: io::Error) -> Error {
    Error::internal(format!("reading the container's json log: {e}"))
}

#[cfg(test)]
mod tests;
