//! One behaviour for every store: each backend's tests run these.

use super::{Store, WriteBatch, WriteOutcome};
use crate::query::{KeyQuery, ServiceQuery, SpanQuery};
use crate::schema::{span_id, StoredSpan};
use causeway_model::tags::{tag_id, TagKind};
use causeway_model::wire::SpanRow;
use causeway_model::{L7Protocol, ObservationPoint, ResponseStatus};
use std::sync::atomic::{AtomicU64, Ordering};

/// A number no other call in this process returned (temp dir names).
pub fn unique() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

const DAY: u64 = 86_400_000_000;
/// Noon of some day, and the day before.
pub const T1: u64 = 20_000 * DAY + DAY / 2;
pub const T0: u64 = T1 - DAY;

fn svc(name: &str) -> u64 {
    tag_id(TagKind::Service, name)
}

/// A batch of `n` spans from `agent`: client spans of `web` calling `db`
/// (MySQL) every millisecond from `start`; every 5th a server error, with
/// durations 100 us + 10 us * i.
pub fn batch(agent: &str, seq: u64, start: u64, n: u32) -> WriteBatch {
    let agent_id = tag_id(TagKind::Agent, agent);
    let spans = (0..n)
        .map(|i| StoredSpan {
            id: span_id(agent_id, 1, seq, i),
            agent: agent_id,
            session: 1,
            seq,
            row: SpanRow {
                start_time_us: start + i as u64 * 1000,
                end_time_us: start + i as u64 * 1000 + 100 + 10 * i as u64,
                protocol: L7Protocol::Mysql.code(),
                observation_point: ObservationPoint::Client.code(),
                response_status: if i % 5 == 4 {
                    ResponseStatus::ServerError.code()
                } else {
                    ResponseStatus::Ok.code()
                },
                l4_protocol: 6,
                request_type: "COM_QUERY".into(),
                request_resource: format!("SELECT * FROM t WHERE id = {i}"),
                endpoint: "SELECT * FROM t WHERE id = ?".into(),
                response_code: (i % 5 == 4).then_some(1146),
                exception: if i % 5 == 4 {
                    "it's gone".into()
                } else {
                    String::new()
                },
                service_0: svc("web"),
                service_1: svc("db"),
                host_0: tag_id(TagKind::Host, "h1"),
                ..SpanRow::default()
            },
        })
        .collect();
    WriteBatch {
        agent: agent_id,
        session: 1,
        seq,
        spans,
        tags: vec![
            (TagKind::Service, svc("web"), "web".into()),
            (TagKind::Service, svc("db"), "db".into()),
            (TagKind::Agent, agent_id, agent.into()),
        ],
        metrics: Vec::new(),
        flows: Vec::new(),
    }
}

fn all(from: u64, to: u64) -> SpanQuery {
    SpanQuery {
        from_us: from,
        to_us: to,
        limit: 10_000,
        ..SpanQuery::default()
    }
}

