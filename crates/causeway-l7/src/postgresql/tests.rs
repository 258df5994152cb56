//! Unit tests: recorded PostgreSQL 15 traffic (see
//! `tests/fixtures/postgresql/record.py`), replayed through a copy of the
//! agent's assembly and pairing rules, plus hand-made frames for what the
//! recordings cannot show, truncation, garbage and other protocols' bytes.

use super::*;
use std::collections::VecDeque;

use MessageKind::{Request, Response};

/// One recorded syscall-sized chunk.
struct Rec<'a> {
    /// From the client.
    client: bool,
    conn: u8,
    data: &'a [u8],
}

/// Reads a `.rec` file: direction byte, connection byte, u32 length, bytes.
fn records(mut b: &[u8]) -> Vec<Rec<'_>> {
    let mut out = Vec::new();
    while let [d, conn, l0, l1, l2, l3, rest @ ..] = b {
        let n = u32::from_be_bytes([*l0, *l1, *l2, *l3]) as usize;
        assert!(rest.len() >= n, "truncated fixture");
        out.push(Rec {
            client: *d == b'C',
            conn: *conn,
            data: &rest[..n],
        });
        b = &rest[n..];
    }
    assert!(b.is_empty(), "trailing bytes in fixture");
    out
}

const SIMPLE: &[u8] = include_bytes!("../../tests/fixtures/postgresql/simple.rec");
const FATAL: &[u8] = include_bytes!("../../tests/fixtures/postgresql/fatal.rec");
const NOTIFY: &[u8] = include_bytes!("../../tests/fixtures/postgresql/notify.rec");
const SCRAM: &[u8] = include_bytes!("../../tests/fixtures/postgresql/scram.rec");
const COPY: &[u8] = include_bytes!("../../tests/fixtures/postgresql/copy.rec");
const RAW_EXTENDED: &[u8] = include_bytes!("../../tests/fixtures/postgresql/raw_extended.rec");
const PIPELINE: &[u8] = include_bytes!("../../tests/fixtures/postgresql/pipeline.rec");
const PGBENCH_EXTENDED: &[u8] =
    include_bytes!("../../tests/fixtures/postgresql/pgbench_extended.rec");
const PGBENCH_PREPARED: &[u8] =
    include_bytes!("../../tests/fixtures/postgresql/pgbench_prepared.rec");

const ALL: &[(&str, &[u8])] = &[
    ("simple", SIMPLE),
    ("fatal", FATAL),
    ("notify", NOTIFY),
    ("scram", SCRAM),
    ("copy", COPY),
    ("raw_extended", RAW_EXTENDED),
    ("pipeline", PIPELINE),
    ("pgbench_extended", PGBENCH_EXTENDED),
    ("pgbench_prepared", PGBENCH_PREPARED),
];

/// A span as the tests compare it.
#[derive(Debug, Clone, PartialEq)]
struct Span {
    request_type: String,
    domain: String,
    resource: String,
    status: Option<ResponseStatus>,
    exception: String,
    request_length: u64,
    response_length: u64,
}

struct Msg {
    kind: MessageKind,
    head: Head<'static>,
    length: u64,
}

impl Msg {
    fn remaining(&self) -> Option<u64> {
        self.head.message_len.map(|n| n.saturating_sub(self.length))
    }
}

/// The agent's assembly and pairing rules (`causeway-agent`'s pipeline),
/// for one connection whose client is known, minus clocks and sockets.
#[derive(Default)]
struct Sim {
    current: [Option<Msg>; 2],
    pending: VecDeque<Msg>,
    spans: Vec<Span>,
    unpaired: usize,
    orphans: usize,
    parse_errors: usize,
}

impl Sim {
    /// One syscall: `payload` is its captured prefix of `total` bytes.
    fn event(&mut self, client: bool, payload: &[u8], total: u64) {
        let d = usize::from(!client);
        if let Some(m) = self.current[1 - d].take() {
            if m.remaining().is_some_and(|r| r > 0) {
                self.current[1 - d] = Some(m);
            } else {
                self.finish(m);
            }
        }
        if let Some(mut m) = self.current[d].take() {
            match m.remaining() {
                Some(r) => {
                    let take = r.min(total);
                    m.length += take;
                    if m.remaining() == Some(0) {
                        self.finish(m);
                        if take < total {
                            self.parse_from(client, payload, total, take);
                        }
                    } else {
                        self.current[d] = Some(m);
                    }
                }
                None => {
                    m.length += total;
                    let whole = payload.len() as u64 == total;
                    if whole && ends_message(payload, m.kind) {
                        self.finish(m);
                    } else {
                        self.current[d] = Some(m);
                    }
                }
            }
            return;
        }
        self.parse_from(client, payload, total, 0);
    }

    fn parse_from(&mut self, client: bool, payload: &[u8], total: u64, mut offset: u64) {
        let d = usize::from(!client);
        let kind = if client { Request } else { Response };
        while offset < total {
            let Some(buf) = payload.get(offset as usize..).filter(|b| !b.is_empty()) else {
                return;
            };
            let head = match parse(buf, kind) {
                Ok(h) => h.into_owned(),
                Err(_) => {
                    self.parse_errors += 1;
                    return;
                }
            };
            let avail = total - offset;
            let length = head.message_len.map_or(avail, |n| n.min(avail));
            let m = Msg { kind, head, length };
            if m.remaining() == Some(0) {
                self.finish(m);
                offset += length;
                continue;
            }
            let whole = payload.len() as u64 == total;
            if m.remaining().is_none() && whole && ends_message(buf, kind) {
                self.finish(m);
            } else {
                self.current[d] = Some(m);
            }
            return;
        }
    }

    fn finish(&mut self, m: Msg) {
        if m.head.unpaired {
            self.unpaired += 1;
            return;
        }
        match m.kind {
            Request => self.pending.push_back(m),
            Response => match self.pending.pop_front() {
                Some(req) => self.spans.push(Span {
                    request_type: req.head.request_type.into_owned(),
                    domain: req.head.request_domain.into_owned(),
                    resource: req.head.request_resource.into_owned(),
                    status: m.head.response_status,
                    exception: m.head.exception.into_owned(),
                    request_length: req.length,
                    response_length: m.length,
                }),
                None => self.orphans += 1,
            },
        }
    }

