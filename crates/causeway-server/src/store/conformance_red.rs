//! One behaviour for every store's metric rows ([`crate::red`]): each
//! backend's tests run these on an empty store.

use super::{Store, WriteBatch, WriteOutcome};
use crate::red::{service_map, Dim, MetricQuery, Series, StoredMetric};
use causeway_model::metric::{Granularity, LatencySketch, RowKind};
use causeway_model::tags::{tag_id, TagKind};
use causeway_model::wire::MetricRow;
use causeway_model::{L7Protocol, ObservationPoint};

const SEC: u64 = 1_000_000;
const DAY: u64 = 86_400 * SEC;
/// Noon of some day (a minute's start), and the day before.
pub const T1: u64 = 20_100 * DAY + DAY / 2;
pub const T0: u64 = T1 - DAY;

pub fn svc(name: &str) -> u64 {
    tag_id(TagKind::Service, name)
}

pub fn ep(name: &str) -> u64 {
    tag_id(TagKind::Endpoint, name)
}

/// What one row counts: requests answered with `latencies` (of which
/// `client_errors` and `server_errors`), and `timeouts` more.
#[derive(Clone, Copy)]
pub struct Load<'a> {
    pub latencies: &'a [u64],
    pub client_errors: u64,
    pub server_errors: u64,
    pub timeouts: u64,
}

/// A row as the agent makes it.
#[allow(clippy::too_many_arguments)]
pub fn row(
    g: Granularity,
    time_us: u64,
    kind: RowKind,
    op: ObservationPoint,
    client: u64,
    server: u64,
    endpoint: u64,
    load: Load<'_>,
) -> MetricRow {
    let mut sketch = LatencySketch::new();
    for l in load.latencies {
        sketch.add(*l);
    }
    let (sketch_keys, sketch_counts) = sketch.to_sparse();
    let answered = load.latencies.len() as u64;
    MetricRow {
        granularity_s: g.seconds(),
        time_us: g.window(time_us),
        kind: kind.code(),
        observation_point: op.code(),
        protocol: L7Protocol::Http.code(),
        service_0: client,
        service_1: server,
        endpoint,
        requests: answered + load.timeouts,
        responses: answered,
        client_errors: load.client_errors,
        server_errors: load.server_errors,
        timeouts: load.timeouts,
        latency_sum_us: load.latencies.iter().sum(),
        latency_count: answered,
        latency_max_us: load.latencies.iter().copied().max().unwrap_or(0),
        sketch_keys,
        sketch_counts,
        request_bytes: 100 * (answered + load.timeouts),
        response_bytes: 1000 * answered,
        ..MetricRow::default()
    }
}

pub fn metric_batch(agent: &str, seq: u64, rows: Vec<MetricRow>) -> WriteBatch {
    let agent_id = tag_id(TagKind::Agent, agent);
    WriteBatch {
        agent: agent_id,
        session: 1,
        seq,
        spans: Vec::new(),
        tags: vec![
            (TagKind::Service, svc("web"), "web".into()),
            (TagKind::Service, svc("db"), "db".into()),
            (TagKind::Endpoint, ep("/a"), "/a".into()),
            (TagKind::Agent, agent_id, agent.into()),
        ],
        metrics: rows
            .into_iter()
            .map(|row| StoredMetric {
                agent: agent_id,
                session: 1,
                seq,
                row,
            })
            .collect(),
        flows: Vec::new(),
    }
}

fn node_query(g: Granularity, from: u64, to: u64) -> MetricQuery {
    MetricQuery {
        granularity: g,
        from_us: from,
        to_us: to,
        step_us: None,
        kind: RowKind::Node,
        observation_point: Some(ObservationPoint::Server),
        filters: Vec::new(),
        group_by: vec![Dim::Service, Dim::Endpoint],
    }
}

fn find<'a>(series: &'a [Series], group: &[u64]) -> &'a Series {
    series
        .iter()
        .find(|s| s.group == group)
        .unwrap_or_else(|| panic!("{group:?} in {series:#?}"))
}

