//! AutoMetrics on the server: the stored form of the agents' metric rows
//! ([`METRIC_COLUMNS`], one logical schema for both stores, like
//! [`crate::schema`] for spans), and their queries, expressed once: RED
//! figures per node, endpoint or edge over a range and step
//! ([`MetricQuery`], `/api/v1/metrics`) and the service map
//! ([`service_map`], `/api/v1/service-map`).
//!
//! - **Tables.** One per granularity: `metrics_1s` and `metrics_1m`, by UTC
//!   day like spans (DuckDB: a table per day; ClickHouse: a partition per
//!   day, sharded like spans). 1 s rows are kept a short while
//!   (`--retention-1s`, default 1 day), 1 min rows as long as spans
//!   (`--retention`).
//! - **Arrays.** The latency sketch is two arrays per row, bucket keys
//!   (`UINTEGER[]` / `Array(UInt32)`) and counts (`UBIGINT[]` /
//!   `Array(UInt64)`): no Map type, which ClickHouse 18.16 lacks. A query's
//!   quantiles come from one SQL pass that unnests the arrays and adds the
//!   counts per group and bucket (DuckDB `unnest`, ClickHouse `ARRAY JOIN`:
//!   the only difference between the two stores' SQL, [`Flavor`]); the
//!   merged buckets then give any quantile ([`LatencySketch::quantile`]).
//! - **Merging.** Rows of one key and window add up, so every query is a
//!   sum (max for the maximum) over rows: the agents' late rows, several
//!   agents and any step are all the same merge.
//! - **No double counting.** Rows keep their observation point, and no
//!   query adds two: node figures are one observation point's (server
//!   side by default: what a service served; client side: what it
//!   called); an edge's figures come from one observation point chosen
//!   per edge over the range: its client side where the client process was
//!   observed, else its server side, else the wire.

use crate::store::{Store, StoreError};
use causeway_model::metric::{Granularity, LatencySketch, RowKind};
use causeway_model::tags::TagKind;
use causeway_model::wire::MetricRow;
use causeway_model::ObservationPoint;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

/// A stored metric row: the agent's row and the batch it came in (which
/// makes a re-sent batch detectable in ClickHouse).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoredMetric {
    pub agent: u64,
    pub session: u64,
    pub seq: u64,
    pub row: MetricRow,
}

impl StoredMetric {
    /// Its table, from the row's window length.
    pub fn granularity(&self) -> Option<Granularity> {
        Granularity::from_seconds(self.row.granularity_s)
    }

    /// Its UTC day (days since the epoch).
    pub fn day(&self) -> u32 {
        crate::schema::day_of(self.row.time_us)
    }
}

/// A metric column's logical type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MType {
    U8,
    U64,
    ArrU32,
    ArrU64,
}

/// One value, borrowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MVal<'a> {
    U(u64),
    A32(&'a [u32]),
    A64(&'a [u64]),
}

pub struct MetricColumn {
    pub name: &'static str,
    pub ty: MType,
    pub get: for<'a> fn(&'a StoredMetric) -> MVal<'a>,
}

macro_rules! mcol {
    ($name:ident, $ty:ident) => {
        MetricColumn {
            name: stringify!($name),
            ty: MType::$ty,
            get: |m| MVal::U(m.row.$name as u64),
        }
    };
}

