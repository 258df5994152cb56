//! Redis: RESP2 and RESP3 requests and replies, parsed without copying.
//!
//! **Requests** are arrays of bulk strings (`*3\r\n$3\r\nSET\r\n...`), as
//! every client library sends them, or inline commands (`PING\r\n`), as
//! telnet and health checkers send them. `request_type` is the command
//! upper-cased; for the commands that Redis itself splits into subcommands
//! (those with subcommands in Redis 7's `COMMAND` reply: ACL, CLIENT,
//! CLUSTER, COMMAND, CONFIG, FUNCTION, LATENCY, MEMORY, MODULE, OBJECT,
//! PUBSUB, SCRIPT, SLOWLOG, XGROUP, XINFO; plus SENTINEL) it is both words
//! with one space, `CLIENT SETNAME`, because `CONFIG GET` and `CONFIG SET`
//! are different operations that a span should tell apart.
//! `request_resource` is the key, found where `COMMAND` says the first key
//! is (`GET k`, `BITOP AND dest k`, `OBJECT ENCODING k`, the key after
//! `numkeys` for `EVAL`/`FCALL`/`ZUNION`..., the first stream after `STREAMS`
//! for `XREAD`), the channel for the pub/sub commands, the first argument for
//! module commands (`JSON.GET k`: module commands are named `module.cmd` and
//! take a key first), and empty otherwise. Keyless commands therefore never
//! leak an argument: no `AUTH`, `HELLO ... AUTH`, `MIGRATE ... AUTH` or
//! `CONFIG SET requirepass` secret reaches any field. Values are never kept.
//!
//! **Replies** are any RESP2 (`+ - : $ *`) or RESP3 (`_ , # ! = ( % ~ > |`,
//! and streamed strings and aggregates) value. Error replies (`-`, and `!`
//! blob errors) carry their first line in `exception` and are classed by
//! their code. DeepFlow marks every error reply a server error; Causeway
//! instead calls an error a **client error** when the request caused it
//! (`WRONGTYPE`, `NOAUTH`, `NOPERM`, `WRONGPASS`, `NOSCRIPT`, `EXECABORT`,
//! `MOVED`/`ASK` redirections, `CROSSSLOT`, ... and the `ERR` replies about
//! the request: wrong number of arguments, unknown command, syntax, values
//! out of range ...) and a **server error** for the server's state (`LOADING`,
//! `BUSY`, `MASTERDOWN`, `OOM`, `READONLY`, `MISCONF`, `TRYAGAIN`,
//! `CLUSTERDOWN`, ...) and for any code or `ERR` text not known to be the
//! request's fault, so that an unexpected error is never hidden as a caller's
//! mistake. Null replies (`$-1`, `*-1`, `_`) are `Ok`. `response_code` is
//! never set (Redis has no numeric status). Push messages (`>`) and RESP2
//! pub/sub deliveries (`message`, `pmessage`, `smessage` arrays) answer no
//! request and come back `unpaired`. `version` is `3` when a reply's type
//! exists only in RESP3, or for `HELLO 3` (and `2` for `HELLO 2`).
//!
//! **Lengths.** `message_len` is exact, so that the agent can split
//! pipelined batches at it: the whole value, nested aggregates and
//! attributes included, when it lies in the buffer; and also when the buffer
//! ends inside the *last* bulk string of a value (a `SET` with a large value,
//! a `GET` reply), because that string's header gives the end. Otherwise it
//! is `None`, and [`ends_message`] or the other side speaking ends the
//! message.
//!
//! **Cut input.** The payload is the prefix that eBPF captured, cut
//! anywhere. A command array cut after its command (and key) bulk strings
//! still gives them; an argument cut short is dropped rather than reported
//! half, because a key prefix would name a different key. A reply cut after
//! its first line still gives its status.
//!
//! **Cost and bounds.** No allocation except where a string must be made:
//! a command that is neither in the table nor already upper-case, an unknown
//! subcommand, and keys or error texts that are not UTF-8 (made lossy).
//! Nesting is limited to [`MAX_DEPTH`] and counts to `i32::MAX` (Redis's own
//! limit on a command's argument count), so garbage cannot overflow the
//! stack; every element consumes at least three bytes, so the work is linear
//! in the buffer, whatever the counts claim.

use std::borrow::Cow;
use std::cmp::Ordering;

use causeway_model::ResponseStatus;

use crate::infer::MessageKind;
use crate::{Head, ParseError};

#[cfg(test)]
mod tests;

/// Deepest nesting of aggregates accepted. Real replies nest a handful of
/// levels (`XREAD`, `COMMAND DOCS`); 32 leaves room and bounds recursion.
pub const MAX_DEPTH: usize = 32;

/// Largest aggregate count accepted: Redis rejects a command with more
/// arguments ("invalid multibulk length"), and no reply holds more elements.
const MAX_COUNT: i64 = i32::MAX as i64;

/// Arguments of a command kept while parsing: enough to reach the key of
/// every command in the table (`XREADGROUP GROUP g c COUNT n BLOCK ms NOACK
/// STREAMS key` needs 11).
const KEPT_ARGS: usize = 16;

/// Longest inline line `infer` looks at: health checks are short, and this
/// bounds the scan of a text payload that is not Redis.
const MAX_INFER_INLINE: usize = 512;

/// Whether the bytes start a Redis message, and which kind.
///
/// Strict, because it runs on every first message of an unclassified socket:
/// - `*N\r\n$L\r\n<word>...` whose elements are all bulk strings is a
///   **request** when the word is a known command (any case), a module
///   command (`json.get`) or an upper-case word, or when its bytes are cut
///   before the word ends. Any other well-formed array (first element not a
///   bulk string, or a lower-case non-command word such as a list item) is a
///   **response**. An array reply whose first element is a command name
///   (`LRANGE` of a list holding `get`) therefore reads as a request: only a
///   socket older than the agent, whose first seen message is a reply, can
///   meet this.
/// - An inline command: a known upper-case command from a short list, then a
///   space or the line end, on a whole printable line that is not an HTTP
///   request line. `QUIT`, `AUTH` and `TYPE` are left out: SMTP, FTP, POP3
///   and NNTP clients send the same lines.
/// - A reply: a type byte and a complete, well-formed first line (`+OK\r\n`,
///   `:12\r\n`, `$5\r\n`, `-ERR x\r\n`, `_\r\n` ...), with everything visible
///   after it well-formed too. Simple strings must be printable ASCII and not
///   POP3's `+OK <text>`; an error must start with an upper-case code.
///
/// MySQL, PostgreSQL, TLS and other binary frames start with a length or a
/// byte that is no RESP type, or fail the first-line check.
pub fn infer(payload: &[u8]) -> Option<MessageKind> {
    match *payload.first()? {
        b'*' => infer_array(payload),
        b'A'..=b'Z' => is_inline_command(payload).then_some(MessageKind::Request),
        t if is_type_byte(t) => is_reply_start(payload).then_some(MessageKind::Response),
        _ => None,
    }
}

/// The head of the Redis message at the start of `payload`.
///
/// Errors: [`ParseError::Incomplete`] when the bytes end before the command
/// (requests) or before an error reply's code; [`ParseError::Mismatch`] when
/// the first byte cannot start a message of this kind;
/// [`ParseError::Invalid`] when the RESP grammar is broken, naming the part.
pub fn parse(payload: &[u8], kind: MessageKind) -> Result<Head<'_>, ParseError> {
    match kind {
        MessageKind::Request => parse_request(payload),
        MessageKind::Response => parse_response(payload),
    }
}

