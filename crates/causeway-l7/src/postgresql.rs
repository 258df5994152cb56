//! PostgreSQL frontend/backend protocol, version 3 (PostgreSQL 7.4 and later).
//!
//! What one Causeway message is here: one exchange's worth of protocol
//! frames in one direction, because the agent pairs requests with responses
//! serially per socket.
//!
//! - A request is a simple `Query`; or an extended-query batch (`Parse`,
//!   `Bind`, `Describe`, `Execute`, `Close`, ... up to and including `Sync`);
//!   or a password/SASL message, `FunctionCall`, the end of a client COPY
//!   stream (`CopyDone`/`CopyFail`), `Terminate`; or one of the untyped
//!   messages a connection opens with (startup, `SSLRequest`,
//!   `GSSENCRequest`, `CancelRequest`).
//! - A response is what the server sends until `ReadyForQuery`, or until it
//!   waits for the client without one (an authentication challenge,
//!   `CopyInResponse`), or a `FATAL` error after which it closes the
//!   connection; or the one byte (`S`, `N`, `G`) that answers `SSLRequest` or
//!   `GSSENCRequest`.
//!
//! Every frame but the untyped ones is a type byte and a big-endian int32
//! length that counts itself but not the type byte. The frames are walked
//! over the visible prefix only (the capture cuts a syscall anywhere), so
//! the head reports what it saw, and [`Head::message_len`] only when the end
//! of the exchange is in view: the bytes through the first frame that ends
//! it. A syscall can carry several exchanges (pipelining); each ends at its
//! own `Sync` or `ReadyForQuery`, so the agent parses the rest as the next
//! message and requests and responses still pair one to one.
//!
//! Request heads: `request_type` is the name of the protocol message
//! (`Query`, `Parse`, `Execute`, ...; `STARTUP`, `SSL_REQUEST`, `AUTH`), in
//! the way DeepFlow names them; `request_resource` is the SQL, or the name
//! of the prepared statement a batch without `Parse` runs. Response heads:
//! `response_status` is `Ok` unless an `ErrorResponse` is among the visible
//! frames, in which case the response is that error (see
//! [`status_of_sqlstate`] and [`parse`] for how it is reported).
//!
//! The frontend and backend message sets share most type letters, so
//! [`infer`] checks the grammar of every visible frame in both directions and
//! only answers when exactly one direction fits.

use crate::infer::MessageKind;
use crate::{Head, ParseError};
use causeway_model::ResponseStatus;
use std::borrow::Cow;

/// Startup message code: protocol 3.0. The minor version varies (3.2 since
/// PostgreSQL 18), the major does not.
const PROTOCOL_MAJOR_3: u32 = 3;
/// Request codes of the untyped messages, from PostgreSQL's `pqcomm.h`.
const CANCEL_REQUEST_CODE: u32 = 80_877_102;
const SSL_REQUEST_CODE: u32 = 80_877_103;
const GSSENC_REQUEST_CODE: u32 = 80_877_104;
/// The server refuses longer startup packets (`MAX_STARTUP_PACKET_LENGTH`).
const MAX_STARTUP_LEN: u32 = 10_000;
/// A frame longer than PostgreSQL's `MaxAllocSize` (1 GiB) cannot exist.
const MAX_FRAME_LEN: u32 = 1 << 30;
/// `infer` wants a first frame under 16 MiB: its length's high byte is then
/// zero, which text protocols (HTTP, RESP) never have after their first
/// byte. A bigger first message goes unclaimed; the next one will do.
const MAX_INFER_FRAME_LEN: u32 = 1 << 24;
/// `infer` judges a first frame cut by the end of the bytes only when this
/// many bytes are visible: a few bytes after a plausible header say
/// nothing, and a short packet of another protocol can look like the start
/// of a long frame. A MySQL packet whose first length byte is a type letter
/// is under 256 bytes long (its second length byte is 0), and its sequence
/// number, when not 0, makes the length read as PostgreSQL's at least 256.
/// Real cut frames are cut by the capture cap, 1024 bytes by default.
const MIN_INFER_CUT_PAYLOAD: usize = 256;

/// Whether the bytes start a PostgreSQL v3 message, and which kind.
///
/// Untyped messages (a startup naming a `user`, `SSLRequest`,
/// `GSSENCRequest`, `CancelRequest`, each alone in the bytes) are requests.
/// For typed frames, every visible frame must be well formed for the
/// direction (type, a length of at least 4 that chains exactly to the next
/// frame, body grammar), names and SQL must be printable text, and the
/// first frame must be one that opens a message (`Query`, `Parse`, `Bind`,
/// ... for requests; `Authentication`, `ParseComplete`, `RowDescription`,
/// `CommandComplete`, `ErrorResponse`, `ReadyForQuery`, ... for responses;
/// never `DataRow` or COPY data, which only continue one, nor free-form
/// frames such as password messages), under 16 MiB, and, if the bytes end
/// inside it, with at least 256 bytes visible. When both directions fit (a
/// lone `C` frame can be a `Close` or a `CommandComplete`) the answer is
/// `None`: the bytes do not tell. The one-byte answers to `SSLRequest` are
/// never inferred; [`parse`] reads them when the kind is known.
pub fn infer(payload: &[u8]) -> Option<MessageKind> {
    match payload.first()? {
        0 => infer_untyped(payload),
        _ => {
            let request = walk_request(payload, Mode::Infer).is_ok();
            let response = walk_response(payload, Mode::Infer).is_ok();
            match (request, response) {
                (true, false) => Some(MessageKind::Request),
                (false, true) => Some(MessageKind::Response),
                _ => None,
            }
        }
    }
}

