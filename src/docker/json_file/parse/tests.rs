use super::*;

/// Lines as Docker 20.10 wrote them for `printf` output with tabs, quotes,
/// `<&>`, a NUL, a control byte, invalid UTF-8, non-ASCII and labels.
const TAB: &str = r#"{"log":"tab\u0009here \"q\" back\\slash \u003ca\u0026b\u003e\n","stream":"stdout","attrs":{"lbl":"v1"},"time":"2026-11-30T15:56:59.446225999Z"}"#;
const CTRL: &str = r#"{"log":"nul\u0000ctl\u0001 bad\ufffdutf é ☃ 😀\n","stream":"stderr","attrs":{"lbl":"v1"},"time":"2026-11-30T15:56:59.446254902Z"}"#;
const PARTIAL: &str =
    r#"{"log":"no newline at end","stream":"stdout","time":"2026-11-30T15:56:59.48941966Z"}"#;

const PLAIN: &str =
    r#"{"log":"plain \"line\"\n","stream":"stderr","time":"2026-11-30T15:56:59.1Z"}"#;

/// One CRI line, taken apart.
#[derive(Debug, PartialEq, Eq)]
struct Got {
    stream: LogStream,
    nanos: i64,
    timestamp: String,
    tag: char,
    content: Vec<u8>,
}

fn got(lines: &CriLines) -> Got {
    assert_eq!(
        lines.len(),
        1,
        "{:?}",
        String::from_utf8_lossy(lines.bytes())
    );
    let (nanos, line) = lines.lines().next().unwrap();
    let line = line.strip_suffix(b"\n").unwrap();
    let space = line.iter().position(|b| *b == b' ').unwrap();
    let (timestamp, rest) = (&line[..space], &line[space + 1..]);
    let stream = match &rest[..7] {
        b"stdout " => LogStream::Stdout,
        b"stderr " => LogStream::Stderr,
        other => panic!("stream {other:?}"),
    };
    assert_eq!(rest[8], b' ');
    Got {
        stream,
        nanos,
        timestamp: String::from_utf8(timestamp.to_vec()).unwrap(),
        tag: rest[7] as char,
        content: rest[9..].to_vec(),
    }
}

/// The whole parser, after a line already there.
fn parse(line: &str) -> Result<Got, ParseError> {
    let mut out = CriLines::new();
    let nanos = Parser::default().line(line.as_bytes(), &mut out)?;
    let got = got(&out);
    assert_eq!(got.nanos, nanos);
    Ok(got)
}

/// The key-scanning route alone.
fn scanned(line: &str) -> Option<Got> {
    let mut out = CriLines::new();
    Scanner::new(line.as_bytes()).entry(&mut Parser::default(), &mut out)?;
    Some(got(&out))
}

/// Docker's exact shape alone.
fn shaped(line: &str) -> Option<Got> {
    let mut out = CriLines::new();
    Parser::default().docker_shape(line.as_bytes(), &mut out)?;
    Some(got(&out))
}

/// serde_json's route alone.
fn general(line: &str) -> Got {
    let mut out = CriLines::new();
    Parser::default()
        .general(line.as_bytes(), &mut out)
        .unwrap();
    got(&out)
}

#[test]
fn dockers_own_shape_is_read_as_it_is_and_agrees_with_the_other_routes() {
    let got = shaped(PLAIN).expect("Docker's shape");
    assert_eq!(got.stream, LogStream::Stderr);
    assert_eq!(got.content, b"plain \"line\"");
    assert_eq!(got.tag, 'F');
    assert_eq!(got.timestamp, "2026-11-30T15:56:59.100000000Z");
    assert_eq!(Some(&got), scanned(PLAIN).as_ref());
    assert_eq!(got, general(PLAIN));
    // Labels (`attrs`) before the time: not the exact shape.
    assert!(shaped(TAB).is_none());
    assert_eq!(scanned(TAB).unwrap(), general(TAB));
}

#[test]
fn docker_escapes_and_attrs() {
    let got = parse(TAB).unwrap();
    assert_eq!(got.stream, LogStream::Stdout);
    assert_eq!(got.content, b"tab\there \"q\" back\\slash <a&b>");
    assert_eq!(got.tag, 'F');
    assert_eq!(got.timestamp, "2026-11-30T15:56:59.446225999Z");
    assert_eq!(
        got.nanos,
        rfc3339_nanos("2026-11-30T15:56:59.446225999Z").unwrap()
    );
    // On the scanning route, not serde_json's.
    assert_eq!(scanned(TAB).unwrap(), got);
}

