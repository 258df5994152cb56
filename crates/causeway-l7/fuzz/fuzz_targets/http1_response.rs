//! Any bytes: no panic, offsets within the buffer, and a parsed head's
//! prefixes agree with it (the property the truncated eBPF capture relies on).
#![no_main]

use causeway_l7::http1::{ends_chunked_body, parse_response, status_class, ParseError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ends_chunked_body(data);
    let Ok(r) = parse_response(data) else {
        return;
    };
    let _ = status_class(r.status);
    let _ = r.message_len(false);
    let _ = r.message_len(true);
    let _ = r.trace.trace_context();
    let Some(head_len) = r.head_len else {
        return;
    };
    assert!(head_len <= data.len());
    assert_eq!(parse_response(&data[..head_len]), Ok(r));
    let cut = head_len / 2;
    match parse_response(&data[..cut]) {
        Ok(p) => {
            assert_eq!((p.status, p.reason), (r.status, r.reason));
            assert_eq!(p.head_len, None);
        }
        Err(e) => assert_eq!(e, ParseError::Incomplete),
    }
});
