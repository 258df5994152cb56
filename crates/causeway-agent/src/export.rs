//! Export: spans from the capture path to a server, never blocking capture,
//! and the RED metric rows aggregated from them ([`crate::red`]).
//!
//! ```text
//! capture thread                      sender thread
//! ExportSink ── try_send(batch) ──►  queue (bounded by spans) ── Transport::push ──► server
//!   encode, aggregate, batch           seq numbers, retries with backoff,
//!   (drops counted when full)          drops counted when over the bound
//! ```
//!
//! Metric rows ride in the same batches as spans (so a re-sent batch never
//! counts twice), under a bound of their own: when spans have to be
//! dropped, the metric rows of the same batch are still kept while they fit
//! theirs, so a long outage loses span detail before it loses figures.
//!
//! The capture thread only encodes spans into wire rows (tag strings
//! become ids, each string sent once) and hands whole batches over a small
//! channel with `try_send`: when the sender is behind, the batch is dropped
//! and counted, and capture goes on. The sender keeps batches until the
//! server acknowledges them (an acknowledgement means durable), retrying
//! with backoff while the server is down, within a bound on the spans it
//! holds; a batch that would go over the bound is dropped and counted.
//! Every span handed to the sink ends acknowledged, dropped or refused,
//! each counted in [`ExportStats`], or is still held when the agent stops
//! (counted as dropped by [`ExportHandle::finish`]).
//!
//! A re-sent batch has the same (agent, session, seq), so a server that
//! stored it before losing the acknowledgement stores it no second time.
//!
//! Flow reports from packet capture ([`SpanSink::on_flow`]) ride in the
//! same batches as wire rows of their own ([`flows`]), under the same
//! bound (a batch's spans and flows count together), with counts of their
//! own in [`ExportStats`].

use crate::pipeline::SpanSink;
use crate::red::{Aggregator, RedConfig};
use causeway_model::tags::{tag_id, TagKind};
use causeway_model::wire::{Ack, Batch, FlowRow, MetricRow, SpanRow, Tag};
use causeway_model::{ObservationPoint, ResponseStatus, Span};
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct ExportConfig {
    /// Names this agent to the server.
    pub agent_id: String,
    /// Where process names are read (`/proc`); None: a span's thread name
    /// names its process.
    pub proc_root: Option<std::path::PathBuf>,
    /// The host's name (the `host` tag of the sides seen here).
    pub host: String,
    /// Spans per batch at most.
    pub batch_spans: usize,
    /// Spans the sender may hold, sent or not, until acknowledged.
    pub buffer_spans: usize,
    /// Metric rows the sender may hold (a bound of their own).
    pub buffer_metric_rows: usize,
    /// How spans become metric rows.
    pub red: RedConfig,
    pub retry_min: Duration,
    pub retry_max: Duration,
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            agent_id: String::new(),
            proc_root: None,
            host: String::new(),
            batch_spans: 2000,
            buffer_spans: 200_000,
            buffer_metric_rows: 200_000,
            red: RedConfig::default(),
            retry_min: Duration::from_millis(200),
            retry_max: Duration::from_secs(5),
        }
    }
}

/// Why a push did not get an acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The server is down, slow or failing: try again later.
    #[error("{0}")]
    Retry(String),
    /// The server refuses this agent's token: retried, since the server
    /// may be fixed, but worth saying loudly.
    #[error("{0}")]
    Unauthenticated(String),
    /// The server refuses this batch for what it is: it is dropped.
    #[error("{0}")]
    Refused(String),
}

/// Where batches go: a gRPC server, or a server in the same process.
pub trait Transport: Send {
    /// Pushes one batch and waits for its acknowledgement.
    fn push(&mut self, batch: &Batch) -> Result<Ack, PushError>;
}

