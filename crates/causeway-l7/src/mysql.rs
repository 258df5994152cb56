//! MySQL / MariaDB client-server protocol: commands, replies and the
//! connection handshake, read from the first bytes of a message.
//!
//! Every message is one or more packets: a 3-byte little-endian payload
//! length, a sequence id, then the payload. A client command is one packet
//! with sequence id 0 whose first byte names the command; the server's reply
//! counts on from 1. That makes a request's length known from its first four
//! bytes, so [`Head::message_len`] is set for every request (unless its
//! packet is full, 2^24 - 1 bytes, and continues in the next), and for every
//! reply that is a single packet (OK, ERR, a lone EOF). Replies of many
//! packets (result sets, the definitions that follow a COM_STMT_PREPARE OK,
//! COM_FIELD_LIST, multi-statement results) have no length up front: the
//! head gives it when the captured bytes hold the whole reply (which also
//! splits replies that a pipelining client reads at once), `None`
//! otherwise, and then [`ends_message`] looks at each whole syscall for the
//! packet that ends the reply.
//!
//! What a span gets:
//! - requests: `request_type` is the command name (`COM_QUERY`,
//!   `COM_STMT_EXECUTE`...), the SQL of COM_QUERY and COM_STMT_PREPARE goes to
//!   `request_resource` (as much as was captured), a statement id to
//!   `request_resource` as `statement_id=N`, a database (COM_INIT_DB, login)
//!   to `request_domain`. The client's handshake response is `LOGIN` with
//!   `user=NAME`; its auth data, like every password, is never read.
//! - replies: ERR gives the error number in `response_code`, the message in
//!   `exception`, and a status from [`error_status`]; every other final reply
//!   is `Ok`.
//!
//! The pairing is one reply per request. Packets that are part of no such
//! pair are marked [`Head::unpaired`]: the server greeting, commands the
//! server never answers (COM_QUIT, COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA,
//! an SSL request, after which the connection is TLS), and the packets of a
//! multi-step exchange between a command and its final reply (auth switch
//! and auth data during login, a LOCAL INFILE request and the file contents,
//! MariaDB progress reports). A LOGIN therefore pairs with the OK or ERR that
//! ends the whole authentication.
//!
//! Everything here borrows from the input except the two values that are
//! not in it as text: `statement_id=N` and `user=NAME`.

use std::borrow::Cow;

use causeway_model::ResponseStatus;

use crate::infer::MessageKind;
use crate::{Head, ParseError};

#[cfg(test)]
mod tests;

/// Bytes of a packet header: payload length (3) and sequence id (1).
const HEADER_LEN: usize = 4;
/// A packet with a payload this long is continued by the next packet, so the
/// message's length is not known from its first header.
const MAX_PAYLOAD: usize = 0xff_ffff;

// Command bytes (MariaDB include/mysql_com.h, `enum enum_server_command`).
const COM_SLEEP: u8 = 0x00;
const COM_QUIT: u8 = 0x01;
const COM_INIT_DB: u8 = 0x02;
const COM_QUERY: u8 = 0x03;
const COM_FIELD_LIST: u8 = 0x04;
const COM_CREATE_DB: u8 = 0x05;
const COM_DROP_DB: u8 = 0x06;
const COM_REFRESH: u8 = 0x07;
const COM_SHUTDOWN: u8 = 0x08;
const COM_STATISTICS: u8 = 0x09;
const COM_PROCESS_INFO: u8 = 0x0a;
const COM_CONNECT: u8 = 0x0b;
const COM_PROCESS_KILL: u8 = 0x0c;
const COM_DEBUG: u8 = 0x0d;
const COM_PING: u8 = 0x0e;
const COM_TIME: u8 = 0x0f;
const COM_DELAYED_INSERT: u8 = 0x10;
const COM_CHANGE_USER: u8 = 0x11;
const COM_BINLOG_DUMP: u8 = 0x12;
const COM_TABLE_DUMP: u8 = 0x13;
const COM_CONNECT_OUT: u8 = 0x14;
const COM_REGISTER_SLAVE: u8 = 0x15;
const COM_STMT_PREPARE: u8 = 0x16;
const COM_STMT_EXECUTE: u8 = 0x17;
const COM_STMT_SEND_LONG_DATA: u8 = 0x18;
const COM_STMT_CLOSE: u8 = 0x19;
const COM_STMT_RESET: u8 = 0x1a;
const COM_SET_OPTION: u8 = 0x1b;
const COM_STMT_FETCH: u8 = 0x1c;
const COM_DAEMON: u8 = 0x1d;
const COM_BINLOG_DUMP_GTID: u8 = 0x1e;
const COM_RESET_CONNECTION: u8 = 0x1f;
/// MariaDB: array binding of a prepared statement.
const COM_STMT_BULK_EXECUTE: u8 = 0xfa;

// Capability flags of the handshake response.
const CLIENT_CONNECT_WITH_DB: u32 = 1 << 3;
const CLIENT_PROTOCOL_41: u32 = 1 << 9;
const CLIENT_SSL: u32 = 1 << 11;
const CLIENT_SECURE_CONNECTION: u32 = 1 << 15;
const CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA: u32 = 1 << 21;

/// Server status flag of OK and EOF packets: another result of the same
/// statement follows (multi-statements, stored procedures).
const SERVER_MORE_RESULTS_EXISTS: u16 = 0x0008;

/// MariaDB's greeting prefixes its version with this so that pre-5.5 MySQL
/// replication clients accept it; it says nothing about the server.
const MARIADB_VERSION_PREFIX: &str = "5.5.5-";

/// How many SQL bytes `infer` checks for text; enough to see a NUL or binary
/// header of another protocol, bounded so inference stays cheap.
const SQL_CHECK_LEN: usize = 64;

/// Longest ERR packet payload the tail scan of [`ends_message`] looks for:
/// the header and SQLSTATE plus MariaDB's 512-byte message limit.
const MAX_ERR_PAYLOAD: usize = 9 + 512;
/// Longest OK-with-0xfe-header payload the tail scan looks for (a result set
/// end under CLIENT_DEPRECATE_EOF, with room for session-state info).
const MAX_EOF_OK_PAYLOAD: usize = 64;

