//! The HTTP JSON API (axum): spans, one span, services, the assembled
//! trace of a span (as a tree, or as OTLP JSON), health, the server's own
//! metrics and the OpenAPI description of it all.
//!
//! Parameters are checked here, before anything reaches a store: an
//! unknown parameter or a bad value is a 400 with a message saying which
//! and why. Names (service, process) become tag ids here; ids become
//! names in results here, from the dictionary.

use crate::dict::Dictionary;
use crate::metrics::ServerStats;
use crate::query::{ServiceQuery, SpanQuery};
use crate::schema::StoredSpan;
use crate::store::Store;
use crate::trace::{Trace, TraceOptions};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use causeway_model::tags::TagKind;
use causeway_model::{duration, L4Protocol, L7Protocol, ObservationPoint, ResponseStatus};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What every handler needs.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn Store>,
    pub dict: Arc<Dictionary>,
    pub stats: Arc<ServerStats>,
}

/// The OpenAPI 3 description of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Most spans one page may hold.
pub const MAX_LIMIT: u32 = 1000;

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/spans", get(spans))
        .route("/api/v1/span/{id}", get(span))
        .route("/api/v1/services", get(services))
        .route("/api/v1/traces/{id}", get(trace))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .route("/api/v1/metrics", get(crate::red_api::metrics))
        .route("/api/v1/service-map", get(crate::red_api::service_map))
        .route("/api/v1/flows", get(crate::flows_api::flows))
        .with_state(state)
}

/// A 400 or a 500, as JSON `{"error": ...}`.
pub struct ApiError(pub(crate) StatusCode, pub(crate) String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

pub(crate) fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Query parameters, each taken once; whatever is left is unknown.
pub(crate) struct Params(pub(crate) HashMap<String, String>);

impl Params {
    pub(crate) fn take(&mut self, name: &str) -> Option<String> {
        self.0.remove(name).filter(|v| !v.is_empty())
    }

    pub(crate) fn number(&mut self, name: &str) -> Result<Option<u64>, ApiError> {
        self.take(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| bad(format!("{name}={v:?}: expected a non-negative integer")))
            })
            .transpose()
    }

    pub(crate) fn duration(&mut self, name: &str) -> Result<Option<Duration>, ApiError> {
        self.take(name)
            .map(|v| duration::parse(&v).map_err(|e| bad(format!("{name}: {e}"))))
            .transpose()
    }

    /// `since` (a duration back from now, default `default`) or `from` and
    /// `to` (microseconds since the epoch; `to` defaults to now).
    pub(crate) fn range(&mut self, default: Duration) -> Result<(u64, u64), ApiError> {
        let now = now_us();
        let since = self.duration("since")?;
        let from = self.number("from")?;
        let to = self.number("to")?.unwrap_or(now + 1);
        let from = match (since, from) {
            (Some(_), Some(_)) => return Err(bad("give since or from, not both")),
            (Some(s), None) => now.saturating_sub(s.as_micros() as u64),
            (None, Some(f)) => f,
            (None, None) => now.saturating_sub(default.as_micros() as u64),
        };
        if from >= to {
            return Err(bad(format!(
                "the range is empty: from {from} is not before to {to}"
            )));
        }
        Ok((from, to))
    }

    pub(crate) fn done(self) -> Result<(), ApiError> {
        match self.0.into_keys().min() {
            Some(k) => Err(bad(format!("unknown parameter {k:?}"))),
            None => Ok(()),
        }
    }
}

pub(crate) fn enum_param<T>(
    p: &mut Params,
    name: &str,
    parse: impl Fn(&str) -> Option<T>,
    choices: &str,
) -> Result<Option<T>, ApiError> {
    p.take(name)
        .map(|v| parse(&v).ok_or_else(|| bad(format!("{name}={v:?}: expected one of {choices}"))))
        .transpose()
}

pub(crate) fn text_param(p: &mut Params, name: &str) -> Result<Option<String>, ApiError> {
    let v = p.take(name);
    if v.as_ref().is_some_and(|v| v.len() > 1024) {
        return Err(bad(format!("{name}: longer than 1024 bytes")));
    }
    Ok(v)
}

