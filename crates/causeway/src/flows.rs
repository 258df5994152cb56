//! Flow records on the command line: the flow timeouts every packet
//! source shares (`replay`, and live capture in `watch`, `up`, `agent`),
//! and printing flow reports (a table for people, JSON lines for programs).

use crate::capture::CaptureArgs;
use crate::duration;
use crate::output::{self, Format, STOP};
use anyhow::{Context, Result};
use causeway_agent::capture::flows::FlowConfig;
use causeway_agent::capture::live::{LiveCapture, LiveConfig};
use causeway_agent::{EventFilter, PipelineConfig};
use causeway_model::{Flow, Span};
use clap::Args;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct FlowArgs {
    /// An established TCP flow quiet this long ends as `timeout`.
    #[arg(long, value_parser = duration::parse, default_value = "300s")]
    pub flow_timeout: Duration,
    /// A TCP handshake quiet this long ends as `syn_timeout` or
    /// `synack_timeout` (Linux retries SYNs after 1, 2, 4, 8 ... s).
    #[arg(long, value_parser = duration::parse, default_value = "10s")]
    pub flow_syn_timeout: Duration,
    /// A UDP flow quiet this long ends as `timeout`.
    #[arg(long, value_parser = duration::parse, default_value = "30s")]
    pub flow_udp_timeout: Duration,
    /// A flow that lives on is reported this often (0: only when it ends).
    #[arg(long, value_parser = duration::parse, default_value = "60s")]
    pub flow_report: Duration,
}

impl FlowArgs {
    pub fn config(&self, payload_cap: usize) -> FlowConfig {
        let ns = |d: Duration| d.as_nanos().min(u64::MAX as u128) as u64;
        FlowConfig {
            payload_cap,
            idle_ns: ns(self.flow_timeout),
            opening_ns: ns(self.flow_syn_timeout),
            udp_idle_ns: ns(self.flow_udp_timeout),
            report_ns: ns(self.flow_report),
            ..FlowConfig::default()
        }
    }
}

/// Packet capture in `up` and `agent`: which interfaces, which packets.
#[derive(Args, Debug, Clone)]
pub struct PacketArgs {
    /// Capture packets on this interface (repeatable); default: all
    /// interfaces, `lo` included (libpcap's `any`).
    #[arg(long = "interface", value_name = "NAME")]
    pub interfaces: Vec<String>,
    /// Only packets this BPF filter takes (tcpdump syntax, e.g.
    /// `tcp port 80 or udp port 53`); applied in the kernel.
    #[arg(long, value_name = "FILTER")]
    pub capture_filter: Option<String>,
    /// No packet capture (no flows); eBPF spans only.
    #[arg(long)]
    pub no_packets: bool,
    /// Also export the spans the parsers make from packet payloads
    /// (observation point `network`); without it they are only counted
    /// into their flows.
    #[arg(long)]
    pub network_spans: bool,
    #[command(flatten)]
    pub flow: FlowArgs,
}

impl PacketArgs {
    /// Starts packet capture unless `--no-packets`; fails with what could
    /// not be opened.
    pub fn start(&self, capture: &CaptureArgs) -> Result<Option<LiveCapture>> {
        if self.no_packets {
            return Ok(None);
        }
        let config = LiveConfig {
            interfaces: self.interfaces.clone(),
            filter: self.capture_filter.clone(),
            flow: self.flow.config(capture.payload_cap.max(1) as usize),
            pipeline: PipelineConfig {
                filter: EventFilter {
                    port: capture.port,
                    ..EventFilter::default()
                },
                request_timeout: capture.timeout,
                port_protocols: output::port_protocols(
                    &capture.port_protocols,
                    &capture.protobuf_rpc,
                ),
                protobuf_rpc: capture.protobuf_rpc.clone(),
                ..PipelineConfig::default()
            },
            spans: self.network_spans,
            ..LiveConfig::default()
        };
        LiveCapture::start(config)
            .map(Some)
            .context("cannot start packet capture (--no-packets to go without)")
    }

    /// What is captured, for the opening line.
    pub fn describe(&self) -> String {
        if self.no_packets {
            return "no packet capture".into();
        }
        let on = if self.interfaces.is_empty() {
            "all interfaces".to_owned()
        } else {
            self.interfaces.join(", ")
        };
        match &self.capture_filter {
            Some(f) => format!("packets on {on} ({f})"),
            None => format!("packets on {on}"),
        }
    }
}

/// Prints flow reports (and ignores spans).
pub struct FlowPrinter {
    format: Format,
    port: Option<u16>,
    out: std::io::BufWriter<std::io::Stdout>,
    header_done: bool,
}

impl FlowPrinter {
    /// `port`: only flows with this port at either end.
    pub fn new(format: Format, port: Option<u16>) -> FlowPrinter {
        FlowPrinter {
            format,
            port,
            out: std::io::BufWriter::with_capacity(1 << 16, std::io::stdout()),
            header_done: false,
        }
    }
}

