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