pub fn run(store: &dyn Store) {
    assert_eq!(store.count().unwrap(), 0);
    assert!(store.spans(&all(0, u64::MAX)).unwrap().is_empty());
    let b0 = batch("a1", 1, T0, 10);
    let b1 = batch("a1", 2, T1, 20);
    assert_eq!(store.write(&b0).unwrap(), WriteOutcome::Stored(10));
    assert_eq!(store.write(&b1).unwrap(), WriteOutcome::Stored(20));
    // The same batch again writes nothing; another agent's seq 1 is new.
    assert_eq!(store.write(&b0).unwrap(), WriteOutcome::Duplicate);
    assert_eq!(
        store.write(&batch("a2", 1, T1 + 50_000, 5)).unwrap(),
        WriteOutcome::Stored(5)
    );
    assert_eq!(store.count().unwrap(), 35);

    // Newest first, over both days; fields come back whole.
    let got = store.spans(&all(T0, T1 + DAY)).unwrap();
    assert_eq!(got.len(), 35);
    assert!(got
        .windows(2)
        .all(|w| w[0].row.start_time_us >= w[1].row.start_time_us));
    let first = b1.spans.last().unwrap();
    let back = got
        .iter()
        .find(|s| s.id == first.id)
        .expect("span by id in the list");
    assert_eq!(back, first);
    assert_eq!(store.span(first.id).unwrap().as_ref(), Some(first));
    assert_eq!(store.span(12345).unwrap(), None);
    let old = &b0.spans[3];
    assert_eq!(store.span(old.id).unwrap().as_ref(), Some(old));

    // Filters.
    let day1 = |f: &dyn Fn(&mut SpanQuery)| {
        let mut q = all(T1, T1 + DAY);
        f(&mut q);
        store.spans(&q).unwrap()
    };
    assert_eq!(day1(&|_| {}).len(), 25);
    assert_eq!(
        day1(&|q| q.status = Some(ResponseStatus::ServerError)).len(),
        4 + 1
    );
    assert_eq!(day1(&|q| q.protocol = Some(L7Protocol::Redis)).len(), 0);
    assert_eq!(day1(&|q| q.protocol = Some(L7Protocol::Mysql)).len(), 25);
    assert_eq!(day1(&|q| q.service = Some(svc("db"))).len(), 25);
    assert_eq!(day1(&|q| q.service = Some(svc("nope"))).len(), 0);
    assert_eq!(
        day1(&|q| q.observation_point = Some(ObservationPoint::Server)).len(),
        0
    );
    assert_eq!(
        day1(&|q| q.endpoint = Some("id = 1".into())).len(),
        1 + 10 + 1
    );
    assert_eq!(day1(&|q| q.endpoint = Some("x' OR '1'='1".into())).len(), 0);
    // 100 + 10 i >= 250: i >= 15 of 20, and none of the 5.
    assert_eq!(day1(&|q| q.min_duration_us = Some(250)).len(), 5);
    // Paging: pages of 7 by keyset cover everything once.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = day1(&|q| {
            q.limit = 7;
            q.before = before;
        });
        if page.is_empty() {
            break;
        }
        let last = page.last().unwrap();
        before = Some((last.row.start_time_us, last.id));
        seen.extend(page.into_iter().map(|s| s.id));
    }
    assert_eq!(seen.len(), 25);
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 25);

    // Services: db served nothing (only client spans), web made 25.
    let rows = store
        .services(&ServiceQuery {
            from_us: T1,
            to_us: T1 + DAY,
        })
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0].service, rows[0].made, rows[0].served),
        (svc("web"), 25, 0)
    );

    let tags = store.tags().unwrap();
    assert!(tags.contains(&(TagKind::Service, svc("db"), "db".into())));
    assert_eq!(tags.iter().filter(|t| t.0 == TagKind::Service).count(), 2);

    // Retention drops the older day only.
    assert_eq!(store.drop_days_before((T1 / DAY) as u32).unwrap(), 1);
    assert_eq!(store.count().unwrap(), 25);
    assert!(store.spans(&all(T0, T1)).unwrap().is_empty());
}

/// After [`run`] and reopening: what was stored is still there.
pub fn after_reopen(store: &dyn Store) {
    assert_eq!(store.count().unwrap(), 25);
    assert_eq!(
        store.write(&batch("a1", 2, T1, 20)).unwrap(),
        WriteOutcome::Duplicate
    );
    assert_eq!(store.tags().unwrap().len(), 4);
}

/// A batch from (`agent`, `session`) whose `i`th span starts at `start + i`
/// ms and is shaped by `f(i, row)`.
fn shaped(
    agent: &str,
    session: u64,
    start: u64,
    n: u32,
    f: impl Fn(u32, &mut SpanRow),
) -> WriteBatch {
    let agent_id = tag_id(TagKind::Agent, agent);
    let spans = (0..n)
        .map(|i| {
            let mut row = SpanRow {
                start_time_us: start + i as u64 * 1000,
                end_time_us: start + i as u64 * 1000 + 500,
                protocol: L7Protocol::Http.code(),
                l4_protocol: 6,
                ..SpanRow::default()
            };
            f(i, &mut row);
            StoredSpan {
                id: span_id(agent_id, session, 1, i),
                agent: agent_id,
                session,
                seq: 1,
                row,
            }
        })
        .collect();
    WriteBatch {
        agent: agent_id,
        session,
        seq: 1,
        spans,
        tags: vec![(TagKind::Agent, agent_id, agent.into())],
        metrics: Vec::new(),
        flows: Vec::new(),
    }
}

