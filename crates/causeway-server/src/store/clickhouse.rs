//! ClickHouse over its HTTP interface, for deployments that outgrow one
//! machine: `clickhouse://HOST:PORT[,HOST:PORT...]/DB[?cluster=NAME]`.
//!
//! - One node: tables `spans` (MergeTree, partitioned by UTC day, ordered
//!   by start time) and `tags` (ReplacingMergeTree by kind and id).
//! - Several nodes and `cluster=NAME` (a cluster the servers' own
//!   `remote_servers` config defines): each node holds `spans_local` and
//!   `tags_local`, and `spans`/`tags` are Distributed tables over them on
//!   every node. A batch's rows all hash to one shard (the sharding key is
//!   the batch's identity), and inserts are synchronous
//!   (`insert_distributed_sync=1`), so an acknowledged batch is on its shard.
//!
//! Kept inside what ClickHouse 18.16 (Debian's) supports: integer
//! microsecond times, integer tag ids, no Map, no TTL (retention drops
//! partitions), no DateTime64, no LowCardinality.
//!
//! A batch is idempotent per day: before each day's rows are inserted (one
//! INSERT, one block, which MergeTree commits whole), the store looks for
//! rows of the same batch in that day; a re-sent batch finds them and
//! inserts nothing. Metric rows go the same way to tables of their own
//! ([`red`]).

mod flows;
mod red;

use super::{service_row, Store, StoreError, WriteBatch, WriteOutcome};
use crate::query::{Dialect, KeyQuery, ServiceQuery, ServiceRow, SpanQuery};
use crate::schema::{column_list, day_of, from_values, ColType, Owned, StoredSpan, Value, COLUMNS};
use causeway_model::metric::Granularity;
use causeway_model::tags::TagKind;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

const DAY_US: u64 = 86_400_000_000;
/// The first time window a span listing looks for its keys in.
const KEY_WINDOW_US: u64 = 10 * 60_000_000;

/// Where the store lives, from a `clickhouse://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host:port` of each node's HTTP interface; the first takes the
    /// queries and inserts.
    pub nodes: Vec<String>,
    pub database: String,
    /// The cluster (from the servers' `remote_servers`) to shard over.
    pub cluster: Option<String>,
}

impl Target {
    /// Parses `clickhouse://HOST:PORT[,HOST:PORT...]/DB[?cluster=NAME]`.
    pub fn parse(url: &str) -> Result<Target, StoreError> {
        let bad = |why: &str| StoreError::Other(format!("bad ClickHouse URL {url:?}: {why}"));
        let rest = url
            .strip_prefix("clickhouse://")
            .ok_or_else(|| bad("it must start with clickhouse://"))?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (hosts, database) = rest
            .split_once('/')
            .ok_or_else(|| bad("no /DATABASE after the hosts"))?;
        let word =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !word(database) {
            return Err(bad("the database name must be letters, digits and _"));
        }
        let nodes: Vec<String> = hosts.split(',').map(str::to_owned).collect();
        for n in &nodes {
            let ok = n
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
            if !ok {
                return Err(bad("each host needs a port (HOST:PORT, the HTTP port)"));
            }
        }
        let mut cluster = None;
        for kv in query.split('&').filter(|s| !s.is_empty()) {
            match kv.split_once('=') {
                Some(("cluster", c)) if word(c) => cluster = Some(c.to_owned()),
                _ => return Err(bad("the only option is cluster=NAME")),
            }
        }
        if nodes.len() > 1 && cluster.is_none() {
            return Err(bad("several hosts need cluster=NAME"));
        }
        Ok(Target {
            nodes,
            database: database.to_owned(),
            cluster,
        })
    }
}

pub struct ClickHouseStore {
    target: Target,
    http: ureq::Agent,
}

struct Ch;

impl Dialect for Ch {
    fn string(&self, s: &str) -> String {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('\'');
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                '\0' => out.push_str("\\0"),
                c => out.push(c),
            }
        }
        out.push('\'');
        out
    }
    fn contains(&self, column: &str, needle: &str) -> String {
        format!("position({column}, {needle}) > 0")
    }
}

fn sql_type(t: ColType) -> &'static str {
    match t {
        ColType::U8 => "UInt8",
        ColType::U16 => "UInt16",
        ColType::U32 => "UInt32",
        ColType::U64 => "UInt64",
        ColType::I32 => "Int32",
        ColType::Str => "String",
    }
}

