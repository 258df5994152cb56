//! Messages: what the assembler makes of a run of syscalls in one direction.
//!
//! Only the first syscall of a message is parsed, into a [`MessageHead`];
//! later syscalls of the same message only add to its length and end time.

use causeway_l7::infer::MessageKind;
use causeway_l7::{
    dns, dubbo, http1, http2, kafka, mqtt, mysql, postgresql, protobuf_rpc, redis, sofarpc, Head,
};
use causeway_model::{
    Comm, DataEvent, Direction, FiveTuple, L4Protocol, L7Protocol, ResponseStatus,
};

/// What a parser read from the head of one message: the few fields a span
/// needs, owned, because the message outlives the ring buffer record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageHead {
    pub version: String,
    /// Requests: method.
    pub request_type: String,
    /// Requests: host.
    pub request_domain: String,
    /// Requests: path.
    pub request_resource: String,
    pub user_agent: String,
    /// Responses: status code.
    pub response_code: Option<i32>,
    pub response_status: Option<ResponseStatus>,
    /// Responses: error text.
    pub exception: String,
    /// Responses: what was answered (DNS answers).
    pub result: String,
    pub x_request_id: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    /// Bytes the message takes on the wire, when its head says.
    pub message_len: Option<u64>,
    /// Pairs a response with its request when answers may come out of order.
    pub request_id: Option<u64>,
    /// An interim response (1xx but 101): it does not answer the request.
    pub interim: bool,
    /// The connection stops speaking this protocol after this message (101).
    pub upgrade: bool,
    /// A request asking to go on in HTTP/2 (`Upgrade: h2c`).
    pub upgrade_h2c: bool,
    /// A request whose response has no body (HEAD).
    pub bodiless_response: bool,
    /// Part of no exchange (a server greeting): not paired, counted.
    pub unpaired: bool,
}

impl From<Head<'_>> for MessageHead {
    fn from(h: Head<'_>) -> MessageHead {
        MessageHead {
            version: h.version.into_owned(),
            request_type: h.request_type.into_owned(),
            request_domain: h.request_domain.into_owned(),
            request_resource: h.request_resource.into_owned(),
            response_code: h.response_code,
            response_status: h.response_status,
            exception: h.exception.into_owned(),
            result: h.result.into_owned(),
            message_len: h.message_len,
            request_id: h.request_id,
            unpaired: h.unpaired,
            trace_id: h.trace_id.into_owned(),
            span_id: h.span_id.into_owned(),
            parent_span_id: h.parent_span_id.into_owned(),
            ..MessageHead::default()
        }
    }
}

/// Why a payload gave no head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// The protocol has no parser (yet).
    Unsupported,
    /// The HTTP/1 parser rejected the bytes.
    Http(http1::ParseError),
    /// Another protocol's parser rejected the bytes.
    Parse(causeway_l7::ParseError),
}

fn owned(s: Option<&str>) -> String {
    s.map(str::to_owned).unwrap_or_default()
}

/// What a parser may need beyond the bytes: facts of the socket.
#[derive(Debug, Clone, Copy)]
pub struct ParseContext {
    /// The transport (DNS frames differ over TCP).
    pub l4: L4Protocol,
    /// Where ProtobufRPC frames on this socket keep their facts.
    pub pb: protobuf_rpc::Config,
    /// The MQTT version the connection's CONNECT named.
    pub mqtt: Option<mqtt::Version>,
    /// For a Kafka response: the API (key and version) of the request with
    /// its correlation id, which decides the response's layout.
    pub kafka: Option<kafka::RequestApi>,
    /// Either end of the socket is Kafka's port (9092): a hint that lets
    /// inference believe a broker's response, which alone says too little.
    pub kafka_port: bool,
}

impl Default for ParseContext {
    fn default() -> Self {
        ParseContext {
            l4: L4Protocol::Tcp,
            pb: protobuf_rpc::BAIDU_STD,
            mqtt: None,
            kafka: None,
            kafka_port: false,
        }
    }
}

