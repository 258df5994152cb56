//! SmartEncoding measured: the same span rows written with the tags as
//! integer ids (as Causeway's schema stores them) and with the tags as the
//! strings they stand for, side by side, into DuckDB and ClickHouse; write
//! throughput (rows/s) and bytes on disk.
//!
//! The tag columns are the seven the schema has: `agent`, and `host`,
//! `process`, `service` for both sides (`_0` client, `_1` server). Three
//! encodings of them:
//!
//! - `hash64`: what Causeway stores, 64-bit ids that are a hash of kind and
//!   string (`causeway_model::tags::tag_id`), so agents encode without
//!   asking anyone (UBIGINT / UInt64);
//! - `dense32`: small integers numbered in order of first appearance, as a
//!   central dictionary would hand out (DeepFlow's controller does): the
//!   same information as `hash64` in values a column codec can shrink
//!   (UINTEGER / UInt32);
//! - `string`: the names themselves (VARCHAR / String), as a store without
//!   SmartEncoding holds them.
//!
//! Each is written twice: whole rows (every column of the schema, the tag
//! columns swapped), and tags only (start time plus the seven tag columns),
//! which isolates what the encoding changes. The variant schemas live here
//! only; the product schema stays integer-only.
//!
//! The writers are the stores' own ways, with the same code for every
//! encoding: DuckDB, a transaction per batch with the rows through the
//! appender (one database file per table); ClickHouse, one MergeTree table
//! per variant (partitioned by day, ordered by start time and id, as the
//! store's), one TabSeparated INSERT over HTTP per batch. Batches of the
//! variants are interleaved (batch k to every table, then batch k+1), so a
//! change in the shared machine's load hits them alike. Throughput counts
//! the time in the write calls only (the rows are generated beforehand).
//! Bytes: DuckDB, the file after `CHECKPOINT`; ClickHouse, `system.parts`
//! after `OPTIMIZE ... FINAL`, and the tag columns' own compressed bytes
//! from `system.columns`.
//!
//! Run: `cargo bench -p causeway-server --bench smart_encoding`. Knobs:
//! `CAUSEWAY_BENCH_SE_ROWS` (default 1000000), `CAUSEWAY_BENCH_SE_BATCH`
//! (rows per write, default 10000), `CAUSEWAY_BENCH_BACKENDS` (default
//! `duckdb,clickhouse`).

mod common;

use causeway_model::tags::TagKind;
use causeway_server::schema::{ColType, StoredSpan, Value, COLUMNS};
use causeway_server::store::WriteBatch;
use common::gen::{write_batch, Source};
use common::*;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Encoding {
    Hash64,
    Dense32,
    Str,
}

impl Encoding {
    const ALL: [Encoding; 3] = [Encoding::Hash64, Encoding::Dense32, Encoding::Str];
    fn name(self) -> &'static str {
        match self {
            Encoding::Hash64 => "hash64 (Causeway's ids)",
            Encoding::Dense32 => "dense32 (dictionary-numbered ids)",
            Encoding::Str => "string (names in the rows)",
        }
    }
    fn short(self) -> &'static str {
        match self {
            Encoding::Hash64 => "hash64",
            Encoding::Dense32 => "dense32",
            Encoding::Str => "string",
        }
    }
}

/// The tag kind a column holds, if it is a tag column.
fn tag_kind(column: &str) -> Option<TagKind> {
    match column {
        "agent" => Some(TagKind::Agent),
        "host_0" | "host_1" => Some(TagKind::Host),
        "process_0" | "process_1" => Some(TagKind::Process),
        "service_0" | "service_1" => Some(TagKind::Service),
        _ => None,
    }
}

/// Names and dense numbers of the tag ids seen so far (from the batches'
/// dictionary entries, as a server would learn them).
#[derive(Default)]
struct Names {
    names: HashMap<(TagKind, u64), String>,
    dense: HashMap<(TagKind, u64), u64>,
}