/// Whether a whole syscall's bytes end a message of unknown length.
///
/// True when the bytes, read from their start, are one or more complete RESP
/// values ending exactly at their end. The agent calls this for the first
/// syscall of a message whose length the head could not tell (then the value
/// is incomplete and this is false) and for the syscalls that continue it.
/// A continuation that starts inside a value does not parse and gives false,
/// so the message then ends when the other side speaks: a missed end costs a
/// little latency, a wrong one would split a message. Both kinds are read
/// alike: a request continued at an element boundary is a run of bulk
/// strings.
pub fn ends_message(payload: &[u8], _kind: MessageKind) -> bool {
    let mut pos = 0;
    while pos < payload.len() {
        match scan(payload, pos, 0) {
            Ok(Scan::Done(end)) => pos = end,
            _ => return false,
        }
    }
    pos > 0
}

// --- the RESP grammar --------------------------------------------------------

/// How far one value reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// The value ends just before this offset.
    Done(usize),
    /// The buffer ends inside the value; the offset where the value will end
    /// when the buffer stops inside its last bulk string, whose header told.
    Cut(Option<u64>),
}

/// Every byte that starts a RESP2 or RESP3 value.
fn is_type_byte(b: u8) -> bool {
    matches!(
        b,
        b'+' | b'-'
            | b':'
            | b'$'
            | b'*'
            | b'_'
            | b','
            | b'#'
            | b'!'
            | b'='
            | b'('
            | b'%'
            | b'~'
            | b'>'
            | b'|'
    )
}

/// The types that exist only in RESP3.
fn is_resp3_type(b: u8) -> bool {
    matches!(
        b,
        b'_' | b',' | b'#' | b'!' | b'=' | b'(' | b'%' | b'~' | b'>' | b'|'
    )
}

/// A CRLF-terminated decimal integer starting at `pos`, as Redis writes it:
/// optional `-`, no `+`, no leading zeros, no `-0`, within `i64`. Returns the
/// value and the offset after the CRLF, or None when the buffer ends first.
fn int_line(
    buf: &[u8],
    pos: usize,
    what: &'static str,
) -> Result<Option<(i64, usize)>, &'static str> {
    let rest = buf.get(pos..).unwrap_or_default();
    let neg = rest.first() == Some(&b'-');
    let start = usize::from(neg);
    // `i64::MIN` has no positive twin: count in u64 up to the bound.
    let limit = if neg {
        i64::MIN.unsigned_abs()
    } else {
        i64::MAX as u64
    };
    let mut magnitude: u64 = 0;
    let mut i = start;
    loop {
        match rest.get(i) {
            None => return Ok(None),
            Some(&d) if d.is_ascii_digit() => {
                if i > start && rest[start] == b'0' {
                    return Err(what);
                }
                // The bound also limits the loop to 19 digits.
                magnitude = magnitude
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(u64::from(d - b'0')))
                    .filter(|&v| v <= limit)
                    .ok_or(what)?;
                i += 1;
            }
            Some(b'\r') if i > start => match rest.get(i + 1) {
                None => return Ok(None),
                Some(b'\n') => break,
                Some(_) => return Err(what),
            },
            Some(_) => return Err(what),
        }
    }
    let value = match (neg, magnitude) {
        (true, 0) => return Err(what),
        // In range by `limit`.
        (true, m) => 0i64.wrapping_sub_unsigned(m),
        (false, m) => m as i64,
    };
    Ok(Some((value, pos + i + 2)))
}

/// A line of text starting at `pos`: the offset of its CR and the offset
/// after its CRLF, or None when the buffer ends first. RESP lines hold no CR
/// or LF of their own.
fn text_line(buf: &[u8], pos: usize) -> Result<Option<(usize, usize)>, &'static str> {
    let rest = buf.get(pos..).unwrap_or_default();
    match rest.iter().position(|&b| b == b'\r' || b == b'\n') {
        None => Ok(None),
        Some(i) if rest[i] == b'\n' => Err("line ending"),
        Some(i) => match rest.get(i + 1) {
            None => Ok(None),
            Some(b'\n') => Ok(Some((pos + i, pos + i + 2))),
            Some(_) => Err("line ending"),
        },
    }
}

/// Exactly `lit` at `pos`.
fn fixed(buf: &[u8], pos: usize, lit: &[u8], what: &'static str) -> Result<Scan, &'static str> {
    let rest = buf.get(pos..).unwrap_or_default();
    if rest.len() >= lit.len() {
        if &rest[..lit.len()] == lit {
            Ok(Scan::Done(pos + lit.len()))
        } else {
            Err(what)
        }
    } else if lit.starts_with(rest) {
        Ok(Scan::Cut(None))
    } else {
        Err(what)
    }
}

/// The CRLF that ends a string whose data ends at `end`.
fn string_end(buf: &[u8], end: u64) -> Result<Scan, &'static str> {
    let have = buf.len() as u64;
    if have >= end + 2 {
        // In range: `end + 2 <= buf.len()`.
        let e = end as usize;
        if &buf[e..e + 2] == b"\r\n" {
            Ok(Scan::Done(e + 2))
        } else {
            Err("string end")
        }
    } else if have == end + 1 && buf[end as usize] != b'\r' {
        Err("string end")
    } else {
        Ok(Scan::Cut(Some(end + 2)))
    }
}

/// How far the value at `pos` reaches. `depth` counts enclosing aggregates.
fn scan(buf: &[u8], mut pos: usize, depth: usize) -> Result<Scan, &'static str> {
    if depth > MAX_DEPTH {
        return Err("nesting depth");
    }
    loop {
        let Some(&t) = buf.get(pos) else {
            return Ok(Scan::Cut(None));
        };
        let at = pos + 1;
        return match t {
            b'+' | b'-' => {
                Ok(text_line(buf, at)?.map_or(Scan::Cut(None), |(_, next)| Scan::Done(next)))
            }
            b':' => {
                Ok(int_line(buf, at, "integer")?.map_or(Scan::Cut(None), |(_, n)| Scan::Done(n)))
            }
            b'_' => fixed(buf, at, b"\r\n", "null"),
            b'#' => match buf.get(at) {
                None => Ok(Scan::Cut(None)),
                Some(b't' | b'f') => fixed(buf, at + 1, b"\r\n", "boolean"),
                Some(_) => Err("boolean"),
            },
            b',' => match text_line(buf, at)? {
                Some((cr, next)) if is_double(&buf[at..cr]) => Ok(Scan::Done(next)),
                Some(_) => Err("double"),
                None if could_be_double(&buf[at..]) => Ok(Scan::Cut(None)),
                None => Err("double"),
            },
            b'(' => match text_line(buf, at)? {
                Some((cr, next)) if is_big_number(&buf[at..cr]) => Ok(Scan::Done(next)),
                Some(_) => Err("big number"),
                None if could_be_big_number(&buf[at..]) => Ok(Scan::Cut(None)),
                None => Err("big number"),
            },
            b'$' | b'!' | b'=' => string(buf, t, at),
            b'*' | b'~' | b'>' | b'%' => aggregate(buf, t, at, depth),
            b'|' => match aggregate(buf, b'%', at, depth)? {
                // An attribute map, then the value it describes: one message.
                Scan::Done(next) => {
                    pos = next;
                    continue;
                }
                Scan::Cut(_) => Ok(Scan::Cut(None)),
            },
            _ => Err("type byte"),
        };
    }
}

fn is_double_byte(b: u8) -> bool {
    b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E')
}

/// `1.5`, `-3e10`, `inf`, `-inf`, `nan`: RESP3's double, loosely.
fn is_double(s: &[u8]) -> bool {
    matches!(s, b"inf" | b"-inf" | b"nan")
        || (s.iter().any(u8::is_ascii_digit) && s.iter().all(|&b| is_double_byte(b)))
}

/// The start of a double line, cut by the end of the buffer.
fn could_be_double(s: &[u8]) -> bool {
    let s = s.strip_suffix(b"\r").unwrap_or(s);
    s.iter().all(|&b| is_double_byte(b))
        || [&b"inf"[..], b"-inf", b"nan"]
            .iter()
            .any(|w| w.starts_with(s))
}

