//! Property tests for the Hessian 2 reader and the Dubbo parser: no input
//! makes them panic; generated requests and responses (hessian2 bodies
//! built from the encoding rules) come back with their facts and exact
//! length, whole, cut anywhere, and pipelined.

use causeway_l7::dubbo::{infer, parse, HEADER_LEN};
use causeway_l7::hessian2::{Dialect, Reader};
use causeway_l7::infer::MessageKind;
use causeway_model::ResponseStatus;
use proptest::prelude::*;

/// A hessian2 string of any length: compact, 0x30 short, `S`, or chunked.
fn string(v: &str, out: &mut Vec<u8>) {
    let units: Vec<u16> = v.encode_utf16().collect();
    let mut rest: &str = v;
    let mut left = units.len();
    // Chunks of at most 0x8000 chars, never splitting a surrogate pair.
    while left > 0x8000 {
        let mut n = 0;
        let mut cut = 0;
        for c in rest.chars() {
            if n + c.len_utf16() > 0x8000 {
                break;
            }
            n += c.len_utf16();
            cut += c.len_utf8();
        }
        out.push(b'R');
        out.extend_from_slice(&(n as u16).to_be_bytes());
        out.extend_from_slice(&rest.as_bytes()[..cut]);
        rest = &rest[cut..];
        left -= n;
    }
    match left {
        0..=31 => out.push(left as u8),
        32..=1023 => out.extend_from_slice(&[0x30 + (left >> 8) as u8, left as u8]),
        _ => {
            out.push(b'S');
            out.extend_from_slice(&(left as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(rest.as_bytes());
}

fn int(v: i32, out: &mut Vec<u8>) {
    match v {
        -16..=47 => out.push((0x90 + v) as u8),
        -2048..=2047 => out.extend_from_slice(&[(0xc8 + (v >> 8)) as u8, v as u8]),
        -262_144..=262_143 => {
            out.extend_from_slice(&[(0xd4 + (v >> 16)) as u8, (v >> 8) as u8, v as u8])
        }
        _ => {
            out.push(b'I');
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

fn frame(flag: u8, status: u8, id: u64, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xda, 0xbb, flag, status];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&(body.len() as u32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// A hessian2 call with `args` ints and a `traceparent` attachment.
fn request(id: u64, service: &str, version: &str, method: &str, args: &[i32]) -> Vec<u8> {
    let mut b = Vec::new();
    for s in ["2.0.2", service, version, method, &"I".repeat(args.len())] {
        string(s, &mut b);
    }
    for a in args {
        int(*a, &mut b);
    }
    b.push(b'H');
    string("traceparent", &mut b);
    string(
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        &mut b,
    );
    b.push(b'Z');
    frame(0xc2, 0, id, &b)
}

proptest! {
    #[test]
    fn any_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = infer(&b);
        for kind in [MessageKind::Request, MessageKind::Response] {
            let _ = parse(&b, kind);
        }
        // Behind a valid header too, both kinds, hessian2.
        for (flag, status) in [(0xc2u8, 0u8), (0x02, 20), (0x02, 80), (0xe2, 0)] {
            let f = frame(flag, status, 1, &b);
            let _ = infer(&f);
            let kind = if flag & 0x80 != 0 { MessageKind::Request } else { MessageKind::Response };
            prop_assert!(parse(&f, kind).is_ok());
        }
        for d in [Dialect::V2, Dialect::Draft] {
            let mut r = Reader::new(&b, d);
            while r.skip().is_ok() && !r.rest().is_empty() {}
            let mut r = Reader::new(&b, d);
            let _ = r.read_str();
            let mut r = Reader::new(&b, d);
            if let Ok(Some(c)) = r.begin_object() {
                let _ = r.object_fields(c, |_, _| Ok(false));
            }
        }
    }

    #[test]
    fn generated_strings_read_back(v in any::<String>(), long in 0usize..3) {
        // Long strings as well, to reach the 0x30, S and chunked forms.
        let units = v.encode_utf16().count().max(1);
        let v = v.repeat([1, 1 + 1000 / units, 1 + 40_000 / units][long]);
        let mut b = Vec::new();
        string(&v, &mut b);
        let mut r = Reader::new(&b, Dialect::V2);
        let got = r.read_str().unwrap();
        prop_assert_eq!(got.as_deref(), Some(v.as_str()));
        prop_assert!(r.rest().is_empty());
        let mut r = Reader::new(&b, Dialect::V2);
        r.skip().unwrap();
        prop_assert!(r.rest().is_empty());
    }

    #[test]
    fn generated_calls_round_trip(
        id in any::<u64>(),
        service in "[a-z][a-zA-Z.]{0,60}",
        version in "([0-9]\\.[0-9]){0,1}",
        method in "[a-z][a-zA-Z]{0,30}",
        args in proptest::collection::vec(any::<i32>(), 0..8),
    ) {
        let f = request(id, &service, &version, &method, &args);
        prop_assert_eq!(infer(&f), Some(MessageKind::Request));
        let h = parse(&f, MessageKind::Request).unwrap();
        prop_assert_eq!(h.request_id, Some(id));
        prop_assert_eq!(&*h.request_type, method.as_str());
        prop_assert_eq!(&*h.request_domain, service.as_str());
        let resource = if version.is_empty() { service.clone() } else { format!("{service}:{version}") };
        prop_assert_eq!(&*h.request_resource, resource.as_str());
        prop_assert_eq!(&*h.trace_id, "0af7651916cd43dd8448eb211c80319c");
        prop_assert_eq!(h.message_len, Some(f.len() as u64));
        // Every cut: the header alone is incomplete, then what was read stands.
        for cut in 0..f.len() {
            match parse(&f[..cut], MessageKind::Request) {
                Ok(c) => {
                    prop_assert!(cut > HEADER_LEN);
                    prop_assert_eq!(c.message_len, h.message_len);
                    prop_assert!(h.request_type.starts_with(&*c.request_type));
                    prop_assert!(c.trace_id.is_empty() || c.trace_id == h.trace_id);
                }
                Err(e) => prop_assert!(cut <= HEADER_LEN, "cut {}: {}", cut, e),
            }
        }
        // Two in one write split at message_len.
        let two = [f.clone(), request(id ^ 1, &service, &version, &method, &args)].concat();
        let n = parse(&two, MessageKind::Request).unwrap().message_len.unwrap() as usize;
        prop_assert_eq!(parse(&two[n..], MessageKind::Request).unwrap().request_id, Some(id ^ 1));
    }

    #[test]
    fn generated_answers_round_trip(id in any::<u64>(), status in prop::sample::select(vec![20u8, 30, 31, 40, 50, 60, 70, 80, 90, 100]), text in "[ -~]{0,80}") {
        let mut body = Vec::new();
        if status == 20 {
            int(1, &mut body);
            string(&text, &mut body);
        } else {
            string(&text, &mut body);
        }
        let f = frame(0x02, status, id, &body);
        prop_assert_eq!(infer(&f), Some(MessageKind::Response));
        let h = parse(&f, MessageKind::Response).unwrap();
        prop_assert_eq!(h.request_id, Some(id));
        prop_assert_eq!(h.response_code, Some(i32::from(status)));
        prop_assert_eq!(h.response_status == Some(ResponseStatus::Ok), status == 20);
        if status != 20 && !text.is_empty() {
            prop_assert_eq!(&*h.exception, text.as_str());
        }
    }
}
