//! Causeway's kernel side: the BPF programs that see every socket read and
//! write on the host, their loading and attaching, and the decoding of what
//! they report into [`causeway_model::SocketEvent`]s.
//!
//! This is the only crate with FFI. The programs live in `bpf/*.bpf.c`, are
//! compiled by clang through libbpf-cargo at build time, and are loaded with
//! libbpf-rs. Only syscall tracepoints and uprobes are used: on the kernels
//! Causeway targets kprobes and fentry are unavailable (DESIGN.md, section 3).
//! Uprobes on OpenSSL's `SSL_read`/`SSL_write` give TLS plaintext; uprobes on
//! the Go runtime make goroutines pseudo-threads (see [`go_runtime`]).

mod event;
pub mod go_elf;
pub mod go_runtime;
pub mod go_tls;
mod preflight;
mod tls;

pub use event::{decode, DecodeError, HEADER_LEN};
pub use preflight::{preflight, PreflightError};

use causeway_model::SocketEvent;
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{MapCore, RingBufferBuilder};
use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[allow(clippy::all, unused_imports, dead_code)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/causeway.skel.rs"));
}
#[allow(clippy::all, unused_imports, dead_code)]
mod empty_skel {
    include!(concat!(env!("OUT_DIR"), "/empty.skel.rs"));
}

/// Largest payload prefix the kernel side can capture per syscall.
pub const MAX_PAYLOAD_CAP: u32 = 16384;
/// Payload prefix captured per syscall unless configured otherwise.
pub const DEFAULT_PAYLOAD_CAP: u32 = 1024;

/// What to load.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// Bytes of payload captured per syscall (at most [`MAX_PAYLOAD_CAP`]).
    pub payload_cap: u32,
    /// Trace only this process (by tgid); `None` traces every process.
    pub target_pid: Option<u32>,
    /// A thread's syscall trace id is not carried over a pause longer than this.
    pub trace_idle: Duration,
    /// How far the syscall trace ids of Go programs follow goroutines
    /// instead of threads.
    pub goroutines: GoroutineTracking,
}

/// How the Go runtime is probed ([`go_runtime`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GoroutineTracking {
    /// Not at all: trace ids follow threads; only Go TLS events carry the
    /// goroutine id.
    Off,
    /// Goroutines are known (every event carries its goroutine id) and a
    /// new goroutine takes over its creator's trace id.
    Spawn,
    /// As `Spawn`, and a value sent on a channel carries its sender's trace
    /// id to its receiver. Costs a uprobe hit per channel operation.
    #[default]
    Channels,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            payload_cap: DEFAULT_PAYLOAD_CAP,
            target_pid: None,
            trace_idle: Duration::from_secs(60),
            goroutines: GoroutineTracking::default(),
        }
    }
}

/// Why the probes could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    #[error("payload cap {0} is outside 1..={MAX_PAYLOAD_CAP}")]
    PayloadCap(u32),
    #[error("{stage} failed: {source}")]
    Libbpf {
        stage: &'static str,
        #[source]
        source: libbpf_rs::Error,
    },
}

fn stage(stage: &'static str) -> impl FnOnce(libbpf_rs::Error) -> LoadError {
    move |source| LoadError::Libbpf { stage, source }
}

/// Counters the kernel side keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelCounters {
    /// Events dropped because the ring buffer was full.
    pub lost: u64,
    /// The goroutine trace states of Go processes.
    pub go: GoCounters,
}

/// What became of the per-goroutine trace states (see [`go_runtime`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GoCounters {
    /// States stored (a goroutine's first socket I/O, or one taken over).
    pub created: u64,
    /// Goroutines that took over their creator's trace id.
    pub spawn_inherited: u64,
    /// Goroutines that took over a channel sender's trace id.
    pub handoff_inherited: u64,
    /// States deleted when their goroutine ended.
    pub exited: u64,
    /// States dropped because their goroutine took "no trace id" over a
    /// channel.
    pub dropped: u64,
    /// States deleted because their process had ended.
    pub swept: u64,
    /// States live at the last sweep.
    pub live: u64,
    /// States the bounded map evicted before their goroutine ended (as of
    /// the last sweep): their goroutines' next messages start new ids.
    pub evicted: u64,
    /// Goroutine or channel states that could not be stored at all.
    pub failed: u64,
}

/// The loaded and attached programs. Dropping it detaches them.
pub struct Probes {
    skel: skel::CausewaySkel<'static>,
    tls: std::sync::Mutex<tls::TlsProbes>,
    goroutines: GoroutineTracking,
    /// States removed by [`Probes::sweep_go_states`], and what it last saw.
    go_sweep: std::sync::Mutex<(u64, u64, u64)>,
}

/// How often running processes are scanned for TLS libraries not yet probed.
const TLS_RESCAN: Duration = Duration::from_secs(5);

