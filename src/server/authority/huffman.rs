//! HPACK's Huffman code (RFC 7541 Appendix B), decoding only.
//!
//! The code is canonical: within one code length, codes are consecutive and
//! ordered by symbol, and each length starts where the shorter ones left
//! off. So the table below (symbols grouped by code length) is all there is
//! to know; codes are derived while decoding, as in any canonical decoder.

use crate::error::{Error, Result};

/// How many symbols have a code of each length, index = length in bits.
const COUNT_BY_LENGTH: [u16; 31] = [
    0, 0, 0, 0, 0, 10, 26, 32, 6, 0, 5, 3, 2, 6, 2, 3, 0, 0, 0, 3, 8, 13, 26, 29, 12, 4, 15, 19,
    29, 0, 4,
];

/// The symbols, shortest code first; ascending within one length. 256 is EOS.
const SYMBOLS: [u16; 257] = [
    // 5 bits
    48, 49, 50, 97, 99, 101, 105, 111, 115, 116, //
    // 6 bits
    32, 37, 45, 46, 47, 51, 52, 53, 54, 55, 56, 57, 61, 65, 95, 98, 100, 102, 103, 104, 108, 109,
    110, 112, 114, 117, //
    // 7 bits
    58, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 89,
    106, 107, 113, 118, 119, 120, 121, 122, //
    // 8 bits
    38, 42, 44, 59, 88, 90, //
    // 10, 11, 12 bits
    33, 34, 40, 41, 63, 39, 43, 124, 35, 62, //
    // 13, 14, 15 bits
    0, 36, 64, 91, 93, 126, 94, 125, 60, 96, 123, //
    // 19, 20 bits
    92, 195, 208, 128, 130, 131, 162, 184, 194, 224, 226, //
    // 21 bits
    153, 161, 167, 172, 176, 177, 179, 209, 216, 217, 227, 229, 230, //
    // 22 bits
    129, 132, 133, 134, 136, 146, 154, 156, 160, 163, 164, 169, 170, 173, 178, 181, 185, 186, 187,
    189, 190, 196, 198, 228, 232, 233, //
    // 23 bits
    1, 135, 137, 138, 139, 140, 141, 143, 147, 149, 150, 151, 152, 155, 157, 158, 165, 166, 168,
    174, 175, 180, 182, 183, 188, 191, 197, 231, 239, //
    // 24, 25 bits
    9, 142, 144, 145, 148, 159, 171, 206, 215, 225, 236, 237, 199, 207, 234, 235, //
    // 26 bits
    192, 193, 200, 201, 202, 205, 210, 213, 218, 219, 238, 240, 242, 243, 255, //
    // 27 bits
    203, 204, 211, 212, 214, 221, 222, 223, 241, 244, 245, 246, 247, 248, 250, 251, 252, 253, 254,
    // 28 bits
    2, 3, 4, 5, 6, 7, 8, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 23, 24, 25, 26, 27, 28, 29, 30, 31,
    127, 220, 249, //
    // 30 bits
    10, 13, 22, 256,
];

const EOS: u16 = 256;

/// Decodes a Huffman-coded string literal, appending to `out`.
///
/// Rejects what RFC 7541 §5.2 calls a decoding error: an EOS symbol, or
/// padding longer than 7 bits or not made of 1-bits.
pub fn decode(input: &[u8], out: &mut Vec<u8>) -> Result<()> {
    // State of the symbol being read: its bits so far, their count, and
    // where its length's codes begin (first code, offset into SYMBOLS).
    let mut code: u32 = 0;
    let mut len: usize = 0;
    let mut first: u32 = 0;
    let mut offset: usize = 0;
    let mut all_ones = true;
    for byte in input {
        for shift in (0..8).rev() {
            let bit = u32::from((byte >> shift) & 1);
            code = (code << 1) | bit;
            all_ones &= bit == 1;
            len += 1;
            let Some(&count) = COUNT_BY_LENGTH.get(len) else {
                return Err(bad("Huffman code longer than 30 bits"));
            };
            let count = u32::from(count);
            if code.wrapping_sub(first) < count {
                let index = offset + (code - first) as usize;
                let symbol = *SYMBOLS.get(index).ok_or_else(|| bad("Huffman index"))?;
                if symbol == EOS {
                    return Err(bad("EOS in a Huffman-coded string"));
                }
                // Symbols other than EOS are < 256.
                out.push(symbol as u8);
                (code, len, first, offset, all_ones) = (0, 0, 0, 0, true);
            } else {
                offset += count as usize;
                first = (first + count) << 1;
            }
        }
    }
    if len > 7 || !all_ones {
        return Err(bad("invalid Huffman padding"));
    }
    Ok(())
}

fn bad(what: &str) -> Error {
    Error::invalid(format!("HPACK: {what}"))
}

/// Test-only encoder: derives each symbol's code the canonical way.
#[cfg(test)]
pub fn encode(input: &[u8]) -> Vec<u8> {
    let mut codes = [(0u32, 0usize); 257];
    let (mut next, mut index) = (0u32, 0usize);
    for (len, &count) in COUNT_BY_LENGTH.iter().enumerate() {
        for _ in 0..count {
            codes[SYMBOLS[index] as usize] = (next, len);
            next += 1;
            index += 1;
        }
        next <<= 1;
    }
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u64, 0usize);
    for &b in input {
        let (code, len) = codes[b as usize];
        acc = (acc << len) | u64::from(code);
        bits += len;
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    if bits > 0 {
        // Pad with the high bits of EOS, all ones.
        let pad = 8 - bits;
        out.push(((acc << pad) as u8) | ((1u8 << pad) - 1));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(input: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        decode(input, &mut out).map(|()| out)
    }

    #[test]
    fn table_is_complete() {
        let total: u16 = COUNT_BY_LENGTH.iter().sum();
        assert_eq!(usize::from(total), SYMBOLS.len());
        let mut seen = [false; 257];
        for &s in &SYMBOLS {
            assert!(!seen[s as usize], "symbol {s} listed twice");
            seen[s as usize] = true;
        }
    }

    #[test]
    fn rfc7541_examples() {
        // RFC 7541 C.4.1 and C.4.2.
        let www = [
            0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ];
        assert_eq!(dec(&www).unwrap(), b"www.example.com");
        assert_eq!(encode(b"www.example.com"), www);
        let no_cache = [0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf];
        assert_eq!(dec(&no_cache).unwrap(), b"no-cache");
    }

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(dec(&encode(&all)).unwrap(), all);
        let path = b"%2Frun%2Fdocker-cri.sock";
        assert_eq!(dec(&encode(path)).unwrap(), path);
        assert_eq!(dec(&[]).unwrap(), b"");
    }

    #[test]
    fn bad_padding_and_eos_are_errors() {
        // '0' is 00000; padding with zeros is invalid.
        assert!(dec(&[0b0000_0000]).is_err());
        // A full byte of 1-bits is more than 7 bits of padding.
        assert!(dec(&[0xff]).is_err());
        // EOS: thirty 1-bits.
        assert!(dec(&[0xff, 0xff, 0xff, 0xfc]).is_err());
        // Any byte string decodes or errors; none panics.
        for a in 0..=255u8 {
            for b in [0u8, 0x3f, 0x7f, 0xfe, 0xff] {
                let _ = dec(&[a, b, a]);
            }
        }
    }
}