/// A span as JSON: the same field names as `causeway watch --format json`,
/// plus its id (a string: JSON numbers lose 64-bit precision), its agent
/// and the tags of both sides by name.
pub fn span_json(s: &StoredSpan, dict: &Dictionary) -> Value {
    let r = &s.row;
    let name = |k: TagKind, id: u64| Value::from(&*dict.name(k, id));
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_owned(), v);
    };
    put("id", s.id.to_string().into());
    put("agent", name(TagKind::Agent, s.agent));
    put(
        "protocol",
        L7Protocol::from_code(r.protocol).as_str().into(),
    );
    put("version", r.version.clone().into());
    put(
        "observation_point",
        ObservationPoint::from_code(r.observation_point)
            .map_or("unknown", |o| o.as_str())
            .into(),
    );
    put(
        "l4_protocol",
        L4Protocol::from_code(r.l4_protocol)
            .map_or("unknown", |l| l.as_str())
            .into(),
    );
    put("is_tls", r.is_tls.into());
    put("pid", r.pid.into());
    put("tid_req", r.tid_req.into());
    put("tid_resp", r.tid_resp.into());
    put("coroutine_id_req", r.coroutine_id_req.into());
    put("coroutine_id_resp", r.coroutine_id_resp.into());
    put("socket_id", r.socket_id.into());
    put("src_ip", r.src_ip.clone().into());
    put("src_port", r.src_port.into());
    put("dst_ip", r.dst_ip.clone().into());
    put("dst_port", r.dst_port.into());
    put("request_type", r.request_type.clone().into());
    put("request_domain", r.request_domain.clone().into());
    put("request_resource", r.request_resource.clone().into());
    put("endpoint", r.endpoint.clone().into());
    put("request_id", r.request_id.map_or(Value::Null, Value::from));
    put(
        "response_code",
        r.response_code.map_or(Value::Null, Value::from),
    );
    put(
        "response_status",
        ResponseStatus::from_code(r.response_status).as_str().into(),
    );
    put("exception", r.exception.clone().into());
    put("result", r.result.clone().into());
    put("user_agent", r.user_agent.clone().into());
    put("start_time_us", r.start_time_us.into());
    put("end_time_us", r.end_time_us.into());
    put(
        "duration_us",
        r.end_time_us.saturating_sub(r.start_time_us).into(),
    );
    put("request_length", r.request_length.into());
    put("response_length", r.response_length.into());
    put("req_tcp_seq", r.req_tcp_seq.into());
    put("resp_tcp_seq", r.resp_tcp_seq.into());
    put("syscall_trace_id_req", r.syscall_trace_id_req.into());
    put("syscall_trace_id_resp", r.syscall_trace_id_resp.into());
    put("x_request_id", r.x_request_id.clone().into());
    put("x_request_id_resp", r.x_request_id_resp.clone().into());
    put("trace_id", r.trace_id.clone().into());
    put("span_id", r.span_id.clone().into());
    put("parent_span_id", r.parent_span_id.clone().into());
    for (side, host, process, service, pid) in [
        ("0", r.host_0, r.process_0, r.service_0, r.pid_0),
        ("1", r.host_1, r.process_1, r.service_1, r.pid_1),
    ] {
        put(&format!("host_{side}"), name(TagKind::Host, host));
        put(&format!("process_{side}"), name(TagKind::Process, process));
        put(&format!("service_{side}"), name(TagKind::Service, service));
        put(&format!("pid_{side}"), pid.into());
    }
    Value::Object(m)
}

/// Runs a store call off the async threads; a store failure is a 500.
pub(crate) async fn blocking<T: Send + 'static>(
    stats: &ServerStats,
    f: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let r = tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    r.map_err(|e| {
        ServerStats::add(&stats.api_errors, 1);
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    })
}

pub(crate) fn counted<T>(stats: &ServerStats, r: Result<T, ApiError>) -> Result<T, ApiError> {
    ServerStats::add(&stats.api_requests, 1);
    if let Err(ApiError(StatusCode::BAD_REQUEST, _)) = &r {
        ServerStats::add(&stats.api_bad_requests, 1);
    }
    r
}

