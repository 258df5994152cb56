//! DNS (RFC 1035) over UDP and TCP: queries and answers.
//!
//! Over UDP a datagram is one message; over TCP each message is preceded by
//! its 2-byte big-endian length (RFC 1035 4.2.2, RFC 7766), so
//! `message_len` is `2 + length` and pipelined queries split. The transport
//! is the caller's to say ([`Transport`]).
//!
//! **Queries**: `request_type` is the first question's type (`A`, `AAAA`,
//! `MX`, ..., `TYPE65280` for unnamed ones; the opcode instead when it is not
//! QUERY: `NOTIFY`, `UPDATE`, ...), `request_resource` the name asked, as
//! sent (case kept, no trailing dot; `.` for the root), and `request_id`
//! the transaction id, which pairs the answer (resolvers send several
//! queries on one socket before any answer comes).
//!
//! **Answers**: the same id and question, `response_code` the RCODE,
//! extended by an EDNS OPT record when one is visible (RFC 6891), `exception`
//! its name when not NOERROR (`NXDOMAIN`), and `result` the answers' data
//! (addresses, names, the first TXT string, ...), comma-separated, at most
//! [`MAX_ANSWERS`]; a truncated answer (TC bit) says `truncated`.
//! Status: NOERROR is `Ok`. NXDOMAIN (the name does not exist), FORMERR (a
//! malformed query), REFUSED (the server does not serve this client or
//! name), YXDOMAIN, YXRRSET, NXRRSET, NOTAUTH, NOTZONE and BADVERS are the
//! query's fault: `ClientError`. SERVFAIL, NOTIMP and any other code are the
//! server's: `ServerError`.
//!
//! Names with compression pointers are followed at most [`MAX_JUMPS`] times
//! and to at most 255 bytes, so loops and garbage stay cheap; a name or
//! record cut by the capture cap yields what came before it.

use std::borrow::Cow;
use std::fmt::Write as _;

use causeway_model::ResponseStatus;

use crate::infer::MessageKind;
use crate::{Head, ParseError};

/// How the messages travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// One message per datagram.
    Udp,
    /// Each message behind a 2-byte length.
    Tcp,
}

/// Answers listed in `result`.
pub const MAX_ANSWERS: usize = 8;
/// Compression pointers followed per name.
pub const MAX_JUMPS: usize = 16;
const HEADER: usize = 12;
const MAX_NAME: usize = 255;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// The DNS message inside the payload, and the bytes before it.
fn message(payload: &[u8], t: Transport) -> (&[u8], usize) {
    match t {
        Transport::Udp => (payload, 0),
        Transport::Tcp => (payload.get(2..).unwrap_or_default(), 2),
    }
}

/// The name of a type (RFC 1035, 3596, 2782, 6891, 9460 ...).
pub fn type_name(t: u16) -> Cow<'static, str> {
    Cow::Borrowed(match t {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        13 => "HINFO",
        15 => "MX",
        16 => "TXT",
        28 => "AAAA",
        33 => "SRV",
        35 => "NAPTR",
        39 => "DNAME",
        41 => "OPT",
        43 => "DS",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        50 => "NSEC3",
        52 => "TLSA",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        255 => "ANY",
        257 => "CAA",
        _ => return Cow::Owned(format!("TYPE{t}")),
    })
}

/// The name of an RCODE (RFC 1035, 2136, 6891).
pub fn rcode_name(code: u16) -> Option<&'static str> {
    Some(match code {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        16 => "BADVERS",
        _ => return None,
    })
}

/// The outcome class of an RCODE.
pub fn rcode_status(code: u16) -> ResponseStatus {
    match code {
        0 => ResponseStatus::Ok,
        1 | 3 | 5..=10 | 16 => ResponseStatus::ClientError,
        _ => ResponseStatus::ServerError,
    }
}

fn opcode_name(op: u8) -> Option<&'static str> {
    Some(match op {
        0 => "QUERY",
        1 => "IQUERY",
        2 => "STATUS",
        4 => "NOTIFY",
        5 => "UPDATE",
        6 => "DSO",
        _ => return None,
    })
}

