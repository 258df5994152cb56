//! MQTT 3.1, 3.1.1 and 5: control packets, read from their first bytes.
//!
//! **Framing.** Every control packet is a fixed header (a byte holding the
//! packet type and its flags, then the *remaining length*, a variable byte
//! integer of one to four bytes) and that many more bytes. So
//! [`Head::message_len`] is always the fixed header plus the remaining
//! length, exactly, as soon as the fixed header is visible: the agent splits
//! a syscall that holds several packets (a client pipelining PUBLISHes, a
//! broker answering with a batch of PUBACKs or UNSUBACKs) at it. One
//! Causeway message is one control packet.
//!
//! **Roles, not directions.** Both sides publish, so a packet's place in an
//! exchange comes from its type, not from who sent it:
//!
//! | packet | role ([`MessageKind`]) | pairs with | by |
//! |---|---|---|---|
//! | CONNECT | request | CONNACK (or a server AUTH) | order |
//! | PUBLISH QoS 1 | request | PUBACK | packet id |
//! | PUBLISH QoS 2 | request | PUBREC | packet id |
//! | PUBREL | request | PUBCOMP | packet id |
//! | SUBSCRIBE | request | SUBACK | packet id |
//! | UNSUBSCRIBE | request | UNSUBACK | packet id |
//! | PINGREQ | request | PINGRESP | order |
//! | AUTH from the client | request | AUTH from the server, or CONNACK | order |
//! | PUBLISH QoS 0, DISCONNECT | request, `unpaired` | nothing | |
//!
//! A PUBLISH a broker sends to a subscriber is a **request from the server
//! side**: QoS 1 and 2 deliveries are answered by the client's PUBACK or
//! PUBREC with the same packet id, and their span has the broker as the
//! requester. A QoS 0 PUBLISH, from either side, answers nothing and
//! nothing answers it: it is `unpaired` (so that it never waits for, or
//! takes, another packet's answer), like DISCONNECT. [`message_kind`] gives
//! the role from the first byte alone; only AUTH, which either side sends
//! with the same bytes, needs the direction (the client's AUTH is a
//! request, the server's a response). `parse` reads a packet the same
//! whatever `kind` it is given: the type byte decides what it is. Packet
//! ids are chosen by each side independently, so a pairing key is (the
//! requester's direction, packet id). [`sender`] tells which side may send a packet when
//! only one may (CONNECT, SUBSCRIBE, UNSUBSCRIBE, PINGREQ from the client;
//! CONNACK, SUBACK, UNSUBACK, PINGRESP from the server).
//!
//! **Facts.** `request_type` is the packet type's name (`CONNECT`,
//! `PUBLISH`, `PUBACK`, ...), for responses too, so that a pairing can check
//! that a PUBREC answers a PUBLISH and a PUBCOMP a PUBREL.
//! - CONNECT: `request_domain` is the client identifier, `version` the
//!   protocol (`3.1` for `MQIsdp` level 3, `3.1.1` for level 4, `5` for
//!   level 5; a bridge's level with the top bit set counts as its level),
//!   `request_resource` is `user=NAME` when the client gives a user name, as
//!   the MySQL and PostgreSQL logins report theirs. The password is skipped,
//!   never read.
//! - PUBLISH: `request_resource` is the topic name; `request_id` the packet
//!   identifier when QoS > 0. The QoS (and the DUP and RETAIN flags) has no
//!   field in [`Head`]: [`publish_flags`] reads it from the first byte, and
//!   which answer comes back tells it too (PUBACK: 1, PUBREC: 2, none: 0).
//!   An MQTT 5 PUBLISH may carry an empty topic and a topic alias instead;
//!   [`topic_alias`] reads the alias so that the caller can map it to the
//!   topic named by an earlier PUBLISH of the same connection and direction.
//! - SUBSCRIBE, UNSUBSCRIBE: `request_resource` is the first topic filter,
//!   `request_id` the packet identifier.
//! - PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK: `request_id` is the
//!   packet identifier, the one of the packet they answer.
//! - Reason and return codes go to `response_code`, with
//!   `response_status` from [`reason_status`] (MQTT 5) or
//!   [`connack_v3_status`] (3.1.x CONNACK), and `exception` set for
//!   failures: the MQTT 5 Reason String property when the packet has one,
//!   else the code's name in the specification (`Not authorized`,
//!   `Connection Refused, bad user name or password`). A SUBACK or UNSUBACK
//!   has one code per topic filter: `response_code` is the first failure
//!   among them, or the first code when none failed. Packets that carry no
//!   code (3.1.1 acks, an MQTT 5 ack whose code 0x00 is omitted, PINGRESP)
//!   are `Ok` with no `response_code`. DISCONNECT and AUTH codes are
//!   reported the same way (a broker's DISCONNECT 0x98 is worth seeing even
//!   unpaired).
//!
//! **Status mapping.** Success codes (below 0x80) are `Ok`. A failure is a
//! `ClientError` when the request was at fault (malformed or refused
//! packets, bad credentials, not authorized, banned, bad topic, packet id in
//! use or unknown, limits the client exceeded: quota, rates, packet size,
//! receive maximum; features the server said it lacks) and a
//! `ServerError` for the server's state (unspecified or implementation
//! errors, server unavailable or busy, shutting down, administrative
//! action, use another server, maximum connect time) and for any code not
//! known, so that an unexpected failure is never hidden as a caller's
//! mistake. 3.1.x CONNACK return codes: 0 accepted is `Ok`; 1 unacceptable
//! protocol version, 2 identifier rejected, 4 bad user name or password and
//! 5 not authorized are `ClientError`; 3 server unavailable and reserved
//! codes are `ServerError`. A 3.1.x SUBACK failure (0x80) is a
//! `ClientError`: it is the only way a 3.1.x broker can refuse a
//! subscription, and brokers use it for authorization refusals and
//! invalid filters (mosquitto's dynamic-security plugin does, see the
//! fixtures), while MQTT 5 has 0x87 for that and keeps 0x80 "Unspecified
//! error" for the rest.
//!
//! **Version.** MQTT 5 added properties to most packets, some of them where
//! a 3.1.1 packet has other fields, and the bytes alone do not always tell
//! which. The protocol level is in CONNECT; the caller should keep it per
//! connection and pass it to [`parse_with_version`]. Without it:
//! - CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK and DISCONNECT tell
//!   by their length (a 3.1.1 CONNACK has remaining length 2, its acks 2, its
//!   DISCONNECT 0; longer ones are MQTT 5), and AUTH exists only in 5;
//! - PUBLISH puts the topic and packet id before the properties, so they do
//!   not depend on the version;
//! - SUBSCRIBE, UNSUBSCRIBE and SUBACK are read both ways, each reading
//!   checked against the grammar (filter lengths that chain to the end of
//!   the packet, valid options bytes, the codes a SUBACK may hold). When
//!   only one reading fits, it is used. When both fit, only what both say
//!   is reported: the packet id always; the first filter when both see the
//!   same one; a SUBACK's code when both give the same, else its status
//!   when both agree on it. Whole packets seldom fit both ways: an MQTT 5
//!   SUBSCRIBE or UNSUBSCRIBE without properties never reads as 3.1.1 (its
//!   first filter would be empty), a 3.1.1 one read as MQTT 5 has a first
//!   filter of 256 bytes or more that must end exactly where an options
//!   byte and the next filter follow. The common case is a SUBACK: an
//!   MQTT 5 SUBACK for one filter without properties, `00 02` after the
//!   packet id, is also a 3.1.1 SUBACK granting QoS 0 and 2 to two filters,
//!   so without the version only its status (`Ok`) is reported.
//!
//! `version` is set when it is known: from CONNECT, from the version passed
//! in (which stands even where the bytes disagree, except for a 3.1.x-form
//! CONNACK under a known 5, which gets none), or `5` when the bytes can only
//! be MQTT 5.
//!
//! **Cut input.** The payload is the prefix captured from the first
//! syscall, cut anywhere. The fixed header must be whole (else
//! [`ParseError::Incomplete`]), and so must one byte after it when the
//! packet has a body, so that the agent can complete a head split by a
//! short write. Beyond that the head holds what the visible bytes tell:
//! strings (topics, filters, client ids) are reported only when whole,
//! because a prefix would name another topic.
//!
//! **Inference.** [`infer`] is strict; its rule is written there.
//!
//! **Cost.** No allocation except for `user=NAME` and for strings that are
//! not UTF-8 (made lossy). Every loop consumes input, so the work is linear
//! in the visible bytes.

