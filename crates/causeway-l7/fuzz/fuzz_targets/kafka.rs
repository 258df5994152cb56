#![no_main]
//! Arbitrary bytes through the kafka parser: never a panic, what infer
//! claims parse reads, and a response's code always comes with its class.
use causeway_l7::infer::MessageKind;
use causeway_l7::kafka::{self, RequestApi};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if kafka::infer(data).is_some() {
        assert!(kafka::parse_request(data).is_ok());
    }
    for kind in [MessageKind::Request, MessageKind::Response] {
        let _ = kafka::parse(data, kind);
        let _ = kafka::ends_message(data, kind);
    }
    // The first two bytes choose the API the response answers.
    if let [k, v, rest @ ..] = data {
        let api = RequestApi {
            api_key: i16::from(*k % 100),
            api_version: i16::from(*v % 20),
        };
        if let Ok(h) = kafka::parse_response(rest, Some(api)) {
            assert_eq!(
                h.response_code.map(|c| kafka::error_status(c as i16)),
                h.response_status
            );
        }
    }
    let _ = kafka::looks_like_response(data);
});
