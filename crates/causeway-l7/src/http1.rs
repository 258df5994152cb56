//! HTTP/1.0 and HTTP/1.1 message heads, parsed without copying.
//!
//! The input is whatever eBPF captured of a message's first syscall, so it
//! may stop anywhere. A head cut inside the header section is still useful
//! (method, target, status and the headers seen so far make a span), so it
//! parses to `Ok` with `head_len: None`; only a buffer without a complete
//! start line is an error. A partially captured header line is skipped rather
//! than reported, because its value may be cut short (`Content-Length: 12`
//! of `123`).
//!
//! Only the headers a span needs are kept, in fixed fields, so the parser
//! never allocates; every other header line is still checked for syntax.

use causeway_model::ResponseStatus;

pub(crate) mod trace;
pub use trace::{TraceContext, TraceHeader};

#[cfg(test)]
mod tests;

/// Why a buffer does not yield a message head.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum ParseError {
    /// The buffer ends before the start line does; it could become valid with
    /// more bytes.
    #[error("incomplete start line")]
    Incomplete,
    /// The first bytes are not HTTP at all: no method token followed by a
    /// space, or no `HTTP/` where the protocol name belongs.
    #[error("not an HTTP/1 message")]
    NotHttp,
    /// The message looked like HTTP but breaks the grammar; the payload names
    /// the part (`version`, `status code`, `header name`, `content-length`…).
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// The head of an HTTP/1 request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Request<'a> {
    /// Method token as sent (`GET`); any RFC 9110 token is accepted.
    pub method: &'a str,
    /// Request target as sent: origin form, absolute form, authority or `*`.
    pub target: &'a str,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// The first `Host` header, if valid UTF-8.
    pub host: Option<&'a str>,
    /// `Content-Length`, if present.
    pub content_length: Option<u64>,
    /// Whether the last transfer coding is `chunked`.
    pub chunked: bool,
    /// The first `X-Request-ID` header, if valid UTF-8.
    pub x_request_id: Option<&'a str>,
    /// The first `User-Agent` header, if valid UTF-8.
    pub user_agent: Option<&'a str>,
    /// `Connection: close`, or HTTP/1.0 without `Connection: keep-alive`.
    pub connection_close: bool,
    /// The highest-precedence valid trace-context header.
    pub trace: TraceHeader<'a>,
    /// The first `Upgrade` header (`h2c`, `websocket`), if valid UTF-8.
    pub upgrade: Option<&'a str>,
    /// Bytes from the start of the buffer through the blank line ending the head; None if the head was cut off.
    pub head_len: Option<usize>,
}

/// The head of an HTTP/1 response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Response<'a> {
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Status code, 100 to 999.
    pub status: u16,
    /// Reason phrase as sent; empty when absent or not valid UTF-8.
    pub reason: &'a str,
    /// `Content-Length`, if present.
    pub content_length: Option<u64>,
    /// Whether the last transfer coding is `chunked`.
    pub chunked: bool,
    /// The first `X-Request-ID` header, if valid UTF-8.
    pub x_request_id: Option<&'a str>,
    /// `Connection: close`, or HTTP/1.0 without `Connection: keep-alive`.
    pub connection_close: bool,
    /// The highest-precedence valid trace-context header.
    pub trace: TraceHeader<'a>,
    /// Bytes from the start of the buffer through the blank line ending the head; None if the head was cut off.
    pub head_len: Option<usize>,
}

impl Request<'_> {
    /// Total message length when knowable from the head: head_len + content_length
    /// (a request without Content-Length or chunked coding has no body, RFC 9112 section 6.3).
    ///
    /// None when the head was cut off, the body is chunked, or the sum overflows.
    pub fn message_len(&self) -> Option<u64> {
        if self.chunked {
            return None;
        }
        let head = u64::try_from(self.head_len?).ok()?;
        head.checked_add(self.content_length.unwrap_or(0))
    }
}

impl Response<'_> {
    /// Total message length when knowable from the head: head_len + content_length.
    ///
    /// 1xx, 204 and 304 responses, and responses to HEAD (the caller passes
    /// `head_request = true`), have no body whatever their headers say.
    /// Chunked and close-delimited bodies (no Content-Length) give None, as
    /// does a head that was cut off.
    pub fn message_len(&self, head_request: bool) -> Option<u64> {
        let head = u64::try_from(self.head_len?).ok()?;
        if head_request || self.status < 200 || self.status == 204 || self.status == 304 {
            return Some(head);
        }
        if self.chunked {
            return None;
        }
        head.checked_add(self.content_length?)
    }
}

