#![no_main]
//! Arbitrary bytes through the mqtt parser: never a panic, and what infer
//! claims, parse reads.
use causeway_l7::infer::MessageKind;
use causeway_l7::mqtt::{self, Version};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(kind) = mqtt::infer(data) {
        assert!(mqtt::parse(data, kind).is_ok());
    }
    for kind in [MessageKind::Request, MessageKind::Response] {
        for v in [None, Some(Version::V3_1_1), Some(Version::V5)] {
            let _ = mqtt::parse_with_version(data, kind, v);
        }
        let _ = mqtt::ends_message(data, kind);
    }
    let _ = mqtt::topic_alias(data, Some(Version::V5));
});
