//! The parent rules on hand-built span sets, one rule (and its traps) per
//! test; then set growth against a real (DuckDB) store.

use super::*;
use crate::schema::StoredSpan;
use crate::store::{Store, WriteBatch};
use causeway_model::wire::SpanRow;
use causeway_model::ObservationPoint::{Client, Network, Server};

const A1: u64 = 0xa1;
const T: u64 = 1_800_000_000_000_000;

/// A TCP span `id` seen at `obs` in process `pid` of agent A1 (session 1),
/// from `start` to `end` (microseconds after T), shaped by `f`.
fn sp(
    id: u64,
    obs: ObservationPoint,
    pid: u32,
    (start, end): (u64, u64),
    f: impl FnOnce(&mut SpanRow),
) -> StoredSpan {
    let mut row = SpanRow {
        start_time_us: T + start,
        end_time_us: T + end,
        observation_point: obs.code(),
        l4_protocol: 6,
        pid: if obs == Network { 0 } else { pid },
        src_ip: "10.0.0.1".into(),
        dst_ip: "10.0.0.2".into(),
        ..SpanRow::default()
    };
    f(&mut row);
    StoredSpan {
        id,
        agent: A1,
        session: 1,
        seq: 1,
        row,
    }
}

/// Sets ports and both sequence numbers (one message on one connection).
fn msg(r: &mut SpanRow, src_port: u32, dst_port: u32, seq: u32) {
    (r.src_port, r.dst_port) = (src_port, dst_port);
    (r.req_tcp_seq, r.resp_tcp_seq) = (seq, seq + 7);
}

fn sys(r: &mut SpanRow, req: u64, resp: u64) {
    (r.syscall_trace_id_req, r.syscall_trace_id_resp) = (req, resp);
}

/// (id, parent, link) of every span, in display order.
fn shape(t: &Trace) -> Vec<(u64, Option<u64>, Option<&'static str>)> {
    t.spans
        .iter()
        .map(|n| (n.span.id, n.parent, n.link.map(Link::as_str)))
        .collect()
}

fn parent_of(t: &Trace, id: u64) -> Option<(u64, &'static str)> {
    let n = t.spans.iter().find(|n| n.span.id == id).expect("span kept");
    n.parent.zip(n.link.map(Link::as_str))
}

#[test]
fn a_server_span_is_the_child_of_the_client_span_of_its_tcp_seq() {
    let c = sp(1, Client, 10, (0, 1000), |r| msg(r, 40000, 80, 100));
    let s = sp(2, Server, 20, (100, 900), |r| msg(r, 40000, 80, 100));
    let t = link(vec![s, c], 1, 0);
    assert_eq!(shape(&t), [(1, None, None), (2, Some(1), Some("tcp_seq"))]);
    assert_eq!(t.spans[0].children, [2]);
    assert_eq!((t.spans[0].depth, t.spans[1].depth), (0, 1));
    // The client's own time is what the server did not account for.
    assert_eq!(
        (t.spans[0].self_time_us, t.spans[1].self_time_us),
        (200, 800)
    );
    assert_eq!(t.dropped, 0);
}

#[test]
fn network_spans_sit_between_client_and_server() {
    let c = sp(1, Client, 10, (0, 1000), |r| msg(r, 40000, 80, 100));
    // Two taps on the way: the one nearer the client sees it first.
    let near = sp(3, Network, 0, (10, 990), |r| msg(r, 40000, 80, 100));
    let far = sp(4, Network, 0, (20, 980), |r| msg(r, 40000, 80, 100));
    let s = sp(2, Server, 20, (100, 900), |r| msg(r, 40000, 80, 100));
    let t = link(vec![s, far, c, near], 2, 0);
    assert_eq!(
        shape(&t),
        [
            (1, None, None),
            (3, Some(1), Some("tcp_seq")),
            (4, Some(3), Some("tcp_seq")),
            (2, Some(4), Some("tcp_seq")),
        ]
    );
    // Without the client process, the network span is the root.
    let t = link(
        vec![
            sp(2, Server, 20, (100, 900), |r| msg(r, 40000, 80, 100)),
            sp(3, Network, 0, (10, 990), |r| msg(r, 40000, 80, 100)),
        ],
        2,
        0,
    );
    assert_eq!(shape(&t), [(3, None, None), (2, Some(3), Some("tcp_seq"))]);
}