use std::borrow::Cow;

use causeway_model::ResponseStatus;

use crate::infer::MessageKind;
use crate::{Head, ParseError};

#[cfg(test)]
mod tests;

// --- packet types ------------------------------------------------------------

const CONNECT: u8 = 1;
const CONNACK: u8 = 2;
const PUBLISH: u8 = 3;
const PUBACK: u8 = 4;
const PUBREC: u8 = 5;
const PUBREL: u8 = 6;
const PUBCOMP: u8 = 7;
const SUBSCRIBE: u8 = 8;
const SUBACK: u8 = 9;
const UNSUBSCRIBE: u8 = 10;
const UNSUBACK: u8 = 11;
const PINGREQ: u8 = 12;
const PINGRESP: u8 = 13;
const DISCONNECT: u8 = 14;
const AUTH: u8 = 15;

/// Names of the packet types, indexed by type.
const NAMES: [&str; 16] = [
    "", // 0 is reserved
    "CONNECT",
    "CONNACK",
    "PUBLISH",
    "PUBACK",
    "PUBREC",
    "PUBREL",
    "PUBCOMP",
    "SUBSCRIBE",
    "SUBACK",
    "UNSUBSCRIBE",
    "UNSUBACK",
    "PINGREQ",
    "PINGRESP",
    "DISCONNECT",
    "AUTH",
];

/// `infer` believes a packet cut by the end of the bytes only when this many
/// bytes are visible: real packets are cut by the capture cap (1024 bytes by
/// default), while a short payload that ends inside a packet it claims to
/// hold is more likely another protocol whose bytes happen to start like
/// one (a MySQL packet of 98 KiB starts `30 80 01 00`, a PUBLISH header).
const MIN_INFER_CUT_PAYLOAD: usize = 256;

/// The largest remaining length: four bytes of seven bits.
pub const MAX_REMAINING_LENGTH: u32 = 268_435_455;

// --- versions ------------------------------------------------------------------

/// An MQTT protocol version, as CONNECT names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// MQTT 3.1: protocol name `MQIsdp`, level 3.
    V3_1,
    /// MQTT 3.1.1: protocol name `MQTT`, level 4.
    V3_1_1,
    /// MQTT 5: protocol name `MQTT`, level 5.
    V5,
}

impl Version {
    /// The label [`Head::version`] carries: `3.1`, `3.1.1` or `5`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V3_1 => "3.1",
            Version::V3_1_1 => "3.1.1",
            Version::V5 => "5",
        }
    }

    /// The version a [`Head::version`] label names (the inverse of
    /// [`Version::as_str`]), so that a caller can keep CONNECT's label.
    pub fn from_label(label: &str) -> Option<Version> {
        match label {
            "3.1" => Some(Version::V3_1),
            "3.1.1" => Some(Version::V3_1_1),
            "5" => Some(Version::V5),
            _ => None,
        }
    }

    /// The version of a CONNECT's protocol level byte (bridges set its top
    /// bit, which is ignored).
    pub fn from_level(level: u8) -> Option<Version> {
        match level & 0x7f {
            3 => Some(Version::V3_1),
            4 => Some(Version::V3_1_1),
            5 => Some(Version::V5),
            _ => None,
        }
    }
}

/// Which side of a connection may send a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client (the side that sent CONNECT).
    Client,
    /// The server (the broker).
    Server,
}

/// The flags of a PUBLISH packet's first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishFlags {
    /// Quality of service: 0, 1 or 2.
    pub qos: u8,
    /// A retained message (from a client: to be kept; from a broker: a kept
    /// message sent on subscription).
    pub retain: bool,
    /// A redelivery of a QoS 1 or 2 message.
    pub dup: bool,
}

// --- public functions ----------------------------------------------------------