/// The name of a command byte, as MySQL's documentation spells it.
pub fn command_name(command: u8) -> Option<&'static str> {
    Some(match command {
        COM_SLEEP => "COM_SLEEP",
        COM_QUIT => "COM_QUIT",
        COM_INIT_DB => "COM_INIT_DB",
        COM_QUERY => "COM_QUERY",
        COM_FIELD_LIST => "COM_FIELD_LIST",
        COM_CREATE_DB => "COM_CREATE_DB",
        COM_DROP_DB => "COM_DROP_DB",
        COM_REFRESH => "COM_REFRESH",
        COM_SHUTDOWN => "COM_SHUTDOWN",
        COM_STATISTICS => "COM_STATISTICS",
        COM_PROCESS_INFO => "COM_PROCESS_INFO",
        COM_CONNECT => "COM_CONNECT",
        COM_PROCESS_KILL => "COM_PROCESS_KILL",
        COM_DEBUG => "COM_DEBUG",
        COM_PING => "COM_PING",
        COM_TIME => "COM_TIME",
        COM_DELAYED_INSERT => "COM_DELAYED_INSERT",
        COM_CHANGE_USER => "COM_CHANGE_USER",
        COM_BINLOG_DUMP => "COM_BINLOG_DUMP",
        COM_TABLE_DUMP => "COM_TABLE_DUMP",
        COM_CONNECT_OUT => "COM_CONNECT_OUT",
        COM_REGISTER_SLAVE => "COM_REGISTER_SLAVE",
        COM_STMT_PREPARE => "COM_STMT_PREPARE",
        COM_STMT_EXECUTE => "COM_STMT_EXECUTE",
        COM_STMT_SEND_LONG_DATA => "COM_STMT_SEND_LONG_DATA",
        COM_STMT_CLOSE => "COM_STMT_CLOSE",
        COM_STMT_RESET => "COM_STMT_RESET",
        COM_SET_OPTION => "COM_SET_OPTION",
        COM_STMT_FETCH => "COM_STMT_FETCH",
        COM_DAEMON => "COM_DAEMON",
        COM_BINLOG_DUMP_GTID => "COM_BINLOG_DUMP_GTID",
        COM_RESET_CONNECTION => "COM_RESET_CONNECTION",
        COM_STMT_BULK_EXECUTE => "COM_STMT_BULK_EXECUTE",
        _ => return None,
    })
}

/// The outcome class of an ERR packet's error number.
///
/// An ERR answers a statement, and most errors are about what the client
/// asked (1064 syntax, 1146 no such table, 1045 access denied, 1062
/// duplicate key...), so the default is `ClientError`. `ServerError` is kept
/// for conditions of the server itself, which a correct request can meet and
/// a retry may clear:
///
/// | codes | condition |
/// |---|---|
/// | 1021, 1030, 1114 | disk full, storage engine error, table full |
/// | 1037, 1038, 1041 | out of memory, sort memory, resources |
/// | 1040, 1203, 1226 | too many connections, per-user connection and resource limits |
/// | 1053, 1077–1080 | server shutdown in progress |
/// | 1105 | unknown (internal) error |
/// | 1135 | cannot create a thread |
/// | 1152, 1184, 1927 | connection aborted or killed |
/// | 1158–1161 | network read/write errors and timeouts |
/// | 1180, 1181 | error during COMMIT / ROLLBACK |
/// | 1194, 1195 | table crashed |
/// | 1205, 1206, 1213 | lock wait timeout, lock table full, deadlock |
/// | 1290, 1836 | server running read-only (`--read-only`, replica) |
/// | 1317, 1969, 3024 | query interrupted, statement time limit (MariaDB, MySQL) |
/// | 1615 | prepared statement needs re-preparing (metadata changed) |
/// | 4031 | disconnected by the server for inactivity (MySQL 8) |
/// | 2000–2999 | client-library errors (CR_*: lost connection 2013, gone away 2006), sent on the wire only by proxies |
pub fn error_status(code: u16) -> ResponseStatus {
    match code {
        1021
        | 1030
        | 1037
        | 1038
        | 1040
        | 1041
        | 1053
        | 1077..=1080
        | 1105
        | 1114
        | 1135
        | 1152
        | 1158..=1161
        | 1180
        | 1181
        | 1184
        | 1194
        | 1195
        | 1203
        | 1205
        | 1206
        | 1213
        | 1226
        | 1290
        | 1317
        | 1615
        | 1836
        | 1927
        | 1969
        | 2000..=2999
        | 3024
        | 4031 => ResponseStatus::ServerError,
        _ => ResponseStatus::ClientError,
    }
}

/// The statement id a message carries: a COM_STMT_* request's, or the one a
/// COM_STMT_PREPARE OK assigns. With it the caller can remember the SQL of
/// a prepare (request `request_resource`, reply statement id) and name the
/// executions that follow.
pub fn statement_id(payload: &[u8], kind: MessageKind) -> Option<u32> {
    let p = Packet::read(payload)?;
    match kind {
        MessageKind::Request if p.seq == 0 => match *p.body.first()? {
            COM_STMT_EXECUTE
            | COM_STMT_CLOSE
            | COM_STMT_RESET
            | COM_STMT_FETCH
            | COM_STMT_SEND_LONG_DATA
            | COM_STMT_BULK_EXECUTE => u32_le(p.body.get(1..5)?),
            _ => None,
        },
        MessageKind::Response if p.seq >= 1 => {
            prepare_ok(&p).and_then(|_| u32_le(p.body.get(1..5)?))
        }
        _ => None,
    }
}

