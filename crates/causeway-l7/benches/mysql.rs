//! Cost of the MySQL parsing path on recorded MariaDB 10.11 traffic
//! (tests/fixtures/mysql): the head of a COM_QUERY (short, and one cut at
//! the default 1024-byte capture), of ERR and OK replies and of a result
//! set; `ends_message` over a whole result set and over one 16 KiB server
//! write of a big one; and inference on a query, a greeting and bytes that
//! are not MySQL.

use std::hint::black_box;

use causeway_l7::infer::MessageKind;
use causeway_l7::mysql::{ends_message, infer, parse};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const SELECT_ROWS: &[u8] = include_bytes!("../tests/fixtures/mysql/select_rows.req");
const LARGE_QUERY: &[u8] = include_bytes!("../tests/fixtures/mysql/large_query.req");
const SYNTAX_ERROR: &[u8] = include_bytes!("../tests/fixtures/mysql/syntax_error.resp");
const INSERT_OK: &[u8] = include_bytes!("../tests/fixtures/mysql/insert.resp");
const ROWS_REPLY: &[u8] = include_bytes!("../tests/fixtures/mysql/select_rows.resp");
const LARGE_RESULT: &[u8] = include_bytes!("../tests/fixtures/mysql/large_result.resp");
const GREETING: &[u8] = include_bytes!("../tests/fixtures/mysql/greeting.resp");
const LOGIN: &[u8] = include_bytes!("../tests/fixtures/mysql/login.req");

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("mysql");
    let cut_query = &LARGE_QUERY[..1024];
    for (name, buf, kind) in [
        ("parse/com_query", SELECT_ROWS, MessageKind::Request),
        ("parse/com_query_1024_cut", cut_query, MessageKind::Request),
        ("parse/login", LOGIN, MessageKind::Request),
        ("parse/err_1064", SYNTAX_ERROR, MessageKind::Response),
        ("parse/ok_insert", INSERT_OK, MessageKind::Response),
        ("parse/result_set", ROWS_REPLY, MessageKind::Response),
    ] {
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_function(name, |b| b.iter(|| parse(black_box(buf), kind)));
    }

    // The first write of a result set (walked) and a later 16 KiB write of
    // a big one (searched from its end), as the agent asks after each.
    let last_write = &LARGE_RESULT[LARGE_RESULT.len() - LARGE_RESULT.len() % 16384..];
    for (name, buf) in [
        ("ends_message/result_set", ROWS_REPLY),
        ("ends_message/first_16k_write", &LARGE_RESULT[..16384]),
        ("ends_message/last_write", last_write),
    ] {
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| ends_message(black_box(buf), MessageKind::Response))
        });
    }

    let http = b"GET /api/v1/users?id=42 HTTP/1.1\r\nHost: example.com\r\n\r\n".as_slice();
    let binary: Vec<u8> = (0..1024u32).map(|i| (i * 7 + 3) as u8).collect();
    for (name, buf) in [
        ("infer/com_query", SELECT_ROWS),
        ("infer/greeting", GREETING),
        ("infer/http", http),
        ("infer/binary", binary.as_slice()),
    ] {
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_function(name, |b| b.iter(|| infer(black_box(buf))));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
