//! The export checked against the OpenTelemetry protocol's own types
//! (`opentelemetry-proto` with serde, the OTLP JSON mapping): every field
//! written is one the protocol has, in its encoding, and the ids and
//! parents are what the assembled tree says.

use super::*;
use crate::schema::StoredSpan;
use crate::trace::link;
use causeway_model::tags::tag_id;
use causeway_model::wire::SpanRow;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

/// `ours` holds nothing that `theirs` (the protocol's own rendering of
/// what it read) lacks or spells differently.
fn subset(ours: &Value, theirs: &Value, path: &str) {
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let w = b.get(k).unwrap_or_else(|| {
                    panic!("{path}.{k}: not an OTLP field (dropped on reading)")
                });
                subset(v, w, &format!("{path}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{path}: lengths");
            for (k, (v, w)) in a.iter().zip(b).enumerate() {
                subset(v, w, &format!("{path}[{k}]"));
            }
        }
        _ => assert_eq!(ours, theirs, "{path}"),
    }
}

fn span(id: u64, obs: ObservationPoint, pid: u32, start: u64, end: u64) -> StoredSpan {
    StoredSpan {
        id,
        agent: 1,
        session: 1,
        seq: 1,
        row: SpanRow {
            start_time_us: 1_700_000_000_000_000 + start,
            end_time_us: 1_700_000_000_000_000 + end,
            observation_point: obs.code(),
            l4_protocol: 6,
            pid,
            protocol: L7Protocol::Http.code(),
            request_type: "GET".into(),
            request_resource: "/a?id=1".into(),
            endpoint: "/a".into(),
            response_code: Some(200),
            src_ip: "127.0.0.1".into(),
            src_port: 40000,
            dst_ip: "127.0.0.1".into(),
            dst_port: 8080,
            req_tcp_seq: 100,
            resp_tcp_seq: 200,
            service_0: tag_id(TagKind::Service, "curl"),
            service_1: tag_id(TagKind::Service, "web"),
            ..SpanRow::default()
        },
    }
}

fn sample() -> Trace {
    let client = span(0x1111, ObservationPoint::Client, 10, 0, 1000);
    let server = span(0x2222, ObservationPoint::Server, 20, 100, 900);
    let mut call = span(0x3333, ObservationPoint::Client, 20, 200, 800);
    call.row.protocol = L7Protocol::Redis.code();
    call.row.request_type = "GET".into();
    call.row.request_resource = "GET k".into();
    call.row.endpoint = "GET".into();
    call.row.response_code = None;
    call.row.response_status = ResponseStatus::ServerError.code();
    call.row.exception = "ERR wrong".into();
    (call.row.src_port, call.row.dst_port) = (40001, 6379);
    (call.row.req_tcp_seq, call.row.resp_tcp_seq) = (7, 8);
    call.row.service_0 = tag_id(TagKind::Service, "web");
    call.row.service_1 = tag_id(TagKind::Service, "redis-server");
    call.row.syscall_trace_id_req = 5;
    let mut server = server;
    server.row.syscall_trace_id_req = 5;
    link(vec![client, server, call], 0x2222, 0)
}

fn dict() -> Dictionary {
    let d = Dictionary::new();
    d.add([
        (TagKind::Service, tag_id(TagKind::Service, "curl"), "curl"),
        (TagKind::Service, tag_id(TagKind::Service, "web"), "web"),
        (
            TagKind::Service,
            tag_id(TagKind::Service, "redis-server"),
            "redis-server",
        ),
    ]);
    d
}