impl Probes {
    /// Checks prerequisites, loads the programs and attaches every tracepoint.
    pub fn load(config: &ProbeConfig) -> Result<Probes, LoadError> {
        if config.payload_cap == 0 || config.payload_cap > MAX_PAYLOAD_CAP {
            return Err(LoadError::PayloadCap(config.payload_cap));
        }
        preflight()?;
        // The skeleton borrows its object for as long as it lives; the probes
        // live for the agent's lifetime, so the object slot is leaked once.
        let object: &'static mut MaybeUninit<libbpf_rs::OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let mut open = skel::CausewaySkelBuilder::default()
            .open(object)
            .map_err(stage("opening the BPF object"))?;
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.self_tgid = std::process::id();
            ro.target_tgid = config.target_pid.unwrap_or(0);
            ro.payload_cap = config.payload_cap;
            ro.trace_idle_ns = config.trace_idle.as_nanos().min(u64::MAX as u128) as u64;
        }
        let cpus = libbpf_rs::num_possible_cpus().map_err(stage("counting CPUs"))?;
        open.maps
            .scratch
            .set_max_entries(cpus as u32)
            .map_err(stage("sizing the scratch map"))?;
        let mut skel = open.load().map_err(stage("loading the BPF programs"))?;
        skel.attach().map_err(stage("attaching the tracepoints"))?;
        let probes = Probes {
            skel,
            tls: std::sync::Mutex::new(tls::TlsProbes::default()),
            goroutines: config.goroutines,
            go_sweep: std::sync::Mutex::new((0, 0, 0)),
        };
        probes.scan_tls();
        Ok(probes)
    }

    /// Attaches the OpenSSL probes to libraries not yet probed.
    fn scan_tls(&self) -> usize {
        let p = &self.skel.progs;
        let progs = tls::SslPrograms {
            write: &p.ssl_write_enter,
            read: &p.ssl_read_enter,
            write_ex: &p.ssl_write_ex_enter,
            read_ex: &p.ssl_read_ex_enter,
            ret: &p.ssl_return,
            go_read: &p.go_tls_read_enter,
            go_write: &p.go_tls_write_enter,
            go_ret: &p.go_tls_return,
            go_runtime: (self.goroutines != GoroutineTracking::Off).then_some(
                tls::GoRuntimePrograms {
                    newproc_runqput: &p.go_newproc_runqput,
                    newproc1: &p.go_newproc1,
                    newproc1_ret: &p.go_newproc1_return,
                    channels: (self.goroutines == GoroutineTracking::Channels).then_some([
                        &p.go_chansend,
                        &p.go_chanrecv,
                        &p.go_selectgo,
                    ]),
                    goexit1: &p.go_goexit1,
                },
            ),
        };
        self.tls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .scan(&progs)
    }

    /// The Go executables whose runtime is probed, with their Go version.
    pub fn go_runtimes(&self) -> Vec<(std::path::PathBuf, String)> {
        self.tls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .go_runtimes
            .clone()
    }

    /// Deletes what the Go maps hold for processes that have ended
    /// (goroutines still running at exit never reach `runtime.goexit1`),
    /// and counts the goroutine states left, from which the LRU's
    /// evictions follow.
    pub fn sweep_go_states(&self) {
        let mut alive: std::collections::HashMap<u32, bool> = Default::default();
        let mut up = |tgid: u32| {
            *alive
                .entry(tgid)
                .or_insert_with(|| std::path::Path::new(&format!("/proc/{tgid}")).exists())
        };
        let m = &self.skel.maps;
        // go_traces and go_chans: {u64, u32 tgid, pad}; go_procs: u32 tgid.
        let (swept, live) = sweep_dead(&m.go_traces, 8, &mut up);
        sweep_dead(&m.go_chans, 8, &mut up);
        sweep_dead(&m.go_procs, 0, &mut up);
        let mut s = self.go_sweep.lock().unwrap_or_else(|e| e.into_inner());
        s.0 += swept;
        s.1 = live;
        let c = self.read_go_counters();
        s.2 = c
            .created
            .saturating_sub(c.exited)
            .saturating_sub(c.dropped)
            .saturating_sub(s.0)
            .saturating_sub(live);
    }

    fn read_go_counters(&self) -> GoCounters {
        let Some(b) = self.skel.maps.bss_data.as_deref() else {
            return GoCounters::default();
        };
        // SAFETY: bss is a live mmap of the map; volatile reads see the
        // kernel's updates and aligned u64 reads cannot tear.
        let rd = |v: &u64| unsafe { std::ptr::read_volatile(v) };
        GoCounters {
            created: rd(&b.go_states_created),
            spawn_inherited: rd(&b.go_spawn_inherited),
            handoff_inherited: rd(&b.go_handoff_inherited),
            exited: rd(&b.go_states_exited),
            dropped: rd(&b.go_states_dropped),
            failed: rd(&b.go_state_failed),
            ..GoCounters::default()
        }
    }

    /// The Go executables whose crypto/tls plaintext is traced, with their Go version.
    pub fn go_binaries(&self) -> Vec<(std::path::PathBuf, String)> {
        self.tls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .go_binaries
            .clone()
    }

    /// The TLS libraries whose plaintext is traced.
    pub fn tls_libraries(&self) -> Vec<std::path::PathBuf> {
        self.tls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .libraries
            .clone()
    }

    /// Counters kept by the kernel side, read live.
    pub fn counters(&self) -> KernelCounters {
        let lost = self
            .skel
            .maps
            .bss_data
            .as_deref()
            .map(|b| {
                // SAFETY: bss is a live mmap of the map; a volatile read sees
                // the kernel's updates and an aligned u64 read cannot tear.
                unsafe { std::ptr::read_volatile(&b.lost_events) }
            })
            .unwrap_or(0);
        let mut go = self.read_go_counters();
        let s = *self.go_sweep.lock().unwrap_or_else(|e| e.into_inner());
        (go.swept, go.live, go.evicted) = s;
        KernelCounters { lost, go }
    }

    /// Delivers events to `sink` until `stop` is set, calling
    /// [`EventSink::on_tick`] at least every `tick` so time-based work (timeouts,
    /// flushes) runs even when no event arrives.
    pub fn run(
        &self,
        sink: &mut dyn EventSink,
        stop: &AtomicBool,
        tick: Duration,
    ) -> Result<(), libbpf_rs::Error> {
        let sink = RefCell::new(sink);
        let mut builder = RingBufferBuilder::new();
        builder.add(&self.skel.maps.events, |record: &[u8]| {
            let mut sink = sink.borrow_mut();
            match decode(record) {
                Ok(ev) => sink.on_event(ev),
                Err(e) => sink.on_decode_error(e),
            }
            0
        })?;
        let ring = builder.build()?;
        let mut last_scan = std::time::Instant::now();
        while !stop.load(Ordering::Relaxed) {
            if last_scan.elapsed() >= TLS_RESCAN {
                last_scan = std::time::Instant::now();
                self.scan_tls();
                if self.goroutines != GoroutineTracking::Off {
                    self.sweep_go_states();
                }
            }
            // The kernel side wakes this poll only once a batch has built up;
            // below that, records wait for the end of the tick.
            match ring.poll(tick) {
                Ok(()) => {}
                // A signal (Ctrl-C) interrupts epoll: check `stop` and go on.
                Err(e) if e.kind() == libbpf_rs::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            ring.consume()?;
            sink.borrow_mut().on_tick();
        }
        // Whatever is already in the ring belongs to the run.
        ring.consume()?;
        sink.borrow_mut().on_tick();
        if self.goroutines != GoroutineTracking::Off {
            self.sweep_go_states();
        }
        Ok(())
    }

    /// The ring buffer map, for callers that want to poll it themselves.
    pub fn events_map(&self) -> &dyn MapCore {
        &self.skel.maps.events
    }
}

