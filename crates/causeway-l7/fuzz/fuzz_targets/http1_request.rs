//! Any bytes: no panic, offsets within the buffer, and a parsed head's
//! prefixes agree with it (the property the truncated eBPF capture relies on).
#![no_main]

use causeway_l7::http1::{parse_request, ParseError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(r) = parse_request(data) else {
        return;
    };
    let _ = r.message_len();
    let _ = r.trace.trace_context();
    let Some(head_len) = r.head_len else {
        return;
    };
    assert!(head_len <= data.len());
    // The head alone parses to the same request.
    assert_eq!(parse_request(&data[..head_len]), Ok(r));
    // Cutting the head anywhere after the start line keeps the start line.
    let cut = head_len / 2;
    match parse_request(&data[..cut]) {
        Ok(p) => {
            assert_eq!((p.method, p.target), (r.method, r.target));
            assert_eq!(p.head_len, None);
        }
        Err(e) => assert_eq!(e, ParseError::Incomplete),
    }
});