impl ParseContext {
    fn dns(&self) -> dns::Transport {
        match self.l4 {
            L4Protocol::Udp => dns::Transport::Udp,
            L4Protocol::Tcp => dns::Transport::Tcp,
        }
    }
}

/// Parses the head of a message of a known protocol and kind.
///
/// `head_request` says the request this response answers was a HEAD, which
/// changes where the response ends.
pub fn parse_head(
    protocol: L7Protocol,
    kind: MessageKind,
    payload: &[u8],
    head_request: bool,
    ctx: &ParseContext,
) -> Result<MessageHead, HeadError> {
    match protocol {
        L7Protocol::Http => match kind {
            MessageKind::Request => {
                let r = http1::parse_request(payload).map_err(HeadError::Http)?;
                let trace = r.trace.trace_context().unwrap_or_default();
                Ok(MessageHead {
                    version: format!("1.{}", r.minor_version),
                    request_type: r.method.to_owned(),
                    request_domain: owned(r.host),
                    request_resource: r.target.to_owned(),
                    user_agent: owned(r.user_agent),
                    x_request_id: owned(r.x_request_id),
                    trace_id: trace.trace_id.into_owned(),
                    span_id: trace.span_id.into_owned(),
                    parent_span_id: trace.parent_span_id.into_owned(),
                    message_len: r.message_len(),
                    bodiless_response: r.method == "HEAD",
                    upgrade_h2c: r.upgrade.is_some_and(|u| {
                        u.split(',').any(|t| t.trim().eq_ignore_ascii_case("h2c"))
                    }),
                    ..MessageHead::default()
                })
            }
            MessageKind::Response => {
                let r = http1::parse_response(payload).map_err(HeadError::Http)?;
                let trace = r.trace.trace_context().unwrap_or_default();
                Ok(MessageHead {
                    version: format!("1.{}", r.minor_version),
                    response_code: Some(r.status as i32),
                    response_status: Some(http1::status_class(r.status)),
                    x_request_id: owned(r.x_request_id),
                    trace_id: trace.trace_id.into_owned(),
                    span_id: trace.span_id.into_owned(),
                    parent_span_id: trace.parent_span_id.into_owned(),
                    message_len: r.message_len(head_request),
                    interim: (100..200).contains(&r.status) && r.status != 101,
                    upgrade: r.status == 101,
                    ..MessageHead::default()
                })
            }
        },
        L7Protocol::Redis => redis::parse(payload, kind)
            .map(MessageHead::from)
            .map_err(HeadError::Parse),
        L7Protocol::Mysql => mysql::parse(payload, kind)
            .map(MessageHead::from)
            .map_err(HeadError::Parse),
        L7Protocol::Postgresql => postgresql::parse(payload, kind)
            .map(MessageHead::from)
            .map_err(HeadError::Parse),
        L7Protocol::ProtobufRpc => protobuf_rpc::parse(payload, kind, &ctx.pb)
            .map(MessageHead::from)
            .map_err(HeadError::Parse),
        L7Protocol::Dns => dns::parse(payload, kind, ctx.dns())
            .map(MessageHead::from)
            .map_err(HeadError::Parse),
        L7Protocol::Mqtt => mqtt::parse_with_version(payload, kind, ctx.mqtt)
            .map(MessageHead::from)
            .map_err(HeadError::Parse),
        L7Protocol::Kafka => match kind {
            MessageKind::Request => kafka::parse_request(payload),
            MessageKind::Response => kafka::parse_response(payload, ctx.kafka),
        }
        .map(MessageHead::from)
        .map_err(HeadError::Parse),
        L7Protocol::Dubbo => dubbo::parse(payload, kind)
            .map(MessageHead::from)
            .map_err(HeadError::Parse),
        L7Protocol::SofaRpc => sofarpc::parse(payload, kind)
            .map(MessageHead::from)
            .map_err(HeadError::Parse),
        _ => Err(HeadError::Unsupported),
    }
}

