//! The socket table, message assembly and session pairing, fed one event at
//! a time.
//!
//! Assembly rule (the paper's "only the first syscall of a message is
//! parsed"): a syscall starts a new message when its socket has no message in
//! progress in that direction, or the message in progress is complete, or its
//! length was unknown and these bytes start a new message. Otherwise its bytes
//! are counted into the message in progress. A head that announces its length
//! lets one syscall hold several pipelined messages, each parsed at its exact
//! offset while it lies inside the captured prefix.
//!
//! Pairing is serial (HTTP/1, Redis, SQL): the oldest request waiting on a
//! socket takes the next final response; a response that names its request
//! (a DNS id, a stream id) takes that one. A request left unanswered past the
//! timeout window, or when its socket closes, becomes a timeout span. The
//! window is an array of time slots (the paper's): each slot lists the
//! sockets that queued a request in it, so expiring a slot visits only those,
//! and a bound on all slot entries keeps memory bounded under any load.

use crate::clock::WallClock;
use crate::filter::EventFilter;
use crate::message::{
    ends_message, infer_protocol, kind_in_bytes, parse_head, HeadError, Message, MessageHead,
    ParseContext,
};
use causeway_bpf::{DecodeError, EventSink};
use causeway_l7::infer::MessageKind;
use causeway_model::{
    Comm, DataEvent, Direction, FiveTuple, L4Protocol, L7Protocol, ObservationPoint,
    ResponseStatus, SocketEvent, SocketRole, Span,
};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

/// Where finished spans go (and, from packet capture, flow reports).
pub trait SpanSink {
    fn on_span(&mut self, span: Span);
    /// A flow report from packet capture ([`crate::capture`]); sinks
    /// that keep no flows ignore it.
    fn on_flow(&mut self, _flow: causeway_model::Flow) {}
    /// Called after each batch of events, so a sink may buffer in between.
    fn flush(&mut self) {}
}

impl<F: FnMut(Span)> SpanSink for F {
    fn on_span(&mut self, span: Span) {
        self(span)
    }
}

#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub filter: EventFilter,
    /// An unanswered request becomes a timeout span after this long: the
    /// pairing window.
    pub request_timeout: Duration,
    /// The window is kept as an array of slots this long (the paper's time
    /// slots): requests expire a slot at a time, between `request_timeout`
    /// and `request_timeout + pairing_slot` after they were sent, and only
    /// the sockets with requests in an expiring slot are visited.
    pub pairing_slot: Duration,
    /// Requests waiting over all sockets, counted in slot entries; past this
    /// the oldest slot is dropped early (counted in `pending_dropped`), so
    /// memory stays bounded whatever the traffic.
    pub max_pending_total: usize,
    /// A message of unknown length (close-delimited, or a head cut off by the
    /// capture cap) is closed after this long without bytes.
    pub idle_flush: Duration,
    /// A socket without traffic for this long is forgotten.
    pub socket_idle_evict: Duration,
    /// Requests waiting on one socket; past this the oldest is dropped (counted).
    pub max_pending_per_socket: usize,
    /// Inference gives up on a socket after this many unrecognised messages.
    pub max_infer_failures: u8,
    /// Where the events were observed when not in the processes themselves:
    /// `Some(Network)` for packet captures, whose events are fed as seen
    /// from the client (egress = client to server). `None`: in the process
    /// that made the syscall, client or server by the request's direction.
    pub observation_point: Option<ObservationPoint>,
    /// "Port N speaks protocol X": sockets with this port at either end
    /// skip inference, and requests travel towards the port.
    pub port_protocols: Vec<(u16, L7Protocol)>,
    /// Where ProtobufRPC frames on a port keep their facts; other ports
    /// use the default layout.
    pub protobuf_rpc: Vec<(u16, causeway_l7::protobuf_rpc::Config)>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            filter: EventFilter::default(),
            request_timeout: Duration::from_secs(60),
            pairing_slot: Duration::from_secs(1),
            max_pending_total: 1 << 20,
            idle_flush: Duration::from_millis(500),
            socket_idle_evict: Duration::from_secs(300),
            max_pending_per_socket: 256,
            max_infer_failures: 8,
            observation_point: None,
            port_protocols: Vec::new(),
            protobuf_rpc: Vec::new(),
        }
    }
}

/// What the pipeline did; every event and message is accounted for here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Records received from the kernel (all kinds).
    pub events: u64,
    /// Records the kernel dropped because the ring buffer was full.
    pub kernel_lost: u64,
    /// Records that did not decode.
    pub decode_errors: u64,
    /// Data events that passed the filter.
    pub data_events: u64,
    pub sockets_opened: u64,
    pub sockets_closed: u64,
    /// Messages assembled (heads parsed).
    pub messages: u64,
    /// Syscalls whose bytes no known protocol claimed.
    pub unrecognised: u64,
    /// Heads a parser rejected.
    pub parse_errors: u64,
    /// The same, by protocol.
    pub parse_errors_by_protocol: BTreeMap<L7Protocol, u64>,
    pub spans: u64,
    pub timeouts: u64,
    /// Responses with no request waiting (e.g. the request predates the agent).
    pub orphan_responses: u64,
    /// Requests dropped because too many were waiting on one socket.
    pub pending_dropped: u64,
    /// 1xx interim responses, which answer nothing.
    pub interim_responses: u64,
    /// Messages outside any exchange (a server greeting).
    pub unpaired_messages: u64,
    /// HTTP/2: times a direction lost its frame boundaries (a frame header
    /// past the captured prefix of a syscall).
    pub h2_framing_lost: u64,
    /// HTTP/2: header blocks cut by the capture cap (decoded up to the cut;
    /// the connection's HPACK table is then partly unknown).
    pub h2_header_blocks_cut: u64,
}

