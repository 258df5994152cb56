//! Dubbo 2 protocol (the `dubbo://` exchange): requests and responses,
//! hessian2 bodies read with [`crate::hessian2`].
//!
//! Every message starts with a 16-byte header: the magic `0xdabb`, a flag
//! byte (`0x80` request, `0x40` two-way, `0x20` event, the low five bits
//! the serialization id), a status byte (responses), an 8-byte request id
//! and a 4-byte body length, all big-endian. So `message_len` is `16 +
//! body length`, exact, and pipelined messages split; `request_id` is the
//! header's id, which pairs answers that come back out of order (a client
//! sends many calls on one connection).
//!
//! **Requests** (hessian2, serialization id 2): the body is the Dubbo
//! version, the service path, the service version, the method name, the
//! parameter descriptor (`Ljava/lang/String;I`), the arguments, then the
//! attachments map. Spans get, as DeepFlow's Dubbo parser gives them,
//! `request_type` = method, `request_domain` = service path and `version`
//! = the Dubbo version the request names (`2.0.2`); `request_resource` is
//! the service path with its service version, `path:version`, as SOFARPC
//! names services (DeepFlow leaves the service version out: versions of
//! one service would fall together). Arguments are passed over, by the
//! count the descriptor gives, to reach the attachments, where a trace
//! context (`traceparent`, `b3`, `uber-trace-id`, `sw8`, the precedence
//! being HTTP's) gives `trace_id` and `span_id`; an argument beyond the
//! captured prefix leaves them unread, the rest of the head stands.
//! Other serializations (Java, Kryo, fastjson, protobuf ...) keep the
//! header's facts only: their bodies are not read, nothing is guessed.
//!
//! **Responses**: `response_code` is the status byte: 20 OK is `Ok`; 30
//! CLIENT_TIMEOUT, 40 BAD_REQUEST and 90 CLIENT_ERROR are `ClientError`; 31
//! SERVER_TIMEOUT, 50 BAD_RESPONSE, 60 SERVICE_NOT_FOUND, 70
//! SERVICE_ERROR, 80 SERVER_ERROR and 100 SERVER_THREADPOOL_EXHAUSTED are
//! `ServerError` (DeepFlow's classes); any other is `Unknown`. A response
//! that is not OK carries the error text as its body: `exception`, or the
//! status's name when the body is not readable. An OK response starts with
//! a result flag (0 exception, 1 value, 2 null, 3–5 the same with
//! attachments): an exception thrown by the service is an object whose
//! `detailMessage` makes `exception` (`class: message`, as Java prints
//! it), and the status is then `ServerError` though the code stays 20.
//!
//! **Events** (flag `0x20`): a heartbeat is an event whose data is null;
//! it is paired like a call (`request_type` `heartbeat`) by its id, as
//! DeepFlow keeps heartbeats, so a dead peer shows as heartbeat timeouts.
//! Other events (`R`, read-only) are `event`. A request without the
//! two-way flag gets no answer: it is `unpaired` (counted, no span).

use std::borrow::Cow;

use causeway_model::ResponseStatus;

use crate::hessian2::{self, Dialect, Reader};
use crate::http1::trace::Candidates as TraceCandidates;
use crate::infer::MessageKind;
use crate::{Head, ParseError};

/// The first two bytes of every message.
pub const MAGIC: [u8; 2] = [0xda, 0xbb];
/// Bytes of the header.
pub const HEADER_LEN: usize = 16;
/// Largest body accepted (Dubbo's default payload limit is 8 MiB).
pub const MAX_BODY: u32 = 64 << 20;
/// The serialization id of hessian2, the default.
pub const HESSIAN2: u8 = 2;

const FLAG_REQUEST: u8 = 0x80;
const FLAG_TWO_WAY: u8 = 0x40;
const FLAG_EVENT: u8 = 0x20;
const SERIALIZATION: u8 = 0x1f;
/// Status of an OK response.
pub const OK: u8 = 20;

/// The facts of a message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Sent by the caller.
    pub request: bool,
    /// A request that expects an answer.
    pub two_way: bool,
    /// An event (heartbeat, read-only notice) rather than a call.
    pub event: bool,
    /// The body's serialization id.
    pub serialization: u8,
    /// Responses: the status.
    pub status: u8,
    /// Pairs a response with its request.
    pub request_id: u64,
    /// Bytes of the body after the header.
    pub body_len: u32,
}

impl Header {
    /// Bytes of the whole message.
    pub fn message_len(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.body_len)
    }

    /// The kind the flag says.
    pub fn kind(&self) -> MessageKind {
        if self.request {
            MessageKind::Request
        } else {
            MessageKind::Response
        }
    }
}

