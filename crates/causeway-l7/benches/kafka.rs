//! Cost of the Kafka parsing path on recorded tansu 0.6.0 and kafka-python
//! 3.0.12 traffic (`tests/fixtures/kafka`): every request of the recordings
//! (both dialects: flexible versions, and Kafka 2.5's), parsed from the
//! prefix a 1024-byte capture gives, as the agent does; every response,
//! read with its request's API; single messages (a 3 KB Produce cut at 1024
//! bytes, a Fetch response with records, a Metadata response); and
//! inference.
//!
//! Each batch benchmark runs twice, once with `Throughput::Bytes` (MB/s of
//! the bytes handed to the parser) and once with `Throughput::Elements`
//! counting messages (messages/s).

use std::hint::black_box;

use causeway_l7::kafka::{infer, parse_request, parse_response, request_header, RequestApi};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const RECORDINGS: &[&[u8]] = &[
    include_bytes!("../tests/fixtures/kafka/create_topics.rec"),
    include_bytes!("../tests/fixtures/kafka/produce_acks.rec"),
    include_bytes!("../tests/fixtures/kafka/consume_group.rec"),
    include_bytes!("../tests/fixtures/kafka/metadata_unknown_topic.rec"),
    include_bytes!("../tests/fixtures/kafka/raw_requests.rec"),
    include_bytes!("../tests/fixtures/kafka/v2_5_create_topics.rec"),
    include_bytes!("../tests/fixtures/kafka/v2_5_produce_acks.rec"),
    include_bytes!("../tests/fixtures/kafka/v2_5_consume_group.rec"),
    include_bytes!("../tests/fixtures/kafka/v2_5_metadata_unknown_topic.rec"),
    include_bytes!("../tests/fixtures/kafka/v2_5_raw_requests.rec"),
];

/// The capture cap the agent uses by default.
const CAP: usize = 1024;

