//! The embedded store: a DuckDB database in a directory (`--data`).
//!
//! - Spans go to one table per UTC day (`spans_<days since epoch>`), so
//!   retention is `DROP TABLE` and a time-range query reads only its days.
//! - A batch is written in one transaction together with its entry in
//!   `batches` (agent, session, seq): a re-sent batch finds its entry and
//!   writes nothing, and a crash leaves either all of a batch or none.
//!   DuckDB commits through its write-ahead log, so an acknowledged batch
//!   survives `kill -9`.
//! - The log is folded into the tables (a checkpoint) once it passes
//!   [`CHECKPOINT_THRESHOLD`], not DuckDB's default 16 MiB: with small
//!   checkpoints the commits that checkpoint took most of the write time
//!   and left free blocks in the file (row groups already on disk
//!   rewritten); at 64 MB the store's writes were 1.4x to 2.3x faster
//!   (bench/server.md). Commits still go through the log, so durability is
//!   the same; a restart after a crash replays at most that much log.
//! - Rows go in through DuckDB's appender (columnar, no SQL per row).
//! - One connection writes; readers take their own connections from a
//!   small pool (DuckDB's MVCC lets them read while a batch is written).
//! - Metric rows go to tables of their own per granularity and day, in the
//!   same transaction ([`red`]); flow reports to `flows_<day>` tables,
//!   in the same transaction too ([`flows`]).

mod flows;
mod red;

use super::{service_row, Store, StoreError, WriteBatch, WriteOutcome};
use crate::query::{Dialect, KeyQuery, ServiceQuery, ServiceRow, SpanQuery};
use crate::schema::{column_list, day_of, from_values, ColType, Owned, StoredSpan, Value, COLUMNS};
use ::duckdb::types::{ToSql, ToSqlOutput, ValueRef};
use ::duckdb::{params, Connection};
use causeway_model::metric::Granularity;
use causeway_model::tags::TagKind;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The file inside the data directory.
pub const DB_FILE: &str = "causeway.duckdb";

/// Write-ahead log size that triggers a checkpoint (DuckDB's setting).
pub const CHECKPOINT_THRESHOLD: &str = "64MB";

pub struct DuckStore {
    dir: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// Days that have a table.
    days: Mutex<BTreeSet<u32>>,
    /// Granularities and days that have a metric table.
    metric_days: Mutex<BTreeSet<(Granularity, u32)>>,
    /// Days that have a flow table.
    flow_days: Mutex<BTreeSet<u32>>,
}

struct Duck;

impl Dialect for Duck {
    fn string(&self, s: &str) -> String {
        // Standard SQL: only the quote is special (no backslash escapes);
        // a NUL cannot be in the statement's text at all.
        let quoted = format!("'{}'", s.replace('\'', "''"));
        if quoted.contains('\0') {
            format!("({})", quoted.replace('\0', "' || chr(0) || '"))
        } else {
            quoted
        }
    }
    fn contains(&self, column: &str, needle: &str) -> String {
        format!("contains({column}, {needle})")
    }
}

impl ToSql for Value<'_> {
    fn to_sql(&self) -> ::duckdb::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Value::U(v) => ValueRef::UBigInt(v),
            Value::I(v) => ValueRef::BigInt(v),
            Value::S(s) => ValueRef::Text(s.as_bytes()),
        }))
    }
}

fn sql_type(t: ColType) -> &'static str {
    match t {
        ColType::U8 => "UTINYINT",
        ColType::U16 => "USMALLINT",
        ColType::U32 => "UINTEGER",
        ColType::U64 => "UBIGINT",
        ColType::I32 => "INTEGER",
        ColType::Str => "VARCHAR",
    }
}

fn table(day: u32) -> String {
    format!("spans_{day}")
}

