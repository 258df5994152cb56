//! The one shape every parser's result takes, so the agent assembles and
//! pairs messages of any protocol through one code path.
//!
//! A protocol module (`redis`, `mysql`, `postgresql`, ...) provides:
//! - `infer(payload) -> Option<MessageKind>`: a strict, cheap check that the
//!   bytes start a message of this protocol, and which kind when the bytes
//!   alone tell (`None` when they are not this protocol);
//! - `parse(payload, kind) -> Result<Head<'_>, ParseError>`: the facts of the
//!   message that starts at `payload[0]`;
//! - `ends_message(payload, kind) -> bool`: whether a whole syscall's bytes
//!   end a message whose length the head could not tell.

use causeway_model::ResponseStatus;
use std::borrow::Cow;

/// What a parser read from the start of one message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Head<'a> {
    /// Protocol version, when the message says (`1.1`, `3` for RESP3).
    pub version: Cow<'a, str>,
    /// Requests: method, command (`GET`, `SET`, `COM_QUERY`, `Query`).
    pub request_type: Cow<'a, str>,
    /// Requests: host, database.
    pub request_domain: Cow<'a, str>,
    /// Requests: path, key, statement.
    pub request_resource: Cow<'a, str>,
    /// Responses: status or error code (HTTP status, MySQL error number).
    pub response_code: Option<i32>,
    /// Responses: the outcome class, when the message tells.
    pub response_status: Option<ResponseStatus>,
    /// Responses: error text (Redis `-ERR ...`, SQL error message).
    pub exception: Cow<'a, str>,
    /// Responses: what was answered, briefly (DNS: the answers' data).
    pub result: Cow<'a, str>,
    /// Bytes of the whole message when the head tells; the next message then
    /// starts that many bytes on. `None`: the message ends when the other
    /// side speaks, when `ends_message` says so, or after going idle.
    pub message_len: Option<u64>,
    /// The id that pairs this message with its other half, for protocols
    /// that may answer out of order (DNS transaction id, HTTP/2 stream id,
    /// Kafka correlation id, MQTT packet id, Dubbo and Bolt request ids).
    /// `None`: pairing is serial, in order.
    pub request_id: Option<u64>,
    /// Part of no exchange (a server greeting, a connection-level notice):
    /// not paired, counted apart.
    pub unpaired: bool,
    /// Trace context the message carried (RPC attachments, properties).
    pub trace_id: Cow<'a, str>,
    /// The sender's span id, with the trace id.
    pub span_id: Cow<'a, str>,
    /// The sender's parent span id, when the format carries one.
    pub parent_span_id: Cow<'a, str>,
}

/// Why bytes do not yield a message head (for the protocols parsed through
/// [`Head`]; HTTP/1 has its own, equivalent, `http1::ParseError`).
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum ParseError {
    /// The bytes end before the part the head needs; more could make it valid.
    #[error("incomplete message head")]
    Incomplete,
    /// The bytes are not a message of this protocol.
    #[error("not a message of this protocol")]
    Mismatch,
    /// The bytes look like this protocol but break its grammar; names the part.
    #[error("invalid {0}")]
    Invalid(&'static str),
}

impl Head<'_> {
    /// A copy that borrows nothing.
    pub fn into_owned(self) -> Head<'static> {
        Head {
            version: Cow::Owned(self.version.into_owned()),
            request_type: Cow::Owned(self.request_type.into_owned()),
            request_domain: Cow::Owned(self.request_domain.into_owned()),
            request_resource: Cow::Owned(self.request_resource.into_owned()),
            response_code: self.response_code,
            response_status: self.response_status,
            exception: Cow::Owned(self.exception.into_owned()),
            result: Cow::Owned(self.result.into_owned()),
            message_len: self.message_len,
            request_id: self.request_id,
            unpaired: self.unpaired,
            trace_id: Cow::Owned(self.trace_id.into_owned()),
            span_id: Cow::Owned(self.span_id.into_owned()),
            parent_span_id: Cow::Owned(self.parent_span_id.into_owned()),
        }
    }
}
