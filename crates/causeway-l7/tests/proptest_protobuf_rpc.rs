//! Property tests for the protobuf wire reader and the ProtobufRPC parser:
//! no input makes them panic; generated frames come back with their facts
//! and exact length, whole and at every cut.

use causeway_l7::infer::MessageKind;
use causeway_l7::protobuf::{self, FieldPath};
use causeway_l7::protobuf_rpc::{infer, parse, Config, BAIDU_STD, HEADER_LEN};
use proptest::prelude::*;

fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn field_bytes(num: u32, bytes: &[u8], out: &mut Vec<u8>) {
    varint(u64::from(num) << 3 | 2, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn field_varint(num: u32, v: u64, out: &mut Vec<u8>) {
    varint(u64::from(num) << 3, out);
    varint(v, out);
}

/// A brpc request frame built from the encoding rules.
fn request(id: u64, service: &str, method: &str, payload: &[u8]) -> Vec<u8> {
    let mut inner = Vec::new();
    field_bytes(1, service.as_bytes(), &mut inner);
    field_bytes(2, method.as_bytes(), &mut inner);
    let mut meta = Vec::new();
    field_bytes(1, &inner, &mut meta);
    field_varint(4, id, &mut meta);
    let mut f = b"PRPC".to_vec();
    f.extend_from_slice(&((meta.len() + payload.len()) as u32).to_be_bytes());
    f.extend_from_slice(&(meta.len() as u32).to_be_bytes());
    f.extend_from_slice(&meta);
    f.extend_from_slice(payload);
    f
}

proptest! {
    #[test]
    fn any_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..256), path in "[1-9](\\.[1-9]){0,3}") {
        let _ = infer(&b);
        for kind in [MessageKind::Request, MessageKind::Response] {
            let _ = parse(&b, kind, &BAIDU_STD);
        }
        let p = FieldPath::parse(&path).unwrap();
        let _ = protobuf::find(&b, &p);
        let _ = protobuf::fields(&b).count();
        let mut framed = b"PRPC".to_vec();
        framed.extend_from_slice(&b);
        let _ = infer(&framed);
        let _ = parse(&framed, MessageKind::Request, &BAIDU_STD);
        let _ = parse(&framed, MessageKind::Response, &BAIDU_STD);
    }

    #[test]
    fn generated_requests_round_trip(
        id in any::<u64>(),
        service in "[a-zA-Z.]{1,40}",
        method in "[a-zA-Z]{1,20}",
        payload in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let f = request(id, &service, &method, &payload);
        prop_assert_eq!(infer(&f), Some(MessageKind::Request));
        let h = parse(&f, MessageKind::Request, &Config::default()).unwrap();
        prop_assert_eq!(h.request_id, Some(id));
        prop_assert_eq!(&*h.request_resource, service.as_str());
        prop_assert_eq!(&*h.request_type, method.as_str());
        prop_assert_eq!(h.message_len, Some(f.len() as u64));
        // Two in one write split at message_len.
        let mut two = f.clone();
        two.extend_from_slice(&f);
        let n = parse(&two, MessageKind::Request, &BAIDU_STD).unwrap().message_len.unwrap() as usize;
        prop_assert_eq!(parse(&two[n..], MessageKind::Request, &BAIDU_STD).unwrap().request_id, Some(id));
        for cut in 0..f.len() {
            if let Ok(h) = parse(&f[..cut], MessageKind::Request, &BAIDU_STD) {
                prop_assert!(cut > HEADER_LEN);
                prop_assert_eq!(h.message_len, Some(f.len() as u64));
                // What a cut gives is never wrong, only missing.
                if let Some(got) = h.request_id { prop_assert_eq!(got, id); }
            }
        }
    }
}
