//! One line of Docker's json-file log → a message.
//!
//! Docker writes `{"log":"…","stream":"stdout","time":"…"}` per line (with
//! `"attrs":{…}` before `"time"` when log options ask for labels or env,
//! and no `"log"` at all for empty content). The scanner here reads that
//! shape without building a tree: keys in any order, unknown keys skipped,
//! the content unescaped straight into the caller's buffer. Anything it
//! does not understand goes to serde_json, so an odd line costs time, not
//! correctness; a line neither can read is an error the caller skips.

use std::cell::Cell;
use std::ops::Range;

use bytes::BytesMut;
use serde::Deserialize;

use crate::docker::logs::LogStream;
use crate::mapping::time::rfc3339_nanos;

/// Docker's API sends timestamps as `2006-01-02T15:04:05.000000000Z`; the
/// file has Go's RFC3339Nano (trailing zeros of the fraction trimmed).
/// Messages from both sources carry the fixed form, so CRI files look the
/// same whichever source wrote them.
const FIXED_LEN: usize = 30;

/// A parsed line: its stream and time, and where its timestamp and content
/// were put in the output buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub stream: LogStream,
    pub nanos: i64,
    pub timestamp: Range<usize>,
    pub content: Range<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not a json-file log entry: {0}")]
    Malformed(String),
    #[error("log entry without a valid \"time\"")]
    NoTime,
    #[error("log entry with stream {0:?}")]
    Stream(String),
}

/// Parses `line` (without its `\n`), appending the timestamp and then the
/// content to `out`. On error `out` is left as it was.
pub fn parse_line(line: &[u8], out: &mut BytesMut) -> Result<Parsed, ParseError> {
    let mark = out.len();
    if let Some(parsed) = Scanner::new(line).entry(out) {
        return Ok(parsed);
    }
    out.truncate(mark);
    parse_general(line, out).inspect_err(|_| out.truncate(mark))
}

/// The general route: whatever serde_json accepts as an object with these
/// fields.
fn parse_general(line: &[u8], out: &mut BytesMut) -> Result<Parsed, ParseError> {
    #[derive(Deserialize)]
    struct Entry {
        #[serde(default)]
        log: String,
        #[serde(default)]
        stream: String,
        time: Option<String>,
    }
    let entry: Entry =
        serde_json::from_slice(line).map_err(|e| ParseError::Malformed(e.to_string()))?;
    let stream = stream_of(entry.stream.as_bytes())
        .ok_or_else(|| ParseError::Stream(entry.stream.clone()))?;
    let time = entry.time.ok_or(ParseError::NoTime)?;
    let (nanos, timestamp) = put_time(time.as_bytes(), out).ok_or(ParseError::NoTime)?;
    let start = out.len();
    out.extend_from_slice(entry.log.as_bytes());
    Ok(Parsed {
        stream,
        nanos,
        timestamp,
        content: start..out.len(),
    })
}

fn stream_of(name: &[u8]) -> Option<LogStream> {
    match name {
        b"stdout" => Some(LogStream::Stdout),
        b"stderr" => Some(LogStream::Stderr),
        _ => None,
    }
}

/// Appends the fixed-width form of an RFC 3339 time; one with an offset
/// other than `Z` (Docker writes UTC) goes as it is. Returns its nanos and
/// where it went.
fn put_time(text: &[u8], out: &mut BytesMut) -> Option<(i64, Range<usize>)> {
    let nanos = match utc_nanos(text) {
        Some(nanos) => nanos,
        None => rfc3339_nanos(std::str::from_utf8(text).ok()?)?,
    };
    let start = out.len();
    match text.split_last() {
        Some((b'Z', head)) if head.len() >= 19 => {
            let (secs, frac) = head.split_at(19);
            let digits = frac.strip_prefix(b".").unwrap_or(frac);
            let n = digits.len().min(9);
            // Built on the stack, appended once: this runs for every line.
            let mut fixed = [b'0'; FIXED_LEN];
            fixed[..19].copy_from_slice(secs);
            fixed[19] = b'.';
            fixed[20..20 + n].copy_from_slice(&digits[..n]);
            fixed[FIXED_LEN - 1] = b'Z';
            out.extend_from_slice(&fixed);
        }
        _ => out.extend_from_slice(text),
    }
    Some((nanos, start..out.len()))
}

thread_local! {
    /// The last whole second parsed on this thread, as text and as Unix
    /// seconds: lines come in bursts, and a burst mostly shares its second.
    static LAST_SECOND: Cell<([u8; 19], i64)> = const { Cell::new(([0; 19], 0)) };
}

/// Docker's own shape, `2006-01-02T15:04:05[.fraction]Z`, to nanoseconds;
/// `None` for anything else (the general parser takes it). Only a second
/// not seen last on this thread goes through the calendar arithmetic.
fn utc_nanos(text: &[u8]) -> Option<i64> {
    let (head, rest) = (text.get(..19)?, &text[19..]);
    let digits = match rest.strip_suffix(b"Z")? {
        [] => &[][..],
        [b'.', d @ ..] if (1..=9).contains(&d.len()) => d,
        _ => return None,
    };
    let mut frac = 0i64;
    for d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        frac = frac * 10 + i64::from(d - b'0');
    }
    frac *= 10i64.pow(9 - digits.len() as u32);
    let (cached, secs) = LAST_SECOND.with(Cell::get);
    let secs = if cached == head {
        secs
    } else {
        let mut whole = [b'Z'; 20];
        whole[..19].copy_from_slice(head);
        let secs = rfc3339_nanos(std::str::from_utf8(&whole).ok()?)? / 1_000_000_000;
        let mut key = [0u8; 19];
        key.copy_from_slice(head);
        LAST_SECOND.with(|c| c.set((key, secs)));
        secs
    };
    secs.checked_mul(1_000_000_000)?.checked_add(frac)
}