/// Key queries (trace assembly): each key kind finds its spans, scoped
/// where its ids are local (syscall trace ids per agent and session,
/// goroutine ids per agent and process), within the time range only, and
/// absent values (0, "") never match. Runs on an empty store.
pub fn keys(store: &dyn Store) {
    assert_eq!(store.count().unwrap(), 0);
    // Agent a1, session 1: one span per key kind (by index), and a span
    // with every key absent.
    let a1 = shaped("a1", 1, T1, 10, |i, r| match i {
        0 => (r.syscall_trace_id_req, r.syscall_trace_id_resp) = (10, 11),
        1 => (r.syscall_trace_id_req, r.syscall_trace_id_resp) = (11, 12),
        2 => r.req_tcp_seq = 100,
        3 => r.resp_tcp_seq = 100,
        4 => r.x_request_id = "r'1\\".into(),
        5 => r.x_request_id_resp = "r'1\\".into(),
        6 => r.trace_id = "0af7651916cd43dd8448eb211c80319c".into(),
        7 => {
            r.pid = 42;
            (r.coroutine_id_req, r.coroutine_id_resp) = (0, 5);
        }
        9 => {
            r.l4_protocol = 17;
            (r.src_port, r.dst_port) = (40000, 53);
        }
        _ => {}
    });
    // The same ids elsewhere: another session of a1, another agent,
    // another process; and the next day (outside the range asked).
    let a1_again = shaped("a1", 2, T1, 1, |_, r| r.syscall_trace_id_req = 10);
    let a2 = shaped("a2", 1, T1, 2, |i, r| {
        r.syscall_trace_id_resp = 11;
        r.pid = 42;
        r.coroutine_id_req = 5;
        r.req_tcp_seq = if i == 0 { 100 } else { 101 };
    });
    let a1_other_pid = shaped("a1", 3, T1, 2, |i, r| {
        r.pid = 43;
        r.coroutine_id_req = 5;
        // TCP on the same ports, and UDP the other way round.
        (r.src_port, r.dst_port) = if i == 0 { (40000, 53) } else { (53, 40000) };
        r.l4_protocol = if i == 0 { 6 } else { 17 };
    });
    let later = shaped("a3", 1, T1 + DAY / 2 + 1, 2, |_, r| {
        r.req_tcp_seq = 100;
        r.trace_id = "0af7651916cd43dd8448eb211c80319c".into();
    });
    for b in [&a1, &a1_again, &a2, &a1_other_pid, &later] {
        assert!(matches!(store.write(b).unwrap(), WriteOutcome::Stored(_)));
    }
    let id = |b: &WriteBatch, i: usize| b.spans[i].id;
    let base = KeyQuery {
        from_us: T1 - DAY / 2,
        to_us: T1 + DAY / 2,
        limit: 1000,
        ..KeyQuery::default()
    };
    let find = |f: &dyn Fn(&mut KeyQuery)| {
        let mut q = base.clone();
        f(&mut q);
        let got = store.spans_by_keys(&q).unwrap();
        assert!(
            got.windows(2)
                .all(|w| w[0].row.start_time_us <= w[1].row.start_time_us),
            "earliest first"
        );
        let mut ids: Vec<u64> = got.iter().map(|s| s.id).collect();
        ids.sort_unstable();
        ids
    };
    let sorted = |mut v: Vec<u64>| {
        v.sort_unstable();
        v
    };
    let agent = |name: &str| tag_id(TagKind::Agent, name);
    assert!(find(&|_| {}).is_empty(), "no key, no span");
    assert_eq!(
        find(&|q| {
            q.syscall_trace_ids
                .entry((agent("a1"), 1))
                .or_default()
                .insert(11);
        }),
        sorted(vec![id(&a1, 0), id(&a1, 1)])
    );
    assert_eq!(
        find(&|q| {
            q.syscall_trace_ids
                .entry((agent("a1"), 1))
                .or_default()
                .insert(10);
            q.syscall_trace_ids
                .entry((agent("a2"), 1))
                .or_default()
                .insert(11);
        }),
        sorted(vec![id(&a1, 0), id(&a2, 0), id(&a2, 1)])
    );
    assert_eq!(
        find(&|q| {
            q.coroutine_ids
                .entry((agent("a1"), 42))
                .or_default()
                .insert(5);
        }),
        vec![id(&a1, 7)]
    );
    assert_eq!(
        find(&|q| {
            q.udp_ports.insert((40000, 53));
        }),
        vec![id(&a1, 9)]
    );
    // TCP seqs are bare: both directions, every agent, this range only.
    assert_eq!(
        find(&|q| {
            q.tcp_seqs.insert(100);
        }),
        sorted(vec![id(&a1, 2), id(&a1, 3), id(&a2, 0)])
    );
    assert_eq!(
        find(&|q| {
            q.x_request_ids.insert("r'1\\".into());
        }),
        sorted(vec![id(&a1, 4), id(&a1, 5)])
    );
    assert_eq!(
        find(&|q| {
            q.trace_ids
                .insert("0af7651916cd43dd8448eb211c80319c".into());
        }),
        vec![id(&a1, 6)]
    );
    // Absent values match nothing, even where stored.
    assert!(find(&|q| {
        q.tcp_seqs.insert(0);
        q.x_request_ids.insert(String::new());
        q.trace_ids.insert(String::new());
        q.syscall_trace_ids
            .entry((agent("a1"), 1))
            .or_default()
            .insert(0);
    })
    .is_empty());
    // Every kind at once, over two days, with a limit: the earliest.
    let everything = |q: &mut KeyQuery| {
        q.to_us = T1 + DAY;
        q.tcp_seqs.insert(100);
        q.trace_ids
            .insert("0af7651916cd43dd8448eb211c80319c".into());
        q.x_request_ids.insert("r'1\\".into());
    };
    assert_eq!(
        find(&everything),
        sorted(vec![
            id(&a1, 2),
            id(&a1, 3),
            id(&a1, 4),
            id(&a1, 5),
            id(&a1, 6),
            id(&a2, 0),
            id(&later, 0),
            id(&later, 1)
        ])
    );
    assert_eq!(
        find(&|q| {
            everything(q);
            q.limit = 2;
        }),
        sorted(vec![id(&a1, 2), id(&a2, 0)])
    );
}

