//! The HTTP face of AutoMetrics ([`crate::red`]): `/api/v1/metrics` (RED
//! figures by metric, group-by, filters, step and range) and
//! `/api/v1/service-map` (nodes and edges with their figures). Parameters
//! are checked here, names become tag ids here and ids names again in the
//! results, as in [`crate::api`].
//!
//! Which rows answer: a query that names an edge dimension (`client_*`,
//! `server_*`, or groups by `observation_point`) reads edge rows, any
//! other node rows. Node figures are counted at one observation point:
//! `server` unless asked otherwise (what services served; `client`: what
//! they called). Edges keep one observation point each unless one is
//! asked for (client side where the client was observed, else server side,
//! else the wire), so no request counts twice.
//!
//! Which granularity: `granularity=1s|1m` if given; else 1 s rows when the
//! step is not a whole number of minutes or, with no step, when the range
//! is an hour or less; else 1 min rows. 1 s rows are kept a day by
//! default (`--retention-1s`); a minute's rows appear once it is over.

use crate::api::{bad, blocking, counted, enum_param, text_param, ApiError, ApiState, Params};
use crate::dict::Dictionary;
use crate::red::{self, Dim, Figures, Metric, MetricQuery, Series};
use axum::extract::{Query, State};
use axum::Json;
use causeway_model::metric::{Granularity, RowKind};
use causeway_model::tags::TagKind;
use causeway_model::{L7Protocol, ObservationPoint};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::time::Duration;

/// Most series one answer holds.
pub const MAX_SERIES: u64 = 1000;

const DEFAULT_RANGE: Duration = Duration::from_secs(15 * 60);