/// What became of the spans handed to the exporter.
#[derive(Debug, Default)]
pub struct ExportStats {
    /// Spans handed to the sink.
    pub spans_in: AtomicU64,
    /// Spans the server acknowledged (stored, or found stored before).
    pub spans_acked: AtomicU64,
    /// Spans dropped: the sender was behind, or held too many.
    pub spans_dropped: AtomicU64,
    /// Spans in batches the server refused as malformed.
    pub spans_refused: AtomicU64,
    pub batches_acked: AtomicU64,
    /// Acknowledgements of batches the server had stored already (a
    /// re-send after a lost acknowledgement).
    pub batches_duplicate: AtomicU64,
    /// Pushes that failed and were tried again.
    pub retries: AtomicU64,
    /// Spans the sender holds now.
    pub spans_held: AtomicU64,
    /// Flow reports, and what became of them (as for spans).
    pub flows_in: AtomicU64,
    pub flows_acked: AtomicU64,
    pub flows_dropped: AtomicU64,
    pub flows_refused: AtomicU64,
    /// Metric rows made from the spans, and what became of them (as for spans).
    pub metric_rows_in: AtomicU64,
    pub metric_rows_acked: AtomicU64,
    pub metric_rows_dropped: AtomicU64,
    pub metric_rows_refused: AtomicU64,
    pub metric_rows_held: AtomicU64,
    /// Spans that came after their second's metric rows were sent (they
    /// made another row; nothing is lost).
    pub metric_late_spans: AtomicU64,
    pub last_error: Mutex<String>,
}

impl ExportStats {
    /// One line for people.
    pub fn summary(&self) -> String {
        format!(
            "{} spans exported: {} acknowledged, {} dropped, {} refused, {} held; {} retries",
            self.spans_in.load(Relaxed),
            self.spans_acked.load(Relaxed),
            self.spans_dropped.load(Relaxed),
            self.spans_refused.load(Relaxed),
            self.spans_held.load(Relaxed),
            self.retries.load(Relaxed),
        )
    }

    /// One line for people about the metric rows.
    pub fn metrics_summary(&self) -> String {
        format!(
            "{} metric rows exported: {} acknowledged, {} dropped, {} refused, {} held; {} late spans",
            self.metric_rows_in.load(Relaxed),
            self.metric_rows_acked.load(Relaxed),
            self.metric_rows_dropped.load(Relaxed),
            self.metric_rows_refused.load(Relaxed),
            self.metric_rows_held.load(Relaxed),
            self.metric_late_spans.load(Relaxed),
        )
    }
}

/// Turns spans into wire rows: tag strings into ids, each string noted to
/// be sent once.
pub struct Encoder {
    host: String,
    sent: HashSet<(TagKind, u64)>,
    new_tags: Vec<Tag>,
    names: Option<ProcessNames>,
}

/// Process names by pid: the main thread's command name
/// (`/proc/PID/comm`). A span's `comm` is the name of the thread that made
/// the syscall (grpcio's `event_engine`, a JVM's `http-nio-8080-e`), while
/// a process is known by its main thread's. Each name is read once and
/// kept for a minute (pids are reused).
pub struct ProcessNames {
    root: std::path::PathBuf,
    cache: std::collections::HashMap<u32, (Arc<str>, Instant)>,
}

impl ProcessNames {
    /// Names read under `root` (`/proc`).
    pub fn new(root: impl Into<std::path::PathBuf>) -> ProcessNames {
        ProcessNames {
            root: root.into(),
            cache: std::collections::HashMap::new(),
        }
    }

    /// The name of process `pid`; None when it is gone (or unreadable).
    pub fn name(&mut self, pid: u32) -> Option<Arc<str>> {
        let now = Instant::now();
        if let Some((n, at)) = self.cache.get(&pid) {
            if now.duration_since(*at) < Duration::from_secs(60) {
                return Some(n.clone());
            }
        }
        if self.cache.len() >= 1 << 16 {
            self.cache.clear();
        }
        let read = std::fs::read_to_string(self.root.join(pid.to_string()).join("comm")).ok()?;
        let name: Arc<str> = Arc::from(read.trim_end_matches('\n'));
        self.cache.insert(pid, (name.clone(), now));
        Some(name)
    }
}

