use super::*;

fn q() -> MetricQuery {
    MetricQuery {
        granularity: Granularity::Second,
        from_us: 1_000_000,
        to_us: 61_000_000,
        step_us: Some(10_000_000),
        kind: RowKind::Node,
        observation_point: Some(ObservationPoint::Server),
        filters: vec![(Dim::Service, 7), (Dim::Protocol, 1)],
        group_by: vec![Dim::Endpoint],
    }
}

#[test]
fn sql_is_rendered_once_with_only_the_unnest_per_store() {
    let q = q();
    assert_eq!(
        q.sums_sql("t"),
        "SELECT endpoint AS d0, time_us - time_us % 10000000 AS t, sum(requests), sum(responses), \
         sum(client_errors), sum(server_errors), sum(timeouts), sum(latency_sum_us), \
         sum(latency_count), max(latency_max_us), sum(request_bytes), sum(response_bytes), \
         sum(net_packets_0), sum(net_packets_1), sum(net_bytes_0), sum(net_bytes_1), \
         sum(new_flows), sum(closed_flows), sum(rtt_sum_us), sum(rtt_count), max(rtt_max_us), \
         sum(retransmissions_0), sum(retransmissions_1), sum(zero_windows_0), \
         sum(zero_windows_1), sum(establish_failures), sum(resets), sum(srt_sum_us), \
         sum(srt_count) FROM t WHERE time_us >= 1000000 AND time_us < 61000000 AND kind = 1 \
         AND observation_point = 1 AND service_1 = 7 AND protocol = 1 GROUP BY d0, t"
    );
    let duck = q.sketch_sql("t", Flavor::DuckDb);
    let ch = q.sketch_sql("t", Flavor::ClickHouse);
    assert!(
        duck.contains("unnest(sketch_keys) AS k, unnest(sketch_counts) AS c"),
        "{duck}"
    );
    assert!(
        ch.contains("ARRAY JOIN sketch_keys AS k, sketch_counts AS c"),
        "{ch}"
    );
    for s in [&duck, &ch] {
        assert!(s.starts_with("SELECT d0, t, k, sum(c) FROM ("), "{s}");
        assert!(s.ends_with("GROUP BY d0, t, k"), "{s}");
    }
    // What a client called: the client side's columns.
    let mut c = q.clone();
    c.observation_point = Some(ObservationPoint::Client);
    assert!(c.sums_sql("t").contains("service_0 = 7"));
    // No group, no step: one row.
    let mut one = q.clone();
    one.group_by.clear();
    one.step_us = None;
    assert!(!one.sums_sql("t").contains("GROUP BY"));
    assert!(one
        .sketch_sql("t", Flavor::DuckDb)
        .starts_with("SELECT k, sum(c) FROM (SELECT 0 AS z, unnest"));
}

#[test]
fn queries_are_checked() {
    assert!(q().check().is_ok());
    let bad = |f: &dyn Fn(&mut MetricQuery)| {
        let mut x = q();
        f(&mut x);
        x.check().unwrap_err()
    };
    assert!(bad(&|x| x.group_by.push(Dim::ClientService)).contains("client_service"));
    assert!(bad(&|x| x.observation_point = None).contains("observation point"));
    assert!(bad(&|x| x.step_us = Some(1500)).contains("step"));
    assert!(bad(&|x| x.step_us = Some(1_000)).contains("step"));
    assert!(bad(&|x| {
        x.granularity = Granularity::Minute;
        x.step_us = Some(30_000_000)
    })
    .contains("1m"));
    assert!(bad(&|x| x.to_us = x.from_us).contains("empty"));
    let mut many = q();
    many.to_us = many.from_us + 20_000 * 1_000_000;
    many.step_us = Some(1_000_000);
    assert!(many.check().unwrap_err().contains("10000"));
    let mut edge = q();
    edge.kind = RowKind::Edge;
    edge.group_by = vec![Dim::ServerService];
    edge.filters = vec![(Dim::Protocol, 1)];
    edge.observation_point = None;
    assert!(edge.check().is_ok());
    edge.filters.push((Dim::Endpoint, 3));
    assert!(edge.check().is_err());
    for d in Dim::ALL {
        assert_eq!(Dim::from_name(d.as_str()), Some(d));
    }
    for m in Metric::ALL {
        assert_eq!(Metric::from_name(m.as_str()), Some(m));
    }
    assert_eq!(Metric::from_name("p99"), Some(Metric::P99));
    assert_eq!(Metric::from_name("p42"), None);
}

/// A sums row of the edge query below: client, server, protocol,
/// observation point, then requests and nine zeros.
fn edge_row(client: u64, server: u64, op: ObservationPoint, requests: u64) -> Vec<u64> {
    let mut r = vec![client, server, 1, op.code() as u64, requests];
    r.extend([0; 9]);
    r
}

