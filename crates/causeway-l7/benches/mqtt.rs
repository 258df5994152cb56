//! Cost of the MQTT parsing path on recorded mosquitto 2.0.11 traffic: a
//! client's write of 19 pipelined QoS 1 PUBLISHes and the broker's batch of
//! 18 PUBACKs, split at `message_len` as the agent does; 20 pipelined QoS 0
//! PUBLISHes (MQTT 5); single packets (CONNECT, a 3 KB PUBLISH as captured,
//! cut at 1024 bytes, SUBACK with and without the connection's version);
//! and inference.
//!
//! Each batch benchmark runs twice, once with `Throughput::Bytes` (MB/s) and
//! once with `Throughput::Elements` counting packets (packets/s).

use std::hint::black_box;

use causeway_l7::infer::MessageKind;
use causeway_l7::mqtt::{infer, parse, parse_with_version, Version};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const PIPELINED_QOS1: &[u8] = include_bytes!("../tests/fixtures/mqtt/v311_pipelined_qos1.rec");
const PIPELINED_QOS0: &[u8] = include_bytes!("../tests/fixtures/mqtt/v5_pipelined_qos0.rec");
const PUB_BIG: &[u8] = include_bytes!("../tests/fixtures/mqtt/v5_pub_big.rec");
const SUB_V5: &[u8] = include_bytes!("../tests/fixtures/mqtt/v5_sub.rec");

/// The recorded chunk of `len` bytes in a `.rec` file.
fn chunk(rec: &'static [u8], len: usize) -> &'static [u8] {
    let mut b = rec;
    while !b.is_empty() {
        let n = u32::from_be_bytes([b[2], b[3], b[4], b[5]]) as usize;
        if n == len {
            return &b[6..6 + n];
        }
        b = &b[6 + n..];
    }
    panic!("no chunk of {len} bytes");
}

/// Parses every packet of a write; returns how many.
fn split(buf: &[u8], kind: MessageKind) -> usize {
    let mut pos = 0;
    let mut n = 0;
    while pos < buf.len() {
        let Ok(h) = parse(&buf[pos..], kind) else {
            break;
        };
        let Some(len) = h.message_len else {
            break;
        };
        black_box(&h);
        pos += len as usize;
        n += 1;
    }
    n
}

fn bench(c: &mut Criterion) {
    let publishes = chunk(PIPELINED_QOS1, 542);
    let pubacks = chunk(PIPELINED_QOS1, 72);
    let qos0 = chunk(PIPELINED_QOS0, 420);
    assert_eq!(split(publishes, MessageKind::Request), 19);
    assert_eq!(split(pubacks, MessageKind::Response), 18);
    assert_eq!(split(qos0, MessageKind::Request), 20);

    let mut g = c.benchmark_group("mqtt");
    for (name, buf, kind, n) in [
        (
            "pipelined_publish_qos1_19",
            publishes,
            MessageKind::Request,
            19,
        ),
        ("puback_batch_18", pubacks, MessageKind::Response, 18),
        (
            "pipelined_publish_qos0_v5_20",
            qos0,
            MessageKind::Request,
            20,
        ),
    ] {
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_function(format!("{name}/bytes"), |b| {
            b.iter(|| split(black_box(buf), kind))
        });
        g.throughput(Throughput::Elements(n));
        g.bench_function(format!("{name}/messages"), |b| {
            b.iter(|| split(black_box(buf), kind))
        });
    }
    let connect = chunk(SUB_V5, 26);
    let suback = chunk(SUB_V5, 7);
    for (name, buf, kind) in [
        ("connect_v5", connect, MessageKind::Request),
        (
            "publish_3k_cut_1024",
            &chunk(PUB_BIG, 3022)[..1024],
            MessageKind::Request,
        ),
        ("suback_v5_unknown_version", suback, MessageKind::Response),
    ] {
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_function(format!("parse/{name}"), |b| {
            b.iter(|| parse(black_box(buf), kind))
        });
    }
    g.bench_function("parse/suback_v5_known_version", |b| {
        b.iter(|| parse_with_version(black_box(suback), MessageKind::Response, Some(Version::V5)))
    });
    g.finish();

    let mut g = c.benchmark_group("mqtt_infer");
    g.bench_function("connect", |b| b.iter(|| infer(black_box(connect))));
    g.bench_function("pipelined_publish_qos1_19", |b| {
        b.iter(|| infer(black_box(publishes)))
    });
    g.bench_function("puback_batch_18_rejected", |b| {
        b.iter(|| infer(black_box(pubacks)))
    });
    let binary: Vec<u8> = (0..1024u32).map(|i| (i * 7 + 3) as u8).collect();
    g.bench_function("binary", |b| b.iter(|| infer(black_box(&binary))));
    let http = b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n";
    g.bench_function("http_request", |b| b.iter(|| infer(black_box(&http[..]))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
