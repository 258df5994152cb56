//! Ingest throughput into each backend, end to end and store only, and
//! bytes per span on disk, side by side in one run.
//!
//! End to end is the path an agent's batch takes: protobuf encoding and
//! gzip in a tonic client (configured as the agent's `GrpcTransport`:
//! gzip both ways, `authorization: Bearer TOKEN`, one batch in flight per
//! connection, the next pushed when the previous is acknowledged), over
//! loopback TCP to the real `IngestService` (token check, gunzip, decode),
//! `Ingestor::push` (batch checks, tag ids verified, span ids), the store's
//! write (DuckDB appender in one transaction with the batch's idempotency
//! row; ClickHouse: the duplicate check, then TabSeparated over HTTP), and
//! the acknowledgement back. Client and server share this machine's two
//! cores, as an agent and a server on one host would.
//!
//! Store only is `Store::write` on the same kind of batches, already made
//! into store rows: what the store itself costs.
//!
//! Bytes per span: after all the runs of a backend, over everything it
//! stored. DuckDB: the database file after the store is closed and a
//! `CHECKPOINT` is run on it (the write-ahead log folded in). ClickHouse:
//! `system.parts` (active parts, bytes on disk) as left by the inserts
//! (background merges running meanwhile), and again after `OPTIMIZE TABLE
//! ... FINAL` on every partition of every node (one part per partition).
//!
//! Run: `cargo bench -p causeway-server --bench ingest`. Knobs:
//! `CAUSEWAY_BENCH_INGEST_SPANS` (spans per measurement, default 200000),
//! `CAUSEWAY_BENCH_BATCHES` (batch sizes, default `1000,10000`),
//! `CAUSEWAY_BENCH_CONNECTIONS` (concurrent agent connections end to end,
//! default `1,4`), `CAUSEWAY_BENCH_BACKENDS` (default
//! `none,duckdb,clickhouse,clickhouse-2shards`; `none` is a store that
//! discards, so its end-to-end figure is the gRPC and ingest path alone). ClickHouse backends are skipped,
//! loudly, only when `clickhouse-server` is not installed.

mod common;

use causeway_model::metric::Granularity;
use causeway_model::tags::TagKind;
use causeway_model::wire::ingest_client::IngestClient;
use causeway_model::wire::Batch;
use causeway_server::dict::Dictionary;
use causeway_server::flows::{FlowQuery, StoredFlow};
use causeway_server::ingest::{IngestService, Ingestor};
use causeway_server::metrics::ServerStats;
use causeway_server::query::{KeyQuery, ServiceQuery, ServiceRow, SpanQuery};
use causeway_server::red::Flavor;
use causeway_server::schema::StoredSpan;
use causeway_server::store::clickhouse::ClickHouseStore;
use causeway_server::store::duckdb::{DuckStore, DB_FILE};
use causeway_server::store::{Store, StoreError, WriteBatch, WriteOutcome};
use common::gen::{write_batch, Source};
use common::*;
use prost::Message as _;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::codec::CompressionEncoding;

const TOKEN: &str = "bench-token";
const TAG_COLUMNS: [&str; 7] = [
    "agent",
    "host_0",
    "host_1",
    "process_0",
    "process_1",
    "service_0",
    "service_1",
];

/// One measurement's figures.
struct Run {
    backend: String,
    mode: String,
    batch: usize,
    spans: u64,
    secs: f64,
    /// Per-batch latency (push to ack, or the write call), ms.
    p50_ms: f64,
    p99_ms: f64,
    /// Time inside `Store::write`, seconds (end to end: from the server's stats).
    store_secs: f64,
    /// Protobuf bytes of the batches (before gzip), end to end only.
    wire_bytes: u64,
    /// CPU seconds: this process, ClickHouse servers.
    cpu_self: f64,
    cpu_ch: f64,
    load: String,
}

struct Size {
    backend: String,
    spans: u64,
    what: String,
    bytes: u64,
    extra: String,
}

/// A store that keeps nothing: end to end through it is the gRPC and
/// ingest path alone, the ceiling any real store is under.
struct Discard;