/// Appends `s` escaped for TabSeparated.
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

/// A TabSeparated field back to its text.
fn tsv_unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn parse_span(line: &str) -> Result<StoredSpan, StoreError> {
    let fields: Vec<&str> = line.split('\t').collect();
    if fields.len() != COLUMNS.len() {
        return Err(StoreError::Other(format!(
            "ClickHouse returned {} columns, expected {}",
            fields.len(),
            COLUMNS.len()
        )));
    }
    let bad = |f: &str| StoreError::Other(format!("ClickHouse returned a bad number {f:?}"));
    let mut values = Vec::with_capacity(COLUMNS.len());
    for (c, f) in COLUMNS.iter().zip(fields) {
        values.push(match c.ty {
            ColType::Str => Owned::S(tsv_unescape(f)),
            ColType::I32 => Owned::I(f.parse().map_err(|_| bad(f))?),
            _ => Owned::U(f.parse().map_err(|_| bad(f))?),
        });
    }
    Ok(from_values(values))
}

impl ClickHouseStore {
    /// Connects and creates what is missing.
    pub fn open(url: &str) -> Result<ClickHouseStore, StoreError> {
        let target = Target::parse(url)?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_global(Some(Duration::from_secs(120)))
            .build();
        let store = ClickHouseStore {
            target,
            http: ureq::Agent::new_with_config(config),
        };
        store.create()?;
        red::create(&store)?;
        flows::create(&store)?;
        Ok(store)
    }

    fn db(&self) -> &str {
        &self.target.database
    }

    /// The table that holds a node's own rows.
    fn local(&self, table: &str) -> String {
        match self.target.cluster {
            Some(_) => format!("{}.{table}_local", self.db()),
            None => format!("{}.{table}", self.db()),
        }
    }

    /// Runs `sql` on `node` with `body` as data; returns the response text.
    fn run_on(
        &self,
        node: &str,
        sql: &str,
        body: &str,
        settings: &[(&str, &str)],
    ) -> Result<String, StoreError> {
        let url = format!("http://{node}/");
        let mut req = self.http.post(&url);
        let body = if body.is_empty() {
            // The statement itself travels as the body.
            sql.to_owned()
        } else {
            req = req.query("query", sql);
            body.to_owned()
        };
        for (k, v) in settings {
            req = req.query(*k, *v);
        }
        let err = |message: String| StoreError::ClickHouse {
            url: url.clone(),
            message,
        };
        let mut resp = req.send(body).map_err(|e| err(e.to_string()))?;
        let status = resp.status();
        let text = resp
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_string()
            .map_err(|e| err(e.to_string()))?;
        if !status.is_success() {
            return Err(err(format!("{status}: {}", text.trim())));
        }
        Ok(text)
    }

    fn run(&self, sql: &str) -> Result<String, StoreError> {
        self.run_on(&self.target.nodes[0], sql, "", &[])
    }

    fn create(&self) -> Result<(), StoreError> {
        let cols = COLUMNS
            .iter()
            .map(|c| format!("{} {}", c.name, sql_type(c.ty)))
            .collect::<Vec<_>>()
            .join(", ");
        for node in &self.target.nodes {
            self.run_on(
                node,
                &format!("CREATE DATABASE IF NOT EXISTS {}", self.db()),
                "",
                &[],
            )?;
            self.run_on(
                node,
                &format!(
                    "CREATE TABLE IF NOT EXISTS {} ({cols}) ENGINE = MergeTree() \
                     PARTITION BY intDiv(start_time_us, {DAY_US}) ORDER BY (start_time_us, id)",
                    self.local("spans")
                ),
                "",
                &[],
            )?;
            self.run_on(
                node,
                &format!(
                    "CREATE TABLE IF NOT EXISTS {} (kind UInt8, id UInt64, value String) \
                     ENGINE = ReplacingMergeTree() ORDER BY (kind, id)",
                    self.local("tags")
                ),
                "",
                &[],
            )?;
            if let Some(cluster) = &self.target.cluster {
                let db = self.db();
                self.run_on(
                    node,
                    &format!(
                        "CREATE TABLE IF NOT EXISTS {db}.spans AS {db}.spans_local \
                         ENGINE = Distributed({cluster}, {db}, spans_local, cityHash64(agent, session, seq))"
                    ),
                    "",
                    &[],
                )?;
                self.run_on(
                    node,
                    &format!(
                        "CREATE TABLE IF NOT EXISTS {db}.tags AS {db}.tags_local \
                         ENGINE = Distributed({cluster}, {db}, tags_local, id)"
                    ),
                    "",
                    &[],
                )?;
            }
        }
        Ok(())
    }