/// Latencies 100..=1099 us for 1000 requests over 4 seconds of T1's
/// minute, to two endpoints of `db`; web's client side saw the same
/// requests and 3 timeouts more; `ext` called `db` (seen at the server
/// only); one minute row on the day before.
pub fn run(store: &dyn Store) {
    let lat: Vec<u64> = (100..1100).collect();
    let none = Load {
        latencies: &[],
        client_errors: 0,
        server_errors: 0,
        timeouts: 0,
    };
    let mut rows = Vec::new();
    let mut minute_a = Vec::new();
    let mut minute_b = Vec::new();
    for s in 0..4u64 {
        let part = &lat[s as usize * 250..(s as usize + 1) * 250];
        let (a, b) = part.split_at(125);
        let t = T1 + s * SEC;
        // /a: 125 a second, 2 of them 500; /b: 125, 1 of them 404.
        rows.push(row(
            Granularity::Second,
            t,
            RowKind::Node,
            ObservationPoint::Server,
            0,
            svc("db"),
            ep("/a"),
            Load {
                latencies: a,
                server_errors: 2,
                ..none
            },
        ));
        rows.push(row(
            Granularity::Second,
            t,
            RowKind::Node,
            ObservationPoint::Server,
            0,
            svc("db"),
            ep("/b"),
            Load {
                latencies: b,
                client_errors: 1,
                ..none
            },
        ));
        minute_a.extend_from_slice(a);
        minute_b.extend_from_slice(b);
        // The edge, at the server and (with a timeout more) at the client.
        rows.push(row(
            Granularity::Second,
            t,
            RowKind::Edge,
            ObservationPoint::Server,
            svc("web"),
            svc("db"),
            0,
            Load {
                latencies: part,
                client_errors: 1,
                server_errors: 2,
                ..none
            },
        ));
        rows.push(row(
            Granularity::Second,
            t,
            RowKind::Edge,
            ObservationPoint::Client,
            svc("web"),
            svc("db"),
            0,
            Load {
                latencies: part,
                client_errors: 1,
                server_errors: 2,
                timeouts: (s < 3) as u64,
            },
        ));
    }
    let m = |kind, op, client, server, endpoint, load| {
        row(
            Granularity::Minute,
            T1,
            kind,
            op,
            client,
            server,
            endpoint,
            load,
        )
    };
    rows.push(m(
        RowKind::Node,
        ObservationPoint::Server,
        0,
        svc("db"),
        ep("/a"),
        Load {
            latencies: &minute_a,
            server_errors: 8,
            ..none
        },
    ));
    rows.push(m(
        RowKind::Node,
        ObservationPoint::Server,
        0,
        svc("db"),
        ep("/b"),
        Load {
            latencies: &minute_b,
            client_errors: 4,
            ..none
        },
    ));
    rows.push(m(
        RowKind::Edge,
        ObservationPoint::Server,
        svc("web"),
        svc("db"),
        0,
        Load {
            latencies: &lat,
            client_errors: 4,
            server_errors: 8,
            ..none
        },
    ));
    rows.push(m(
        RowKind::Edge,
        ObservationPoint::Client,
        svc("web"),
        svc("db"),
        0,
        Load {
            latencies: &lat,
            client_errors: 4,
            server_errors: 8,
            timeouts: 3,
        },
    ));
    let before = Load {
        latencies: &[5000],
        ..none
    };
    rows.push(row(
        Granularity::Minute,
        T0,
        RowKind::Node,
        ObservationPoint::Server,
        0,
        svc("db"),
        ep("/a"),
        before,
    ));
    rows.push(row(
        Granularity::Second,
        T0,
        RowKind::Node,
        ObservationPoint::Server,
        0,
        svc("db"),
        ep("/a"),
        before,
    ));
    let batch = metric_batch("a1", 1, rows);
    assert_eq!(store.write(&batch).unwrap(), WriteOutcome::Stored(0));
    // Sent again: nothing counts twice.
    assert_eq!(store.write(&batch).unwrap(), WriteOutcome::Duplicate);

    let (db, a, b) = (svc("db"), ep("/a"), ep("/b"));
    let mut exact = LatencySketch::new();
    for l in &lat {
        exact.add(*l);
    }
    for g in Granularity::ALL {
        let got = node_query(g, T1, T1 + DAY).run(store, true).unwrap();
        assert_eq!(got.len(), 2, "{g:?}: {got:#?}");
        let (fa, fb) = (&find(&got, &[db, a]).total, &find(&got, &[db, b]).total);
        assert_eq!(
            (
                fa.requests,
                fa.responses,
                fa.server_errors,
                fa.client_errors
            ),
            (500, 500, 8, 0),
            "{g:?}"
        );
        assert_eq!(
            (fb.requests, fb.client_errors, fb.server_errors),
            (500, 4, 0)
        );
        assert_eq!(
            fa.latency_sum_us + fb.latency_sum_us,
            lat.iter().sum::<u64>()
        );
        assert_eq!(fb.latency_max_us, 1099);
        assert_eq!((fa.request_bytes, fa.response_bytes), (50_000, 500_000));
        // Quantiles over both endpoints: the merged buckets.
        let mut q = node_query(g, T1, T1 + DAY);
        q.group_by = vec![Dim::Service];
        let all = q.run(store, true).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].total.sketch.to_sparse(), exact.to_sparse(), "{g:?}");
        for p in [0.5, 0.9, 0.99] {
            let truth = lat[(p * 999.0) as usize] as f64;
            let est = all[0].total.quantile_us(p).unwrap() as f64;
            assert!(
                (est - truth).abs() <= 0.02 * truth + 1.0,
                "{p}: {est} {truth}"
            );
        }
        // Filters: one endpoint; another service has nothing.
        let mut q = node_query(g, T1, T1 + DAY);
        q.filters = vec![(Dim::Endpoint, b)];
        let only_b = q.run(store, false).unwrap();
        assert_eq!(only_b.len(), 1);
        assert_eq!(only_b[0].total.requests, 500);
        assert!(only_b[0].total.sketch.is_empty(), "no sketch asked for");
        q.filters = vec![(Dim::Service, svc("web"))];
        assert!(q.run(store, true).unwrap().is_empty());
        // Both days.
        let both = node_query(g, T0, T1 + DAY).run(store, true).unwrap();
        assert_eq!(find(&both, &[db, a]).total.requests, 501);
        assert_eq!(find(&both, &[db, a]).total.latency_max_us, 5000);
    }
    // Steps: per second from the 1 s rows; per minute from either.
    let mut q = node_query(Granularity::Second, T1, T1 + 60 * SEC);
    q.step_us = Some(SEC);
    q.group_by = vec![Dim::Endpoint];
    let per_sec = q.run(store, true).unwrap();
    let pa = &find(&per_sec, &[a]).points;
    assert_eq!(
        pa.keys().copied().collect::<Vec<_>>(),
        [T1, T1 + SEC, T1 + 2 * SEC, T1 + 3 * SEC]
    );
    assert!(pa
        .values()
        .all(|f| f.requests == 125 && f.server_errors == 2));
    assert_eq!(pa[&T1].sketch.count(), 125);
    q.step_us = Some(2 * SEC);
    let per_2s = q.run(store, false).unwrap();
    assert_eq!(find(&per_2s, &[a]).points[&(T1 + 2 * SEC)].requests, 250);
    for g in Granularity::ALL {
        let mut q = node_query(g, T1, T1 + 120 * SEC);
        q.step_us = Some(60 * SEC);
        q.group_by = vec![];
        let one = q.run(store, true).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].points.len(), 1);
        assert_eq!(one[0].points[&T1].requests, 1000);
        assert_eq!(one[0].points[&T1].sketch.to_sparse(), exact.to_sparse());
    }

    // A late row for a second already stored adds to it.
    let late = row(
        Granularity::Second,
        T1 + 2 * SEC,
        RowKind::Node,
        ObservationPoint::Server,
        0,
        db,
        a,
        Load {
            latencies: &[2_000_000],
            ..none
        },
    );
    assert_eq!(
        store.write(&metric_batch("a1", 2, vec![late])).unwrap(),
        WriteOutcome::Stored(0)
    );
    let got = node_query(Granularity::Second, T1, T1 + DAY)
        .run(store, true)
        .unwrap();
    let fa = &find(&got, &[db, a]).total;
    assert_eq!((fa.requests, fa.latency_max_us), (501, 2_000_000));
    assert_eq!(fa.quantile_us(1.0), Some(2_000_000));

    // Edges: web -> db counted at the client (timeouts there), once.
    let edges = MetricQuery {
        kind: RowKind::Edge,
        observation_point: None,
        group_by: vec![Dim::ClientService, Dim::ServerService],
        ..node_query(Granularity::Second, T1, T1 + DAY)
    };
    let got = edges.run(store, true).unwrap();
    assert_eq!(got.len(), 1, "{got:#?}");
    let e = &got[0].total;
    assert_eq!((e.requests, e.timeouts, e.responses), (1003, 3, 1000));
    assert_eq!(e.sketch.count(), 1000);
    // Asked for the server side: what it saw.
    let server_side = MetricQuery {
        observation_point: Some(ObservationPoint::Server),
        ..edges.clone()
    };
    assert_eq!(
        server_side.run(store, false).unwrap()[0].total.requests,
        1000
    );
    // Node and edge dimensions are not mixed.
    let mixed = MetricQuery {
        group_by: vec![Dim::Endpoint, Dim::ClientService],
        ..edges.clone()
    };
    assert!(mixed.run(store, false).is_err());

    // An edge seen only at its server: ext -> db.
    let ext = row(
        Granularity::Second,
        T1 + 10 * SEC,
        RowKind::Edge,
        ObservationPoint::Server,
        svc("ext"),
        db,
        0,
        Load {
            latencies: &[40, 50],
            ..none
        },
    );
    let ext_node = row(
        Granularity::Second,
        T1 + 10 * SEC,
        RowKind::Node,
        ObservationPoint::Server,
        0,
        db,
        a,
        Load {
            latencies: &[40, 50],
            ..none
        },
    );
    let called = row(
        Granularity::Second,
        T1 + 10 * SEC,
        RowKind::Node,
        ObservationPoint::Client,
        svc("web"),
        0,
        a,
        Load {
            latencies: &lat,
            timeouts: 3,
            ..none
        },
    );
    assert_eq!(
        store
            .write(&metric_batch("a2", 1, vec![ext, ext_node, called]))
            .unwrap(),
        WriteOutcome::Stored(0)
    );
    let map = service_map(store, Granularity::Second, T1, T1 + DAY, &[], None).unwrap();
    let got: Vec<(u64, u64, Option<ObservationPoint>, u64)> = map
        .edges
        .iter()
        .map(|e| (e.client, e.server, e.observation_point, e.figures.requests))
        .collect();
    let mut want = vec![
        (svc("web"), db, Some(ObservationPoint::Client), 1003),
        (svc("ext"), db, Some(ObservationPoint::Server), 2),
    ];
    want.sort_by_key(|w| (w.0, w.1));
    assert_eq!(got, want);
    let node = |id: u64| map.nodes.iter().find(|n| n.service == id).unwrap();
    assert_eq!(map.nodes.len(), 3);
    assert_eq!(node(db).served.as_ref().unwrap().requests, 1003);
    assert!(node(db).called.is_none());
    assert_eq!(node(svc("web")).called.as_ref().unwrap().requests, 1003);
    assert!(node(svc("web")).served.is_none());
    assert!(node(svc("ext")).served.is_none() && node(svc("ext")).called.is_none());
    // Narrowed to a service.
    let only = service_map(
        store,
        Granularity::Second,
        T1,
        T1 + DAY,
        &[],
        Some(svc("ext")),
    )
    .unwrap();
    assert_eq!(only.edges.len(), 1);
    assert_eq!(only.nodes.len(), 2);
    let none_here = service_map(
        store,
        Granularity::Second,
        T1,
        T1 + DAY,
        &[(Dim::Protocol, L7Protocol::Redis.code() as u64)],
        None,
    )
    .unwrap();
    assert!(none_here.edges.is_empty() && none_here.nodes.is_empty());

    // Retention: 1 s rows of the day before go, 1 min rows stay.
    let day1 = (T1 / DAY) as u32;
    assert_eq!(
        store
            .drop_metric_days_before(Granularity::Second, day1)
            .unwrap(),
        1
    );
    let both = |g| {
        node_query(g, T0, T1 + DAY)
            .run(store, false)
            .unwrap()
            .iter()
            .map(|s| s.total.requests)
            .sum::<u64>()
    };
    assert_eq!(both(Granularity::Second), 1003);
    assert_eq!(both(Granularity::Minute), 1001);
}

/// After [`run`] and reopening: the rows are there, a re-sent batch is
/// still known.
pub fn after_reopen(store: &dyn Store) {
    let got = node_query(Granularity::Minute, T0, T1 + DAY)
        .run(store, true)
        .unwrap();
    assert_eq!(
        got.iter().map(|s| s.total.requests).sum::<u64>(),
        1001,
        "{got:#?}"
    );
    let late = row(
        Granularity::Second,
        T1 + 2 * SEC,
        RowKind::Node,
        ObservationPoint::Server,
        0,
        svc("db"),
        ep("/a"),
        Load {
            latencies: &[2_000_000],
            client_errors: 0,
            server_errors: 0,
            timeouts: 0,
        },
    );
    assert_eq!(
        store.write(&metric_batch("a1", 2, vec![late])).unwrap(),
        WriteOutcome::Duplicate
    );
}