/// The head of the PostgreSQL message at the start of `payload`.
///
/// Requests:
/// - startup: `request_type` `STARTUP`, `request_domain` the database (the
///   user name when the client names none, as the server does),
///   `request_resource` `user=<name>`, `message_len` from its length field;
/// - `SSL_REQUEST`, `GSSENC_REQUEST`, and `CANCEL` (unpaired: the server
///   answers a cancel by closing the connection);
/// - `Query`: the SQL, trimmed;
/// - an extended batch: `Parse` and the SQL of its first `Parse` when it
///   has one; else `Execute` and the statement name of its first `Bind`
///   (the portal name when the statement is unnamed, or without `Bind`);
///   else the first frame's name (`Describe`, `Close` and the name they
///   target; `Sync`, `Flush`, `CopyData`, ...);
/// - `AUTH` for a password or SASL message, with nothing of it kept;
/// - `Terminate`, unpaired: nothing answers it.
///
/// `message_len` is the bytes through the first `Sync`, `Query`,
/// `Terminate`, `FunctionCall`, password, `CopyDone` or `CopyFail` frame
/// once its header is visible (its body may be cut), and `None` while the
/// visible frames do not reach one (a capture cut inside a batch, a `Flush`
/// that awaits a partial answer, a COPY stream).
///
/// Responses:
/// - `response_status` `Ok`, unless an `ErrorResponse` is visible: then
///   `exception` is `SQLSTATE <code>: <message>` (its message alone when
///   the error carries no code) and `response_status` follows the SQLSTATE
///   class ([`status_of_sqlstate`]); `response_code` is always `None`
///   because a SQLSTATE is five characters, not a number;
/// - `message_len` is the bytes through the first `ReadyForQuery`, or
///   through a frame after which the server waits for the client or leaves
///   (an authentication challenge, `CopyInResponse`, `CopyBothResponse`, a
///   `FATAL` or `PANIC` error), `None` while none is visible;
/// - frames that belong to no exchange (`NoticeResponse`,
///   `NotificationResponse`, `ParameterStatus`, and nothing else, ending
///   exactly at the end of the bytes) are `unpaired`, with their length;
/// - a lone `S`, `N` or `G` byte answers `SSLRequest`/`GSSENCRequest`.
///
/// The `CommandComplete` tag has no field in [`Head`]; [`command_tag`]
/// reads it.
pub fn parse(payload: &[u8], kind: MessageKind) -> Result<Head<'_>, ParseError> {
    match kind {
        MessageKind::Request => parse_request(payload),
        MessageKind::Response => parse_response(payload),
    }
}

/// Whether a whole syscall's bytes end a message whose length the head
/// could not tell.
///
/// The syscall may continue a message, so its first byte need not start a
/// frame: the fixed-size frames that end an exchange are matched at the
/// tail (`Sync`, `Terminate`, `CopyDone` for requests; `ReadyForQuery` for
/// responses). A syscall that does start at a frame ends the message when
/// its frames end exactly at an exchange's end (a `Query`, a password
/// message, a `FATAL` error, ...).
pub fn ends_message(payload: &[u8], kind: MessageKind) -> bool {
    let len = payload.len() as u64;
    match kind {
        MessageKind::Request => {
            let tail = payload.len().checked_sub(5).and_then(|i| payload.get(i..));
            if let Some([b'S' | b'X' | b'c', 0, 0, 0, 4]) = tail {
                return true;
            }
            parse_request(payload).is_ok_and(|h| h.message_len == Some(len))
        }
        MessageKind::Response => {
            let tail = payload.len().checked_sub(6).and_then(|i| payload.get(i..));
            if let Some([b'Z', 0, 0, 0, 5, b'I' | b'T' | b'E']) = tail {
                return true;
            }
            parse_response(payload).is_ok_and(|h| h.message_len == Some(len))
        }
    }
}

/// The tag of the first `CommandComplete` of the response at the start of
/// `payload` (`SELECT 3`, `INSERT 0 1`, `CREATE TABLE`), up to its
/// `ReadyForQuery`; `None` when none is visible or the bytes are no
/// response. A separate function because [`Head`] has no field for a
/// result summary.
pub fn command_tag(payload: &[u8]) -> Option<&str> {
    walk_response(payload, Mode::Parse).ok()?.tag.map(text)
}

/// The outcome class of a SQLSTATE (`42P01`).
///
/// Server errors are the classes that say the server, not the statement,
/// failed: `08` connection exception, `53` insufficient resources, `57`
/// operator intervention (shutdown, cancel, timeout), `58` system error
/// (I/O), `F0` configuration file error and `XX` internal error. Every
/// other class is the client's: bad SQL (`42`), data (`22`), constraints
/// (`23`), authorization (`28`), transaction state (`25`), serialization
/// failures and deadlocks that the client is expected to retry (`40`),
/// unsupported features (`0A`), `RAISE EXCEPTION` (`P0`), ...
pub fn status_of_sqlstate(code: &str) -> ResponseStatus {
    match code.get(..2) {
        Some("08" | "53" | "57" | "58" | "F0" | "XX") => ResponseStatus::ServerError,
        _ => ResponseStatus::ClientError,
    }
}

