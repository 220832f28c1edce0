//! Name/value blocks and their zlib compression with the SPDY/3 dictionary.

use flate2::{Compress, Compression, FlushCompress};

use super::super::compression::{HeaderCompressor, HeaderDecompressor, encode_block, parse_block};
use super::super::dictionary::DICTIONARY;

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn dictionary_is_the_spdy3_one() {
    // zlib's dictionary id is the Adler-32 of the dictionary; SPDY/3's is
    // 0xe3c6a7c2, and the dictionary is 1423 bytes.
    assert_eq!(DICTIONARY.len(), 1423);
    let mut z = Compress::new(Compression::default(), true);
    assert_eq!(z.set_dictionary(&DICTIONARY).unwrap(), 0xe3c6_a7c2);
    assert!(DICTIONARY.starts_with(b"\0\0\0\x07options"));
}

#[test]
fn block_layout() {
    let raw = encode_block(&h(&[("streamType", "stdin")])).unwrap();
    let mut want = vec![0, 0, 0, 1, 0, 0, 0, 10];
    want.extend_from_slice(b"streamtype");
    want.extend_from_slice(&[0, 0, 0, 5]);
    want.extend_from_slice(b"stdin");
    assert_eq!(raw, want);
    assert_eq!(parse_block(&raw).unwrap(), h(&[("streamtype", "stdin")]));
    assert_eq!(encode_block(&[]).unwrap(), vec![0, 0, 0, 0]);
}

#[test]
fn compress_round_trip_shares_one_context() {
    let mut enc = HeaderCompressor::new().unwrap();
    let mut dec = HeaderDecompressor::new(1 << 20);
    let blocks = [
        h(&[("streamtype", "error"), ("requestid", "0")]),
        h(&[("streamtype", "stdin")]),
        h(&[]),
        h(&[("streamtype", "data"), ("port", "8080"), ("requestid", "0")]),
        h(&[("streamtype", "data"), ("port", "8080"), ("requestid", "0")]),
    ];
    let mut sizes = Vec::new();
    for block in &blocks {
        let z = enc.compress(block).unwrap();
        sizes.push(z.len());
        assert_eq!(&dec.decompress(&z).unwrap(), block);
    }
    // A repeated block compresses better the second time: the context
    // persists across frames.
    assert!(sizes[4] < sizes[3], "{sizes:?}");
}

/// The "client": plain flate2 with the dictionary, a hand-built block.
#[test]
fn decompresses_an_independent_encoders_blocks() {
    let mut z = Compress::new(Compression::best(), true);
    z.set_dictionary(&DICTIONARY).unwrap();
    let mut dec = HeaderDecompressor::new(1 << 20);
    let raw_blocks: [&[u8]; 2] = [
        b"\0\0\0\x02\0\0\0\x0astreamtype\0\0\0\x05error\0\0\0\x04port\0\0\0\x0580\x0081",
        b"\0\0\0\x01\0\0\0\x0astreamtype\0\0\0\x06stdout",
    ];
    for (i, raw) in raw_blocks.iter().enumerate() {
        let mut out = Vec::with_capacity(1024);
        z.compress_vec(raw, &mut out, FlushCompress::Sync).unwrap();
        assert_eq!(
            z.total_in() as usize,
            raw_blocks[..=i].iter().map(|b| b.len()).sum::<usize>()
        );
        let got = dec.decompress(&out).unwrap();
        if i == 0 {
            assert_eq!(got, h(&[("streamtype", "error"), ("port", "80\u{0}81")]));
        } else {
            assert_eq!(got, h(&[("streamtype", "stdout")]));
        }
    }
}

#[test]
fn uppercase_names_are_lowercased_on_read() {
    let raw = b"\0\0\0\x01\0\0\0\x04Port\0\0\0\x0280";
    assert_eq!(parse_block(raw).unwrap(), h(&[("port", "80")]));
}

