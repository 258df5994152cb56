//! SOFARPC over the Bolt protocol (v1 and v2): requests and responses,
//! with the header map and hessian2 bodies read.
//!
//! Bolt frames, all big-endian (v2 adds a version byte after the
//! protocol code and a switch byte after the codec; with its CRC switch on
//! and version 2, a 4-byte CRC32 ends the frame):
//!
//! | | v1 request | v1 response | v2 request | v2 response |
//! |---|---|---|---|---|
//! | protocol code | 0 (`1`) | 0 (`1`) | 0 (`2`) | 0 (`2`) |
//! | type: 1 request, 2 oneway, 0 response | 1 | 1 | 2 | 2 |
//! | command: 0 heartbeat, 1 request, 2 response | 2–3 | 2–3 | 3–4 | 3–4 |
//! | request id (4 bytes) | 5–8 | 5–8 | 6–9 | 6–9 |
//! | codec: 1 hessian2, 11 protobuf | 9 | 9 | 10 | 10 |
//! | timeout (4) / response status (2) | 10–13 | 10–11 | 12–15 | 12–13 |
//! | class, header, content lengths (2, 2, 4) | 14–21 | 12–19 | 16–23 | 14–21 |
//! | header size | 22 | 20 | 24 | 22 |
//!
//! then the class name, the header map (`SimpleMapSerializer`: a 4-byte
//! length and the bytes of each key and value, -1 for null) and the
//! content. `message_len` is all of that, exact; `request_id` pairs the
//! answers, which come back in any order.
//!
//! **Requests**: what DeepFlow's SOFARPC parser reads, in its order: the
//! header map's `sofa_head_target_service` (or `service`) is
//! `request_resource` (the service's unique name, `interface:version`),
//! `sofa_head_method_name` is `request_type`, `sofa_head_target_app` is
//! `request_domain`; what the header does not say is taken from the
//! content when it is hessian2 and a `SofaRequest` (`targetServiceUniqueName`,
//! `methodName`, `targetAppName`), as SOFARPC's Java and Node clients send
//! the method there only. Hessian2 content is the draft dialect both
//! write (see [`crate::hessian2`]); content that starts with a Hessian 2.0
//! class definition (`C`) is read as such. Trace context: a `traceparent`,
//! `b3`, `uber-trace-id` or `sw8` entry in the header map or in the
//! request's `requestProps`; else SOFATracer's ids:
//! `rpc_trace_context.sofaTraceId` and `.sofaRpcId` (header map, or the
//! `rpc_trace_context` map in `requestProps`) as `trace_id` and `span_id`,
//! or `new_rpc_trace_context` (`tcid=..&spid=..&pspid=..`). `version` is
//! the Bolt protocol code (`1`, `2`). A heartbeat is `heartbeat`, paired
//! with its answer like a call; a oneway request gets no answer and is
//! `unpaired`.
//!
//! **Responses**: `response_code` is the response status: 0 SUCCESS is
//! `Ok`, 8 CLIENT_SEND_ERROR `ClientError`, any other `ServerError`
//! (DeepFlow's classes). The content says why: an exception object (a
//! class with a `detailMessage`, as `RpcServerException` for a failed
//! call) makes `exception` `class: message`, as Java prints it and as the
//! clients report it; a `SofaResponse` with `isError` gives its `errorMsg`,
//! and one whose `appResponse` is an exception gives that; both are then
//! `ServerError` though the status is 0. A status without readable
//! content gives its name.

use std::borrow::Cow;

use causeway_model::ResponseStatus;

use crate::dubbo::{exception_text, set_trace};
use crate::hessian2::{self, Dialect, Kind, Reader};
use crate::http1::trace::Candidates as TraceCandidates;
use crate::infer::MessageKind;
use crate::{Head, ParseError};

/// Largest content accepted.
pub const MAX_CONTENT: u32 = 64 << 20;
/// Longest class name accepted by inference.
pub const MAX_CLASS_LEN: usize = 256;
/// The codec id of hessian2.
pub const HESSIAN2: u8 = 1;

