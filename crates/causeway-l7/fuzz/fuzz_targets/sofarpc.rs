#![no_main]
//! Arbitrary bytes through the SOFARPC (Bolt) parser: never a panic, and
//! what infer claims, parse reads.
use causeway_l7::infer::MessageKind;
use causeway_l7::sofarpc;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(kind) = sofarpc::infer(data) {
        assert!(sofarpc::parse(data, kind).is_ok());
    }
    for kind in [MessageKind::Request, MessageKind::Response] {
        let _ = sofarpc::parse(data, kind);
    }
});
