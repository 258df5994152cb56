//! The DNS parser on messages recorded from dnsmasq 2.90 and dig 9.18
//! (`tests/fixtures/dns/record.py`); the expected values were read from
//! tshark 4.0 on the same messages.

use super::*;
use MessageKind::{Request, Response};
use Transport::{Tcp, Udp};

fn fx(name: &str) -> Vec<u8> {
    let p = format!("{}/tests/fixtures/dns/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn t(name: &str) -> Transport {
    if name.starts_with("tcp_") {
        Tcp
    } else {
        Udp
    }
}

#[test]
fn recorded_queries() {
    for (name, qtype, qname) in [
        ("a", "A", "www.example.test"),
        ("aaaa", "AAAA", "www.example.test"),
        ("cname", "A", "alias.example.test"),
        ("mx", "MX", "example.test"),
        ("txt", "TXT", "example.test"),
        ("srv", "SRV", "_http._tcp.example.test"),
        ("ptr", "PTR", "3.2.1.10.in-addr.arpa"),
        ("nxdomain", "A", "nothere.example.test"),
        ("noedns", "A", "api.example.test"),
        ("upper", "A", "WWW.Example.TEST"),
        ("big_txt", "TXT", "big.example.test"),
        ("refused_any", "A", "outside.invalid"),
        ("tcp_a", "A", "www.example.test"),
        ("tcp_mx", "MX", "example.test"),
        ("tcp_nxdomain", "A", "nothere.example.test"),
        ("tcp_big_txt", "TXT", "big.example.test"),
    ] {
        let b = fx(&format!("{name}.req"));
        assert_eq!(infer(&b, t(name)), Some(Request), "{name}");
        let h = parse(&b, Request, t(name)).unwrap();
        assert_eq!(
            (&*h.request_type, &*h.request_resource),
            (qtype, qname),
            "{name}"
        );
        let id = u64::from(be16(&b, if t(name) == Tcp { 2 } else { 0 }).unwrap());
        assert_eq!(h.request_id, Some(id), "{name}");
        let want_len = (t(name) == Tcp).then_some(b.len() as u64);
        assert_eq!(h.message_len, want_len, "{name}");
    }
}

#[test]
fn recorded_answers() {
    for (name, rcode, status, result) in [
        ("a", 0, ResponseStatus::Ok, "10.1.2.3"),
        ("aaaa", 0, ResponseStatus::Ok, "fd00::5"),
        ("cname", 0, ResponseStatus::Ok, "www.example.test,10.1.2.3"),
        ("mx", 0, ResponseStatus::Ok, "mail.example.test"),
        ("txt", 0, ResponseStatus::Ok, "\"hello from dnsmasq\""),
        ("srv", 0, ResponseStatus::Ok, "www.example.test:80"),
        ("ptr", 0, ResponseStatus::Ok, "www.example.test"),
        ("nxdomain", 3, ResponseStatus::ClientError, ""),
        ("noedns", 0, ResponseStatus::Ok, "10.1.2.4"),
        ("big_txt", 0, ResponseStatus::Ok, "truncated"),
        ("refused_any", 5, ResponseStatus::ClientError, ""),
        ("tcp_a", 0, ResponseStatus::Ok, "10.1.2.3"),
        ("tcp_nxdomain", 3, ResponseStatus::ClientError, ""),
    ] {
        let b = fx(&format!("{name}.resp"));
        let q = fx(&format!("{name}.req"));
        assert_eq!(infer(&b, t(name)), Some(Response), "{name}");
        let h = parse(&b, Response, t(name)).unwrap();
        assert_eq!(h.response_code, Some(rcode), "{name}");
        assert_eq!(h.response_status, Some(status), "{name}");
        assert_eq!(h.result, result, "{name}");
        assert_eq!(
            h.exception,
            rcode_name(rcode as u16)
                .filter(|_| rcode != 0)
                .unwrap_or(""),
            "{name}"
        );
        // The answer names the query it answers.
        let hq = parse(&q, Request, t(name)).unwrap();
        assert_eq!(h.request_id, hq.request_id, "{name}");
        assert_eq!(h.request_resource, hq.request_resource, "{name}");
    }
    let big_resp = fx("tcp_big_txt.resp");
    let big = parse(&big_resp, Response, Tcp).unwrap();
    assert!(big.result.starts_with("\"xxxx"), "{}", big.result);
    assert_eq!(big.message_len, Some(fx("tcp_big_txt.resp").len() as u64));
}

#[test]
fn every_cut_is_safe_and_never_wrong() {
    for name in ["a", "cname", "srv", "nxdomain", "tcp_a", "tcp_big_txt"] {
        for (ext, kind) in [("req", Request), ("resp", Response)] {
            let b = fx(&format!("{name}.{ext}"));
            let whole = parse(&b, kind, t(name)).unwrap();
            for cut in 0..b.len() {
                let _ = infer(&b[..cut], t(name));
                if let Ok(h) = parse(&b[..cut], kind, t(name)) {
                    assert_eq!(h.request_id, whole.request_id, "{name}.{ext} at {cut}");
                    if !h.request_resource.is_empty() {
                        assert_eq!(h.request_resource, whole.request_resource);
                    }
                }
            }
        }
    }
}

#[test]
fn compression_loops_and_garbage() {
    // A name that points at itself.
    let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
    m.extend_from_slice(b"\xc0\x0c\x00\x01\x00\x01");
    m.extend_from_slice(b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x0a\x00\x00\x01");
    let h = parse(&m, Response, Udp).unwrap();
    assert_eq!(h.request_resource, "");
    assert_eq!(h.request_id, Some(0x1234));
    for p in [
        &b""[..],
        b"GET / HTTP/1.1\r\n\r\n",
        b"*1\r\n$4\r\nPING\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x00\x00\x00\x00\x00\x00\x00",
        b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00\x00\x00",
    ] {
        assert_eq!(infer(p, Udp), None, "{p:?}");
    }
    assert_eq!(parse(b"\x12", Request, Udp), Err(ParseError::Incomplete));
    let q = fx("a.req");
    assert_eq!(parse(&q, Response, Udp), Err(ParseError::Mismatch));
    assert_eq!(type_name(65280), "TYPE65280");
}