#[test]
fn malformed_blocks_are_errors() {
    let bad: [&[u8]; 6] = [
        b"",
        b"\0\0\0",
        // One pair announced, none present.
        b"\0\0\0\x01",
        // A name longer than the block.
        b"\0\0\0\x01\0\0\0\xffab\0\0\0\0",
        // An empty name.
        b"\0\0\0\x01\0\0\0\0\0\0\0\0",
        // Bytes after the last pair.
        b"\0\0\0\0x",
    ];
    for raw in bad {
        assert!(parse_block(raw).is_err(), "{raw:?}");
    }
    // A count of 2^32-1 is refused before anything is allocated for it.
    assert!(parse_block(b"\xff\xff\xff\xff\0\0\0\0\0\0\0\0").is_err());
}

#[test]
fn decompression_is_bounded() {
    let mut enc = HeaderCompressor::new().unwrap();
    let big = h(&[("x", &"a".repeat(100_000))]);
    let z = enc.compress(&big).unwrap();
    assert!(z.len() < 2000, "{}", z.len());
    let mut dec = HeaderDecompressor::new(10_000);
    assert!(dec.decompress(&z).is_err());
}

#[test]
fn garbage_compressed_blocks_are_errors() {
    let mut rng = super::Rng::new(7);
    for _ in 0..500 {
        let len = (rng.next_u64() % 40) as usize;
        let bytes = rng.bytes(len);
        let mut dec = HeaderDecompressor::new(1 << 16);
        // A few random bytes could in principle be valid zlib, so only
        // "no panic" is checked here.
        let _ = dec.decompress(&bytes);
    }
    let mut dec = HeaderDecompressor::new(1 << 16);
    // A zlib header without the dictionary flag, then junk: an error.
    assert!(dec.decompress(&[0x78, 0x9c, 0xff, 0xff, 0xff]).is_err());
    // A stream that never asks for the dictionary is still valid zlib
    // (Go's reader takes it too): accepted.
    let mut z = Compress::new(Compression::default(), true);
    let mut out = Vec::with_capacity(64);
    z.compress_vec(b"\0\0\0\0", &mut out, FlushCompress::Sync)
        .unwrap();
    let mut dec = HeaderDecompressor::new(1 << 16);
    assert!(dec.decompress(&out).unwrap().is_empty());
}

/// Blocks from a third encoder, C zlib (Python's `zlib.compressobj` at
/// level 9 with the dictionary as `zdict`, `Z_SYNC_FLUSH` after each), as
/// a client would send them in three successive SYN_STREAMs.
#[test]
fn decodes_c_zlib_blocks() {
    let blocks = [
        "78f9e3c6a7c202a62346703a2b294a4dcc851625aca9a08006000000ffff",
        "c22e555c02cc2e00000000ffff",
        "02255548a95d04ce2016061606409ab30812cb99a0d4cf6880a11954442502000000ffff",
    ];
    let want = [
        h(&[("streamtype", "error")]),
        h(&[("streamtype", "stdin")]),
        h(&[("port", "8080"), ("requestid", "0"), ("streamtype", "data")]),
    ];
    let mut dec = HeaderDecompressor::new(1 << 20);
    for (hex, want) in blocks.iter().zip(want) {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(dec.decompress(&bytes).unwrap(), want);
    }
}

/// Our stream announces the dictionary (FDICT with its id) as Go's zlib
/// reader expects, and every block ends with the sync-flush marker.
#[test]
fn our_blocks_carry_the_dictionary_id_and_sync_flush() {
    let mut enc = HeaderCompressor::new().unwrap();
    let first = enc.compress(&[]).unwrap();
    assert_eq!(first[0], 0x78);
    assert_eq!(first[1] & 0x20, 0x20, "FDICT");
    assert_eq!((u16::from(first[0]) << 8 | u16::from(first[1])) % 31, 0);
    assert_eq!(&first[2..6], &[0xe3, 0xc6, 0xa7, 0xc2]);
    let second = enc.compress(&h(&[("streamtype", "stdout")])).unwrap();
    for block in [&first, &second] {
        assert!(block.ends_with(&[0, 0, 0xff, 0xff]), "{block:x?}");
    }
}
