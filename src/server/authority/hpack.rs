//! Just enough HPACK (RFC 7541) to read a client's header blocks and write
//! them back out: a decoder that keeps the client's dynamic table in step,
//! and an encoder that only emits literals without indexing, so what it
//! writes never touches the receiver's dynamic table.

use std::collections::VecDeque;

use super::huffman;
use crate::error::{Error, Result};

/// One decoded header field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
    /// Sent as "never indexed": an intermediary must keep it so (§6.2.3).
    pub never_indexed: bool,
}

/// RFC 7541 §4.1: an entry's size counts 32 octets of overhead.
const ENTRY_OVERHEAD: usize = 32;

/// The decoding context of one connection's client→server direction.
pub struct Decoder {
    /// Newest entry first, as HPACK indexes it.
    table: VecDeque<(Vec<u8>, Vec<u8>)>,
    size: usize,
    max_size: usize,
    /// The most the encoder may set `max_size` to: our
    /// SETTINGS_HEADER_TABLE_SIZE.
    limit: usize,
}

impl Decoder {
    pub fn new(limit: usize) -> Self {
        Decoder {
            table: VecDeque::new(),
            size: 0,
            max_size: limit,
            limit,
        }
    }

    /// Decodes one complete header block, updating the dynamic table.
    /// `max_list` bounds the decoded size (names, values, 32 per field).
    pub fn decode(&mut self, block: &[u8], max_list: usize) -> Result<Vec<Field>> {
        let mut fields = Vec::new();
        let mut list_size = 0usize;
        let mut pos = 0usize;
        while let Some(&first) = block.get(pos) {
            let field = if first & 0x80 != 0 {
                let index = int(block, &mut pos, 7)?;
                let (name, value) = self.entry(index)?;
                Field {
                    name: name.to_vec(),
                    value: value.to_vec(),
                    never_indexed: false,
                }
            } else if first & 0x40 != 0 {
                let field = self.literal(block, &mut pos, 6, false)?;
                self.insert(field.name.clone(), field.value.clone());
                field
            } else if first & 0x20 != 0 {
                // §4.2: size updates come before the first field.
                if !fields.is_empty() {
                    return Err(bad("table size update after a header field"));
                }
                let size = int(block, &mut pos, 5)?;
                if size > self.limit {
                    return Err(bad("table size update above SETTINGS_HEADER_TABLE_SIZE"));
                }
                self.max_size = size;
                self.evict(0);
                continue;
            } else {
                self.literal(block, &mut pos, 4, first & 0x10 != 0)?
            };
            list_size += field.name.len() + field.value.len() + ENTRY_OVERHEAD;
            if list_size > max_list {
                return Err(bad("header list too large"));
            }
            fields.push(field);
        }
        Ok(fields)
    }

    fn literal(
        &self,
        block: &[u8],
        pos: &mut usize,
        prefix: u32,
        never_indexed: bool,
    ) -> Result<Field> {
        let index = int(block, pos, prefix)?;
        let name = if index == 0 {
            string(block, pos)?
        } else {
            self.entry(index)?.0.to_vec()
        };
        let value = string(block, pos)?;
        Ok(Field {
            name,
            value,
            never_indexed,
        })
    }

    fn entry(&self, index: usize) -> Result<(&[u8], &[u8])> {
        if index == 0 {
            return Err(bad("index 0"));
        }
        if let Some(&(name, value)) = STATIC_TABLE.get(index - 1) {
            return Ok((name.as_bytes(), value.as_bytes()));
        }
        let (name, value) = self
            .table
            .get(index - 1 - STATIC_TABLE.len())
            .ok_or_else(|| bad("index beyond the dynamic table"))?;
        Ok((name, value))
    }

    fn insert(&mut self, name: Vec<u8>, value: Vec<u8>) {
        let size = name.len() + value.len() + ENTRY_OVERHEAD;
        // §4.4: an entry larger than the table empties it and is dropped.
        if size > self.max_size {
            self.table.clear();
            self.size = 0;
            return;
        }
        self.evict(size);
        self.table.push_front((name, value));
        self.size += size;
    }

    /// Evicts the oldest entries until `room` more octets fit.
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max_size {
            let Some((name, value)) = self.table.pop_back() else {
                break;
            };
            self.size -= name.len() + value.len() + ENTRY_OVERHEAD;
        }
    }
}

/// Appends `field` as a literal without indexing (or never indexed), with
/// a literal name and plain strings: stateless for the receiver.
pub fn encode_literal(field: &Field, out: &mut Vec<u8>) {
    let kind = if field.never_indexed { 0x10 } else { 0x00 };
    // Name index 0: the name follows as a string.
    out.push(kind);
    put_string(&field.name, out);
    put_string(&field.value, out);
}

fn put_string(s: &[u8], out: &mut Vec<u8>) {
    put_int(s.len(), 7, 0x00, out);
    out.extend_from_slice(s);
}

