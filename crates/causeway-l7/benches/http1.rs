//! Per-message cost of the parsing path: inference runs on every captured
//! message of an unclassified socket, the parsers on every HTTP message.

use std::hint::black_box;

use causeway_l7::http1::{parse_request, parse_response};
use causeway_l7::infer::infer;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const CURL_GET: &[u8] = b"GET /api/v1/users?id=42 HTTP/1.1\r\n\
Host: example.com:8080\r\n\
User-Agent: curl/8.5.0\r\n\
Accept: */*\r\n\
\r\n";

const NGINX_200: &[u8] = b"HTTP/1.1 200 OK\r\n\
Server: nginx/1.24.0\r\n\
Date: Tue, 14 May 2024 10:00:00 GMT\r\n\
Content-Type: text/html\r\n\
Content-Length: 615\r\n\
Last-Modified: Tue, 11 Apr 2023 01:45:34 GMT\r\n\
Connection: keep-alive\r\n\
ETag: \"6434bbbe-267\"\r\n\
Accept-Ranges: bytes\r\n\
\r\n";

// A browser-like request with a trace header, closer to service traffic.
const TRACED_GET: &[u8] =
    b"GET /checkout/cart?session=8f14e45fceea167a5a36dedd4bea2543 HTTP/1.1\r\n\
Host: shop.internal:8080\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Connection: keep-alive\r\n\
X-Request-ID: 5b3c8d2e-0f1a-4c6b-9e7d-2a1f3b4c5d6e\r\n\
traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\
\r\n";

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("http1");
    for (name, buf) in [("curl_get", CURL_GET), ("traced_get", TRACED_GET)] {
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_function(format!("parse_request/{name}"), |b| {
            b.iter(|| parse_request(black_box(buf)))
        });
    }
    g.throughput(Throughput::Bytes(NGINX_200.len() as u64));
    g.bench_function("parse_response/nginx_200", |b| {
        b.iter(|| parse_response(black_box(NGINX_200)))
    });
    g.finish();

    let mut g = c.benchmark_group("infer");
    g.bench_function("request", |b| b.iter(|| infer(black_box(CURL_GET))));
    g.bench_function("response", |b| b.iter(|| infer(black_box(NGINX_200))));
    let binary: Vec<u8> = (0..1024u32).map(|i| (i * 7 + 3) as u8).collect();
    g.bench_function("binary", |b| b.iter(|| infer(black_box(&binary))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