/// Whether the bytes start a MySQL packet of a known shape, and which kind
/// of message it is.
///
/// Strict, because it runs on the first message of every unclassified
/// socket: the header's length must fit the bytes seen (exactly, or longer
/// only where the payload may be cut by the capture: SQL text, an ERR
/// message, a login's trailing attributes), any packets after it must chain
/// on, and the payload must have the shape of a command (sequence id 0 and a
/// known command byte with its arguments; for COM_QUERY, SQL text), a login
/// or SSL request (sequence id 1), a server greeting (protocol 10), or a
/// reply (OK, ERR, EOF, a result set's column count followed by a column
/// definition). Replies are `Response`; the greeting too, as the server
/// speaks it.
pub fn infer(payload: &[u8]) -> Option<MessageKind> {
    let p = Packet::read(payload)?;
    if p.len == 0 || !packets_chain(payload) {
        return None;
    }
    if p.seq == 0 {
        if is_command(&p) {
            return Some(MessageKind::Request);
        }
        if is_greeting(&p) || is_err(&p) {
            return Some(MessageKind::Response);
        }
        return None;
    }
    if p.seq == 1 && (is_handshake_response(&p) || is_ssl_request(&p)) {
        return Some(MessageKind::Request);
    }
    is_reply(&p, payload).then_some(MessageKind::Response)
}

/// The head of the MySQL message that starts at `payload[0]`.
///
/// `message_len` is `None` for a request whose first packet is full (the
/// message continues in more packets) and for a multi-packet reply whose
/// end is not within `payload`; see the module documentation.
///
/// `Incomplete` when the bytes stop before the header or the part of the
/// payload the head needs; `Mismatch` for a TLS record (the connection
/// switched to TLS after an SSL request); `Invalid` for an empty packet, an
/// unknown command, or a reply that breaks its format.
pub fn parse(payload: &[u8], kind: MessageKind) -> Result<Head<'_>, ParseError> {
    let p = Packet::read(payload).ok_or(ParseError::Incomplete)?;
    // Servers read a packet's 4-byte header and its payload in two syscalls:
    // a header alone says nothing yet of what the packet is.
    if p.body.is_empty() && p.len > 0 {
        return Err(ParseError::Incomplete);
    }
    // After an SSL request the client and server speak TLS on the same
    // socket. A seq-0 command packet can share a TLS record's first bytes
    // only by an implausible length, so those are left to the command check.
    if is_tls_record(payload) && !(kind == MessageKind::Request && p.seq == 0) {
        return Err(ParseError::Mismatch);
    }
    match kind {
        MessageKind::Request => parse_request(&p),
        MessageKind::Response => parse_response(&p, payload),
    }
}

/// Whether a whole syscall's bytes end a MySQL message whose head gave no
/// length.
///
/// Replies: when the bytes start a reply (sequence id 1), its packets are
/// walked through the result set's structure (column count, definitions,
/// optional EOF, rows, then EOF, an OK with a 0xfe header under
/// CLIENT_DEPRECATE_EOF, or ERR; the definitions after a COM_STMT_PREPARE OK;
/// COM_FIELD_LIST's definitions), and the answer is whether the last packet
/// ends the reply exactly at the end of the bytes, with no further result
/// announced (SERVER_MORE_RESULTS_EXISTS). Later syscalls of a big reply
/// start anywhere inside a packet (the server writes whole 16 KiB buffers),
/// so when the walk does not fit, the bytes are instead checked for ending
/// with such a final packet. Requests: true when the bytes are whole packets
/// and the last one is not continued (payload shorter than 2^24 - 1).
pub fn ends_message(payload: &[u8], kind: MessageKind) -> bool {
    match kind {
        MessageKind::Request => requests_end(payload),
        MessageKind::Response => match walk_reply(payload) {
            Some(ended) => ended,
            None => ends_with_final_packet(payload),
        },
    }
}

// --- packets -----------------------------------------------------------------------

/// One packet at the start of a buffer.
struct Packet<'a> {
    /// Payload length from the header.
    len: usize,
    seq: u8,
    /// The payload bytes captured: all `len` of them, or fewer when the
    /// buffer stops first.
    body: &'a [u8],
}

impl<'a> Packet<'a> {
    fn read(buf: &'a [u8]) -> Option<Packet<'a>> {
        let [a, b, c, seq, ..] = *buf else {
            return None;
        };
        let len = usize::from(a) | usize::from(b) << 8 | usize::from(c) << 16;
        let rest = &buf[HEADER_LEN..];
        let body = rest.get(..len).unwrap_or(rest);
        Some(Packet { len, seq, body })
    }

    /// Whether every payload byte was captured.
    fn complete(&self) -> bool {
        self.body.len() == self.len
    }

    /// Bytes of the message this packet starts, when it is its only packet.
    fn message_len(&self) -> Option<u64> {
        (self.len < MAX_PAYLOAD).then_some((self.len + HEADER_LEN) as u64)
    }
}

/// The packets of `buf`, in order, while their headers are complete; the
/// last one may be cut short.
fn packets(buf: &[u8]) -> impl Iterator<Item = Packet<'_>> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let p = Packet::read(buf.get(pos..)?)?;
        pos = pos.saturating_add(HEADER_LEN + p.len);
        Some(p)
    })
}

/// Whether the packets after the first have headers that continue it: the
/// next sequence id, or 0 when a client sends a further command in the same
/// write (as connectors do after COM_STMT_CLOSE). The buffer may end inside
/// any packet, as the capture cuts it.
fn packets_chain(buf: &[u8]) -> bool {
    // Enough packets to tell text or random bytes from a chain; a long
    // result set need not be walked to the end.
    const MAX_CHECKED: usize = 32;
    let mut prev: Option<u8> = None;
    for p in packets(buf).take(MAX_CHECKED) {
        if let Some(s) = prev {
            if p.seq != s.wrapping_add(1) && p.seq != 0 {
                return false;
            }
        }
        prev = Some(p.seq);
    }
    true
}

/// A length-encoded integer at the start of `b`, and how many bytes it took.
fn lenenc(b: &[u8]) -> Option<(u64, usize)> {
    let first = *b.first()?;
    let width = match first {
        0..=0xfa => return Some((u64::from(first), 1)),
        0xfc => 2,
        0xfd => 3,
        0xfe => 8,
        // 0xfb is NULL in a row, 0xff an ERR header: no integer.
        _ => return None,
    };
    let bytes = b.get(1..1 + width)?;
    let v = bytes
        .iter()
        .rev()
        .fold(0u64, |acc, &x| acc << 8 | u64::from(x));
    Some((v, 1 + width))
}

