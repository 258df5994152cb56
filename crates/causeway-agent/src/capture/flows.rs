//! The flow table of a packet capture: TCP reassembly per direction and UDP
//! datagrams, turned into the socket events the pipeline takes from eBPF.
//!
//! A flow plays the part of a socket seen from its client: bytes from the
//! client are `Egress`, bytes from the server `Ingress`, and `local` is the
//! client's address. Each in-order run of TCP payload becomes one data event
//! (as one syscall would), with the sequence number of its first byte, so
//! spans from a capture carry the same `req_tcp_seq` as spans from the
//! processes at either end.
//!
//! Who is the client: the sender of a SYN without ACK, or of a connection's
//! first UDP datagram. For a TCP flow whose handshake is not in the capture,
//! the end whose port is not in Linux's ephemeral range (32768 and up) is the
//! server, and if both or neither are, the lower port.
//!
//! Reassembly keeps out-of-order segments until the gap before them fills,
//! up to [`MAX_OUT_OF_ORDER`] bytes per direction; past that the gap is
//! given up (counted in `gap_bytes`) and delivery resumes at the next byte
//! held. Bytes seen twice (retransmissions) are dropped and counted.
//!
//! Every flow also keeps a record (DeepFlow's `l4_flow_log`, the model's
//! [`causeway_model::Flow`]): packets and bytes each way, and for TCP the
//! analysis of [`super::tcp_state`] (handshake RTT halves, server response
//! time, retransmissions, out-of-order segments, zero windows, resets, how
//! it closed). Any packet starts a flow, pure ACKs included, so every
//! packet is counted once. Flows are keyed by interface too: a packet seen
//! on two interfaces (forwarded, bridged) belongs to two observations.
//!
//! Life of a flow: when a TCP flow closes (FINs both ways, or a reset) its
//! socket closes for the pipeline at once, so its last spans come out, but
//! the flow lingers ([`FlowConfig::linger_ns`]) to take in the packets
//! that trail a close (the last ACK, a retransmitted FIN); then it is
//! reported with its close type. A flow that goes quiet is reported as
//! timed out after the timeout of its state: [`FlowConfig::opening_ns`]
//! while its handshake is incomplete, [`FlowConfig::udp_idle_ns`] for UDP,
//! [`FlowConfig::idle_ns`] otherwise. A SYN that is not a retry of the
//! flow's own SYN ends the old flow (port reuse) and starts a new one. A
//! flow that lives on is also reported every [`FlowConfig::report_ns`] in
//! which it carried packets (close type `active`). Reports wait in the
//! table until [`FlowTable::take_reports`].

use causeway_model::{
    CloseType, Comm, DataEvent, Direction, FiveTuple, Flow as FlowReport, FlowSide, L4Protocol,
    L7Protocol, SocketClose, SocketEvent, SocketOpen, SocketRole, Syscall,
};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use super::packet::{Segment, TcpFacts};
use super::tcp_state::TcpState;

/// Out-of-order bytes held per direction before a gap is given up.
pub const MAX_OUT_OF_ORDER: usize = 4 << 20;

/// What the flow table did with the segments it was given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowStats {
    pub tcp_segments: u64,
    pub udp_datagrams: u64,
    /// Flows begun.
    pub flows: u64,
    /// Flows ended (each reported once with its close type).
    pub flows_closed: u64,
    /// Reports made, periodic and final.
    pub reports: u64,
    /// Payload bytes seen again (retransmissions, overlaps) and dropped.
    pub retransmitted_bytes: u64,
    /// Segments that arrived ahead of a gap and waited for it.
    pub out_of_order_segments: u64,
    /// Bytes never seen: gaps given up.
    pub gap_bytes: u64,
}

