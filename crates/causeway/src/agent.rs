//! `causeway agent`: capture on this host and push spans to a server.

use crate::capture::{host_name, install_signal_handlers, Capture, CaptureArgs};
use crate::flows::PacketArgs;
use anyhow::{anyhow, Result};
use causeway_agent::export::{self, ExportConfig, GrpcTransport};
use clap::Args;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// Names this agent (default: the host name).
    #[arg(long)]
    pub agent_id: Option<String>,
    /// Spans held for the server at most (while it is slow or down);
    /// beyond this, new spans are dropped and counted.
    #[arg(long, default_value_t = 200_000)]
    pub buffer_spans: usize,
}

#[derive(Args, Debug)]
pub struct AgentArgs {
    #[command(flatten)]
    capture: CaptureArgs,
    #[command(flatten)]
    packets: PacketArgs,
    #[command(flatten)]
    export: ExportArgs,
    /// The server's ingest address.
    #[arg(long, default_value = "http://127.0.0.1:8418")]
    server: String,
    /// The server's token.
    #[arg(long, env = "CAUSEWAY_TOKEN")]
    token: Option<String>,
}

/// The exporter configuration from the flags.
pub fn export_config(args: &ExportArgs) -> ExportConfig {
    let host = host_name();
    ExportConfig {
        agent_id: args.agent_id.clone().unwrap_or_else(|| host.clone()),
        proc_root: Some("/proc".into()),
        host,
        buffer_spans: args.buffer_spans,
        ..ExportConfig::default()
    }
}

/// The closing line about the export.
pub fn export_summary(stats: &export::ExportStats) -> String {
    let mut s = stats.summary();
    if let Ok(e) = stats.last_error.lock() {
        if !e.is_empty() && stats.retries.load(Relaxed) + stats.spans_refused.load(Relaxed) > 0 {
            s.push_str(&format!("; last error: {e}"));
        }
    }
    s
}

pub fn run(args: AgentArgs) -> Result<()> {
    let transport =
        GrpcTransport::new(&args.server, args.token.as_deref()).map_err(|e| anyhow!(e))?;
    let capture = Capture::start(&args.capture)?;
    let live = args.packets.start(&args.capture)?;
    install_signal_handlers();
    let (mut sink, handle) = export::start(export_config(&args.export), Box::new(transport));
    eprintln!(
        "causeway: agent pushing to {}; {}; {}; Ctrl-C to stop",
        args.server,
        capture.coverage(),
        args.packets.describe()
    );
    let (summary, packets) = capture.run_with_packets(&mut sink, live)?;
    drop(sink);
    let stats = handle.finish(Duration::from_secs(10));
    eprintln!("causeway: {summary}");
    if let Some(p) = packets {
        eprintln!("causeway: {p}");
    }
    eprintln!("causeway: {}", export_summary(&stats));
    eprintln!("causeway: {}", stats.metrics_summary());
    eprintln!("causeway: {}", stats.flows_summary());
    Ok(())
}
