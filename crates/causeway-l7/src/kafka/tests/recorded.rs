//! The recorded tansu 0.6.0 and kafka-python 3.0.12 traffic
//! (`tests/fixtures/kafka`, see its `record.py`), in both dialects: every
//! message parses, requests are inferred, each response is read with its
//! request's API, and the facts are those of what the scenarios did.

use super::*;

/// One recorded chunk: what one `recv` of the relay got.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rec<'a> {
    /// `C` (client to server) or `S`.
    pub dir: u8,
    pub conn: u8,
    pub bytes: &'a [u8],
}

/// Reads a `.rec` file: direction byte, connection byte, u32 length, bytes.
pub(super) fn records(mut b: &[u8]) -> Vec<Rec<'_>> {
    let mut out = Vec::new();
    while b.len() >= 6 {
        let n = u32::from_be_bytes([b[2], b[3], b[4], b[5]]) as usize;
        out.push(Rec {
            dir: b[0],
            conn: b[1],
            bytes: &b[6..6 + n],
        });
        b = &b[6 + n..];
    }
    out
}

/// The chunks of a `.rec` file (any protocol's).
pub(super) fn chunks(b: &[u8]) -> Vec<&[u8]> {
    records(b).into_iter().map(|r| r.bytes).collect()
}

macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!("../../../tests/fixtures/kafka/", $name, ".rec")) as &[u8],
        )
    };
}

/// Every recording, newest dialect then 2.5.
const FIXTURES: &[(&str, &[u8])] = &[
    fixture!("create_topics"),
    fixture!("produce_acks"),
    fixture!("consume_group"),
    fixture!("metadata_unknown_topic"),
    fixture!("raw_requests"),
    fixture!("v2_5_create_topics"),
    fixture!("v2_5_produce_acks"),
    fixture!("v2_5_consume_group"),
    fixture!("v2_5_metadata_unknown_topic"),
    fixture!("v2_5_raw_requests"),
];

/// One exchange as the recording shows it.
#[derive(Debug, Clone)]
struct Exchange {
    conn: u8,
    api: RequestApi,
    request_type: String,
    client_id: String,
    resource: String,
    corr: u64,
    unpaired: bool,
    /// The answer's code (`None`: none read), and whether an answer came.
    code: Option<i32>,
    answered: bool,
}

