//! A running server: the store opened, the dictionary loaded, the HTTP API
//! and the gRPC ingest listening, retention on a timer, until shutdown.

use crate::api::{self, ApiState};
use crate::dict::Dictionary;
use crate::ingest::{IngestService, Ingestor};
use crate::metrics::ServerStats;
use crate::schema::day_of;
use crate::store::clickhouse::ClickHouseStore;
use crate::store::duckdb::DuckStore;
use crate::store::{Store, StoreError};
use anyhow::{Context, Result};
use causeway_model::metric::Granularity;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Which store, as users name it: `duckdb:DIR` (or a bare directory) or
/// `clickhouse://HOST:PORT[,HOST:PORT...]/DB[?cluster=NAME]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    DuckDb(PathBuf),
    ClickHouse(String),
}

impl std::str::FromStr for StoreSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<StoreSpec, String> {
        if s.starts_with("clickhouse://") {
            crate::store::clickhouse::Target::parse(s).map_err(|e| e.to_string())?;
            return Ok(StoreSpec::ClickHouse(s.to_owned()));
        }
        let dir = s.strip_prefix("duckdb:").unwrap_or(s);
        if dir.is_empty() || dir.contains("://") {
            return Err(format!(
                "store {s:?}: use duckdb:DIR or clickhouse://HOST:PORT/DB"
            ));
        }
        Ok(StoreSpec::DuckDb(PathBuf::from(dir)))
    }
}

impl StoreSpec {
    pub fn open(&self) -> Result<Arc<dyn Store>, StoreError> {
        Ok(match self {
            StoreSpec::DuckDb(dir) => Arc::new(DuckStore::open(dir)?),
            StoreSpec::ClickHouse(url) => Arc::new(ClickHouseStore::open(url)?),
        })
    }
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub store: StoreSpec,
    /// The HTTP API.
    pub api: SocketAddr,
    /// The agents' gRPC ingest; None: only an agent in this process writes.
    pub ingest: Option<SocketAddr>,
    /// The token agents must present; None: any agent.
    pub token: Option<String>,
    /// Spans (and 1 min metric rows) older than this are dropped, a day
    /// at a time.
    pub retention: Duration,
    /// 1 s metric rows older than this are dropped, a day at a time.
    pub retention_1s: Duration,
}

pub struct Server {
    pub ingestor: Arc<Ingestor>,
    pub state: ApiState,
    config: ServerConfig,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

impl Server {
    /// Opens the store and loads its dictionary.
    pub fn open(config: ServerConfig) -> Result<Server> {
        let store = config
            .store
            .open()
            .with_context(|| format!("cannot open the store {:?}", config.store))?;
        let dict = Arc::new(Dictionary::new());
        let tags = store.tags().context("cannot read the tag dictionary")?;
        dict.add(tags.iter().map(|(k, id, v)| (*k, *id, v.as_str())));
        let stats = Arc::new(ServerStats::default());
        let ingestor = Arc::new(Ingestor::new(store.clone(), dict.clone(), stats.clone()));
        Ok(Server {
            ingestor,
            state: ApiState { store, dict, stats },
            config,
        })
    }

    /// Drops the days that fell out of the retention window.
    pub fn apply_retention(&self) -> Result<usize, StoreError> {
        let cutoff = now_us().saturating_sub(self.config.retention.as_micros() as u64);
        let mut n = self.state.store.drop_days_before(day_of(cutoff))?;
        let store = &self.state.store;
        n += store.drop_metric_days_before(Granularity::Minute, day_of(cutoff))?;
        let cutoff_1s = now_us().saturating_sub(self.config.retention_1s.as_micros() as u64);
        n += store.drop_metric_days_before(Granularity::Second, day_of(cutoff_1s))?;
        ServerStats::add(&self.state.stats.retention_days_dropped, n as u64);
        Ok(n)
    }

    /// Serves until `shutdown` completes; then stops taking requests and
    /// lets those under way finish. `listening` is called once the API and
    /// ingest ports are bound, so whoever says "ready" says it truly.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
        listening: impl FnOnce(),
    ) -> Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let api_listener = tokio::net::TcpListener::bind(self.config.api)
            .await
            .with_context(|| format!("cannot listen on {} (HTTP API)", self.config.api))?;
        let mut tasks = tokio::task::JoinSet::new();
        let mut rx = stop_rx.clone();
        let app = api::router(self.state.clone());
        tasks.spawn(async move {
            axum::serve(api_listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .await
                .context("HTTP API")
        });
        if let Some(addr) = self.config.ingest {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (gRPC ingest)"))?;
            let service = IngestService::new(
                self.ingestor.clone(),
                self.config.token.clone(),
                self.state.stats.clone(),
            )
            .into_server();
            let mut rx = stop_rx.clone();
            tasks.spawn(async move {
                tonic::transport::Server::builder()
                    .add_service(service)
                    .serve_with_incoming_shutdown(tokio_stream_listener(listener), async move {
                        let _ = rx.wait_for(|s| *s).await;
                    })
                    .await
                    .context("gRPC ingest")
            });
        }
        listening();
        let server = Arc::new(self);
        let retention = server.clone();
        let mut rx = stop_rx.clone();
        tasks.spawn(async move {
            loop {
                let s = retention.clone();
                match tokio::task::spawn_blocking(move || s.apply_retention()).await {
                    Ok(Err(e)) => tracing::warn!("retention: {e}"),
                    Err(e) => tracing::warn!("retention task: {e}"),
                    Ok(Ok(_)) => {}
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
                    _ = rx.wait_for(|s| *s) => return Ok(()),
                }
            }
        });
        let mut failed = None;
        tokio::select! {
            () = shutdown => {}
            Some(r) = tasks.join_next() => {
                failed = Some(r.map_err(anyhow::Error::from).and_then(|r| r).err());
            }
        }
        let _ = stop_tx.send(true);
        while let Some(r) = tasks.join_next().await {
            if let Err(e) = r.map_err(anyhow::Error::from).and_then(|r| r) {
                tracing::warn!("{e:#}");
            }
        }
        match failed.flatten() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// A listener as the stream of connections tonic serves.
fn tokio_stream_listener(
    listener: tokio::net::TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    tokio_stream::wrappers::TcpListenerStream::new(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_specs() {
        assert_eq!("duckdb:/x".parse(), Ok(StoreSpec::DuckDb("/x".into())));
        assert_eq!("./data".parse(), Ok(StoreSpec::DuckDb("./data".into())));
        assert!(matches!(
            "clickhouse://h:1/db".parse::<StoreSpec>(),
            Ok(StoreSpec::ClickHouse(_))
        ));
        assert!("clickhouse://h/db".parse::<StoreSpec>().is_err());
        assert!("postgres://h/db".parse::<StoreSpec>().is_err());
        assert!("duckdb:".parse::<StoreSpec>().is_err());
    }
}