/// Timeouts and sizes of a flow table. Times are nanoseconds of the
/// packets' clock (capture time).
#[derive(Debug, Clone)]
pub struct FlowConfig {
    /// Payload bytes handed on per event, like the eBPF capture cap.
    pub payload_cap: usize,
    /// An established TCP flow quiet for this long is closed (`timeout`).
    pub idle_ns: u64,
    /// A TCP flow whose handshake is incomplete, quiet for this long, is
    /// closed (`syn_timeout`, `synack_timeout`). Linux retries a SYN after
    /// 1, 2, 4, 8 ... seconds: a timeout shorter than a gap splits one
    /// connection attempt into several flows.
    pub opening_ns: u64,
    /// A UDP flow quiet for this long is closed (`timeout`).
    pub udp_idle_ns: u64,
    /// A closed TCP flow is kept this long for the packets that trail
    /// its close, then reported.
    pub linger_ns: u64,
    /// A flow that lives on is reported every this long (when it carried
    /// packets since its last report); 0: only when it ends.
    pub report_ns: u64,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            payload_cap: 16 * 1024,
            idle_ns: 300_000_000_000,
            opening_ns: 10_000_000_000,
            udp_idle_ns: 30_000_000_000,
            linger_ns: 3_000_000_000,
            report_ns: 60_000_000_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FlowKey {
    l4: L4Protocol,
    lo: SocketAddr,
    hi: SocketAddr,
    /// The interface (0 when unknown).
    ifindex: u32,
}

impl FlowKey {
    fn of(seg: &Segment<'_>, ifindex: u32) -> FlowKey {
        let (lo, hi) = if seg.src <= seg.dst {
            (seg.src, seg.dst)
        } else {
            (seg.dst, seg.src)
        };
        FlowKey {
            l4: seg.l4,
            lo,
            hi,
            ifindex,
        }
    }
}

/// One direction of a TCP connection.
#[derive(Debug, Default)]
struct Stream {
    /// The sequence number of the next byte to deliver.
    next_seq: Option<u32>,
    /// Bytes delivered so far; offsets of held segments count from the
    /// stream's first byte so that sequence wrap-around orders correctly.
    delivered: u64,
    /// Held segments by offset: (capture time, bytes).
    held: BTreeMap<u64, (u64, Vec<u8>)>,
    held_bytes: usize,
}

/// The figures of a flow's record.
#[derive(Debug, Default)]
struct Record {
    start_ns: u64,
    /// Where the current report period began.
    period_start_ns: u64,
    /// A report was made already (later ones are not `new_flow`).
    reported: bool,
    sides: [FlowSide; 2],
    total_packets: [u64; 2],
    total_bytes: [u64; 2],
    srt_sum_ns: u64,
    srt_count: u64,
    srt_max_ns: u64,
}

impl Record {
    fn count(&mut self, dir: usize, ip_len: u32, payload: usize) {
        let side = &mut self.sides[dir];
        side.packets += 1;
        side.bytes += u64::from(ip_len);
        side.payload_bytes += payload as u64;
        self.total_packets[dir] += 1;
        self.total_bytes[dir] += u64::from(ip_len);
    }
}

#[derive(Debug)]
struct Flow {
    id: u64,
    client: SocketAddr,
    server: SocketAddr,
    l4: L4Protocol,
    ifindex: u32,
    /// `[client → server, server → client]`.
    streams: [Stream; 2],
    last_ns: u64,
    /// The pipeline was told of this flow's socket (it carried payload).
    socket_open: bool,
    /// The TCP analysis (None for UDP).
    tcp: Option<TcpState>,
    /// The client's initial sequence number, when its SYN was seen.
    client_isn: Option<u32>,
    /// Closed (FINs or a reset): how, and until when it lingers.
    closed: Option<(CloseType, u64)>,
    record: Record,
}

/// Ports from here up are handed out by Linux for outgoing connections.
const EPHEMERAL_PORTS: u16 = 32768;

/// Which end of a mid-stream TCP flow is the server.
fn guess_server(a: SocketAddr, b: SocketAddr) -> SocketAddr {
    let a_eph = a.port() >= EPHEMERAL_PORTS;
    let b_eph = b.port() >= EPHEMERAL_PORTS;
    match (a_eph, b_eph) {
        (false, true) => a,
        (true, false) => b,
        _ if a.port() <= b.port() => a,
        _ => b,
    }
}

/// Microseconds, rounded up (a measured time is never 0).
fn ceil_us(ns: u64) -> u64 {
    ns.div_ceil(1000).max(1)
}

/// Turns segments into socket events, in capture order, and keeps the
/// flows' records.
#[derive(Debug)]
pub struct FlowTable {
    flows: HashMap<FlowKey, Flow>,
    next_id: u64,
    config: FlowConfig,
    last_sweep_ns: u64,
    stats: FlowStats,
    reports: Vec<FlowReport>,
    /// Interface names by index, for reports.
    interfaces: HashMap<u32, String>,
}

/// Where the table's events go.
pub type EventOut<'o> = dyn FnMut(SocketEvent<'_>) + 'o;

impl FlowTable {
    pub fn new(config: FlowConfig) -> FlowTable {
        FlowTable {
            flows: HashMap::new(),
            next_id: 1,
            config,
            last_sweep_ns: 0,
            stats: FlowStats::default(),
            reports: Vec::new(),
            interfaces: HashMap::new(),
        }
    }

    pub fn stats(&self) -> &FlowStats {
        &self.stats
    }

    /// Flows tracked now.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Names interface `ifindex` in reports.
    pub fn name_interface(&mut self, ifindex: u32, name: &str) {
        self.interfaces.insert(ifindex, name.to_owned());
    }

    /// The flow reports made since the last call, in the order made.
    pub fn take_reports(&mut self) -> Vec<FlowReport> {
        std::mem::take(&mut self.reports)
    }

    /// Takes one segment captured at `ts_ns` (ns since the epoch) on no
    /// interface in particular (a capture file).
    pub fn on_segment(&mut self, ts_ns: u64, seg: &Segment<'_>, out: &mut EventOut<'_>) {
        self.on_packet(ts_ns, 0, seg, out)
    }

    /// Takes one segment captured at `ts_ns` on interface `ifindex`.
    pub fn on_packet(
        &mut self,
        ts_ns: u64,
        ifindex: u32,
        seg: &Segment<'_>,
        out: &mut EventOut<'_>,
    ) {
        self.tick(ts_ns, out);
        let key = FlowKey::of(seg, ifindex);
        match seg.tcp {
            None => self.on_datagram(key, ts_ns, seg, out),
            Some(tcp) => self.on_tcp(key, ts_ns, seg, tcp, out),
        }
    }