    /// The connection closes.
    fn close(&mut self) {
        for d in 0..2 {
            if let Some(m) = self.current[d].take() {
                self.finish(m);
            }
        }
    }
}

/// Replays one connection of a fixture with `cap` bytes captured per
/// syscall.
fn replay(fixture: &[u8], conn: u8, cap: usize) -> Sim {
    let mut sim = Sim::default();
    for r in records(fixture).iter().filter(|r| r.conn == conn) {
        let payload = &r.data[..r.data.len().min(cap)];
        sim.event(r.client, payload, r.data.len() as u64);
    }
    sim.close();
    sim
}

fn span(
    request_type: &str,
    resource: &str,
    status: ResponseStatus,
) -> (String, String, ResponseStatus) {
    (request_type.to_owned(), resource.to_owned(), status)
}

fn summary(sim: &Sim) -> Vec<(String, String, ResponseStatus)> {
    sim.spans
        .iter()
        .map(|s| {
            (
                s.request_type.clone(),
                s.resource.clone(),
                s.status.unwrap_or(ResponseStatus::Unknown),
            )
        })
        .collect()
}

use ResponseStatus::{ClientError, Ok as OK, ServerError};

// ---------------------------------------------------------------- fixtures

#[test]
fn simple_session_pairs_every_exchange() {
    let sim = replay(SIMPLE, 0, usize::MAX);
    assert_eq!(
        summary(&sim),
        vec![
            span("SSL_REQUEST", "", OK),
            span("STARTUP", "user=postgres", OK),
            span("Query", "SELECT 1;", OK),
            span("Query", "DROP TABLE IF EXISTS fixture_t;", OK),
            span(
                "Query",
                "CREATE TABLE fixture_t (id int PRIMARY KEY, v text);",
                OK
            ),
            span("Query", "INSERT INTO fixture_t VALUES (1, 'one');", OK),
            span(
                "Query",
                "INSERT INTO fixture_t VALUES (2, 'two'), (3, 'three');",
                OK
            ),
            span(
                "Query",
                "UPDATE fixture_t SET v = v || '!' WHERE id >= 2;",
                OK
            ),
            span("Query", "SELECT id, v FROM fixture_t ORDER BY id;", OK),
            span("Query", "SELECT * FROM no_such_table;", ClientError),
            span("Query", "SELEC 1;", ClientError),
            span(
                "Query",
                "INSERT INTO fixture_t VALUES (1, 'again');",
                ClientError
            ),
            span("Query", "SET application_name = 'causeway-fixture';", OK),
            span(
                "Query",
                "DO $$ BEGIN RAISE NOTICE 'hello from a notice'; END $$;",
                OK
            ),
            span("Query", "DELETE FROM fixture_t;", OK),
            span("Query", "DROP TABLE fixture_t;", OK),
        ]
    );
    assert_eq!(sim.spans[1].domain, "postgres");
    let exceptions: Vec<&str> = sim.spans.iter().map(|s| s.exception.as_str()).collect();
    assert_eq!(
        exceptions[9],
        "SQLSTATE 42P01: relation \"no_such_table\" does not exist"
    );
    assert_eq!(
        exceptions[10],
        "SQLSTATE 42601: syntax error at or near \"SELEC\""
    );
    assert_eq!(
        exceptions[11],
        "SQLSTATE 23505: duplicate key value violates unique constraint \"fixture_t_pkey\""
    );
    assert!(exceptions
        .iter()
        .enumerate()
        .all(|(i, e)| (9..=11).contains(&i) || e.is_empty()));
    // The notice raised by DO arrives alone before its CommandComplete, and
    // Terminate is answered by nothing.
    assert_eq!(sim.unpaired, 2);
    assert_eq!((sim.orphans, sim.parse_errors), (0, 0));
    // Every byte is counted in some message.
    let recs = records(SIMPLE);
    let client: u64 = recs
        .iter()
        .filter(|r| r.client)
        .map(|r| r.data.len() as u64)
        .sum();
    let counted: u64 = sim.spans.iter().map(|s| s.request_length).sum();
    assert_eq!(client - counted, 5, "all but Terminate");
}

