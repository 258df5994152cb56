//! `causeway server`: ingest from agents over gRPC, store, answer the API.

use crate::duration;
use anyhow::{bail, Result};
use causeway_server::server::{Server, ServerConfig, StoreSpec};
use clap::Args;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// The embedded store's directory (DuckDB).
    #[arg(long, default_value = "./causeway-data")]
    pub data: std::path::PathBuf,
    /// Another store instead: `clickhouse://HOST:PORT[,HOST:PORT...]/DB[?cluster=NAME]`
    /// (ClickHouse's HTTP port), or `duckdb:DIR`.
    #[arg(long)]
    pub store: Option<StoreSpec>,
    /// The HTTP API's address.
    #[arg(long, default_value = "127.0.0.1:8417")]
    pub listen: SocketAddr,
    /// Spans and 1 min metric rows older than this are dropped (a day at a time).
    #[arg(long, value_parser = duration::parse, default_value = "7d")]
    pub retention: Duration,
    /// 1 s metric rows older than this are dropped (a day at a time).
    #[arg(long = "retention-1s", value_parser = duration::parse, default_value = "1d")]
    pub retention_1s: Duration,
}

impl StoreArgs {
    pub fn spec(&self) -> StoreSpec {
        self.store
            .clone()
            .unwrap_or_else(|| StoreSpec::DuckDb(self.data.clone()))
    }
}

#[derive(Args, Debug)]
pub struct ServerArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Where agents push (gRPC).
    #[arg(long, default_value = "127.0.0.1:8418")]
    ingest_listen: SocketAddr,
    /// The token agents must present (`causeway agent --token`); required
    /// unless ingest listens on loopback only.
    #[arg(long, env = "CAUSEWAY_TOKEN")]
    token: Option<String>,
}

/// Resolves when SIGINT or SIGTERM arrives.
pub async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

pub fn run(args: ServerArgs) -> Result<()> {
    if args.token.is_none() && !args.ingest_listen.ip().is_loopback() {
        bail!(
            "--token is required when agents may connect from other hosts \
             (--ingest-listen {})",
            args.ingest_listen
        );
    }
    let server = Server::open(ServerConfig {
        store: args.store.spec(),
        api: args.store.listen,
        ingest: Some(args.ingest_listen),
        token: args.token,
        retention: args.store.retention,
        retention_1s: args.store.retention_1s,
    })?;
    let runtime = tokio::runtime::Runtime::new()?;
    let said = format!(
        "causeway: server on http://{} (API), agents push to {} ({} store)",
        args.store.listen,
        args.ingest_listen,
        server.state.store.kind()
    );
    runtime.block_on(server.serve(shutdown_signal(), move || eprintln!("{said}")))?;
    eprintln!("causeway: server stopped");
    Ok(())
}
