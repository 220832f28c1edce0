//! SPDY/3 name/value header blocks and their zlib compression.
//!
//! A block is `count:u32` then `count` × (`len:u32 name`, `len:u32 value`),
//! all big-endian; a value may hold several values separated by NUL. Each
//! direction of a session compresses all of its blocks with one zlib stream
//! primed with the SPDY/3 dictionary, ending every block with a sync flush
//! so the peer can decode it from that frame alone.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::dictionary::DICTIONARY;
use super::error::SpdyError;

/// Name/value pairs in wire order. Names are lowercase (the spec requires
/// it; we lowercase what we read, as Go's framer does).
pub type Headers = Vec<(String, String)>;

/// Serialises headers into an uncompressed name/value block.
pub fn encode_block(headers: &[(String, String)]) -> Result<Vec<u8>, SpdyError> {
    let size: usize = 4 + headers
        .iter()
        .map(|(n, v)| 8 + n.len() + v.len())
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    put_len(&mut out, headers.len())?;
    for (name, value) in headers {
        if name.is_empty() {
            return Err(SpdyError::header("empty header name"));
        }
        put_len(&mut out, name.len())?;
        out.extend(name.bytes().map(|b| b.to_ascii_lowercase()));
        put_len(&mut out, value.len())?;
        out.extend_from_slice(value.as_bytes());
    }
    Ok(out)
}

fn put_len(out: &mut Vec<u8>, len: usize) -> Result<(), SpdyError> {
    let len = u32::try_from(len).map_err(|_| SpdyError::header("header too long"))?;
    out.extend_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Parses an uncompressed name/value block; every length is checked
/// against what is left, and the block must be consumed exactly.
pub fn parse_block(block: &[u8]) -> Result<Headers, SpdyError> {
    let mut rest = block;
    let count = take_u32(&mut rest)? as usize;
    // Every pair needs at least its two length words: this bounds the
    // allocation by the (already bounded) block size.
    if count > rest.len() / 8 {
        return Err(SpdyError::header(format!(
            "{count} headers cannot fit in {} bytes",
            rest.len()
        )));
    }
    let mut headers = Vec::with_capacity(count);
    for _ in 0..count {
        let name = take_bytes(&mut rest)?;
        if name.is_empty() {
            return Err(SpdyError::header("empty header name"));
        }
        let value = take_bytes(&mut rest)?;
        headers.push((
            String::from_utf8_lossy(name).to_ascii_lowercase(),
            String::from_utf8_lossy(value).into_owned(),
        ));
    }
    if !rest.is_empty() {
        return Err(SpdyError::header(format!(
            "{} bytes after the last header",
            rest.len()
        )));
    }
    Ok(headers)
}

fn take_u32(rest: &mut &[u8]) -> Result<u32, SpdyError> {
    match rest.split_first_chunk::<4>() {
        Some((word, tail)) => {
            *rest = tail;
            Ok(u32::from_be_bytes(*word))
        }
        None => Err(SpdyError::header("header block truncated")),
    }
}

fn take_bytes<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], SpdyError> {
    let len = take_u32(rest)? as usize;
    if len > rest.len() {
        return Err(SpdyError::header("header block truncated"));
    }
    let (bytes, tail) = rest.split_at(len);
    *rest = tail;
    Ok(bytes)
}

/// The compressing side of a session (our outgoing header blocks).
pub struct HeaderCompressor {
    z: Compress,
}

impl HeaderCompressor {
    pub fn new() -> Result<Self, SpdyError> {
        let mut z = Compress::new(Compression::default(), true);
        z.set_dictionary(&DICTIONARY)
            .map_err(|e| SpdyError::header(format!("zlib dictionary: {e}")))?;
        Ok(HeaderCompressor { z })
    }

    /// Encodes and compresses one block, ending with a sync flush.
    pub fn compress(&mut self, headers: &[(String, String)]) -> Result<Vec<u8>, SpdyError> {
        let raw = encode_block(headers)?;
        let mut out = Vec::with_capacity(raw.len() / 2 + 64);
        let mut pos = 0;
        loop {
            if out.len() == out.capacity() {
                out.reserve(256);
            }
            let before = self.z.total_in();
            self.z
                .compress_vec(&raw[pos..], &mut out, FlushCompress::Sync)
                .map_err(|e| SpdyError::header(format!("zlib: {e}")))?;
            pos += (self.z.total_in() - before) as usize;
            // zlib has finished the flush once it stops short of filling
            // the output buffer with all input taken.
            if pos == raw.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

/// The decompressing side of a session (the peer's header blocks).
pub struct HeaderDecompressor {
    z: Decompress,
    max_block: usize,
}

impl HeaderDecompressor {
    /// `max_block` bounds the decompressed size of one block.
    pub fn new(max_block: usize) -> Self {
        HeaderDecompressor {
            z: Decompress::new(true),
            max_block,
        }
    }

    /// Decompresses and parses the block carried by one frame. Any error
    /// leaves the shared context unusable: the caller must end the session.
    pub fn decompress(&mut self, block: &[u8]) -> Result<Headers, SpdyError> {
        let raw = self.inflate(block)?;
        parse_block(&raw)
    }

    fn inflate(&mut self, block: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let mut out = Vec::with_capacity((block.len() * 4 + 64).min(self.max_block));
        let mut pos = 0;
        loop {
            if out.len() == out.capacity() {
                if out.len() >= self.max_block {
                    return Err(SpdyError::header(format!(
                        "decompresses to more than {} bytes",
                        self.max_block
                    )));
                }
                let grow = out.len().max(1024).min(self.max_block - out.len());
                out.reserve_exact(grow);
            }
            let (in_before, pos_before, out_before) = (self.z.total_in(), pos, out.len());
            let res = self
                .z
                .decompress_vec(&block[pos..], &mut out, FlushDecompress::Sync);
            pos += (self.z.total_in() - in_before) as usize;
            match res {
                Err(e) if e.needs_dictionary().is_some() => {
                    // zlib checks the requested dictionary id against ours.
                    self.z
                        .set_dictionary(&DICTIONARY)
                        .map_err(|e| SpdyError::header(format!("zlib dictionary: {e}")))?;
                }
                Err(e) => return Err(SpdyError::header(format!("zlib: {e}"))),
                Ok(Status::StreamEnd) => {
                    // The peer must keep its stream open for the session.
                    return Err(SpdyError::header("zlib stream ended"));
                }
                Ok(_) => {
                    let progressed = pos != pos_before || out.len() != out_before;
                    let in_done = pos == block.len();
                    if in_done && out.len() < out.capacity() {
                        return Ok(out);
                    }
                    if !progressed && out.len() < out.capacity() {
                        // No input consumed and output room left: the block
                        // stopped mid-way, which a sync flush never does.
                        return Err(SpdyError::header("truncated compressed block"));
                    }
                }
            }
        }
    }
}