impl Names {
    fn learn(&mut self, w: &WriteBatch) {
        for (k, id, v) in &w.tags {
            self.names.entry((*k, *id)).or_insert_with(|| v.clone());
            let n = self.dense.len() as u64 + 1;
            self.dense.entry((*k, *id)).or_insert(n);
        }
    }
}

/// A variant table: which columns, which tag encoding.
#[derive(Clone, Copy)]
struct Variant {
    encoding: Encoding,
    tags_only: bool,
}

impl Variant {
    fn table(&self) -> String {
        format!(
            "spans_{}_{}",
            self.encoding.short(),
            if self.tags_only { "tags" } else { "rows" }
        )
    }
    fn label(&self) -> String {
        format!(
            "{}, {}",
            if self.tags_only {
                "tags only"
            } else {
                "whole rows"
            },
            self.encoding.name()
        )
    }
    /// Indices into COLUMNS.
    fn columns(&self) -> Vec<usize> {
        COLUMNS
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                !self.tags_only
                    || c.name == "start_time_us"
                    || c.name == "id"
                    || tag_kind(c.name).is_some()
            })
            .map(|(i, _)| i)
            .collect()
    }
    fn ty(&self, i: usize) -> ColType {
        let c = &COLUMNS[i];
        match (tag_kind(c.name), self.encoding) {
            (Some(_), Encoding::Str) => ColType::Str,
            (Some(_), Encoding::Dense32) => ColType::U32,
            _ => c.ty,
        }
    }
    fn value<'a>(&self, i: usize, s: &'a StoredSpan, names: &'a Names) -> Value<'a> {
        let c = &COLUMNS[i];
        let v = (c.get)(s);
        match (tag_kind(c.name), v) {
            (Some(k), Value::U(id)) if id != 0 => match self.encoding {
                Encoding::Hash64 => v,
                Encoding::Dense32 => Value::U(names.dense.get(&(k, id)).copied().unwrap_or(0)),
                Encoding::Str => Value::S(names.names.get(&(k, id)).map_or("", String::as_str)),
            },
            (Some(_), Value::U(_)) if self.encoding == Encoding::Str => Value::S(""),
            _ => v,
        }
    }
}

fn duck_type(t: ColType) -> &'static str {
    match t {
        ColType::U8 => "UTINYINT",
        ColType::U16 => "USMALLINT",
        ColType::U32 => "UINTEGER",
        ColType::U64 => "UBIGINT",
        ColType::I32 => "INTEGER",
        ColType::Str => "VARCHAR",
    }
}

fn ch_type(t: ColType) -> &'static str {
    match t {
        ColType::U8 => "UInt8",
        ColType::U16 => "UInt16",
        ColType::U32 => "UInt32",
        ColType::U64 => "UInt64",
        ColType::I32 => "Int32",
        ColType::Str => "String",
    }
}

/// Where a variant is written.
enum Sink {
    Duck {
        conn: duckdb::Connection,
        dir: PathBuf,
    },
    Ch {
        port: u16,
    },
}

struct Target {
    variant: Variant,
    cols: Vec<usize>,
    sink: Sink,
    secs: f64,
    rows: u64,
}

fn tsv_escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
}

impl Target {
    fn new(variant: Variant, backend: &str, ch: Option<&ClickHouse>) -> Target {
        let cols = variant.columns();
        let schema = |ty: fn(ColType) -> &'static str| {
            cols.iter()
                .map(|i| format!("{} {}", COLUMNS[*i].name, ty(variant.ty(*i))))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let sink = match (backend, ch) {
            ("duckdb", _) => {
                let dir = fresh_dir(&format!("se-{}", variant.table()));
                let conn = duckdb::Connection::open(dir.join("db.duckdb")).expect("DuckDB");
                conn.execute_batch(&format!(
                    "CREATE TABLE {} ({})",
                    variant.table(),
                    schema(duck_type)
                ))
                .expect("create");
                Sink::Duck { conn, dir }
            }
            (_, Some(ch)) => {
                let port = ch.http[0];
                ch.sql(port, "CREATE DATABASE IF NOT EXISTS se")
                    .expect("create database");
                ch.sql(
                    port,
                    &format!(
                        "CREATE TABLE se.{} ({}) ENGINE = MergeTree() \
                         PARTITION BY intDiv(start_time_us, 86400000000) ORDER BY (start_time_us, id)",
                        variant.table(),
                        schema(ch_type)
                    ),
                )
                .expect("create table");
                Sink::Ch { port }
            }
            _ => unreachable!(),
        };
        Target {
            variant,
            cols,
            sink,
            secs: 0.0,
            rows: 0,
        }
    }

