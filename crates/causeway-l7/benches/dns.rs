//! Cost of the DNS path on messages recorded from dnsmasq 2.90 and dig 9.18:
//! a query, answers with one and two records, an NXDOMAIN, a 863-byte TXT
//! answer over TCP, and inference. Messages/s and MB/s per core.

use std::hint::black_box;

use causeway_l7::dns::{infer, parse, Transport};
use causeway_l7::infer::MessageKind;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const QUERY: &[u8] = include_bytes!("../tests/fixtures/dns/a.req");
const ANSWER: &[u8] = include_bytes!("../tests/fixtures/dns/a.resp");
const CNAME: &[u8] = include_bytes!("../tests/fixtures/dns/cname.resp");
const NXDOMAIN: &[u8] = include_bytes!("../tests/fixtures/dns/nxdomain.resp");
const TCP_TXT: &[u8] = include_bytes!("../tests/fixtures/dns/tcp_big_txt.resp");

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("dns");
    for (name, buf, kind, t) in [
        ("query", QUERY, MessageKind::Request, Transport::Udp),
        ("answer_a", ANSWER, MessageKind::Response, Transport::Udp),
        (
            "answer_cname_a",
            CNAME,
            MessageKind::Response,
            Transport::Udp,
        ),
        ("nxdomain", NXDOMAIN, MessageKind::Response, Transport::Udp),
        (
            "tcp_txt_863B",
            TCP_TXT,
            MessageKind::Response,
            Transport::Tcp,
        ),
    ] {
        assert!(parse(buf, kind, t).is_ok(), "{name}");
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("{name}/msgs"), |b| {
            b.iter(|| parse(black_box(buf), kind, t))
        });
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_function(format!("{name}/bytes"), |b| {
            b.iter(|| parse(black_box(buf), kind, t))
        });
    }
    g.throughput(Throughput::Elements(1));
    g.bench_function("infer", |b| {
        b.iter(|| infer(black_box(QUERY), Transport::Udp))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
