//! Distributed-tracing headers: W3C `traceparent`, Zipkin B3 (single and
//! multi-header), Jaeger `uber-trace-id` and SkyWalking `sw8`.
//!
//! The parser only validates and borrows the raw header value
//! ([`TraceHeader`]), which keeps the per-message path allocation-free;
//! splitting it into ids ([`TraceContext`]) happens when a span is built,
//! and only `sw8`, whose ids are base64-encoded, then allocates.

use std::borrow::Cow;

/// The trace-context header a message carried, validated but not decoded.
///
/// When several are present the parser keeps the first valid one in the
/// order traceparent > b3 > X-B3-* > uber-trace-id > sw8; invalid ones are
/// ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TraceHeader<'a> {
    /// No valid trace header.
    #[default]
    None,
    /// W3C `traceparent`: `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`.
    TraceParent(&'a str),
    /// Zipkin single header `b3`: `trace-span[-sampled[-parent]]`.
    B3(&'a str),
    /// Zipkin multi-header `X-B3-TraceId` / `X-B3-SpanId` / `X-B3-ParentSpanId`.
    B3Multi {
        /// `X-B3-TraceId`: 16 or 32 hex digits.
        trace: &'a str,
        /// `X-B3-SpanId`: 16 hex digits.
        span: &'a str,
        /// `X-B3-ParentSpanId`, or empty when absent or invalid.
        parent: &'a str,
    },
    /// Jaeger `uber-trace-id`: `trace:span:parent:flags`, separators possibly
    /// URL-encoded as `%3A`.
    Uber(&'a str),
    /// SkyWalking `sw8`: `sample-b64(trace)-b64(segment)-span-b64(service)-b64(instance)-b64(endpoint)-b64(peer)`.
    Sw8(&'a str),
}

/// Trace ids extracted from a [`TraceHeader`]; empty strings mean absent.
///
/// Fields borrow from the message except for `sw8`, whose ids have to be
/// base64-decoded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TraceContext<'a> {
    /// Trace id as the format spells it (hex, or decoded text for sw8).
    pub trace_id: Cow<'a, str>,
    /// The sender's span id; for sw8, `<segment id>-<span id>`.
    pub span_id: Cow<'a, str>,
    /// The sender's parent span id, when the format carries one.
    pub parent_span_id: Cow<'a, str>,
}

impl<'a> TraceHeader<'a> {
    /// The ids this header carries, or None for [`TraceHeader::None`].
    pub fn trace_context(&self) -> Option<TraceContext<'a>> {
        let borrowed = |t: &'a str, s: &'a str, p: &'a str| TraceContext {
            trace_id: Cow::Borrowed(t),
            span_id: Cow::Borrowed(s),
            parent_span_id: Cow::Borrowed(p),
        };
        match *self {
            TraceHeader::None => None,
            TraceHeader::TraceParent(v) => Some(borrowed(v.get(3..35)?, v.get(36..52)?, "")),
            TraceHeader::B3(v) => {
                let mut parts = v.split('-');
                let trace = parts.next()?;
                let span = parts.next()?;
                let _sampled = parts.next();
                Some(borrowed(trace, span, parts.next().unwrap_or("")))
            }
            TraceHeader::B3Multi {
                trace,
                span,
                parent,
            } => Some(borrowed(trace, span, parent)),
            TraceHeader::Uber(v) => {
                let [trace, span, parent, _flags] = uber_fields(v)?;
                let parent = if is_zero(parent) { "" } else { parent };
                Some(borrowed(trace, span, parent))
            }
            TraceHeader::Sw8(v) => {
                let f = sw8_fields(v)?;
                let mut buf = [0u8; SW8_MAX_DECODED];
                let trace = sw8_text(f[1], &mut buf)?.to_owned();
                let segment = sw8_text(f[2], &mut buf)?;
                let span = format!("{segment}-{}", f[3]);
                Some(TraceContext {
                    trace_id: Cow::Owned(trace),
                    span_id: Cow::Owned(span),
                    parent_span_id: Cow::Borrowed(""),
                })
            }
        }
    }
}