#[test]
fn control_bytes_replacement_and_non_ascii() {
    let got = parse(CTRL).unwrap();
    assert_eq!(got.stream, LogStream::Stderr);
    assert_eq!(
        got.content,
        "nul\0ctl\u{1} bad\u{fffd}utf é ☃ 😀".as_bytes()
    );
    assert_eq!(scanned(CTRL).unwrap(), got);
}

#[test]
fn trimmed_fraction_is_padded_to_docker_api_width() {
    let got = parse(PARTIAL).unwrap();
    assert_eq!(got.timestamp, "2026-11-30T15:56:59.489419660Z");
    assert_eq!(got.content, b"no newline at end");
    // The output's last bytes, not Docker's partial size: a whole line.
    assert_eq!(got.tag, 'F');
    let whole = parse(r#"{"log":"x\n","stream":"stdout","time":"2026-11-30T15:57:00Z"}"#).unwrap();
    assert_eq!(whole.timestamp, "2026-11-30T15:57:00.000000000Z");
    assert_eq!(whole.nanos % 1_000_000_000, 0);
}

#[test]
fn an_offset_time_passes_unchanged() {
    let got =
        parse(r#"{"log":"x\n","stream":"stdout","time":"2026-11-30T16:57:00.5+01:00"}"#).unwrap();
    assert_eq!(got.timestamp, "2026-11-30T16:57:00.5+01:00");
    assert_eq!(got.nanos, rfc3339_nanos("2026-11-30T15:57:00.5Z").unwrap());
}

#[test]
fn all_json_escapes_and_surrogate_pairs() {
    let line = r#"{"time":"2026-11-30T15:57:00.1Z","stream":"stdout","log":"\b\f\/\r\n\t\u00e9\ud83d\ude00\u2028"}"#;
    let got = parse(line).unwrap();
    // A `\n` inside is content; only a last one ends the line.
    assert_eq!(got.content, "\u{8}\u{c}/\r\n\té😀\u{2028}".as_bytes());
    assert_eq!(scanned(line).unwrap(), got);
}

#[test]
fn lone_surrogates_become_replacement_characters() {
    // Go's decoder does this; serde_json would refuse the line.
    let line =
        r#"{"log":"a\ud800b\udc00c\ud83d\u0041","stream":"stdout","time":"2026-11-30T15:57:00Z"}"#;
    assert_eq!(
        parse(line).unwrap().content,
        "a\u{fffd}b\u{fffd}c\u{fffd}A".as_bytes()
    );
}

#[test]
fn raw_control_bytes_pass_on_the_fast_route_only() {
    // Not valid JSON (Docker escapes them); kept rather than lost.
    let line = "{\"log\":\"raw\ttab\",\"stream\":\"stdout\",\"time\":\"2026-11-30T15:57:00Z\"}";
    assert_eq!(parse(line).unwrap().content, b"raw\ttab");
}

#[test]
fn no_log_key_or_empty_content_makes_no_line() {
    for line in [
        r#"{"stream":"stdout","time":"2026-11-30T15:57:00Z"}"#,
        r#"{"log":"","stream":"stdout","time":"2026-11-30T15:57:00Z"}"#,
    ] {
        let mut out = CriLines::new();
        let nanos = Parser::default().line(line.as_bytes(), &mut out);
        assert_eq!(nanos, Ok(rfc3339_nanos("2026-11-30T15:57:00Z").unwrap()));
        assert!(out.is_empty() && out.bytes().is_empty(), "{line}");
    }
}

#[test]
fn dockers_partial_message_is_a_p_line() {
    let part = "p".repeat(crate::mapping::cri_log::DOCKER_PARTIAL_SIZE);
    let line = format!(r#"{{"log":"{part}","stream":"stdout","time":"2026-11-30T15:57:00Z"}}"#);
    let got = parse(&line).unwrap();
    assert_eq!((got.tag, got.content.len()), ('P', part.len()));
}

#[test]
fn whitespace_and_odd_values_take_the_general_route() {
    let spaced = r#" { "log" : "a\n" , "stream":"stderr", "time" : "2026-11-30T15:57:00Z" } "#;
    assert_eq!(parse(spaced).unwrap().content, b"a");
    assert_eq!(scanned(spaced).unwrap().content, b"a");
    // Numbers, nesting, escaped keys: skipped or left to serde_json.
    let odd = r#"{"x":[1,{"y":"}"}],"n":-1.5e3,"t":true,"lo\u0067":"b\n","stream":"stdout","time":"2026-11-30T15:57:00Z"}"#;
    let got = parse(odd).unwrap();
    assert_eq!(got.content, b"b");
    assert!(
        scanned(odd).is_none(),
        "an escaped key is not the scanner's"
    );
}

#[test]
fn malformed_lines_are_errors_and_leave_the_buffer_alone() {
    let bad = [
        "",
        "{",
        "not json",
        r#"{"log":"x\n","stream":"stdout"}"#,
        r#"{"log":"x\n","stream":"stdin","time":"2026-11-30T15:57:00Z"}"#,
        r#"{"log":"x\n","stream":"stdout","time":"yesterday"}"#,
        r#"{"log":"tor"#,
        r#"{"log":"\x","stream":"stdout","time":"2026-11-30T15:57:00Z"}"#,
        r#"{"log":"x","stream":"stdout","time":"2026-11-30T15:57:00Z"} trailing"#,
        // Cut off right after a backslash inside a value that is skipped.
        r#"{"attrs":"\"#,
        r#"{"log":"x","attrs":{"k":"\"#,
    ];
    let mut before = CriLines::new();
    Parser::default()
        .line(PLAIN.as_bytes(), &mut before)
        .unwrap();
    for line in bad {
        let mut out = before.clone();
        assert!(
            Parser::default().line(line.as_bytes(), &mut out).is_err(),
            "{line:?}"
        );
        assert_eq!(out, before, "{line:?}");
    }
    assert_eq!(
        parse(r#"{"log":"x","stream":"stdin","time":"2026-11-30T15:57:00Z"}"#).err(),
        Some(ParseError::Stream("stdin".into()))
    );
}

#[test]
fn the_cached_second_agrees_with_the_general_parser() {
    let times = [
        "2026-11-30T15:56:59.446225999Z",
        "2026-11-30T15:56:59.5Z",
        "2026-11-30T15:56:59Z",
        "2026-11-30T15:57:00.000000001Z",
        "2026-11-30T15:56:59.1Z",
        "2024-02-29T23:59:59.999999999Z",
    ];
    let mut parser = Parser::default();
    let bad = [
        "2026-11-30T15:56:59.1234567891Z",
        "2026-11-30T15:56:59.Z",
        "2026-11-30T15:56:59.1+00:00",
        "2026-11-30T15:56:5x.1Z",
        "2026-13-30T15:56:59.1Z",
        "2026-11-30",
    ];
    // Each bad time twice, and after a good one of the same second: a
    // second remembered before it was checked would show.
    for t in times
        .iter()
        .chain(times.iter())
        .chain(bad.iter())
        .chain(bad.iter())
    {
        let fixed = parser.fixed_time(t.as_bytes());
        if bad.contains(t) {
            assert_eq!(fixed, None, "{t}");
            continue;
        }
        assert_eq!(fixed.map(|f| f.0), rfc3339_nanos(t), "{t}");
        let text = fixed.map(|f| String::from_utf8(f.1.to_vec()).unwrap());
        assert_eq!(rfc3339_nanos(&text.unwrap()), rfc3339_nanos(t), "{t}");
    }
    assert!(parser.fixed_time(b"2026-11-30T15:56:5x.1Z").is_none());
}

#[test]
fn a_key_given_twice_counts_its_last_value() {
    let line =
        r#"{"log":"first\n","log":"second\n","stream":"stdout","time":"2026-11-30T15:57:00Z"}"#;
    assert_eq!(parse(line).unwrap().content, b"second");
}

#[test]
fn a_utc_time_past_nanoseconds_is_cut_to_the_fixed_width() {
    let line = r#"{"log":"x\n","stream":"stdout","time":"2026-11-30T15:57:00.1234567891Z"}"#;
    let got = parse(line).unwrap();
    assert_eq!(got.timestamp, "2026-11-30T15:57:00.123456789Z");
    assert_eq!(
        got.nanos,
        rfc3339_nanos("2026-11-30T15:57:00.1234567891Z").unwrap()
    );
}