/// Whether the bytes start MQTT control packets, and the role of the first.
///
/// Every visible packet, from the first byte on, must be well formed: a
/// packet type with the flags the specification fixes for it (PUBREL,
/// SUBSCRIBE and UNSUBSCRIBE `0010`, PUBLISH any but QoS 3 or DUP with QoS 0,
/// the others `0000`), a remaining length in the fewest bytes, a body that
/// fits its grammar (lengths of strings and properties within the packet,
/// known property ids, reason codes the packet may carry, non-zero packet
/// ids, nothing left over), each packet ending where the next one starts;
/// only the last may be cut by the end of the bytes. And the bytes must hold
/// at least one packet that says MQTT on its own (and when the last packet
/// is cut, at least 256 bytes, as the capture cap cuts; a real client writes
/// a packet in one syscall):
/// - a CONNECT whose protocol name and level are visible and valid (`MQTT`
///   4 or 5, `MQIsdp` 3), with valid connect flags;
/// - a PUBLISH whose whole topic name is visible and is printable UTF-8
///   without wildcards: this lets a connection be recognised when the agent
///   started after its CONNECT, from either side's PUBLISH;
/// - a SUBSCRIBE or UNSUBSCRIBE whose first filter is visible, printable
///   and well formed;
/// - or exactly the two bytes of a PINGREQ or a PINGRESP, alone: an idle
///   connection older than the agent sends nothing else, and would
///   otherwise be given up as opaque after a few keep-alives.
///
/// Acks, CONNACK and DISCONNECT alone (a few bytes, mostly zeros and small
/// numbers) are not enough. Text protocols never pass: a topic length read
/// from two text bytes is at least 8224, longer than any remaining length
/// written in one text byte. The role is the first packet's, as in
/// [`message_kind`]; an AUTH first is not inferred (either side sends it).
pub fn infer(payload: &[u8]) -> Option<MessageKind> {
    if matches!(payload, [0xc0, 0x00] | [0xd0, 0x00]) {
        return message_kind(payload);
    }
    let role = message_kind(payload)?;
    let mut pos = 0;
    let mut strong = false;
    while pos < payload.len() {
        let rest = &payload[pos..];
        match read_packet(rest, None, true) {
            Ok(p) if p.len <= rest.len() => {
                strong |= p.strong;
                pos += p.len;
            }
            // The last packet is cut: believe it only when the capture cap
            // can have cut it.
            Ok(p) => {
                strong |= p.strong;
                if payload.len() < MIN_INFER_CUT_PAYLOAD {
                    return None;
                }
                break;
            }
            Err(ParseError::Incomplete) if pos > 0 && payload.len() >= MIN_INFER_CUT_PAYLOAD => {
                break
            }
            Err(_) => return None,
        }
    }
    strong.then_some(role)
}

/// The head of the MQTT control packet at the start of `payload`, without
/// knowing the connection's version (see the module doc for what that
/// costs): [`parse_with_version`] with `None`.
pub fn parse(payload: &[u8], kind: MessageKind) -> Result<Head<'_>, ParseError> {
    parse_with_version(payload, kind, None)
}

/// The head of the MQTT control packet at the start of `payload`.
///
/// `version` is the connection's, from its CONNECT, when known; it decides
/// how SUBSCRIBE, UNSUBSCRIBE and SUBACK are read and is reported in
/// `version`. A CONNECT reports its own; a CONNACK of remaining length 2 is
/// read as 3.1.x whatever the version (a 3.1.1 broker refusing an MQTT 5
/// CONNECT answers so). `kind` is not used: the type byte tells what the
/// packet is, and [`message_kind`] its role.
///
/// Errors: [`ParseError::Incomplete`] when the bytes end inside the fixed
/// header, or right after it when the packet has a body;
/// [`ParseError::Mismatch`] when the first byte is no MQTT packet type with
/// valid flags; [`ParseError::Invalid`] when the visible body breaks the
/// packet's grammar, naming the part.
pub fn parse_with_version(
    payload: &[u8],
    kind: MessageKind,
    version: Option<Version>,
) -> Result<Head<'_>, ParseError> {
    let _ = kind;
    read_packet(payload, version, false).map(|p| p.head)
}

/// Whether a whole syscall's bytes end an MQTT packet: they are one or more
/// whole control packets (by their fixed headers), ending exactly at the
/// end. The head always gives the length, so the agent hardly needs this.
pub fn ends_message(payload: &[u8], _kind: MessageKind) -> bool {
    let mut pos = 0;
    while pos < payload.len() {
        let Ok(f) = fixed_header(&payload[pos..], false) else {
            return false;
        };
        pos = pos.saturating_add(f.total());
    }
    pos == payload.len() && pos > 0
}

/// The role of the packet that starts `payload`, from its type byte alone:
/// `Request` for CONNECT, PUBLISH, PUBREL, SUBSCRIBE, UNSUBSCRIBE, PINGREQ
/// and DISCONNECT; `Response` for CONNACK, PUBACK, PUBREC, PUBCOMP, SUBACK,
/// UNSUBACK and PINGRESP; `None` for AUTH (the direction decides: the
/// client's is a request, the server's a response) and for bytes that start
/// no packet.
pub fn message_kind(payload: &[u8]) -> Option<MessageKind> {
    let &b = payload.first()?;
    if !flags_valid(b >> 4, b & 0x0f, false) {
        return None;
    }
    match b >> 4 {
        CONNECT | PUBLISH | PUBREL | SUBSCRIBE | UNSUBSCRIBE | PINGREQ | DISCONNECT => {
            Some(MessageKind::Request)
        }
        CONNACK | PUBACK | PUBREC | PUBCOMP | SUBACK | UNSUBACK | PINGRESP => {
            Some(MessageKind::Response)
        }
        _ => None,
    }
}

/// Which side sent the packet that starts `payload`, when only one side may
/// send its type; `None` for the types both send (PUBLISH, its acks,
/// DISCONNECT and AUTH in MQTT 5) and for bytes that start no packet.
pub fn sender(payload: &[u8]) -> Option<Side> {
    let &b = payload.first()?;
    if !flags_valid(b >> 4, b & 0x0f, false) {
        return None;
    }
    match b >> 4 {
        CONNECT | SUBSCRIBE | UNSUBSCRIBE | PINGREQ => Some(Side::Client),
        CONNACK | SUBACK | UNSUBACK | PINGRESP => Some(Side::Server),
        _ => None,
    }
}

/// QoS, RETAIN and DUP of the PUBLISH that starts `payload`; `None` for
/// any other packet.
pub fn publish_flags(payload: &[u8]) -> Option<PublishFlags> {
    let &b = payload.first()?;
    (b >> 4 == PUBLISH && flags_valid(PUBLISH, b & 0x0f, false)).then_some(PublishFlags {
        qos: (b >> 1) & 3,
        retain: b & 1 != 0,
        dup: b & 8 != 0,
    })
}

