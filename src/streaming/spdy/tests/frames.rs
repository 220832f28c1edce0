//! Frame layouts against byte vectors written from the SPDY/3.1 draft's
//! diagrams, and encode/decode round trips.

use bytes::{Bytes, BytesMut};

use super::super::error::SpdyError;
use super::super::frame::{self, Frame, Setting, decode, goaway, rst};

fn encode(f: &Frame) -> Vec<u8> {
    let mut out = BytesMut::new();
    f.encode(&mut out).expect("encode");
    out.to_vec()
}

fn decode_all(bytes: &[u8]) -> Result<Option<Frame>, SpdyError> {
    let mut buf = BytesMut::from(bytes);
    decode(&mut buf, frame::MAX_PAYLOAD)
}

#[test]
fn data_frame_layout() {
    // |0|stream-id(31)| then flags(8) length(24), then the payload.
    let f = Frame::Data {
        stream_id: 1,
        flags: frame::FLAG_FIN,
        data: Bytes::from_static(b"hi"),
    };
    let wire = [0, 0, 0, 1, 0x01, 0, 0, 2, b'h', b'i'];
    assert_eq!(encode(&f), wire);
    assert_eq!(decode_all(&wire).unwrap(), Some(f));
}

#[test]
fn syn_stream_layout() {
    // |1|version 3|type 1|, flags + length, stream id, associated id,
    // pri(3)/unused(5), slot, then the compressed block.
    let f = Frame::SynStream {
        flags: frame::FLAG_FIN,
        stream_id: 1,
        associated_to: 0,
        priority: 7,
        slot: 0,
        header_block: Bytes::from_static(b"X"),
    };
    let wire = [
        0x80, 0x03, 0x00, 0x01, 0x01, 0x00, 0x00, 0x0b, 0, 0, 0, 1, 0, 0, 0, 0, 0xe0, 0x00, b'X',
    ];
    assert_eq!(encode(&f), wire);
    assert_eq!(decode_all(&wire).unwrap(), Some(f));
}

#[test]
fn syn_reply_window_update_rst_ping_goaway_settings_layouts() {
    let cases: Vec<(Frame, Vec<u8>)> = vec![
        (
            Frame::SynReply {
                flags: 0,
                stream_id: 3,
                header_block: Bytes::from_static(b"ab"),
            },
            vec![0x80, 3, 0, 2, 0, 0, 0, 6, 0, 0, 0, 3, b'a', b'b'],
        ),
        (
            Frame::WindowUpdate {
                stream_id: 1,
                delta: 0x10000,
            },
            vec![0x80, 3, 0, 9, 0, 0, 0, 8, 0, 0, 0, 1, 0, 1, 0, 0],
        ),
        (
            Frame::RstStream {
                stream_id: 3,
                status: rst::CANCEL,
            },
            vec![0x80, 3, 0, 3, 0, 0, 0, 8, 0, 0, 0, 3, 0, 0, 0, 5],
        ),
        (
            Frame::Ping { id: 1 },
            vec![0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1],
        ),
        (
            Frame::GoAway {
                last_good_stream_id: 5,
                status: goaway::PROTOCOL_ERROR,
            },
            vec![0x80, 3, 0, 7, 0, 0, 0, 8, 0, 0, 0, 5, 0, 0, 0, 1],
        ),
        (
            Frame::Settings {
                flags: 0,
                entries: vec![Setting {
                    flags: 0,
                    id: frame::SETTINGS_INITIAL_WINDOW_SIZE,
                    value: 0x10000,
                }],
            },
            vec![
                0x80, 3, 0, 4, 0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 7, 0, 1, 0, 0,
            ],
        ),
        (
            Frame::Headers {
                flags: frame::FLAG_FIN,
                stream_id: 9,
                header_block: Bytes::new(),
            },
            vec![0x80, 3, 0, 8, 1, 0, 0, 4, 0, 0, 0, 9],
        ),
    ];
    for (f, wire) in cases {
        assert_eq!(encode(&f), wire, "{f:?}");
        assert_eq!(decode_all(&wire).unwrap(), Some(f));
    }
}

#[test]
fn reserved_bits_are_masked() {
    // The X bit before a stream id is reserved and ignored.
    let wire = [0x80, 3, 0, 9, 0, 0, 0, 8, 0x80, 0, 0, 1, 0x80, 0, 0, 2];
    assert_eq!(
        decode_all(&wire).unwrap(),
        Some(Frame::WindowUpdate {
            stream_id: 1,
            delta: 2
        })
    );
}

