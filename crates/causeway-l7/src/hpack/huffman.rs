//! The HPACK Huffman code (RFC 7541 section 5.2 and Appendix B).
//!
//! Appendix B's code is canonical: within one code length, codes increase
//! with the symbol, and each length's first code follows the previous
//! length's last one. So the code lengths alone define it, and decoding
//! needs, per length, the first code, how many codes there are and where
//! their symbols start in a list sorted by (length, symbol). All of it is
//! computed at compile time from [`CODE_LEN`].

/// Bits of the code of each symbol 0..=255 and of EOS (256), from RFC 7541
/// Appendix B.
pub const CODE_LEN: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0-15
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 16-31
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, // 32-47 ' '..'/'
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, // 48-63 '0'..'?'
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, // 64-79 '@'..'O'
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, // 80-95 'P'..'_'
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, // 96-111 '`'..'o'
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, // 112-127 'p'..DEL
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 128-143
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 144-159
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 160-175
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 176-191
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 192-207
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 208-223
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 224-239
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 240-255
    30, // EOS
];

/// The longest code (EOS and a few control bytes).
pub const MAX_CODE_LEN: usize = 30;

/// The EOS symbol, which must never appear in a string (section 5.2).
pub const EOS: u16 = 256;

/// The canonical code tables derived from [`CODE_LEN`].
pub struct Canonical {
    /// Symbols sorted by (code length, symbol).
    pub sorted: [u16; 257],
    /// Per length, the first code of that length.
    pub first: [u32; MAX_CODE_LEN + 1],
    /// Per length, how many codes have it.
    pub count: [u16; MAX_CODE_LEN + 1],
    /// Per length, the index in `sorted` of its first symbol.
    pub offset: [u16; MAX_CODE_LEN + 1],
    /// Per symbol, its code (right-aligned).
    pub code: [u32; 257],
}

const fn canonical() -> Canonical {
    let mut t = Canonical {
        sorted: [0; 257],
        first: [0; MAX_CODE_LEN + 1],
        count: [0; MAX_CODE_LEN + 1],
        offset: [0; MAX_CODE_LEN + 1],
        code: [0; 257],
    };
    let mut s = 0;
    while s < 257 {
        t.count[CODE_LEN[s] as usize] += 1;
        s += 1;
    }
    let mut code: u32 = 0;
    let mut at: u16 = 0;
    let mut len = 1;
    while len <= MAX_CODE_LEN {
        t.first[len] = code;
        t.offset[len] = at;
        let mut s = 0;
        while s < 257 {
            if CODE_LEN[s] as usize == len {
                t.sorted[at as usize] = s as u16;
                t.code[s] = code;
                code += 1;
                at += 1;
            }
            s += 1;
        }
        code <<= 1;
        len += 1;
    }
    t
}

/// The code tables, built at compile time.
pub const TABLE: Canonical = canonical();

/// Why a Huffman string does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HuffmanError {
    /// The bits hold EOS, or a code longer than any.
    InvalidCode,
    /// The padding is longer than 7 bits or not all ones (section 5.2).
    InvalidPadding,
}

/// Decodes a Huffman-coded string, appending to `out`.
pub fn decode(input: &[u8], out: &mut Vec<u8>) -> Result<(), HuffmanError> {
    let t = &TABLE;
    let mut code: u32 = 0;
    let mut len: usize = 0;
    for &byte in input {
        for shift in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> shift) & 1);
            len += 1;
            // Codes are at least 5 bits long.
            if len < 5 {
                continue;
            }
            let n = u32::from(t.count[len]);
            let delta = code.wrapping_sub(t.first[len]);
            if code >= t.first[len] && delta < n {
                let sym = t.sorted[usize::from(t.offset[len]) + delta as usize];
                if sym == EOS {
                    return Err(HuffmanError::InvalidCode);
                }
                out.push(sym as u8);
                code = 0;
                len = 0;
            } else if len >= MAX_CODE_LEN {
                return Err(HuffmanError::InvalidCode);
            }
        }
    }
    // What is left must be a prefix of EOS (all ones) shorter than a byte.
    if len > 7 || code != (1u32 << len) - 1 {
        return Err(HuffmanError::InvalidPadding);
    }
    Ok(())
}

/// Bytes `input` takes once Huffman-coded.
pub fn encoded_len(input: &[u8]) -> usize {
    let bits: usize = input
        .iter()
        .map(|&b| usize::from(CODE_LEN[b as usize]))
        .sum();
    bits.div_ceil(8)
}

/// Huffman-codes `input`, appending to `out` (padding with ones). Used by
/// the tests and benches that build header blocks; the agent only decodes.
pub fn encode(input: &[u8], out: &mut Vec<u8>) {
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    for &b in input {
        let len = u32::from(CODE_LEN[b as usize]);
        acc = (acc << len) | u64::from(TABLE.code[b as usize]);
        bits += len;
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    if bits > 0 {
        let pad = 8 - bits;
        out.push(((acc << pad) as u8) | ((1u8 << pad) - 1));
    }
}
