//! Per-message cost of the PostgreSQL parser on recorded pgbench traffic
//! (`tests/fixtures/postgresql/pgbench_extended.rec`): an extended-query
//! batch (Parse, Bind, Describe, Execute, Sync) and its response, the
//! startup response with its ParameterStatus flood, and inference, which
//! runs on every message of a socket not yet classified.

use std::hint::black_box;

use causeway_l7::infer::MessageKind;
use causeway_l7::postgresql::{ends_message, infer, parse};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const PGBENCH: &[u8] = include_bytes!("../tests/fixtures/postgresql/pgbench_extended.rec");

/// The `i`th record of a fixture (see `record.py` for the format).
fn record(mut b: &[u8], i: usize) -> &[u8] {
    for n in 0.. {
        let [_, _, l0, l1, l2, l3, rest @ ..] = b else {
            break;
        };
        let len = u32::from_be_bytes([*l0, *l1, *l2, *l3]) as usize;
        if n == i {
            return &rest[..len];
        }
        b = &rest[len..];
    }
    panic!("fixture has no record {i}");
}

fn bench(c: &mut Criterion) {
    // Record 19: `SELECT abalance FROM pgbench_accounts WHERE aid = $1`
    // as Parse/Bind/Describe/Execute/Sync; 20: its ParseComplete,
    // BindComplete, RowDescription, DataRow, CommandComplete,
    // ReadyForQuery; 14: the answer to the startup message.
    let batch = record(PGBENCH, 19);
    let answer = record(PGBENCH, 20);
    let startup_answer = record(PGBENCH, 14);
    assert!(parse(batch, MessageKind::Request).is_ok());
    assert!(parse(answer, MessageKind::Response).is_ok());

    let mut g = c.benchmark_group("postgresql");
    for (name, buf, kind) in [
        ("parse/extended_batch", batch, MessageKind::Request),
        ("parse/extended_response", answer, MessageKind::Response),
        (
            "parse/startup_response",
            startup_answer,
            MessageKind::Response,
        ),
    ] {
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_function(name, |b| b.iter(|| parse(black_box(buf), kind)));
    }
    g.throughput(Throughput::Bytes(answer.len() as u64));
    g.bench_function("ends_message/extended_response", |b| {
        b.iter(|| ends_message(black_box(answer), MessageKind::Response))
    });
    for (name, buf) in [
        ("infer/extended_batch", batch),
        ("infer/extended_response", answer),
    ] {
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_function(name, |b| b.iter(|| infer(black_box(buf))));
    }
    let binary: Vec<u8> = (0..1024u32).map(|i| (i * 7 + 3) as u8).collect();
    g.throughput(Throughput::Bytes(binary.len() as u64));
    g.bench_function("infer/binary", |b| b.iter(|| infer(black_box(&binary))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
