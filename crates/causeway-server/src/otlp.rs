//! An assembled trace as OpenTelemetry spans: the OTLP/HTTP JSON body of
//! an `ExportTraceServiceRequest` (what a collector, Jaeger or Tempo takes
//! at `POST /v1/traces`), following the OTLP JSON mapping: camelCase
//! field names, trace and span ids as hex, 64-bit integers as decimal
//! strings, enums as numbers.
//!
//! - **Ids.** Every span of the tree gets the trace's one trace id: the
//!   W3C-shaped trace id most of its spans carry from headers, or else one
//!   derived from the first root span's id (so every assembly of the same
//!   trace exports the same id). A span's id is its Causeway id in hex; its
//!   parent span id is its parent's in the assembled tree (roots have
//!   none). The ids the headers carried are kept as attributes.
//! - **Kind.** Client-process spans are `CLIENT`, server-process spans
//!   `SERVER`, network spans `INTERNAL`.
//! - **Resource.** One per observing service, host and process:
//!   `service.name` (the side that observed it; `network` for the wire),
//!   `host.name`, `process.pid`, `process.executable.name`.
//! - **Attributes.** Semantic conventions where they fit (`http.request.method`,
//!   `url.path`, `http.response.status_code`, `rpc.system`, `rpc.method`,
//!   `db.system.name`, `db.query.text`, `dns.question.name`,
//!   `network.transport`, `network.protocol.name`/`version`,
//!   `client.address`/`port`, `server.address`/`port`, `thread.id`), and
//!   `causeway.*` for the rest (observation point, why the parent is the
//!   parent, syscall trace ids, TCP seqs, X-Request-IDs, self time).
//! - **Status.** `ERROR` for server errors and timeouts (with the
//!   exception as message), unset otherwise.

use crate::dict::Dictionary;
use crate::trace::{Node, Trace};
use causeway_model::tags::TagKind;
use causeway_model::{L4Protocol, L7Protocol, ObservationPoint, ResponseStatus};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

/// Span kinds (opentelemetry.proto.trace.v1.Span.SpanKind).
const KIND_INTERNAL: u32 = 1;
const KIND_SERVER: u32 = 2;
const KIND_CLIENT: u32 = 3;
/// Status codes (opentelemetry.proto.trace.v1.Status.StatusCode).
const STATUS_ERROR: u32 = 2;

fn is_trace_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) && s.bytes().any(|b| b != b'0')
}

/// The trace id of the whole tree (see the module doc), 32 lowercase hex.
pub fn trace_id(trace: &Trace) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for n in &trace.spans {
        if is_trace_id(&n.span.row.trace_id) {
            *counts
                .entry(n.span.row.trace_id.to_ascii_lowercase())
                .or_default() += 1;
        }
    }
    if let Some((id, _)) = counts
        .iter()
        .max_by_key(|(id, n)| (**n, std::cmp::Reverse(*id)))
    {
        return id.clone();
    }
    let root = trace
        .spans
        .iter()
        .find(|n| n.parent.is_none())
        .map_or(trace.start, |n| n.span.id);
    let h = xxhash_rust::xxh3::xxh3_128(&root.to_le_bytes());
    format!("{:032x}", h.max(1))
}

fn span_id(id: u64) -> String {
    format!("{id:016x}")
}

fn s(key: &str, v: &str) -> Value {
    json!({ "key": key, "value": { "stringValue": v } })
}

fn i(key: &str, v: i64) -> Value {
    json!({ "key": key, "value": { "intValue": v.to_string() } })
}

fn attributes(n: &Node) -> Vec<Value> {
    let r = &n.span.row;
    let protocol = L7Protocol::from_code(r.protocol);
    let mut a = vec![
        s(
            "causeway.observation_point",
            ObservationPoint::from_code(r.observation_point).map_or("unknown", |o| o.as_str()),
        ),
        s("causeway.span_id", &n.span.id.to_string()),
        i("causeway.self_time_us", n.self_time_us as i64),
        s("network.protocol.name", protocol.as_str()),
    ];
    let mut put_s = |k: &str, v: &str| {
        if !v.is_empty() {
            a.push(s(k, v));
        }
    };
    put_s("causeway.parent_link", n.link.map_or("", |l| l.as_str()));
    put_s(
        "network.transport",
        L4Protocol::from_code(r.l4_protocol).map_or("", |l| l.as_str()),
    );
    put_s("network.protocol.version", &r.version);
    put_s("client.address", &r.src_ip);
    put_s("server.address", &r.dst_ip);
    put_s("causeway.request_type", &r.request_type);
    put_s("causeway.request_domain", &r.request_domain);
    put_s("causeway.request_resource", &r.request_resource);
    put_s("causeway.endpoint", &r.endpoint);
    put_s("causeway.x_request_id", &r.x_request_id);
    put_s("causeway.x_request_id_resp", &r.x_request_id_resp);
    put_s("causeway.header.trace_id", &r.trace_id);
    put_s("causeway.header.span_id", &r.span_id);
    put_s("causeway.header.parent_span_id", &r.parent_span_id);
    put_s(
        "causeway.response_status",
        ResponseStatus::from_code(r.response_status).as_str(),
    );
    match protocol {
        L7Protocol::Http | L7Protocol::Http2 => {
            put_s("http.request.method", &r.request_type);
            put_s("url.path", &r.request_resource);
            if let Some(code) = r.response_code {
                a.push(i("http.response.status_code", code as i64));
            }
        }
        L7Protocol::Grpc => {
            put_s("rpc.system", "grpc");
            put_s("rpc.method", &r.request_resource);
            if let Some(code) = r.response_code {
                a.push(i("rpc.grpc.status_code", code as i64));
            }
        }
        L7Protocol::Mysql | L7Protocol::Postgresql | L7Protocol::Redis => {
            put_s("db.system.name", protocol.as_str());
            put_s("db.query.text", &r.request_resource);
        }
        L7Protocol::Dns => put_s("dns.question.name", &r.request_resource),
        _ => {}
    }
    let mut ints = vec![
        ("client.port", r.src_port as i64),
        ("server.port", r.dst_port as i64),
        ("thread.id", r.tid_req as i64),
        (
            "causeway.syscall_trace_id_req",
            r.syscall_trace_id_req as i64,
        ),
        (
            "causeway.syscall_trace_id_resp",
            r.syscall_trace_id_resp as i64,
        ),
        ("causeway.req_tcp_seq", r.req_tcp_seq as i64),
        ("causeway.resp_tcp_seq", r.resp_tcp_seq as i64),
        ("causeway.request_length", r.request_length as i64),
        ("causeway.response_length", r.response_length as i64),
    ];
    if let Some(code) = r.response_code {
        ints.push(("causeway.response_code", code as i64));
    }
    if let Some(id) = r.request_id {
        ints.push(("causeway.request_id", id as i64));
    }
    for (k, v) in ints.into_iter().filter(|(_, v)| *v != 0) {
        a.push(i(k, v));
    }
    a
}