impl Store for Discard {
    fn kind(&self) -> &'static str {
        "none"
    }
    fn write(&self, batch: &WriteBatch) -> Result<WriteOutcome, StoreError> {
        Ok(WriteOutcome::Stored(batch.spans.len()))
    }
    fn spans(&self, _: &SpanQuery) -> Result<Vec<StoredSpan>, StoreError> {
        Ok(Vec::new())
    }
    fn span(&self, _: u64) -> Result<Option<StoredSpan>, StoreError> {
        Ok(None)
    }
    fn spans_by_keys(&self, _: &KeyQuery) -> Result<Vec<StoredSpan>, StoreError> {
        Ok(Vec::new())
    }
    fn services(&self, _: &ServiceQuery) -> Result<Vec<ServiceRow>, StoreError> {
        Ok(Vec::new())
    }
    fn tags(&self) -> Result<Vec<(TagKind, u64, String)>, StoreError> {
        Ok(Vec::new())
    }
    fn drop_days_before(&self, _: u32) -> Result<usize, StoreError> {
        Ok(0)
    }
    fn count(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
    fn disk_bytes(&self) -> Option<u64> {
        None
    }
    fn metric_query(
        &self,
        _: Granularity,
        _: u64,
        _: u64,
        _: &dyn Fn(&str, Flavor) -> String,
    ) -> Result<Vec<Vec<u64>>, StoreError> {
        Ok(Vec::new())
    }
    fn drop_metric_days_before(&self, _: Granularity, _: u32) -> Result<usize, StoreError> {
        Ok(0)
    }
    fn flows(&self, _: &FlowQuery) -> Result<Vec<StoredFlow>, StoreError> {
        Ok(Vec::new())
    }
}

/// A backend under test.
struct Backend {
    name: String,
    store: Arc<dyn Store>,
    ch: Option<ClickHouse>,
    dir: Option<PathBuf>,
}

impl Backend {
    fn open(name: &str) -> Option<Backend> {
        match name {
            "none" => Some(Backend {
                name: "none (discards)".into(),
                store: Arc::new(Discard),
                ch: None,
                dir: None,
            }),
            "duckdb" => {
                let dir = fresh_dir("ingest-duckdb");
                let store = DuckStore::open(&dir).expect("open DuckDB");
                Some(Backend {
                    name: name.into(),
                    store: Arc::new(store),
                    ch: None,
                    dir: Some(dir),
                })
            }
            "clickhouse" | "clickhouse-2shards" => {
                if let Some(why) = clickhouse_missing() {
                    skip_loudly(&format!("the {name} backend"), &why);
                    return None;
                }
                let nodes = if name == "clickhouse" { 1 } else { 2 };
                let ch = ClickHouse::start(nodes, "ingest");
                let store = ClickHouseStore::open(&ch.url("bench")).expect("open ClickHouse");
                Some(Backend {
                    name: name.into(),
                    store: Arc::new(store),
                    ch: Some(ch),
                    dir: None,
                })
            }
            other => {
                panic!("unknown backend {other:?} (none, duckdb, clickhouse, clickhouse-2shards)")
            }
        }
    }

    fn ch_cpu(&self) -> f64 {
        self.ch.as_ref().map_or(0.0, ClickHouse::cpu_seconds)
    }
}

fn latencies(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (percentile(&v, 50.0), percentile(&v, 99.0))
}

