//! `/api/v1/spans` (and friends) latency over 10 M stored spans, on DuckDB
//! and on one ClickHouse node, side by side in one run.
//!
//! The same generated rows (36 hours of a 50-service deployment, ending
//! when the run starts) are loaded into both stores with `Store::write` in
//! big batches (one per agent, 50 000 spans by default); the load time is
//! reported, generation apart. Then the real HTTP API
//! (`causeway_server::api::router`, served by axum in this process on
//! 127.0.0.1, the dictionary loaded from the store as `causeway server`
//! does) is asked the typical questions over HTTP by a blocking client, one
//! at a time: a few warm-up calls, then timed calls (50 by default; fewer
//! when one call takes seconds, so that the run stays bounded: the count
//! is in the table). Latency is the client's wall time from sending the
//! request to having read the whole JSON answer.
//!
//! Time ranges are anchored at the end of the data (`from`/`to` in
//! microseconds, exactly what `since=15m` becomes inside the API), so that
//! the time the load took does not shift what "the last 15 minutes" holds.
//! ClickHouse is queried once its background merges have settled (the
//! number of parts left is reported).
//!
//! Run: `cargo bench -p causeway-server --bench api`. Knobs:
//! `CAUSEWAY_BENCH_SPANS` (default 10000000), `CAUSEWAY_BENCH_LOAD_BATCH`
//! (default 50000), `CAUSEWAY_BENCH_RUNS` (timed calls per query, default
//! 50), `CAUSEWAY_BENCH_QUERY_SECONDS` (time budget per query, default 10),
//! `CAUSEWAY_BENCH_BACKENDS` (default `duckdb,clickhouse`).

mod common;

use causeway_model::tags::{tag_id, TagKind};
use causeway_model::{L7Protocol, ResponseStatus};
use causeway_server::api::{router, ApiState};
use causeway_server::dict::Dictionary;
use causeway_server::metrics::ServerStats;
use causeway_server::query::{Dialect, SpanQuery};
use causeway_server::schema::{column_list, day_of};
use causeway_server::store::clickhouse::ClickHouseStore;
use causeway_server::store::duckdb::{DuckStore, DB_FILE};
use causeway_server::store::Store;
use common::gen::{write_batch, Source};
use common::*;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MIN_US: u64 = 60_000_000;
const HOUR_US: u64 = 60 * MIN_US;

struct Loaded {
    name: String,
    store: Arc<dyn Store>,
    write_secs: f64,
    batches: u64,
    _ch: Option<ClickHouse>,
    dir: Option<std::path::PathBuf>,
    notes: String,
}

struct Row {
    backend: String,
    query: String,
    path: String,
    returned: String,
    runs: usize,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    load: String,
}

fn get(http: &ureq::Agent, url: &str) -> (u16, String) {
    let mut resp = http.get(url).call().expect("HTTP GET");
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_string()
        .expect("body");
    (status, body)
}

/// What an answer holds, in a few words (spans and the next cursor, or
/// services, or one span).
fn summary(body: &str) -> (String, Option<String>) {
    let v: Value = serde_json::from_str(body).expect("JSON answer");
    if let Some(spans) = v["spans"].as_array() {
        let cursor = v["next_cursor"].as_str().map(str::to_owned);
        (format!("{} spans", spans.len()), cursor)
    } else if let Some(s) = v["services"].as_array() {
        (format!("{} (service, protocol) rows", s.len()), None)
    } else if v["id"].is_string() {
        ("1 span".into(), None)
    } else {
        (body.chars().take(80).collect(), None)
    }
}

/// Times `call` (which returns what the answer held): three warm-up
/// calls, then `runs` timed ones, or fewer when a call takes so long that
/// `runs` would not fit in `budget` seconds (never fewer than five).
fn time_it(runs: usize, budget: f64, mut call: impl FnMut() -> String) -> Row {
    let mut returned = String::new();
    let mut warm = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        returned = call();
        warm.push(t.elapsed().as_secs_f64());
    }
    let each = warm.iter().sum::<f64>() / warm.len() as f64;
    let runs = runs.min(((budget / each.max(1e-6)) as usize).max(5));
    let load = loadavg();
    let mut lat = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let got = call();
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(got, returned, "the same answer every time");
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    Row {
        backend: String::new(),
        query: String::new(),
        path: String::new(),
        returned,
        runs,
        p50: percentile(&lat, 50.0),
        p90: percentile(&lat, 90.0),
        p99: percentile(&lat, 99.0),
        max: *lat.last().unwrap_or(&f64::NAN),
        load,
    }
}

