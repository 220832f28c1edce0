use super::*;

/// Lines as Docker 20.10 wrote them for `printf` output with tabs, quotes,
/// `<&>`, a NUL, a control byte, invalid UTF-8, non-ASCII and labels.
const TAB: &str = r#"{"log":"tab\u0009here \"q\" back\\slash \u003ca\u0026b\u003e\n","stream":"stdout","attrs":{"lbl":"v1"},"time":"2026-11-30T15:56:59.446225999Z"}"#;
const CTRL: &str = r#"{"log":"nul\u0000ctl\u0001 bad\ufffdutf é ☃ 😀\n","stream":"stderr","attrs":{"lbl":"v1"},"time":"2026-11-30T15:56:59.446254902Z"}"#;
const PARTIAL: &str =
    r#"{"log":"no newline at end","stream":"stdout","time":"2026-11-30T15:56:59.48941966Z"}"#;

struct Got {
    stream: LogStream,
    nanos: i64,
    timestamp: String,
    content: Vec<u8>,
}

fn parse(line: &str) -> Result<Got, ParseError> {
    let mut out = BytesMut::from(&b"earlier"[..]);
    let p = parse_line(line.as_bytes(), &mut out)?;
    Ok(Got {
        stream: p.stream,
        nanos: p.nanos,
        timestamp: String::from_utf8(out[p.timestamp].to_vec()).unwrap(),
        content: out[p.content].to_vec(),
    })
}

fn fast(line: &str) -> Option<Vec<u8>> {
    let mut out = BytesMut::new();
    let p = Scanner::new(line.as_bytes()).entry(&mut out)?;
    Some(out[p.content].to_vec())
}

#[test]
fn docker_escapes_and_attrs() {
    let got = parse(TAB).unwrap();
    assert_eq!(got.stream, LogStream::Stdout);
    assert_eq!(got.content, b"tab\there \"q\" back\\slash <a&b>\n");
    assert_eq!(got.timestamp, "2026-11-30T15:56:59.446225999Z");
    assert_eq!(
        got.nanos,
        rfc3339_nanos("2026-11-30T15:56:59.446225999Z").unwrap()
    );
    // On the fast route, not serde_json's.
    assert_eq!(fast(TAB).unwrap(), got.content);
}

#[test]
fn control_bytes_replacement_and_non_ascii() {
    let got = parse(CTRL).unwrap();
    assert_eq!(got.stream, LogStream::Stderr);
    assert_eq!(
        got.content,
        "nul\0ctl\u{1} bad\u{fffd}utf é ☃ 😀\n".as_bytes()
    );
    assert_eq!(fast(CTRL).unwrap(), got.content);
}

#[test]
fn trimmed_fraction_is_padded_to_docker_api_width() {
    let got = parse(PARTIAL).unwrap();
    assert_eq!(got.timestamp, "2026-11-30T15:56:59.489419660Z");
    assert_eq!(got.content, b"no newline at end");
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
    assert_eq!(got.content, "\u{8}\u{c}/\r\n\té😀\u{2028}".as_bytes());
    assert_eq!(fast(line).unwrap(), got.content);
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
fn no_log_key_is_empty_content() {
    let got = parse(r#"{"stream":"stdout","time":"2026-11-30T15:57:00Z"}"#).unwrap();
    assert!(got.content.is_empty());
}

#[test]
fn whitespace_and_odd_values_take_the_general_route() {
    let spaced = r#" { "log" : "a\n" , "stream":"stderr", "time" : "2026-11-30T15:57:00Z" } "#;
    assert_eq!(parse(spaced).unwrap().content, b"a\n");
    assert_eq!(fast(spaced).unwrap(), b"a\n");
    // Numbers, nesting, escaped keys: skipped or left to serde_json.
    let odd = r#"{"x":[1,{"y":"}"}],"n":-1.5e3,"t":true,"lo\u0067":"b\n","stream":"stdout","time":"2026-11-30T15:57:00Z"}"#;
    let got = parse(odd).unwrap();
    assert_eq!(got.content, b"b\n");
    assert!(fast(odd).is_none(), "an escaped key is not the fast shape");
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
    ];
    for line in bad {
        let mut out = BytesMut::from(&b"keep"[..]);
        assert!(parse_line(line.as_bytes(), &mut out).is_err(), "{line:?}");
        assert_eq!(&out[..], b"keep", "{line:?}");
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
    for t in times.iter().chain(times.iter()) {
        assert_eq!(utc_nanos(t.as_bytes()), rfc3339_nanos(t), "{t}");
    }
    // Not Docker's shape: left to the general parser.
    for t in [
        "2026-11-30T15:56:59.1234567891Z",
        "2026-11-30T15:56:59.Z",
        "2026-11-30T15:56:59.1+00:00",
        "2026-11-30T15:56:5x.1Z",
        "2026-11-30",
    ] {
        assert_eq!(utc_nanos(t.as_bytes()), None, "{t}");
    }
}