/// Maps a status code to a span status: 1xx, 2xx and 3xx are Ok, 4xx a
/// client error, 5xx a server error, anything else Unknown.
pub fn status_class(code: u16) -> ResponseStatus {
    match code {
        100..=399 => ResponseStatus::Ok,
        400..=499 => ResponseStatus::ClientError,
        500..=599 => ResponseStatus::ServerError,
        _ => ResponseStatus::Unknown,
    }
}

/// Whether `tail`, the last bytes of a chunked body seen so far, ends with
/// the last chunk (`0\r\n\r\n`), i.e. the message is complete.
///
/// The zero-size line must start at the beginning of `tail` or right after a
/// line feed, so that `...\r\n10\r\n\r\n` (a 16-byte chunk whose data begins
/// with CRLF) is not mistaken for the end. Chunk extensions (`0;x=y`) and
/// bare-LF line endings are accepted; trailer fields are not recognised.
pub fn ends_chunked_body(tail: &[u8]) -> bool {
    let Some(rest) = strip_line_end(tail) else {
        return false;
    };
    let Some(line_and_before) = strip_line_end(rest) else {
        return false;
    };
    // The last-chunk line: one or more zeros, then an optional extension.
    let line_start = line_and_before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = &line_and_before[line_start..];
    let size_len = line.iter().take_while(|&&b| b == b'0').count();
    if size_len == 0 {
        return false;
    }
    match line.get(size_len) {
        None => true,
        Some(b';' | b' ' | b'\t') => line.iter().all(|&b| b == b'\t' || !b.is_ascii_control()),
        Some(_) => false,
    }
}

/// Removes one trailing `\n` or `\r\n`.
fn strip_line_end(b: &[u8]) -> Option<&[u8]> {
    let b = b.strip_suffix(b"\n")?;
    Some(b.strip_suffix(b"\r").unwrap_or(b))
}

/// Parses the head of an HTTP/1 request from the start of `buf`.
///
/// Leading empty lines are skipped (RFC 9112 section 2.2) and counted in
/// `head_len`, so a pipelined request after a body with a stray CRLF still
/// parses at the offset the caller computed.
pub fn parse_request(buf: &[u8]) -> Result<Request<'_>, ParseError> {
    let start = skip_empty_lines(buf)?;

    // Method: a token ended by one space.
    let method_len = buf[start..]
        .iter()
        .take(MAX_METHOD_LEN + 1)
        .position(|&b| !is_token(b));
    let method_end = match method_len {
        None if buf.len() - start > MAX_METHOD_LEN => return Err(ParseError::NotHttp),
        None => return Err(ParseError::Incomplete),
        Some(0) => return Err(ParseError::NotHttp),
        Some(n) if buf[start + n] == b' ' => start + n,
        Some(_) => return Err(ParseError::NotHttp),
    };
    let method = ascii_str(&buf[start..method_end], "method")?;

    // Target: any visible bytes up to the next space.
    let target_start = method_end + 1;
    let target_end = match target_len(&buf[target_start..]) {
        None => return Err(ParseError::Incomplete),
        Some(n) if buf[target_start + n] == b' ' => target_start + n,
        Some(_) => return Err(ParseError::Invalid("target")),
    };
    if target_end == target_start {
        return Err(ParseError::Invalid("target"));
    }
    let target = std::str::from_utf8(&buf[target_start..target_end])
        .map_err(|_| ParseError::Invalid("target"))?;

    let version_start = target_end + 1;
    let minor_version = parse_version(&buf[version_start..])?;
    let headers_start = expect_newline(buf, version_start + VERSION_LEN, "version")?;

    let f = parse_fields(buf, headers_start)?;
    Ok(Request {
        method,
        target,
        minor_version,
        host: f.host,
        content_length: f.content_length,
        chunked: f.chunked,
        x_request_id: f.x_request_id,
        user_agent: f.user_agent,
        connection_close: f.connection_close(minor_version),
        trace: f.trace.select(),
        upgrade: f.upgrade,
        head_len: f.head_len,
    })
}