/// The span's name: the operation as a user would say it.
fn name(n: &Node) -> String {
    let r = &n.span.row;
    let what = if r.endpoint.is_empty() {
        &r.request_resource
    } else {
        &r.endpoint
    };
    let name = format!("{} {}", r.request_type, what).trim().to_owned();
    if name.is_empty() {
        L7Protocol::from_code(r.protocol).as_str().to_owned()
    } else {
        name
    }
}

/// The OTLP/HTTP JSON body for `trace`; tag ids are named through `dict`.
pub fn export_request(trace: &Trace, dict: &Dictionary) -> Value {
    let trace_id = trace_id(trace);
    // Resource key: (service, host, process, pid) of the observing side.
    let mut resources: BTreeMap<(String, String, String, u32), Vec<Value>> = BTreeMap::new();
    let parents: HashMap<u64, u64> = trace
        .spans
        .iter()
        .filter_map(|n| n.parent.map(|p| (n.span.id, p)))
        .collect();
    for n in &trace.spans {
        let r = &n.span.row;
        let point = ObservationPoint::from_code(r.observation_point);
        let (service, host, process, pid, kind) = match point {
            Some(ObservationPoint::Client) => (
                dict.name(TagKind::Service, r.service_0).to_string(),
                dict.name(TagKind::Host, r.host_0).to_string(),
                dict.name(TagKind::Process, r.process_0).to_string(),
                r.pid,
                KIND_CLIENT,
            ),
            Some(ObservationPoint::Server) => (
                dict.name(TagKind::Service, r.service_1).to_string(),
                dict.name(TagKind::Host, r.host_1).to_string(),
                dict.name(TagKind::Process, r.process_1).to_string(),
                r.pid,
                KIND_SERVER,
            ),
            _ => (
                "network".to_owned(),
                dict.name(TagKind::Agent, n.span.agent).to_string(),
                String::new(),
                0,
                KIND_INTERNAL,
            ),
        };
        let mut span = json!({
            "traceId": trace_id,
            "spanId": span_id(n.span.id),
            "name": name(n),
            "kind": kind,
            "startTimeUnixNano": (r.start_time_us.saturating_mul(1000)).to_string(),
            "endTimeUnixNano": (r.end_time_us.max(r.start_time_us).saturating_mul(1000)).to_string(),
            "attributes": attributes(n),
        });
        if let Some(p) = parents.get(&n.span.id) {
            span["parentSpanId"] = span_id(*p).into();
        }
        let status = ResponseStatus::from_code(r.response_status);
        if matches!(
            status,
            ResponseStatus::ServerError | ResponseStatus::Timeout
        ) {
            let message = if r.exception.is_empty() {
                status.as_str().to_owned()
            } else {
                r.exception.clone()
            };
            span["status"] = json!({ "code": STATUS_ERROR, "message": message });
        }
        let service = if service.is_empty() {
            L7Protocol::from_code(r.protocol).as_str().to_owned()
        } else {
            service
        };
        resources
            .entry((service, host, process, pid))
            .or_default()
            .push(span);
    }
    let resource_spans: Vec<Value> = resources
        .into_iter()
        .map(|((service, host, process, pid), spans)| {
            let mut attrs = vec![s("service.name", &service)];
            if !host.is_empty() {
                attrs.push(s("host.name", &host));
            }
            if !process.is_empty() {
                attrs.push(s("process.executable.name", &process));
            }
            if pid != 0 {
                attrs.push(i("process.pid", pid as i64));
            }
            json!({
                "resource": { "attributes": attrs },
                "scopeSpans": [{
                    "scope": { "name": "causeway", "version": env!("CARGO_PKG_VERSION") },
                    "spans": spans,
                }],
            })
        })
        .collect();
    json!({ "resourceSpans": resource_spans })
}

#[cfg(test)]
mod tests;