#[test]
fn simple_session_heads() {
    let recs = records(SIMPLE);
    let at = |i: usize| recs[i].data;
    // SSLRequest and its one-byte refusal.
    let h = parse(at(0), Request).unwrap();
    assert_eq!((&*h.request_type, h.message_len), ("SSL_REQUEST", Some(8)));
    assert_eq!(infer(at(0)), Some(Request));
    let h = parse(at(1), Response).unwrap();
    assert_eq!((h.response_status, h.message_len), (Some(OK), Some(1)));
    assert_eq!(infer(at(1)), None);
    // Startup, and the authentication, ParameterStatus flood, key data and
    // ReadyForQuery that answer it.
    let h = parse(at(2), Request).unwrap();
    assert_eq!(&*h.request_type, "STARTUP");
    assert_eq!(&*h.request_domain, "postgres");
    assert_eq!(&*h.request_resource, "user=postgres");
    assert_eq!(h.message_len, Some(at(2).len() as u64));
    assert_eq!(infer(at(2)), Some(Request));
    let h = parse(at(3), Response).unwrap();
    assert_eq!(h.message_len, Some(at(3).len() as u64));
    assert_eq!((h.response_status, h.unpaired), (Some(OK), false));
    assert_eq!(infer(at(3)), Some(Response));
    assert!(ends_message(at(3), Response));
    // A simple query and its rows.
    let h = parse(at(4), Request).unwrap();
    assert_eq!(
        (&*h.request_type, &*h.request_resource),
        ("Query", "SELECT 1;")
    );
    assert_eq!(h.message_len, Some(15));
    assert!(ends_message(at(4), Request));
    let h = parse(at(5), Response).unwrap();
    assert_eq!(h.message_len, Some(at(5).len() as u64));
    assert_eq!(command_tag(at(5)), Some("SELECT 1"));
    // The tags.
    for (i, tag) in [
        (7, "DROP TABLE"),
        (9, "CREATE TABLE"),
        (11, "INSERT 0 1"),
        (13, "INSERT 0 2"),
        (15, "UPDATE 2"),
        (17, "SELECT 3"),
        (28, "SET"),
        (31, "DO"),
        (33, "DELETE 3"),
    ] {
        assert_eq!(command_tag(at(i)), Some(tag), "record {i}");
        let h = parse(at(i), Response).unwrap();
        assert_eq!(h.message_len, Some(at(i).len() as u64), "record {i}");
        assert_eq!((h.response_status, &*h.exception), (Some(OK), ""));
        assert_eq!(infer(at(i)), Some(Response), "record {i}");
    }
    // An error arrives before its ReadyForQuery, in its own syscall: the
    // response goes on until the ReadyForQuery that ends_message sees.
    for (i, code) in [(19, "42P01"), (22, "42601"), (25, "23505")] {
        let h = parse(at(i), Response).unwrap();
        assert_eq!(h.message_len, None);
        assert_eq!(h.response_status, Some(ClientError));
        assert_eq!(h.response_code, None);
        assert!(
            h.exception.starts_with(&format!("SQLSTATE {code}: ")),
            "{}",
            h.exception
        );
        assert!(!ends_message(at(i), Response));
        assert!(ends_message(at(i + 1), Response));
        assert_eq!(command_tag(at(i)), None);
    }
    // The notice alone belongs to no exchange; the DROP's notice travels
    // with its answer and does not.
    let h = parse(at(30), Response).unwrap();
    assert!(h.unpaired);
    assert_eq!(h.message_len, Some(137));
    let h = parse(at(7), Response).unwrap();
    assert!(!h.unpaired);
    // Terminate.
    let h = parse(at(36), Request).unwrap();
    assert_eq!(
        (&*h.request_type, h.message_len, h.unpaired),
        ("Terminate", Some(5), true)
    );
    assert!(ends_message(at(36), Request));
    assert_eq!(infer(at(36)), Some(Request));
}

#[test]
fn fatal_error_at_startup_ends_the_response() {
    let recs = records(FATAL);
    let h = parse(recs[2].data, Request).unwrap();
    assert_eq!(&*h.request_domain, "no_such_database");
    let h = parse(recs[3].data, Response).unwrap();
    assert_eq!(h.message_len, Some(recs[3].data.len() as u64));
    assert_eq!(
        &*h.exception,
        "SQLSTATE 3D000: database \"no_such_database\" does not exist"
    );
    assert_eq!(h.response_status, Some(ClientError));
    assert!(ends_message(recs[3].data, Response));
    let sim = replay(FATAL, 0, usize::MAX);
    assert_eq!(
        summary(&sim)[1],
        span("STARTUP", "user=postgres", ClientError)
    );
    assert_eq!(sim.spans.len(), 2);
}

#[test]
fn lone_notification_is_unpaired() {
    let recs = records(NOTIFY);
    let h = parse(recs[9].data, Response).unwrap();
    assert!(h.unpaired);
    assert_eq!(h.message_len, Some(33));
    // Never a socket's first message, and mostly free bytes: not inferred.
    assert_eq!(infer(recs[9].data), None);
    let sim = replay(NOTIFY, 0, usize::MAX);
    assert_eq!(
        summary(&sim),
        vec![
            span("STARTUP", "user=postgres", OK),
            span("Query", "LISTEN fixture_channel;", OK),
            span("Query", "SELECT 1;", OK),
        ]
    );
    assert_eq!((sim.unpaired, sim.orphans), (2, 0));
    let sim = replay(NOTIFY, 1, usize::MAX);
    assert_eq!(
        summary(&sim)[1],
        span("Query", "NOTIFY fixture_channel, 'payload'", OK)
    );
}

#[test]
fn scram_authentication_pairs_each_round_and_keeps_no_secret() {
    let recs = records(SCRAM);
    // Each challenge ends the response: the server waits for the client.
    for i in [1, 3] {
        let h = parse(recs[i].data, Response).unwrap();
        assert_eq!(h.message_len, Some(recs[i].data.len() as u64));
        assert!(ends_message(recs[i].data, Response));
    }
    for i in [2, 4] {
        let h = parse(recs[i].data, Request).unwrap();
        assert_eq!(&*h.request_type, "AUTH");
        assert_eq!(&*h.request_resource, "");
        assert_eq!(h.message_len, Some(recs[i].data.len() as u64));
        assert!(ends_message(recs[i].data, Request));
    }
    let sim = replay(SCRAM, 0, usize::MAX);
    assert_eq!(
        summary(&sim),
        vec![
            span("STARTUP", "user=alice", OK),
            span("AUTH", "", OK),
            span("AUTH", "", OK),
            span("Query", "SELECT current_user", OK),
        ]
    );
}

#[test]
fn copy_in_and_out() {
    let recs = records(COPY);
    // CopyInResponse: the server waits for data.
    let h = parse(recs[5].data, Response).unwrap();
    assert_eq!(h.message_len, Some(12));
    let h = parse(recs[6].data, Request).unwrap();
    assert_eq!((&*h.request_type, h.message_len), ("CopyData", Some(25)));
    assert!(ends_message(recs[6].data, Request));
    assert_eq!(command_tag(recs[7].data), Some("COPY 2"));
    assert_eq!(command_tag(recs[9].data), Some("COPY 2"));
    let sim = replay(COPY, 0, usize::MAX);
    assert_eq!(
        summary(&sim),
        vec![
            span("STARTUP", "user=postgres", OK),
            span("Query", "CREATE TEMP TABLE fixture_c (a int, b text);", OK),
            span("Query", "COPY fixture_c FROM STDIN;", OK),
            span("CopyData", "", OK),
            span("Query", "COPY fixture_c TO STDOUT;", OK),
        ]
    );
}