/// A direction's stream of one connection, split into messages at their
/// lengths, as the agent splits a syscall; each message with the rest of
/// the chunk it starts in, from its first byte (what a capture of that
/// syscall shows of it).
fn messages<'a>(recs: &[Rec<'a>], conn: u8, dir: u8) -> Vec<(Vec<u8>, &'a [u8])> {
    let mut stream: Vec<u8> = Vec::new();
    let mut bases: Vec<(usize, &'a [u8])> = Vec::new();
    for r in recs.iter().filter(|r| r.conn == conn && r.dir == dir) {
        bases.push((stream.len(), r.bytes));
        stream.extend_from_slice(r.bytes);
    }
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < stream.len() {
        let len = frame_len(&stream[pos..]).expect("a whole length");
        let end = pos + len;
        assert!(
            end <= stream.len(),
            "conn {conn}: a message cut by the end of the recording"
        );
        let &(base, chunk) = bases.iter().rev().find(|(b, _)| *b <= pos).unwrap();
        out.push((stream[pos..end].to_vec(), &chunk[pos - base..]));
        pos = end;
    }
    out
}

/// The exchanges of a recording: requests parsed from the start of their
/// chunk (as captured), answers read with the request's API.
fn exchanges(rec: &[u8]) -> Vec<Exchange> {
    let recs = records(rec);
    let mut conns: Vec<u8> = recs.iter().map(|r| r.conn).collect();
    conns.sort_unstable();
    conns.dedup();
    let mut out = Vec::new();
    for conn in conns {
        let requests = messages(&recs, conn, b'C');
        let responses = messages(&recs, conn, b'S');
        let mut first = true;
        for (whole, chunk) in &requests {
            if first {
                // A connection's first bytes are believed Kafka, from the
                // chunk as captured (whole when short, cut at 1024 bytes).
                let seen = &chunk[..chunk.len().min(1024)];
                assert_eq!(infer(seen), Some(REQ), "conn {conn}: {seen:02x?}");
                first = false;
            }
            let h = parse_request(whole).unwrap();
            assert_eq!(h.message_len, Some(whole.len() as u64));
            // The prefix a 1024-byte capture gives has the same facts.
            let cut = parse_request(&chunk[..chunk.len().min(1024)]).unwrap();
            assert_eq!(
                (
                    &cut.request_type,
                    &cut.request_domain,
                    &cut.request_resource,
                    cut.request_id
                ),
                (
                    &h.request_type,
                    &h.request_domain,
                    &h.request_resource,
                    h.request_id
                )
            );
            let (corr, api) = request_header(whole).unwrap();
            let answer = responses
                .iter()
                .find(|(r, _)| correlation_id(r, MessageKind::Response) == Some(corr));
            let code = answer.map(|(r, _)| {
                let a = parse_response(r, Some(api)).unwrap();
                assert_eq!(a.message_len, Some(r.len() as u64));
                assert_eq!(a.request_id, h.request_id);
                assert_eq!(
                    a.response_status,
                    a.response_code.map(|c| error_status(c as i16))
                );
                a.response_code
            });
            out.push(Exchange {
                conn,
                api,
                request_type: h.request_type.into_owned(),
                client_id: h.request_domain.into_owned(),
                resource: h.request_resource.into_owned(),
                corr: h.request_id.unwrap(),
                unpaired: h.unpaired,
                code: code.flatten(),
                answered: answer.is_some(),
            });
        }
        // Every answer answers a request of its connection.
        for (r, _) in &responses {
            let corr = correlation_id(r, MessageKind::Response).unwrap();
            assert!(requests
                .iter()
                .any(|(q, _)| correlation_id(q, REQ) == Some(corr)));
        }
    }
    out
}

fn by_type<'a>(ex: &'a [Exchange], t: &str) -> Vec<&'a Exchange> {
    ex.iter().filter(|e| e.request_type == t).collect()
}

fn codes(ex: &[&Exchange]) -> Vec<Option<i32>> {
    ex.iter().map(|e| e.code).collect()
}

#[test]
fn every_recorded_message_parses_and_is_answered() {
    for (name, rec) in FIXTURES {
        let ex = exchanges(rec);
        assert!(!ex.is_empty(), "{name}");
        for e in &ex {
            // tansu answers even the acks-0 Produces (Kafka does not).
            assert!(e.answered, "{name}: {e:?}");
            assert!(!e.client_id.is_empty(), "{name}: {e:?}");
            assert!(
                e.api.api_version <= max_version(e.api.api_key).unwrap()
                    || e.request_type == "ApiVersions"
            );
            // Codes are read for every API these clients use, but for the
            // ApiVersions of a version no Kafka defines.
            if e.api.api_version <= max_version(e.api.api_key).unwrap() {
                assert!(e.code.is_some(), "{name}: {e:?}");
                assert!(reads_errors(e.api), "{name}: {e:?}");
            }
        }
        // Correlation ids count up per connection from 1.
        for conn in ex.iter().map(|e| e.conn) {
            let ids: Vec<u64> = ex
                .iter()
                .filter(|e| e.conn == conn)
                .map(|e| e.corr)
                .collect();
            assert_eq!(
                ids,
                (1..=ids.len() as u64).collect::<Vec<_>>(),
                "{name} conn {conn}"
            );
        }
    }
}

