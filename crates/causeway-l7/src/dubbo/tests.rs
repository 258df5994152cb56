//! The Dubbo parser on traffic recorded from a real SOFARPC Node server and
//! client speaking Dubbo (sofa-rpc-node 2.10.0 with dubbo-remoting 2.1.4,
//! `tests/fixtures/dubbo/record.py`): every call checked against what the
//! client and the server printed about it; then cut, hand-built and
//! foreign bytes.

use super::*;
use crate::rpc_test_support::{self as fx, CAP, SCENARIOS};
use std::collections::HashMap;
use MessageKind::{Request, Response};

fn messages(s: &[u8]) -> Vec<&[u8]> {
    fx::split(s, |m| header(m).expect("header").message_len() as usize)
}

/// The requests and responses of a recording, parsed as the agent parses
/// them (from the first `CAP` bytes), by request id.
fn parsed(name: &str) -> (HashMap<u64, Head<'static>>, HashMap<u64, Head<'static>>) {
    let recs = fx::records(&format!("dubbo/{name}.rec"));
    let mut out = (HashMap::new(), HashMap::new());
    for (dir, kind, map) in [(b'C', Request, &mut out.0), (b'S', Response, &mut out.1)] {
        for m in messages(&fx::stream(&recs, dir)) {
            let cut = &m[..m.len().min(CAP)];
            assert_eq!(infer(cut), Some(kind), "{name}");
            assert_eq!(message_kind(cut), Some(kind), "{name}");
            let h = parse(cut, kind).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(h.message_len, Some(m.len() as u64), "{name}");
            let id = h.request_id.expect("request id");
            assert!(
                map.insert(id, h.into_owned()).is_none(),
                "{name}: id {id} twice"
            );
        }
    }
    out
}

#[test]
fn recorded_calls_agree_with_client_and_server() {
    let mut calls = 0;
    for name in SCENARIOS {
        let (reqs, resps) = parsed(name);
        let lines = fx::log(&format!("dubbo/{name}.log"));
        assert_eq!(reqs.len(), resps.len(), "{name}: one answer per request");
        for l in lines.iter().filter(|l| l.event == "call") {
            let q = &reqs[&l.request_id];
            let a = &resps[&l.request_id];
            assert_eq!(q.request_type, l.method, "{name}");
            assert_eq!(q.request_resource, l.service, "{name}");
            let interface = l.service.split(':').next().unwrap_or_default();
            assert_eq!(q.request_domain, interface, "{name}");
            // dubbo-remoting names Dubbo 5.3.0 in every call.
            assert_eq!(q.version, "5.3.0", "{name}");
            assert!(!q.unpaired, "{name}");
            let ok = match l.side.as_str() {
                "client" => l.ok,
                _ => l.result_code == "00",
            };
            if ok {
                assert_eq!(a.response_code, Some(20), "{name}");
                assert_eq!(a.response_status, Some(ResponseStatus::Ok), "{name}");
                assert_eq!(a.exception, "", "{name}");
            } else {
                // dubbo-remoting answers every failure SERVER_ERROR with
                // the message as the body.
                assert_eq!(a.response_code, Some(80), "{name}");
                assert_eq!(a.response_status, Some(ResponseStatus::ServerError));
                if l.side == "client" {
                    assert_eq!(a.exception, l.error, "{name}");
                }
            }
            calls += 1;
        }
        for l in lines.iter().filter(|l| l.event == "heartbeat") {
            assert_eq!(reqs[&l.request_id].request_type, "heartbeat", "{name}");
            assert_eq!(resps[&l.request_id].response_code, Some(20), "{name}");
            calls += 1;
        }
    }
    // 12 calls and one heartbeat, each logged by the client and the server.
    assert_eq!(calls, 26);
}

#[test]
fn out_of_order_answers_name_their_request() {
    let recs = fx::records("dubbo/concurrent.rec");
    let ids = |dir| -> Vec<u64> {
        messages(&fx::stream(&recs, dir))
            .iter()
            .map(|m| header(m).unwrap().request_id)
            .collect()
    };
    assert_eq!(ids(b'C'), [1, 2, 3]);
    // sleep(300), sleep(150), sleep(0): the answers come back reversed.
    assert_eq!(ids(b'S'), [3, 2, 1]);
}