#[derive(Debug, Default)]
struct SocketState {
    protocol: Option<L7Protocol>,
    /// Not parsed any more: upgraded, or nothing we know.
    opaque: bool,
    /// Its TLS plaintext is seen (library uprobes): its own syscalls carry
    /// ciphertext and are ignored.
    tls: bool,
    infer_failures: u8,
    /// The direction requests travel, fixed when the protocol is inferred.
    request_dir: Option<Direction>,
    /// The database the connection chose when it opened (PostgreSQL
    /// startup, MySQL login or COM_INIT_DB): the domain of its later spans.
    domain: String,
    /// The MQTT version its CONNECT named.
    mqtt_version: Option<causeway_l7::mqtt::Version>,
    /// Its endpoints, once listed in [`Core::endpoints`].
    endpoint: Option<FiveTuple>,
    /// Kafka requests waiting for their response, oldest first: correlation
    /// id and API (key, version). A response's layout depends on the API
    /// it answers, which only its correlation id tells.
    kafka_requests: VecDeque<(i32, causeway_l7::kafka::RequestApi)>,
    /// The message in progress per direction (index: [`dir_index`]).
    current: [Option<Message>; 2],
    /// Requests waiting for their response, oldest first.
    pending: VecDeque<Message>,
    /// Responses reported before their request: the library calls of a
    /// TLS connection are reported when they return, and a goroutine or
    /// thread that wrote a request may return after another has read the
    /// answer. Each waits briefly for a request sent before it.
    early: VecDeque<Message>,
    /// HTTP/2 streams and framing, once the socket speaks it.
    h2: Option<Box<h2::H2Conn>>,
    last_ns: u64,
}

/// Responses waiting per socket for a request reported after them.
const MAX_EARLY_RESPONSES: usize = 16;

/// A socket's first read shorter than this is inferred together with its
/// next read: every protocol parsed needs more to be told apart (a MySQL
/// packet header is 4 bytes, a DNS-over-TCP length 2).
const MIN_INFER_LEN: usize = 8;

/// Longest head put together from reads that each hold part of it.
const MAX_ACCUMULATED_HEAD: usize = 64;

/// Longest first syscall whose head may be completed by the next one.
const MAX_DEFERRED_HEAD: usize = 16;

fn opposite(d: Direction) -> Direction {
    match d {
        Direction::Ingress => Direction::Egress,
        Direction::Egress => Direction::Ingress,
    }
}

fn dir_index(d: Direction) -> usize {
    match d {
        Direction::Ingress => 0,
        Direction::Egress => 1,
    }
}

/// The whole user-space capture pipeline.
/// The whole user-space capture pipeline.
pub struct Pipeline {
    /// The socket table, apart from the rest so both can be borrowed at once.
    sockets: HashMap<u64, SocketState>,
    core: Core,
    last_sweep_ns: u64,
}

/// Assembly, pairing and span building: everything but the socket table.
struct Core {
    config: PipelineConfig,
    wall: WallClock,
    stats: Stats,
    /// Per pairing slot (index: monotonic time / slot length, oldest first),
    /// the sockets that queued a request in it.
    slots: VecDeque<(u64, Vec<u64>)>,
    /// Socket ids over all slots.
    slot_entries: usize,
    /// The process behind each local socket by (transport, local, remote):
    /// a span's other end, when it is a process on this host too.
    endpoints: HashMap<(L4Protocol, SocketAddr, SocketAddr), (u32, Comm)>,
    /// Endpoints of sockets closed within the pairing window (with when
    /// they closed), and their keys oldest first: a request still waiting
    /// at the other end (it times out after its client gave up and closed)
    /// is still named by its client process.
    closed_endpoints: HashMap<(L4Protocol, SocketAddr, SocketAddr), (u64, u32, Comm)>,
    closed_order: VecDeque<(u64, (L4Protocol, SocketAddr, SocketAddr))>,
    /// The process behind each local UDP socket by local address alone
    /// (with the socket's id): a UDP server (a DNS resolver) answers every
    /// client from one unconnected socket, whose events each name another
    /// remote, so its first tuple in `endpoints` names only its first
    /// client; its clients find it here by the address they sent to.
    udp_locals: HashMap<SocketAddr, (u64, u32, Comm)>,
}

/// Closed sockets' endpoints kept at most.
const MAX_CLOSED_ENDPOINTS: usize = 1 << 16;