#[test]
fn extended_protocol_by_hand() {
    let recs = records(RAW_EXTENDED);
    let h = parse(recs[2].data, Request).unwrap();
    assert_eq!(&*h.request_type, "Parse");
    assert_eq!(
        &*h.request_resource,
        "SELECT * FROM no_such_table WHERE id = $1"
    );
    assert_eq!(h.message_len, Some(85));
    // Bind/Execute only: the statement's name.
    let h = parse(recs[7].data, Request).unwrap();
    assert_eq!(
        (&*h.request_type, &*h.request_resource),
        ("Execute", "get_branch")
    );
    assert_eq!(h.message_len, Some(48));
    let h = parse(recs[14].data, Request).unwrap();
    assert_eq!(
        (&*h.request_type, &*h.request_resource),
        ("Close", "get_branch")
    );
    // The unique violation comes after ParseComplete and BindComplete.
    let h = parse(recs[12].data, Response).unwrap();
    assert!(h.exception.starts_with("SQLSTATE 23505: duplicate key"));
    assert_eq!(h.message_len, None);
    let sim = replay(RAW_EXTENDED, 0, usize::MAX);
    assert_eq!(
        summary(&sim),
        vec![
            span("STARTUP", "user=postgres", OK),
            span(
                "Parse",
                "SELECT * FROM no_such_table WHERE id = $1",
                ClientError
            ),
            span(
                "Parse",
                "SELECT bid, bbalance FROM pgbench_branches WHERE bid = $1",
                OK
            ),
            span("Execute", "get_branch", OK),
            span("Execute", "get_branch", OK),
            span(
                "Parse",
                "INSERT INTO pgbench_branches (bid, bbalance) VALUES (1, 0)",
                ClientError
            ),
            span("Close", "get_branch", OK),
        ]
    );
    assert_eq!(
        sim.spans[1].exception,
        "SQLSTATE 42P01: relation \"no_such_table\" does not exist"
    );
}

#[test]
fn pipelined_statements_are_one_exchange() {
    let recs = records(PIPELINE);
    let batch = recs[11].data;
    let h = parse(batch, Request).unwrap();
    assert_eq!(&*h.request_type, "Parse");
    assert_eq!(
        &*h.request_resource,
        "SELECT abalance FROM pgbench_accounts WHERE aid = $1;"
    );
    assert_eq!(h.message_len, Some(batch.len() as u64));
    assert_eq!(infer(batch), Some(Request));
    let h = parse(recs[12].data, Response).unwrap();
    assert_eq!(h.message_len, Some(recs[12].data.len() as u64));
    let sim = replay(PIPELINE, 1, usize::MAX);
    // Startup and two transactions of one pipeline each; Terminate.
    assert_eq!(sim.spans.len(), 3);
    assert_eq!((sim.orphans, sim.parse_errors, sim.unpaired), (0, 0, 1));
}

#[test]
fn pgbench_extended_transactions() {
    let recs = records(PGBENCH_EXTENDED);
    let sim = replay(PGBENCH_EXTENDED, 1, usize::MAX);
    // Startup, then 20 transactions of 7 statements.
    assert_eq!(sim.spans.len(), 1 + 20 * 7);
    assert_eq!((sim.orphans, sim.parse_errors, sim.unpaired), (0, 0, 1));
    let verbs: Vec<&str> = sim.spans[1..8]
        .iter()
        .map(|s| s.resource.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        verbs,
        ["BEGIN;", "UPDATE", "SELECT", "UPDATE", "UPDATE", "INSERT", "END;"]
    );
    assert!(sim.spans[1..]
        .iter()
        .all(|s| s.request_type == "Parse" && s.status == Some(OK)));
    let h = parse(recs[17].data, Request).unwrap();
    assert_eq!(
        &*h.request_resource,
        "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;"
    );
    assert_eq!(command_tag(recs[18].data), Some("UPDATE 1"));
    assert_eq!(command_tag(recs[26].data), Some("INSERT 0 1"));
    assert_eq!(command_tag(recs[28].data), Some("COMMIT"));
    // The setup connection: simple queries.
    let sim = replay(PGBENCH_EXTENDED, 0, usize::MAX);
    assert_eq!(
        sim.spans[1].resource,
        "select count(*) from pgbench_branches"
    );
    assert_eq!(sim.spans.len(), 6);
}

#[test]
fn pgbench_prepared_re_executes_by_name() {
    let sim = replay(PGBENCH_PREPARED, 1, usize::MAX);
    assert_eq!((sim.orphans, sim.parse_errors), (0, 0));
    // Each statement is prepared once (Parse, Sync), then executed by
    // name (Bind, Describe, Execute, Sync).
    let first: Vec<(String, String, ResponseStatus)> = summary(&sim)[1..5].to_vec();
    assert_eq!(
        first,
        vec![
            span("Parse", "BEGIN;", OK),
            span("Execute", "P_0", OK),
            span(
                "Parse",
                "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;",
                OK
            ),
            span("Execute", "P_1", OK),
        ]
    );
    let executes = sim
        .spans
        .iter()
        .filter(|s| s.request_type == "Execute")
        .count();
    assert_eq!(executes, 3 * 7);
    let parses = sim
        .spans
        .iter()
        .filter(|s| s.request_type == "Parse")
        .count();
    assert_eq!(parses, 7);
}

#[test]
fn every_fixture_pairs_the_same_under_small_captures() {
    for (name, fx) in ALL {
        let conns = records(fx).iter().map(|r| r.conn).max().unwrap_or(0);
        for conn in 0..=conns {
            let full = replay(fx, conn, usize::MAX);
            assert_eq!((full.orphans, full.parse_errors), (0, 0), "{name}/{conn}");
            for cap in [64, 128, 1024] {
                let cut = replay(fx, conn, cap);
                assert_eq!(cut.parse_errors, 0, "{name}/{conn} cap {cap}");
                assert_eq!(cut.spans.len(), full.spans.len(), "{name}/{conn} cap {cap}");
                for (a, b) in cut.spans.iter().zip(&full.spans) {
                    assert_eq!(a.request_type, b.request_type, "{name}/{conn} cap {cap}");
                    assert!(b.resource.starts_with(&a.resource), "{name} {a:?} {b:?}");
                    assert_eq!(a.status, b.status, "{name}/{conn} cap {cap}");
                    assert!(b.exception.starts_with(&a.exception), "{name}/{conn}");
                    // Lengths count whole syscalls, cut or not; a notice
                    // cut by the capture is no longer known to stand
                    // alone, and joins the response it precedes.
                    assert_eq!(a.request_length, b.request_length, "{name} {a:?}");
                    assert!(a.response_length >= b.response_length, "{name} {a:?}");
                }
            }
        }
    }
}