/// Pushes `batches` through a real gRPC ingest service over `conns`
/// connections; returns the run's figures.
fn end_to_end(b: &Backend, batches: Vec<Batch>, conns: usize) -> Run {
    let spans: u64 = batches.iter().map(|b| b.spans.len() as u64).sum();
    let wire_bytes: u64 = batches.iter().map(|b| b.encoded_len() as u64).sum();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("server runtime");
    let stats = Arc::new(ServerStats::default());
    let ingestor = Arc::new(Ingestor::new(
        b.store.clone(),
        Arc::new(Dictionary::new()),
        stats.clone(),
    ));
    let service = IngestService::new(ingestor, Some(TOKEN.into()), stats.clone()).into_server();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async {
                    let _ = stop_rx.await;
                },
            ),
    );
    // Each connection: an agent's sender thread, its own current-thread
    // runtime, batches pushed one at a time.
    let mut per_conn: Vec<Vec<Batch>> = (0..conns).map(|_| Vec::new()).collect();
    for (i, batch) in batches.into_iter().enumerate() {
        per_conn[i % conns].push(batch);
    }
    let (cpu0, ch0) = (cpu_seconds(std::process::id()), b.ch_cpu());
    let load = loadavg();
    let barrier = Arc::new(std::sync::Barrier::new(conns + 1));
    let threads: Vec<_> = per_conn
        .into_iter()
        .map(|mine| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("client runtime");
                rt.block_on(async move {
                    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                        .expect("endpoint")
                        .connect_timeout(Duration::from_secs(3))
                        .timeout(Duration::from_secs(120))
                        .connect()
                        .await
                        .expect("connect to the ingest service");
                    let mut client = IngestClient::new(channel)
                        .send_compressed(CompressionEncoding::Gzip)
                        .accept_compressed(CompressionEncoding::Gzip)
                        .max_encoding_message_size(64 << 20);
                    let token: tonic::metadata::MetadataValue<_> =
                        format!("Bearer {TOKEN}").parse().expect("token");
                    barrier.wait();
                    let mut lat = Vec::with_capacity(mine.len());
                    for batch in mine {
                        let n = batch.spans.len() as u32;
                        let t = Instant::now();
                        let mut req = tonic::Request::new(batch);
                        req.metadata_mut().insert("authorization", token.clone());
                        let ack = client.push(req).await.expect("push").into_inner();
                        lat.push(t.elapsed().as_secs_f64() * 1e3);
                        assert_eq!((ack.stored, ack.duplicate), (n, false), "ack");
                    }
                    lat
                })
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    let mut lat = Vec::new();
    for t in threads {
        lat.extend(t.join().expect("client thread"));
    }
    let secs = started.elapsed().as_secs_f64();
    let (cpu1, ch1) = (cpu_seconds(std::process::id()), b.ch_cpu());
    let _ = stop_tx.send(());
    let _ = rt.block_on(server);
    assert_eq!(stats.spans_stored.load(Relaxed), spans, "spans stored");
    let (p50_ms, p99_ms) = latencies(lat);
    Run {
        backend: b.name.clone(),
        mode: format!("end to end, {conns} conn"),
        batch: 0,
        spans,
        secs,
        p50_ms,
        p99_ms,
        store_secs: stats.store_write_us_sum.load(Relaxed) as f64 / 1e6,
        wire_bytes,
        cpu_self: cpu1 - cpu0,
        cpu_ch: ch1 - ch0,
        load,
    }
}

/// `Store::write` alone on `batches` (made into store rows beforehand).
fn store_only(b: &Backend, batches: Vec<Batch>) -> Run {
    let writes: Vec<_> = batches.into_iter().map(write_batch).collect();
    let spans: u64 = writes.iter().map(|w| w.spans.len() as u64).sum();
    let (cpu0, ch0) = (cpu_seconds(std::process::id()), b.ch_cpu());
    let load = loadavg();
    let started = Instant::now();
    let mut lat = Vec::with_capacity(writes.len());
    for w in &writes {
        let t = Instant::now();
        let out = b.store.write(w).expect("Store::write");
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(out, WriteOutcome::Stored(w.spans.len()));
    }
    let secs = started.elapsed().as_secs_f64();
    let (cpu1, ch1) = (cpu_seconds(std::process::id()), b.ch_cpu());
    let (p50_ms, p99_ms) = latencies(lat);
    Run {
        backend: b.name.clone(),
        mode: "store only".into(),
        batch: 0,
        spans,
        secs,
        p50_ms,
        p99_ms,
        store_secs: secs,
        wire_bytes: 0,
        cpu_self: cpu1 - cpu0,
        cpu_ch: ch1 - ch0,
        load,
    }
}