/// Every stored metric column, in table order. The granularity is the
/// table, not a column.
pub static METRIC_COLUMNS: &[MetricColumn] = &[
    MetricColumn {
        name: "agent",
        ty: MType::U64,
        get: |m| MVal::U(m.agent),
    },
    MetricColumn {
        name: "session",
        ty: MType::U64,
        get: |m| MVal::U(m.session),
    },
    MetricColumn {
        name: "seq",
        ty: MType::U64,
        get: |m| MVal::U(m.seq),
    },
    mcol!(time_us, U64),
    mcol!(kind, U8),
    mcol!(observation_point, U8),
    mcol!(protocol, U8),
    mcol!(host_0, U64),
    mcol!(host_1, U64),
    mcol!(process_0, U64),
    mcol!(process_1, U64),
    mcol!(service_0, U64),
    mcol!(service_1, U64),
    mcol!(endpoint, U64),
    mcol!(requests, U64),
    mcol!(responses, U64),
    mcol!(client_errors, U64),
    mcol!(server_errors, U64),
    mcol!(timeouts, U64),
    mcol!(latency_sum_us, U64),
    mcol!(latency_count, U64),
    mcol!(latency_max_us, U64),
    MetricColumn {
        name: "sketch_keys",
        ty: MType::ArrU32,
        get: |m| MVal::A32(&m.row.sketch_keys),
    },
    MetricColumn {
        name: "sketch_counts",
        ty: MType::ArrU64,
        get: |m| MVal::A64(&m.row.sketch_counts),
    },
    mcol!(request_bytes, U64),
    mcol!(response_bytes, U64),
    mcol!(net_packets_0, U64),
    mcol!(net_packets_1, U64),
    mcol!(net_bytes_0, U64),
    mcol!(net_bytes_1, U64),
    mcol!(new_flows, U64),
    mcol!(closed_flows, U64),
    mcol!(rtt_sum_us, U64),
    mcol!(rtt_count, U64),
    mcol!(rtt_max_us, U64),
    mcol!(retransmissions_0, U64),
    mcol!(retransmissions_1, U64),
    mcol!(zero_windows_0, U64),
    mcol!(zero_windows_1, U64),
    mcol!(establish_failures, U64),
    mcol!(resets, U64),
    mcol!(srt_sum_us, U64),
    mcol!(srt_count, U64),
];

/// The table (or, for DuckDB, the prefix of the day tables) of a granularity.
pub fn table_name(g: Granularity) -> &'static str {
    match g {
        Granularity::Second => "metrics_1s",
        Granularity::Minute => "metrics_1m",
    }
}

/// Appends a value as both stores read it in SQL `VALUES` and in
/// TabSeparated: a number, or an array `[1,2,3]`. Rows hold numbers only,
/// so nothing needs escaping.
pub fn write_value(out: &mut String, v: MVal<'_>) {
    fn list<T: std::fmt::Display>(out: &mut String, xs: &[T]) {
        out.push('[');
        for (i, x) in xs.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{x}");
        }
        out.push(']');
    }
    match v {
        MVal::U(n) => {
            let _ = write!(out, "{n}");
        }
        MVal::A32(xs) => list(out, xs),
        MVal::A64(xs) => list(out, xs),
    }
}

/// The one place the two stores' metric SQL differs: unnesting the
/// sketch's arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    DuckDb,
    ClickHouse,
}

impl Flavor {
    /// `SELECT {select}, k, c FROM {src} WHERE {cond}` with one row per
    /// sketch bucket (`k` its key, `c` its count).
    fn unnest(self, select: &str, src: &str, cond: &str) -> String {
        match self {
            Flavor::DuckDb => format!(
                "SELECT {select}, unnest(sketch_keys) AS k, unnest(sketch_counts) AS c \
                 FROM {src} WHERE {cond}"
            ),
            Flavor::ClickHouse => format!(
                "SELECT {select}, k, c FROM {src} \
                 ARRAY JOIN sketch_keys AS k, sketch_counts AS c WHERE {cond}"
            ),
        }
    }
}

/// What a metric query groups or filters by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dim {
    Protocol,
    /// The observed side of node rows (the server for server-side
    /// figures, the client for client-side ones).
    Service,
    Process,
    Host,
    Endpoint,
    ClientService,
    ServerService,
    ClientProcess,
    ServerProcess,
    ClientHost,
    ServerHost,
    ObservationPoint,
}

impl Dim {
    pub const ALL: [Dim; 12] = [
        Dim::Protocol,
        Dim::Service,
        Dim::Process,
        Dim::Host,
        Dim::Endpoint,
        Dim::ClientService,
        Dim::ServerService,
        Dim::ClientProcess,
        Dim::ServerProcess,
        Dim::ClientHost,
        Dim::ServerHost,
        Dim::ObservationPoint,
    ];

