use super::*;
use crate::server::authority::huffman;

const SOCK: &str = "/run/docker-cri.sock";
const SOCK_ENCODED: &str = "%2Frun%2Fdocker-cri.sock";

pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    put_frame_header(&mut out, payload.len(), kind, flags, stream);
    out.extend_from_slice(payload);
    out
}

/// A gRPC request's header block, all literals without indexing.
pub fn request_block(authority: &str) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/runtime.v1.RuntimeService/Version"),
        (":authority", authority),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ] {
        let field = Field {
            name: name.into(),
            value: value.into(),
            never_indexed: false,
        };
        hpack::encode_literal(&field, &mut block);
    }
    block
}

fn with_preface(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut all = PREFACE.to_vec();
    all.extend(frame(0x4, 0, 0, &[])); // empty SETTINGS
    for f in frames {
        all.extend_from_slice(f);
    }
    all
}

fn run(input: &[u8]) -> Result<Vec<u8>> {
    let mut rewriter = Rewriter::default();
    let mut out = Vec::new();
    let consumed = rewriter.process(input, &mut out)?;
    assert_eq!(consumed, input.len(), "complete input is consumed");
    Ok(out)
}

/// What h2 would see: every frame, with header blocks reassembled and
/// decoded by one decoder for the whole connection, as the server's is.
#[derive(Debug, Default)]
pub struct Seen {
    pub frames: Vec<(u8, u8, u32, usize)>,
    pub blocks: Vec<Vec<(String, String)>>,
}

pub fn server_view(out: &[u8]) -> Seen {
    assert!(out.starts_with(PREFACE));
    let mut data = &out[PREFACE.len()..];
    let mut decoder = Decoder::new(HEADER_TABLE_SIZE);
    let mut seen = Seen::default();
    let mut fragment = Vec::new();
    while !data.is_empty() {
        let h = FrameHeader::parse(data).expect("whole frame header");
        let payload = &data[FRAME_HEADER_LEN..FRAME_HEADER_LEN + h.len];
        seen.frames.push((h.kind, h.flags, h.stream, h.len));
        assert!(h.len <= OUT_FRAME_SIZE, "frame over the minimum max size");
        if h.kind == TYPE_HEADERS {
            fragment = headers_payload(h.flags, payload).unwrap().1.to_vec();
        } else if h.kind == TYPE_CONTINUATION {
            fragment.extend_from_slice(payload);
        }
        if (h.kind == TYPE_HEADERS || h.kind == TYPE_CONTINUATION)
            && h.flags & FLAG_END_HEADERS != 0
        {
            let fields = decoder.decode(&fragment, MAX_LIST).unwrap();
            seen.blocks.push(
                fields
                    .iter()
                    .map(|f| {
                        (
                            String::from_utf8(f.name.clone()).unwrap(),
                            String::from_utf8(f.value.clone()).unwrap(),
                        )
                    })
                    .collect(),
            );
        }
        data = &data[FRAME_HEADER_LEN + h.len..];
    }
    seen
}

fn authority(fields: &[(String, String)]) -> &str {
    &fields.iter().find(|(n, _)| n == ":authority").unwrap().1
}

#[test]
fn unparseable_authorities_become_localhost() {
    for bad in [SOCK_ENCODED, SOCK, ""] {
        let input = with_preface(&[frame(
            TYPE_HEADERS,
            FLAG_END_HEADERS,
            1,
            &request_block(bad),
        )]);
        let seen = server_view(&run(&input).unwrap());
        assert_eq!(seen.blocks.len(), 1, "{bad:?}");
        let fields = &seen.blocks[0];
        assert_eq!(authority(fields), "localhost", "{bad:?}");
        assert_eq!(fields.len(), 6);
        assert_eq!(fields[2].1, "/runtime.v1.RuntimeService/Version");
        assert_eq!(seen.frames[1].1, FLAG_END_HEADERS);
    }
}

#[test]
fn a_valid_authority_passes_byte_for_byte() {
    let data = frame(0x0, 0x1, 1, b"\0\0\0\0\x02\x08\x01");
    let input = with_preface(&[
        frame(
            TYPE_HEADERS,
            FLAG_END_HEADERS,
            1,
            &request_block("localhost"),
        ),
        data,
    ]);
    assert_eq!(run(&input).unwrap(), input);
}