fn u16_le(b: &[u8]) -> Option<u16> {
    match *b {
        [x, y, ..] => Some(u16::from_le_bytes([x, y])),
        _ => None,
    }
}

fn u32_le(b: &[u8]) -> Option<u32> {
    match *b {
        [a, b, c, d, ..] => Some(u32::from_le_bytes([a, b, c, d])),
        _ => None,
    }
}

/// The bytes before the first NUL, and whether a NUL was there.
fn until_nul(b: &[u8]) -> (&[u8], bool) {
    match b.iter().position(|&x| x == 0) {
        Some(i) => (&b[..i], true),
        None => (b, false),
    }
}

/// Bytes as text without copying when they are UTF-8. A multi-byte
/// character cut by the capture is dropped rather than shown as U+FFFD;
/// other invalid bytes (a latin1 literal in SQL) become U+FFFD, the only
/// case that allocates.
fn text(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(e) if e.error_len().is_none() => {
            Cow::Borrowed(std::str::from_utf8(&b[..e.valid_up_to()]).unwrap_or_default())
        }
        Err(_) => String::from_utf8_lossy(b),
    }
}

/// A TLS record header: content type 20-23, version 3.1-3.4 (TLS 1.0 to
/// 1.3; SSL 3.0's 3.0 is left out, as `xx 03 00` is also the header of a
/// MySQL packet of 788-791 bytes). Seen here when the connection went TLS
/// after an SSL request; as a MySQL header it would announce 66 KiB or more.
fn is_tls_record(b: &[u8]) -> bool {
    matches!(b, [0x14..=0x17, 0x03, 0x01..=0x04, ..])
}

fn is_def(body: &[u8]) -> bool {
    // Column and parameter definitions (Protocol::ColumnDefinition41) open
    // with the catalog, which is always the length-encoded string "def".
    body.starts_with(b"\x03def")
}

/// Text whose bytes are printable: no control characters but tab, CR, LF.
fn is_text(b: &[u8]) -> bool {
    b.iter()
        .all(|&c| (c >= 0x20 && c != 0x7f) || matches!(c, b'\t' | b'\r' | b'\n'))
}

// --- requests ----------------------------------------------------------------------

fn parse_request<'a>(p: &Packet<'a>) -> Result<Head<'a>, ParseError> {
    if p.seq == 0 {
        return parse_command(p);
    }
    if let Some(head) = parse_handshake_response(p)? {
        return Ok(head);
    }
    // Any other client packet past sequence id 0 continues an exchange a
    // command started: auth data after an auth switch or "more data"
    // (login, COM_CHANGE_USER), LOCAL INFILE contents and their empty end
    // packet. The command pairs with the final reply, so these do not.
    Ok(Head {
        request_type: Cow::Borrowed("CONTINUATION"),
        message_len: p.message_len(),
        unpaired: true,
        ..Head::default()
    })
}

fn parse_command<'a>(p: &Packet<'a>) -> Result<Head<'a>, ParseError> {
    if p.len == 0 {
        return Err(ParseError::Invalid("packet length"));
    }
    let (&cmd, args) = p.body.split_first().ok_or(ParseError::Incomplete)?;
    let name = command_name(cmd).ok_or(ParseError::Invalid("command"))?;
    let mut head = Head {
        request_type: Cow::Borrowed(name),
        message_len: p.message_len(),
        // No reply ever comes to these; pairing them would take the next
        // command's reply.
        unpaired: matches!(cmd, COM_QUIT | COM_STMT_CLOSE | COM_STMT_SEND_LONG_DATA),
        ..Head::default()
    };
    match cmd {
        COM_QUERY => head.request_resource = sql(skip_query_attributes(args)),
        COM_STMT_PREPARE => head.request_resource = sql(args),
        COM_INIT_DB | COM_CREATE_DB | COM_DROP_DB => head.request_domain = text(args),
        COM_FIELD_LIST => head.request_resource = text(until_nul(args).0),
        COM_STMT_EXECUTE
        | COM_STMT_CLOSE
        | COM_STMT_RESET
        | COM_STMT_FETCH
        | COM_STMT_SEND_LONG_DATA
        | COM_STMT_BULK_EXECUTE => {
            let id = match u32_le(args) {
                Some(id) => id,
                None if p.complete() => return Err(ParseError::Invalid("statement id")),
                None => return Err(ParseError::Incomplete),
            };
            head.request_resource = Cow::Owned(format!("statement_id={id}"));
        }
        COM_CHANGE_USER => {
            let (user, terminated) = until_nul(args);
            head.request_resource = Cow::Owned(format!("user={}", text(user)));
            if terminated {
                // The 4.1 layout: auth data with a one-byte length, then
                // the database; the auth data is skipped, never read.
                let rest = &args[user.len() + 1..];
                if let Some(&n) = rest.first() {
                    if let Some(db) = rest.get(1 + usize::from(n)..) {
                        head.request_domain = text(until_nul(db).0);
                    }
                }
            }
        }
        _ => {}
    }
    Ok(head)
}

/// SQL as a span shows it: without the whitespace around it (trimmed after
/// decoding, so that a character cut by the capture leaves no trailing
/// space behind).
fn sql(b: &[u8]) -> Cow<'_, str> {
    // Some clients (mysqlslap) send the C string's terminating NUL too.
    let b = b.strip_suffix(b"\0").unwrap_or(b);
    match text(b) {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim_ascii()),
        Cow::Owned(s) if s.trim_ascii().len() == s.len() => Cow::Owned(s),
        Cow::Owned(s) => Cow::Owned(s.trim_ascii().to_owned()),
    }
}

/// The SQL of a COM_QUERY sent with CLIENT_QUERY_ATTRIBUTES (MySQL 8
/// connectors): a parameter count and a parameter set count precede it.
/// SQL never starts with a byte below 0x09, so such a byte can only be that
/// prefix. Without attributes it is `00 01`; with attributes the values
/// that follow need their types to be skipped, so no SQL is shown.
fn skip_query_attributes(args: &[u8]) -> &[u8] {
    match args {
        [0x00, 0x01, rest @ ..] => rest,
        [0x00..=0x08, ..] => &[],
        _ => args,
    }
}

