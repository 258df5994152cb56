//! ClickHouse's metric rows ([`crate::red`]): tables `metrics_1s` and
//! `metrics_1m` (MergeTree partitioned by UTC day; with a cluster,
//! `*_local` tables on every node behind Distributed tables sharded like
//! spans, by the batch), arrays as `Array(UInt32)` / `Array(UInt64)`.
//! A batch's rows of one table and day go in as one INSERT, after looking
//! for rows of the same batch there: a re-sent batch inserts nothing again.

use super::{ClickHouseStore, DAY_US};
use crate::red::{table_name, write_value, MType, StoredMetric, METRIC_COLUMNS};
use crate::store::StoreError;
use causeway_model::metric::Granularity;
use std::collections::{BTreeMap, BTreeSet};

fn sql_type(t: MType) -> &'static str {
    match t {
        MType::U8 => "UInt8",
        MType::U64 => "UInt64",
        MType::ArrU32 => "Array(UInt32)",
        MType::ArrU64 => "Array(UInt64)",
    }
}

/// Creates the tables on every node.
pub(super) fn create(store: &ClickHouseStore) -> Result<(), StoreError> {
    let cols = METRIC_COLUMNS
        .iter()
        .map(|c| format!("{} {}", c.name, sql_type(c.ty)))
        .collect::<Vec<_>>()
        .join(", ");
    let db = store.db();
    for node in &store.target.nodes {
        for g in Granularity::ALL {
            let name = table_name(g);
            store.run_on(
                node,
                &format!(
                    "CREATE TABLE IF NOT EXISTS {} ({cols}) ENGINE = MergeTree() \
                     PARTITION BY intDiv(time_us, {DAY_US}) \
                     ORDER BY (kind, observation_point, time_us)",
                    store.local(name)
                ),
                "",
                &[],
            )?;
            if let Some(cluster) = &store.target.cluster {
                store.run_on(
                    node,
                    &format!(
                        "CREATE TABLE IF NOT EXISTS {db}.{name} AS {db}.{name}_local \
                         ENGINE = Distributed({cluster}, {db}, {name}_local, cityHash64(agent, session, seq))"
                    ),
                    "",
                    &[],
                )?;
            }
            // Tables made before columns were appended to METRIC_COLUMNS
            // (the network figures) get them, 0 for their old rows.
            let mut tables = vec![store.local(name)];
            if store.target.cluster.is_some() {
                tables.push(format!("{db}.{name}"));
            }
            for t in tables {
                let (tdb, tname) = t.split_once('.').unwrap_or_default();
                let have: BTreeSet<String> = store
                    .run_on(
                        node,
                        &format!(
                            "SELECT name FROM system.columns WHERE database = '{tdb}' \
                             AND table = '{tname}' FORMAT TabSeparated"
                        ),
                        "",
                        &[],
                    )?
                    .lines()
                    .map(str::to_owned)
                    .collect();
                for c in METRIC_COLUMNS.iter().filter(|c| !have.contains(c.name)) {
                    store.run_on(
                        node,
                        &format!(
                            "ALTER TABLE {t} ADD COLUMN {} {} DEFAULT 0",
                            c.name,
                            sql_type(c.ty)
                        ),
                        "",
                        &[],
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// Writes a batch's metric rows; returns (blocks inserted, blocks found
/// already stored).
pub(super) fn write(
    store: &ClickHouseStore,
    agent: u64,
    session: u64,
    seq: u64,
    metrics: &[StoredMetric],
) -> Result<(usize, usize), StoreError> {
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
    let (mut inserted, mut seen) = (0, 0);
    for ((g, day), rows) in by_table {
        let from = day as u64 * DAY_US;
        let found = store.numbers(&format!(
            "SELECT count() FROM {}.{} WHERE time_us >= {from} AND time_us < {} \
             AND agent = {agent} AND session = {session} AND seq = {seq}",
            store.db(),
            table_name(g),
            from + DAY_US,
        ))?;
        if found.first().and_then(|r| r.first()).copied().unwrap_or(0) > 0 {
            seen += 1;
            continue;
        }
        let mut tsv = String::with_capacity(rows.len() * 200);
        for m in rows {
            for (i, c) in METRIC_COLUMNS.iter().enumerate() {
                if i > 0 {
                    tsv.push('\t');
                }
                write_value(&mut tsv, (c.get)(m));
            }
            tsv.push('\n');
        }
        // Named: a table that got columns later may order them otherwise.
        let names = format!(
            " ({})",
            METRIC_COLUMNS
                .iter()
                .map(|c| c.name)
                .collect::<Vec<_>>()
                .join(", ")
        );
        store.insert_named(table_name(g), &names, &tsv)?;
        inserted += 1;
    }
    Ok((inserted, seen))
}