#[test]
fn infer_never_names_the_wrong_kind_on_recorded_traffic() {
    let mut right = 0;
    let mut unsure = 0;
    for (name, fx) in ALL {
        for (i, r) in records(fx).iter().enumerate() {
            let want = if r.client { Request } else { Response };
            match infer(r.data) {
                Some(k) => {
                    assert_eq!(k, want, "{name} record {i}");
                    right += 1;
                }
                None => unsure += 1,
            }
        }
    }
    // What is left unsure: the one-byte SSL answers, lone ReadyForQuery
    // after an error (never a first message), password and COPY data.
    assert!(right > 20 * unsure, "right {right}, unsure {unsure}");
}

#[test]
fn every_cut_of_every_record_parses_consistently() {
    for (name, fx) in ALL {
        for (i, r) in records(fx).iter().enumerate() {
            let kind = if r.client { Request } else { Response };
            let full = parse(r.data, kind).unwrap_or_else(|e| panic!("{name} {i}: {e}"));
            for k in 0..=r.data.len() {
                let p = &r.data[..k];
                let _ = infer(p);
                let _ = ends_message(p, Request);
                let _ = ends_message(p, Response);
                let _ = command_tag(p);
                let other = if r.client { Response } else { Request };
                let _ = parse(p, other);
                match parse(p, kind) {
                    Ok(h) => {
                        // (One byte is the whole answer to SSLRequest.)
                        if h.message_len.is_some() && !h.unpaired && k > 1 {
                            assert_eq!(h.message_len, full.message_len, "{name} {i} at {k}");
                        }
                        if kind == Request {
                            assert_eq!(h.request_type, full.request_type, "{name} {i} at {k}");
                            assert!(full.request_resource.starts_with(&*h.request_resource));
                        }
                    }
                    // Only the header can be too short: a cut body never
                    // turns a valid message invalid.
                    Err(ParseError::Incomplete) => assert!(k < 8, "{name} {i} at {k}"),
                    Err(e) => panic!("{name} {i} at {k}: {e}"),
                }
            }
        }
    }
}

// ---------------------------------------------------------------- hand-made frames

fn frame(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![ty];
    v.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn startup(params: &[(&str, &str)]) -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec();
    for (k, v) in params {
        body.extend(cstr(k));
        body.extend(cstr(v));
    }
    body.push(0);
    let mut v = (body.len() as u32 + 4).to_be_bytes().to_vec();
    v.extend(body);
    v
}