/// The header at the start of `payload`.
pub fn header(payload: &[u8]) -> Result<Header, ParseError> {
    if payload.len() < HEADER_LEN {
        return if MAGIC.starts_with(&payload[..payload.len().min(2)]) {
            Err(ParseError::Incomplete)
        } else {
            Err(ParseError::Mismatch)
        };
    }
    if payload[..2] != MAGIC {
        return Err(ParseError::Mismatch);
    }
    let flag = payload[2];
    let mut id = [0; 8];
    id.copy_from_slice(&payload[4..12]);
    let body_len = u32::from_be_bytes([payload[12], payload[13], payload[14], payload[15]]);
    if body_len > MAX_BODY {
        return Err(ParseError::Invalid("body length"));
    }
    Ok(Header {
        request: flag & FLAG_REQUEST != 0,
        two_way: flag & FLAG_TWO_WAY != 0,
        event: flag & FLAG_EVENT != 0,
        serialization: flag & SERIALIZATION,
        status: payload[3],
        request_id: u64::from_be_bytes(id),
        body_len,
    })
}

/// The name of a serialization id (Dubbo's `Constants`).
pub fn serialization_name(id: u8) -> Option<&'static str> {
    Some(match id {
        2 => "hessian2",
        3 => "java",
        4 => "compactedjava",
        6 => "fastjson",
        7 => "nativejava",
        8 => "kryo",
        9 => "fst",
        10 => "native-hessian",
        11 => "avro",
        12 => "protostuff",
        16 => "gson",
        21 => "protobuf-json",
        22 => "protobuf",
        23 => "fastjson2",
        25 => "kryo2",
        31 => "msgpack",
        _ => return None,
    })
}

/// The name of a response status.
pub fn status_name(code: u8) -> Option<&'static str> {
    Some(match code {
        20 => "OK",
        30 => "CLIENT_TIMEOUT",
        31 => "SERVER_TIMEOUT",
        40 => "BAD_REQUEST",
        50 => "BAD_RESPONSE",
        60 => "SERVICE_NOT_FOUND",
        70 => "SERVICE_ERROR",
        80 => "SERVER_ERROR",
        90 => "CLIENT_ERROR",
        100 => "SERVER_THREADPOOL_EXHAUSTED_ERROR",
        _ => return None,
    })
}

/// The outcome class of a response status (DeepFlow's).
pub fn status_class(code: u8) -> ResponseStatus {
    match code {
        20 => ResponseStatus::Ok,
        30 | 40 | 90 => ResponseStatus::ClientError,
        31 | 50 | 60 | 70 | 80 | 100 => ResponseStatus::ServerError,
        _ => ResponseStatus::Unknown,
    }
}

/// Whether a hessian2 value starting with `t` is a string (any form).
fn is_string_tag(t: u8) -> bool {
    matches!(t, 0x00..=0x1f | 0x30..=0x33 | b'S' | b'R')
}

/// Whether the bytes start a Dubbo message, and which kind: the magic, a
/// known serialization, a body length in bounds, requests with status 0,
/// responses without the two-way flag and with a known status; for
/// hessian2 bodies the first body byte, when captured, must be what that
/// message starts with (a string for a call, a result flag for an OK
/// answer).
pub fn infer(payload: &[u8]) -> Option<MessageKind> {
    let h = header(payload).ok()?;
    serialization_name(h.serialization)?;
    let first = payload.get(HEADER_LEN).copied();
    let hessian = h.serialization == HESSIAN2;
    if h.request {
        if h.status != 0 || h.body_len == 0 {
            return None;
        }
        if let (true, Some(t)) = (hessian, first) {
            let ok = if h.event {
                t == b'N' || is_string_tag(t)
            } else {
                is_string_tag(t)
            };
            if !ok {
                return None;
            }
        }
        Some(MessageKind::Request)
    } else {
        if payload[2] & FLAG_TWO_WAY != 0 {
            return None;
        }
        status_name(h.status)?;
        if let (true, Some(t)) = (hessian, first) {
            // A failure's text, an event's data, or an OK call's flag.
            let ok = if h.status != OK || h.event {
                t == b'N' || is_string_tag(t)
            } else {
                (0x90..=0x95).contains(&t)
            };
            if !ok {
                return None;
            }
        }
        Some(MessageKind::Response)
    }
}

/// The kind of the message these bytes start, by the header's request
/// flag; None when they start no Dubbo header.
pub fn message_kind(payload: &[u8]) -> Option<MessageKind> {
    header(payload).ok().map(|h| h.kind())
}

/// The head of the Dubbo message at the start of `payload`.
///
/// `Incomplete` before the 16 header bytes are there, and for a header
/// alone when a body follows it (clients that read the header, then the
/// body it announces, as dubbo-python does: the caller adds the next read);
/// `Mismatch` without the magic; `Invalid` for a body length out of bounds
/// or a kind that contradicts the header's request flag. A body cut by the
/// capture cap gives what came before the cut.
pub fn parse(payload: &[u8], kind: MessageKind) -> Result<Head<'_>, ParseError> {
    let h = header(payload)?;
    if h.kind() != kind {
        return Err(ParseError::Invalid("message kind"));
    }
    if payload.len() == HEADER_LEN && h.body_len > 0 {
        return Err(ParseError::Incomplete);
    }
    let body_end = payload.len().min(HEADER_LEN + h.body_len as usize);
    let body = &payload[HEADER_LEN..body_end];
    let mut head = Head {
        message_len: Some(h.message_len()),
        request_id: Some(h.request_id),
        ..Head::default()
    };
    if h.request {
        head.unpaired = !h.two_way;
        if h.event {
            let null = h.serialization == HESSIAN2 && body.first() == Some(&b'N');
            head.request_type = Cow::Borrowed(if null { "heartbeat" } else { "event" });
        } else if h.serialization == HESSIAN2 {
            read_request(body, &mut head);
        }
    } else {
        head.response_code = Some(i32::from(h.status));
        head.response_status = Some(status_class(h.status));
        if h.serialization == HESSIAN2 && !h.event {
            read_response(body, h.status, &mut head);
        }
        if h.status != OK && head.exception.is_empty() {
            head.exception = Cow::Borrowed(status_name(h.status).unwrap_or("unknown status"));
        }
    }
    Ok(head)
}

