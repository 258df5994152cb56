use super::*;

// Captured from curl 8.5.0.
const CURL_GET: &[u8] = b"GET /api/v1/users?id=42 HTTP/1.1\r\n\
Host: example.com:8080\r\n\
User-Agent: curl/8.5.0\r\n\
Accept: */*\r\n\
\r\n";

const CURL_POST: &[u8] = b"POST /submit HTTP/1.1\r\n\
Host: localhost\r\n\
User-Agent: curl/8.5.0\r\n\
Accept: */*\r\n\
Content-Length: 13\r\n\
Content-Type: application/x-www-form-urlencoded\r\n\
\r\n\
name=causeway";

// Captured from nginx 1.24.0 serving its default page.
const NGINX_200: &[u8] = b"HTTP/1.1 200 OK\r\n\
Server: nginx/1.24.0\r\n\
Date: Tue, 14 May 2024 10:00:00 GMT\r\n\
Content-Type: text/html\r\n\
Content-Length: 615\r\n\
Last-Modified: Tue, 11 Apr 2023 01:45:34 GMT\r\n\
Connection: keep-alive\r\n\
ETag: \"6434bbbe-267\"\r\n\
Accept-Ranges: bytes\r\n\
\r\n";

const NGINX_CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\n\
Server: nginx/1.24.0\r\n\
Content-Type: application/json\r\n\
Transfer-Encoding: chunked\r\n\
Connection: keep-alive\r\n\
\r\n\
d\r\n{\"ok\": true}\n\r\n0\r\n\r\n";

// Python 3.12 http.server and urllib.
const PY_SERVER_200: &[u8] = b"HTTP/1.0 200 OK\r\n\
Server: SimpleHTTP/0.6 Python/3.12.3\r\n\
Date: Tue, 14 May 2024 10:00:00 GMT\r\n\
Content-type: text/html; charset=utf-8\r\n\
Content-Length: 348\r\n\
\r\n";

const PY_SERVER_404: &[u8] = b"HTTP/1.0 404 File not found\r\n\
Server: SimpleHTTP/0.6 Python/3.12.3\r\n\
Date: Tue, 14 May 2024 10:00:00 GMT\r\n\
Connection: close\r\n\
Content-Type: text/html;charset=utf-8\r\n\
Content-Length: 335\r\n\
\r\n";

const PY_URLLIB_GET: &[u8] = b"GET /index.html HTTP/1.1\r\n\
Accept-Encoding: identity\r\n\
Host: localhost:8000\r\n\
User-Agent: Python-urllib/3.12\r\n\
Connection: close\r\n\
\r\n";

fn req(buf: &[u8]) -> Request<'_> {
    parse_request(buf).expect("request parses")
}

fn resp(buf: &[u8]) -> Response<'_> {
    parse_response(buf).expect("response parses")
}

#[test]
fn curl_get() {
    let r = req(CURL_GET);
    assert_eq!(r.method, "GET");
    assert_eq!(r.target, "/api/v1/users?id=42");
    assert_eq!(r.minor_version, 1);
    assert_eq!(r.host, Some("example.com:8080"));
    assert_eq!(r.user_agent, Some("curl/8.5.0"));
    assert_eq!(r.content_length, None);
    assert!(!r.chunked);
    assert!(!r.connection_close);
    assert_eq!(r.x_request_id, None);
    assert_eq!(r.trace, TraceHeader::None);
    assert_eq!(r.head_len, Some(CURL_GET.len()));
    assert_eq!(r.message_len(), Some(CURL_GET.len() as u64));
}

#[test]
fn curl_post_with_body() {
    let r = req(CURL_POST);
    assert_eq!(r.method, "POST");
    assert_eq!(r.content_length, Some(13));
    assert_eq!(r.head_len, Some(CURL_POST.len() - 13));
    assert_eq!(r.message_len(), Some(CURL_POST.len() as u64));
}

