//! One line of Docker's json-file log → its CRI lines.
//!
//! Docker writes `{"log":"…","stream":"stdout","time":"…"}` per line (with
//! `"attrs":{…}` before `"time"` when log options ask for labels or env,
//! and no `"log"` at all for empty content). That exact shape is matched
//! as it is; otherwise a scanner reads it without building a tree: keys in
//! any order, unknown keys skipped. Either way the content is unescaped
//! straight into its CRI line. Anything the scanner does not understand
//! goes to serde_json, so an odd line costs time, not correctness; a line
//! none can read is an error the caller skips.

use serde::Deserialize;

use crate::docker::logs::{CriLines, LogStream};
use crate::mapping::cri_log::TIMESTAMP_LEN;
use crate::mapping::time::rfc3339_nanos;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not a json-file log entry: {0}")]
    Malformed(String),
    #[error("log entry without a valid \"time\"")]
    NoTime,
    #[error("log entry with stream {0:?}")]
    Stream(String),
}

/// What Docker 20.10 to 27 write, around the content and the time.
const LOG_KEY: &[u8] = b"{\"log\":\"";
const STDOUT_TIME: &[u8] = b",\"stream\":\"stdout\",\"time\":\"";
const STDERR_TIME: &[u8] = b",\"stream\":\"stderr\",\"time\":\"";

/// Reads one file's lines; remembers the last whole second it parsed, as
/// lines come in bursts that mostly share their second.
#[derive(Debug, Default)]
pub struct Parser {
    /// The date and time to the second, as text and as Unix seconds.
    second: Option<([u8; 19], i64)>,
}

impl Parser {
    /// Parses `line` (without its `\n`) into the CRI lines it makes,
    /// appended to `out`; returns Docker's time of it. On error `out` is
    /// left as it was.
    pub fn line(&mut self, line: &[u8], out: &mut CriLines) -> Result<i64, ParseError> {
        if let Some(nanos) = self.docker_shape(line, out) {
            return Ok(nanos);
        }
        if let Some(nanos) = Scanner::new(line).entry(self, out) {
            return Ok(nanos);
        }
        self.general(line, out)
    }

    /// The exact shape Docker writes, `{"log":"…","stream":"stdout",
    /// "time":"…Z"}`: no key to look for, the content unescaped straight
    /// into its CRI line.
    fn docker_shape(&mut self, line: &[u8], out: &mut CriLines) -> Option<i64> {
        let rest = line.strip_prefix(LOG_KEY)?;
        let mut draft = out.draft();
        let mut scan = Scanner::new(rest);
        scan.string_body_into(draft.content())?;
        let rest = &rest[scan.at..];
        let (stream, rest) = match rest.strip_prefix(STDOUT_TIME) {
            Some(rest) => (LogStream::Stdout, rest),
            None => (LogStream::Stderr, rest.strip_prefix(STDERR_TIME)?),
        };
        let (nanos, timestamp) = self.fixed_time(rest.strip_suffix(b"\"}")?)?;
        draft.finish(&timestamp, nanos, stream);
        Some(nanos)
    }

    /// The general route: whatever serde_json accepts as an object with
    /// these fields, and times with an offset (Docker writes UTC), which
    /// go into the line as they are.
    fn general(&mut self, line: &[u8], out: &mut CriLines) -> Result<i64, ParseError> {
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
        let (nanos, fixed) = match self.fixed_time(time.as_bytes()) {
            Some((nanos, fixed)) => (nanos, Some(fixed)),
            None => {
                let nanos = rfc3339_nanos(&time).ok_or(ParseError::NoTime)?;
                // A UTC time with more digits than nanoseconds (or a bare
                // `.`) still gets the fixed width, cut to nine digits.
                let fixed = nine_digits(time.as_bytes())
                    .and_then(|t| self.fixed_time(&t))
                    .map(|(_, fixed)| fixed);
                (nanos, fixed)
            }
        };
        let timestamp = fixed.as_ref().map_or(time.as_bytes(), |f| &f[..]);
        out.push_message(timestamp, nanos, stream, entry.log.as_bytes());
        Ok(nanos)
    }

