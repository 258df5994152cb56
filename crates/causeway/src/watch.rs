//! `causeway watch`: load the probes, run the capture pipeline in this
//! process, and print each span as it completes.

use crate::duration;
use anyhow::{bail, Context, Result};
use causeway_agent::{EventFilter, Pipeline, PipelineConfig, ProbeDriver, WallClock};
use causeway_bpf::{ProbeConfig, Probes, DEFAULT_PAYLOAD_CAP, MAX_PAYLOAD_CAP};
use causeway_model::{L7Protocol, Span};
use clap::{Args, ValueEnum};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Only this process (by pid); filtered in the kernel.
    #[arg(long)]
    pid: Option<u32>,
    /// Only threads with this command name.
    #[arg(long)]
    comm: Option<String>,
    /// Only sockets with this port at either end.
    #[arg(long)]
    port: Option<u16>,
    /// Only this application protocol (http, redis, mysql, postgresql).
    #[arg(long, value_parser = parse_protocol)]
    protocol: Option<L7Protocol>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Stop after this long (e.g. 10s, 2m); default: until Ctrl-C.
    #[arg(long, value_parser = duration::parse)]
    duration: Option<Duration>,
    /// Payload bytes captured per syscall (at most 16384).
    #[arg(long, default_value_t = DEFAULT_PAYLOAD_CAP)]
    payload_cap: u32,
    /// An unanswered request becomes a timeout span after this long.
    #[arg(long, value_parser = duration::parse, default_value = "60s")]
    timeout: Duration,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Format {
    Table,
    Json,
}

fn parse_protocol(s: &str) -> Result<L7Protocol, String> {
    L7Protocol::from_name(s)
        .ok_or_else(|| format!("unknown protocol {s:?}; known: http, redis, mysql, postgresql"))
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn install_signal_handlers() {
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

pub fn run(args: WatchArgs) -> Result<()> {
    if args.payload_cap == 0 || args.payload_cap > MAX_PAYLOAD_CAP {
        bail!("--payload-cap must be between 1 and {MAX_PAYLOAD_CAP}");
    }
    let probes = Probes::load(&ProbeConfig {
        payload_cap: args.payload_cap,
        target_pid: args.pid,
        ..ProbeConfig::default()
    })
    .context("cannot start the eBPF probes")?;
    install_signal_handlers();
    if let Some(d) = args.duration {
        std::thread::spawn(move || {
            std::thread::sleep(d);
            STOP.store(true, Ordering::Relaxed);
        });
    }
    let mut pipeline = Pipeline::new(
        PipelineConfig {
            filter: EventFilter {
                pid: args.pid,
                comm: args.comm.clone(),
                port: args.port,
            },
            request_timeout: args.timeout,
            ..PipelineConfig::default()
        },
        WallClock::now(),
    );
    let mut out = Printer {
        format: args.format,
        protocol: args.protocol,
        // Written out once per poll of the ring buffer, not per span: a write
        // syscall per line would cost the agent more than building the span.
        out: std::io::BufWriter::with_capacity(1 << 16, std::io::stdout()),
        header_done: false,
    };
    eprintln!("causeway: watching; Ctrl-C to stop");
    let lost = || probes.counters().lost;
    let mut driver = ProbeDriver {
        pipeline: &mut pipeline,
        sink: &mut out,
        lost: &lost,
    };
    probes
        .run(&mut driver, &STOP, Duration::from_millis(100))
        .context("reading the ring buffer")?;
    pipeline.note_kernel_lost(probes.counters().lost);
    let s = pipeline.stats();
    eprintln!(
        "causeway: {} events captured, {} lost (ring buffer full), {} undecodable; \
         {} spans ({} timeouts), {} messages, {} parse errors, {} unrecognised, \
         {} orphan responses, {} dropped waiting requests",
        s.events,
        s.kernel_lost,
        s.decode_errors,
        s.spans,
        s.timeouts,
        s.messages,
        s.parse_errors,
        s.unrecognised,
        s.orphan_responses,
        s.pending_dropped
    );
    Ok(())
}

struct Printer {
    format: Format,
    protocol: Option<L7Protocol>,
    out: std::io::BufWriter<std::io::Stdout>,
    header_done: bool,
}

impl causeway_agent::SpanSink for Printer {
    fn on_span(&mut self, span: Span) {
        if self.protocol.is_some_and(|p| p != span.protocol) {
            return;
        }
        let out = &mut self.out;
        let result = match self.format {
            Format::Json => serde_json::to_writer(&mut *out, &span)
                .map_err(std::io::Error::other)
                .and_then(|()| out.write_all(b"\n")),
            Format::Table => {
                let header = if self.header_done {
                    Ok(())
                } else {
                    self.header_done = true;
                    writeln!(
                        out,
                        "{:<6} {:<5} {:>7} {:<15} {:<43} {:<40} {:>4} {:<12} {:>10} {:>8} {:>8}",
                        "PROTO",
                        "SIDE",
                        "PID",
                        "COMM",
                        "CLIENT -> SERVER",
                        "REQUEST",
                        "CODE",
                        "STATUS",
                        "DURATION",
                        "REQ_B",
                        "RESP_B"
                    )
                };
                header.and_then(|()| writeln!(out, "{}", table_row(&span)))
            }
        };
        if result.is_err() {
            // stdout is gone (a closed pipe): nobody reads on, so stop.
            STOP.store(true, Ordering::Relaxed);
        }
    }

    fn flush(&mut self) {
        if self.out.flush().is_err() {
            STOP.store(true, Ordering::Relaxed);
        }
    }
}

fn table_row(s: &Span) -> String {
    let peers = format!("{}:{} -> {}:{}", s.src_ip, s.src_port, s.dst_ip, s.dst_port);
    let mut request = format!(
        "{} {}{}",
        s.request_type, s.request_domain, s.request_resource
    );
    if request.len() > 40 {
        let mut cut = 39;
        while !request.is_char_boundary(cut) {
            cut -= 1;
        }
        request.truncate(cut);
        request.push('…');
    }
    let code = s
        .response_code
        .map(|c| c.to_string())
        .unwrap_or_else(|| "-".into());
    format!(
        "{:<6} {:<5} {:>7} {:<15} {:<43} {:<40} {:>4} {:<12} {:>8}us {:>8} {:>8}",
        s.protocol.as_str(),
        s.observation_point.as_str(),
        s.pid,
        s.comm,
        peers,
        request,
        code,
        s.response_status.as_str(),
        s.duration_us,
        s.request_length,
        s.response_length
    )
}
