//! What AutoMetrics costs per span in the agent (`causeway_agent::red`):
//! `Aggregator::add` on generated spans, with the 1 s flushes (and the
//! merge into 1 min windows) amortized in, for a few shapes of traffic;
//! and the exporter's path per span with and without the metrics
//! (encode; encode + endpoint id + aggregate), whose difference is what
//! the metrics add to each span the agent exports. Figures: bench/metrics.md.

use causeway_agent::export::Encoder;
use causeway_agent::red::{Aggregator, RedConfig};
use causeway_model::tags::{tag_id, TagKind};
use causeway_model::wire::SpanRow;
use causeway_model::{L4Protocol, L7Protocol, ObservationPoint, ResponseStatus, Span};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Simulated time between spans: 100 000 spans a second.
const STEP_US: u64 = 10;
/// Spans between flushes: the exporter flushes every 100 ms.
const FLUSH_EVERY: u64 = 10_000;

/// A deterministic pseudo-random sequence.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// Spans of `services` services with `endpoints` endpoints each, over
/// `edges` client -> server pairs, each seen at both ends; 2 % server
/// errors, 1 % client errors, 0.1 % timeouts; durations from 50 us to
/// about 100 ms, skewed fast. Returns rows with their endpoint ids. Kept
/// to a few thousand rows: a span the agent aggregates was just encoded
/// and is in cache, and a pool of megabytes would measure memory instead.
fn workload(services: u64, endpoints: u64, edges: u64, n: usize) -> Vec<(SpanRow, u64)> {
    let mut r = Lcg(42);
    let svc = |i: u64| tag_id(TagKind::Service, &format!("svc-{i}"));
    let host = tag_id(TagKind::Host, "h1");
    (0..n)
        .map(|i| {
            let e = r.next() % edges;
            let (client, server) = (e % services, (e * 7 + 1) % services);
            let endpoint = tag_id(
                TagKind::Endpoint,
                &format!("/api/{server}/{}", r.next() % endpoints),
            );
            let roll = r.next() % 1000;
            let status = match roll {
                0 => ResponseStatus::Timeout,
                1..=20 => ResponseStatus::ServerError,
                21..=30 => ResponseStatus::ClientError,
                _ => ResponseStatus::Ok,
            };
            let d = 50 + (r.next() % 1000) * (r.next() % 1000) / 10;
            let op = if i % 2 == 0 {
                ObservationPoint::Client
            } else {
                ObservationPoint::Server
            };
            let row = SpanRow {
                start_time_us: 0,
                end_time_us: d,
                protocol: L7Protocol::Http.code(),
                observation_point: op.code(),
                response_status: status.code(),
                request_length: 200,
                response_length: 2000,
                host_0: host,
                host_1: host,
                process_0: svc(client),
                process_1: svc(server),
                service_0: svc(client),
                service_1: svc(server),
                ..SpanRow::default()
            };
            (row, endpoint)
        })
        .collect()
}

/// `iters` spans through `add`, time moving on, flushed as the exporter
/// does; the rows emitted are counted so nothing is optimized away. Each
/// pool row's endpoint is varied `spread` ways (the pool is small).
fn run(rows: &mut [(SpanRow, u64)], spread: u64, iters: u64) -> Duration {
    let mut a = Aggregator::new(RedConfig::default());
    let mut out = Vec::new();
    let base = 1_700_000_000_000_000u64;
    let n = rows.len();
    let start = Instant::now();
    for i in 0..iters {
        let (row, ep) = &mut rows[i as usize % n];
        let now = base + i * STEP_US;
        let d = row.end_time_us - row.start_time_us;
        row.start_time_us = now - d;
        row.end_time_us = now;
        let ep = *ep ^ (i % spread).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        a.add(row, ep, now);
        if i % FLUSH_EVERY == FLUSH_EVERY - 1 {
            a.flush(now, &mut out);
            black_box(out.len());
            out.clear();
        }
    }
    a.close_all(&mut out);
    black_box(out.len());
    start.elapsed()
}