/// Reads the name at `at` in `msg`; returns it (dotted) and where the bytes
/// after it start (after the first pointer, if any). None when cut or bad.
fn read_name(msg: &[u8], mut at: usize, out: &mut String) -> Option<usize> {
    let mut end = None;
    let mut jumps = 0;
    let start_len = out.len();
    loop {
        let len = *msg.get(at)? as usize;
        match len & 0xc0 {
            0x00 if len == 0 => {
                if out.len() == start_len {
                    out.push('.');
                }
                return Some(end.unwrap_or(at + 1));
            }
            0x00 => {
                let label = msg.get(at + 1..at + 1 + len)?;
                if out.len() > start_len {
                    out.push('.');
                }
                for &c in label {
                    // Names are bytes; show the unprintable ones escaped.
                    if c.is_ascii_graphic() && c != b'.' && c != b'\\' {
                        out.push(c as char);
                    } else {
                        let _ = write!(out, "\\{c:03}");
                    }
                }
                if out.len() - start_len > MAX_NAME * 4 {
                    return None;
                }
                at += 1 + len;
            }
            0xc0 => {
                let target = (be16(msg, at)? & 0x3fff) as usize;
                end.get_or_insert(at + 2);
                jumps += 1;
                if jumps > MAX_JUMPS || target >= msg.len() {
                    return None;
                }
                at = target;
            }
            _ => return None, // 0x40 / 0x80: obsolete or reserved label types
        }
    }
}

/// Skips a name without decoding it.
fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
    for _ in 0..128 {
        let len = *msg.get(at)? as usize;
        match len & 0xc0 {
            0x00 if len == 0 => return Some(at + 1),
            0x00 => at += 1 + len,
            0xc0 => return msg.get(at + 1).map(|_| at + 2),
            _ => return None,
        }
    }
    None
}

/// Header sanity for inference: opcode known, Z bit clear, counts that a
/// message of this kind can have, and for queries one question.
fn plausible(msg: &[u8]) -> Option<MessageKind> {
    if msg.len() < HEADER + 5 {
        return None;
    }
    let flags = be16(msg, 2)?;
    let qr = flags & 0x8000 != 0;
    let opcode = ((flags >> 11) & 0xf) as u8;
    opcode_name(opcode)?;
    if flags & 0x0040 != 0 {
        return None; // Z must be zero
    }
    let (qd, an, ns, ar) = (be16(msg, 4)?, be16(msg, 6)?, be16(msg, 8)?, be16(msg, 10)?);
    if qd != 1 {
        return None;
    }
    // A query's answer and authority sections are empty except in UPDATE
    // and NOTIFY; a few additional records (OPT, TSIG) at most.
    if !qr && ((opcode != 5 && opcode != 4 && (an != 0 || ns != 0)) || ar > 4) {
        return None;
    }
    if !qr && flags & 0x000f != 0 {
        return None; // a query carries no RCODE
    }
    // Every record takes at least 11 bytes: the counts must fit the cap of a
    // 64 KiB message.
    if (an as usize + ns as usize + ar as usize) * 11 > 65535 {
        return None;
    }
    // The question must parse: name, then a type and a known class.
    let after = skip_name(msg, HEADER)?;
    let class = be16(msg, after + 2)?;
    if !matches!(class, 1 | 3 | 4 | 254 | 255) {
        return None;
    }
    Some(if qr {
        MessageKind::Response
    } else {
        MessageKind::Request
    })
}

/// Whether the bytes start a DNS message, and which kind (QR bit).
pub fn infer(payload: &[u8], t: Transport) -> Option<MessageKind> {
    let (msg, _) = message(payload, t);
    if t == Transport::Tcp && (be16(payload, 0)? as usize) < HEADER + 5 {
        return None;
    }
    plausible(msg)
}

