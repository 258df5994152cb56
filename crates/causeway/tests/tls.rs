//! TLS without keys: nginx over HTTPS driven by curl, both linking OpenSSL.
//! The plaintext spans seen through the uprobes must equal those of the same
//! requests over plain HTTP, on both sides, and carry the socket's TCP facts.

mod support;

use serde_json::Value;
use std::process::{Command, Stdio};
use support::*;

/// nginx with the same files on a plain and a TLS listener (self-signed cert).
fn nginx_plain_and_tls() -> (Server, u16, u16) {
    let plain = free_port();
    let tls = free_port();
    let dir = temp_dir(&format!("nginx-tls-{tls}"));
    let www = dir.join("www");
    std::fs::create_dir_all(&www).expect("www");
    std::fs::write(www.join("small.txt"), vec![b's'; 100]).expect("file");
    std::fs::write(www.join("big.bin"), vec![b'b'; 200_000]).expect("file");
    run_ok(
        Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=localhost", "-keyout"])
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem"))
            .stderr(Stdio::null()),
    );
    let conf = format!(
        "daemon off;\nworker_processes 1;\nerror_log {d}/error.log;\npid {d}/nginx.pid;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
           server {{\n    listen 127.0.0.1:{plain};\n    listen 127.0.0.1:{tls} ssl;\n\
             ssl_certificate {d}/cert.pem;\n    ssl_certificate_key {d}/key.pem;\n\
             root {d}/www;\n    location /post {{ return 200 \"posted\\n\"; }}\n  }}\n}}\n",
        d = dir.display(),
    );
    std::fs::write(dir.join("nginx.conf"), conf).expect("conf");
    let child = Command::new("nginx")
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .args(["-g", "user root;"])
        .stdout(Stdio::null())
        .spawn()
        .expect("nginx");
    wait_for_port(plain);
    wait_for_port(tls);
    (Server { child, port: tls }, plain, tls)
}

/// The facts that must not depend on TLS (the Host header's port may).
fn facts(sp: &Value) -> (String, String, Option<i64>, String, u64) {
    (
        s(sp, "request_type").to_owned(),
        s(sp, "request_resource").to_owned(),
        field(sp, "response_code").as_i64(),
        s(sp, "response_status").to_owned(),
        n(sp, "response_length"),
    )
}

#[test]
fn openssl_plaintext_equals_plain_http() {
    let _g = serial();
    let (_srv, plain, tls) = nginx_plain_and_tls();
    let Some(watch) = Watch::start(&[]) else {
        return;
    };
    let session = |scheme: &str, port: u16| {
        let base = format!("{scheme}://127.0.0.1:{port}");
        let body = "p".repeat(5000);
        run_ok(
            Command::new("curl")
                .args([
                    "-sk",
                    "-o",
                    "/dev/null",
                    "-o",
                    "/dev/null",
                    "-o",
                    "/dev/null",
                ])
                .args(["-H", "X-Request-ID: tls-test"])
                .arg(format!("{base}/small.txt"))
                .arg(format!("{base}/missing"))
                .arg(format!("{base}/big.bin")),
        );
        run_ok(
            Command::new("curl")
                .args(["-sk", "-o", "/dev/null", "--data-binary", &body])
                .arg(format!("{base}/post")),
        );
    };
    session("http", plain);
    session("https", tls);
    let w = watch.stop();
    assert_eq!(w.lost, 0, "{}", w.stats_line);

    let spans_at = |port: u16, op: &str, comm: &str| spans_of(&w.spans, "http", op, comm, port);
    for (op, comm) in [("client", "curl"), ("server", "nginx")] {
        let clear = spans_at(plain, op, comm);
        let secret = spans_at(tls, op, comm);
        assert_eq!(clear.len(), 4, "{op} plain spans: {:#?}", w.spans);
        let a: Vec<_> = clear.iter().map(|sp| facts(sp)).collect();
        let b: Vec<_> = secret.iter().map(|sp| facts(sp)).collect();
        assert_eq!(a, b, "{op}: HTTPS plaintext spans equal plain HTTP ones");
        assert!(clear.iter().all(|sp| field(sp, "is_tls") == false));
        assert!(secret.iter().all(|sp| field(sp, "is_tls") == true));
        assert!(secret
            .iter()
            .all(|sp| s(sp, "x_request_id") == "tls-test" || s(sp, "request_resource") == "/post"));
        assert!(secret
            .iter()
            .all(|sp| n(sp, "socket_id") != 0 && n(sp, "src_port") != 0));
    }
    // Client and server spans of one TLS request share the TCP sequence of
    // the record that carried it. (The POST is left out: nginx discards its
    // body and answers before it has read the last record of it.)
    let no_post = |op: &str, comm: &str| -> Vec<&Value> {
        spans_at(tls, op, comm)
            .into_iter()
            .filter(|sp| s(sp, "request_type") != "POST")
            .collect()
    };
    check_twins(&no_post("client", "curl"), &no_post("server", "nginx"));
}

/// Builds the stdlib-only Go HTTPS server and client of `fixtures/go_tls`.
fn go_tls_binary() -> std::path::PathBuf {
    let dir = temp_dir("go-tls");
    let bin = dir.join("go_tls");
    run_ok(
        Command::new("go")
            .args(["build", "-o"])
            .arg(&bin)
            .arg(fixtures().join("go_tls/main.go"))
            .env("GO111MODULE", "off")
            .env("GOPROXY", "off")
            .env("GOCACHE", dir.join("cache")),
    );
    bin
}

#[test]
fn go_crypto_tls_plaintext_equals_plain_http() {
    let _g = serial();
    let bin = go_tls_binary();
    let (tls, plain) = (free_port(), free_port());
    // Started before the watch, so its first scan finds the executable; the
    // client is the same file, so the same probes cover it.
    let start = |port: u16, mode: &str| {
        let child = Command::new(&bin)
            .args(["server", &port.to_string(), mode])
            .stdout(Stdio::piped())
            .spawn()
            .expect("go_tls server");
        wait_for_port(port);
        Server { child, port }
    };
    let mut tls_srv = start(tls, "tls");
    let _plain_srv = start(plain, "plain");
    let Some(watch) = Watch::start(&[]) else {
        return;
    };
    for (scheme, port) in [("https", tls), ("http", plain)] {
        let urls: Vec<String> = ["/small", "/nope", "/post"]
            .iter()
            .map(|p| format!("{scheme}://127.0.0.1:{port}{p}"))
            .collect();
        let out = run_ok(Command::new(&bin).arg("client").args(&urls));
        assert_eq!(out, "200 /small\n404 /nope\n200 /post\n");
    }
    let w = watch.stop();
    assert_eq!(w.lost, 0, "{}", w.stats_line);
    // What the server says each request's goroutine was.
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(tls_srv.child.id() as i32, libc::SIGKILL) };
    let _ = tls_srv.child.wait();
    let mut said = String::new();
    use std::io::Read;
    tls_srv
        .child
        .stdout
        .take()
        .expect("server stdout")
        .read_to_string(&mut said)
        .expect("read server stdout");
    let goids: Vec<u64> = said
        .lines()
        .filter_map(|l| l.strip_prefix("goid="))
        .map(|l| l.split(' ').next().unwrap_or("").parse().expect("goid"))
        .collect();
    assert_eq!(goids.len(), 3, "{said}");

    for op in ["client", "server"] {
        let secret = spans_of(&w.spans, "http", op, "go_tls", tls);
        let clear = spans_of(&w.spans, "http", op, "go_tls", plain);
        assert_eq!(secret.len(), 3, "{op} TLS spans: {:#?}", w.spans);
        let a: Vec<_> = clear.iter().map(|sp| facts(sp)).collect();
        let b: Vec<_> = secret.iter().map(|sp| facts(sp)).collect();
        assert_eq!(a, b, "{op}: Go TLS plaintext spans equal plain HTTP ones");
        assert!(secret.iter().all(|sp| field(sp, "is_tls") == true));
        assert!(secret.iter().all(|sp| n(sp, "coroutine_id_req") != 0));
    }
    let server = spans_of(&w.spans, "http", "server", "go_tls", tls);
    // The handler's goroutine writes the response. (The request's first
    // byte may be read by net/http's background-read goroutine instead.)
    let server_goids: Vec<u64> = server.iter().map(|sp| n(sp, "coroutine_id_resp")).collect();
    assert_eq!(
        server_goids, goids,
        "the goroutine that answered each request"
    );
    // Client and server saw the same requests, in the same order. (TCP
    // sequences are not compared: Go's TLS reader reads ahead of the
    // records it returns, so the sequence at a Read's entry can be past
    // the record that Read returns.)
    let client = spans_of(&w.spans, "http", "client", "go_tls", tls);
    let side = |v: &[&Value]| -> Vec<_> {
        v.iter()
            .map(|sp| (facts(sp), n(sp, "request_length"), n(sp, "src_port")))
            .collect()
    };
    assert_eq!(side(&client), side(&server));
}