    fn on_tcp(
        &mut self,
        key: FlowKey,
        ts_ns: u64,
        seg: &Segment<'_>,
        tcp: TcpFacts,
        out: &mut EventOut<'_>,
    ) {
        self.stats.tcp_segments += 1;
        let opening = tcp.syn && !tcp.ack;
        if opening {
            // A SYN that is not a retry of the flow's own SYN is a new
            // connection on the same ports.
            let new = self.flows.get(&key).map(|f| {
                let retry = f.closed.is_none()
                    && f.client_isn == Some(tcp.seq)
                    && seg.src == f.client
                    && f.tcp.as_ref().is_some_and(|t| !t.established());
                (!retry, f.closed.is_some())
            });
            if let Some((true, closed)) = new {
                let ct = if closed {
                    None
                } else {
                    Some(CloseType::PortReuse)
                };
                self.end(key, ts_ns, ct, out);
            }
        }
        if !self.flows.contains_key(&key) {
            let server = if opening {
                seg.dst
            } else if tcp.syn {
                seg.src
            } else {
                guess_server(seg.src, seg.dst)
            };
            self.open(key, server, ts_ns, Some(TcpState::new(&tcp)));
        }
        let cap = self.config.payload_cap;
        let linger = self.config.linger_ns;
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        flow.last_ns = ts_ns;
        let dir = usize::from(seg.src != flow.client);
        if opening && dir == 0 {
            flow.client_isn = Some(tcp.seq);
        }
        let len = seg.payload.len();
        flow.record.count(dir, seg.ip_len, len);
        let side = &mut flow.record.sides[dir];
        side.syns += u64::from(tcp.syn);
        side.fins += u64::from(tcp.fin);
        side.resets += u64::from(tcp.rst);
        if let Some(state) = flow.tcp.as_mut() {
            let v = state.on_segment(dir, ts_ns, &tcp, len as u32);
            let side = &mut flow.record.sides[dir];
            side.retransmissions += u64::from(v.kind.is_retransmission());
            side.out_of_order += u64::from(v.kind == super::tcp_state::SegmentKind::OutOfOrder);
            side.zero_windows += u64::from(v.zero_window);
            if let Some(srt) = v.srt_ns {
                let r = &mut flow.record;
                r.srt_sum_ns += srt;
                r.srt_count += 1;
                r.srt_max_ns = r.srt_max_ns.max(srt);
            }
        }
        if flow.closed.is_some() {
            // Trailing packets of a closed connection: counted, not parsed.
            return;
        }
        if tcp.syn {
            flow.streams[dir].next_seq = Some(tcp.seq.wrapping_add(1));
        }
        if !seg.payload.is_empty() {
            if !flow.socket_open {
                open_socket(flow, ts_ns, out);
            }
            Self::on_tcp_payload(
                flow,
                dir,
                tcp.seq,
                ts_ns,
                seg.payload,
                cap,
                &mut self.stats,
                out,
            );
        }
        if let Some(ct) = flow.tcp.as_ref().and_then(TcpState::closed) {
            Self::close_socket(flow, ts_ns, cap, &mut self.stats, out);
            flow.closed = Some((ct, ts_ns.saturating_add(linger)));
        }
    }

    /// Time-driven work: closed flows that lingered long enough and
    /// flows quiet past their timeout end and are reported; flows that
    /// live on are reported when their period is up. Runs at most once a
    /// second of `now_ns` (the packets' clock); call it when no packet
    /// comes, too (live capture).
    pub fn tick(&mut self, now_ns: u64, out: &mut EventOut<'_>) {
        if now_ns.saturating_sub(self.last_sweep_ns) < 1_000_000_000 {
            return;
        }
        self.last_sweep_ns = now_ns;
        let config = &self.config;
        let mut ending: Vec<(FlowKey, Option<CloseType>)> = Vec::new();
        for (key, f) in &self.flows {
            if let Some((_, until)) = f.closed {
                if now_ns >= until {
                    ending.push((*key, None));
                }
                continue;
            }
            let timeout = match &f.tcp {
                None => config.udp_idle_ns,
                Some(t) if t.opening() => config.opening_ns,
                Some(_) => config.idle_ns,
            };
            if now_ns.saturating_sub(f.last_ns) >= timeout {
                let ct = match &f.tcp {
                    None => CloseType::Timeout,
                    Some(t) => t.idle_close(true),
                };
                ending.push((*key, Some(ct)));
            }
        }
        for (key, ct) in ending {
            self.end(key, now_ns, ct, out);
        }
        if self.config.report_ns > 0 {
            let every = self.config.report_ns;
            let mut due: Vec<FlowKey> = self
                .flows
                .iter()
                .filter(|(_, f)| {
                    f.closed.is_none()
                        && now_ns.saturating_sub(f.record.period_start_ns) >= every
                        && f.record.sides.iter().any(|s| s.packets > 0)
                })
                .map(|(k, _)| *k)
                .collect();
            due.sort_by_key(|k| self.flows[k].id);
            for key in due {
                if let Some(mut f) = self.flows.remove(&key) {
                    let r = self.report(&mut f, CloseType::Active, now_ns);
                    self.reports.push(r);
                    self.flows.insert(key, f);
                }
            }
        }
    }