/// `/api/v1/spans` parameters into a query.
pub fn span_query(
    params: HashMap<String, String>,
    dict: &Dictionary,
) -> Result<SpanQuery, ApiError> {
    let mut p = Params(params);
    let (from_us, to_us) = p.range(Duration::from_secs(15 * 60))?;
    let protocol = enum_param(&mut p, "protocol", L7Protocol::from_name, "http, http2, grpc, dns, mysql, postgresql, redis, kafka, mqtt, dubbo, sofarpc, protobuf_rpc")?;
    let status = enum_param(
        &mut p,
        "status",
        ResponseStatus::from_name,
        "ok, client_error, server_error, timeout, unknown",
    )?;
    let observation_point = enum_param(
        &mut p,
        "observation_point",
        ObservationPoint::from_name,
        "client, server, network",
    )?;
    let service = text_param(&mut p, "service")?.map(|s| dict.id(TagKind::Service, &s));
    let process = text_param(&mut p, "process")?.map(|s| dict.id(TagKind::Process, &s));
    let endpoint = text_param(&mut p, "endpoint")?;
    let port = p
        .number("port")?
        .map(|n| u16::try_from(n).map_err(|_| bad(format!("port={n}: at most 65535"))))
        .transpose()?;
    let trace_id = text_param(&mut p, "trace_id")?;
    let min_duration_us = p.duration("min_duration")?.map(|d| d.as_micros() as u64);
    let limit = p.number("limit")?.unwrap_or(100);
    if limit == 0 || limit > MAX_LIMIT as u64 {
        return Err(bad(format!("limit={limit}: between 1 and {MAX_LIMIT}")));
    }
    let before = p
        .take("cursor")
        .map(|c| {
            c.split_once(':')
                .and_then(|(t, id)| Some((t.parse().ok()?, id.parse().ok()?)))
                .ok_or_else(|| {
                    bad(format!(
                        "cursor={c:?}: use the next_cursor of the previous page"
                    ))
                })
        })
        .transpose()?;
    p.done()?;
    Ok(SpanQuery {
        from_us,
        to_us,
        protocol,
        status,
        observation_point,
        service,
        process,
        endpoint,
        port,
        min_duration_us,
        before,
        trace_id,
        limit: limit as u32,
    })
}

async fn spans(
    State(st): State<ApiState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let r = async {
        let q = span_query(params, &st.dict)?;
        let limit = q.limit as usize;
        let store = st.store.clone();
        let rows = blocking(&st.stats, move || store.spans(&q)).await?;
        let next = (rows.len() == limit)
            .then(|| {
                rows.last()
                    .map(|s| format!("{}:{}", s.row.start_time_us, s.id))
            })
            .flatten();
        Ok(Json(json!({
            "spans": rows.iter().map(|s| span_json(s, &st.dict)).collect::<Vec<_>>(),
            "next_cursor": next,
        })))
    }
    .await;
    counted(&st.stats, r)
}

async fn span(State(st): State<ApiState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let r = async {
        let id: u64 = id
            .parse()
            .map_err(|_| bad(format!("span id {id:?}: expected a decimal integer")))?;
        let store = st.store.clone();
        match blocking(&st.stats, move || store.span(id)).await? {
            Some(s) => Ok(Json(span_json(&s, &st.dict))),
            None => Err(ApiError(StatusCode::NOT_FOUND, format!("no span {id}"))),
        }
    }
    .await;
    counted(&st.stats, r)
}

async fn services(
    State(st): State<ApiState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let r = async {
        let mut p = Params(params);
        let (from_us, to_us) = p.range(Duration::from_secs(15 * 60))?;
        p.done()?;
        let store = st.store.clone();
        let rows = blocking(&st.stats, move || {
            store.services(&ServiceQuery { from_us, to_us })
        })
        .await?;
        let list: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "service": &*st.dict.name(TagKind::Service, r.service),
                    "protocol": r.protocol.as_str(),
                    "served": r.served,
                    "client_errors": r.client_errors,
                    "server_errors": r.server_errors,
                    "timeouts": r.timeouts,
                    "avg_duration_us": r.duration_sum_us.checked_div(r.served).unwrap_or(0),
                    "max_duration_us": r.duration_max_us,
                    "made": r.made,
                })
            })
            .collect();
        Ok(Json(json!({ "services": list })))
    }
    .await;
    counted(&st.stats, r)
}

