//! One behaviour for every store: each backend's tests run these.

use super::{Store, WriteBatch, WriteOutcome};
use crate::query::{ServiceQuery, SpanQuery};
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