fn is_big_number(s: &[u8]) -> bool {
    let digits = s.strip_prefix(b"-").unwrap_or(s);
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

fn could_be_big_number(s: &[u8]) -> bool {
    let s = s.strip_suffix(b"\r").unwrap_or(s);
    s.strip_prefix(b"-")
        .unwrap_or(s)
        .iter()
        .all(u8::is_ascii_digit)
}

/// A bulk string (`$`), blob error (`!`) or verbatim string (`=`).
fn string(buf: &[u8], t: u8, at: usize) -> Result<Scan, &'static str> {
    if t == b'$' && buf.get(at) == Some(&b'?') {
        return streamed_string(buf, at);
    }
    let Some((len, data)) = int_line(buf, at, "length")? else {
        return Ok(Scan::Cut(None));
    };
    if len < 0 {
        // `$-1` is RESP2's null bulk string; other negatives mean nothing.
        return if len == -1 && t == b'$' {
            Ok(Scan::Done(data))
        } else {
            Err("length")
        };
    }
    if t == b'=' {
        // A verbatim string starts with a three-letter format and a colon.
        if len < 4 || buf.get(data + 3).is_some_and(|&b| b != b':') {
            return Err("verbatim format");
        }
    }
    string_end(buf, data as u64 + len as u64)
}

/// `$?\r\n` then `;<len>\r\n<data>\r\n` chunks until `;0\r\n`.
fn streamed_string(buf: &[u8], at: usize) -> Result<Scan, &'static str> {
    let mut pos = match fixed(buf, at, b"?\r\n", "length")? {
        Scan::Done(next) => next,
        cut => return Ok(cut),
    };
    loop {
        match buf.get(pos) {
            None => return Ok(Scan::Cut(None)),
            Some(b';') => {}
            Some(_) => return Err("string chunk"),
        }
        let Some((len, data)) = int_line(buf, pos + 1, "string chunk")? else {
            return Ok(Scan::Cut(None));
        };
        match len {
            0 => return Ok(Scan::Done(data)),
            1.. => match string_end(buf, data as u64 + len as u64)? {
                Scan::Done(next) => pos = next,
                Scan::Cut(_) => return Ok(Scan::Cut(None)),
            },
            _ => return Err("string chunk"),
        }
    }
}

/// An array, set, push or map (`%`: twice the count in values).
fn aggregate(buf: &[u8], t: u8, at: usize, depth: usize) -> Result<Scan, &'static str> {
    if t != b'>' && buf.get(at) == Some(&b'?') {
        return streamed_aggregate(buf, at, depth);
    }
    let Some((n, mut pos)) = int_line(buf, at, "aggregate length")? else {
        return Ok(Scan::Cut(None));
    };
    if n < 0 {
        // `*-1` is RESP2's null array.
        return if n == -1 && t == b'*' {
            Ok(Scan::Done(pos))
        } else {
            Err("aggregate length")
        };
    }
    if n > MAX_COUNT {
        return Err("aggregate length");
    }
    let items = if t == b'%' { n * 2 } else { n };
    // Each element takes at least three bytes, so a huge count ends at the
    // end of the buffer, not after `items` turns.
    for i in 0..items {
        match scan(buf, pos, depth + 1)? {
            Scan::Done(next) => pos = next,
            Scan::Cut(end) => return Ok(Scan::Cut(if i + 1 == items { end } else { None })),
        }
    }
    Ok(Scan::Done(pos))
}

/// `*?\r\n` (or `~?`, `%?`) then values until `.\r\n`.
fn streamed_aggregate(buf: &[u8], at: usize, depth: usize) -> Result<Scan, &'static str> {
    let mut pos = match fixed(buf, at, b"?\r\n", "aggregate length")? {
        Scan::Done(next) => next,
        cut => return Ok(cut),
    };
    loop {
        match buf.get(pos) {
            None => return Ok(Scan::Cut(None)),
            Some(b'.') => return fixed(buf, pos + 1, b"\r\n", "end of aggregate"),
            Some(_) => match scan(buf, pos, depth + 1)? {
                Scan::Done(next) => pos = next,
                Scan::Cut(_) => return Ok(Scan::Cut(None)),
            },
        }
    }
}

// --- requests ------------------------------------------------------------------

fn parse_request(buf: &[u8]) -> Result<Head<'_>, ParseError> {
    match buf.first() {
        None => Err(ParseError::Incomplete),
        Some(b'*') => parse_array_request(buf),
        Some(_) => parse_inline(buf),
    }
}

/// One argument of a command array.
enum Bulk<'a> {
    /// Its bytes, and the offset after its CRLF.
    Whole(&'a [u8], usize),
    /// Cut by the end of the buffer; where it ends when its header told.
    Cut(Option<u64>),
}

fn bulk_arg(buf: &[u8], pos: usize) -> Result<Bulk<'_>, &'static str> {
    match buf.get(pos) {
        None => return Ok(Bulk::Cut(None)),
        Some(b'$') => {}
        // Redis answers "Protocol error: expected '$'".
        Some(_) => return Err("bulk string"),
    }
    let Some((len, data)) = int_line(buf, pos + 1, "bulk length")? else {
        return Ok(Bulk::Cut(None));
    };
    if len < 0 {
        return Err("bulk length");
    }
    Ok(match string_end(buf, data as u64 + len as u64)? {
        Scan::Done(next) => Bulk::Whole(&buf[data..next - 2], next),
        Scan::Cut(end) => Bulk::Cut(end),
    })
}

fn parse_array_request(buf: &[u8]) -> Result<Head<'_>, ParseError> {
    let (count, mut pos) = match int_line(buf, 1, "array length") {
        Err(part) => return Err(ParseError::Invalid(part)),
        Ok(None) => return Err(ParseError::Incomplete),
        Ok(Some(x)) => x,
    };
    if count <= 0 {
        // Redis reads `*0` and `*-1` as nothing to do and does not answer.
        return Ok(Head {
            message_len: Some(pos as u64),
            unpaired: true,
            ..Head::default()
        });
    }
    if count > MAX_COUNT {
        return Err(ParseError::Invalid("array length"));
    }
    let mut args: [&[u8]; KEPT_ARGS] = [&[]; KEPT_ARGS];
    let mut whole = 0;
    let mut message_len = None;
    let mut cut = false;
    // Every argument costs at least six bytes (`$0\r\n\r\n`), so a huge
    // count stops at the end of the buffer.
    for i in 0..count {
        match bulk_arg(buf, pos).map_err(ParseError::Invalid)? {
            Bulk::Whole(arg, next) => {
                if let Some(slot) = args.get_mut(whole) {
                    *slot = arg;
                    whole += 1;
                }
                pos = next;
            }
            Bulk::Cut(end) => {
                // Only the last argument's header tells where the array ends.
                if i + 1 == count {
                    message_len = end;
                }
                cut = true;
                break;
            }
        }
    }
    if !cut {
        message_len = Some(pos as u64);
    }
    if whole == 0 {
        return Err(ParseError::Incomplete);
    }
    Ok(request_head(&args[..whole], message_len))
}

