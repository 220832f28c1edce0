//! The CRI log line format kubelet and crictl parse:
//! `<RFC 3339 timestamp> <stdout|stderr> <P|F> <content>\n`.

use crate::docker::logs::{DOCKER_PARTIAL_SIZE, LogStream};

/// Content longer than this is cut into `P` lines and a last `F` line, as
/// containerd does (kubelet joins them back).
pub const SPLIT_SIZE: usize = 16 * 1024;

/// Appends the CRI lines for one Docker message to `out`. Content bytes go
/// through as they are, valid UTF-8 or not.
///
/// Docker's message is a whole line when it ends in `\n` (the `\n`, and a
/// `\r` before it as a TTY sends, are dropped: the `F` tag stands for
/// them). Without one, it is the first part of a longer line when it is
/// exactly Docker's partial size; any other length is the output's last
/// bytes before the stream closed, which end their line (`F`, as
/// containerd writes them).
///
/// `keep` is asked once per line, in order, whether to write it (the
/// resume skip); returns how many lines were written.
pub fn encode(
    out: &mut Vec<u8>,
    timestamp: &[u8],
    stream: LogStream,
    content: &[u8],
    mut keep: impl FnMut() -> bool,
) -> usize {
    let (body, complete) = match content.strip_suffix(b"\n") {
        Some(body) => (body.strip_suffix(b"\r").unwrap_or(body), true),
        None => (content, content.len() != DOCKER_PARTIAL_SIZE),
    };
    if content.is_empty() {
        return 0;
    }
    let mut written = 0;
    // An empty line is still one line.
    let count = body.len().div_ceil(SPLIT_SIZE).max(1);
    for i in 0..count {
        let chunk = &body[i * SPLIT_SIZE..body.len().min((i + 1) * SPLIT_SIZE)];
        let last = i + 1 == count;
        let tag = if last && complete { b'F' } else { b'P' };
        if keep() {
            out.reserve(timestamp.len() + chunk.len() + 12);
            out.extend_from_slice(timestamp);
            out.push(b' ');
            out.extend_from_slice(stream.as_str().as_bytes());
            out.push(b' ');
            out.push(tag);
            out.push(b' ');
            out.extend_from_slice(chunk);
            out.push(b'\n');
            written += 1;
        }
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: &str = "2026-11-30T12:00:00.123456789Z";

    fn lines(stream: LogStream, content: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&mut out, TS.as_bytes(), stream, content, || true);
        out
    }

    #[test]
    fn a_whole_line_is_one_f_line() {
        assert_eq!(
            lines(LogStream::Stdout, b"hello world\n"),
            format!("{TS} stdout F hello world\n").as_bytes()
        );
        assert_eq!(
            lines(LogStream::Stderr, b"oops\n"),
            format!("{TS} stderr F oops\n").as_bytes()
        );
    }

    #[test]
    fn an_empty_line_is_kept() {
        assert_eq!(
            lines(LogStream::Stdout, b"\n"),
            format!("{TS} stdout F \n").as_bytes()
        );
        assert!(lines(LogStream::Stdout, b"").is_empty());
    }

    #[test]
    fn a_message_without_newline_is_partial_only_at_dockers_partial_size() {
        let part = vec![b'p'; DOCKER_PARTIAL_SIZE];
        let text = String::from_utf8(lines(LogStream::Stdout, &part)).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(text.starts_with(&format!("{TS} stdout P ppp")));
        // The last bytes a container printed, with no newline.
        assert_eq!(
            lines(LogStream::Stdout, b"no end"),
            format!("{TS} stdout F no end\n").as_bytes()
        );
    }

    #[test]
    fn crlf_loses_the_cr() {
        assert_eq!(
            lines(LogStream::Stdout, b"tty line\r\n"),
            format!("{TS} stdout F tty line\n").as_bytes()
        );
        // A lone \r inside a line is content.
        assert_eq!(
            lines(LogStream::Stdout, b"a\rb\n"),
            format!("{TS} stdout F a\rb\n").as_bytes()
        );
    }

    #[test]
    fn invalid_utf8_passes_through() {
        let out = lines(LogStream::Stdout, b"\xff\xfe bytes \xc3\n");
        let mut want = format!("{TS} stdout F ").into_bytes();
        want.extend_from_slice(b"\xff\xfe bytes \xc3\n");
        assert_eq!(out, want);
    }

    #[test]
    fn exactly_the_split_size_is_one_line() {
        let mut content = vec![b'a'; SPLIT_SIZE];
        content.push(b'\n');
        let out = lines(LogStream::Stdout, &content);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(text.starts_with(&format!("{TS} stdout F aaa")));
    }

    #[test]
    fn longer_lines_are_p_chunks_then_f() {
        // The last bytes before the stream closed, longer than a line.
        let text = String::from_utf8(lines(LogStream::Stderr, &[b'q'; SPLIT_SIZE + 1])).unwrap();
        let tags: Vec<&str> = text
            .lines()
            .map(|l| &l[TS.len() + 8..TS.len() + 9])
            .collect();
        assert_eq!(tags, ["P", "F"]);
        let mut content = vec![b'b'; 2 * SPLIT_SIZE + 5];
        content.push(b'\n');
        let text = String::from_utf8(lines(LogStream::Stderr, &content)).unwrap();
        let got: Vec<(&str, usize)> = text
            .lines()
            .map(|l| {
                let mut parts = l.splitn(4, ' ');
                assert_eq!(parts.next(), Some(TS));
                assert_eq!(parts.next(), Some("stderr"));
                (parts.next().unwrap(), parts.next().unwrap().len())
            })
            .collect();
        assert_eq!(got, vec![("P", SPLIT_SIZE), ("P", SPLIT_SIZE), ("F", 5)]);
    }

    #[test]
    fn keep_is_asked_per_line_in_order() {
        let mut content = vec![b'c'; SPLIT_SIZE + 1];
        content.push(b'\n');
        let mut asked = 0;
        let mut out = Vec::new();
        let written = encode(&mut out, TS.as_bytes(), LogStream::Stdout, &content, || {
            asked += 1;
            asked > 1
        });
        assert_eq!((asked, written), (2, 1));
        assert_eq!(out, format!("{TS} stdout F c\n").as_bytes());
    }
}