#[test]
fn nginx_response() {
    let r = resp(NGINX_200);
    assert_eq!(r.minor_version, 1);
    assert_eq!(r.status, 200);
    assert_eq!(r.reason, "OK");
    assert_eq!(r.content_length, Some(615));
    assert!(!r.chunked);
    assert!(!r.connection_close);
    assert_eq!(r.head_len, Some(NGINX_200.len()));
    assert_eq!(r.message_len(false), Some(NGINX_200.len() as u64 + 615));
    assert_eq!(r.message_len(true), Some(NGINX_200.len() as u64));
}

#[test]
fn nginx_chunked_response() {
    let r = resp(NGINX_CHUNKED);
    assert!(r.chunked);
    assert_eq!(r.content_length, None);
    assert_eq!(r.message_len(false), None);
    let body = &NGINX_CHUNKED[r.head_len.expect("complete head")..];
    assert!(ends_chunked_body(body));
    assert!(!ends_chunked_body(&body[..body.len() - 1]));
}

#[test]
fn python_server_responses() {
    let r = resp(PY_SERVER_200);
    assert_eq!((r.minor_version, r.status, r.reason), (0, 200, "OK"));
    // HTTP/1.0 without keep-alive closes after the response.
    assert!(r.connection_close);
    assert_eq!(r.message_len(false), Some(PY_SERVER_200.len() as u64 + 348));

    let r = resp(PY_SERVER_404);
    assert_eq!((r.status, r.reason), (404, "File not found"));
    assert!(r.connection_close);
    assert_eq!(r.content_length, Some(335));
}

#[test]
fn python_urllib_request() {
    let r = req(PY_URLLIB_GET);
    assert_eq!(r.target, "/index.html");
    assert_eq!(r.host, Some("localhost:8000"));
    assert_eq!(r.user_agent, Some("Python-urllib/3.12"));
    assert!(r.connection_close);
}

