//! Cost of the Dubbo path on traffic recorded from sofa-rpc-node with
//! dubbo-remoting (`tests/fixtures/dubbo/record.py`): a call (hessian2 body
//! read through its attachments), a call with a traceparent, an error
//! answer, three calls in one read split at `message_len`, a 40 kB call
//! cut at the 1024-byte capture cap, and inference. Messages/s and MB/s
//! per core.

use std::hint::black_box;

use causeway_l7::dubbo::{infer, parse};
use causeway_l7::infer::MessageKind;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// The bytes one side sent in a recording (`C` or `S`), cut at `cap`.
fn sent(rec: &[u8], dir: u8, cap: usize) -> Vec<u8> {
    let (mut b, mut out) = (rec, Vec::new());
    while !b.is_empty() {
        let n = u32::from_be_bytes([b[2], b[3], b[4], b[5]]) as usize;
        if b[0] == dir {
            out.extend_from_slice(&b[6..6 + n]);
        }
        b = &b[6 + n..];
    }
    out.truncate(cap);
    out
}

fn split(buf: &[u8], kind: MessageKind) -> usize {
    let (mut pos, mut n) = (0, 0);
    while pos < buf.len() {
        let Ok(h) = parse(&buf[pos..], kind) else {
            break;
        };
        black_box(&h);
        pos += h.message_len.unwrap_or(buf.len() as u64) as usize;
        n += 1;
    }
    n
}

fn bench(c: &mut Criterion) {
    let rec = |name: &str| -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/dubbo/{name}.rec",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("recording")
    };
    let echo = sent(&rec("echo"), b'C', usize::MAX);
    let traced = sent(&rec("traced"), b'C', usize::MAX);
    let fail = sent(&rec("fail"), b'S', usize::MAX);
    let three = sent(&rec("concurrent"), b'C', usize::MAX);
    let big = sent(&rec("big"), b'C', 1024);
    assert_eq!(split(&three, MessageKind::Request), 3);
    let mut g = c.benchmark_group("dubbo");
    for (name, buf, kind, msgs) in [
        ("request", &echo, MessageKind::Request, 1u64),
        ("request_traced", &traced, MessageKind::Request, 1),
        ("error_response", &fail, MessageKind::Response, 1),
        ("pipelined_3", &three, MessageKind::Request, 3),
        ("big_request_cap1024", &big, MessageKind::Request, 1),
    ] {
        g.throughput(Throughput::Elements(msgs));
        g.bench_function(format!("{name}/msgs"), |b| {
            b.iter(|| split(black_box(buf), kind))
        });
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_function(format!("{name}/bytes"), |b| {
            b.iter(|| split(black_box(buf), kind))
        });
    }
    g.throughput(Throughput::Elements(1));
    g.bench_function("infer", |b| b.iter(|| infer(black_box(&echo))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
