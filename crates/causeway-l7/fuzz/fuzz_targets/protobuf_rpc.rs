#![no_main]
//! Arbitrary bytes through the protobuf wire reader and the ProtobufRPC
//! parser: never a panic.
use causeway_l7::infer::MessageKind;
use causeway_l7::protobuf::{self, FieldPath};
use causeway_l7::protobuf_rpc::{infer, parse, BAIDU_STD};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = infer(data);
    for kind in [MessageKind::Request, MessageKind::Response] {
        let _ = parse(data, kind, &BAIDU_STD);
    }
    let _ = protobuf::find(data, &FieldPath::new(&[1, 2, 3]));
    let _ = protobuf::fields(data).count();
});
