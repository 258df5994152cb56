//! AutoMetrics: RED figures (rate, errors, duration) aggregated from the
//! agent's finished spans into metric rows of 1 s and 1 min
//! ([`causeway_model::metric`]), which the exporter sends in the same
//! batches as the spans.
//!
//! **Keys.** Each span adds to two rows of its window, keyed by tag ids as
//! the span's row holds them (SmartEncoding):
//! - a *node* row: the observation point, the protocol, the observed
//!   side's host, process and service, and the endpoint (its id,
//!   [`TagKind::Endpoint`]); the other side's tags are 0. The observed side
//!   is the server for server-side spans (what a service served) and the
//!   client for client-side spans (what it called); spans seen on the wire
//!   (replay) count for their server.
//! - an *edge* row: the observation point, the protocol and both sides'
//!   host, process and service; no endpoint.
//!
//! **Double counting.** A request between two traced processes is seen
//! twice, as a client-side and a server-side span. The rows keep the
//! observation point as part of their key and nothing ever adds rows of two
//! observation points: a node's served figures are its server-side rows
//! only, its called figures its client-side rows only, and an edge's
//! figures come from one observation point, chosen per edge at query time
//! (its client side where the client was observed, else its server side,
//! else the wire).
//!
//! **Windows.** A span counts, whole, in the 1 s window its response ended
//! in; a timeout in the window it was declared in (the pairing window
//! closing or its socket closing), since its request's time is long gone by
//! then. Windows close on wall time: a second is emitted once the clock
//! passes its end by the allowed lateness (3 s by default; spans leave the
//! pipeline well within that). A span for a second already emitted is not
//! lost: it makes another row for that second, emitted at the next flush
//! and counted in [`RedStats::late_spans`]; rows of one key and window add
//! up when queried.
//!
//! **Minutes.** When a second is emitted its rows are also merged into its
//! minute, which is emitted once the clock passes the minute's end by the
//! same lateness. So the 1 min rows are exactly the merge of the 1 s rows,
//! and each span is hashed into a table once, not twice.
//!
//! **Bounds.** At most [`RedConfig::max_keys`] keys per second: past that a
//! new node key loses its endpoint (endpoint 0) and a new edge key its
//! client side (client tags 0, where unbounded sets of callers come from),
//! counted in [`RedStats::folded`]. What the figures add up to is kept.

use causeway_model::metric::{Granularity, LatencySketch, RowKind};
use causeway_model::wire::{FlowRow, MetricRow, SpanRow};
use causeway_model::{CloseType, ObservationPoint, ResponseStatus};
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

#[derive(Debug, Clone)]
pub struct RedConfig {
    /// How long past its end a window stays open for late spans.
    pub lateness_us: u64,
    /// Keys per 1 s window before keys are folded.
    pub max_keys: usize,
}

impl Default for RedConfig {
    fn default() -> Self {
        RedConfig {
            lateness_us: 3_000_000,
            max_keys: 50_000,
        }
    }
}

/// What the aggregator did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedStats {
    /// Spans aggregated.
    pub spans: u64,
    /// Flow reports aggregated (network figures).
    pub flow_reports: u64,
    /// Spans that arrived after their second was emitted.
    pub late_spans: u64,
    /// Keys folded because a second had too many.
    pub folded: u64,
    /// Rows emitted, per granularity.
    pub rows_1s: u64,
    pub rows_1m: u64,
}

/// A row's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    kind: u8,
    observation_point: u8,
    protocol: u32,
    host: [u64; 2],
    process: [u64; 2],
    service: [u64; 2],
    endpoint: u64,
}

/// A row's figures, as they merge.
#[derive(Debug, Clone, Default)]
struct Cell {
    requests: u64,
    responses: u64,
    client_errors: u64,
    server_errors: u64,
    timeouts: u64,
    latency_sum_us: u64,
    latency_count: u64,
    latency_max_us: u64,
    sketch: LatencySketch,
    request_bytes: u64,
    response_bytes: u64,
    net: Net,
}

