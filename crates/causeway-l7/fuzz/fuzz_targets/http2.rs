#![no_main]
//! Arbitrary bytes through an HTTP/2 connection direction, fed in pieces
//! with a capture cap: never a panic, and every byte accounted for.
use causeway_l7::http2::{self, HalfConnection};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let _ = http2::infer(rest);
    let _ = http2::starts_with_frames(rest, rest.len() as u64);
    let mut h = match ctl % 3 {
        0 => HalfConnection::client(),
        1 => HalfConnection::server(),
        _ => HalfConnection::midstream(),
    };
    // Piece length and capture cap from the control byte.
    let piece = usize::from(ctl >> 2).max(1);
    let cap = usize::from(ctl & 0x3c) + 1;
    let mut fed = 0u64;
    for chunk in rest.chunks(piece) {
        h.feed(&chunk[..chunk.len().min(cap)], chunk.len() as u64, &mut |_| {});
        fed += chunk.len() as u64;
    }
    assert_eq!(h.position(), fed);
    for f in http2::Frames::new(rest) {
        let _ = http2::header_block_fragment(&f.header, f.payload);
        let _ = http2::rst_stream_code(f.payload);
        let _ = http2::goaway(f.payload);
        let _ = http2::settings(f.payload).count();
    }
});
