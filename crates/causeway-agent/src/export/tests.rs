//! The exporter against a scripted transport.

use super::*;
use causeway_model::{L4Protocol, L7Protocol, ResponseStatus};
use std::sync::atomic::AtomicBool;

fn span(i: u64, op: ObservationPoint, peer: Option<(u32, &str)>) -> Span {
    Span {
        protocol: L7Protocol::Redis,
        version: String::new(),
        observation_point: op,
        pid: 100,
        comm: "redis-cli".into(),
        peer_pid: peer.map_or(0, |p| p.0),
        peer_comm: peer.map_or(String::new(), |p| p.1.to_owned()),
        tid_req: 1,
        tid_resp: 1,
        coroutine_id_req: 0,
        coroutine_id_resp: 0,
        socket_id: 5,
        l4_protocol: L4Protocol::Tcp,
        is_tls: false,
        src_ip: "127.0.0.1".into(),
        src_port: 40000,
        dst_ip: "127.0.0.1".into(),
        dst_port: 6379,
        request_type: "GET".into(),
        request_domain: String::new(),
        request_resource: format!("k{i}"),
        endpoint: "GET".into(),
        request_id: None,
        exception: String::new(),
        result: String::new(),
        user_agent: String::new(),
        response_code: None,
        response_status: ResponseStatus::Ok,
        start_time_us: 1_000_000 + i,
        end_time_us: 1_000_100 + i,
        duration_us: 100,
        request_length: 10,
        response_length: 5,
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

#[test]
fn sides_get_process_and_service_tags() {
    let mut e = Encoder::new("h1");
    let r = e.encode(span(
        0,
        ObservationPoint::Client,
        Some((200, "redis-server")),
    ));
    assert_eq!((r.pid_0, r.pid_1), (100, 200));
    assert_eq!(r.service_0, tag_id(TagKind::Service, "redis-cli"));
    assert_eq!(r.service_1, tag_id(TagKind::Service, "redis-server"));
    assert_eq!(r.process_1, tag_id(TagKind::Process, "redis-server"));
    assert_eq!(
        (r.host_0, r.host_1),
        (tag_id(TagKind::Host, "h1"), tag_id(TagKind::Host, "h1"))
    );
    let tags = e.take_new_tags();
    assert_eq!(tags.len(), 1 + 2 + 2, "{tags:?}");
    // Unknown peer: the server is its address; a loopback peer is on this host.
    let r = e.encode(span(1, ObservationPoint::Client, None));
    assert_eq!(r.pid_1, 0);
    assert_eq!(r.process_1, 0);
    assert_eq!(r.service_1, tag_id(TagKind::Service, "127.0.0.1:6379"));
    assert_eq!(r.host_1, tag_id(TagKind::Host, "h1"));
    let tags = e.take_new_tags();
    assert_eq!(tags.len(), 1, "only the new address: {tags:?}");
    // Seen at the server: the client side is the address.
    let mut s = span(2, ObservationPoint::Server, None);
    s.src_ip = "10.1.2.3".into();
    let r = e.encode(s);
    assert_eq!(r.service_0, tag_id(TagKind::Service, "10.1.2.3"));
    assert_eq!(r.host_0, 0, "not this host");
    assert_eq!(r.service_1, tag_id(TagKind::Service, "redis-cli"));
    // On the wire: no process, no host.
    let r = e.encode(span(3, ObservationPoint::Network, None));
    assert_eq!(
        (r.pid_0, r.pid_1, r.host_0, r.host_1, r.process_0),
        (0, 0, 0, 0, 0)
    );
}

/// A server that can be down, and records what it stored.
#[derive(Clone, Default)]
struct FakeServer {
    down: Arc<AtomicBool>,
    /// Every push that reached the server, acknowledged or not.
    pushes: Arc<AtomicU64>,
    stored: Arc<Mutex<Vec<Batch>>>,
    /// Acknowledgements to lose (the batch is stored, the ack is not seen).
    lose_acks: Arc<AtomicU64>,
    /// Seqs to refuse as malformed.
    refuse: Arc<Mutex<Vec<u64>>>,
}

impl Transport for FakeServer {
    fn push(&mut self, batch: &Batch) -> Result<Ack, PushError> {
        if self.down.load(Relaxed) {
            return Err(PushError::Retry("connection refused".into()));
        }
        self.pushes.fetch_add(1, Relaxed);
        if self.refuse.lock().unwrap().contains(&batch.seq) {
            return Err(PushError::Refused("bad".into()));
        }
        let mut stored = self.stored.lock().unwrap();
        let dup = stored
            .iter()
            .any(|b| b.seq == batch.seq && b.session == batch.session);
        if !dup {
            stored.push(batch.clone());
        }
        if self.lose_acks.load(Relaxed) > 0 {
            self.lose_acks.fetch_sub(1, Relaxed);
            return Err(PushError::Retry("ack lost".into()));
        }
        Ok(Ack {
            seq: batch.seq,
            stored: if dup { 0 } else { batch.spans.len() as u32 },
            duplicate: dup,
        })
    }
}

fn config(batch: usize, buffer: usize) -> ExportConfig {
    ExportConfig {
        agent_id: "a1".into(),
        proc_root: None,
        host: "h1".into(),
        batch_spans: batch,
        buffer_spans: buffer,
        retry_min: Duration::from_millis(5),
        retry_max: Duration::from_millis(20),
        ..ExportConfig::default()
    }
}

fn wait_until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn everything_is_delivered_once_when_the_server_is_up() {
    let server = FakeServer::default();
    let (mut sink, handle) = start(config(100, 10_000), Box::new(server.clone()));
    for i in 0..1050 {
        sink.on_span(span(i, ObservationPoint::Client, None));
    }
    sink.flush();
    drop(sink);
    let stats = handle.finish(Duration::from_secs(10));
    assert_eq!(stats.spans_in.load(Relaxed), 1050);
    assert_eq!(stats.spans_acked.load(Relaxed), 1050);
    assert_eq!(stats.spans_dropped.load(Relaxed), 0);
    let stored = server.stored.lock().unwrap();
    assert_eq!(stored.iter().map(|b| b.spans.len()).sum::<usize>(), 1050);
    let seqs: Vec<u64> = stored.iter().map(|b| b.seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "in order, from 1"
    );
    // Each tag string travels once.
    let mut tags: Vec<(u32, u64)> = stored
        .iter()
        .flat_map(|b| &b.tags)
        .map(|t| (t.kind, t.id))
        .collect();
    let n = tags.len();
    tags.sort_unstable();
    tags.dedup();
    assert_eq!(tags.len(), n);
    assert!(stored[0].tags.iter().any(|t| t.value == "h1"));
}

#[test]
fn a_server_down_is_waited_for_within_the_bound_and_drops_are_exact() {
    let server = FakeServer::default();
    server.down.store(true, Relaxed);
    let (mut sink, handle) = start(config(100, 1000), Box::new(server.clone()));
    // 3000 spans while the server is down: the sender holds 1000 at most.
    for i in 0..3000 {
        sink.on_span(span(i, ObservationPoint::Client, None));
        if i % 100 == 99 {
            sink.flush();
            // Let the sender take each batch (the channel is small).
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let stats = handle.stats.clone();
    wait_until("the sender holds its bound", || {
        stats.spans_held.load(Relaxed) == 1000
    });
    assert!(stats.retries.load(Relaxed) > 0);
    assert_eq!(server.pushes.load(Relaxed), 0);
    server.down.store(false, Relaxed);
    wait_until("delivery", || stats.spans_acked.load(Relaxed) == 1000);
    drop(sink);
    let stats = handle.finish(Duration::from_secs(5));
    let (acked, dropped) = (
        stats.spans_acked.load(Relaxed),
        stats.spans_dropped.load(Relaxed),
    );
    assert_eq!(acked + dropped, 3000, "{}", stats.summary());
    assert_eq!(acked, 1000);
    let stored: usize = server
        .stored
        .lock()
        .unwrap()
        .iter()
        .map(|b| b.spans.len())
        .sum();
    assert_eq!(stored as u64, acked);
}

#[test]
fn a_lost_acknowledgement_is_a_resend_not_a_duplicate() {
    let server = FakeServer::default();
    server.lose_acks.store(1, Relaxed);
    let (mut sink, handle) = start(config(10, 1000), Box::new(server.clone()));
    for i in 0..10 {
        sink.on_span(span(i, ObservationPoint::Client, None));
    }
    drop(sink);
    let stats = handle.finish(Duration::from_secs(5));
    assert_eq!(stats.spans_acked.load(Relaxed), 10);
    assert_eq!(stats.batches_duplicate.load(Relaxed), 1);
    let stored = server.stored.lock().unwrap();
    assert_eq!(stored.iter().filter(|b| !b.spans.is_empty()).count(), 1);
    // The metric rows of the stop, once: a node and an edge row per window.
    let rows: Vec<&MetricRow> = stored.iter().flat_map(|b| &b.metrics).collect();
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert_eq!(stats.metric_rows_acked.load(Relaxed), 4);
}

#[test]
fn metric_rows_go_once_with_the_batches_and_outlive_dropped_spans() {
    let server = FakeServer::default();
    server.down.store(true, Relaxed);
    let (mut sink, handle) = start(config(100, 150), Box::new(server.clone()));
    // 500 requests seen at both ends while the server is down: the sender
    // holds 150 spans at most, but every metric row.
    for i in 0..500 {
        sink.on_span(span(
            i,
            ObservationPoint::Client,
            Some((200, "redis-server")),
        ));
        let mut s = span(i, ObservationPoint::Server, Some((100, "redis-cli")));
        s.pid = 200;
        s.comm = "redis-server".into();
        s.response_status = if i % 50 == 0 {
            ResponseStatus::ServerError
        } else {
            ResponseStatus::Ok
        };
        sink.on_span(s);
        if i % 50 == 49 {
            sink.flush();
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let stats = handle.stats.clone();
    wait_until("the sender holds its bound", || {
        stats.spans_held.load(Relaxed) == 100
    });
    server.lose_acks.store(2, Relaxed);
    server.down.store(false, Relaxed);
    drop(sink);
    let stats = handle.finish(Duration::from_secs(5));
    assert!(
        stats.spans_dropped.load(Relaxed) >= 900,
        "{}",
        stats.summary()
    );
    let made = stats.metric_rows_in.load(Relaxed);
    assert!(made > 0);
    assert_eq!(
        (
            stats.metric_rows_acked.load(Relaxed),
            stats.metric_rows_dropped.load(Relaxed)
        ),
        (made, 0),
        "{}",
        stats.metrics_summary()
    );
    let stored = server.stored.lock().unwrap();
    let rows: Vec<&MetricRow> = stored.iter().flat_map(|b| &b.metrics).collect();
    assert_eq!(rows.len() as u64, made, "stored once, resends and all");
    let server_id = tag_id(TagKind::Service, "redis-server");
    let endpoint = tag_id(TagKind::Endpoint, "GET");
    for g in [1, 60] {
        let sum = |op: ObservationPoint, f: fn(&MetricRow) -> u64| -> u64 {
            rows.iter()
                .filter(|r| r.granularity_s == g && r.kind == 1)
                .filter(|r| r.observation_point == op.code())
                .map(|r| f(r))
                .sum()
        };
        assert_eq!(sum(ObservationPoint::Server, |r| r.requests), 500);
        assert_eq!(sum(ObservationPoint::Server, |r| r.server_errors), 10);
        assert_eq!(sum(ObservationPoint::Client, |r| r.requests), 500);
        assert!(rows
            .iter()
            .filter(|r| r.granularity_s == g && r.kind == 1 && r.observation_point == 1)
            .all(|r| r.service_1 == server_id && r.endpoint == endpoint && r.service_0 == 0));
    }
    // The endpoint's name travelled as a tag.
    assert!(stored
        .iter()
        .flat_map(|b| &b.tags)
        .any(|t| t.kind == TagKind::Endpoint.code() && t.id == endpoint && t.value == "GET"));
}

#[test]
fn a_refused_batch_is_counted_and_its_tags_go_on() {
    let server = FakeServer::default();
    server.refuse.lock().unwrap().push(1);
    let (mut sink, handle) = start(config(5, 1000), Box::new(server.clone()));
    for i in 0..5 {
        sink.on_span(span(i, ObservationPoint::Client, None));
    }
    sink.flush();
    let stats = handle.stats.clone();
    wait_until("refusal", || stats.spans_refused.load(Relaxed) == 5);
    for i in 5..10 {
        sink.on_span(span(i, ObservationPoint::Client, None));
    }
    drop(sink);
    let stats = handle.finish(Duration::from_secs(5));
    assert_eq!(stats.spans_acked.load(Relaxed), 5);
    let stored = server.stored.lock().unwrap();
    assert!(
        stored[0].tags.iter().any(|t| t.value == "h1"),
        "the host's name went on"
    );
}

#[test]
fn processes_are_named_by_their_main_thread() {
    // A /proc with process 100 named `python3` (its thread that did the
    // I/O is `event_engine`) and process 200 gone.
    let root = std::env::temp_dir().join(format!("causeway-proc-{}", std::process::id()));
    std::fs::create_dir_all(root.join("100")).unwrap();
    std::fs::write(root.join("100/comm"), "python3\n").unwrap();
    let mut e = Encoder::new("h1").with_process_names(ProcessNames::new(&root));
    let mut s = span(0, ObservationPoint::Client, Some((200, "redis-server")));
    s.comm = "event_engine".into();
    let r = e.encode(s);
    assert_eq!(r.process_0, tag_id(TagKind::Process, "python3"));
    assert_eq!(r.service_0, tag_id(TagKind::Service, "python3"));
    // Unreadable: the thread's name stands.
    assert_eq!(r.process_1, tag_id(TagKind::Process, "redis-server"));
    let _ = std::fs::remove_dir_all(&root);
}