/// Which grammar a walk checks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Every visible frame must be valid, text must be printable, and the
    /// first frame must be able to open a message.
    Infer,
    /// The first frame must be valid; the walk stops quietly at a bad later
    /// frame, keeping what it read, without claiming where the message ends.
    Parse,
}

/// One frame, as far as it is visible.
struct Frame<'a> {
    ty: u8,
    /// Declared length, counting the length field itself.
    len: u32,
    /// The visible part of the body.
    body: &'a [u8],
    /// Where the frame ends in the stream (past the payload when cut).
    end: usize,
    /// The frame continues past the visible bytes.
    cut: bool,
}

enum Next<'a> {
    Frame(Frame<'a>),
    /// No bytes left.
    End,
    /// The 5-byte header is cut.
    Short,
    /// The length field is impossible.
    BadLength,
}

fn next_frame(p: &[u8], at: usize) -> Next<'_> {
    let Some(rest) = p.get(at..).filter(|r| !r.is_empty()) else {
        return Next::End;
    };
    let [ty, a, b, c, d, ..] = *rest else {
        return Next::Short;
    };
    let len = u32::from_be_bytes([a, b, c, d]);
    if !(4..MAX_FRAME_LEN).contains(&len) {
        return Next::BadLength;
    }
    let body_len = len as usize - 4;
    let avail = rest.get(5..).unwrap_or_default();
    let body = avail.get(..body_len).unwrap_or(avail);
    Next::Frame(Frame {
        ty,
        len,
        body,
        end: at.saturating_add(1 + len as usize),
        cut: body.len() < body_len,
    })
}

/// What the frames of a request say.
#[derive(Default)]
struct RequestWalk<'a> {
    first: u8,
    /// Query text of the first `Query` or `Parse`.
    sql: Option<&'a [u8]>,
    /// Statement of the first `Bind`, else portal of the first `Execute`.
    executes: Option<&'a [u8]>,
    /// Target name of a leading `Describe` or `Close`.
    target: Option<&'a [u8]>,
    /// End of the first frame that ends the exchange.
    end: Option<usize>,
}

/// Walks the typed frontend frames at the start of `p`.
fn walk_request(p: &[u8], mode: Mode) -> Result<RequestWalk<'_>, ParseError> {
    let mut w = RequestWalk::default();
    let mut at = 0;
    loop {
        let first = at == 0;
        let f = match next_frame(p, at) {
            Next::Frame(f) => f,
            Next::End if !first => break,
            Next::End | Next::Short => {
                if !first && mode == Mode::Parse {
                    break;
                }
                return Err(match p.first() {
                    Some(&t) if is_frontend_type(t) => ParseError::Incomplete,
                    Some(_) => ParseError::Mismatch,
                    None => ParseError::Incomplete,
                });
            }
            Next::BadLength => {
                if !first && mode == Mode::Parse {
                    break;
                }
                return Err(ParseError::Invalid("message length"));
            }
        };
        let bad = if !is_frontend_type(f.ty) {
            Some(ParseError::Mismatch)
        } else if !frontend_body_ok(&f, mode) {
            Some(ParseError::Invalid(frontend_name(f.ty)))
        } else if first && mode == Mode::Infer && !(opens_request(f.ty) && inferable(&f)) {
            Some(ParseError::Mismatch)
        } else {
            None
        };
        if let Some(e) = bad {
            if !first && mode == Mode::Parse {
                break;
            }
            return Err(e);
        }
        if first {
            w.first = f.ty;
        }
        let mut c = Cursor::new(&f);
        match f.ty {
            b'Q' if w.sql.is_none() => w.sql = Some(c.cstr_visible()),
            b'P' if w.sql.is_none() => {
                c.cstr_visible();
                w.sql = Some(c.cstr_visible());
            }
            b'B' if w.executes.is_none() => {
                let portal = c.cstr_visible();
                let stmt = c.cstr_visible();
                w.executes = Some(if stmt.is_empty() { portal } else { stmt });
            }
            b'E' if w.executes.is_none() => w.executes = Some(c.cstr_visible()),
            b'D' | b'C' if first => {
                c.take(1).ok();
                w.target = Some(c.cstr_visible());
            }
            _ => {}
        }
        if ends_request(f.ty) && w.end.is_none() {
            w.end = Some(f.end);
            // Inferring checks every visible frame, parsing stops here.
            if mode == Mode::Parse {
                break;
            }
        }
        if f.cut {
            break;
        }
        at = f.end;
    }
    Ok(w)
}

fn parse_request(p: &[u8]) -> Result<Head<'_>, ParseError> {
    if p.first() == Some(&0) {
        return parse_untyped(p);
    }
    let w = walk_request(p, Mode::Parse)?;
    let (request_type, resource) = if w.first == b'Q' {
        ("Query", w.sql)
    } else if w.first == b'p' {
        // A password, or SASL data: never kept.
        ("AUTH", None)
    } else if w.sql.is_some() {
        ("Parse", w.sql)
    } else if w.executes.is_some() {
        ("Execute", w.executes)
    } else {
        (frontend_name(w.first), w.target)
    };
    Ok(Head {
        version: Cow::Borrowed("3"),
        request_type: Cow::Borrowed(request_type),
        request_resource: Cow::Borrowed(resource.map_or("", |s| text(s).trim())),
        message_len: w.end.map(|e| e as u64),
        unpaired: w.first == b'X',
        ..Head::default()
    })
}