/// Longest `window` a trace assembly may search on either side.
pub const MAX_TRACE_WINDOW: Duration = Duration::from_secs(3600);

/// `/api/v1/traces/{id}` parameters: the assembly's bounds and the format.
pub fn trace_params(params: HashMap<String, String>) -> Result<(TraceOptions, bool), ApiError> {
    let mut p = Params(params);
    let mut opt = TraceOptions::default();
    if let Some(w) = p.duration("window")? {
        if w > MAX_TRACE_WINDOW {
            return Err(bad(format!(
                "window: at most {}s",
                MAX_TRACE_WINDOW.as_secs()
            )));
        }
        opt.window_us = w.as_micros() as u64;
    }
    if let Some(n) = p.number("max_iterations")? {
        if n == 0 || n > 100 {
            return Err(bad(format!("max_iterations={n}: between 1 and 100")));
        }
        opt.max_iterations = n as u32;
    }
    let otlp = match p.take("format").as_deref() {
        None | Some("json") => false,
        Some("otlp") => true,
        Some(other) => return Err(bad(format!("format={other:?}: expected one of json, otlp"))),
    };
    p.done()?;
    Ok((opt, otlp))
}

/// An assembled trace as JSON: each span as in `/api/v1/spans`, plus its
/// parent's id, why that is its parent (`link`), its depth, its children's
/// ids and its self time, in display order (depth first, children by start
/// time).
pub fn trace_json(t: &Trace, dict: &Dictionary) -> Value {
    let spans: Vec<Value> = t
        .spans
        .iter()
        .map(|n| {
            let mut v = span_json(&n.span, dict);
            if let Value::Object(m) = &mut v {
                m.insert(
                    "parent_id".into(),
                    n.parent.map_or(Value::Null, |p| p.to_string().into()),
                );
                m.insert(
                    "link".into(),
                    n.link.map_or(Value::Null, |l| l.as_str().into()),
                );
                m.insert("depth".into(), n.depth.into());
                m.insert(
                    "children".into(),
                    n.children.iter().map(|c| c.to_string()).collect(),
                );
                m.insert("self_time_us".into(), n.self_time_us.into());
            }
            v
        })
        .collect();
    json!({
        "start_span": t.start.to_string(),
        "trace_id": crate::otlp::trace_id(t),
        "roots": t.spans.iter().filter(|n| n.parent.is_none()).map(|n| n.span.id.to_string()).collect::<Vec<_>>(),
        "spans": spans,
        "iterations": t.iterations,
        "truncated": t.truncated,
        "dropped": t.dropped,
        "from_us": t.from_us,
        "to_us": t.to_us,
    })
}

async fn trace(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let r = async {
        let id: u64 = id
            .parse()
            .map_err(|_| bad(format!("span id {id:?}: expected a decimal integer")))?;
        let (opt, otlp) = trace_params(params)?;
        let store = st.store.clone();
        let started = std::time::Instant::now();
        let t = blocking(&st.stats, move || {
            crate::trace::assemble(store.as_ref(), id, &opt)
        })
        .await?
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no span {id}")))?;
        tracing::debug!(
            "trace of {id}: {} spans in {:?}",
            t.spans.len(),
            started.elapsed()
        );
        Ok(Json(if otlp {
            crate::otlp::export_request(&t, &st.dict)
        } else {
            trace_json(&t, &st.dict)
        }))
    }
    .await;
    counted(&st.stats, r)
}