impl Pipeline {
    pub fn new(config: PipelineConfig, wall: WallClock) -> Pipeline {
        Pipeline {
            sockets: HashMap::new(),
            core: Core {
                config,
                wall,
                stats: Stats::default(),
                slots: VecDeque::new(),
                slot_entries: 0,
                endpoints: HashMap::new(),
                closed_endpoints: HashMap::new(),
                closed_order: VecDeque::new(),
                udp_locals: HashMap::new(),
            },
            last_sweep_ns: 0,
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.core.stats
    }

    /// Sockets currently tracked.
    pub fn sockets(&self) -> usize {
        self.sockets.len()
    }

    pub fn note_kernel_lost(&mut self, lost: u64) {
        self.core.stats.kernel_lost = lost;
    }

    pub fn note_decode_error(&mut self) {
        self.core.stats.decode_errors += 1;
    }

    pub fn on_event(&mut self, event: SocketEvent<'_>, sink: &mut dyn SpanSink) {
        let core = &mut self.core;
        core.stats.events += 1;
        match event {
            SocketEvent::Data(e) => {
                if core.config.filter.matches(&e) {
                    core.stats.data_events += 1;
                    let s = self.sockets.entry(e.socket_id).or_default();
                    s.last_ns = e.exit_ns;
                    if e.is_tls && !s.tls {
                        // Plaintext at last: what the handshake's ciphertext
                        // taught inference is void.
                        *s = SocketState {
                            tls: true,
                            last_ns: e.exit_ns,
                            ..SocketState::default()
                        };
                    }
                    if s.tls && !e.is_tls {
                        return;
                    }
                    if s.endpoint.is_none() && core.config.observation_point.is_none() {
                        let t = e.tuple;
                        core.endpoints
                            .insert((t.l4, t.local, t.remote), (e.pid, e.comm));
                        if t.l4 == L4Protocol::Udp {
                            core.udp_locals
                                .insert(t.local, (e.socket_id, e.pid, e.comm));
                        }
                        s.endpoint = Some(t);
                    }
                    if !s.opaque {
                        core.assemble(s, &e, sink);
                    }
                }
            }
            SocketEvent::Open(o) => {
                core.stats.sockets_opened += 1;
                // Socket ids are never reused, so an open starts a fresh state.
                self.sockets.insert(
                    o.socket_id,
                    SocketState {
                        last_ns: o.ts_ns,
                        ..SocketState::default()
                    },
                );
            }
            SocketEvent::Close(c) => {
                core.stats.sockets_closed += 1;
                if let Some(mut s) = self.sockets.remove(&c.socket_id) {
                    core.retire_endpoint(&s, c.socket_id, c.ts_ns);
                    for d in 0..2 {
                        if let Some(m) = s.current[d].take() {
                            core.finish(&mut s, m, sink);
                        }
                    }
                    while let Some(req) = s.pending.pop_front() {
                        core.emit(req, None, sink);
                    }
                    core.h2_close_all(&mut s, sink);
                    core.stats.orphan_responses += s.early.len() as u64;
                }
            }
        }
    }

    /// Unanswered requests of slots out of the window become timeout spans;
    /// past the memory bound the oldest slots go early, counted as dropped.
    fn expire_slots(&mut self, now_ns: u64, sink: &mut dyn SpanSink) {
        let core = &mut self.core;
        let slot_ns = core.slot_ns();
        let window = (core.config.request_timeout.as_nanos() as u64).div_ceil(slot_ns);
        let now_slot = now_ns / slot_ns;
        while let Some(&(slot, _)) = core.slots.front() {
            let expired = slot + window < now_slot;
            let over = core.slot_entries > core.config.max_pending_total;
            if !expired && !over {
                break;
            }
            let Some((_, mut ids)) = core.slots.pop_front() else {
                break;
            };
            core.slot_entries -= ids.len();
            ids.sort_unstable();
            ids.dedup();
            for id in ids {
                let Some(s) = self.sockets.get_mut(&id) else {
                    continue;
                };
                while s
                    .pending
                    .front()
                    .is_some_and(|r| r.start_ns / slot_ns <= slot)
                {
                    let Some(req) = s.pending.pop_front() else {
                        break;
                    };
                    if expired {
                        core.emit(req, None, sink);
                    } else {
                        core.stats.pending_dropped += 1;
                    }
                }
                core.h2_expire(s, slot, expired, sink);
            }
        }
    }

    /// Time-driven work: idle messages are closed, unanswered requests time
    /// out, idle sockets are forgotten. `now_ns` is the monotonic clock.
    pub fn tick(&mut self, now_ns: u64, sink: &mut dyn SpanSink) {
        // Sweeping every socket is linear; a few times a second is plenty.
        if now_ns.saturating_sub(self.last_sweep_ns) < 100_000_000 {
            return;
        }
        self.last_sweep_ns = now_ns;
        self.expire_slots(now_ns, sink);
        let core = &mut self.core;
        let keep_closed = core.config.request_timeout.as_nanos() as u64 + 2 * core.slot_ns();
        while core
            .closed_order
            .front()
            .is_some_and(|c| now_ns.saturating_sub(c.0) > keep_closed)
        {
            core.pop_closed();
        }
        let idle_flush = core.config.idle_flush.as_nanos() as u64;
        let evict = core.config.socket_idle_evict.as_nanos() as u64;
        self.sockets.retain(|&id, s| {
            for d in 0..2 {
                // Only a message of unknown length can end by going quiet; one
                // still owed announced bytes is unfinished (its peer stopped
                // reading, or died) and waits for more, its close, or the timeout.
                let idle = s.current[d].as_ref().is_some_and(|m| {
                    m.remaining().is_none() && now_ns.saturating_sub(m.end_ns) >= idle_flush
                });
                if idle {
                    if let Some(m) = s.current[d].take() {
                        core.finish(s, m, sink);
                    }
                }
            }
            // A response early by more than the idle window answers nothing
            // that was sent: the request predates the agent.
            while s
                .early
                .front()
                .is_some_and(|r| now_ns.saturating_sub(r.end_ns) >= idle_flush)
            {
                s.early.pop_front();
                core.stats.orphan_responses += 1;
            }
            let forget = s.pending.is_empty()
                && s.early.is_empty()
                && s.h2.as_ref().is_none_or(|h| h.streams.is_empty())
                && s.current.iter().all(Option::is_none)
                && now_ns.saturating_sub(s.last_ns) >= evict;
            if forget {
                core.forget_endpoint(s, id);
            }
            !forget
        });
    }
}

impl Core {
    /// What the parsers may need to know of the socket of `e`.
    fn ctx(&self, e: &DataEvent<'_>, s: &SocketState) -> ParseContext {
        let (l, r) = (e.tuple.local.port(), e.tuple.remote.port());
        let pb = self
            .config
            .protobuf_rpc
            .iter()
            .find(|(p, _)| *p == l || *p == r)
            .map_or(causeway_l7::protobuf_rpc::BAIDU_STD, |(_, c)| *c);
        let kafka_port = [l, r].contains(&causeway_l7::kafka::DEFAULT_PORT);
        ParseContext {
            l4: e.tuple.l4,
            pb,
            mqtt: s.mqtt_version,
            kafka: None,
            kafka_port,
        }
    }