/// What [`Store::spans`] must answer, computed from the rows themselves:
/// the rows matching every filter of `q`, newest first (ties by id, the
/// larger first), at most `q.limit`.
fn expected(rows: &[StoredSpan], q: &SpanQuery) -> Vec<u64> {
    let mut hit: Vec<&StoredSpan> = rows
        .iter()
        .filter(|s| {
            let r = &s.row;
            let either = |a: u64, b: u64, id: Option<u64>| id.is_none_or(|id| a == id || b == id);
            r.start_time_us >= q.from_us
                && r.start_time_us < q.to_us
                && q.protocol.is_none_or(|p| r.protocol == p.code())
                && q.status.is_none_or(|x| r.response_status == x.code())
                && q.observation_point
                    .is_none_or(|o| r.observation_point == o.code())
                && either(r.service_0, r.service_1, q.service)
                && either(r.process_0, r.process_1, q.process)
                && q.endpoint.as_ref().is_none_or(|e| {
                    r.endpoint.contains(e.as_str()) || r.request_resource.contains(e.as_str())
                })
                && q.port.is_none_or(|p| r.dst_port == u32::from(p))
                && q.min_duration_us
                    .is_none_or(|m| r.end_time_us.saturating_sub(r.start_time_us) >= m)
                && q.before.is_none_or(|(start, id)| {
                    r.start_time_us < start || (r.start_time_us == start && s.id < id)
                })
                && q.trace_id.as_ref().is_none_or(|t| &r.trace_id == t)
        })
        .collect();
    hit.sort_by_key(|s| std::cmp::Reverse((s.row.start_time_us, s.id)));
    hit.into_iter()
        .take(q.limit as usize)
        .map(|s| s.id)
        .collect()
}

