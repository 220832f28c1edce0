//! SPDY/3 framing: the 8-byte frame header, the control frame payloads and
//! data frames. Header blocks stay compressed here; `compression` owns the
//! per-session zlib contexts, because their state depends on wire order.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::error::SpdyError;

/// The only protocol version spoken (SPDY/3.1 keeps version 3 on the wire).
pub const VERSION: u16 = 3;
/// Length of every frame header (control and data).
pub const HEADER_LEN: usize = 8;
/// The length field is 24 bits wide.
pub const MAX_PAYLOAD: usize = 0x00ff_ffff;
/// Stream ids and window deltas are 31-bit; the top bit is reserved.
pub const MAX_STREAM_ID: u32 = 0x7fff_ffff;
/// The largest window (stream or session) the spec allows.
pub const MAX_WINDOW: i64 = 0x7fff_ffff;
/// The window both sides start with until SETTINGS say otherwise.
pub const DEFAULT_WINDOW: u32 = 65_536;

/// FIN on DATA, SYN_STREAM, SYN_REPLY and HEADERS: the sender's last frame.
pub const FLAG_FIN: u8 = 0x01;
/// UNIDIRECTIONAL on SYN_STREAM: the recipient may not send on the stream.
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;
/// FLAG_SETTINGS_CLEAR_SETTINGS on a SETTINGS frame.
pub const FLAG_SETTINGS_CLEAR: u8 = 0x01;

pub const TYPE_SYN_STREAM: u16 = 1;
pub const TYPE_SYN_REPLY: u16 = 2;
pub const TYPE_RST_STREAM: u16 = 3;
pub const TYPE_SETTINGS: u16 = 4;
pub const TYPE_PING: u16 = 6;
pub const TYPE_GOAWAY: u16 = 7;
pub const TYPE_HEADERS: u16 = 8;
pub const TYPE_WINDOW_UPDATE: u16 = 9;

/// SETTINGS id of the initial per-stream window.
pub const SETTINGS_INITIAL_WINDOW_SIZE: u32 = 7;

/// RST_STREAM status codes (SPDY/3.1 section 2.6.3).
pub mod rst {
    pub const PROTOCOL_ERROR: u32 = 1;
    pub const INVALID_STREAM: u32 = 2;
    pub const REFUSED_STREAM: u32 = 3;
    pub const UNSUPPORTED_VERSION: u32 = 4;
    pub const CANCEL: u32 = 5;
    pub const INTERNAL_ERROR: u32 = 6;
    pub const FLOW_CONTROL_ERROR: u32 = 7;
    pub const STREAM_IN_USE: u32 = 8;
    pub const STREAM_ALREADY_CLOSED: u32 = 9;
    pub const FRAME_TOO_LARGE: u32 = 11;
}

/// GOAWAY status codes (SPDY/3.1 section 2.6.6).
pub mod goaway {
    pub const OK: u32 = 0;
    pub const PROTOCOL_ERROR: u32 = 1;
    pub const INTERNAL_ERROR: u32 = 2;
}

/// One SETTINGS entry: 8 bits of flags, a 24-bit id, a 32-bit value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub flags: u8,
    pub id: u32,
    pub value: u32,
}

