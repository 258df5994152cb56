#![no_main]
//! Arbitrary header blocks through one HPACK decoder: never a panic, the
//! table stays within its bound, and Huffman decoding returns or errs.
use causeway_l7::hpack::{huffman, Decoder, MAX_TABLE_SIZE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut d = Decoder::new();
    // Blocks separated by 0x00 0x00, so one input holds several blocks of
    // one connection direction.
    for (i, block) in data.split(|&b| b == 0).enumerate() {
        let _ = d.decode(block, i % 3 != 2, &mut |n, v| {
            assert!(n.len() + v.len() <= data.len() * 8 + 64);
        });
        assert!(d.size() <= d.max_size() && d.max_size() <= MAX_TABLE_SIZE);
    }
    let mut out = Vec::new();
    let _ = huffman::decode(data, &mut out);
});