    fn insert(&self, table: &str, tsv: &str) -> Result<(), StoreError> {
        self.insert_named(table, "", tsv)
    }

    /// [`Self::insert`] naming the columns (`" (a, b)"`, or "" for all in
    /// table order).
    fn insert_named(&self, table: &str, columns: &str, tsv: &str) -> Result<(), StoreError> {
        self.run_on(
            &self.target.nodes[0],
            &format!(
                "INSERT INTO {}.{table}{columns} FORMAT TabSeparated",
                self.db()
            ),
            tsv,
            &[("insert_distributed_sync", "1")],
        )?;
        Ok(())
    }

    fn select_spans(&self, sql: &str) -> Result<Vec<StoredSpan>, StoreError> {
        self.run(&format!("{sql} FORMAT TabSeparated"))?
            .lines()
            .map(parse_span)
            .collect()
    }

    fn numbers(&self, sql: &str) -> Result<Vec<Vec<u64>>, StoreError> {
        let text = self.run(&format!("{sql} FORMAT TabSeparated"))?;
        text.lines()
            .map(|l| {
                l.split('\t')
                    .map(|f| {
                        f.parse().map_err(|_| {
                            StoreError::Other(format!("ClickHouse returned a bad number {f:?}"))
                        })
                    })
                    .collect()
            })
            .collect()
    }

    /// The active day partitions of `table`'s local table on `node`.
    fn partitions(&self, node: &str, table: &str) -> Result<BTreeSet<u32>, StoreError> {
        let (db, table) = self
            .local(table)
            .split_once('.')
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .unwrap_or_default();
        let text = self.run_on(
            node,
            &format!(
                "SELECT DISTINCT partition FROM system.parts WHERE database = {} AND table = {} \
                 AND active FORMAT TabSeparated",
                Ch.string(&db),
                Ch.string(&table)
            ),
            "",
            &[],
        )?;
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// Drops `table`'s day partitions before `day` on every node (spans,
    /// flows and metric rows alike): how many days went.
    pub(super) fn drop_partitions_before(
        &self,
        table: &str,
        day: u32,
    ) -> Result<usize, StoreError> {
        let mut dropped = BTreeSet::new();
        for node in &self.target.nodes {
            for p in self
                .partitions(node, table)?
                .into_iter()
                .filter(|p| *p < day)
            {
                self.run_on(
                    node,
                    &format!("ALTER TABLE {} DROP PARTITION {p}", self.local(table)),
                    "",
                    &[],
                )?;
                dropped.insert(p);
            }
        }
        Ok(dropped.len())
    }
}

impl Store for ClickHouseStore {
    fn kind(&self) -> &'static str {
        "clickhouse"
    }