/// Times `path` on the API at `base`.
fn measure(http: &ureq::Agent, base: &str, path: &str, runs: usize, budget: f64) -> Row {
    let url = format!("{base}{path}");
    let mut row = time_it(runs, budget, || {
        let (status, body) = get(http, &url);
        assert_eq!(status, 200, "{path}: {body}");
        summary(&body).0
    });
    row.path = path.to_owned();
    row
}

/// Serves the API over `store` on a free port until `stop` is dropped.
fn serve(
    store: Arc<dyn Store>,
) -> (
    String,
    tokio::runtime::Runtime,
    tokio::sync::oneshot::Sender<()>,
) {
    let dict = Arc::new(Dictionary::new());
    let tags = store.tags().expect("tags");
    dict.add(tags.iter().map(|(k, id, v)| (*k, *id, v.as_str())));
    let state = ApiState {
        store,
        dict,
        stats: Arc::new(ServerStats::default()),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    rt.spawn(async move {
        axum::serve(listener, router(state))
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
    });
    (format!("http://{addr}"), rt, tx)
}

/// DuckDB's spelling of literals (the store's own is private).
struct DuckSql;

impl Dialect for DuckSql {
    fn string(&self, s: &str) -> String {
        format!("'{}'", s.replace('\'', "''"))
    }
    fn contains(&self, column: &str, needle: &str) -> String {
        format!("contains({column}, {needle})")
    }
}

/// ClickHouse's spelling of literals.
struct ChSql;

impl Dialect for ChSql {
    fn string(&self, s: &str) -> String {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
    fn contains(&self, column: &str, needle: &str) -> String {
        format!("position({column}, {needle}) > 0")
    }
}

/// "N spans (ids HASH)": the answer, and a fingerprint of its order.
fn fingerprint(ids: &[u64]) -> String {
    let bytes: Vec<u8> = ids.iter().flat_map(|i| i.to_le_bytes()).collect();
    format!(
        "{} spans (ids {:016x})",
        ids.len(),
        xxhash_rust::xxh3::xxh3_64(&bytes)
    )
}

const ORDER: &str = "ORDER BY start_time_us DESC, id DESC";

/// Times the SQL the stores sent before they were reshaped (for the
/// questions that took seconds through the API), next to reshaped SQL in
/// one statement and to what the stores do now (`Store::spans`,
/// `Store::span`, called straight, not over HTTP): on DuckDB, the limit
/// pushed into each day's table (one statement: a UNION ALL of per-day
/// top-Ns; the store: day by day, newest first, each asked for what the
/// page still lacks); on ClickHouse, the keys of the page first and the
/// whole rows of those keys only (one statement: an IN subquery; the store:
/// two statements, the second by `PREWHERE id IN (...)`), and `PREWHERE`
/// for a span by id. Every shape must return the same spans in the same
/// order (checked). Consumes the stores (DuckDB's must be closed before its
/// file is opened here).
fn sql_shapes(
    stores: Vec<Loaded>,
    questions: &[(&str, SpanQuery)],
    id: u64,
    runs: usize,
    budget: f64,
) -> Vec<Row> {
    let cols = column_list();
    let mut out = Vec::new();
    let mut row = |backend: &str, question: &str, shape: &str, r: Row| {
        let mut r = r;
        r.backend = backend.to_owned();
        r.query = question.to_owned();
        r.path = shape.to_owned();
        eprintln!(
            "{backend:>10} {question:<40} {shape:<44} p50 {:>8.1} ms ({} runs, {})",
            r.p50, r.runs, r.returned
        );
        out.push(r);
    };
    let store_ids = |store: &dyn Store, q: &SpanQuery| {
        let ids: Vec<u64> = store
            .spans(q)
            .expect("Store::spans")
            .iter()
            .map(|s| s.id)
            .collect();
        fingerprint(&ids)
    };
    for s in stores {
        let Loaded {
            store, dir, _ch, ..
        } = s;
        drop(store);
        match (&dir, &_ch) {
            (Some(dir), None) => {
                let mut now = Vec::new();
                {
                    let store = DuckStore::open(dir).expect("DuckDB again");
                    for (_, q) in questions {
                        now.push(time_it(runs, budget, || store_ids(&store, q)));
                    }
                }
                // The store is closed: this connection is the only one on
                // the file.
                let conn = duckdb::Connection::open(dir.join(DB_FILE)).expect("DuckDB file");
                let ids = |sql: &str| {
                    let mut st = conn.prepare(sql).expect("prepare");
                    let ids: Vec<u64> = st
                        .query_map([], |r| r.get::<_, u64>(0))
                        .expect("query")
                        .collect::<Result<_, _>>()
                        .expect("rows");
                    fingerprint(&ids)
                };
                for ((question, q), c) in questions.iter().zip(now) {
                    let q = q.clipped();
                    let tables: Vec<String> = (day_of(q.from_us)..=day_of(q.to_us - 1))
                        .map(|d| format!("spans_{d}"))
                        .collect();
                    let union = tables
                        .iter()
                        .map(|t| format!("SELECT * FROM {t}"))
                        .collect::<Vec<_>>()
                        .join(" UNION ALL ");
                    let before_sql = q.sql(&format!("({union})"), &DuckSql);
                    let cond = q.condition(&DuckSql);
                    let pushed = format!(
                        "SELECT {cols} FROM ({}) {ORDER} LIMIT {}",
                        tables
                            .iter()
                            .map(|t| format!(
                                "(SELECT {cols} FROM {t} WHERE {cond} {ORDER} LIMIT {})",
                                q.limit
                            ))
                            .collect::<Vec<_>>()
                            .join(" UNION ALL "),
                        q.limit
                    );
                    let a = time_it(runs, budget, || ids(&before_sql));
                    let b = time_it(runs, budget, || ids(&pushed));
                    assert_eq!(a.returned, b.returned, "{question}: same answer");
                    assert_eq!(a.returned, c.returned, "{question}: same answer");
                    row("duckdb", question, "before: UNION ALL of the days", a);
                    row(
                        "duckdb",
                        question,
                        "LIMIT in each day's table (one statement)",
                        b,
                    );
                    row(
                        "duckdb",
                        question,
                        "the store now (day by day, newest first)",
                        c,
                    );
                }
                drop(conn);
                discard(dir);
            }
            (None, Some(ch)) => {
                let port = ch.http[0];
                let store = ClickHouseStore::open(&ch.url("bench")).expect("ClickHouse again");
                let ids = |sql: &str| {
                    let text = ch
                        .sql(port, &format!("{sql} FORMAT TabSeparated"))
                        .expect("ClickHouse query");
                    let ids: Vec<u64> = text
                        .lines()
                        .map(|l| l.split('\t').next().unwrap_or("").parse().expect("an id"))
                        .collect();
                    fingerprint(&ids)
                };
                for (question, q) in questions {
                    let before_sql = q.sql("bench.spans", &ChSql);
                    let keys_first = format!(
                        "SELECT {cols} FROM bench.spans WHERE start_time_us >= {} AND start_time_us < {} \
                         AND (start_time_us, id) IN (SELECT start_time_us, id FROM bench.spans WHERE {} {ORDER} LIMIT {}) \
                         {ORDER} LIMIT {}",
                        q.from_us,
                        q.to_us,
                        q.condition(&ChSql),
                        q.limit,
                        q.limit
                    );
                    let a = time_it(runs, budget, || ids(&before_sql));
                    let b = time_it(runs, budget, || ids(&keys_first));
                    let c = time_it(runs, budget, || store_ids(&store, q));
                    assert_eq!(a.returned, b.returned, "{question}: same answer");
                    assert_eq!(a.returned, c.returned, "{question}: same answer");
                    row(
                        "clickhouse",
                        question,
                        "before: ORDER BY/LIMIT over whole rows",
                        a,
                    );
                    row(
                        "clickhouse",
                        question,
                        "keys first, IN subquery (one statement)",
                        b,
                    );
                    row(
                        "clickhouse",
                        question,
                        "the store now (keys, then PREWHERE id IN)",
                        c,
                    );
                }
                let before_sql = format!("SELECT {cols} FROM bench.spans WHERE id = {id} LIMIT 1");
                let a = time_it(runs, budget, || ids(&before_sql));
                let c = time_it(runs, budget, || {
                    let s = store.span(id).expect("Store::span").expect("the span");
                    fingerprint(&[s.id])
                });
                assert_eq!(a.returned, c.returned, "span by id: same answer");
                row(
                    "clickhouse",
                    "span by id (recent)",
                    "before: WHERE id = …",
                    a,
                );
                row(
                    "clickhouse",
                    "span by id (recent)",
                    "the store now (PREWHERE id = …)",
                    c,
                );
            }
            _ => {}
        }
    }
    out
}

fn main() {
    let n = knob("CAUSEWAY_BENCH_SPANS", 10_000_000, 30_000);
    let batch = knob("CAUSEWAY_BENCH_LOAD_BATCH", 50_000, 2_000) as usize;
    let runs = knob("CAUSEWAY_BENCH_RUNS", 50, 5) as usize;
    let budget = knob("CAUSEWAY_BENCH_QUERY_SECONDS", 10, 5) as f64;
    let backends = list("CAUSEWAY_BENCH_BACKENDS", "duckdb,clickhouse");
    println!("# API latency bench");
    println!("machine: {}", machine());
    println!("spans: {n}; load batch: {batch}; runs: {runs}; budget per query: {budget} s; backends: {backends:?}");
    let started = Instant::now();

    // --- the stores -------------------------------------------------------
    let mut stores: Vec<Loaded> = Vec::new();
    for b in &backends {
        match b.as_str() {
            "duckdb" => {
                let dir = fresh_dir("api-duckdb");
                stores.push(Loaded {
                    name: "duckdb".into(),
                    store: Arc::new(DuckStore::open(&dir).expect("DuckDB")),
                    write_secs: 0.0,
                    batches: 0,
                    _ch: None,
                    dir: Some(dir),
                    notes: String::new(),
                });
            }
            "clickhouse" => {
                if let Some(why) = clickhouse_missing() {
                    skip_loudly("the ClickHouse backend of the API bench", &why);
                    continue;
                }
                let ch = ClickHouse::start(1, "api");
                let store = ClickHouseStore::open(&ch.url("bench")).expect("ClickHouse");
                stores.push(Loaded {
                    name: "clickhouse".into(),
                    store: Arc::new(store),
                    write_secs: 0.0,
                    batches: 0,
                    _ch: Some(ch),
                    dir: None,
                    notes: String::new(),
                });
            }
            other => panic!("unknown backend {other:?} (duckdb, clickhouse)"),
        }
    }

    // --- the load ----------------------------------------------------------
    let end = now_us();
    let mut source = Source::new(99, end - 36 * HOUR_US, end, n);
    let load_started = Instant::now();
    let mut gen_secs = 0.0;
    let mut done = 0u64;
    // A span from each end of the data, for /span/{id}.
    let mut old_id = None;
    let mut last_report = Instant::now();
    while done < n {
        let take = (n - done).min(batch as u64 * 12);
        let t = Instant::now();
        let batches: Vec<_> = source
            .take(take, batch)
            .into_iter()
            .map(write_batch)
            .collect();
        gen_secs += t.elapsed().as_secs_f64();
        if old_id.is_none() {
            old_id = batches.first().and_then(|b| b.spans.get(100)).map(|s| s.id);
        }
        for w in &batches {
            for s in stores.iter_mut() {
                let t = Instant::now();
                s.store.write(w).expect("Store::write");
                s.write_secs += t.elapsed().as_secs_f64();
                s.batches += 1;
            }
        }
        done += take;
        if last_report.elapsed() > Duration::from_secs(30) {
            eprintln!(
                "loaded {done} spans in {:.0} s",
                load_started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
    }
    let load_secs = load_started.elapsed().as_secs_f64();
    let old_id = old_id.expect("a first span");
    for s in stores.iter_mut() {
        assert_eq!(s.store.count().expect("count"), n, "{}: stored", s.name);
        if let Some(ch) = &s._ch {
            // Let background merges settle (at most two minutes).
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(120) {
                let merging = ch
                    .sql(ch.http[0], "SELECT count() FROM system.merges")
                    .map(|r| r.trim().to_owned())
                    .unwrap_or_default();
                if merging == "0" {
                    break;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            let (parts, _, bytes, _) = ch.parts("bench", "spans");
            s.notes = format!(
                "{parts} active parts after waiting {:.0} s for merges; {} on disk ({:.1} B/span)",
                t.elapsed().as_secs_f64(),
                mib(bytes),
                bytes as f64 / n as f64
            );
        }
        if let Some(dir) = &s.dir {
            let bytes = dir_bytes(dir);
            s.notes = format!(
                "{} on disk ({:.1} B/span, file and WAL as left by the load)",
                mib(bytes),
                bytes as f64 / n as f64
            );
        }
    }

    // --- the queries -----------------------------------------------------
    let http: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(300)))
        .build()
        .into();
    let world = source.world();
    let service = world.service_names()[3];
    let last15 = format!("from={}&to={end}", end - 15 * MIN_US);
    let day = format!("from={}&to={end}", end - 24 * HOUR_US);
    let mut results = Vec::new();
    // The same batches went to both stores, so span ids are the same.
    let mut recent_id = 0u64;
    let mut page50: Option<(u64, u64)> = None;
    for s in &stores {
        let (base, rt, stop) = serve(s.store.clone());
        // A recent span's id, and the cursor of page 50 of the 24 h list.
        let (_, body) = get(&http, &format!("{base}/api/v1/spans?{last15}&limit=1"));
        let v: Value = serde_json::from_str(&body).expect("JSON");
        let new_id = v["spans"][0]["id"]
            .as_str()
            .expect("a recent span")
            .to_owned();
        recent_id = new_id.parse().expect("a decimal id");
        // Page 50 of 100 starts after 4 900 spans: four pages of 1 000 and
        // one of 900 get there (the same keyset cursor 49 pages of 100 give).
        let t = Instant::now();
        let mut cursor = String::new();
        for limit in [1000, 1000, 1000, 1000, 900] {
            let sep = if cursor.is_empty() { "" } else { "&cursor=" };
            let (_, body) = get(
                &http,
                &format!("{base}/api/v1/spans?{day}&limit={limit}{sep}{cursor}"),
            );
            cursor = summary(&body).1.expect("a next cursor");
        }
        page50 = cursor
            .split_once(':')
            .and_then(|(t, i)| Some((t.parse().ok()?, i.parse().ok()?)));
        eprintln!(
            "{}: the cursor of page 50 found in {:.1} s",
            s.name,
            t.elapsed().as_secs_f64()
        );
        let queries: Vec<(&str, String)> = vec![
            (
                "newest 100, last 15 min",
                format!("/api/v1/spans?{last15}&limit=100"),
            ),
            (
                "newest 100, last 24 h",
                format!("/api/v1/spans?{day}&limit=100"),
            ),
            (
                "service, 24 h",
                format!("/api/v1/spans?{day}&service={service}&limit=100"),
            ),
            (
                "status=server_error, 24 h",
                format!("/api/v1/spans?{day}&status=server_error&limit=100"),
            ),
            (
                "protocol=mysql & min_duration=20ms, 24 h",
                format!("/api/v1/spans?{day}&protocol=mysql&min_duration=20ms&limit=100"),
            ),
            (
                "endpoint contains \"orders\", 24 h",
                format!("/api/v1/spans?{day}&endpoint=orders&limit=100"),
            ),
            (
                "page 50 (keyset cursor), 24 h",
                format!("/api/v1/spans?{day}&limit=100&cursor={cursor}"),
            ),
            ("services, 24 h", format!("/api/v1/services?{day}")),
            ("span by id (recent)", format!("/api/v1/span/{new_id}")),
            ("span by id (35 h old)", format!("/api/v1/span/{old_id}")),
        ];
        for (name, path) in queries {
            let mut r = measure(&http, &base, &path, runs, budget);
            r.backend = s.name.clone();
            r.query = name.to_owned();
            eprintln!(
                "{:>10} {:<42} p50 {:>8.1} ms  p99 {:>8.1} ms ({} runs, {})",
                r.backend, r.query, r.p50, r.p99, r.runs, r.returned
            );
            results.push(r);
        }
        drop(stop);
        rt.shutdown_timeout(Duration::from_secs(5));
    }

    let load_lines: Vec<String> = stores
        .iter()
        .map(|s| {
            format!(
                "| {} | {:.0} s | {} | {} | {} |",
                s.name,
                s.write_secs,
                thousands((n as f64 / s.write_secs) as u64),
                s.batches,
                s.notes
            )
        })
        .collect();

    // --- the slow queries' SQL, as the stores sent it and reshaped -------
    let day_q = SpanQuery {
        from_us: end - 24 * HOUR_US,
        to_us: end,
        limit: 100,
        ..SpanQuery::default()
    };
    let shape_questions = [
        ("newest 100, last 24 h", day_q.clone()),
        (
            "service, 24 h",
            SpanQuery {
                service: Some(tag_id(TagKind::Service, service)),
                ..day_q.clone()
            },
        ),
        (
            "status=server_error, 24 h",
            SpanQuery {
                status: Some(ResponseStatus::ServerError),
                ..day_q.clone()
            },
        ),
        (
            "protocol=mysql & min_duration=20ms, 24 h",
            SpanQuery {
                protocol: Some(L7Protocol::Mysql),
                min_duration_us: Some(20_000),
                ..day_q.clone()
            },
        ),
        (
            "endpoint contains \"orders\", 24 h",
            SpanQuery {
                endpoint: Some("orders".into()),
                ..day_q.clone()
            },
        ),
        (
            "page 50 (keyset cursor), 24 h",
            SpanQuery {
                before: Some(page50.expect("the cursor of page 50")),
                ..day_q.clone()
            },
        ),
    ];
    let shapes = sql_shapes(stores, &shape_questions, recent_id, runs, budget);

    // --- the report -------------------------------------------------------
    println!();
    println!(
        "## Load ({} spans, 36 h, batches of up to {batch} spans per agent)",
        thousands(n)
    );
    println!();
    println!("| backend | time in Store::write | spans/s | batches | store after the load |");
    println!("|---|---:|---:|---:|---|");
    for l in &load_lines {
        println!("{l}");
    }
    println!();
    println!(
        "whole load: {load_secs:.0} s wall, of which {gen_secs:.0} s generating rows (the stores were written one after the other, batch by batch)"
    );
    println!();
    println!("## Latency (client wall time, ms)");
    println!();
    println!("| backend | query | answer | runs | p50 | p90 | p99 | max | load avg |");
    println!("|---|---|---|---:|---:|---:|---:|---:|---|");
    for r in &results {
        println!(
            "| {} | {} | {} | {} | **{:.1}** | {:.1} | {:.1} | {:.1} | {} |",
            r.backend, r.query, r.returned, r.runs, r.p50, r.p90, r.p99, r.max, r.load
        );
    }
    println!();
    println!("## The slow questions' SQL: as the stores sent it before, reshaped in one statement, and the stores now (ms)");
    println!();
    println!("SQL run straight on the database (DuckDB: a connection of its own on the store's file, after the API is done; ClickHouse: its HTTP interface); \"the store now\": Store::spans / Store::span called in this process, not through the API. Every shape returned the same spans in the same order (checked; \"ids\" is a hash of the ids in order).");
    println!();
    println!("| backend | question | SQL | answer | runs | p50 | p90 | p99 | max | load avg |");
    println!("|---|---|---|---|---:|---:|---:|---:|---:|---|");
    for r in &shapes {
        println!(
            "| {} | {} | {} | {} | {} | **{:.1}** | {:.1} | {:.1} | {:.1} | {} |",
            r.backend, r.query, r.path, r.returned, r.runs, r.p50, r.p90, r.p99, r.max, r.load
        );
    }
    println!();
    println!("Paths (end = {end}):");
    for r in results.iter().filter(|r| r.backend == results[0].backend) {
        println!("- {}: `{}`", r.query, r.path);
    }
    println!();
    println!(
        "whole run: {:.0} s; load average at the end: {}",
        started.elapsed().as_secs_f64(),
        loadavg()
    );
}
