use super::*;
use causeway_model::wire::FlowRow;
use causeway_model::{CloseType, L7Protocol};

const SEC: u64 = 1_000_000;
/// Some minute's start.
const T: u64 = 1_700_000_040 * SEC;

fn span(op: ObservationPoint, end_us: u64, duration_us: u64, status: ResponseStatus) -> SpanRow {
    SpanRow {
        start_time_us: end_us - duration_us,
        end_time_us: end_us,
        protocol: L7Protocol::Http.code(),
        observation_point: op.code(),
        response_status: status.code(),
        request_length: 100,
        response_length: 1000,
        host_0: 1,
        host_1: 1,
        process_0: 10,
        process_1: 11,
        service_0: 20,
        service_1: 21,
        ..SpanRow::default()
    }
}

/// Sums of the rows matching `pick`: (requests, responses, client errors,
/// server errors, timeouts, latency sum, latency count, latency max,
/// request bytes, response bytes) and the merged sketch.
fn total(rows: &[MetricRow], pick: impl Fn(&MetricRow) -> bool) -> ([u64; 10], LatencySketch) {
    let mut t = [0u64; 10];
    let mut sketch = LatencySketch::new();
    for r in rows.iter().filter(|r| pick(r)) {
        for (i, v) in [
            r.requests,
            r.responses,
            r.client_errors,
            r.server_errors,
            r.timeouts,
            r.latency_sum_us,
            r.latency_count,
            0,
            r.request_bytes,
            r.response_bytes,
        ]
        .into_iter()
        .enumerate()
        {
            t[i] += v;
        }
        t[7] = t[7].max(r.latency_max_us);
        sketch.merge_sparse(&r.sketch_keys, &r.sketch_counts);
    }
    (t, sketch)
}

fn node(g: Granularity, op: ObservationPoint) -> impl Fn(&MetricRow) -> bool {
    move |r| {
        r.granularity_s == g.seconds()
            && r.kind == RowKind::Node.code()
            && r.observation_point == op.code()
    }
}

#[test]
fn a_known_load_is_exact_per_endpoint_at_both_granularities() {
    // 1000 requests over 2.5 s to two endpoints; 37 of them answer 500,
    // 5 answer 404; durations 100 us + i.
    let mut a = Aggregator::new(RedConfig::default());
    let (ep_a, ep_b) = (501, 502);
    let mut durations = Vec::new();
    for i in 0..1000u64 {
        let status = if i % 27 == 0 && i / 27 < 37 {
            ResponseStatus::ServerError
        } else if i % 200 == 1 {
            ResponseStatus::ClientError
        } else {
            ResponseStatus::Ok
        };
        let ep = if i % 2 == 0 { ep_a } else { ep_b };
        let d = 100 + i;
        durations.push(d);
        let end = T + 20 * SEC + i * 2500;
        a.add(&span(ObservationPoint::Server, end, d, status), ep, end);
    }
    let mut rows = Vec::new();
    // A second is out once the clock is 3 s past its end.
    a.flush(T + 24 * SEC - 1, &mut rows);
    assert!(rows.is_empty(), "{rows:?}");
    a.flush(T + 24 * SEC, &mut rows);
    assert_eq!(rows.len(), 3, "second 20: endpoints a and b, the edge");
    a.flush(T + 60 * SEC + 3 * SEC, &mut rows);
    assert_eq!(a.open_windows(), 0);
    for g in Granularity::ALL {
        let (t, sketch) = total(&rows, node(g, ObservationPoint::Server));
        assert_eq!(t[0..5], [1000, 1000, 5, 37, 0], "{g:?}");
        assert_eq!(t[5], durations.iter().sum::<u64>());
        assert_eq!((t[6], t[7]), (1000, 1099));
        assert_eq!((t[8], t[9]), (100_000, 1_000_000));
        assert_eq!(sketch.count(), 1000);
        // Per endpoint: the even requests and the odd ones.
        let per = |ep: u64| {
            total(&rows, |r| {
                node(g, ObservationPoint::Server)(r) && r.endpoint == ep
            })
            .0
        };
        let errors_a = (0..37u64).filter(|k| (k * 27) % 2 == 0).count() as u64;
        assert_eq!(per(ep_a)[0..4], [500, 500, 0, errors_a]);
        assert_eq!(per(ep_b)[0..4], [500, 500, 5, 37 - errors_a]);
        // Node rows name the server side only; edge rows both sides.
        for r in rows.iter().filter(|r| r.granularity_s == g.seconds()) {
            if r.kind == RowKind::Node.code() {
                assert_eq!(
                    (r.service_0, r.process_0, r.host_0, r.service_1),
                    (0, 0, 0, 21)
                );
            } else {
                assert_eq!((r.service_0, r.service_1, r.endpoint), (20, 21, 0));
            }
        }
        let edges = total(&rows, |r| {
            r.granularity_s == g.seconds() && r.kind == RowKind::Edge.code()
        });
        assert_eq!(edges.0, t);
    }
    // 1 s rows: one per second and key, at whole seconds.
    let secs: Vec<&MetricRow> = rows.iter().filter(|r| r.granularity_s == 1).collect();
    assert_eq!(secs.len(), 3 * 3, "3 seconds, node a, node b, edge");
    assert!(secs.iter().all(|r| r.time_us % SEC == 0));
    // The minute is the merge of its seconds: same sketch.
    let s1 = total(&rows, node(Granularity::Second, ObservationPoint::Server)).1;
    let s60 = total(&rows, node(Granularity::Minute, ObservationPoint::Server)).1;
    assert_eq!(s1.to_sparse(), s60.to_sparse());
    let minutes: Vec<&MetricRow> = rows.iter().filter(|r| r.granularity_s == 60).collect();
    assert_eq!(minutes.len(), 3);
    assert!(minutes.iter().all(|r| r.time_us == T));
    durations.sort_unstable();
    let p99 = durations[(0.99 * 999.0) as usize] as f64;
    let est = s60.quantile(0.99).unwrap();
    assert!((est - p99).abs() <= 0.02 * p99, "{est} vs {p99}");
}

