//! Where a log file stopped, read from its tail, and which of Docker's
//! resent lines to skip so that nothing is written twice.
//!
//! Docker's file order is the truth, but its timestamps are not strictly
//! increasing in it: stdout and stderr are copied by separate goroutines,
//! and all parts of a long line carry the first part's timestamp. So the
//! position is the last line's timestamp `L` and how many written lines
//! carry exactly `L`; resuming skips Docker's lines up to and including
//! the `count`-th one stamped `L`, and keeps everything after it.

use serde::{Deserialize, Serialize};

use crate::mapping::time::rfc3339_nanos;

/// How far before `L` (in timestamp) lines are looked at when counting
/// lines stamped `L`, and how far past it a line may come before the
/// resume anchor counts as lost (rotated away by Docker).
pub const REORDER_WINDOW_NANOS: i64 = 1_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The last written line's Docker timestamp.
    pub nanos: i64,
    /// Written lines stamped exactly `nanos`.
    pub count: u64,
}

/// What a tail scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailScan {
    /// The scan needs bytes from further back in the file.
    NeedMore,
    Done {
        position: Option<Position>,
        /// Offset (within the scanned bytes) just past the last complete
        /// line: anything after it is a torn write, to be cut off.
        complete_len: usize,
    },
}

/// Scans `buf`, the last bytes of a CRI log file; `from_start` says whether
/// it is the whole file (otherwise its first line may be cut and is not
/// trusted).
pub fn scan_tail(buf: &[u8], from_start: bool) -> TailScan {
    let complete_len = match buf.iter().rposition(|b| *b == b'\n') {
        Some(i) => i + 1,
        None if from_start => {
            return TailScan::Done {
                position: None,
                complete_len: 0,
            };
        }
        None => return TailScan::NeedMore,
    };
    let body = &buf[..complete_len - 1];
    let mut lines = body.rsplit(|b| *b == b'\n').peekable();
    let mut last: Option<i64> = None;
    let mut count = 0u64;
    while let Some(line) = lines.next() {
        // The first line of a window that does not start the file may be cut.
        if lines.peek().is_none() && !from_start {
            return TailScan::NeedMore;
        }
        let Some(nanos) = line_nanos(line) else {
            continue;
        };
        match last {
            None => {
                last = Some(nanos);
                count = 1;
            }
            Some(l) if nanos == l => count += 1,
            Some(l) if nanos < l.saturating_sub(REORDER_WINDOW_NANOS) => break,
            Some(_) => {}
        }
    }
    TailScan::Done {
        position: last.map(|nanos| Position { nanos, count }),
        complete_len,
    }
}

/// The timestamp of one CRI line (without its `\n`).
pub fn line_nanos(line: &[u8]) -> Option<i64> {
    let end = line.iter().position(|b| *b == b' ')?;
    rfc3339_nanos(std::str::from_utf8(&line[..end]).ok()?)
}