    /// [`Core::ctx`] for parsing the message at the start of `buf`: a Kafka
    /// response gets the API of the request it answers.
    fn head_ctx(
        &self,
        e: &DataEvent<'_>,
        s: &SocketState,
        protocol: L7Protocol,
        kind: MessageKind,
        buf: &[u8],
    ) -> ParseContext {
        let mut ctx = self.ctx(e, s);
        if protocol == L7Protocol::Kafka && kind == MessageKind::Response {
            let corr = causeway_l7::kafka::correlation_id(buf, kind);
            ctx.kafka = s
                .kafka_requests
                .iter()
                .find(|(c, _)| Some(*c) == corr)
                .map(|(_, api)| *api);
        }
        ctx
    }

    /// A Kafka request that expects an answer: its API is kept until the
    /// answer comes (bounded like the requests waiting).
    fn note_kafka_request(&self, s: &mut SocketState, buf: &[u8], head: &MessageHead) {
        if head.unpaired {
            return;
        }
        if let Some(req) = causeway_l7::kafka::request_header(buf) {
            if s.kafka_requests.len() >= self.config.max_pending_per_socket {
                s.kafka_requests.pop_front();
            }
            s.kafka_requests.push_back(req);
        }
    }

    fn forget_endpoint(&mut self, s: &SocketState, socket_id: u64) {
        if let Some(t) = s.endpoint {
            self.endpoints.remove(&(t.l4, t.local, t.remote));
            self.forget_udp_local(&t, socket_id);
        }
    }

    /// Forgets a UDP socket's local address, unless another socket has
    /// bound it since.
    fn forget_udp_local(&mut self, t: &FiveTuple, socket_id: u64) {
        if t.l4 == L4Protocol::Udp
            && self
                .udp_locals
                .get(&t.local)
                .is_some_and(|u| u.0 == socket_id)
        {
            self.udp_locals.remove(&t.local);
        }
    }

    /// Forgets a closed socket's endpoint, keeping it a pairing window
    /// longer for the requests its peer may still be waiting on.
    fn retire_endpoint(&mut self, s: &SocketState, socket_id: u64, now_ns: u64) {
        if let Some(t) = s.endpoint {
            self.forget_udp_local(&t, socket_id);
            let key = (t.l4, t.local, t.remote);
            if let Some((pid, comm)) = self.endpoints.remove(&key) {
                if self.closed_order.len() >= MAX_CLOSED_ENDPOINTS {
                    self.pop_closed();
                }
                self.closed_order.push_back((now_ns, key));
                self.closed_endpoints.insert(key, (now_ns, pid, comm));
            }
        }
    }

    /// Forgets the oldest closed endpoint (unless its key closed again since).
    fn pop_closed(&mut self) {
        if let Some((at, key)) = self.closed_order.pop_front() {
            if self.closed_endpoints.get(&key).is_some_and(|c| c.0 == at) {
                self.closed_endpoints.remove(&key);
            }
        }
    }

    /// The process at the far end of `t`, if it is one on this host.
    fn peer(&self, t: &FiveTuple) -> Option<(u32, &Comm)> {
        let key = (t.l4, t.remote, t.local);
        if let Some((pid, comm)) = self.endpoints.get(&key) {
            return Some((*pid, comm));
        }
        if let Some(c) = self.closed_endpoints.get(&key) {
            return Some((c.1, &c.2));
        }
        if t.l4 == L4Protocol::Udp {
            // The socket the datagrams were sent to, bound to that address
            // or to the wildcard address of its family.
            let any = SocketAddr::new(
                match t.remote {
                    SocketAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
                    SocketAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
                },
                t.remote.port(),
            );
            return [t.remote, any]
                .iter()
                .find_map(|a| self.udp_locals.get(a))
                .map(|u| (u.1, &u.2));
        }
        None
    }