/// Inline commands: one line of space-separated words, as `redis-cli` never
/// sends but telnet, `nc` and health checks do. Redis ends the line at LF
/// and drops a CR before it, and reads `"..."` and `'...'` as one argument
/// (kept raw here: escapes are not decoded).
fn parse_inline(buf: &[u8]) -> Result<Head<'_>, ParseError> {
    let (line, message_len) = match buf.iter().position(|&b| b == b'\n') {
        Some(i) => (&buf[..i], Some(i as u64 + 1)),
        None => (buf, None),
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut rest = trim_blanks(line);
    match rest.first() {
        // An empty line: Redis reads nothing and does not answer.
        None if message_len.is_some() => {
            return Ok(Head {
                message_len,
                unpaired: true,
                ..Head::default()
            })
        }
        None => return Err(ParseError::Incomplete),
        Some(b) if b.is_ascii_alphabetic() => {}
        Some(_) => return Err(ParseError::Mismatch),
    }
    if line.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(ParseError::Invalid("inline command"));
    }
    let mut args: [&[u8]; KEPT_ARGS] = [&[]; KEPT_ARGS];
    let mut n = 0;
    while n < KEPT_ARGS && !rest.is_empty() {
        let Some((arg, after)) = inline_token(rest) else {
            break;
        };
        // The last word of a cut line may be cut too.
        if message_len.is_none() && after.is_empty() {
            break;
        }
        args[n] = arg;
        n += 1;
        rest = trim_blanks(after);
    }
    if n == 0 {
        return Err(ParseError::Incomplete);
    }
    Ok(request_head(&args[..n], message_len))
}

fn trim_blanks(s: &[u8]) -> &[u8] {
    let i = s
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(s.len());
    &s[i..]
}

/// The word at the start of `s` and what follows it; None for an
/// unbalanced quote (Redis answers a protocol error; the buffer may be cut).
fn inline_token(s: &[u8]) -> Option<(&[u8], &[u8])> {
    match s.first() {
        Some(&q @ (b'"' | b'\'')) => {
            let mut i = 1;
            while let Some(&b) = s.get(i) {
                if b == b'\\' {
                    i += 2;
                } else if b == q {
                    let after = &s[i + 1..];
                    // Redis wants a blank or the end after a closing quote.
                    return match after.first() {
                        None | Some(b' ' | b'\t') => Some((&s[1..i], after)),
                        Some(_) => None,
                    };
                } else {
                    i += 1;
                }
            }
            None
        }
        _ => {
            let end = s
                .iter()
                .position(|&b| b == b' ' || b == b'\t')
                .unwrap_or(s.len());
            Some(s.split_at(end))
        }
    }
}

/// The facts of a command from its first arguments (those read whole).
fn request_head<'a>(args: &[&'a [u8]], message_len: Option<u64>) -> Head<'a> {
    let (request_type, key) = command(args);
    let version = match (request_type.as_ref(), args.get(1).copied()) {
        ("HELLO", Some(b"3")) => "3",
        ("HELLO", Some(b"2")) => "2",
        _ => "",
    };
    Head {
        version: Cow::Borrowed(version),
        request_type,
        request_resource: key_of(key, args)
            .map(String::from_utf8_lossy)
            .unwrap_or_default(),
        message_len,
        ..Head::default()
    }
}

/// The command's name and where its key is.
fn command<'a>(args: &[&'a [u8]]) -> (Cow<'a, str>, Key) {
    let Some(&name) = args.first() else {
        return (Cow::Borrowed(""), Key::None);
    };
    let Some(c) = lookup(COMMANDS, name, 0) else {
        // Module commands are `module.command` and take a key first; for
        // any other unknown command nothing says where a key is.
        let key = if name.contains(&b'.') {
            Key::At(1)
        } else {
            Key::None
        };
        return (upper(name), key);
    };
    let Key::Sub(subs) = c.key else {
        return (Cow::Borrowed(c.name), c.key);
    };
    match args.get(1) {
        None => (Cow::Borrowed(c.name), Key::None),
        Some(sub) => match lookup(subs, sub, c.name.len() + 1) {
            Some(s) => (Cow::Borrowed(s.name), s.key),
            // A subcommand of a later Redis version: still two words, but
            // only when it looks like one, so garbage does not make names.
            None if sub.len() <= 32
                && sub.first().is_some_and(u8::is_ascii_alphabetic)
                && sub
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
            {
                let mut s = String::with_capacity(c.name.len() + 1 + sub.len());
                s.push_str(c.name);
                s.push(' ');
                s.extend(sub.iter().map(|&b| char::from(b.to_ascii_uppercase())));
                (Cow::Owned(s), Key::None)
            }
            None => (Cow::Borrowed(c.name), Key::None),
        },
    }
}

/// A name upper-cased, borrowed when it already is.
fn upper(name: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(name) {
        Ok(s) if !s.bytes().any(|b| b.is_ascii_lowercase()) => Cow::Borrowed(s),
        _ => Cow::Owned(String::from_utf8_lossy(name).to_ascii_uppercase()),
    }
}

/// The key argument, if read whole.
fn key_of<'a>(key: Key, args: &[&'a [u8]]) -> Option<&'a [u8]> {
    match key {
        Key::None | Key::Sub(_) => None,
        Key::At(i) => args.get(usize::from(i)).copied(),
        Key::AfterNumKeys(i) => {
            let i = usize::from(i);
            let numkeys = std::str::from_utf8(args.get(i)?)
                .ok()?
                .parse::<u32>()
                .ok()?;
            if numkeys == 0 {
                return None;
            }
            args.get(i + 1).copied()
        }
        Key::AfterStreams => {
            let at = args
                .iter()
                .skip(1)
                .position(|a| a.eq_ignore_ascii_case(b"STREAMS"))?;
            args.get(at + 2).copied()
        }
    }
}

/// The table entry named `name` in any case, comparing names from byte
/// `skip` (subcommand tables hold `CONTAINER SUB` and are searched by `SUB`).
fn lookup(table: &'static [Command], name: &[u8], skip: usize) -> Option<&'static Command> {
    // No command name is this long; skip the search for garbage.
    if name.is_empty() || name.len() > 32 {
        return None;
    }
    table
        .binary_search_by(|c| cmp_upper(c.name.as_bytes().get(skip..).unwrap_or_default(), name))
        .ok()
        .map(|i| &table[i])
}

/// `table_name` against `name` upper-cased.
fn cmp_upper(table_name: &[u8], name: &[u8]) -> Ordering {
    table_name
        .iter()
        .copied()
        .cmp(name.iter().map(u8::to_ascii_uppercase))
}

// --- replies ---------------------------------------------------------------------

fn parse_response(buf: &[u8]) -> Result<Head<'_>, ParseError> {
    let Some(&first) = buf.first() else {
        return Err(ParseError::Incomplete);
    };
    if !is_type_byte(first) {
        return Err(ParseError::Mismatch);
    }
    let message_len = match scan(buf, 0, 0).map_err(ParseError::Invalid)? {
        Scan::Done(end) => Some(end as u64),
        Scan::Cut(end) => end,
    };
    let mut head = Head {
        message_len,
        response_status: Some(ResponseStatus::Ok),
        ..Head::default()
    };
    if is_resp3_type(first) {
        head.version = Cow::Borrowed("3");
    }
    // The reply proper follows any attributes.
    let Some(at) = skip_attributes(buf) else {
        // Cut inside the attributes: the bytes do not tell the outcome.
        head.response_status = None;
        return Ok(head);
    };
    match buf[at] {
        b'-' => {
            let text = line_text(&buf[at + 1..]);
            error_head(&mut head, text, at + 1 + text.len() < buf.len())?;
        }
        b'!' => {
            // `!<len>\r\n<code> <text>\r\n`; `scan` checked the length line.
            let data = match int_line(buf, at + 1, "length") {
                Ok(Some((_, data))) => data,
                _ => return Err(ParseError::Incomplete),
            };
            let text = line_text(&buf[data..]);
            error_head(&mut head, text, data + text.len() < buf.len())?;
        }
        b'>' => head.unpaired = true,
        b'*' if is_pubsub_delivery(&buf[at..]) => head.unpaired = true,
        _ => {}
    }
    Ok(head)
}

/// Where the value after the attributes starts, if in the buffer.
fn skip_attributes(buf: &[u8]) -> Option<usize> {
    let mut pos = 0;
    while buf.get(pos) == Some(&b'|') {
        match aggregate(buf, b'%', pos + 1, 0).ok()? {
            Scan::Done(next) => pos = next,
            Scan::Cut(_) => return None,
        }
    }
    (pos < buf.len()).then_some(pos)
}