/// The untyped messages: int32 length, int32 code, then (startup only)
/// `key\0value\0` pairs ending with an empty key.
fn parse_untyped(p: &[u8]) -> Result<Head<'_>, ParseError> {
    let [a, b, c, d, e, f, g, h, ..] = *p else {
        return Err(ParseError::Incomplete);
    };
    let len = u32::from_be_bytes([a, b, c, d]);
    let code = u32::from_be_bytes([e, f, g, h]);
    let (request_type, unpaired) = match code {
        SSL_REQUEST_CODE if len == 8 => ("SSL_REQUEST", false),
        GSSENC_REQUEST_CODE if len == 8 => ("GSSENC_REQUEST", false),
        // The secret key is 4 bytes up to protocol 3.1, up to 256 since 3.2.
        CANCEL_REQUEST_CODE if (16..=12 + 256).contains(&len) => ("CANCEL", true),
        SSL_REQUEST_CODE | GSSENC_REQUEST_CODE | CANCEL_REQUEST_CODE => {
            return Err(ParseError::Invalid("message length"))
        }
        _ if code >> 16 == PROTOCOL_MAJOR_3 => return parse_startup(p, len),
        _ if code >> 16 == 1234 => return Err(ParseError::Invalid("request code")),
        _ => return Err(ParseError::Mismatch),
    };
    Ok(Head {
        version: Cow::Borrowed("3"),
        request_type: Cow::Borrowed(request_type),
        message_len: Some(u64::from(len)),
        unpaired,
        ..Head::default()
    })
}

fn parse_startup(p: &[u8], len: u32) -> Result<Head<'_>, ParseError> {
    if !(9..=MAX_STARTUP_LEN).contains(&len) {
        return Err(ParseError::Invalid("message length"));
    }
    let s = startup_params(p, len, Mode::Parse).ok_or(ParseError::Invalid("startup parameters"))?;
    let user = s.user.map(text);
    let database = match (s.database.map(text), s.ended) {
        (Some(db), _) if !db.is_empty() => db,
        // The server connects to the user's database when none is named;
        // only say so when the whole list was seen.
        (_, true) => user.unwrap_or(""),
        _ => "",
    };
    Ok(Head {
        version: Cow::Borrowed("3"),
        request_type: Cow::Borrowed("STARTUP"),
        request_domain: Cow::Borrowed(database),
        // The only owned field on the parsing path: once per connection.
        request_resource: user.map_or(Cow::Borrowed(""), |u| Cow::Owned(format!("user={u}"))),
        message_len: Some(u64::from(len)),
        ..Head::default()
    })
}

struct StartupParams<'a> {
    user: Option<&'a [u8]>,
    database: Option<&'a [u8]>,
    /// The terminating empty key was seen.
    ended: bool,
}

/// Reads the visible startup parameters; `None` when they break the
/// grammar (or, in `Infer` mode, are not printable text).
fn startup_params(p: &[u8], len: u32, mode: Mode) -> Option<StartupParams<'_>> {
    let end = (len as usize).min(p.len());
    let mut rest = p.get(8..end)?;
    let cut = (p.len() as u64) < u64::from(len);
    let mut s = StartupParams {
        user: None,
        database: None,
        ended: false,
    };
    loop {
        let Some(nul) = rest.iter().position(|&b| b == 0) else {
            // Cut inside a key or value: fine when the packet goes on.
            return (cut && (mode == Mode::Parse || printable(rest, true))).then_some(s);
        };
        let key = rest.get(..nul)?;
        rest = rest.get(nul + 1..)?;
        if key.is_empty() {
            s.ended = true;
            // Nothing may follow the terminator.
            return (rest.is_empty() && !cut).then_some(s);
        }
        if mode == Mode::Infer && !key.iter().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        let value = match rest.iter().position(|&b| b == 0) {
            Some(n) => {
                let v = rest.get(..n)?;
                rest = rest.get(n + 1..)?;
                v
            }
            None if cut => std::mem::take(&mut rest),
            None => return None,
        };
        if mode == Mode::Infer && !printable(value, true) {
            return None;
        }
        match key {
            b"user" => s.user = Some(value),
            b"database" => s.database = Some(value),
            _ => {}
        }
    }
}

fn infer_untyped(p: &[u8]) -> Option<MessageKind> {
    let [a, b, c, d, e, f, g, h, ..] = *p else {
        return None;
    };
    let len = u32::from_be_bytes([a, b, c, d]);
    let code = u32::from_be_bytes([e, f, g, h]);
    let seen = p.len() as u64;
    let ok = match code {
        // The client waits for the answer: nothing follows these.
        SSL_REQUEST_CODE | GSSENC_REQUEST_CODE => len == 8 && seen == 8,
        CANCEL_REQUEST_CODE => len == 16 && seen == 16,
        _ if code >> 16 == PROTOCOL_MAJOR_3 && code & 0xffff <= 0xff => {
            (9..=MAX_STARTUP_LEN).contains(&len)
                && seen <= u64::from(len)
                && startup_params(p, len, Mode::Infer).is_some_and(|s| s.user.is_some())
        }
        _ => false,
    };
    ok.then_some(MessageKind::Request)
}

