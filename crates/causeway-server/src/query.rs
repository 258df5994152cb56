//! Queries, expressed once: what a user asks ([`SpanQuery`],
//! [`ServiceQuery`]) and its rendering to SQL, which differs between the
//! stores only in how literals and substring tests are spelt ([`Dialect`]).
//!
//! Names are resolved to tag ids before a query reaches a store (a service
//! name is hashed to its id, [`causeway_model::tags::tag_id`]), so stores
//! scan integers. No user input reaches SQL but through [`Dialect::string`]
//! and integer formatting.

use crate::schema::column_list;
use causeway_model::{L7Protocol, ObservationPoint, ResponseStatus};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// How a store spells what differs between SQL dialects.
pub trait Dialect {
    /// A string literal holding `s` exactly.
    fn string(&self, s: &str) -> String;
    /// A condition: `column` contains `needle` (a literal from [`Self::string`]).
    fn contains(&self, column: &str, needle: &str) -> String;
}

/// Spans newest first, filtered. Every filter is optional but the range.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpanQuery {
    /// Start times in `[from_us, to_us)`.
    pub from_us: u64,
    pub to_us: u64,
    pub protocol: Option<L7Protocol>,
    pub status: Option<ResponseStatus>,
    pub observation_point: Option<ObservationPoint>,
    /// Tag id of a service at either end.
    pub service: Option<u64>,
    /// Tag id of a process at either end.
    pub process: Option<u64>,
    /// A substring of the endpoint or of the resource.
    pub endpoint: Option<String>,
    /// The server's port.
    pub port: Option<u16>,
    pub min_duration_us: Option<u64>,
    /// A keyset page: only spans strictly older than this (start, id).
    pub before: Option<(u64, u64)>,
    /// Spans of this trace id (from trace headers).
    pub trace_id: Option<String>,
    pub limit: u32,
}

impl SpanQuery {
    /// The WHERE clause (without the keyword).
    pub fn condition(&self, d: &dyn Dialect) -> String {
        let mut w = format!(
            "start_time_us >= {} AND start_time_us < {}",
            self.from_us, self.to_us
        );
        if let Some(p) = self.protocol {
            let _ = write!(w, " AND protocol = {}", p.code());
        }
        if let Some(s) = self.status {
            let _ = write!(w, " AND response_status = {}", s.code());
        }
        if let Some(o) = self.observation_point {
            let _ = write!(w, " AND observation_point = {}", o.code());
        }
        if let Some(id) = self.service {
            let _ = write!(w, " AND (service_0 = {id} OR service_1 = {id})");
        }
        if let Some(id) = self.process {
            let _ = write!(w, " AND (process_0 = {id} OR process_1 = {id})");
        }
        if let Some(e) = &self.endpoint {
            let lit = d.string(e);
            let _ = write!(
                w,
                " AND ({} OR {})",
                d.contains("endpoint", &lit),
                d.contains("request_resource", &lit)
            );
        }
        if let Some(port) = self.port {
            let _ = write!(w, " AND dst_port = {port}");
        }
        if let Some(min) = self.min_duration_us {
            let _ = write!(w, " AND duration_us >= {min}");
        }
        if let Some((start, id)) = self.before {
            let _ = write!(
                w,
                " AND (start_time_us < {start} OR (start_time_us = {start} AND id < {id}))"
            );
        }
        if let Some(t) = &self.trace_id {
            let _ = write!(w, " AND trace_id = {}", d.string(t));
        }
        w
    }

    /// The same question with its range ending where its keyset cursor
    /// does (spans older than (start, id) start at or before `start`), so
    /// that a store reads only the days, partitions and index ranges a page
    /// can come from. The answer is the same.
    pub fn clipped(&self) -> SpanQuery {
        let mut q = self.clone();
        if let Some((start, _)) = q.before {
            q.to_us = q.to_us.min(start.saturating_add(1));
        }
        q
    }

