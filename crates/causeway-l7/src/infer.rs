//! Protocol inference: a cheap look at the first bytes of a message.
//!
//! This runs on every captured message of every socket whose protocol is not
//! yet known, so it only pattern-matches the start line's first tokens and
//! leaves validation to the parser.

use crate::L7Protocol;

/// Whether a message opens an exchange (request) or answers one (response).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// Sent by the client.
    Request,
    /// Sent by the server.
    Response,
}

/// Longest method in [`is_known_method`] (`PROPPATCH`); bounds the search for
/// the space after the method so that a long binary payload costs nothing.
const MAX_KNOWN_METHOD_LEN: usize = 9;

/// Cheap check on the first bytes of a message: which protocol and which kind, or None.
///
/// An HTTP/1 request is a known method, one space and a target that starts
/// with `/`, `*` or `http` (or, for `CONNECT`, an authority). An HTTP/1
/// response is `HTTP/1.0 ` or `HTTP/1.1 ` followed by a three-digit status.
/// Only known methods count, because any token would also match many
/// line-based text protocols.
pub fn infer(payload: &[u8]) -> Option<(L7Protocol, MessageKind)> {
    if is_http1_response(payload) {
        Some((L7Protocol::Http, MessageKind::Response))
    } else if is_http1_request(payload) {
        Some((L7Protocol::Http, MessageKind::Request))
    } else {
        None
    }
}

fn is_http1_response(p: &[u8]) -> bool {
    match p {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', b'0' | b'1', b' ', a, b, c, ..] => {
            // A status code never starts with 0 (RFC 9110 section 15).
            matches!(a, b'1'..=b'9') && b.is_ascii_digit() && c.is_ascii_digit()
        }
        _ => false,
    }
}

fn is_http1_request(p: &[u8]) -> bool {
    let window = &p[..p.len().min(MAX_KNOWN_METHOD_LEN + 1)];
    let Some(sp) = window.iter().position(|&b| b == b' ') else {
        return false;
    };
    let (method, rest) = p.split_at(sp);
    if !is_known_method(method) {
        return false;
    }
    let target = &rest[1..];
    match target.first() {
        Some(b'/' | b'*') => true,
        Some(_) if target.len() >= 4 && target[..4].eq_ignore_ascii_case(b"http") => true,
        // CONNECT carries an authority (`host:port`) rather than a path.
        Some(&b) if method == b"CONNECT" => b.is_ascii_alphanumeric() || b == b'[',
        _ => false,
    }
}

/// Whether `p` is too short to tell, but could start an HTTP/1 message: a
/// proper prefix of `METHOD ` for a known method, or of `HTTP/1.`. Servers
/// sometimes read a request's first byte alone (Go's net/http probes a
/// keep-alive connection with a 1-byte read), so such a start is kept and
/// completed by the next read.
pub fn is_http1_prefix(p: &[u8]) -> bool {
    const METHODS: [&[u8]; 16] = [
        b"GET ",
        b"HEAD ",
        b"POST ",
        b"PUT ",
        b"DELETE ",
        b"CONNECT ",
        b"OPTIONS ",
        b"TRACE ",
        b"PATCH ",
        b"PROPFIND ",
        b"PROPPATCH ",
        b"MKCOL ",
        b"COPY ",
        b"MOVE ",
        b"LOCK ",
        b"UNLOCK ",
    ];
    !p.is_empty()
        && (METHODS
            .iter()
            .any(|m| m.len() > p.len() && m.starts_with(p))
            || (p.len() < 7 && b"HTTP/1.".starts_with(p)))
}