#[test]
fn each_edge_keeps_one_observation_point_client_first() {
    let q = MetricQuery {
        kind: RowKind::Edge,
        observation_point: None,
        step_us: None,
        filters: vec![],
        group_by: vec![Dim::ServerService],
        ..q()
    };
    // The fetch adds what identifies an edge and where it was seen.
    assert_eq!(
        q.fetch_dims(),
        [
            Dim::ServerService,
            Dim::ClientService,
            Dim::Protocol,
            Dim::ObservationPoint
        ]
    );
    let row = |server: u64, client: u64, op: ObservationPoint, n: u64| {
        let mut r = edge_row(client, server, op, n);
        r.swap(0, 1);
        r
    };
    let sums = vec![
        // a -> s seen at both ends: the client's 10 count.
        row(9, 1, ObservationPoint::Server, 8),
        row(9, 1, ObservationPoint::Client, 10),
        // b -> s seen at the server only, and on the wire.
        row(9, 2, ObservationPoint::Network, 4),
        row(9, 2, ObservationPoint::Server, 5),
        // c -> t on the wire only.
        row(8, 3, ObservationPoint::Network, 7),
    ];
    let got = q.assemble(&sums, &[]);
    let totals: Vec<(Vec<u64>, u64)> = got
        .iter()
        .map(|s| (s.group.clone(), s.total.requests))
        .collect();
    assert_eq!(totals, [(vec![9], 15), (vec![8], 7)]);
    // With the observation point fixed, rows are taken as they are.
    let fixed = MetricQuery {
        observation_point: Some(ObservationPoint::Server),
        ..q.clone()
    };
    assert_eq!(fixed.fetch_dims(), [Dim::ServerService]);
    let rows = vec![{
        let mut r = vec![9];
        r.push(13);
        r.extend([0; 9]);
        r
    }];
    assert_eq!(fixed.assemble(&rows, &[])[0].total.requests, 13);
}

#[test]
fn figures_answer_every_metric() {
    let mut f = Figures {
        requests: 10,
        responses: 9,
        client_errors: 1,
        server_errors: 2,
        timeouts: 1,
        latency_sum_us: 900,
        latency_count: 9,
        latency_max_us: 190,
        request_bytes: 5,
        response_bytes: 6,
        sketch: LatencySketch::new(),
        net: Default::default(),
    };
    for v in [10, 20, 30, 40, 100, 150, 160, 170, 190] {
        f.sketch.add(v);
    }
    assert_eq!(f.value(Metric::Errors), Some(3));
    assert_eq!(f.value(Metric::LatencyAvg), Some(100));
    assert_eq!(f.value(Metric::LatencyMax), Some(190));
    let p50 = f.value(Metric::P50).unwrap();
    assert!((98..=102).contains(&p50), "{p50}");
    assert_eq!(f.quantile_us(1.0), Some(190));
    let empty = Figures::default();
    assert_eq!(empty.value(Metric::P99), None);
    assert_eq!(empty.value(Metric::LatencyAvg), None);
    assert_eq!(empty.value(Metric::Requests), Some(0));
    assert_eq!(empty.value(Metric::RttAvg), None);
    assert_eq!(empty.value(Metric::SrtAvg), None);
    assert_eq!(empty.value(Metric::Retransmissions), Some(0));
}

#[test]
fn network_figures_sum_and_merge() {
    // Sums as the query returns them: the ten RED figures, then the
    // network columns in order.
    let mut sums = vec![0u64; 10];
    sums.extend(1..=NET_COLUMNS.len() as u64);
    let a = Figures::from_sums(&sums);
    let at = |name: &str| NET_COLUMNS.iter().position(|c| *c == name).unwrap() as u64 + 1;
    assert_eq!(a.value(Metric::ClientPackets), Some(at("net_packets_0")));
    assert_eq!(a.value(Metric::ServerBytes), Some(at("net_bytes_1")));
    assert_eq!(
        a.value(Metric::Retransmissions),
        Some(at("retransmissions_0") + at("retransmissions_1"))
    );
    assert_eq!(
        a.value(Metric::RttAvg),
        Some((at("rtt_sum_us") as f64 / at("rtt_count") as f64).round() as u64)
    );
    let mut m = a.clone();
    m.merge(&a);
    assert_eq!(m.value(Metric::Resets), Some(2 * at("resets")));
    // The maximum merges as a maximum.
    assert_eq!(m.value(Metric::RttMax), Some(at("rtt_max_us")));
    for metric in Metric::ALL {
        assert_eq!(Metric::from_name(metric.as_str()), Some(metric));
    }
}

#[test]
fn values_are_written_as_both_stores_read_them() {
    let m = StoredMetric {
        agent: 1,
        session: 2,
        seq: 3,
        row: MetricRow {
            sketch_keys: vec![1, 5],
            sketch_counts: vec![7, 8],
            ..MetricRow::default()
        },
    };
    let mut out = String::new();
    for c in METRIC_COLUMNS {
        write_value(&mut out, (c.get)(&m));
        out.push('|');
    }
    assert!(out.starts_with("1|2|3|0|"));
    assert!(out.contains("|[1,5]|[7,8]|"));
    write_value(&mut out, MVal::A32(&[]));
    assert!(out.ends_with("[]"));
    let names: std::collections::HashSet<_> = METRIC_COLUMNS.iter().map(|c| c.name).collect();
    assert_eq!(names.len(), METRIC_COLUMNS.len());
}