fn aggregate(c: &mut Criterion) {
    let mut g = c.benchmark_group("red");
    g.throughput(Throughput::Elements(1));
    for (name, services, endpoints, edges, spread) in [
        ("one_key", 1, 1, 1, 1),
        ("mixed_20svc_200ep_60edges", 20, 10, 60, 1),
        ("wide_50svc_20k_ep_500edges", 50, 400, 500, 5),
    ] {
        let mut rows = workload(services, endpoints, edges, 4096);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| run(&mut rows, spread, iters))
        });
    }
    g.finish();
}

fn span(i: u64, r: &mut Lcg) -> Span {
    let server = r.next() % 20;
    Span {
        protocol: L7Protocol::Http,
        version: "1.1".into(),
        observation_point: ObservationPoint::Server,
        pid: 100 + server as u32,
        comm: format!("svc-{server}"),
        peer_pid: 200,
        peer_comm: "client".into(),
        tid_req: 1,
        tid_resp: 1,
        coroutine_id_req: 0,
        coroutine_id_resp: 0,
        socket_id: i,
        l4_protocol: L4Protocol::Tcp,
        is_tls: false,
        src_ip: "127.0.0.1".into(),
        src_port: 40000,
        dst_ip: "127.0.0.1".into(),
        dst_port: 8080,
        request_type: "GET".into(),
        request_domain: "shop".into(),
        request_resource: format!("/api/items/{i}"),
        endpoint: format!("/api/{}/{{id}}", r.next() % 10),
        request_id: None,
        exception: String::new(),
        result: String::new(),
        user_agent: "bench".into(),
        response_code: Some(200),
        response_status: ResponseStatus::Ok,
        start_time_us: 1_700_000_000_000_000 + i * STEP_US,
        end_time_us: 1_700_000_000_000_000 + i * STEP_US + 300,
        duration_us: 300,
        request_length: 200,
        response_length: 2000,
        req_tcp_seq: 1,
        resp_tcp_seq: 2,
        syscall_trace_id_req: 3,
        syscall_trace_id_resp: 4,
        x_request_id: String::new(),
        x_request_id_resp: String::new(),
        trace_id: String::new(),
        span_id: String::new(),
        parent_span_id: String::new(),
    }
}

/// A copy of `s` ending `i` steps into the run: time only moves on.
fn timed(s: &Span, i: u64) -> Span {
    let mut s = s.clone();
    s.end_time_us = 1_700_000_000_000_000 + i * STEP_US;
    s.start_time_us = s.end_time_us - s.duration_us;
    s
}

fn export_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("export_per_span");
    g.throughput(Throughput::Elements(1));
    let mut r = Lcg(7);
    let spans: Vec<Span> = (0..4096).map(|i| span(i, &mut r)).collect();
    let mut i = 0usize;
    let mut e = Encoder::new("h1");
    g.bench_function("encode", |b| {
        b.iter_batched(
            || {
                i += 1;
                timed(&spans[i % spans.len()], i as u64)
            },
            |s| black_box(e.encode(s)),
            BatchSize::SmallInput,
        )
    });
    let mut e = Encoder::new("h1");
    let mut a = Aggregator::new(RedConfig::default());
    let mut out = Vec::new();
    let mut n = 0u64;
    g.bench_function("encode_and_aggregate", |b| {
        b.iter_batched(
            || {
                i += 1;
                timed(&spans[i % spans.len()], i as u64)
            },
            |s| {
                let now = s.end_time_us;
                let row = e.encode(s);
                let ep = e.endpoint_id(&row.endpoint);
                a.add(&row, ep, now);
                n += 1;
                if n % FLUSH_EVERY == 0 {
                    a.flush(now, &mut out);
                    out.clear();
                }
                black_box(row)
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, aggregate, export_path);
criterion_main!(benches);
