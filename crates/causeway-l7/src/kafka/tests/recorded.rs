//! Recorded traffic: `.rec` files of the fixtures (`tests/fixtures/*`, see
//! each `record.py`).

/// The chunks of a `.rec` file (direction byte, connection byte, u32
/// length, bytes): what each `recv` of the recording relay got.
pub(super) fn chunks(mut b: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while b.len() >= 6 {
        let n = u32::from_be_bytes([b[2], b[3], b[4], b[5]]) as usize;
        out.push(&b[6..6 + n]);
        b = &b[6 + n..];
    }
    out
}