    /// The name users type (API parameters and results).
    pub fn as_str(self) -> &'static str {
        match self {
            Dim::Protocol => "protocol",
            Dim::Service => "service",
            Dim::Process => "process",
            Dim::Host => "host",
            Dim::Endpoint => "endpoint",
            Dim::ClientService => "client_service",
            Dim::ServerService => "server_service",
            Dim::ClientProcess => "client_process",
            Dim::ServerProcess => "server_process",
            Dim::ClientHost => "client_host",
            Dim::ServerHost => "server_host",
            Dim::ObservationPoint => "observation_point",
        }
    }

    pub fn from_name(name: &str) -> Option<Dim> {
        Dim::ALL.into_iter().find(|d| d.as_str() == name)
    }

    /// The tag kind of its values (None: protocol and observation point,
    /// stored as codes).
    pub fn tag_kind(self) -> Option<TagKind> {
        match self {
            Dim::Service | Dim::ClientService | Dim::ServerService => Some(TagKind::Service),
            Dim::Process | Dim::ClientProcess | Dim::ServerProcess => Some(TagKind::Process),
            Dim::Host | Dim::ClientHost | Dim::ServerHost => Some(TagKind::Host),
            Dim::Endpoint => Some(TagKind::Endpoint),
            Dim::Protocol | Dim::ObservationPoint => None,
        }
    }

    /// Which rows it needs: node rows, edge rows, or either (None).
    pub fn row_kind(self) -> Option<RowKind> {
        match self {
            Dim::Service | Dim::Process | Dim::Host | Dim::Endpoint => Some(RowKind::Node),
            Dim::ClientService
            | Dim::ServerService
            | Dim::ClientProcess
            | Dim::ServerProcess
            | Dim::ClientHost
            | Dim::ServerHost
            | Dim::ObservationPoint => Some(RowKind::Edge),
            Dim::Protocol => None,
        }
    }

    /// Its column; `side` is the observed side of node rows.
    fn column(self, side: usize) -> &'static str {
        match (self, side) {
            (Dim::Protocol, _) => "protocol",
            (Dim::Endpoint, _) => "endpoint",
            (Dim::ObservationPoint, _) => "observation_point",
            (Dim::Service, 0) | (Dim::ClientService, _) => "service_0",
            (Dim::Service, _) | (Dim::ServerService, _) => "service_1",
            (Dim::Process, 0) | (Dim::ClientProcess, _) => "process_0",
            (Dim::Process, _) | (Dim::ServerProcess, _) => "process_1",
            (Dim::Host, 0) | (Dim::ClientHost, _) => "host_0",
            (Dim::Host, _) | (Dim::ServerHost, _) => "host_1",
        }
    }
}

/// RED figures over some rows, merged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    pub requests: u64,
    pub responses: u64,
    pub client_errors: u64,
    pub server_errors: u64,
    pub timeouts: u64,
    pub latency_sum_us: u64,
    pub latency_count: u64,
    pub latency_max_us: u64,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub sketch: LatencySketch,
    /// Network figures (flow reports), in [`NET_COLUMNS`] order.
    pub net: [u64; NET_COLUMNS.len()],
}

/// The network figures' columns; all are summed except `rtt_max_us`.
pub const NET_COLUMNS: [&str; 17] = [
    "net_packets_0",
    "net_packets_1",
    "net_bytes_0",
    "net_bytes_1",
    "new_flows",
    "closed_flows",
    "rtt_sum_us",
    "rtt_count",
    "rtt_max_us",
    "retransmissions_0",
    "retransmissions_1",
    "zero_windows_0",
    "zero_windows_1",
    "establish_failures",
    "resets",
    "srt_sum_us",
    "srt_count",
];

/// Index of a network column in [`Figures::net`].
const fn net_at(name: &str) -> usize {
    let mut i = 0;
    while i < NET_COLUMNS.len() {
        if const_eq(NET_COLUMNS[i], name) {
            return i;
        }
        i += 1;
    }
    panic!("no such network column")
}

const fn const_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const RTT_MAX: usize = net_at("rtt_max_us");

impl Figures {
    /// From the ten sums of [`MetricQuery::sums_sql`], in order.
    fn from_sums(v: &[u64]) -> Figures {
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        Figures {
            requests: at(0),
            responses: at(1),
            client_errors: at(2),
            server_errors: at(3),
            timeouts: at(4),
            latency_sum_us: at(5),
            latency_count: at(6),
            latency_max_us: at(7),
            request_bytes: at(8),
            response_bytes: at(9),
            sketch: LatencySketch::new(),
            net: std::array::from_fn(|i| at(10 + i)),
        }
    }