#[test]
fn tcp_seqs_of_other_connections_do_not_link() {
    let c = sp(1, Client, 10, (0, 1000), |r| msg(r, 40000, 80, 100));
    // The same request seq on another connection (other client port).
    let other_port = sp(2, Server, 20, (100, 900), |r| {
        msg(r, 41000, 80, 100);
        r.resp_tcp_seq = 555;
    });
    // The same connection and seq (the port reused, the seq come round
    // again) ten minutes later.
    let later = sp(3, Server, 20, (600_000_000, 600_000_100), |r| {
        msg(r, 40000, 80, 100)
    });
    // Same ports and request seq, but the answers differ.
    let other_answer = sp(4, Server, 20, (100, 900), |r| {
        msg(r, 40000, 80, 100);
        r.resp_tcp_seq = 999;
    });
    let t = link(vec![c.clone(), other_port, later, other_answer], 1, 0);
    assert_eq!(t.spans.len(), 1, "only the start span: {:?}", shape(&t));
    assert_eq!(t.dropped, 3);
    // An address translated on the way (other ports) with both directions'
    // seqs equal is the same message.
    let natted = sp(5, Server, 20, (100, 900), |r| msg(r, 51000, 8080, 100));
    let t = link(vec![c, natted], 1, 0);
    assert_eq!(parent_of(&t, 5), Some((1, "tcp_seq")));
}

#[test]
fn http2_streams_in_one_segment_pair_by_stream_id() {
    let c1 = sp(1, Client, 10, (0, 1000), |r| {
        msg(r, 40000, 80, 100);
        r.request_id = Some(1);
    });
    let c3 = sp(3, Client, 10, (0, 1000), |r| {
        msg(r, 40000, 80, 100);
        r.request_id = Some(3);
    });
    let s1 = sp(11, Server, 20, (100, 900), |r| {
        msg(r, 40000, 80, 100);
        r.request_id = Some(1);
    });
    let s3 = sp(13, Server, 20, (100, 900), |r| {
        msg(r, 40000, 80, 100);
        r.request_id = Some(3);
    });
    let all = vec![c1, c3, s1, s3];
    let t = link(all.clone(), 1, 0);
    assert_eq!(shape(&t), [(1, None, None), (11, Some(1), Some("tcp_seq"))]);
    let t = link(all, 3, 0);
    assert_eq!(shape(&t), [(3, None, None), (13, Some(3), Some("tcp_seq"))]);
}

#[test]
fn dns_over_udp_pairs_by_flow_and_id() {
    let udp = |r: &mut SpanRow, id: u64| {
        r.l4_protocol = 17;
        (r.src_port, r.dst_port) = (53000, 53);
        r.request_id = Some(id);
    };
    let c = sp(1, Client, 10, (0, 300), |r| udp(r, 7));
    let s = sp(2, Server, 30, (50, 250), |r| udp(r, 7));
    let other_id = sp(3, Server, 30, (60, 240), |r| udp(r, 8));
    let t = link(vec![c, s, other_id], 1, 0);
    assert_eq!(parent_of(&t, 2), Some((1, "udp_flow")));
    assert!(t.spans.iter().all(|n| n.span.id != 3));
}

