//! The logical schema of stored spans, written once: both stores derive
//! their DDL, their writes and their reads from [`COLUMNS`], so the two
//! backends cannot drift apart.
//!
//! Everything is an integer or a string: no maps, no 64-bit datetimes, no
//! nullable columns (an optional value is a value plus a `has_` flag),
//! which keeps the schema inside what ClickHouse 18.16 supports. Tags are
//! integer ids (SmartEncoding); their strings live in the `tags` table.

use causeway_model::wire::SpanRow;

/// A stored span: the row the agent sent, the id the server gave it, and
/// the batch it came in (which makes re-sent batches detectable).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoredSpan {
    /// Unique over the store: a hash of (agent, session, seq, index in the
    /// batch), so a batch stored twice would give the same ids.
    pub id: u64,
    /// Tag id of the agent ([`causeway_model::tags::TagKind::Agent`]).
    pub agent: u64,
    pub session: u64,
    pub seq: u64,
    pub row: SpanRow,
}

/// A column's logical type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    U8,
    U16,
    U32,
    U64,
    I32,
    Str,
}

/// One value, borrowed when written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    U(u64),
    I(i64),
    S(&'a str),
}

/// One value read back.
#[derive(Debug, Clone, PartialEq)]
pub enum Owned {
    U(u64),
    I(i64),
    S(String),
}

impl Owned {
    fn u(&self) -> u64 {
        match self {
            Owned::U(v) => *v,
            Owned::I(v) => *v as u64,
            Owned::S(s) => s.parse().unwrap_or(0),
        }
    }
    fn i(&self) -> i64 {
        match self {
            Owned::U(v) => *v as i64,
            Owned::I(v) => *v,
            Owned::S(s) => s.parse().unwrap_or(0),
        }
    }
    fn s(self) -> String {
        match self {
            Owned::S(s) => s,
            Owned::U(v) => v.to_string(),
            Owned::I(v) => v.to_string(),
        }
    }
}

/// A column: its name, type, and how to read it from and write it to a
/// [`StoredSpan`].
pub struct Column {
    pub name: &'static str,
    pub ty: ColType,
    pub get: for<'a> fn(&'a StoredSpan) -> Value<'a>,
    pub set: fn(&mut StoredSpan, Owned),
}

macro_rules! col {
    ($name:ident, U64, top) => {
        Column {
            name: stringify!($name),
            ty: ColType::U64,
            get: |s| Value::U(s.$name),
            set: |s, v| s.$name = v.u(),
        }
    };
    ($name:ident, Str) => {
        Column {
            name: stringify!($name),
            ty: ColType::Str,
            get: |s| Value::S(&s.row.$name),
            set: |s, v| s.row.$name = v.s(),
        }
    };
    ($name:ident, Bool) => {
        Column {
            name: stringify!($name),
            ty: ColType::U8,
            get: |s| Value::U(s.row.$name as u64),
            set: |s, v| s.row.$name = v.u() != 0,
        }
    };
    ($name:ident, $ty:ident) => {
        Column {
            name: stringify!($name),
            ty: ColType::$ty,
            get: |s| Value::U(s.row.$name as u64),
            set: |s, v| s.row.$name = v.u() as _,
        }
    };
}

