//! End to end: real servers (nginx, python3 http.server), real clients (curl,
//! wrk, urllib), the real BPF programs in a real `causeway watch`, and
//! assertions on the JSON spans it prints, checked against what the clients
//! themselves report.

mod support;

use serde_json::Value;
use std::process::Command;
use support::*;

/// Client spans seen in `client_comm` towards `port`, oldest first.
fn side<'a>(spans: &'a [Value], op: &str, comm: &str, port: u16) -> Vec<&'a Value> {
    let mut v: Vec<&Value> = spans
        .iter()
        .filter(|sp| s(sp, "observation_point") == op && s(sp, "comm") == comm)
        .filter(|sp| n(sp, "dst_port") == port as u64)
        .collect();
    v.sort_by_key(|sp| n(sp, "start_time_us"));
    v
}

fn status_of(code: i64) -> &'static str {
    match code {
        400..=499 => "client_error",
        500..=599 => "server_error",
        _ => "ok",
    }
}

/// Every transfer curl made appears exactly once at the client and once at
/// the server, with curl's method, path, status and byte counts, and the two
/// sides agree on the request's TCP sequence number.
fn check_both_sides(w: &Watched, transfers: &[Transfer], server_comm: &str, port: u16) {
    let client = side(&w.spans, "client", "curl", port);
    let server = side(&w.spans, "server", server_comm, port);
    assert_eq!(w.lost, 0, "{}", w.stats_line);
    assert_eq!(client.len(), transfers.len(), "client spans: {client:#?}");
    assert_eq!(server.len(), transfers.len(), "server spans: {server:#?}");
    for (t, c) in transfers.iter().zip(&client) {
        assert_eq!(s(c, "protocol"), "http");
        assert_eq!(s(c, "request_type"), t.method, "{c}");
        assert_eq!(s(c, "request_resource"), t.path, "{c}");
        assert_eq!(field(c, "response_code").as_i64(), Some(t.code), "{c}");
        assert_eq!(s(c, "response_status"), status_of(t.code), "{c}");
        assert_eq!(
            n(c, "request_length"),
            t.request_bytes,
            "request bytes of {c}"
        );
        assert_eq!(
            n(c, "response_length"),
            t.response_bytes,
            "response bytes of {c}"
        );
        assert_eq!(n(c, "src_port"), t.local_port as u64);
        assert_eq!(s(c, "dst_ip"), "127.0.0.1");
        assert_eq!(s(c, "request_domain"), format!("127.0.0.1:{port}"));
        let same_seq: Vec<&&Value> = server
            .iter()
            .filter(|sv| n(sv, "req_tcp_seq") == n(c, "req_tcp_seq"))
            .collect();
        assert_eq!(same_seq.len(), 1, "one server span with req_tcp_seq of {c}");
        let sv = same_seq[0];
        for f in [
            "request_type",
            "request_resource",
            "response_code",
            "request_length",
            "response_length",
            "src_ip",
            "src_port",
            "dst_port",
            "resp_tcp_seq",
        ] {
            assert_eq!(field(sv, f), field(c, f), "{f}: client {c} server {sv}");
        }
        assert!(
            n(c, "duration_us") >= n(sv, "duration_us"),
            "client waits longer"
        );
        assert!(n(sv, "syscall_trace_id_req") != 0);
    }
}

/// One curl run on one keep-alive connection: GETs of `paths`, then a POST of
/// `post_len` bytes (several times the 1024-byte capture cap) to `post_path`.
fn curl_session(port: u16, paths: &[&str], post_path: &str, post_len: usize) -> Vec<Transfer> {
    let base = format!("http://127.0.0.1:{port}");
    let each = |url: String| {
        [
            "-o".into(),
            "/dev/null".into(),
            "-w".into(),
            CURL_FORMAT.into(),
            url,
        ]
    };
    let mut args: Vec<String> = Vec::new();
    for path in paths {
        args.extend(each(format!("{base}{path}")));
    }
    let body = temp_dir(&format!("curl-{port}")).join("body.bin");
    std::fs::write(&body, vec![b'p'; post_len]).expect("write body");
    args.extend([
        "--next".into(),
        "--data-binary".into(),
        format!("@{}", body.display()),
    ]);
    args.extend(each(format!("{base}{post_path}")));
    let transfers = curl(&args);
    assert_eq!(transfers.len(), paths.len() + 1);
    assert_eq!(transfers[paths.len()].upload_bytes, post_len as u64);
    transfers
}