/// A thread-per-request server: each thread's calls continue its chain of
/// syscall trace ids (request in: a new id; each call's answer in: the
/// next), so concurrent requests in one process keep their own calls.
#[test]
fn a_server_span_s_calls_follow_its_syscall_trace_id_chain() {
    let s = sp(1, Server, 20, (0, 1000), |r| sys(r, 10, 13));
    let dns = sp(2, Client, 20, (100, 200), |r| sys(r, 10, 11));
    let http = sp(3, Client, 20, (300, 500), |r| sys(r, 11, 12));
    let redis = sp(4, Client, 20, (600, 700), |r| sys(r, 12, 13));
    // Another request in another thread at the same time.
    let s2 = sp(5, Server, 20, (50, 950), |r| sys(r, 20, 21));
    let call2 = sp(6, Client, 20, (400, 450), |r| sys(r, 20, 21));
    // A call in the same process with ids no request's thread had.
    let stray = sp(7, Client, 20, (550, 560), |r| sys(r, 30, 31));
    // The same ids in another agent run (ids are numbered per run).
    let rerun = StoredSpan {
        session: 2,
        ..sp(8, Client, 20, (650, 660), |r| sys(r, 12, 13))
    };
    let t = link(vec![redis, http, dns, s, s2, call2, stray, rerun], 1, 0);
    assert_eq!(
        shape(&t),
        [
            (1, None, None),
            (2, Some(1), Some("syscall_trace_id")),
            (3, Some(1), Some("syscall_trace_id")),
            (4, Some(1), Some("syscall_trace_id")),
        ]
    );
    // The other request, its call, the stray and the rerun's span are not
    // connected to the start span: dropped.
    assert_eq!(t.dropped, 4);
    let t = link(
        vec![
            sp(5, Server, 20, (50, 950), |r| sys(r, 20, 21)),
            sp(6, Client, 20, (400, 450), |r| sys(r, 20, 21)),
            sp(1, Server, 20, (0, 1000), |r| sys(r, 10, 13)),
        ],
        5,
        0,
    );
    assert_eq!(parent_of(&t, 6), Some((5, "syscall_trace_id")));
    // Self time: the server less its calls.
    let t = link(
        vec![
            sp(1, Server, 20, (0, 1000), |r| sys(r, 10, 13)),
            sp(2, Client, 20, (100, 200), |r| sys(r, 10, 11)),
            sp(3, Client, 20, (150, 500), |r| sys(r, 11, 12)),
        ],
        1,
        0,
    );
    assert_eq!(t.spans[0].self_time_us, 1000 - 400);
}

#[test]
fn a_call_outside_the_server_span_s_time_is_not_its_child() {
    let s = sp(1, Server, 20, (0, 1000), |r| sys(r, 10, 10));
    let after = sp(2, Client, 20, (1001, 1100), |r| sys(r, 10, 11));
    let t = link(vec![s, after], 1, 0);
    assert_eq!(t.spans.len(), 1);
}

/// An event-loop gateway (nginx): one thread reads many requests before it
/// forwards them, so its syscall trace ids mislead; the X-Request-ID it
/// injects into the forwarded request and echoes in its response links
/// each forwarded request to its own.
#[test]
fn a_gateway_s_forwarded_requests_follow_their_x_request_id() {
    let in1 = sp(1, Server, 30, (0, 1000), |r| {
        sys(r, 10, 12);
        r.x_request_id_resp = "r1".into();
    });
    let in2 = sp(2, Server, 30, (10, 990), |r| {
        sys(r, 11, 12);
        r.x_request_id_resp = "r2".into();
    });
    // Forwarded after request 2 was read: the thread's id is request 2's.
    let out1 = sp(3, Client, 30, (20, 900), |r| {
        sys(r, 11, 13);
        r.x_request_id = "r1".into();
    });
    let out2 = sp(4, Client, 30, (30, 800), |r| {
        sys(r, 11, 14);
        r.x_request_id = "r2".into();
    });
    let t = link(
        vec![in1.clone(), in2.clone(), out1.clone(), out2.clone()],
        1,
        0,
    );
    assert_eq!(parent_of(&t, 3), Some((1, "x_request_id")));
    assert_eq!(t.spans.len(), 2, "request 2 is not in request 1's trace");
    let t = link(vec![in1, in2, out1, out2], 2, 0);
    assert_eq!(parent_of(&t, 4), Some((2, "x_request_id")));
}