/// Raw trace header values as found, first occurrence of each.
///
/// Also what other protocols fill from header-like name/value pairs (RPC
/// attachments), with [`Candidates::offer`], to pick a context the way
/// HTTP does.
#[derive(Default, Debug, Clone)]
pub(crate) struct Candidates<'a> {
    pub(crate) traceparent: Option<&'a str>,
    pub(crate) b3: Option<&'a str>,
    pub(crate) b3_trace: Option<&'a str>,
    pub(crate) b3_span: Option<&'a str>,
    pub(crate) b3_parent: Option<&'a str>,
    pub(crate) uber: Option<&'a str>,
    pub(crate) sw8: Option<&'a str>,
}

impl<'a> Candidates<'a> {
    /// Notes a name/value pair if the name (any ASCII case) is one of the
    /// trace headers; the first value of each name stands. Returns whether
    /// the name was one.
    pub(crate) fn offer(&mut self, name: &str, value: &'a str) -> bool {
        let is = |want: &str| name.eq_ignore_ascii_case(want);
        let slot = if is("traceparent") {
            &mut self.traceparent
        } else if is("b3") {
            &mut self.b3
        } else if is("x-b3-traceid") {
            &mut self.b3_trace
        } else if is("x-b3-spanid") {
            &mut self.b3_span
        } else if is("x-b3-parentspanid") {
            &mut self.b3_parent
        } else if is("uber-trace-id") {
            &mut self.uber
        } else if is("sw8") {
            &mut self.sw8
        } else {
            return false;
        };
        slot.get_or_insert(value);
        true
    }

    /// Picks the first valid header in precedence order.
    pub(crate) fn select(&self) -> TraceHeader<'a> {
        if let Some(v) = self.traceparent.filter(|v| valid_traceparent(v)) {
            return TraceHeader::TraceParent(v);
        }
        if let Some(v) = self.b3.filter(|v| valid_b3_single(v)) {
            return TraceHeader::B3(v);
        }
        if let (Some(trace), Some(span)) = (self.b3_trace, self.b3_span) {
            if is_b3_trace_id(trace) && is_b3_span_id(span) {
                let parent = self.b3_parent.filter(|p| is_b3_span_id(p)).unwrap_or("");
                return TraceHeader::B3Multi {
                    trace,
                    span,
                    parent,
                };
            }
        }
        if let Some(v) = self.uber.filter(|v| valid_uber(v)) {
            return TraceHeader::Uber(v);
        }
        if let Some(v) = self.sw8.filter(|v| valid_sw8(v)) {
            return TraceHeader::Sw8(v);
        }
        TraceHeader::None
    }
}

fn is_hex(s: &str, lower_only: bool) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_digit()
                || matches!(b, b'a'..=b'f')
                || (!lower_only && matches!(b, b'A'..=b'F'))
        })
}

fn is_zero(s: &str) -> bool {
    s.bytes().all(|b| b == b'0')
}

/// Hex id of one of the given lengths and not all zeros (all formats
/// reserve zero for "no id").
fn is_id(s: &str, lens: &[usize], lower_only: bool) -> bool {
    lens.contains(&s.len()) && is_hex(s, lower_only) && !is_zero(s)
}

/// W3C Trace Context section 3.2. Versions other than 00 may append
/// fields, which are ignored; version ff is invalid.
fn valid_traceparent(v: &str) -> bool {
    let b = v.as_bytes();
    if b.len() < 55 || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return false;
    }
    let (Some(version), Some(trace), Some(span), Some(flags)) =
        (v.get(0..2), v.get(3..35), v.get(36..52), v.get(53..55))
    else {
        return false;
    };
    let extension_ok = b.len() == 55 || (version != "00" && b[55] == b'-');
    // The spec mandates lowercase hex and says to ignore anything else.
    is_hex(version, true)
        && version != "ff"
        && is_id(trace, &[32], true)
        && is_id(span, &[16], true)
        && is_hex(flags, true)
        && extension_ok
}

fn is_b3_trace_id(s: &str) -> bool {
    is_id(s, &[16, 32], false)
}

fn is_b3_span_id(s: &str) -> bool {
    is_id(s, &[16], false)
}