/// A decoded frame. `header_block` fields hold the still-compressed
/// name/value block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Data {
        stream_id: u32,
        flags: u8,
        data: Bytes,
    },
    SynStream {
        flags: u8,
        stream_id: u32,
        associated_to: u32,
        /// 3-bit priority (0 is highest).
        priority: u8,
        slot: u8,
        header_block: Bytes,
    },
    SynReply {
        flags: u8,
        stream_id: u32,
        header_block: Bytes,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Settings {
        flags: u8,
        entries: Vec<Setting>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    Headers {
        flags: u8,
        stream_id: u32,
        header_block: Bytes,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    /// A control frame of a type this version does not define; the spec
    /// says to ignore it, so only its identity survives.
    Unknown {
        frame_type: u16,
        flags: u8,
        length: usize,
    },
}

/// Reads a complete frame from the front of `buf`, or returns `Ok(None)` if
/// more bytes are needed. The length is checked against `max_payload` from
/// the header alone, so a peer cannot make us buffer more than that.
pub fn decode(buf: &mut BytesMut, max_payload: usize) -> Result<Option<Frame>, SpdyError> {
    decode_bounded(buf, max_payload, max_payload)
}

/// `decode` with separate bounds for DATA and control frame payloads.
pub fn decode_bounded(
    buf: &mut BytesMut,
    max_data: usize,
    max_control: usize,
) -> Result<Option<Frame>, SpdyError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let first = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let flags = buf[4];
    let length = usize::from(buf[5]) << 16 | usize::from(buf[6]) << 8 | usize::from(buf[7]);
    let max = if first & 0x8000_0000 == 0 {
        max_data
    } else {
        max_control
    };
    if length > max {
        return Err(SpdyError::FrameTooLarge(length));
    }
    if buf.len() < HEADER_LEN + length {
        buf.reserve(HEADER_LEN + length - buf.len());
        return Ok(None);
    }
    buf.advance(HEADER_LEN);
    let mut payload = buf.split_to(length).freeze();
    if first & 0x8000_0000 == 0 {
        let stream_id = first & MAX_STREAM_ID;
        if stream_id == 0 {
            return Err(SpdyError::protocol("DATA frame on stream 0"));
        }
        return Ok(Some(Frame::Data {
            stream_id,
            flags,
            data: payload,
        }));
    }
    let version = ((first >> 16) & 0x7fff) as u16;
    let frame_type = (first & 0xffff) as u16;
    if version != VERSION {
        return Err(SpdyError::protocol(format!(
            "control frame version {version}, only {VERSION} is spoken"
        )));
    }
    decode_control(frame_type, flags, &mut payload).map(Some)
}

fn decode_control(frame_type: u16, flags: u8, p: &mut Bytes) -> Result<Frame, SpdyError> {
    let len = p.len();
    // Each arm checks the exact or minimum length before any get_*, which
    // would otherwise panic on a short payload.
    let frame = match frame_type {
        TYPE_SYN_STREAM => {
            need(len >= 10, "SYN_STREAM", len)?;
            let stream_id = p.get_u32() & MAX_STREAM_ID;
            let associated_to = p.get_u32() & MAX_STREAM_ID;
            let priority = p.get_u8() >> 5;
            let slot = p.get_u8();
            nonzero(stream_id, "SYN_STREAM")?;
            Frame::SynStream {
                flags,
                stream_id,
                associated_to,
                priority,
                slot,
                header_block: p.split_off(0),
            }
        }
        TYPE_SYN_REPLY | TYPE_HEADERS => {
            let name = if frame_type == TYPE_SYN_REPLY {
                "SYN_REPLY"
            } else {
                "HEADERS"
            };
            need(len >= 4, name, len)?;
            let stream_id = p.get_u32() & MAX_STREAM_ID;
            nonzero(stream_id, name)?;
            let header_block = p.split_off(0);
            if frame_type == TYPE_SYN_REPLY {
                Frame::SynReply {
                    flags,
                    stream_id,
                    header_block,
                }
            } else {
                Frame::Headers {
                    flags,
                    stream_id,
                    header_block,
                }
            }
        }
        TYPE_RST_STREAM => {
            need(len == 8, "RST_STREAM", len)?;
            let stream_id = p.get_u32() & MAX_STREAM_ID;
            let status = p.get_u32();
            nonzero(stream_id, "RST_STREAM")?;
            if status == 0 {
                return Err(SpdyError::protocol("RST_STREAM with status 0"));
            }
            Frame::RstStream { stream_id, status }
        }
        TYPE_SETTINGS => {
            need(len >= 4, "SETTINGS", len)?;
            let count = p.get_u32() as usize;
            // Compare in u64 terms so a huge count cannot overflow.
            if (count as u64) * 8 != (len as u64 - 4) {
                return Err(SpdyError::protocol(format!(
                    "SETTINGS with {count} entries in {len} bytes"
                )));
            }
            let entries = (0..count)
                .map(|_| {
                    let word = p.get_u32();
                    Setting {
                        flags: (word >> 24) as u8,
                        id: word & 0x00ff_ffff,
                        value: p.get_u32(),
                    }
                })
                .collect();
            Frame::Settings { flags, entries }
        }
        TYPE_PING => {
            need(len == 4, "PING", len)?;
            Frame::Ping { id: p.get_u32() }
        }
        TYPE_GOAWAY => {
            need(len == 8, "GOAWAY", len)?;
            Frame::GoAway {
                last_good_stream_id: p.get_u32() & MAX_STREAM_ID,
                status: p.get_u32(),
            }
        }
        TYPE_WINDOW_UPDATE => {
            need(len == 8, "WINDOW_UPDATE", len)?;
            Frame::WindowUpdate {
                stream_id: p.get_u32() & MAX_STREAM_ID,
                delta: p.get_u32() & MAX_STREAM_ID,
            }
        }
        other => Frame::Unknown {
            frame_type: other,
            flags,
            length: len,
        },
    };
    Ok(frame)
}

fn need(ok: bool, what: &str, len: usize) -> Result<(), SpdyError> {
    if ok {
        Ok(())
    } else {
        Err(SpdyError::protocol(format!(
            "{what} frame with a {len}-byte payload"
        )))
    }
}

fn nonzero(stream_id: u32, what: &str) -> Result<(), SpdyError> {
    if stream_id == 0 {
        Err(SpdyError::protocol(format!("{what} on stream 0")))
    } else {
        Ok(())
    }
}

impl Frame {
    /// Appends the wire form of this frame to `out`. Fails only if a
    /// payload does not fit the 24-bit length field.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), SpdyError> {
        match self {
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                let len = checked_len(data.len())?;
                out.reserve(HEADER_LEN + data.len());
                out.put_u32(stream_id & MAX_STREAM_ID);
                out.put_u32(u32::from(*flags) << 24 | len);
                out.put_slice(data);
            }
            Frame::SynStream {
                flags,
                stream_id,
                associated_to,
                priority,
                slot,
                header_block,
            } => {
                control_header(out, TYPE_SYN_STREAM, *flags, 10 + header_block.len())?;
                out.put_u32(stream_id & MAX_STREAM_ID);
                out.put_u32(associated_to & MAX_STREAM_ID);
                out.put_u8((priority & 0x07) << 5);
                out.put_u8(*slot);
                out.put_slice(header_block);
            }
            Frame::SynReply {
                flags,
                stream_id,
                header_block,
            } => {
                control_header(out, TYPE_SYN_REPLY, *flags, 4 + header_block.len())?;
                out.put_u32(stream_id & MAX_STREAM_ID);
                out.put_slice(header_block);
            }
            Frame::Headers {
                flags,
                stream_id,
                header_block,
            } => {
                control_header(out, TYPE_HEADERS, *flags, 4 + header_block.len())?;
                out.put_u32(stream_id & MAX_STREAM_ID);
                out.put_slice(header_block);
            }
            Frame::RstStream { stream_id, status } => {
                control_header(out, TYPE_RST_STREAM, 0, 8)?;
                out.put_u32(stream_id & MAX_STREAM_ID);
                out.put_u32(*status);
            }
            Frame::Settings { flags, entries } => {
                control_header(out, TYPE_SETTINGS, *flags, 4 + 8 * entries.len())?;
                out.put_u32(entries.len() as u32);
                for e in entries {
                    out.put_u32(u32::from(e.flags) << 24 | (e.id & 0x00ff_ffff));
                    out.put_u32(e.value);
                }
            }
            Frame::Ping { id } => {
                control_header(out, TYPE_PING, 0, 4)?;
                out.put_u32(*id);
            }
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => {
                control_header(out, TYPE_GOAWAY, 0, 8)?;
                out.put_u32(last_good_stream_id & MAX_STREAM_ID);
                out.put_u32(*status);
            }
            Frame::WindowUpdate { stream_id, delta } => {
                control_header(out, TYPE_WINDOW_UPDATE, 0, 8)?;
                out.put_u32(stream_id & MAX_STREAM_ID);
                out.put_u32(delta & MAX_STREAM_ID);
            }
            Frame::Unknown {
                frame_type,
                flags,
                length,
            } => {
                // Only tests send these: a zero-filled payload of that length.
                control_header(out, *frame_type, *flags, *length)?;
                out.put_bytes(0, *length);
            }
        }
        Ok(())
    }
}

fn checked_len(len: usize) -> Result<u32, SpdyError> {
    if len > MAX_PAYLOAD {
        Err(SpdyError::FrameTooLarge(len))
    } else {
        Ok(len as u32)
    }
}

fn control_header(out: &mut BytesMut, ty: u16, flags: u8, len: usize) -> Result<(), SpdyError> {
    let len = checked_len(len)?;
    out.reserve(HEADER_LEN + len as usize);
    out.put_u32(0x8000_0000 | u32::from(VERSION) << 16 | u32::from(ty));
    out.put_u32(u32::from(flags) << 24 | len);
    Ok(())
}