const TYPE_RESPONSE: u8 = 0;
const TYPE_REQUEST: u8 = 1;
const TYPE_ONEWAY: u8 = 2;
const CMD_HEARTBEAT: u16 = 0;
const CMD_REQUEST: u16 = 1;
const CMD_RESPONSE: u16 = 2;

/// The facts of a Bolt frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Protocol code: 1 (v1) or 2 (v2).
    pub protocol: u8,
    /// v2: the protocol version (2 may carry a CRC32); v1: 1.
    pub version: u8,
    /// 0 response, 1 request, 2 oneway request.
    pub rpc_type: u8,
    /// 0 heartbeat, 1 request, 2 response.
    pub command: u16,
    /// Pairs a response with its request.
    pub request_id: u32,
    /// The content's codec.
    pub codec: u8,
    /// Responses: the status.
    pub status: u16,
    /// Bytes of the class name, header map and content.
    pub class_len: u16,
    /// Bytes of the header map.
    pub header_len: u16,
    /// Bytes of the content.
    pub content_len: u32,
    /// Bytes of this header.
    pub size: usize,
    /// A CRC32 ends the frame.
    pub crc: bool,
}

impl Header {
    /// Bytes of the whole frame.
    pub fn message_len(&self) -> u64 {
        self.size as u64
            + u64::from(self.class_len)
            + u64::from(self.header_len)
            + u64::from(self.content_len)
            + if self.crc { 4 } else { 0 }
    }