/// A cell's network figures, from flow reports (field for field the
/// `MetricRow`'s network numbers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Net {
    packets: [u64; 2],
    bytes: [u64; 2],
    new_flows: u64,
    closed_flows: u64,
    rtt_sum_us: u64,
    rtt_count: u64,
    rtt_max_us: u64,
    retransmissions: [u64; 2],
    zero_windows: [u64; 2],
    establish_failures: u64,
    resets: u64,
    srt_sum_us: u64,
    srt_count: u64,
}

impl Net {
    fn of(f: &FlowRow) -> Net {
        let close = CloseType::from_code(f.close_type);
        let rtt = (f.rtt_client_us > 0 && f.rtt_server_us > 0 && f.new_flow)
            .then_some(f.rtt_client_us + f.rtt_server_us);
        Net {
            packets: [f.packets_0, f.packets_1],
            bytes: [f.bytes_0, f.bytes_1],
            new_flows: u64::from(f.new_flow),
            closed_flows: u64::from(close != CloseType::Active),
            rtt_sum_us: rtt.unwrap_or(0),
            rtt_count: u64::from(rtt.is_some()),
            rtt_max_us: rtt.unwrap_or(0),
            retransmissions: [f.retransmissions_0, f.retransmissions_1],
            zero_windows: [f.zero_windows_0, f.zero_windows_1],
            establish_failures: u64::from(close.is_establish_failure()),
            resets: f.resets_0 + f.resets_1,
            srt_sum_us: f.srt_sum_us,
            srt_count: f.srt_count,
        }
    }

    fn merge(&mut self, o: &Net) {
        for i in 0..2 {
            self.packets[i] += o.packets[i];
            self.bytes[i] += o.bytes[i];
            self.retransmissions[i] += o.retransmissions[i];
            self.zero_windows[i] += o.zero_windows[i];
        }
        self.new_flows += o.new_flows;
        self.closed_flows += o.closed_flows;
        self.rtt_sum_us += o.rtt_sum_us;
        self.rtt_count += o.rtt_count;
        self.rtt_max_us = self.rtt_max_us.max(o.rtt_max_us);
        self.establish_failures += o.establish_failures;
        self.resets += o.resets;
        self.srt_sum_us += o.srt_sum_us;
        self.srt_count += o.srt_count;
    }
}

impl Cell {
    /// Adds a span; `bucket` is its latency's sketch key (computed once
    /// for the span's two rows).
    fn add(&mut self, row: &SpanRow, bucket: u32) {
        self.requests += 1;
        self.request_bytes += row.request_length;
        self.response_bytes += row.response_length;
        match ResponseStatus::from_code(row.response_status) {
            ResponseStatus::Timeout => {
                self.timeouts += 1;
                return;
            }
            ResponseStatus::ClientError => self.client_errors += 1,
            ResponseStatus::ServerError => self.server_errors += 1,
            ResponseStatus::Ok | ResponseStatus::Unknown => {}
        }
        self.responses += 1;
        let d = row.end_time_us.saturating_sub(row.start_time_us);
        self.latency_sum_us += d;
        self.latency_count += 1;
        self.latency_max_us = self.latency_max_us.max(d);
        self.sketch.add_key(bucket, 1);
    }

    fn merge(&mut self, o: &Cell) {
        self.requests += o.requests;
        self.responses += o.responses;
        self.client_errors += o.client_errors;
        self.server_errors += o.server_errors;
        self.timeouts += o.timeouts;
        self.latency_sum_us += o.latency_sum_us;
        self.latency_count += o.latency_count;
        self.latency_max_us = self.latency_max_us.max(o.latency_max_us);
        self.sketch.merge(&o.sketch);
        self.request_bytes += o.request_bytes;
        self.response_bytes += o.response_bytes;
        self.net.merge(&o.net);
    }

