//! Docker's log messages → the CRI log line format kubelet and crictl
//! parse, `<RFC 3339 timestamp> <stdout|stderr> <P|F> <content>\n`,
//! gathered into [`CriLines`]: bytes ready to append to a CRI log file.

/// Docker's log copier cuts a longer line into partial messages of exactly
/// this many bytes (its read buffer), all with the first part's timestamp.
pub const DOCKER_PARTIAL_SIZE: usize = 16 * 1024;

/// Content longer than this is cut into `P` lines and a last `F` line, as
/// containerd does (kubelet joins them back).
pub const SPLIT_SIZE: usize = 16 * 1024;

/// The width of Docker's API timestamps, `2006-01-02T15:04:05.000000000Z`,
/// which CRI lines carry whichever way Docker's log was read.
pub const TIMESTAMP_LEN: usize = 30;

/// Timestamp, space, stream name (both are six letters), space, tag, space.
const PREFIX_LEN: usize = TIMESTAMP_LEN + 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

impl LogStream {
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
}

/// CRI lines, ready to append to a log file as they are, with each line's
/// Docker time (for the resume skip and the lag).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CriLines {
    data: Vec<u8>,
    /// One per line, in order.
    marks: Vec<Mark>,
    /// The newest Docker time among the lines (0: none).
    newest: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mark {
    nanos: i64,
    /// Where the line (with its `\n`) ends in `data`.
    end: usize,
}

impl CriLines {
    pub fn new() -> Self {
        Self::default()
    }

    /// The lines as bytes, ready to append.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// How many lines.
    pub fn len(&self) -> usize {
        self.marks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.marks.is_empty()
    }

    /// Docker's time of the newest line.
    pub fn newest(&self) -> Option<i64> {
        (!self.marks.is_empty()).then_some(self.newest)
    }

    /// Each line (with its `\n`) and its Docker time.
    pub fn lines(&self) -> impl Iterator<Item = (i64, &[u8])> {
        let mut start = 0;
        self.marks.iter().map(move |m| {
            let line = &self.data[start..m.end];
            start = m.end;
            (m.nanos, line)
        })
    }

    /// Empties it, keeping about `keep` bytes of room: a busy container's
    /// buffer is not regrown at every batch, an idle one's not held large.
    pub fn clear(&mut self, keep: usize) {
        self.data.clear();
        self.marks.clear();
        self.newest = 0;
        // Every line is over 40 bytes, so `marks` is bounded by `data`.
        if self.data.capacity() > 2 * keep {
            self.data.shrink_to(keep);
            self.marks.shrink_to(keep / 64);
        }
    }

    /// Lets its memory go, when it holds nothing (an idle container's).
    pub fn release(&mut self) {
        if self.marks.is_empty() && self.data.is_empty() {
            self.data = Vec::new();
            self.marks = Vec::new();
        }
    }

    /// The bytes it has room for.
    pub fn capacity(&self) -> usize {
        self.data.capacity()
    }

    /// Keeps the lines `keep` says yes to, asked once per line in order.
    pub fn retain(&mut self, mut keep: impl FnMut(i64) -> bool) {
        let (mut read, mut write) = (0, 0);
        let mut kept = 0;
        self.newest = 0;
        for i in 0..self.marks.len() {
            let Mark { nanos, end } = self.marks[i];
            if keep(nanos) {
                self.data.copy_within(read..end, write);
                write += end - read;
                self.marks[kept] = Mark { nanos, end: write };
                self.newest = self.newest.max(nanos);
                kept += 1;
            }
            read = end;
        }
        self.data.truncate(write);
        self.marks.truncate(kept);
    }

