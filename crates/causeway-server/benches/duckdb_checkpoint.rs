//! What DuckDB's automatic checkpoints cost the embedded store's writes.
//!
//! The DuckDB store commits every batch; once the write-ahead log passes
//! `checkpoint_threshold` (16 MiB by default) the commit also checkpoints:
//! it compresses what the log holds into the table's row groups, and a row
//! group that was already on disk and half full is rewritten whole, its old
//! blocks left free in the file. The ingest bench shows the effect (slow
//! commits now and then, free blocks in the file); this bench measures it
//! apart: the same rows written the way `DuckStore::write` writes them (a
//! transaction per batch, the schema's columns through the appender) into
//! one table, once with DuckDB's default threshold and once with it raised
//! to 1 GiB (checkpoints then happen only when asked, or at 1 GiB of log).
//! Reported: rows/s in the write calls, time in commits, CPU seconds,
//! file size with used and free blocks, before and after a final
//! `CHECKPOINT`.
//!
//! Run: `cargo bench -p causeway-server --bench duckdb_checkpoint`. Knobs:
//! `CAUSEWAY_BENCH_CKPT_ROWS` (default 1000000), `CAUSEWAY_BENCH_LOAD_BATCH`
//! (default 50000), `CAUSEWAY_BENCH_CKPT_THRESHOLDS` (default
//! `default,1GB`; e.g. `default,64MB,256MB,1GB`).

mod common;

use causeway_server::schema::{ColType, Value, COLUMNS};
use common::gen::{write_batch, Source};
use common::*;
use std::time::Instant;

fn sql_type(t: ColType) -> &'static str {
    match t {
        ColType::Str => "VARCHAR",
        ColType::U8 => "UTINYINT",
        ColType::U16 => "USMALLINT",
        ColType::U32 => "UINTEGER",
        ColType::U64 => "UBIGINT",
        ColType::I32 => "INTEGER",
    }
}

fn run(setting: &str, n: u64, batch: usize) {
    let dir = fresh_dir("ckpt");
    let mut conn = duckdb::Connection::open(dir.join("db.duckdb")).expect("DuckDB");
    if !setting.is_empty() {
        conn.execute_batch(setting).expect("setting");
    }
    let cols = COLUMNS
        .iter()
        .map(|c| format!("{} {}", c.name, sql_type(c.ty)))
        .collect::<Vec<_>>()
        .join(", ");
    conn.execute_batch(&format!("CREATE TABLE spans ({cols})"))
        .expect("create");
    let end = now_us();
    let mut source = Source::new(5, end - 20 * 3_600_000_000, end, n);
    let (mut secs, mut commit) = (0.0, 0.0);
    let cpu0 = cpu_seconds(std::process::id());
    let mut gen_cpu = 0.0;
    let mut done = 0;
    let load = loadavg();
    while done < n {
        let take = (n - done).min(batch as u64 * 12);
        let c = cpu_seconds(std::process::id());
        let writes: Vec<_> = source
            .take(take, batch)
            .into_iter()
            .map(write_batch)
            .collect();
        gen_cpu += cpu_seconds(std::process::id()) - c;
        for w in &writes {
            let t = Instant::now();
            let tx = conn.transaction().expect("begin");
            {
                let mut app = tx.appender("spans").expect("appender");
                let mut values: Vec<Value<'_>> = Vec::with_capacity(COLUMNS.len());
                for s in &w.spans {
                    values.clear();
                    values.extend(COLUMNS.iter().map(|c| (c.get)(s)));
                    let row: Vec<&dyn duckdb::ToSql> =
                        values.iter().map(|v| v as &dyn duckdb::ToSql).collect();
                    app.append_row(row.as_slice()).expect("append");
                }
                app.flush().expect("flush");
            }
            let c = Instant::now();
            tx.commit().expect("commit");
            commit += c.elapsed().as_secs_f64();
            secs += t.elapsed().as_secs_f64();
        }
        done += take;
    }
    let cpu = cpu_seconds(std::process::id()) - cpu0 - gen_cpu;
    let (used, free) = duck_blocks(&conn);
    let file = dir_bytes(&dir);
    conn.execute_batch("CHECKPOINT").expect("CHECKPOINT");
    let (used2, free2) = duck_blocks(&conn);
    let file2 = dir_bytes(&dir);
    println!(
        "| {} | **{}** | {:.1} s of {:.1} s | {:.1} | {} (used {}, free {}) | {} (used {}, free {}) | **{:.1}** | {} |",
        if setting.is_empty() { "default (16 MiB)" } else { setting },
        thousands((n as f64 / secs) as u64),
        commit,
        secs,
        cpu,
        mib(file),
        mib(used),
        mib(free),
        mib(file2),
        mib(used2),
        mib(free2),
        file2 as f64 / n as f64,
        load
    );
    drop(conn);
    discard(&dir);
}

fn main() {
    let n = knob("CAUSEWAY_BENCH_CKPT_ROWS", 1_000_000, 20_000);
    let batch = knob("CAUSEWAY_BENCH_LOAD_BATCH", 50_000, 2_000) as usize;
    println!("# DuckDB checkpoint threshold bench");
    println!("machine: {}", machine());
    println!("rows: {n}; batch: {batch} spans per agent");
    println!();
    println!("| checkpoint_threshold | rows/s | in commits | CPU s (writes) | file after the writes | file after CHECKPOINT | B/row | load avg |");
    println!("|---|---:|---:|---:|---|---|---:|---|");
    for t in list("CAUSEWAY_BENCH_CKPT_THRESHOLDS", "default,1GB") {
        if t == "default" {
            run("", n, batch);
        } else {
            assert!(
                t.chars().all(|c| c.is_ascii_alphanumeric()),
                "a threshold is like 256MB: {t:?}"
            );
            run(&format!("SET checkpoint_threshold = '{t}'"), n, batch);
        }
    }
}