/// The later of two positions (a tail against a saved one).
pub fn later(a: Option<Position>, b: Option<Position>) -> Option<Position> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.nanos > a.nanos { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// Decides, line by line in Docker's order, what is new after a position.
#[derive(Debug)]
pub struct Skip {
    anchor: Option<Position>,
    seen: u64,
}

impl Skip {
    pub fn new(position: Option<Position>) -> Self {
        Skip {
            anchor: position.filter(|p| p.count > 0),
            seen: 0,
        }
    }

    /// The `since` (nanoseconds) to ask Docker for.
    pub fn since(&self) -> Option<i64> {
        self.anchor.map(|p| p.nanos)
    }

    pub fn is_skipping(&self) -> bool {
        self.anchor.is_some()
    }

    /// Whether the next line, stamped `nanos`, is new.
    pub fn keep(&mut self, nanos: i64) -> bool {
        let Some(anchor) = self.anchor else {
            return true;
        };
        if nanos == anchor.nanos {
            self.seen += 1;
            if self.seen >= anchor.count {
                self.anchor = None;
            }
            return false;
        }
        if nanos > anchor.nanos.saturating_add(REORDER_WINDOW_NANOS) {
            // The anchor is gone from Docker's buffer: keep from here.
            tracing::warn!(
                anchor = anchor.nanos,
                "log resume position no longer in Docker's log; output may be missing"
            );
            self.anchor = None;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &str = "2026-11-30T12:00:01.000000000Z";
    const T2: &str = "2026-11-30T12:00:02.000000000Z";
    const T2_5: &str = "2026-11-30T12:00:02.500000000Z";
    const T9: &str = "2026-11-30T12:00:09.000000000Z";

    fn n(ts: &str) -> i64 {
        rfc3339_nanos(ts).unwrap()
    }

    fn file(lines: &[(&str, &str, &str)]) -> Vec<u8> {
        lines
            .iter()
            .flat_map(|(ts, tag, text)| format!("{ts} stdout {tag} {text}\n").into_bytes())
            .collect()
    }

    #[test]
    fn empty_file_has_no_position() {
        assert_eq!(
            scan_tail(b"", true),
            TailScan::Done {
                position: None,
                complete_len: 0
            }
        );
    }

    #[test]
    fn last_line_and_its_same_timestamp_siblings() {
        let buf = file(&[
            (T1, "F", "a"),
            (T2, "P", "b1"),
            (T2, "P", "b2"),
            (T2, "F", "b3"),
        ]);
        assert_eq!(
            scan_tail(&buf, true),
            TailScan::Done {
                position: Some(Position {
                    nanos: n(T2),
                    count: 3
                }),
                complete_len: buf.len()
            }
        );
    }

    #[test]
    fn same_timestamp_lines_apart_are_counted() {
        // A stderr line stamped earlier lands between parts of a line.
        let buf = file(&[(T2, "P", "x1"), (T1, "F", "err"), (T2, "F", "x2")]);
        let TailScan::Done { position, .. } = scan_tail(&buf, true) else {
            panic!("whole file given");
        };
        assert_eq!(position.map(|p| p.count), Some(2));
    }

    #[test]
    fn a_torn_last_line_is_cut_off() {
        let mut buf = file(&[(T1, "F", "a"), (T2, "F", "b")]);
        let complete = buf.len();
        buf.extend_from_slice(format!("{T9} stdout F half-writ").as_bytes());
        assert_eq!(
            scan_tail(&buf, true),
            TailScan::Done {
                position: Some(Position {
                    nanos: n(T2),
                    count: 1
                }),
                complete_len: complete
            }
        );
    }

    #[test]
    fn a_window_that_may_cut_the_count_asks_for_more() {
        let buf = file(&[(T2, "P", "b1"), (T2, "F", "b2")]);
        // Not the start of the file: the first line may be cut.
        assert_eq!(scan_tail(&buf, false), TailScan::NeedMore);
        assert_eq!(scan_tail(b"no newline at all", false), TailScan::NeedMore);
        // An old enough line before them ends the scan.
        let buf = file(&[(T1, "F", "cut?"), (T1, "F", "a"), (T9, "F", "z")]);
        assert!(matches!(scan_tail(&buf, false), TailScan::Done { .. }));
    }

    #[test]
    fn skip_drops_up_to_the_counted_anchor() {
        let mut skip = Skip::new(Some(Position {
            nanos: n(T2),
            count: 2,
        }));
        assert_eq!(skip.since(), Some(n(T2)));
        // Docker resends from the second: earlier lines, then the anchor.
        let got: Vec<bool> = [T1, T2, T1, T2, T2, T2_5, T1]
            .iter()
            .map(|t| skip.keep(n(t)))
            .collect();
        assert_eq!(got, [false, false, false, false, true, true, true]);
    }

    #[test]
    fn skip_gives_up_on_a_lost_anchor() {
        let mut skip = Skip::new(Some(Position {
            nanos: n(T1),
            count: 1,
        }));
        assert!(!skip.keep(n(T1) + 10));
        assert!(skip.keep(n(T9)));
        assert!(!skip.is_skipping());
    }

    #[test]
    fn no_position_keeps_everything() {
        let mut skip = Skip::new(None);
        assert!(skip.keep(0) && skip.keep(n(T1)));
        assert_eq!(skip.since(), None);
    }

    #[test]
    fn later_prefers_the_newer_timestamp() {
        let a = Position { nanos: 5, count: 1 };
        let b = Position { nanos: 7, count: 2 };
        assert_eq!(later(Some(a), Some(b)), Some(b));
        assert_eq!(later(Some(b), Some(a)), Some(b));
        assert_eq!(later(None, Some(a)), Some(a));
        assert_eq!(later(None, None), None);
    }
}