/// Which protocol the first bytes of a socket's first message speak, and
/// which kind of message they are when the bytes alone tell.
pub fn infer_protocol(
    payload: &[u8],
    ctx: &ParseContext,
) -> Option<(L7Protocol, Option<MessageKind>)> {
    if ctx.l4 == L4Protocol::Udp {
        // Of the protocols parsed, only DNS travels in datagrams.
        return dns::infer(payload, dns::Transport::Udp).map(|k| (L7Protocol::Dns, Some(k)));
    }
    // The HTTP/2 client preface, then HTTP/1 start lines: the most
    // distinctive. (HTTP/1's inference rejects the preface.)
    if let Some(kind) = http2::infer(payload) {
        return Some((L7Protocol::Http2, Some(kind)));
    }
    if let Some((p, kind)) = causeway_l7::infer::infer(payload) {
        return Some((p, Some(kind)));
    }
    // Binary protocols with a magic first, then those with length-checked
    // frames, before the text-ish RESP;
    // PostgreSQL before MySQL, whose looser 4-byte header also fits some
    // PostgreSQL frames while the reverse was never seen in recorded traffic.
    if let Some(kind) = protobuf_rpc::infer(payload) {
        return Some((L7Protocol::ProtobufRpc, Some(kind)));
    }
    if protobuf_rpc::is_header_alone(payload) {
        // Read apart from its meta: the socket's role tells the kind.
        return Some((L7Protocol::ProtobufRpc, None));
    }
    // Dubbo's magic and Bolt's whole-header checks before the SQL
    // protocols: MySQL's 3-byte length and sequence id also fit a Bolt
    // heartbeat, whose first bytes are `01 01 00 00`.
    if let Some(kind) = dubbo::infer(payload) {
        return Some((L7Protocol::Dubbo, Some(kind)));
    }
    if let Some(kind) = sofarpc::infer(payload) {
        return Some((L7Protocol::SofaRpc, Some(kind)));
    }
    // Kafka requests: a length that matches, a known API and version, a
    // sane client id and, for the common APIs, a body that fits; on
    // Kafka's port a broker's responses are believed too (a connection
    // older than the agent).
    if let Some(kind) = kafka::infer(payload) {
        return Some((L7Protocol::Kafka, Some(kind)));
    }
    if ctx.kafka_port && kafka::looks_like_response(payload) {
        return Some((L7Protocol::Kafka, Some(MessageKind::Response)));
    }
    if let Some(kind) = postgresql::infer(payload) {
        return Some((L7Protocol::Postgresql, Some(kind)));
    }
    if let Some(kind) = mysql::infer(payload) {
        return Some((L7Protocol::Mysql, Some(kind)));
    }
    // MQTT's inference checks whole packets; it claims no text protocol.
    if let Some(kind) = mqtt::infer(payload) {
        return Some((L7Protocol::Mqtt, Some(kind)));
    }
    if let Some(kind) = redis::infer(payload) {
        return Some((L7Protocol::Redis, Some(kind)));
    }
    // Last: a 2-byte length and a DNS header are the least distinctive.
    if let Some(kind) = dns::infer(payload, dns::Transport::Tcp) {
        return Some((L7Protocol::Dns, Some(kind)));
    }
    None
}

/// For protocols whose message kind is in the bytes (HTTP/1), the kind of
/// the message these bytes start; None for the others or non-starts.
pub fn kind_in_bytes(
    protocol: L7Protocol,
    payload: &[u8],
    ctx: &ParseContext,
) -> Option<MessageKind> {
    match protocol {
        L7Protocol::Http => causeway_l7::infer::infer(payload)
            .filter(|(p, _)| *p == protocol)
            .map(|(_, k)| k),
        // The QR bit.
        L7Protocol::Dns => dns::infer(payload, ctx.dns()),
        // The packet type (both sides ask: a broker's PUBLISH is a request).
        L7Protocol::Mqtt => mqtt::message_kind(payload),
        // The request flag; Bolt's type byte.
        L7Protocol::Dubbo => dubbo::message_kind(payload),
        L7Protocol::SofaRpc => sofarpc::message_kind(payload),
        _ => None,
    }
}

