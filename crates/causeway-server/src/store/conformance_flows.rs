//! What every store must do with flow reports, run against DuckDB in its
//! unit tests and against ClickHouse (one node and two shards) in
//! `crates/causeway/tests/server.rs`: a batch's reports come back as
//! written (strings, every figure, flags); a re-sent batch stores nothing
//! again; ranges, ports and close types select; newest first; old days
//! are dropped by retention and the rest survive reopening.

use super::{Store, WriteBatch, WriteOutcome};
use crate::flows::{FlowQuery, StoredFlow};
use causeway_model::tags::{tag_id, TagKind};
use causeway_model::wire::FlowRow;
use causeway_model::CloseType;

const DAY_US: u64 = 86_400_000_000;
/// Two days far from any other test's.
const DAY_A: u64 = 20_100;
const DAY_B: u64 = 20_101;

fn report(i: u64, day: u64) -> FlowRow {
    let t = day * DAY_US + 3_600_000_000 + i * 1_000_000;
    FlowRow {
        flow_id: 100 + i,
        l4_protocol: if i == 4 { 17 } else { 6 },
        src_ip: "10.0.0.1".into(),
        src_port: 40_000 + i as u32,
        dst_ip: if i % 2 == 0 { "10.0.0.2" } else { "fd00::2" }.into(),
        dst_port: if i % 2 == 0 { 80 } else { 5432 },
        interface: if i == 3 {
            "veth\t\\x".into()
        } else {
            "lo".into()
        },
        start_time_us: t - 500_000,
        end_time_us: t,
        period_start_us: t - 500_000,
        new_flow: i != 2,
        close_type: match i {
            0 => CloseType::Normal,
            1 => CloseType::Refused,
            2 => CloseType::Active,
            3 => CloseType::ServerReset,
            _ => CloseType::CaptureEnd,
        }
        .code(),
        packets_0: 10 + i,
        packets_1: 9 + i,
        bytes_0: 1_000 + i,
        bytes_1: u64::MAX - i,
        payload_bytes_0: 500,
        payload_bytes_1: 400,
        total_packets_0: 20 + i,
        total_packets_1: 19 + i,
        total_bytes_0: 2_000,
        total_bytes_1: 3_000,
        retransmissions_0: i,
        retransmissions_1: 1,
        out_of_order_0: 2,
        out_of_order_1: 3,
        zero_windows_0: 4,
        zero_windows_1: 5,
        resets_0: 0,
        resets_1: u64::from(i == 1 || i == 3),
        syns_0: 1 + u64::from(i == 1),
        syns_1: 1,
        fins_0: 1,
        fins_1: 1,
        rtt_client_us: 30,
        rtt_server_us: 40,
        srt_sum_us: 700,
        srt_count: 2,
        srt_max_us: 600,
        l7_protocol: 20,
        l7_requests: 3,
        l7_errors: 1,
        service_0: tag_id(TagKind::Service, "10.0.0.1"),
        service_1: tag_id(TagKind::Service, "10.0.0.2:80"),
    }
}

fn batch(agent: &str, seq: u64, rows: Vec<FlowRow>) -> WriteBatch {
    let agent_id = tag_id(TagKind::Agent, agent);
    WriteBatch {
        agent: agent_id,
        session: 7,
        seq,
        spans: Vec::new(),
        tags: vec![(TagKind::Agent, agent_id, agent.into())],
        metrics: Vec::new(),
        flows: rows
            .into_iter()
            .map(|row| StoredFlow {
                agent: agent_id,
                session: 7,
                seq,
                row,
            })
            .collect(),
    }
}

fn all(from_day: u64, to_day: u64) -> FlowQuery {
    FlowQuery {
        from_us: from_day * DAY_US,
        to_us: (to_day + 1) * DAY_US,
        port: None,
        close_type: None,
        limit: 1000,
    }
}

/// Writes, reads, filters, re-sends and drops.
pub fn run(store: &dyn Store) {
    let b1 = batch("flow-agent", 1, (0..5).map(|i| report(i, DAY_A)).collect());
    let b2 = batch("flow-agent", 2, (0..3).map(|i| report(i, DAY_B)).collect());
    assert!(matches!(store.write(&b1), Ok(WriteOutcome::Stored(_))));
    assert!(matches!(store.write(&b2), Ok(WriteOutcome::Stored(_))));
    // Sent again: acknowledged, not stored twice.
    assert_eq!(store.write(&b1).expect("re-send"), WriteOutcome::Duplicate);

    let got = store.flows(&all(DAY_A, DAY_B)).expect("flows");
    assert_eq!(got.len(), 8, "{got:?}");
    // Newest first.
    assert!(got
        .windows(2)
        .all(|w| w[0].row.end_time_us >= w[1].row.end_time_us));
    // Every column as written.
    let mut want: Vec<StoredFlow> = b1.flows.iter().chain(&b2.flows).cloned().collect();
    want.sort_by_key(|f| std::cmp::Reverse(f.row.end_time_us));
    assert_eq!(got, want);

    // One day only.
    let day_a = store.flows(&all(DAY_A, DAY_A)).expect("day a");
    assert_eq!(day_a.len(), 5);
    // By port, either end.
    let mut q = all(DAY_A, DAY_B);
    q.port = Some(5432);
    let pg = store.flows(&q).expect("port");
    assert_eq!(
        pg.iter().map(|f| f.row.flow_id).collect::<Vec<_>>(),
        [101, 103, 101]
    );
    q.port = Some(40_004);
    assert_eq!(store.flows(&q).expect("client port").len(), 1);
    // By close type.
    let mut q = all(DAY_A, DAY_B);
    q.close_type = Some(CloseType::Refused.code());
    assert_eq!(store.flows(&q).expect("refused").len(), 2);
    // A limit keeps the newest.
    let mut q = all(DAY_A, DAY_B);
    q.limit = 2;
    let newest = store.flows(&q).expect("limit");
    assert_eq!(newest, want[..2]);
    // An empty range reads nothing.
    let mut q = all(DAY_A, DAY_B);
    q.to_us = q.from_us;
    assert!(store.flows(&q).expect("empty").is_empty());

    // Retention drops the older day's reports.
    store.drop_days_before(DAY_B as u32).expect("drop old days");
    let left = store.flows(&all(DAY_A, DAY_B)).expect("after drop");
    assert_eq!(left.len(), 3);
    assert!(left.iter().all(|f| f.day() as u64 == DAY_B));
}

/// After [`run`] and reopening: the reports kept are still there.
pub fn after_reopen(store: &dyn Store) {
    let left = store.flows(&all(DAY_A, DAY_B)).expect("after reopen");
    assert_eq!(left.len(), 3);
    assert_eq!(left[0].row, report(2, DAY_B));
}