#[test]
fn keep_alive() {
    let r = req(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert!(!r.connection_close);
    let r = req(b"GET / HTTP/1.0\r\n\r\n");
    assert!(r.connection_close);
    let r = req(b"GET / HTTP/1.1\r\n\r\n");
    assert!(!r.connection_close);
    let r = req(b"GET / HTTP/1.1\r\nconnection:  Upgrade, CLOSE \r\n\r\n");
    assert!(r.connection_close);
    let r = resp(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n");
    assert!(!r.connection_close);
    assert_eq!(r.message_len(false), r.head_len.map(|h| h as u64));
}

#[test]
fn pipelined_requests() {
    let mut buf = CURL_POST.to_vec();
    buf.extend_from_slice(CURL_GET);
    buf.extend_from_slice(PY_URLLIB_GET);

    let first = req(&buf);
    assert_eq!(first.method, "POST");
    let off = first.message_len().expect("framed") as usize;
    assert_eq!(off, CURL_POST.len());

    let second = req(&buf[off..]);
    assert_eq!(second.target, "/api/v1/users?id=42");
    let off2 = off + second.message_len().expect("framed") as usize;

    let third = req(&buf[off2..]);
    assert_eq!(third.target, "/index.html");
    assert_eq!(
        off2 + third.message_len().expect("framed") as usize,
        buf.len()
    );
}

#[test]
fn pipelined_responses() {
    let mut buf =
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 204 No Content\r\n\r\n"
            .to_vec();
    buf.extend_from_slice(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    let mut off = 0;
    let mut statuses = Vec::new();
    while off < buf.len() {
        let r = resp(&buf[off..]);
        statuses.push(r.status);
        off += r.message_len(false).expect("framed") as usize;
    }
    assert_eq!(statuses, [200, 204, 404]);
    assert_eq!(off, buf.len());
}

#[test]
fn leading_empty_lines_are_skipped_and_counted() {
    let r = req(b"\r\n\nGET / HTTP/1.1\r\n\r\n");
    assert_eq!(r.target, "/");
    assert_eq!(r.head_len, Some(21));
    assert_eq!(parse_request(b"\r\n\r"), Err(ParseError::Incomplete));
    assert_eq!(parse_request(b"\r\n"), Err(ParseError::Incomplete));
}

#[test]
fn bare_lf_line_endings() {
    let r = req(b"GET /a HTTP/1.1\nHost: h\nContent-Length: 2\n\nxy");
    assert_eq!(r.host, Some("h"));
    assert_eq!(r.head_len, Some(43));
    assert_eq!(r.message_len(), Some(45));
    let r = resp(b"HTTP/1.1 200 OK\nContent-Length: 0\n\n");
    assert_eq!(r.head_len, Some(35));
}

#[test]
fn header_names_case_insensitive_and_values_trimmed() {
    let r = req(
        b"GET / HTTP/1.1\r\nHOST:\t h.example \t\r\ncOnTeNt-LeNgTh:7\r\n\
x-REQUEST-id:   abc-123\r\nuser-agent: ua/1 (x)  \r\nTRANSFER-ENCODING: gzip, Chunked\r\n\r\n",
    );
    assert_eq!(r.host, Some("h.example"));
    assert_eq!(r.content_length, Some(7));
    assert_eq!(r.x_request_id, Some("abc-123"));
    assert_eq!(r.user_agent, Some("ua/1 (x)"));
    assert!(r.chunked);
    assert_eq!(r.message_len(), None);
}

#[test]
fn empty_header_value() {
    let r = req(b"GET / HTTP/1.1\r\nHost:\r\nX-Empty: \r\n\r\n");
    assert_eq!(r.host, Some(""));
    assert!(r.head_len.is_some());
}

#[test]
fn first_occurrence_wins() {
    let r =
        req(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nX-Request-ID: 1\r\nX-Request-ID: 2\r\n\r\n");
    assert_eq!((r.host, r.x_request_id), (Some("a"), Some("1")));
}

#[test]
fn transfer_encoding_last_coding_decides() {
    let r =
        resp(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n");
    assert!(!r.chunked);
    let r =
        resp(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert!(r.chunked);
    // Chunked wins over Content-Length (RFC 9112 section 6.3).
    let r = resp(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(r.message_len(false), None);
}

#[test]
fn content_length_forms() {
    let r = req(b"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n");
    assert_eq!(r.content_length, Some(5));
    let r = req(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n");
    assert_eq!(r.content_length, Some(5));
    let r = req(b"POST / HTTP/1.1\r\nContent-Length: 0018446744073709551615\r\n\r\n");
    assert_eq!(r.content_length, Some(u64::MAX));
    // The sum overflows: not framed, but no panic.
    assert_eq!(r.message_len(), None);
}

#[test]
fn content_length_invalid() {
    const ERR: Result<u64, ParseError> = Err(ParseError::Invalid("content-length"));
    for v in [
        &b"99999999999999999999999"[..],
        b"18446744073709551616",
        b"",
        b"-1",
        b"+1",
        b"1 2",
        b"0x10",
        b"5, 6",
        b"5,",
        b"1.0",
    ] {
        let mut buf = b"POST / HTTP/1.1\r\nContent-Length: ".to_vec();
        buf.extend_from_slice(v);
        buf.extend_from_slice(b"\r\n\r\n");
        assert_eq!(
            parse_request(&buf).map(|r| r.content_length.unwrap_or(0)),
            ERR,
            "{:?}",
            String::from_utf8_lossy(v)
        );
    }
    assert_eq!(
        parse_request(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n")
            .map(|_| 0),
        ERR
    );
    assert_eq!(
        parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n")
            .map(|_| 0),
        ERR
    );
}

#[test]
fn truncated_at_every_byte_of_a_request() {
    let msg = CURL_POST;
    let start_line_end = msg.iter().position(|&b| b == b'\n').expect("line") + 1;
    let head_len = msg.len() - 13;
    for i in 0..=msg.len() {
        let got = parse_request(&msg[..i]);
        if i < start_line_end {
            assert_eq!(got, Err(ParseError::Incomplete), "prefix {i}");
            continue;
        }
        let r = got.unwrap_or_else(|e| panic!("prefix {i}: {e}"));
        assert_eq!((r.method, r.target), ("POST", "/submit"));
        if i < head_len {
            assert_eq!(r.head_len, None, "prefix {i}");
            assert_eq!(r.message_len(), None);
        } else {
            assert_eq!(r.head_len, Some(head_len), "prefix {i}");
        }
        // A header is reported only once its line is complete.
        let host_line_end = start_line_end + b"Host: localhost\r\n".len();
        assert_eq!(r.host.is_some(), i >= host_line_end, "prefix {i}");
        let cl_line_end = msg.windows(4).position(|w| w == b"13\r\n").expect("CL") + 4;
        assert_eq!(r.content_length.is_some(), i >= cl_line_end, "prefix {i}");
    }
}

#[test]
fn truncated_at_every_byte_of_a_response() {
    for msg in [NGINX_200, NGINX_CHUNKED, PY_SERVER_404] {
        let start_line_end = msg.iter().position(|&b| b == b'\n').expect("line") + 1;
        for i in 0..=msg.len() {
            match parse_response(&msg[..i]) {
                Err(ParseError::Incomplete) => assert!(i < start_line_end, "prefix {i}"),
                Ok(r) => {
                    assert!(i >= start_line_end, "prefix {i}");
                    assert!(r.status == 200 || r.status == 404);
                }
                Err(e) => panic!("prefix {i}: {e}"),
            }
        }
    }
}

#[test]
fn head_cut_by_capture_cap_keeps_start_line_and_seen_headers() {
    let mut msg = b"GET /big HTTP/1.1\r\nHost: h\r\nX-Request-ID: r1\r\nCookie: ".to_vec();
    msg.resize(2000, b'a');
    let r = req(&msg[..1024]);
    assert_eq!((r.method, r.target, r.host), ("GET", "/big", Some("h")));
    assert_eq!(r.x_request_id, Some("r1"));
    assert_eq!(r.head_len, None);
    assert_eq!(r.message_len(), None);
}

#[test]
fn split_input() {
    // A message written in two syscalls: the first half parses with an open
    // head, the second half alone is not a message, the whole is complete.
    let (a, b) = CURL_GET.split_at(40);
    assert_eq!(req(a).head_len, None);
    assert!(parse_request(b).is_err());
    let joined = [a, b].concat();
    assert_eq!(req(&joined), req(CURL_GET));
    assert_eq!(req(&joined).head_len, Some(CURL_GET.len()));
}

#[test]
fn incomplete_start_lines() {
    for p in [
        &b""[..],
        b"G",
        b"GET",
        b"GET ",
        b"GET /a",
        b"GET /a ",
        b"GET /a HTTP/1.",
        b"GET /a HTTP/1.1",
        b"GET /a HTTP/1.1\r",
        b"PATCH-X / HTT",
    ] {
        assert_eq!(parse_request(p), Err(ParseError::Incomplete), "{p:?}");
    }
    for p in [
        &b""[..],
        b"H",
        b"HTTP/",
        b"HTTP/1.1",
        b"HTTP/1.1 ",
        b"HTTP/1.1 20",
        b"HTTP/1.1 200",
        b"HTTP/1.1 200 O",
        b"HTTP/1.1 200 OK\r",
    ] {
        assert_eq!(parse_response(p), Err(ParseError::Incomplete), "{p:?}");
    }
}

#[test]
fn not_http() {
    for p in [
        &b"\0\0\0\0"[..],
        b" GET / HTTP/1.1\r\n",
        b"GET\t/ HTTP/1.1\r\n",
        b"GET/ HTTP/1.1\r\n",
        b"SET key value\r\n",
        b"GET /foo bar HTTP/1.1\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00",
        b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        b"HTTP/1.1 200 OK\r\n",
    ] {
        assert_eq!(parse_request(p), Err(ParseError::NotHttp), "{p:?}");
    }
    for p in [
        &b"GET / HTTP/1.1\r\n"[..],
        b"http/1.1 200 OK\r\n",
        b"HTTX",
        b"\0",
        b"RTSP/1.0 200 OK\r\n",
    ] {
        assert_eq!(parse_response(p), Err(ParseError::NotHttp), "{p:?}");
    }
}

#[test]
fn invalid_start_lines() {
    use ParseError::Invalid;
    for (p, want) in [
        (&b"GET / HTTP/2.0\r\n"[..], Invalid("version")),
        (b"GET / HTTP/1.2\r\n", Invalid("version")),
        (b"GET / HTTP/1.10\r\n", Invalid("version")),
        (b"GET / HTTP/1.1 \r\n", Invalid("version")),
        (b"GET / HTTP/1.1\rX", Invalid("version")),
        (b"GET /\r\n", Invalid("target")),
        (b"GET  / HTTP/1.1\r\n", Invalid("target")),
        (b"GET /\x01 HTTP/1.1\r\n", Invalid("target")),
        (b"GET /\xff\xfe HTTP/1.1\r\n", Invalid("target")),
    ] {
        assert_eq!(parse_request(p), Err(want), "{p:?}");
    }
    for (p, want) in [
        (&b"HTTP/2 200\r\n"[..], Invalid("version")),
        (b"HTTP/2.0 200 OK\r\n", Invalid("version")),
        (b"HTTP/1.1200 OK\r\n", Invalid("version")),
        (b"HTTP/1.1 20x OK\r\n", Invalid("status code")),
        (b"HTTP/1.1 099 OK\r\n", Invalid("status code")),
        (b"HTTP/1.1 2000 OK\r\n", Invalid("status code")),
        (b"HTTP/1.1 -200 OK\r\n", Invalid("status code")),
        (b"HTTP/1.1 200 O\x00K\r\n", Invalid("reason")),
        (b"HTTP/1.1 200 OK\rX", Invalid("reason")),
    ] {
        assert_eq!(parse_response(p), Err(want), "{p:?}");
    }
}

#[test]
fn invalid_headers() {
    use ParseError::Invalid;
    for (h, want) in [
        (&b"Host : x\r\n"[..], Invalid("header name")),
        (b"Ho st: x\r\n", Invalid("header name")),
        (b": x\r\n", Invalid("header name")),
        (b"NoColon\r\n", Invalid("header name")),
        (b"Bad\x00Name: x\r\n", Invalid("header name")),
        (b"Host: a\x00b\r\n", Invalid("header value")),
        (b"Host: a\x7fb\r\n", Invalid("header value")),
        (b"Host: a\rb\r\n", Invalid("header value")),
        (b"Host: a\x1bb\r\n", Invalid("header value")),
        (b"\rX", Invalid("newline")),
    ] {
        let mut buf = b"GET / HTTP/1.1\r\n".to_vec();
        buf.extend_from_slice(h);
        buf.extend_from_slice(b"\r\n");
        assert_eq!(
            parse_request(&buf),
            Err(want),
            "{:?}",
            String::from_utf8_lossy(h)
        );
        buf.splice(..16, b"HTTP/1.1 200 OK\r\n".iter().copied());
        assert_eq!(
            parse_response(&buf),
            Err(want),
            "{:?}",
            String::from_utf8_lossy(h)
        );
    }
}

#[test]
fn lenient_forms() {
    // No reason phrase, with and without the space.
    let r = resp(b"HTTP/1.1 200\r\n\r\n");
    assert_eq!((r.status, r.reason), (200, ""));
    let r = resp(b"HTTP/1.1 200 \r\n\r\n");
    assert_eq!((r.status, r.reason), (200, ""));
    // obs-text in the reason is dropped, not fatal.
    let r = resp(b"HTTP/1.1 200 \xff\r\n\r\n");
    assert_eq!(r.reason, "");
    // obs-fold is skipped; the folded header keeps its first line.
    let r = req(b"GET / HTTP/1.1\r\nUser-Agent: a\r\n  b\r\nHost: h\r\n\r\n");
    assert_eq!((r.user_agent, r.host), (Some("a"), Some("h")));
    // UTF-8 in the target, unknown methods, non-UTF-8 values of kept headers.
    let r = req("PURGE /caf\u{e9} HTTP/1.1\r\n\r\n".as_bytes());
    assert_eq!((r.method, r.target), ("PURGE", "/caf\u{e9}"));
    let r = req(b"GET / HTTP/1.1\r\nUser-Agent: \xff\r\n\r\n");
    assert_eq!(r.user_agent, None);
    // Absolute form, authority form and asterisk form.
    assert_eq!(req(b"GET http://a/b HTTP/1.1\r\n\r\n").target, "http://a/b");
    assert_eq!(req(b"CONNECT a:443 HTTP/1.1\r\n\r\n").target, "a:443");
    assert_eq!(req(b"OPTIONS * HTTP/1.0\r\n\r\n").target, "*");
}

#[test]
fn garbage_never_panics() {
    // xorshift, so the test is deterministic without a dependency.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b"GETHP/1. \r\n:0123456789\x00\x7f\xffaA-";
    let mut buf = Vec::new();
    for round in 0..20_000 {
        buf.clear();
        let len = (next() % 300) as usize;
        for _ in 0..len {
            let r = next();
            // Half the rounds use raw bytes, half HTTP-ish ones, which reach
            // deeper into the parser.
            buf.push(if round % 2 == 0 {
                r as u8
            } else {
                alphabet[(r % alphabet.len() as u64) as usize]
            });
        }
        if let Ok(r) = parse_request(&buf) {
            assert!(r.head_len.is_none_or(|h| h <= buf.len()));
        }
        if let Ok(r) = parse_response(&buf) {
            assert!(r.head_len.is_none_or(|h| h <= buf.len()));
        }
        let _ = crate::infer::infer(&buf);
        let _ = ends_chunked_body(&buf);
    }
    for b in [
        &[0u8; 1024][..],
        &[b'\r'; 1024],
        &[b'\n'; 1024],
        &[0xff; 1024],
    ] {
        assert!(parse_request(b).is_err());
        assert!(parse_response(b).is_err());
    }
}

#[test]
fn trace_headers_in_messages() {
    let r = req(b"GET / HTTP/1.1\r\n\
traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n");
    let c = r.trace.trace_context().expect("traceparent");
    assert_eq!(c.trace_id, "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(c.span_id, "b7ad6b7169203331");
    assert_eq!(c.parent_span_id, "");

    let r = req(b"GET / HTTP/1.1\r\n\
B3: 80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90\r\n\r\n");
    let c = r.trace.trace_context().expect("b3");
    assert_eq!(c.trace_id, "80f198ee56343ba864fe8b2a57d3eff7");
    assert_eq!(c.span_id, "e457b5a2e4d86bd1");
    assert_eq!(c.parent_span_id, "05e3ac9a4f6e3b90");

    let r = req(b"GET / HTTP/1.1\r\n\
X-B3-TraceId: 463ac35c9f6413ad48485a3953bb6124\r\n\
X-B3-ParentSpanId: 0020000000000001\r\n\
X-B3-SpanId: a2fb4a1d1a96d312\r\n\
X-B3-Sampled: 1\r\n\r\n");
    assert_eq!(
        r.trace,
        TraceHeader::B3Multi {
            trace: "463ac35c9f6413ad48485a3953bb6124",
            span: "a2fb4a1d1a96d312",
            parent: "0020000000000001",
        }
    );

    let r =
        resp(b"HTTP/1.1 200 OK\r\nUber-Trace-Id: 3f2a1b4c5d6e7f80:1a2b3c4d5e6f7a8b:0:1\r\n\r\n");
    let c = r.trace.trace_context().expect("uber");
    assert_eq!(
        (&*c.trace_id, &*c.span_id, &*c.parent_span_id),
        ("3f2a1b4c5d6e7f80", "1a2b3c4d5e6f7a8b", "")
    );

    let r = req(b"GET / HTTP/1.1\r\nsw8: 1-MWYyZDRiZjQ3YmY3MTFlYWI3OTRhY2RlNDgwMDExMjI=-MWU3YzIwNGE3YmY3MTFlYWI4NThhY2RlNDgwMDExMjI=-3-c2VydmljZQ==-aW5zdGFuY2U=-L2FwcA==-MTI3LjAuMC4xOjgwODA=\r\n\r\n");
    let c = r.trace.trace_context().expect("sw8");
    assert_eq!(c.trace_id, "1f2d4bf47bf711eab794acde48001122");
    assert_eq!(c.span_id, "1e7c204a7bf711eab858acde48001122-3");
}

#[test]
fn trace_precedence_and_invalid_ignored() {
    let r = req(b"GET / HTTP/1.1\r\n\
uber-trace-id: abc:def:0:1\r\n\
traceparent: 00-zzz\r\n\
b3: 64fe8b2a57d3eff7-e457b5a2e4d86bd1\r\n\r\n");
    assert_eq!(
        r.trace,
        TraceHeader::B3("64fe8b2a57d3eff7-e457b5a2e4d86bd1")
    );
    let r = req(b"GET / HTTP/1.1\r\ntraceparent: garbage\r\nHost: h\r\n\r\n");
    assert_eq!(r.trace, TraceHeader::None);
    assert_eq!(r.host, Some("h"));
}

#[test]
fn message_len_without_body() {
    for (status, framed) in [
        (100, true),
        (101, true),
        (204, true),
        (304, true),
        (200, false),
        (404, false),
    ] {
        let head = format!("HTTP/1.1 {status} X\r\nContent-Length: 10\r\n\r\n");
        let r = resp(head.as_bytes());
        let h = head.len() as u64;
        assert_eq!(
            r.message_len(false),
            Some(if framed { h } else { h + 10 }),
            "{status}"
        );
        assert_eq!(r.message_len(true), Some(h), "{status}");
    }
    // Close-delimited body.
    let r = resp(b"HTTP/1.1 200 OK\r\n\r\n");
    assert_eq!(r.message_len(false), None);
    assert_eq!(r.message_len(true), Some(19));
    // Chunked 204 still has no body.
    let r = resp(b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(r.message_len(false), r.head_len.map(|h| h as u64));
    // A head that was cut off has no length.
    let r = resp(b"HTTP/1.1 304 Not Modified\r\nETag: x\r\n");
    assert_eq!(r.message_len(false), None);
}

#[test]
fn status_classes() {
    use causeway_model::ResponseStatus as S;
    for (code, want) in [
        (0, S::Unknown),
        (99, S::Unknown),
        (100, S::Ok),
        (200, S::Ok),
        (302, S::Ok),
        (399, S::Ok),
        (400, S::ClientError),
        (404, S::ClientError),
        (499, S::ClientError),
        (500, S::ServerError),
        (503, S::ServerError),
        (599, S::ServerError),
        (600, S::Unknown),
        (999, S::Unknown),
    ] {
        assert_eq!(status_class(code), want, "{code}");
    }
}

#[test]
fn chunked_body_end() {
    for tail in [
        &b"0\r\n\r\n"[..],
        b"5\r\nhello\r\n0\r\n\r\n",
        b"\r\n0\r\n\r\n",
        b"000\r\n\r\n",
        b"\r\n0;name=value\r\n\r\n",
        b"\n0\n\n",
    ] {
        assert!(
            ends_chunked_body(tail),
            "{:?}",
            String::from_utf8_lossy(tail)
        );
    }
    for tail in [
        &b""[..],
        b"0\r\n",
        b"0\r\n\r",
        b"\r\n\r\n",
        b"5\r\nhello\r\n",
        b"\r\n10\r\n\r\n",
        b"a0\r\n\r\n",
        b"\r\n0x\r\n\r\n",
        b"\r\n0;\x01\r\n\r\n",
    ] {
        assert!(
            !ends_chunked_body(tail),
            "{:?}",
            String::from_utf8_lossy(tail)
        );
    }
}

#[test]
fn error_messages() {
    assert_eq!(ParseError::Incomplete.to_string(), "incomplete start line");
    assert_eq!(ParseError::NotHttp.to_string(), "not an HTTP/1 message");
    assert_eq!(
        ParseError::Invalid("content-length").to_string(),
        "invalid content-length"
    );
}

#[test]
fn word_scans_match_bytewise_scans() {
    // Every byte value at every position of a run long enough to span
    // several words, against the one-byte-at-a-time definition.
    for fill in [b'a', 0x80, b'\t', b'~'] {
        for c in 0..=255u8 {
            for pos in 0..24 {
                let mut b = [fill; 24];
                b[pos] = c;
                for len in [pos + 1, 24] {
                    let b = &b[..len];
                    let naive_value = b.iter().position(|&x| !is_value(x));
                    let naive_target = b.iter().position(|&x| !is_target(x));
                    assert_eq!(value_len(b), naive_value, "fill {fill} byte {c} at {pos}");
                    assert_eq!(target_len(b), naive_target, "fill {fill} byte {c} at {pos}");
                }
            }
        }
    }
}