#[test]
fn each_end_of_a_request_counts_at_its_own_observation_point() {
    let mut a = Aggregator::new(RedConfig::default());
    let end = T + 5 * SEC;
    for op in [ObservationPoint::Client, ObservationPoint::Server] {
        a.add(&span(op, end, 300, ResponseStatus::Ok), 7, end);
    }
    let mut rows = Vec::new();
    a.close_all(&mut rows);
    // Per granularity: node and edge rows at each end, each counting once.
    assert_eq!(rows.len(), 2 * 4);
    for g in Granularity::ALL {
        let client = total(&rows, node(g, ObservationPoint::Client)).0;
        let server = total(&rows, node(g, ObservationPoint::Server)).0;
        assert_eq!((client[0], server[0]), (1, 1));
    }
    let client_node = rows
        .iter()
        .find(|r| {
            r.kind == RowKind::Node.code() && r.observation_point == ObservationPoint::Client.code()
        })
        .unwrap();
    // What the client called: its own side, and the endpoint it called.
    assert_eq!(
        (
            client_node.service_0,
            client_node.process_0,
            client_node.service_1,
            client_node.endpoint
        ),
        (20, 10, 0, 7)
    );
}

#[test]
fn late_spans_make_another_row_and_are_never_lost() {
    let mut a = Aggregator::new(RedConfig::default());
    let end = T + 10 * SEC + 500;
    a.add(
        &span(ObservationPoint::Server, end, 50, ResponseStatus::Ok),
        1,
        end,
    );
    let mut rows = Vec::new();
    a.flush(T + 14 * SEC, &mut rows);
    assert_eq!(rows.len(), 2, "the second is out: {rows:?}");
    // The same second again, 5 s late, then the minute closes.
    a.add(
        &span(ObservationPoint::Server, end + 10, 50, ResponseStatus::Ok),
        1,
        T + 15 * SEC,
    );
    assert_eq!(a.stats().late_spans, 1);
    a.flush(T + 16 * SEC, &mut rows);
    assert_eq!(rows.len(), 4, "another row for that second");
    assert!(rows.iter().all(|r| r.time_us == T + 10 * SEC));
    a.flush(T + 63 * SEC, &mut rows);
    let g =
        |rows: &[MetricRow], g: Granularity| total(rows, node(g, ObservationPoint::Server)).0[0];
    assert_eq!(
        (g(&rows, Granularity::Second), g(&rows, Granularity::Minute)),
        (2, 2)
    );
    assert_eq!(
        rows.iter().filter(|r| r.granularity_s == 60).count(),
        2,
        "one minute row per key"
    );
    // A span late for a minute already out also makes a row.
    a.add(
        &span(ObservationPoint::Server, end, 50, ResponseStatus::Ok),
        1,
        T + 70 * SEC,
    );
    a.flush(T + 70 * SEC, &mut rows);
    assert_eq!(
        (g(&rows, Granularity::Second), g(&rows, Granularity::Minute)),
        (3, 3)
    );
    assert_eq!(a.open_windows(), 0);
}

#[test]
fn a_timeout_counts_when_declared_and_not_in_latency() {
    let mut a = Aggregator::new(RedConfig::default());
    // Sent at T + 1 s, declared a timeout 60 s later.
    let mut t = span(
        ObservationPoint::Client,
        T + SEC,
        0,
        ResponseStatus::Timeout,
    );
    t.response_length = 0;
    a.add(&t, 3, T + 61 * SEC + 10);
    a.add(
        &span(
            ObservationPoint::Client,
            T + 61 * SEC + 20,
            400,
            ResponseStatus::Ok,
        ),
        3,
        T + 61 * SEC + 20,
    );
    let mut rows = Vec::new();
    a.flush(T + 65 * SEC, &mut rows);
    let secs: Vec<&MetricRow> = rows
        .iter()
        .filter(|r| r.granularity_s == 1 && r.kind == RowKind::Node.code())
        .collect();
    assert_eq!(secs.len(), 1);
    let r = secs[0];
    assert_eq!(r.time_us, T + 61 * SEC);
    assert_eq!((r.requests, r.responses, r.timeouts), (2, 1, 1));
    assert_eq!(
        (r.latency_count, r.latency_sum_us, r.latency_max_us),
        (1, 400, 400)
    );
    assert_eq!(r.sketch_counts.iter().sum::<u64>(), 1);
    assert_eq!((r.request_bytes, r.response_bytes), (200, 1000));
}