    /// A request or oneway request (the type byte).
    pub fn is_request(&self) -> bool {
        self.rpc_type != TYPE_RESPONSE
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The header at the start of `payload`.
pub fn header(payload: &[u8]) -> Result<Header, ParseError> {
    let (protocol, o) = match payload.first() {
        None => return Err(ParseError::Incomplete),
        Some(1) => (1, 0),
        Some(2) => (2, 1),
        Some(_) => return Err(ParseError::Mismatch),
    };
    let rpc_type = *payload.get(1 + o).ok_or(ParseError::Incomplete)?;
    if rpc_type > TYPE_ONEWAY {
        return Err(ParseError::Mismatch);
    }
    let size = match (rpc_type == TYPE_RESPONSE, protocol) {
        (true, 1) => 20,
        (false, 1) => 22,
        (true, _) => 22,
        (false, _) => 24,
    };
    if payload.len() < size {
        return Err(ParseError::Incomplete);
    }
    let p = payload;
    let version = if protocol == 2 { p[1] } else { 1 };
    let switch = if protocol == 2 { p[11] } else { 0 };
    // After the codec (and v2's switch): timeout or status, then lengths.
    let at = 10 + 2 * o;
    let (status, lengths) = if rpc_type == TYPE_RESPONSE {
        (be16(p, at), at + 2)
    } else {
        (0, at + 4)
    };
    let h = Header {
        protocol,
        version,
        rpc_type,
        command: be16(p, 2 + o),
        request_id: be32(p, 5 + o),
        codec: p[9 + o],
        status,
        class_len: be16(p, lengths),
        header_len: be16(p, lengths + 2),
        content_len: be32(p, lengths + 4),
        size,
        crc: protocol == 2 && version == 2 && switch & 0x01 != 0,
    };
    if h.content_len > MAX_CONTENT {
        return Err(ParseError::Invalid("content length"));
    }
    Ok(h)
}

/// The name of a response status (Bolt's `ResponseStatus`).
pub fn status_name(code: u16) -> Option<&'static str> {
    Some(match code {
        0x00 => "SUCCESS",
        0x01 => "ERROR",
        0x02 => "SERVER_EXCEPTION",
        0x03 => "UNKNOWN",
        0x04 => "SERVER_THREADPOOL_BUSY",
        0x05 => "ERROR_COMM",
        0x06 => "NO_PROCESSOR",
        0x07 => "TIMEOUT",
        0x08 => "CLIENT_SEND_ERROR",
        0x09 => "CODEC_EXCEPTION",
        0x10 => "CONNECTION_CLOSED",
        0x11 => "SERVER_SERIAL_EXCEPTION",
        0x12 => "SERVER_DESERIAL_EXCEPTION",
        _ => return None,
    })
}

/// The outcome class of a response status (DeepFlow's).
pub fn status_class(code: u16) -> ResponseStatus {
    match code {
        0 => ResponseStatus::Ok,
        8 => ResponseStatus::ClientError,
        _ => ResponseStatus::ServerError,
    }
}

/// Whether the bytes start a Bolt frame, and which kind: a whole header
/// of a known protocol code and version, a command that fits the type,
/// the command format version 1, a known codec (and, for responses,
/// status); a heartbeat carries nothing, a call names a class of at most
/// [`MAX_CLASS_LEN`] printable bytes (checked as far as captured).
pub fn infer(payload: &[u8]) -> Option<MessageKind> {
    let h = header(payload).ok()?;
    let o = usize::from(h.protocol == 2);
    // v2: versions 1 and 2; of the switch only the CRC bit is defined.
    if h.protocol == 2 && (!(1..=2).contains(&h.version) || payload[11] & 0xfe != 0) {
        return None;
    }
    // The command's format version: 1 in every Bolt sender.
    if payload[4 + o] != 1 || !matches!(h.codec, 1 | 2 | 11 | 12) {
        return None;
    }
    let ok_command = match (h.rpc_type, h.command) {
        (TYPE_RESPONSE, CMD_HEARTBEAT | CMD_RESPONSE) => status_name(h.status).is_some(),
        (TYPE_REQUEST, CMD_HEARTBEAT | CMD_REQUEST) => true,
        (TYPE_ONEWAY, CMD_REQUEST) => true,
        _ => false,
    };
    if !ok_command {
        return None;
    }
    if h.command == CMD_HEARTBEAT {
        let empty = h.class_len == 0 && h.header_len == 0 && h.content_len == 0;
        return empty.then_some(h.kind());
    }
    let class_len = usize::from(h.class_len);
    if class_len == 0 || class_len > MAX_CLASS_LEN {
        return None;
    }
    let class = &payload[h.size..payload.len().min(h.size + class_len)];
    if !class.iter().all(|&b| b.is_ascii_graphic()) {
        return None;
    }
    Some(h.kind())
}

impl Header {
    /// The kind the type byte says.
    pub fn kind(&self) -> MessageKind {
        if self.is_request() {
            MessageKind::Request
        } else {
            MessageKind::Response
        }
    }
}

/// The kind of the frame these bytes start, by its type byte; None when
/// they start no Bolt header.
pub fn message_kind(payload: &[u8]) -> Option<MessageKind> {
    header(payload).ok().map(|h| h.kind())
}

/// The head of the Bolt frame at the start of `payload`.
///
/// `Incomplete` before the whole frame header is there; `Mismatch` for
/// another protocol code or type; `Invalid` for a content length out of
/// bounds or a kind that contradicts the type byte. Parts cut by the
/// capture cap give what came before the cut.
pub fn parse(payload: &[u8], kind: MessageKind) -> Result<Head<'_>, ParseError> {
    let h = header(payload)?;
    if h.kind() != kind {
        return Err(ParseError::Invalid("message kind"));
    }
    let mut head = Head {
        version: Cow::Borrowed(if h.protocol == 1 { "1" } else { "2" }),
        message_len: Some(h.message_len()),
        request_id: Some(u64::from(h.request_id)),
        ..Head::default()
    };
    let part = |from: usize, len: usize| {
        let end = payload.len().min(from.saturating_add(len));
        payload.get(from..end).unwrap_or_default()
    };
    let class_at = h.size;
    let map_at = class_at + usize::from(h.class_len);
    let content_at = map_at + usize::from(h.header_len);
    let map = part(map_at, usize::from(h.header_len));
    let content = part(content_at, h.content_len as usize);
    let hessian = h.codec == HESSIAN2;
    if h.is_request() {
        head.unpaired = h.rpc_type == TYPE_ONEWAY;
        if h.command == CMD_HEARTBEAT {
            head.request_type = Cow::Borrowed("heartbeat");
            return Ok(head);
        }
        let mut trace = TraceCandidates::default();
        let mut sofa = SofaTrace::default();
        read_header_map(map, &mut head, &mut trace, &mut sofa);
        if hessian {
            let _ = read_request_content(content, &mut head, &mut trace, &mut sofa);
        }
        set_trace(&mut head, &trace);
        if head.trace_id.is_empty() {
            sofa.apply(&mut head);
        }
    } else {
        head.response_code = Some(i32::from(h.status));
        head.response_status = Some(status_class(h.status));
        if hessian && h.command == CMD_RESPONSE {
            let _ = read_response_content(content, &mut head);
        }
        if h.status != 0 && head.exception.is_empty() {
            head.exception = Cow::Borrowed(status_name(h.status).unwrap_or("unknown status"));
        }
    }
    Ok(head)
}

