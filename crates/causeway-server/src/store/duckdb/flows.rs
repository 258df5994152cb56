//! The embedded store's flow reports ([`crate::flows`]): a table per UTC day
//! of the report (`flows_<day>`), so retention drops whole days as for
//! spans. Rows are appended in the batch's transaction, with its spans and
//! its entry in `batches`, so a re-sent batch writes none of them again.

use super::{poisoned, sql_type, DuckStore};
use crate::flows::{flow_from_values, FlowQuery, StoredFlow, FLOW_COLUMNS};
use crate::schema::{ColType, Owned, Value};
use crate::store::StoreError;
use ::duckdb::types::ToSql;
use ::duckdb::{Connection, Transaction};
use std::collections::{BTreeMap, BTreeSet};

pub(super) fn table(day: u32) -> String {
    format!("flows_{day}")
}

/// The days that have a flow table.
pub(super) fn existing_days(conn: &Connection) -> Result<BTreeSet<u32>, StoreError> {
    let mut out = BTreeSet::new();
    let mut stmt = conn.prepare(
        "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'flows\\_%' ESCAPE '\\'",
    )?;
    let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
    for n in names {
        if let Some(d) = n?.strip_prefix("flows_").and_then(|d| d.parse().ok()) {
            out.insert(d);
        }
    }
    Ok(out)
}

/// Appends `flows` inside `tx`, creating the day tables it needs (those
/// are returned, to be noted once the transaction commits).
pub(super) fn write(
    store: &DuckStore,
    tx: &Transaction<'_>,
    flows: &[StoredFlow],
) -> Result<Vec<u32>, StoreError> {
    let mut by_day: BTreeMap<u32, Vec<&StoredFlow>> = BTreeMap::new();
    for f in flows {
        by_day.entry(f.day()).or_default().push(f);
    }
    let mut created = Vec::new();
    {
        let known = store.flow_days.lock().map_err(poisoned)?;
        for day in by_day.keys().filter(|d| !known.contains(d)) {
            let cols = FLOW_COLUMNS
                .iter()
                .map(|c| format!("{} {}", c.name, sql_type(c.ty)))
                .collect::<Vec<_>>()
                .join(", ");
            tx.execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS {} ({cols})",
                table(*day)
            ))?;
            created.push(*day);
        }
    }
    let mut values: Vec<Value<'_>> = Vec::with_capacity(FLOW_COLUMNS.len());
    for (day, rows) in &by_day {
        let mut app = tx.appender(&table(*day))?;
        for f in rows {
            values.clear();
            values.extend(FLOW_COLUMNS.iter().map(|c| (c.get)(f)));
            let row: Vec<&dyn ToSql> = values.iter().map(|v| v as &dyn ToSql).collect();
            app.append_row(row.as_slice())?;
        }
        app.flush()?;
    }
    Ok(created)
}

/// Reads the flow reports `q` asks for.
pub(super) fn query(store: &DuckStore, q: &FlowQuery) -> Result<Vec<StoredFlow>, StoreError> {
    if q.to_us <= q.from_us {
        return Ok(Vec::new());
    }
    let tables: Vec<String> = {
        let days = store.flow_days.lock().map_err(poisoned)?;
        days.range(crate::schema::day_of(q.from_us)..=crate::schema::day_of(q.to_us - 1))
            .map(|d| table(*d))
            .collect()
    };
    let src = match tables.len() {
        0 => return Ok(Vec::new()),
        1 => tables[0].clone(),
        _ => format!(
            "({})",
            tables
                .iter()
                .map(|t| format!("SELECT * FROM {t}"))
                .collect::<Vec<_>>()
                .join(" UNION ALL ")
        ),
    };
    let sql = q.sql(&src);
    store.read(|c| {
        let mut stmt = c.prepare(&sql)?;
        let rows = stmt.query_map([], |row| {
            let mut values = Vec::with_capacity(FLOW_COLUMNS.len());
            for (i, c) in FLOW_COLUMNS.iter().enumerate() {
                values.push(match c.ty {
                    ColType::Str => Owned::S(row.get::<_, String>(i)?),
                    ColType::I32 => Owned::I(row.get::<_, i64>(i)?),
                    _ => Owned::U(row.get::<_, u64>(i)?),
                });
            }
            Ok(flow_from_values(values))
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    })
}

/// Drops the flow tables of the days before `day`.
pub(super) fn drop_before(
    store: &DuckStore,
    conn: &Connection,
    day: u32,
) -> Result<usize, StoreError> {
    let old: Vec<u32> = store
        .flow_days
        .lock()
        .map_err(poisoned)?
        .iter()
        .copied()
        .filter(|d| *d < day)
        .collect();
    for d in &old {
        conn.execute_batch(&format!("DROP TABLE IF EXISTS {}", table(*d)))?;
        store.flow_days.lock().map_err(poisoned)?.remove(d);
    }
    Ok(old.len())
}