/// The client's handshake response (or SSL request) at sequence id 1 (2
/// after an SSL request, but then it is encrypted); `Ok(None)` when the
/// packet has another shape.
fn parse_handshake_response<'a>(p: &Packet<'a>) -> Result<Option<Head<'a>>, ParseError> {
    if p.seq > 2 || !handshake_fixed_part(p) {
        return Ok(None);
    }
    let caps = u32_le(p.body).unwrap_or_default();
    if p.len == 32 {
        // Only the fixed part: the client asks for TLS and says nothing
        // more in clear text, so no reply follows that could pair with it.
        return Ok(Some(Head {
            request_type: Cow::Borrowed("SSL_REQUEST"),
            message_len: p.message_len(),
            unpaired: true,
            ..Head::default()
        }));
    }
    let rest = &p.body[32..];
    let (user, terminated) = until_nul(rest);
    if !terminated && !p.complete() {
        return Err(ParseError::Incomplete);
    }
    let mut head = Head {
        request_type: Cow::Borrowed("LOGIN"),
        request_resource: Cow::Owned(format!("user={}", text(user))),
        message_len: p.message_len(),
        ..Head::default()
    };
    if terminated && caps & CLIENT_CONNECT_WITH_DB != 0 {
        // Skip the auth data (never read: it is derived from the password)
        // to reach the database name.
        let auth = &rest[user.len() + 1..];
        let skip = if caps & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            lenenc(auth).and_then(|(n, w)| usize::try_from(n).ok()?.checked_add(w))
        } else if caps & CLIENT_SECURE_CONNECTION != 0 {
            auth.first().map(|&n| 1 + usize::from(n))
        } else {
            Some(until_nul(auth).0.len() + 1)
        };
        if let Some(db) = skip.and_then(|n| auth.get(n..)) {
            head.request_domain = text(until_nul(db).0);
        }
    }
    Ok(Some(head))
}

/// The fixed 32 bytes of a 4.1 handshake response: capabilities with
/// CLIENT_PROTOCOL_41, max packet size, character set, and a zero filler.
/// MariaDB puts its extended capabilities in the filler's last 4 bytes.
fn handshake_fixed_part(p: &Packet<'_>) -> bool {
    let Some(fixed) = p.body.get(..32) else {
        return false;
    };
    let caps = u32_le(fixed).unwrap_or_default();
    caps & CLIENT_PROTOCOL_41 != 0 && fixed[9..28].iter().all(|&b| b == 0)
}

fn requests_end(buf: &[u8]) -> bool {
    let mut pos = 0usize;
    let mut last_len = 0usize;
    for p in packets(buf) {
        pos += HEADER_LEN + p.len;
        last_len = p.len;
    }
    pos == buf.len() && !buf.is_empty() && last_len < MAX_PAYLOAD
}

// --- replies -------------------------------------------------------------------------

/// A reply's head; `buf` is the whole payload, `p` its first packet.
fn parse_response<'a>(p: &Packet<'a>, buf: &[u8]) -> Result<Head<'a>, ParseError> {
    if p.len == 0 {
        return Err(ParseError::Invalid("packet length"));
    }
    let &first = p.body.first().ok_or(ParseError::Incomplete)?;
    if p.seq == 0 {
        // The server speaks first: a greeting, or an ERR refusing the
        // connection before any greeting (host blocked, too many
        // connections on some servers). No request of the client's asked.
        return match first {
            10 => parse_greeting(p),
            0xff => parse_err(p, false).map(|h| Head {
                unpaired: true,
                ..h
            }),
            _ => Err(ParseError::Invalid("greeting")),
        };
    }
    let interim = Head {
        message_len: p.message_len(),
        unpaired: true,
        ..Head::default()
    };
    // A reply of several packets has no length up front; when all of it
    // was captured, its end is known all the same, and a read that also
    // holds the next reply (pipelined commands) can be split there.
    let whole_reply = || reply_len(buf).map(|n| n as u64);
    match first {
        0x00 => Ok(Head {
            response_status: Some(ResponseStatus::Ok),
            message_len: match prepare_ok(p) {
                // Parameter and column definitions follow (and EOFs,
                // unless CLIENT_DEPRECATE_EOF).
                Some((columns, params)) if columns > 0 || params > 0 => whole_reply(),
                Some(_) => p.message_len(),
                None if more_results(p) => whole_reply(),
                None => p.message_len(),
            },
            ..Head::default()
        }),
        0xff => parse_err(p, true),
        // An EOF is five bytes (0xfe, warnings, status); a 0xfe packet of
        // another length here is an auth switch request (plugin name and
        // data, or just 0xfe for the pre-4.1 scramble), which the client
        // answers before the final reply.
        0xfe if p.len == 5 || (p.len < 9 && p.seq == 1) => Ok(Head {
            response_status: Some(ResponseStatus::Ok),
            message_len: if more_results(p) {
                whole_reply()
            } else {
                p.message_len()
            },
            ..Head::default()
        }),
        0xfe => Ok(interim),
        // LOCAL INFILE: the server asks the client for a file; the final
        // OK or ERR comes after its contents.
        0xfb => Ok(interim),
        // Auth "more data" (caching_sha2_password, ed25519...): replies
        // start at sequence id 1, so at 2 or later this is authentication.
        0x01 if p.seq >= 2 => Ok(interim),
        // A result set, or COM_FIELD_LIST's definitions; anything else is a
        // single packet of text (COM_STATISTICS).
        _ => Ok(Head {
            response_status: Some(ResponseStatus::Ok),
            message_len: if is_column_count(p) || is_def(p.body) {
                whole_reply()
            } else {
                p.message_len()
            },
            ..Head::default()
        }),
    }
}