/// Bytes on disk of everything the backend stored; consumes it.
fn sizes(b: Backend, stored: u64) -> Vec<Size> {
    if b.store.kind() == "none" {
        return Vec::new();
    }
    let count = b.store.count().expect("count");
    assert_eq!(count, stored, "{}: spans in the store", b.name);
    let mut out = Vec::new();
    match (b.dir, b.ch) {
        (Some(dir), None) => {
            let before = b.store.disk_bytes().unwrap_or(0);
            out.push(Size {
                backend: b.name.clone(),
                spans: stored,
                what: "file + WAL, store open".into(),
                bytes: before,
                extra: String::new(),
            });
            drop(b.store);
            let file = dir.join(DB_FILE);
            let conn = duckdb::Connection::open(&file).expect("reopen DuckDB");
            conn.execute_batch("CHECKPOINT").expect("CHECKPOINT");
            let (used, free) = duck_blocks(&conn);
            let tables: Vec<String> = {
                let mut st = conn
                    .prepare(
                        "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'spans%'",
                    )
                    .expect("tables");
                st.query_map([], |r| r.get(0))
                    .expect("tables")
                    .collect::<Result<_, _>>()
                    .expect("table names")
            };
            let tags = tables
                .iter()
                .map(|t| duck_compression(&conn, t, |c| TAG_COLUMNS.contains(&c)))
                .collect::<Vec<_>>()
                .join(" | ");
            drop(conn);
            let bytes = dir_bytes(&dir);
            out.push(Size {
                backend: b.name.clone(),
                spans: stored,
                what: "file after CHECKPOINT".into(),
                bytes,
                extra: format!(
                    "{} tables; blocks used {} ({:.1} B/span), free {}; tag columns: {tags}",
                    tables.len(),
                    mib(used),
                    used as f64 / stored.max(1) as f64,
                    mib(free)
                ),
            });
            discard(&dir);
        }
        (None, Some(ch)) => {
            let table = if ch.http.len() > 1 {
                "spans_local"
            } else {
                "spans"
            };
            let (parts, rows, bytes, raw) = ch.parts("bench", table);
            assert_eq!(rows, stored, "rows in system.parts");
            out.push(Size {
                backend: b.name.clone(),
                spans: stored,
                what: "system.parts as inserted".into(),
                bytes,
                extra: format!("{parts} parts, {} uncompressed", mib(raw)),
            });
            let t = Instant::now();
            ch.optimize_final("bench", table);
            eprintln!("OPTIMIZE FINAL took {:.1} s", t.elapsed().as_secs_f64());
            let took = t.elapsed().as_secs_f64();
            let (parts, _, bytes, raw) = ch.parts("bench", table);
            out.push(Size {
                backend: b.name.clone(),
                spans: stored,
                what: "system.parts after OPTIMIZE FINAL".into(),
                bytes,
                extra: format!(
                    "{parts} parts, {} uncompressed; OPTIMIZE took {took:.1} s",
                    mib(raw)
                ),
            });
            drop(b.store);
        }
        _ => unreachable!(),
    }
    out
}

