//! `causeway replay FILE`: a pcap or pcapng capture through the same
//! pipeline as `watch`, observed at the `network` point, printed the same
//! way; or, with `--flows`, the capture's flow records.

use crate::duration;
use crate::flows::{FlowArgs, FlowPrinter};
use crate::output::{
    self, parse_port_protocol, parse_protobuf_rpc, parse_protocol, Format, Printer,
};
use anyhow::{Context, Result};
use causeway_agent::capture::{self, ReplayConfig};
use causeway_agent::{EventFilter, Pipeline, PipelineConfig, WallClock};
use causeway_model::{L7Protocol, ObservationPoint};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The capture: pcap or pcapng (as tcpdump, tshark and dumpcap write); `-` for stdin.
    file: PathBuf,
    /// Only flows with this port at either end.
    #[arg(long)]
    port: Option<u16>,
    /// Only this application protocol.
    #[arg(long, value_parser = parse_protocol)]
    protocol: Option<L7Protocol>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Payload bytes handed to the parsers per reassembled run of a flow (as
    /// `watch --payload-cap`).
    #[arg(long, default_value_t = 16384)]
    payload_cap: usize,
    /// Port N speaks protocol X (repeatable): `--port-protocol 6380=redis`.
    /// Sockets with that port at either end skip inference.
    #[arg(long = "port-protocol", value_name = "PORT=PROTOCOL", value_parser = parse_port_protocol)]
    port_protocols: Vec<(u16, L7Protocol)>,
    /// Port N speaks ProtobufRPC (repeatable), with the meta's field paths
    /// when not brpc's: `--protobuf-rpc 8002=service:1.1,method:1.2,request_id:4,status:2.1,message:2.2`.
    #[arg(long = "protobuf-rpc", value_name = "PORT[=FIELDS]", value_parser = parse_protobuf_rpc)]
    protobuf_rpc: Vec<(u16, causeway_agent::protobuf_rpc::Config)>,
    /// An unanswered request becomes a timeout span after this long (capture time).
    #[arg(long, value_parser = duration::parse, default_value = "60s")]
    timeout: Duration,
    /// Print the flow records (one per flow and report period) instead of spans.
    #[arg(long)]
    flows: bool,
    #[command(flatten)]
    flow: FlowArgs,
}

pub fn run(args: ReplayArgs) -> Result<()> {
    let input: Box<dyn std::io::Read> = if args.file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let f = std::fs::File::open(&args.file)
            .with_context(|| format!("cannot open {}", args.file.display()))?;
        Box::new(std::io::BufReader::with_capacity(1 << 20, f))
    };
    let mut pipeline = Pipeline::new(
        PipelineConfig {
            filter: EventFilter {
                port: args.port,
                ..EventFilter::default()
            },
            request_timeout: args.timeout,
            port_protocols: output::port_protocols(&args.port_protocols, &args.protobuf_rpc),
            protobuf_rpc: args.protobuf_rpc.clone(),
            observation_point: Some(ObservationPoint::Network),
            ..PipelineConfig::default()
        },
        // Capture timestamps are wall-clock already.
        WallClock::identity(),
    );
    let mut spans;
    let mut flows;
    let out: &mut dyn causeway_agent::SpanSink = if args.flows {
        flows = FlowPrinter::new(args.format, args.port);
        &mut flows
    } else {
        spans = Printer::new(args.format, args.protocol);
        &mut spans
    };
    let config = ReplayConfig {
        flow: args.flow.config(args.payload_cap.max(1)),
    };
    let stats = capture::replay(input, &config, &mut pipeline, out)
        .with_context(|| format!("replaying {}", args.file.display()))?;
    let f = &stats.flows;
    eprintln!(
        "causeway: {} frames ({} skipped, {} malformed), {} flows ({} reports), {} TCP segments \
         ({} out of order, {} bytes retransmitted, {} bytes missing), {} UDP datagrams; {}",
        stats.frames,
        stats.skipped_frames,
        stats.malformed_frames,
        f.flows,
        f.reports,
        f.tcp_segments,
        f.out_of_order_segments,
        f.retransmitted_bytes,
        f.gap_bytes,
        f.udp_datagrams,
        output::pipeline_summary(pipeline.stats())
    );
    Ok(())
}
