//! A Hessian 2 reader: the subset Dubbo and SOFARPC bodies need, without
//! copying and within bounds.
//!
//! Two dialects share the name "hessian2" on the wire and differ in a
//! dozen byte codes, so the caller says which one it reads ([`Dialect`]):
//!
//! - [`Dialect::V2`], Hessian 2.0 as published (the grammar of
//!   `hessian-serialization.html`): what Dubbo's hessian-lite and
//!   hessian.js 2 write. Classes are `C name fields names`, instances `O
//!   ref` or `0x60..0x6f`, lists `0x55 V 0x57 0x58 0x70..0x7f`, maps `M type`
//!   and `H`, both ending in `Z`, refs `0x51`, strings in `R` chunks.
//! - [`Dialect::Draft`], the draft of Hessian 2.0 that Caucho Hessian 3.1
//!   wrote and that SOFARPC still writes (Java sofa-hessian, Node
//!   sofa-hessian-node / hessian.js-1): classes `O len raw-name fields
//!   names`, instances `o ref`, lists `V t-type? n/l-length? values z` and
//!   `v`, maps `M t-type? ... z`, refs `R J K`, strings in `s` chunks,
//!   doubles `0x67..0x6b`, dates `d`, longs-in-an-int `w` (0x77).
//!
//! Both share null (`N`), booleans (`T`, `F`), ints (`I`, `0x80..0xd7`),
//! longs (`L`, `0xd8..0xff`, `0x38..0x3f`), compact strings (`0x00..0x1f`,
//! `S`) and compact binaries (`0x20..0x2f`, `B`).
//!
//! The reader is a cursor over the bytes: [`Reader::read_str`],
//! [`Reader::read_int`], [`Reader::read_bool`] read scalars;
//! [`Reader::skip`] passes over any value, nested as deep as
//! [`MAX_DEPTH`]; [`Reader::begin_object`] with [`Reader::object_fields`]
//! and [`Reader::begin_map`] with [`Reader::map_entries`] walk the two
//! shapes whose parts the parsers look up by name. Strings borrow from the
//! input unless they come in several chunks or are not UTF-8 (Java writes
//! the halves of a surrogate pair as two 3-byte sequences): those are put
//! together, replacing what is not UTF-8. Class definitions are remembered
//! by position, at most [`MAX_CLASSES`], so nothing is allocated for them.
//!
//! Bodies are cut by the capture cap, so every read may meet the end:
//! [`Error::Incomplete`] then says so, and whatever the caller took before
//! stands. Lengths are checked against what is there before any is used;
//! every loop consumes at least one byte per turn, so a reader costs at
//! most a pass over its bytes per nesting level it is asked to look into.

use std::borrow::Cow;

/// Which Hessian 2 the bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Hessian 2.0 as published (Dubbo).
    V2,
    /// The Hessian 2.0 draft of Caucho Hessian 3.1 (SOFARPC).
    Draft,
}

/// Why a value could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The bytes end inside the value.
    #[error("hessian value cut off")]
    Incomplete,
    /// The bytes break the grammar; names the part.
    #[error("invalid hessian {0}")]
    Invalid(&'static str),
    /// Deeper nesting or more classes than the reader keeps track of.
    #[error("hessian {0} beyond the reader's bound")]
    Limit(&'static str),
}

/// Results of the reader.
pub type Result<T> = std::result::Result<T, Error>;

/// Nesting followed by [`Reader::skip`].
pub const MAX_DEPTH: usize = 32;
/// Class definitions remembered per reader.
pub const MAX_CLASSES: usize = 16;

/// What the next value is, from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `N`.
    Null,
    /// `T` or `F`.
    Bool,
    /// A 32-bit int.
    Int,
    /// A 64-bit long.
    Long,
    /// A double.
    Double,
    /// A date.
    Date,
    /// A string (possibly chunked).
    String,
    /// Bytes (possibly chunked).
    Binary,
    /// A list or array.
    List,
    /// A map.
    Map,
    /// An object instance (or a class definition and the value after it).
    Object,
    /// A reference to an earlier list, map or object.
    Ref,
    /// The end of a list or map (not a value).
    End,
}