    /// The keys (start time, id) of the answer, newest first: the first
    /// step of a store that fetches whole rows for these keys only (the
    /// sort then reads two columns, not all of them).
    pub fn key_sql(&self, table: &str, d: &dyn Dialect) -> String {
        format!(
            "SELECT start_time_us, id FROM {table} WHERE {} ORDER BY start_time_us DESC, id DESC LIMIT {}",
            self.condition(d),
            self.limit
        )
    }

    /// The whole statement over `table` (a table name or a subquery).
    pub fn sql(&self, table: &str, d: &dyn Dialect) -> String {
        format!(
            "SELECT {} FROM {table} WHERE {} ORDER BY start_time_us DESC, id DESC LIMIT {}",
            column_list(),
            self.condition(d),
            self.limit
        )
    }
}

/// Per service, what it served and what it asked, over a time range.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceQuery {
    pub from_us: u64,
    pub to_us: u64,
}

/// One service's figures over the range of a [`ServiceQuery`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceRow {
    /// Tag id of the service.
    pub service: u64,
    pub protocol: L7Protocol,
    /// Requests it served, counted where they were seen as server-side
    /// spans (in the server process, or on the wire).
    pub served: u64,
    pub client_errors: u64,
    pub server_errors: u64,
    pub timeouts: u64,
    pub duration_sum_us: u64,
    pub duration_max_us: u64,
    /// Requests it made, counted at the client process.
    pub made: u64,
}

impl ServiceQuery {
    /// Served requests: server-side spans (server process or network);
    /// made requests: client-process spans. Columns: service, protocol,
    /// served, client errors, server errors, timeouts, duration sum, max, made.
    pub fn sql(&self, table: &str) -> String {
        let range = format!(
            "start_time_us >= {} AND start_time_us < {}",
            self.from_us, self.to_us
        );
        let (client, server, network) = (
            ObservationPoint::Client.code(),
            ObservationPoint::Server.code(),
            ObservationPoint::Network.code(),
        );
        let (ce, se, to) = (
            ResponseStatus::ClientError.code(),
            ResponseStatus::ServerError.code(),
            ResponseStatus::Timeout.code(),
        );
        format!(
            "SELECT service, protocol, sum(served), sum(ce), sum(se), sum(tmo), sum(dur), max(dmax), sum(made) FROM (\
             SELECT service_1 AS service, protocol, count(*) AS served, \
             sum(CASE WHEN response_status = {ce} THEN 1 ELSE 0 END) AS ce, \
             sum(CASE WHEN response_status = {se} THEN 1 ELSE 0 END) AS se, \
             sum(CASE WHEN response_status = {to} THEN 1 ELSE 0 END) AS tmo, \
             sum(duration_us) AS dur, max(duration_us) AS dmax, 0 AS made \
             FROM {table} WHERE {range} AND observation_point IN ({server}, {network}) AND service_1 != 0 \
             GROUP BY service_1, protocol \
             UNION ALL \
             SELECT service_0 AS service, protocol, 0 AS served, 0 AS ce, 0 AS se, 0 AS tmo, \
             0 AS dur, 0 AS dmax, count(*) AS made \
             FROM {table} WHERE {range} AND observation_point = {client} AND service_0 != 0 \
             GROUP BY service_0, protocol) \
             GROUP BY service, protocol ORDER BY service, protocol"
        )
    }
}