/// Whether a whole syscall's bytes end a message of this protocol and kind
/// whose length the head could not tell.
pub fn ends_message(protocol: L7Protocol, kind: MessageKind, payload: &[u8]) -> bool {
    match protocol {
        L7Protocol::Http => http1::ends_chunked_body(payload),
        L7Protocol::Redis => redis::ends_message(payload, kind),
        L7Protocol::Mysql => mysql::ends_message(payload, kind),
        L7Protocol::Postgresql => postgresql::ends_message(payload, kind),
        L7Protocol::Dns => dns::ends_message(payload, kind),
        L7Protocol::Mqtt => mqtt::ends_message(payload, kind),
        L7Protocol::Kafka => kafka::ends_message(payload, kind),
        _ => false,
    }
}

/// One message, assembled from one or more syscalls in one direction.
#[derive(Debug, Clone)]
pub struct Message {
    pub protocol: L7Protocol,
    pub kind: MessageKind,
    pub head: MessageHead,
    pub direction: Direction,
    pub socket_id: u64,
    pub pid: u32,
    pub tid: u32,
    pub comm: Comm,
    pub tuple: FiveTuple,
    /// When its first byte was there (monotonic ns).
    pub start_ns: u64,
    /// When its last syscall returned (monotonic ns).
    pub end_ns: u64,
    pub tcp_seq: u32,
    pub syscall_trace_id: u64,
    /// Bytes seen so far, over all its syscalls.
    pub length: u64,
    /// TLS plaintext.
    pub tls: bool,
    /// The goroutine that moved its first bytes (Go TLS), else 0.
    pub coroutine_id: u64,
    /// The first syscall was too short for a head (a server reading a MySQL
    /// packet's 4-byte header before its body): its bytes, parsed together
    /// with the next syscall's.
    pub pending_head: Option<Vec<u8>>,
}

impl Message {
    /// A message that starts `offset` bytes into the syscall of `e` and takes
    /// `length` of its bytes.
    pub fn start(
        e: &DataEvent<'_>,
        protocol: L7Protocol,
        kind: MessageKind,
        head: MessageHead,
        offset: u64,
        length: u64,
    ) -> Message {
        Message {
            protocol,
            kind,
            head,
            direction: e.direction,
            socket_id: e.socket_id,
            pid: e.pid,
            tid: e.tid,
            comm: e.comm,
            tuple: e.tuple,
            start_ns: e.data_ns(),
            end_ns: e.exit_ns,
            tcp_seq: e.tcp_seq.wrapping_add(offset as u32),
            syscall_trace_id: e.syscall_trace_id,
            length,
            tls: e.is_tls,
            coroutine_id: e.coroutine_id,
            pending_head: None,
        }
    }

    /// Bytes still expected, if the head told the length.
    pub fn remaining(&self) -> Option<u64> {
        self.head
            .message_len
            .map(|total| total.saturating_sub(self.length))
    }