#[test]
fn partial_frames_wait_for_more_bytes() {
    let wire = encode(&Frame::Ping { id: 7 });
    let mut buf = BytesMut::new();
    for (i, b) in wire.iter().enumerate() {
        buf.extend_from_slice(&[*b]);
        let got = decode(&mut buf, frame::MAX_PAYLOAD).unwrap();
        if i + 1 < wire.len() {
            assert_eq!(got, None);
        } else {
            assert_eq!(got, Some(Frame::Ping { id: 7 }));
        }
    }
    assert!(buf.is_empty());
}

#[test]
fn consecutive_frames_decode_in_order() {
    let mut buf = BytesMut::new();
    Frame::Ping { id: 1 }.encode(&mut buf).unwrap();
    Frame::Data {
        stream_id: 3,
        flags: 0,
        data: Bytes::from_static(b"xyz"),
    }
    .encode(&mut buf)
    .unwrap();
    assert_eq!(decode(&mut buf, 100).unwrap(), Some(Frame::Ping { id: 1 }));
    assert!(matches!(
        decode(&mut buf, 100).unwrap(),
        Some(Frame::Data { stream_id: 3, .. })
    ));
    assert_eq!(decode(&mut buf, 100).unwrap(), None);
}

#[test]
fn oversized_frame_is_refused_from_its_header() {
    // Only the header has arrived: the bound applies before buffering.
    let header = [0, 0, 0, 1, 0, 0x10, 0, 0];
    let mut buf = BytesMut::from(&header[..]);
    assert!(matches!(
        decode(&mut buf, (1 << 20) - 1),
        Err(SpdyError::FrameTooLarge(0x100000))
    ));
    let too_big = Frame::Data {
        stream_id: 1,
        flags: 0,
        data: Bytes::from(vec![0; frame::MAX_PAYLOAD + 1]),
    };
    assert!(too_big.encode(&mut BytesMut::new()).is_err());
}

#[test]
fn malformed_control_frames_are_errors() {
    let bad: Vec<Vec<u8>> = vec![
        // PING of 5 bytes.
        vec![0x80, 3, 0, 6, 0, 0, 0, 5, 0, 0, 0, 1, 0],
        // RST_STREAM with status 0.
        vec![0x80, 3, 0, 3, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0],
        // RST_STREAM on stream 0.
        vec![0x80, 3, 0, 3, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 5],
        // SYN_STREAM shorter than its fixed fields.
        vec![0x80, 3, 0, 1, 0, 0, 0, 4, 0, 0, 0, 1],
        // SYN_STREAM on stream 0.
        vec![0x80, 3, 0, 1, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        // SETTINGS claiming more entries than it holds.
        vec![
            0x80, 3, 0, 4, 0, 0, 0, 12, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 7, 0, 0, 0, 1,
        ],
        // WINDOW_UPDATE of 4 bytes.
        vec![0x80, 3, 0, 9, 0, 0, 0, 4, 0, 0, 0, 1],
        // GOAWAY of 4 bytes (SPDY/2's layout).
        vec![0x80, 3, 0, 7, 0, 0, 0, 4, 0, 0, 0, 1],
        // Version 2.
        vec![0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1],
        // DATA on stream 0.
        vec![0, 0, 0, 0, 0, 0, 0, 1, 0],
    ];
    for wire in bad {
        assert!(decode_all(&wire).is_err(), "{wire:x?} accepted");
    }
}

#[test]
fn unknown_control_type_is_skipped_whole() {
    // Type 10 (SPDY/3's CREDENTIAL) and 0x7fff are not ours: skipped.
    for ty in [10u16, 0x7fff] {
        let mut wire = vec![0x80, 3, (ty >> 8) as u8, ty as u8, 0, 0, 0, 3, 1, 2, 3];
        wire.extend_from_slice(&encode(&Frame::Ping { id: 3 }));
        let mut buf = BytesMut::from(&wire[..]);
        assert!(matches!(
            decode(&mut buf, 100).unwrap(),
            Some(Frame::Unknown { length: 3, .. })
        ));
        assert_eq!(decode(&mut buf, 100).unwrap(), Some(Frame::Ping { id: 3 }));
    }
}

#[test]
fn random_bytes_never_panic_the_decoder() {
    let mut rng = super::Rng::new(1);
    for _ in 0..2000 {
        let len = (rng.next_u64() % 64) as usize;
        let mut bytes = rng.bytes(len);
        // Half the time make it look like a version-3 control frame.
        if len >= 8 && rng.next_u64().is_multiple_of(2) {
            bytes[0] = 0x80;
            bytes[1] = 3;
            bytes[2] = 0;
            bytes[3] = (rng.next_u64() % 11) as u8;
            bytes[5] = 0;
            bytes[6] = 0;
            bytes[7] = (len - 8) as u8;
        }
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(_)) = decode(&mut buf, 1 << 10) {}
    }
}