/// What the frames of a response say.
#[derive(Default)]
struct ResponseWalk<'a> {
    /// Visible body of the first `ErrorResponse`.
    error: Option<&'a [u8]>,
    /// First `CommandComplete` tag.
    tag: Option<&'a [u8]>,
    /// End of the first frame that ends the exchange.
    end: Option<usize>,
    /// Only complete asynchronous frames, ending at the end of the bytes.
    only_async: bool,
}

/// Walks the backend frames at the start of `p`.
fn walk_response(p: &[u8], mode: Mode) -> Result<ResponseWalk<'_>, ParseError> {
    let mut w = ResponseWalk {
        only_async: true,
        ..ResponseWalk::default()
    };
    let mut at = 0;
    loop {
        let first = at == 0;
        let f = match next_frame(p, at) {
            Next::Frame(f) => f,
            Next::End if !first => break,
            Next::End | Next::Short => {
                w.only_async = false;
                if !first && mode == Mode::Parse {
                    break;
                }
                return Err(match p.first() {
                    Some(&t) if is_backend_type(t) => ParseError::Incomplete,
                    Some(_) => ParseError::Mismatch,
                    None => ParseError::Incomplete,
                });
            }
            Next::BadLength => {
                w.only_async = false;
                if !first && mode == Mode::Parse {
                    break;
                }
                return Err(ParseError::Invalid("message length"));
            }
        };
        let bad = if !is_backend_type(f.ty) {
            Some(ParseError::Mismatch)
        } else if !backend_body_ok(&f, mode) {
            Some(ParseError::Invalid(backend_name(f.ty)))
        } else if first && mode == Mode::Infer && !(opens_response(f.ty) && inferable(&f)) {
            Some(ParseError::Mismatch)
        } else {
            None
        };
        if let Some(e) = bad {
            w.only_async = false;
            if !first && mode == Mode::Parse {
                break;
            }
            return Err(e);
        }
        let mut ends = f.ty == b'Z';
        match f.ty {
            b'E' => {
                // The first error is the response's outcome.
                w.error = w.error.or(Some(f.body));
                // The server closes the connection after these.
                ends = !f.cut
                    && matches!(
                        error_fields(f.body).severity.map(text),
                        Some("FATAL" | "PANIC")
                    );
            }
            b'C' if w.tag.is_none() => w.tag = Some(Cursor::new(&f).cstr_visible()),
            // Authentication requests that the client must answer.
            b'R' => ends = matches!(Cursor::new(&f).i32(), Ok(2 | 3 | 5 | 7 | 8 | 9 | 10 | 11)),
            // The server waits for the client's COPY data.
            b'G' | b'W' => ends = true,
            _ => {}
        }
        if f.cut || !matches!(f.ty, b'N' | b'A' | b'S') {
            w.only_async = false;
        }
        if ends && w.end.is_none() {
            w.end = Some(f.end);
            // Inferring checks every visible frame, parsing stops here.
            if mode == Mode::Parse {
                break;
            }
        }
        if f.cut {
            break;
        }
        at = f.end;
    }
    Ok(w)
}

fn parse_response(p: &[u8]) -> Result<Head<'_>, ParseError> {
    if let [b'S' | b'N' | b'G'] = p {
        // The answer to SSLRequest / GSSENCRequest: accepted or not, the
        // exchange went as the protocol says.
        return Ok(Head {
            response_status: Some(ResponseStatus::Ok),
            message_len: Some(1),
            ..Head::default()
        });
    }
    let w = walk_response(p, Mode::Parse)?;
    let mut head = Head {
        response_status: Some(ResponseStatus::Ok),
        message_len: w.end.map(|e| e as u64),
        ..Head::default()
    };
    if w.only_async {
        head.unpaired = true;
        head.message_len = Some(p.len() as u64);
    }
    if let Some(body) = w.error {
        let e = error_fields(body);
        let code = e.code.map(text).filter(|c| is_sqlstate(c));
        let message = e.message.map_or("", text);
        head.response_status = Some(match (code, e.severity.map(text)) {
            (Some(c), _) => status_of_sqlstate(c),
            (None, Some("FATAL" | "PANIC")) => ResponseStatus::ServerError,
            (None, _) => ResponseStatus::ClientError,
        });
        head.exception = match code {
            // Errors are rare; the code is worth the allocation.
            Some(c) if message.is_empty() => Cow::Owned(format!("SQLSTATE {c}")),
            Some(c) => Cow::Owned(format!("SQLSTATE {c}: {message}")),
            None => Cow::Borrowed(message),
        };
    }
    Ok(head)
}

/// The fields of an `ErrorResponse`/`NoticeResponse` that a span uses.
#[derive(Default)]
struct ErrorFields<'a> {
    /// `V` (never localized, since 9.6), else `S`.
    severity: Option<&'a [u8]>,
    code: Option<&'a [u8]>,
    message: Option<&'a [u8]>,
}

