//! The embedded store's metric rows ([`crate::red`]): a table per
//! granularity and UTC day (`metrics_1s_<day>`, `metrics_1m_<day>`), so
//! each granularity's retention drops whole days. Rows are written in the
//! batch's transaction, with its spans and its entry in `batches`, so a
//! re-sent batch writes none of them again. DuckDB's appender takes no
//! lists, so rows go in as `INSERT ... VALUES` (numbers and arrays only:
//! nothing to escape).

use super::{poisoned, DuckStore};
use crate::red::{table_name, write_value, MType, StoredMetric, METRIC_COLUMNS};
use crate::schema::day_of;
use crate::store::StoreError;
use ::duckdb::{Connection, Transaction};
use causeway_model::metric::Granularity;
use std::collections::{BTreeMap, BTreeSet};

/// Rows per INSERT statement.
const ROWS_PER_INSERT: usize = 500;

fn sql_type(t: MType) -> &'static str {
    match t {
        MType::U8 => "UTINYINT",
        MType::U64 => "UBIGINT",
        MType::ArrU32 => "UINTEGER[]",
        MType::ArrU64 => "UBIGINT[]",
    }
}

pub(super) fn table(g: Granularity, day: u32) -> String {
    format!("{}_{day}", table_name(g))
}

/// The metric tables that exist: (granularity, day).
pub(super) fn existing_days(conn: &Connection) -> Result<BTreeSet<(Granularity, u32)>, StoreError> {
    let mut out = BTreeSet::new();
    let mut stmt = conn.prepare(
        "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'metrics\\_%' ESCAPE '\\'",
    )?;
    let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
    for n in names {
        let n = n?;
        for g in Granularity::ALL {
            let day = n
                .strip_prefix(table_name(g))
                .and_then(|rest| rest.strip_prefix('_'))
                .and_then(|d| d.parse().ok());
            if let Some(d) = day {
                out.insert((g, d));
            }
        }
    }
    Ok(out)
}

/// Adds to the metric tables of `days` the columns they lack: tables made
/// before columns were appended to [`METRIC_COLUMNS`] (the network
/// figures) get them, as 0 for their old rows, so new rows fit.
pub(super) fn add_missing_columns(
    conn: &Connection,
    days: &BTreeSet<(Granularity, u32)>,
) -> Result<(), StoreError> {
    for (g, d) in days {
        let t = table(*g, *d);
        let have: BTreeSet<String> = {
            let mut stmt =
                conn.prepare("SELECT column_name FROM duckdb_columns() WHERE table_name = ?")?;
            let names = stmt.query_map([&t], |r| r.get::<_, String>(0))?;
            names.collect::<Result<_, _>>()?
        };
        for c in METRIC_COLUMNS.iter().filter(|c| !have.contains(c.name)) {
            conn.execute_batch(&format!(
                "ALTER TABLE {t} ADD COLUMN {} {} DEFAULT 0",
                c.name,
                sql_type(c.ty)
            ))?;
        }
    }
    Ok(())
}

/// Writes `metrics` inside `tx`, creating the day tables it needs (those
/// are returned, to be noted once the transaction commits).
pub(super) fn write(
    store: &DuckStore,
    tx: &Transaction<'_>,
    metrics: &[StoredMetric],
) -> Result<Vec<(Granularity, u32)>, StoreError> {
    let mut by_table: BTreeMap<(Granularity, u32), Vec<&StoredMetric>> = BTreeMap::new();
    for m in metrics {
        let g = m.granularity().ok_or_else(|| {
            StoreError::Other(format!(
                "metric row of {} s windows (only 1 and 60)",
                m.row.granularity_s
            ))
        })?;
        by_table.entry((g, m.day())).or_default().push(m);
    }
    let mut created = Vec::new();
    {
        let known = store.metric_days.lock().map_err(poisoned)?;
        for key in by_table.keys().filter(|k| !known.contains(k)) {
            let cols = METRIC_COLUMNS
                .iter()
                .map(|c| format!("{} {}", c.name, sql_type(c.ty)))
                .collect::<Vec<_>>()
                .join(", ");
            tx.execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS {} ({cols})",
                table(key.0, key.1)
            ))?;
            created.push(*key);
        }
    }
    let names = format!(
        " ({})",
        METRIC_COLUMNS
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut sql = String::new();
    for ((g, day), rows) in &by_table {
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            sql.clear();
            sql.push_str("INSERT INTO ");
            sql.push_str(&table(*g, *day));
            // Named: a table that got columns later has them in another order.
            sql.push_str(&names);
            sql.push_str(" VALUES ");
            for (i, m) in chunk.iter().enumerate() {
                sql.push_str(if i == 0 { "(" } else { ",(" });
                for (j, c) in METRIC_COLUMNS.iter().enumerate() {
                    if j > 0 {
                        sql.push(',');
                    }
                    write_value(&mut sql, (c.get)(m));
                }
                sql.push(')');
            }
            tx.execute_batch(&sql)?;
        }
    }
    Ok(created)
}

/// The tables of granularity `g` a time range touches, as one FROM item.
pub(super) fn source(
    store: &DuckStore,
    g: Granularity,
    from_us: u64,
    to_us: u64,
) -> Result<Option<String>, StoreError> {
    if to_us <= from_us {
        return Ok(None);
    }
    let days = store.metric_days.lock().map_err(poisoned)?;
    let tables: Vec<String> = days
        .range((g, day_of(from_us))..=(g, day_of(to_us - 1)))
        .map(|(g, d)| table(*g, *d))
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
                .join(" UNION ALL BY NAME ")
        )),
    })
}

/// Runs a query; every value as a number (NULL, from an empty sum, as 0).
pub(super) fn numbers(conn: &Connection, sql: &str) -> Result<Vec<Vec<u64>>, StoreError> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query([])?;
    let n = rows.as_ref().map_or(0, |s| s.column_count());
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut v = Vec::with_capacity(n);
        for i in 0..n {
            v.push(r.get::<_, Option<u64>>(i)?.unwrap_or(0));
        }
        out.push(v);
    }
    Ok(out)
}

/// Drops the day tables of granularity `g` before `day`.
pub(super) fn drop_before(
    store: &DuckStore,
    g: Granularity,
    day: u32,
) -> Result<usize, StoreError> {
    let old: Vec<(Granularity, u32)> = store
        .metric_days
        .lock()
        .map_err(poisoned)?
        .iter()
        .filter(|(tg, d)| *tg == g && *d < day)
        .copied()
        .collect();
    let conn = store.writer.lock().map_err(poisoned)?;
    for (tg, d) in &old {
        conn.execute_batch(&format!("DROP TABLE IF EXISTS {}", table(*tg, *d)))?;
        store
            .metric_days
            .lock()
            .map_err(poisoned)?
            .remove(&(*tg, *d));
    }
    Ok(old.len())
}
