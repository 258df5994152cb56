//! Storage: one interface ([`Store`]), two backends with one logical schema
//! ([`crate::schema`]): an embedded DuckDB database (the default; nothing to
//! install or run) and ClickHouse over its HTTP interface (for deployments
//! that outgrow one machine: several servers write one cluster).
//!
//! Both partition spans by UTC day so that retention drops whole days, and
//! both make a batch's write atomic and idempotent: a batch already stored
//! (the same agent, session and sequence number) is acknowledged again and
//! written no second time.

pub mod clickhouse;
#[doc(hidden)]
pub mod conformance;
#[doc(hidden)]
pub mod conformance_flows;
#[doc(hidden)]
pub mod conformance_red;
pub mod duckdb;

use crate::flows::{FlowQuery, StoredFlow};
use crate::query::{KeyQuery, ServiceQuery, ServiceRow, SpanQuery};
use crate::red::{Flavor, StoredMetric};
use crate::schema::StoredSpan;
use causeway_model::metric::Granularity;
use causeway_model::tags::TagKind;

/// Why a store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DuckDB: {0}")]
    DuckDb(#[from] ::duckdb::Error),
    #[error("ClickHouse at {url}: {message}")]
    ClickHouse { url: String, message: String },
    #[error("{0}")]
    Other(String),
}

/// One agent batch, as stored.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    /// Tag id of the agent.
    pub agent: u64,
    pub session: u64,
    pub seq: u64,
    pub spans: Vec<StoredSpan>,
    /// Dictionary entries: (kind, id, string).
    pub tags: Vec<(TagKind, u64, String)>,
    /// Metric rows ([`crate::red`]), written with the spans, as atomically.
    pub metrics: Vec<StoredMetric>,
    /// Flow reports ([`crate::flows`]), written with the spans, as
    /// idempotently.
    pub flows: Vec<StoredFlow>,
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The rows are durable.
    Stored(usize),
    /// The batch had been stored before; nothing was written.
    Duplicate,
}

/// A store of spans and their tag dictionary.
pub trait Store: Send + Sync {
    /// `duckdb` or `clickhouse`.
    fn kind(&self) -> &'static str;
    /// Writes a batch's spans and tags atomically, once.
    fn write(&self, batch: &WriteBatch) -> Result<WriteOutcome, StoreError>;
    /// Spans matching `q`, newest first.
    fn spans(&self, q: &SpanQuery) -> Result<Vec<StoredSpan>, StoreError>;
    /// One span by id.
    fn span(&self, id: u64) -> Result<Option<StoredSpan>, StoreError>;
    /// Spans sharing any key of `q` within its time range, earliest
    /// first (trace assembly).
    fn spans_by_keys(&self, q: &KeyQuery) -> Result<Vec<StoredSpan>, StoreError>;
    /// Per-service figures.
    fn services(&self, q: &ServiceQuery) -> Result<Vec<ServiceRow>, StoreError>;
    /// The whole tag dictionary.
    fn tags(&self) -> Result<Vec<(TagKind, u64, String)>, StoreError>;
    /// Drops every day before `day` (days since the epoch); returns how many.
    fn drop_days_before(&self, day: u32) -> Result<usize, StoreError>;
    /// Spans stored, over all days.
    fn count(&self) -> Result<u64, StoreError>;
    /// Bytes the store takes on disk, where it can tell.
    fn disk_bytes(&self) -> Option<u64>;
    /// Runs the SQL `render` makes for the metric rows of granularity `g`
    /// in `[from_us, to_us)` (given their source: a table or subquery, and
    /// this store's [`Flavor`]); the rows, as numbers ([`crate::red`]).
    fn metric_query(
        &self,
        g: Granularity,
        from_us: u64,
        to_us: u64,
        render: &dyn Fn(&str, Flavor) -> String,
    ) -> Result<Vec<Vec<u64>>, StoreError>;
    /// Drops the metric rows of granularity `g` of every day before `day`;
    /// returns how many days.
    fn drop_metric_days_before(&self, g: Granularity, day: u32) -> Result<usize, StoreError>;
    /// Flow reports ([`FlowQuery`]), newest first.
    fn flows(&self, q: &FlowQuery) -> Result<Vec<StoredFlow>, StoreError>;
}

/// A [`ServiceRow`] from the nine columns of [`ServiceQuery::sql`].
pub(crate) fn service_row(v: [u64; 9]) -> ServiceRow {
    ServiceRow {
        service: v[0],
        protocol: causeway_model::L7Protocol::from_code(v[1] as u32),
        served: v[2],
        client_errors: v[3],
        server_errors: v[4],
        timeouts: v[5],
        duration_sum_us: v[6],
        duration_max_us: v[7],
        made: v[8],
    }
}