fn error_fields(body: &[u8]) -> ErrorFields<'_> {
    let mut e = ErrorFields::default();
    let mut rest = body;
    while let [field, tail @ ..] = rest {
        if *field == 0 {
            break;
        }
        let (value, next) = match tail.iter().position(|&b| b == 0) {
            Some(n) => (
                tail.get(..n).unwrap_or_default(),
                tail.get(n + 1..).unwrap_or_default(),
            ),
            None => (tail, &[][..]),
        };
        match field {
            b'V' => e.severity = Some(value),
            b'S' if e.severity.is_none() => e.severity = Some(value),
            b'C' => e.code = Some(value),
            b'M' => e.message = Some(value),
            _ => {}
        }
        rest = next;
    }
    e
}

fn is_sqlstate(c: &str) -> bool {
    c.len() == 5
        && c.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

fn is_frontend_type(t: u8) -> bool {
    matches!(
        t,
        b'B' | b'C'
            | b'c'
            | b'D'
            | b'd'
            | b'E'
            | b'F'
            | b'f'
            | b'H'
            | b'P'
            | b'p'
            | b'Q'
            | b'S'
            | b'X'
    )
}

fn is_backend_type(t: u8) -> bool {
    matches!(
        t,
        b'1' | b'2'
            | b'3'
            | b'A'
            | b'C'
            | b'c'
            | b'D'
            | b'd'
            | b'E'
            | b'G'
            | b'H'
            | b'I'
            | b'K'
            | b'N'
            | b'n'
            | b'R'
            | b'S'
            | b's'
            | b'T'
            | b't'
            | b'V'
            | b'v'
            | b'W'
            | b'Z'
    )
}

/// Frames a client message can start with, for `infer`. COPY data, password
/// and function-call bodies are free-form bytes, too weak a signal, and
/// never open a socket's traffic anyway.
fn opens_request(t: u8) -> bool {
    matches!(
        t,
        b'Q' | b'P' | b'B' | b'D' | b'E' | b'C' | b'S' | b'H' | b'X'
    )
}

/// Frames a server message can start with, for `infer`: the first frames
/// of answers to queries and to the startup. Not `DataRow` or COPY data,
/// which only continue a message, nor frames whose bodies are mostly free
/// bytes and which never open a socket's traffic (`BackendKeyData`,
/// `NotificationResponse`, `FunctionCallResponse`,
/// `NegotiateProtocolVersion`).
fn opens_response(t: u8) -> bool {
    matches!(
        t,
        b'R' | b'1'
            | b'2'
            | b'3'
            | b'C'
            | b'E'
            | b'G'
            | b'H'
            | b'I'
            | b'n'
            | b'N'
            | b'S'
            | b's'
            | b'T'
            | b't'
            | b'W'
            | b'Z'
    )
}

/// Whether `infer` may judge by this first frame: not too long, and not cut
/// before enough of its body.
fn inferable(f: &Frame<'_>) -> bool {
    f.len < MAX_INFER_FRAME_LEN && (!f.cut || 5 + f.body.len() >= MIN_INFER_CUT_PAYLOAD)
}

/// Frontend frames after which the client waits for the server.
fn ends_request(t: u8) -> bool {
    // Not Flush: drivers send it inside batches that a Sync ends.
    matches!(t, b'Q' | b'S' | b'X' | b'F' | b'p' | b'c' | b'f')
}

fn frontend_name(t: u8) -> &'static str {
    match t {
        b'B' => "Bind",
        b'C' => "Close",
        b'c' => "CopyDone",
        b'D' => "Describe",
        b'd' => "CopyData",
        b'E' => "Execute",
        b'F' => "FunctionCall",
        b'f' => "CopyFail",
        b'H' => "Flush",
        b'P' => "Parse",
        b'p' => "AUTH",
        b'Q' => "Query",
        b'S' => "Sync",
        b'X' => "Terminate",
        _ => "message",
    }
}

fn backend_name(t: u8) -> &'static str {
    match t {
        b'1' => "ParseComplete",
        b'2' => "BindComplete",
        b'3' => "CloseComplete",
        b'A' => "NotificationResponse",
        b'C' => "CommandComplete",
        b'D' => "DataRow",
        b'E' => "ErrorResponse",
        b'G' => "CopyInResponse",
        b'H' => "CopyOutResponse",
        b'I' => "EmptyQueryResponse",
        b'K' => "BackendKeyData",
        b'N' => "NoticeResponse",
        b'n' => "NoData",
        b'R' => "Authentication",
        b'S' => "ParameterStatus",
        b's' => "PortalSuspended",
        b'T' => "RowDescription",
        b't' => "ParameterDescription",
        b'V' => "FunctionCallResponse",
        b'v' => "NegotiateProtocolVersion",
        b'W' => "CopyBothResponse",
        b'Z' => "ReadyForQuery",
        _ => "message",
    }
}

/// Why reading a frame body stopped.
enum Stop {
    /// The visible bytes ran out inside a frame that goes on: no verdict.
    Cut,
    /// The body breaks the message's grammar.
    Bad,
}

/// Reads the visible body of one frame.
struct Cursor<'a> {
    rest: &'a [u8],
    /// The frame goes on past `rest`.
    cut: bool,
}

