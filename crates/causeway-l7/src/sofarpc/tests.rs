//! The SOFARPC parser on Bolt v1 and v2 traffic recorded from a real
//! SOFARPC Node server and client (sofa-rpc-node 2.10.0, sofa-bolt-node
//! 2.0.1, `tests/fixtures/sofarpc/record.py`): every call checked against
//! what the client and the server printed about it; then cut, hand-built
//! (Java SOFARPC's header map, SofaResponse errors) and foreign bytes.

use super::*;
use crate::rpc_test_support::{self as fx, CAP, SCENARIOS};
use std::collections::HashMap;
use MessageKind::{Request, Response};

fn messages(s: &[u8]) -> Vec<&[u8]> {
    fx::split(s, |m| header(m).expect("header").message_len() as usize)
}

type ById = HashMap<u64, Head<'static>>;

/// The requests and responses of a recording (`v2_` for Bolt v2), parsed
/// from the first `CAP` bytes as the agent does, by request id.
fn parsed(file: &str) -> (ById, ById) {
    let recs = fx::records(&format!("sofarpc/{file}.rec"));
    let mut out = (HashMap::new(), HashMap::new());
    for (dir, kind, map) in [(b'C', Request, &mut out.0), (b'S', Response, &mut out.1)] {
        for m in messages(&fx::stream(&recs, dir)) {
            let cut = &m[..m.len().min(CAP)];
            assert_eq!(infer(cut), Some(kind), "{file}");
            assert_eq!(message_kind(cut), Some(kind), "{file}");
            let h = parse(cut, kind).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(h.message_len, Some(m.len() as u64), "{file}");
            let id = h.request_id.expect("request id");
            assert!(
                map.insert(id, h.into_owned()).is_none(),
                "{file}: id {id} twice"
            );
        }
    }
    out
}

#[test]
fn recorded_calls_agree_with_client_and_server() {
    for (prefix, version) in [("", "1"), ("v2_", "2")] {
        let mut calls = 0;
        for name in SCENARIOS {
            let file = format!("{prefix}{name}");
            let (reqs, resps) = parsed(&file);
            assert_eq!(reqs.len(), resps.len(), "{file}: one answer per request");
            let lines = fx::log(&format!("sofarpc/{file}.log"));
            for l in lines.iter().filter(|l| l.event == "call") {
                let q = &reqs[&l.request_id];
                let a = &resps[&l.request_id];
                assert_eq!(q.request_type, l.method, "{file}");
                assert_eq!(q.request_resource, l.service, "{file}");
                // The Node client names no target app.
                assert_eq!(q.request_domain, "", "{file}");
                assert_eq!(q.version, version, "{file}");
                let ok = match l.side.as_str() {
                    "client" => l.ok,
                    _ => l.result_code == "00",
                };
                if ok {
                    assert_eq!(a.response_code, Some(0), "{file}");
                    assert_eq!(a.response_status, Some(ResponseStatus::Ok), "{file}");
                    assert_eq!(a.exception, "", "{file}");
                } else {
                    // sofa-rpc-node answers failures SERVER_EXCEPTION with
                    // an RpcServerException, which the client reports.
                    assert_eq!(a.response_code, Some(2), "{file}");
                    assert_eq!(a.response_status, Some(ResponseStatus::ServerError));
                    if l.side == "client" {
                        assert_eq!(a.exception, l.error, "{file}");
                    }
                }
                calls += 1;
            }
            for l in lines.iter().filter(|l| l.event == "heartbeat") {
                assert_eq!(reqs[&l.request_id].request_type, "heartbeat", "{file}");
                assert_eq!(resps[&l.request_id].response_code, Some(0), "{file}");
                calls += 1;
            }
        }
        // 12 calls and one heartbeat, each logged by the client and the server.
        assert_eq!(calls, 26, "{prefix}");
    }
}

#[test]
fn out_of_order_answers_name_their_request() {
    for file in ["concurrent", "v2_concurrent"] {
        let recs = fx::records(&format!("sofarpc/{file}.rec"));
        let ids = |dir| -> Vec<u32> {
            messages(&fx::stream(&recs, dir))
                .iter()
                .map(|m| header(m).unwrap().request_id)
                .collect()
        };
        assert_eq!(ids(b'C'), [1, 2, 3]);
        assert_eq!(ids(b'S'), [3, 2, 1]);
    }
}