    /// Ends every flow (capture stopped at `ts_ns`), delivering what
    /// reassembly still holds and reporting each: a flow quiet past its
    /// timeout as timed out, a closed one as it closed, the rest as
    /// `capture_end`.
    pub fn finish(&mut self, ts_ns: u64, out: &mut EventOut<'_>) {
        let mut keys: Vec<(u64, FlowKey)> = self.flows.iter().map(|(k, f)| (f.id, *k)).collect();
        keys.sort_unstable_by_key(|(id, _)| *id);
        for (_, key) in keys {
            let ct = self.flows.get(&key).and_then(|f| {
                if f.closed.is_some() {
                    return None;
                }
                let quiet = ts_ns.saturating_sub(f.last_ns);
                Some(match &f.tcp {
                    None if quiet >= self.config.udp_idle_ns => CloseType::Timeout,
                    None => CloseType::CaptureEnd,
                    Some(t) => {
                        let timeout = if t.opening() {
                            self.config.opening_ns
                        } else {
                            self.config.idle_ns
                        };
                        t.idle_close(quiet >= timeout)
                    }
                })
            });
            self.end(key, ts_ns, ct, out);
        }
    }

    fn open(&mut self, key: FlowKey, server: SocketAddr, ts_ns: u64, tcp: Option<TcpState>) {
        let client = if server == key.lo { key.hi } else { key.lo };
        let id = self.next_id;
        self.next_id += 1;
        self.stats.flows += 1;
        let flow = Flow {
            id,
            client,
            server,
            l4: key.l4,
            ifindex: key.ifindex,
            streams: Default::default(),
            last_ns: ts_ns,
            socket_open: false,
            tcp,
            client_isn: None,
            closed: None,
            record: Record {
                start_ns: ts_ns,
                period_start_ns: ts_ns,
                ..Record::default()
            },
        };
        self.flows.insert(key, flow);
    }

    /// Ends a flow: closes its socket if open and reports it, `ct` being
    /// how it ended (None: as it closed by itself).
    fn end(&mut self, key: FlowKey, ts_ns: u64, ct: Option<CloseType>, out: &mut EventOut<'_>) {
        let Some(mut flow) = self.flows.remove(&key) else {
            return;
        };
        if flow.closed.is_none() {
            Self::close_socket(
                &mut flow,
                ts_ns,
                self.config.payload_cap,
                &mut self.stats,
                out,
            );
        }
        let ct = ct
            .or(flow.closed.map(|(c, _)| c))
            .unwrap_or(CloseType::CaptureEnd);
        self.stats.flows_closed += 1;
        let report = self.report(&mut flow, ct, ts_ns);
        self.reports.push(report);
    }

    /// A report of `flow` ending its current period at `now_ns`.
    fn report(&mut self, flow: &mut Flow, close_type: CloseType, now_ns: u64) -> FlowReport {
        self.stats.reports += 1;
        let r = &mut flow.record;
        let (rtt_client_us, rtt_server_us) = match &flow.tcp {
            Some(t) => (
                t.rtt_client_ns.map_or(0, ceil_us),
                t.rtt_server_ns.map_or(0, ceil_us),
            ),
            None => (0, 0),
        };
        let report = FlowReport {
            flow_id: flow.id,
            l4_protocol: flow.l4,
            client: flow.client,
            server: flow.server,
            interface: self
                .interfaces
                .get(&flow.ifindex)
                .cloned()
                .unwrap_or_default(),
            start_time_us: r.start_ns / 1000,
            end_time_us: flow.last_ns / 1000,
            period_start_us: r.period_start_ns / 1000,
            new_flow: !r.reported,
            close_type,
            sides: r.sides,
            total_packets: r.total_packets,
            total_bytes: r.total_bytes,
            rtt_client_us,
            rtt_server_us,
            srt_sum_us: r.srt_sum_ns / 1000,
            srt_count: r.srt_count,
            srt_max_us: r.srt_max_ns / 1000,
            l7_protocol: L7Protocol::Unknown,
            l7_requests: 0,
            l7_errors: 0,
        };
        r.reported = true;
        r.period_start_ns = now_ns.max(flow.last_ns);
        r.sides = Default::default();
        r.srt_sum_ns = 0;
        r.srt_count = 0;
        r.srt_max_ns = 0;
        report
    }

