#![no_main]
//! Arbitrary bytes through the redis parser: never a panic.
use causeway_l7::infer::MessageKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = causeway_l7::redis::infer(data);
    for kind in [MessageKind::Request, MessageKind::Response] {
        let _ = causeway_l7::redis::parse(data, kind);
        let _ = causeway_l7::redis::ends_message(data, kind);
    }
});