#[test]
fn trace_contexts_from_request_props() {
    for prefix in ["", "v2_"] {
        let (reqs, _) = parsed(&format!("{prefix}traced"));
        assert_eq!(reqs[&1].trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(reqs[&1].span_id, "00f067aa0ba902b7");
        let (reqs, _) = parsed(&format!("{prefix}sofa_traced"));
        assert_eq!(reqs[&1].trace_id, "0a0fe8ec1526806853032100185011");
        assert_eq!(reqs[&1].span_id, "0.1");
        let (reqs, _) = parsed(&format!("{prefix}echo"));
        assert_eq!(reqs[&1].trace_id, "");
    }
}

#[test]
fn v2_frames_carry_a_crc() {
    let recs = fx::records("sofarpc/v2_echo.rec");
    let m = &recs[0].bytes;
    let h = header(m).unwrap();
    assert_eq!((h.protocol, h.version, h.crc, h.size), (2, 2, true, 24));
    assert_eq!(h.message_len(), m.len() as u64);
    let h = header(&fx::records("sofarpc/echo.rec")[0].bytes).unwrap();
    assert_eq!((h.protocol, h.crc, h.size), (1, false, 22));
}

#[test]
fn a_big_argument_beyond_the_cap() {
    let s = fx::stream(&fx::records("sofarpc/big.rec"), b'C');
    assert!(s.len() > 40_000);
    let h = parse(&s[..CAP], Request).unwrap();
    assert_eq!(h.message_len, Some(s.len() as u64));
    assert_eq!(h.request_type, "echo");
    // Cut before the content: the header map still names the service.
    let h = parse(&s[..120], Request).unwrap();
    assert_eq!(
        (&*h.request_type, &*h.request_resource),
        ("", "com.causeway.demo.EchoService:1.0")
    );
}

#[test]
fn every_cut_is_safe() {
    for prefix in ["", "v2_"] {
        for name in SCENARIOS {
            let recs = fx::records(&format!("sofarpc/{prefix}{name}.rec"));
            for r in &recs {
                let b = &r.bytes[..r.bytes.len().min(700)];
                let size = header(b).unwrap().size;
                for cut in 0..=b.len() {
                    let p = &b[..cut];
                    let _ = infer(p);
                    for kind in [Request, Response] {
                        match parse(p, kind) {
                            Ok(h) => assert!(cut >= size && h.message_len.is_some()),
                            Err(ParseError::Incomplete) => assert!(cut < size),
                            Err(ParseError::Invalid("message kind")) => assert!(cut >= size),
                            Err(e) => panic!("{name} cut at {cut}: {e}"),
                        }
                    }
                }
            }
        }
    }
}

/// A Bolt v1 request frame.
fn request(
    rpc_type: u8,
    cmd: u16,
    id: u32,
    class: &str,
    map: &[(&str, &str)],
    content: &[u8],
) -> Vec<u8> {
    let map = header_map(map);
    let mut m = vec![1, rpc_type];
    m.extend_from_slice(&cmd.to_be_bytes());
    m.push(1);
    m.extend_from_slice(&id.to_be_bytes());
    m.push(HESSIAN2);
    m.extend_from_slice(&3000u32.to_be_bytes());
    m.extend_from_slice(&(class.len() as u16).to_be_bytes());
    m.extend_from_slice(&(map.len() as u16).to_be_bytes());
    m.extend_from_slice(&(content.len() as u32).to_be_bytes());
    m.extend_from_slice(class.as_bytes());
    m.extend_from_slice(&map);
    m.extend_from_slice(content);
    m
}

/// A Bolt v1 response frame.
fn response(status: u16, id: u32, class: &str, content: &[u8]) -> Vec<u8> {
    let mut m = vec![1, 0, 0, 2, 1];
    m.extend_from_slice(&id.to_be_bytes());
    m.push(HESSIAN2);
    m.extend_from_slice(&status.to_be_bytes());
    m.extend_from_slice(&(class.len() as u16).to_be_bytes());
    m.extend_from_slice(&0u16.to_be_bytes());
    m.extend_from_slice(&(content.len() as u32).to_be_bytes());
    m.extend_from_slice(class.as_bytes());
    m.extend_from_slice(content);
    m
}

fn header_map(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut b = Vec::new();
    for (k, v) in entries {
        for x in [k, v] {
            b.extend_from_slice(&(x.len() as i32).to_be_bytes());
            b.extend_from_slice(x.as_bytes());
        }
    }
    b
}

/// A draft-dialect string: compact up to 31 chars, else `S`.
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

/// A draft class definition and an instance with these field values.
fn object(class: &str, fields: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut b = vec![b'O', 0x90 + class.len() as u8];
    b.extend_from_slice(class.as_bytes());
    b.push(0x90 + fields.len() as u8);
    for (name, _) in fields {
        b.extend(s(name));
    }
    b.extend_from_slice(&[b'o', 0x90]);
    for (_, v) in fields {
        b.extend_from_slice(v);
    }
    b
}

const REQ_CLASS: &str = "com.alipay.sofa.rpc.core.request.SofaRequest";
const RESP_CLASS: &str = "com.alipay.sofa.rpc.core.response.SofaResponse";

#[test]
fn java_header_map_requests() {
    // As Java SOFARPC sends them: the facts in the header map too.
    let m = request(
        1,
        1,
        77,
        REQ_CLASS,
        &[
            ("sofa_head_target_service", "com.shop.Orders:1.0"),
            ("sofa_head_method_name", "place"),
            ("sofa_head_target_app", "orders"),
            (
                "rpc_trace_context.sofaTraceId",
                "0a0b9a491683255362727389515827",
            ),
            ("rpc_trace_context.sofaRpcId", "0.1.2"),
            ("service", "ignored:1.0"),
        ],
        &[],
    );
    assert_eq!(infer(&m), Some(Request));
    let h = parse(&m, Request).unwrap();
    assert_eq!(
        (&*h.request_type, &*h.request_resource, &*h.request_domain),
        ("place", "com.shop.Orders:1.0", "orders")
    );
    assert_eq!(
        (&*h.trace_id, &*h.span_id),
        ("0a0b9a491683255362727389515827", "0.1.2")
    );
    assert_eq!(h.request_id, Some(77));
    // new_rpc_trace_context, in the content's requestProps (as a string).
    let props = [
        vec![b'M'],
        s("new_rpc_trace_context"),
        s("tcid=0a2200ce16709002839561008&spid=0.3&pspid=0&sample=true&"),
        vec![b'z'],
    ]
    .concat();
    let content = object(
        REQ_CLASS,
        &[
            ("targetAppName", s("orders")),
            ("methodName", s("cancel")),
            ("targetServiceUniqueName", s("com.shop.Orders:1.0")),
            ("requestProps", props),
            ("methodArgSigs", vec![b'N']),
        ],
    );
    let m = request(1, 1, 78, REQ_CLASS, &[], &content);
    let h = parse(&m, Request).unwrap();
    assert_eq!(
        (&*h.request_type, &*h.request_resource, &*h.request_domain),
        ("cancel", "com.shop.Orders:1.0", "orders")
    );
    assert_eq!(
        (&*h.trace_id, &*h.span_id, &*h.parent_span_id),
        ("0a2200ce16709002839561008", "0.3", "0")
    );
    // W3C in the header map wins over SOFATracer's ids.
    let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let m = request(
        1,
        1,
        79,
        REQ_CLASS,
        &[("traceparent", tp), ("rpc_trace_context.sofaTraceId", "x")],
        &[],
    );
    assert_eq!(
        parse(&m, Request).unwrap().trace_id,
        "0af7651916cd43dd8448eb211c80319c"
    );
}

#[test]
fn oneway_and_heartbeats() {
    let m = request(2, 1, 5, REQ_CLASS, &[("service", "a:1.0")], &[]);
    assert_eq!(infer(&m), Some(Request));
    assert!(parse(&m, Request).unwrap().unpaired);
    let hb = request(1, 0, 6, "", &[], &[]);
    assert_eq!(infer(&hb), Some(Request));
    assert_eq!(parse(&hb, Request).unwrap().request_type, "heartbeat");
    let mut ack = response(0, 6, "", &[]);
    ack[3] = 0; // command 0: heartbeat
    assert_eq!(infer(&ack), Some(Response));
    assert_eq!(parse(&ack, Response).unwrap().response_code, Some(0));
    // A heartbeat that carries something is none.
    assert_eq!(infer(&request(1, 0, 6, "x", &[], &[])), None);
}

#[test]
fn sofa_response_errors() {
    // Status 0, isError: a framework error the response body tells.
    let content = object(
        RESP_CLASS,
        &[
            ("isError", vec![b'T']),
            ("errorMsg", s("Cannot find service")),
            ("appResponse", vec![b'N']),
            ("responseProps", vec![b'N']),
        ],
    );
    let h = p(response(0, 1, RESP_CLASS, &content), Response).unwrap();
    assert_eq!(h.response_code, Some(0));
    assert_eq!(h.response_status, Some(ResponseStatus::ServerError));
    assert_eq!(h.exception, "Cannot find service");
    // Status 0, the service threw: appResponse is the exception.
    let name = "java.lang.IllegalArgumentException";
    let mut exc = vec![b'O', 0x90 + name.len() as u8];
    exc.extend_from_slice(name.as_bytes());
    exc.extend_from_slice(&[0x91]);
    exc.extend(s("detailMessage"));
    exc.extend_from_slice(&[b'o', 0x91]);
    exc.extend(s("bad id"));
    let content = [
        vec![b'O', 0x90 + RESP_CLASS.len() as u8],
        RESP_CLASS.as_bytes().to_vec(),
        vec![0x92],
        s("isError"),
        s("appResponse"),
        vec![b'o', 0x90, b'F'],
        exc,
    ]
    .concat();
    let h = p(response(0, 2, RESP_CLASS, &content), Response).unwrap();
    assert_eq!(h.response_status, Some(ResponseStatus::ServerError));
    assert_eq!(h.exception, "java.lang.IllegalArgumentException: bad id");
    // Status 0, a plain value.
    let content = object(
        RESP_CLASS,
        &[("isError", vec![b'F']), ("appResponse", s("ok"))],
    );
    let h = p(response(0, 3, RESP_CLASS, &content), Response).unwrap();
    assert_eq!(
        (h.response_status, &*h.exception),
        (Some(ResponseStatus::Ok), "")
    );
    // A status alone.
    let h = p(response(7, 4, "", &[]), Response).unwrap();
    assert_eq!(h.response_status, Some(ResponseStatus::ServerError));
    assert_eq!(h.exception, "TIMEOUT");
    assert_eq!(status_class(8), ResponseStatus::ClientError);
    // A Hessian 2.0 (not draft) body: read in its own dialect.
    let v2 = [
        vec![b'C'],
        s("java.lang.RuntimeException"),
        vec![0x91],
        s("detailMessage"),
        vec![0x60],
        s("boom"),
    ]
    .concat();
    let h = p(response(2, 5, RESP_CLASS, &v2), Response).unwrap();
    assert_eq!(h.exception, "java.lang.RuntimeException: boom");
}

#[test]
fn strict_inference() {
    let good = request(1, 1, 1, REQ_CLASS, &[("service", "a:1.0")], &[]);
    assert_eq!(infer(&good), Some(Request));
    let mut bad_cases = Vec::new();
    let mut m = good.clone();
    m[1] = 3; // no such type
    bad_cases.push(m);
    let mut m = good.clone();
    m[3] = 2; // a request with the response command
    bad_cases.push(m);
    let mut m = good.clone();
    m[4] = 2; // command version 2
    bad_cases.push(m);
    let mut m = good.clone();
    m[9] = 5; // no such codec
    bad_cases.push(m);
    let mut m = good.clone();
    m[14] = 0x10; // a class name longer than the bound
    bad_cases.push(m);
    let mut m = good.clone();
    m[22] = b' '; // a class name that is not one
    bad_cases.push(m);
    let mut r = response(0, 1, RESP_CLASS, &[]);
    r[11] = 0x20; // no such status
    bad_cases.push(r);
    bad_cases.push(good[..21].to_vec());
    for b in &bad_cases {
        assert_eq!(infer(b), None, "{b:02x?}");
    }
    let mut huge = good.clone();
    huge[18] = 0x7f;
    assert_eq!(
        parse(&huge, Request),
        Err(ParseError::Invalid("content length"))
    );
    assert_eq!(parse(b"", Request), Err(ParseError::Incomplete));
    assert_eq!(parse(b"\x01\x01\x00", Request), Err(ParseError::Incomplete));
    assert_eq!(parse(b"\x03", Request), Err(ParseError::Mismatch));
    assert_eq!(
        parse(&good, Response),
        Err(ParseError::Invalid("message kind"))
    );
}

#[test]
fn no_other_protocol_is_claimed_and_none_claims_sofarpc() {
    for (name, b) in fx::foreign_payloads(&["sofarpc"]) {
        assert_eq!(infer(&b), None, "sofarpc claims {name}");
    }
    let mut later = 0;
    for prefix in ["", "v2_"] {
        for name in SCENARIOS {
            for r in fx::records(&format!("sofarpc/{prefix}{name}.rec")) {
                assert_eq!(fx::claimed_before(&r.bytes), None, "{prefix}{name}");
                // Later protocols' looser checks (MySQL's 3-byte length
                // fits a Bolt heartbeat) are why sofarpc is asked before them.
                if let Some(p) = fx::claimed_after(&r.bytes) {
                    assert!(infer(&r.bytes).is_some(), "{prefix}{name} claimed by {p}");
                    later += 1;
                }
                assert_eq!(crate::dubbo::infer(&r.bytes), None, "{prefix}{name}");
            }
        }
    }
    // One: the Bolt v1 heartbeat request, a MySQL packet of 257 bytes
    // with sequence id 0 by its first four bytes.
    assert_eq!(later, 1);
}

/// Parses a message built here.
fn p(m: Vec<u8>, kind: MessageKind) -> Result<Head<'static>, ParseError> {
    parse(&m, kind).map(Head::into_owned)
}
