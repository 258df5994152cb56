//! HPACK header block decoding (RFC 7541), for observing HTTP/2.
//!
//! HTTP/2 compresses header fields against a table that both ends of one
//! direction of a connection keep in step: 61 fixed entries (the static
//! table) and a dynamic table that each literal "with incremental
//! indexing" adds to, newest first, evicting the oldest past a size bound
//! that the encoder may change in-band. Every header block of a direction
//! must therefore go through the same [`Decoder`], in order; that state is
//! the caller's (one per connection and direction), so decoding stays a
//! pure function of the state and the bytes.
//!
//! An observer cannot always see every block: a header block may lie past
//! the bytes the capture copied. From then on the decoder's dynamic table
//! may miss entries the encoder has, so references into it cannot be
//! trusted. [`Decoder::lose_sync`] (called by the caller, and by the decoder
//! itself after any error) keeps the decoder honest rather than blind:
//! entries added after the loss are still known exactly (the newest entries
//! occupy the lowest dynamic indices, and while their sizes alone fit the
//! table none of them can have been evicted), while a reference past them
//! yields an unknown field, counted in [`BlockSummary::unknown`], and never
//! a wrong value. Static-table references and literals stay exact.
//!
//! Why not a crate: the `hpack` crate is unmaintained and panics on a
//! one-byte input (RustSec advisory of 2023; mlalic/hpack-rs#11), its fork
//! `fluke-hpack` had the same defect (bearcove/loona#247), and `h2` keeps
//! its HPACK private; none can resume after missing blocks. Here, bad input
//! is a typed [`HpackError`], field values are handed to a callback as
//! borrowed slices (from the input, the tables, or two reused Huffman
//! buffers), and the only allocation is one per entry added to the table.

use std::collections::VecDeque;

pub mod huffman;

#[cfg(test)]
mod tests;

/// The dynamic table size an encoder starts with (RFC 7540 section 6.5.2).
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// The largest table size this decoder follows. Peers may advertise more in
/// SETTINGS_HEADER_TABLE_SIZE; a size update above this is an error (and
/// the decoder then loses sync), which bounds memory per connection.
pub const MAX_TABLE_SIZE: usize = 1 << 16;

/// The per-entry overhead counted in the table size (section 4.1).
const ENTRY_OVERHEAD: usize = 32;

/// The static table (Appendix A); index 1 is the first entry.
pub const STATIC_TABLE: [(&str, &str); 61] = [
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

/// Why a header block does not decode.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum HpackError {
    /// The block ends inside a representation.
    #[error("header block truncated")]
    Truncated,
    /// An integer does not fit 32 bits.
    #[error("integer overflow")]
    IntegerOverflow,
    /// Index 0, or past the end of the table the decoder knows in full.
    #[error("invalid table index")]
    InvalidIndex,
    /// A Huffman-coded string with EOS, a bad code or bad padding.
    #[error("invalid Huffman code")]
    InvalidHuffman,
    /// A dynamic table size update above the bound.
    #[error("table size update too large")]
    TableSizeTooLarge,
    /// A size update after the first field of a block (section 4.2).
    #[error("table size update after a field")]
    LateSizeUpdate,
}

/// What decoding one block found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockSummary {
    /// Fields handed to the callback.
    pub fields: usize,
    /// Fields whose name or value referred to dynamic entries this decoder
    /// cannot know (added while blocks were missed): not reported.
    pub unknown: usize,
    /// The block was cut short (`complete == false`) and stopped inside a
    /// representation; the fields before it were reported.
    pub truncated: bool,
}

/// One dynamic table entry: name and value in one allocation.
#[derive(Debug, Clone)]
struct Entry {
    bytes: Box<[u8]>,
    name_len: usize,
}

impl Entry {
    fn name(&self) -> &[u8] {
        &self.bytes[..self.name_len]
    }
    fn value(&self) -> &[u8] {
        &self.bytes[self.name_len..]
    }
    fn size(&self) -> usize {
        self.bytes.len() + ENTRY_OVERHEAD
    }
}

