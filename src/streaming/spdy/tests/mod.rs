//! Tests of the SPDY module; `Client` is a minimal SPDY client built from
//! the frame and compression modules, standing in for spdystream.

mod flow;
mod frames;
mod headers;
mod interop;
mod malformed;
mod session;

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};

use super::compression::{HeaderCompressor, HeaderDecompressor, Headers};
use super::frame::{self, Frame};
use super::{Incoming, Session, SessionConfig};

/// How long a test waits for something that should happen.
const PATIENCE: Duration = Duration::from_secs(20);

/// The client's sending half.
pub(super) struct ClientTx {
    wr: WriteHalf<DuplexStream>,
    enc: HeaderCompressor,
}

/// The client's receiving half.
pub(super) struct ClientRx {
    rd: ReadHalf<DuplexStream>,
    dec: HeaderDecompressor,
    buf: BytesMut,
}

/// A frame as the client sees it, header blocks decompressed.
#[derive(Debug)]
pub(super) enum Got {
    Frame(Frame),
    Reply {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
}

pub(super) fn connect(config: SessionConfig) -> (ClientTx, ClientRx, Session, Incoming) {
    let (client, server) = tokio::io::duplex(64 << 10);
    let (session, incoming) = Session::server(server, config);
    let (rd, wr) = tokio::io::split(client);
    let tx = ClientTx {
        wr,
        enc: HeaderCompressor::new().expect("compressor"),
    };
    let rx = ClientRx {
        rd,
        dec: HeaderDecompressor::new(1 << 20),
        buf: BytesMut::new(),
    };
    (tx, rx, session, incoming)
}

impl ClientTx {
    pub(super) async fn send(&mut self, f: Frame) {
        let mut out = BytesMut::new();
        f.encode(&mut out).expect("encode");
        self.raw(&out).await;
    }

    pub(super) async fn raw(&mut self, bytes: &[u8]) {
        self.wr.write_all(bytes).await.expect("client write");
    }

    pub(super) async fn try_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.wr.write_all(bytes).await
    }

    /// Closes the client's sending direction (the server reads EOF).
    pub(super) async fn finish(&mut self) {
        let _ = self.wr.shutdown().await;
    }

    /// Sends SYN_STREAM as spdystream does (priority 0, slot 0).
    pub(super) async fn open(&mut self, stream_id: u32, headers: &[(&str, &str)], flags: u8) {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let block = self.enc.compress(&headers).expect("compress");
        self.send(Frame::SynStream {
            flags,
            stream_id,
            associated_to: 0,
            priority: 0,
            slot: 0,
            header_block: block.into(),
        })
        .await;
    }

    pub(super) async fn data(&mut self, stream_id: u32, data: &[u8], fin: bool) {
        let flags = if fin { frame::FLAG_FIN } else { 0 };
        self.send(Frame::Data {
            stream_id,
            flags,
            data: bytes::Bytes::copy_from_slice(data),
        })
        .await;
    }
}

impl ClientRx {
    /// The next frame, or `None` at EOF; panics after `PATIENCE`.
    pub(super) async fn next(&mut self) -> Option<Got> {
        tokio::time::timeout(PATIENCE, self.next_inner())
            .await
            .expect("client waited too long for a frame")
    }

    /// Like `next` but gives up after `wait`, returning `Err(())`.
    pub(super) async fn next_within(&mut self, wait: Duration) -> Result<Option<Got>, ()> {
        tokio::time::timeout(wait, self.next_inner())
            .await
            .map_err(|_| ())
    }

    pub(super) async fn next_inner(&mut self) -> Option<Got> {
        loop {
            if let Some(f) = frame::decode(&mut self.buf, frame::MAX_PAYLOAD).expect("decode") {
                return Some(match f {
                    Frame::SynReply {
                        stream_id,
                        flags,
                        header_block,
                    } => Got::Reply {
                        stream_id,
                        flags,
                        headers: self.dec.decompress(&header_block).expect("reply headers"),
                    },
                    other => Got::Frame(other),
                });
            }
            self.buf.reserve(16 << 10);
            match self.rd.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// The next frame that is not a WINDOW_UPDATE.
    pub(super) async fn next_skip_updates(&mut self) -> Option<Got> {
        loop {
            match self.next().await {
                Some(Got::Frame(Frame::WindowUpdate { .. })) => continue,
                other => return other,
            }
        }
    }

    pub(super) async fn expect_reply(&mut self, id: u32) {
        match self.next_skip_updates().await {
            Some(Got::Reply {
                stream_id,
                flags,
                headers,
            }) => {
                assert_eq!(stream_id, id);
                assert_eq!(flags, 0);
                assert!(headers.is_empty(), "{headers:?}");
            }
            other => panic!("expected SYN_REPLY for {id}, got {other:?}"),
        }
    }
}

/// A deterministic byte pattern for transfers, differing per `seed`.
pub(super) fn pattern(seed: u8, offset: usize, len: usize) -> Vec<u8> {
    (offset..offset + len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 11)).wrapping_add(usize::from(seed)) as u8)
        .collect()
}

/// A small xorshift generator: reproducible garbage without a dependency.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub(super) fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}
