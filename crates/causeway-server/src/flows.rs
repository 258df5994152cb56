//! The logical schema of stored flow reports (`l4_flow_log`), written once
//! like spans' ([`crate::schema`]): both stores derive their DDL, writes
//! and reads from [`FLOW_COLUMNS`]. A row is one report of one flow
//! ([`FlowRow`]: periodic while the flow lives, final when it ends) with
//! the batch it came in (agent, session, seq), which makes a re-sent batch
//! detectable. Rows are partitioned by the UTC day of `end_time_us` (the
//! report's time), like spans by theirs.

use crate::schema::{ColType, Owned, Value};
use causeway_model::wire::FlowRow;

/// A stored flow report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoredFlow {
    /// Tag id of the agent.
    pub agent: u64,
    pub session: u64,
    pub seq: u64,
    pub row: FlowRow,
}

impl StoredFlow {
    /// Its partition: the UTC day of the report.
    pub fn day(&self) -> u32 {
        crate::schema::day_of(self.row.end_time_us)
    }
}

/// A flow column: its name, type, and how to read and write it.
pub struct FlowColumn {
    pub name: &'static str,
    pub ty: ColType,
    pub get: for<'a> fn(&'a StoredFlow) -> Value<'a>,
    pub set: fn(&mut StoredFlow, Owned),
}

fn u(v: &Owned) -> u64 {
    match v {
        Owned::U(v) => *v,
        Owned::I(v) => *v as u64,
        Owned::S(s) => s.parse().unwrap_or(0),
    }
}

fn s(v: Owned) -> String {
    match v {
        Owned::S(s) => s,
        Owned::U(v) => v.to_string(),
        Owned::I(v) => v.to_string(),
    }
}

macro_rules! fcol {
    ($name:ident, top) => {
        FlowColumn {
            name: stringify!($name),
            ty: ColType::U64,
            get: |f| Value::U(f.$name),
            set: |f, v| f.$name = u(&v),
        }
    };
    ($name:ident, Str) => {
        FlowColumn {
            name: stringify!($name),
            ty: ColType::Str,
            get: |f| Value::S(&f.row.$name),
            set: |f, v| f.row.$name = s(v),
        }
    };
    ($name:ident, Bool) => {
        FlowColumn {
            name: stringify!($name),
            ty: ColType::U8,
            get: |f| Value::U(u64::from(f.row.$name)),
            set: |f, v| f.row.$name = u(&v) != 0,
        }
    };
    ($name:ident, $ty:ident) => {
        FlowColumn {
            name: stringify!($name),
            ty: ColType::$ty,
            get: |f| Value::U(f.row.$name as u64),
            set: |f, v| f.row.$name = u(&v) as _,
        }
    };
}

/// Every stored flow column, in table order.
pub static FLOW_COLUMNS: &[FlowColumn] = &[
    fcol!(agent, top),
    fcol!(session, top),
    fcol!(seq, top),
    fcol!(flow_id, U64),
    fcol!(l4_protocol, U32),
    fcol!(src_ip, Str),
    fcol!(src_port, U32),
    fcol!(dst_ip, Str),
    fcol!(dst_port, U32),
    fcol!(interface, Str),
    fcol!(start_time_us, U64),
    fcol!(end_time_us, U64),
    fcol!(period_start_us, U64),
    fcol!(new_flow, Bool),
    fcol!(close_type, U32),
    fcol!(packets_0, U64),
    fcol!(packets_1, U64),
    fcol!(bytes_0, U64),
    fcol!(bytes_1, U64),
    fcol!(payload_bytes_0, U64),
    fcol!(payload_bytes_1, U64),
    fcol!(total_packets_0, U64),
    fcol!(total_packets_1, U64),
    fcol!(total_bytes_0, U64),
    fcol!(total_bytes_1, U64),
    fcol!(retransmissions_0, U64),
    fcol!(retransmissions_1, U64),
    fcol!(out_of_order_0, U64),
    fcol!(out_of_order_1, U64),
    fcol!(zero_windows_0, U64),
    fcol!(zero_windows_1, U64),
    fcol!(resets_0, U64),
    fcol!(resets_1, U64),
    fcol!(syns_0, U64),
    fcol!(syns_1, U64),
    fcol!(fins_0, U64),
    fcol!(fins_1, U64),
    fcol!(rtt_client_us, U64),
    fcol!(rtt_server_us, U64),
    fcol!(srt_sum_us, U64),
    fcol!(srt_count, U64),
    fcol!(srt_max_us, U64),
    fcol!(l7_protocol, U32),
    fcol!(l7_requests, U64),
    fcol!(l7_errors, U64),
    fcol!(service_0, U64),
    fcol!(service_1, U64),
];

