//! The assembly and pairing rules, driven by synthetic events.

use super::*;
use causeway_model::{Comm, FiveTuple, L4Protocol, SocketClose, SocketRole, Syscall};

const CLIENT: &str = "127.0.0.1:40000";
const SERVER: &str = "127.0.0.1:8080";

struct Feed {
    p: Pipeline,
    spans: Vec<Span>,
    now: u64,
    seq: [u32; 2],
}

impl Feed {
    fn new() -> Feed {
        Feed::with(PipelineConfig::default())
    }
    fn with(config: PipelineConfig) -> Feed {
        Feed {
            p: Pipeline::new(config, WallClock::identity()),
            spans: Vec::new(),
            now: 1_000_000_000,
            seq: [1000, 5000],
        }
    }

    /// One syscall on socket 1 seen in the *server* process.
    fn server(&mut self, dir: Direction, total: usize, payload: &[u8]) {
        self.event(1, dir, total, payload, SERVER, CLIENT);
    }

    /// One syscall on socket 2 seen in the *client* process.
    fn client(&mut self, dir: Direction, total: usize, payload: &[u8]) {
        self.event(2, dir, total, payload, CLIENT, SERVER);
    }

    fn event(&mut self, sock: u64, dir: Direction, total: usize, payload: &[u8], l: &str, r: &str) {
        self.now += 1000;
        let seq = &mut self.seq[dir_index(dir)];
        let e = DataEvent {
            pid: 10,
            tid: 11,
            comm: Comm::from_str_lossy("srv"),
            socket_id: sock,
            role: SocketRole::Unknown,
            tuple: FiveTuple {
                l4: L4Protocol::Tcp,
                local: l.parse().unwrap(),
                remote: r.parse().unwrap(),
            },
            tcp_seq: *seq,
            direction: dir,
            enter_ns: self.now,
            exit_ns: self.now + 10,
            syscall_trace_id: 77,
            syscall: Syscall::Read,
            fd: 3,
            total_len: total as u32,
            payload,
            is_tls: false,
            coroutine_id: 0,
        };
        *seq = seq.wrapping_add(total as u32);
        self.p.on_event(SocketEvent::Data(e), &mut self.spans);
    }

    fn close(&mut self, sock: u64) {
        let c = SocketClose {
            pid: 10,
            socket_id: sock,
            ts_ns: self.now,
        };
        self.p.on_event(SocketEvent::Close(c), &mut self.spans);
    }

    fn tick_after(&mut self, d: Duration) {
        self.now += d.as_nanos() as u64;
        self.p.tick(self.now, &mut self.spans);
    }
}

impl SpanSink for Vec<Span> {
    fn on_span(&mut self, span: Span) {
        self.push(span)
    }
}

const GET: &[u8] = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
const OK5: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

#[test]
fn keep_alive_requests_pair_in_order() {
    let mut f = Feed::new();
    for path in ["/a", "/b", "/c"] {
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        f.server(Direction::Ingress, req.len(), req.as_bytes());
        f.server(Direction::Egress, OK5.len(), OK5);
    }
    let paths: Vec<_> = f
        .spans
        .iter()
        .map(|s| s.request_resource.as_str())
        .collect();
    assert_eq!(paths, ["/a", "/b", "/c"]);
    let s = &f.spans[0];
    assert_eq!(s.observation_point, ObservationPoint::Server);
    assert_eq!(s.src_port, 40000, "src is the client");
    assert_eq!(s.dst_port, 8080);
    assert_eq!(s.response_code, Some(200));
    assert_eq!(s.request_length, GET.len() as u64);
    assert_eq!(s.response_length, OK5.len() as u64);
    assert_eq!(s.req_tcp_seq, 1000);
    assert_eq!(s.resp_tcp_seq, 5000);
}

#[test]
fn client_side_span_has_client_observation_point() {
    let mut f = Feed::new();
    f.client(Direction::Egress, GET.len(), GET);
    f.client(Direction::Ingress, OK5.len(), OK5);
    assert_eq!(f.spans.len(), 1);
    assert_eq!(f.spans[0].observation_point, ObservationPoint::Client);
    assert_eq!(f.spans[0].src_port, 40000);
}

