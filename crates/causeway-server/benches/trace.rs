//! Trace assembly latency with many spans stored (bench/tracing.md).
//!
//!     cargo bench -p causeway-server --bench trace
//!
//! Loads `CAUSEWAY_BENCH_SPANS` spans (default 10 000 000) into a fresh
//! DuckDB store and into a ClickHouse started here (Debian's
//! clickhouse-server; `CAUSEWAY_BENCH_CLICKHOUSE=0` skips it), spread over
//! one hour: request/response pairs seen at both ends (a TCP seq and
//! syscall trace ids each, as the agent records them), and among them
//! `CAUSEWAY_BENCH_TRACES` (default 20) traces of 50 spans: a client
//! calling a service whose thread makes 24 calls, each seen at both ends.
//! Then assembles each of those traces from its last leaf (the most rounds)
//! and from its root, and prints the latencies.

use causeway_model::wire::SpanRow;
use causeway_model::ObservationPoint;
use causeway_server::schema::{span_id, StoredSpan};
use causeway_server::store::clickhouse::ClickHouseStore;
use causeway_server::store::duckdb::DuckStore;
use causeway_server::store::{Store, WriteBatch};
use causeway_server::trace::{assemble, TraceOptions};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const HOUR_US: u64 = 3_600_000_000;
const AGENT: u64 = 0xbe;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// A small deterministic generator (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn row(obs: ObservationPoint, pid: u32, start: u64, end: u64) -> SpanRow {
    SpanRow {
        start_time_us: start,
        end_time_us: end,
        observation_point: obs.code(),
        protocol: 1,
        l4_protocol: 6,
        pid,
        src_ip: "10.0.0.1".into(),
        dst_ip: "10.0.0.2".into(),
        request_type: "GET".into(),
        request_resource: "/api/items".into(),
        endpoint: "/api/items".into(),
        response_code: Some(200),
        ..SpanRow::default()
    }
}

/// One request seen at both ends: (client, server).
fn pair(
    rng: &mut Rng,
    start: u64,
    dur: u64,
    (client_pid, server_pid): (u32, u32),
    (client_sys, server_sys): ((u64, u64), (u64, u64)),
) -> [SpanRow; 2] {
    let seq = (rng.next() as u32).max(1);
    let port = 1024 + (rng.next() % 60000) as u32;
    let mut c = row(ObservationPoint::Client, client_pid, start, start + dur);
    let mut s = row(
        ObservationPoint::Server,
        server_pid,
        start + dur / 10,
        start + dur - dur / 10,
    );
    for (r, (req, resp)) in [(&mut c, client_sys), (&mut s, server_sys)] {
        (r.src_port, r.dst_port) = (port, 8080);
        (r.req_tcp_seq, r.resp_tcp_seq) = (seq, seq.wrapping_add(1000).max(1));
        (r.syscall_trace_id_req, r.syscall_trace_id_resp) = (req, resp);
    }
    [c, s]
}

/// A 50-span trace starting at `t`: root pair, then 24 calls of the
/// server's thread (syscall ids chained), each a pair. Returns the rows,
/// with the index of the root and of the last leaf.
fn trace_rows(rng: &mut Rng, t: u64, next_sys: &mut u64) -> Vec<SpanRow> {
    let mut sys = || {
        *next_sys += 1;
        *next_sys
    };
    let (client_in, first) = (sys(), sys());
    let mut ids = vec![first];
    for _ in 0..24 {
        ids.push(sys());
    }
    let mut rows = Vec::with_capacity(50);
    rows.extend(pair(
        rng,
        t,
        100_000,
        (7, 8),
        ((client_in, sys()), (first, *ids.last().unwrap())),
    ));
    for i in 0..24 {
        let start = t + 12_000 + i as u64 * 3_000;
        let callee = sys();
        rows.extend(pair(
            rng,
            start,
            2_000,
            (8, 9),
            ((ids[i], ids[i + 1]), (callee, callee)),
        ));
    }
    rows
}

fn load(stores: &[&dyn Store], total: u64, traces: u64) -> Vec<(u64, u64)> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let t0 = 20_000 * 86_400_000_000 + 3_600_000_000;
    let mut next_sys = 1_000_000u64;
    // Where the traces go, among the background pairs.
    let every = (total / 2 / traces.max(1)).max(1);
    let per_us = HOUR_US as f64 / (total / 2).max(1) as f64;
    let mut ends = Vec::new();
    let mut seq = 0u64;
    let mut batch: Vec<SpanRow> = Vec::with_capacity(100_000);
    let mut written = 0u64;
    let started = Instant::now();
    let flush = |batch: &mut Vec<SpanRow>, seq: &mut u64, written: &mut u64| {
        *seq += 1;
        let spans: Vec<StoredSpan> = batch
            .drain(..)
            .enumerate()
            .map(|(i, row)| StoredSpan {
                id: span_id(AGENT, 1, *seq, i as u32),
                agent: AGENT,
                session: 1,
                seq: *seq,
                row,
            })
            .collect();
        let b = WriteBatch {
            agent: AGENT,
            session: 1,
            seq: *seq,
            spans,
            tags: vec![],
            metrics: vec![],
            flows: Vec::new(),
        };
        for s in stores {
            s.write(&b).expect("write");
        }
        *written += b.spans.len() as u64;
        b.spans
    };
    let mut pairs = 0u64;
    while written + (batch.len() as u64) < total {
        let t = t0 + (pairs as f64 * per_us) as u64;
        if pairs % every == every / 2 && (ends.len() as u64) < traces {
            // A trace: flush first so its rows form one batch we can name.
            if !batch.is_empty() {
                flush(&mut batch, &mut seq, &mut written);
            }
            batch.extend(trace_rows(&mut rng, t, &mut next_sys));
            let spans = flush(&mut batch, &mut seq, &mut written);
            ends.push((spans[0].id, spans[spans.len() - 1].id));
        } else {
            let (a, b) = (next_sys + 1, next_sys + 2);
            next_sys += 2;
            batch.extend(pair(&mut rng, t, 1_000, (3, 4), ((a, b), (a + 1, a + 1))));
        }
        pairs += 1;
        if batch.len() >= 100_000 {
            flush(&mut batch, &mut seq, &mut written);
            if written % 1_000_000 < 100_000 {
                eprintln!(
                    "  {written} spans written ({:.0}/s)",
                    written as f64 / started.elapsed().as_secs_f64()
                );
            }
        }
    }
    if !batch.is_empty() {
        flush(&mut batch, &mut seq, &mut written);
    }
    eprintln!(
        "  {written} spans written in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    ends
}