/// Parses the head of an HTTP/1 response from the start of `buf`.
///
/// A missing reason phrase (`HTTP/1.1 200\r\n`) is accepted, as clients do.
pub fn parse_response(buf: &[u8]) -> Result<Response<'_>, ParseError> {
    let start = skip_empty_lines(buf)?;
    let minor_version = parse_version(&buf[start..])?;

    let mut pos = start + VERSION_LEN;
    match buf.get(pos) {
        None => return Err(ParseError::Incomplete),
        Some(b' ') => pos += 1,
        Some(_) => return Err(ParseError::Invalid("version")),
    }

    let mut status: u16 = 0;
    for i in 0..3 {
        match buf.get(pos + i) {
            None => return Err(ParseError::Incomplete),
            Some(&d) if d.is_ascii_digit() && !(i == 0 && d == b'0') => {
                status = status * 10 + u16::from(d - b'0');
            }
            Some(_) => return Err(ParseError::Invalid("status code")),
        }
    }
    pos += 3;

    let reason_start = match buf.get(pos) {
        None => return Err(ParseError::Incomplete),
        Some(b' ') => pos + 1,
        Some(b'\r' | b'\n') => pos,
        Some(_) => return Err(ParseError::Invalid("status code")),
    };
    let reason_end = match value_len(&buf[reason_start..]) {
        None => return Err(ParseError::Incomplete),
        Some(n) => reason_start + n,
    };
    // obs-text is legal in a reason phrase but cannot be borrowed as &str;
    // nobody acts on the reason, so it is dropped rather than rejected.
    let reason = std::str::from_utf8(&buf[reason_start..reason_end]).unwrap_or("");
    let headers_start = expect_newline(buf, reason_end, "reason")?;

    let f = parse_fields(buf, headers_start)?;
    Ok(Response {
        minor_version,
        status,
        reason,
        content_length: f.content_length,
        chunked: f.chunked,
        x_request_id: f.x_request_id,
        connection_close: f.connection_close(minor_version),
        trace: f.trace.select(),
        head_len: f.head_len,
    })
}

/// Methods are unbounded tokens in RFC 9110; a bound lets a long run of
/// token bytes (base64, hex) be called NotHttp instead of Incomplete. The
/// longest registered method is 17 bytes (`BASELINE-CONTROL`).
const MAX_METHOD_LEN: usize = 32;

/// `HTTP/1.x`
const VERSION_LEN: usize = 8;

/// Skips empty lines before a start line; a lone trailing `\r` may still
/// become one.
fn skip_empty_lines(buf: &[u8]) -> Result<usize, ParseError> {
    let mut pos = 0;
    loop {
        match &buf[pos..] {
            [b'\r', b'\n', ..] => pos += 2,
            [b'\n', ..] => pos += 1,
            [b'\r'] => return Err(ParseError::Incomplete),
            _ => return Ok(pos),
        }
    }
}

/// Parses `HTTP/1.0` or `HTTP/1.1` at the start of `b`, giving the minor
/// version. The protocol name is case-sensitive (RFC 9112 section 2.3).
fn parse_version(b: &[u8]) -> Result<u8, ParseError> {
    const NAME: &[u8] = b"HTTP/";
    const PREFIX: &[u8] = b"HTTP/1.";
    for (i, (&got, &want)) in b.iter().zip(PREFIX).enumerate() {
        if got != want {
            return Err(if i < NAME.len() {
                ParseError::NotHttp
            } else {
                ParseError::Invalid("version")
            });
        }
    }
    match b.get(PREFIX.len()) {
        None => Err(ParseError::Incomplete),
        Some(b'0') => Ok(0),
        Some(b'1') => Ok(1),
        Some(_) => Err(ParseError::Invalid("version")),
    }
}

/// Expects a `\r\n` or bare `\n` at `pos`, giving the offset after it.
/// `what` names the element that ended unexpectedly.
fn expect_newline(buf: &[u8], pos: usize, what: &'static str) -> Result<usize, ParseError> {
    match buf.get(pos..) {
        None | Some([] | [b'\r']) => Err(ParseError::Incomplete),
        Some([b'\n', ..]) => Ok(pos + 1),
        Some([b'\r', b'\n', ..]) => Ok(pos + 2),
        Some(_) => Err(ParseError::Invalid(what)),
    }
}