    /// Writes one batch; the time it took is added to `secs`.
    fn write(&mut self, spans: &[StoredSpan], names: &Names, http: &ureq::Agent) {
        let t = Instant::now();
        match &mut self.sink {
            Sink::Duck { conn, .. } => {
                let tx = conn.transaction().expect("begin");
                {
                    let mut app = tx.appender(&self.variant.table()).expect("appender");
                    let mut values: Vec<Value<'_>> = Vec::with_capacity(self.cols.len());
                    for s in spans {
                        values.clear();
                        values.extend(self.cols.iter().map(|i| self.variant.value(*i, s, names)));
                        let row: Vec<&dyn duckdb::ToSql> =
                            values.iter().map(|v| v as &dyn duckdb::ToSql).collect();
                        app.append_row(row.as_slice()).expect("append");
                    }
                    app.flush().expect("flush");
                }
                tx.commit().expect("commit");
            }
            Sink::Ch { port } => {
                let mut tsv = String::with_capacity(spans.len() * 400);
                for s in spans {
                    for (k, i) in self.cols.iter().enumerate() {
                        if k > 0 {
                            tsv.push('\t');
                        }
                        match self.variant.value(*i, s, names) {
                            Value::U(v) => {
                                let _ = write!(tsv, "{v}");
                            }
                            Value::I(v) => {
                                let _ = write!(tsv, "{v}");
                            }
                            Value::S(v) => tsv_escape(&mut tsv, v),
                        }
                    }
                    tsv.push('\n');
                }
                let mut resp = http
                    .post(format!("http://127.0.0.1:{port}/"))
                    .query(
                        "query",
                        format!(
                            "INSERT INTO se.{} FORMAT TabSeparated",
                            self.variant.table()
                        ),
                    )
                    .send(tsv)
                    .expect("INSERT");
                let status = resp.status();
                let text = resp.body_mut().read_to_string().unwrap_or_default();
                assert!(status.is_success(), "INSERT: {status} {text}");
            }
        }
        self.secs += t.elapsed().as_secs_f64();
        self.rows += spans.len() as u64;
    }
}

struct Result_ {
    backend: String,
    label: String,
    encoding: Encoding,
    tags_only: bool,
    rows: u64,
    secs: f64,
    bytes: u64,
    tag_bytes: Option<u64>,
    notes: String,
}

