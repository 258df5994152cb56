#![no_main]
//! Arbitrary bytes through the DNS parser, over UDP and TCP: never a panic.
use causeway_l7::dns::{infer, parse, Transport};
use causeway_l7::infer::MessageKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for t in [Transport::Udp, Transport::Tcp] {
        let _ = infer(data, t);
        for kind in [MessageKind::Request, MessageKind::Response] {
            let _ = parse(data, kind, t);
        }
    }
});