    fn net(&self, name: &str) -> u64 {
        NET_COLUMNS
            .iter()
            .position(|c| *c == name)
            .map_or(0, |i| self.net[i])
    }

    pub fn merge(&mut self, o: &Figures) {
        self.requests += o.requests;
        self.responses += o.responses;
        self.client_errors += o.client_errors;
        self.server_errors += o.server_errors;
        self.timeouts += o.timeouts;
        self.latency_sum_us += o.latency_sum_us;
        self.latency_count += o.latency_count;
        self.latency_max_us = self.latency_max_us.max(o.latency_max_us);
        self.request_bytes += o.request_bytes;
        self.response_bytes += o.response_bytes;
        self.sketch.merge(&o.sketch);
        for (i, (a, b)) in self.net.iter_mut().zip(o.net).enumerate() {
            if i == RTT_MAX {
                *a = (*a).max(b);
            } else {
                *a += b;
            }
        }
    }

    /// The `q` latency quantile in microseconds (rounded, at most the
    /// maximum, which is exact: q = 1 is the maximum); None without
    /// answered requests.
    pub fn quantile_us(&self, q: f64) -> Option<u64> {
        let v = self.sketch.quantile(q)?;
        if q >= 1.0 {
            return Some(self.latency_max_us);
        }
        Some((v.round() as u64).min(self.latency_max_us))
    }

    pub fn value(&self, m: Metric) -> Option<u64> {
        Some(match m {
            Metric::Requests => self.requests,
            Metric::Responses => self.responses,
            Metric::ClientErrors => self.client_errors,
            Metric::ServerErrors => self.server_errors,
            Metric::Errors => self.client_errors + self.server_errors,
            Metric::Timeouts => self.timeouts,
            Metric::LatencySum => self.latency_sum_us,
            Metric::LatencyCount => self.latency_count,
            Metric::LatencyAvg => {
                if self.latency_count == 0 {
                    return None;
                }
                (self.latency_sum_us as f64 / self.latency_count as f64).round() as u64
            }
            Metric::LatencyMax => {
                if self.latency_count == 0 {
                    return None;
                }
                self.latency_max_us
            }
            Metric::P50 => return self.quantile_us(0.5),
            Metric::P90 => return self.quantile_us(0.9),
            Metric::P95 => return self.quantile_us(0.95),
            Metric::P99 => return self.quantile_us(0.99),
            Metric::RequestBytes => self.request_bytes,
            Metric::ResponseBytes => self.response_bytes,
            Metric::ClientPackets => self.net("net_packets_0"),
            Metric::ServerPackets => self.net("net_packets_1"),
            Metric::ClientBytes => self.net("net_bytes_0"),
            Metric::ServerBytes => self.net("net_bytes_1"),
            Metric::NewFlows => self.net("new_flows"),
            Metric::ClosedFlows => self.net("closed_flows"),
            Metric::RttAvg => {
                let n = self.net("rtt_count");
                if n == 0 {
                    return None;
                }
                (self.net("rtt_sum_us") as f64 / n as f64).round() as u64
            }
            Metric::RttMax => {
                if self.net("rtt_count") == 0 {
                    return None;
                }
                self.net("rtt_max_us")
            }
            Metric::Retransmissions => {
                self.net("retransmissions_0") + self.net("retransmissions_1")
            }
            Metric::ZeroWindows => self.net("zero_windows_0") + self.net("zero_windows_1"),
            Metric::EstablishFailures => self.net("establish_failures"),
            Metric::Resets => self.net("resets"),
            Metric::SrtAvg => {
                let n = self.net("srt_count");
                if n == 0 {
                    return None;
                }
                (self.net("srt_sum_us") as f64 / n as f64).round() as u64
            }
        })
    }
}

