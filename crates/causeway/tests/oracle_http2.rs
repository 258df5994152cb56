//! HTTP/2 (h2c, and h2 over TLS through the OpenSSL uprobes) and gRPC, end
//! to end: real servers (nginx, grpcio) driven by real clients (curl,
//! h2load, grpcio), watched live by `causeway watch` while tshark
//! captures; then `causeway replay` reads the capture. Every stream must
//! come out the same in tshark's dissection (method, path, status, stream
//! id; gRPC path, grpc-status, grpc-message), in the live client and server
//! spans and in the replayed spans, with equal counts.
//!
//! The watch runs with `--payload-cap 16384`: h2load keeps four streams in
//! flight, so one read holds several responses, and a frame header past
//! the capture cap costs the connection its framing until a later syscall
//! starts at a frame boundary (see causeway_l7::http2).

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;
use support::*;

/// (method, path, status) per (client port, stream id), from our spans.
type Facts = BTreeMap<(u64, u64), (String, String, Option<i64>, String)>;

fn ours(spans: &[&Value]) -> Facts {
    let mut m = BTreeMap::new();
    for sp in spans {
        let key = (n(sp, "src_port"), n(sp, "request_id"));
        let v = (
            s(sp, "request_type").to_owned(),
            s(sp, "request_resource").to_owned(),
            field(sp, "response_code").as_i64(),
            s(sp, "exception").to_owned(),
        );
        assert!(m.insert(key, v).is_none(), "one span per stream: {sp}");
    }
    m
}

fn run_curl(args: &[String]) {
    let out = Command::new("curl").args(args).output().expect("curl");
    assert!(out.status.success(), "curl {args:?}: {out:?}");
}

