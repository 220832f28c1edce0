//! Protocol violations and garbage end the session with GOAWAY, never a
//! panic.

use bytes::Bytes;

use super::super::frame::{self, Frame, goaway, rst};
use super::super::{SessionConfig, SpdyError};
use super::{ClientRx, ClientTx, Got, PATIENCE, Rng, connect};

/// Expects GOAWAY PROTOCOL_ERROR (possibly after other frames), then EOF.
async fn expect_protocol_goaway(rx: &mut ClientRx) {
    loop {
        match rx.next().await {
            Some(Got::Frame(Frame::GoAway { status, .. })) => {
                assert_eq!(status, goaway::PROTOCOL_ERROR);
                break;
            }
            Some(_) => continue,
            None => panic!("connection closed without GOAWAY"),
        }
    }
    assert!(rx.next().await.is_none(), "connection left open");
}

async fn violation(send: impl AsyncFnOnce(&mut ClientTx)) -> Option<SpdyError> {
    let (mut tx, mut rx, _session, mut incoming) = connect(SessionConfig::default());
    send(&mut tx).await;
    expect_protocol_goaway(&mut rx).await;
    let mut error = None;
    while let Some(next) = tokio::time::timeout(PATIENCE, incoming.next())
        .await
        .unwrap()
    {
        if let Err(e) = next {
            error = Some(e);
        }
    }
    error
}

#[tokio::test]
async fn decreasing_stream_id_is_a_session_error() {
    let err = violation(async |tx| {
        tx.open(5, &[("streamtype", "stdin")], 0).await;
        tx.open(3, &[("streamtype", "stdout")], 0).await;
    })
    .await;
    assert!(matches!(err, Some(SpdyError::Protocol(_))), "{err:?}");
}

#[tokio::test]
async fn even_or_repeated_stream_ids_are_session_errors() {
    assert!(
        violation(async |tx| tx.open(2, &[], 0).await)
            .await
            .is_some()
    );
    let err = violation(async |tx| {
        tx.open(1, &[], 0).await;
        tx.open(1, &[], 0).await;
    })
    .await;
    assert!(err.is_some());
}

#[tokio::test]
async fn malformed_frames_are_session_errors() {
    let bad: Vec<Vec<u8>> = vec![
        vec![0x80, 3, 0, 6, 0, 0, 0, 3, 0, 0, 1],
        vec![0x80, 2, 0, 1, 0, 0, 0, 10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0],
        vec![0, 0, 0, 0, 0, 0, 0, 0],
        vec![
            0x80, 3, 0, 9, 0, 0, 0, 8, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff,
        ],
    ];
    for wire in bad {
        let err = violation(async |tx| tx.raw(&wire).await).await;
        assert!(err.is_some(), "{wire:x?}");
    }
}

#[tokio::test]
async fn corrupt_header_block_is_a_session_error() {
    let err = violation(async |tx| {
        tx.send(Frame::SynStream {
            flags: 0,
            stream_id: 1,
            associated_to: 0,
            priority: 0,
            slot: 0,
            header_block: Bytes::from_static(b"\x78\xbb\xde\xad\xbe\xef"),
        })
        .await;
    })
    .await;
    assert!(matches!(err, Some(SpdyError::HeaderBlock(_))), "{err:?}");
}

#[tokio::test]
async fn oversized_frame_is_a_session_error() {
    let config = SessionConfig {
        max_frame_payload: 1024,
        ..SessionConfig::default()
    };
    let (mut tx, mut rx, _session, _incoming) = connect(config);
    // Only the header: the session must not wait for 16 MiB.
    tx.raw(&[0, 0, 0, 1, 0, 0xff, 0xff, 0xff]).await;
    expect_protocol_goaway(&mut rx).await;

    // Control frames are bounded by the header block limit instead.
    let config = SessionConfig {
        max_header_block: 1024,
        ..SessionConfig::default()
    };
    let (mut tx, mut rx, _session, _incoming) = connect(config);
    tx.raw(&[0x80, 3, 0, 1, 0, 0, 0x40, 0]).await;
    expect_protocol_goaway(&mut rx).await;
}

#[tokio::test]
async fn data_for_a_stream_never_opened_is_refused() {
    let (mut tx, mut rx, _session, _incoming) = connect(SessionConfig::default());
    tx.data(7, b"x", false).await;
    match rx.next().await {
        Some(Got::Frame(Frame::RstStream { stream_id, status })) => {
            assert_eq!((stream_id, status), (7, rst::INVALID_STREAM));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn data_after_fin_resets_the_stream() {
    let (mut tx, mut rx, _session, mut incoming) = connect(SessionConfig::default());
    tx.open(1, &[], frame::FLAG_FIN).await;
    let _s = incoming.next().await.unwrap().unwrap();
    rx.expect_reply(1).await;
    tx.data(1, b"late", false).await;
    match rx.next().await {
        Some(Got::Frame(Frame::RstStream { stream_id, status })) => {
            assert_eq!((stream_id, status), (1, rst::STREAM_ALREADY_CLOSED));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn ping_flood_without_reading_ends_the_session() {
    let config = SessionConfig {
        max_control_queue: 16,
        ..SessionConfig::default()
    };
    let (mut tx, rx, _session, mut incoming) = connect(config);
    // The client never reads: replies pile up until the bound trips. The
    // duplex buffer absorbs some first, so send plenty.
    let flood = tokio::spawn(async move {
        for i in 0..100_000u32 {
            let mut out = bytes::BytesMut::new();
            Frame::Ping { id: 2 * i + 1 }.encode(&mut out).unwrap();
            if tx.try_raw(&out).await.is_err() {
                break;
            }
        }
    });
    let end = tokio::time::timeout(PATIENCE, incoming.next())
        .await
        .unwrap();
    assert!(matches!(end, Some(Err(SpdyError::Protocol(_)))), "{end:?}");
    drop(rx);
    flood.await.unwrap();
}

/// Random bytes, and random frames with plausible headers: the session
/// ends (or ignores them) without panicking or hanging.
#[tokio::test]
async fn garbage_input_ends_the_session_without_panic() {
    let mut rng = Rng::new(42);
    for round in 0..150 {
        let (mut tx, mut rx, session, mut incoming) = connect(SessionConfig::default());
        let mut junk = Vec::new();
        for _ in 0..(1 + rng.next_u64() % 8) {
            let len = (rng.next_u64() % 48) as usize;
            if round % 2 == 0 {
                junk.extend(rng.bytes(len + 8));
            } else {
                // A version-3 control header of a random type (or DATA)
                // with a correct length and a random payload.
                let ty = (rng.next_u64() % 11) as u8;
                if ty == 0 {
                    junk.extend([0, 0, 0, 1 + 2 * (rng.next_u64() % 4) as u8]);
                } else {
                    junk.extend([0x80, 3, 0, ty]);
                }
                junk.extend([(rng.next_u64() % 4) as u8, 0, 0, len as u8]);
                junk.extend(rng.bytes(len));
            }
        }
        tx.raw(&junk).await;
        tx.finish().await;
        // The session must come to an end: drain the client side and the
        // streams until both report the end.
        let drain = async { while rx.next_inner().await.is_some() {} };
        let accept = async {
            while let Some(Ok(s)) = incoming.next().await {
                drop(s);
            }
        };
        tokio::time::timeout(PATIENCE, async { tokio::join!(drain, accept) })
            .await
            .unwrap_or_else(|_| panic!("round {round} hung on {junk:x?}"));
        tokio::time::timeout(PATIENCE, session.closed())
            .await
            .unwrap_or_else(|_| panic!("round {round}: session not closed"));
    }
}