/// Rows spread over three days for [`listing`]: every few spans one of
/// each protocol, status, observation point, service pair, process,
/// endpoint and port; groups of spans that start at the same microsecond
/// (ties broken by id), among them the last microsecond of a day and the
/// first of the next; batches that straddle midnight.
fn listing_rows() -> Vec<WriteBatch> {
    let day0 = 20_100 * DAY;
    let services = ["web", "api", "db", ""];
    let endpoints = [
        "/api/orders/{id}",
        "/api/users",
        "SELECT * FROM orders",
        "GET",
    ];
    let statuses = [
        ResponseStatus::Ok,
        ResponseStatus::ServerError,
        ResponseStatus::ClientError,
        ResponseStatus::Timeout,
    ];
    let points = [
        ObservationPoint::Client,
        ObservationPoint::Server,
        ObservationPoint::Network,
    ];
    let protocols = [L7Protocol::Http, L7Protocol::Mysql, L7Protocol::Redis];
    // Start times: 25 min apart over three days, every 7th repeating the
    // one before; and four around each midnight.
    let mut starts: Vec<u64> = Vec::new();
    let mut t = day0 + 3_600_000_000;
    for i in 0..160u64 {
        if i % 7 != 3 {
            t += 25 * 60_000_000 + i * 7_919;
        }
        starts.push(t);
    }
    for midnight in [day0 + DAY, day0 + 2 * DAY] {
        starts.extend([
            midnight - 1,
            midnight - 1,
            midnight,
            midnight,
            midnight,
            midnight + 1,
        ]);
    }
    starts.sort_unstable();
    let mut batches = Vec::new();
    for (b, chunk) in starts.chunks(40).enumerate() {
        let agent = if b % 2 == 0 { "list-a" } else { "list-b" };
        let agent_id = tag_id(TagKind::Agent, agent);
        let seq = b as u64 + 1;
        let spans = chunk
            .iter()
            .enumerate()
            .map(|(i, &start)| {
                let k = b * 40 + i;
                let (client, server) = (services[k % 4], services[(k / 4 + 1) % 4]);
                let id_of = |name: &str| {
                    if name.is_empty() {
                        0
                    } else {
                        svc(name)
                    }
                };
                StoredSpan {
                    id: span_id(agent_id, 1, seq, i as u32),
                    agent: agent_id,
                    session: 1,
                    seq,
                    row: SpanRow {
                        start_time_us: start,
                        end_time_us: start + (k as u64 % 13) * 1_000,
                        protocol: protocols[k % 3].code(),
                        observation_point: points[(k / 3) % 3].code(),
                        response_status: statuses[(k / 2) % 4].code(),
                        l4_protocol: 6,
                        endpoint: endpoints[k % 4].into(),
                        request_resource: format!("/r/{k}/it's"),
                        dst_port: [80, 3306, 6379][k % 3],
                        service_0: id_of(client),
                        service_1: id_of(server),
                        process_0: tag_id(TagKind::Process, &format!("p{}", k % 5)),
                        process_1: tag_id(TagKind::Process, &format!("p{}", (k + 2) % 5)),
                        trace_id: if k % 11 == 0 {
                            "t-1".into()
                        } else {
                            String::new()
                        },
                        ..SpanRow::default()
                    },
                }
            })
            .collect();
        batches.push(WriteBatch {
            agent: agent_id,
            session: 1,
            seq,
            spans,
            tags: vec![(TagKind::Agent, agent_id, agent.into())],
            metrics: Vec::new(),
            flows: Vec::new(),
        });
    }
    batches
}