#[test]
fn too_many_keys_fold_and_keep_their_figures() {
    let mut a = Aggregator::new(RedConfig {
        max_keys: 10,
        ..RedConfig::default()
    });
    for i in 0..100u64 {
        let mut s = span(
            ObservationPoint::Server,
            T + 100 + i,
            10,
            ResponseStatus::Ok,
        );
        s.service_0 = 1000 + i;
        a.add(&s, 5000 + i, T);
    }
    let mut rows = Vec::new();
    a.close_all(&mut rows);
    let secs: Vec<&MetricRow> = rows.iter().filter(|r| r.granularity_s == 1).collect();
    assert!(secs.len() <= 12, "{}", secs.len());
    assert!(a.stats().folded > 0);
    for kind in [RowKind::Node, RowKind::Edge] {
        let n: u64 = secs
            .iter()
            .filter(|r| r.kind == kind.code())
            .map(|r| r.requests)
            .sum();
        assert_eq!(n, 100, "{kind:?}");
    }
    assert!(secs
        .iter()
        .any(|r| r.kind == RowKind::Node.code() && r.endpoint == 0));
    assert!(secs
        .iter()
        .any(|r| r.kind == RowKind::Edge.code() && r.service_0 == 0 && r.service_1 == 21));
}

fn flow(end_us: u64, close: CloseType, new_flow: bool) -> FlowRow {
    FlowRow {
        end_time_us: end_us,
        new_flow,
        close_type: close.code(),
        l7_protocol: L7Protocol::Http.code(),
        packets_0: 5,
        packets_1: 4,
        bytes_0: 500,
        bytes_1: 4000,
        retransmissions_0: 1,
        retransmissions_1: 2,
        zero_windows_1: 3,
        resets_1: u64::from(close == CloseType::Refused),
        rtt_client_us: 10,
        rtt_server_us: 30,
        srt_sum_us: 700,
        srt_count: 2,
        service_0: 20,
        service_1: 21,
        ..FlowRow::default()
    }
}

#[test]
fn flow_reports_make_network_figures_per_node_and_edge() {
    let mut a = Aggregator::new(RedConfig::default());
    // A flow reported twice (periodic, then its close), and a refused one.
    a.add_flow(&flow(T + 100, CloseType::Active, true));
    a.add_flow(&flow(T + 2 * SEC, CloseType::Normal, false));
    a.add_flow(&flow(T + 2 * SEC + 5, CloseType::Refused, true));
    let mut rows = Vec::new();
    a.close_all(&mut rows);
    assert_eq!(a.stats().flow_reports, 3);
    let network = ObservationPoint::Network.code();
    let pick = |g: u32, kind: RowKind| {
        rows.iter()
            .filter(|r| {
                r.granularity_s == g && r.kind == kind as u32 && r.observation_point == network
            })
            .collect::<Vec<_>>()
    };
    for g in [1, 60] {
        for kind in [RowKind::Node, RowKind::Edge] {
            let rs = pick(g, kind);
            assert!(!rs.is_empty());
            let sum = |f: fn(&MetricRow) -> u64| rs.iter().map(|r| f(r)).sum::<u64>();
            assert_eq!(sum(|r| r.net_packets_0), 15);
            assert_eq!(sum(|r| r.net_bytes_1), 12_000);
            assert_eq!(sum(|r| r.retransmissions_1), 6);
            assert_eq!(sum(|r| r.zero_windows_1), 9);
            assert_eq!(sum(|r| r.new_flows), 2);
            assert_eq!(sum(|r| r.closed_flows), 2);
            assert_eq!(sum(|r| r.establish_failures), 1);
            assert_eq!(sum(|r| r.resets), 1);
            // RTT once per flow (its first report).
            assert_eq!((sum(|r| r.rtt_sum_us), sum(|r| r.rtt_count)), (80, 2));
            assert_eq!(rs.iter().map(|r| r.rtt_max_us).max(), Some(40));
            assert_eq!(sum(|r| r.srt_count), 6);
            assert_eq!(sum(|r| r.requests), 0);
            for r in &rs {
                assert_eq!(r.service_1, 21);
                let client = if kind == RowKind::Edge { 20 } else { 0 };
                assert_eq!(r.service_0, client);
            }
        }
    }
    // Seconds: the first report's, and the second two's.
    assert_eq!(pick(1, RowKind::Edge).len(), 2);
    assert_eq!(pick(60, RowKind::Edge).len(), 1);
}