    fn row(&self, g: Granularity, time_us: u64, k: &Key) -> MetricRow {
        let (sketch_keys, sketch_counts) = self.sketch.to_sparse();
        MetricRow {
            granularity_s: g.seconds(),
            time_us,
            kind: k.kind as u32,
            observation_point: k.observation_point as u32,
            protocol: k.protocol,
            host_0: k.host[0],
            host_1: k.host[1],
            process_0: k.process[0],
            process_1: k.process[1],
            service_0: k.service[0],
            service_1: k.service[1],
            endpoint: k.endpoint,
            requests: self.requests,
            responses: self.responses,
            client_errors: self.client_errors,
            server_errors: self.server_errors,
            timeouts: self.timeouts,
            latency_sum_us: self.latency_sum_us,
            latency_count: self.latency_count,
            latency_max_us: self.latency_max_us,
            sketch_keys,
            sketch_counts,
            request_bytes: self.request_bytes,
            response_bytes: self.response_bytes,
            net_packets_0: self.net.packets[0],
            net_packets_1: self.net.packets[1],
            net_bytes_0: self.net.bytes[0],
            net_bytes_1: self.net.bytes[1],
            new_flows: self.net.new_flows,
            closed_flows: self.net.closed_flows,
            rtt_sum_us: self.net.rtt_sum_us,
            rtt_count: self.net.rtt_count,
            rtt_max_us: self.net.rtt_max_us,
            retransmissions_0: self.net.retransmissions[0],
            retransmissions_1: self.net.retransmissions[1],
            zero_windows_0: self.net.zero_windows[0],
            zero_windows_1: self.net.zero_windows[1],
            establish_failures: self.net.establish_failures,
            resets: self.net.resets,
            srt_sum_us: self.net.srt_sum_us,
            srt_count: self.net.srt_count,
        }
    }
}

/// FxHash's mixing step: keys are tag ids (hashes already) and small
/// codes, so a multiply-rotate hash spreads them well at a fraction of
/// SipHash's cost, on the path every span takes.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Arrays of ids come here as their bytes: eight at a time.
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
        for b in chunks.remainder() {
            self.write_u64(*b as u64);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(i as u64);
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64);
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type Window = HashMap<Key, Cell, BuildHasherDefault<KeyHasher>>;

/// Spans in, metric rows out. Pure: the caller says what time it is.
pub struct Aggregator {
    config: RedConfig,
    /// Open seconds and minutes by start time.
    seconds: BTreeMap<u64, Window>,
    minutes: BTreeMap<u64, Window>,
    /// Every second before this has been emitted.
    emitted_before: u64,
    stats: RedStats,
}

impl Aggregator {
    pub fn new(config: RedConfig) -> Aggregator {
        Aggregator {
            config,
            seconds: BTreeMap::new(),
            minutes: BTreeMap::new(),
            emitted_before: 0,
            stats: RedStats::default(),
        }
    }

    pub fn stats(&self) -> &RedStats {
        &self.stats
    }

    /// Adds a span's row (as the exporter encoded it), with the tag id of
    /// its endpoint, at wall time `now_us`.
    pub fn add(&mut self, row: &SpanRow, endpoint: u64, now_us: u64) {
        let Some(op) = ObservationPoint::from_code(row.observation_point) else {
            return;
        };
        self.stats.spans += 1;
        let at = if row.response_status == ResponseStatus::Timeout.code() {
            now_us.max(row.end_time_us)
        } else {
            row.end_time_us
        };
        let second = Granularity::Second.window(at);
        if second < self.emitted_before {
            self.stats.late_spans += 1;
        }
        let side = match op {
            ObservationPoint::Client => 0,
            ObservationPoint::Server | ObservationPoint::Network => 1,
        };
        let edge = Key {
            kind: RowKind::Edge as u8,
            observation_point: op.code() as u8,
            protocol: row.protocol,
            host: [row.host_0, row.host_1],
            process: [row.process_0, row.process_1],
            service: [row.service_0, row.service_1],
            endpoint: 0,
        };
        let mut node = Key {
            kind: RowKind::Node as u8,
            host: [0; 2],
            process: [0; 2],
            service: [0; 2],
            endpoint,
            ..edge
        };
        node.host[side] = edge.host[side];
        node.process[side] = edge.process[side];
        node.service[side] = edge.service[side];
        let max_keys = self.config.max_keys;
        let bucket = LatencySketch::key(row.end_time_us.saturating_sub(row.start_time_us));
        let window = self.seconds.entry(second).or_default();
        for mut key in [node, edge] {
            if window.len() >= max_keys && !window.contains_key(&key) {
                self.stats.folded += 1;
                if key.kind == RowKind::Node as u8 {
                    key.endpoint = 0;
                } else {
                    key.host[0] = 0;
                    key.process[0] = 0;
                    key.service[0] = 0;
                }
            }
            window.entry(key).or_default().add(row, bucket);
        }
    }