#[test]
fn create_topics_and_the_second_attempt() {
    for (name, v) in [("create_topics", 7), ("v2_5_create_topics", 5)] {
        let rec = FIXTURES.iter().find(|f| f.0 == name).unwrap().1;
        let ex = exchanges(rec);
        let create = by_type(&ex, "CreateTopics");
        let facts: Vec<_> = create
            .iter()
            .map(|e| (e.api.api_version, e.resource.as_str(), e.code))
            .collect();
        assert_eq!(
            facts,
            [(v, "orders,events", Some(0)), (v, "orders", Some(36))],
            "{name}"
        );
        assert!(ex.iter().all(|e| e.client_id == "causeway-admin"));
    }
}

#[test]
fn produce_at_three_acks_settings() {
    for (name, v) in [("produce_acks", 9), ("v2_5_produce_acks", 8)] {
        let rec = FIXTURES.iter().find(|f| f.0 == name).unwrap().1;
        let ex = exchanges(rec);
        let produce = by_type(&ex, "Produce");
        assert!(produce
            .iter()
            .all(|e| e.api.api_version == v && e.resource == "orders"));
        assert!(produce.iter().all(|e| e.code == Some(0)), "{name}");
        // acks 0: unpaired (a Kafka broker sends nothing back), the others not.
        for e in &produce {
            assert_eq!(
                e.unpaired,
                e.client_id == "causeway-producer-acks0",
                "{name}: {e:?}"
            );
        }
        for client in [
            "causeway-producer-acks1",
            "causeway-producer-acksall",
            "causeway-producer-acks0",
        ] {
            assert!(
                produce.iter().any(|e| e.client_id == client),
                "{name}: {client}"
            );
        }
        // The producer that wants every replica's ack asks for an id first.
        assert_eq!(codes(&by_type(&ex, "InitProducerId")), [Some(0)], "{name}");
        // Metadata: for the topic they produce to, or for no topic in
        // particular (an empty list, answered with the brokers alone).
        let m: Vec<_> = by_type(&ex, "Metadata")
            .iter()
            .map(|e| e.resource.as_str())
            .collect();
        assert!(
            !m.is_empty() && m.iter().all(|r| ["orders", ""].contains(r)),
            "{name}: {m:?}"
        );
    }
}

#[test]
fn a_consumer_group_from_join_to_leave() {
    for (name, fetch) in [("consume_group", 12), ("v2_5_consume_group", 11)] {
        let rec = FIXTURES.iter().find(|f| f.0 == name).unwrap().1;
        let ex = exchanges(rec);
        let group = |t: &str| -> Vec<(String, Option<i32>)> {
            by_type(&ex, t)
                .iter()
                .map(|e| (e.resource.clone(), e.code))
                .collect()
        };
        let g = || "causeway-group".to_owned();
        assert_eq!(group("FindCoordinator"), [(g(), Some(0))], "{name}");
        // The first JoinGroup is told to come back with its member id; the
        // next joins (once more when the group rebalances).
        let joins = group("JoinGroup");
        assert_eq!(joins[0], (g(), Some(79)), "{name}");
        assert!(
            joins.len() >= 2 && joins[1..].iter().all(|j| *j == (g(), Some(0))),
            "{name}"
        );
        let syncs = group("SyncGroup");
        assert!(
            !syncs.is_empty() && syncs.iter().all(|s| *s == (g(), Some(0))),
            "{name}"
        );
        assert_eq!(group("LeaveGroup"), [(g(), Some(0))], "{name}");
        assert!(group("Heartbeat").iter().all(|h| *h == (g(), Some(0))));
        let o = || "orders".to_owned();
        assert_eq!(group("OffsetFetch"), [(o(), Some(0))], "{name}");
        assert_eq!(group("OffsetCommit"), [(o(), Some(0))], "{name}");
        assert_eq!(group("ListOffsets"), [(o(), Some(0))], "{name}");
        let fetches = by_type(&ex, "Fetch");
        assert!(!fetches.is_empty(), "{name}");
        assert!(fetches
            .iter()
            .all(|e| e.api.api_version == fetch && e.resource == "orders" && e.code == Some(0)));
    }
}