/// Strings remembered as sent, at most: past this the memory starts over
/// (strings are sent again, which costs little).
const MAX_REMEMBERED_TAGS: usize = 1 << 20;

impl Encoder {
    pub fn new(host: &str) -> Encoder {
        Encoder {
            host: host.to_owned(),
            sent: HashSet::new(),
            new_tags: Vec::new(),
            names: None,
        }
    }

    /// Names processes by their main thread (see [`ProcessNames`]) rather
    /// than by the thread a span's syscalls came from.
    pub fn with_process_names(mut self, names: ProcessNames) -> Encoder {
        self.names = Some(names);
        self
    }

    fn tag(&mut self, kind: TagKind, value: &str) -> u64 {
        note_tag(&mut self.sent, &mut self.new_tags, kind, value)
    }

    /// The id of an endpoint (noted to be sent once, like every tag).
    pub fn endpoint_id(&mut self, endpoint: &str) -> u64 {
        self.tag(TagKind::Endpoint, endpoint)
    }

    /// Strings first used since the last call.
    pub fn take_new_tags(&mut self) -> Vec<Tag> {
        std::mem::take(&mut self.new_tags)
    }

    /// The row of a span. The side the span was observed on gets this
    /// host, the process's pid and name; the other side gets them too when
    /// it is a process on this host the agent saw (`peer_pid`); otherwise
    /// its service is its address (`ip:port` for a server, `ip` for a client).
    pub fn encode(&mut self, s: Span) -> SpanRow {
        let host = note_tag(
            &mut self.sent,
            &mut self.new_tags,
            TagKind::Host,
            &self.host,
        );
        let local_peer = |ip: &str| {
            ip.parse::<std::net::IpAddr>()
                .is_ok_and(|a| a.is_loopback())
        };
        // The processes' own names, where they can be read.
        let mut named = |pid: u32| match (&mut self.names, pid) {
            (Some(n), p) if p != 0 => n.name(p),
            _ => None,
        };
        let (own, peer) = (named(s.pid), named(s.peer_pid));
        // (pid, process name) per side, where known.
        let mut sides: [(u32, &str, bool); 2] = [(0, "", false), (0, "", false)];
        let seen = match s.observation_point {
            ObservationPoint::Client => Some(0),
            ObservationPoint::Server => Some(1),
            ObservationPoint::Network => None,
        };
        if let Some(i) = seen {
            sides[i] = (s.pid, own.as_deref().unwrap_or(&s.comm), true);
            if s.peer_pid != 0 {
                sides[1 - i] = (s.peer_pid, peer.as_deref().unwrap_or(&s.peer_comm), true);
            } else {
                let ip = if i == 0 { &s.dst_ip } else { &s.src_ip };
                sides[1 - i].2 = local_peer(ip);
            }
        }
        let mut ids = [(0u64, 0u64, 0u64); 2];
        for (i, (pid, name, here)) in sides.iter().enumerate() {
            let process = self.tag(TagKind::Process, name);
            let service = if *pid != 0 {
                self.tag(TagKind::Service, name)
            } else if i == 0 {
                self.tag(TagKind::Service, &s.src_ip)
            } else {
                let addr = format!("{}:{}", s.dst_ip, s.dst_port);
                self.tag(TagKind::Service, &addr)
            };
            ids[i] = (if *here { host } else { 0 }, process, service);
        }
        let (pid_0, pid_1) = (sides[0].0, sides[1].0);
        SpanRow {
            start_time_us: s.start_time_us,
            end_time_us: s.end_time_us,
            protocol: s.protocol.code(),
            observation_point: s.observation_point.code(),
            response_status: s.response_status.code(),
            l4_protocol: s.l4_protocol.code(),
            version: s.version,
            pid: s.pid,
            tid_req: s.tid_req,
            tid_resp: s.tid_resp,
            coroutine_id_req: s.coroutine_id_req,
            coroutine_id_resp: s.coroutine_id_resp,
            socket_id: s.socket_id,
            is_tls: s.is_tls,
            src_ip: s.src_ip,
            src_port: s.src_port as u32,
            dst_ip: s.dst_ip,
            dst_port: s.dst_port as u32,
            request_type: s.request_type,
            request_domain: s.request_domain,
            request_resource: s.request_resource,
            endpoint: s.endpoint,
            request_id: s.request_id,
            exception: s.exception,
            result: s.result,
            user_agent: s.user_agent,
            response_code: s.response_code,
            request_length: s.request_length,
            response_length: s.response_length,
            req_tcp_seq: s.req_tcp_seq,
            resp_tcp_seq: s.resp_tcp_seq,
            syscall_trace_id_req: s.syscall_trace_id_req,
            syscall_trace_id_resp: s.syscall_trace_id_resp,
            x_request_id: s.x_request_id,
            x_request_id_resp: s.x_request_id_resp,
            trace_id: s.trace_id,
            span_id: s.span_id,
            parent_span_id: s.parent_span_id,
            host_0: ids[0].0,
            host_1: ids[1].0,
            process_0: ids[0].1,
            process_1: ids[1].1,
            service_0: ids[0].2,
            service_1: ids[1].2,
            pid_0,
            pid_1,
        }
    }
}