/// What a query can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    Requests,
    Responses,
    ClientErrors,
    ServerErrors,
    /// Client and server errors.
    Errors,
    Timeouts,
    LatencySum,
    LatencyCount,
    LatencyAvg,
    LatencyMax,
    P50,
    P90,
    P95,
    P99,
    RequestBytes,
    ResponseBytes,
    /// Network figures (packet capture's flows; observation point network).
    ClientPackets,
    ServerPackets,
    ClientBytes,
    ServerBytes,
    NewFlows,
    ClosedFlows,
    RttAvg,
    RttMax,
    Retransmissions,
    ZeroWindows,
    EstablishFailures,
    Resets,
    SrtAvg,
}

impl Metric {
    pub const ALL: [Metric; 29] = [
        Metric::Requests,
        Metric::Responses,
        Metric::ClientErrors,
        Metric::ServerErrors,
        Metric::Errors,
        Metric::Timeouts,
        Metric::LatencySum,
        Metric::LatencyCount,
        Metric::LatencyAvg,
        Metric::LatencyMax,
        Metric::P50,
        Metric::P90,
        Metric::P95,
        Metric::P99,
        Metric::RequestBytes,
        Metric::ResponseBytes,
        Metric::ClientPackets,
        Metric::ServerPackets,
        Metric::ClientBytes,
        Metric::ServerBytes,
        Metric::NewFlows,
        Metric::ClosedFlows,
        Metric::RttAvg,
        Metric::RttMax,
        Metric::Retransmissions,
        Metric::ZeroWindows,
        Metric::EstablishFailures,
        Metric::Resets,
        Metric::SrtAvg,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Requests => "requests",
            Metric::Responses => "responses",
            Metric::ClientErrors => "client_errors",
            Metric::ServerErrors => "server_errors",
            Metric::Errors => "errors",
            Metric::Timeouts => "timeouts",
            Metric::LatencySum => "latency_sum_us",
            Metric::LatencyCount => "latency_count",
            Metric::LatencyAvg => "latency_avg_us",
            Metric::LatencyMax => "latency_max_us",
            Metric::P50 => "latency_p50_us",
            Metric::P90 => "latency_p90_us",
            Metric::P95 => "latency_p95_us",
            Metric::P99 => "latency_p99_us",
            Metric::RequestBytes => "request_bytes",
            Metric::ResponseBytes => "response_bytes",
            Metric::ClientPackets => "client_packets",
            Metric::ServerPackets => "server_packets",
            Metric::ClientBytes => "client_bytes",
            Metric::ServerBytes => "server_bytes",
            Metric::NewFlows => "new_flows",
            Metric::ClosedFlows => "closed_flows",
            Metric::RttAvg => "rtt_avg_us",
            Metric::RttMax => "rtt_max_us",
            Metric::Retransmissions => "retransmissions",
            Metric::ZeroWindows => "zero_windows",
            Metric::EstablishFailures => "establish_failures",
            Metric::Resets => "resets",
            Metric::SrtAvg => "srt_avg_us",
        }
    }

    /// Its name, or a short one (`p99`, `avg`, `max`).
    pub fn from_name(name: &str) -> Option<Metric> {
        let short = match name {
            "p50" => Some(Metric::P50),
            "p90" => Some(Metric::P90),
            "p95" => Some(Metric::P95),
            "p99" => Some(Metric::P99),
            "avg" => Some(Metric::LatencyAvg),
            "max" => Some(Metric::LatencyMax),
            _ => None,
        };
        short.or_else(|| Metric::ALL.into_iter().find(|m| m.as_str() == name))
    }

    /// Whether it needs the sketches.
    pub fn is_quantile(self) -> bool {
        matches!(self, Metric::P50 | Metric::P90 | Metric::P95 | Metric::P99)
    }
}

/// RED figures over a time range: filtered, grouped, optionally per step.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricQuery {
    pub granularity: Granularity,
    /// Windows starting in `[from_us, to_us)`.
    pub from_us: u64,
    pub to_us: u64,
    /// Points of this many microseconds (a multiple of the granularity,
    /// aligned to the epoch); None: one total per group.
    pub step_us: Option<u64>,
    pub kind: RowKind,
    /// Node rows: required. Edge rows: None picks one per edge.
    pub observation_point: Option<ObservationPoint>,
    /// Equality filters: tag ids, protocol and observation point codes.
    pub filters: Vec<(Dim, u64)>,
    pub group_by: Vec<Dim>,
}