    /// Adds a flow report's network figures (as the exporter encoded it)
    /// to the window its period ended in: a node row for its server and
    /// an edge row for client → server, observation point network, keyed
    /// by the flow's L7 protocol and its ends' services (no host or
    /// process: the wire does not say). Reports of one flow add up.
    pub fn add_flow(&mut self, f: &FlowRow) {
        self.stats.flow_reports += 1;
        // A report for a second already emitted makes another row for it.
        let second = Granularity::Second.window(f.end_time_us);
        let edge = Key {
            kind: RowKind::Edge as u8,
            observation_point: ObservationPoint::Network.code() as u8,
            protocol: f.l7_protocol,
            host: [0; 2],
            process: [0; 2],
            service: [f.service_0, f.service_1],
            endpoint: 0,
        };
        let node = Key {
            kind: RowKind::Node as u8,
            service: [0, f.service_1],
            ..edge
        };
        let net = Net::of(f);
        let max_keys = self.config.max_keys;
        let window = self.seconds.entry(second).or_default();
        for mut key in [node, edge] {
            if window.len() >= max_keys && !window.contains_key(&key) {
                self.stats.folded += 1;
                if key.kind == RowKind::Edge as u8 {
                    key.service[0] = 0;
                }
            }
            window.entry(key).or_default().net.merge(&net);
        }
    }

    /// Emits into `out` every window that the clock has passed by the
    /// lateness: seconds (merged into their minutes as they go) and minutes.
    pub fn flush(&mut self, now_us: u64, out: &mut Vec<MetricRow>) {
        let cut = now_us.saturating_sub(self.config.lateness_us);
        self.emit(cut, out);
    }

    /// Emits every window, open or not (the agent is stopping).
    pub fn close_all(&mut self, out: &mut Vec<MetricRow>) {
        self.emit(u64::MAX, out);
    }

    /// Emits the seconds and minutes that end at or before `cut`.
    fn emit(&mut self, cut: u64, out: &mut Vec<MetricRow>) {
        let s = Granularity::Second;
        while let Some(entry) = self.seconds.first_entry() {
            let start = *entry.key();
            if start.saturating_add(s.micros()) > cut {
                break;
            }
            let window = entry.remove();
            let minute = self
                .minutes
                .entry(Granularity::Minute.window(start))
                .or_default();
            for (k, c) in &window {
                out.push(c.row(s, start, k));
                minute.entry(*k).or_default().merge(c);
            }
            self.stats.rows_1s += window.len() as u64;
            self.emitted_before = self.emitted_before.max(start + s.micros());
        }
        let m = Granularity::Minute;
        while let Some(entry) = self.minutes.first_entry() {
            let start = *entry.key();
            if start.saturating_add(m.micros()) > cut {
                break;
            }
            let window = entry.remove();
            out.extend(window.iter().map(|(k, c)| c.row(m, start, k)));
            self.stats.rows_1m += window.len() as u64;
        }
    }

    /// Windows still open.
    pub fn open_windows(&self) -> usize {
        self.seconds.len() + self.minutes.len()
    }
}

#[cfg(test)]
mod tests;