/// The fast route; `None` hands the line to serde_json.
struct Scanner<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    fn new(b: &'a [u8]) -> Self {
        Scanner { b, at: 0 }
    }

    fn entry(&mut self, out: &mut BytesMut) -> Option<Parsed> {
        let mark = out.len();
        let mut stream = None;
        let mut content = None;
        let mut time: Option<Range<usize>> = None;
        self.skip_ws();
        self.expect(b'{')?;
        loop {
            self.skip_ws();
            let key = self.raw_string()?;
            self.skip_ws();
            self.expect(b':')?;
            self.skip_ws();
            match key {
                b"log" => {
                    let start = out.len();
                    self.string_into(out)?;
                    content = Some(start..out.len());
                }
                b"stream" => stream = Some(stream_of(self.raw_string()?)?),
                b"time" => {
                    let start = self.at + 1;
                    self.raw_string()?;
                    time = Some(start..self.at - 1);
                }
                _ => self.skip_value()?,
            }
            self.skip_ws();
            match self.next()? {
                b',' => continue,
                b'}' => break,
                _ => return None,
            }
        }
        self.skip_ws();
        if self.at != self.b.len() {
            return None;
        }
        // The timestamp goes after the content in the buffer; the ranges
        // say where each is.
        let (nanos, timestamp) = put_time(&self.b[time?], out)?;
        let content = content.unwrap_or(mark..mark);
        Some(Parsed {
            stream: stream?,
            nanos,
            timestamp,
            content,
        })
    }

    fn next(&mut self) -> Option<u8> {
        let c = *self.b.get(self.at)?;
        self.at += 1;
        Some(c)
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    fn skip_ws(&mut self) {
        while matches!(self.b.get(self.at), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.at += 1;
        }
    }

    /// A string without escapes (keys, stream names, times), as its bytes.
    fn raw_string(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let rest = &self.b[self.at..];
        let end = memchr::memchr2(b'"', b'\\', rest)?;
        if rest[end] != b'"' {
            return None;
        }
        self.at += end + 1;
        Some(&rest[..end])
    }

    /// A string, unescaped onto `out`.
    fn string_into(&mut self, out: &mut BytesMut) -> Option<()> {
        self.expect(b'"')?;
        loop {
            let rest = &self.b[self.at..];
            let run = memchr::memchr2(b'"', b'\\', rest)?;
            // Raw control bytes (which JSON forbids and Docker never
            // writes: it escapes them) pass as they are; looking for them
            // would cost a pass over every byte of every line.
            out.extend_from_slice(&rest[..run]);
            self.at += run + 1;
            if rest[run] == b'"' {
                return Some(());
            }
            let c = match self.next()? {
                b'n' => b'\n',
                b't' => b'\t',
                b'r' => b'\r',
                b'"' => b'"',
                b'\\' => b'\\',
                b'/' => b'/',
                b'b' => 0x08,
                b'f' => 0x0c,
                b'u' => {
                    let ch = self.unicode_escape()?;
                    let mut utf8 = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut utf8).as_bytes());
                    continue;
                }
                _ => return None,
            };
            out.extend_from_slice(&[c]);
        }
    }

    /// After `\u`: four hex digits, and a low surrogate's escape after a
    /// high one. A lone surrogate becomes U+FFFD, as Go's decoder makes it
    /// (Docker writes invalid UTF-8 as `\ufffd` itself).
    fn unicode_escape(&mut self) -> Option<char> {
        let first = self.hex4()?;
        if !(0xD800..0xDC00).contains(&first) {
            return Some(char::from_u32(first).unwrap_or(char::REPLACEMENT_CHARACTER));
        }
        let save = self.at;
        if self.b.get(self.at..self.at + 2) == Some(b"\\u") {
            self.at += 2;
            if let Some(low) = self.hex4().filter(|l| (0xDC00..0xE000).contains(l)) {
                let code = 0x10000 + ((first - 0xD800) << 10) + (low - 0xDC00);
                return Some(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
            }
        }
        // Not a pair: the next escape is read on its own.
        self.at = save;
        Some(char::REPLACEMENT_CHARACTER)
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.b.get(self.at..self.at + 4)?;
        let mut v = 0;
        for d in digits {
            v = v * 16 + (*d as char).to_digit(16)?;
        }
        self.at += 4;
        Some(v)
    }

    /// Skips any JSON value (an unknown key's, e.g. `attrs`). Strings are
    /// skipped escape-aware; nesting is counted; scalars run to the next
    /// delimiter. Validity is not checked beyond what finding the end needs.
    fn skip_value(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            let c = *self.b.get(self.at)?;
            match c {
                b'"' => self.skip_string()?,
                b'{' | b'[' => {
                    depth += 1;
                    self.at += 1;
                }
                // The enclosing object's end: a scalar value ended.
                b'}' | b']' if depth == 0 => return Some(()),
                b'}' | b']' => {
                    depth -= 1;
                    self.at += 1;
                }
                b',' if depth == 0 => return Some(()),
                _ => self.at += 1,
            }
            if depth == 0 && matches!(c, b'"' | b'}' | b']') {
                return Some(());
            }
        }
    }

    fn skip_string(&mut self) -> Option<()> {
        self.expect(b'"')?;
        loop {
            let rest = &self.b[self.at..];
            let run = memchr::memchr2(b'"', b'\\', rest)?;
            self.at += run + 1;
            if rest[run] == b'"' {
                return Some(());
            }
            self.at += 1; // the escaped byte (a `\u`'s digits are plain)
        }
    }
}

#[cfg(test)]
mod tests;