#[test]
fn trace_context_from_attachments() {
    let (reqs, _) = parsed("traced");
    let h = &reqs[&1];
    assert_eq!(h.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(h.span_id, "00f067aa0ba902b7");
    let (reqs, _) = parsed("echo");
    assert_eq!(reqs[&1].trace_id, "");
}

#[test]
fn a_big_argument_beyond_the_cap() {
    let recs = fx::records("dubbo/big.rec");
    let s = fx::stream(&recs, b'C');
    assert!(s.len() > 40_000);
    for cap in [64, 100, CAP, 16384] {
        let h = parse(&s[..cap.min(s.len())], Request).unwrap();
        assert_eq!(h.message_len, Some(s.len() as u64));
        if cap >= 100 {
            assert_eq!(h.request_type, "echo", "cap {cap}");
            assert_eq!(h.request_resource, "com.causeway.demo.EchoService:1.0");
        }
    }
    // The whole message: the attachments after the argument are read.
    let (reqs, resps) = parsed("big");
    assert_eq!(reqs[&1].request_type, "echo");
    assert_eq!(resps[&1].response_code, Some(20));
}

#[test]
fn every_cut_is_safe() {
    for name in SCENARIOS {
        let recs = fx::records(&format!("dubbo/{name}.rec"));
        for r in &recs {
            let b = &r.bytes[..r.bytes.len().min(600)];
            for cut in 0..=b.len() {
                let p = &b[..cut];
                let _ = infer(p);
                for kind in [Request, Response] {
                    match parse(p, kind) {
                        Ok(h) => assert!(cut > HEADER_LEN && h.message_len.is_some()),
                        // A header alone waits for its body.
                        Err(ParseError::Incomplete) => assert!(cut <= HEADER_LEN),
                        Err(ParseError::Invalid("message kind")) => assert!(cut >= HEADER_LEN),
                        Err(e) => panic!("{name} cut at {cut}: {e}"),
                    }
                }
            }
        }
    }
}

/// A header and a body.
fn msg(flag: u8, status: u8, id: u64, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xda, 0xbb, flag, status];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&(body.len() as u32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// A hessian2 string (ASCII): compact up to 31 chars, else `S`.
fn s(v: &str) -> Vec<u8> {
    let mut b = if v.len() <= 31 {
        vec![v.len() as u8]
    } else {
        let mut b = vec![b'S'];
        b.extend_from_slice(&(v.len() as u16).to_be_bytes());
        b
    };
    b.extend_from_slice(v.as_bytes());
    b
}

fn request_body(desc: &str, args: &[u8], attachments: &[(&str, &str)]) -> Vec<u8> {
    let mut b = [
        s("2.0.2"),
        s("org.demo.Greeter"),
        s(""),
        s("greet"),
        s(desc),
    ]
    .concat();
    b.extend_from_slice(args);
    b.push(b'H');
    for (k, v) in attachments {
        b.extend(s(k));
        b.extend(s(v));
    }
    b.push(b'Z');
    b
}

#[test]
fn java_style_requests() {
    // Dubbo 2.7 Java: no service version, two arguments, sw8 and B3.
    let args = [s("bob"), vec![0x95]].concat();
    let sw8 = "1-MTIzNDU2Nzg5MA==-c2VnbWVudA==-3-c2Vydmlj-aW5zdGFuY2U=-L2FwaQ==-cGVlcg==";
    let body = request_body("Ljava/lang/String;I", &args, &[("path", "x"), ("sw8", sw8)]);
    let m = msg(0xc2, 0, 7, &body);
    assert_eq!(infer(&m), Some(Request));
    let h = parse(&m, Request).unwrap();
    assert_eq!(
        (
            &*h.version,
            &*h.request_type,
            &*h.request_resource,
            &*h.request_domain
        ),
        ("2.0.2", "greet", "org.demo.Greeter", "org.demo.Greeter")
    );
    assert_eq!(h.request_id, Some(7));
    assert_eq!(h.trace_id, "1234567890");
    assert_eq!(h.span_id, "segment-3");
    // traceparent wins over b3, as in HTTP.
    let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let b3 = "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1";
    let body = request_body("", &[], &[("b3", b3), ("traceparent", tp)]);
    let h = p(msg(0xc2, 0, 8, &body), Request).unwrap();
    assert_eq!(h.trace_id, "0af7651916cd43dd8448eb211c80319c");
}

#[test]
fn events_oneway_and_other_serializations() {
    // Heartbeat request and its answer.
    let hb = msg(0xe2, 0, 9, b"N");
    assert_eq!(infer(&hb), Some(Request));
    let h = parse(&hb, Request).unwrap();
    assert_eq!((&*h.request_type, h.unpaired), ("heartbeat", false));
    let ack = msg(0x22, 20, 9, b"N");
    assert_eq!(infer(&ack), Some(Response));
    assert_eq!(parse(&ack, Response).unwrap().response_code, Some(20));
    // The read-only event, one way: no answer comes.
    let ro = msg(0xa2, 0, 10, &s("R"));
    let h = parse(&ro, Request).unwrap();
    assert_eq!((&*h.request_type, h.unpaired), ("event", true));
    // A one-way call.
    let body = request_body("", &[], &[]);
    assert!(p(msg(0x82, 0, 11, &body), Request).unwrap().unpaired);
    // Kryo (8): the header's facts only.
    let k = msg(0xc8, 0, 12, b"\x01\x02\x03");
    assert_eq!(infer(&k), Some(Request));
    let h = parse(&k, Request).unwrap();
    assert_eq!((h.request_id, &*h.request_type), (Some(12), ""));
    let k = msg(0x08, 60, 12, b"\x01");
    let h = parse(&k, Response).unwrap();
    assert_eq!(h.response_status, Some(ResponseStatus::ServerError));
    assert_eq!(h.exception, "SERVICE_NOT_FOUND");
}

#[test]
fn statuses_and_thrown_exceptions() {
    for (code, class) in [
        (20, ResponseStatus::Ok),
        (30, ResponseStatus::ClientError),
        (40, ResponseStatus::ClientError),
        (90, ResponseStatus::ClientError),
        (31, ResponseStatus::ServerError),
        (50, ResponseStatus::ServerError),
        (60, ResponseStatus::ServerError),
        (70, ResponseStatus::ServerError),
        (80, ResponseStatus::ServerError),
        (100, ResponseStatus::ServerError),
        (77, ResponseStatus::Unknown),
    ] {
        assert_eq!(status_class(code), class, "{code}");
    }
    let m = msg(0x02, 40, 3, &s("bad request"));
    let h = parse(&m, Response).unwrap();
    assert_eq!((h.response_code, &*h.exception), (Some(40), "bad request"));
    // Status 20, flag 0: the service threw; hessian-lite writes the
    // Throwable as a class definition and an instance.
    let mut body = vec![0x90, b'C'];
    body.extend(s("java.lang.IllegalStateException"));
    body.push(0x92);
    body.extend(s("detailMessage"));
    body.extend(s("cause"));
    body.push(0x60);
    body.extend(s("no stock"));
    body.push(b'N');
    let h = p(msg(0x02, 20, 4, &body), Response).unwrap();
    assert_eq!(h.response_code, Some(20));
    assert_eq!(h.response_status, Some(ResponseStatus::ServerError));
    assert_eq!(h.exception, "java.lang.IllegalStateException: no stock");
    // Cut inside the instance: the class name is what is known.
    let cut = msg(0x02, 20, 4, &body);
    let h = parse(&cut[..cut.len() - 6], Response).unwrap();
    assert_eq!(h.exception, "java.lang.IllegalStateException");
    // A value with attachments (flag 4) is no error.
    let h = p(msg(0x02, 20, 5, b"\x94\x05helloHZ"), Response).unwrap();
    assert_eq!(
        (h.response_status, &*h.exception),
        (Some(ResponseStatus::Ok), "")
    );
}

#[test]
fn descriptors() {
    assert_eq!(parameter_count(""), Some(0));
    assert_eq!(parameter_count("I"), Some(1));
    assert_eq!(parameter_count("Ljava/lang/String;[I[[Lx;JZ"), Some(5));
    assert_eq!(parameter_count("Ljava/lang/String"), None);
    assert_eq!(parameter_count("V"), None);
    assert_eq!(parameter_count("["), None);
}

#[test]
fn strict_inference() {
    let body = request_body("", &[], &[]);
    let good = msg(0xc2, 0, 1, &body);
    assert_eq!(infer(&good), Some(Request));
    for bad in [
        msg(0xc2, 5, 1, &body),         // a request with a status
        msg(0xc5, 0, 1, &body),         // serialization 5 is none
        msg(0xc2, 0, 1, b"\x90"),       // a call body not a string
        msg(0xc2, 0, 1, b""),           // no body
        msg(0x42, 20, 1, b"\x91\x90"),  // a two-way response
        msg(0x02, 21, 1, b"\x91\x90"),  // no such status
        msg(0x02, 20, 1, b"\x05hello"), // OK without a result flag
        good[..15].to_vec(),            // header cut
    ] {
        assert_eq!(infer(&bad), None, "{bad:02x?}");
    }
    let mut huge = good.clone();
    huge[12] = 0x7f;
    assert_eq!(infer(&huge), None);
    assert_eq!(
        parse(&huge, Request),
        Err(ParseError::Invalid("body length"))
    );
    assert_eq!(parse(b"\xda", Request), Err(ParseError::Incomplete));
    assert_eq!(parse(b"\xdb", Request), Err(ParseError::Mismatch));
    assert_eq!(
        parse(&good, Response),
        Err(ParseError::Invalid("message kind"))
    );
    assert_eq!(message_kind(b"GET / HTTP/1.1\r\n\r\n"), None);
}

#[test]
fn no_other_protocol_is_claimed_and_none_claims_dubbo() {
    for (name, b) in fx::foreign_payloads(&["dubbo"]) {
        assert_eq!(infer(&b), None, "dubbo claims {name}");
    }
    let mut later = 0;
    for name in SCENARIOS {
        for r in fx::records(&format!("dubbo/{name}.rec")) {
            assert_eq!(fx::claimed_before(&r.bytes), None, "{name}");
            // Later protocols' looser checks (MySQL's 3-byte length
            // fits a Bolt heartbeat) are why dubbo is asked before them.
            if let Some(p) = fx::claimed_after(&r.bytes) {
                assert!(infer(&r.bytes).is_some(), "{name} claimed by {p}");
                later += 1;
            }
            assert_eq!(crate::sofarpc::infer(&r.bytes), None, "{name}");
        }
    }
    assert_eq!(later, 0);
}

/// Parses a message built here.
fn p(m: Vec<u8>, kind: MessageKind) -> Result<Head<'static>, ParseError> {
    parse(&m, kind).map(Head::into_owned)
}
