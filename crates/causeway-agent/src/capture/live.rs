//! Live packet capture: interfaces read through libpcap (TPACKET_V3
//! memory-mapped rings underneath), decoded and put through a
//! [`FlowTable`] and a network-side [`Pipeline`] on a thread of their own.
//!
//! ```text
//! libpcap rings ─► capture thread: packet::decode ─► FlowTable ─► Pipeline
//! (one per          (nonblocking reads, poll)                       │
//!  interface, or                         flow reports, network spans │
//!  "any")                                 bounded queue (try_send) ◄─┘
//!                                                  │
//!               agent thread: LiveCapture::drain ──► SpanSink (export)
//! ```
//!
//! Why this shape: the capture thread never waits for anything but the
//! rings. What it makes goes to the agent's sink through a bounded queue
//! with `try_send`; when the queue is full the report or span is dropped
//! and counted ([`LiveStats`]), never held. When the thread itself falls
//! behind, the kernel drops packets from the rings and libpcap counts them
//! (`dropped`, `if_dropped`), which the stats report too.
//!
//! Interfaces: with none named, libpcap's `any` pseudo-device in Linux
//! cooked v2 framing, which names each packet's interface (its index) and
//! so keeps flows on different interfaces apart; named interfaces get a
//! handle each. On a raw AF_PACKET socket a loopback packet is seen twice
//! (outgoing, then incoming); libpcap drops the outgoing copy on `lo`
//! (and on `any` for `lo`'s index), so each is counted once.
//!
//! A BPF filter (`--capture-filter`, tcpdump syntax) is compiled by
//! libpcap and runs in the kernel: filtered packets cost nothing here.

use super::flows::{FlowConfig, FlowTable};
use super::packet;
use super::{hand_over_reports, L7Tally};
use crate::pipeline::{Pipeline, PipelineConfig, SpanSink};
use crate::WallClock;
use causeway_model::{Flow, ObservationPoint, Span};
use pcap_file::DataLink;
use std::collections::HashSet;
use std::os::unix::io::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Why live capture could not start.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    // The libpcap error is said in the message, not chained as a source
    // too (it would be printed twice).
    #[error("opening interface {interface}: {error}")]
    Open {
        interface: String,
        error: pcap::Error,
    },
    #[error("capture filter {filter:?}: {error}")]
    Filter { filter: String, error: pcap::Error },
    #[error("starting the capture thread: {0}")]
    Thread(std::io::Error),
}

/// What to capture and how.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// Interfaces by name; empty: all (libpcap's `any`, `lo` included).
    pub interfaces: Vec<String>,
    /// A BPF filter in tcpdump syntax, applied in the kernel.
    pub filter: Option<String>,
    pub flow: FlowConfig,
    /// The network-side pipeline (its observation point is set to
    /// `network`; its clock is the packets').
    pub pipeline: PipelineConfig,
    /// Hand the network spans on (else they are only counted into their
    /// flows' reports).
    pub spans: bool,
    /// Kernel ring per handle, bytes.
    pub ring_bytes: usize,
    /// Reports and spans queued for the agent's sink at most.
    pub queue: usize,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            interfaces: Vec::new(),
            filter: None,
            flow: FlowConfig::default(),
            pipeline: PipelineConfig::default(),
            spans: false,
            ring_bytes: 32 << 20,
            queue: 65_536,
        }
    }
}

/// Counters of a live capture, updated as it runs.
#[derive(Debug, Default)]
pub struct LiveStats {
    /// Frames read from the rings.
    pub packets: AtomicU64,
    /// Frames that were not TCP or UDP over IP, or whose headers were cut.
    pub skipped: AtomicU64,
    /// Dropped by the kernel: the ring was full (libpcap's `ps_drop`), or
    /// by the interface (`ps_ifdrop`).
    pub kernel_dropped: AtomicU64,
    pub if_dropped: AtomicU64,
    /// Flow reports made, and those dropped because the agent's queue
    /// was full.
    pub flow_reports: AtomicU64,
    pub flow_reports_dropped: AtomicU64,
    /// Network spans handed on, and dropped (queue full).
    pub spans: AtomicU64,
    pub spans_dropped: AtomicU64,
    /// Flows begun.
    pub flows: AtomicU64,
}

impl LiveStats {
    /// One line for the exit summary.
    pub fn summary(&self) -> String {
        format!(
            "{} packets captured ({} not TCP/UDP), {} dropped by the kernel, {} by interfaces; \
             {} flows, {} flow reports ({} dropped), {} network spans ({} dropped)",
            self.packets.load(Relaxed),
            self.skipped.load(Relaxed),
            self.kernel_dropped.load(Relaxed),
            self.if_dropped.load(Relaxed),
            self.flows.load(Relaxed),
            self.flow_reports.load(Relaxed),
            self.flow_reports_dropped.load(Relaxed),
            self.spans.load(Relaxed),
            self.spans_dropped.load(Relaxed),
        )
    }
}

enum Out {
    Span(Span),
    Flow(Flow),
}