/// Bolt frames always say their length.
pub fn ends_message(_payload: &[u8], _kind: MessageKind) -> bool {
    false
}

/// SOFATracer's context, as found.
#[derive(Debug, Default)]
struct SofaTrace<'a> {
    trace_id: Option<Cow<'a, str>>,
    rpc_id: Option<Cow<'a, str>>,
    /// `tcid=..&spid=..&pspid=..`.
    new_context: Option<Cow<'a, str>>,
}

impl<'a> SofaTrace<'a> {
    fn offer(&mut self, key: &str, value: Cow<'a, str>) {
        let slot = match key {
            "rpc_trace_context.sofaTraceId" | "sofaTraceId" => &mut self.trace_id,
            "rpc_trace_context.sofaRpcId" | "sofaRpcId" => &mut self.rpc_id,
            "new_rpc_trace_context" => &mut self.new_context,
            _ => return,
        };
        if slot.is_none() && !value.is_empty() {
            *slot = Some(value);
        }
    }

    fn apply(self, head: &mut Head<'a>) {
        if let Some(t) = self.trace_id {
            head.trace_id = t;
            head.span_id = self.rpc_id.unwrap_or_default();
            return;
        }
        let Some(ctx) = self.new_context else { return };
        match ctx {
            Cow::Borrowed(all) => {
                head.trace_id = Cow::Borrowed(context_field(all, "tcid"));
                head.span_id = Cow::Borrowed(context_field(all, "spid"));
                head.parent_span_id = Cow::Borrowed(context_field(all, "pspid"));
            }
            Cow::Owned(all) => {
                head.trace_id = Cow::Owned(context_field(&all, "tcid").to_owned());
                head.span_id = Cow::Owned(context_field(&all, "spid").to_owned());
                head.parent_span_id = Cow::Owned(context_field(&all, "pspid").to_owned());
            }
        }
    }
}

/// One `name=value` of `tcid=..&spid=..&pspid=..`.
fn context_field<'s>(ctx: &'s str, name: &str) -> &'s str {
    ctx.split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_default()
}

/// Entries of a `SimpleMapSerializer` map: length-prefixed keys and
/// values (-1: null), as far as the bytes go.
fn map_entries(mut b: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    std::iter::from_fn(move || {
        let mut next = || -> Option<&[u8]> {
            let n = i32::from_be_bytes(b.get(..4)?.try_into().ok()?);
            b = &b[4..];
            let n = usize::try_from(n).unwrap_or(0);
            let (v, rest) = (b.get(..n)?, &b[n..]);
            b = rest;
            Some(v)
        };
        let k = next()?;
        let v = next()?;
        Some((k, v))
    })
}

fn read_header_map<'a>(
    map: &'a [u8],
    head: &mut Head<'a>,
    trace: &mut TraceCandidates<'a>,
    sofa: &mut SofaTrace<'a>,
) {
    let mut service = None;
    for (k, v) in map_entries(map) {
        let (Ok(k), Ok(v)) = (std::str::from_utf8(k), std::str::from_utf8(v)) else {
            continue;
        };
        match k {
            "sofa_head_target_service" => service = Some(v),
            "service" => {
                service.get_or_insert(v);
            }
            "sofa_head_method_name" if head.request_type.is_empty() => {
                head.request_type = Cow::Borrowed(v)
            }
            "sofa_head_target_app" if head.request_domain.is_empty() => {
                head.request_domain = Cow::Borrowed(v)
            }
            _ => {
                if !trace.offer(k, v) {
                    sofa.offer(k, Cow::Borrowed(v));
                }
            }
        }
    }
    if let Some(s) = service {
        head.request_resource = Cow::Borrowed(s);
    }
}