fn ascii_str<'a>(b: &'a [u8], what: &'static str) -> Result<&'a str, ParseError> {
    std::str::from_utf8(b).map_err(|_| ParseError::Invalid(what))
}

/// The header fields a span needs, gathered in one pass.
#[derive(Default)]
struct Fields<'a> {
    host: Option<&'a str>,
    content_length: Option<u64>,
    chunked: bool,
    x_request_id: Option<&'a str>,
    user_agent: Option<&'a str>,
    upgrade: Option<&'a str>,
    close: bool,
    keep_alive: bool,
    trace: trace::Candidates<'a>,
    head_len: Option<usize>,
}

impl Fields<'_> {
    fn connection_close(&self, minor_version: u8) -> bool {
        self.close || (minor_version == 0 && !self.keep_alive)
    }
}

/// Reads header lines from `pos` up to the blank line, or up to the end of
/// the buffer when the head was cut off (then `head_len` stays None and a
/// partial last line is ignored).
fn parse_fields(buf: &[u8], mut pos: usize) -> Result<Fields<'_>, ParseError> {
    let mut f = Fields::default();
    loop {
        let line = &buf[pos..];
        let (name, value_start) = match line {
            [] | [b'\r'] => return Ok(f),
            [b'\n', ..] => {
                f.head_len = Some(pos + 1);
                return Ok(f);
            }
            [b'\r', b'\n', ..] => {
                f.head_len = Some(pos + 2);
                return Ok(f);
            }
            [b'\r', ..] => return Err(ParseError::Invalid("newline")),
            // obs-fold continues the previous value; it is obsolete and no
            // header we keep uses it, so the line is checked and skipped.
            [b' ' | b'\t', ..] => (&line[..0], 0),
            _ => match line.iter().position(|&b| !is_token(b)) {
                None => return Ok(f),
                Some(n) if n > 0 && line[n] == b':' => (&line[..n], n + 1),
                Some(_) => return Err(ParseError::Invalid("header name")),
            },
        };
        let value_end = match value_len(&line[value_start..]) {
            None => return Ok(f),
            Some(n) => value_start + n,
        };
        let next = match &line[value_end..] {
            [b'\n', ..] => value_end + 1,
            [b'\r', b'\n', ..] => value_end + 2,
            [b'\r'] => return Ok(f),
            _ => return Err(ParseError::Invalid("header value")),
        };
        if !name.is_empty() {
            f.apply(name, trim_ows(&line[value_start..value_end]))?;
        }
        pos += next;
    }
}

impl<'a> Fields<'a> {
    fn apply(&mut self, name: &[u8], value: &'a [u8]) -> Result<(), ParseError> {
        // Dispatch on length first: most header names are rejected with one
        // integer comparison.
        let is = |want: &[u8]| name.eq_ignore_ascii_case(want);
        match name.len() {
            2 if is(b"b3") => set_first(&mut self.trace.b3, value),
            3 if is(b"sw8") => set_first(&mut self.trace.sw8, value),
            4 if is(b"host") => set_first(&mut self.host, value),
            10 if is(b"connection") => {
                for token in value.split(|&b| b == b',').map(trim_ows) {
                    if token.eq_ignore_ascii_case(b"close") {
                        self.close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        self.keep_alive = true;
                    }
                }
            }
            7 if is(b"upgrade") => set_first(&mut self.upgrade, value),
            10 if is(b"user-agent") => set_first(&mut self.user_agent, value),
            11 if is(b"traceparent") => set_first(&mut self.trace.traceparent, value),
            11 if is(b"x-b3-spanid") => set_first(&mut self.trace.b3_span, value),
            12 if is(b"x-request-id") => set_first(&mut self.x_request_id, value),
            12 if is(b"x-b3-traceid") => set_first(&mut self.trace.b3_trace, value),
            13 if is(b"uber-trace-id") => set_first(&mut self.trace.uber, value),
            14 if is(b"content-length") => {
                let n = parse_content_length(value)?;
                // Differing lengths are a request-smuggling vector (RFC 9112
                // section 6.3); the message cannot be framed.
                if self.content_length.is_some_and(|old| old != n) {
                    return Err(ParseError::Invalid("content-length"));
                }
                self.content_length = Some(n);
            }
            17 if is(b"transfer-encoding") => {
                // Several Transfer-Encoding lines form one list; the body is
                // chunked when the last coding of that list is.
                if let Some(last) = value.rsplit(|&b| b == b',').map(trim_ows).next() {
                    if !last.is_empty() {
                        self.chunked = last.eq_ignore_ascii_case(b"chunked");
                    }
                }
            }
            17 if is(b"x-b3-parentspanid") => set_first(&mut self.trace.b3_parent, value),
            _ => {}
        }
        Ok(())
    }
}

