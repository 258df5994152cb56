//! The capture every agent-side command shares (`watch`, `up`, `agent`):
//! its flags, loading the probes, and feeding the pipeline until stopped.

use crate::duration;
use crate::output::{self, parse_port_protocol, parse_protobuf_rpc, STOP};
use anyhow::{bail, Context, Result};
use causeway_agent::{EventFilter, Pipeline, PipelineConfig, ProbeDriver, SpanSink, WallClock};
use causeway_bpf::{GoroutineTracking, ProbeConfig, Probes, DEFAULT_PAYLOAD_CAP, MAX_PAYLOAD_CAP};
use causeway_model::L7Protocol;
use clap::Args;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct CaptureArgs {
    /// Only this process (by pid); filtered in the kernel.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Only threads with this command name.
    #[arg(long)]
    pub comm: Option<String>,
    /// Only sockets with this port at either end.
    #[arg(long)]
    pub port: Option<u16>,
    /// Payload bytes captured per syscall (at most 16384).
    #[arg(long, default_value_t = DEFAULT_PAYLOAD_CAP)]
    pub payload_cap: u32,
    /// Port N speaks protocol X (repeatable): `--port-protocol 6380=redis`.
    /// Sockets with that port at either end skip inference.
    #[arg(long = "port-protocol", value_name = "PORT=PROTOCOL", value_parser = parse_port_protocol)]
    pub port_protocols: Vec<(u16, L7Protocol)>,
    /// Port N speaks ProtobufRPC (repeatable), with the meta's field paths
    /// when not brpc's: `--protobuf-rpc 8002=service:1.1,method:1.2,request_id:4,status:2.1,message:2.2`.
    #[arg(long = "protobuf-rpc", value_name = "PORT[=FIELDS]", value_parser = parse_protobuf_rpc)]
    pub protobuf_rpc: Vec<(u16, causeway_agent::protobuf_rpc::Config)>,
    /// An unanswered request becomes a timeout span after this long.
    #[arg(long, value_parser = duration::parse, default_value = "60s")]
    pub timeout: Duration,
    /// Stop after this long (e.g. 10s, 2m); default: until Ctrl-C.
    #[arg(long, value_parser = duration::parse)]
    pub duration: Option<Duration>,
    /// How far Go programs' syscall trace ids follow goroutines rather
    /// than threads: `channels` (a new goroutine and a channel's receiver
    /// take over the id of their creator / sender), `spawn` (new goroutines
    /// only; no probe on channel operations), `off` (threads; plain Go
    /// events carry no goroutine id).
    #[arg(long, value_enum, default_value_t = Goroutines::Channels)]
    pub goroutine_tracking: Goroutines,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goroutines {
    Channels,
    Spawn,
    Off,
}

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// SIGINT and SIGTERM set [`STOP`].
pub fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = on_signal as *const () as usize;
            libc::sigemptyset(&mut act.sa_mask);
            libc::sigaction(sig, &act, std::ptr::null_mut());
        }
    }
}

/// The probes, loaded and attached.
pub struct Capture {
    probes: Probes,
    pipeline: Pipeline,
}

impl Capture {
    /// Loads the probes; fails with what is missing (root, BTF, tracefs).
    pub fn start(args: &CaptureArgs) -> Result<Capture> {
        if args.payload_cap == 0 || args.payload_cap > MAX_PAYLOAD_CAP {
            bail!("--payload-cap must be between 1 and {MAX_PAYLOAD_CAP}");
        }
        let probes = Probes::load(&ProbeConfig {
            payload_cap: args.payload_cap,
            target_pid: args.pid,
            goroutines: match args.goroutine_tracking {
                Goroutines::Channels => GoroutineTracking::Channels,
                Goroutines::Spawn => GoroutineTracking::Spawn,
                Goroutines::Off => GoroutineTracking::Off,
            },
            ..ProbeConfig::default()
        })
        .context("cannot start the eBPF probes")?;
        if let Some(d) = args.duration {
            std::thread::spawn(move || {
                std::thread::sleep(d);
                STOP.store(true, Ordering::Relaxed);
            });
        }
        let pipeline = Pipeline::new(
            PipelineConfig {
                filter: EventFilter {
                    pid: args.pid,
                    comm: args.comm.clone(),
                    port: args.port,
                },
                request_timeout: args.timeout,
                port_protocols: output::port_protocols(&args.port_protocols, &args.protobuf_rpc),
                protobuf_rpc: args.protobuf_rpc.clone(),
                ..PipelineConfig::default()
            },
            WallClock::now(),
        );
        Ok(Capture { probes, pipeline })
    }

    /// What the probes cover, for the opening line.
    pub fn coverage(&self) -> String {
        let (tls, go, rt) = (
            self.probes.tls_libraries().len(),
            self.probes.go_binaries().len(),
            self.probes.go_runtimes().len(),
        );
        let plural =
            |n: usize, one: &'static str, many: &'static str| if n == 1 { one } else { many };
        format!(
            "TLS plaintext through {tls} OpenSSL {} and {go} Go {}, goroutines of {rt} Go {} \
             (more as they start)",
            plural(tls, "library", "libraries"),
            plural(go, "executable", "executables"),
            plural(rt, "executable", "executables"),
        )
    }

    /// Feeds spans to `sink` until [`STOP`]; returns the closing summary.
    pub fn run(mut self, sink: &mut dyn SpanSink) -> Result<String> {
        let probes = &self.probes;
        let lost = || probes.counters().lost;
        let mut driver = ProbeDriver {
            pipeline: &mut self.pipeline,
            sink,
            lost: &lost,
        };
        probes
            .run(&mut driver, &STOP, Duration::from_millis(100))
            .context("reading the ring buffer")?;
        let kernel = probes.counters();
        self.pipeline.note_kernel_lost(kernel.lost);
        let s = self.pipeline.stats();
        let g = kernel.go;
        let go = if probes.go_runtimes().is_empty() {
            String::new()
        } else {
            format!(
                "; goroutine trace states: {} stored ({} taken over at go statements, {} at \
                 channel hand-offs), {} ended with their goroutine, {} with their process, \
                 {} evicted early, {} not stored",
                g.created,
                g.spawn_inherited,
                g.handoff_inherited,
                g.exited,
                g.swept,
                g.evicted,
                g.failed
            )
        };
        Ok(format!(
            "{} events captured, {} lost (ring buffer full), {} undecodable; {}{go}",
            s.events,
            s.kernel_lost,
            s.decode_errors,
            output::pipeline_summary(s)
        ))
    }
}

impl Capture {
    /// [`Capture::run`] with packet capture beside it (when `live`): its
    /// flow reports and network spans reach `sink` on every tick, and
    /// when capture stops its flows are reported before `sink` is
    /// flushed. Returns the probes' summary and the packets'.
    pub fn run_with_packets(
        self,
        sink: &mut dyn SpanSink,
        live: Option<causeway_agent::capture::live::LiveCapture>,
    ) -> Result<(String, Option<String>)> {
        let Some(live) = live else {
            return Ok((self.run(sink)?, None));
        };
        let summary = self.run(&mut causeway_agent::capture::live::WithPackets {
            inner: &mut *sink,
            live: &live,
        })?;
        let stats = live.finish(sink);
        sink.flush();
        Ok((summary, Some(stats.summary())))
    }
}

/// This host's name (the `host` tag).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
