//! Cost of the ProtobufRPC path on recorded frames (brpc baidu_std, meta and
//! payload encoded by Google's protobuf library): a request, a response with
//! an error text, two pipelined requests split at `message_len`, and
//! inference. Messages/s and MB/s per core.

use std::hint::black_box;

use causeway_l7::infer::MessageKind;
use causeway_l7::protobuf_rpc::{infer, parse, BAIDU_STD};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const ECHO: &[u8] = include_bytes!("../tests/fixtures/protobuf_rpc/echo.req");
const FAIL_RESP: &[u8] = include_bytes!("../tests/fixtures/protobuf_rpc/fail.resp");
const PIPELINED: &[u8] = include_bytes!("../tests/fixtures/protobuf_rpc/pipelined.req");

fn split(buf: &[u8], kind: MessageKind) -> usize {
    let (mut pos, mut n) = (0, 0);
    while pos < buf.len() {
        let Ok(h) = parse(&buf[pos..], kind, &BAIDU_STD) else {
            break;
        };
        black_box(&h);
        pos += h.message_len.unwrap_or(buf.len() as u64) as usize;
        n += 1;
    }
    n
}

fn bench(c: &mut Criterion) {
    assert_eq!(split(PIPELINED, MessageKind::Request), 2);
    let mut g = c.benchmark_group("protobuf_rpc");
    for (name, buf, kind, msgs) in [
        ("request", ECHO, MessageKind::Request, 1u64),
        ("error_response", FAIL_RESP, MessageKind::Response, 1),
        ("pipelined_2", PIPELINED, MessageKind::Request, 2),
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
    g.bench_function("infer", |b| b.iter(|| infer(black_box(ECHO))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