/// Spans that share any of a set of trace keys with the spans found so
/// far, within a time range: one step of trace assembly
/// ([`crate::trace`]). Every key kind is an `IN` list, so one statement per
/// step answers for all of them.
///
/// Syscall trace ids are numbered by each agent run on its own, so they are
/// scoped by (agent, session); goroutine ids (pseudo-threads) by (agent,
/// pid). TCP sequence numbers are asked for bare (an `IN` list stays an
/// `IN` list) and may match other connections' messages: the assembly keeps
/// only those whose ports and times fit. Zero and empty values never match
/// (they mean "absent").
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KeyQuery {
    /// Start times in `[from_us, to_us)`.
    pub from_us: u64,
    pub to_us: u64,
    /// Per (agent, session): syscall trace ids, request or response side.
    pub syscall_trace_ids: BTreeMap<(u64, u64), BTreeSet<u64>>,
    /// Per (agent, pid): goroutine ids, request or response side.
    pub coroutine_ids: BTreeMap<(u64, u32), BTreeSet<u64>>,
    /// X-Request-IDs, of requests or responses.
    pub x_request_ids: BTreeSet<String>,
    /// TCP sequence numbers of requests or responses.
    pub tcp_seqs: BTreeSet<u32>,
    /// UDP messages (DNS has no sequence numbers) by (client port, server
    /// port); the assembly checks addresses, request ids and times.
    pub udp_ports: BTreeSet<(u16, u16)>,
    pub trace_ids: BTreeSet<String>,
    /// Most rows returned (the earliest first).
    pub limit: u32,
}

fn int_list<T: std::fmt::Display>(values: impl IntoIterator<Item = T>) -> String {
    let mut out = String::new();
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{v}");
    }
    out
}

impl KeyQuery {
    /// Whether no key is asked for (the query would find nothing).
    pub fn is_empty(&self) -> bool {
        self.condition(&NoDialect).is_none()
    }

    /// The keys' condition, `(... OR ...)`; None when there is no key.
    pub fn condition(&self, d: &dyn Dialect) -> Option<String> {
        let mut any: Vec<String> = Vec::new();
        let pair = |a: &str, b: &str, list: &str| format!("{a} IN ({list}) OR {b} IN ({list})");
        for ((agent, session), ids) in &self.syscall_trace_ids {
            let ids: Vec<u64> = ids.iter().copied().filter(|v| *v != 0).collect();
            if !ids.is_empty() {
                any.push(format!(
                    "(agent = {agent} AND session = {session} AND ({}))",
                    pair(
                        "syscall_trace_id_req",
                        "syscall_trace_id_resp",
                        &int_list(ids)
                    )
                ));
            }
        }
        for ((agent, pid), ids) in &self.coroutine_ids {
            let ids: Vec<u64> = ids.iter().copied().filter(|v| *v != 0).collect();
            if !ids.is_empty() {
                any.push(format!(
                    "(agent = {agent} AND pid = {pid} AND ({}))",
                    pair("coroutine_id_req", "coroutine_id_resp", &int_list(ids))
                ));
            }
        }
        let strings = |set: &BTreeSet<String>| {
            let v: Vec<String> = set
                .iter()
                .filter(|s| !s.is_empty())
                .map(|s| d.string(s))
                .collect();
            (!v.is_empty()).then(|| v.join(", "))
        };
        if let Some(list) = strings(&self.x_request_ids) {
            any.push(pair("x_request_id", "x_request_id_resp", &list));
        }
        let seqs: Vec<u32> = self.tcp_seqs.iter().copied().filter(|v| *v != 0).collect();
        if !seqs.is_empty() {
            any.push(pair("req_tcp_seq", "resp_tcp_seq", &int_list(seqs)));
        }
        let udp: Vec<String> = self
            .udp_ports
            .iter()
            .filter(|(s, d)| *s != 0 && *d != 0)
            .map(|(s, d)| format!("(src_port = {s} AND dst_port = {d})"))
            .collect();
        if !udp.is_empty() {
            any.push(format!(
                "(l4_protocol = {} AND ({}))",
                causeway_model::L4Protocol::Udp.code(),
                udp.join(" OR ")
            ));
        }
        if let Some(list) = strings(&self.trace_ids) {
            any.push(format!("trace_id IN ({list})"));
        }
        (!any.is_empty()).then(|| format!("({})", any.join(" OR ")))
    }