    fn slot_ns(&self) -> u64 {
        let slot = self.config.pairing_slot.min(self.config.request_timeout);
        (slot.as_nanos() as u64).max(1)
    }

    /// Notes in the slot array that `socket_id` queued a request at `start_ns`.
    fn note_pending(&mut self, socket_id: u64, start_ns: u64) {
        let slot = start_ns / self.slot_ns();
        match self.slots.back_mut() {
            Some((last, ids)) if *last >= slot => {
                // Same slot (or a request stamped a little earlier than the
                // newest: it joins the newest slot and expires with it).
                if ids.last() != Some(&socket_id) {
                    ids.push(socket_id);
                    self.slot_entries += 1;
                }
            }
            _ => {
                self.slots.push_back((slot, vec![socket_id]));
                self.slot_entries += 1;
            }
        }
    }

    fn parse_error(&mut self, protocol: L7Protocol) {
        self.stats.parse_errors += 1;
        *self
            .stats
            .parse_errors_by_protocol
            .entry(protocol)
            .or_default() += 1;
    }

    fn assemble(&mut self, s: &mut SocketState, e: &DataEvent<'_>, sink: &mut dyn SpanSink) {
        if s.h2.is_some() {
            self.h2_feed(s, e, 0, sink);
            return;
        }
        let d = dir_index(e.direction);
        // The other side speaking ends its message, unless that message
        // still awaits bytes it announced (a request body after 100 Continue)
        // or the rest of its head.
        if let Some(m) = s.current[1 - d].take() {
            if m.remaining().is_some_and(|r| r > 0) || m.pending_head.is_some() {
                s.current[1 - d] = Some(m);
            } else {
                self.finish(s, m, sink);
            }
        }
        let total = e.total_len as u64;
        if let Some(mut m) = s.current[d].take() {
            if let Some(mut head_bytes) = m.pending_head.take() {
                // The head, at last: the first syscall's bytes and these.
                head_bytes.extend_from_slice(e.payload);
                if m.protocol == L7Protocol::Unknown {
                    // A socket's first read too short to tell what it
                    // speaks (a DNS-over-TCP server reading the 2-byte
                    // length alone, one byte at a time as dnsmasq does):
                    // infer from the reads together.
                    if head_bytes.len() < MIN_INFER_LEN && e.payload.len() as u64 == total {
                        m.length += total;
                        m.end_ns = e.exit_ns;
                        m.pending_head = Some(head_bytes);
                        s.current[d] = Some(m);
                        return;
                    }
                    match self.protocol_and_kind(s, e, &head_bytes) {
                        Some((p, kind)) => {
                            m.protocol = p;
                            m.kind = kind;
                        }
                        None => {
                            self.not_recognised(s);
                            return;
                        }
                    }
                }
                let ctx = self.head_ctx(e, s, m.protocol, m.kind, &head_bytes);
                match parse_head(m.protocol, m.kind, &head_bytes, false, &ctx) {
                    Ok(head) => {
                        self.stats.messages += 1;
                        if m.protocol == L7Protocol::Kafka && m.kind == MessageKind::Request {
                            self.note_kafka_request(s, &head_bytes, &head);
                        }
                        m.head = head;
                    }
                    Err(HeadError::Parse(causeway_l7::ParseError::Incomplete))
                        if head_bytes.len() <= MAX_ACCUMULATED_HEAD
                            && e.payload.len() as u64 == total =>
                    {
                        // Still short: readers that take a packet a byte
                        // or a field at a time (libmosquitto reads the MQTT
                        // fixed header byte by byte) go on adding to it.
                        m.length += total;
                        m.end_ns = e.exit_ns;
                        m.pending_head = Some(head_bytes);
                        s.current[d] = Some(m);
                        return;
                    }
                    Err(_) => {
                        self.parse_error(m.protocol);
                        return;
                    }
                }
            }
            match m.remaining() {
                Some(r) => {
                    let take = r.min(total);
                    m.length += take;
                    m.end_ns = e.exit_ns;
                    if m.is_complete() {
                        self.finish(s, m, sink);
                        if take < total {
                            // The rest of this syscall is the next message.
                            self.parse_from(s, e, take, sink);
                        }
                    } else {
                        s.current[d] = Some(m);
                    }
                    return;
                }
                None => {
                    // Only where the bytes tell a start from a continuation
                    // (HTTP's start lines) can a new message cut this one
                    // short; binary frames of a continuation look like starts.
                    let starts_new =
                        kind_in_bytes(m.protocol, e.payload, &self.ctx(e, s)).is_some();
                    if !starts_new {
                        m.length += total;
                        m.end_ns = e.exit_ns;
                        let whole = e.payload.len() as u64 == total;
                        if whole && ends_message(m.protocol, m.kind, e.payload) {
                            self.finish(s, m, sink);
                        } else {
                            s.current[d] = Some(m);
                        }
                        return;
                    }
                    self.finish(s, m, sink);
                }
            }
        }
        self.parse_from(s, e, 0, sink);
    }