/// The messages of a recording, per connection and direction, split at
/// their lengths: (client?, connection, message cut at the cap).
fn messages(rec: &[u8]) -> Vec<(bool, u8, Vec<u8>)> {
    let mut streams: Vec<((u8, u8), Vec<u8>)> = Vec::new();
    let mut b = rec;
    while b.len() >= 6 {
        let n = u32::from_be_bytes([b[2], b[3], b[4], b[5]]) as usize;
        let key = (b[0], b[1]);
        match streams.iter_mut().find(|(k, _)| *k == key) {
            Some((_, s)) => s.extend_from_slice(&b[6..6 + n]),
            None => streams.push((key, b[6..6 + n].to_vec())),
        }
        b = &b[6 + n..];
    }
    let mut out = Vec::new();
    for ((dir, conn), s) in streams {
        let mut pos = 0;
        while pos + 4 <= s.len() {
            let len = 4 + u32::from_be_bytes([s[pos], s[pos + 1], s[pos + 2], s[pos + 3]]) as usize;
            let end = (pos + len).min(s.len());
            out.push((dir == b'C', conn, s[pos..end.min(pos + CAP)].to_vec()));
            pos += len;
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    // (recording, message) pairs: connections are numbered per recording.
    let all: Vec<(usize, bool, u8, Vec<u8>)> = RECORDINGS
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            messages(r)
                .into_iter()
                .map(move |(c, conn, m)| (i, c, conn, m))
        })
        .collect();
    let requests: Vec<&[u8]> = all.iter().filter(|m| m.1).map(|m| &m.3[..]).collect();
    // Responses with the API of the request of their connection with their
    // correlation id, as the agent finds it.
    let responses: Vec<(&[u8], Option<RequestApi>)> = all
        .iter()
        .filter(|m| !m.1)
        .map(|m| {
            let corr = i32::from_be_bytes([m.3[4], m.3[5], m.3[6], m.3[7]]);
            let api = all
                .iter()
                .filter(|q| q.1 && q.0 == m.0 && q.2 == m.2)
                .filter_map(|q| request_header(&q.3))
                .find(|h| h.0 == corr)
                .map(|h| h.1);
            (&m.3[..], api)
        })
        .collect();
    assert!(responses.iter().all(|r| r.1.is_some()));
    assert!(requests.iter().all(|r| parse_request(r).is_ok()));
    assert!(responses
        .iter()
        .all(|(r, api)| parse_response(r, *api).is_ok()));
    let req_bytes: usize = requests.iter().map(|r| r.len()).sum();
    let resp_bytes: usize = responses.iter().map(|r| r.0.len()).sum();
    eprintln!(
        "kafka bench: {} requests ({req_bytes} bytes as captured), {} responses ({resp_bytes} bytes)",
        requests.len(),
        responses.len()
    );

    let mut g = c.benchmark_group("kafka");
    g.throughput(Throughput::Bytes(req_bytes as u64));
    g.bench_function("recorded_requests/bytes", |b| {
        b.iter(|| {
            for r in &requests {
                black_box(parse_request(black_box(r)).ok());
            }
        })
    });
    g.throughput(Throughput::Elements(requests.len() as u64));
    g.bench_function("recorded_requests/messages", |b| {
        b.iter(|| {
            for r in &requests {
                black_box(parse_request(black_box(r)).ok());
            }
        })
    });
    g.throughput(Throughput::Bytes(resp_bytes as u64));
    g.bench_function("recorded_responses/bytes", |b| {
        b.iter(|| {
            for (r, api) in &responses {
                black_box(parse_response(black_box(r), *api).ok());
            }
        })
    });
    g.throughput(Throughput::Elements(responses.len() as u64));
    g.bench_function("recorded_responses/messages", |b| {
        b.iter(|| {
            for (r, api) in &responses {
                black_box(parse_response(black_box(r), *api).ok());
            }
        })
    });

    // Single messages.
    let find_req = |key: i16, min_len: usize| -> &[u8] {
        requests
            .iter()
            .copied()
            .find(|r| {
                request_header(r).is_some_and(|(_, a)| a.api_key == key) && r.len() >= min_len
            })
            .expect("a recorded request")
    };
    let find_resp = |key: i16, min_len: usize| -> (&[u8], Option<RequestApi>) {
        responses
            .iter()
            .copied()
            .find(|(r, a)| a.is_some_and(|a| a.api_key == key) && r.len() >= min_len)
            .expect("a recorded response")
    };
    let produce_cut = find_req(0, CAP);
    let (fetch_resp, fetch_api) = find_resp(1, 200);
    let (metadata_resp, metadata_api) = find_resp(3, 60);
    g.throughput(Throughput::Bytes(produce_cut.len() as u64));
    g.bench_function("parse/produce_3k_cut_1024", |b| {
        b.iter(|| parse_request(black_box(produce_cut)))
    });
    g.throughput(Throughput::Bytes(fetch_resp.len() as u64));
    g.bench_function("parse/fetch_response_with_records", |b| {
        b.iter(|| parse_response(black_box(fetch_resp), fetch_api))
    });
    g.throughput(Throughput::Bytes(metadata_resp.len() as u64));
    g.bench_function("parse/metadata_response", |b| {
        b.iter(|| parse_response(black_box(metadata_resp), metadata_api))
    });
    g.finish();

    let mut g = c.benchmark_group("kafka_infer");
    let first = requests[0];
    g.bench_function("api_versions_request", |b| {
        b.iter(|| infer(black_box(first)))
    });
    g.bench_function("produce_3k_cut_1024", |b| {
        b.iter(|| infer(black_box(produce_cut)))
    });
    g.bench_function("fetch_response_rejected", |b| {
        b.iter(|| infer(black_box(fetch_resp)))
    });
    let binary: Vec<u8> = (0..1024u32).map(|i| (i * 7 + 3) as u8).collect();
    g.bench_function("binary", |b| b.iter(|| infer(black_box(&binary))));
    let http = b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n";
    g.bench_function("http_request", |b| b.iter(|| infer(black_box(&http[..]))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