/// Deletes the entries of `map` whose key holds at `tgid_at` a process that
/// `up` says has ended; returns (deleted, kept).
fn sweep_dead(map: &dyn MapCore, tgid_at: usize, up: &mut dyn FnMut(u32) -> bool) -> (u64, u64) {
    let (mut swept, mut live) = (0u64, 0u64);
    // A hash map iterated while the kernel changes it may restart from its
    // first key: bounded by its size.
    let max = map.info().map_or(1 << 20, |i| i.info.max_entries as usize);
    let keys: Vec<Vec<u8>> = map.keys().take(max).collect();
    for key in keys {
        let Some(tgid) = key
            .get(tgid_at..tgid_at + 4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        else {
            continue;
        };
        if up(tgid) {
            live += 1;
        } else if map.delete(&key).is_ok() {
            swept += 1;
        }
    }
    (swept, live)
}

/// The consumer of decoded events.
pub trait EventSink {
    fn on_event(&mut self, event: SocketEvent<'_>);
    /// Called between polls, at least once per tick.
    fn on_tick(&mut self) {}
    /// A record the decoder rejected; the default drops it.
    fn on_decode_error(&mut self, _error: DecodeError) {}
}

/// Programs that do nothing, attached to the same tracepoints as [`Probes`]:
/// the baseline of the per-syscall overhead benchmark.
pub struct EmptyProbes {
    _skel: empty_skel::EmptySkel<'static>,
}

impl EmptyProbes {
    pub fn load() -> Result<EmptyProbes, LoadError> {
        preflight()?;
        let object: &'static mut MaybeUninit<libbpf_rs::OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let open = empty_skel::EmptySkelBuilder::default()
            .open(object)
            .map_err(stage("opening the empty BPF object"))?;
        let mut skel = open.load().map_err(stage("loading the empty programs"))?;
        skel.attach()
            .map_err(stage("attaching the empty programs"))?;
        Ok(EmptyProbes { _skel: skel })
    }
}