    /// Parses messages that start `offset` bytes into the syscall.
    fn parse_from(
        &mut self,
        s: &mut SocketState,
        e: &DataEvent<'_>,
        mut offset: u64,
        sink: &mut dyn SpanSink,
    ) {
        let total = e.total_len as u64;
        let d = dir_index(e.direction);
        while offset < total {
            if s.h2.is_some() {
                // The rest is HTTP/2 (after an h2c upgrade's 101).
                self.h2_feed(s, e, offset, sink);
                return;
            }
            // Bytes past the captured prefix cannot be parsed.
            let Some(buf) = e.payload.get(offset as usize..).filter(|b| !b.is_empty()) else {
                return;
            };
            let whole_rest = buf.len() as u64 == total - offset;
            self.apply_port_protocol(s, e);
            if s.protocol.is_none()
                && offset == 0
                && whole_rest
                && buf.len() < MIN_INFER_LEN
                && s.current[d].is_none()
            {
                // Too short to tell: kept, and inferred with the next read.
                let mut m = Message::start(
                    e,
                    L7Protocol::Unknown,
                    MessageKind::Request,
                    Default::default(),
                    0,
                    total,
                );
                m.pending_head = Some(buf.to_vec());
                s.current[d] = Some(m);
                return;
            }
            let Some((protocol, kind)) = self.protocol_and_kind(s, e, buf) else {
                // The first bytes of an HTTP/1 message read alone: the next
                // read in this direction completes its head.
                let whole = buf.len() as u64 == total - offset;
                if let (Some(L7Protocol::Http), Some(req_dir), true) =
                    (s.protocol, s.request_dir, whole)
                {
                    if buf.len() <= MAX_DEFERRED_HEAD && causeway_l7::infer::is_http1_prefix(buf) {
                        let kind = if e.direction == req_dir {
                            MessageKind::Request
                        } else {
                            MessageKind::Response
                        };
                        let mut m = Message::start(
                            e,
                            L7Protocol::Http,
                            kind,
                            Default::default(),
                            offset,
                            total - offset,
                        );
                        m.pending_head = Some(buf.to_vec());
                        s.current[d] = Some(m);
                        return;
                    }
                }
                self.not_recognised(s);
                return;
            };
            if matches!(protocol, L7Protocol::Http2 | L7Protocol::Grpc) {
                self.h2_start(s, e, offset);
                self.h2_feed(s, e, offset, sink);
                return;
            }
            let head_request = kind == MessageKind::Response
                && s.pending.front().is_some_and(|r| r.head.bodiless_response);
            let avail = total - offset;
            let ctx = self.head_ctx(e, s, protocol, kind, buf);
            let head = match parse_head(protocol, kind, buf, head_request, &ctx) {
                Ok(h) => {
                    if protocol == L7Protocol::Kafka && kind == MessageKind::Request {
                        self.note_kafka_request(s, buf, &h);
                    }
                    h
                }
                Err(HeadError::Parse(causeway_l7::ParseError::Incomplete))
                    if buf.len() as u64 == avail && buf.len() <= MAX_DEFERRED_HEAD =>
                {
                    // A short syscall that holds only the start of a head:
                    // the next syscall in this direction completes it.
                    let mut m =
                        Message::start(e, protocol, kind, Default::default(), offset, avail);
                    m.pending_head = Some(buf.to_vec());
                    s.current[d] = Some(m);
                    return;
                }
                Err(HeadError::Http(_) | HeadError::Parse(_)) => {
                    self.parse_error(protocol);
                    return;
                }
                Err(HeadError::Unsupported) => {
                    self.stats.unrecognised += 1;
                    return;
                }
            };
            self.stats.messages += 1;
            let length = head.message_len.map_or(avail, |n| n.min(avail));
            let m = Message::start(e, protocol, kind, head, offset, length);
            if m.is_complete() {
                self.finish(s, m, sink);
                offset += length;
                continue;
            }
            let whole = e.payload.len() as u64 == total;
            if m.remaining().is_none() && whole && ends_message(protocol, kind, buf) {
                self.finish(s, m, sink);
            } else {
                s.current[d] = Some(m);
            }
            return;
        }
    }

    /// The protocol of the message starting at `buf` and whether it is a
    /// request, inferring the socket's protocol on its first message.
    fn protocol_and_kind(
        &self,
        s: &mut SocketState,
        e: &DataEvent<'_>,
        buf: &[u8],
    ) -> Option<(L7Protocol, MessageKind)> {
        let kind_by_direction = |request_dir: Direction| {
            if e.direction == request_dir {
                MessageKind::Request
            } else {
                MessageKind::Response
            }
        };
        self.apply_port_protocol(s, e);
        let ctx = self.ctx(e, s);
        if let Some(p) = s.protocol {
            // Where the bytes say (HTTP/1 start lines, DNS's QR bit), they
            // decide; for HTTP/1 anything else is no message start.
            if let Some(k) = kind_in_bytes(p, buf, &ctx) {
                return Some((p, k));
            }
            if p == L7Protocol::Http {
                return None;
            }
            return Some((p, kind_by_direction(s.request_dir?)));
        }
        let (p, kind) = infer_protocol(buf, &ctx)?;
        let kind = kind.unwrap_or(match e.role {
            SocketRole::Client => kind_by_direction(Direction::Egress),
            SocketRole::Server => kind_by_direction(Direction::Ingress),
            // A socket older than the agent: its first message seen asks.
            SocketRole::Unknown => MessageKind::Request,
        });
        s.protocol = Some(p);
        s.request_dir = Some(match kind {
            MessageKind::Request => e.direction,
            MessageKind::Response => opposite(e.direction),
        });
        Some((p, kind))
    }