    /// The whole statement over `table`; None when there is no key.
    pub fn sql(&self, table: &str, d: &dyn Dialect) -> Option<String> {
        Some(format!(
            "SELECT {} FROM {table} WHERE start_time_us >= {} AND start_time_us < {} AND {} \
             ORDER BY start_time_us, id LIMIT {}",
            column_list(),
            self.from_us,
            self.to_us,
            self.condition(d)?,
            self.limit
        ))
    }
}

/// For [`KeyQuery::is_empty`]: the condition's shape, not its text.
struct NoDialect;

impl Dialect for NoDialect {
    fn string(&self, _: &str) -> String {
        String::new()
    }
    fn contains(&self, _: &str, _: &str) -> String {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Plain;
    impl Dialect for Plain {
        fn string(&self, s: &str) -> String {
            format!("'{}'", s.replace('\'', "''"))
        }
        fn contains(&self, column: &str, needle: &str) -> String {
            format!("contains({column}, {needle})")
        }
    }

    #[test]
    fn every_filter_is_rendered_and_only_through_the_dialect() {
        let q = SpanQuery {
            from_us: 1,
            to_us: 2,
            protocol: Some(L7Protocol::Mysql),
            status: Some(ResponseStatus::ServerError),
            observation_point: Some(ObservationPoint::Server),
            service: Some(5),
            process: Some(6),
            endpoint: Some("x' OR 1=1 --".into()),
            port: Some(80),
            min_duration_us: Some(7),
            before: Some((8, 9)),
            trace_id: None,
            limit: 10,
        };
        let w = q.condition(&Plain);
        assert_eq!(
            w,
            "start_time_us >= 1 AND start_time_us < 2 AND protocol = 5 AND response_status = 2 \
             AND observation_point = 1 AND (service_0 = 5 OR service_1 = 5) \
             AND (process_0 = 6 OR process_1 = 6) \
             AND (contains(endpoint, 'x'' OR 1=1 --') OR contains(request_resource, 'x'' OR 1=1 --')) \
             AND dst_port = 80 AND duration_us >= 7 AND (start_time_us < 8 OR (start_time_us = 8 AND id < 9))"
        );
        assert!(q.sql("spans", &Plain).ends_with("LIMIT 10"));
    }

    #[test]
    fn key_queries_are_in_lists_scoped_where_ids_are_local() {
        let mut q = KeyQuery {
            from_us: 10,
            to_us: 20,
            limit: 5,
            ..KeyQuery::default()
        };
        assert!(q.is_empty());
        assert_eq!(q.sql("spans", &Plain), None);
        // Absent values (0, "") are no keys.
        q.tcp_seqs.insert(0);
        q.x_request_ids.insert(String::new());
        q.syscall_trace_ids.entry((1, 2)).or_default().insert(0);
        assert!(q.is_empty());
        q.syscall_trace_ids
            .entry((1, 2))
            .or_default()
            .extend([7, 8]);
        q.coroutine_ids.entry((1, 99)).or_default().insert(3);
        q.x_request_ids.insert("it's".into());
        q.tcp_seqs.extend([5, 4]);
        q.udp_ports.extend([(5353, 53), (0, 53)]);
        q.trace_ids.insert("abc".into());
        assert_eq!(
            q.sql("spans", &Plain).unwrap(),
            format!(
                "SELECT {} FROM spans WHERE start_time_us >= 10 AND start_time_us < 20 AND (\
                 (agent = 1 AND session = 2 AND (syscall_trace_id_req IN (7, 8) OR syscall_trace_id_resp IN (7, 8))) \
                 OR (agent = 1 AND pid = 99 AND (coroutine_id_req IN (3) OR coroutine_id_resp IN (3))) \
                 OR x_request_id IN ('it''s') OR x_request_id_resp IN ('it''s') \
                 OR req_tcp_seq IN (4, 5) OR resp_tcp_seq IN (4, 5) \
                 OR (l4_protocol = 17 AND ((src_port = 5353 AND dst_port = 53))) \
                 OR trace_id IN ('abc')) ORDER BY start_time_us, id LIMIT 5",
                column_list()
            )
        );
    }
}