/// Keeps the first occurrence of a header, as most servers do; values that
/// are not UTF-8 are treated as absent rather than failing the message.
fn set_first<'a>(slot: &mut Option<&'a str>, value: &'a [u8]) {
    if slot.is_none() {
        *slot = std::str::from_utf8(value).ok();
    }
}

/// `1*DIGIT`, or a list of identical ones (`5, 5`), which RFC 9112 section
/// 6.3 allows a recipient to accept.
fn parse_content_length(value: &[u8]) -> Result<u64, ParseError> {
    const ERR: ParseError = ParseError::Invalid("content-length");
    let mut result = None;
    for item in value.split(|&b| b == b',').map(trim_ows) {
        if item.is_empty() {
            return Err(ERR);
        }
        let mut n: u64 = 0;
        for &d in item {
            if !d.is_ascii_digit() {
                return Err(ERR);
            }
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d - b'0')))
                .ok_or(ERR)?;
        }
        if result.is_some_and(|r| r != n) {
            return Err(ERR);
        }
        result = Some(n);
    }
    result.ok_or(ERR)
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

const TOKEN: u8 = 1;
const TARGET: u8 = 2;
const VALUE: u8 = 4;

/// Byte classes of RFC 9110/9112, one table lookup per byte.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut c = 0;
        // tchar: "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "."
        //        / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
        if b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            )
        {
            c |= TOKEN;
        }
        // Targets: visible ASCII, plus raw non-ASCII that some clients send
        // unencoded (checked for UTF-8 afterwards).
        if b > b' ' && b != 0x7f {
            c |= TARGET;
        }
        // field-vchar / SP / HTAB / obs-text: everything but controls.
        if b == b'\t' || (b >= b' ' && b != 0x7f) {
            c |= VALUE;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// Length of the run of field-value bytes at the start of `b`, or None if
/// the whole of `b` is one (the line was cut off).
fn value_len(b: &[u8]) -> Option<usize> {
    run_len(b, b' ', is_value)
}

/// Length of the run of request-target bytes at the start of `b`, or None
/// if the whole of `b` is one.
fn target_len(b: &[u8]) -> Option<usize> {
    run_len(b, b'!', is_target)
}

/// Length of the run of bytes of `class` at the start of `b`, where every
/// byte from `lowest` up, except DEL, is in `class` and most of the rest are
/// not.
///
/// Values and targets are most of a head's bytes, so they are scanned eight
/// at a time: a word with no byte below `lowest` and no DEL is all in
/// `class`. The word that fails (usually the one holding the delimiter; a
/// HTAB in a value is the exception) is finished byte by byte.
#[inline(always)]
fn run_len(b: &[u8], lowest: u8, class: impl Fn(u8) -> bool) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    for chunk in b.chunks_exact(8) {
        let Ok(word) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let x = u64::from_le_bytes(word);
        // Bit Twiddling Hacks, "determine if a word has a byte less than n"
        // (valid for n <= 128): exact as to whether one exists, which is all
        // that is asked here.
        let below = x.wrapping_sub(ONES * u64::from(lowest)) & !x & HIGH;
        let d = x ^ (ONES * 0x7f);
        let del = d.wrapping_sub(ONES) & !d & HIGH;
        if below | del != 0 {
            break;
        }
        i += 8;
    }
    b[i..].iter().position(|&c| !class(c)).map(|n| i + n)
}

#[inline]
fn is_token(b: u8) -> bool {
    CLASS[usize::from(b)] & TOKEN != 0
}

#[inline]
fn is_target(b: u8) -> bool {
    CLASS[usize::from(b)] & TARGET != 0
}

#[inline]
fn is_value(b: u8) -> bool {
    CLASS[usize::from(b)] & VALUE != 0
}