    /// Bytes no protocol claimed; a socket that keeps sending such is given
    /// up on.
    fn not_recognised(&mut self, s: &mut SocketState) {
        self.stats.unrecognised += 1;
        if s.protocol.is_none() {
            s.infer_failures = s.infer_failures.saturating_add(1);
            if s.infer_failures >= self.config.max_infer_failures {
                s.opaque = true;
            }
        }
    }

    /// "Port N speaks X": settles the protocol of a socket not yet inferred.
    fn apply_port_protocol(&self, s: &mut SocketState, e: &DataEvent<'_>) {
        if s.protocol.is_some() {
            return;
        }
        let (local, remote) = (e.tuple.local.port(), e.tuple.remote.port());
        let chosen = self
            .config
            .port_protocols
            .iter()
            .find(|(port, _)| *port == remote || *port == local);
        if let Some(&(port, p)) = chosen {
            s.protocol = Some(p);
            s.request_dir = Some(if remote == port {
                Direction::Egress
            } else {
                Direction::Ingress
            });
        }
    }

    /// A message is done: queue a request, or pair a response.
    fn finish(&mut self, s: &mut SocketState, m: Message, sink: &mut dyn SpanSink) {
        if m.protocol == L7Protocol::Unknown {
            // Short bytes kept for inference that nothing completed.
            self.not_recognised(s);
            return;
        }
        if m.head.unpaired {
            self.stats.unpaired_messages += 1;
            return;
        }
        match m.kind {
            MessageKind::Request => {
                let mut m = m;
                if m.protocol == L7Protocol::Mqtt && m.head.request_type == "CONNECT" {
                    s.mqtt_version = causeway_l7::mqtt::Version::from_label(&m.head.version);
                }
                let sets_domain = matches!(
                    m.head.request_type.as_str(),
                    "STARTUP" | "LOGIN" | "COM_INIT_DB"
                );
                if sets_domain && !m.head.request_domain.is_empty() {
                    s.domain.clone_from(&m.head.request_domain);
                } else if m.head.request_domain.is_empty() {
                    m.head.request_domain.clone_from(&s.domain);
                }
                // Its answer may already be here (see `early`).
                let answered = s.early.iter().position(|r| {
                    r.start_ns >= m.start_ns
                        && r.direction != m.direction
                        && r.head.request_id == m.head.request_id
                });
                if let Some(resp) = answered.and_then(|i| s.early.remove(i)) {
                    self.emit(m, Some(resp), sink);
                    return;
                }
                if s.pending.len() >= self.config.max_pending_per_socket {
                    s.pending.pop_front();
                    self.stats.pending_dropped += 1;
                }
                self.note_pending(m.socket_id, m.start_ns);
                s.pending.push_back(m);
            }
            MessageKind::Response => {
                if m.head.interim {
                    self.stats.interim_responses += 1;
                    return;
                }
                if m.head.upgrade {
                    // h2c: the upgraded request is stream 1 of the HTTP/2
                    // connection that starts after this 101; no span for the
                    // 101 itself. Any other upgrade leaves HTTP.
                    let h2c = s
                        .pending
                        .iter()
                        .position(|r| r.direction != m.direction && r.head.upgrade_h2c);
                    if let Some(req) = h2c.and_then(|i| s.pending.remove(i)) {
                        s.protocol = Some(L7Protocol::Http2);
                        s.h2 = Some(Box::new(h2::H2Conn::upgraded(req.direction, req)));
                        return;
                    }
                    s.opaque = true;
                }
                // A final answer before the request's announced body was
                // all seen (a server answering early, a client giving up on
                // 100 Continue): the request ends here.
                let req_dir = 1 - dir_index(m.direction);
                if s.pending.is_empty()
                    && s.current[req_dir]
                        .as_ref()
                        .is_some_and(|r| r.kind == MessageKind::Request)
                {
                    if let Some(r) = s.current[req_dir].take() {
                        s.pending.push_back(r);
                    }
                }
                if m.protocol == L7Protocol::Kafka {
                    // Answered: its API is no longer needed.
                    let corr = m.head.request_id;
                    if let Some(i) = s
                        .kafka_requests
                        .iter()
                        .position(|(c, _)| Some(u64::from(*c as u32)) == corr)
                    {
                        s.kafka_requests.remove(i);
                    }
                }
                // Protocols that may answer out of order name the request
                // they answer; the others answer the oldest one.
                // (Requests travel the other way: where both sides ask,
                // as in MQTT, each side's ids are its own.)
                let at =
                    match m.head.request_id {
                        Some(id) => s.pending.iter().position(|r| {
                            r.head.request_id == Some(id) && r.direction != m.direction
                        }),
                        None => s.pending.iter().position(|r| {
                            r.head.request_id.is_none() && r.direction != m.direction
                        }),
                    };
                match at.and_then(|i| s.pending.remove(i)) {
                    Some(req) => self.emit(req, Some(m), sink),
                    None => {
                        if s.early.len() >= MAX_EARLY_RESPONSES {
                            s.early.pop_front();
                            self.stats.orphan_responses += 1;
                        }
                        s.early.push_back(m);
                    }
                }
            }
        }
    }