/// Every stored column, in table order.
pub static COLUMNS: &[Column] = &[
    col!(id, U64, top),
    Column {
        name: "agent",
        ty: ColType::U64,
        get: |s| Value::U(s.agent),
        set: |s, v| s.agent = v.u(),
    },
    col!(session, U64, top),
    col!(seq, U64, top),
    col!(start_time_us, U64),
    col!(end_time_us, U64),
    Column {
        name: "duration_us",
        ty: ColType::U64,
        get: |s| Value::U(s.row.end_time_us.saturating_sub(s.row.start_time_us)),
        // Derived: read back through start and end.
        set: |_, _| {},
    },
    col!(protocol, U8),
    col!(observation_point, U8),
    col!(response_status, U8),
    col!(l4_protocol, U8),
    col!(version, Str),
    col!(pid, U32),
    col!(pid_0, U32),
    col!(pid_1, U32),
    col!(tid_req, U32),
    col!(tid_resp, U32),
    col!(coroutine_id_req, U64),
    col!(coroutine_id_resp, U64),
    col!(socket_id, U64),
    col!(is_tls, Bool),
    col!(src_ip, Str),
    col!(src_port, U16),
    col!(dst_ip, Str),
    col!(dst_port, U16),
    col!(request_type, Str),
    col!(request_domain, Str),
    col!(request_resource, Str),
    col!(endpoint, Str),
    Column {
        name: "request_id",
        ty: ColType::U64,
        get: |s| Value::U(s.row.request_id.unwrap_or(0)),
        set: |s, v| {
            if s.row.request_id.is_some() {
                s.row.request_id = Some(v.u())
            }
        },
    },
    Column {
        name: "has_request_id",
        ty: ColType::U8,
        get: |s| Value::U(s.row.request_id.is_some() as u64),
        // Read before `request_id` (see READ_ORDER).
        set: |s, v| s.row.request_id = (v.u() != 0).then_some(0),
    },
    col!(exception, Str),
    col!(result, Str),
    col!(user_agent, Str),
    Column {
        name: "response_code",
        ty: ColType::I32,
        get: |s| Value::I(s.row.response_code.unwrap_or(0) as i64),
        set: |s, v| {
            if s.row.response_code.is_some() {
                s.row.response_code = Some(v.i() as i32)
            }
        },
    },
    Column {
        name: "has_response_code",
        ty: ColType::U8,
        get: |s| Value::U(s.row.response_code.is_some() as u64),
        set: |s, v| s.row.response_code = (v.u() != 0).then_some(0),
    },
    col!(request_length, U64),
    col!(response_length, U64),
    col!(req_tcp_seq, U32),
    col!(resp_tcp_seq, U32),
    col!(syscall_trace_id_req, U64),
    col!(syscall_trace_id_resp, U64),
    col!(x_request_id, Str),
    col!(x_request_id_resp, Str),
    col!(trace_id, Str),
    col!(span_id, Str),
    col!(parent_span_id, Str),
    col!(host_0, U64),
    col!(host_1, U64),
    col!(process_0, U64),
    col!(process_1, U64),
    col!(service_0, U64),
    col!(service_1, U64),
];

/// The index of a column by name.
pub fn column(name: &str) -> Option<usize> {
    COLUMNS.iter().position(|c| c.name == name)
}

/// The comma-separated column list, in table order.
pub fn column_list() -> String {
    COLUMNS
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Builds a span from values in table order. The `has_` flags are applied
/// before the values they guard.
pub fn from_values(values: Vec<Owned>) -> StoredSpan {
    let mut s = StoredSpan::default();
    let mut values: Vec<Option<Owned>> = values.into_iter().map(Some).collect();
    for flag in ["has_request_id", "has_response_code"] {
        if let Some(i) = column(flag) {
            if let Some(v) = values.get_mut(i).and_then(Option::take) {
                (COLUMNS[i].set)(&mut s, v);
            }
        }
    }
    for (c, v) in COLUMNS.iter().zip(values) {
        if let Some(v) = v {
            (c.set)(&mut s, v);
        }
    }
    s
}

/// The id of the `index`th span of a batch.
pub fn span_id(agent: u64, session: u64, seq: u64, index: u32) -> u64 {
    let mut key = [0u8; 28];
    key[..8].copy_from_slice(&agent.to_le_bytes());
    key[8..16].copy_from_slice(&session.to_le_bytes());
    key[16..24].copy_from_slice(&seq.to_le_bytes());
    key[24..].copy_from_slice(&index.to_le_bytes());
    xxhash_rust::xxh3::xxh3_64(&key).max(1)
}

/// The UTC day (days since the epoch) of a microsecond timestamp: the
/// stores' partition.
pub fn day_of(time_us: u64) -> u32 {
    (time_us / 86_400_000_000) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> StoredSpan {
        StoredSpan {
            id: 7,
            agent: 8,
            session: 9,
            seq: 10,
            row: SpanRow {
                start_time_us: 1_000,
                end_time_us: 1_500,
                protocol: 1,
                observation_point: 1,
                response_status: 2,
                l4_protocol: 6,
                version: "1.1".into(),
                pid: 42,
                pid_1: 42,
                is_tls: true,
                src_ip: "127.0.0.1".into(),
                src_port: 40000,
                dst_ip: "127.0.0.1".into(),
                dst_port: 8080,
                request_type: "GET".into(),
                request_resource: "/a\tb\n".into(),
                request_id: Some(0),
                response_code: Some(-3),
                host_0: u64::MAX,
                ..SpanRow::default()
            },
        }
    }

    #[test]
    fn values_round_trip_through_the_column_list() {
        for s in [sample(), StoredSpan::default()] {
            let values: Vec<Owned> = COLUMNS
                .iter()
                .map(|c| match (c.get)(&s) {
                    Value::U(v) => Owned::U(v),
                    Value::I(v) => Owned::I(v),
                    Value::S(v) => Owned::S(v.to_owned()),
                })
                .collect();
            assert_eq!(from_values(values), s);
        }
        let names: std::collections::HashSet<_> = COLUMNS.iter().map(|c| c.name).collect();
        assert_eq!(names.len(), COLUMNS.len(), "column names are unique");
    }
}