/// The head of the DNS message at the start of `payload`.
pub fn parse(payload: &[u8], kind: MessageKind, t: Transport) -> Result<Head<'_>, ParseError> {
    let (msg, prefix) = message(payload, t);
    if t == Transport::Tcp && payload.len() < 2 {
        return Err(ParseError::Incomplete);
    }
    if msg.len() < HEADER {
        return Err(ParseError::Incomplete);
    }
    let flags = be16(msg, 2).ok_or(ParseError::Incomplete)?;
    let qr = flags & 0x8000 != 0;
    if qr != (kind == MessageKind::Response) {
        return Err(ParseError::Mismatch);
    }
    let mut head = Head {
        request_id: be16(msg, 0).map(u64::from),
        message_len: match t {
            Transport::Tcp => be16(payload, 0).map(|n| prefix as u64 + u64::from(n)),
            Transport::Udp => None,
        },
        ..Head::default()
    };
    let opcode = ((flags >> 11) & 0xf) as u8;
    let qd = be16(msg, 4).unwrap_or(0);
    // The question, when it is there and whole.
    let mut name = String::new();
    let mut at = HEADER;
    if qd >= 1 {
        if let Some(next) = read_name(msg, HEADER, &mut name) {
            head.request_resource = Cow::Owned(name);
            if let Some(qtype) = be16(msg, next) {
                head.request_type = match opcode {
                    0 => type_name(qtype),
                    op => Cow::Borrowed(opcode_name(op).unwrap_or("OPCODE?")),
                };
            }
            at = next + 4;
        } else {
            at = msg.len();
        }
    }
    if kind == MessageKind::Request {
        return Ok(head);
    }
    let mut rcode = flags & 0x000f;
    let (an, ns, ar) = (
        be16(msg, 6).unwrap_or(0),
        be16(msg, 8).unwrap_or(0),
        be16(msg, 10).unwrap_or(0),
    );
    let mut result = String::new();
    let mut listed = 0;
    let total = an as usize + ns as usize + ar as usize;
    for i in 0..total {
        let Some(after_name) = skip_name(msg, at) else {
            break;
        };
        let (Some(rtype), Some(rdlen)) = (be16(msg, after_name), be16(msg, after_name + 8)) else {
            break;
        };
        let rdata_at = after_name + 10;
        let rdata = msg.get(rdata_at..rdata_at + rdlen as usize);
        if i < an as usize && listed < MAX_ANSWERS {
            if let Some(text) = rdata_text(msg, rtype, rdata_at, rdata) {
                if listed > 0 {
                    result.push(',');
                }
                result.push_str(&text);
                listed += 1;
            }
        }
        if rtype == 41 {
            // OPT: the TTL's top byte extends the RCODE.
            if let (Some(hi), Some(_)) = (msg.get(after_name + 4), rdata) {
                rcode |= u16::from(*hi) << 4;
            }
        }
        at = rdata_at + rdlen as usize;
    }
    if flags & 0x0200 != 0 {
        if !result.is_empty() {
            result.push(',');
        }
        result.push_str("truncated");
    }
    head.result = Cow::Owned(result);
    head.response_code = Some(i32::from(rcode));
    head.response_status = Some(rcode_status(rcode));
    if rcode != 0 {
        head.exception = match rcode_name(rcode) {
            Some(n) => Cow::Borrowed(n),
            None => Cow::Owned(format!("RCODE{rcode}")),
        };
    }
    Ok(head)
}

/// An answer's data as text, for the types people read.
fn rdata_text(msg: &[u8], rtype: u16, at: usize, rdata: Option<&[u8]>) -> Option<String> {
    let rdata = rdata?;
    match rtype {
        1 if rdata.len() == 4 => {
            Some(std::net::Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3]).to_string())
        }
        28 if rdata.len() == 16 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(rdata);
            Some(std::net::Ipv6Addr::from(b).to_string())
        }
        2 | 5 | 12 | 39 => {
            let mut s = String::new();
            read_name(msg, at, &mut s).map(|_| s)
        }
        15 => {
            let mut s = String::new();
            read_name(msg, at + 2, &mut s)?;
            Some(s)
        }
        33 => {
            let port = be16(rdata, 4)?;
            let mut s = String::new();
            read_name(msg, at + 6, &mut s)?;
            Some(format!("{s}:{port}"))
        }
        16 => {
            let n = *rdata.first()? as usize;
            let t = rdata.get(1..1 + n)?;
            let t = String::from_utf8_lossy(&t[..t.len().min(64)]);
            Some(format!("\"{t}\""))
        }
        _ => Some(type_name(rtype).into_owned()),
    }
}

/// A UDP datagram is a whole message; over TCP the length tells.
pub fn ends_message(_payload: &[u8], _kind: MessageKind) -> bool {
    true
}

#[cfg(test)]
mod tests;
