//! `causeway up`: agent, server and embedded store in one process — the
//! single-machine default. The agent hands batches to the server's ingest
//! directly (no network hop, no token); the API listens on 127.0.0.1:8417.
//! On Ctrl-C: capture stops, every span captured is delivered, the server
//! finishes its requests, the store closes.

use crate::agent::{export_config, export_summary, ExportArgs};
use crate::capture::{install_signal_handlers, Capture, CaptureArgs};
use crate::flows::PacketArgs;
use crate::output::STOP;
use crate::server::StoreArgs;
use anyhow::Result;
use causeway_agent::export::{self, PushError, Transport};
use causeway_model::wire::{Ack, Batch};
use causeway_server::ingest::{IngestError, Ingestor};
use causeway_server::server::{Server, ServerConfig};
use clap::Args;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct UpArgs {
    #[command(flatten)]
    capture: CaptureArgs,
    #[command(flatten)]
    packets: PacketArgs,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    export: ExportArgs,
    /// Also take pushes from agents on other hosts here (gRPC).
    #[arg(long)]
    ingest_listen: Option<SocketAddr>,
    /// The token those agents must present.
    #[arg(long, env = "CAUSEWAY_TOKEN")]
    token: Option<String>,
}

/// The server in this process as the exporter's transport.
struct Local(Arc<Ingestor>);

impl Transport for Local {
    fn push(&mut self, batch: &Batch) -> Result<Ack, PushError> {
        self.0.push(batch.clone()).map_err(|e| match e {
            IngestError::Invalid(m) => PushError::Refused(m),
            IngestError::Store(e) => PushError::Retry(e.to_string()),
        })
    }
}

pub fn run(args: UpArgs) -> Result<()> {
    if args.token.is_none() && args.ingest_listen.is_some_and(|a| !a.ip().is_loopback()) {
        anyhow::bail!("--token is required with a non-loopback --ingest-listen");
    }
    let server = Server::open(ServerConfig {
        store: args.store.spec(),
        api: args.store.listen,
        ingest: args.ingest_listen,
        token: args.token.clone(),
        retention: args.store.retention,
        retention_1s: args.store.retention_1s,
    })?;
    let capture = Capture::start(&args.capture)?;
    let live = args.packets.start(&args.capture)?;
    install_signal_handlers();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let store_kind = server.state.store.kind();
    let (mut sink, handle) = export::start(
        export_config(&args.export),
        Box::new(Local(server.ingestor.clone())),
    );
    let (listening, bound) = std::sync::mpsc::channel::<()>();
    let serving = runtime.spawn(server.serve(
        async move {
            let _ = stopped.await;
        },
        move || {
            let _ = listening.send(());
        },
    ));
    // Ready only once the API port takes connections; if binding failed,
    // the sender is gone and the server's error says why.
    if bound.recv().is_err() {
        runtime.block_on(serving)??;
        anyhow::bail!("the server stopped before it listened");
    }
    eprintln!(
        "causeway: up; API on http://{} ({store_kind} store); {}; {}; Ctrl-C to stop",
        args.store.listen,
        capture.coverage(),
        args.packets.describe()
    );
    // If the server stops by itself (it failed), capture stops too.
    let summary = std::thread::scope(|scope| {
        let serving = &serving;
        scope.spawn(move || {
            while !STOP.load(Ordering::Relaxed) {
                if serving.is_finished() {
                    STOP.store(true, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        capture.run_with_packets(&mut sink, live)
    })?;
    drop(sink);
    let stats = handle.finish(Duration::from_secs(30));
    let _ = stop_server.send(());
    let served = runtime.block_on(serving);
    let (summary, packets) = summary;
    eprintln!("causeway: {summary}");
    if let Some(p) = packets {
        eprintln!("causeway: {p}");
    }
    eprintln!("causeway: {}", export_summary(&stats));
    eprintln!("causeway: {}", stats.metrics_summary());
    eprintln!("causeway: {}", stats.flows_summary());
    served??;
    Ok(())
}