/// The dialect of hessian2 content: Hessian 2.0 when it opens with a
/// class definition of its own, else the draft SOFARPC writes.
fn dialect(content: &[u8]) -> Dialect {
    if content.first() == Some(&b'C') {
        Dialect::V2
    } else {
        Dialect::Draft
    }
}

fn read_request_content<'a>(
    content: &'a [u8],
    head: &mut Head<'a>,
    trace: &mut TraceCandidates<'a>,
    sofa: &mut SofaTrace<'a>,
) -> hessian2::Result<()> {
    let mut r = Reader::new(content, dialect(content));
    let Some(class) = r.begin_object()? else {
        return Ok(());
    };
    r.object_fields(class, |r, field| {
        let slot = match field {
            "methodName" => &mut head.request_type,
            "targetServiceUniqueName" => &mut head.request_resource,
            "targetAppName" => &mut head.request_domain,
            "requestProps" => {
                read_props(r, trace, sofa)?;
                return Ok(true);
            }
            _ => return Ok(false),
        };
        if !slot.is_empty() || r.peek_kind()? != Kind::String {
            return Ok(false);
        }
        *slot = r.read_str()?.unwrap_or_default();
        Ok(true)
    })
}

/// `requestProps`: trace entries, and SOFATracer's `rpc_trace_context`
/// map one level down.
fn read_props<'a>(
    r: &mut Reader<'a>,
    trace: &mut TraceCandidates<'a>,
    sofa: &mut SofaTrace<'a>,
) -> hessian2::Result<()> {
    if !r.begin_map()? {
        return Ok(());
    }
    r.map_entries(|r, key| {
        let Some(key) = key else { return Ok(false) };
        match r.peek_kind()? {
            Kind::String => {
                let Some(v) = r.read_str()? else {
                    return Ok(true);
                };
                let taken = matches!(v, Cow::Borrowed(b) if trace.offer(key, b));
                if !taken {
                    sofa.offer(key, v);
                }
                Ok(true)
            }
            Kind::Map if key == "rpc_trace_context" => {
                r.begin_map()?;
                r.map_entries(|r, key| match key {
                    Some(k) if r.peek_kind()? == Kind::String => {
                        if let Some(v) = r.read_str()? {
                            sofa.offer(k, v);
                        }
                        Ok(true)
                    }
                    _ => Ok(false),
                })?;
                Ok(true)
            }
            _ => Ok(false),
        }
    })
}

fn read_response_content<'a>(content: &'a [u8], head: &mut Head<'a>) -> hessian2::Result<()> {
    let mut r = Reader::new(content, dialect(content));
    if r.peek_kind()? == Kind::String {
        // Some senders answer a failure with its text alone.
        head.exception = r.read_str()?.unwrap_or_default();
        return Ok(());
    }
    let Some(class) = r.begin_object()? else {
        return Ok(());
    };
    if has_field(&r, class, "detailMessage") {
        head.exception = exception_text(&mut r, class)?;
        return Ok(());
    }
    let mut failed = false;
    let mut message = None;
    let walked = r.object_fields(class, |r, field| match field {
        "isError" if r.peek_kind()? == Kind::Bool => {
            failed = r.read_bool()?;
            Ok(true)
        }
        "errorMsg" if r.peek_kind()? == Kind::String => {
            message = r.read_str()?;
            Ok(true)
        }
        "appResponse" if r.peek_kind()? == Kind::Object => {
            let Some(c) = r.begin_object()? else {
                return Ok(true);
            };
            if has_field(r, c, "detailMessage") {
                message = Some(exception_text(r, c)?);
                failed = true;
            } else {
                r.object_fields(c, |_, _| Ok(false))?;
            }
            Ok(true)
        }
        _ => Ok(false),
    });
    // What was read before the capture ended stands.
    if failed {
        head.response_status = Some(ResponseStatus::ServerError);
        head.exception = message.unwrap_or(Cow::Borrowed("isError"));
    }
    walked
}

/// Whether instances of `class` have a field of this name.
fn has_field(r: &Reader<'_>, class: usize, name: &str) -> bool {
    r.field_names(class).any(|f| f == name)
}

#[cfg(test)]
mod tests;