fn read_span(row: &::duckdb::Row<'_>) -> ::duckdb::Result<StoredSpan> {
    let mut values = Vec::with_capacity(COLUMNS.len());
    for (i, c) in COLUMNS.iter().enumerate() {
        values.push(match c.ty {
            ColType::Str => Owned::S(row.get::<_, String>(i)?),
            ColType::I32 => Owned::I(row.get::<_, i64>(i)?),
            _ => Owned::U(row.get::<_, u64>(i)?),
        });
    }
    Ok(from_values(values))
}

impl DuckStore {
    /// Opens (creating if need be) the store in `dir`.
    pub fn open(dir: &Path) -> Result<DuckStore, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Other(format!("cannot create {}: {e}", dir.display())))?;
        let conn = Connection::open(dir.join(DB_FILE))?;
        conn.execute_batch(&format!(
            "SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'"
        ))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS tags (kind UTINYINT, id UBIGINT, value VARCHAR, PRIMARY KEY (kind, id));
             CREATE TABLE IF NOT EXISTS batches (agent UBIGINT, session UBIGINT, seq UBIGINT, day UINTEGER,
                 PRIMARY KEY (agent, session, seq));",
        )?;
        let mut days = BTreeSet::new();
        {
            let mut stmt = conn.prepare(
                "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'spans\\_%' ESCAPE '\\'",
            )?;
            let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
            for n in names {
                if let Some(d) = n?.strip_prefix("spans_").and_then(|d| d.parse().ok()) {
                    days.insert(d);
                }
            }
        }
        let metric_days = red::existing_days(&conn)?;
        red::add_missing_columns(&conn, &metric_days)?;
        let flow_days = flows::existing_days(&conn)?;
        Ok(DuckStore {
            dir: dir.to_owned(),
            writer: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
            days: Mutex::new(days),
            metric_days: Mutex::new(metric_days),
            flow_days: Mutex::new(flow_days),
        })
    }

    /// Runs `f` on a reader connection from the pool.
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = match self.readers.lock().map_err(poisoned)?.pop() {
            Some(c) => c,
            None => self.writer.lock().map_err(poisoned)?.try_clone()?,
        };
        let out = f(&conn);
        let mut pool = self.readers.lock().map_err(poisoned)?;
        if pool.len() < 8 {
            pool.push(conn);
        }
        out
    }

    /// The tables a time range touches, as one FROM item; None: no data.
    fn source(&self, from_us: u64, to_us: u64) -> Result<Option<String>, StoreError> {
        if to_us <= from_us {
            return Ok(None);
        }
        let days = self.days.lock().map_err(poisoned)?;
        let tables: Vec<String> = days
            .range(day_of(from_us)..=day_of(to_us - 1))
            .map(|d| table(*d))
            .collect();
        Ok(match tables.len() {
            0 => None,
            1 => Some(tables[0].clone()),
            _ => Some(format!(
                "({})",
                tables
                    .iter()
                    .map(|t| format!("SELECT * FROM {t}"))
                    .collect::<Vec<_>>()
                    .join(" UNION ALL ")
            )),
        })
    }

    fn all_days(&self) -> Result<Vec<u32>, StoreError> {
        Ok(self
            .days
            .lock()
            .map_err(poisoned)?
            .iter()
            .copied()
            .collect())
    }
}