/// The Topic Alias property of the MQTT 5 PUBLISH that starts `payload`.
///
/// Its properties follow the topic (and packet id), so they can be read
/// only when the connection is known to be MQTT 5, or when the topic is
/// empty (which only MQTT 5 allows, with an alias). A PUBLISH with both a
/// topic and an alias sets the alias for later PUBLISHes of the same
/// direction; one with an empty topic uses it.
pub fn topic_alias(payload: &[u8], version: Option<Version>) -> Option<u16> {
    let f = fixed_header(payload, false).ok()?;
    if f.ptype != PUBLISH {
        return None;
    }
    let mut r = f.reader(payload);
    let topic = r.string("topic name").ok()?;
    if version != Some(Version::V5) && !topic.is_empty() {
        return None;
    }
    if f.flags & 0x06 != 0 {
        r.u16("packet identifier").ok()?;
    }
    let mut props = Props::default();
    let _ = properties(&mut r, &mut props);
    props.topic_alias
}

/// The outcome class of an MQTT 5 reason code (also the 3.1.x SUBACK codes,
/// which are a subset, but see the module doc for 0x80 there).
pub fn reason_status(code: u8) -> ResponseStatus {
    match code {
        0x00..=0x7f => ResponseStatus::Ok,
        // The request's fault: malformed or refused, credentials, rights,
        // names, ids, limits the client went over, features the server
        // said it lacks, redirection for good (the client's configuration).
        0x81
        | 0x82
        | 0x84..=0x87
        | 0x8a
        | 0x8c..=0x97
        | 0x99..=0x9b
        | 0x9d..=0x9f
        | 0xa1
        | 0xa2 => ResponseStatus::ClientError,
        // The server's state: unspecified, implementation specific,
        // unavailable, busy, shutting down, administrative action, use
        // another server, maximum connect time; and unknown codes.
        _ => ResponseStatus::ServerError,
    }
}

/// The outcome class of a 3.1.x CONNACK return code.
pub fn connack_v3_status(code: u8) -> ResponseStatus {
    match code {
        0 => ResponseStatus::Ok,
        1 | 2 | 4 | 5 => ResponseStatus::ClientError,
        _ => ResponseStatus::ServerError,
    }
}

/// The specification's name of an MQTT 5 failure reason code (0x80 and
/// above); `None` for success codes and unknown ones.
pub fn reason_name(code: u8) -> Option<&'static str> {
    Some(match code {
        0x80 => "Unspecified error",
        0x81 => "Malformed Packet",
        0x82 => "Protocol Error",
        0x83 => "Implementation specific error",
        0x84 => "Unsupported Protocol Version",
        0x85 => "Client Identifier not valid",
        0x86 => "Bad User Name or Password",
        0x87 => "Not authorized",
        0x88 => "Server unavailable",
        0x89 => "Server busy",
        0x8a => "Banned",
        0x8b => "Server shutting down",
        0x8c => "Bad authentication method",
        0x8d => "Keep Alive timeout",
        0x8e => "Session taken over",
        0x8f => "Topic Filter invalid",
        0x90 => "Topic Name invalid",
        0x91 => "Packet Identifier in use",
        0x92 => "Packet Identifier not found",
        0x93 => "Receive Maximum exceeded",
        0x94 => "Topic Alias invalid",
        0x95 => "Packet too large",
        0x96 => "Message rate too high",
        0x97 => "Quota exceeded",
        0x98 => "Administrative action",
        0x99 => "Payload format invalid",
        0x9a => "Retain not supported",
        0x9b => "QoS not supported",
        0x9c => "Use another server",
        0x9d => "Server moved",
        0x9e => "Shared Subscriptions not supported",
        0x9f => "Connection rate exceeded",
        0xa0 => "Maximum connect time",
        0xa1 => "Subscription Identifiers not supported",
        0xa2 => "Wildcard Subscriptions not supported",
        _ => return None,
    })
}

/// The 3.1.1 specification's name of a CONNACK return code other than 0.
fn connack_v3_name(code: u8) -> &'static str {
    match code {
        1 => "Connection Refused, unacceptable protocol version",
        2 => "Connection Refused, identifier rejected",
        3 => "Connection Refused, Server unavailable",
        4 => "Connection Refused, bad user name or password",
        5 => "Connection Refused, not authorized",
        _ => "Connection Refused, reserved return code",
    }
}

// --- the fixed header ----------------------------------------------------------

/// Whether a type takes these flags. `strict` also refuses DUP on a QoS 0
/// PUBLISH, which the specification forbids but which does not hinder
/// reading.
fn flags_valid(ptype: u8, flags: u8, strict: bool) -> bool {
    match ptype {
        0 => false,
        PUBLISH => {
            let qos = (flags >> 1) & 3;
            qos != 3 && !(strict && qos == 0 && flags & 8 != 0)
        }
        PUBREL | SUBSCRIBE | UNSUBSCRIBE => flags == 0b0010,
        _ => flags == 0,
    }
}

#[derive(Debug, Clone, Copy)]
struct Fixed {
    ptype: u8,
    flags: u8,
    /// Bytes of the fixed header: 2 to 5.
    header_len: usize,
    /// The remaining length: the bytes after the fixed header.
    remaining: usize,
}

impl Fixed {
    fn total(&self) -> usize {
        self.header_len + self.remaining
    }

    /// A reader over the visible part of the body.
    fn reader<'a>(&self, payload: &'a [u8]) -> Reader<'a> {
        let start = self.header_len.min(payload.len());
        let end = self.total().min(payload.len());
        Reader {
            buf: &payload[start..end],
            pos: 0,
            end: self.remaining,
        }
    }
}

/// The fixed header at the start of `buf`. `strict` wants the remaining
/// length in the fewest bytes, as MQTT 5 requires and every encoder does.
fn fixed_header(buf: &[u8], strict: bool) -> Result<Fixed, ParseError> {
    let &b0 = buf.first().ok_or(ParseError::Incomplete)?;
    let (ptype, flags) = (b0 >> 4, b0 & 0x0f);
    if !flags_valid(ptype, flags, strict) {
        return Err(ParseError::Mismatch);
    }
    let mut remaining = 0usize;
    for i in 0..4 {
        let &b = buf.get(1 + i).ok_or(ParseError::Incomplete)?;
        remaining |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if strict && i > 0 && b == 0 {
                return Err(ParseError::Invalid("remaining length"));
            }
            return Ok(Fixed {
                ptype,
                flags,
                header_len: 2 + i,
                remaining,
            });
        }
    }
    Err(ParseError::Invalid("remaining length"))
}