/// The id of `value`, noted in `new_tags` the first time it is seen.
fn note_tag(
    sent: &mut HashSet<(TagKind, u64)>,
    new_tags: &mut Vec<Tag>,
    kind: TagKind,
    value: &str,
) -> u64 {
    let id = tag_id(kind, value);
    if id != 0 && !sent.contains(&(kind, id)) {
        if sent.len() >= MAX_REMEMBERED_TAGS {
            sent.clear();
        }
        sent.insert((kind, id));
        new_tags.push(Tag {
            kind: kind.code(),
            id,
            value: value.to_owned(),
        });
    }
    id
}

/// Metric rows per batch at most (the server takes up to 100 000).
const BATCH_METRIC_ROWS: usize = 20_000;

/// A batch on its way from the capture thread to the sender.
struct Handoff {
    spans: Vec<SpanRow>,
    flows: Vec<FlowRow>,
    metrics: Vec<MetricRow>,
    tags: Vec<Tag>,
}

/// The capture side: a [`SpanSink`] that batches and hands over.
pub struct ExportSink {
    encoder: Encoder,
    red: Aggregator,
    spans: Vec<SpanRow>,
    flows: Vec<FlowRow>,
    /// Metric rows emitted and not yet handed over; after a failed
    /// hand-over they wait for the next (within `buffer_metric_rows`).
    metrics: Vec<MetricRow>,
    /// Tags of batches dropped before the sender saw them: they go with
    /// the next batch, since later rows may use them.
    carried: Vec<Tag>,
    tx: SyncSender<Handoff>,
    batch_spans: usize,
    buffer_metric_rows: usize,
    stats: Arc<ExportStats>,
}

/// Wall-clock microseconds since the epoch.
fn wall_now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