/// `trace-span[-sampled[-parent]]`; a bare sampling decision (`0`, `1`,
/// `d`) carries no ids and so is not a context.
fn valid_b3_single(v: &str) -> bool {
    let mut parts = v.split('-');
    let (Some(trace), Some(span)) = (parts.next(), parts.next()) else {
        return false;
    };
    if !is_b3_trace_id(trace) || !is_b3_span_id(span) {
        return false;
    }
    if let Some(sampled) = parts.next() {
        if !matches!(sampled, "0" | "1" | "d") {
            return false;
        }
    }
    if let Some(parent) = parts.next() {
        if !is_b3_span_id(parent) {
            return false;
        }
    }
    parts.next().is_none()
}

/// Splits `trace:span:parent:flags`; Jaeger clients that URL-encode header
/// values send `%3A` for the colons.
fn uber_fields(v: &str) -> Option<[&str; 4]> {
    let mut out = [""; 4];
    let mut rest = v;
    for slot in out.iter_mut().take(3) {
        let b = rest.as_bytes();
        let (end, sep_len) = (0..b.len()).find_map(|i| match b.get(i..) {
            Some([b':', ..]) => Some((i, 1)),
            Some([b'%', b'3', b'A' | b'a', ..]) => Some((i, 3)),
            _ => None,
        })?;
        *slot = rest.get(..end)?;
        rest = rest.get(end + sep_len..)?;
    }
    out[3] = rest;
    Some(out)
}

/// Jaeger: 64- or 128-bit trace id and 64-bit span ids in hex, leading
/// zeros optional; parent `0` means a root span; flags one byte.
fn valid_uber(v: &str) -> bool {
    let Some([trace, span, parent, flags]) = uber_fields(v) else {
        return false;
    };
    let hex_up_to = |s: &str, n: usize| s.len() <= n && is_hex(s, false);
    hex_up_to(trace, 32)
        && !is_zero(trace)
        && hex_up_to(span, 16)
        && !is_zero(span)
        && hex_up_to(parent, 16)
        && hex_up_to(flags, 2)
}

/// Longest base64 id field accepted in sw8. SkyWalking ids are about 60
/// characters before encoding; the bound keeps decoding on the stack.
const SW8_MAX_ENCODED: usize = 256;
const SW8_MAX_DECODED: usize = SW8_MAX_ENCODED / 4 * 3;

fn sw8_fields(v: &str) -> Option<[&str; 8]> {
    let mut out = [""; 8];
    let mut parts = v.split('-');
    for slot in &mut out {
        *slot = parts.next()?;
    }
    parts.next().is_none().then_some(out)
}

/// SkyWalking cross-process propagation headers protocol v3.
fn valid_sw8(v: &str) -> bool {
    let Some(f) = sw8_fields(v) else {
        return false;
    };
    let mut buf = [0u8; SW8_MAX_DECODED];
    matches!(f[0], "0" | "1")
        && sw8_text(f[1], &mut buf).is_some()
        && sw8_text(f[2], &mut buf).is_some()
        && !f[3].is_empty()
        && f[3].len() <= 10
        && f[3].bytes().all(|b| b.is_ascii_digit())
}

/// Decodes a base64 sw8 id field into `out`; None unless it is non-empty
/// printable text.
fn sw8_text<'o>(raw: &str, out: &'o mut [u8]) -> Option<&'o str> {
    if raw.len() > SW8_MAX_ENCODED {
        return None;
    }
    let text = std::str::from_utf8(base64_decode(raw.as_bytes(), out)?).ok()?;
    (!text.is_empty() && !text.chars().any(char::is_control)).then_some(text)
}