// --- reading a body ------------------------------------------------------------

/// Why reading a body stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The visible bytes end; the packet goes on.
    Cut,
    /// The packet breaks its grammar here.
    Bad(&'static str),
}

/// A cursor over the visible part of a packet body, which knows where the
/// whole body ends: reading past the visible bytes is a cut, reading past
/// the body's end is malformed.
#[derive(Debug, Clone, Copy)]
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Stop> {
        let next = self.pos.saturating_add(n);
        if next > self.end {
            return Err(Stop::Bad(what));
        }
        let s = self.buf.get(self.pos..next).ok_or(Stop::Cut)?;
        self.pos = next;
        Ok(s)
    }

    fn byte(&mut self, what: &'static str) -> Result<u8, Stop> {
        self.take(1, what).map(|s| s[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, Stop> {
        self.take(2, what).map(|s| u16::from_be_bytes([s[0], s[1]]))
    }

    /// A two-byte length and that many bytes (UTF-8 strings and binary data).
    fn string(&mut self, what: &'static str) -> Result<&'a [u8], Stop> {
        let n = self.u16(what)?;
        self.take(usize::from(n), what)
    }

    /// A variable byte integer (at most four bytes).
    fn varint(&mut self, what: &'static str) -> Result<usize, Stop> {
        let mut value = 0usize;
        for i in 0..4 {
            let b = self.byte(what)?;
            value |= usize::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Stop::Bad(what))
    }

    fn at_end(&self) -> bool {
        self.pos == self.end
    }

    /// A reader over the next `n` bytes (a property list), this one moved
    /// past them. The sub-reader's end is theirs.
    fn sub(&mut self, n: usize, what: &'static str) -> Result<Reader<'a>, Stop> {
        let next = self.pos.saturating_add(n);
        if next > self.end {
            return Err(Stop::Bad(what));
        }
        let visible_end = next.min(self.buf.len());
        let sub = Reader {
            buf: self.buf.get(self.pos..visible_end).unwrap_or_default(),
            pos: 0,
            end: n,
        };
        self.pos = next;
        Ok(sub)
    }
}

/// The MQTT 5 properties Causeway looks at.
#[derive(Debug, Default, Clone, Copy)]
struct Props<'a> {
    reason_string: Option<&'a [u8]>,
    topic_alias: Option<u16>,
    auth_method: Option<&'a [u8]>,
}

/// An MQTT 5 property list: its length, then identifier and value pairs.
/// Fills `found` with what it passes, so that a cut list keeps what came
/// before the cut.
fn properties<'a>(r: &mut Reader<'a>, found: &mut Props<'a>) -> Result<(), Stop> {
    let len = r.varint("property length")?;
    let mut p = r.sub(len, "property length")?;
    while !p.at_end() {
        // Identifiers are variable byte integers, but all of them are below
        // 128: a continuation bit is an unknown identifier.
        match p.byte("property identifier")? {
            // Byte.
            0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2a => {
                p.byte("property value")?;
            }
            0x23 => found.topic_alias = Some(p.u16("topic alias")?),
            // Two-byte integer.
            0x13 | 0x21 | 0x22 => {
                p.u16("property value")?;
            }
            // Four-byte integer.
            0x02 | 0x11 | 0x18 | 0x27 => {
                p.take(4, "property value")?;
            }
            // Variable byte integer (subscription identifier).
            0x0b => {
                p.varint("subscription identifier")?;
            }
            0x1f => found.reason_string = Some(p.string("reason string")?),
            0x15 => found.auth_method = Some(p.string("authentication method")?),
            // UTF-8 strings and binary data.
            0x03 | 0x08 | 0x09 | 0x12 | 0x16 | 0x1a | 0x1c => {
                p.string("property value")?;
            }
            // User property: a string pair.
            0x26 => {
                p.string("user property")?;
                p.string("user property")?;
            }
            _ => return Err(Stop::Bad("property identifier")),
        }
    }
    Ok(())
}

/// Bytes as text: borrowed when UTF-8, made lossy otherwise.
fn text(b: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// Printable UTF-8: what `infer` wants of a topic before it believes it.
fn printable(b: &[u8]) -> bool {
    std::str::from_utf8(b).is_ok_and(|s| !s.chars().any(char::is_control))
}

/// A topic filter's wildcards where the specification allows them: `#`
/// alone as the last level, `+` alone in its level.
fn wildcards_well_placed(f: &[u8]) -> bool {
    let levels = f.split(|&b| b == b'/');
    let n = f.iter().filter(|&&b| b == b'/').count();
    levels.enumerate().all(|(i, level)| match level {
        b"#" => i == n,
        b"+" => true,
        l => !l.contains(&b'#') && !l.contains(&b'+'),
    })
}

// --- packets -------------------------------------------------------------------

/// What reading one packet gave.
struct Packet<'a> {
    head: Head<'a>,
    /// Fixed header plus remaining length.
    len: usize,
    /// The packet says MQTT on its own (see [`infer`]).
    strong: bool,
}

/// Reading state for one packet.
struct Ctx<'a> {
    head: Head<'a>,
    /// The connection's version when known.
    version: Option<Version>,
    /// `infer`'s extra checks.
    strict: bool,
    strong: bool,
}

impl Ctx<'_> {
    /// The bytes can only be MQTT 5: say so, unless the caller gave the
    /// connection's version, which stands.
    fn set_v5(&mut self) {
        if self.version.is_none() {
            self.head.version = Cow::Borrowed(Version::V5.as_str());
        }
    }

    /// A code as MQTT 5 defines it: the code, its class, its name when it
    /// is a failure.
    fn reason(&mut self, code: u8) {
        self.head.response_code = Some(i32::from(code));
        self.head.response_status = Some(reason_status(code));
        if let Some(name) = reason_name(code) {
            self.head.exception = Cow::Borrowed(name);
        }
    }
}