/// Dubbo bodies always follow a header that says their length.
pub fn ends_message(_payload: &[u8], _kind: MessageKind) -> bool {
    false
}

/// How many parameters a JVM method descriptor lists (`Ljava/lang/String;[II`
/// is 3); None if it is not one.
pub fn parameter_count(desc: &str) -> Option<usize> {
    let b = desc.as_bytes();
    let (mut i, mut n) = (0, 0);
    while i < b.len() {
        while b.get(i) == Some(&b'[') {
            i += 1;
        }
        match b.get(i)? {
            b'Z' | b'B' | b'C' | b'D' | b'F' | b'I' | b'J' | b'S' => i += 1,
            b'L' => i += b[i..].iter().position(|&c| c == b';')? + 1,
            _ => return None,
        }
        n += 1;
    }
    Some(n)
}

/// The call in a hessian2 request body; stops quietly where the bytes do.
fn read_request<'a>(body: &'a [u8], head: &mut Head<'a>) {
    let mut r = Reader::new(body, Dialect::V2);
    let mut s = || r.read_str().ok().flatten();
    let Some(dubbo_version) = s() else { return };
    head.version = dubbo_version;
    let Some(path) = s() else { return };
    let Some(service_version) = s() else {
        head.request_domain = path;
        return;
    };
    head.request_resource = if service_version.is_empty() {
        path.clone()
    } else {
        Cow::Owned(format!("{path}:{service_version}"))
    };
    head.request_domain = path;
    let Some(method) = s() else { return };
    head.request_type = method;
    let Some(count) = s().as_deref().and_then(parameter_count) else {
        return;
    };
    for _ in 0..count {
        if r.skip().is_err() {
            return;
        }
    }
    let mut trace = TraceCandidates::default();
    let _ = read_attachments(&mut r, &mut trace);
    set_trace(head, &trace);
}

/// Offers every string entry of a map to `trace`.
fn read_attachments<'a>(
    r: &mut Reader<'a>,
    trace: &mut TraceCandidates<'a>,
) -> hessian2::Result<()> {
    if !r.begin_map()? {
        return Ok(());
    }
    r.map_entries(|r, key| {
        let Some(key) = key else { return Ok(false) };
        if r.peek_kind()? != hessian2::Kind::String {
            return Ok(false);
        }
        if let Some(Cow::Borrowed(v)) = r.read_str()? {
            trace.offer(key, v);
        }
        Ok(true)
    })
}

/// The ids of the trace context found, if any.
pub(crate) fn set_trace<'a>(head: &mut Head<'a>, trace: &TraceCandidates<'a>) {
    if let Some(t) = trace.select().trace_context() {
        head.trace_id = t.trace_id;
        head.span_id = t.span_id;
        head.parent_span_id = t.parent_span_id;
    }
}

/// `class: detailMessage`, as Java prints a Throwable; the class alone
/// when the message is null.
pub(crate) fn exception_text<'a>(
    r: &mut Reader<'a>,
    class: usize,
) -> hessian2::Result<Cow<'a, str>> {
    let name = r.class_name(class);
    let mut message = None;
    let walked = r.object_fields(class, |r, field| {
        if field == "detailMessage" {
            message = r.read_str()?;
            return Ok(true);
        }
        Ok(false)
    });
    // The stack trace after the message is often beyond the capture.
    if message.is_none() {
        walked?;
    }
    Ok(match message {
        Some(m) if name.is_empty() => m,
        Some(m) => Cow::Owned(format!("{name}: {m}")),
        None => name,
    })
}

/// The outcome in a hessian2 response body.
fn read_response<'a>(body: &'a [u8], status: u8, head: &mut Head<'a>) {
    let mut r = Reader::new(body, Dialect::V2);
    if status != OK {
        if let Ok(Some(text)) = r.read_str() {
            head.exception = text;
        }
        return;
    }
    // 0 and 3: an exception the service threw.
    if let Ok(0 | 3) = r.read_int() {
        head.response_status = Some(ResponseStatus::ServerError);
        // Read as far as the capture goes: the class name may be all.
        head.exception = match r.begin_object() {
            Ok(Some(c)) => exception_text(&mut r, c).unwrap_or_else(|_| r.class_name(c)),
            Ok(None) | Err(_) => Cow::Borrowed(""),
        };
    }
}

#[cfg(test)]
mod tests;