    fn write(&self, batch: &WriteBatch) -> Result<WriteOutcome, StoreError> {
        if !batch.tags.is_empty() {
            let mut tsv = String::new();
            for (kind, id, value) in &batch.tags {
                let _ = write!(tsv, "{}\t{id}\t", kind.code());
                tsv_escape(&mut tsv, value);
                tsv.push('\n');
            }
            self.insert("tags", &tsv)?;
        }
        let mut by_day: BTreeMap<u32, Vec<&StoredSpan>> = BTreeMap::new();
        for s in &batch.spans {
            by_day
                .entry(day_of(s.row.start_time_us))
                .or_default()
                .push(s);
        }
        let mut stored = 0;
        let mut duplicate = !by_day.is_empty();
        for (day, spans) in by_day {
            let from = day as u64 * DAY_US;
            let seen = self.numbers(&format!(
                "SELECT count() FROM {}.spans WHERE start_time_us >= {from} AND start_time_us < {} \
                 AND agent = {} AND session = {} AND seq = {}",
                self.db(),
                from + DAY_US,
                batch.agent,
                batch.session,
                batch.seq
            ))?;
            if seen.first().and_then(|r| r.first()).copied().unwrap_or(0) > 0 {
                continue;
            }
            duplicate = false;
            let mut tsv = String::with_capacity(spans.len() * 400);
            for s in &spans {
                for (i, c) in COLUMNS.iter().enumerate() {
                    if i > 0 {
                        tsv.push('\t');
                    }
                    match (c.get)(s) {
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
            self.insert("spans", &tsv)?;
            stored += spans.len();
        }
        let (inserted, seen) =
            red::write(self, batch.agent, batch.session, batch.seq, &batch.metrics)?;
        let (flows_inserted, flows_seen) =
            flows::write(self, batch.agent, batch.session, batch.seq, &batch.flows)?;
        if inserted + flows_inserted > 0 {
            duplicate = false;
        } else if seen + flows_seen > 0 && batch.spans.is_empty() {
            duplicate = true;
        }
        Ok(if duplicate {
            WriteOutcome::Duplicate
        } else {
            WriteOutcome::Stored(stored)
        })
    }

    fn spans(&self, q: &SpanQuery) -> Result<Vec<StoredSpan>, StoreError> {
        // Keys first: the page's (start, id) by the filters, sorting two
        // columns (in time windows, below); then whole rows of those ids
        // only, found by PREWHERE (the id column alone is read until they
        // are) within the keys' time range. One ORDER BY/LIMIT over whole
        // rows made ClickHouse read every column of every span in range
        // (seconds over a 24 h range of 10 M spans, bench/server.md).
        let q = q.clipped();
        if q.to_us <= q.from_us || q.limit == 0 {
            return Ok(Vec::new());
        }
        let table = format!("{}.spans", self.db());
        // The keys in time windows, newest first, each asked for what the
        // page still lacks: 10 min, then 80 min, then 640 min before the
        // end, then the rest of the range. The sorting key starts with the
        // start time, so a window reads only its own granules, and a page
        // of recent spans is found without reading the whole range's keys
        // (ClickHouse 18.16 cannot read a part in key order and stop).
        // Windows are disjoint and each is older than the one before, so
        // their pages joined are the range's page.
        let mut keys: Vec<(u64, u64)> = Vec::new();
        let (mut end, mut width) = (q.to_us, KEY_WINDOW_US);
        for step in 0.. {
            let left = q.limit as usize - keys.len();
            if end <= q.from_us || left == 0 {
                break;
            }
            let start = if step < 3 {
                end.saturating_sub(width).max(q.from_us)
            } else {
                q.from_us
            };
            let window = SpanQuery {
                from_us: start,
                to_us: end,
                limit: left as u32,
                ..q.clone()
            };
            for r in self.numbers(&window.key_sql(&table, &Ch))? {
                match r[..] {
                    [time, id] => keys.push((time, id)),
                    _ => {
                        return Err(StoreError::Other(format!(
                            "ClickHouse returned {} columns, not 2",
                            r.len()
                        )))
                    }
                }
            }
            (end, width) = (start, width.saturating_mul(8));
        }
        // In pieces, so that a statement stays well under max_query_size.
        let mut rows = Vec::with_capacity(keys.len());
        for piece in keys.chunks(1000) {
            let (Some(newest), Some(oldest)) = (piece.first(), piece.last()) else {
                continue;
            };
            let ids: BTreeSet<u64> = piece.iter().map(|k| k.1).collect();
            rows.extend(self.select_spans(&format!(
                "SELECT {} FROM {table} PREWHERE id IN ({}) \
                 WHERE start_time_us >= {} AND start_time_us <= {}",
                column_list(),
                ids.iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                oldest.0,
                newest.0
            ))?);
        }
        // Exactly the keys' rows (an id alone could also name a row of
        // another time in that range), as many times as they were listed.
        let mut wanted: BTreeMap<(u64, u64), usize> = BTreeMap::new();
        for k in &keys {
            *wanted.entry(*k).or_default() += 1;
        }
        rows.retain(|s| match wanted.get_mut(&(s.row.start_time_us, s.id)) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        });
        rows.sort_by_key(|s| std::cmp::Reverse((s.row.start_time_us, s.id)));
        Ok(rows)
    }

    fn spans_by_keys(&self, q: &KeyQuery) -> Result<Vec<StoredSpan>, StoreError> {
        if q.to_us <= q.from_us {
            return Ok(Vec::new());
        }
        match q.sql(&format!("{}.spans", self.db()), &Ch) {
            Some(sql) => self.select_spans(&sql),
            None => Ok(Vec::new()),
        }
    }

    fn span(&self, id: u64) -> Result<Option<StoredSpan>, StoreError> {
        Ok(self
            .select_spans(&format!(
                // PREWHERE: only the id column is read until the row is
                // found (id is the key's second column: the index cannot
                // find it, and ClickHouse does not move key columns to
                // PREWHERE by itself).
                "SELECT {} FROM {}.spans PREWHERE id = {id} LIMIT 1",
                column_list(),
                self.db()
            ))?
            .into_iter()
            .next())
    }

    fn services(&self, q: &ServiceQuery) -> Result<Vec<ServiceRow>, StoreError> {
        self.numbers(&q.sql(&format!("{}.spans", self.db())))?
            .into_iter()
            .map(|r| {
                let v: [u64; 9] = r.try_into().map_err(|r: Vec<u64>| {
                    StoreError::Other(format!("ClickHouse returned {} columns, not 9", r.len()))
                })?;
                Ok(service_row(v))
            })
            .collect()
    }

    fn tags(&self) -> Result<Vec<(TagKind, u64, String)>, StoreError> {
        let text = self.run(&format!(
            "SELECT kind, id, any(value) FROM {}.tags GROUP BY kind, id FORMAT TabSeparated",
            self.db()
        ))?;
        let mut out = Vec::new();
        for l in text.lines() {
            let mut f = l.splitn(3, '\t');
            let (Some(k), Some(id), Some(v)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            if let (Some(k), Ok(id)) = (k.parse().ok().and_then(TagKind::from_code), id.parse()) {
                out.push((k, id, tsv_unescape(v)));
            }
        }
        Ok(out)
    }

    fn drop_days_before(&self, day: u32) -> Result<usize, StoreError> {
        let dropped = self.drop_partitions_before("spans", day)?;
        self.drop_partitions_before("flows", day)?;
        Ok(dropped)
    }

    fn count(&self) -> Result<u64, StoreError> {
        Ok(self
            .numbers(&format!("SELECT count() FROM {}.spans", self.db()))?
            .first()
            .and_then(|r| r.first())
            .copied()
            .unwrap_or(0))
    }

    fn metric_query(
        &self,
        g: Granularity,
        from_us: u64,
        to_us: u64,
        render: &dyn Fn(&str, crate::red::Flavor) -> String,
    ) -> Result<Vec<Vec<u64>>, StoreError> {
        if to_us <= from_us {
            return Ok(Vec::new());
        }
        let src = format!("{}.{}", self.db(), crate::red::table_name(g));
        self.numbers(&render(&src, crate::red::Flavor::ClickHouse))
    }

    fn drop_metric_days_before(&self, g: Granularity, day: u32) -> Result<usize, StoreError> {
        self.drop_partitions_before(crate::red::table_name(g), day)
    }

    fn flows(
        &self,
        q: &crate::flows::FlowQuery,
    ) -> Result<Vec<crate::flows::StoredFlow>, StoreError> {
        flows::query(self, q)
    }

    fn disk_bytes(&self) -> Option<u64> {
        let (db, table) = self
            .local("spans")
            .split_once('.')
            .map(|(a, b)| (a.to_owned(), b.to_owned()))?;
        let mut total = 0;
        for node in &self.target.nodes {
            let text = self
                .run_on(
                    node,
                    &format!(
                        "SELECT sum(bytes) FROM system.parts WHERE database = {} AND table = {} \
                         AND active FORMAT TabSeparated",
                        Ch.string(&db),
                        Ch.string(&table)
                    ),
                    "",
                    &[],
                )
                .ok()?;
            total += text.trim().parse::<u64>().ok()?;
        }
        Some(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::parse("clickhouse://127.0.0.1:8123/causeway").unwrap();
        assert_eq!(t.nodes, ["127.0.0.1:8123"]);
        assert_eq!((t.database.as_str(), t.cluster), ("causeway", None));
        let t = Target::parse("clickhouse://a:1,b:2/db?cluster=two").unwrap();
        assert_eq!((t.nodes.len(), t.cluster.as_deref()), (2, Some("two")));
        for bad in [
            "http://a:1/db",
            "clickhouse://a/db",
            "clickhouse://a:1",
            "clickhouse://a:1/d;b",
            "clickhouse://a:1,b:2/db",
            "clickhouse://a:1/db?x=1",
            "clickhouse://a:1/db?cluster=a'b",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tsv_round_trips() {
        for s in ["", "a\tb\nc\\d\0e\rf", "\\t", "日本"] {
            let mut e = String::new();
            tsv_escape(&mut e, s);
            assert!(!e.contains('\t') && !e.contains('\n'));
            assert_eq!(tsv_unescape(&e), s);
        }
    }
}