/// The header of [`table_row`].
pub const FLOW_HEADER: &str = "L4  CLIENT -> SERVER                              CLOSE              PKTS C/S       BYTES C/S        RTT_US  RETRANS C/S  ZWIN C/S  RST C/S  L7";

/// One flow report as a line of the table.
pub fn table_row(f: &Flow) -> String {
    let [c, s] = &f.sides;
    let peers = format!("{} -> {}", f.client, f.server);
    let l7 = if f.l7_requests > 0 {
        format!("{} {}/{}", f.l7_protocol, f.l7_requests, f.l7_errors)
    } else {
        "-".into()
    };
    format!(
        "{:<3} {:<47} {:<18} {:>14} {:>15} {:>9} {:>12} {:>9} {:>8}  {}",
        f.l4_protocol.as_str(),
        peers,
        f.close_type.as_str(),
        format!("{}/{}", c.packets, s.packets),
        format!("{}/{}", c.bytes, s.bytes),
        f.rtt_us(),
        format!("{}/{}", c.retransmissions, s.retransmissions),
        format!("{}/{}", c.zero_windows, s.zero_windows),
        format!("{}/{}", c.resets, s.resets),
        l7
    )
}

impl causeway_agent::SpanSink for FlowPrinter {
    fn on_span(&mut self, _span: Span) {}

    fn on_flow(&mut self, flow: Flow) {
        if self
            .port
            .is_some_and(|p| flow.client.port() != p && flow.server.port() != p)
        {
            return;
        }
        let out = &mut self.out;
        let result = match self.format {
            Format::Json => serde_json::to_writer(&mut *out, &flow)
                .map_err(std::io::Error::other)
                .and_then(|()| out.write_all(b"\n")),
            Format::Table => {
                let header = if self.header_done {
                    Ok(())
                } else {
                    self.header_done = true;
                    writeln!(out, "{FLOW_HEADER}")
                };
                header.and_then(|()| writeln!(out, "{}", table_row(&flow)))
            }
        };
        if result.is_err() {
            STOP.store(true, Ordering::Relaxed);
        }
    }

    fn flush(&mut self) {
        if self.out.flush().is_err() {
            STOP.store(true, Ordering::Relaxed);
        }
    }
}

/// `causeway query flows`.
#[derive(Args, Debug)]
pub struct QueryFlowsArgs {
    /// How far back: 30s, 5m, 2h, 7d.
    #[arg(long, default_value = "15m")]
    since: String,
    /// Only flows with this port at either end.
    #[arg(long)]
    port: Option<u16>,
    /// Only reports of this close type (normal, client_reset, server_reset,
    /// refused, syn_timeout, synack_timeout, timeout, half_close_timeout,
    /// port_reuse, capture_end; active: periodic reports).
    #[arg(long)]
    close_type: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: u32,
}

/// Prints `/api/v1/flows`: the table of `replay --flows` (with the
/// interface), or the JSON.
pub fn query(server: &str, format: Format, a: QueryFlowsArgs) -> Result<()> {
    let mut params: Vec<(&str, String)> = vec![("since", a.since), ("limit", a.limit.to_string())];
    if let Some(p) = a.port {
        params.push(("port", p.to_string()));
    }
    if let Some(c) = a.close_type {
        params.push(("close_type", c));
    }
    let v = crate::query::get(server, "/api/v1/flows", &params)?;
    let flows = v["flows"].as_array().cloned().unwrap_or_default();
    if format == Format::Json {
        for f in &flows {
            println!("{f}");
        }
        return Ok(());
    }
    println!("{FLOW_HEADER}  INTERFACE");
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_owned();
    for f in &flows {
        let side = |k: &str| format!("{}/{}", n(&f["sides"][0][k]), n(&f["sides"][1][k]));
        let rtt = match (n(&f["rtt_client_us"]), n(&f["rtt_server_us"])) {
            (0, _) | (_, 0) => 0,
            (c, s) => c + s,
        };
        let l7 = if n(&f["l7_requests"]) > 0 {
            format!(
                "{} {}/{}",
                s(&f["l7_protocol"]),
                n(&f["l7_requests"]),
                n(&f["l7_errors"])
            )
        } else {
            "-".into()
        };
        println!(
            "{:<3} {:<47} {:<18} {:>14} {:>15} {:>9} {:>12} {:>9} {:>8}  {:<12} {}",
            s(&f["l4_protocol"]),
            format!("{} -> {}", s(&f["client"]), s(&f["server"])),
            s(&f["close_type"]),
            side("packets"),
            side("bytes"),
            rtt,
            side("retransmissions"),
            side("zero_windows"),
            side("resets"),
            l7,
            s(&f["interface"]),
        );
    }
    eprintln!("{} flow reports", flows.len());
    Ok(())
}