/// A running live capture.
pub struct LiveCapture {
    rx: Receiver<Out>,
    stats: Arc<LiveStats>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// One opened interface (or `any`).
struct Handle {
    cap: pcap::Capture<pcap::Active>,
    link: DataLink,
    /// The interface index of every packet (0 for `any`: read from the
    /// cooked header).
    ifindex: u32,
    /// Kernel counters already added to the stats.
    seen_drop: u64,
    seen_ifdrop: u64,
}

/// The index of interface `name` (0 when unknown).
fn if_index(name: &str) -> u32 {
    std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// The name of interface `index`, looked up once per index.
fn if_name(index: u32) -> Option<String> {
    let dir = std::fs::read_dir("/sys/class/net").ok()?;
    dir.flatten()
        .find(|e| if_index(&e.file_name().to_string_lossy()) == index)
        .map(|e| e.file_name().to_string_lossy().into_owned())
}

fn open(name: &str, config: &LiveConfig) -> Result<Handle, LiveError> {
    let err = |error| LiveError::Open {
        interface: name.to_owned(),
        error,
    };
    let mut cap = pcap::Capture::from_device(name)
        .map_err(err)?
        .promisc(false)
        .snaplen(65_535)
        .immediate_mode(true)
        .precision(pcap::Precision::Nano)
        .buffer_size(config.ring_bytes.min(i32::MAX as usize) as i32)
        .timeout(100)
        .open()
        .map_err(err)?;
    let any = name == "any";
    if any {
        cap.set_datalink(pcap::Linktype::LINUX_SLL2).map_err(err)?;
    }
    if let Some(f) = &config.filter {
        cap.filter(f, true).map_err(|error| LiveError::Filter {
            filter: f.clone(),
            error,
        })?;
    }
    let cap = cap.setnonblock().map_err(err)?;
    let link = DataLink::from(cap.get_datalink().0 as u32);
    Ok(Handle {
        cap,
        link,
        ifindex: if any { 0 } else { if_index(name) },
        seen_drop: 0,
        seen_ifdrop: 0,
    })
}

/// Reads at most this many frames from one handle before turning to the
/// next and to the clock.
const BURST: usize = 256;

impl LiveCapture {
    /// Opens the interfaces (errors surface here, before any thread) and
    /// starts the capture thread.
    pub fn start(config: LiveConfig) -> Result<LiveCapture, LiveError> {
        let names: Vec<String> = if config.interfaces.is_empty() {
            vec!["any".into()]
        } else {
            config.interfaces.clone()
        };
        let handles = names
            .iter()
            .map(|n| open(n, &config))
            .collect::<Result<Vec<_>, _>>()?;
        let (tx, rx) = mpsc::sync_channel(config.queue.max(1));
        let stats = Arc::new(LiveStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut table = FlowTable::new(config.flow.clone());
        for h in &handles {
            if h.ifindex != 0 {
                if let Some(n) = if_name(h.ifindex) {
                    table.name_interface(h.ifindex, &n);
                }
            }
        }
        let mut pipeline_config = config.pipeline.clone();
        pipeline_config.observation_point = Some(ObservationPoint::Network);
        let worker = Worker {
            handles,
            table,
            tally: L7Tally::default(),
            pipeline: Pipeline::new(pipeline_config, WallClock::identity()),
            out: QueueSink {
                tx,
                stats: stats.clone(),
                spans: config.spans,
            },
            stats: stats.clone(),
            names: HashSet::new(),
        };
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("causeway-packets".into())
            .spawn(move || worker.run(&stop2))
            .map_err(LiveError::Thread)?;
        Ok(LiveCapture {
            rx,
            stats,
            stop,
            thread: Some(thread),
        })
    }

    pub fn stats(&self) -> &Arc<LiveStats> {
        &self.stats
    }

    /// Hands what the capture thread made so far to `sink`; never waits.
    pub fn drain(&self, sink: &mut dyn SpanSink) {
        while let Ok(o) = self.rx.try_recv() {
            match o {
                Out::Span(s) => sink.on_span(s),
                Out::Flow(f) => sink.on_flow(f),
            }
        }
    }

    /// Stops capture: every flow is reported (`capture_end` unless it
    /// closed or timed out), and everything is handed to `sink`.
    pub fn finish(mut self, sink: &mut dyn SpanSink) -> Arc<LiveStats> {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            // The thread ends within one poll timeout; drain meanwhile so
            // its last reports find room.
            while !t.is_finished() {
                self.drain(sink);
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = t.join();
        }
        self.drain(sink);
        self.stats.clone()
    }
}

impl Drop for LiveCapture {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
    }
}

/// A [`SpanSink`] that wraps the agent's sink and, before each flush,
/// hands it what the live capture made.
pub struct WithPackets<'a> {
    pub inner: &'a mut dyn SpanSink,
    pub live: &'a LiveCapture,
}

impl SpanSink for WithPackets<'_> {
    fn on_span(&mut self, span: Span) {
        self.inner.on_span(span);
    }
    fn on_flow(&mut self, flow: Flow) {
        self.inner.on_flow(flow);
    }
    fn flush(&mut self) {
        self.live.drain(self.inner);
        self.inner.flush();
    }
}