fn main() {
    let n = knob("CAUSEWAY_BENCH_INGEST_SPANS", 200_000, 4_000);
    let sizes_list: Vec<usize> = list("CAUSEWAY_BENCH_BATCHES", "1000,10000")
        .iter()
        .map(|s| s.parse().expect("CAUSEWAY_BENCH_BATCHES: numbers"))
        .collect();
    let conns: Vec<usize> = list("CAUSEWAY_BENCH_CONNECTIONS", "1,4")
        .iter()
        .map(|s| s.parse().expect("CAUSEWAY_BENCH_CONNECTIONS: numbers"))
        .collect();
    let backends = list(
        "CAUSEWAY_BENCH_BACKENDS",
        "none,duckdb,clickhouse,clickhouse-2shards",
    );
    println!("# ingest bench");
    println!("machine: {}", machine());
    println!(
        "spans per measurement: {n}; batch sizes: {sizes_list:?}; connections: {conns:?}; backends: {backends:?}"
    );
    let started = Instant::now();
    // The measurements store consecutive stretches of one 36-hour window
    // ending now, so the store holds a day and a half of data in time order.
    let measurements = (sizes_list.len() * (conns.len() + 1)) as u64;
    let end = now_us();
    let window = 36 * 3600 * 1_000_000u64;
    let mut runs = Vec::new();
    let mut disk = Vec::new();
    for name in &backends {
        let t = Instant::now();
        let Some(b) = Backend::open(name) else {
            continue;
        };
        eprintln!(
            "[{:>5.0} s] {name}: opened in {:.1} s",
            started.elapsed().as_secs_f64(),
            t.elapsed().as_secs_f64()
        );
        let mut stored = 0;
        // The agents have been up a while: their tag strings went with
        // batches before the measurements.
        let mut source = Source::new(7, end - window, end, n * measurements + 20_000);
        let warm = source.take(20_000, 2_000);
        stored += warm
            .into_iter()
            .map(|w| {
                let w = write_batch(w);
                b.store.write(&w).expect("warm-up write");
                w.spans.len() as u64
            })
            .sum::<u64>();
        for &size in &sizes_list {
            let mut modes: Vec<Option<usize>> = conns.iter().map(|c| Some(*c)).collect();
            // Store only through a store that discards times nothing.
            if b.dir.is_some() || b.ch.is_some() {
                modes.push(None);
            }
            for mode in modes {
                let t = Instant::now();
                let batches = source.take(n, size);
                let generated = t.elapsed().as_secs_f64();
                let t = Instant::now();
                let mut run = match mode {
                    Some(c) => end_to_end(&b, batches, c),
                    None => store_only(&b, batches),
                };
                run.batch = size;
                eprintln!(
                    "[{:>5.0} s] {:>18} {:>18} batch {:>6}: {:>9.0} spans/s (generated in {generated:.1} s, run {:.1} s)",
                    started.elapsed().as_secs_f64(),
                    run.backend,
                    run.mode,
                    size,
                    run.spans as f64 / run.secs,
                    t.elapsed().as_secs_f64()
                );
                stored += run.spans;
                runs.push(run);
            }
        }
        let t = Instant::now();
        disk.extend(sizes(b, stored));
        eprintln!(
            "[{:>5.0} s] {name}: sizes measured in {:.1} s",
            started.elapsed().as_secs_f64(),
            t.elapsed().as_secs_f64()
        );
    }
    println!();
    println!("## Ingest throughput");
    println!();
    println!("| backend | path | batch | spans | spans/s | per batch p50 / p99 | time in Store::write (summed) / wall | protobuf B/span | CPU s (bench process / ClickHouse) | load avg at start |");
    println!("|---|---|---:|---:|---:|---|---:|---:|---|---|");
    for r in &runs {
        println!(
            "| {} | {} | {} | {} | **{}** | {:.1} / {:.1} ms | {:.1} s / {:.1} s | {} | {:.1} / {:.1} | {} |",
            r.backend,
            r.mode,
            thousands(r.batch as u64),
            thousands(r.spans),
            thousands((r.spans as f64 / r.secs) as u64),
            r.p50_ms,
            r.p99_ms,
            r.store_secs,
            r.secs,
            if r.wire_bytes > 0 {
                format!("{:.0}", r.wire_bytes as f64 / r.spans as f64)
            } else {
                "—".into()
            },
            r.cpu_self,
            r.cpu_ch,
            r.load
        );
    }
    println!();
    println!("## Bytes per span on disk");
    println!();
    println!("| backend | spans stored | measured | bytes | bytes/span | notes |");
    println!("|---|---:|---|---:|---:|---|");
    for s in &disk {
        println!(
            "| {} | {} | {} | {} | **{:.1}** | {} |",
            s.backend,
            thousands(s.spans),
            s.what,
            mib(s.bytes),
            s.bytes as f64 / s.spans.max(1) as f64,
            s.extra
        );
    }
    println!();
    println!(
        "whole run: {:.0} s; load average at the end: {}",
        started.elapsed().as_secs_f64(),
        loadavg()
    );
}