/// Methods of RFC 9110 plus PATCH and the WebDAV ones seen in practice.
fn is_known_method(m: &[u8]) -> bool {
    matches!(
        m,
        b"GET"
            | b"HEAD"
            | b"POST"
            | b"PUT"
            | b"DELETE"
            | b"CONNECT"
            | b"OPTIONS"
            | b"TRACE"
            | b"PATCH"
            | b"PROPFIND"
            | b"PROPPATCH"
            | b"MKCOL"
            | b"COPY"
            | b"MOVE"
            | b"LOCK"
            | b"UNLOCK"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: Option<(L7Protocol, MessageKind)> = Some((L7Protocol::Http, MessageKind::Request));
    const RESP: Option<(L7Protocol, MessageKind)> = Some((L7Protocol::Http, MessageKind::Response));

    #[test]
    fn recognises_requests() {
        for p in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"GET /index.html HTTP/1.0\r\n\r\n",
            b"HEAD /x HTTP/1.1\r\n",
            b"POST /api HTTP/1.1\r\n",
            b"PUT /a HTTP/1.1\r\n",
            b"DELETE /a/1 HTTP/1.1\r\n",
            b"OPTIONS * HTTP/1.1\r\n",
            b"TRACE / HTTP/1.1\r\n",
            b"PATCH /a HTTP/1.1\r\n",
            b"PROPFIND /dav/ HTTP/1.1\r\n",
            b"PROPPATCH /dav/ HTTP/1.1\r\n",
            b"GET http://example.com/ HTTP/1.1\r\n",
            b"GET HTTPS://example.com/ HTTP/1.1\r\n",
            b"CONNECT example.com:443 HTTP/1.1\r\n",
            b"CONNECT [::1]:443 HTTP/1.1\r\n",
            b"GET /",
        ] {
            assert_eq!(infer(p), REQ, "{:?}", String::from_utf8_lossy(p));
        }
    }

    #[test]
    fn recognises_responses() {
        for p in [
            &b"HTTP/1.1 200 OK\r\n"[..],
            b"HTTP/1.0 404 Not Found\r\n",
            b"HTTP/1.1 101 Switching Protocols\r\n",
            b"HTTP/1.1 599",
        ] {
            assert_eq!(infer(p), RESP, "{:?}", String::from_utf8_lossy(p));
        }
    }

    #[test]
    fn rejects_non_http() {
        for p in [
            &b""[..],
            b"G",
            b"GET",
            b"GET ",
            b"GETX / HTTP/1.1\r\n",
            b"get / HTTP/1.1\r\n",
            b"GET  / HTTP/1.1\r\n",
            b"GET foo HTTP/1.1\r\n",
            b"GET htt",
            b"POST\t/ HTTP/1.1\r\n",
            b"CONNECT -x HTTP/1.1\r\n",
            b"HTTP/2 200\r\n",
            b"HTTP/2.0 200 OK\r\n",
            b"HTTP/1.2 200 OK\r\n",
            b"HTTP/1.1 20",
            b"HTTP/1.1 2x0 OK\r\n",
            b"HTTP/1.1 099 Odd\r\n",
            b"HTTP/1.1  200 OK\r\n",
            b"http/1.1 200 OK\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"SET key value\r\n",
            b"*3\r\n$3\r\nSET\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            b"\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
            b"\r\nGET / HTTP/1.1\r\n",
        ] {
            assert_eq!(infer(p), None, "{:?}", String::from_utf8_lossy(p));
        }
    }

    #[test]
    fn prefixes_of_a_start() {
        for p in [
            &b"G"[..],
            b"GE",
            b"GET",
            b"P",
            b"PROPP",
            b"H",
            b"HTTP/",
            b"HTTP/1",
        ] {
            assert!(is_http1_prefix(p), "{:?}", String::from_utf8_lossy(p));
        }
        for p in [
            &b""[..],
            b"GET ",
            b"X",
            b"g",
            b"HTTP/1.",
            b"GETX",
            b"HTTP/2",
        ] {
            assert!(!is_http1_prefix(p), "{:?}", String::from_utf8_lossy(p));
        }
    }

    #[test]
    fn long_binary_payload_is_not_http() {
        let p: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        assert_eq!(infer(&p), None);
    }
}