#[test]
fn huffman_coded_and_indexed_authorities() {
    // Request 1: the path as a Huffman-coded literal with incremental
    // indexing (dynamic index 62). Request 2 refers to it by index only.
    let mut first = vec![0x83, 0x86]; // :method POST, :scheme http
    let coded = huffman::encode(SOCK.as_bytes());
    first.push(0x41); // literal with indexing, name = static 1 (:authority)
    first.push(0x80 | coded.len() as u8);
    first.extend_from_slice(&coded);
    let second = vec![0x83, 0x86, 0xbe];
    let input = with_preface(&[
        frame(TYPE_HEADERS, FLAG_END_HEADERS, 1, &first),
        frame(TYPE_HEADERS, FLAG_END_HEADERS | FLAG_END_STREAM, 3, &second),
    ]);
    let seen = server_view(&run(&input).unwrap());
    assert_eq!(seen.blocks.len(), 2);
    for fields in &seen.blocks {
        assert_eq!(authority(fields), "localhost");
        assert_eq!(fields[0], (":method".into(), "POST".into()));
    }
    assert_eq!(seen.frames[2], (TYPE_HEADERS, 0x5, 3, seen.frames[2].3));
}

#[test]
fn blocks_after_a_rewrite_are_reencoded_so_tables_stay_consistent() {
    // Request 1 is fine and indexes "x-id: 7" (dynamic 62) on the client
    // side and, passed through, on the server side too. Request 2 must be
    // rewritten and indexes "x-id: 8"; the server never sees that entry.
    // Request 3 refers to index 62 ("x-id: 8" for the client), which the
    // server would resolve to "x-id: 7" if it got the client's bytes.
    let mut one = vec![0x83, 0x86, 0x41, 9];
    one.extend_from_slice(b"localhost");
    one.extend_from_slice(&[0x40, 4]);
    one.extend_from_slice(b"x-id");
    one.extend_from_slice(&[1, b'7']);
    let mut two = vec![0x83, 0x86, 0x01, SOCK.len() as u8];
    two.extend_from_slice(SOCK.as_bytes());
    two.extend_from_slice(&[0x40, 4]);
    two.extend_from_slice(b"x-id");
    two.extend_from_slice(&[1, b'8']);
    let three = vec![0x83, 0x86, 0xc0, 0xbe]; // localhost, x-id: 8
    let input = with_preface(&[
        frame(TYPE_HEADERS, FLAG_END_HEADERS, 1, &one),
        frame(TYPE_HEADERS, FLAG_END_HEADERS, 3, &two),
        frame(TYPE_HEADERS, FLAG_END_HEADERS, 5, &three),
    ]);
    let seen = server_view(&run(&input).unwrap());
    let x_id = |i: usize| {
        seen.blocks[i]
            .iter()
            .find(|(n, _)| n == "x-id")
            .unwrap()
            .1
            .clone()
    };
    assert_eq!(authority(&seen.blocks[0]), "localhost");
    assert_eq!(x_id(0), "7");
    assert_eq!(authority(&seen.blocks[1]), "localhost");
    assert_eq!(x_id(1), "8");
    assert_eq!(authority(&seen.blocks[2]), "localhost");
    assert_eq!(x_id(2), "8");
}

#[test]
fn continuation_padding_and_priority() {
    let block = request_block(SOCK_ENCODED);
    let (a, b) = block.split_at(10);
    // PADDED | PRIORITY HEADERS: pad length 3, priority 5 bytes, fragment,
    // padding; then CONTINUATION with the rest, a WINDOW_UPDATE after.
    let mut payload = vec![3];
    payload.extend_from_slice(&[0, 0, 0, 0, 15]);
    payload.extend_from_slice(a);
    payload.extend_from_slice(&[0, 0, 0]);
    let window = frame(0x8, 0, 0, &[0, 0, 1, 0]);
    let input = with_preface(&[
        frame(
            TYPE_HEADERS,
            FLAG_PADDED | FLAG_PRIORITY | FLAG_END_STREAM,
            7,
            &payload,
        ),
        frame(TYPE_CONTINUATION, FLAG_END_HEADERS, 7, b),
        window.clone(),
    ]);
    let out = run(&input).unwrap();
    let seen = server_view(&out);
    assert_eq!(authority(&seen.blocks[0]), "localhost");
    let (kind, flags, stream, _) = seen.frames[1];
    assert_eq!((kind, stream), (TYPE_HEADERS, 7));
    assert_eq!(flags, FLAG_PRIORITY | FLAG_END_STREAM | FLAG_END_HEADERS);
    let headers_payload_start = PREFACE.len() + 9 + FRAME_HEADER_LEN;
    assert_eq!(
        out[headers_payload_start..headers_payload_start + 5],
        [0, 0, 0, 0, 15]
    );
    assert!(out.ends_with(&window));
}