    fn emit(&mut self, req: Message, resp: Option<Message>, sink: &mut dyn SpanSink) {
        self.stats.spans += 1;
        let (client, server) = match req.direction {
            Direction::Egress => (req.tuple.local, req.tuple.remote),
            Direction::Ingress => (req.tuple.remote, req.tuple.local),
        };
        let observation_point = self
            .config
            .observation_point
            .unwrap_or(match req.direction {
                Direction::Egress => ObservationPoint::Client,
                Direction::Ingress => ObservationPoint::Server,
            });
        let response_status = match &resp {
            None => {
                self.stats.timeouts += 1;
                ResponseStatus::Timeout
            }
            Some(r) => r.head.response_status.unwrap_or(ResponseStatus::Unknown),
        };
        let start_time_us = self.wall.to_wall_us(req.start_ns);
        let end_ns = resp
            .as_ref()
            .map_or(req.end_ns, |r| r.end_ns.max(req.start_ns));
        let end_time_us = self.wall.to_wall_us(end_ns);
        let pick = |a: &str, b: Option<&str>| -> String {
            if a.is_empty() {
                b.unwrap_or_default().to_owned()
            } else {
                a.to_owned()
            }
        };
        let rh = resp.as_ref().map(|r| &r.head);
        let t = req.tuple;
        let (peer_pid, peer_comm) = self.peer(&t).map_or((0, String::new()), |(pid, comm)| {
            (pid, comm.as_str().to_owned())
        });
        let span = Span {
            protocol: req.protocol,
            version: req.head.version.clone(),
            observation_point,
            pid: req.pid,
            comm: req.comm.as_str().to_owned(),
            peer_pid,
            peer_comm,
            tid_req: req.tid,
            tid_resp: resp.as_ref().map_or(0, |r| r.tid),
            coroutine_id_req: req.coroutine_id,
            coroutine_id_resp: resp.as_ref().map_or(0, |r| r.coroutine_id),
            socket_id: req.socket_id,
            l4_protocol: req.tuple.l4,
            is_tls: req.tls,
            src_ip: client.ip().to_string(),
            src_port: client.port(),
            dst_ip: server.ip().to_string(),
            dst_port: server.port(),
            trace_id: pick(&req.head.trace_id, rh.map(|h| h.trace_id.as_str())),
            span_id: pick(&req.head.span_id, rh.map(|h| h.span_id.as_str())),
            parent_span_id: pick(
                &req.head.parent_span_id,
                rh.map(|h| h.parent_span_id.as_str()),
            ),
            endpoint: causeway_l7::endpoint::endpoint(
                req.protocol,
                &req.head.request_type,
                &req.head.request_resource,
            ),
            request_id: req.head.request_id,
            request_type: req.head.request_type,
            request_domain: req.head.request_domain,
            request_resource: req.head.request_resource,
            user_agent: req.head.user_agent,
            exception: rh.map(|h| h.exception.clone()).unwrap_or_default(),
            result: rh.map(|h| h.result.clone()).unwrap_or_default(),
            response_code: rh.and_then(|h| h.response_code),
            response_status,
            start_time_us,
            end_time_us,
            duration_us: end_time_us.saturating_sub(start_time_us),
            request_length: req.length,
            response_length: resp.as_ref().map_or(0, |r| r.length),
            req_tcp_seq: req.tcp_seq,
            resp_tcp_seq: resp.as_ref().map_or(0, |r| r.tcp_seq),
            syscall_trace_id_req: req.syscall_trace_id,
            syscall_trace_id_resp: resp.as_ref().map_or(0, |r| r.syscall_trace_id),
            x_request_id: req.head.x_request_id,
            x_request_id_resp: rh.map(|h| h.x_request_id.clone()).unwrap_or_default(),
        };
        sink.on_span(span);
    }
}

/// Connects a [`Pipeline`] to the kernel side: decoded events in, spans out
/// to `sink`, clocks read here so the pipeline itself stays pure.
pub struct ProbeDriver<'a> {
    pub pipeline: &'a mut Pipeline,
    pub sink: &'a mut dyn SpanSink,
    pub lost: &'a dyn Fn() -> u64,
}

impl EventSink for ProbeDriver<'_> {
    fn on_event(&mut self, event: SocketEvent<'_>) {
        self.pipeline.on_event(event, self.sink);
    }

    fn on_tick(&mut self) {
        self.pipeline.note_kernel_lost((self.lost)());
        self.pipeline.tick(WallClock::monotonic_ns(), self.sink);
        self.sink.flush();
    }

    fn on_decode_error(&mut self, _error: DecodeError) {
        self.pipeline.note_decode_error();
    }
}

mod h2;

#[cfg(test)]
mod tests;