/// The decoding state of one direction of one HTTP/2 connection.
#[derive(Debug, Clone)]
pub struct Decoder {
    /// Newest first: dynamic index 62 is `entries[0]`.
    entries: VecDeque<Entry>,
    /// Sum of entry sizes.
    size: usize,
    /// The bound the encoder last set.
    max_size: usize,
    /// Entries older than `entries` may exist that this decoder never saw.
    older_unknown: bool,
    /// Reused buffers for Huffman-decoded names and values.
    name_buf: Vec<u8>,
    value_buf: Vec<u8>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

/// Where a name or value lies while a representation is decoded.
#[derive(Clone, Copy)]
enum Str {
    Static(&'static str),
    DynName(usize),
    DynValue(usize),
    Input(usize, usize),
    NameBuf,
    ValueBuf,
    Unknown,
}

/// A decoded integer and the bytes it took.
fn integer(buf: &[u8], prefix_bits: u32) -> Result<(u32, usize), HpackError> {
    let first = *buf.first().ok_or(HpackError::Truncated)?;
    let max_prefix = (1u32 << prefix_bits) - 1;
    let mut value = u32::from(first) & max_prefix;
    if value < max_prefix {
        return Ok((value, 1));
    }
    let mut shift = 0u32;
    for (i, &b) in buf.iter().enumerate().skip(1) {
        let add = u64::from(b & 0x7f) << shift;
        let sum = u64::from(value) + add;
        value = u32::try_from(sum).map_err(|_| HpackError::IntegerOverflow)?;
        if b & 0x80 == 0 {
            return Ok((value, i + 1));
        }
        shift += 7;
        if shift > 28 {
            return Err(HpackError::IntegerOverflow);
        }
    }
    Err(HpackError::Truncated)
}

impl Decoder {
    /// A decoder for a new connection direction.
    pub fn new() -> Decoder {
        Decoder {
            entries: VecDeque::new(),
            size: 0,
            max_size: DEFAULT_TABLE_SIZE,
            older_unknown: false,
            name_buf: Vec::new(),
            value_buf: Vec::new(),
        }
    }

    /// A decoder whose table bound starts at `size` instead of 4096 (the
    /// receiver advertised it in SETTINGS_HEADER_TABLE_SIZE and the encoder
    /// took it up without a size update, as RFC 7541's examples do).
    pub fn with_max_size(size: usize) -> Decoder {
        Decoder {
            max_size: size.min(MAX_TABLE_SIZE),
            ..Decoder::new()
        }
    }

    /// Entries this decoder knows.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the dynamic table holds no known entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The size the known entries take (section 4.1).
    pub fn size(&self) -> usize {
        self.size
    }

    /// The table size bound the encoder set last.
    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// Whether some dynamic entries may be unknown (a block was missed).
    pub fn out_of_sync(&self) -> bool {
        self.older_unknown
    }

    /// The known dynamic entry at `index` (62 is the newest), as (name, value).
    pub fn dynamic_entry(&self, index: usize) -> Option<(&[u8], &[u8])> {
        let e = self.entries.get(index.checked_sub(62)?)?;
        Some((e.name(), e.value()))
    }

    /// A header block was missed, or only partly seen: from now on only
    /// entries added later are trusted (see the module docs).
    pub fn lose_sync(&mut self) {
        self.entries.clear();
        self.size = 0;
        self.older_unknown = true;
    }