/// Standard-alphabet base64, padding optional.
fn base64_decode<'o>(raw: &[u8], out: &'o mut [u8]) -> Option<&'o [u8]> {
    let data = raw.strip_suffix(b"==").or_else(|| raw.strip_suffix(b"="));
    let (data, padded) = match data {
        Some(d) => (d, true),
        None => (raw, false),
    };
    // Written with `%` rather than `is_multiple_of` for the workspace MSRV
    // (1.85). With padding, the input must end on a 4-character quantum.
    let partial_quantum = raw.len() % 4;
    if data.len() % 4 == 1 || (padded && partial_quantum != 0) {
        return None;
    }
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut n = 0;
    for &c in data {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(n)? = (acc >> bits) as u8;
            n += 1;
            acc &= (1 << bits) - 1;
        }
    }
    out.get(..n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(h: TraceHeader<'_>) -> (String, String, String) {
        let c = h.trace_context().expect("context");
        (
            c.trace_id.into_owned(),
            c.span_id.into_owned(),
            c.parent_span_id.into_owned(),
        )
    }

    fn strings(t: &str, s: &str, p: &str) -> (String, String, String) {
        (t.to_owned(), s.to_owned(), p.to_owned())
    }

    const TP: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn traceparent() {
        let c = Candidates {
            traceparent: Some(TP),
            ..Default::default()
        };
        assert_eq!(c.select(), TraceHeader::TraceParent(TP));
        assert_eq!(
            ctx(c.select()),
            strings("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "")
        );
        // The context borrows; nothing is allocated.
        assert!(matches!(
            c.select().trace_context().map(|c| c.trace_id),
            Some(Cow::Borrowed(_))
        ));
    }

    #[test]
    fn traceparent_future_version_may_extend() {
        let v = "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra";
        assert!(valid_traceparent(v));
        assert!(!valid_traceparent(
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra"
        ));
    }

    #[test]
    fn traceparent_invalid() {
        for v in [
            "",
            "00",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0g",
            "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319é-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x",
        ] {
            assert!(!valid_traceparent(v), "{v}");
        }
    }

    #[test]
    fn b3_single() {
        let cases = [
            (
                "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90",
                strings(
                    "80f198ee56343ba864fe8b2a57d3eff7",
                    "e457b5a2e4d86bd1",
                    "05e3ac9a4f6e3b90",
                ),
            ),
            (
                "64fe8b2a57d3eff7-e457b5a2e4d86bd1-d",
                strings("64fe8b2a57d3eff7", "e457b5a2e4d86bd1", ""),
            ),
            (
                "64fe8b2a57d3eff7-e457b5a2e4d86bd1",
                strings("64fe8b2a57d3eff7", "e457b5a2e4d86bd1", ""),
            ),
        ];
        for (v, want) in cases {
            assert!(valid_b3_single(v), "{v}");
            assert_eq!(ctx(TraceHeader::B3(v)), want);
        }
        for v in [
            "0",
            "1",
            "d",
            "64fe8b2a57d3eff7",
            "64fe8b2a57d3eff7-e457b5a2e4d86bd",
            "64fe8b2a57d3eff7-e457b5a2e4d86bd1-2",
            "64fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b9",
            "64fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90-x",
            "0000000000000000-e457b5a2e4d86bd1",
        ] {
            assert!(!valid_b3_single(v), "{v}");
        }
    }

    #[test]
    fn b3_multi() {
        let c = Candidates {
            b3_trace: Some("463ac35c9f6413ad48485a3953bb6124"),
            b3_span: Some("a2fb4a1d1a96d312"),
            b3_parent: Some("0020000000000001"),
            ..Default::default()
        };
        assert_eq!(
            ctx(c.select()),
            strings(
                "463ac35c9f6413ad48485a3953bb6124",
                "a2fb4a1d1a96d312",
                "0020000000000001"
            )
        );
        // An invalid parent is dropped, not the whole context.
        let c = Candidates {
            b3_parent: Some("nope"),
            ..c
        };
        assert_eq!(
            ctx(c.select()),
            strings("463ac35c9f6413ad48485a3953bb6124", "a2fb4a1d1a96d312", "")
        );
        // Trace id without span id is not a context.
        let c = Candidates { b3_span: None, ..c };
        assert_eq!(c.select(), TraceHeader::None);
    }

    #[test]
    fn uber() {
        let cases = [
            (
                "3f2a1b4c5d6e7f80:1a2b3c4d5e6f7a8b:0:1",
                strings("3f2a1b4c5d6e7f80", "1a2b3c4d5e6f7a8b", ""),
            ),
            (
                "463ac35c9f6413ad48485a3953bb6124:a2fb4a1d1a96d312:53ce929d0e0e4736:01",
                strings(
                    "463ac35c9f6413ad48485a3953bb6124",
                    "a2fb4a1d1a96d312",
                    "53ce929d0e0e4736",
                ),
            ),
            ("abc%3Adef%3a0%3A1", strings("abc", "def", "")),
        ];
        for (v, want) in cases {
            assert!(valid_uber(v), "{v}");
            assert_eq!(ctx(TraceHeader::Uber(v)), want);
        }
        for v in [
            "",
            "abc",
            "abc:def:0",
            "abc:def:0:1:2",
            "0:def:0:1",
            "abc:0:0:1",
            "xyz:def:0:1",
            "abc:def:0:123",
            "463ac35c9f6413ad48485a3953bb61240:a2fb4a1d1a96d312:0:1",
            "abc%3def:0:1",
        ] {
            assert!(!valid_uber(v), "{v}");
        }
    }

    // From the SkyWalking protocol documentation.
    const SW8: &str = "1-MWYyZDRiZjQ3YmY3MTFlYWI3OTRhY2RlNDgwMDExMjI=-MWU3YzIwNGE3YmY3MTFlYWI4NThhY2RlNDgwMDExMjI=-0-c2VydmljZQ==-aW5zdGFuY2U=-L2FwcA==-MTI3LjAuMC4xOjgwODA=";

    #[test]
    fn sw8() {
        assert!(valid_sw8(SW8));
        let c = TraceHeader::Sw8(SW8).trace_context().expect("context");
        assert_eq!(c.trace_id, "1f2d4bf47bf711eab794acde48001122");
        assert_eq!(c.span_id, "1e7c204a7bf711eab858acde48001122-0");
        assert_eq!(c.parent_span_id, "");
    }

    #[test]
    fn sw8_invalid() {
        for v in [
            "",
            "1-a-b",
            // Sample flag must be 0 or 1.
            "2-MWYy-MWU3-0-c2Vy-aW5z-L2Fw-MTI3",
            // Span id must be a number.
            "1-MWYy-MWU3-x-c2Vy-aW5z-L2Fw-MTI3",
            // Not base64.
            "1-M!Yy-MWU3-0-c2Vy-aW5z-L2Fw-MTI3",
            // Length 4n+1 cannot be base64.
            "1-MWYyZ-MWU3-0-c2Vy-aW5z-L2Fw-MTI3",
            // Empty trace id.
            "1--MWU3-0-c2Vy-aW5z-L2Fw-MTI3",
            // Decodes to a control character.
            "1-AA==-MWU3-0-c2Vy-aW5z-L2Fw-MTI3",
            // Nine fields.
            "1-MWYy-MWU3-0-c2Vy-aW5z-L2Fw-MTI3-x",
        ] {
            assert!(!valid_sw8(v), "{v}");
        }
    }

    #[test]
    fn base64() {
        let mut out = [0u8; 16];
        for (raw, want) in [
            ("", ""),
            ("Zg==", "f"),
            ("Zg", "f"),
            ("Zm8=", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg==", "foob"),
            ("Zm9vYmE=", "fooba"),
            ("Zm9vYmFy", "foobar"),
        ] {
            let got = base64_decode(raw.as_bytes(), &mut out).expect(raw);
            assert_eq!(got, want.as_bytes(), "{raw}");
        }
        for raw in [
            "Z",
            "Zg=",
            "Z===",
            "Zm9v=",
            "Zm 9",
            "Zm9vYmFyYmF6cXV4cXV1eHh4eA==",
        ] {
            assert!(base64_decode(raw.as_bytes(), &mut out).is_none(), "{raw}");
        }
    }

    #[test]
    fn precedence() {
        let all = Candidates {
            traceparent: Some(TP),
            b3: Some("64fe8b2a57d3eff7-e457b5a2e4d86bd1"),
            b3_trace: Some("463ac35c9f6413ad"),
            b3_span: Some("a2fb4a1d1a96d312"),
            b3_parent: None,
            uber: Some("abc:def:0:1"),
            sw8: Some(SW8),
        };
        assert!(matches!(all.select(), TraceHeader::TraceParent(_)));
        let c = Candidates {
            traceparent: Some("garbage"),
            ..all
        };
        assert!(matches!(c.select(), TraceHeader::B3(_)));
        let c = Candidates { b3: None, ..c };
        assert!(matches!(c.select(), TraceHeader::B3Multi { .. }));
        let c = Candidates {
            b3_trace: None,
            ..c
        };
        assert!(matches!(c.select(), TraceHeader::Uber(_)));
        let c = Candidates {
            uber: Some("bad"),
            ..c
        };
        assert!(matches!(c.select(), TraceHeader::Sw8(_)));
        let c = Candidates { sw8: None, ..c };
        assert_eq!(c.select(), TraceHeader::None);
        assert_eq!(TraceHeader::None.trace_context(), None);
    }
}