/// The first line of `s`, or all of it when the buffer ends first.
fn line_text(s: &[u8]) -> &[u8] {
    let end = s
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(s.len());
    &s[..end]
}

/// Fills in an error reply. `whole` says the line ended in the buffer; a
/// cut line still tells the class once its code is complete.
fn error_head<'a>(head: &mut Head<'a>, text: &'a [u8], whole: bool) -> Result<(), ParseError> {
    let code_end = text.iter().position(|&b| b == b' ');
    if code_end.is_none() && !whole {
        return Err(ParseError::Incomplete);
    }
    let (code, rest) = text.split_at(code_end.unwrap_or(text.len()));
    head.response_status = Some(error_status(code, rest.get(1..).unwrap_or_default()));
    head.exception = String::from_utf8_lossy(text);
    Ok(())
}

/// RESP2 pub/sub deliveries: pushed to a subscriber, answering no request.
fn is_pubsub_delivery(v: &[u8]) -> bool {
    v.starts_with(b"*3\r\n$7\r\nmessage\r\n")
        || v.starts_with(b"*4\r\n$8\r\npmessage\r\n")
        || v.starts_with(b"*3\r\n$8\r\nsmessage\r\n")
}

/// The class of an error reply from its code and text (see the module doc).
fn error_status(code: &[u8], text: &[u8]) -> ResponseStatus {
    match code {
        // What the request did wrong: its type, its rights, its script, its
        // transaction, its slot.
        b"WRONGTYPE" | b"NOAUTH" | b"NOPERM" | b"WRONGPASS" | b"NOSCRIPT" | b"NOGROUP"
        | b"BUSYGROUP" | b"BUSYKEY" | b"EXECABORT" | b"NOPROTO" | b"CROSSSLOT" | b"MOVED"
        | b"ASK" | b"NOTBUSY" => ResponseStatus::ClientError,
        b"ERR"
            if ERR_CLIENT_PREFIXES
                .iter()
                .any(|p| text.len() >= p.len() && text[..p.len()].eq_ignore_ascii_case(p)) =>
        {
            ResponseStatus::ClientError
        }
        // LOADING, BUSY, MASTERDOWN, OOM, READONLY, MISCONF, NOREPLICAS,
        // TRYAGAIN, CLUSTERDOWN, UNKILLABLE, the other ERR texts, and codes
        // not known here.
        _ => ResponseStatus::ServerError,
    }
}

/// How the `ERR` texts about the request begin (Redis 7's replies, compared
/// without case): arity, unknown command or option, syntax, values that do
/// not parse or are out of range, misuse of MULTI, AUTH without a password
/// set, malformed protocol, and errors raised by the caller's own script.
const ERR_CLIENT_PREFIXES: &[&[u8]] = &[
    b"wrong number of arguments",
    b"unknown ",
    b"syntax error",
    b"invalid ",
    b"value is ",
    b"hash value is ",
    b"bit ",
    b"timeout is ",
    b"min or max ",
    b"offset is out of range",
    b"index out of range",
    b"db index is out of range",
    b"no such key",
    b"increment or decrement would overflow",
    b"string exceeds maximum",
    b"resulting score is not a number",
    b"the id specified in xadd",
    b"number of keys",
    b"numkeys",
    b"exec without multi",
    b"discard without multi",
    b"multi calls can not be nested",
    b"watch inside multi",
    b"command not allowed inside a transaction",
    b"auth <password> called without",
    b"client sent auth",
    b"protocol error",
    b"error compiling script",
    b"user_script",
];

// --- inference -------------------------------------------------------------------

fn infer_array(p: &[u8]) -> Option<MessageKind> {
    let (n, next) = int_line(p, 1, "").ok()??;
    if n <= 0 {
        // `*0` and `*-1` are empty and null array replies.
        return (n >= -1).then_some(MessageKind::Response);
    }
    if p.get(next) == Some(&b'$') {
        match bulk_arg(p, next) {
            // A request as far as the bytes go.
            Ok(Bulk::Cut(_)) => return Some(MessageKind::Request),
            Ok(Bulk::Whole(word, _)) if is_command_word(word) => {
                return parse_array_request(p)
                    .is_ok()
                    .then_some(MessageKind::Request);
            }
            _ => {}
        }
    }
    // A next byte is needed: `*3\r\n` alone is too little to call Redis.
    (p.len() > next && scan(p, 0, 0).is_ok()).then_some(MessageKind::Response)
}

/// A command a client could send as the first bulk string of an array.
fn is_command_word(w: &[u8]) -> bool {
    if lookup(COMMANDS, w, 0).is_some() {
        return true;
    }
    let Some(first) = w.first() else {
        return false;
    };
    // Module commands (`json.get`) come in any case; other unknown ones are
    // taken for commands only in upper case, as a reply's words rarely are.
    let module = w.contains(&b'.');
    first.is_ascii_alphabetic()
        && w.len() <= 32
        && w.iter().all(|&b| match b {
            b'0'..=b'9' | b'_' | b'-' => true,
            b'A'..=b'Z' => true,
            b'a'..=b'z' | b'.' => module,
            _ => false,
        })
}

/// Commands a person or health check sends inline (see [`infer`]).
const INLINE_WORDS: &[&[u8]] = &[
    b"CLIENT",
    b"CLUSTER",
    b"COMMAND",
    b"CONFIG",
    b"DBSIZE",
    b"DEL",
    b"ECHO",
    b"EXISTS",
    b"FLUSHALL",
    b"FLUSHDB",
    b"GET",
    b"HELLO",
    b"INCR",
    b"INFO",
    b"KEYS",
    b"LASTSAVE",
    b"MONITOR",
    b"PING",
    b"PUBLISH",
    b"ROLE",
    b"SELECT",
    b"SENTINEL",
    b"SET",
    b"SLOWLOG",
    b"SUBSCRIBE",
    b"TIME",
];

fn is_inline_command(p: &[u8]) -> bool {
    let window = &p[..p.len().min(MAX_INFER_INLINE)];
    let Some(nl) = window.iter().position(|&b| b == b'\n') else {
        return false;
    };
    let line = &window[..nl];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let word_end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    INLINE_WORDS.contains(&&line[..word_end])
        && line.iter().all(|&b| (0x20..0x7f).contains(&b) || b == b'\t')
        // `GET / HTTP/1.1` and HTTP/0.9's `GET /path` are HTTP's.
        && !line.windows(6).any(|w| w == b" HTTP/")
        && line.get(word_end + 1) != Some(&b'/')
}

/// A reply's first line is complete and well-formed, and what follows too.
fn is_reply_start(p: &[u8]) -> bool {
    let first_line_ok = match p[0] {
        b'+' => match text_line(p, 1) {
            Ok(Some((cr, _))) => {
                let s = &p[1..cr];
                // POP3 greets with `+OK <text>`; Redis says `+OK` alone.
                !s.is_empty()
                    && s.iter().all(|&b| (0x20..0x7f).contains(&b))
                    && !s.starts_with(b"OK ")
            }
            _ => false,
        },
        b'-' => match text_line(p, 1) {
            Ok(Some((cr, _))) => {
                let s = &p[1..cr];
                let code = s.iter().position(|&b| b == b' ').map_or(s, |i| &s[..i]);
                code.len() >= 2
                    && code.iter().all(u8::is_ascii_uppercase)
                    && s.iter().all(|&b| b >= 0x20 && b != 0x7f)
            }
            _ => false,
        },
        // Numbers and lengths: `scan` checks them; they must end in the buffer.
        _ => match p[0] {
            b'_' | b'#' | b',' | b'(' => text_line(p, 1).is_ok_and(|l| l.is_some()),
            _ => int_line(p, 1, "").is_ok_and(|l| l.is_some()) || p.get(1) == Some(&b'?'),
        },
    };
    first_line_ok && scan(p, 0, 0).is_ok()
}