/// Span listings and service figures on rows over three days, against
/// what the rows themselves say (a store may shape its SQL as it likes,
/// per day, keys first, but must give exactly this answer): every filter,
/// ranges that cut days, pages of 1, 3, 7 and 1000 by keyset across
/// midnight and through ties. Runs on an empty store.
pub fn listing(store: &dyn Store) {
    assert_eq!(store.count().unwrap(), 0);
    let batches = listing_rows();
    for b in &batches {
        assert!(matches!(store.write(b).unwrap(), WriteOutcome::Stored(_)));
    }
    let rows: Vec<StoredSpan> = batches.iter().flat_map(|b| b.spans.clone()).collect();
    assert_eq!(store.count().unwrap(), rows.len() as u64);
    let day0 = 20_100 * DAY;
    let ids = |q: &SpanQuery| -> Vec<u64> {
        store
            .spans(q)
            .unwrap_or_else(|e| panic!("{q:?}: {e}"))
            .iter()
            .map(|s| s.id)
            .collect()
    };
    let check = |q: &SpanQuery| {
        let want = expected(&rows, q);
        assert_eq!(ids(q), want, "{q:?}");
        want.len()
    };
    // The same question page by page: the pages, joined, are the whole
    // answer (and each page is what the rows say).
    let walk = |q: &SpanQuery, page: u32| {
        let mut all = SpanQuery {
            limit: u32::MAX,
            ..q.clone()
        };
        all.before = None;
        let whole = expected(&rows, &all);
        let mut got = Vec::new();
        let mut before = None;
        loop {
            let p = SpanQuery {
                limit: page,
                before,
                ..q.clone()
            };
            let page_ids = ids(&p);
            assert_eq!(page_ids, expected(&rows, &p), "{p:?}");
            let Some(last) = page_ids.last() else { break };
            let last = rows.iter().find(|s| s.id == *last).unwrap();
            before = Some((last.row.start_time_us, last.id));
            got.extend(page_ids);
        }
        assert_eq!(got, whole, "pages of {page} of {q:?}");
        whole.len()
    };
    let range = |from: u64, to: u64| SpanQuery {
        from_us: from,
        to_us: to,
        limit: 100,
        ..SpanQuery::default()
    };
    let everything = range(day0, day0 + 3 * DAY);
    // Ranges: all days, one, cut in the middle of days, around midnight,
    // empty, and one microsecond wide at a tie.
    for (from, to) in [
        (day0, day0 + 3 * DAY),
        (0, u64::MAX),
        (day0 + DAY, day0 + 2 * DAY),
        (day0 + DAY / 2, day0 + 2 * DAY + DAY / 3),
        (day0 + DAY - 1, day0 + DAY + 1),
        (day0 + DAY, day0 + DAY + 1),
        (day0 + DAY, day0 + DAY),
        (day0 + 2 * DAY, day0 + DAY),
    ] {
        for limit in [1, 5, 100, 10_000] {
            check(&SpanQuery {
                limit,
                ..range(from, to)
            });
        }
    }
    assert_eq!(
        check(&SpanQuery {
            limit: 0,
            ..everything.clone()
        }),
        0
    );
    assert_eq!(
        check(&SpanQuery {
            limit: 10_000,
            ..everything.clone()
        }),
        rows.len()
    );
    // Each filter alone, then several together.
    let filters: Vec<(&str, SpanQuery)> = vec![
        (
            "status",
            SpanQuery {
                status: Some(ResponseStatus::ServerError),
                ..everything.clone()
            },
        ),
        (
            "service",
            SpanQuery {
                service: Some(svc("api")),
                ..everything.clone()
            },
        ),
        (
            "process",
            SpanQuery {
                process: Some(tag_id(TagKind::Process, "p3")),
                ..everything.clone()
            },
        ),
        (
            "protocol and min duration",
            SpanQuery {
                protocol: Some(L7Protocol::Mysql),
                min_duration_us: Some(6_000),
                ..everything.clone()
            },
        ),
        (
            "endpoint",
            SpanQuery {
                endpoint: Some("orders".into()),
                ..everything.clone()
            },
        ),
        (
            "resource with a quote",
            SpanQuery {
                endpoint: Some("/1/it's".into()),
                ..everything.clone()
            },
        ),
        (
            "observation point and port",
            SpanQuery {
                observation_point: Some(ObservationPoint::Server),
                port: Some(6379),
                ..everything.clone()
            },
        ),
        (
            "trace id",
            SpanQuery {
                trace_id: Some("t-1".into()),
                ..everything.clone()
            },
        ),
        (
            "all at once",
            SpanQuery {
                status: Some(ResponseStatus::Ok),
                service: Some(svc("web")),
                protocol: Some(L7Protocol::Http),
                endpoint: Some("/api".into()),
                ..range(day0 + DAY / 2, day0 + 3 * DAY)
            },
        ),
    ];
    for (what, q) in &filters {
        let n = check(q);
        assert!(n > 0, "{what}: the rows hold some");
        walk(q, 3);
    }
    // Pages across both midnights and through every tie, one span at a
    // time near them and in pages of 7 and 1000 over everything.
    assert_eq!(walk(&everything, 7), rows.len());
    assert_eq!(walk(&everything, 1000), rows.len());
    for midnight in [day0 + DAY, day0 + 2 * DAY] {
        let near = range(midnight - 2 * 3_600_000_000, midnight + 2 * 3_600_000_000);
        assert!(walk(&near, 1) >= 6);
    }
    // A cursor older than the range, and one newer than all of it.
    check(&SpanQuery {
        before: Some((day0, u64::MAX)),
        ..everything.clone()
    });
    check(&SpanQuery {
        before: Some((u64::MAX, u64::MAX)),
        ..everything.clone()
    });

    // Service figures, over all days and over a range that cuts days.
    for (from, to) in [(day0, day0 + 3 * DAY), (day0 + DAY / 2, day0 + 2 * DAY + 1)] {
        let mut want: std::collections::BTreeMap<(u64, u32), [u64; 7]> = Default::default();
        for s in rows
            .iter()
            .filter(|s| s.row.start_time_us >= from && s.row.start_time_us < to)
        {
            let r = &s.row;
            let served = r.observation_point == ObservationPoint::Server.code()
                || r.observation_point == ObservationPoint::Network.code();
            if served && r.service_1 != 0 {
                let e = want.entry((r.service_1, r.protocol)).or_default();
                let d = r.end_time_us - r.start_time_us;
                e[0] += 1;
                e[1] += u64::from(r.response_status == ResponseStatus::ClientError.code());
                e[2] += u64::from(r.response_status == ResponseStatus::ServerError.code());
                e[3] += u64::from(r.response_status == ResponseStatus::Timeout.code());
                e[4] += d;
                e[5] = e[5].max(d);
            } else if r.observation_point == ObservationPoint::Client.code() && r.service_0 != 0 {
                want.entry((r.service_0, r.protocol)).or_default()[6] += 1;
            }
        }
        let got: Vec<(u64, u32, [u64; 7])> = store
            .services(&ServiceQuery {
                from_us: from,
                to_us: to,
            })
            .unwrap()
            .into_iter()
            .map(|r| {
                (
                    r.service,
                    r.protocol.code(),
                    [
                        r.served,
                        r.client_errors,
                        r.server_errors,
                        r.timeouts,
                        r.duration_sum_us,
                        r.duration_max_us,
                        r.made,
                    ],
                )
            })
            .collect();
        let want: Vec<(u64, u32, [u64; 7])> =
            want.into_iter().map(|((s, p), v)| (s, p, v)).collect();
        assert!(
            want.iter().any(|w| w.2[0] > 0 && w.2[6] > 0),
            "a service that serves and calls"
        );
        assert_eq!(got, want, "services over [{from}, {to})");
    }

    // Spans by id, in each day.
    for s in rows.iter().step_by(17) {
        assert_eq!(store.span(s.id).unwrap().as_ref(), Some(s));
    }
}
