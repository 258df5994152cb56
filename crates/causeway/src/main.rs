//! `causeway`: the one binary (DESIGN.md, section 2): `up` (agent, server
//! and embedded store in one process), `agent` and `server` for split
//! deployments, `query` to ask a server, `trace` for the distributed trace
//! of a span, `watch` (the live terminal view of
//! every request on this host) and `replay` (the same for a capture file).

mod agent;
mod capture;
use causeway_model::duration;
mod flows;
mod output;
mod query;
mod query_red;
mod replay;
mod server;
mod trace;
mod up;
mod watch;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "causeway",
    version,
    about = "Zero-code observability for Linux services"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Agent, server and embedded store in one process: capture every
    /// request on this host, store it, serve the API on 127.0.0.1:8417.
    Up(up::UpArgs),
    /// Capture on this host and push spans to a `causeway server`.
    Agent(agent::AgentArgs),
    /// Take spans from agents, store them, answer the API.
    Server(server::ServerArgs),
    /// Ask a running server: spans, a span, services, metrics, the service map.
    Query(query::QueryArgs),
    /// The distributed trace a span belongs to, assembled by a running
    /// server: a waterfall, JSON, or OpenTelemetry spans (OTLP JSON).
    Trace(trace::TraceArgs),
    /// Print every request/response any process on this host handles, live.
    Watch(watch::WatchArgs),
    /// Read a pcap or pcapng capture through the same pipeline (observation point `network`).
    Replay(replay::ReplayArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(args) => up::run(args),
        Command::Agent(args) => agent::run(args),
        Command::Server(args) => server::run(args),
        Command::Query(args) => query::run(args),
        Command::Trace(args) => trace::run(args),
        Command::Watch(args) => watch::run(args),
        Command::Replay(args) => replay::run(args),
    };
    if let Err(e) = result {
        eprintln!("causeway: {e:#}");
        std::process::exit(1);
    }
}
