//! The protobuf wire format, read without generated code: find a field by
//! its number path (`1.2`: field 2 of the message in field 1) in an
//! encoded message, without copying or allocating.
//!
//! Encoded protobuf carries field numbers and wire types but no names, so a
//! path of numbers is all a reader without the `.proto` can ask for. A
//! message cut short (the capture cap) yields what lies before the cut.

use std::fmt;

/// Deepest path accepted; RPC headers nest two or three levels.
pub const MAX_PATH: usize = 4;

/// A field path such as `1.2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldPath {
    nums: [u32; MAX_PATH],
    len: u8,
}

/// Why a path string is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a field path (field numbers 1..=536870911 joined by dots, at most {MAX_PATH})"
)]
pub struct BadPath(pub String);

impl FieldPath {
    /// A path of field numbers, outermost first.
    pub const fn new(nums: &[u32]) -> FieldPath {
        let mut out = [0u32; MAX_PATH];
        let mut i = 0;
        while i < nums.len() && i < MAX_PATH {
            out[i] = nums[i];
            i += 1;
        }
        FieldPath {
            nums: out,
            len: i as u8,
        }
    }

    /// Parses `1.2`.
    pub fn parse(s: &str) -> Result<FieldPath, BadPath> {
        let bad = || BadPath(s.to_owned());
        let mut nums = [0u32; MAX_PATH];
        let mut len = 0;
        for part in s.split('.') {
            let n: u32 = part.trim().parse().map_err(|_| bad())?;
            if n == 0 || n > 536_870_911 || len == MAX_PATH {
                return Err(bad());
            }
            nums[len] = n;
            len += 1;
        }
        Ok(FieldPath {
            nums,
            len: len as u8,
        })
    }

    /// The outermost field number.
    pub fn first(&self) -> u32 {
        self.nums[0]
    }

    fn nums(&self) -> &[u32] {
        &self.nums[..self.len as usize]
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, n) in self.nums().iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{n}")?;
        }
        Ok(())
    }
}

/// A field's value as the wire has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// Wire type 0: int32/64, uint32/64, sint, bool, enum.
    Varint(u64),
    /// Wire type 1: fixed64, sfixed64, double.
    Fixed64(u64),
    /// Wire type 5: fixed32, sfixed32, float.
    Fixed32(u32),
    /// Strings, bytes, nested messages, packed repeated fields.
    Bytes(&'a [u8]),
}

impl<'a> Value<'a> {
    /// As an integer (varint or fixed).
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Varint(v) | Value::Fixed64(v) => Some(v),
            Value::Fixed32(v) => Some(u64::from(v)),
            Value::Bytes(_) => None,
        }
    }

    /// As UTF-8 text.
    pub fn as_str(&self) -> Option<&'a str> {
        match *self {
            Value::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }
}

/// A base-128 varint at the start of `b`: its value and length.
pub fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// The fields of a message, in order; stops at the first malformed or cut
/// field.
pub struct Fields<'a> {
    rest: &'a [u8],
}

/// Iterates over the fields of the encoded message `msg`.
pub fn fields(msg: &[u8]) -> Fields<'_> {
    Fields { rest: msg }
}

impl<'a> Iterator for Fields<'a> {
    type Item = (u32, Value<'a>);

    fn next(&mut self) -> Option<(u32, Value<'a>)> {
        let (tag, n) = varint(self.rest)?;
        let num = u32::try_from(tag >> 3).ok().filter(|&n| n != 0)?;
        let b = &self.rest[n..];
        let (value, used) = match tag & 7 {
            0 => varint(b).map(|(v, k)| (Value::Varint(v), k))?,
            1 => {
                let raw: [u8; 8] = b.get(..8)?.try_into().ok()?;
                (Value::Fixed64(u64::from_le_bytes(raw)), 8)
            }
            2 => {
                let (len, k) = varint(b)?;
                let len = usize::try_from(len).ok()?;
                let body = b.get(k..k.checked_add(len)?)?;
                (Value::Bytes(body), k + len)
            }
            5 => {
                let raw: [u8; 4] = b.get(..4)?.try_into().ok()?;
                (Value::Fixed32(u32::from_le_bytes(raw)), 4)
            }
            // Groups (3, 4) are long deprecated; 6 and 7 do not exist.
            _ => return None,
        };
        self.rest = &b[used..];
        Some((num, value))
    }
}

/// The first value at `path` in `msg`, if the bytes hold it.
pub fn find<'a>(msg: &'a [u8], path: &FieldPath) -> Option<Value<'a>> {
    let nums = path.nums();
    let (&first, inner) = nums.split_first()?;
    for (num, value) in fields(msg) {
        if num != first {
            continue;
        }
        if inner.is_empty() {
            return Some(value);
        }
        if let Value::Bytes(b) = value {
            return find(b, &FieldPath::new(inner));
        }
        return None;
    }
    None
}

/// Whether the message has field `num` at its top level.
pub fn has_field(msg: &[u8], num: u32) -> bool {
    fields(msg).any(|(n, _)| n == num)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Encoded by hand from the protobuf encoding guide: field 1 = 150 is
    // `08 96 01`; field 2 = "testing" is `12 07 74 65 73 74 69 6e 67`.
    const SIMPLE: &[u8] = b"\x08\x96\x01\x12\x07testing";

    #[test]
    fn fields_and_paths() {
        let got: Vec<_> = fields(SIMPLE).collect();
        assert_eq!(
            got,
            [(1, Value::Varint(150)), (2, Value::Bytes(b"testing"))]
        );
        let nested = b"\x1a\x08\x08\x96\x01\x12\x03abc\x25\x01\x00\x00\x00";
        let p = FieldPath::parse("3.2").unwrap();
        assert_eq!(find(nested, &p).and_then(|v| v.as_str()), Some("abc"));
        assert_eq!(
            find(nested, &FieldPath::parse("3.1").unwrap()).and_then(|v| v.as_u64()),
            Some(150)
        );
        assert_eq!(find(nested, &FieldPath::new(&[4])), Some(Value::Fixed32(1)));
        assert_eq!(find(nested, &FieldPath::new(&[9])), None);
        assert!(has_field(nested, 3) && !has_field(nested, 1));
        assert_eq!(p.to_string(), "3.2");
    }

    #[test]
    fn bad_paths() {
        for s in ["", "0", "1.x", "1..2", "1.2.3.4.5", "536870912"] {
            assert!(FieldPath::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn cut_and_garbage_input_never_panics() {
        let nested = b"\x1a\x08\x08\x96\x01\x12\x03abc\x25\x01\x00\x00\x00";
        for cut in 0..nested.len() {
            let _ = find(&nested[..cut], &FieldPath::new(&[3, 2]));
            let _ = fields(&nested[..cut]).count();
        }
        assert_eq!(
            fields(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff").count(),
            0
        );
        assert_eq!(fields(b"\x0b").count(), 0); // a group start
        assert_eq!(fields(b"\x12\xff\xff\xff\xff\x0f").count(), 0); // length past the end
    }
}