/// The order observation points are preferred in for an edge.
const EDGE_PREFERENCE: [ObservationPoint; 3] = [
    ObservationPoint::Client,
    ObservationPoint::Server,
    ObservationPoint::Network,
];

impl MetricQuery {
    /// Checks the dimensions fit the rows asked for.
    pub fn check(&self) -> Result<(), String> {
        for d in self
            .group_by
            .iter()
            .chain(self.filters.iter().map(|(d, _)| d))
        {
            if d.row_kind().is_some_and(|k| k != self.kind) {
                let other = match self.kind {
                    RowKind::Node => "service, process, host and endpoint",
                    RowKind::Edge => "client_* and server_*",
                };
                return Err(format!(
                    "{} cannot be combined with {other}: node figures (service, process, host, \
                     endpoint) and edge figures (client_*, server_*, observation_point) are kept apart",
                    d.as_str()
                ));
            }
        }
        if self.kind == RowKind::Node && self.observation_point.is_none() {
            return Err("node figures need an observation point".into());
        }
        if self.to_us <= self.from_us {
            return Err("the range is empty".into());
        }
        let g = self.granularity.micros();
        if let Some(step) = self.step_us {
            if step == 0 || step % g != 0 {
                return Err(format!(
                    "step must be a whole number of {} windows",
                    self.granularity.as_str()
                ));
            }
            if (self.to_us - self.from_us) / step > 10_000 {
                return Err("more than 10000 points: use a larger step".into());
            }
        }
        Ok(())
    }

    /// The observed side of node rows.
    fn side(&self) -> usize {
        match self.observation_point {
            Some(ObservationPoint::Client) => 0,
            _ => 1,
        }
    }

    /// Whether edges pick their observation point.
    fn picks(&self) -> bool {
        self.kind == RowKind::Edge && self.observation_point.is_none()
    }

    /// The dimensions the SQL groups by: the query's, and for edges that
    /// pick, what identifies an edge and the observation point.
    fn fetch_dims(&self) -> Vec<Dim> {
        let mut dims = self.group_by.clone();
        if self.picks() {
            for d in [
                Dim::ClientService,
                Dim::ServerService,
                Dim::Protocol,
                Dim::ObservationPoint,
            ] {
                if !dims.contains(&d) {
                    dims.push(d);
                }
            }
        }
        dims
    }

    fn condition(&self) -> String {
        let mut w = format!(
            "time_us >= {} AND time_us < {} AND kind = {}",
            self.from_us,
            self.to_us,
            self.kind.code()
        );
        if let Some(o) = self.observation_point {
            let _ = write!(w, " AND observation_point = {}", o.code());
        }
        for (d, v) in &self.filters {
            let _ = write!(w, " AND {} = {v}", d.column(self.side()));
        }
        w
    }

    /// `d0, d1, ..., [t]` selected, and the same names to group by.
    fn keys(&self) -> (String, String) {
        let side = self.side();
        let mut select = Vec::new();
        let mut names = Vec::new();
        for (i, d) in self.fetch_dims().iter().enumerate() {
            select.push(format!("{} AS d{i}", d.column(side)));
            names.push(format!("d{i}"));
        }
        if let Some(step) = self.step_us {
            select.push(format!("time_us - time_us % {step} AS t"));
            names.push("t".into());
        }
        (select.join(", "), names.join(", "))
    }

    /// Per group (and step): the dimensions, the step's start, then
    /// requests, responses, client errors, server errors, timeouts,
    /// latency sum, count and max, request and response bytes, and the
    /// network figures ([`NET_COLUMNS`]).
    pub fn sums_sql(&self, src: &str) -> String {
        let (select, names) = self.keys();
        let lead = if select.is_empty() {
            String::new()
        } else {
            format!("{select}, ")
        };
        let group = if names.is_empty() {
            String::new()
        } else {
            format!(" GROUP BY {names}")
        };
        format!(
            "SELECT {lead}sum(requests), sum(responses), sum(client_errors), sum(server_errors), \
             sum(timeouts), sum(latency_sum_us), sum(latency_count), max(latency_max_us), \
             sum(request_bytes), sum(response_bytes), {} FROM {src} WHERE {}{group}",
            NET_COLUMNS
                .iter()
                .map(|c| if *c == "rtt_max_us" {
                    format!("max({c})")
                } else {
                    format!("sum({c})")
                })
                .collect::<Vec<_>>()
                .join(", "),
            self.condition()
        )
    }