/// The capture thread's end of the queue.
struct QueueSink {
    tx: SyncSender<Out>,
    stats: Arc<LiveStats>,
    spans: bool,
}

impl SpanSink for QueueSink {
    fn on_span(&mut self, span: Span) {
        if !self.spans {
            return;
        }
        match self.tx.try_send(Out::Span(span)) {
            Ok(()) => self.stats.spans.fetch_add(1, Relaxed),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats.spans_dropped.fetch_add(1, Relaxed)
            }
        };
    }
    fn on_flow(&mut self, flow: Flow) {
        self.stats.flow_reports.fetch_add(1, Relaxed);
        if self.tx.try_send(Out::Flow(flow)).is_err() {
            self.stats.flow_reports_dropped.fetch_add(1, Relaxed);
        }
    }
}

struct Worker {
    handles: Vec<Handle>,
    table: FlowTable,
    tally: L7Tally,
    pipeline: Pipeline,
    out: QueueSink,
    stats: Arc<LiveStats>,
    /// Interface indexes already named in the table.
    names: HashSet<u32>,
}

fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl Worker {
    fn run(mut self, stop: &AtomicBool) {
        let mut fds: Vec<libc::pollfd> = self
            .handles
            .iter()
            .map(|h| libc::pollfd {
                fd: h.cap.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let mut last_tick = 0u64;
        while !stop.load(Relaxed) {
            // SAFETY: `fds` is a valid array of pollfd for its length.
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 100) };
            let mut read = 0;
            for i in 0..self.handles.len() {
                read += self.read_burst(i);
            }
            let now = wall_ns();
            if read == 0 || now.saturating_sub(last_tick) >= 100_000_000 {
                last_tick = now;
                self.tick(now);
            }
        }
        // What the rings still hold belongs to the run.
        for i in 0..self.handles.len() {
            while self.read_burst(i) > 0 {}
        }
        self.note_drops();
        let now = wall_ns();
        let Worker {
            table,
            tally,
            pipeline,
            out,
            ..
        } = &mut self;
        {
            let mut counting = tally.counting(out);
            table.finish(now, &mut |e| pipeline.on_event(e, &mut counting));
            pipeline.tick(now.saturating_add(3_600_000_000_000), &mut counting);
        }
        hand_over_reports(table, tally, out);
        self.stats.flows.store(self.table.stats().flows, Relaxed);
    }

    fn tick(&mut self, now: u64) {
        let Worker {
            table,
            tally,
            pipeline,
            out,
            ..
        } = self;
        {
            let mut counting = tally.counting(out);
            table.tick(now, &mut |e| pipeline.on_event(e, &mut counting));
            pipeline.tick(now, &mut counting);
        }
        hand_over_reports(table, tally, out);
        self.stats.flows.store(self.table.stats().flows, Relaxed);
        self.note_drops();
    }

    fn note_drops(&mut self) {
        for h in &mut self.handles {
            if let Ok(s) = h.cap.stats() {
                let (d, i) = (u64::from(s.dropped), u64::from(s.if_dropped));
                self.stats
                    .kernel_dropped
                    .fetch_add(d.saturating_sub(h.seen_drop), Relaxed);
                self.stats
                    .if_dropped
                    .fetch_add(i.saturating_sub(h.seen_ifdrop), Relaxed);
                h.seen_drop = h.seen_drop.max(d);
                h.seen_ifdrop = h.seen_ifdrop.max(i);
            }
        }
    }

    /// Reads up to [`BURST`] frames from handle `i`; returns how many.
    fn read_burst(&mut self, i: usize) -> usize {
        let Worker {
            handles,
            table,
            tally,
            pipeline,
            out,
            stats,
            names,
        } = self;
        let h = &mut handles[i];
        let mut n = 0;
        while n < BURST {
            let p = match h.cap.next_packet() {
                Ok(p) => p,
                Err(_) => break,
            };
            n += 1;
            stats.packets.fetch_add(1, Relaxed);
            let ts = p.header.ts;
            // Nanosecond precision: tv_usec holds nanoseconds.
            let ts_ns = (ts.tv_sec as u64)
                .saturating_mul(1_000_000_000)
                .saturating_add(ts.tv_usec as u64);
            let data = p.data;
            let ifindex = if h.link == DataLink::LINUX_SLL2 {
                match data.get(4..8) {
                    Some(b) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                    None => 0,
                }
            } else {
                h.ifindex
            };
            if ifindex != 0 && names.insert(ifindex) {
                if let Some(name) = if_name(ifindex) {
                    table.name_interface(ifindex, &name);
                }
            }
            match packet::decode(h.link, data) {
                Ok(seg) => {
                    let mut counting = tally.counting(out);
                    table.on_packet(ts_ns, ifindex, &seg, &mut |e| {
                        pipeline.on_event(e, &mut counting)
                    });
                }
                Err(_) => {
                    stats.skipped.fetch_add(1, Relaxed);
                }
            }
        }
        if n > 0 {
            hand_over_reports(table, tally, out);
        }
        n
    }
}