#[test]
fn unknown_topics_are_client_errors() {
    for (name, metadata, delete) in [
        ("metadata_unknown_topic", 12, 6),
        ("v2_5_metadata_unknown_topic", 9, 4),
    ] {
        let rec = FIXTURES.iter().find(|f| f.0 == name).unwrap().1;
        let ex = exchanges(rec);
        let m: Vec<_> = by_type(&ex, "Metadata")
            .iter()
            .filter(|e| !e.resource.is_empty())
            .map(|e| (e.api.api_version, e.resource.clone(), e.code))
            .collect();
        assert_eq!(
            m,
            [(metadata, "no-such-topic".to_owned(), Some(3))],
            "{name}"
        );
        let d: Vec<_> = by_type(&ex, "DeleteTopics")
            .iter()
            .map(|e| (e.api.api_version, e.resource.clone(), e.code))
            .collect();
        assert_eq!(
            d,
            [
                (delete, "events".to_owned(), Some(0)),
                (delete, "no-such-topic".to_owned(), Some(3))
            ],
            "{name}"
        );
    }
}

#[test]
fn raw_requests_and_their_codes() {
    for name in ["raw_requests", "v2_5_raw_requests"] {
        let rec = FIXTURES.iter().find(|f| f.0 == name).unwrap().1;
        let facts: Vec<_> = exchanges(rec)
            .into_iter()
            .map(|e| (e.request_type, e.api.api_version, e.resource, e.code))
            .collect();
        let f = |t: &str, v: i16, r: &str, c: Option<i32>| (t.to_owned(), v, r.to_owned(), c);
        assert_eq!(
            facts,
            [
                f("ApiVersions", 0, "", Some(0)),
                // A version past the newest: its answer's layout is unknown.
                f("ApiVersions", 9, "", None),
                f("Fetch", 4, "orders", Some(0)),
                f("ListOffsets", 1, "orders", Some(0)),
                f("Produce", 3, "orders", Some(0)),
                f("Heartbeat", 0, "causeway-group", Some(25)),
                f("SyncGroup", 0, "causeway-group", Some(25)),
                f("Metadata", 1, "no-such-topic", Some(3)),
                f("InitProducerId", 1, "", Some(-1)),
            ],
            "{name}"
        );
    }
    assert_eq!(error_status(25), ResponseStatus::ClientError);
    assert_eq!(error_status(-1), ResponseStatus::ServerError);
}

/// No other protocol's inference claims a recorded Kafka message.
#[test]
fn recorded_kafka_is_no_other_protocol() {
    use crate::dns::Transport;
    use crate::{dns, mqtt, mysql, postgresql, protobuf_rpc, redis};
    let mut n = 0;
    for (name, rec) in FIXTURES {
        for r in records(rec) {
            let b = &r.bytes[..r.bytes.len().min(1024)];
            assert_eq!(crate::infer::infer(b), None, "{name}");
            assert_eq!(mysql::infer(b), None, "{name}: {b:02x?}");
            assert_eq!(postgresql::infer(b), None, "{name}: {b:02x?}");
            assert_eq!(redis::infer(b), None, "{name}: {b:02x?}");
            assert_eq!(mqtt::infer(b), None, "{name}: {b:02x?}");
            assert_eq!(dns::infer(b, Transport::Tcp), None, "{name}: {b:02x?}");
            assert_eq!(protobuf_rpc::infer(b), None, "{name}: {b:02x?}");
            n += 1;
        }
    }
    assert!(n > 300, "{n}");
}

/// What the broker sends first is never believed as a request.
#[test]
fn responses_are_not_inferred() {
    for (name, rec) in FIXTURES {
        for r in records(rec).into_iter().filter(|r| r.dir == b'S') {
            assert_eq!(
                infer(r.bytes),
                None,
                "{name}: {:02x?}",
                &r.bytes[..r.bytes.len().min(32)]
            );
            assert!(
                looks_like_response(r.bytes)
                    || frame_len(r.bytes).is_some_and(|n| n > r.bytes.len())
            );
        }
    }
}