#[test]
fn the_export_reads_as_otlp_json_with_the_tree_s_parents() {
    let trace = sample();
    assert_eq!(trace.spans.len(), 3);
    let ours = export_request(&trace, &dict());
    let parsed: ExportTraceServiceRequest =
        serde_json::from_value(ours.clone()).expect("OTLP JSON");
    let theirs = serde_json::to_value(&parsed).expect("serialize");
    subset(&ours, &theirs, "");

    let spans: Vec<_> = parsed
        .resource_spans
        .iter()
        .flat_map(|r| r.scope_spans.iter().flat_map(|s| s.spans.iter()))
        .collect();
    assert_eq!(spans.len(), 3);
    let trace_id = spans[0].trace_id.clone();
    assert_eq!(trace_id.len(), 16);
    assert!(trace_id.iter().any(|b| *b != 0));
    let by_id = |id: u64| {
        spans
            .iter()
            .find(|s| s.span_id == id.to_be_bytes())
            .unwrap_or_else(|| panic!("span {id:x}"))
    };
    for s in &spans {
        assert_eq!(s.trace_id, trace_id, "one trace id");
        assert_eq!(s.span_id.len(), 8);
        assert!(s.end_time_unix_nano >= s.start_time_unix_nano);
    }
    assert!(
        by_id(0x1111).parent_span_id.is_empty(),
        "the root has no parent"
    );
    assert_eq!(by_id(0x2222).parent_span_id, 0x1111u64.to_be_bytes());
    assert_eq!(by_id(0x3333).parent_span_id, 0x2222u64.to_be_bytes());
    // Kinds, times, status, names.
    assert_eq!(by_id(0x1111).kind, KIND_CLIENT as i32);
    assert_eq!(by_id(0x2222).kind, KIND_SERVER as i32);
    assert_eq!(
        by_id(0x2222).start_time_unix_nano,
        (1_700_000_000_000_000 + 100) * 1000
    );
    assert_eq!(by_id(0x2222).name, "GET /a");
    let failed = by_id(0x3333);
    let status = failed.status.as_ref().expect("status");
    assert_eq!((status.code, status.message.as_str()), (2, "ERR wrong"));
    assert!(by_id(0x1111).status.is_none());
    // Resources: one per observing service.
    let names: Vec<String> = parsed
        .resource_spans
        .iter()
        .map(|r| {
            let attrs = &r.resource.as_ref().expect("resource").attributes;
            match attrs.iter().find(|a| a.key == "service.name").and_then(|a| a.value.clone()) {
                Some(opentelemetry_proto::tonic::common::v1::AnyValue {
                    value: Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s)),
                }) => s,
                other => panic!("service.name: {other:?}"),
            }
        })
        .collect();
    assert_eq!(names, ["curl", "web"]);
    // An attribute of each encoding: a string, an integer (as a string).
    let attr = |s: &opentelemetry_proto::tonic::trace::v1::Span, k: &str| {
        s.attributes
            .iter()
            .find(|a| a.key == k)
            .and_then(|a| a.value.clone())
            .and_then(|v| v.value)
    };
    use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
    assert_eq!(
        attr(by_id(0x2222), "http.response.status_code"),
        Some(V::IntValue(200))
    );
    assert_eq!(
        attr(by_id(0x2222), "causeway.parent_link"),
        Some(V::StringValue("tcp_seq".into()))
    );
    assert_eq!(
        attr(by_id(0x3333), "db.system.name"),
        Some(V::StringValue("redis".into()))
    );
}

#[test]
fn the_trace_id_comes_from_headers_or_the_root() {
    let mut trace = sample();
    let derived = trace_id(&trace);
    assert_eq!(derived.len(), 32);
    // The same tree assembled from another span: the same id.
    let mut other = trace.clone();
    other.start = 0x3333;
    assert_eq!(trace_id(&other), derived);
    // A W3C trace id most spans carry wins; malformed ones do not count.
    trace.spans[0].span.row.trace_id = "0AF7651916CD43DD8448EB211C80319C".into();
    trace.spans[1].span.row.trace_id = "0af7651916cd43dd8448eb211c80319c".into();
    trace.spans[2].span.row.trace_id = "not-a-trace-id".into();
    assert_eq!(trace_id(&trace), "0af7651916cd43dd8448eb211c80319c");
    trace.spans[0].span.row.trace_id = "00000000000000000000000000000000".into();
    trace.spans[1].span.row.trace_id = "00000000000000000000000000000000".into();
    assert_eq!(trace_id(&trace), derived);
}