/// §5.1 integer with an N-bit prefix; `flags` fills the bits above it.
fn put_int(mut value: usize, prefix: u32, flags: u8, out: &mut Vec<u8>) {
    let max = (1usize << prefix) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    value -= max;
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads a §5.1 integer whose prefix is the low `prefix` bits at `pos`.
fn int(block: &[u8], pos: &mut usize, prefix: u32) -> Result<usize> {
    let first = *block.get(*pos).ok_or_else(|| bad("truncated integer"))?;
    *pos += 1;
    let max = (1usize << prefix) - 1;
    let mut value = usize::from(first) & max;
    if value < max {
        return Ok(value);
    }
    // Anything past 28 bits is no sane length or index; refuse it rather
    // than risk overflow.
    let mut shift = 0u32;
    loop {
        let byte = *block.get(*pos).ok_or_else(|| bad("truncated integer"))?;
        *pos += 1;
        value += usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
        shift += 7;
        if shift > 21 {
            return Err(bad("integer too large"));
        }
    }
}

/// Reads a §5.2 string literal, Huffman-decoding it if flagged.
fn string(block: &[u8], pos: &mut usize) -> Result<Vec<u8>> {
    let huffman_coded = block.get(*pos).is_some_and(|b| b & 0x80 != 0);
    let len = int(block, pos, 7)?;
    let end = pos
        .checked_add(len)
        .filter(|&end| end <= block.len())
        .ok_or_else(|| bad("string longer than the header block"))?;
    let raw = &block[*pos..end];
    *pos = end;
    if huffman_coded {
        let mut out = Vec::with_capacity(len + len / 2);
        huffman::decode(raw, &mut out)?;
        Ok(out)
    } else {
        Ok(raw.to_vec())
    }
}

fn bad(what: &str) -> Error {
    Error::invalid(format!("HPACK: {what}"))
}

/// RFC 7541 Appendix A; HPACK index = position + 1.
const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

#[cfg(test)]
pub mod tests {
    use super::*;

    pub fn unhex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    fn pairs(fields: &[Field]) -> Vec<(String, String)> {
        fields
            .iter()
            .map(|f| {
                (
                    String::from_utf8_lossy(&f.name).into_owned(),
                    String::from_utf8_lossy(&f.value).into_owned(),
                )
            })
            .collect()
    }

    fn strs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn rfc7541_c3_requests_share_the_dynamic_table() {
        let mut d = Decoder::new(4096);
        let first = d
            .decode(&unhex("828684410f7777772e6578616d706c652e636f6d"), 1 << 20)
            .unwrap();
        assert_eq!(
            pairs(&first),
            strs(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
            ])
        );
        assert_eq!(d.size, 57);
        // 0xbe is dynamic index 62: the authority inserted above.
        let second = d
            .decode(&unhex("828684be58086e6f2d6361636865"), 1 << 20)
            .unwrap();
        assert_eq!(
            pairs(&second)[3],
            (":authority".into(), "www.example.com".into())
        );
        assert_eq!(
            pairs(&second)[4],
            ("cache-control".into(), "no-cache".into())
        );
        let third = d
            .decode(
                &unhex("828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565"),
                1 << 20,
            )
            .unwrap();
        assert_eq!(
            pairs(&third)[3],
            (":authority".into(), "www.example.com".into())
        );
        assert_eq!(
            pairs(&third)[4],
            ("custom-key".into(), "custom-value".into())
        );
        assert_eq!(d.table.len(), 3);
        assert_eq!(d.size, 164);
    }

    #[test]
    fn huffman_literals_and_eviction() {
        // RFC 7541 C.4.1, then a size update to 0 empties the table.
        let mut d = Decoder::new(4096);
        let fields = d
            .decode(&unhex("828684418cf1e3c2e5f23a6ba0ab90f4ff"), 1 << 20)
            .unwrap();
        assert_eq!(fields[3].value, b"www.example.com");
        assert_eq!(d.table.len(), 1);
        let fields = d.decode(&unhex("2082"), 1 << 20).unwrap();
        assert_eq!(pairs(&fields), strs(&[(":method", "GET")]));
        assert!(d.table.is_empty());
        assert!(d.decode(&unhex("be"), 1 << 20).is_err(), "index 62 is gone");
    }

    #[test]
    fn malformed_blocks_are_errors() {
        let cases = [
            "80",             // index 0
            "ff",             // truncated integer
            "ffffffffffff7f", // integer too large
            "c0",             // index 64, table empty
            "4005616263",     // name string runs past the block
            "400361626303",   // value string runs past the block
            "823fe11f",       // size update 4096+ after a field
            "3fe21f",         // size update above the limit
            "4081ff0161",     // bad Huffman in a name
        ];
        for hex in cases {
            let mut d = Decoder::new(4096);
            assert!(d.decode(&unhex(hex), 1 << 20).is_err(), "{hex}");
        }
        let mut d = Decoder::new(4096);
        assert!(d.decode(&unhex("8282"), 80).is_err(), "list size bound");
    }

    #[test]
    fn literals_round_trip_without_indexing() {
        let fields = vec![
            Field {
                name: b":authority".to_vec(),
                value: vec![b'x'; 300],
                never_indexed: false,
            },
            Field {
                name: b"secret".to_vec(),
                value: b"v".to_vec(),
                never_indexed: true,
            },
        ];
        let mut block = Vec::new();
        for f in &fields {
            encode_literal(f, &mut block);
        }
        let mut d = Decoder::new(4096);
        assert_eq!(d.decode(&block, 1 << 20).unwrap(), fields);
        assert!(d.table.is_empty(), "nothing was indexed");
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..400 {
            let block: Vec<u8> = (0..len % 40)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let mut d = Decoder::new(4096);
            let _ = d.decode(&block, 1 << 16);
        }
    }
}
