//! Any bytes: no panic, and whatever inference calls a response is one the
//! parser does not reject for its protocol name, version or first status
//! digits.
#![no_main]

use causeway_l7::http1::{parse_response, ParseError};
use causeway_l7::infer::{infer, MessageKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((_, MessageKind::Response)) = infer(data) {
        // Inference reads only the first 12 bytes, so the parser may still
        // reject a fourth status digit or the rest of the head.
        match parse_response(data) {
            Err(ParseError::NotHttp) => panic!("inferred response is not HTTP"),
            Err(ParseError::Invalid("version")) => panic!("inferred response has a bad version"),
            _ => {}
        }
    }
});