    /// Per group (and step) and sketch bucket: the dimensions, the step's
    /// start, the bucket's key and its count.
    pub fn sketch_sql(&self, src: &str, flavor: Flavor) -> String {
        let (select, names) = self.keys();
        let (select, names) = if select.is_empty() {
            ("0 AS z".to_string(), "k".to_string())
        } else {
            (select, format!("{names}, k"))
        };
        let inner = flavor.unnest(&select, src, &self.condition());
        let outer: Vec<&str> = names.split(", ").collect();
        format!(
            "SELECT {}, sum(c) FROM ({inner}) GROUP BY {names}",
            outer.join(", ")
        )
    }

    /// Runs the query on `store`: series sorted by requests, most first.
    pub fn run(&self, store: &dyn Store, sketches: bool) -> Result<Vec<Series>, StoreError> {
        self.check().map_err(StoreError::Other)?;
        let g = self.granularity;
        let sums = store.metric_query(g, self.from_us, self.to_us, &|src, _| self.sums_sql(src))?;
        let buckets = if sketches {
            store.metric_query(g, self.from_us, self.to_us, &|src, f| {
                self.sketch_sql(src, f)
            })?
        } else {
            Vec::new()
        };
        Ok(self.assemble(&sums, &buckets))
    }

    /// Series from the rows of [`Self::sums_sql`] and [`Self::sketch_sql`].
    pub fn assemble(&self, sums: &[Vec<u64>], buckets: &[Vec<u64>]) -> Vec<Series> {
        let dims = self.fetch_dims();
        let n = dims.len();
        let stepped = self.step_us.is_some() as usize;
        // For edges that pick: the observation point each edge keeps.
        let keep: Option<HashMap<[u64; 3], u64>> = self.picks().then(|| {
            let at = |d: Dim| dims.iter().position(|x| *x == d).unwrap_or(0);
            let (c, s, p, o) = (
                at(Dim::ClientService),
                at(Dim::ServerService),
                at(Dim::Protocol),
                at(Dim::ObservationPoint),
            );
            let rank = |code: u64| {
                EDGE_PREFERENCE
                    .iter()
                    .position(|op| op.code() as u64 == code)
                    .unwrap_or(EDGE_PREFERENCE.len())
            };
            let mut best: HashMap<[u64; 3], u64> = HashMap::new();
            for r in sums.iter().filter(|r| r.len() > n) {
                let e = best.entry([r[c], r[s], r[p]]).or_insert(r[o]);
                if rank(r[o]) < rank(*e) {
                    *e = r[o];
                }
            }
            best
        });
        let obs_at = dims.iter().position(|d| *d == Dim::ObservationPoint);
        let edge_of = |r: &[u64]| -> Option<[u64; 3]> {
            let at = |d: Dim| dims.iter().position(|x| *x == d);
            Some([
                r[at(Dim::ClientService)?],
                r[at(Dim::ServerService)?],
                r[at(Dim::Protocol)?],
            ])
        };
        let kept = |r: &[u64]| -> bool {
            match (&keep, obs_at, edge_of(r)) {
                (Some(keep), Some(o), Some(e)) => keep.get(&e) == Some(&r[o]),
                _ => true,
            }
        };
        // The query's own group: its dimensions' positions in the fetch.
        let group_at: Vec<usize> = self
            .group_by
            .iter()
            .filter_map(|d| dims.iter().position(|x| x == d))
            .collect();
        let mut series: BTreeMap<Vec<u64>, Series> = BTreeMap::new();
        for r in sums.iter().filter(|r| r.len() >= n + stepped + 10) {
            if !kept(r) {
                continue;
            }
            let key: Vec<u64> = group_at.iter().map(|i| r[*i]).collect();
            let f = Figures::from_sums(&r[n + stepped..]);
            let s = series.entry(key.clone()).or_insert_with(|| Series {
                group: key,
                ..Series::default()
            });
            s.total.merge(&f);
            if stepped == 1 {
                s.points.entry(r[n]).or_default().merge(&f);
            }
        }
        for r in buckets.iter().filter(|r| r.len() >= n + stepped + 2) {
            if !kept(r) {
                continue;
            }
            let key: Vec<u64> = group_at.iter().map(|i| r[*i]).collect();
            let (k, c) = (r[r.len() - 2], r[r.len() - 1]);
            let Some(s) = series.get_mut(&key) else {
                continue;
            };
            let k = k.min(u32::MAX as u64) as u32;
            s.total.sketch.add_key(k, c);
            if stepped == 1 {
                s.points.entry(r[n]).or_default().sketch.add_key(k, c);
            }
        }
        let mut out: Vec<Series> = series.into_values().collect();
        out.sort_by(|a, b| {
            b.total
                .requests
                .cmp(&a.total.requests)
                .then_with(|| a.group.cmp(&b.group))
        });
        out
    }
}

