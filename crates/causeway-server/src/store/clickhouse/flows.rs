//! ClickHouse's flow reports ([`crate::flows`]): table `flows` (MergeTree
//! partitioned by the UTC day of the report; with a cluster, `flows_local`
//! on every node behind a Distributed table sharded like spans, by the
//! batch). A batch's reports of one day go in as one INSERT after looking
//! for rows of the same batch there: a re-sent batch inserts nothing again.

use super::{sql_type, tsv_escape, tsv_unescape, ClickHouseStore, DAY_US};
use crate::flows::{flow_from_values, FlowQuery, StoredFlow, FLOW_COLUMNS};
use crate::schema::{ColType, Owned, Value};
use crate::store::StoreError;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Creates the tables on every node.
pub(super) fn create(store: &ClickHouseStore) -> Result<(), StoreError> {
    let cols = FLOW_COLUMNS
        .iter()
        .map(|c| format!("{} {}", c.name, sql_type(c.ty)))
        .collect::<Vec<_>>()
        .join(", ");
    let db = store.db();
    for node in &store.target.nodes {
        store.run_on(
            node,
            &format!(
                "CREATE TABLE IF NOT EXISTS {} ({cols}) ENGINE = MergeTree() \
                 PARTITION BY intDiv(end_time_us, {DAY_US}) ORDER BY (end_time_us, agent, flow_id)",
                store.local("flows")
            ),
            "",
            &[],
        )?;
        if let Some(cluster) = &store.target.cluster {
            store.run_on(
                node,
                &format!(
                    "CREATE TABLE IF NOT EXISTS {db}.flows AS {db}.flows_local \
                     ENGINE = Distributed({cluster}, {db}, flows_local, cityHash64(agent, session, seq))"
                ),
                "",
                &[],
            )?;
        }
    }
    Ok(())
}

/// Writes a batch's flow reports; returns (blocks inserted, blocks found
/// already stored).
pub(super) fn write(
    store: &ClickHouseStore,
    agent: u64,
    session: u64,
    seq: u64,
    flows: &[StoredFlow],
) -> Result<(usize, usize), StoreError> {
    let mut by_day: BTreeMap<u32, Vec<&StoredFlow>> = BTreeMap::new();
    for f in flows {
        by_day.entry(f.day()).or_default().push(f);
    }
    let (mut inserted, mut seen) = (0, 0);
    for (day, rows) in by_day {
        let from = day as u64 * DAY_US;
        let found = store.numbers(&format!(
            "SELECT count() FROM {}.flows WHERE end_time_us >= {from} AND end_time_us < {} \
             AND agent = {agent} AND session = {session} AND seq = {seq}",
            store.db(),
            from + DAY_US,
        ))?;
        if found.first().and_then(|r| r.first()).copied().unwrap_or(0) > 0 {
            seen += 1;
            continue;
        }
        let mut tsv = String::with_capacity(rows.len() * 300);
        for f in rows {
            for (i, c) in FLOW_COLUMNS.iter().enumerate() {
                if i > 0 {
                    tsv.push('\t');
                }
                match (c.get)(f) {
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
        store.insert("flows", &tsv)?;
        inserted += 1;
    }
    Ok((inserted, seen))
}

/// Reads the flow reports `q` asks for.
pub(super) fn query(store: &ClickHouseStore, q: &FlowQuery) -> Result<Vec<StoredFlow>, StoreError> {
    if q.to_us <= q.from_us {
        return Ok(Vec::new());
    }
    let text = store.run(&format!(
        "{} FORMAT TabSeparated",
        q.sql(&format!("{}.flows", store.db()))
    ))?;
    text.lines()
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            if fields.len() != FLOW_COLUMNS.len() {
                return Err(StoreError::Other(format!(
                    "ClickHouse returned {} flow columns, expected {}",
                    fields.len(),
                    FLOW_COLUMNS.len()
                )));
            }
            let mut values = Vec::with_capacity(fields.len());
            for (c, f) in FLOW_COLUMNS.iter().zip(fields) {
                let bad = || StoreError::Other(format!("ClickHouse returned a bad number {f:?}"));
                values.push(match c.ty {
                    ColType::Str => Owned::S(tsv_unescape(f)),
                    ColType::I32 => Owned::I(f.parse().map_err(|_| bad())?),
                    _ => Owned::U(f.parse().map_err(|_| bad())?),
                });
            }
            Ok(flow_from_values(values))
        })
        .collect()
}