impl ExportSink {
    fn hand_over(&mut self) {
        loop {
            let mut tags = std::mem::take(&mut self.carried);
            tags.extend(self.encoder.take_new_tags());
            if self.spans.is_empty()
                && self.flows.is_empty()
                && self.metrics.is_empty()
                && tags.is_empty()
            {
                return;
            }
            let metrics = if self.metrics.len() > BATCH_METRIC_ROWS {
                self.metrics.drain(..BATCH_METRIC_ROWS).collect()
            } else {
                std::mem::take(&mut self.metrics)
            };
            let h = Handoff {
                spans: std::mem::replace(&mut self.spans, Vec::with_capacity(self.batch_spans)),
                flows: std::mem::take(&mut self.flows),
                metrics,
                tags,
            };
            match self.tx.try_send(h) {
                Ok(()) => {}
                Err(TrySendError::Full(h) | TrySendError::Disconnected(h)) => {
                    self.stats
                        .spans_dropped
                        .fetch_add(h.spans.len() as u64, Relaxed);
                    self.stats
                        .flows_dropped
                        .fetch_add(h.flows.len() as u64, Relaxed);
                    self.carried = h.tags;
                    // Metric rows wait for the next hand-over, within their bound.
                    let room = self.buffer_metric_rows.saturating_sub(self.metrics.len());
                    let mut metrics = h.metrics;
                    if metrics.len() > room {
                        let lost = metrics.len() - room;
                        self.stats
                            .metric_rows_dropped
                            .fetch_add(lost as u64, Relaxed);
                        metrics.truncate(room);
                    }
                    metrics.append(&mut self.metrics);
                    self.metrics = metrics;
                    return;
                }
            }
            if self.metrics.is_empty() {
                return;
            }
        }
    }

    /// Moves the metric rows `red` emitted into the next batch.
    fn take_metrics(&mut self, rows: Vec<MetricRow>) {
        self.stats
            .metric_rows_in
            .fetch_add(rows.len() as u64, Relaxed);
        self.stats
            .metric_late_spans
            .store(self.red.stats().late_spans, Relaxed);
        self.metrics.extend(rows);
    }
}

impl SpanSink for ExportSink {
    fn on_span(&mut self, span: Span) {
        self.stats.spans_in.fetch_add(1, Relaxed);
        let row = self.encoder.encode(span);
        let endpoint = self.encoder.endpoint_id(&row.endpoint);
        // Only a timeout is placed by the clock (when it was declared);
        // other spans by their end.
        let now = if row.response_status == ResponseStatus::Timeout.code() {
            wall_now_us()
        } else {
            row.end_time_us
        };
        self.red.add(&row, endpoint, now);
        self.spans.push(row);
        if self.spans.len() >= self.batch_spans {
            self.hand_over();
        }
    }

    fn on_flow(&mut self, flow: causeway_model::Flow) {
        self.stats.flows_in.fetch_add(1, Relaxed);
        let row = self.encoder.encode_flow(&flow);
        self.red.add_flow(&row);
        self.flows.push(row);
        if self.flows.len() >= self.batch_spans {
            self.hand_over();
        }
    }

    fn flush(&mut self) {
        let mut rows = Vec::new();
        self.red.flush(wall_now_us(), &mut rows);
        self.take_metrics(rows);
        self.hand_over();
    }
}

impl Drop for ExportSink {
    fn drop(&mut self) {
        // Every window goes, open or not: the figures so far are right,
        // and a later row of the same window would add to them.
        let mut rows = Vec::new();
        self.red.close_all(&mut rows);
        self.take_metrics(rows);
        self.hand_over();
    }
}

/// The sender side, to stop it and read what it did.
pub struct ExportHandle {
    thread: Option<JoinHandle<()>>,
    deadline: Arc<Mutex<Option<Instant>>>,
    pub stats: Arc<ExportStats>,
}