    /// Decodes one whole header block (the fragments of a HEADERS or
    /// PUSH_PROMISE frame and its CONTINUATIONs, concatenated), calling
    /// `field` with each (name, value) in order and updating the table.
    ///
    /// `complete` is false when the block was cut short by the capture:
    /// fields up to the cut are reported, a representation cut in the middle
    /// is not an error, and the table then loses sync (what followed the cut
    /// may have added entries). On any error the fields before it have been
    /// reported and the table has lost sync.
    pub fn decode(
        &mut self,
        block: &[u8],
        complete: bool,
        field: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<BlockSummary, HpackError> {
        let mut summary = BlockSummary::default();
        match self.decode_inner(block, &mut summary, field) {
            Ok(()) if complete => Ok(summary),
            Ok(()) => {
                self.lose_sync();
                Ok(summary)
            }
            Err(HpackError::Truncated) if !complete => {
                summary.truncated = true;
                self.lose_sync();
                Ok(summary)
            }
            Err(e) => {
                self.lose_sync();
                Err(e)
            }
        }
    }

    fn decode_inner(
        &mut self,
        block: &[u8],
        summary: &mut BlockSummary,
        field: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<(), HpackError> {
        let mut pos = 0;
        let mut seen_field = false;
        while pos < block.len() {
            let rest = &block[pos..];
            let b = rest[0];
            if b & 0x80 != 0 {
                // Indexed field (section 6.1).
                let (index, n) = integer(rest, 7)?;
                pos += n;
                seen_field = true;
                match self.lookup(index as usize)? {
                    Some((name, value)) => {
                        let (name, value) = (self.bytes(name, block), self.bytes(value, block));
                        field(name, value);
                        summary.fields += 1;
                    }
                    None => summary.unknown += 1,
                }
                continue;
            }
            if b & 0xe0 == 0x20 {
                // Dynamic table size update (section 6.3).
                if seen_field {
                    return Err(HpackError::LateSizeUpdate);
                }
                let (size, n) = integer(rest, 5)?;
                pos += n;
                let size = size as usize;
                if size > MAX_TABLE_SIZE {
                    return Err(HpackError::TableSizeTooLarge);
                }
                self.max_size = size;
                self.evict(0);
                if size == 0 {
                    // An empty table: nothing unknown is left in it.
                    self.older_unknown = false;
                }
                continue;
            }
            // Literal field: with incremental indexing (01, 6-bit index),
            // without indexing (0000) or never indexed (0001), 4-bit index.
            let (indexing, prefix) = if b & 0xc0 == 0x40 {
                (true, 6)
            } else {
                (false, 4)
            };
            seen_field = true;
            let (index, n) = integer(rest, prefix)?;
            pos += n;
            let name = if index == 0 {
                let (s, n) = self.string(&block[pos..], pos, true)?;
                pos += n;
                s
            } else {
                match self.lookup(index as usize)? {
                    Some((name, _)) => name,
                    None => Str::Unknown,
                }
            };
            let (value, n) = self.string(&block[pos..], pos, false)?;
            pos += n;
            if matches!(name, Str::Unknown) {
                summary.unknown += 1;
                if indexing {
                    // An entry of unknown size: every older one is unsure.
                    self.lose_sync();
                }
                continue;
            }
            let (name_b, value_b) = (self.bytes(name, block), self.bytes(value, block));
            field(name_b, value_b);
            summary.fields += 1;
            if indexing {
                let mut bytes = Vec::with_capacity(name_b.len() + value_b.len());
                bytes.extend_from_slice(name_b);
                bytes.extend_from_slice(value_b);
                let entry = Entry {
                    bytes: bytes.into_boxed_slice(),
                    name_len: name_b.len(),
                };
                self.insert(entry);
            }
        }
        Ok(())
    }

    /// Resolves a table index: `Ok(None)` for an entry this decoder cannot
    /// know, an error for one that cannot exist.
    fn lookup(&self, index: usize) -> Result<Option<(Str, Str)>, HpackError> {
        match index {
            0 => Err(HpackError::InvalidIndex),
            1..=61 => {
                let (n, v) = STATIC_TABLE[index - 1];
                Ok(Some((Str::Static(n), Str::Static(v))))
            }
            _ if index - 62 < self.entries.len() => {
                Ok(Some((Str::DynName(index - 62), Str::DynValue(index - 62))))
            }
            _ if self.older_unknown => Ok(None),
            _ => Err(HpackError::InvalidIndex),
        }
    }

    /// A string literal (section 5.2) starting at `buf` (offset `at` in the
    /// block): where its bytes are, and how many bytes it took.
    fn string(&mut self, buf: &[u8], at: usize, is_name: bool) -> Result<(Str, usize), HpackError> {
        let first = *buf.first().ok_or(HpackError::Truncated)?;
        let (len, n) = integer(buf, 7)?;
        let len = len as usize;
        let end = n.checked_add(len).ok_or(HpackError::Truncated)?;
        let raw = buf.get(n..end).ok_or(HpackError::Truncated)?;
        if first & 0x80 == 0 {
            return Ok((Str::Input(at + n, at + end), end));
        }
        let out = if is_name {
            &mut self.name_buf
        } else {
            &mut self.value_buf
        };
        out.clear();
        huffman::decode(raw, out).map_err(|_| HpackError::InvalidHuffman)?;
        Ok((if is_name { Str::NameBuf } else { Str::ValueBuf }, end))
    }

    fn bytes<'s>(&'s self, s: Str, block: &'s [u8]) -> &'s [u8] {
        match s {
            Str::Static(v) => v.as_bytes(),
            // `i` was checked against the table by `lookup`, and nothing
            // changes the table before the field is reported.
            Str::DynName(i) => self.entries.get(i).map_or(&[][..], |e| e.name()),
            Str::DynValue(i) => self.entries.get(i).map_or(&[][..], |e| e.value()),
            Str::Input(from, to) => block.get(from..to).unwrap_or_default(),
            Str::NameBuf => &self.name_buf,
            Str::ValueBuf => &self.value_buf,
            Str::Unknown => &[],
        }
    }

    /// Adds an entry, evicting the oldest as needed (section 4.4). An entry
    /// larger than the whole table empties it and is not added.
    fn insert(&mut self, entry: Entry) {
        let size = entry.size();
        if size > self.max_size {
            self.entries.clear();
            self.size = 0;
            return;
        }
        self.evict(size);
        self.size += size;
        self.entries.push_front(entry);
    }

    /// Evicts the oldest entries until `room` more bytes fit.
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max_size {
            match self.entries.pop_back() {
                Some(e) => self.size -= e.size(),
                None => break,
            }
        }
    }
}