fn measure(name: &str, store: &dyn Store, ends: &[(u64, u64)]) {
    let opt = TraceOptions::default();
    for (what, pick) in [("from the root", 0), ("from the last leaf", 1)] {
        let mut times = Vec::new();
        let mut rounds = 0;
        for (root, leaf) in ends {
            let id = if pick == 0 { *root } else { *leaf };
            let started = Instant::now();
            let t = assemble(store, id, &opt).expect("assemble").expect("found");
            times.push(started.elapsed());
            assert_eq!(t.spans.len(), 50, "the whole trace and nothing else");
            rounds = rounds.max(t.iterations);
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{name:<24} {what:<20} {} traces: median {:.1} ms, p95 {:.1} ms, max {:.1} ms ({rounds} rounds)",
            times.len(),
            ms(times[times.len() / 2]),
            ms(times[(times.len() * 95 / 100).min(times.len() - 1)]),
            ms(times[times.len() - 1]),
        );
    }
}

/// One ClickHouse node on loopback (Debian's 18.16), stopped on drop.
struct ClickHouse(Child, String, std::path::PathBuf);

impl ClickHouse {
    fn start() -> Option<ClickHouse> {
        let free = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .ok()?
                .local_addr()
                .ok()
                .map(|a| a.port())
        };
        let (http, tcp) = (free()?, free()?);
        let d = std::env::temp_dir().join(format!("causeway-bench-ch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).ok()?;
        let dd = d.display();
        std::fs::write(
            d.join("users.xml"),
            "<?xml version=\"1.0\"?><yandex><profiles><default></default></profiles>\
             <users><default><password></password><networks><ip>127.0.0.1</ip></networks>\
             <profile>default</profile><quota>default</quota></default></users>\
             <quotas><default></default></quotas></yandex>",
        )
        .ok()?;
        std::fs::write(
            d.join("config.xml"),
            format!(
                "<?xml version=\"1.0\"?><yandex>\
                 <logger><level>warning</level><log>{dd}/server.log</log><errorlog>{dd}/error.log</errorlog></logger>\
                 <http_port>{http}</http_port><tcp_port>{tcp}</tcp_port><listen_host>127.0.0.1</listen_host>\
                 <path>{dd}/data/</path><tmp_path>{dd}/tmp/</tmp_path><user_files_path>{dd}/files/</user_files_path>\
                 <format_schema_path>{dd}/schemas/</format_schema_path>\
                 <users_config>{dd}/users.xml</users_config><default_profile>default</default_profile>\
                 <default_database>default</default_database><mark_cache_size>5368709120</mark_cache_size></yandex>"
            ),
        )
        .ok()?;
        let child = Command::new("clickhouse-server")
            .arg(format!("--config-file={dd}/config.xml"))
            .current_dir(&d)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let ch = ClickHouse(
            child,
            format!("clickhouse://127.0.0.1:{http}/bench_trace"),
            d,
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", http)).is_err() {
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Some(ch)
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.2);
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs it tiny.
    let quick = std::env::args().all(|a| a != "--bench");
    let total = env(
        "CAUSEWAY_BENCH_SPANS",
        if quick { 20_000 } else { 10_000_000 },
    );
    let traces = env("CAUSEWAY_BENCH_TRACES", if quick { 3 } else { 20 });
    let dir = std::env::temp_dir().join(format!("causeway-bench-trace-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let duck = DuckStore::open(&dir).expect("DuckDB");
    let ch = if env("CAUSEWAY_BENCH_CLICKHOUSE", 1) == 1 {
        let ch = ClickHouse::start();
        if ch.is_none() {
            eprintln!("clickhouse-server did not start: DuckDB only");
        }
        ch
    } else {
        None
    };
    let ch_store = ch
        .as_ref()
        .map(|c| ClickHouseStore::open(&c.1).expect("ClickHouse"));
    let mut stores: Vec<&dyn Store> = vec![&duck];
    if let Some(s) = &ch_store {
        stores.push(s);
    }
    eprintln!("loading {total} spans with {traces} traces of 50 spans");
    let ends = load(&stores, total, traces);
    println!(
        "{total} spans stored, {} traces of 50 spans among them",
        ends.len()
    );
    measure("DuckDB", &duck, &ends);
    if let Some(s) = &ch_store {
        measure("ClickHouse (one node)", s, &ends);
    }
    drop(stores);
    drop(duck);
    let _ = std::fs::remove_dir_all(&dir);
}