impl ExportHandle {
    /// After the sink is dropped: lets the sender deliver what it holds for
    /// up to `grace`, then stops it; what it still held is counted dropped.
    pub fn finish(mut self, grace: Duration) -> Arc<ExportStats> {
        if let Ok(mut d) = self.deadline.lock() {
            *d = Some(Instant::now() + grace);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.stats.clone()
    }
}

/// Starts the sender thread; returns the sink for the capture thread.
pub fn start(config: ExportConfig, transport: Box<dyn Transport>) -> (ExportSink, ExportHandle) {
    let stats = Arc::new(ExportStats::default());
    // Between the threads, room for a buffer's worth of batches, so that a
    // burst the sender has not yet taken in is not dropped at once; the
    // bound that counts is the sender's queue (memory: at most twice
    // `buffer_spans` spans).
    let room = (config.buffer_spans / config.batch_spans.max(1)).clamp(8, 4096);
    let (tx, rx) = mpsc::sync_channel(room);
    let deadline = Arc::new(Mutex::new(None));
    let sender = Sender {
        rx,
        transport,
        stats: stats.clone(),
        deadline: deadline.clone(),
        session: session_id(),
        seq: 0,
        queue: VecDeque::new(),
        held: 0,
        held_metrics: 0,
        carried: Vec::new(),
        agent_id: config.agent_id.clone(),
        buffer_spans: config.buffer_spans,
        buffer_metric_rows: config.buffer_metric_rows,
        retry_min: config.retry_min,
        retry_max: config.retry_max,
    };
    let thread = std::thread::Builder::new()
        .name("causeway-export".into())
        .spawn(move || sender.run())
        .ok();
    let sink = ExportSink {
        encoder: match &config.proc_root {
            Some(root) => Encoder::new(&config.host).with_process_names(ProcessNames::new(root)),
            None => Encoder::new(&config.host),
        },
        red: Aggregator::new(config.red.clone()),
        spans: Vec::with_capacity(config.batch_spans),
        flows: Vec::new(),
        metrics: Vec::new(),
        carried: Vec::new(),
        tx,
        batch_spans: config.batch_spans.max(1),
        buffer_metric_rows: config.buffer_metric_rows,
        stats: stats.clone(),
    };
    (
        sink,
        ExportHandle {
            thread,
            deadline,
            stats,
        },
    )
}

/// A session id: different for every agent start.
fn session_id() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    xxhash_rust::xxh3::xxh3_64(
        &[t.to_le_bytes(), (std::process::id() as u64).to_le_bytes()].concat(),
    )
}

struct Sender {
    rx: Receiver<Handoff>,
    transport: Box<dyn Transport>,
    stats: Arc<ExportStats>,
    deadline: Arc<Mutex<Option<Instant>>>,
    agent_id: String,
    session: u64,
    seq: u64,
    queue: VecDeque<Batch>,
    /// Spans in `queue`.
    held: usize,
    /// Metric rows in `queue`.
    held_metrics: usize,
    /// Tags of dropped batches, for the next batch queued.
    carried: Vec<Tag>,
    buffer_spans: usize,
    buffer_metric_rows: usize,
    retry_min: Duration,
    retry_max: Duration,
}

impl Sender {
    fn enqueue(&mut self, h: Handoff) {
        let mut tags = std::mem::take(&mut self.carried);
        tags.extend(h.tags);
        let (mut spans, mut flows, mut metrics) = (h.spans, h.flows, h.metrics);
        if self.held + spans.len() + flows.len() > self.buffer_spans {
            self.stats
                .spans_dropped
                .fetch_add(spans.len() as u64, Relaxed);
            self.stats
                .flows_dropped
                .fetch_add(flows.len() as u64, Relaxed);
            spans = Vec::new();
            flows = Vec::new();
        }
        if self.held_metrics + metrics.len() > self.buffer_metric_rows {
            self.stats
                .metric_rows_dropped
                .fetch_add(metrics.len() as u64, Relaxed);
            metrics = Vec::new();
        }
        if spans.is_empty() && flows.is_empty() && metrics.is_empty() {
            self.carried = tags;
            return;
        }
        self.seq += 1;
        self.held += spans.len() + flows.len();
        self.held_metrics += metrics.len();
        self.note_held();
        self.queue.push_back(Batch {
            agent_id: self.agent_id.clone(),
            session: self.session,
            seq: self.seq,
            tags,
            spans,
            flows,
            metrics,
        });
    }