#[test]
fn h2c_nginx_curl_and_h2load_agree_with_tshark() {
    let _g = serial();
    let (srv, port, _tls) = nginx_h2();
    let base = format!("http://127.0.0.1:{port}");
    let Some((w, replayed, file)) = observe(port, &["--payload-cap", "16384"], || {
        // Three connections of one stream each, one a 404 (curl 7.88 fails
        // to reuse a prior-knowledge connection for a second URL: exit 16).
        for path in ["/", "/missing", "/a.txt"] {
            run_curl(&[
                "-s".into(),
                "--http2-prior-knowledge".into(),
                "-o".into(),
                "/dev/null".into(),
                "-H".into(),
                "X-Request-ID: h2-oracle-1".into(),
                "-H".into(),
                "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
                format!("{base}{path}"),
            ]);
        }
        // A request with a body that nginx reads whole (a PUT stored by
        // its DAV module: 201). (A POST to a `return 200` location races:
        // nginx answers and resets the stream before the body is read.)
        run_curl(&[
            "-s".into(),
            "--http2-prior-knowledge".into(),
            "-o".into(),
            "/dev/null".into(),
            "-X".into(),
            "PUT".into(),
            "--data-binary".into(),
            "p".repeat(5000),
            format!("{base}/upload/body.txt"),
        ]);
        // Many streams per connection, four in flight: HPACK's dynamic
        // table carries most fields after the first requests.
        let out = Command::new("h2load")
            .args(["-n", "60", "-c", "2", "-m", "4"])
            .arg(format!("{base}/"))
            .arg(format!("{base}/a.txt"))
            .arg(format!("{base}/missing"))
            .output()
            .expect("h2load (scripts/setup installs nghttp2-client)");
        assert!(out.status.success(), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("60 done, 40 succeeded, 20 failed"),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }) else {
        return;
    };
    drop(srv);
    let oracle: Facts = tshark_h2_streams(&file, port)
        .into_iter()
        .map(|(k, t)| (k, (t.method, t.path, t.status, String::new())))
        .collect();
    assert_eq!(oracle.len(), 3 + 1 + 60, "tshark streams: {oracle:#?}");
    assert_eq!(
        oracle.values().filter(|v| v.2 == Some(404)).count(),
        1 + 20,
        "404s"
    );
    let client = live(&w.spans, "http2", "client", port);
    let server = live(&w.spans, "http2", "server", port);
    let network: Vec<&Value> = replayed.iter().collect();
    assert_eq!(ours(&client), oracle, "live client spans vs tshark");
    assert_eq!(ours(&server), oracle, "live server spans vs tshark");
    assert_eq!(ours(&network), oracle, "replayed spans vs tshark");
    check_replay_matches_live(&replayed, &client);
    check_twins(&client, &server);
    for sp in client.iter().chain(&server).chain(&network) {
        assert_eq!(s(sp, "version"), "2");
        assert!(s(sp, "request_domain").starts_with("127.0.0.1:"), "{sp}");
    }
    let tagged: Vec<_> = network
        .iter()
        .filter(|sp| s(sp, "x_request_id") == "h2-oracle-1")
        .collect();
    assert_eq!(tagged.len(), 3);
    assert!(tagged
        .iter()
        .all(|sp| s(sp, "trace_id") == "0af7651916cd43dd8448eb211c80319c"));
    let put: Vec<_> = client
        .iter()
        .filter(|sp| s(sp, "request_type") == "PUT")
        .collect();
    assert_eq!(put.len(), 1);
    assert_eq!(n(put[0], "request_length"), 5000);
    assert_eq!(field(put[0], "response_code").as_i64(), Some(201));
    assert!(client
        .iter()
        .filter(|sp| s(sp, "request_resource") == "/a.txt")
        .all(|sp| n(sp, "response_length") == 3000));
}

/// The same requests over h2c and over TLS with ALPN h2 give the same
/// spans (TLS seen as plaintext through the OpenSSL uprobes of curl and
/// nginx), curl itself reports HTTP/2 with those statuses, and tshark,
/// decrypting with curl's key log, dissects the same streams.
#[test]
fn https_h2_through_openssl_equals_h2c() {
    let _g = serial();
    let (_srv, plain, tls) = nginx_h2();
    let keylog = temp_dir(&format!("keylog-{tls}")).join("keys.log");
    let Some(watch) = Watch::start(&["--payload-cap", "16384"]) else {
        return;
    };
    let tshark = Tshark::start(tls);
    // One curl per request (curl 7.88 cannot reuse a prior-knowledge
    // connection).
    let session = |url: String, extra: &str| -> Vec<String> {
        ["/", "/missing", "/a.txt"]
            .iter()
            .map(|path| {
                let out = Command::new("curl")
                    .env("SSLKEYLOGFILE", &keylog)
                    .args(["-sk", extra, "-o", "/dev/null", "-w"])
                    .arg("%{http_version} %{response_code}")
                    .arg(format!("{url}{path}"))
                    .output()
                    .expect("curl");
                assert!(out.status.success(), "{out:?}");
                String::from_utf8_lossy(&out.stdout).into_owned()
            })
            .collect()
    };
    let clear = session(
        format!("http://127.0.0.1:{plain}"),
        "--http2-prior-knowledge",
    );
    let secret = session(format!("https://127.0.0.1:{tls}"), "--http2");
    assert_eq!(clear, ["2 200", "2 404", "2 200"]);
    assert_eq!(secret, clear, "curl negotiated h2 over TLS");
    let file = tshark.stop();
    let w = watch.stop();
    assert_eq!(w.lost, 0, "{}", w.stats_line);
    let facts = |sp: &&Value| {
        (
            n(sp, "request_id"),
            s(sp, "request_type").to_owned(),
            s(sp, "request_resource").to_owned(),
            field(sp, "response_code").as_i64(),
            n(sp, "response_length"),
            s(sp, "version").to_owned(),
        )
    };
    let oracle: Facts = tshark_h2_streams_with(
        &file,
        tls,
        &[
            "-d".into(),
            format!("tcp.port=={tls},tls"),
            "-o".into(),
            format!("tls.keylog_file:{}", keylog.display()),
        ],
    )
    .into_iter()
    .map(|(k, t)| (k, (t.method, t.path, t.status, String::new())))
    .collect();
    assert_eq!(oracle.len(), 3, "tshark decrypted: {oracle:?}");
    for (op, comm) in [("client", "curl"), ("server", "nginx")] {
        let a: Vec<_> = spans_of(&w.spans, "http2", op, comm, plain)
            .iter()
            .map(facts)
            .collect();
        let secret = spans_of(&w.spans, "http2", op, comm, tls);
        let b: Vec<_> = secret.iter().map(facts).collect();
        assert_eq!(a.len(), 3, "{op} h2c spans: {:#?}", w.spans);
        assert_eq!(a, b, "{op}: h2 over TLS equals h2c");
        assert!(secret.iter().all(|sp| field(sp, "is_tls") == true));
        assert_eq!(ours(&secret), oracle, "{op} TLS spans vs tshark");
    }
}

#[test]
fn grpc_python_agrees_with_tshark() {
    let _g = serial();
    let srv = grpc_server();
    let port = srv.port;
    let Some((w, replayed, file)) = observe(port, &["--payload-cap", "16384"], || {
        let out = Command::new("python3")
            .arg(h2_fixtures().join("grpc_client.py"))
            .arg(port.to_string())
            .output()
            .expect("python3 grpc_client.py");
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Find NOT_FOUND no item 42"), "{text}");
    }) else {
        return;
    };
    drop(srv);
    let streams = tshark_h2_streams(&file, port);
    let oracle: Facts = streams
        .iter()
        .map(|(k, t)| {
            let msg = if t.grpc_status == Some(0) {
                String::new()
            } else {
                percent_decode(&t.grpc_message)
            };
            (*k, (t.method.clone(), t.path.clone(), t.grpc_status, msg))
        })
        .collect();
    let paths: Vec<&str> = oracle.values().map(|v| v.1.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/demo.Echo/Say",
            "/demo.Echo/Say",
            "/demo.Echo/Count",
            "/demo.Echo/Find",
            "/demo.Echo/Boom",
            "/demo.Echo/Say"
        ],
        "tshark: {streams:#?}"
    );
    assert!(streams.values().all(|t| t.status == Some(200)));
    let client = live(&w.spans, "grpc", "client", port);
    let server = live(&w.spans, "grpc", "server", port);
    let network: Vec<&Value> = replayed.iter().collect();
    assert_eq!(ours(&client), oracle, "live client spans vs tshark");
    assert_eq!(ours(&server), oracle, "live server spans vs tshark");
    assert_eq!(ours(&network), oracle, "replayed spans vs tshark");
    check_replay_matches_live(&replayed, &client);
    check_twins(&client, &server);
    for sp in client.iter().chain(&server).chain(&network) {
        let code = field(sp, "response_code").as_i64();
        let want = match code {
            Some(0) => "ok",
            Some(5) => "client_error",
            Some(13) => "server_error",
            other => panic!("unexpected grpc-status {other:?}"),
        };
        assert_eq!(s(sp, "response_status"), want);
        assert_eq!(s(sp, "endpoint"), s(sp, "request_resource"));
        assert_eq!(s(sp, "result"), ":status 200");
    }
}

