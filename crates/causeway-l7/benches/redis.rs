//! Cost of the Redis parsing path on recorded Redis 7.0 traffic: a
//! redis-benchmark batch of 16 pipelined SETs split at `message_len` as the
//! agent does, single GET replies, and inference.
//!
//! Each batch benchmark runs twice, once with `Throughput::Bytes` (MB/s) and
//! once with `Throughput::Elements` counting messages (messages/s).

use std::hint::black_box;

use causeway_l7::infer::MessageKind;
use causeway_l7::redis::{infer, parse};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const PIPELINE_SET: &[u8] = include_bytes!("../tests/fixtures/redis/pipeline_set.req");
const PIPELINE_GET_REPLIES: &[u8] = include_bytes!("../tests/fixtures/redis/pipeline_get.resp");
const GET_REPLY: &[u8] = include_bytes!("../tests/fixtures/redis/get.resp");
const GET_BIG_REPLY: &[u8] = include_bytes!("../tests/fixtures/redis/get_big.resp");
const HGETALL_RESP3: &[u8] = include_bytes!("../tests/fixtures/redis/resp3_hgetall_map.resp");
const LOWERCASE_HGET: &[u8] = include_bytes!("../tests/fixtures/redis/lowercase.req");

/// Parses every message of a pipelined write; returns how many.
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
    assert_eq!(split(PIPELINE_SET, MessageKind::Request), 16);
    assert_eq!(split(PIPELINE_GET_REPLIES, MessageKind::Response), 16);

    let mut g = c.benchmark_group("redis");
    for (name, buf, kind) in [
        ("pipeline_set_16", PIPELINE_SET, MessageKind::Request),
        (
            "pipeline_get_replies_16",
            PIPELINE_GET_REPLIES,
            MessageKind::Response,
        ),
    ] {
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_function(format!("{name}/bytes"), |b| {
            b.iter(|| split(black_box(buf), kind))
        });
        g.throughput(Throughput::Elements(16));
        g.bench_function(format!("{name}/messages"), |b| {
            b.iter(|| split(black_box(buf), kind))
        });
    }
    // As captured: the big reply cut at the default 1024-byte cap.
    for (name, buf, kind) in [
        ("get_reply", GET_REPLY, MessageKind::Response),
        (
            "get_big_reply_cut_1024",
            &GET_BIG_REPLY[..1024],
            MessageKind::Response,
        ),
        ("hgetall_resp3_map", HGETALL_RESP3, MessageKind::Response),
        ("lowercase_hget", LOWERCASE_HGET, MessageKind::Request),
    ] {
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_function(format!("parse/{name}"), |b| {
            b.iter(|| parse(black_box(buf), kind))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("redis_infer");
    g.bench_function("request", |b| b.iter(|| infer(black_box(PIPELINE_SET))));
    g.bench_function("reply", |b| b.iter(|| infer(black_box(GET_REPLY))));
    let binary: Vec<u8> = (0..1024u32).map(|i| (i * 7 + 3) as u8).collect();
    g.bench_function("binary", |b| b.iter(|| infer(black_box(&binary))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