/// One group's figures: in total, and per step start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    /// The values of the query's `group_by`, in order.
    pub group: Vec<u64>,
    pub total: Figures,
    pub points: BTreeMap<u64, Figures>,
}

/// An edge of the service map.
#[derive(Debug, Clone, PartialEq)]
pub struct MapEdge {
    /// Service tag ids.
    pub client: u64,
    pub server: u64,
    pub protocol: u32,
    /// Where its figures were counted.
    pub observation_point: Option<ObservationPoint>,
    pub figures: Figures,
}

/// A node of the service map: a service with what it served (server
/// side) and what it called (client side), where it was observed so.
#[derive(Debug, Clone, PartialEq)]
pub struct MapNode {
    pub service: u64,
    pub served: Option<Figures>,
    pub called: Option<Figures>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceMap {
    pub nodes: Vec<MapNode>,
    pub edges: Vec<MapEdge>,
}

/// The service map over a range: every edge (client service → server
/// service, per protocol) with its figures from one observation point, and
/// every service on an edge with its node figures. `filters` narrow the
/// edges (protocol, client or server service); `service` keeps the edges
/// that touch it.
pub fn service_map(
    store: &dyn Store,
    granularity: Granularity,
    from_us: u64,
    to_us: u64,
    filters: &[(Dim, u64)],
    service: Option<u64>,
) -> Result<ServiceMap, StoreError> {
    let edges_q = MetricQuery {
        granularity,
        from_us,
        to_us,
        step_us: None,
        kind: RowKind::Edge,
        observation_point: None,
        filters: filters.to_vec(),
        group_by: vec![
            Dim::ClientService,
            Dim::ServerService,
            Dim::Protocol,
            Dim::ObservationPoint,
        ],
    };
    let mut edges: Vec<MapEdge> = edges_q
        .run(store, true)?
        .into_iter()
        .map(|s| MapEdge {
            client: s.group[0],
            server: s.group[1],
            protocol: s.group[2] as u32,
            observation_point: ObservationPoint::from_code(s.group[3] as u32),
            figures: s.total,
        })
        .filter(|e| service.is_none_or(|id| e.client == id || e.server == id))
        .collect();
    edges.sort_by_key(|e| (e.client, e.server, e.protocol));
    let protocol: Vec<(Dim, u64)> = filters
        .iter()
        .filter(|(d, _)| *d == Dim::Protocol)
        .copied()
        .collect();
    let node = |op: ObservationPoint| -> Result<HashMap<u64, Figures>, StoreError> {
        let q = MetricQuery {
            kind: RowKind::Node,
            observation_point: Some(op),
            filters: protocol.clone(),
            group_by: vec![Dim::Service],
            ..edges_q.clone()
        };
        Ok(q.run(store, true)?
            .into_iter()
            .map(|s| (s.group[0], s.total))
            .collect())
    };
    let (mut served, mut called) = (
        node(ObservationPoint::Server)?,
        node(ObservationPoint::Client)?,
    );
    let mut ids: Vec<u64> = edges.iter().flat_map(|e| [e.client, e.server]).collect();
    ids.sort_unstable();
    ids.dedup();
    let nodes = ids
        .into_iter()
        .map(|id| MapNode {
            service: id,
            served: served.remove(&id),
            called: called.remove(&id),
        })
        .collect();
    Ok(ServiceMap { nodes, edges })
}

#[cfg(test)]
mod tests;