#[derive(Debug, Clone, Copy, Default)]
struct ClassDef {
    /// Byte range of the name (a string value in V2, raw UTF-8 in Draft).
    name: (usize, usize),
    /// Where the field names start (each a string value).
    fields_at: usize,
    fields: u32,
}

/// A cursor over Hessian 2 values.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    dialect: Dialect,
    classes: [ClassDef; MAX_CLASSES],
    n_classes: usize,
}

fn be16(b: &[u8]) -> usize {
    usize::from(u16::from_be_bytes([b[0], b[1]]))
}

/// Byte length of `units` UTF-16 code units of UTF-8 at the start of `b`
/// (Hessian counts string lengths in Java chars).
fn utf16_bytes(b: &[u8], units: usize) -> Result<usize> {
    // Fast path: as many ASCII bytes as units.
    if let Some(head) = b.get(..units) {
        if head.is_ascii() {
            return Ok(units);
        }
    }
    let (mut at, mut left) = (0, units);
    while left > 0 {
        let lead = *b.get(at).ok_or(Error::Incomplete)?;
        let (len, n) = match lead {
            0x00..=0x7f => (1, 1),
            0xc0..=0xdf => (2, 1),
            0xe0..=0xef => (3, 1),
            // A supplementary character is two Java chars; a chunk may not
            // split it.
            0xf0..=0xf7 if left >= 2 => (4, 2),
            _ => return Err(Error::Invalid("utf-8")),
        };
        at += len;
        left -= n;
    }
    if at > b.len() {
        return Err(Error::Incomplete);
    }
    Ok(at)
}