fn read_packet<'a>(
    payload: &'a [u8],
    version: Option<Version>,
    strict: bool,
) -> Result<Packet<'a>, ParseError> {
    let f = fixed_header(payload, strict)?;
    if f.remaining > 0 && payload.len() <= f.header_len {
        return Err(ParseError::Incomplete);
    }
    let mut c = Ctx {
        head: Head {
            request_type: Cow::Borrowed(NAMES[usize::from(f.ptype)]),
            message_len: Some(f.total() as u64),
            version: Cow::Borrowed(version.map_or("", Version::as_str)),
            ..Head::default()
        },
        version,
        strict,
        strong: false,
    };
    let mut r = f.reader(payload);
    let read = match f.ptype {
        CONNECT => connect(&mut r, &mut c),
        CONNACK => connack(&mut r, &mut c),
        PUBLISH => publish(&mut r, &mut c, f.flags),
        PUBACK | PUBREC | PUBREL | PUBCOMP => ack(&mut r, &mut c, f.ptype),
        SUBSCRIBE | UNSUBSCRIBE => subscribe(&r, &mut c, f.ptype == SUBSCRIBE),
        SUBACK => suback(&r, &mut c),
        UNSUBACK => unsuback(&mut r, &mut c),
        PINGREQ | PINGRESP => {
            if strict && f.remaining != 0 {
                Err(Stop::Bad("remaining length"))
            } else {
                if f.ptype == PINGRESP {
                    c.head.response_status = Some(ResponseStatus::Ok);
                }
                Ok(())
            }
        }
        DISCONNECT => {
            c.head.unpaired = true;
            reason_packet(&mut r, &mut c, DISCONNECT)
        }
        AUTH => reason_packet(&mut r, &mut c, AUTH),
        _ => Err(Stop::Bad("packet type")),
    };
    match read {
        Ok(()) | Err(Stop::Cut) => Ok(Packet {
            head: c.head,
            len: f.total(),
            strong: c.strong,
        }),
        Err(Stop::Bad(what)) => Err(ParseError::Invalid(what)),
    }
}

fn connect<'a>(r: &mut Reader<'a>, c: &mut Ctx<'a>) -> Result<(), Stop> {
    let name = r.string("protocol name")?;
    let level = r.byte("protocol level")?;
    let v = match (name, Version::from_level(level)) {
        (b"MQTT", Some(v @ (Version::V3_1_1 | Version::V5))) => v,
        (b"MQIsdp", Some(Version::V3_1)) => Version::V3_1,
        _ => return Err(Stop::Bad("protocol name or level")),
    };
    c.version = Some(v);
    c.head.version = Cow::Borrowed(v.as_str());
    let flags = r.byte("connect flags")?;
    let will = flags & 0x04 != 0;
    let will_qos = (flags >> 3) & 3;
    if c.strict && (flags & 0x01 != 0 || will_qos == 3 || (!will && flags & 0x38 != 0)) {
        return Err(Stop::Bad("connect flags"));
    }
    r.u16("keep alive")?;
    c.strong = true;
    if v == Version::V5 {
        properties(r, &mut Props::default())?;
    }
    let id = r.string("client identifier")?;
    if c.strict && std::str::from_utf8(id).is_err() {
        return Err(Stop::Bad("client identifier"));
    }
    c.head.request_domain = text(id);
    if will {
        if v == Version::V5 {
            properties(r, &mut Props::default())?;
        }
        r.string("will topic")?;
        r.string("will payload")?;
    }
    if flags & 0x80 != 0 {
        let user = r.string("user name")?;
        c.head.request_resource = Cow::Owned(format!("user={}", text(user)));
    }
    if flags & 0x40 != 0 {
        // Skipped, never read.
        r.string("password")?;
    }
    if c.strict && !r.at_end() {
        return Err(Stop::Bad("connect length"));
    }
    Ok(())
}

fn connack<'a>(r: &mut Reader<'a>, c: &mut Ctx<'a>) -> Result<(), Stop> {
    if r.end < 2 {
        return Err(Stop::Bad("remaining length"));
    }
    let flags = r.byte("acknowledge flags")?;
    if c.strict && flags & 0xfe != 0 {
        return Err(Stop::Bad("acknowledge flags"));
    }
    let code = r.byte("return code")?;
    if r.end == 2 {
        // 3.1.x: a return code, nothing else.
        if c.version == Some(Version::V5) {
            c.head.version = Cow::Borrowed("");
        }
        if c.strict && code > 5 {
            return Err(Stop::Bad("return code"));
        }
        c.head.response_code = Some(i32::from(code));
        c.head.response_status = Some(connack_v3_status(code));
        if code != 0 {
            c.head.exception = Cow::Borrowed(connack_v3_name(code));
        }
        return Ok(());
    }
    c.set_v5();
    if c.strict && !valid_reason(CONNACK, code) {
        return Err(Stop::Bad("reason code"));
    }
    c.reason(code);
    let mut props = Props::default();
    let read = properties(r, &mut props);
    failure_text(c, &props);
    read?;
    end_of_packet(r, c)
}

fn publish<'a>(r: &mut Reader<'a>, c: &mut Ctx<'a>, flags: u8) -> Result<(), Stop> {
    let qos = (flags >> 1) & 3;
    c.head.unpaired = qos == 0;
    let topic = r.string("topic name")?;
    if topic.is_empty() {
        // Only MQTT 5 allows it, with a topic alias.
        c.set_v5();
    }
    if c.strict && (topic.contains(&0) || topic.contains(&b'+') || topic.contains(&b'#')) {
        return Err(Stop::Bad("topic name"));
    }
    c.head.request_resource = text(topic);
    c.strong = c.strict && !topic.is_empty() && printable(topic);
    if qos > 0 {
        let id = r.u16("packet identifier")?;
        if c.strict && id == 0 {
            return Err(Stop::Bad("packet identifier"));
        }
        c.head.request_id = Some(u64::from(id));
    }
    Ok(())
}

/// PUBACK, PUBREC, PUBREL, PUBCOMP: a packet id, then in MQTT 5 a reason
/// code and properties, both omitted when the code is 0 and there are none.
fn ack<'a>(r: &mut Reader<'a>, c: &mut Ctx<'a>, ptype: u8) -> Result<(), Stop> {
    let id = r.u16("packet identifier")?;
    if c.strict && id == 0 {
        return Err(Stop::Bad("packet identifier"));
    }
    c.head.request_id = Some(u64::from(id));
    if r.at_end() {
        // No code: success.
        if ptype != PUBREL {
            c.head.response_status = Some(ResponseStatus::Ok);
        }
        return Ok(());
    }
    reason_packet(r, c, ptype)
}

