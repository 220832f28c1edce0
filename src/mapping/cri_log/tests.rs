use super::*;

const TS: &str = "2026-11-30T12:00:00.123456789Z";

fn ts() -> &'static [u8; TIMESTAMP_LEN] {
    TS.as_bytes().try_into().unwrap()
}

fn lines(stream: LogStream, content: &[u8]) -> Vec<u8> {
    let mut out = CriLines::new();
    out.push_message(TS.as_bytes(), 7, stream, content);
    // The direct route writes the same bytes.
    let mut direct = CriLines::new();
    let mut draft = direct.draft();
    draft.content().extend_from_slice(content);
    draft.finish(ts(), 7, stream);
    assert_eq!(direct, out, "{:?}", String::from_utf8_lossy(content));
    out.bytes().to_vec()
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
fn an_empty_line_is_kept_and_empty_content_is_nothing() {
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
    let text = String::from_utf8(lines(LogStream::Stdout, &content)).unwrap();
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

/// Three messages stamped 1, 2, 3; the second cut into two lines.
fn three() -> CriLines {
    let mut out = CriLines::new();
    out.push_message(TS.as_bytes(), 1, LogStream::Stdout, b"one\n");
    let mut long = vec![b'x'; SPLIT_SIZE + 1];
    long.push(b'\n');
    out.push_message(TS.as_bytes(), 2, LogStream::Stderr, &long);
    out.push_message(TS.as_bytes(), 3, LogStream::Stdout, b"three\n");
    out
}

#[test]
fn lines_carry_their_docker_time() {
    let out = three();
    assert_eq!(out.len(), 4);
    assert_eq!(out.newest(), Some(3));
    let times: Vec<i64> = out.lines().map(|(n, _)| n).collect();
    assert_eq!(times, [1, 2, 2, 3]);
    let joined: Vec<u8> = out.lines().flat_map(|(_, l)| l.to_vec()).collect();
    assert_eq!(joined, out.bytes());
    assert!(out.lines().all(|(_, l)| l.ends_with(b"\n")));
    assert_eq!(CriLines::new().newest(), None);
}

#[test]
fn retain_is_asked_per_line_in_order_and_keeps_the_rest_whole() {
    let mut out = three();
    let before: Vec<Vec<u8>> = out.lines().map(|(_, l)| l.to_vec()).collect();
    let mut asked = Vec::new();
    // Drops the first line and the first part of the long one.
    out.retain(|n| {
        asked.push(n);
        asked.len() > 2
    });
    assert_eq!(asked, [1, 2, 2, 3]);
    assert_eq!(out.len(), 2);
    assert_eq!(out.newest(), Some(3));
    assert_eq!(out.bytes(), [&before[2][..], &before[3][..]].concat());
    let tail: Vec<i64> = out.lines().map(|(n, _)| n).collect();
    assert_eq!(tail, [2, 3]);
}

#[test]
fn a_rollback_forgets_what_came_after_the_checkpoint() {
    let mut out = CriLines::new();
    out.push_message(TS.as_bytes(), 1, LogStream::Stdout, b"kept\n");
    let at = out.checkpoint();
    let whole = out.clone();
    out.push_message(TS.as_bytes(), 9, LogStream::Stdout, b"dropped\n");
    out.rollback(at);
    assert_eq!(out, whole);
    assert_eq!(out.newest(), Some(1));
}

#[test]
fn an_unfinished_draft_leaves_nothing() {
    let mut out = CriLines::new();
    out.push_message(TS.as_bytes(), 1, LogStream::Stdout, b"kept\n");
    let whole = out.clone();
    {
        let mut draft = out.draft();
        draft.content().extend_from_slice(b"half a parse");
    }
    assert_eq!(out, whole);
}

#[test]
fn clear_lets_a_large_buffer_go() {
    let mut out = CriLines::new();
    out.push_message(TS.as_bytes(), 1, LogStream::Stdout, &[b'z'; 100_000]);
    out.clear(4096);
    assert!(out.is_empty() && out.bytes().is_empty());
    assert!(out.data.capacity() < 10_000, "{}", out.data.capacity());
    assert_eq!(out.newest(), None);
}

#[test]
fn release_lets_go_only_of_an_empty_buffer() {
    let mut out = CriLines::new();
    out.push_message(TS.as_bytes(), 1, LogStream::Stdout, b"kept\n");
    let whole = out.clone();
    out.release();
    assert_eq!(out, whole);
    out.clear(1 << 20);
    assert!(out.capacity() > 0);
    out.release();
    assert_eq!(out.capacity(), 0);
}