async fn health(State(st): State<ApiState>) -> Json<Value> {
    Json(json!({ "status": "ok", "store": st.store.kind() }))
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

async fn metrics(State(st): State<ApiState>) -> impl IntoResponse {
    let store = st.store.clone();
    let disk = tokio::task::spawn_blocking(move || store.disk_bytes())
        .await
        .ok()
        .flatten()
        .unwrap_or(0);
    let text = st.stats.render(&[
        (
            "causeway_store_disk_bytes",
            "Bytes the store takes on disk",
            disk,
        ),
        (
            "causeway_tag_dictionary_entries",
            "Tag dictionary entries cached",
            st.dict.len() as u64,
        ),
    ]);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Result<SpanQuery, String> {
        let params = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        span_query(params, &Dictionary::new()).map_err(|e| e.1)
    }

    #[test]
    fn parameters_are_checked() {
        let d = q(&[]).unwrap();
        assert_eq!(d.limit, 100);
        assert!(d.to_us - d.from_us >= 15 * 60 * 1_000_000);
        let full = q(&[
            ("since", "5m"),
            ("protocol", "mysql"),
            ("status", "server_error"),
            ("service", "db"),
            ("min_duration", "10ms"),
            ("limit", "7"),
            ("cursor", "5:6"),
        ])
        .unwrap();
        assert_eq!(full.protocol, Some(L7Protocol::Mysql));
        assert_eq!(full.status, Some(ResponseStatus::ServerError));
        assert_eq!(
            full.service,
            Some(causeway_model::tags::tag_id(TagKind::Service, "db"))
        );
        assert_eq!(full.min_duration_us, Some(10_000));
        assert_eq!((full.limit, full.before), (7, Some((5, 6))));
        for (bad, says) in [
            (vec![("protocol", "smtp")], "protocol"),
            (vec![("status", "fine")], "status"),
            (vec![("limit", "0")], "limit"),
            (vec![("limit", "-1")], "limit"),
            (vec![("limit", "5000")], "limit"),
            (vec![("since", "5 parsecs")], "since"),
            (vec![("since", "5m"), ("from", "1")], "not both"),
            (vec![("from", "10"), ("to", "5")], "empty"),
            (vec![("cursor", "x")], "cursor"),
            (vec![("port", "70000")], "port"),
            (vec![("colour", "red")], "colour"),
        ] {
            let e = q(&bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }

    #[test]
    fn trace_parameters_are_checked() {
        let p = |pairs: &[(&str, &str)]| {
            trace_params(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
            .map_err(|e| e.1)
        };
        let (opt, otlp) = p(&[]).unwrap();
        assert_eq!((opt, otlp), (TraceOptions::default(), false));
        let (opt, otlp) = p(&[
            ("window", "5s"),
            ("format", "otlp"),
            ("max_iterations", "3"),
        ])
        .unwrap();
        assert_eq!(
            (opt.window_us, opt.max_iterations, otlp),
            (5_000_000, 3, true)
        );
        for (bad, says) in [
            (vec![("window", "2h")], "window"),
            (vec![("window", "soon")], "window"),
            (vec![("format", "xml")], "format"),
            (vec![("max_iterations", "0")], "max_iterations"),
            (vec![("since", "5m")], "since"),
        ] {
            let e = p(&bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }

    #[test]
    fn the_openapi_document_names_every_route_and_parameter() {
        let doc: Value = serde_json::from_str(OPENAPI).expect("valid JSON");
        let paths = doc["paths"].as_object().expect("paths");
        for route in [
            "/api/v1/health",
            "/api/v1/spans",
            "/api/v1/span/{id}",
            "/api/v1/services",
            "/api/v1/traces/{id}",
            "/api/v1/openapi.json",
            "/api/v1/flows",
            "/metrics",
        ] {
            assert!(paths.contains_key(route), "{route} missing");
        }
        let names: Vec<&str> = doc["paths"]["/api/v1/spans"]["get"]["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        for n in [
            "since",
            "from",
            "to",
            "protocol",
            "status",
            "observation_point",
            "service",
            "process",
            "endpoint",
            "trace_id",
            "min_duration",
            "limit",
            "cursor",
        ] {
            assert!(names.contains(&n), "{n} undocumented");
        }
    }
}