/// The reason code and properties that end PUBACK, PUBREC, PUBREL, PUBCOMP
/// (after their packet id), DISCONNECT and AUTH (their whole body; none
/// means code 0x00 and no properties). MQTT 5 only.
fn reason_packet<'a>(r: &mut Reader<'a>, c: &mut Ctx<'a>, ptype: u8) -> Result<(), Stop> {
    if r.at_end() {
        if ptype == AUTH {
            c.set_v5();
        }
        return Ok(());
    }
    c.set_v5();
    let code = r.byte("reason code")?;
    if c.strict && !valid_reason(ptype, code) {
        return Err(Stop::Bad("reason code"));
    }
    c.reason(code);
    if r.at_end() {
        return Ok(());
    }
    let mut props = Props::default();
    let read = properties(r, &mut props);
    failure_text(c, &props);
    if ptype == AUTH {
        if let Some(m) = props.auth_method {
            c.head.request_resource = text(m);
        }
    }
    read?;
    end_of_packet(r, c)
}

/// A Reason String, when a failure carries a non-empty one, replaces the
/// code's name.
fn failure_text<'a>(c: &mut Ctx<'a>, props: &Props<'a>) {
    if let (Some(s), Some(code)) = (props.reason_string, c.head.response_code) {
        if code >= 0x80 && !s.is_empty() {
            c.head.exception = text(s);
        }
    }
}

/// Nothing may follow the properties of an ack (`infer` checks).
fn end_of_packet(r: &Reader<'_>, c: &Ctx<'_>) -> Result<(), Stop> {
    if c.strict && !r.at_end() {
        return Err(Stop::Bad("trailing bytes"));
    }
    Ok(())
}

/// The reason codes MQTT 5 lets each packet carry.
fn valid_reason(ptype: u8, code: u8) -> bool {
    match ptype {
        CONNACK => matches!(
            code,
            0x00 | 0x80..=0x8a | 0x8c | 0x90 | 0x95 | 0x97 | 0x99..=0x9d | 0x9f
        ),
        PUBACK | PUBREC => matches!(
            code,
            0x00 | 0x10 | 0x80 | 0x83 | 0x87 | 0x90 | 0x91 | 0x97 | 0x99
        ),
        PUBREL | PUBCOMP => matches!(code, 0x00 | 0x92),
        SUBACK => matches!(
            code,
            0x00..=0x02 | 0x80 | 0x83 | 0x87 | 0x8f | 0x91 | 0x97 | 0x9e | 0xa1 | 0xa2
        ),
        UNSUBACK => matches!(code, 0x00 | 0x11 | 0x80 | 0x83 | 0x87 | 0x8f | 0x91),
        DISCONNECT => matches!(
            code,
            0x00 | 0x04 | 0x80..=0x83 | 0x87 | 0x89 | 0x8b | 0x8d..=0xa2
        ),
        AUTH => matches!(code, 0x00 | 0x18 | 0x19),
        _ => false,
    }
}

// --- SUBSCRIBE, UNSUBSCRIBE, SUBACK: read as 3.1.1 or as 5 -------------------

/// What one reading of a SUBSCRIBE or UNSUBSCRIBE found.
#[derive(Debug, Default, Clone, Copy)]
struct SubFacts<'a> {
    id: Option<u16>,
    first: Option<&'a [u8]>,
    /// The first filter is printable and well formed (for `infer`).
    first_clean: bool,
}

fn read_subscribe<'a>(
    mut r: Reader<'a>,
    v5: bool,
    with_options: bool,
    strict: bool,
    facts: &mut SubFacts<'a>,
) -> Result<(), Stop> {
    let id = r.u16("packet identifier")?;
    if id == 0 {
        return Err(Stop::Bad("packet identifier"));
    }
    facts.id = Some(id);
    if v5 {
        properties(&mut r, &mut Props::default())?;
    }
    let mut n = 0;
    while !r.at_end() {
        let filter = r.string("topic filter")?;
        if filter.is_empty() || filter.contains(&0) || std::str::from_utf8(filter).is_err() {
            return Err(Stop::Bad("topic filter"));
        }
        if n == 0 {
            facts.first = Some(filter);
            facts.first_clean = strict && printable(filter) && wildcards_well_placed(filter);
        }
        if with_options {
            let o = r.byte("subscription options")?;
            let valid = if v5 {
                o & 0xc0 == 0 && o & 3 != 3 && (o >> 4) & 3 != 3
            } else {
                o & 0xfc == 0 && o != 3
            };
            if !valid {
                return Err(Stop::Bad("subscription options"));
            }
        }
        n += 1;
    }
    if n == 0 {
        return Err(Stop::Bad("topic filter"));
    }
    Ok(())
}

/// Which reading of a version-dependent packet to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// 3.1.x: the known version, or the only reading that fits.
    V3,
    /// MQTT 5: the known version, or the only reading that fits (`proven`).
    V5 { proven: bool },
    /// Both fit and no version is known: report what they agree on.
    Both,
}

fn choose(version: Option<Version>, fits3: bool, fits5: bool) -> Option<Reading> {
    match version {
        Some(Version::V5) => Some(Reading::V5 { proven: false }),
        Some(_) => Some(Reading::V3),
        None => match (fits3, fits5) {
            (true, false) => Some(Reading::V3),
            (false, true) => Some(Reading::V5 { proven: true }),
            (true, true) => Some(Reading::Both),
            (false, false) => None,
        },
    }
}

fn fits(read: &Result<(), Stop>) -> bool {
    !matches!(read, Err(Stop::Bad(_)))
}