    /// Where it stands now, to go back to with [`CriLines::rollback`].
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            data: self.data.len(),
            marks: self.marks.len(),
            newest: self.newest,
        }
    }

    /// Drops whatever came after `at`.
    pub fn rollback(&mut self, at: Checkpoint) {
        self.data.truncate(at.data);
        self.marks.truncate(at.marks);
        self.newest = at.newest;
    }

    /// Appends the CRI lines of one Docker message; returns how many.
    /// Content bytes go through as they are, valid UTF-8 or not.
    ///
    /// The message is a whole line when it ends in `\n` (the `\n`, and a
    /// `\r` before it as a TTY sends, are dropped: the `F` tag stands for
    /// them). Without one, it is the first part of a longer line when it
    /// is exactly Docker's partial size; any other length is the output's
    /// last bytes before the stream closed, which end their line (`F`, as
    /// containerd writes them).
    pub fn push_message(
        &mut self,
        timestamp: &[u8],
        nanos: i64,
        stream: LogStream,
        content: &[u8],
    ) -> usize {
        let Some((body, complete)) = body_of(content) else {
            return 0;
        };
        // An empty line is still one line.
        let count = body.len().div_ceil(SPLIT_SIZE).max(1);
        for i in 0..count {
            let chunk = &body[i * SPLIT_SIZE..body.len().min((i + 1) * SPLIT_SIZE)];
            let tag = if i + 1 == count && complete {
                b'F'
            } else {
                b'P'
            };
            self.data.reserve(timestamp.len() + chunk.len() + 11);
            self.data.extend_from_slice(timestamp);
            self.data.push(b' ');
            self.data.extend_from_slice(stream.as_str().as_bytes());
            self.data.extend_from_slice(&[b' ', tag, b' ']);
            self.data.extend_from_slice(chunk);
            self.data.push(b'\n');
            self.mark(nanos);
        }
        count
    }

    /// Starts a line whose content a parser writes straight into place
    /// ([`Draft::content`]) before its timestamp and stream are known.
    pub fn draft(&mut self) -> Draft<'_> {
        let start = self.data.len();
        self.data.extend_from_slice(&[0; PREFIX_LEN]);
        Draft {
            lines: self,
            start,
            done: false,
        }
    }

    fn mark(&mut self, nanos: i64) {
        self.marks.push(Mark {
            nanos,
            end: self.data.len(),
        });
        self.newest = self.newest.max(nanos);
    }
}

/// The content without its line end, and whether it ends its line; `None`
/// for empty content (nothing to write).
fn body_of(content: &[u8]) -> Option<(&[u8], bool)> {
    if content.is_empty() {
        return None;
    }
    Some(match content.strip_suffix(b"\n") {
        Some(body) => (body.strip_suffix(b"\r").unwrap_or(body), true),
        None => (content, content.len() != DOCKER_PARTIAL_SIZE),
    })
}

/// A state of [`CriLines`] to roll back to.
#[derive(Debug, Clone, Copy)]
pub struct Checkpoint {
    data: usize,
    marks: usize,
    newest: i64,
}

/// A message being written into [`CriLines`]: its content goes first, into
/// place; [`Draft::finish`] fills in the rest. Dropped unfinished, it
/// leaves nothing behind.
pub struct Draft<'a> {
    lines: &'a mut CriLines,
    start: usize,
    done: bool,
}

impl Draft<'_> {
    /// Where the message's content is appended (nothing else may be).
    pub fn content(&mut self) -> &mut Vec<u8> {
        &mut self.lines.data
    }

    /// Turns the content written into the message's CRI lines; returns
    /// how many (none for empty content). Cut and tagged as
    /// [`CriLines::push_message`] does.
    pub fn finish(
        mut self,
        timestamp: &[u8; TIMESTAMP_LEN],
        nanos: i64,
        stream: LogStream,
    ) -> usize {
        self.done = true;
        let (start, data) = (self.start, &mut self.lines.data);
        let body = start + PREFIX_LEN;
        let Some((len, complete)) = body_of(&data[body..]).map(|(b, c)| (b.len(), c)) else {
            data.truncate(start);
            return 0;
        };
        if len > SPLIT_SIZE {
            // More than one CRI line (not from Docker's own files, whose
            // messages are at most its partial size): the general route.
            let content = data.split_off(body);
            data.truncate(start);
            return self.lines.push_message(timestamp, nanos, stream, &content);
        }
        // Most messages end in the `\n` their line needs.
        if data.len() != body + len + 1 || data.last() != Some(&b'\n') {
            data.truncate(body + len);
            data.push(b'\n');
        }
        let prefix = &mut data[start..body];
        prefix[..TIMESTAMP_LEN].copy_from_slice(timestamp);
        prefix[TIMESTAMP_LEN] = b' ';
        prefix[TIMESTAMP_LEN + 1..TIMESTAMP_LEN + 7].copy_from_slice(stream.as_str().as_bytes());
        let tag = if complete { b'F' } else { b'P' };
        prefix[TIMESTAMP_LEN + 7..].copy_from_slice(&[b' ', tag, b' ']);
        self.lines.mark(nanos);
        1
    }
}

impl Drop for Draft<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.lines.data.truncate(self.start);
        }
    }
}

#[cfg(test)]
mod tests;