    fn note_held(&self) {
        self.stats.spans_held.store(self.held as u64, Relaxed);
        self.stats
            .metric_rows_held
            .store(self.held_metrics as u64, Relaxed);
    }

    fn pop_front(&mut self) -> Option<Batch> {
        let b = self.queue.pop_front()?;
        self.held -= b.spans.len() + b.flows.len();
        self.held_metrics -= b.metrics.len();
        self.note_held();
        Some(b)
    }

    fn note_error(&self, e: &PushError) {
        if let Ok(mut last) = self.stats.last_error.lock() {
            *last = e.to_string();
        }
    }

    fn run(mut self) {
        let mut closed = false;
        let mut backoff = self.retry_min;
        let mut retry_at: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let wait = match (self.queue.is_empty(), retry_at) {
                (true, _) => Duration::from_millis(100),
                (false, Some(t)) => t.saturating_duration_since(now),
                (false, None) => Duration::ZERO,
            };
            if !closed {
                match self.rx.recv_timeout(wait) {
                    Ok(h) => self.enqueue(h),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => closed = true,
                }
                while let Ok(h) = self.rx.try_recv() {
                    self.enqueue(h);
                }
            } else if !wait.is_zero() {
                std::thread::sleep(wait.min(Duration::from_millis(100)));
            }
            let deadline = self.deadline.lock().ok().and_then(|d| *d);
            if closed || deadline.is_some() {
                if self.queue.is_empty()
                    && (closed || deadline.is_some_and(|d| Instant::now() >= d))
                {
                    break;
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    while let Some(b) = self.pop_front() {
                        self.stats
                            .spans_dropped
                            .fetch_add(b.spans.len() as u64, Relaxed);
                        self.stats
                            .flows_dropped
                            .fetch_add(b.flows.len() as u64, Relaxed);
                        self.stats
                            .metric_rows_dropped
                            .fetch_add(b.metrics.len() as u64, Relaxed);
                    }
                    break;
                }
            }
            if retry_at.is_some_and(|t| Instant::now() < t) {
                continue;
            }
            let Some(batch) = self.queue.front() else {
                continue;
            };
            match self.transport.push(batch) {
                Ok(ack) => {
                    retry_at = None;
                    backoff = self.retry_min;
                    if let Some(b) = self.pop_front() {
                        self.stats
                            .spans_acked
                            .fetch_add(b.spans.len() as u64, Relaxed);
                        self.stats
                            .flows_acked
                            .fetch_add(b.flows.len() as u64, Relaxed);
                        self.stats
                            .metric_rows_acked
                            .fetch_add(b.metrics.len() as u64, Relaxed);
                        self.stats.batches_acked.fetch_add(1, Relaxed);
                        if ack.duplicate {
                            self.stats.batches_duplicate.fetch_add(1, Relaxed);
                        }
                    }
                }
                Err(e @ PushError::Refused(_)) => {
                    self.note_error(&e);
                    if let Some(b) = self.pop_front() {
                        self.stats
                            .spans_refused
                            .fetch_add(b.spans.len() as u64, Relaxed);
                        self.stats
                            .flows_refused
                            .fetch_add(b.flows.len() as u64, Relaxed);
                        self.stats
                            .metric_rows_refused
                            .fetch_add(b.metrics.len() as u64, Relaxed);
                        // Its tags may name later rows: they go on.
                        match self.queue.front_mut() {
                            Some(next) => next.tags.extend(b.tags),
                            None => self.carried.extend(b.tags),
                        }
                    }
                }
                Err(e) => {
                    self.note_error(&e);
                    self.stats.retries.fetch_add(1, Relaxed);
                    retry_at = Some(Instant::now() + backoff);
                    backoff = (backoff * 2).min(self.retry_max);
                }
            }
        }
        // Tags never sent are lost with the process: nothing refers to them.
    }
}

pub mod flows;
mod grpc;
pub use grpc::GrpcTransport;

#[cfg(test)]
mod tests;
