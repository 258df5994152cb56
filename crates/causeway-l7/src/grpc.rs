//! gRPC over HTTP/2: what a span needs beyond the HTTP/2 headers.
//!
//! A gRPC call is an HTTP/2 stream whose request has `content-type:
//! application/grpc` (or `application/grpc+proto`, `+json`, ...), `:method
//! POST` and `:path /package.Service/Method`; its outcome is in the
//! trailers (a HEADERS frame with END_STREAM after the messages) as
//! `grpc-status` (a decimal code) and `grpc-message` (percent-encoded
//! text), or in the response headers alone for a "trailers-only" answer.
//!
//! Spans follow DeepFlow's convention: request_type stays the HTTP method
//! (`POST`), request_resource and endpoint are the whole path
//! (`/pkg.Service/Method`), request_domain is `:authority`, response_code is
//! the grpc-status, and response_status classes the codes the caller could
//! fix (CANCELLED, INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS,
//! PERMISSION_DENIED, FAILED_PRECONDITION, OUT_OF_RANGE, UNAUTHENTICATED) as
//! client errors and the rest as server errors.

use causeway_model::ResponseStatus;
use std::borrow::Cow;

/// Whether a `content-type` value names gRPC (`application/grpc` with an
/// optional `+format` or parameters).
pub fn is_grpc_content_type(ct: &str) -> bool {
    let b = ct.as_bytes();
    b.len() >= 16
        && b[..16].eq_ignore_ascii_case(b"application/grpc")
        && matches!(b.get(16), None | Some(b'+' | b';'))
}

/// `(service, method)` of a gRPC path `/package.Service/Method`.
pub fn service_method(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?;
    let (service, method) = rest.split_once('/')?;
    if service.is_empty() || method.is_empty() || method.contains('/') {
        return None;
    }
    Some((service, method))
}

/// The outcome class of a grpc-status code.
pub fn status_class(code: u32) -> ResponseStatus {
    match code {
        0 => ResponseStatus::Ok,
        1 | 3 | 5 | 6 | 7 | 9 | 11 | 16 => ResponseStatus::ClientError,
        _ => ResponseStatus::ServerError,
    }
}

/// The name of a grpc-status code (`NOT_FOUND`).
pub fn code_name(code: u32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "",
    }
}

/// Parses a `grpc-status` value: ASCII decimal digits only.
pub fn parse_status(v: &[u8]) -> Option<u32> {
    if v.is_empty() || v.len() > 9 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Decodes a `grpc-message` value (percent-encoded UTF-8, gRPC's HTTP/2
/// spec); invalid escapes are kept as sent and invalid UTF-8 replaced.
pub fn decode_message(v: &[u8]) -> Cow<'_, str> {
    if !v.contains(&b'%') {
        return String::from_utf8_lossy(v);
    }
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'%' {
            if let (Some(h), Some(l)) = (
                v.get(i + 1).copied().and_then(hex),
                v.get(i + 2).copied().and_then(hex),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(v[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        for ct in [
            "application/grpc",
            "application/grpc+proto",
            "application/grpc+json",
            "application/grpc;charset=utf-8",
            "Application/GRPC",
        ] {
            assert!(is_grpc_content_type(ct), "{ct}");
        }
        for ct in [
            "application/grpc-web",
            "application/json",
            "",
            "application/grp",
        ] {
            assert!(!is_grpc_content_type(ct), "{ct}");
        }
    }

    #[test]
    fn paths() {
        assert_eq!(
            service_method("/helloworld.Greeter/SayHello"),
            Some(("helloworld.Greeter", "SayHello"))
        );
        assert_eq!(service_method("/Svc/M"), Some(("Svc", "M")));
        for p in ["", "/", "/a", "/a/", "//m", "a/b", "/a/b/c"] {
            assert_eq!(service_method(p), None, "{p}");
        }
    }

    #[test]
    fn statuses() {
        assert_eq!(status_class(0), ResponseStatus::Ok);
        assert_eq!(status_class(5), ResponseStatus::ClientError);
        assert_eq!(status_class(16), ResponseStatus::ClientError);
        assert_eq!(status_class(13), ResponseStatus::ServerError);
        assert_eq!(status_class(99), ResponseStatus::ServerError);
        assert_eq!(parse_status(b"5"), Some(5));
        assert_eq!(parse_status(b"14"), Some(14));
        assert_eq!(parse_status(b""), None);
        assert_eq!(parse_status(b"-1"), None);
        assert_eq!(parse_status(b"1234567890"), None);
        assert_eq!(code_name(5), "NOT_FOUND");
    }

    #[test]
    fn messages() {
        assert_eq!(decode_message(b"no such item"), "no such item");
        assert_eq!(decode_message(b"caf%C3%A9 100%25"), "café 100%");
        assert_eq!(decode_message(b"bad %zz %4"), "bad %zz %4");
    }
}