fn error(fields: &[(u8, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (c, v) in fields {
        body.push(*c);
        body.extend(cstr(v));
    }
    body.push(0);
    frame(b'E', &body)
}

const SYNC: &[u8] = b"S\0\0\0\x04";
const READY: &[u8] = b"Z\0\0\0\x05I";

#[test]
fn startup_without_database_uses_the_user() {
    let p = startup(&[("user", "bob"), ("application_name", "x")]);
    let h = parse(&p, Request).unwrap();
    assert_eq!(
        (&*h.request_domain, &*h.request_resource),
        ("bob", "user=bob")
    );
    assert_eq!(infer(&p), Some(Request));
    // Cut before the list ends: the database is not known yet.
    let h = parse(&p[..20], Request).unwrap();
    assert_eq!(&*h.request_domain, "");
    assert_eq!(h.message_len, Some(p.len() as u64));
    // No user: not inferred (libpq always sends one), still parsed.
    let p = startup(&[("database", "d")]);
    assert_eq!(infer(&p), None);
    assert_eq!(&*parse(&p, Request).unwrap().request_domain, "d");
}

#[test]
fn untyped_requests() {
    let ssl = [0, 0, 0, 8, 4, 210, 22, 47];
    assert_eq!(&*parse(&ssl, Request).unwrap().request_type, "SSL_REQUEST");
    let gss = [0, 0, 0, 8, 4, 210, 22, 48];
    assert_eq!(
        &*parse(&gss, Request).unwrap().request_type,
        "GSSENC_REQUEST"
    );
    assert_eq!(infer(&gss), Some(Request));
    let cancel = [0, 0, 0, 16, 4, 210, 22, 46, 0, 0, 1, 2, 9, 8, 7, 6];
    let h = parse(&cancel, Request).unwrap();
    assert_eq!(
        (&*h.request_type, h.unpaired, h.message_len),
        ("CANCEL", true, Some(16))
    );
    assert_eq!(infer(&cancel), Some(Request));
    // Wrong lengths, unknown codes, protocol 2.
    assert_eq!(
        parse(&[0, 0, 0, 9, 4, 210, 22, 47, 0], Request),
        Err(ParseError::Invalid("message length"))
    );
    assert_eq!(
        parse(&[0, 0, 0, 8, 4, 210, 22, 99], Request),
        Err(ParseError::Invalid("request code"))
    );
    assert_eq!(
        parse(&[0, 0, 0, 8, 0, 2, 0, 0], Request),
        Err(ParseError::Mismatch)
    );
    assert_eq!(parse(&[0, 0, 0, 8], Request), Err(ParseError::Incomplete));
    assert_eq!(
        parse(&[0, 0, 0, 7, 0, 3, 0, 0], Request),
        Err(ParseError::Invalid("message length"))
    );
    // SSLRequest followed by anything is not what a client sends.
    assert_eq!(infer(&[0, 0, 0, 8, 4, 210, 22, 47, 0]), None);
    // A startup list without its terminator.
    let mut p = startup(&[("user", "u")]);
    p.pop();
    let n = p.len() as u32;
    p[..4].copy_from_slice(&n.to_be_bytes());
    assert_eq!(
        parse(&p, Request),
        Err(ParseError::Invalid("startup parameters"))
    );
    assert_eq!(infer(&p), None);
}

#[test]
fn one_byte_ssl_answers_only_by_kind() {
    for b in [b'S', b'N', b'G'] {
        let h = parse(&[b], Response).unwrap().into_owned();
        assert_eq!((h.message_len, h.response_status), (Some(1), Some(OK)));
        assert_eq!(infer(&[b]), None);
    }
    assert_eq!(parse(b"N", Request), Err(ParseError::Mismatch));
    assert_eq!(parse(b"E", Response), Err(ParseError::Incomplete));
}

#[test]
fn query_cut_by_the_capture_still_knows_its_length() {
    let sql = "SELECT ".to_owned() + &"x, ".repeat(1000) + "1";
    let q = frame(b'Q', &cstr(&sql));
    let h = parse(&q[..1024], Request).unwrap();
    assert_eq!(h.message_len, Some(q.len() as u64));
    assert_eq!(&*h.request_resource, &sql[..1019]);
    assert_eq!(infer(&q[..1024]), Some(Request));
    assert!(!ends_message(&q[..1024], Request));
}

#[test]
fn batches_name_their_first_statement() {
    let parse_f = |name: &str, sql: &str| frame(b'P', &cat(&[&cstr(name), &cstr(sql), b"\0\0"]));
    let bind = |portal: &str, stmt: &str| {
        frame(b'B', &cat(&[&cstr(portal), &cstr(stmt), b"\0\0\0\0\0\0"]))
    };
    let exec = |portal: &str| frame(b'E', &cat(&[&cstr(portal), b"\0\0\0\0"]));
    let desc = frame(b'D', b"P\0");
    // Two statements before one Sync: one exchange, the first SQL.
    let p = cat(&[
        &parse_f("", "  INSERT INTO t VALUES (1)\n"),
        &bind("", ""),
        &exec(""),
        &parse_f("", "INSERT INTO t VALUES (2)"),
        &bind("", ""),
        &exec(""),
        SYNC,
    ]);
    let h = parse(&p, Request).unwrap();
    assert_eq!(
        (&*h.request_type, &*h.request_resource),
        ("Parse", "INSERT INTO t VALUES (1)")
    );
    assert_eq!(h.message_len, Some(p.len() as u64));
    assert_eq!(infer(&p), Some(Request));
    assert!(ends_message(&p, Request));
    // Two exchanges in one write: the first ends at its Sync, the rest is
    // the next message.
    let two = cat(&[&p, &bind("", "s1"), &exec(""), SYNC]);
    let h = parse(&two, Request).unwrap();
    assert_eq!(h.message_len, Some(p.len() as u64));
    let h = parse(&two[p.len()..], Request).unwrap();
    assert_eq!((&*h.request_type, &*h.request_resource), ("Execute", "s1"));
    // A named portal without statement name, an Execute alone.
    let h = parse(&cat(&[&bind("cur", ""), &exec("cur"), SYNC]), Request)
        .unwrap()
        .into_owned();
    assert_eq!(&*h.request_resource, "cur");
    let h = parse(&cat(&[&exec("cur"), SYNC]), Request)
        .unwrap()
        .into_owned();
    assert_eq!((&*h.request_type, &*h.request_resource), ("Execute", "cur"));
    // Describe alone, Sync alone, a Flush that awaits a partial answer.
    let h = parse(&cat(&[&frame(b'D', b"Sstmt\0"), SYNC]), Request)
        .unwrap()
        .into_owned();
    assert_eq!(
        (&*h.request_type, &*h.request_resource),
        ("Describe", "stmt")
    );
    assert_eq!(&*parse(SYNC, Request).unwrap().request_type, "Sync");
    let flush = cat(&[&parse_f("s", "SELECT 1"), &desc, b"H\0\0\0\x04"]);
    let h = parse(&flush, Request).unwrap();
    assert_eq!(h.message_len, None);
    assert!(!ends_message(&flush, Request));
    // Cut inside the batch: no end yet; the Sync tail of the next syscall
    // ends it.
    let h = parse(&p[..40], Request).unwrap();
    assert_eq!(h.message_len, None);
    assert!(ends_message(&p[p.len() - 7..], Request));
    // A bad frame after a good one: keep the head, claim no end.
    let bad = cat(&[&parse_f("", "SELECT 1"), b"Z\0\0\0\x05I", SYNC]);
    let h = parse(&bad, Request).unwrap();
    assert_eq!((&*h.request_resource, h.message_len), ("SELECT 1", None));
    assert_eq!(infer(&bad), None);
}

#[test]
fn other_requests() {
    let h = parse(&frame(b'p', b"secret\0"), Request)
        .unwrap()
        .into_owned();
    assert_eq!(
        (&*h.request_type, &*h.request_resource, h.message_len),
        ("AUTH", "", Some(12))
    );
    assert_eq!(infer(&frame(b'p', b"secret\0")), None);
    let call = frame(
        b'F',
        &cat(&[&1234u32.to_be_bytes(), b"\0\0\0\x01\0\0\0\x011\0\0"]),
    );
    let h = parse(&call, Request).unwrap();
    assert_eq!(
        (&*h.request_type, h.message_len),
        ("FunctionCall", Some(call.len() as u64))
    );
    let fail = frame(b'f', b"oops\0");
    assert_eq!(&*parse(&fail, Request).unwrap().request_type, "CopyFail");
    assert!(ends_message(&fail, Request));
    assert!(ends_message(b"garbage\0c\0\0\0\x04", Request));
    assert!(ends_message(b"X\0\0\0\x04", Request));
    assert!(!ends_message(b"", Request));
    assert!(!ends_message(b"", Response));
}

#[test]
fn errors_and_their_classes() {
    let cases: &[(&str, &str, ResponseStatus)] = &[
        ("42P01", "ERROR", ClientError),
        ("23505", "ERROR", ClientError),
        ("22012", "ERROR", ClientError),
        ("40001", "ERROR", ClientError),
        ("28P01", "FATAL", ClientError),
        ("0A000", "ERROR", ClientError),
        ("08006", "FATAL", ServerError),
        ("53300", "FATAL", ServerError),
        ("57014", "ERROR", ServerError),
        ("57P01", "FATAL", ServerError),
        ("58030", "ERROR", ServerError),
        ("XX000", "ERROR", ServerError),
        ("F0000", "ERROR", ServerError),
    ];
    for &(code, sev, status) in cases {
        let e = error(&[
            (b'S', sev),
            (b'V', sev),
            (b'C', code),
            (b'M', "it broke"),
            (b'F', "x.c"),
        ]);
        let p = cat(&[&e, READY]);
        let h = parse(&p, Response).unwrap();
        assert_eq!(h.response_status, Some(status), "{code}");
        assert_eq!(&*h.exception, format!("SQLSTATE {code}: it broke"));
        assert_eq!(
            h.message_len,
            Some(if sev == "FATAL" { e.len() } else { p.len() } as u64)
        );
        assert_eq!(infer(&p), Some(Response));
        assert_eq!(status_of_sqlstate(code), status);
    }
    // No code: the message alone, the class from the severity.
    let h = parse(&error(&[(b'S', "FATAL"), (b'M', "bye")]), Response)
        .unwrap()
        .into_owned();
    assert_eq!(
        (&*h.exception, h.response_status),
        ("bye", Some(ServerError))
    );
    let h = parse(&error(&[(b'S', "ERROR"), (b'M', "no")]), Response)
        .unwrap()
        .into_owned();
    assert_eq!(h.response_status, Some(ClientError));
    // A code, no message; a malformed code.
    let h = parse(&error(&[(b'C', "42000")]), Response)
        .unwrap()
        .into_owned();
    assert_eq!(&*h.exception, "SQLSTATE 42000");
    let h = parse(&error(&[(b'C', "42"), (b'M', "m")]), Response)
        .unwrap()
        .into_owned();
    assert_eq!(&*h.exception, "m");
    // The localized severity stands in for the missing V.
    let panic = error(&[(b'S', "PANIC"), (b'M', "m")]);
    let h = parse(&panic, Response).unwrap();
    assert_eq!(h.message_len, Some(panic.len() as u64));
    assert_eq!(h.response_status, Some(ServerError));
    // Cut inside the message: what is visible.
    let e = error(&[
        (b'S', "ERROR"),
        (b'C', "42P01"),
        (b'M', "relation does not exist"),
    ]);
    let h = parse(&e[..e.len() - 10], Response).unwrap();
    assert_eq!(&*h.exception, "SQLSTATE 42P01: relation does n");
    // An error anywhere wins over what came before.
    let p = cat(&[b"1\0\0\0\x04", b"2\0\0\0\x04", &e, READY]);
    assert_eq!(
        parse(&p, Response).unwrap().response_status,
        Some(ClientError)
    );
}

#[test]
fn other_responses() {
    // Empty query, NoData, PortalSuspended, ParameterDescription.
    for p in [
        cat(&[b"I\0\0\0\x04", READY]),
        cat(&[
            b"1\0\0\0\x04",
            b"t\0\0\0\x0a\0\x01\0\0\0\x17",
            b"n\0\0\0\x04",
            READY,
        ]),
        cat(&[
            b"2\0\0\0\x04",
            &frame(b'D', b"\0\x01\0\0\0\x011"),
            b"s\0\0\0\x04",
        ]),
    ] {
        let h = parse(&p, Response).unwrap();
        assert_eq!(h.response_status, Some(OK));
        assert_eq!(infer(&p), Some(Response));
    }
    // MD5 challenge: the server waits.
    let md5 = frame(b'R', b"\0\0\0\x05salt");
    assert_eq!(parse(&md5, Response).unwrap().message_len, Some(13));
    // NegotiateProtocolVersion then the authentication.
    let nego = cat(&[
        &frame(b'v', b"\0\0\0\0\0\0\0\x01_pq_.x\0"),
        &frame(b'R', b"\0\0\0\x03"),
    ]);
    assert_eq!(
        parse(&nego, Response).unwrap().message_len,
        Some(nego.len() as u64)
    );
    // A lone ParameterStatus or notice: unpaired; with more after it, not.
    let status = frame(b'S', b"TimeZone\0UTC\0");
    assert!(parse(&status, Response).unwrap().unpaired);
    let notice = frame(b'N', b"SNOTICE\0Mhi\0\0");
    assert!(parse(&cat(&[&notice, &status]), Response).unwrap().unpaired);
    assert!(!parse(&cat(&[&notice, READY]), Response).unwrap().unpaired);
    assert!(!parse(&notice[..8], Response).unwrap().unpaired);
    // ReadyForQuery's status byte must be one of the three.
    assert_eq!(
        parse(b"Z\0\0\0\x05X", Response),
        Err(ParseError::Invalid("ReadyForQuery"))
    );
    // A lone Close or CommandComplete does not tell its direction.
    let c = frame(b'C', b"SET\0");
    assert_eq!(infer(&c), None);
    assert_eq!(infer(&cat(&[&c, READY])), Some(Response));
    assert_eq!(infer(&cat(&[&c, SYNC])), Some(Request));
}

// ---------------------------------------------------------------- garbage

#[test]
fn bad_lengths() {
    for kind in [Request, Response] {
        for p in [
            &b"Q\0\0\0\x03"[..],
            b"Q\xff\xff\xff\xffSELECT 1\0",
            b"Q\x40\0\0\0SELECT 1\0",
            b"Z\x80\0\0\x05I",
        ] {
            assert_eq!(
                parse(p, kind),
                Err(ParseError::Invalid("message length")),
                "{p:?}"
            );
            assert_eq!(infer(p), None);
            assert!(!ends_message(p, kind) || p.ends_with(READY));
        }
    }
    // Length fields that disagree with the body's grammar.
    assert_eq!(
        parse(b"S\0\0\0\x05x", Request),
        Err(ParseError::Invalid("Sync"))
    );
    assert_eq!(
        parse(b"Q\0\0\0\x0aSELECT 1\0", Request),
        Err(ParseError::Invalid("Query"))
    );
    assert_eq!(
        parse(b"Q\0\0\0\x08SEL", Request).unwrap().message_len,
        Some(9)
    );
    assert_eq!(
        parse(b"D\0\0\0\x0a\0\x05\0\0\0\x01", Response),
        Err(ParseError::Invalid("DataRow"))
    );
    assert_eq!(
        parse(b"T\0\0\0\x06\xff\xff", Response),
        Err(ParseError::Invalid("RowDescription"))
    );
    assert_eq!(
        parse(b"B\0\0\0\x0c\0\0\0\x01\0\x07\0\0", Request),
        Err(ParseError::Invalid("Bind"))
    );
    assert_eq!(
        parse(b"R\0\0\0\x08\0\0\0\x04", Response),
        Err(ParseError::Invalid("Authentication"))
    );
}

#[test]
fn random_bytes_never_panic_and_are_not_inferred() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut inferred = 0;
    for round in 0..20_000 {
        let len = (next() % 300) as usize;
        let mut p: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Half the time, a plausible type byte and a small length.
        if round % 2 == 0 && len >= 5 {
            p[0] = b"QPBDESXCRZTKNAI12ndcv"[(next() % 21) as usize];
            p[1..5].copy_from_slice(&((next() % 64) as u32).to_be_bytes());
        }
        if infer(&p).is_some() {
            inferred += 1;
        }
        for kind in [Request, Response] {
            let _ = parse(&p, kind);
            let _ = ends_message(&p, kind);
        }
        let _ = command_tag(&p);
    }
    // Only short, exactly-formed fixed frames (`X`, `1`, `n`, ... of
    // length 4) can come out of random bytes.
    assert!(inferred < 100, "{inferred} random payloads inferred");
}

#[test]
fn other_protocols_are_not_postgresql() {
    let mut negatives: Vec<Vec<u8>> = [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"POST /api HTTP/1.1\r\n",
        b"HEAD / HTTP/1.0\r\n\r\n",
        b"PUT /x HTTP/1.1\r\n",
        b"DELETE /x HTTP/1.1\r\n",
        b"CONNECT a:443 HTTP/1.1\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"*1\r\n$4\r\nPING\r\n",
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
        b"+OK\r\n",
        b"+PONG\r\n",
        b"-ERR unknown command 'x'\r\n",
        b":1000\r\n",
        b"$-1\r\n",
        b"PING\r\n",
        b"SET k v\r\n",
        b"QUIT\r\n",
        b"SSH-2.0-OpenSSH_9.2p1\r\n",
        // TLS ClientHello, ServerHello, alert, application data.
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x8a\x11",
        b"\x16\x03\x03\x00\x7a\x02\x00\x00\x76\x03\x03",
        b"\x15\x03\x03\x00\x02\x02\x28",
        b"\x17\x03\x03\x00\x45\xa1\xb2",
        // MySQL 8 greeting, COM_QUERY, OK, column count, EOF, ERR.
        b"\x4a\x00\x00\x00\x0a8.0.36\x00\x08\x00\x00\x00\x3e\x1c\x2b\x05",
        b"\x09\x00\x00\x00\x03select 1",
        b"\x07\x00\x00\x02\x00\x00\x00\x02\x00\x00\x00",
        b"\x01\x00\x00\x01\x01",
        b"\x05\x00\x00\x05\xfe\x00\x00\x02\x00",
        b"\x17\x00\x00\x01\xff\x48\x04#42S02Table 'x' doesn't exist",
        b"\x01\x00\x00\x00\x01",
        b"",
        b"N",
        b"S",
        b"\0",
        b"\0\0\0\0\0\0\0\0\0\0\0\0",
    ]
    .iter()
    .map(|p| p.to_vec())
    .collect();
    // MySQL packets of every length byte, from both sides: the length's
    // low byte lands where a PostgreSQL type byte would be.
    for len in 1u8..=255 {
        for (seq, cmd) in [(0u8, 3u8), (1, 0x03), (1, 0xfe), (2, 0x00)] {
            let mut p = vec![len, 0, 0, seq, cmd];
            p.extend(
                b"SELECT * FROM accounts WHERE id = 1"
                    .iter()
                    .cycle()
                    .take(len as usize - 1),
            );
            negatives.push(p);
        }
    }
    for p in &negatives {
        assert_eq!(infer(p), None, "{:?}", String::from_utf8_lossy(p));
    }
}

/// The other parsers' recordings of real MySQL 8 and Redis 7 traffic, read
/// at run time so that their changes need no change here: no prefix of any
/// of them is PostgreSQL.
#[test]
fn recorded_mysql_and_redis_traffic_is_not_postgresql() {
    let mut checked = 0;
    for protocol in ["mysql", "redis"] {
        let dir = format!("{}/tests/fixtures/{protocol}", env!("CARGO_MANIFEST_DIR"));
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for path in entries.flatten().map(|e| e.path()) {
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            for k in 1..=bytes.len().min(2048) {
                checked += 1;
                assert_eq!(infer(&bytes[..k]), None, "{} cut at {k}", path.display());
            }
        }
    }
    eprintln!("{checked} prefixes of other protocols' recordings checked");
}

#[test]
fn long_binary_payload_is_not_postgresql() {
    let p: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    assert_eq!(infer(&p), None);
}

#[test]
fn sql_must_be_text_to_be_inferred() {
    assert_eq!(infer(b"Q\0\0\0\x0eSELECT 1;\0"), Some(Request));
    assert_eq!(infer(b"Q\0\0\0\x0eSEL\x01CT 1;\0"), None);
    assert_eq!(infer(b"Q\0\0\0\x05\0"), None);
    let q = frame(
        b'Q',
        &cstr(&format!(
            "SELECT 1 FROM t WHERE c IN ({})",
            "1, ".repeat(100)
        )),
    );
    assert_eq!(infer(&q[..256]), Some(Request), "cut before the NUL");
    assert_eq!(infer(&q[..255]), None, "cut too short to tell");
    assert_eq!(
        infer(b"Q\0\0\0\x0dSELECT 1;"),
        None,
        "no NUL where the frame ends"
    );
    // Not UTF-8 (a LATIN1 client): parsed up to where the text breaks.
    let h = parse(b"Q\0\0\0\x0fSELECT '\xe9'\0", Request).unwrap();
    assert_eq!(&*h.request_resource, "SELECT '");
}