fn list(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// A dimension's value as the query compares it: a tag id or a code.
fn dim_value(d: Dim, name: &str, dict: &Dictionary) -> Result<u64, ApiError> {
    match d {
        Dim::Protocol => L7Protocol::from_name(name)
            .map(|p| p.code() as u64)
            .ok_or_else(|| bad(format!("protocol={name:?}: not a protocol Causeway knows"))),
        Dim::ObservationPoint => ObservationPoint::from_name(name)
            .map(|o| o.code() as u64)
            .ok_or_else(|| bad(format!("{name:?}: expected client, server or network"))),
        _ => Ok(dict.id(d.tag_kind().unwrap_or(TagKind::Service), name)),
    }
}

/// A dimension's value as results show it.
fn dim_name(d: Dim, v: u64, dict: &Dictionary) -> Value {
    match d {
        Dim::Protocol => L7Protocol::from_code(v as u32).as_str().into(),
        Dim::ObservationPoint => ObservationPoint::from_code(v as u32)
            .map_or("unknown", |o| o.as_str())
            .into(),
        _ => Value::from(&*dict.name(d.tag_kind().unwrap_or(TagKind::Service), v)),
    }
}

/// The granularity: asked for, or the default (module docs).
fn granularity(
    p: &mut Params,
    step: Option<Duration>,
    range_us: u64,
) -> Result<Granularity, ApiError> {
    if let Some(g) = enum_param(p, "granularity", Granularity::from_name, "1s, 1m")? {
        return Ok(g);
    }
    Ok(match step {
        Some(s) if s.as_micros() % Granularity::Minute.micros() as u128 != 0 => Granularity::Second,
        Some(_) => Granularity::Minute,
        None if range_us <= 3_600_000_000 => Granularity::Second,
        None => Granularity::Minute,
    })
}

/// What `/api/v1/metrics` asks for.
#[derive(Debug, Clone)]
pub struct MetricsRequest {
    pub query: MetricQuery,
    pub metrics: Vec<Metric>,
    pub limit: usize,
}

/// `/api/v1/metrics` parameters into a query.
pub fn metrics_request(
    params: HashMap<String, String>,
    dict: &Dictionary,
) -> Result<MetricsRequest, ApiError> {
    let mut p = Params(params);
    let (from_us, to_us) = p.range(DEFAULT_RANGE)?;
    let metric = p.take("metric").ok_or_else(|| {
        bad(
            "metric: name one or more (comma-separated): requests, responses, client_errors, \
             server_errors, errors, timeouts, latency_avg_us, latency_max_us, latency_p50_us, \
             latency_p90_us, latency_p95_us, latency_p99_us (or p50, p90, p95, p99, avg, max), \
             latency_sum_us, latency_count, request_bytes, response_bytes; from packet \
             capture (observation point network): client_packets, server_packets, client_bytes, \
             server_bytes, new_flows, closed_flows, rtt_avg_us, rtt_max_us, retransmissions, \
             zero_windows, establish_failures, resets, srt_avg_us",
        )
    })?;
    let mut metrics = Vec::new();
    for m in list(&metric) {
        metrics.push(Metric::from_name(m).ok_or_else(|| bad(format!("metric={m:?}: unknown")))?);
    }
    if metrics.is_empty() {
        return Err(bad("metric: name at least one"));
    }
    let mut group_by = Vec::new();
    if let Some(g) = p.take("group_by") {
        for d in list(&g) {
            let dim = Dim::from_name(d).ok_or_else(|| {
                bad(format!(
                    "group_by={d:?}: expected protocol, service, process, host, endpoint, \
                     client_service, server_service, client_process, server_process, \
                     client_host, server_host or observation_point"
                ))
            })?;
            if !group_by.contains(&dim) {
                group_by.push(dim);
            }
        }
    }
    let mut filters = Vec::new();
    for d in Dim::ALL.into_iter().filter(|d| *d != Dim::ObservationPoint) {
        if let Some(v) = text_param(&mut p, d.as_str())? {
            filters.push((d, dim_value(d, &v, dict)?));
        }
    }
    let observation_point = enum_param(
        &mut p,
        "observation_point",
        ObservationPoint::from_name,
        "client, server, network",
    )?;
    let edge = group_by
        .iter()
        .chain(filters.iter().map(|(d, _)| d))
        .any(|d| d.row_kind() == Some(RowKind::Edge));
    let kind = if edge { RowKind::Edge } else { RowKind::Node };
    let observation_point = match kind {
        RowKind::Node => Some(observation_point.unwrap_or(ObservationPoint::Server)),
        RowKind::Edge => observation_point,
    };
    let step = p.duration("step")?;
    let granularity = granularity(&mut p, step, to_us - from_us)?;
    let limit = p.number("limit")?.unwrap_or(100);
    if limit == 0 || limit > MAX_SERIES {
        return Err(bad(format!("limit={limit}: between 1 and {MAX_SERIES}")));
    }
    p.done()?;
    let query = MetricQuery {
        granularity,
        from_us,
        to_us,
        step_us: step.map(|s| s.as_micros() as u64),
        kind,
        observation_point,
        filters,
        group_by,
    };
    query.check().map_err(bad)?;
    Ok(MetricsRequest {
        query,
        metrics,
        limit: limit as usize,
    })
}

/// The asked-for metrics of some figures, as a JSON object (null where a
/// latency figure has no answered request).
fn values(f: &Figures, metrics: &[Metric], into: &mut Map<String, Value>) {
    for m in metrics {
        into.insert(
            m.as_str().into(),
            f.value(*m).map_or(Value::Null, Value::from),
        );
    }
}

/// A series as JSON.
fn series_json(s: &Series, q: &MetricQuery, metrics: &[Metric], dict: &Dictionary) -> Value {
    let mut group = Map::new();
    for (d, v) in q.group_by.iter().zip(&s.group) {
        group.insert(d.as_str().into(), dim_name(*d, *v, dict));
    }
    let mut total = Map::new();
    values(&s.total, metrics, &mut total);
    let mut out = json!({ "group": group, "values": total });
    if q.step_us.is_some() {
        let points: Vec<Value> = s
            .points
            .iter()
            .map(|(t, f)| {
                let mut m = Map::new();
                m.insert("time_us".into(), (*t).into());
                values(f, metrics, &mut m);
                Value::Object(m)
            })
            .collect();
        out["points"] = points.into();
    }
    out
}

pub async fn metrics(
    State(st): State<ApiState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let r = async {
        let req = metrics_request(params, &st.dict)?;
        let sketches = req.metrics.iter().any(|m| m.is_quantile());
        let store = st.store.clone();
        let q = req.query.clone();
        let series = blocking(&st.stats, move || q.run(store.as_ref(), sketches)).await?;
        let q = &req.query;
        let total = series.len();
        let list: Vec<Value> = series
            .iter()
            .take(req.limit)
            .map(|s| series_json(s, q, &req.metrics, &st.dict))
            .collect();
        Ok(Json(json!({
            "granularity": q.granularity.as_str(),
            "from_us": q.from_us,
            "to_us": q.to_us,
            "step_us": q.step_us,
            "rows": match q.kind { RowKind::Node => "node", RowKind::Edge => "edge" },
            "observation_point": q.observation_point.map(|o| o.as_str()),
            "metrics": req.metrics.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
            "series": list,
            "truncated": total > req.limit,
        })))
    }
    .await;
    counted(&st.stats, r)
}

/// Every figure, as the service map shows them.
pub fn figures_json(f: &Figures) -> Value {
    let mut m = Map::new();
    values(
        f,
        &[
            Metric::Requests,
            Metric::Responses,
            Metric::ClientErrors,
            Metric::ServerErrors,
            Metric::Timeouts,
            Metric::LatencyAvg,
            Metric::P50,
            Metric::P90,
            Metric::P99,
            Metric::LatencyMax,
            Metric::RequestBytes,
            Metric::ResponseBytes,
            Metric::ClientPackets,
            Metric::ServerPackets,
            Metric::ClientBytes,
            Metric::ServerBytes,
            Metric::NewFlows,
            Metric::ClosedFlows,
            Metric::RttAvg,
            Metric::Retransmissions,
            Metric::ZeroWindows,
            Metric::EstablishFailures,
            Metric::Resets,
            Metric::SrtAvg,
        ],
        &mut m,
    );
    Value::Object(m)
}

pub async fn service_map(
    State(st): State<ApiState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let r = async {
        let mut p = Params(params);
        let (from_us, to_us) = p.range(DEFAULT_RANGE)?;
        let g = granularity(&mut p, None, to_us - from_us)?;
        let mut filters = Vec::new();
        if let Some(v) = text_param(&mut p, "protocol")? {
            filters.push((Dim::Protocol, dim_value(Dim::Protocol, &v, &st.dict)?));
        }
        let service = text_param(&mut p, "service")?.map(|s| st.dict.id(TagKind::Service, &s));
        p.done()?;
        let store = st.store.clone();
        let map = blocking(&st.stats, move || {
            red::service_map(store.as_ref(), g, from_us, to_us, &filters, service)
        })
        .await?;
        let name = |id: u64| Value::from(&*st.dict.name(TagKind::Service, id));
        let nodes: Vec<Value> = map
            .nodes
            .iter()
            .map(|n| {
                json!({
                    "service": name(n.service),
                    "served": n.served.as_ref().map(figures_json),
                    "called": n.called.as_ref().map(figures_json),
                })
            })
            .collect();
        let edges: Vec<Value> = map
            .edges
            .iter()
            .map(|e| {
                let mut v = json!({
                    "client": name(e.client),
                    "server": name(e.server),
                    "protocol": L7Protocol::from_code(e.protocol).as_str(),
                    "observation_point": e.observation_point.map(|o| o.as_str()),
                });
                if let (Value::Object(m), Value::Object(f)) = (&mut v, figures_json(&e.figures)) {
                    m.extend(f);
                }
                v
            })
            .collect();
        Ok(Json(json!({
            "granularity": g.as_str(),
            "from_us": from_us,
            "to_us": to_us,
            "nodes": nodes,
            "edges": edges,
        })))
    }
    .await;
    counted(&st.stats, r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use causeway_model::tags::tag_id;

    fn req(pairs: &[(&str, &str)]) -> Result<MetricsRequest, String> {
        let params = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        metrics_request(params, &Dictionary::new()).map_err(|e| e.1)
    }

    #[test]
    fn parameters_are_checked() {
        let r = req(&[("metric", "requests,p99")]).unwrap();
        assert_eq!(r.metrics, [Metric::Requests, Metric::P99]);
        let q = r.query;
        assert_eq!(
            (q.kind, q.observation_point),
            (RowKind::Node, Some(ObservationPoint::Server))
        );
        assert_eq!((q.granularity, q.step_us), (Granularity::Second, None));
        let r = req(&[
            ("metric", "server_errors"),
            ("group_by", "endpoint"),
            ("service", "app"),
            ("protocol", "http"),
            ("step", "1m"),
            ("since", "2h"),
            ("observation_point", "client"),
        ])
        .unwrap();
        let q = r.query;
        assert_eq!(q.granularity, Granularity::Minute);
        assert_eq!(q.step_us, Some(60_000_000));
        assert_eq!(q.observation_point, Some(ObservationPoint::Client));
        assert!(q
            .filters
            .contains(&(Dim::Service, tag_id(TagKind::Service, "app"))));
        assert!(q
            .filters
            .contains(&(Dim::Protocol, L7Protocol::Http.code() as u64)));
        // Edges: picked per edge unless asked.
        let q = req(&[
            ("metric", "requests"),
            ("group_by", "client_service,server_service"),
        ])
        .unwrap()
        .query;
        assert_eq!((q.kind, q.observation_point), (RowKind::Edge, None));
        let q = req(&[("metric", "requests"), ("step", "10s"), ("since", "1d")])
            .unwrap()
            .query;
        assert_eq!(q.granularity, Granularity::Second);
        let q = req(&[("metric", "requests"), ("since", "1d")])
            .unwrap()
            .query;
        assert_eq!(q.granularity, Granularity::Minute);
        for (bad, says) in [
            (vec![], "metric"),
            (vec![("metric", "requests,rps")], "rps"),
            (
                vec![("metric", "requests"), ("group_by", "colour")],
                "colour",
            ),
            (
                vec![
                    ("metric", "requests"),
                    ("group_by", "endpoint,client_service"),
                ],
                "combined",
            ),
            (
                vec![("metric", "requests"), ("protocol", "smtp")],
                "protocol",
            ),
            (
                vec![("metric", "requests"), ("granularity", "5s")],
                "granularity",
            ),
            (
                vec![
                    ("metric", "requests"),
                    ("step", "30s"),
                    ("granularity", "1m"),
                ],
                "step",
            ),
            (vec![("metric", "requests"), ("step", "1500ms")], "step"),
            (vec![("metric", "requests"), ("limit", "0")], "limit"),
            (
                vec![("metric", "requests"), ("observation_point", "both")],
                "observation_point",
            ),
            (vec![("metric", "requests"), ("colour", "red")], "colour"),
        ] {
            let e = req(&bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }

    #[test]
    fn the_openapi_document_names_these_routes_and_parameters() {
        let doc: Value = serde_json::from_str(crate::api::OPENAPI).expect("valid JSON");
        let names = |route: &str| -> Vec<String> {
            doc["paths"][route]["get"]["parameters"]
                .as_array()
                .unwrap_or_else(|| panic!("{route} documented"))
                .iter()
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect()
        };
        let m = names("/api/v1/metrics");
        for n in [
            "since",
            "from",
            "to",
            "metric",
            "group_by",
            "step",
            "granularity",
            "observation_point",
            "limit",
        ]
        .into_iter()
        .chain(
            Dim::ALL
                .iter()
                .filter(|d| **d != Dim::ObservationPoint)
                .map(|d| d.as_str()),
        ) {
            assert!(
                m.iter().any(|x| x == n),
                "/api/v1/metrics: {n} undocumented"
            );
        }
        let s = names("/api/v1/service-map");
        for n in ["since", "from", "to", "granularity", "protocol", "service"] {
            assert!(
                s.iter().any(|x| x == n),
                "/api/v1/service-map: {n} undocumented"
            );
        }
    }
}