// --- the command table -------------------------------------------------------------

/// Where a command's key is.
#[derive(Debug, Clone, Copy)]
enum Key {
    /// No key (or none worth a span: `AUTH`, `PING`, `CONFIG SET`).
    None,
    /// The argument at this index, the command being 0.
    At(u8),
    /// After the `numkeys` argument at this index, when it is not 0.
    AfterNumKeys(u8),
    /// The first stream after the `STREAMS` token.
    AfterStreams,
    /// A container: the second word names the command.
    Sub(&'static [Command]),
}

/// One command of the table.
#[derive(Debug)]
struct Command {
    /// Upper-case, `CONTAINER SUB` for subcommands.
    name: &'static str,
    key: Key,
}

const fn cmd(name: &'static str, key: Key) -> Command {
    Command { name, key }
}

/// Every command of Redis 7.0's `COMMAND` reply, sorted by name, with where
/// its first key is; plus the commands of Redis 7.2 to 8.0 with a key first,
/// `WAITAOF`, and Sentinel's. Printed by
/// `tests/fixtures/redis/record.py --command-table`.
#[rustfmt::skip]
static COMMANDS: &[Command] = &[
    cmd("ACL", Key::Sub(&[
        cmd("ACL CAT", Key::None),
        cmd("ACL DELUSER", Key::None),
        cmd("ACL DRYRUN", Key::None),
        cmd("ACL GENPASS", Key::None),
        cmd("ACL GETUSER", Key::None),
        cmd("ACL HELP", Key::None),
        cmd("ACL LIST", Key::None),
        cmd("ACL LOAD", Key::None),
        cmd("ACL LOG", Key::None),
        cmd("ACL SAVE", Key::None),
        cmd("ACL SETUSER", Key::None),
        cmd("ACL USERS", Key::None),
        cmd("ACL WHOAMI", Key::None),
    ])),
    cmd("APPEND", Key::At(1)),
    cmd("ASKING", Key::None),
    cmd("AUTH", Key::None),
    cmd("BGREWRITEAOF", Key::None),
    cmd("BGSAVE", Key::None),
    cmd("BITCOUNT", Key::At(1)),
    cmd("BITFIELD", Key::At(1)),
    cmd("BITFIELD_RO", Key::At(1)),
    cmd("BITOP", Key::At(2)),
    cmd("BITPOS", Key::At(1)),
    cmd("BLMOVE", Key::At(1)),
    cmd("BLMPOP", Key::AfterNumKeys(2)),
    cmd("BLPOP", Key::At(1)),
    cmd("BRPOP", Key::At(1)),
    cmd("BRPOPLPUSH", Key::At(1)),
    cmd("BZMPOP", Key::AfterNumKeys(2)),
    cmd("BZPOPMAX", Key::At(1)),
    cmd("BZPOPMIN", Key::At(1)),
    cmd("CLIENT", Key::Sub(&[
        cmd("CLIENT CACHING", Key::None),
        cmd("CLIENT GETNAME", Key::None),
        cmd("CLIENT GETREDIR", Key::None),
        cmd("CLIENT HELP", Key::None),
        cmd("CLIENT ID", Key::None),
        cmd("CLIENT INFO", Key::None),
        cmd("CLIENT KILL", Key::None),
        cmd("CLIENT LIST", Key::None),
        cmd("CLIENT NO-EVICT", Key::None),
        cmd("CLIENT NO-TOUCH", Key::None),
        cmd("CLIENT PAUSE", Key::None),
        cmd("CLIENT REPLY", Key::None),
        cmd("CLIENT SETINFO", Key::None),
        cmd("CLIENT SETNAME", Key::None),
        cmd("CLIENT TRACKING", Key::None),
        cmd("CLIENT TRACKINGINFO", Key::None),
        cmd("CLIENT UNBLOCK", Key::None),
        cmd("CLIENT UNPAUSE", Key::None),
    ])),
    cmd("CLUSTER", Key::Sub(&[
        cmd("CLUSTER ADDSLOTS", Key::None),
        cmd("CLUSTER ADDSLOTSRANGE", Key::None),
        cmd("CLUSTER BUMPEPOCH", Key::None),
        cmd("CLUSTER COUNT-FAILURE-REPORTS", Key::None),
        cmd("CLUSTER COUNTKEYSINSLOT", Key::None),
        cmd("CLUSTER DELSLOTS", Key::None),
        cmd("CLUSTER DELSLOTSRANGE", Key::None),
        cmd("CLUSTER FAILOVER", Key::None),
        cmd("CLUSTER FLUSHSLOTS", Key::None),
        cmd("CLUSTER FORGET", Key::None),
        cmd("CLUSTER GETKEYSINSLOT", Key::None),
        cmd("CLUSTER HELP", Key::None),
        cmd("CLUSTER INFO", Key::None),
        cmd("CLUSTER KEYSLOT", Key::None),
        cmd("CLUSTER LINKS", Key::None),
        cmd("CLUSTER MEET", Key::None),
        cmd("CLUSTER MYID", Key::None),
        cmd("CLUSTER MYSHARDID", Key::None),
        cmd("CLUSTER NODES", Key::None),
        cmd("CLUSTER REPLICAS", Key::None),
        cmd("CLUSTER REPLICATE", Key::None),
        cmd("CLUSTER RESET", Key::None),
        cmd("CLUSTER SAVECONFIG", Key::None),
        cmd("CLUSTER SET-CONFIG-EPOCH", Key::None),
        cmd("CLUSTER SETSLOT", Key::None),
        cmd("CLUSTER SHARDS", Key::None),
        cmd("CLUSTER SLAVES", Key::None),
        cmd("CLUSTER SLOTS", Key::None),
    ])),
    cmd("COMMAND", Key::Sub(&[
        cmd("COMMAND COUNT", Key::None),
        cmd("COMMAND DOCS", Key::None),
        cmd("COMMAND GETKEYS", Key::None),
        cmd("COMMAND GETKEYSANDFLAGS", Key::None),
        cmd("COMMAND HELP", Key::None),
        cmd("COMMAND INFO", Key::None),
        cmd("COMMAND LIST", Key::None),
    ])),
    cmd("CONFIG", Key::Sub(&[
        cmd("CONFIG GET", Key::None),
        cmd("CONFIG HELP", Key::None),
        cmd("CONFIG RESETSTAT", Key::None),
        cmd("CONFIG REWRITE", Key::None),
        cmd("CONFIG SET", Key::None),
    ])),
    cmd("COPY", Key::At(1)),
    cmd("DBSIZE", Key::None),
    cmd("DEBUG", Key::None),
    cmd("DECR", Key::At(1)),
    cmd("DECRBY", Key::At(1)),
    cmd("DEL", Key::At(1)),
    cmd("DISCARD", Key::None),
    cmd("DUMP", Key::At(1)),
    cmd("ECHO", Key::None),
    cmd("EVAL", Key::AfterNumKeys(2)),
    cmd("EVALSHA", Key::AfterNumKeys(2)),
    cmd("EVALSHA_RO", Key::AfterNumKeys(2)),
    cmd("EVAL_RO", Key::AfterNumKeys(2)),
    cmd("EXEC", Key::None),
    cmd("EXISTS", Key::At(1)),
    cmd("EXPIRE", Key::At(1)),
    cmd("EXPIREAT", Key::At(1)),
    cmd("EXPIRETIME", Key::At(1)),
    cmd("FAILOVER", Key::None),
    cmd("FCALL", Key::AfterNumKeys(2)),
    cmd("FCALL_RO", Key::AfterNumKeys(2)),
    cmd("FLUSHALL", Key::None),
    cmd("FLUSHDB", Key::None),
    cmd("FUNCTION", Key::Sub(&[
        cmd("FUNCTION DELETE", Key::None),
        cmd("FUNCTION DUMP", Key::None),
        cmd("FUNCTION FLUSH", Key::None),
        cmd("FUNCTION HELP", Key::None),
        cmd("FUNCTION KILL", Key::None),
        cmd("FUNCTION LIST", Key::None),
        cmd("FUNCTION LOAD", Key::None),
        cmd("FUNCTION RESTORE", Key::None),
        cmd("FUNCTION STATS", Key::None),
    ])),
    cmd("GEOADD", Key::At(1)),
    cmd("GEODIST", Key::At(1)),
    cmd("GEOHASH", Key::At(1)),
    cmd("GEOPOS", Key::At(1)),
    cmd("GEORADIUS", Key::At(1)),
    cmd("GEORADIUSBYMEMBER", Key::At(1)),
    cmd("GEORADIUSBYMEMBER_RO", Key::At(1)),
    cmd("GEORADIUS_RO", Key::At(1)),
    cmd("GEOSEARCH", Key::At(1)),
    cmd("GEOSEARCHSTORE", Key::At(1)),
    cmd("GET", Key::At(1)),
    cmd("GETBIT", Key::At(1)),
    cmd("GETDEL", Key::At(1)),
    cmd("GETEX", Key::At(1)),
    cmd("GETRANGE", Key::At(1)),
    cmd("GETSET", Key::At(1)),
    cmd("HDEL", Key::At(1)),
    cmd("HELLO", Key::None),
    cmd("HEXISTS", Key::At(1)),
    cmd("HEXPIRE", Key::At(1)),
    cmd("HEXPIREAT", Key::At(1)),
    cmd("HEXPIRETIME", Key::At(1)),
    cmd("HGET", Key::At(1)),
    cmd("HGETALL", Key::At(1)),
    cmd("HGETDEL", Key::At(1)),
    cmd("HGETEX", Key::At(1)),
    cmd("HINCRBY", Key::At(1)),
    cmd("HINCRBYFLOAT", Key::At(1)),
    cmd("HKEYS", Key::At(1)),
    cmd("HLEN", Key::At(1)),
    cmd("HMGET", Key::At(1)),
    cmd("HMSET", Key::At(1)),
    cmd("HPERSIST", Key::At(1)),
    cmd("HPEXPIRE", Key::At(1)),
    cmd("HPEXPIREAT", Key::At(1)),
    cmd("HPEXPIRETIME", Key::At(1)),
    cmd("HPTTL", Key::At(1)),
    cmd("HRANDFIELD", Key::At(1)),
    cmd("HSCAN", Key::At(1)),
    cmd("HSET", Key::At(1)),
    cmd("HSETEX", Key::At(1)),
    cmd("HSETNX", Key::At(1)),
    cmd("HSTRLEN", Key::At(1)),
    cmd("HTTL", Key::At(1)),
    cmd("HVALS", Key::At(1)),
    cmd("INCR", Key::At(1)),
    cmd("INCRBY", Key::At(1)),
    cmd("INCRBYFLOAT", Key::At(1)),
    cmd("INFO", Key::None),
    cmd("KEYS", Key::None),
    cmd("LASTSAVE", Key::None),
    cmd("LATENCY", Key::Sub(&[
        cmd("LATENCY DOCTOR", Key::None),
        cmd("LATENCY GRAPH", Key::None),
        cmd("LATENCY HELP", Key::None),
        cmd("LATENCY HISTOGRAM", Key::None),
        cmd("LATENCY HISTORY", Key::None),
        cmd("LATENCY LATEST", Key::None),
        cmd("LATENCY RESET", Key::None),
    ])),
    cmd("LCS", Key::At(1)),
    cmd("LINDEX", Key::At(1)),
    cmd("LINSERT", Key::At(1)),
    cmd("LLEN", Key::At(1)),
    cmd("LMOVE", Key::At(1)),
    cmd("LMPOP", Key::AfterNumKeys(1)),
    cmd("LOLWUT", Key::None),
    cmd("LPOP", Key::At(1)),
    cmd("LPOS", Key::At(1)),
    cmd("LPUSH", Key::At(1)),
    cmd("LPUSHX", Key::At(1)),
    cmd("LRANGE", Key::At(1)),
    cmd("LREM", Key::At(1)),
    cmd("LSET", Key::At(1)),
    cmd("LTRIM", Key::At(1)),
    cmd("MEMORY", Key::Sub(&[
        cmd("MEMORY DOCTOR", Key::None),
        cmd("MEMORY HELP", Key::None),
        cmd("MEMORY MALLOC-STATS", Key::None),
        cmd("MEMORY PURGE", Key::None),
        cmd("MEMORY STATS", Key::None),
        cmd("MEMORY USAGE", Key::At(2)),
    ])),
    cmd("MGET", Key::At(1)),
    cmd("MIGRATE", Key::At(3)),
    cmd("MODULE", Key::Sub(&[
        cmd("MODULE HELP", Key::None),
        cmd("MODULE LIST", Key::None),
        cmd("MODULE LOAD", Key::None),
        cmd("MODULE LOADEX", Key::None),
        cmd("MODULE UNLOAD", Key::None),
    ])),
    cmd("MONITOR", Key::None),
    cmd("MOVE", Key::At(1)),
    cmd("MSET", Key::At(1)),
    cmd("MSETNX", Key::At(1)),
    cmd("MULTI", Key::None),
    cmd("OBJECT", Key::Sub(&[
        cmd("OBJECT ENCODING", Key::At(2)),
        cmd("OBJECT FREQ", Key::At(2)),
        cmd("OBJECT HELP", Key::None),
        cmd("OBJECT IDLETIME", Key::At(2)),
        cmd("OBJECT REFCOUNT", Key::At(2)),
    ])),
    cmd("PERSIST", Key::At(1)),
    cmd("PEXPIRE", Key::At(1)),
    cmd("PEXPIREAT", Key::At(1)),
    cmd("PEXPIRETIME", Key::At(1)),
    cmd("PFADD", Key::At(1)),
    cmd("PFCOUNT", Key::At(1)),
    cmd("PFDEBUG", Key::At(2)),
    cmd("PFMERGE", Key::At(1)),
    cmd("PFSELFTEST", Key::None),
    cmd("PING", Key::None),
    cmd("PSETEX", Key::At(1)),
    cmd("PSUBSCRIBE", Key::At(1)),
    cmd("PSYNC", Key::None),
    cmd("PTTL", Key::At(1)),
    cmd("PUBLISH", Key::At(1)),
    cmd("PUBSUB", Key::Sub(&[
        cmd("PUBSUB CHANNELS", Key::None),
        cmd("PUBSUB HELP", Key::None),
        cmd("PUBSUB NUMPAT", Key::None),
        cmd("PUBSUB NUMSUB", Key::None),
        cmd("PUBSUB SHARDCHANNELS", Key::None),
        cmd("PUBSUB SHARDNUMSUB", Key::None),
    ])),
    cmd("PUNSUBSCRIBE", Key::At(1)),
    cmd("QUIT", Key::None),
    cmd("RANDOMKEY", Key::None),
    cmd("READONLY", Key::None),
    cmd("READWRITE", Key::None),
    cmd("RENAME", Key::At(1)),
    cmd("RENAMENX", Key::At(1)),
    cmd("REPLCONF", Key::None),
    cmd("REPLICAOF", Key::None),
    cmd("RESET", Key::None),
    cmd("RESTORE", Key::At(1)),
    cmd("RESTORE-ASKING", Key::At(1)),
    cmd("ROLE", Key::None),
    cmd("RPOP", Key::At(1)),
    cmd("RPOPLPUSH", Key::At(1)),
    cmd("RPUSH", Key::At(1)),
    cmd("RPUSHX", Key::At(1)),
    cmd("SADD", Key::At(1)),
    cmd("SAVE", Key::None),
    cmd("SCAN", Key::None),
    cmd("SCARD", Key::At(1)),
    cmd("SCRIPT", Key::Sub(&[
        cmd("SCRIPT DEBUG", Key::None),
        cmd("SCRIPT EXISTS", Key::None),
        cmd("SCRIPT FLUSH", Key::None),
        cmd("SCRIPT HELP", Key::None),
        cmd("SCRIPT KILL", Key::None),
        cmd("SCRIPT LOAD", Key::None),
    ])),
    cmd("SDIFF", Key::At(1)),
    cmd("SDIFFSTORE", Key::At(1)),
    cmd("SELECT", Key::None),
    cmd("SENTINEL", Key::Sub(&[
        cmd("SENTINEL CKQUORUM", Key::None),
        cmd("SENTINEL CONFIG", Key::None),
        cmd("SENTINEL DEBUG", Key::None),
        cmd("SENTINEL FAILOVER", Key::None),
        cmd("SENTINEL FLUSHCONFIG", Key::None),
        cmd("SENTINEL GET-MASTER-ADDR-BY-NAME", Key::None),
        cmd("SENTINEL HELP", Key::None),
        cmd("SENTINEL INFO-CACHE", Key::None),
        cmd("SENTINEL IS-MASTER-DOWN-BY-ADDR", Key::None),
        cmd("SENTINEL MASTER", Key::None),
        cmd("SENTINEL MASTERS", Key::None),
        cmd("SENTINEL MONITOR", Key::None),
        cmd("SENTINEL MYID", Key::None),
        cmd("SENTINEL PENDING-SCRIPTS", Key::None),
        cmd("SENTINEL REMOVE", Key::None),
        cmd("SENTINEL REPLICAS", Key::None),
        cmd("SENTINEL RESET", Key::None),
        cmd("SENTINEL SENTINELS", Key::None),
        cmd("SENTINEL SET", Key::None),
        cmd("SENTINEL SIMULATE-FAILURE", Key::None),
        cmd("SENTINEL SLAVES", Key::None),
    ])),
    cmd("SET", Key::At(1)),
    cmd("SETBIT", Key::At(1)),
    cmd("SETEX", Key::At(1)),
    cmd("SETNX", Key::At(1)),
    cmd("SETRANGE", Key::At(1)),
    cmd("SHUTDOWN", Key::None),
    cmd("SINTER", Key::At(1)),
    cmd("SINTERCARD", Key::AfterNumKeys(1)),
    cmd("SINTERSTORE", Key::At(1)),
    cmd("SISMEMBER", Key::At(1)),
    cmd("SLAVEOF", Key::None),
    cmd("SLOWLOG", Key::Sub(&[
        cmd("SLOWLOG GET", Key::None),
        cmd("SLOWLOG HELP", Key::None),
        cmd("SLOWLOG LEN", Key::None),
        cmd("SLOWLOG RESET", Key::None),
    ])),
    cmd("SMEMBERS", Key::At(1)),
    cmd("SMISMEMBER", Key::At(1)),
    cmd("SMOVE", Key::At(1)),
    cmd("SORT", Key::At(1)),
    cmd("SORT_RO", Key::At(1)),
    cmd("SPOP", Key::At(1)),
    cmd("SPUBLISH", Key::At(1)),
    cmd("SRANDMEMBER", Key::At(1)),
    cmd("SREM", Key::At(1)),
    cmd("SSCAN", Key::At(1)),
    cmd("SSUBSCRIBE", Key::At(1)),
    cmd("STRLEN", Key::At(1)),
    cmd("SUBSCRIBE", Key::At(1)),
    cmd("SUBSTR", Key::At(1)),
    cmd("SUNION", Key::At(1)),
    cmd("SUNIONSTORE", Key::At(1)),
    cmd("SUNSUBSCRIBE", Key::At(1)),
    cmd("SWAPDB", Key::None),
    cmd("SYNC", Key::None),
    cmd("TIME", Key::None),
    cmd("TOUCH", Key::At(1)),
    cmd("TTL", Key::At(1)),
    cmd("TYPE", Key::At(1)),
    cmd("UNLINK", Key::At(1)),
    cmd("UNSUBSCRIBE", Key::At(1)),
    cmd("UNWATCH", Key::None),
    cmd("WAIT", Key::None),
    cmd("WAITAOF", Key::None),
    cmd("WATCH", Key::At(1)),
    cmd("XACK", Key::At(1)),
    cmd("XADD", Key::At(1)),
    cmd("XAUTOCLAIM", Key::At(1)),
    cmd("XCLAIM", Key::At(1)),
    cmd("XDEL", Key::At(1)),
    cmd("XGROUP", Key::Sub(&[
        cmd("XGROUP CREATE", Key::At(2)),
        cmd("XGROUP CREATECONSUMER", Key::At(2)),
        cmd("XGROUP DELCONSUMER", Key::At(2)),
        cmd("XGROUP DESTROY", Key::At(2)),
        cmd("XGROUP HELP", Key::None),
        cmd("XGROUP SETID", Key::At(2)),
    ])),
    cmd("XINFO", Key::Sub(&[
        cmd("XINFO CONSUMERS", Key::At(2)),
        cmd("XINFO GROUPS", Key::At(2)),
        cmd("XINFO HELP", Key::None),
        cmd("XINFO STREAM", Key::At(2)),
    ])),
    cmd("XLEN", Key::At(1)),
    cmd("XPENDING", Key::At(1)),
    cmd("XRANGE", Key::At(1)),
    cmd("XREAD", Key::AfterStreams),
    cmd("XREADGROUP", Key::AfterStreams),
    cmd("XREVRANGE", Key::At(1)),
    cmd("XSETID", Key::At(1)),
    cmd("XTRIM", Key::At(1)),
    cmd("ZADD", Key::At(1)),
    cmd("ZCARD", Key::At(1)),
    cmd("ZCOUNT", Key::At(1)),
    cmd("ZDIFF", Key::AfterNumKeys(1)),
    cmd("ZDIFFSTORE", Key::At(1)),
    cmd("ZINCRBY", Key::At(1)),
    cmd("ZINTER", Key::AfterNumKeys(1)),
    cmd("ZINTERCARD", Key::AfterNumKeys(1)),
    cmd("ZINTERSTORE", Key::At(1)),
    cmd("ZLEXCOUNT", Key::At(1)),
    cmd("ZMPOP", Key::AfterNumKeys(1)),
    cmd("ZMSCORE", Key::At(1)),
    cmd("ZPOPMAX", Key::At(1)),
    cmd("ZPOPMIN", Key::At(1)),
    cmd("ZRANDMEMBER", Key::At(1)),
    cmd("ZRANGE", Key::At(1)),
    cmd("ZRANGEBYLEX", Key::At(1)),
    cmd("ZRANGEBYSCORE", Key::At(1)),
    cmd("ZRANGESTORE", Key::At(1)),
    cmd("ZRANK", Key::At(1)),
    cmd("ZREM", Key::At(1)),
    cmd("ZREMRANGEBYLEX", Key::At(1)),
    cmd("ZREMRANGEBYRANK", Key::At(1)),
    cmd("ZREMRANGEBYSCORE", Key::At(1)),
    cmd("ZREVRANGE", Key::At(1)),
    cmd("ZREVRANGEBYLEX", Key::At(1)),
    cmd("ZREVRANGEBYSCORE", Key::At(1)),
    cmd("ZREVRANK", Key::At(1)),
    cmd("ZSCAN", Key::At(1)),
    cmd("ZSCORE", Key::At(1)),
    cmd("ZUNION", Key::AfterNumKeys(1)),
    cmd("ZUNIONSTORE", Key::At(1)),
];