/// A thread pool (gRPC in Python): the request is read by one thread and
/// handled by another, so no syscall trace id links them; a shared trace
/// id (traceparent) does, and a different one rules a candidate out.
#[test]
fn a_shared_trace_id_links_across_a_thread_handoff() {
    let tid = |r: &mut SpanRow, t: &str| r.trace_id = t.into();
    let s1 = sp(1, Server, 40, (0, 1000), |r| {
        sys(r, 10, 10);
        tid(r, "t1");
    });
    let s2 = sp(2, Server, 40, (100, 900), |r| {
        sys(r, 20, 20);
        tid(r, "t2");
    });
    // Called by request 1's handler on a pool thread whose id continues
    // request 2's chain, while request 2 (the innermost) was in progress.
    let call = sp(3, Client, 40, (200, 300), |r| {
        sys(r, 20, 21);
        tid(r, "t1");
    });
    let t = link(vec![s1, s2, call], 1, 0);
    assert_eq!(parent_of(&t, 3), Some((1, "trace_id")));
}

#[test]
fn a_parent_span_id_names_the_parent() {
    // B3: the server span's id is the caller's span id; what it calls
    // carries it as the parent span id.
    let s = sp(1, Server, 40, (0, 1000), |r| {
        sys(r, 10, 10);
        r.span_id = "aaaa".into();
    });
    let inner = sp(2, Server, 40, (100, 900), |r| {
        sys(r, 10, 10);
        r.span_id = "bbbb".into();
    });
    let call = sp(3, Client, 40, (200, 300), |r| {
        sys(r, 10, 11);
        r.parent_span_id = "aaaa".into();
        r.span_id = "cccc".into();
    });
    let t = link(vec![s, inner, call], 1, 0);
    assert_eq!(parent_of(&t, 3), Some((1, "span_id")));
}

#[test]
fn a_call_in_the_server_span_s_goroutine_is_its_child() {
    let s = sp(1, Server, 50, (0, 1000), |r| r.coroutine_id_req = 7);
    let other = sp(2, Server, 50, (10, 990), |r| r.coroutine_id_req = 8);
    let call = sp(3, Client, 50, (100, 200), |r| r.coroutine_id_req = 7);
    let t = link(vec![s, other, call], 1, 0);
    assert_eq!(parent_of(&t, 3), Some((1, "pseudo_thread")));
}

/// Behind an address translation the caller's sequence numbers differ;
/// the trace headers' span id (the caller's) names the caller.
#[test]
fn a_server_span_without_its_tcp_seq_finds_its_caller_by_span_id() {
    let hdr = |r: &mut SpanRow, span: &str| {
        r.trace_id = "t".into();
        r.span_id = span.into();
    };
    let root = sp(1, Server, 10, (0, 2000), |r| sys(r, 5, 7));
    let c1 = sp(2, Client, 10, (100, 900), |r| {
        sys(r, 5, 6);
        msg(r, 40000, 80, 100);
        hdr(r, "p1");
    });
    let c2 = sp(3, Client, 10, (1000, 1900), |r| {
        sys(r, 6, 7);
        msg(r, 40001, 80, 300);
        hdr(r, "p2");
    });
    let s = sp(4, Server, 20, (200, 800), |r| {
        msg(r, 9999, 8080, 700);
        hdr(r, "p1");
    });
    let t = link(vec![root.clone(), c1.clone(), c2.clone(), s.clone()], 1, 0);
    assert_eq!(parent_of(&t, 4), Some((2, "span_id")));
    assert_eq!(t.spans.len(), 4);
    // Not a call of another protocol carrying the same context, nor one
    // whose server side was seen.
    let mut grpc = s.clone();
    grpc.row.protocol = causeway_model::L7Protocol::Grpc.code();
    let t = link(vec![root.clone(), c1.clone(), c2.clone(), grpc], 1, 0);
    // Kept (the same trace id), as a root of its own.
    assert_eq!(parent_of(&t, 4), None);
    let seen = sp(5, Server, 30, (150, 850), |r| msg(r, 40000, 80, 100));
    let t = link(vec![root, c1, c2, s, seen], 1, 0);
    assert_eq!(parent_of(&t, 5), Some((2, "tcp_seq")));
    assert_eq!(parent_of(&t, 4), None, "c1's server side is 5, not 4 too");
}