fn run(backend: &str, rows: u64, batch: usize) -> Vec<Result_> {
    let ch = if backend == "clickhouse" {
        if let Some(why) = clickhouse_missing() {
            skip_loudly("the ClickHouse half of the SmartEncoding bench", &why);
            return Vec::new();
        }
        Some(ClickHouse::start(1, "se"))
    } else {
        None
    };
    let mut targets: Vec<Target> = Vec::new();
    for tags_only in [false, true] {
        for encoding in Encoding::ALL {
            targets.push(Target::new(
                Variant {
                    encoding,
                    tags_only,
                },
                backend,
                ch.as_ref(),
            ));
        }
    }
    let http: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let end = now_us();
    let mut source = Source::new(11, end - 36 * 3600 * 1_000_000, end, rows);
    let mut names = Names::default();
    let mut done = 0;
    let mut k = 0usize;
    while done < rows {
        let take = (rows - done).min(batch as u64 * 12);
        // One batch per agent, each written to every table in turn
        // (starting with a different table each time).
        for b in source.take(take, batch) {
            let w = write_batch(b);
            names.learn(&w);
            let n = targets.len();
            for j in 0..n {
                targets[(j + k) % n].write(&w.spans, &names, &http);
            }
            k += 1;
        }
        done += take;
    }
    let mut out = Vec::new();
    for t in targets {
        let mut notes = String::new();
        let (bytes, tag_bytes) = match t.sink {
            Sink::Duck { conn, dir } => {
                conn.execute_batch("CHECKPOINT").expect("CHECKPOINT");
                let (used, free) = duck_blocks(&conn);
                notes = format!(
                    "blocks used {}, free {}; tag columns: {}",
                    mib(used),
                    mib(free),
                    duck_compression(&conn, &t.variant.table(), |c| tag_kind(c).is_some())
                );
                drop(conn);
                let bytes = dir_bytes(&dir);
                discard(&dir);
                (bytes, None)
            }
            Sink::Ch { .. } => {
                let ch = ch.as_ref().expect("ClickHouse");
                let table = t.variant.table();
                ch.optimize_final("se", &table);
                let (_, stored, bytes, _) = ch.parts("se", &table);
                assert_eq!(stored, t.rows, "rows in {table}");
                let tag_bytes = ch
                    .column_bytes("se", &table)
                    .into_iter()
                    .filter(|(n, _)| tag_kind(n).is_some())
                    .map(|(_, b)| b)
                    .sum();
                (bytes, Some(tag_bytes))
            }
        };
        out.push(Result_ {
            backend: backend.to_owned(),
            label: t.variant.label(),
            encoding: t.variant.encoding,
            tags_only: t.variant.tags_only,
            rows: t.rows,
            secs: t.secs,
            bytes,
            tag_bytes,
            notes,
        });
    }
    out
}

fn main() {
    let rows = knob("CAUSEWAY_BENCH_SE_ROWS", 1_000_000, 5_000);
    let batch = knob("CAUSEWAY_BENCH_SE_BATCH", 10_000, 1_000) as usize;
    let backends = list("CAUSEWAY_BENCH_BACKENDS", "duckdb,clickhouse");
    println!("# SmartEncoding bench");
    println!("machine: {}", machine());
    println!("rows: {rows}; rows per write: {batch}; backends: {backends:?}");
    let started = Instant::now();
    let mut all = Vec::new();
    for b in &backends {
        if b != "duckdb" && b != "clickhouse" {
            panic!("unknown backend {b:?} (duckdb, clickhouse)");
        }
        let t = Instant::now();
        all.extend(run(b, rows, batch));
        eprintln!("{b}: {:.0} s", t.elapsed().as_secs_f64());
    }
    println!();
    println!("| backend | table | rows | rows/s (in write calls) | bytes on disk | bytes/row | tag columns' bytes | vs string: speed / size | notes |");
    println!("|---|---|---:|---:|---:|---:|---:|---|---|");
    for r in &all {
        let base = all
            .iter()
            .find(|x| {
                x.backend == r.backend && x.tags_only == r.tags_only && x.encoding == Encoding::Str
            })
            .expect("the string variant");
        println!(
            "| {} | {} | {} | **{}** | {} | **{:.1}** | {} | {:.2}× / {:.2}× | {} |",
            r.backend,
            r.label,
            thousands(r.rows),
            thousands((r.rows as f64 / r.secs) as u64),
            mib(r.bytes),
            r.bytes as f64 / r.rows.max(1) as f64,
            r.tag_bytes.map_or("—".into(), |b| format!(
                "{} ({:.2} B/row)",
                mib(b),
                b as f64 / r.rows.max(1) as f64
            )),
            (r.rows as f64 / r.secs) / (base.rows as f64 / base.secs),
            r.bytes as f64 / base.bytes.max(1) as f64,
            r.notes,
        );
    }
    println!();
    println!(
        "whole run: {:.0} s; load average at the end: {}",
        started.elapsed().as_secs_f64(),
        loadavg()
    );
}