#[test]
fn pipelined_requests_in_one_syscall() {
    let mut f = Feed::new();
    let two = [GET, b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n".as_slice()].concat();
    f.client(Direction::Egress, two.len(), &two);
    let resp2 = [OK5, OK5].concat();
    f.client(Direction::Ingress, resp2.len(), &resp2);
    assert_eq!(f.spans.len(), 2);
    assert_eq!(f.spans[1].request_resource, "/b");
    // Feed numbers egress from 5000 and ingress from 1000.
    assert_eq!(f.spans[1].req_tcp_seq, 5000 + GET.len() as u32);
    assert_eq!(f.spans[1].resp_tcp_seq, 1000 + OK5.len() as u32);
}

#[test]
fn body_over_the_cap_is_counted_not_parsed() {
    let mut f = Feed::new();
    let head = b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n";
    let total = head.len() + 5000;
    // The capture holds only the first 64 bytes; the rest arrives later.
    let mut first = head.to_vec();
    first.resize(64, b'z');
    f.client(Direction::Egress, 2000, &first);
    f.client(Direction::Egress, total - 2000, b"zzzz");
    f.client(Direction::Ingress, OK5.len(), OK5);
    assert_eq!(f.spans.len(), 1);
    assert_eq!(f.spans[0].request_length, total as u64);
    assert_eq!(f.spans[0].request_type, "POST");
}

#[test]
fn response_split_over_syscalls() {
    let mut f = Feed::new();
    f.server(Direction::Ingress, GET.len(), GET);
    let head = b"HTTP/1.1 404 Not Found\r\nContent-Length: 100\r\n\r\n";
    f.server(Direction::Egress, head.len(), head);
    assert!(f.spans.is_empty(), "span waits for the whole response");
    f.server(Direction::Egress, 100, &[b'x'; 100]);
    assert_eq!(f.spans.len(), 1);
    assert_eq!(f.spans[0].response_status, ResponseStatus::ClientError);
    assert_eq!(f.spans[0].response_length, head.len() as u64 + 100);
}

#[test]
fn expect_continue_keeps_the_request_open() {
    let mut f = Feed::new();
    let head = b"PUT /f HTTP/1.1\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n";
    f.client(Direction::Egress, head.len(), head);
    let cont = b"HTTP/1.1 100 Continue\r\n\r\n";
    f.client(Direction::Ingress, cont.len(), cont);
    f.client(Direction::Egress, 10, b"0123456789");
    let created = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
    f.client(Direction::Ingress, created.len(), created);
    assert_eq!(f.spans.len(), 1);
    assert_eq!(f.spans[0].response_code, Some(201));
    assert_eq!(f.spans[0].request_length, head.len() as u64 + 10);
    assert_eq!(f.p.stats().interim_responses, 1);
}

#[test]
fn head_response_has_no_body() {
    let mut f = Feed::new();
    let req = b"HEAD / HTTP/1.1\r\n\r\n";
    f.client(Direction::Egress, req.len(), req);
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 612\r\n\r\n";
    f.client(Direction::Ingress, resp.len(), resp);
    assert_eq!(f.spans.len(), 1, "complete without waiting for 612 bytes");
}

#[test]
fn chunked_response_ends_at_last_chunk() {
    let mut f = Feed::new();
    f.client(Direction::Egress, GET.len(), GET);
    let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    f.client(Direction::Ingress, head.len(), head);
    f.client(Direction::Ingress, 10, b"5\r\nhello\r\n");
    assert!(f.spans.is_empty());
    f.client(Direction::Ingress, 5, b"0\r\n\r\n");
    assert_eq!(f.spans.len(), 1);
    assert_eq!(f.spans[0].response_length, head.len() as u64 + 15);
}

#[test]
fn close_delimited_response_ends_on_idle_or_close() {
    let mut f = Feed::new();
    f.client(Direction::Egress, GET.len(), GET);
    let head = b"HTTP/1.0 200 OK\r\n\r\nbody...";
    f.client(Direction::Ingress, head.len(), head);
    assert!(f.spans.is_empty());
    f.tick_after(Duration::from_secs(1));
    assert_eq!(f.spans.len(), 1);
    assert_eq!(f.spans[0].response_status, ResponseStatus::Ok);

    f.client(Direction::Egress, GET.len(), GET);
    f.client(Direction::Ingress, head.len(), head);
    f.close(2);
    assert_eq!(f.spans.len(), 2);
}

#[test]
fn unanswered_request_times_out() {
    let mut f = Feed::with(PipelineConfig {
        request_timeout: Duration::from_secs(2),
        ..PipelineConfig::default()
    });
    f.server(Direction::Ingress, GET.len(), GET);
    f.tick_after(Duration::from_secs(1));
    assert!(f.spans.is_empty());
    f.tick_after(Duration::from_secs(2));
    assert_eq!(f.spans.len(), 1);
    assert_eq!(f.spans[0].response_status, ResponseStatus::Timeout);
    assert_eq!(f.spans[0].response_code, None);
    assert_eq!(f.p.stats().timeouts, 1);
}

#[test]
fn orphan_response_and_garbage_are_counted() {
    let mut f = Feed::new();
    f.client(Direction::Ingress, OK5.len(), OK5);
    // It may yet meet a request reported late; past the idle window, not.
    assert_eq!(f.p.stats().orphan_responses, 0);
    f.tick_after(Duration::from_secs(1));
    assert_eq!(f.p.stats().orphan_responses, 1);
    f.client(Direction::Egress, 4, b"\x00\x01\x02\x03");
    assert_eq!(f.p.stats().unrecognised, 1);
    // A request line that infers as HTTP but breaks the grammar.
    f.client(Direction::Egress, 20, b"GET / HTTP/9.Z\r\n\r\n\r\n");
    assert_eq!(f.p.stats().parse_errors, 1);
    assert!(f.spans.is_empty());
}

#[test]
fn sockets_speaking_nothing_known_go_opaque() {
    let mut f = Feed::new();
    for _ in 0..20 {
        f.client(Direction::Egress, 4, b"\x16\x03\x01\x00");
        f.client(Direction::Ingress, 4, b"\x16\x03\x03\x00");
    }
    assert_eq!(f.p.stats().unrecognised, 8, "stops trying after 8");
}

#[test]
fn filter_drops_other_ports() {
    let mut f = Feed::with(PipelineConfig {
        filter: EventFilter {
            port: Some(9999),
            ..EventFilter::default()
        },
        ..PipelineConfig::default()
    });
    f.client(Direction::Egress, GET.len(), GET);
    f.client(Direction::Ingress, OK5.len(), OK5);
    assert!(f.spans.is_empty());
    assert_eq!(f.p.stats().data_events, 0);
}

#[test]
fn idle_sockets_are_forgotten() {
    let mut f = Feed::new();
    f.client(Direction::Egress, GET.len(), GET);
    f.client(Direction::Ingress, OK5.len(), OK5);
    assert_eq!(f.p.sockets(), 1);
    f.tick_after(Duration::from_secs(301));
    assert_eq!(f.p.sockets(), 0);
}

#[test]
fn response_short_of_its_length_is_not_a_span() {
    let mut f = Feed::with(PipelineConfig {
        request_timeout: Duration::from_secs(5),
        ..PipelineConfig::default()
    });
    f.client(Direction::Egress, GET.len(), GET);
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 600\r\n\r\n";
    // The client read the head, then stopped reading (wrk at its deadline).
    f.client(Direction::Ingress, head.len(), head);
    f.tick_after(Duration::from_secs(1));
    assert!(f.spans.is_empty(), "no ok span for a body never received");
    f.tick_after(Duration::from_secs(5));
    assert_eq!(f.spans.len(), 1);
    assert_eq!(f.spans[0].response_status, ResponseStatus::Timeout);
}

/// A PostgreSQL frame: type byte, big-endian length counting itself, body.
fn pg_frame(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut f = vec![ty];
    f.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    f.extend_from_slice(body);
    f
}

#[test]
fn database_chosen_at_startup_is_the_domain_of_later_spans() {
    let mut f = Feed::new();
    let params = b"user\0app\0database\0shop\0\0";
    let mut startup = (8 + params.len() as u32).to_be_bytes().to_vec();
    startup.extend_from_slice(&196608u32.to_be_bytes());
    startup.extend_from_slice(params);
    f.client(Direction::Egress, startup.len(), &startup);
    let ready = pg_frame(b'Z', b"I");
    let auth_ok = [pg_frame(b'R', &0u32.to_be_bytes()), ready.clone()].concat();
    f.client(Direction::Ingress, auth_ok.len(), &auth_ok);
    let query = pg_frame(b'Q', b"SELECT 1\0");
    f.client(Direction::Egress, query.len(), &query);
    let done = [pg_frame(b'C', b"SELECT 1\0"), ready].concat();
    f.client(Direction::Ingress, done.len(), &done);
    assert_eq!(f.spans.len(), 2, "{:#?}", f.spans);
    assert_eq!(f.spans[0].protocol, L7Protocol::Postgresql);
    assert_eq!(f.spans[0].request_type, "STARTUP");
    assert_eq!(f.spans[1].request_type, "Query");
    assert_eq!(f.spans[1].request_resource, "SELECT 1");
    assert_eq!(f.spans[1].request_domain, "shop");
    assert_eq!(f.spans[1].response_status, ResponseStatus::Ok);
}

#[test]
fn redis_pipelined_commands_pair_in_order() {
    let mut f = Feed::new();
    let cmds = b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n";
    f.client(Direction::Egress, cmds.len(), cmds);
    let replies = b"$1\r\nx\r\n-WRONGTYPE Operation against a key\r\n";
    f.client(Direction::Ingress, replies.len(), replies);
    assert_eq!(f.spans.len(), 2);
    assert_eq!(f.spans[0].request_resource, "a");
    assert_eq!(f.spans[1].request_resource, "b");
    assert_eq!(f.spans[1].response_status, ResponseStatus::ClientError);
    assert!(f.spans[1].exception.starts_with("WRONGTYPE"));
}

#[test]
fn head_split_after_a_four_byte_packet_header_is_parsed_whole() {
    let mut f = Feed::new();
    // The server's greeting fixes the protocol; MariaDB then reads each
    // command's 4-byte header and its body in two syscalls.
    let mut greeting = vec![0u8; 4];
    let body = b"\x0a11.0.0-MariaDB\x00\x01\x00\x00\x00abcdefgh\x00\xff\xf7\x08\x02\x00\xff\x81\x15\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00ijklmnopqrst\x00mysql_native_password\x00";
    greeting[..3].copy_from_slice(&(body.len() as u32).to_le_bytes()[..3]);
    greeting.extend_from_slice(body);
    f.server(Direction::Egress, greeting.len(), &greeting);
    let sql = b"\x03SELECT 1";
    let header = [sql.len() as u8, 0, 0, 0];
    f.server(Direction::Ingress, 4, &header);
    f.server(Direction::Ingress, sql.len(), sql);
    let ok = b"\x07\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00";
    f.server(Direction::Egress, ok.len(), ok);
    assert_eq!(f.spans.len(), 1, "{:?} {:#?}", f.p.stats(), f.spans);
    assert_eq!(f.spans[0].protocol, L7Protocol::Mysql);
    assert_eq!(f.spans[0].request_type, "COM_QUERY");
    assert_eq!(f.spans[0].request_resource, "SELECT 1");
    assert_eq!(f.spans[0].request_length, 4 + sql.len() as u64);
    assert_eq!(
        f.spans[0].req_tcp_seq, 1000,
        "the message starts at the header"
    );
}

#[test]
fn port_override_speaks_for_bytes_inference_leaves_alone() {
    // `QUIT` is left out of Redis inference (SMTP and FTP say it too).
    let mut f = Feed::new();
    f.client(Direction::Egress, 6, b"QUIT\r\n");
    f.client(Direction::Ingress, 5, b"+OK\r\n");
    f.close(2);
    assert!(f.spans.is_empty());
    let mut f = Feed::with(PipelineConfig {
        port_protocols: vec![(8080, L7Protocol::Redis)],
        ..PipelineConfig::default()
    });
    f.client(Direction::Egress, 6, b"QUIT\r\n");
    f.client(Direction::Ingress, 5, b"+OK\r\n");
    // On the server's socket the port is the local one: ingress asks.
    f.server(Direction::Ingress, 6, b"QUIT\r\n");
    f.server(Direction::Egress, 5, b"+OK\r\n");
    f.close(2);
    f.close(1);
    let got: Vec<_> = f
        .spans
        .iter()
        .map(|s| {
            (
                s.protocol,
                s.observation_point,
                s.request_type.as_str(),
                s.endpoint.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (L7Protocol::Redis, ObservationPoint::Client, "QUIT", "QUIT"),
            (L7Protocol::Redis, ObservationPoint::Server, "QUIT", "QUIT"),
        ]
    );
}

#[test]
fn parse_errors_are_counted_by_protocol() {
    let mut f = Feed::new();
    f.client(Direction::Egress, 18, b"GET / HTTP/1.1\r\n\r\n");
    // An HTTP response start line with a broken header block.
    f.client(
        Direction::Ingress,
        30,
        b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
    );
    assert_eq!(f.p.stats().parse_errors, 1);
    assert_eq!(
        f.p.stats().parse_errors_by_protocol.get(&L7Protocol::Http),
        Some(&1)
    );
}

#[test]
fn spans_carry_an_endpoint() {
    let mut f = Feed::new();
    f.client(Direction::Egress, 31, b"GET /users/42?x=1 HTTP/1.1\r\n\r\n");
    f.client(
        Direction::Ingress,
        38,
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(f.spans[0].endpoint, "/users/{id}");
    assert_eq!(f.spans[0].request_id, None);
}

#[test]
fn the_window_expires_a_slot_at_a_time() {
    let mut f = Feed::with(PipelineConfig {
        request_timeout: Duration::from_secs(3),
        pairing_slot: Duration::from_secs(1),
        ..PipelineConfig::default()
    });
    f.server(Direction::Ingress, GET.len(), GET);
    f.tick_after(Duration::from_millis(1500));
    f.client(Direction::Egress, GET.len(), GET);
    // 3 s after the first request: within its slot's grace.
    f.tick_after(Duration::from_millis(1500));
    assert!(f.spans.is_empty());
    f.tick_after(Duration::from_millis(1100));
    assert_eq!(f.spans.len(), 1, "first request out of the window");
    assert_eq!(f.spans[0].observation_point, ObservationPoint::Server);
    f.tick_after(Duration::from_millis(1500));
    assert_eq!(f.spans.len(), 2);
    assert!(f
        .spans
        .iter()
        .all(|s| s.response_status == ResponseStatus::Timeout));
}

#[test]
fn the_pending_bound_drops_the_oldest_slot_early() {
    let mut f = Feed::with(PipelineConfig {
        max_pending_total: 1,
        ..PipelineConfig::default()
    });
    f.server(Direction::Ingress, GET.len(), GET);
    f.tick_after(Duration::from_secs(2));
    f.client(Direction::Egress, GET.len(), GET);
    f.tick_after(Duration::from_millis(200));
    // Two slot entries over a bound of one: the older slot goes, uncounted
    // as a timeout, counted as dropped.
    assert_eq!(f.p.stats().pending_dropped, 1);
    assert!(f.spans.is_empty());
    f.client(
        Direction::Ingress,
        38,
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(f.spans.len(), 1);
    assert_eq!(f.spans[0].observation_point, ObservationPoint::Client);
}

#[test]
fn a_request_whose_first_byte_is_read_alone() {
    // Go's net/http reads one byte of the next keep-alive request in a
    // background goroutine, the rest in the connection's own.
    let mut f = Feed::new();
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    f.server(Direction::Ingress, GET.len(), GET);
    f.server(Direction::Egress, resp.len(), resp);
    f.server(Direction::Ingress, 1, &GET[..1]);
    f.server(Direction::Ingress, GET.len() - 1, &GET[1..]);
    f.server(Direction::Egress, resp.len(), resp);
    assert_eq!(f.spans.len(), 2, "{:#?}", f.spans);
    assert_eq!(f.spans[1].request_type, "GET");
    assert_eq!(f.spans[1].request_length, GET.len() as u64);
    assert_eq!(f.p.stats().unrecognised, 0);
}

#[test]
fn a_response_reported_before_its_request_still_pairs() {
    // Library calls are reported at return: the writer of a request may
    // return after the reader of its answer did.
    let mut f = Feed::new();
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    f.now += 1_000_000;
    let sent_at = f.now;
    // The request's bytes left first (its enter time), reported second.
    f.now += 5_000;
    f.client(Direction::Ingress, resp.len(), resp);
    f.now = sent_at;
    f.client(Direction::Egress, GET.len(), GET);
    assert_eq!(f.spans.len(), 1, "{:#?}", f.spans);
    assert_eq!(f.spans[0].response_code, Some(200));
    assert_eq!(f.p.stats().orphan_responses, 0);
}

#[test]
fn the_rest_of_a_head_may_come_after_the_other_side_spoke() {
    // The first byte of the next request is reported before the previous
    // response (written by another goroutine that returned later).
    let mut f = Feed::new();
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    f.server(Direction::Ingress, GET.len(), GET);
    f.server(Direction::Ingress, 1, &GET[..1]);
    f.server(Direction::Egress, resp.len(), resp);
    f.server(Direction::Ingress, GET.len() - 1, &GET[1..]);
    f.server(Direction::Egress, resp.len(), resp);
    let got: Vec<_> = f
        .spans
        .iter()
        .map(|s| (s.request_type.as_str(), s.request_length))
        .collect();
    assert_eq!(got, [("GET", GET.len() as u64), ("GET", GET.len() as u64)]);
}

#[test]
fn a_dns_server_reading_the_tcp_length_a_byte_at_a_time() {
    // dnsmasq reads the 2-byte length prefix one byte per read(2).
    let q = include_bytes!("../../../causeway-l7/tests/fixtures/dns/tcp_a.req");
    let a = include_bytes!("../../../causeway-l7/tests/fixtures/dns/tcp_a.resp");
    let mut f = Feed::new();
    f.server(Direction::Ingress, 1, &q[..1]);
    f.server(Direction::Ingress, 1, &q[1..2]);
    f.server(Direction::Ingress, q.len() - 2, &q[2..]);
    f.server(Direction::Egress, a.len(), a);
    assert_eq!(f.spans.len(), 1, "{:#?}", f.p.stats());
    let s = &f.spans[0];
    assert_eq!(
        (s.protocol, s.request_type.as_str()),
        (L7Protocol::Dns, "A")
    );
    assert_eq!(s.request_resource, "www.example.test");
    assert_eq!(
        (s.request_length, s.response_length),
        (q.len() as u64, a.len() as u64)
    );
    assert_eq!(s.result, "10.1.2.3");
    assert_eq!(f.p.stats().unrecognised, 0);
}

/// The chunks of an MQTT fixture (`.rec`: direction `C`/`S`, connection
/// byte, big-endian u32 length, bytes), client-sent ones first in each pair.
fn mqtt_records(mut b: &[u8]) -> Vec<(bool, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 6 {
        let len = u32::from_be_bytes([b[2], b[3], b[4], b[5]]) as usize;
        out.push((b[0] == b'C', &b[6..6 + len]));
        b = &b[6 + len..];
    }
    out
}

#[test]
fn an_mqtt_broker_reading_the_fixed_header_a_byte_at_a_time() {
    // mosquitto reads a packet's type byte and each remaining-length byte
    // in reads of their own, then the rest; the version CONNECT names
    // decides how the CONNACK and PUBACK reason codes are read.
    let rec = include_bytes!("../../../causeway-l7/tests/fixtures/mqtt/v5_pub_qos1.rec");
    let mut f = Feed::new();
    for (from_client, bytes) in mqtt_records(rec) {
        if from_client {
            // Type byte, one length byte, the rest.
            let mut at = 0;
            while at < bytes.len() {
                let rest = &bytes[at..];
                let len = rest[1] as usize + 2;
                f.server(Direction::Ingress, 1, &rest[..1]);
                f.server(Direction::Ingress, 1, &rest[1..2]);
                f.server(Direction::Ingress, len - 2, &rest[2..len]);
                at += len;
            }
        } else {
            f.server(Direction::Egress, bytes.len(), bytes);
        }
    }
    let got: Vec<_> = f
        .spans
        .iter()
        .map(|s| {
            (
                s.request_type.as_str(),
                s.request_resource.as_str(),
                s.request_id,
                s.version.as_str(),
                s.response_status,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("CONNECT", "", None, "5", ResponseStatus::Ok),
            ("PUBLISH", "sensors/temp", Some(1), "5", ResponseStatus::Ok),
        ],
        "{:#?}",
        f.p.stats()
    );
    let st = f.p.stats();
    assert_eq!((st.parse_errors, st.unrecognised), (0, 0));
    // The client's DISCONNECT answers nothing and waits for nothing.
    assert_eq!(st.unpaired_messages, 1);
}

/// Kafka Metadata v9 requests (flexible) for topic `nope`, correlation ids 5
/// and 6, client id `cli`; and their responses: 5 says
/// UNKNOWN_TOPIC_OR_PARTITION, 6 no error.
const KAFKA_REQ_5: &[u8] = b"\x00\x00\x00\x19\x00\x03\x00\x09\x00\x00\x00\x05\x00\x03\x63\x6c\x69\x00\x02\x05\x6e\x6f\x70\x65\x00\x01\x00\x00\x00";
const KAFKA_REQ_6: &[u8] = b"\x00\x00\x00\x19\x00\x03\x00\x09\x00\x00\x00\x06\x00\x03\x63\x6c\x69\x00\x02\x05\x6e\x6f\x70\x65\x00\x01\x00\x00\x00";
const KAFKA_RESP_5: &[u8] = b"\x00\x00\x00\x23\x00\x00\x00\x05\x00\x00\x00\x00\x00\x01\x00\xff\xff\xff\xff\x02\x00\x03\x05\x6e\x6f\x70\x65\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
const KAFKA_RESP_6: &[u8] = b"\x00\x00\x00\x23\x00\x00\x00\x06\x00\x00\x00\x00\x00\x01\x00\xff\xff\xff\xff\x02\x00\x00\x05\x6e\x6f\x70\x65\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";

/// Type, domain, resource, request id, code, exception and status.
type KafkaFacts = (
    String,
    String,
    String,
    Option<u64>,
    Option<i32>,
    String,
    ResponseStatus,
);

fn kafka_facts(spans: &[Span]) -> Vec<KafkaFacts> {
    spans
        .iter()
        .map(|s| {
            (
                s.request_type.clone(),
                s.request_domain.clone(),
                s.request_resource.clone(),
                s.request_id,
                s.response_code,
                s.exception.clone(),
                s.response_status,
            )
        })
        .collect()
}

#[test]
fn kafka_broker_reads_lengths_apart_and_codes_need_the_request_api() {
    // A broker reads each request's 4-byte length, then the rest (tansu,
    // the Java broker), two requests before answering either.
    let mut f = Feed::new();
    for req in [KAFKA_REQ_5, KAFKA_REQ_6] {
        f.server(Direction::Ingress, 4, &req[..4]);
        f.server(Direction::Ingress, req.len() - 4, &req[4..]);
    }
    f.server(Direction::Egress, KAFKA_RESP_5.len(), KAFKA_RESP_5);
    f.server(Direction::Egress, KAFKA_RESP_6.len(), KAFKA_RESP_6);
    let m = |s: &str| s.to_owned();
    assert_eq!(
        kafka_facts(&f.spans),
        vec![
            (
                m("Metadata"),
                m("cli"),
                m("nope"),
                Some(5),
                Some(3),
                m("UNKNOWN_TOPIC_OR_PARTITION"),
                ResponseStatus::ClientError
            ),
            (
                m("Metadata"),
                m("cli"),
                m("nope"),
                Some(6),
                Some(0),
                m(""),
                ResponseStatus::Ok
            ),
        ]
    );
    assert!(f
        .spans
        .iter()
        .all(|s| s.protocol == L7Protocol::Kafka && s.version == "9"));
    assert_eq!(f.spans[0].request_length, KAFKA_REQ_5.len() as u64);
    assert_eq!(f.spans[0].response_length, KAFKA_RESP_5.len() as u64);
    // Answered requests leave nothing behind.
    assert!(f.p.sockets.values().all(|s| s.kafka_requests.is_empty()));
}

#[test]
fn kafka_client_pairs_by_correlation_id() {
    // A client pipelines two requests in one write; the answers arrive in
    // one read, the second first.
    let mut f = Feed::new();
    let reqs = [KAFKA_REQ_5, KAFKA_REQ_6].concat();
    f.client(Direction::Egress, reqs.len(), &reqs);
    let resps = [KAFKA_RESP_6, KAFKA_RESP_5].concat();
    f.client(Direction::Ingress, resps.len(), &resps);
    let mut facts = kafka_facts(&f.spans);
    facts.sort_by_key(|x| x.3);
    assert_eq!(facts.len(), 2);
    assert_eq!((facts[0].3, facts[0].4), (Some(5), Some(3)));
    assert_eq!((facts[1].3, facts[1].4), (Some(6), Some(0)));
    assert!(f
        .spans
        .iter()
        .all(|s| s.observation_point == ObservationPoint::Client));
}

#[test]
fn kafka_produce_without_acks_is_unpaired() {
    // Produce v3, acks 0, topic `t`: the broker answers nothing.
    const PRODUCE_ACKS_0: &[u8] = b"\x00\x00\x00\x29\x00\x00\x00\x03\x00\x00\x00\x09\x00\x01\x70\xff\xff\x00\x00\x00\x00\x03\xe8\x00\x00\x00\x01\x00\x01\x74\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x03\x61\x62\x63";
    let mut f = Feed::new();
    f.client(Direction::Egress, PRODUCE_ACKS_0.len(), PRODUCE_ACKS_0);
    f.client(Direction::Egress, KAFKA_REQ_5.len(), KAFKA_REQ_5);
    f.client(Direction::Ingress, KAFKA_RESP_5.len(), KAFKA_RESP_5);
    f.close(2);
    assert_eq!(f.spans.len(), 1, "{:?}", f.spans);
    assert_eq!(f.spans[0].request_id, Some(5));
    assert_eq!(f.p.stats().unpaired_messages, 1);
    assert_eq!(f.p.stats().timeouts, 0);
}

/// The chunks of a `.rec` recording of causeway-l7's fixtures:
/// (`C` client to server or `S`, bytes).
fn rpc_recording(path: &str) -> Vec<(u8, Vec<u8>)> {
    let p = format!(
        "{}/../causeway-l7/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    let all = std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"));
    let mut b = &all[..];
    let mut out = Vec::new();
    while !b.is_empty() {
        let n = u32::from_be_bytes([b[2], b[3], b[4], b[5]]) as usize;
        out.push((b[0], b[6..6 + n].to_vec()));
        b = &b[6 + n..];
    }
    out
}

/// Feeds a recording as the server process sees it, each chunk one
/// syscall captured up to 1024 bytes.
fn serve_recording(f: &mut Feed, path: &str) {
    for (dir, bytes) in rpc_recording(path) {
        let d = if dir == b'C' {
            Direction::Ingress
        } else {
            Direction::Egress
        };
        f.server(d, bytes.len(), &bytes[..bytes.len().min(1024)]);
    }
}

#[test]
fn dubbo_and_bolt_answers_out_of_order_pair_by_request_id() {
    for (path, protocol) in [
        ("dubbo/concurrent.rec", L7Protocol::Dubbo),
        ("sofarpc/concurrent.rec", L7Protocol::SofaRpc),
        ("sofarpc/v2_concurrent.rec", L7Protocol::SofaRpc),
    ] {
        let mut f = Feed::new();
        serve_recording(&mut f, path);
        // Answered 3, 2, 1: spans come out in that order, each with its own.
        let ids: Vec<_> = f.spans.iter().map(|s| s.request_id).collect();
        assert_eq!(ids, [Some(3), Some(2), Some(1)], "{path}");
        for s in &f.spans {
            assert_eq!(s.protocol, protocol);
            assert_eq!(s.request_type, "sleep");
            assert_eq!(s.request_resource, "com.causeway.demo.EchoService:1.0");
            assert_eq!(s.endpoint, "com.causeway.demo.EchoService:1.0/sleep");
            assert_eq!(s.response_status, ResponseStatus::Ok);
            assert!(s.request_length > 0 && s.response_length > 0);
        }
        assert_eq!(f.p.stats().parse_errors, 0, "{path}");
    }
}

#[test]
fn dubbo_and_bolt_big_messages_heartbeats_errors_and_traces() {
    let cases = [
        ("dubbo/big.rec", "echo", Some(20), ""),
        ("sofarpc/big.rec", "echo", Some(0), ""),
        ("dubbo/heartbeat.rec", "heartbeat", Some(20), ""),
        ("sofarpc/v2_heartbeat.rec", "heartbeat", Some(0), ""),
        ("dubbo/fail.rec", "fail", Some(80), "please fail"),
        (
            "sofarpc/fail.rec",
            "fail",
            Some(2),
            "com.alipay.remoting.rpc.exception.RpcServerException: Error: please fail",
        ),
    ];
    for (path, method, code, exception) in cases {
        let mut f = Feed::new();
        serve_recording(&mut f, path);
        assert_eq!(f.spans.len(), 1, "{path}");
        let s = &f.spans[0];
        let recorded = rpc_recording(path);
        let sent = |d| -> u64 {
            recorded
                .iter()
                .filter(|(dir, _)| *dir == d)
                .map(|(_, b)| b.len() as u64)
                .sum()
        };
        assert_eq!(s.request_type, method, "{path}");
        assert_eq!(s.response_code, code, "{path}");
        assert_eq!(s.exception, exception, "{path}");
        assert_eq!(s.request_length, sent(b'C'), "{path}");
        assert_eq!(s.response_length, sent(b'S'), "{path}");
    }
    let mut f = Feed::new();
    serve_recording(&mut f, "sofarpc/sofa_traced.rec");
    assert_eq!(f.spans[0].trace_id, "0a0fe8ec1526806853032100185011");
    assert_eq!(f.spans[0].span_id, "0.1");
    let mut f = Feed::new();
    serve_recording(&mut f, "dubbo/traced.rec");
    assert_eq!(f.spans[0].trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
}

#[test]
fn a_request_timing_out_after_its_client_left_still_names_the_client() {
    let mut f = Feed::with(PipelineConfig {
        request_timeout: Duration::from_secs(2),
        ..PipelineConfig::default()
    });
    // The client asks, the server reads, the client gives up and closes.
    f.client(Direction::Egress, GET.len(), GET);
    f.server(Direction::Ingress, GET.len(), GET);
    f.close(2);
    assert_eq!(f.spans.len(), 1, "the client's side ends at its close");
    assert_eq!(f.spans[0].observation_point, ObservationPoint::Client);
    f.tick_after(Duration::from_secs(4));
    assert_eq!(f.spans.len(), 2);
    let server = &f.spans[1];
    assert_eq!(
        (server.observation_point, server.response_status),
        (ObservationPoint::Server, ResponseStatus::Timeout)
    );
    assert_eq!((server.peer_pid, server.peer_comm.as_str()), (10, "srv"));
    // A pairing window later, the closed socket is forgotten.
    f.tick_after(Duration::from_secs(10));
    assert!(f.p.core.closed_endpoints.is_empty());
    assert!(f.p.core.closed_order.is_empty());
}

#[test]
fn a_udp_servers_clients_name_it_whoever_asked_first() {
    // One unconnected resolver socket answers clients on two ports; each
    // client's span names the resolver's process, and the resolver's
    // spans name each client.
    let q = include_bytes!("../../../causeway-l7/tests/fixtures/dns/a.req");
    let a = include_bytes!("../../../causeway-l7/tests/fixtures/dns/a.resp");
    let mut p = Pipeline::new(PipelineConfig::default(), WallClock::identity());
    let mut spans = Vec::new();
    let mut now = 1_000_000_000;
    let mut send =
        |sock: u64, pid: u32, comm: &str, local: &str, remote: &str, dir, bytes: &[u8]| {
            now += 1000;
            let e = DataEvent {
                pid,
                tid: pid,
                comm: Comm::from_str_lossy(comm),
                socket_id: sock,
                role: SocketRole::Unknown,
                tuple: FiveTuple {
                    l4: L4Protocol::Udp,
                    local: local.parse().unwrap(),
                    remote: remote.parse().unwrap(),
                },
                tcp_seq: 0,
                direction: dir,
                enter_ns: now,
                exit_ns: now + 10,
                syscall_trace_id: u64::from(pid),
                syscall: Syscall::Read,
                fd: 3,
                total_len: bytes.len() as u32,
                payload: bytes,
                is_tls: false,
                coroutine_id: 0,
            };
            p.on_event(SocketEvent::Data(e), &mut spans);
        };
    let dns = "127.0.0.1:5353";
    for (sock, pid, client) in [(2, 20, "127.0.0.1:40001"), (3, 30, "127.0.0.1:40002")] {
        send(sock, pid, "asker", client, dns, Direction::Egress, q);
        send(1, 10, "resolver", dns, client, Direction::Ingress, q);
        send(1, 10, "resolver", dns, client, Direction::Egress, a);
        send(sock, pid, "asker", client, dns, Direction::Ingress, a);
    }
    let named: Vec<_> = spans
        .iter()
        .map(|s| (s.observation_point, s.peer_pid, s.peer_comm.as_str()))
        .collect();
    assert_eq!(
        named,
        [
            (ObservationPoint::Server, 20, "asker"),
            (ObservationPoint::Client, 10, "resolver"),
            (ObservationPoint::Server, 30, "asker"),
            (ObservationPoint::Client, 10, "resolver"),
        ]
    );
    // The resolver's socket closes: its address names nobody any more.
    p.on_event(
        SocketEvent::Close(SocketClose {
            pid: 10,
            socket_id: 1,
            ts_ns: now,
        }),
        &mut spans,
    );
    assert!(!p.core.udp_locals.contains_key(&dns.parse().unwrap()));
    assert_eq!(p.core.udp_locals.len(), 2, "the askers' sockets live on");
}