    /// Whether every byte the head announced has been seen.
    pub fn is_complete(&self) -> bool {
        self.remaining() == Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_head_fields() {
        let h = parse_head(
            L7Protocol::Http,
            MessageKind::Request,
            b"POST /api/x HTTP/1.1\r\nHost: shop\r\nContent-Length: 5\r\nX-Request-ID: abc\r\n\
              traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\nhello",
            false,
            &ParseContext::default(),
        )
        .unwrap();
        assert_eq!(h.request_type, "POST");
        assert_eq!(h.request_domain, "shop");
        assert_eq!(h.request_resource, "/api/x");
        assert_eq!(h.x_request_id, "abc");
        assert_eq!(h.trace_id, "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(h.span_id, "b7ad6b7169203331");
        assert_eq!(h.version, "1.1");
        let head_len = h.message_len.unwrap() - 5;
        assert!(head_len > 0);
    }

    #[test]
    fn response_to_head_has_no_body() {
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n";
        let h = parse_head(
            L7Protocol::Http,
            MessageKind::Response,
            resp,
            true,
            &ParseContext::default(),
        )
        .unwrap();
        assert_eq!(h.message_len, Some(resp.len() as u64));
        let h = parse_head(
            L7Protocol::Http,
            MessageKind::Response,
            resp,
            false,
            &ParseContext::default(),
        )
        .unwrap();
        assert_eq!(h.message_len, Some(resp.len() as u64 + 500));
        assert_eq!(h.response_status, Some(ResponseStatus::Ok));
    }

    #[test]
    fn interim_and_upgrade() {
        let h = parse_head(
            L7Protocol::Http,
            MessageKind::Response,
            b"HTTP/1.1 100 Continue\r\n\r\n",
            false,
            &ParseContext::default(),
        )
        .unwrap();
        assert!(h.interim);
        let h = parse_head(
            L7Protocol::Http,
            MessageKind::Response,
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
            false,
            &ParseContext::default(),
        )
        .unwrap();
        assert!(h.upgrade && !h.interim);
    }

    /// The first client chunk of each connection in a recording of
    /// kafka-python and tansu (`.rec`: direction, connection, u32 length,
    /// bytes), and the first server chunk.
    fn kafka_firsts(rec: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut seen = Vec::new();
        let mut out = Vec::new();
        let mut b = rec;
        while b.len() >= 6 {
            let n = u32::from_be_bytes([b[2], b[3], b[4], b[5]]) as usize;
            if !seen.contains(&(b[0], b[1])) {
                seen.push((b[0], b[1]));
                out.push((b[0], b[6..6 + n].to_vec()));
            }
            b = &b[6 + n..];
        }
        out
    }

    #[test]
    fn kafka_is_inferred_before_the_other_binary_protocols() {
        let recs: [&[u8]; 3] = [
            include_bytes!("../../causeway-l7/tests/fixtures/kafka/consume_group.rec"),
            include_bytes!("../../causeway-l7/tests/fixtures/kafka/v2_5_produce_acks.rec"),
            include_bytes!("../../causeway-l7/tests/fixtures/kafka/raw_requests.rec"),
        ];
        let ctx = ParseContext::default();
        let hinted = ParseContext {
            kafka_port: true,
            ..ParseContext::default()
        };
        let mut n = 0;
        for rec in recs {
            for (dir, bytes) in kafka_firsts(rec) {
                let b = &bytes[..bytes.len().min(1024)];
                if dir == b'C' {
                    let want = Some((L7Protocol::Kafka, Some(MessageKind::Request)));
                    assert_eq!(infer_protocol(b, &ctx), want);
                    assert_eq!(infer_protocol(b, &hinted), want);
                    n += 1;
                } else {
                    // A broker's answer says Kafka only on Kafka's port.
                    assert_eq!(infer_protocol(b, &ctx), None);
                    assert_eq!(
                        infer_protocol(b, &hinted),
                        Some((L7Protocol::Kafka, Some(MessageKind::Response)))
                    );
                }
            }
        }
        assert!(n >= 10, "{n}");
    }

    #[test]
    fn garbage_is_a_typed_error() {
        let e = parse_head(
            L7Protocol::Http,
            MessageKind::Request,
            b"\x00\x01",
            false,
            &ParseContext::default(),
        );
        assert!(matches!(e, Err(HeadError::Http(_))));
        let e = parse_head(
            L7Protocol::Unknown,
            MessageKind::Request,
            b"x",
            false,
            &ParseContext::default(),
        );
        assert_eq!(e, Err(HeadError::Unsupported));
    }
}