fn parse_greeting<'a>(p: &Packet<'a>) -> Result<Head<'a>, ParseError> {
    let (version, terminated) = until_nul(&p.body[1..]);
    if !terminated {
        return Err(if p.complete() {
            ParseError::Invalid("server version")
        } else {
            ParseError::Incomplete
        });
    }
    let version = text(version);
    let version = match version {
        Cow::Borrowed(v) => Cow::Borrowed(v.strip_prefix(MARIADB_VERSION_PREFIX).unwrap_or(v)),
        owned => owned,
    };
    Ok(Head {
        version,
        message_len: p.message_len(),
        unpaired: true,
        ..Head::default()
    })
}

/// An ERR packet; `sqlstate` when the handshake is done, so that the
/// server knows the client speaks CLIENT_PROTOCOL_41 and sends `#` and a
/// SQLSTATE before the message.
fn parse_err<'a>(p: &Packet<'a>, sqlstate: bool) -> Result<Head<'a>, ParseError> {
    let Some(code) = p.body.get(1..3).and_then(u16_le) else {
        return Err(if p.len < 3 {
            ParseError::Invalid("error packet")
        } else {
            ParseError::Incomplete
        });
    };
    if code == 0xffff {
        // A MariaDB progress report (ALTER TABLE, LOAD DATA with
        // CLIENT_PROGRESS): the statement is still running.
        return Ok(Head {
            message_len: p.message_len(),
            unpaired: true,
            ..Head::default()
        });
    }
    let rest = &p.body[3..];
    let message = match rest {
        [b'#', _, _, _, _, _, message @ ..] if sqlstate => message,
        // The capture stopped inside the SQLSTATE.
        [b'#', ..] if sqlstate && !p.complete() => &[],
        _ => rest,
    };
    Ok(Head {
        response_code: Some(i32::from(code)),
        response_status: Some(error_status(code)),
        exception: text(message),
        message_len: p.message_len(),
        ..Head::default()
    })
}

/// Statement id, column and parameter counts of a COM_STMT_PREPARE OK.
///
/// It shares the 0x00 header with OK but has a fixed layout: id (4),
/// columns (2), parameters (2), a zero filler, warnings (2), and in MySQL 8
/// an optional metadata flag. A plain OK of exactly that size whose byte 9
/// is zero is rare (it would be inside its info text); mistaking one only
/// leaves the reply open until the next command.
fn prepare_ok(p: &Packet<'_>) -> Option<(u16, u16)> {
    let b = p.body;
    let metadata_follows = match (p.len, b.get(12)) {
        (12, _) => true,
        (13, Some(&flag @ (0 | 1))) => flag == 1,
        _ => return None,
    };
    if b.first() != Some(&0) || b.get(9) != Some(&0) {
        return None;
    }
    let columns = u16_le(b.get(5..)?)?;
    let params = u16_le(b.get(7..)?)?;
    // Without metadata the definitions are not sent at all.
    Some(if metadata_follows {
        (columns, params)
    } else {
        (0, 0)
    })
}

/// Status flags of an OK packet (0x00 or 0xfe header) or an EOF packet.
fn status_flags(p: &Packet<'_>) -> Option<u16> {
    let b = p.body;
    if b.first() == Some(&0xfe) && p.len < 7 {
        // EOF: 0xfe, warnings (2), status (2). The shortest OK is 7 bytes.
        return u16_le(b.get(3..)?);
    }
    let (_, w1) = lenenc(b.get(1..)?)?; // affected rows
    let (_, w2) = lenenc(b.get(1 + w1..)?)?; // last insert id
    u16_le(b.get(1 + w1 + w2..)?)
}

fn more_results(p: &Packet<'_>) -> bool {
    status_flags(p).is_some_and(|s| s & SERVER_MORE_RESULTS_EXISTS != 0)
}

/// A result set's first packet: only a column count, plus in MariaDB with
/// MARIADB_CLIENT_CACHE_METADATA (and MySQL's optional metadata) one byte
/// saying whether the column definitions follow.
fn is_column_count(p: &Packet<'_>) -> bool {
    match lenenc(p.body) {
        Some((n, w)) if n > 0 => {
            p.len == w || (p.len == w + 1 && matches!(p.body.get(w), Some(0 | 1)))
        }
        _ => false,
    }
}

/// Where a walk through a reply's packets is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The first packet of a reply, or of the next result of a
    /// multi-result reply.
    Reply,
    /// Column definitions still to come in a result set's header.
    ColumnDefs(u64),
    /// After the column definitions: an EOF (without
    /// CLIENT_DEPRECATE_EOF), the first row, or the final packet.
    AfterColumns,
    /// Rows until the final packet.
    Rows,
    /// COM_FIELD_LIST: definitions until the EOF.
    FieldList,
    /// Parameter definitions after a COM_STMT_PREPARE OK.
    ParamDefs { left: u16, columns: u16 },
    /// After those: an EOF, the first column definition, or the end.
    AfterParams { columns: u16 },
    /// Column definitions after a COM_STMT_PREPARE OK; `eof` once an EOF
    /// after the parameters showed that the server sends EOF packets.
    PrepareColumnDefs { left: u16, eof: bool },
    /// After those: an EOF, or the end.
    AfterPrepareColumns { eof: bool },
    /// The reply is complete.
    Done,
}

impl State {
    /// Whether the reply may end here. After a prepare's last definitions
    /// an EOF follows unless CLIENT_DEPRECATE_EOF was agreed, which only an
    /// earlier EOF of the same reply can tell; without one, bytes that stop
    /// there are taken as the whole reply, since the server writes a
    /// prepare's reply (a few hundred bytes) in one go.
    fn ended(self) -> bool {
        matches!(
            self,
            State::Done
                | State::AfterParams { columns: 0 }
                | State::AfterPrepareColumns { eof: false }
        )
    }