#[test]
fn a_large_block_is_split_into_continuations() {
    let mut block = request_block(SOCK);
    let big = Field {
        name: b"x-big".to_vec(),
        value: vec![b'v'; 40_000],
        never_indexed: true,
    };
    hpack::encode_literal(&big, &mut block);
    // Sent in frames of 10 000 bytes, as a peer with a larger
    // SETTINGS_MAX_FRAME_SIZE might.
    let mut frames = Vec::new();
    let chunks: Vec<&[u8]> = block.chunks(10_000).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let kind = if i == 0 {
            TYPE_HEADERS
        } else {
            TYPE_CONTINUATION
        };
        let flags = if i + 1 == chunks.len() {
            FLAG_END_HEADERS
        } else {
            0
        };
        frames.push(frame(kind, flags, 1, chunk));
    }
    let seen = server_view(&run(&with_preface(&frames)).unwrap());
    let kinds: Vec<u8> = seen.frames[1..].iter().map(|f| f.0).collect();
    assert_eq!(kinds, [TYPE_HEADERS, TYPE_CONTINUATION, TYPE_CONTINUATION]);
    let ends: Vec<bool> = seen.frames[1..]
        .iter()
        .map(|f| f.1 & FLAG_END_HEADERS != 0)
        .collect();
    assert_eq!(ends, [false, false, true]);
    assert_eq!(authority(&seen.blocks[0]), "localhost");
    assert_eq!(seen.blocks[0][6].1.len(), 40_000);
}

#[test]
fn malformed_streams_are_errors() {
    let ok_block = request_block("localhost");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("bad preface", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        (
            "CONTINUATION alone",
            with_preface(&[frame(TYPE_CONTINUATION, FLAG_END_HEADERS, 1, &ok_block)]),
        ),
        (
            "DATA inside a header block",
            with_preface(&[frame(TYPE_HEADERS, 0, 1, &ok_block), frame(0, 0, 1, b"x")]),
        ),
        (
            "CONTINUATION on another stream",
            with_preface(&[
                frame(TYPE_HEADERS, 0, 1, &ok_block),
                frame(TYPE_CONTINUATION, FLAG_END_HEADERS, 3, &[]),
            ]),
        ),
        (
            "padding past the end",
            with_preface(&[frame(
                TYPE_HEADERS,
                FLAG_PADDED | FLAG_END_HEADERS,
                1,
                &[200, 0x82],
            )]),
        ),
        (
            "priority cut short",
            with_preface(&[frame(
                TYPE_HEADERS,
                FLAG_PRIORITY | FLAG_END_HEADERS,
                1,
                &[0, 0],
            )]),
        ),
        (
            "stream 0",
            with_preface(&[frame(TYPE_HEADERS, FLAG_END_HEADERS, 0, &ok_block)]),
        ),
        (
            "bad HPACK",
            with_preface(&[frame(TYPE_HEADERS, FLAG_END_HEADERS, 1, &[0xff])]),
        ),
    ];
    for (what, input) in cases {
        assert!(run(&input).is_err(), "{what}");
    }
    // An oversized header frame is refused from its header alone.
    let mut rewriter = Rewriter::default();
    let mut huge = with_preface(&[]);
    huge.extend_from_slice(&[0xff, 0xff, 0xff, TYPE_HEADERS, 0, 0, 0, 0, 1]);
    assert!(rewriter.process(&huge, &mut Vec::new()).is_err());
}

#[test]
fn arbitrary_frames_never_panic() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..2000 {
        let mut input = with_preface(&[]);
        for _ in 0..(next() % 4) {
            let len = (next() % 24) as usize;
            let kind = [0, 1, 9, 4, 8][(next() % 5) as usize];
            let payload: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            input.extend(frame(kind, next() as u8, (next() % 3) as u32, &payload));
        }
        let mut rewriter = Rewriter::default();
        let _ = rewriter.process(&input, &mut Vec::new());
    }
}