    /// Docker's own shape, `2006-01-02T15:04:05[.fraction]Z`, to its
    /// nanoseconds and the fixed-width form Docker's API sends (so CRI
    /// files look the same whichever way the log was read); `None` for
    /// anything else. Only a second not seen last goes through the
    /// calendar arithmetic.
    fn fixed_time(&mut self, text: &[u8]) -> Option<(i64, [u8; TIMESTAMP_LEN])> {
        let (head, rest) = (text.get(..19)?, &text[19..]);
        let digits = match rest.strip_suffix(b"Z")? {
            [] => &[][..],
            [b'.', d @ ..] if (1..=9).contains(&d.len()) => d,
            _ => return None,
        };
        let mut fixed = [b'0'; TIMESTAMP_LEN];
        fixed[..19].copy_from_slice(head);
        fixed[19] = b'.';
        fixed[20..20 + digits.len()].copy_from_slice(digits);
        fixed[TIMESTAMP_LEN - 1] = b'Z';
        // Padded, the fraction is always nine digits: a loop of fixed
        // length, no scaling.
        let mut frac = 0i64;
        for d in &fixed[20..TIMESTAMP_LEN - 1] {
            let v = d.wrapping_sub(b'0');
            if v > 9 {
                return None;
            }
            frac = frac * 10 + i64::from(v);
        }
        let secs = match self.second {
            Some((text, secs)) if text == head => secs,
            _ => {
                let mut whole = [b'Z'; 20];
                whole[..19].copy_from_slice(head);
                let secs = rfc3339_nanos(std::str::from_utf8(&whole).ok()?)? / 1_000_000_000;
                self.second = Some((fixed[..19].try_into().ok()?, secs));
                secs
            }
        };
        let nanos = secs.checked_mul(1_000_000_000)?.checked_add(frac)?;
        Some((nanos, fixed))
    }
}

/// `…:05.<digits>Z` with the fraction cut to at most nine digits (none
/// for a bare `.`); `None` when that changes nothing or it is not the shape.
fn nine_digits(text: &[u8]) -> Option<Vec<u8>> {
    let fraction = text.strip_suffix(b"Z")?.get(19..)?.strip_prefix(b".")?;
    if (1..=9).contains(&fraction.len()) {
        return None;
    }
    let mut cut = text[..19].to_vec();
    if !fraction.is_empty() {
        cut.push(b'.');
        cut.extend_from_slice(&fraction[..9]);
    }
    cut.push(b'Z');
    Some(cut)
}

fn stream_of(name: &[u8]) -> Option<LogStream> {
    match name {
        b"stdout" => Some(LogStream::Stdout),
        b"stderr" => Some(LogStream::Stderr),
        _ => None,
    }
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

    /// The line's time; its CRI lines appended to `out`.
    fn entry(&mut self, parser: &mut Parser, out: &mut CriLines) -> Option<i64> {
        let mut draft = out.draft();
        let content_start = draft.content().len();
        let mut stream = None;
        let mut time: Option<&[u8]> = None;
        self.skip_ws();
        self.expect(b'{')?;
        loop {
            self.skip_ws();
            let key = self.raw_string()?;
            self.skip_ws();
            self.expect(b':')?;
            self.skip_ws();
            match key {
                // A key given twice: the last value counts, as in Go.
                b"log" => {
                    draft.content().truncate(content_start);
                    self.string_into(draft.content())?;
                }
                b"stream" => stream = Some(stream_of(self.raw_string()?)?),
                b"time" => time = Some(self.raw_string()?),
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
        let (nanos, timestamp) = parser.fixed_time(time?)?;
        draft.finish(&timestamp, nanos, stream?);
        Some(nanos)
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
    fn string_into(&mut self, out: &mut Vec<u8>) -> Option<()> {
        self.expect(b'"')?;
        self.string_body_into(out)
    }

    /// The rest of a string after its opening quote, unescaped onto `out`.
    fn string_body_into(&mut self, out: &mut Vec<u8>) -> Option<()> {
        loop {
            let rest = &self.b[self.at..];
            // After an escape the string often ends at once (a line's `\n`
            // is its last character): no search for that.
            let run = match rest.first() {
                Some(b'"') => 0,
                _ => memchr::memchr2(b'"', b'\\', rest)?,
            };
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
            out.push(c);
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
            // The escaped byte (a `\u`'s digits are plain); a line that
            // ends in the backslash is cut short: not this route's.
            self.next()?;
        }
    }
}

#[cfg(test)]
mod tests;