fn subscribe<'a>(r: &Reader<'a>, c: &mut Ctx<'a>, with_options: bool) -> Result<(), Stop> {
    let mut f3 = SubFacts::default();
    let mut f5 = SubFacts::default();
    // With the version known, only its reading is needed.
    let r3 = if c.version == Some(Version::V5) {
        Err(Stop::Cut)
    } else {
        read_subscribe(*r, false, with_options, c.strict, &mut f3)
    };
    let r5 = if matches!(c.version, Some(Version::V3_1 | Version::V3_1_1)) {
        Err(Stop::Cut)
    } else {
        read_subscribe(*r, true, with_options, c.strict, &mut f5)
    };
    let (facts, read) = match choose(c.version, fits(&r3), fits(&r5)) {
        None | Some(Reading::V3) => (f3, r3),
        Some(Reading::V5 { proven }) => {
            if proven {
                c.set_v5();
            }
            (f5, r5)
        }
        Some(Reading::Both) => {
            // The packet id comes first either way; a filter only when both
            // readings see the same one.
            let first = f3.first.filter(|&f| f5.first == Some(f));
            let facts = SubFacts {
                first,
                first_clean: first.is_some() && f3.first_clean,
                ..f3
            };
            (facts, r3)
        }
    };
    c.head.request_id = facts.id.map(u64::from);
    if let Some(first) = facts.first {
        c.head.request_resource = text(first);
    }
    c.strong = facts.first_clean;
    read
}

/// What one reading of a SUBACK found.
#[derive(Debug, Default, Clone, Copy)]
struct AckFacts<'a> {
    id: Option<u16>,
    first: Option<u8>,
    first_failure: Option<u8>,
    props: Props<'a>,
}

fn read_suback<'a>(
    mut r: Reader<'a>,
    v5: bool,
    check_codes: bool,
    facts: &mut AckFacts<'a>,
) -> Result<(), Stop> {
    let id = r.u16("packet identifier")?;
    if check_codes && id == 0 {
        return Err(Stop::Bad("packet identifier"));
    }
    facts.id = Some(id);
    if v5 {
        properties(&mut r, &mut facts.props)?;
    }
    let mut n = 0;
    while !r.at_end() {
        let code = r.byte("return code")?;
        let valid = if v5 {
            valid_reason(SUBACK, code)
        } else {
            matches!(code, 0..=2 | 0x80)
        };
        if check_codes && !valid {
            return Err(Stop::Bad("return code"));
        }
        facts.first.get_or_insert(code);
        if code >= 0x80 {
            facts.first_failure.get_or_insert(code);
        }
        n += 1;
    }
    if n == 0 {
        return Err(Stop::Bad("return code"));
    }
    Ok(())
}

/// The code a SUBACK or UNSUBACK reports: the first failure (final once
/// seen, whatever the cut hides after it), else the first code once the
/// whole list was read.
fn list_code(facts: &AckFacts<'_>, read: &Result<(), Stop>) -> Option<u8> {
    facts
        .first_failure
        .or(if read.is_ok() { facts.first } else { None })
}

/// Status and failure name of a SUBACK code, 3.1.x or 5 (see the module
/// doc for 0x80).
fn suback_outcome(code: u8, v5: bool) -> (ResponseStatus, Option<&'static str>) {
    if v5 {
        (reason_status(code), reason_name(code))
    } else if code >= 0x80 {
        (ResponseStatus::ClientError, Some("Failure"))
    } else {
        (ResponseStatus::Ok, None)
    }
}

fn suback<'a>(r: &Reader<'a>, c: &mut Ctx<'a>) -> Result<(), Stop> {
    let check = c.version.is_none() || c.strict;
    let mut f3 = AckFacts::default();
    let mut f5 = AckFacts::default();
    let r3 = if c.version == Some(Version::V5) {
        Err(Stop::Cut)
    } else {
        read_suback(*r, false, check, &mut f3)
    };
    let r5 = if matches!(c.version, Some(Version::V3_1 | Version::V3_1_1)) {
        Err(Stop::Cut)
    } else {
        read_suback(*r, true, check, &mut f5)
    };
    let reading = choose(c.version, fits(&r3), fits(&r5));
    let (facts, read, v5) = match reading {
        None | Some(Reading::V3) => (f3, r3, false),
        Some(Reading::V5 { proven }) => {
            if proven {
                c.set_v5();
            }
            (f5, r5, true)
        }
        Some(Reading::Both) => {
            c.head.request_id = f3.id.map(u64::from);
            let o3 = list_code(&f3, &r3).map(|code| (code, suback_outcome(code, false)));
            let o5 = list_code(&f5, &r5).map(|code| (code, suback_outcome(code, true)));
            match (o3, o5) {
                (Some(a), Some(b)) if a == b => {
                    c.head.response_code = Some(i32::from(a.0));
                    c.head.response_status = Some(a.1 .0);
                    if let Some(name) = a.1 .1 {
                        c.head.exception = Cow::Borrowed(name);
                    }
                }
                (Some(a), Some(b)) if a.1 .0 == b.1 .0 => {
                    c.head.response_status = Some(a.1 .0);
                }
                _ => {}
            }
            return r3;
        }
    };
    c.head.request_id = facts.id.map(u64::from);
    if let Some(code) = list_code(&facts, &read) {
        let (status, name) = suback_outcome(code, v5);
        c.head.response_code = Some(i32::from(code));
        c.head.response_status = Some(status);
        if let Some(name) = name {
            c.head.exception = Cow::Borrowed(name);
        }
    }
    failure_text(c, &facts.props);
    read
}

/// UNSUBACK: a packet id only in 3.1.x (remaining length 2); in MQTT 5,
/// properties and a reason code per filter.
fn unsuback<'a>(r: &mut Reader<'a>, c: &mut Ctx<'a>) -> Result<(), Stop> {
    let id = r.u16("packet identifier")?;
    if c.strict && id == 0 {
        return Err(Stop::Bad("packet identifier"));
    }
    c.head.request_id = Some(u64::from(id));
    if r.at_end() {
        c.head.response_status = Some(ResponseStatus::Ok);
        return Ok(());
    }
    c.set_v5();
    let mut facts = AckFacts::default();
    let read = read_unsuback_codes(r, c.strict, &mut facts);
    if let Some(code) = list_code(&facts, &read) {
        c.reason(code);
    }
    failure_text(c, &facts.props);
    read
}

fn read_unsuback_codes<'a>(
    r: &mut Reader<'a>,
    strict: bool,
    facts: &mut AckFacts<'a>,
) -> Result<(), Stop> {
    properties(r, &mut facts.props)?;
    let mut n = 0;
    while !r.at_end() {
        let code = r.byte("reason code")?;
        if strict && !valid_reason(UNSUBACK, code) {
            return Err(Stop::Bad("reason code"));
        }
        facts.first.get_or_insert(code);
        if code >= 0x80 {
            facts.first_failure.get_or_insert(code);
        }
        n += 1;
    }
    if n == 0 {
        return Err(Stop::Bad("reason code"));
    }
    Ok(())
}
