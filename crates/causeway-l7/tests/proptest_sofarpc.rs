//! Property tests for the SOFARPC (Bolt) parser: no input makes it panic;
//! generated v1 and v2 frames (header maps and draft-hessian SofaRequest
//! content built from the encoding rules) come back with their facts and
//! exact length, whole, cut anywhere, and pipelined.

use causeway_l7::infer::MessageKind;
use causeway_l7::sofarpc::{header, infer, parse};
use proptest::prelude::*;

/// A draft-hessian string (compact or `S`), ASCII.
fn string(v: &str, out: &mut Vec<u8>) {
    if v.len() <= 31 {
        out.push(v.len() as u8);
    } else {
        out.push(b'S');
        out.extend_from_slice(&(v.len() as u16).to_be_bytes());
    }
    out.extend_from_slice(v.as_bytes());
}

/// A SofaRequest in the draft dialect, as sofa-hessian-node writes it.
fn sofa_request(method: &str, service: &str, trace: &str) -> Vec<u8> {
    let class = "com.alipay.sofa.rpc.core.request.SofaRequest";
    let mut b = vec![b'O', 0x90 + class.len() as u8];
    b.extend_from_slice(class.as_bytes());
    b.push(0x94);
    for f in [
        "methodName",
        "targetServiceUniqueName",
        "targetAppName",
        "requestProps",
    ] {
        string(f, &mut b);
    }
    b.extend_from_slice(&[b'o', 0x90]);
    string(method, &mut b);
    string(service, &mut b);
    b.push(b'N');
    b.push(b'M');
    string("rpc_trace_context", &mut b);
    b.push(b'M');
    string("sofaTraceId", &mut b);
    string(trace, &mut b);
    b.extend_from_slice(b"zz");
    b
}

fn frame(v2: bool, rpc_type: u8, id: u32, map: &[(&str, &str)], content: &[u8]) -> Vec<u8> {
    let class = "com.alipay.sofa.rpc.core.request.SofaRequest";
    let mut hm = Vec::new();
    for (k, v) in map {
        for x in [k, v] {
            hm.extend_from_slice(&(x.len() as i32).to_be_bytes());
            hm.extend_from_slice(x.as_bytes());
        }
    }
    let mut m = if v2 {
        vec![2, 2, rpc_type]
    } else {
        vec![1, rpc_type]
    };
    m.extend_from_slice(&1u16.to_be_bytes());
    m.push(1);
    m.extend_from_slice(&id.to_be_bytes());
    m.push(1);
    if v2 {
        m.push(1); // CRC on
    }
    m.extend_from_slice(&3000u32.to_be_bytes());
    m.extend_from_slice(&(class.len() as u16).to_be_bytes());
    m.extend_from_slice(&(hm.len() as u16).to_be_bytes());
    m.extend_from_slice(&(content.len() as u32).to_be_bytes());
    m.extend_from_slice(class.as_bytes());
    m.extend_from_slice(&hm);
    m.extend_from_slice(content);
    if v2 {
        m.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    }
    m
}

proptest! {
    #[test]
    fn any_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..512), v2 in any::<bool>()) {
        let _ = infer(&b);
        for kind in [MessageKind::Request, MessageKind::Response] {
            let _ = parse(&b, kind);
        }
        // As the header map and as the content of a valid frame.
        let s = String::from_utf8_lossy(&b);
        let f = frame(v2, 1, 9, &[("service", &s)], &b);
        prop_assert!(parse(&f, MessageKind::Request).is_ok());
        let _ = infer(&f);
        // A response frame whose content is the bytes.
        let mut r = if v2 { vec![2, 2, 0, 0, 2, 1] } else { vec![1, 0, 0, 2, 1] };
        r.extend_from_slice(&9u32.to_be_bytes());
        r.push(1);
        if v2 { r.push(0); }
        r.extend_from_slice(&2u16.to_be_bytes());
        r.extend_from_slice(&[0, 0, 0, 0]);
        r.extend_from_slice(&(b.len() as u32).to_be_bytes());
        r.extend_from_slice(&b);
        prop_assert!(parse(&r, MessageKind::Response).is_ok());
    }

    #[test]
    fn generated_requests_round_trip(
        v2 in any::<bool>(),
        oneway in any::<bool>(),
        id in any::<u32>(),
        service in "[a-z][a-zA-Z.]{0,60}:[0-9]\\.[0-9]",
        method in "[a-z][a-zA-Z]{0,30}",
        trace in "[0-9a-f]{30}",
        in_map in any::<bool>(),
    ) {
        let content = sofa_request(&method, &service, &trace);
        let map: Vec<(&str, &str)> = if in_map {
            vec![("sofa_head_method_name", &method), ("sofa_head_target_service", &service)]
        } else {
            vec![("service", &service)]
        };
        let f = frame(v2, if oneway { 2 } else { 1 }, id, &map, &content);
        prop_assert_eq!(infer(&f), Some(MessageKind::Request));
        let h = parse(&f, MessageKind::Request).unwrap();
        prop_assert_eq!(h.request_id, Some(u64::from(id)));
        prop_assert_eq!(&*h.request_type, method.as_str());
        prop_assert_eq!(&*h.request_resource, service.as_str());
        prop_assert_eq!(&*h.trace_id, trace.as_str());
        prop_assert_eq!(h.unpaired, oneway);
        prop_assert_eq!(h.message_len, Some(f.len() as u64));
        let size = header(&f).unwrap().size;
        for cut in 0..f.len() {
            match parse(&f[..cut], MessageKind::Request) {
                Ok(c) => {
                    prop_assert!(cut >= size);
                    prop_assert_eq!(c.message_len, h.message_len);
                    prop_assert!(c.request_type.is_empty() || c.request_type == h.request_type);
                    prop_assert!(c.trace_id.is_empty() || c.trace_id == h.trace_id);
                }
                Err(e) => prop_assert!(cut < size, "cut {}: {}", cut, e),
            }
        }
        let two = [f.clone(), frame(v2, 1, id ^ 1, &map, &content)].concat();
        let n = parse(&two, MessageKind::Request).unwrap().message_len.unwrap() as usize;
        prop_assert_eq!(parse(&two[n..], MessageKind::Request).unwrap().request_id, Some(u64::from(id ^ 1)));
    }
}
