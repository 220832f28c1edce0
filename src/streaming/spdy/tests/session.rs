//! Full client↔server exchanges over `tokio::io::duplex`.

use std::io::ErrorKind;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::super::frame::{self, Frame, Setting, goaway, rst};
use super::super::{Incoming, SessionConfig, Stream};
use super::{ClientRx, Got, PATIENCE, connect};

pub(super) async fn accept(incoming: &mut Incoming) -> Stream {
    tokio::time::timeout(PATIENCE, incoming.next())
        .await
        .expect("no stream within patience")
        .expect("incoming ended")
        .expect("session error")
}

/// Reads DATA for `id` until FIN, skipping window updates.
pub(super) async fn read_to_fin(rx: &mut ClientRx, id: u32) -> Vec<u8> {
    let mut got = Vec::new();
    loop {
        match rx.next_skip_updates().await {
            Some(Got::Frame(Frame::Data {
                stream_id,
                flags,
                data,
            })) => {
                assert_eq!(stream_id, id);
                got.extend_from_slice(&data);
                if flags & frame::FLAG_FIN != 0 {
                    return got;
                }
            }
            other => panic!("expected DATA on {id}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn exec_streams_exchange_data_and_half_close() {
    let (mut tx, mut rx, _session, mut incoming) = connect(SessionConfig::default());
    tx.open(1, &[("streamtype", "error")], 0).await;
    tx.open(3, &[("streamtype", "stdin")], 0).await;
    tx.open(5, &[("streamtype", "stdout")], 0).await;
    // client-go closes its side of the error stream at once.
    tx.data(1, b"", true).await;

    let mut error = accept(&mut incoming).await;
    let mut stdin = accept(&mut incoming).await;
    let mut stdout = accept(&mut incoming).await;
    assert_eq!(error.header("streamType"), Some("error"));
    assert_eq!(stdin.header("streamtype"), Some("stdin"));
    assert_eq!(stdout.headers(), &[("streamtype".into(), "stdout".into())]);
    assert_eq!((error.id(), stdin.id(), stdout.id()), (1, 3, 5));
    for id in [1, 3, 5] {
        rx.expect_reply(id).await;
    }

    tx.data(3, b"hello ", false).await;
    tx.data(3, b"world", true).await;
    let mut input = String::new();
    stdin.read_to_string(&mut input).await.unwrap();
    assert_eq!(input, "hello world");
    let mut nothing = Vec::new();
    error.read_to_end(&mut nothing).await.unwrap();
    assert!(nothing.is_empty());

    stdout.write_all(b"out").await.unwrap();
    stdout.shutdown().await.unwrap();
    assert_eq!(read_to_fin(&mut rx, 5).await, b"out");
    error.write_all(b"{\"status\":\"Success\"}").await.unwrap();
    error.shutdown().await.unwrap();
    assert_eq!(read_to_fin(&mut rx, 1).await, b"{\"status\":\"Success\"}");
    // Writing after our FIN fails locally.
    assert_eq!(
        stdout.write_all(b"late").await.unwrap_err().kind(),
        ErrorKind::BrokenPipe
    );
}

#[tokio::test]
async fn dropping_a_stream_half_closes_it_after_its_data() {
    let (mut tx, mut rx, _session, mut incoming) = connect(SessionConfig::default());
    tx.open(1, &[("streamtype", "stdout")], 0).await;
    let mut s = accept(&mut incoming).await;
    rx.expect_reply(1).await;
    s.write_all(b"bye").await.unwrap();
    drop(s);
    assert_eq!(read_to_fin(&mut rx, 1).await, b"bye");
}

#[tokio::test]
async fn ping_is_echoed_and_even_pings_are_ignored() {
    let (mut tx, mut rx, _session, _incoming) = connect(SessionConfig::default());
    tx.send(Frame::Ping { id: 1 }).await;
    assert!(matches!(
        rx.next().await,
        Some(Got::Frame(Frame::Ping { id: 1 }))
    ));
    tx.send(Frame::Ping { id: 2 }).await;
    tx.send(Frame::Ping { id: 3 }).await;
    assert!(matches!(
        rx.next().await,
        Some(Got::Frame(Frame::Ping { id: 3 }))
    ));
}

#[tokio::test]
async fn unknown_control_frames_and_settings_are_tolerated() {
    let (mut tx, mut rx, _session, _incoming) = connect(SessionConfig::default());
    tx.send(Frame::Unknown {
        frame_type: 10,
        flags: 0,
        length: 12,
    })
    .await;
    tx.send(Frame::Settings {
        flags: 0,
        entries: vec![Setting {
            flags: 0,
            id: 4,
            value: 100,
        }],
    })
    .await;
    tx.send(Frame::Ping { id: 5 }).await;
    assert!(matches!(
        rx.next().await,
        Some(Got::Frame(Frame::Ping { id: 5 }))
    ));
}

#[tokio::test]
async fn headers_frame_with_fin_half_closes() {
    let (mut tx, mut rx, _session, mut incoming) = connect(SessionConfig::default());
    tx.open(1, &[("streamtype", "stdin")], 0).await;
    let mut s = accept(&mut incoming).await;
    rx.expect_reply(1).await;
    tx.data(1, b"abc", false).await;
    let block = tx.enc.compress(&[]).unwrap();
    tx.send(Frame::Headers {
        flags: frame::FLAG_FIN,
        stream_id: 1,
        header_block: block.into(),
    })
    .await;
    let mut got = String::new();
    s.read_to_string(&mut got).await.unwrap();
    assert_eq!(got, "abc");
}

#[tokio::test]
async fn peer_reset_fails_reads_and_writes() {
    let (mut tx, mut rx, _session, mut incoming) = connect(SessionConfig::default());
    tx.open(1, &[("streamtype", "stdin")], 0).await;
    let mut s = accept(&mut incoming).await;
    rx.expect_reply(1).await;
    tx.send(Frame::RstStream {
        stream_id: 1,
        status: rst::CANCEL,
    })
    .await;
    let mut buf = [0; 8];
    let err = s.read(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    assert_eq!(
        s.write_all(b"x").await.unwrap_err().kind(),
        ErrorKind::ConnectionReset
    );
}

#[tokio::test]
async fn local_reset_sends_rst_stream_cancel() {
    let (mut tx, mut rx, _session, mut incoming) = connect(SessionConfig::default());
    tx.open(1, &[("streamtype", "resize")], 0).await;
    let s = accept(&mut incoming).await;
    rx.expect_reply(1).await;
    s.reset();
    match rx.next().await {
        Some(Got::Frame(Frame::RstStream { stream_id, status })) => {
            assert_eq!((stream_id, status), (1, rst::CANCEL));
        }
        other => panic!("unexpected {other:?}"),
    }
    // Data the peer had in flight is dropped quietly.
    tx.data(1, b"{}", false).await;
    tx.send(Frame::Ping { id: 1 }).await;
    assert!(matches!(
        rx.next_skip_updates().await,
        Some(Got::Frame(Frame::Ping { id: 1 }))
    ));
}

#[tokio::test]
async fn connection_drop_ends_streams_and_session() {
    let (mut tx, rx, session, mut incoming) = connect(SessionConfig::default());
    tx.open(1, &[("streamtype", "stdin")], 0).await;
    let mut s = accept(&mut incoming).await;
    drop((tx, rx));
    let mut buf = [0; 8];
    assert!(s.read(&mut buf).await.is_err());
    assert!(s.write_all(b"x").await.is_err());
    assert!(incoming.next().await.is_none());
    tokio::time::timeout(PATIENCE, session.closed())
        .await
        .unwrap();
    assert!(session.is_closed());
}

#[tokio::test]
async fn abort_ends_a_session_whose_peer_does_not_read() {
    let (mut tx, _rx, session, mut incoming) = connect(SessionConfig::default());
    tx.open(1, &[("streamtype", "stdout")], 0).await;
    let mut s = accept(&mut incoming).await;
    // The client never reads: the writer blocks on the full pipe.
    let writer = tokio::spawn(async move { s.write_all(&[1; 1 << 20]).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!writer.is_finished());
    session.abort();
    assert!(writer.await.unwrap().is_err());
    tokio::time::timeout(PATIENCE, session.closed())
        .await
        .unwrap();
    assert!(incoming.next().await.is_none());
}

#[tokio::test]
async fn close_sends_goaway_after_queued_data() {
    let (mut tx, mut rx, session, mut incoming) = connect(SessionConfig::default());
    tx.open(1, &[("streamtype", "stdout")], 0).await;
    tx.open(3, &[("streamtype", "stderr")], 0).await;
    let mut s = accept(&mut incoming).await;
    let _s3 = accept(&mut incoming).await;
    // shutdown() waits until the data is on the wire, so write while the
    // client reads.
    let closer = session.clone();
    let server = tokio::spawn(async move {
        s.write_all(&[9; 100_000]).await.unwrap();
        s.shutdown().await.unwrap();
        closer.close();
    });
    rx.expect_reply(1).await;
    rx.expect_reply(3).await;
    assert_eq!(read_to_fin(&mut rx, 1).await.len(), 100_000);
    match rx.next_skip_updates().await {
        Some(Got::Frame(Frame::GoAway {
            last_good_stream_id,
            status,
        })) => assert_eq!((last_good_stream_id, status), (3, goaway::OK)),
        other => panic!("unexpected {other:?}"),
    }
    assert!(rx.next().await.is_none(), "connection not closed");
    server.await.unwrap();
    tokio::time::timeout(PATIENCE, session.closed())
        .await
        .unwrap();
}

#[tokio::test]
async fn dropping_every_handle_closes_the_session() {
    let (mut tx, mut rx, session, incoming) = connect(SessionConfig::default());
    tx.send(Frame::Ping { id: 1 }).await;
    assert!(matches!(
        rx.next().await,
        Some(Got::Frame(Frame::Ping { id: 1 }))
    ));
    drop((session, incoming));
    assert!(matches!(
        rx.next().await,
        Some(Got::Frame(Frame::GoAway { status: 0, .. }))
    ));
    assert!(rx.next().await.is_none());
}

#[tokio::test]
async fn streams_after_goaway_or_beyond_the_limit_are_refused() {
    let config = SessionConfig {
        max_streams: 1,
        ..SessionConfig::default()
    };
    let (mut tx, mut rx, session, mut incoming) = connect(config);
    tx.open(1, &[("streamtype", "data")], 0).await;
    tx.open(3, &[("streamtype", "data")], 0).await;
    let _s = accept(&mut incoming).await;
    rx.expect_reply(1).await;
    match rx.next().await {
        Some(Got::Frame(Frame::RstStream { stream_id, status })) => {
            assert_eq!((stream_id, status), (3, rst::REFUSED_STREAM));
        }
        other => panic!("unexpected {other:?}"),
    }
    session.goaway();
    tx.open(5, &[("streamtype", "data")], 0).await;
    // GOAWAY and the refusal travel in different queues: either order.
    let (mut goaway_seen, mut refused) = (false, false);
    for _ in 0..2 {
        match rx.next().await {
            Some(Got::Frame(Frame::GoAway {
                last_good_stream_id: 1,
                status: 0,
            })) => goaway_seen = true,
            Some(Got::Frame(Frame::RstStream {
                stream_id: 5,
                status: rst::REFUSED_STREAM,
            })) => refused = true,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(goaway_seen && refused);
    assert!(incoming.next().await.is_none());
}

#[tokio::test]
async fn peer_goaway_ends_incoming_but_not_open_streams() {
    let (mut tx, mut rx, _session, mut incoming) = connect(SessionConfig::default());
    tx.open(1, &[("streamtype", "stdin")], 0).await;
    let mut s = accept(&mut incoming).await;
    rx.expect_reply(1).await;
    tx.send(Frame::GoAway {
        last_good_stream_id: 0,
        status: goaway::OK,
    })
    .await;
    assert!(incoming.next().await.is_none());
    tx.data(1, b"still here", true).await;
    let mut got = String::new();
    s.read_to_string(&mut got).await.unwrap();
    assert_eq!(got, "still here");
}