#[test]
fn nginx_and_curl_keep_alive_404_and_large_post() {
    let _g = serial();
    let ng = nginx(&[("index.html", 3000), ("small.txt", 10)]);
    let Some(watch) = Watch::start(&["--port", &ng.port.to_string()]) else {
        return;
    };
    let paths = ["/index.html", "/small.txt", "/missing", "/index.html"];
    let transfers = curl_session(ng.port, &paths, "/post", 5000);
    let w = watch.stop();
    check_both_sides(&w, &transfers, "nginx", ng.port);
    // One keep-alive connection for all of them.
    let client = side(&w.spans, "client", "curl", ng.port);
    for f in ["src_port", "socket_id"] {
        assert!(client.iter().all(|c| n(c, f) == n(client[0], f)), "{f}");
    }
}

#[test]
fn python_http_server_and_curl() {
    let _g = serial();
    let py = python_server("serve", &[]);
    let Some(watch) = Watch::start(&["--port", &py.port.to_string()]) else {
        return;
    };
    let transfers = curl_session(
        py.port,
        &["/3000", "/missing", "/20000", "/1"],
        "/upload",
        9000,
    );
    assert_eq!(transfers[4].code, 201);
    let w = watch.stop();
    check_both_sides(&w, &transfers, "python3", py.port);
}

/// wrk's own count of completed requests equals the client spans Causeway
/// saw in wrk, unless events were lost, in which case the difference is
/// within the loss counter; every client span has its server twin.
#[test]
fn wrk_load_counts_match() {
    let _g = serial();
    let ng = nginx(&[("index.html", 600)]);
    let port = ng.port.to_string();
    let Some(watch) = Watch::start(&["--port", &port]) else {
        return;
    };
    let out = Command::new("wrk")
        .args(["-t1", "-c4", "-d2s"])
        .arg(format!("http://127.0.0.1:{port}/index.html"))
        .output()
        .expect("run wrk (scripts/setup installs it)");
    assert!(out.status.success(), "wrk: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let completed = number_before(&text, " requests in");
    assert!(completed > 1000, "wrk made load: {text}");
    let w = watch.stop();
    eprintln!("wrk: {completed} requests; {}", w.stats_line);
    let client: Vec<&Value> = side(&w.spans, "client", "wrk", ng.port)
        .into_iter()
        .filter(|c| s(c, "response_status") != "timeout")
        .collect();
    let server = side(&w.spans, "server", "nginx", ng.port);
    let diff = (client.len() as i64 - completed as i64).unsigned_abs();
    assert!(
        diff <= w.lost,
        "wrk completed {completed}, Causeway saw {} client spans, lost {}",
        client.len(),
        w.lost
    );
    if w.lost == 0 {
        // At most one request per connection was answered after wrk stopped reading.
        assert!(server.len() >= client.len() && server.len() <= client.len() + 4);
        let server_seqs: std::collections::HashSet<u64> =
            server.iter().map(|sv| n(sv, "req_tcp_seq")).collect();
        let unmatched = client
            .iter()
            .filter(|c| !server_seqs.contains(&n(c, "req_tcp_seq")))
            .count();
        assert_eq!(unmatched, 0, "every client span has a server span");
        assert!(client
            .iter()
            .all(|c| s(c, "request_resource") == "/index.html" && n(c, "response_code") == 200));
    }
}

/// A relay receives a request, calls nginx from the same thread, then answers:
/// its inbound server span and its outbound client span share one syscall
/// trace id.
#[test]
fn relay_shares_syscall_trace_id() {
    let _g = serial();
    let ng = nginx(&[("index.html", 100)]);
    let relay = python_server("relay", &[ng.port.to_string()]);
    let pid = relay.pid().to_string();
    let Some(watch) = Watch::start(&["--pid", &pid]) else {
        return;
    };
    let url = format!("http://127.0.0.1:{}/relay", relay.port);
    for _ in 0..3 {
        let t = curl(&[
            "-o".into(),
            "/dev/null".into(),
            "-w".into(),
            CURL_FORMAT.into(),
            url.clone(),
        ]);
        assert_eq!(t[0].code, 200);
    }
    let w = watch.stop();
    let inbound = side(&w.spans, "server", "python3", relay.port);
    let outbound = side(&w.spans, "client", "python3", ng.port);
    assert_eq!(inbound.len(), 3, "{:#?}", w.spans);
    assert_eq!(outbound.len(), 3, "{:#?}", w.spans);
    for (i, o) in inbound.iter().zip(&outbound) {
        assert_eq!(s(i, "request_resource"), "/relay");
        assert_eq!(s(o, "request_resource"), "/index.html");
        assert_eq!(
            n(i, "syscall_trace_id_req"),
            n(o, "syscall_trace_id_req"),
            "{i}\n{o}"
        );
        assert_eq!(n(i, "tid_req"), n(o, "tid_req"), "same thread");
        // The outbound call happens inside the inbound span.
        assert!(n(o, "start_time_us") >= n(i, "start_time_us"));
        assert!(n(o, "end_time_us") <= n(i, "end_time_us"));
    }
    // Different requests carry different ids.
    let ids: std::collections::HashSet<u64> = inbound
        .iter()
        .map(|i| n(i, "syscall_trace_id_req"))
        .collect();
    assert_eq!(ids.len(), 3);
}

/// A server that never answers: the request becomes a timeout span on both
/// sides after the configured window.
#[test]
fn unanswered_requests_time_out() {
    let _g = serial();
    let hole = python_server("blackhole", &[]);
    let port = hole.port.to_string();
    let Some(watch) = Watch::start(&["--port", &port, "--timeout", "1s"]) else {
        return;
    };
    let mut client = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "--max-time", "4"])
        .arg(format!("http://127.0.0.1:{port}/never"))
        .spawn()
        .expect("curl");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let _ = client.wait();
    let w = watch.stop();
    for (op, comm) in [("client", "curl"), ("server", "python3")] {
        let spans = side(&w.spans, op, comm, hole.port);
        assert_eq!(spans.len(), 1, "{op}: {:#?}", w.spans);
        assert_eq!(s(spans[0], "response_status"), "timeout");
        assert_eq!(s(spans[0], "request_resource"), "/never");
        assert!(field(spans[0], "response_code").is_null());
    }
}