/// Runs `f` in one read transaction on `c` (one snapshot for several
/// statements); the connection leaves it whatever `f` returns.
fn in_snapshot<T>(
    c: &Connection,
    f: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    c.execute_batch("BEGIN TRANSACTION")?;
    let out = f();
    match out {
        Ok(v) => {
            c.execute_batch("COMMIT")?;
            Ok(v)
        }
        Err(e) => {
            let _ = c.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

fn poisoned<T>(_: std::sync::PoisonError<T>) -> StoreError {
    StoreError::Other("a store lock was poisoned by a panic".into())
}

impl Store for DuckStore {
    fn kind(&self) -> &'static str {
        "duckdb"
    }

    fn write(&self, batch: &WriteBatch) -> Result<WriteOutcome, StoreError> {
        let mut by_day: BTreeMap<u32, Vec<&StoredSpan>> = BTreeMap::new();
        for s in &batch.spans {
            by_day
                .entry(day_of(s.row.start_time_us))
                .or_default()
                .push(s);
        }
        let mut conn = self.writer.lock().map_err(poisoned)?;
        let mut new_days = Vec::new();
        let tx = conn.transaction()?;
        let seen: i64 = tx.query_row(
            "SELECT count(*) FROM batches WHERE agent = ? AND session = ? AND seq = ?",
            params![batch.agent, batch.session, batch.seq],
            |r| r.get(0),
        )?;
        if seen > 0 {
            return Ok(WriteOutcome::Duplicate);
        }
        {
            let known = self.days.lock().map_err(poisoned)?;
            for day in by_day.keys().filter(|d| !known.contains(d)) {
                let cols = COLUMNS
                    .iter()
                    .map(|c| format!("{} {}", c.name, sql_type(c.ty)))
                    .collect::<Vec<_>>()
                    .join(", ");
                tx.execute_batch(&format!(
                    "CREATE TABLE IF NOT EXISTS {} ({cols})",
                    table(*day)
                ))?;
                new_days.push(*day);
            }
        }
        let mut values: Vec<Value<'_>> = Vec::with_capacity(COLUMNS.len());
        for (day, spans) in &by_day {
            let mut app = tx.appender(&table(*day))?;
            for s in spans {
                values.clear();
                values.extend(COLUMNS.iter().map(|c| (c.get)(s)));
                let row: Vec<&dyn ToSql> = values.iter().map(|v| v as &dyn ToSql).collect();
                app.append_row(row.as_slice())?;
            }
            app.flush()?;
        }
        let new_metric_days = red::write(self, &tx, &batch.metrics)?;
        let new_flow_days = flows::write(self, &tx, &batch.flows)?;
        {
            let mut stmt = tx.prepare("INSERT OR IGNORE INTO tags VALUES (?, ?, ?)")?;
            for (kind, id, value) in &batch.tags {
                stmt.execute(params![kind.code() as u8, id, value])?;
            }
        }
        // The batch is remembered as long as its newest rows are kept.
        let day = by_day
            .keys()
            .copied()
            .chain(batch.metrics.iter().map(|m| m.day()))
            .chain(batch.flows.iter().map(|f| f.day()))
            .max()
            .unwrap_or(0);
        tx.execute(
            "INSERT INTO batches VALUES (?, ?, ?, ?)",
            params![batch.agent, batch.session, batch.seq, day],
        )?;
        tx.commit()?;
        self.days.lock().map_err(poisoned)?.extend(new_days);
        self.metric_days
            .lock()
            .map_err(poisoned)?
            .extend(new_metric_days);
        self.flow_days
            .lock()
            .map_err(poisoned)?
            .extend(new_flow_days);
        Ok(WriteOutcome::Stored(batch.spans.len()))
    }

    fn spans(&self, q: &SpanQuery) -> Result<Vec<StoredSpan>, StoreError> {
        // Day by day, newest first, each day's table asked for what the
        // page still lacks: every span of a day is newer than every span of
        // the days before it, so the concatenation is the answer. Each
        // statement is a top-N over one table, which DuckDB answers fast; a
        // UNION ALL of the days under one ORDER BY/LIMIT took 10x to 40x as
        // long over a 24 h range of 10 M spans (bench/server.md).
        // One transaction: every day is read at the same snapshot.
        let q = q.clipped();
        if q.to_us <= q.from_us || q.limit == 0 {
            return Ok(Vec::new());
        }
        let days: Vec<u32> = self
            .days
            .lock()
            .map_err(poisoned)?
            .range(day_of(q.from_us)..=day_of(q.to_us - 1))
            .rev()
            .copied()
            .collect();
        if days.is_empty() {
            return Ok(Vec::new());
        }
        self.read(|c| {
            in_snapshot(c, || {
                let mut out: Vec<StoredSpan> = Vec::new();
                for day in days {
                    let left = q.limit as usize - out.len();
                    if left == 0 {
                        break;
                    }
                    let day_q = SpanQuery {
                        limit: left as u32,
                        ..q.clone()
                    };
                    let mut stmt = c.prepare(&day_q.sql(&table(day), &Duck))?;
                    for row in stmt.query_map([], read_span)? {
                        out.push(row?);
                    }
                }
                Ok(out)
            })
        })
    }

    fn spans_by_keys(&self, q: &KeyQuery) -> Result<Vec<StoredSpan>, StoreError> {
        let Some(src) = self.source(q.from_us, q.to_us)? else {
            return Ok(Vec::new());
        };
        let Some(sql) = q.sql(&src, &Duck) else {
            return Ok(Vec::new());
        };
        self.read(|c| {
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map([], read_span)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn span(&self, id: u64) -> Result<Option<StoredSpan>, StoreError> {
        // Newest days first: recent spans are the ones looked up.
        for day in self.all_days()?.into_iter().rev() {
            let sql = format!(
                "SELECT {} FROM {} WHERE id = {id}",
                column_list(),
                table(day)
            );
            let found = self.read(|c| {
                let mut stmt = c.prepare(&sql)?;
                let mut rows = stmt.query_map([], read_span)?;
                Ok(rows.next().transpose()?)
            })?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    fn services(&self, q: &ServiceQuery) -> Result<Vec<ServiceRow>, StoreError> {
        let Some(src) = self.source(q.from_us, q.to_us)? else {
            return Ok(Vec::new());
        };
        let sql = q.sql(&src);
        self.read(|c| {
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map([], |r| {
                let mut v = [0u64; 9];
                for (i, x) in v.iter_mut().enumerate() {
                    *x = r.get::<_, Option<u64>>(i)?.unwrap_or(0);
                }
                Ok(service_row(v))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn tags(&self) -> Result<Vec<(TagKind, u64, String)>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare("SELECT kind, id, value FROM tags")?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, u32>(0)?,
                    r.get::<_, u64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?;
            let mut out = Vec::new();
            for r in rows {
                let (k, id, v) = r?;
                if let Some(k) = TagKind::from_code(k) {
                    out.push((k, id, v));
                }
            }
            Ok(out)
        })
    }

    fn drop_days_before(&self, day: u32) -> Result<usize, StoreError> {
        let old: Vec<u32> = self.all_days()?.into_iter().filter(|d| *d < day).collect();
        let conn = self.writer.lock().map_err(poisoned)?;
        for d in &old {
            conn.execute_batch(&format!("DROP TABLE IF EXISTS {}", table(*d)))?;
            self.days.lock().map_err(poisoned)?.remove(d);
        }
        flows::drop_before(self, &conn, day)?;
        conn.execute("DELETE FROM batches WHERE day < ?", params![day])?;
        Ok(old.len())
    }

    fn count(&self) -> Result<u64, StoreError> {
        let mut total = 0;
        for day in self.all_days()? {
            total += self.read(|c| {
                Ok(
                    c.query_row(&format!("SELECT count(*) FROM {}", table(day)), [], |r| {
                        r.get::<_, u64>(0)
                    })?,
                )
            })?;
        }
        Ok(total)
    }

    fn metric_query(
        &self,
        g: Granularity,
        from_us: u64,
        to_us: u64,
        render: &dyn Fn(&str, crate::red::Flavor) -> String,
    ) -> Result<Vec<Vec<u64>>, StoreError> {
        let Some(src) = red::source(self, g, from_us, to_us)? else {
            return Ok(Vec::new());
        };
        let sql = render(&src, crate::red::Flavor::DuckDb);
        self.read(|c| red::numbers(c, &sql))
    }

    fn drop_metric_days_before(&self, g: Granularity, day: u32) -> Result<usize, StoreError> {
        red::drop_before(self, g, day)
    }

    fn flows(
        &self,
        q: &crate::flows::FlowQuery,
    ) -> Result<Vec<crate::flows::StoredFlow>, StoreError> {
        flows::query(self, q)
    }

    fn disk_bytes(&self) -> Option<u64> {
        let mut total = 0;
        for e in std::fs::read_dir(&self.dir).ok()? {
            let e = e.ok()?;
            if e.file_name().to_string_lossy().starts_with(DB_FILE) {
                total += e.metadata().ok()?.len();
            }
        }
        Some(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance;

    fn fresh() -> (DuckStore, PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "causeway-duck-{}-{}",
            std::process::id(),
            conformance::unique()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        (DuckStore::open(&dir).expect("open"), dir)
    }

    #[test]
    fn conforms() {
        let (store, dir) = fresh();
        conformance::run(&store);
        drop(store);
        // Everything survives reopening.
        let again = DuckStore::open(&dir).expect("reopen");
        conformance::after_reopen(&again);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn span_listings_conform() {
        let (store, dir) = fresh();
        conformance::listing(&store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn finds_spans_by_trace_keys() {
        let (store, dir) = fresh();
        conformance::keys(&store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn metric_rows_conform() {
        let (store, dir) = fresh();
        crate::store::conformance_red::run(&store);
        drop(store);
        let again = DuckStore::open(&dir).expect("reopen");
        crate::store::conformance_red::after_reopen(&again);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A metric table made before the network figures were added gets
    /// their columns when the store opens, and takes today's rows.
    #[test]
    fn old_metric_tables_get_the_new_columns() {
        let (store, dir) = fresh();
        let batch = crate::store::conformance_red::metric_batch(
            "old",
            1,
            vec![causeway_model::wire::MetricRow {
                granularity_s: 1,
                time_us: 1_000_000,
                kind: 1,
                requests: 3,
                ..Default::default()
            }],
        );
        store.write(&batch).expect("write");
        {
            let conn = store.writer.lock().unwrap();
            for c in ["srt_count", "srt_sum_us", "resets", "net_packets_0"] {
                conn.execute_batch(&format!("ALTER TABLE metrics_1s_0 DROP COLUMN {c}"))
                    .expect("drop a column");
            }
        }
        drop(store);
        let store = DuckStore::open(&dir).expect("reopen");
        let mut next = batch.clone();
        next.seq = 2;
        for m in &mut next.metrics {
            m.seq = 2;
            m.row.resets = 4;
        }
        store.write(&next).expect("write after reopen");
        let sums = store
            .read(|c| {
                red::numbers(
                    c,
                    "SELECT sum(requests), sum(resets), count(*) FROM metrics_1s_0",
                )
            })
            .expect("sums");
        assert_eq!(sums, vec![vec![6, 4, 2]]);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn flow_reports_conform() {
        let (store, dir) = fresh();
        crate::store::conformance_flows::run(&store);
        drop(store);
        let again = DuckStore::open(&dir).expect("reopen");
        crate::store::conformance_flows::after_reopen(&again);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn checkpoints_at_the_threshold_set() {
        let (store, dir) = fresh();
        let got: String = store
            .read(|c| {
                Ok(
                    c.query_row("SELECT current_setting('checkpoint_threshold')", [], |r| {
                        r.get(0)
                    })?,
                )
            })
            .unwrap();
        // 64 MB, as DuckDB shows it.
        assert_eq!(got, "61.0 MiB");
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn string_literals_hold_any_text() {
        let (store, dir) = fresh();
        let conn = store.writer.lock().unwrap();
        for s in ["", "'", "''", "\\", "a'b\\'c", "\n\t\0x", "日本語", "%_"] {
            let got: String = conn
                .query_row(&format!("SELECT {}", Duck.string(s)), [], |r| r.get(0))
                .unwrap();
            assert_eq!(got, s);
        }
        drop(conn);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
