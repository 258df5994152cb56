//! Property tests: the parsers never panic, and whatever a well-formed
//! generator writes comes back out, at every truncation point.

use causeway_l7::http1::{
    ends_chunked_body, parse_request, parse_response, status_class, ParseError,
};
use causeway_l7::infer::{infer, MessageKind};
use causeway_l7::L7Protocol;
use proptest::prelude::*;

/// A request as the generator wrote it.
#[derive(Debug, Clone)]
struct GenRequest {
    method: String,
    target: String,
    host: Option<String>,
    content_length: Option<u64>,
    extra: Vec<(String, String)>,
    crlf: bool,
    ows: String,
}

impl GenRequest {
    fn head(&self) -> Vec<u8> {
        let nl = if self.crlf { "\r\n" } else { "\n" };
        let mut s = format!("{} {} HTTP/1.1{nl}", self.method, self.target);
        let ows = &self.ows;
        // Interleave the generated extra headers with the ones under test so
        // their position varies.
        let mut extra = self.extra.iter();
        if let Some((n, v)) = extra.next() {
            s += &format!("{n}:{ows}{v}{ows}{nl}");
        }
        if let Some(h) = &self.host {
            s += &format!("hOsT:{ows}{h}{ows}{nl}");
        }
        if let Some((n, v)) = extra.next() {
            s += &format!("{n}: {v}{nl}");
        }
        if let Some(cl) = self.content_length {
            s += &format!("Content-Length:{ows}{cl}{ows}{nl}");
        }
        for (n, v) in extra {
            s += &format!("{n}: {v}{nl}");
        }
        s += nl;
        s.into_bytes()
    }
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"
        ])
        .prop_map(str::to_owned),
        "[A-Z][A-Za-z0-9!#$%&'*+.^_`|~-]{0,15}",
    ]
}

fn request() -> impl Strategy<Value = GenRequest> {
    (
        method(),
        "/[A-Za-z0-9._~%/?=&;:@!$'()*+,-]{0,60}",
        proptest::option::of("[a-z0-9.-]{1,30}(:[0-9]{1,5})?"),
        proptest::option::of(0u64..=u64::MAX / 2),
        proptest::collection::vec(("x-gen-[a-z0-9-]{1,10}", "[ -~]{0,40}"), 0..5),
        any::<bool>(),
        prop::sample::select(vec!["", " ", "\t", "  \t"]),
    )
        .prop_map(
            |(method, target, host, content_length, extra, crlf, ows)| GenRequest {
                method,
                target,
                host,
                content_length,
                // Values are trimmed by the parser; keep them trimmed here.
                extra: extra
                    .into_iter()
                    .map(|(n, v)| (n, v.trim_matches([' ', '\t']).to_owned()))
                    .collect(),
                crlf,
                ows: ows.to_owned(),
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..1200)) {
        if let Ok(r) = parse_request(&buf) {
            prop_assert!(r.head_len.is_none_or(|h| h <= buf.len()));
            let _ = r.message_len();
            let _ = r.trace.trace_context();
        }
        if let Ok(r) = parse_response(&buf) {
            prop_assert!(r.head_len.is_none_or(|h| h <= buf.len()));
            let _ = r.message_len(false);
            let _ = r.message_len(true);
            let _ = r.trace.trace_context();
            let _ = status_class(r.status);
        }
        let _ = infer(&buf);
        let _ = ends_chunked_body(&buf);
    }

    #[test]
    fn http_shaped_bytes_never_panic(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("GET "), Just("HTTP/1.1 "), Just("HTTP/1."), Just("200 "), Just("/"),
                Just("\r\n"), Just("\n"), Just("\r"), Just(": "), Just("Content-Length"),
                Just("Transfer-Encoding: chunked"), Just("traceparent"), Just("b3"),
                Just("sw8"), Just("uber-trace-id"), Just("0"), Just("-"), Just("\0"),
                Just("\u{e9}"), Just("\t"), Just("99999999999999999999999"),
            ],
            0..40,
        )
    ) {
        let buf = parts.concat().into_bytes();
        for b in [&buf[..], &buf[buf.len().min(1)..]] {
            if let Ok(r) = parse_request(b) {
                let _ = r.trace.trace_context();
            }
            if let Ok(r) = parse_response(b) {
                let _ = r.trace.trace_context();
            }
            let _ = infer(b);
        }
    }

    #[test]
    fn generated_requests_round_trip(g in request(), body in proptest::collection::vec(any::<u8>(), 0..64)) {
        let head = g.head();
        let r = parse_request(&head).map_err(|e| TestCaseError::fail(format!("{e}: {:?}", String::from_utf8_lossy(&head))))?;
        prop_assert_eq!(r.method, g.method.as_str());
        prop_assert_eq!(r.target, g.target.as_str());
        prop_assert_eq!(r.minor_version, 1);
        prop_assert_eq!(r.host, g.host.as_deref());
        prop_assert_eq!(r.content_length, g.content_length);
        prop_assert_eq!(r.head_len, Some(head.len()));

        // The request is recognised by inference too, when its method is a
        // standard one.
        if ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"].contains(&g.method.as_str()) {
            prop_assert_eq!(infer(&head), Some((L7Protocol::Http, MessageKind::Request)));
        }

        // Pipelining: with a body of the declared length, the next request
        // starts exactly at message_len.
        let mut g2 = g.clone();
        g2.content_length = Some(body.len() as u64);
        let mut buf = g2.head();
        buf.extend_from_slice(&body);
        let second_at = buf.len();
        buf.extend_from_slice(&head);
        let first = parse_request(&buf).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(first.message_len(), Some(second_at as u64));
        let second = parse_request(&buf[second_at..]).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(second, r);
    }

    #[test]
    fn every_prefix_of_a_valid_request_is_ok_or_incomplete(g in request()) {
        let head = g.head();
        let start_line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len()) + 1;
        for i in 0..head.len() {
            match parse_request(&head[..i]) {
                Err(ParseError::Incomplete) => prop_assert!(i < start_line_end),
                Ok(r) => {
                    prop_assert!(i >= start_line_end);
                    prop_assert_eq!(r.method, g.method.as_str());
                    prop_assert_eq!(r.head_len, None);
                    // A header is either complete or absent, never cut short.
                    if let Some(h) = r.host {
                        prop_assert_eq!(Some(h), g.host.as_deref());
                    }
                    if let Some(cl) = r.content_length {
                        prop_assert_eq!(Some(cl), g.content_length);
                    }
                }
                Err(e) => prop_assert!(false, "prefix {i}: {e}"),
            }
        }
    }

    #[test]
    fn generated_responses_round_trip(
        status in 100u16..=999,
        reason in "[ -~]{0,30}",
        cl in proptest::option::of(any::<u64>()),
        minor in 0u8..=1,
    ) {
        let reason = reason.trim_end_matches([' ', '\t']).to_owned();
        let mut head = format!("HTTP/1.{minor} {status} {reason}\r\n");
        if let Some(cl) = cl {
            head += &format!("Content-Length: {cl}\r\n");
        }
        head += "\r\n";
        let r = parse_response(head.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!((r.minor_version, r.status, r.reason), (minor, status, reason.as_str()));
        prop_assert_eq!(r.content_length, cl);
        prop_assert_eq!(r.head_len, Some(head.len()));
        prop_assert_eq!(infer(head.as_bytes()), Some((L7Protocol::Http, MessageKind::Response)));
    }
}