/// Without root, watch fails at once and says what is missing.
#[test]
fn without_root_fails_fast_with_a_reason() {
    if !tool_present("setpriv") {
        assert!(
            !ebpf_required(),
            "setpriv (util-linux) is needed for this test"
        );
        return;
    }
    let start = std::time::Instant::now();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_causeway"))
        .args(["watch", "--duration", "30s"])
        .output()
        .expect("run setpriv");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs root"), "stderr: {err}");
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn bad_arguments_are_rejected() {
    let out = Command::new(env!("CARGO_BIN_EXE_causeway"))
        .args(["watch", "--protocol", "gopher"])
        .output()
        .expect("run causeway");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown protocol"));
    let out = Command::new(env!("CARGO_BIN_EXE_causeway"))
        .args(["watch", "--payload-cap", "99999"])
        .output()
        .expect("run causeway");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("payload-cap"));
}

/// Three requests pipelined in one send: three spans on each side, each at
/// its own offset in the TCP stream.
#[test]
fn pipelined_requests_in_one_write() {
    let _g = serial();
    let ng = nginx(&[("a.txt", 11), ("b.txt", 222), ("c.txt", 3333)]);
    let port = ng.port.to_string();
    let Some(watch) = Watch::start(&["--port", &port]) else {
        return;
    };
    let script = format!(
        "import socket\n\
         s = socket.create_connection(('127.0.0.1', {port}))\n\
         reqs = [b'GET /%s HTTP/1.1\\r\\nHost: p\\r\\n\\r\\n' % n for n in (b'a.txt', b'b.txt')]\n\
         reqs.append(b'GET /c.txt HTTP/1.1\\r\\nHost: p\\r\\nConnection: close\\r\\n\\r\\n')\n\
         s.sendall(b''.join(reqs))\n\
         got = b''\n\
         while True:\n\
         \x20   chunk = s.recv(65536)\n\
         \x20   if not chunk: break\n\
         \x20   got += chunk\n\
         assert got.count(b'HTTP/1.1 200') == 3, got[:200]\n\
         print(sum(len(r) for r in reqs))\n"
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3");
    assert!(out.status.success(), "{out:?}");
    let sent: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("bytes sent");
    let w = watch.stop();
    let client = side(&w.spans, "client", "python3", ng.port);
    let server = side(&w.spans, "server", "nginx", ng.port);
    let paths = |v: &[&Value]| -> Vec<String> {
        v.iter()
            .map(|sp| s(sp, "request_resource").to_string())
            .collect()
    };
    assert_eq!(
        paths(&client),
        ["/a.txt", "/b.txt", "/c.txt"],
        "{:#?}",
        w.spans
    );
    assert_eq!(paths(&server), ["/a.txt", "/b.txt", "/c.txt"]);
    let total: u64 = client.iter().map(|c| n(c, "request_length")).sum();
    assert_eq!(
        total, sent,
        "the three requests split the one write exactly"
    );
    for (c, sv) in client.iter().zip(&server) {
        assert_eq!(n(c, "req_tcp_seq"), n(sv, "req_tcp_seq"));
        assert_eq!(n(c, "resp_tcp_seq"), n(sv, "resp_tcp_seq"));
        assert_eq!(n(c, "response_length"), n(sv, "response_length"));
        assert_eq!(n(c, "response_code"), 200);
    }
    // Offsets: each request starts where the previous one ended.
    for pair in client.windows(2) {
        let next = (n(pair[0], "req_tcp_seq") + n(pair[0], "request_length")) % (1 << 32);
        assert_eq!(n(pair[1], "req_tcp_seq"), next);
    }
}
