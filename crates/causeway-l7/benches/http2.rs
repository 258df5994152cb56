//! Cost of the HTTP/2 path on connections recorded from real software
//! (tests/fixtures/http2/record.py): each direction of a connection fed
//! syscall by syscall (as recorded) through a fresh `HalfConnection` —
//! frame cursor, header blocks, HPACK with its dynamic table, the span
//! fields copied out. A "message" is one header block (request head,
//! response head or trailers); throughput is over all bytes of the
//! direction, DATA included. Also HPACK alone on RFC 7541's Huffman example
//! and inference on the preface.

use std::hint::black_box;

use causeway_l7::hpack::Decoder;
use causeway_l7::http2::{self, Event, HalfConnection};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// The recv chunks of one direction ('C' or 'S') of connection 0.
fn direction(name: &str, dir: u8) -> Vec<Vec<u8>> {
    let path = format!(
        "{}/tests/fixtures/http2/{name}.rec",
        env!("CARGO_MANIFEST_DIR")
    );
    let data = std::fs::read(path).expect("fixture");
    let mut out = Vec::new();
    let mut i = 0;
    while i < data.len() {
        let len = u32::from_be_bytes(data[i + 2..i + 6].try_into().unwrap()) as usize;
        if data[i] == dir && data[i + 1] == 0 {
            out.push(data[i + 6..i + 6 + len].to_vec());
        }
        i += 6 + len;
    }
    out
}

/// Feeds every chunk; returns the header blocks seen.
fn run(chunks: &[Vec<u8>], client: bool) -> usize {
    let mut h = if client {
        HalfConnection::client()
    } else {
        HalfConnection::server()
    };
    let mut blocks = 0;
    for c in chunks {
        h.feed(c, c.len() as u64, &mut |e| {
            if let Event::Headers { fields, .. } = e {
                black_box(&fields);
                blocks += 1;
            }
        });
    }
    blocks
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("http2");
    for (name, rec, dir) in [
        ("h2load_requests", "h2load", b'C'),
        ("h2load_responses", "h2load", b'S'),
        ("grpc_requests", "grpc", b'C'),
        ("grpc_responses", "grpc", b'S'),
    ] {
        let chunks = direction(rec, dir);
        let client = dir == b'C';
        let blocks = run(&chunks, client);
        let bytes: usize = chunks.iter().map(Vec::len).sum();
        assert!(blocks > 0, "{name}");
        g.throughput(Throughput::Elements(blocks as u64));
        g.bench_function(format!("{name}/msgs"), |b| {
            b.iter(|| run(black_box(&chunks), client))
        });
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function(format!("{name}/bytes"), |b| {
            b.iter(|| run(black_box(&chunks), client))
        });
    }
    // RFC 7541 C.4.1: a request head with a Huffman-coded authority.
    let block = [
        0x82, 0x86, 0x84, 0x41, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90,
        0xf4, 0xff,
    ];
    g.throughput(Throughput::Elements(1));
    g.bench_function("hpack_rfc_c4_1/msgs", |b| {
        b.iter(|| {
            let mut d = Decoder::new();
            let mut n = 0;
            d.decode(black_box(&block), true, &mut |_, v| n += v.len())
                .unwrap();
            n
        })
    });
    g.bench_function("infer_preface", |b| {
        b.iter(|| http2::infer(black_box(http2::PREFACE)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