    /// Delivers what waits behind a gap (it will not fill) and tells the
    /// pipeline the socket closed.
    fn close_socket(
        flow: &mut Flow,
        ts_ns: u64,
        cap: usize,
        stats: &mut FlowStats,
        out: &mut EventOut<'_>,
    ) {
        if !flow.socket_open {
            return;
        }
        for dir in 0..2 {
            while let Some((&offset, _)) = flow.streams[dir].held.first_key_value() {
                let stream = &mut flow.streams[dir];
                stats.gap_bytes += offset.saturating_sub(stream.delivered);
                let skip = offset.saturating_sub(stream.delivered) as u32;
                if let Some(next) = stream.next_seq.as_mut() {
                    *next = next.wrapping_add(skip);
                }
                stream.delivered = offset.max(stream.delivered);
                Self::drain_held(flow, dir, cap, stats, out);
            }
        }
        flow.socket_open = false;
        out(SocketEvent::Close(SocketClose {
            pid: 0,
            socket_id: flow.id,
            ts_ns,
        }));
    }

    fn on_datagram(&mut self, key: FlowKey, ts_ns: u64, seg: &Segment<'_>, out: &mut EventOut<'_>) {
        self.stats.udp_datagrams += 1;
        if !self.flows.contains_key(&key) {
            // The first datagram of a flow is the client's.
            self.open(key, seg.dst, ts_ns, None);
        }
        let cap = self.config.payload_cap;
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        flow.last_ns = ts_ns;
        let dir = usize::from(seg.src != flow.client);
        flow.record.count(dir, seg.ip_len, seg.payload.len());
        if !seg.payload.is_empty() {
            if !flow.socket_open {
                open_socket(flow, ts_ns, out);
            }
            deliver(flow, dir, 0, ts_ns, seg.payload, cap, out);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_tcp_payload(
        flow: &mut Flow,
        dir: usize,
        seq: u32,
        ts_ns: u64,
        payload: &[u8],
        cap: usize,
        stats: &mut FlowStats,
        out: &mut EventOut<'_>,
    ) {
        let stream = &mut flow.streams[dir];
        let next = *stream.next_seq.get_or_insert(seq);
        let delta = seq.wrapping_sub(next) as i32 as i64;
        if delta < 0 {
            // Starts before the next byte: seen before, wholly or in part.
            let seen = (-delta) as usize;
            if seen >= payload.len() {
                stats.retransmitted_bytes += payload.len() as u64;
                return;
            }
            stats.retransmitted_bytes += seen as u64;
            return Self::on_tcp_payload(flow, dir, next, ts_ns, &payload[seen..], cap, stats, out);
        }
        if delta > 0 {
            stats.out_of_order_segments += 1;
            let offset = stream.delivered + delta as u64;
            let held = stream.held.entry(offset).or_insert((ts_ns, Vec::new()));
            if held.1.len() < payload.len() {
                stream.held_bytes += payload.len() - held.1.len();
                *held = (ts_ns, payload.to_vec());
            }
            if stream.held_bytes > MAX_OUT_OF_ORDER {
                // Give the gap up: resume at the first byte held.
                let first = stream.held.keys().next().copied().unwrap_or(offset);
                let skip = first - stream.delivered;
                stats.gap_bytes += skip;
                stream.next_seq = Some(next.wrapping_add(skip as u32));
                stream.delivered = first;
                Self::drain_held(flow, dir, cap, stats, out);
            }
            return;
        }
        deliver(flow, dir, seq, ts_ns, payload, cap, out);
        let stream = &mut flow.streams[dir];
        stream.next_seq = Some(seq.wrapping_add(payload.len() as u32));
        stream.delivered += payload.len() as u64;
        Self::drain_held(flow, dir, cap, stats, out);
    }

    /// Delivers held segments that the stream has now reached.
    fn drain_held(
        flow: &mut Flow,
        dir: usize,
        cap: usize,
        stats: &mut FlowStats,
        out: &mut EventOut<'_>,
    ) {
        loop {
            let stream = &mut flow.streams[dir];
            let Some(entry) = stream.held.first_entry() else {
                return;
            };
            if *entry.key() > stream.delivered {
                return;
            }
            let offset = *entry.key();
            let (ts_ns, bytes) = entry.remove();
            stream.held_bytes -= bytes.len();
            let seen = (stream.delivered - offset) as usize;
            if seen >= bytes.len() {
                stats.retransmitted_bytes += bytes.len() as u64;
                continue;
            }
            stats.retransmitted_bytes += seen as u64;
            let seq = stream.next_seq.unwrap_or(0);
            let fresh = &bytes[seen..];
            deliver(flow, dir, seq, ts_ns, fresh, cap, out);
            let stream = &mut flow.streams[dir];
            stream.next_seq = Some(seq.wrapping_add(fresh.len() as u32));
            stream.delivered += fresh.len() as u64;
        }
    }
}

/// Tells the pipeline of the flow's socket, as seen from its client.
fn open_socket(flow: &mut Flow, ts_ns: u64, out: &mut EventOut<'_>) {
    flow.socket_open = true;
    out(SocketEvent::Open(SocketOpen {
        pid: 0,
        tid: 0,
        comm: Comm::default(),
        socket_id: flow.id,
        role: SocketRole::Client,
        tuple: tuple_of(flow),
        fd: -1,
        ts_ns,
    }));
}

fn tuple_of(flow: &Flow) -> FiveTuple {
    FiveTuple {
        l4: flow.l4,
        local: flow.client,
        remote: flow.server,
    }
}

/// Hands in-order bytes to the pipeline as one data event.
fn deliver(
    flow: &Flow,
    dir: usize,
    seq: u32,
    ts_ns: u64,
    bytes: &[u8],
    cap: usize,
    out: &mut EventOut<'_>,
) {
    let (direction, syscall) = if dir == 0 {
        (Direction::Egress, Syscall::Write)
    } else {
        (Direction::Ingress, Syscall::Read)
    };
    out(SocketEvent::Data(DataEvent {
        pid: 0,
        tid: 0,
        comm: Comm::default(),
        socket_id: flow.id,
        role: SocketRole::Client,
        tuple: tuple_of(flow),
        tcp_seq: seq,
        direction,
        enter_ns: ts_ns,
        exit_ns: ts_ns,
        syscall_trace_id: 0,
        syscall,
        fd: -1,
        total_len: bytes.len() as u32,
        payload: &bytes[..bytes.len().min(cap)],
        is_tls: false,
        coroutine_id: 0,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::packet::TcpFacts;

    /// What came out, simplified: (socket id, direction, seq, bytes) per
    /// data event, and closes as (socket id, "close").
    #[derive(Debug, PartialEq)]
    enum Out {
        Open(u64, SocketAddr),
        Data(u64, Direction, u32, Vec<u8>),
        Close(u64),
    }

    fn run(segs: &[(SocketAddr, SocketAddr, Option<TcpFacts>, &[u8])]) -> (Vec<Out>, FlowStats) {
        let mut table = FlowTable::new(FlowConfig {
            payload_cap: 1024,
            ..FlowConfig::default()
        });
        let mut got = Vec::new();
        let mut out = |e: SocketEvent<'_>| match e {
            SocketEvent::Open(o) => got.push(Out::Open(o.socket_id, o.tuple.local)),
            SocketEvent::Data(d) => got.push(Out::Data(
                d.socket_id,
                d.direction,
                d.tcp_seq,
                d.payload.to_vec(),
            )),
            SocketEvent::Close(c) => got.push(Out::Close(c.socket_id)),
        };
        for (i, (src, dst, tcp, payload)) in segs.iter().enumerate() {
            let seg = Segment {
                l4: if tcp.is_some() {
                    L4Protocol::Tcp
                } else {
                    L4Protocol::Udp
                },
                src: *src,
                dst: *dst,
                tcp: *tcp,
                ip_len: 40 + payload.len() as u32,
                payload,
            };
            table.on_segment(1_000 + i as u64, &seg, &mut out);
        }
        table.finish(10_000, &mut out);
        let stats = table.stats().clone();
        (got, stats)
    }

    fn t(seq: u32) -> Option<TcpFacts> {
        Some(TcpFacts {
            seq,
            syn: false,
            ack: true,
            fin: false,
            rst: false,
            ..TcpFacts::default()
        })
    }

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn handshake_sets_client_and_sequence() {
        let (c, s) = (a("127.0.0.1:50000"), a("127.0.0.1:8080"));
        let syn = Some(TcpFacts {
            seq: 99,
            syn: true,
            ack: false,
            fin: false,
            rst: false,
            ..TcpFacts::default()
        });
        let synack = Some(TcpFacts {
            seq: 499,
            syn: true,
            ack: true,
            fin: false,
            rst: false,
            ..TcpFacts::default()
        });
        let (got, _) = run(&[
            (c, s, syn, b""),
            (s, c, synack, b""),
            (c, s, t(100), b"ping"),
            (s, c, t(500), b"pong"),
        ]);
        assert_eq!(
            got,
            vec![
                Out::Open(1, c),
                Out::Data(1, Direction::Egress, 100, b"ping".to_vec()),
                Out::Data(1, Direction::Ingress, 500, b"pong".to_vec()),
                Out::Close(1),
            ]
        );
    }

    #[test]
    fn out_of_order_and_retransmitted_segments_come_out_once_in_order() {
        let (c, s) = (a("10.0.0.1:40000"), a("10.0.0.2:6379"));
        let (got, stats) = run(&[
            (c, s, t(0), b"abc"),
            (c, s, t(6), b"ghi"),
            (c, s, t(3), b"def"),
            (c, s, t(0), b"abc"),
            (c, s, t(4), b"efgh"),
            (c, s, t(9), b"jk"),
        ]);
        let bytes: Vec<u8> = got
            .iter()
            .filter_map(|o| match o {
                Out::Data(_, _, _, b) => Some(b.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(bytes, b"abcdefghijk");
        assert_eq!(stats.out_of_order_segments, 1);
        assert_eq!(stats.retransmitted_bytes, 3 + 4);
        assert!(got.contains(&Out::Data(1, Direction::Egress, 6, b"ghi".to_vec())));
    }

    #[test]
    fn sequence_wraps() {
        let (c, s) = (a("10.0.0.1:40000"), a("10.0.0.2:80"));
        let (got, stats) = run(&[
            (c, s, t(u32::MAX - 1), b"ab"),
            (c, s, t(2), b"ef"),
            (c, s, t(0), b"cd"),
        ]);
        assert_eq!(stats.gap_bytes, 0);
        assert_eq!(
            got[1..4],
            [
                Out::Data(1, Direction::Egress, u32::MAX - 1, b"ab".to_vec()),
                Out::Data(1, Direction::Egress, 0, b"cd".to_vec()),
                Out::Data(1, Direction::Egress, 2, b"ef".to_vec()),
            ]
        );
    }

    #[test]
    fn a_gap_that_never_fills_is_counted_at_close() {
        let (c, s) = (a("10.0.0.1:40000"), a("10.0.0.2:80"));
        let (got, stats) = run(&[(c, s, t(0), b"ab"), (c, s, t(10), b"xy")]);
        assert_eq!(stats.gap_bytes, 8);
        assert!(got.contains(&Out::Data(1, Direction::Egress, 10, b"xy".to_vec())));
    }

    #[test]
    fn mid_stream_flow_guesses_the_server_by_port() {
        let (c, s) = (a("127.0.0.1:45678"), a("127.0.0.1:5432"));
        // The server speaks first in the capture.
        let (got, _) = run(&[(s, c, t(7), b"Z"), (c, s, t(1), b"Q")]);
        assert_eq!(got[0], Out::Open(1, c));
        assert_eq!(got[1], Out::Data(1, Direction::Ingress, 7, b"Z".to_vec()));
        assert_eq!(
            guess_server(a("1.1.1.1:40000"), a("1.1.1.1:50000")),
            a("1.1.1.1:40000")
        );
    }

    #[test]
    fn udp_datagrams_pair_up_by_flow() {
        let (c, s) = (a("127.0.0.1:53000"), a("127.0.0.1:53"));
        let (got, stats) = run(&[(c, s, None, b"q"), (s, c, None, b"r")]);
        assert_eq!(stats.udp_datagrams, 2);
        assert_eq!(
            got,
            vec![
                Out::Open(1, c),
                Out::Data(1, Direction::Egress, 0, b"q".to_vec()),
                Out::Data(1, Direction::Ingress, 0, b"r".to_vec()),
                Out::Close(1),
            ]
        );
    }
}

#[cfg(test)]
mod record_tests {
    use super::*;

    const S: u8 = 2;
    const A: u8 = 16;
    const F: u8 = 1;
    const R: u8 = 4;
    const MS: u64 = 1_000_000;

    /// (ms, from client?, seq, ack, flags, payload length).
    type Pkt = (u64, bool, u32, u32, u8, usize);

    fn table() -> FlowTable {
        FlowTable::new(FlowConfig {
            payload_cap: 1024,
            idle_ns: 60_000 * MS,
            opening_ns: 2_000 * MS,
            udp_idle_ns: 5_000 * MS,
            linger_ns: 1_000 * MS,
            report_ns: 10_000 * MS,
        })
    }

    fn feed(t: &mut FlowTable, c: SocketAddr, s: SocketAddr, pkts: &[Pkt]) -> Vec<String> {
        let mut events = Vec::new();
        let payload = [b'x'; 2000];
        for &(ms, from_client, seq, ack, fl, len) in pkts {
            let (src, dst) = if from_client { (c, s) } else { (s, c) };
            let seg = Segment {
                l4: L4Protocol::Tcp,
                src,
                dst,
                tcp: Some(TcpFacts {
                    seq,
                    ack_seq: ack,
                    window: 512,
                    syn: fl & S != 0,
                    ack: fl & A != 0,
                    fin: fl & F != 0,
                    rst: fl & R != 0,
                }),
                ip_len: 52 + len as u32,
                payload: &payload[..len],
            };
            t.on_packet(ms * MS, 3, &seg, &mut |e| {
                events.push(match e {
                    SocketEvent::Open(o) => format!("open {}", o.socket_id),
                    SocketEvent::Data(d) => format!("data {} {}", d.socket_id, d.payload.len()),
                    SocketEvent::Close(c) => format!("close {}", c.socket_id),
                })
            });
        }
        events
    }

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_connection_is_one_flow_with_its_trailing_ack() {
        let (c, s) = (a("10.0.0.1:40000"), a("10.0.0.2:80"));
        let mut t = table();
        t.name_interface(3, "veth0");
        let ev = feed(
            &mut t,
            c,
            s,
            &[
                (0, true, 100, 0, S, 0),
                (1, false, 500, 101, S | A, 0),
                (3, true, 101, 501, A, 0),
                (4, true, 101, 501, A, 100),
                (9, false, 501, 201, A, 300),
                (10, true, 201, 801, F | A, 0),
                (11, false, 801, 202, F | A, 0),
                // After both FINs: the last ACK still belongs to the flow.
                (12, true, 202, 802, A, 0),
            ],
        );
        assert_eq!(ev, ["open 1", "data 1 100", "data 1 300", "close 1"]);
        assert!(t.take_reports().is_empty(), "lingers first");
        feed(
            &mut t,
            a("10.0.0.9:1"),
            a("10.0.0.8:2"),
            &[(2_000, true, 1, 0, S, 0)],
        );
        let r = t.take_reports();
        assert_eq!(r.len(), 1, "{r:#?}");
        let f = &r[0];
        assert_eq!((f.flow_id, f.client, f.server), (1, c, s));
        assert_eq!(f.interface, "veth0");
        assert_eq!(f.close_type, CloseType::Normal);
        assert!(f.new_flow);
        assert_eq!((f.sides[0].packets, f.sides[1].packets), (5, 3));
        assert_eq!(f.sides[0].bytes, 5 * 52 + 100);
        assert_eq!(f.sides[1].payload_bytes, 300);
        assert_eq!(f.total_packets, [5, 3]);
        assert_eq!((f.sides[0].syns, f.sides[1].syns), (1, 1));
        assert_eq!((f.sides[0].fins, f.sides[1].fins), (1, 1));
        // SYN at 0, SYN-ACK at 1 ms, ACK at 3 ms.
        assert_eq!((f.rtt_server_us, f.rtt_client_us), (1000, 2000));
        assert_eq!((f.srt_count, f.srt_sum_us), (1, 5000));
        assert_eq!((f.start_time_us, f.end_time_us), (0, 12_000));
    }

    #[test]
    fn establish_failures_refused_and_timed_out() {
        let (c, s) = (a("10.0.0.1:40001"), a("10.0.0.2:81"));
        let mut t = table();
        feed(
            &mut t,
            c,
            s,
            &[(0, true, 7, 0, S, 0), (0, false, 0, 8, R | A, 0)],
        );
        // SYNs never answered: one flow for the retry, then quiet.
        let (c2, s2) = (a("10.0.0.1:40002"), a("10.0.0.2:82"));
        feed(
            &mut t,
            c2,
            s2,
            &[(1, true, 9, 0, S, 0), (1_001, true, 9, 0, S, 0)],
        );
        feed(&mut t, c, s, &[(5_000, true, 1, 1, A, 0)]);
        let r = t.take_reports();
        let by_port = |p: u16| r.iter().find(|f| f.server.port() == p).unwrap();
        assert_eq!(by_port(81).close_type, CloseType::Refused);
        assert_eq!(by_port(81).sides[1].resets, 1);
        let timed = by_port(82);
        assert_eq!(timed.close_type, CloseType::SynTimeout);
        assert_eq!(timed.sides[0].syns, 2);
        assert_eq!(timed.sides[0].retransmissions, 1);
        assert_eq!(r.len(), 2, "{r:#?}");
        // The pure ACK after the refusal is a flow of its own (mid-stream).
        t.finish(5_001 * MS, &mut |_| {});
        let r = t.take_reports();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].close_type, CloseType::CaptureEnd);
    }

    #[test]
    fn long_flows_are_reported_periodically_and_port_reuse_ends_one() {
        let (c, s) = (a("10.0.0.1:40003"), a("10.0.0.2:83"));
        let mut t = table();
        feed(
            &mut t,
            c,
            s,
            &[
                (0, true, 100, 0, S, 0),
                (1, false, 500, 101, S | A, 0),
                (2, true, 101, 501, A, 10),
                (5_000, true, 111, 501, A, 10),
                (10_500, true, 121, 501, A, 10),
                (12_000, false, 501, 131, A, 0),
            ],
        );
        let r = t.take_reports();
        assert_eq!(r.len(), 1, "{r:#?}");
        assert_eq!(r[0].close_type, CloseType::Active);
        assert!(r[0].new_flow);
        assert_eq!(r[0].sides[0].packets, 3, "up to the report at 10.5 s");
        // A new SYN on the same ports: the old flow ends, a new one starts.
        feed(&mut t, c, s, &[(13_000, true, 9_999, 0, S, 0)]);
        let r = t.take_reports();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].close_type, CloseType::PortReuse);
        assert!(!r[0].new_flow);
        assert_eq!(r[0].total_packets, [4, 2]);
        assert_eq!((r[0].sides[0].packets, r[0].sides[1].packets), (1, 1));
        assert_eq!(r[0].rtt_server_us, 1000, "the handshake stays");
        t.finish(14_000 * MS, &mut |_| {});
        let r = t.take_reports();
        assert_eq!(r[0].flow_id, 2);
        assert_eq!(r[0].close_type, CloseType::CaptureEnd);
    }

    #[test]
    fn udp_flows_time_out() {
        let (c, s) = (a("10.0.0.1:5353"), a("10.0.0.2:53"));
        let mut t = table();
        for (ms, src, dst) in [(0, c, s), (1, s, c)] {
            let seg = Segment {
                l4: L4Protocol::Udp,
                src,
                dst,
                tcp: None,
                ip_len: 60,
                payload: b"abcdefgh12345678",
            };
            t.on_packet(ms * MS, 0, &seg, &mut |_| {});
        }
        t.tick(6_000 * MS, &mut |_| {});
        let r = t.take_reports();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].close_type, CloseType::Timeout);
        assert_eq!(r[0].total_bytes, [60, 60]);
        assert_eq!(r[0].l4_protocol, L4Protocol::Udp);
    }
}
