//! Flow records on the command line: the flow timeouts every packet
//! source shares (`replay`, and live capture in `watch`, `up`, `agent`),
//! and printing flow reports (a table for people, JSON lines for programs).

use crate::duration;
use crate::output::{Format, STOP};
use causeway_agent::capture::flows::FlowConfig;
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