    /// The state after packet `p`; `None` when `p` does not fit.
    fn next(self, p: &Packet<'_>) -> Option<State> {
        let b = p.body;
        let first = *b.first()?;
        let is_eof = first == 0xfe && p.len < 9;
        // The last packet of a result set (EOF, or OK with a 0xfe header
        // under CLIENT_DEPRECATE_EOF; a row starting with 0xfe would hold a
        // value of 2^24 bytes or more, so its packet would be full).
        let terminator = || {
            if more_results(p) {
                State::Reply
            } else {
                State::Done
            }
        };
        Some(match self {
            State::Reply | State::Done => match first {
                0x00 => match prepare_ok(p) {
                    Some((columns, params)) if params > 0 => State::ParamDefs {
                        left: params,
                        columns,
                    },
                    Some((columns, _)) if columns > 0 => State::PrepareColumnDefs {
                        left: columns,
                        eof: false,
                    },
                    Some(_) => State::Done,
                    None => terminator(),
                },
                0xff if u16_le(b.get(1..)?) == Some(0xffff) => State::Reply,
                0xff | 0xfb => State::Done,
                0xfe if is_eof => terminator(),
                0xfe => State::Done,
                _ if is_def(b) => State::FieldList,
                _ if is_column_count(p) => {
                    let (n, w) = lenenc(b)?;
                    if b.get(w) == Some(&0) {
                        State::AfterColumns
                    } else {
                        State::ColumnDefs(n)
                    }
                }
                _ => State::Done,
            },
            State::ColumnDefs(n) if is_def(b) => match n.saturating_sub(1) {
                0 => State::AfterColumns,
                left => State::ColumnDefs(left),
            },
            State::ColumnDefs(_) => return None,
            // The EOF after the definitions is exactly 5 bytes; the final
            // OK under CLIENT_DEPRECATE_EOF at least 7.
            State::AfterColumns if first == 0xfe && p.len < 7 => State::Rows,
            State::AfterColumns | State::Rows => match first {
                0xfe if p.len < MAX_PAYLOAD => terminator(),
                0xff => State::Done,
                _ => State::Rows,
            },
            State::FieldList if is_def(b) => State::FieldList,
            State::FieldList if first == 0xfe || first == 0xff => State::Done,
            State::FieldList => return None,
            State::ParamDefs { left, columns } if is_def(b) => match left.saturating_sub(1) {
                0 => State::AfterParams { columns },
                left => State::ParamDefs { left, columns },
            },
            State::ParamDefs { .. } => return None,
            State::AfterParams { columns } if is_eof => match columns {
                0 => State::Done,
                left => State::PrepareColumnDefs { left, eof: true },
            },
            // No EOF after the parameters: CLIENT_DEPRECATE_EOF.
            State::AfterParams { columns } if columns > 0 && is_def(b) => {
                match columns.saturating_sub(1) {
                    0 => State::AfterPrepareColumns { eof: false },
                    left => State::PrepareColumnDefs { left, eof: false },
                }
            }
            State::AfterParams { .. } => return None,
            State::PrepareColumnDefs { left, eof } if is_def(b) => match left.saturating_sub(1) {
                0 => State::AfterPrepareColumns { eof },
                left => State::PrepareColumnDefs { left, eof },
            },
            State::PrepareColumnDefs { .. } => return None,
            State::AfterPrepareColumns { .. } if is_eof => State::Done,
            State::AfterPrepareColumns { .. } => return None,
        })
    }
}

/// Walks a reply from its first packet. `Some(ended)` when the bytes are
/// whole packets that fit a reply's structure; `None` when they do not
/// start a reply (sequence id not 1), break its structure, or stop inside a
/// packet.
/// Bytes of the multi-packet reply at the start of `buf`, when it ends
/// within `buf`: at its final packet, or where the next reply starts
/// (sequence id 1 again, after a prepare's definitions under
/// CLIENT_DEPRECATE_EOF) when pipelined commands' replies share a read.
/// `None` when the bytes stop first or do not fit a reply.
fn reply_len(buf: &[u8]) -> Option<usize> {
    let mut state = State::Reply;
    let mut pos = 0usize;
    let mut seq: Option<u8> = None;
    let mut continued = false;
    while pos < buf.len() {
        let p = Packet::read(&buf[pos..])?;
        if let Some(s) = seq {
            if p.seq == 1 && s.wrapping_add(1) != 1 && !continued && state.ended() {
                return Some(pos);
            }
            if p.seq != s.wrapping_add(1) {
                return None;
            }
        }
        if !p.complete() {
            return None;
        }
        if !continued {
            state = state.next(&p)?;
        }
        continued = p.len == MAX_PAYLOAD;
        seq = Some(p.seq);
        pos += HEADER_LEN + p.len;
        if state == State::Done && !continued {
            return Some(pos);
        }
    }
    None
}

fn walk_reply(buf: &[u8]) -> Option<bool> {
    let mut state = State::Reply;
    let mut pos = 0usize;
    let mut seq: Option<u8> = None;
    // A packet after a full (2^24 - 1 byte) one continues the same row.
    let mut continued = false;
    while pos < buf.len() {
        let p = Packet::read(&buf[pos..])?;
        if !p.complete() {
            return None;
        }
        let expected = match (state, seq) {
            // Every reply starts at 1, including one after a finished reply
            // (pipelined commands).
            (State::Done, _) | (_, None) => 1,
            (_, Some(s)) => s.wrapping_add(1),
        };
        if p.seq != expected {
            return None;
        }
        if !continued {
            state = state.next(&p)?;
        }
        continued = p.len == MAX_PAYLOAD;
        seq = Some(p.seq);
        pos += HEADER_LEN + p.len;
    }
    Some(!continued && state.ended())
}

/// Whether `buf` ends with the final packet of a reply, found from the end:
/// an EOF (`05 00 00 seq fe`...), an OK with a 0xfe header, or an ERR with
/// its SQLSTATE, whose header's length reaches exactly the last byte, and
/// which announces no further result.
fn ends_with_final_packet(buf: &[u8]) -> bool {
    let n = buf.len();
    // Candidates from the shortest up: a final packet is short, and each
    // candidate must have a header whose length lands exactly on the end.
    for len in 5..=MAX_ERR_PAYLOAD {
        let Some(start) = n.checked_sub(HEADER_LEN + len) else {
            return false;
        };
        let Some(p) = Packet::read(&buf[start..]) else {
            continue;
        };
        if p.len != len {
            continue;
        }
        let b = p.body;
        match b.first() {
            Some(0xfe) if len == 5 || (7..=MAX_EOF_OK_PAYLOAD).contains(&len) => {
                // An OK must hold its two integers, status and warnings.
                if len >= 7 && status_flags(&p).is_none() {
                    continue;
                }
                return !more_results(&p);
            }
            Some(0xff) if len >= 9 && is_err_body(b) => return true,
            _ => {}
        }
    }
    false
}

