//! The client→server HTTP/2 byte stream, scanned frame by frame: every
//! byte passes through untouched except header blocks whose `:authority`
//! h2 would refuse, which are re-encoded with `localhost` in its place.
//!
//! Sans-IO: the adapter in `mod.rs` feeds bytes in and takes bytes out.

use tonic::codegen::http::uri::Authority;

use super::hpack::{self, Decoder, Field};
use crate::error::{Error, Result};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER_LEN: usize = 9;

const TYPE_HEADERS: u8 = 0x1;
const TYPE_CONTINUATION: u8 = 0x9;
const FLAG_END_STREAM: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;
const FLAG_PADDED: u8 = 0x8;
const FLAG_PRIORITY: u8 = 0x20;

/// The smallest SETTINGS_MAX_FRAME_SIZE a peer may announce; frames we
/// write never exceed it, so the server's actual setting does not matter.
const OUT_FRAME_SIZE: usize = 16_384;
/// The header table size we (h2's defaults) advertise, bounding the
/// client's encoder.
const HEADER_TABLE_SIZE: usize = 4096;
/// Bounds on one header block, compressed and decoded. Far above hyper's
/// 16 KiB header list limit, so nothing h2 would take is refused here.
const MAX_BLOCK: usize = 1 << 20;
const MAX_LIST: usize = 1 << 20;

/// What replaces an authority h2 cannot parse; Go clients send the same.
const REPLACEMENT: &[u8] = b"localhost";

enum State {
    /// Inside the connection preface, this many bytes in.
    Preface(usize),
    /// At the start of a frame header.
    FrameStart,
    /// Inside a frame payload that passes through; bytes left.
    Payload(usize),
}

/// A header block begun by HEADERS and not yet ended by END_HEADERS.
struct OpenBlock {
    stream: u32,
    end_stream: bool,
    priority: Option<[u8; 5]>,
    fragment: Vec<u8>,
    /// The frames as received, to forward if no rewrite is needed.
    raw: Vec<u8>,
}

pub struct Rewriter {
    state: State,
    decoder: Decoder,
    block: Option<OpenBlock>,
    /// Once a block is re-encoded, the server's dynamic table no longer
    /// matches the client's; from then on every block is re-encoded, using
    /// no dynamic table at all.
    rewriting: bool,
}

impl Default for Rewriter {
    fn default() -> Self {
        Rewriter {
            state: State::Preface(0),
            decoder: Decoder::new(HEADER_TABLE_SIZE),
            block: None,
            rewriting: false,
        }
    }
}

impl Rewriter {
    /// How many leading bytes of `data` pass to the server unchanged; they
    /// count as consumed. Stops before a header frame, or before a frame
    /// header that is not all there yet.
    pub fn pass_len(&mut self, data: &[u8]) -> Result<usize> {
        let mut pos = 0;
        while pos < data.len() {
            match self.state {
                State::Preface(seen) => {
                    let n = (PREFACE.len() - seen).min(data.len() - pos);
                    if data[pos..pos + n] != PREFACE[seen..seen + n] {
                        return Err(bad("not an HTTP/2 connection preface"));
                    }
                    pos += n;
                    self.state = if seen + n == PREFACE.len() {
                        State::FrameStart
                    } else {
                        State::Preface(seen + n)
                    };
                }
                State::Payload(left) => {
                    let n = left.min(data.len() - pos);
                    pos += n;
                    self.state = if n == left {
                        State::FrameStart
                    } else {
                        State::Payload(left - n)
                    };
                }
                State::FrameStart => {
                    let Some(header) = FrameHeader::parse(&data[pos..]) else {
                        return Ok(pos);
                    };
                    if header.kind == TYPE_HEADERS || header.kind == TYPE_CONTINUATION {
                        return Ok(pos);
                    }
                    if self.block.is_some() {
                        return Err(bad("header block interrupted by another frame"));
                    }
                    pos += FRAME_HEADER_LEN;
                    if header.len > 0 {
                        self.state = State::Payload(header.len);
                    }
                }
            }
        }
        Ok(pos)
    }