/// h2c by upgrade: curl sends HTTP/1.1 with `Upgrade: h2c`, Apache answers
/// `101` and goes on in HTTP/2 on the same connection; the upgraded request
/// is stream 1, and its span is an HTTP/2 span with the HTTP/1 request's
/// method and path and the status of stream 1's HEADERS (tshark dissects
/// the same switch).
#[test]
fn h2c_upgrade_apache_agrees_with_tshark() {
    let _g = serial();
    let srv = apache_h2c();
    let port = srv.port;
    let base = format!("http://127.0.0.1:{port}");
    let Some((w, replayed, file)) = observe(port, &["--payload-cap", "16384"], || {
        for path in ["/index.html", "/nope", "/index.html"] {
            let out = Command::new("curl")
                .args(["-s", "--http2", "-o", "/dev/null", "-w", "%{http_version}"])
                .args(["-H", "X-Request-ID: upgrade-1"])
                .arg(format!("{base}{path}"))
                .output()
                .expect("curl");
            assert!(out.status.success());
            assert_eq!(String::from_utf8_lossy(&out.stdout), "2", "upgraded");
        }
    }) else {
        return;
    };
    drop(srv);
    // tshark: the HTTP/1 request per connection, and stream 1's status.
    let rows = tshark_fields(
        &file,
        Some((port, "http")),
        "http.request || http2.type == 1",
        &[
            "tcp.srcport",
            "tcp.dstport",
            "http.request.method",
            "http.request.uri",
            "http2.streamid",
            "http2.headers.status",
        ],
    );
    let mut oracle: Facts = BTreeMap::new();
    for r in &rows {
        let to_server = r[1] == port.to_string();
        let client: u64 = if to_server { &r[0] } else { &r[1] }.parse().unwrap();
        let e = oracle.entry((client, 1)).or_default();
        if to_server && !r[2].is_empty() {
            e.0 = r[2].clone();
            e.1 = r[3].clone();
        }
        if !to_server && occurrences(&r[4]).contains(&"1") && !r[5].is_empty() {
            e.2 = occurrences(&r[5])[0].parse().ok();
        }
    }
    assert_eq!(oracle.len(), 3, "tshark: {rows:?}");
    assert_eq!(
        oracle.values().filter(|v| v.2 == Some(404)).count(),
        1,
        "{oracle:?}"
    );
    let client = live(&w.spans, "http2", "client", port);
    let server = live(&w.spans, "http2", "server", port);
    let network: Vec<&Value> = replayed.iter().collect();
    assert_eq!(ours(&client), oracle, "live client spans vs tshark");
    assert_eq!(ours(&server), oracle, "live server spans vs tshark");
    assert_eq!(ours(&network), oracle, "replayed spans vs tshark");
    check_replay_matches_live(&replayed, &client);
    check_twins(&client, &server);
    assert!(network
        .iter()
        .all(|sp| s(sp, "x_request_id") == "upgrade-1" && s(sp, "version") == "2"));
    // The 101s are no spans of their own.
    assert!(w
        .spans
        .iter()
        .all(|sp| field(sp, "response_code").as_i64() != Some(101)));
}