// --- inference -------------------------------------------------------------------------

fn is_command(p: &Packet<'_>) -> bool {
    let Some((&cmd, args)) = p.body.split_first() else {
        return false;
    };
    let whole = p.complete();
    match cmd {
        COM_QUERY => is_sql(skip_query_attributes(args)),
        COM_STMT_PREPARE => is_sql(args),
        COM_INIT_DB | COM_CREATE_DB | COM_DROP_DB => {
            whole && (2..=257).contains(&p.len) && is_name(args)
        }
        COM_FIELD_LIST => {
            let (table, terminated) = until_nul(args);
            whole && terminated && is_name(table)
        }
        COM_PING | COM_QUIT | COM_STATISTICS | COM_DEBUG | COM_PROCESS_INFO
        | COM_RESET_CONNECTION => whole && p.len == 1,
        COM_STMT_CLOSE | COM_STMT_RESET | COM_PROCESS_KILL => whole && p.len == 5,
        COM_STMT_FETCH => whole && p.len == 9,
        COM_SET_OPTION => whole && p.len == 3 && matches!(args, [0 | 1, 0]),
        COM_REFRESH => whole && p.len == 2,
        // Cursor flags (0-15 across MySQL and MariaDB), iteration count 1.
        COM_STMT_EXECUTE => p.len >= 10 && matches!(args.get(4..9), Some([0..=0x0f, 1, 0, 0, 0])),
        // Statement id and parameter number; the data may be cut.
        COM_STMT_SEND_LONG_DATA => p.len >= 7 && args.len() >= 6,
        COM_CHANGE_USER => {
            let (user, terminated) = until_nul(args);
            terminated && is_name(user)
        }
        _ => false,
    }
}

/// A database, table or user name: printable, not empty.
fn is_name(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(|&c| c > 0x20 && c != 0x7f)
}

/// SQL text as it starts a statement: after optional whitespace, a keyword,
/// a parenthesis or a comment, and only text in the first bytes.
fn is_sql(b: &[u8]) -> bool {
    let window = &b[..b.len().min(SQL_CHECK_LEN)];
    let start = window.trim_ascii_start();
    match start.first() {
        Some(c) if c.is_ascii_alphabetic() || matches!(c, b'(' | b'/' | b'-' | b'#') => {
            is_text(window)
        }
        _ => false,
    }
}

fn is_greeting(p: &Packet<'_>) -> bool {
    let Some((&10, rest)) = p.body.split_first() else {
        return false;
    };
    let (version, terminated) = until_nul(rest);
    // After the version: connection id (4), scramble (8), a zero filler.
    let filler = rest.get(version.len() + 1 + 4 + 8);
    terminated
        && p.complete()
        && version.first().is_some_and(u8::is_ascii_digit)
        && version.len() <= 64
        && version.iter().all(|c| c.is_ascii_graphic())
        && filler == Some(&0)
}

/// An ERR packet: a known range of error numbers and printable text.
fn is_err(p: &Packet<'_>) -> bool {
    let b = p.body;
    let Some(code) = b.get(1..3).and_then(u16_le) else {
        return false;
    };
    b.first() == Some(&0xff)
        && (1000..0xffff).contains(&code)
        && p.len >= 4
        && is_text(&b[3..b.len().min(3 + SQL_CHECK_LEN)])
}

/// An ERR with `#` and a SQLSTATE of five letters or digits, as every ERR
/// after the handshake carries.
fn is_err_body(b: &[u8]) -> bool {
    let code = b.get(1..3).and_then(u16_le);
    b.first() == Some(&0xff)
        && code.is_some_and(|c| (1000..0xffff).contains(&c))
        && b.get(3) == Some(&b'#')
        && b.get(4..9)
            .is_some_and(|s| s.iter().all(u8::is_ascii_alphanumeric))
}

fn is_handshake_response(p: &Packet<'_>) -> bool {
    if p.len <= 32 || !handshake_fixed_part(p) || p.body.get(8) == Some(&0) {
        return false;
    }
    // The user name must be there; attributes after it may be cut.
    let (user, terminated) = until_nul(&p.body[32..]);
    terminated && user.iter().all(|&c| c > 0x20 && c != 0x7f)
}

fn is_ssl_request(p: &Packet<'_>) -> bool {
    p.len == 32
        && p.complete()
        && handshake_fixed_part(p)
        && u32_le(p.body).is_some_and(|caps| caps & CLIENT_SSL != 0)
}

fn is_reply(p: &Packet<'_>, buf: &[u8]) -> bool {
    let b = p.body;
    match b.first() {
        Some(0x00) => p.complete() && (prepare_ok(p).is_some() || is_ok(p)),
        Some(0xff) => {
            p.len >= 9 && is_err_body(b) && is_text(&b[9..b.len().min(9 + SQL_CHECK_LEN)])
        }
        Some(0xfe) => p.complete() && p.len == 5,
        // A column count must be followed by the first column definition.
        Some(_) if p.seq == 1 && is_column_count(p) => {
            let mut rest = packets(buf).skip(1);
            rest.next().is_some_and(|d| d.seq == 2 && is_def(d.body))
        }
        // COM_FIELD_LIST's first definition.
        Some(_) => p.seq == 1 && is_def(b),
        None => false,
    }
}

/// An OK packet whose fields fill it: two integers, status and warnings,
/// and nothing but info text after.
fn is_ok(p: &Packet<'_>) -> bool {
    let b = p.body;
    let Some((_, w1)) = b.get(1..).and_then(lenenc) else {
        return false;
    };
    let Some((_, w2)) = b.get(1 + w1..).and_then(lenenc) else {
        return false;
    };
    let fixed = 1 + w1 + w2 + 4;
    p.len >= fixed
}