#[test]
fn groups_sharing_a_trace_id_with_the_start_span_s_are_kept() {
    let s = sp(1, Server, 10, (0, 1000), |r| r.trace_id = "t".into());
    // Same trace, no rule links it (another process, no seq match).
    let orphan = sp(2, Server, 20, (100, 200), |r| r.trace_id = "t".into());
    let foreign = sp(3, Server, 20, (100, 200), |r| r.trace_id = "u".into());
    let t = link(vec![s, orphan, foreign], 1, 0);
    assert_eq!(shape(&t), [(1, None, None), (2, None, None)]);
    assert_eq!(t.dropped, 1);
}

#[test]
fn no_parent_makes_a_cycle() {
    // Contrived: each is the other's caller by one rule or another.
    let a = sp(1, Server, 10, (0, 1000), |r| {
        msg(r, 40000, 80, 100);
        sys(r, 5, 5);
    });
    let b = sp(2, Client, 10, (0, 1000), |r| {
        msg(r, 40000, 80, 100);
        sys(r, 5, 6);
    });
    let t = link(vec![a, b], 1, 0);
    assert_eq!(t.spans.len(), 2);
    assert_eq!(t.spans.iter().filter(|n| n.parent.is_none()).count(), 1);
}

#[test]
fn children_are_ordered_by_time_and_self_time_counts_overlap_once() {
    let s = sp(1, Server, 20, (0, 1000), |r| sys(r, 10, 10));
    let late = sp(2, Client, 20, (500, 900), |r| sys(r, 10, 10));
    let early = sp(3, Client, 20, (100, 600), |r| sys(r, 10, 10));
    let t = link(vec![late, s, early], 1, 0);
    assert_eq!(
        t.spans.iter().map(|n| n.span.id).collect::<Vec<_>>(),
        [1, 3, 2]
    );
    assert_eq!(t.spans[0].children, [3, 2]);
    // Covered: 100..900.
    assert_eq!(t.spans[0].self_time_us, 200);
}

// --- set growth over a store --------------------------------------------------

fn store() -> (crate::store::duckdb::DuckStore, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "causeway-trace-{}-{}",
        std::process::id(),
        crate::store::conformance::unique()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    (
        crate::store::duckdb::DuckStore::open(&dir).expect("open"),
        dir,
    )
}

fn write(store: &dyn Store, spans: Vec<StoredSpan>) {
    store
        .write(&WriteBatch {
            agent: A1,
            session: 1,
            seq: 1,
            spans,
            tags: vec![],
            metrics: vec![],
            flows: Vec::new(),
        })
        .expect("write");
}