    /// Runs `data` through: unchanged bytes and rewritten header blocks go
    /// to `out`. Returns how many bytes were consumed; the rest (a partial
    /// frame) must be offered again with more bytes after it.
    pub fn process(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<usize> {
        let mut pos = 0;
        loop {
            let n = self.pass_len(&data[pos..])?;
            out.extend_from_slice(&data[pos..pos + n]);
            pos += n;
            if pos == data.len() {
                return Ok(pos);
            }
            match self.header_frame(&data[pos..], out)? {
                0 => return Ok(pos),
                n => pos += n,
            }
        }
    }

    /// Takes one complete HEADERS or CONTINUATION frame from the start of
    /// `data`; 0 if it is not all there yet.
    fn header_frame(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<usize> {
        let Some(header) = FrameHeader::parse(data) else {
            return Ok(0);
        };
        let frame_len = FRAME_HEADER_LEN + header.len;
        // Counts frame headers too, so endless empty CONTINUATIONs stop.
        let open_len = self.block.as_ref().map_or(0, |b| b.raw.len());
        if open_len + frame_len > MAX_BLOCK {
            return Err(bad("header block too large"));
        }
        let Some(frame) = data.get(..frame_len) else {
            return Ok(0);
        };
        let payload = &frame[FRAME_HEADER_LEN..];
        if header.kind == TYPE_HEADERS {
            if self.block.is_some() {
                return Err(bad("HEADERS inside an open header block"));
            }
            if header.stream == 0 {
                return Err(bad("HEADERS on stream 0"));
            }
            let (priority, fragment) = headers_payload(header.flags, payload)?;
            self.block = Some(OpenBlock {
                stream: header.stream,
                end_stream: header.flags & FLAG_END_STREAM != 0,
                priority,
                fragment: fragment.to_vec(),
                raw: frame.to_vec(),
            });
        } else {
            let block = self
                .block
                .as_mut()
                .filter(|b| b.stream == header.stream)
                .ok_or_else(|| bad("CONTINUATION outside its header block"))?;
            block.fragment.extend_from_slice(payload);
            block.raw.extend_from_slice(frame);
        }
        if header.flags & FLAG_END_HEADERS != 0
            && let Some(block) = self.block.take()
        {
            self.finish(block, out)?;
        }
        Ok(frame_len)
    }

    /// Decodes a complete block and forwards it, as received or rewritten.
    fn finish(&mut self, block: OpenBlock, out: &mut Vec<u8>) -> Result<()> {
        let mut fields = self.decoder.decode(&block.fragment, MAX_LIST)?;
        let mut replaced = false;
        for field in fields.iter_mut().filter(|f| f.name == b":authority") {
            if Authority::try_from(field.value.as_slice()).is_err() {
                // Once per connection is enough to explain it.
                if !self.rewriting {
                    tracing::debug!(
                        authority = %String::from_utf8_lossy(&field.value),
                        "client sends an :authority h2 would refuse; rewriting its headers"
                    );
                }
                field.value = REPLACEMENT.to_vec();
                replaced = true;
            }
        }
        if !replaced && !self.rewriting {
            out.extend_from_slice(&block.raw);
            return Ok(());
        }
        self.rewriting = true;
        write_block(&block, &fields, out);
        Ok(())
    }
}

/// Splits a HEADERS payload into its priority fields and block fragment,
/// dropping padding.
fn headers_payload(flags: u8, payload: &[u8]) -> Result<(Option<[u8; 5]>, &[u8])> {
    let mut rest = payload;
    if flags & FLAG_PADDED != 0 {
        let (&pad, after) = rest
            .split_first()
            .ok_or_else(|| bad("PADDED HEADERS without a pad length"))?;
        let keep = after
            .len()
            .checked_sub(usize::from(pad))
            .ok_or_else(|| bad("HEADERS padding longer than the frame"))?;
        rest = &after[..keep];
    }
    let mut priority = None;
    if flags & FLAG_PRIORITY != 0 {
        let (fields, after) = rest
            .split_first_chunk::<5>()
            .ok_or_else(|| bad("HEADERS too short for its priority"))?;
        priority = Some(*fields);
        rest = after;
    }
    Ok((priority, rest))
}

/// Writes `fields` as one header block: HEADERS then CONTINUATION frames,
/// none over the minimum frame size, without padding.
fn write_block(block: &OpenBlock, fields: &[Field], out: &mut Vec<u8>) {
    let mut encoded = Vec::new();
    for field in fields {
        hpack::encode_literal(field, &mut encoded);
    }
    let prefix: &[u8] = block.priority.as_ref().map_or(&[], |p| p.as_slice());
    let first_room = OUT_FRAME_SIZE - prefix.len();
    let (first, mut rest) = encoded.split_at(first_room.min(encoded.len()));
    let mut flags = 0;
    if block.end_stream {
        flags |= FLAG_END_STREAM;
    }
    if block.priority.is_some() {
        flags |= FLAG_PRIORITY;
    }
    if rest.is_empty() {
        flags |= FLAG_END_HEADERS;
    }
    put_frame_header(
        out,
        prefix.len() + first.len(),
        TYPE_HEADERS,
        flags,
        block.stream,
    );
    out.extend_from_slice(prefix);
    out.extend_from_slice(first);
    while !rest.is_empty() {
        let (chunk, after) = rest.split_at(OUT_FRAME_SIZE.min(rest.len()));
        let flags = if after.is_empty() {
            FLAG_END_HEADERS
        } else {
            0
        };
        put_frame_header(out, chunk.len(), TYPE_CONTINUATION, flags, block.stream);
        out.extend_from_slice(chunk);
        rest = after;
    }
}

fn put_frame_header(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    // len <= OUT_FRAME_SIZE, so it fits the 24-bit field.
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
}

struct FrameHeader {
    len: usize,
    kind: u8,
    flags: u8,
    stream: u32,
}

impl FrameHeader {
    fn parse(data: &[u8]) -> Option<FrameHeader> {
        let h: &[u8; FRAME_HEADER_LEN] = data.first_chunk()?;
        Some(FrameHeader {
            len: usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]),
            kind: h[3],
            flags: h[4],
            // The reserved high bit is ignored on receipt.
            stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
        })
    }
}

fn bad(what: &str) -> Error {
    Error::invalid(format!("HTTP/2 from client: {what}"))
}

#[cfg(test)]
#[path = "frames_tests.rs"]
pub(super) mod tests;
