//! The IO adapter: any split of the client's bytes reads the same.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::frames::tests::{frame, request_block, server_view};
use super::*;

fn client_bytes() -> Vec<u8> {
    let mut all = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    all.extend(frame(0x4, 0, 0, &[0, 4, 0, 0, 0xff, 0xff]));
    let block = request_block("%2Frun%2Fdocker-cri.sock");
    let (a, b) = block.split_at(7);
    all.extend(frame(0x1, 0, 1, a));
    all.extend(frame(0x9, 0x4, 1, b));
    all.extend(frame(0x0, 0x1, 1, &[0, 0, 0, 0, 0]));
    all.extend(frame(0x1, 0x4, 3, &request_block("localhost")));
    all.extend(frame(0x6, 0, 0, &[1; 8]));
    all
}

/// Writes `input` in pieces of `write_size`, reads through the adapter
/// with a buffer of `read_size`, until EOF.
async fn through(input: Vec<u8>, write_size: usize, read_size: usize) -> io::Result<Vec<u8>> {
    let (mut client, server) = tokio::io::duplex(64);
    let writer = tokio::spawn(async move {
        for piece in input.chunks(write_size) {
            if client.write_all(piece).await.is_err() {
                return;
            }
        }
    });
    let mut conn = AnyAuthority::new(server);
    let mut out = Vec::new();
    let mut buf = vec![0u8; read_size];
    let result = loop {
        match conn.read(&mut buf).await {
            Ok(0) => break Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => break Err(e),
        }
    };
    writer.await.unwrap();
    result
}

#[tokio::test]
async fn every_split_reads_the_same() {
    let input = client_bytes();
    let expected = through(input.clone(), input.len(), 1 << 16).await.unwrap();
    let seen = server_view(&expected);
    assert_eq!(seen.blocks.len(), 2);
    for block in &seen.blocks {
        let authority = block.iter().find(|(n, _)| n == ":authority").unwrap();
        assert_eq!(authority.1, "localhost");
    }
    // DATA, then PING, pass through after the header blocks.
    let kinds: Vec<u8> = seen.frames.iter().map(|f| f.0).collect();
    assert_eq!(kinds, [0x4, 0x1, 0x0, 0x1, 0x6]);
    for (write_size, read_size) in [(1, 1), (1, 100), (5, 3), (9, 9), (13, 1000), (64, 7)] {
        let out = through(input.clone(), write_size, read_size).await.unwrap();
        assert_eq!(
            out, expected,
            "writes of {write_size}, reads of {read_size}"
        );
    }
}

#[tokio::test]
async fn malformed_input_fails_the_read_and_stays_failed() {
    let mut input = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    input.extend(frame(0x9, 0x4, 1, &[0x82]));
    let err = through(input, 4, 16).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);

    let (mut client, server) = tokio::io::duplex(64);
    client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut conn = AnyAuthority::new(server);
    let mut buf = [0u8; 64];
    assert!(conn.read(&mut buf).await.is_err());
    assert!(
        conn.read(&mut buf).await.is_err(),
        "a second read fails too"
    );
}

#[tokio::test]
async fn writes_pass_through() {
    let (mut client, server) = tokio::io::duplex(64);
    let mut conn = AnyAuthority::new(server);
    conn.write_all(b"server bytes").await.unwrap();
    conn.flush().await.unwrap();
    let mut buf = [0u8; 12];
    client.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"server bytes");
}