fn text(b: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(b)
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8], dialect: Dialect) -> Reader<'a> {
        Reader {
            buf,
            pos: 0,
            dialect,
            classes: [ClassDef::default(); MAX_CLASSES],
            n_classes: 0,
        }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos.min(self.buf.len())..]
    }

    /// The dialect read.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    fn peek(&self) -> Result<u8> {
        self.buf.get(self.pos).copied().ok_or(Error::Incomplete)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(Error::Incomplete)?;
        let s = self.buf.get(self.pos..end).ok_or(Error::Incomplete)?;
        self.pos = end;
        Ok(s)
    }

    fn end_marker(&self) -> u8 {
        match self.dialect {
            Dialect::V2 => b'Z',
            Dialect::Draft => b'z',
        }
    }

    /// What the next value is, without consuming it.
    pub fn peek_kind(&self) -> Result<Kind> {
        let t = self.peek()?;
        let common = match t {
            b'N' => Some(Kind::Null),
            b'T' | b'F' => Some(Kind::Bool),
            0x80..=0xd7 | b'I' => Some(Kind::Int),
            0xd8..=0xff | 0x38..=0x3f | b'L' => Some(Kind::Long),
            0x00..=0x1f | b'S' => Some(Kind::String),
            0x20..=0x2f | b'B' => Some(Kind::Binary),
            b'D' => Some(Kind::Double),
            b'M' | b'H' => Some(Kind::Map),
            b'V' => Some(Kind::List),
            _ => None,
        };
        if let Some(k) = common {
            return Ok(k);
        }
        let k = match (self.dialect, t) {
            (Dialect::V2, 0x30..=0x33 | b'R') => Kind::String,
            (Dialect::V2, 0x34..=0x37 | 0x41) => Kind::Binary,
            (Dialect::V2, 0x59) => Kind::Long,
            (Dialect::V2, 0x5b..=0x5f) => Kind::Double,
            (Dialect::V2, 0x4a | 0x4b) => Kind::Date,
            (Dialect::V2, 0x55 | 0x57 | 0x58 | 0x70..=0x7f) => Kind::List,
            (Dialect::V2, b'C' | b'O' | 0x60..=0x6f) => Kind::Object,
            (Dialect::V2, 0x51) => Kind::Ref,
            (Dialect::V2, b'Z') => Kind::End,
            (Dialect::Draft, b's') => Kind::String,
            (Dialect::Draft, b'b') => Kind::Binary,
            (Dialect::Draft, b'w') => Kind::Long,
            (Dialect::Draft, 0x67..=0x6b) => Kind::Double,
            (Dialect::Draft, b'd') => Kind::Date,
            (Dialect::Draft, b'v') => Kind::List,
            (Dialect::Draft, b'O' | b'o') => Kind::Object,
            (Dialect::Draft, b'R' | b'J' | b'K') => Kind::Ref,
            (Dialect::Draft, b'z') => Kind::End,
            _ => return Err(Error::Invalid("tag")),
        };
        Ok(k)
    }

    /// An int (any of its encodings).
    pub fn read_int(&mut self) -> Result<i32> {
        let t = self.peek()?;
        let v = match t {
            0x80..=0xbf => i32::from(t) - 0x90,
            0xc0..=0xcf => {
                let b = self.take(2)?;
                ((i32::from(t) - 0xc8) << 8) + i32::from(b[1])
            }
            0xd0..=0xd7 => {
                let b = self.take(3)?;
                ((i32::from(t) - 0xd4) << 16) + (i32::from(b[1]) << 8) + i32::from(b[2])
            }
            b'I' => {
                let b = self.take(5)?;
                i32::from_be_bytes([b[1], b[2], b[3], b[4]])
            }
            _ => return Err(Error::Invalid("int")),
        };
        if (0x80..=0xbf).contains(&t) {
            self.pos += 1;
        }
        Ok(v)
    }

    /// A long (any of its encodings; ints are taken too).
    pub fn read_long(&mut self) -> Result<i64> {
        let t = self.peek()?;
        let v = match (self.dialect, t) {
            (_, 0xd8..=0xef) => {
                self.pos += 1;
                i64::from(t) - 0xe0
            }
            (_, 0xf0..=0xff) => {
                let b = self.take(2)?;
                ((i64::from(t) - 0xf8) << 8) + i64::from(b[1])
            }
            (_, 0x38..=0x3f) => {
                let b = self.take(3)?;
                ((i64::from(t) - 0x3c) << 16) + (i64::from(b[1]) << 8) + i64::from(b[2])
            }
            (Dialect::V2, 0x59) | (Dialect::Draft, b'w') => {
                let b = self.take(5)?;
                i64::from(i32::from_be_bytes([b[1], b[2], b[3], b[4]]))
            }
            (_, b'L') => {
                let b = self.take(9)?;
                i64::from_be_bytes([b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8]])
            }
            _ => return self.read_int().map(i64::from),
        };
        Ok(v)
    }

    /// A boolean (`T` or `F`).
    pub fn read_bool(&mut self) -> Result<bool> {
        match self.peek()? {
            b'T' => {
                self.pos += 1;
                Ok(true)
            }
            b'F' => {
                self.pos += 1;
                Ok(false)
            }
            _ => Err(Error::Invalid("boolean")),
        }
    }

    /// Whether the next value is null; consumes it if so.
    pub fn read_null(&mut self) -> Result<bool> {
        if self.peek()? == b'N' {
            self.pos += 1;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// The header of one string chunk: its length in chars and whether
    /// more chunks follow; None if the tag starts no string.
    fn string_chunk(&mut self) -> Result<Option<(usize, bool)>> {
        let t = self.peek()?;
        let chunk = match (self.dialect, t) {
            (_, 0x00..=0x1f) => {
                self.pos += 1;
                (usize::from(t), false)
            }
            (_, b'S') => (be16(&self.take(3)?[1..]), false),
            (Dialect::V2, b'R') | (Dialect::Draft, b's') => (be16(&self.take(3)?[1..]), true),
            (Dialect::V2, 0x30..=0x33) => {
                let b = self.take(2)?;
                ((usize::from(t - 0x30) << 8) + usize::from(b[1]), false)
            }
            _ => return Ok(None),
        };
        Ok(Some(chunk))
    }

    /// A string, or None for null. Borrowed unless chunked or not UTF-8.
    pub fn read_str(&mut self) -> Result<Option<Cow<'a, str>>> {
        if self.read_null()? {
            return Ok(None);
        }
        let Some((units, mut more)) = self.string_chunk()? else {
            return Err(Error::Invalid("string"));
        };
        let n = utf16_bytes(self.rest(), units)?;
        let first = self.take(n)?;
        if !more {
            return Ok(Some(text(first)));
        }
        let mut all = first.to_vec();
        while more {
            let Some((units, m)) = self.string_chunk()? else {
                return Err(Error::Invalid("string chunk"));
            };
            let n = utf16_bytes(self.rest(), units)?;
            all.extend_from_slice(self.take(n)?);
            more = m;
        }
        Ok(Some(Cow::Owned(String::from_utf8_lossy(&all).into_owned())))
    }

    fn skip_str(&mut self) -> Result<()> {
        let mut more = true;
        while more {
            let Some((units, m)) = self.string_chunk()? else {
                return Err(Error::Invalid("string chunk"));
            };
            let n = utf16_bytes(self.rest(), units)?;
            self.take(n)?;
            more = m;
        }
        Ok(())
    }

    fn skip_binary(&mut self) -> Result<()> {
        loop {
            let t = self.peek()?;
            let (len, more) = match (self.dialect, t) {
                (_, 0x20..=0x2f) => {
                    self.pos += 1;
                    (usize::from(t - 0x20), false)
                }
                (_, b'B') => (be16(&self.take(3)?[1..]), false),
                (Dialect::V2, 0x41) | (Dialect::Draft, b'b') => (be16(&self.take(3)?[1..]), true),
                (Dialect::V2, 0x34..=0x37) => {
                    let b = self.take(2)?;
                    ((usize::from(t - 0x34) << 8) + usize::from(b[1]), false)
                }
                _ => return Err(Error::Invalid("binary chunk")),
            };
            self.take(len)?;
            if !more {
                return Ok(());
            }
        }
    }

    /// A type name of a list or map (V2: a string or a type reference).
    fn skip_v2_type(&mut self) -> Result<()> {
        match self.peek_kind()? {
            Kind::String => self.skip_str(),
            Kind::Int => self.read_int().map(drop),
            _ => Err(Error::Invalid("type")),
        }
    }

    /// An optional type of a Draft list or map: `t` len raw, or `u` ref.
    fn skip_draft_type(&mut self) -> Result<()> {
        match self.peek()? {
            b't' => {
                let units = be16(&self.take(3)?[1..]);
                let n = utf16_bytes(self.rest(), units)?;
                self.take(n).map(drop)
            }
            b'u' => {
                self.pos += 1;
                self.read_int().map(drop)
            }
            _ => Ok(()),
        }
    }

    /// Reads class definitions that precede a value, remembering them.
    fn class_defs(&mut self) -> Result<()> {
        loop {
            match (self.dialect, self.peek()?) {
                (Dialect::V2, b'C') => {
                    self.pos += 1;
                    let start = self.pos;
                    self.skip_str()?;
                    let name = (start, self.pos);
                    self.define(name)?;
                }
                (Dialect::Draft, b'O') => {
                    self.pos += 1;
                    let units =
                        usize::try_from(self.read_int()?).map_err(|_| Error::Invalid("class"))?;
                    let start = self.pos;
                    let n = utf16_bytes(self.rest(), units)?;
                    self.take(n)?;
                    self.define((start, self.pos))?;
                }
                _ => return Ok(()),
            }
        }
    }

    /// The rest of a class definition after its name: field count, names.
    fn define(&mut self, name: (usize, usize)) -> Result<()> {
        let fields = u32::try_from(self.read_int()?).map_err(|_| Error::Invalid("class"))?;
        let fields_at = self.pos;
        for _ in 0..fields {
            self.skip_str()?;
        }
        if self.n_classes == MAX_CLASSES {
            return Err(Error::Limit("classes"));
        }
        self.classes[self.n_classes] = ClassDef {
            name,
            fields_at,
            fields,
        };
        self.n_classes += 1;
        Ok(())
    }

    /// The start of an object instance: its class, after reading the class
    /// definitions before it. None for null; `Invalid` for other values.
    pub fn begin_object(&mut self) -> Result<Option<usize>> {
        self.class_defs()?;
        if self.read_null()? {
            return Ok(None);
        }
        let t = self.peek()?;
        let class = match (self.dialect, t) {
            (Dialect::V2, 0x60..=0x6f) => {
                self.pos += 1;
                usize::from(t - 0x60)
            }
            (Dialect::V2, b'O') | (Dialect::Draft, b'o') => {
                self.pos += 1;
                usize::try_from(self.read_int()?).map_err(|_| Error::Invalid("class ref"))?
            }
            _ => return Err(Error::Invalid("object")),
        };
        if class >= self.n_classes {
            return Err(Error::Invalid("class ref"));
        }
        Ok(Some(class))
    }

    /// The name of a class read so far.
    pub fn class_name(&self, class: usize) -> Cow<'a, str> {
        let Some(c) = self.classes[..self.n_classes].get(class) else {
            return Cow::Borrowed("");
        };
        let raw = &self.buf[c.name.0..c.name.1];
        match self.dialect {
            Dialect::Draft => text(raw),
            Dialect::V2 => Reader::new(raw, self.dialect)
                .read_str()
                .ok()
                .flatten()
                .unwrap_or_default(),
        }
    }

    /// The field names of a class read so far, in order (as far as they
    /// were captured).
    pub fn field_names(&self, class: usize) -> impl Iterator<Item = Cow<'a, str>> + 'a {
        let (mut names, mut left) = (Reader::new(self.buf, self.dialect), 0);
        if let Some(c) = self.classes[..self.n_classes].get(class) {
            names.pos = c.fields_at;
            left = c.fields;
        }
        std::iter::from_fn(move || {
            left = left.checked_sub(1)?;
            names.read_str().ok().flatten()
        })
    }

    /// Visits the fields of an instance of `class` (just begun), in order:
    /// `f` gets the reader at the field's value and the field's name, and
    /// returns whether it read the value; if not, it is skipped.
    pub fn object_fields<F>(&mut self, class: usize, mut f: F) -> Result<()>
    where
        F: FnMut(&mut Reader<'a>, &str) -> Result<bool>,
    {
        let c = *self.classes[..self.n_classes]
            .get(class)
            .ok_or(Error::Invalid("class ref"))?;
        let mut names = Reader::new(self.buf, self.dialect);
        names.pos = c.fields_at;
        for _ in 0..c.fields {
            let name = names.read_str()?.unwrap_or_default();
            if !f(self, &name)? {
                self.skip()?;
            }
        }
        Ok(())
    }

    /// The start of a map: its type, if any, is passed over. False for
    /// null; `Invalid` for other values.
    pub fn begin_map(&mut self) -> Result<bool> {
        if self.read_null()? {
            return Ok(false);
        }
        match (self.dialect, self.peek()?) {
            (_, b'H') => self.pos += 1,
            (Dialect::V2, b'M') => {
                self.pos += 1;
                self.skip_v2_type()?;
            }
            (Dialect::Draft, b'M') => {
                self.pos += 1;
                self.skip_draft_type()?;
            }
            _ => return Err(Error::Invalid("map")),
        }
        Ok(true)
    }

    /// Visits the entries of a map (just begun) up to its end: `f` gets the
    /// reader at the value and the key when it is a string (None
    /// otherwise), and returns whether it read the value.
    pub fn map_entries<F>(&mut self, mut f: F) -> Result<()>
    where
        F: FnMut(&mut Reader<'a>, Option<&str>) -> Result<bool>,
    {
        let end = self.end_marker();
        loop {
            if self.peek()? == end {
                self.pos += 1;
                return Ok(());
            }
            let key = if self.peek_kind()? == Kind::String {
                self.read_str()?
            } else {
                self.skip()?;
                None
            };
            if !f(self, key.as_deref())? {
                self.skip()?;
            }
        }
    }

    /// Passes over one value, whatever it is.
    pub fn skip(&mut self) -> Result<()> {
        self.skip_at(0)
    }

    fn skip_at(&mut self, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(Error::Limit("depth"));
        }
        self.class_defs()?;
        let t = self.peek()?;
        match self.peek_kind()? {
            Kind::Null | Kind::Bool => self.pos += 1,
            Kind::Int => drop(self.read_int()?),
            Kind::Long => drop(self.read_long()?),
            Kind::String => self.skip_str()?,
            Kind::Binary => self.skip_binary()?,
            Kind::Double => {
                let n = match t {
                    b'D' => 9,
                    0x5b | 0x5c | 0x67 | 0x68 => 1,
                    0x5d | 0x69 => 2,
                    0x5e | 0x6a => 3,
                    _ => 5,
                };
                self.take(n)?;
            }
            Kind::Date => {
                let n = if t == 0x4b { 5 } else { 9 };
                self.take(n)?;
            }
            Kind::Ref => {
                let n = match t {
                    b'J' => 2,
                    b'K' => 3,
                    b'R' => 5,
                    _ => {
                        self.pos += 1;
                        return self.read_int().map(drop);
                    }
                };
                self.take(n)?;
            }
            Kind::End => return Err(Error::Invalid("end outside a list or map")),
            Kind::Map => {
                self.begin_map()?;
                let end = self.end_marker();
                while self.peek()? != end {
                    self.skip_at(depth + 1)?;
                    self.skip_at(depth + 1)?;
                }
                self.pos += 1;
            }
            Kind::Object => {
                let class = self.begin_object()?.ok_or(Error::Invalid("object"))?;
                for _ in 0..self.classes[class].fields {
                    self.skip_at(depth + 1)?;
                }
            }
            Kind::List => self.skip_list(t, depth)?,
        }
        Ok(())
    }

    fn skip_list(&mut self, t: u8, depth: usize) -> Result<()> {
        self.pos += 1;
        // (fixed length, whether an end marker follows)
        let (len, ended) = match (self.dialect, t) {
            (Dialect::V2, 0x55) => {
                self.skip_v2_type()?;
                (None, true)
            }
            (Dialect::V2, b'V') => {
                self.skip_v2_type()?;
                (Some(self.read_int()?), false)
            }
            (Dialect::V2, 0x57) => (None, true),
            (Dialect::V2, 0x58) => (Some(self.read_int()?), false),
            (Dialect::V2, 0x70..=0x77) => {
                self.skip_v2_type()?;
                (Some(i32::from(t - 0x70)), false)
            }
            (Dialect::V2, _) => (Some(i32::from(t - 0x78)), false),
            (Dialect::Draft, b'V') => {
                self.skip_draft_type()?;
                let len = match self.peek()? {
                    b'n' => Some(i32::from(self.take(2)?[1])),
                    b'l' => {
                        let b = self.take(5)?;
                        Some(i32::from_be_bytes([b[1], b[2], b[3], b[4]]))
                    }
                    _ => None,
                };
                (len, true)
            }
            (Dialect::Draft, _) => {
                self.read_int()?;
                (Some(self.read_int()?), false)
            }
        };
        match len {
            Some(n) => {
                let n = u32::try_from(n).map_err(|_| Error::Invalid("list length"))?;
                for _ in 0..n {
                    self.skip_at(depth + 1)?;
                }
                if ended {
                    if self.peek()? != self.end_marker() {
                        return Err(Error::Invalid("list end"));
                    }
                    self.pos += 1;
                }
            }
            None => {
                let end = self.end_marker();
                while self.peek()? != end {
                    self.skip_at(depth + 1)?;
                }
                self.pos += 1;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Dialect::{Draft, V2};

    #[test]
    fn ints_in_every_encoding() {
        for (b, v) in [
            (&[0x90][..], 0),
            (&[0x80], -16),
            (&[0xbf], 47),
            (&[0xc8, 0x30], 48),
            (&[0xc0, 0x00], -2048),
            (&[0xcf, 0xff], 2047),
            (&[0xd4, 0x08, 0x00], 2048),
            (&[0xd0, 0x00, 0x00], -262_144),
            (&[0xd7, 0xff, 0xff], 262_143),
            (&[b'I', 0x7f, 0xff, 0xff, 0xff], i32::MAX),
            (&[b'I', 0x80, 0, 0, 0], i32::MIN),
        ] {
            for d in [V2, Draft] {
                let mut r = Reader::new(b, d);
                assert_eq!(r.read_int(), Ok(v), "{b:02x?}");
                assert_eq!(r.position(), b.len());
                let mut r = Reader::new(b, d);
                r.skip().unwrap();
                assert_eq!(r.position(), b.len());
            }
        }
        assert_eq!(Reader::new(&[0xc8], V2).read_int(), Err(Error::Incomplete));
        assert_eq!(Reader::new(b"S", V2).read_int(), Err(Error::Invalid("int")));
    }

    #[test]
    fn longs_per_dialect() {
        assert_eq!(Reader::new(&[0xe0], V2).read_long(), Ok(0));
        assert_eq!(Reader::new(&[0xf8, 0x10], V2).read_long(), Ok(16));
        assert_eq!(Reader::new(&[0x3c, 0x10, 0x00], V2).read_long(), Ok(4096));
        assert_eq!(Reader::new(&[0x59, 0, 0, 1, 0], V2).read_long(), Ok(256));
        assert_eq!(Reader::new(&[b'w', 0, 0, 1, 0], Draft).read_long(), Ok(256));
        assert_eq!(
            Reader::new(&[b'L', 0, 0, 0, 1, 0, 0, 0, 0], Draft).read_long(),
            Ok(1 << 32)
        );
        // 0x77 is a typed fixed list of 7 in V2, 0x59 nothing in Draft.
        assert_eq!(
            Reader::new(&[0x59, 0, 0, 1, 0], Draft).peek_kind(),
            Err(Error::Invalid("tag"))
        );
        assert_eq!(Reader::new(&[0x77], V2).peek_kind(), Ok(Kind::List));
    }

    #[test]
    fn strings_compact_long_chunked_and_wide() {
        let mut r = Reader::new(b"\x05hello\x53\x00\x02hi", V2);
        assert_eq!(r.read_str().unwrap().as_deref(), Some("hello"));
        assert_eq!(r.read_str().unwrap().as_deref(), Some("hi"));
        // 0x30..0x33: lengths up to 1023, V2 only.
        let mut b = vec![0x31, 0x04];
        b.extend(std::iter::repeat_n(b'a', 260));
        let mut r = Reader::new(&b, V2);
        assert_eq!(r.read_str().unwrap().map(|s| s.len()), Some(260));
        assert!(Reader::new(&b, Draft).read_str().is_err());
        // Chunks: R (V2) or s (Draft) then a final chunk.
        let mut r = Reader::new(b"R\x00\x02ab\x01c", V2);
        let s = r.read_str().unwrap().unwrap();
        assert_eq!(s, "abc");
        assert!(matches!(s, Cow::Owned(_)));
        let mut r = Reader::new(b"s\x00\x02abS\x00\x01c", Draft);
        assert_eq!(r.read_str().unwrap().as_deref(), Some("abc"));
        // Lengths are in chars: é is 2 bytes, 😀 4 bytes and 2 chars.
        let mut r = Reader::new("\x03é😀x".as_bytes(), V2);
        assert_eq!(r.read_str().unwrap().as_deref(), Some("é😀"));
        assert_eq!(r.rest(), b"x");
        // Java's surrogate halves as 3-byte sequences: replaced, not refused.
        let mut r = Reader::new(b"\x02\xed\xa0\xbd\xed\xb8\x80", V2);
        assert!(r.read_str().unwrap().unwrap().contains('\u{fffd}'));
        assert_eq!(Reader::new(b"N", V2).read_str(), Ok(None));
        assert_eq!(
            Reader::new(b"\x05hel", V2).read_str(),
            Err(Error::Incomplete)
        );
        assert_eq!(
            Reader::new(b"\x01\x80", V2).read_str(),
            Err(Error::Invalid("utf-8"))
        );
        assert_eq!(
            Reader::new(b"R\x00\x01a", V2).read_str(),
            Err(Error::Incomplete)
        );
        assert_eq!(
            Reader::new(b"R\x00\x01a\x90", V2).read_str(),
            Err(Error::Invalid("string chunk"))
        );
    }

    #[test]
    fn v2_objects_maps_and_lists() {
        // class Pair { key, value }; Pair("k", 1); then a typed map
        // {"a": [1, 2]} and a list of 3 nulls, a ref, a double and a date.
        let b: &[u8] = b"C\x04Pair\x92\x03key\x05value\x60\x01k\x91\
            M\x03Map\x01a\x72\x04List\x91\x92Z\
            \x7bNNN\x51\x90\x5f\x00\x00\x00\x01\x4b\x00\x00\x00\x01";
        let mut r = Reader::new(b, V2);
        let c = r.begin_object().unwrap().unwrap();
        assert_eq!(r.class_name(c), "Pair");
        let mut seen = Vec::new();
        r.object_fields(c, |r, name| {
            seen.push(name.to_owned());
            if name == "key" {
                assert_eq!(r.read_str().unwrap().as_deref(), Some("k"));
                return Ok(true);
            }
            Ok(false)
        })
        .unwrap();
        assert_eq!(seen, ["key", "value"]);
        assert!(r.begin_map().unwrap());
        let mut keys = Vec::new();
        r.map_entries(|_, k| {
            keys.push(k.map(str::to_owned));
            Ok(false)
        })
        .unwrap();
        assert_eq!(keys, [Some("a".to_owned())]);
        for _ in 0..4 {
            r.skip().unwrap();
        }
        assert_eq!(r.rest(), b"");
        // The same object again by its compact reference, then skipped.
        let mut r = Reader::new(
            b"C\x04Pair\x92\x03key\x05value\x60\x01k\x91\x60\x01j\x92",
            V2,
        );
        r.skip().unwrap();
        r.skip().unwrap();
        assert_eq!(r.rest(), b"");
    }

    #[test]
    fn draft_objects_maps_and_lists() {
        // As sofa-hessian-node writes them: O len name count names, o ref.
        let b: &[u8] = b"O\x94Pair\x92\x03key\x05valueo\x90\x01k\
            V\x74\x00\x09[java.int\x6e\x02\x91\x92z\
            Mt\x00\x03Map\x01aNz\
            v\x90\x91\x93\
            \x67\x69\x05d\x00\x00\x00\x00\x00\x00\x00\x01J\x01";
        let mut r = Reader::new(b, Draft);
        let c = r.begin_object().unwrap().unwrap();
        assert_eq!(r.class_name(c), "Pair");
        let mut seen = Vec::new();
        r.object_fields(c, |r, name| {
            seen.push(name.to_owned());
            if name == "key" {
                assert_eq!(r.read_str().unwrap().as_deref(), Some("k"));
                return Ok(true);
            }
            Ok(false)
        })
        .unwrap();
        assert_eq!(seen, ["key", "value"]);
        r.skip().unwrap(); // M ... z
        r.skip().unwrap(); // v ref len values
        r.skip().unwrap(); // 0.0
        r.skip().unwrap(); // byte double
        r.skip().unwrap(); // date
        r.skip().unwrap(); // ref
        assert_eq!(r.rest(), b"");
    }

    #[test]
    fn bounds() {
        // Nesting past MAX_DEPTH.
        let deep = vec![0x57u8; MAX_DEPTH + 2];
        assert_eq!(Reader::new(&deep, V2).skip(), Err(Error::Limit("depth")));
        // A reference to a class never defined.
        assert_eq!(
            Reader::new(b"\x61", V2).begin_object(),
            Err(Error::Invalid("class ref"))
        );
        // More classes than remembered.
        let mut many = Vec::new();
        for i in 0..=MAX_CLASSES {
            many.extend_from_slice(&[b'C', 0x01, b'a' + i as u8, 0x90]);
        }
        many.push(0x60);
        assert_eq!(
            Reader::new(&many, V2).begin_object(),
            Err(Error::Limit("classes"))
        );
        // A list announcing more items than there are bytes.
        assert_eq!(
            Reader::new(b"\x58\xd7\xff\xff\x90", V2).skip(),
            Err(Error::Incomplete)
        );
        assert_eq!(
            Reader::new(b"\x58\x8f", V2).skip(),
            Err(Error::Invalid("list length"))
        );
        assert_eq!(
            Reader::new(b"Z", V2).skip(),
            Err(Error::Invalid("end outside a list or map"))
        );
        assert_eq!(Reader::new(b"", V2).skip(), Err(Error::Incomplete));
    }
}