/// The comma-separated column list, in table order.
pub fn flow_column_list() -> String {
    FLOW_COLUMNS
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Builds a flow report from values in table order.
pub fn flow_from_values(values: Vec<Owned>) -> StoredFlow {
    let mut f = StoredFlow::default();
    for (c, v) in FLOW_COLUMNS.iter().zip(values) {
        (c.set)(&mut f, v);
    }
    f
}

/// Which flow reports to read: those whose report time (`end_time_us`)
/// is in `[from_us, to_us)`, optionally with `port` at either end and of
/// one close type, newest first, at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowQuery {
    pub from_us: u64,
    pub to_us: u64,
    pub port: Option<u16>,
    /// A `CloseType` code.
    pub close_type: Option<u32>,
    pub limit: u32,
}

impl FlowQuery {
    /// The SELECT over `source` (a table or a parenthesised union). Only
    /// numbers go in: nothing to quote.
    pub fn sql(&self, source: &str) -> String {
        let mut w = format!(
            "end_time_us >= {} AND end_time_us < {}",
            self.from_us, self.to_us
        );
        if let Some(p) = self.port {
            w.push_str(&format!(" AND (src_port = {p} OR dst_port = {p})"));
        }
        if let Some(c) = self.close_type {
            w.push_str(&format!(" AND close_type = {c}"));
        }
        format!(
            "SELECT {} FROM {source} WHERE {w} ORDER BY end_time_us DESC, agent, session, flow_id, period_start_us LIMIT {}",
            flow_column_list(),
            self.limit
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_round_trips() {
        let mut f = StoredFlow {
            agent: 1,
            session: 2,
            seq: 3,
            ..StoredFlow::default()
        };
        f.row.src_ip = "10.0.0.1".into();
        f.row.interface = "eth0".into();
        f.row.new_flow = true;
        f.row.dst_port = 80;
        f.row.service_1 = u64::MAX;
        f.row.end_time_us = 86_400_000_000 * 3 + 5;
        let values: Vec<Owned> = FLOW_COLUMNS
            .iter()
            .map(|c| match (c.get)(&f) {
                Value::U(v) => Owned::U(v),
                Value::I(v) => Owned::I(v),
                Value::S(s) => Owned::S(s.to_owned()),
            })
            .collect();
        assert_eq!(flow_from_values(values), f);
        assert_eq!(f.day(), 3);
        let names: std::collections::HashSet<&str> = FLOW_COLUMNS.iter().map(|c| c.name).collect();
        assert_eq!(names.len(), FLOW_COLUMNS.len());
    }

    #[test]
    fn queries_filter_by_numbers_only() {
        let q = FlowQuery {
            from_us: 10,
            to_us: 20,
            port: Some(80),
            close_type: Some(4),
            limit: 5,
        };
        let sql = q.sql("flows");
        assert!(
            sql.contains("end_time_us >= 10 AND end_time_us < 20"),
            "{sql}"
        );
        assert!(sql.contains("(src_port = 80 OR dst_port = 80)"), "{sql}");
        assert!(sql.contains("close_type = 4"), "{sql}");
        assert!(sql.ends_with("LIMIT 5"), "{sql}");
    }
}
