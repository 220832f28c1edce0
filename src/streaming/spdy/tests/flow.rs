//! Flow control: windows both ways, large transfers, backpressure.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::super::frame::{self, Frame, Setting};
use super::super::{PeerFlowControl, SessionConfig};
use super::session::{accept, read_to_fin};
use super::{Got, connect, pattern};

/// spdystream's behaviour: no WINDOW_UPDATE ever, DATA regardless of our
/// window. 16 MiB each way at once must neither deadlock nor stall.
#[tokio::test]
async fn large_transfer_with_a_peer_that_ignores_flow_control() {
    echo_ignoring_flow_control(16 << 20).await;
}

/// The same with 64 MiB each way (slow in debug builds: run on demand).
#[tokio::test]
#[ignore]
async fn very_large_transfer_with_a_peer_that_ignores_flow_control() {
    echo_ignoring_flow_control(64 << 20).await;
}

async fn echo_ignoring_flow_control(total: usize) {
    const CHUNK: usize = 32 << 10;
    let (mut tx, mut rx, _session, mut incoming) = connect(SessionConfig::default());
    tx.open(1, &[("streamtype", "stdin")], 0).await;
    tx.open(3, &[("streamtype", "stdout")], 0).await;
    let stdin = accept(&mut incoming).await;
    let stdout = accept(&mut incoming).await;

    // The server copies stdin to stdout, as an echoing container would.
    let server = tokio::spawn(async move {
        let (mut stdin, mut stdout) = (stdin, stdout);
        let n = tokio::io::copy(&mut stdin, &mut stdout).await.unwrap();
        stdout.shutdown().await.unwrap();
        n
    });
    let client_tx = tokio::spawn(async move {
        let mut off = 0;
        while off < total {
            let chunk = pattern(1, off, CHUNK);
            tx.data(1, &chunk, false).await;
            off += CHUNK;
        }
        tx.data(1, b"", true).await;
        tx
    });
    let mut received = 0usize;
    let mut replies = 0;
    let mut updates = 0;
    loop {
        match rx.next().await {
            Some(Got::Reply { .. }) => replies += 1,
            Some(Got::Frame(Frame::WindowUpdate { .. })) => updates += 1,
            Some(Got::Frame(Frame::Data {
                stream_id: 3,
                flags,
                data,
            })) => {
                assert_eq!(&data[..], &pattern(1, received, data.len())[..]);
                received += data.len();
                if flags & frame::FLAG_FIN != 0 {
                    break;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(replies, 2);
    assert_eq!(received, total);
    assert_eq!(server.await.unwrap(), total as u64);
    client_tx.await.unwrap();
    // We credited what was consumed even though this peer ignores it.
    assert!(updates > 0);
}

/// A flow-control-aware peer: credits what it consumes; the server never
/// has more than a window in flight, and 16 MiB each way goes through.
#[tokio::test]
async fn large_transfer_with_enforced_windows() {
    const TOTAL: usize = 16 << 20;
    const CHUNK: usize = 16 << 10;
    let config = SessionConfig {
        peer_flow_control: PeerFlowControl::Enforce,
        ..SessionConfig::default()
    };
    let (tx, mut rx, _session, mut incoming) = connect(config);
    let tx = Arc::new(tokio::sync::Mutex::new(tx));
    {
        let mut tx = tx.lock().await;
        tx.open(1, &[("streamtype", "stdin")], 0).await;
        tx.open(3, &[("streamtype", "stdout")], 0).await;
    }
    let stdin = accept(&mut incoming).await;
    let stdout = accept(&mut incoming).await;
    let server = tokio::spawn(async move {
        let (mut stdin, mut stdout) = (stdin, stdout);
        let n = tokio::io::copy(&mut stdin, &mut stdout).await.unwrap();
        stdout.shutdown().await.unwrap();
        n
    });

    // The client's send window on stream 1, refilled by the server's
    // WINDOW_UPDATEs (which the reader loop below forwards).
    let (credit_tx, mut credit_rx) = tokio::sync::mpsc::unbounded_channel::<(u32, u32)>();
    let sender = tx.clone();
    let client_tx = tokio::spawn(async move {
        let (mut stream_window, mut session_window) = (65_536i64, 65_536i64);
        let mut off = 0;
        while off < TOTAL {
            while stream_window < CHUNK as i64 || session_window < CHUNK as i64 {
                let (id, delta) = credit_rx.recv().await.expect("credit");
                if id == 0 {
                    session_window += i64::from(delta);
                } else {
                    stream_window += i64::from(delta);
                }
            }
            let chunk = pattern(2, off, CHUNK);
            sender.lock().await.data(1, &chunk, false).await;
            stream_window -= CHUNK as i64;
            session_window -= CHUNK as i64;
            off += CHUNK;
        }
        sender.lock().await.data(1, b"", true).await;
    });

    let (mut received, mut unacked_stream, mut unacked_session) = (0usize, 0i64, 0i64);
    loop {
        match rx.next().await {
            Some(Got::Reply { .. }) => {}
            Some(Got::Frame(Frame::WindowUpdate { stream_id, delta })) => {
                // Once the sender is done nobody needs credit.
                let _ = credit_tx.send((stream_id, delta));
            }
            Some(Got::Frame(Frame::Data {
                stream_id: 3,
                flags,
                data,
            })) => {
                assert_eq!(&data[..], &pattern(2, received, data.len())[..]);
                received += data.len();
                unacked_stream += data.len() as i64;
                unacked_session += data.len() as i64;
                // The server stays within what we granted.
                assert!(unacked_stream <= 65_536 && unacked_session <= 65_536);
                if flags & frame::FLAG_FIN != 0 {
                    break;
                }
                if unacked_stream >= 32_768 {
                    let mut tx = tx.lock().await;
                    for id in [0, 3] {
                        tx.send(Frame::WindowUpdate {
                            stream_id: id,
                            delta: unacked_stream as u32,
                        })
                        .await;
                    }
                    (unacked_stream, unacked_session) = (0, 0);
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(received, TOTAL);
    assert_eq!(server.await.unwrap(), TOTAL as u64);
    client_tx.await.unwrap();
}

#[tokio::test]
async fn writer_waits_for_the_peers_window() {
    let config = SessionConfig {
        peer_flow_control: PeerFlowControl::Enforce,
        ..SessionConfig::default()
    };
    let (mut tx, mut rx, _session, mut incoming) = connect(config);
    tx.open(1, &[("streamtype", "stdout")], 0).await;
    let mut s = accept(&mut incoming).await;
    rx.expect_reply(1).await;
    let writer = tokio::spawn(async move {
        s.write_all(&pattern(3, 0, 100_000)).await.unwrap();
        s.shutdown().await.unwrap();
    });
    let mut got = 0;
    while got < 65_536 {
        match rx.next().await {
            Some(Got::Frame(Frame::Data { data, .. })) => got += data.len(),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, 65_536);
    // The window is spent: nothing more comes until we grant some.
    assert!(rx.next_within(Duration::from_millis(300)).await.is_err());
    for id in [0, 1] {
        tx.send(Frame::WindowUpdate {
            stream_id: id,
            delta: 65_536,
        })
        .await;
    }
    assert_eq!(read_to_fin(&mut rx, 1).await.len(), 100_000 - 65_536);
    writer.await.unwrap();
}

/// The session window (stream 0) limits all streams together, whatever
/// the stream windows allow.
#[tokio::test]
async fn session_window_limits_even_with_large_stream_windows() {
    let config = SessionConfig {
        peer_flow_control: PeerFlowControl::Enforce,
        ..SessionConfig::default()
    };
    let (mut tx, mut rx, _session, mut incoming) = connect(config);
    tx.send(Frame::Settings {
        flags: 0,
        entries: vec![Setting {
            flags: 0,
            id: frame::SETTINGS_INITIAL_WINDOW_SIZE,
            value: 1 << 20,
        }],
    })
    .await;
    tx.open(1, &[("streamtype", "stdout")], 0).await;
    tx.open(3, &[("streamtype", "stderr")], 0).await;
    let mut out = accept(&mut incoming).await;
    let mut err = accept(&mut incoming).await;
    rx.expect_reply(1).await;
    rx.expect_reply(3).await;
    let writers = tokio::spawn(async move {
        let a = out.write_all(&[1; 50_000]);
        let b = err.write_all(&[2; 50_000]);
        let (a, b) = tokio::join!(a, b);
        a.unwrap();
        b.unwrap();
        (out, err)
    });
    let mut got = 0;
    while got < 65_536 {
        match rx.next().await {
            Some(Got::Frame(Frame::Data { data, .. })) => got += data.len(),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, 65_536);
    assert!(rx.next_within(Duration::from_millis(300)).await.is_err());
    tx.send(Frame::WindowUpdate {
        stream_id: 0,
        delta: 100_000,
    })
    .await;
    while got < 100_000 {
        match rx.next().await {
            Some(Got::Frame(Frame::Data { data, .. })) => got += data.len(),
            other => panic!("unexpected {other:?}"),
        }
    }
    drop(writers.await.unwrap());
}

#[tokio::test]
async fn auto_mode_enforces_after_an_initial_window_setting() {
    let (mut tx, mut rx, _session, mut incoming) = connect(SessionConfig::default());
    tx.send(Frame::Settings {
        flags: 0,
        entries: vec![Setting {
            flags: 0,
            id: frame::SETTINGS_INITIAL_WINDOW_SIZE,
            value: 1000,
        }],
    })
    .await;
    tx.open(1, &[("streamtype", "stdout")], 0).await;
    let mut s = accept(&mut incoming).await;
    rx.expect_reply(1).await;
    let writer = tokio::spawn(async move {
        s.write_all(&[7; 1500]).await.unwrap();
        s
    });
    match rx.next().await {
        Some(Got::Frame(Frame::Data { data, .. })) => assert_eq!(data.len(), 1000),
        other => panic!("unexpected {other:?}"),
    }
    assert!(rx.next_within(Duration::from_millis(300)).await.is_err());
    tx.send(Frame::WindowUpdate {
        stream_id: 1,
        delta: 500,
    })
    .await;
    match rx.next().await {
        Some(Got::Frame(Frame::Data { data, .. })) => assert_eq!(data.len(), 500),
        other => panic!("unexpected {other:?}"),
    }
    drop(writer.await.unwrap());
}

/// Memory stays bounded with a peer that ignores our window: once a
/// stream's buffer is full the reader stops reading the connection.
#[tokio::test]
async fn an_unread_stream_pauses_the_reader() {
    const CHUNK: usize = 32 << 10;
    let config = SessionConfig {
        max_stream_buffer: 64 << 10,
        ..SessionConfig::default()
    };
    let (mut tx, mut rx, _session, mut incoming) = connect(config);
    tx.open(1, &[("streamtype", "stdin")], 0).await;
    let mut s = accept(&mut incoming).await;
    rx.expect_reply(1).await;
    let sender = tokio::spawn(async move {
        for i in 0..32 {
            tx.data(1, &pattern(4, i * CHUNK, CHUNK), false).await;
        }
        tx.data(1, b"", true).await;
        tx
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // 1 MiB cannot fit a 64 KiB buffer plus the 64 KiB pipe.
    assert!(!sender.is_finished());
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, pattern(4, 0, 32 * CHUNK));
    sender.await.unwrap();
}

#[tokio::test]
async fn server_credits_consumed_data() {
    let (mut tx, mut rx, _session, mut incoming) = connect(SessionConfig::default());
    tx.open(1, &[("streamtype", "stdin")], 0).await;
    let mut s = accept(&mut incoming).await;
    rx.expect_reply(1).await;
    tx.data(1, &[1; 40_000], false).await;
    let mut buf = vec![0; 40_000];
    s.read_exact(&mut buf).await.unwrap();
    let mut credited = std::collections::HashMap::new();
    while credited.len() < 2 {
        match rx.next().await {
            Some(Got::Frame(Frame::WindowUpdate { stream_id, delta })) => {
                credited.insert(stream_id, delta);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(credited.get(&0), Some(&40_000));
    assert_eq!(credited.get(&1), Some(&40_000));
}