impl<'a> Cursor<'a> {
    fn new(f: &Frame<'a>) -> Self {
        Cursor {
            rest: f.body,
            cut: f.cut,
        }
    }

    fn short(&self) -> Stop {
        if self.cut {
            Stop::Cut
        } else {
            Stop::Bad
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Stop> {
        if n > self.rest.len() {
            return Err(self.short());
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, Stop> {
        match *self.take(1)? {
            [b] => Ok(b),
            _ => Err(Stop::Bad),
        }
    }

    fn i16(&mut self) -> Result<i16, Stop> {
        match *self.take(2)? {
            [a, b] => Ok(i16::from_be_bytes([a, b])),
            _ => Err(Stop::Bad),
        }
    }

    fn i32(&mut self) -> Result<i32, Stop> {
        match *self.take(4)? {
            [a, b, c, d] => Ok(i32::from_be_bytes([a, b, c, d])),
            _ => Err(Stop::Bad),
        }
    }

    /// A count (of fields, parameters, ...): never negative.
    fn count(&mut self) -> Result<usize, Stop> {
        usize::try_from(self.i16()?).map_err(|_| Stop::Bad)
    }

    /// A NUL-terminated string, without its NUL.
    fn cstr(&mut self) -> Result<&'a [u8], Stop> {
        match self.rest.iter().position(|&b| b == 0) {
            Some(n) => {
                let s = self.take(n)?;
                self.take(1)?;
                Ok(s)
            }
            None => Err(self.short()),
        }
    }

    /// As much of a NUL-terminated string as is visible.
    fn cstr_visible(&mut self) -> &'a [u8] {
        match self.rest.iter().position(|&b| b == 0) {
            Some(n) => {
                let s = self.rest.get(..n).unwrap_or_default();
                self.rest = self.rest.get(n + 1..).unwrap_or_default();
                s
            }
            None => std::mem::take(&mut self.rest),
        }
    }

    /// A length-prefixed value (`-1` for NULL).
    fn value(&mut self) -> Result<(), Stop> {
        match self.i32()? {
            -1 => Ok(()),
            n => self
                .take(usize::try_from(n).map_err(|_| Stop::Bad)?)
                .map(drop),
        }
    }

    /// A format code: text or binary.
    fn format(&mut self) -> Result<(), Stop> {
        match self.i16()? {
            0 | 1 => Ok(()),
            _ => Err(Stop::Bad),
        }
    }

    /// The body ends here.
    fn end(&self) -> Result<(), Stop> {
        if self.rest.is_empty() && !self.cut {
            Ok(())
        } else {
            Err(Stop::Bad)
        }
    }
}

/// Whether the visible body of a frontend frame fits its grammar.
fn frontend_body_ok(f: &Frame<'_>, mode: Mode) -> bool {
    !matches!(frontend_body(f, mode == Mode::Infer), Err(Stop::Bad))
}

fn frontend_body(f: &Frame<'_>, strict: bool) -> Result<(), Stop> {
    let mut c = Cursor::new(f);
    match f.ty {
        b'Q' => {
            let (sql, whole) = text_field(&mut c)?;
            if strict && (sql.is_empty() || !printable(sql, !whole)) {
                return Err(Stop::Bad);
            }
            if whole {
                c.end()
            } else {
                Err(Stop::Cut)
            }
        }
        b'P' => {
            name(&mut c, strict)?;
            let sql = match c.cstr() {
                Ok(s) => s,
                Err(Stop::Cut) => {
                    let s = c.rest;
                    return if strict && !printable(s, true) {
                        Err(Stop::Bad)
                    } else {
                        Err(Stop::Cut)
                    };
                }
                Err(Stop::Bad) => return Err(Stop::Bad),
            };
            if strict && (sql.is_empty() || !printable(sql, false)) {
                return Err(Stop::Bad);
            }
            for _ in 0..c.count()? {
                c.i32()?;
            }
            c.end()
        }
        b'B' => {
            name(&mut c, strict)?;
            name(&mut c, strict)?;
            for _ in 0..c.count()? {
                c.format()?;
            }
            for _ in 0..c.count()? {
                c.value()?;
            }
            for _ in 0..c.count()? {
                c.format()?;
            }
            c.end()
        }
        b'D' | b'C' => {
            if !matches!(c.u8()?, b'S' | b'P') {
                return Err(Stop::Bad);
            }
            name(&mut c, strict)?;
            c.end()
        }
        b'E' => {
            name(&mut c, strict)?;
            if c.i32()? < 0 {
                return Err(Stop::Bad);
            }
            c.end()
        }
        b'S' | b'H' | b'X' | b'c' => c.end(),
        b'f' => {
            c.cstr()?;
            c.end()
        }
        b'F' => {
            c.i32()?;
            for _ in 0..c.count()? {
                c.format()?;
            }
            for _ in 0..c.count()? {
                c.value()?;
            }
            c.format()?;
            c.end()
        }
        // CopyData, password and SASL messages carry free-form bytes.
        _ => Ok(()),
    }
}

/// A NUL-terminated text that the cut may end early: its visible part, and
/// whether its NUL was seen. When not, the caller checks the part and
/// returns [`Stop::Cut`].
fn text_field<'a>(c: &mut Cursor<'a>) -> Result<(&'a [u8], bool), Stop> {
    match c.cstr() {
        Ok(s) => Ok((s, true)),
        Err(Stop::Cut) => Ok((std::mem::take(&mut c.rest), false)),
        Err(Stop::Bad) => Err(Stop::Bad),
    }
}

/// A statement or portal name; printable when inferring.
fn name(c: &mut Cursor<'_>, strict: bool) -> Result<(), Stop> {
    match c.cstr() {
        Ok(s) if strict && !printable(s, false) => Err(Stop::Bad),
        Ok(_) => Ok(()),
        Err(Stop::Cut) if strict && !printable(c.rest, true) => Err(Stop::Bad),
        Err(e) => Err(e),
    }
}

/// Whether the visible body of a backend frame fits its grammar.
fn backend_body_ok(f: &Frame<'_>, mode: Mode) -> bool {
    !matches!(backend_body(f, mode == Mode::Infer), Err(Stop::Bad))
}

fn backend_body(f: &Frame<'_>, strict: bool) -> Result<(), Stop> {
    let mut c = Cursor::new(f);
    match f.ty {
        b'R' => {
            match c.i32()? {
                0 | 2 | 3 | 6 | 7 | 9 => {}
                5 => {
                    c.take(4)?; // MD5 salt
                }
                // SASL mechanism names, SCRAM messages: text.
                10..=12 if strict => {
                    let text = c.rest.iter().all(|&b| b == 0 || matches!(b, b' '..=b'~'));
                    return if text { Ok(()) } else { Err(Stop::Bad) };
                }
                // GSS data: opaque bytes, too weak to infer by.
                8 if strict => return Err(Stop::Bad),
                8 | 10..=12 => return Ok(()),
                _ => return Err(Stop::Bad),
            }
            c.end()
        }
        // Process ID and a secret key: 4 bytes up to protocol 3.1, up to
        // 256 since 3.2.
        b'K' if f.len == 12 || (!strict && (12..=4 + 4 + 256).contains(&f.len)) => Ok(()),
        b'K' => Err(Stop::Bad),
        b'S' => {
            name(&mut c, strict)?;
            c.cstr()?;
            c.end()
        }
        b'Z' => {
            if f.len != 5 || !matches!(c.u8()?, b'I' | b'T' | b'E') {
                return Err(Stop::Bad);
            }
            c.end()
        }
        b'1' | b'2' | b'3' | b'n' | b's' | b'I' | b'c' => c.end(),
        b'C' => {
            let (tag, whole) = text_field(&mut c)?;
            if !tag.iter().all(|b| matches!(b, b' '..=b'~'))
                || (strict && !tag.first().is_some_and(u8::is_ascii_uppercase))
            {
                return Err(Stop::Bad);
            }
            if whole {
                c.end()
            } else {
                Err(Stop::Cut)
            }
        }
        b'D' => {
            for _ in 0..c.count()? {
                c.value()?;
            }
            c.end()
        }
        b'T' => {
            for _ in 0..c.count()? {
                name(&mut c, strict)?;
                c.take(16)?; // table OID, column, type OID, size, modifier
                c.format()?;
            }
            c.end()
        }
        b't' => {
            for _ in 0..c.count()? {
                c.i32()?;
            }
            c.end()
        }
        b'E' | b'N' => loop {
            match c.u8()? {
                0 => return c.end(),
                code if strict && !code.is_ascii_alphabetic() => return Err(Stop::Bad),
                _ => {
                    let (v, whole) = text_field(&mut c)?;
                    if strict && !printable(v, !whole) {
                        return Err(Stop::Bad);
                    }
                    if !whole {
                        return Err(Stop::Cut);
                    }
                }
            }
        },
        b'A' => {
            c.i32()?;
            name(&mut c, strict)?;
            c.cstr()?;
            c.end()
        }
        b'G' | b'H' | b'W' => {
            if !matches!(c.u8()?, 0 | 1) {
                return Err(Stop::Bad);
            }
            for _ in 0..c.count()? {
                c.format()?;
            }
            c.end()
        }
        b'V' => {
            c.value()?;
            c.end()
        }
        b'v' => {
            c.i32()?;
            let n = c.i32()?;
            for _ in 0..n.max(0) {
                c.cstr()?;
            }
            c.end()
        }
        // CopyData.
        _ => Ok(()),
    }
}

/// Text as people write it: UTF-8 (an incomplete last character allowed
/// where the bytes are cut) without control characters but tab, newline,
/// carriage return and form feed.
fn printable(b: &[u8], cut: bool) -> bool {
    let s = match std::str::from_utf8(b) {
        Ok(s) => s,
        Err(e) if cut && e.error_len().is_none() => text(b),
        Err(_) => return false,
    };
    s.chars()
        .all(|ch| !ch.is_control() || matches!(ch, '\t' | '\n' | '\r' | '\x0c'))
}

/// The longest UTF-8 prefix of `b`: the capture may cut a character, and a
/// client encoding other than UTF-8 may not be UTF-8 at all.
fn text(b: &[u8]) -> &str {
    match std::str::from_utf8(b) {
        Ok(s) => s,
        Err(e) => b
            .get(..e.valid_up_to())
            .and_then(|v| std::str::from_utf8(v).ok())
            .unwrap_or(""),
    }
}

#[cfg(test)]
mod tests;