/// Gateway -> service -> database, found from the database's span: each
/// step needs the keys the previous one found.
fn three_tiers() -> Vec<StoredSpan> {
    vec![
        // The user's request at the gateway (pid 30), echoing R.
        sp(1, Client, 5, (0, 10_000), |r| msg(r, 30000, 80, 1)),
        sp(2, Server, 30, (100, 9_900), |r| {
            msg(r, 30000, 80, 1);
            r.x_request_id_resp = "R".into();
        }),
        // Forwarded with X-Request-ID R to the service (pid 20).
        sp(3, Client, 30, (200, 9_800), |r| {
            msg(r, 30001, 8000, 50);
            r.x_request_id = "R".into();
        }),
        sp(4, Server, 20, (300, 9_700), |r| {
            msg(r, 30001, 8000, 50);
            r.x_request_id = "R".into();
            sys(r, 70, 72);
        }),
        // Two calls of its thread, the second to the database (pid 40).
        sp(5, Client, 20, (400, 1_000), |r| {
            msg(r, 30002, 53, 9);
            sys(r, 70, 71);
        }),
        sp(6, Client, 20, (2_000, 9_000), |r| {
            msg(r, 30003, 5432, 900);
            sys(r, 71, 72);
        }),
        sp(7, Server, 40, (2_100, 8_900), |r| {
            msg(r, 30003, 5432, 900);
            sys(r, 90, 90);
        }),
        // Decoys: the database's seq on another connection; the service's
        // syscall id in another agent run; a call of the same thread after
        // the request was answered (the next request's), far away in time.
        sp(8, Server, 40, (2_100, 8_900), |r| {
            msg(r, 30999, 5432, 900);
            r.resp_tcp_seq = 1;
        }),
        StoredSpan {
            session: 2,
            ..sp(9, Client, 20, (500, 600), |r| sys(r, 71, 75))
        },
        sp(10, Client, 20, (120_000_000, 120_000_100), |r| {
            sys(r, 72, 73)
        }),
    ]
}

#[test]
fn assembly_grows_the_set_key_by_key_and_keeps_what_fits() {
    let (st, dir) = store();
    write(&st, three_tiers());
    let t = assemble(&st, 7, &TraceOptions::default())
        .expect("assemble")
        .expect("found");
    assert_eq!(
        shape(&t),
        [
            (1, None, None),
            (2, Some(1), Some("tcp_seq")),
            (3, Some(2), Some("x_request_id")),
            (4, Some(3), Some("tcp_seq")),
            (5, Some(4), Some("syscall_trace_id")),
            (6, Some(4), Some("syscall_trace_id")),
            (7, Some(6), Some("tcp_seq")),
        ]
    );
    assert_eq!(t.start, 7);
    assert!(!t.truncated);
    // 7 -> 6 (seq), 6 -> 4, 5 (syscall ids), 4 -> 3 (seq, X-Request-ID),
    // 3 -> 2 (X-Request-ID), 2 -> 1 (seq), then nothing new.
    assert!(t.iterations >= 4, "{}", t.iterations);
    assert_eq!(t.dropped, 0);
    // The same trace from any of its spans.
    for from in 1..=7 {
        let again = assemble(&st, from, &TraceOptions::default())
            .unwrap()
            .unwrap();
        assert_eq!(shape(&again), shape(&t), "from {from}");
    }
    // Bounds: two rounds are not enough, and say so.
    let short = assemble(
        &st,
        7,
        &TraceOptions {
            max_iterations: 2,
            ..TraceOptions::default()
        },
    )
    .unwrap()
    .unwrap();
    assert!(short.truncated);
    assert!(short.spans.len() < 7);
    let small = assemble(
        &st,
        7,
        &TraceOptions {
            max_spans: 3,
            ..TraceOptions::default()
        },
    )
    .unwrap()
    .unwrap();
    assert!(small.truncated && small.spans.len() <= 3);
    // A narrow window misses the gateway's request (it started earlier).
    let narrow = assemble(
        &st,
        7,
        &TraceOptions {
            window_us: 2_000,
            ..TraceOptions::default()
        },
    )
    .unwrap()
    .unwrap();
    assert!(narrow.spans.iter().all(|n| n.span.id != 1));
    assert_eq!(
        assemble(&st, 12345, &TraceOptions::default()).unwrap(),
        None
    );
    let _ = std::fs::remove_dir_all(&dir);
}
