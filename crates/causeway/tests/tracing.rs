//! Trace assembly against ground truth (issue 6): a testbed of real
//! services on 127.0.0.1, captured by `causeway up`, its traces assembled
//! by `causeway server` over what was stored, and every parent -> child
//! edge of every assembled trace compared with what the services say they
//! did.
//!
//! The testbed (`tests/fixtures/tracing/`):
//!
//! ```text
//!  load (32 client threads) --HTTP--> nginx gateway --HTTP--> a (Python, thread per request)
//!     X-Request-ID $request_id injected into the forwarded request       |-- DNS (UDP) -> dnsmasq
//!     and echoed in the response                                         |-- HTTP -> b (Go) -- goroutine --> Redis
//!                                                                        |-- gRPC -> c (Python grpcio, thread pool)
//!                                                                        |              |-- Redis
//!                                                                        |              '-- HTTP -> b (Go) -- goroutine --> Redis
//!                                                                        '-- Redis
//! ```
//!
//! Every request carries a fresh id in its resource (query string, gRPC
//! method, Redis key, DNS name), which the assembly never reads; each
//! service logs, for every request it served, the ids of the calls it made
//! (nginx: its access log, inbound id and `$request_id`, which is also the
//! forwarded request's id). That is the ground truth: the in-process edges
//! (request X served by a service -> call Y it made) and the cross-process
//! ones (call Y's client-side span -> its server-side span).
//!
//! Run 1 has no trace headers at all: what joins the spans is what the
//! kernel and the wire show (syscall trace ids, TCP seqs, UDP flows) and
//! the gateway's X-Request-ID. Run 2 propagates W3C traceparent with the
//! OpenTelemetry SDK in the load generator and both Python services
//! (nginx forwards it), so the assembly can also join on trace ids.
//!
//! For each run the test prints precision and recall per edge kind, and
//! fails below the floors measured and written down in bench/tracing.md
//! (`FLOORS` below). Requests: 32 clients x `CAUSEWAY_TRACING_REQUESTS`
//! each (default 8).

mod support;

use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::*;

// --- processes ---------------------------------------------------------------

/// A background process whose stdout/stderr lines are collected; killed on drop.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    name: String,
}

impl Proc {
    /// Starts `cmd` and waits for an output line containing `ready`. None
    /// when it exits first saying eBPF is unavailable and not required.
    fn start(name: &str, cmd: &mut Command, ready: &str) -> Option<Proc> {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let (tx, lines) = mpsc::channel();
        for r in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for l in std::io::BufReader::new(r).lines().map_while(Result::ok) {
                    if tx.send(l).is_err() {
                        break;
                    }
                }
            });
        }
        let mut p = Proc {
            child,
            lines,
            seen: Vec::new(),
            name: name.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match p.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(l) => {
                    let done = l.contains(ready);
                    p.seen.push(l);
                    if done {
                        return Some(p);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = p.child.wait().expect("wait");
                    if p.seen.iter().any(|l| l.contains("eBPF")) && !ebpf_required() {
                        eprintln!("skipping: {name} could not attach ({status})");
                        return None;
                    }
                    panic!(
                        "{name} exited ({status}) before it was ready: {:#?}",
                        p.seen
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "{name} not ready in 60 s: {:#?}",
                p.seen
            );
        }
    }

    /// SIGINT, then a clean exit; returns everything it printed.
    fn stop(mut self) -> Vec<String> {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait().expect("wait");
        let mut seen = std::mem::take(&mut self.seen);
        seen.extend(self.lines.try_iter());
        assert!(
            status.success(),
            "{} exited with {status}: {seen:#?}",
            self.name
        );
        seen
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn causeway() -> Command {
    Command::new(env!("CARGO_BIN_EXE_causeway"))
}

fn tracing_fixtures() -> PathBuf {
    fixtures().join("tracing")
}

/// dnsmasq answering every name under testbed.test with 127.0.0.1.
fn dnsmasq_testbed(dir: &Path) -> Server {
    let port = free_port();
    spawn_server(
        Command::new("dnsmasq")
            .args([
                "--no-daemon",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--user=root",
                "--address=/testbed.test/127.0.0.1",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--pid-file={}/dnsmasq.pid", dir.display())),
        port,
    )
}

/// The gateway: nginx forwarding /a to service a with X-Request-ID
/// $request_id (and echoing it in the response), the forwarded request
/// named by it; its access log is its ground truth.
fn nginx_gateway(dir: &Path, upstream: u16, name: &str) -> (Server, PathBuf) {
    let port = free_port();
    let log = dir.join("gateway.log");
    let conf = format!(
        "daemon off;\nworker_processes 1;\nerror_log {d}/error.log;\npid {d}/nginx.pid;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n  log_format gt '$arg_id $request_id';\n  access_log {log} gt;\n\
           client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
           server {{\n    listen 127.0.0.1:{port};\n\
             location /a {{\n      proxy_set_header X-Request-ID $request_id;\n\
               add_header X-Request-ID $request_id always;\n\
               proxy_pass http://127.0.0.1:{upstream}/a?id=$request_id;\n    }}\n  }}\n}}\n",
        d = dir.display(),
        log = log.display(),
    );
    let conf_path = dir.join("gateway.conf");
    std::fs::write(&conf_path, conf).expect("gateway.conf");
    // Started by a symlink called `name`, so its processes are called that.
    let real = run_ok(Command::new("sh").args(["-c", "command -v nginx"]));
    let exe = dir.join(name);
    let _ = std::fs::remove_file(&exe);
    std::os::unix::fs::symlink(real.trim(), &exe).expect("symlink to nginx");
    let child = Command::new(&exe)
        .arg("-c")
        .arg(&conf_path)
        .args(["-g", "user root;"])
        .stdout(Stdio::null())
        .spawn()
        .expect("start nginx (scripts/setup installs it)");
    wait_for_port(port);
    (Server { child, port }, log)
}

fn go_service_binary(dir: &Path, name: &str) -> PathBuf {
    let bin = dir.join(name);
    run_ok(
        Command::new("go")
            .args(["build", "-o"])
            .arg(&bin)
            .arg(tracing_fixtures().join("svc_b.go"))
            .env("GO111MODULE", "off")
            .env("GOPROXY", "off")
            .env("GOCACHE", dir.join("gocache")),
    );
    bin
}

/// A Python role of the testbed; its process is called `names.of(role)`.
fn python(role: &str, names: &Names) -> Command {
    let mut c = Command::new("python3");
    c.arg(tracing_fixtures().join("services.py"))
        .arg(role)
        .args(["--name", &names.of(role)]);
    c
}

/// The testbed's process names, unique to one run (the service map tells
/// services apart by process name, and another run may share the host).
struct Names(String);

impl Names {
    fn new() -> Names {
        Names(format!("t{:04}", free_port() % 10_000))
    }

    /// `a`, `b`, `c`, `load`, `gw` (the nginx gateway) -> `t1234-a` ...
    fn of(&self, role: &str) -> String {
        format!("{}-{role}", self.0)
    }
}

// --- the API -----------------------------------------------------------------

fn api(port: u16, path: &str, params: &[(&str, String)]) -> Value {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build(),
    );
    let mut req = agent.get(format!("http://127.0.0.1:{port}{path}"));
    for (k, v) in params {
        req = req.query(*k, v);
    }
    let mut resp = req.call().expect("API call");
    let status = resp.status().as_u16();
    let body: Value = resp
        .body_mut()
        .with_config()
        .limit(256 << 20)
        .read_json()
        .expect("JSON");
    assert_eq!(status, 200, "{path}: {body}");
    body
}

fn all_spans(port: u16, from_us: u64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut p = vec![("from", from_us.to_string()), ("limit", "1000".to_string())];
        if let Some(c) = &cursor {
            p.push(("cursor", c.clone()));
        }
        let page = api(port, "/api/v1/spans", &p);
        out.extend(page["spans"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

// --- ground truth ------------------------------------------------------------

/// The request id a span carries in its resource: its first run of exactly
/// 32 hex digits.
fn request_id_of(span: &Value) -> Option<String> {
    let r = span["request_resource"].as_str()?;
    let b = r.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_hexdigit() {
            let j = (i..b.len())
                .find(|&j| !b[j].is_ascii_hexdigit())
                .unwrap_or(b.len());
            if j - i == 32 {
                return Some(r[i..j].to_ascii_lowercase());
            }
            i = j;
        } else {
            i += 1;
        }
    }
    None
}

/// What the services said: for each request id, who served it (`svc`),
/// the calls it made, and what kind of call it was.
#[derive(Default)]
struct Truth {
    /// Request id -> (service that served it, calls it made).
    served: HashMap<String, (String, Vec<String>)>,
    /// Call id -> protocol of the call (`http`, `grpc`, `redis`, `dns`).
    protocol: HashMap<String, &'static str>,
    /// The load generator's requests (trace roots).
    roots: Vec<String>,
}

impl Truth {
    fn read(services_log: &Path, gateway_log: &Path) -> Truth {
        let mut t = Truth::default();
        let text = std::fs::read_to_string(services_log).expect("ground truth log");
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).expect("log line");
            let svc = v["svc"].as_str().expect("svc").to_owned();
            let out: Vec<String> = v["out"]
                .as_array()
                .expect("out")
                .iter()
                .map(|x| x.as_str().expect("id").to_owned())
                .collect();
            let kinds: &[&'static str] = match svc.as_str() {
                "load" => &["http"],
                "a" => &["dns", "http", "grpc", "redis"],
                "b" => &["redis"],
                "c" => &["redis", "http"],
                other => panic!("unknown service {other}"),
            };
            for (id, k) in out.iter().zip(kinds) {
                t.protocol.insert(id.clone(), k);
            }
            if svc == "load" {
                t.roots.extend(out);
            } else {
                let inbound = v["in"].as_str().expect("in").to_owned();
                t.served.insert(inbound, (svc, out));
            }
        }
        let text = std::fs::read_to_string(gateway_log).expect("gateway log");
        for line in text.lines() {
            let (inbound, out) = line.split_once(' ').expect("arg_id request_id");
            t.protocol.insert(out.to_owned(), "http");
            t.served
                .insert(inbound.to_owned(), ("gateway".into(), vec![out.to_owned()]));
        }
        t
    }

    /// Every request id of the tree under `root`, root included.
    fn tree(&self, root: &str) -> Vec<String> {
        let mut out = vec![root.to_owned()];
        let mut i = 0;
        while i < out.len() {
            if let Some((_, calls)) = self.served.get(&out[i]) {
                out.extend(calls.iter().cloned());
            }
            i += 1;
        }
        out
    }
}

// --- figures -----------------------------------------------------------------

#[derive(Default, Clone, Copy)]
struct Count {
    /// Edges the assembly made, and how many were right.
    made: u64,
    right: u64,
    /// Ground-truth edges, and how many the assembly made.
    truth: u64,
    found: u64,
}

impl Count {
    fn precision(&self) -> f64 {
        if self.made == 0 {
            1.0
        } else {
            self.right as f64 / self.made as f64
        }
    }
    fn recall(&self) -> f64 {
        if self.truth == 0 {
            1.0
        } else {
            self.found as f64 / self.truth as f64
        }
    }
}

#[derive(Default)]
struct Figures {
    kinds: BTreeMap<String, Count>,
    /// Per edge kind, how many edges each rule made.
    links: BTreeMap<String, BTreeMap<String, u64>>,
    /// Spans in assembled traces, and those of another request.
    spans: u64,
    foreign: u64,
    traces: u64,
    truncated: u64,
    assembly: Vec<Duration>,
}

impl Figures {
    fn all(&self) -> Count {
        let mut c = Count::default();
        for k in self.kinds.values() {
            c.made += k.made;
            c.right += k.right;
            c.truth += k.truth;
            c.found += k.found;
        }
        c
    }

    fn report(&self, run: &str) -> String {
        let mut out = format!(
            "{run}: {} traces, {} spans in them, {} of another request; {} stopped by a bound\n\
             {:<22} {:>9} {:>7} {:>10} {:>7}  links\n",
            self.traces,
            self.spans,
            self.foreign,
            self.truncated,
            "edge kind",
            "precision",
            "made",
            "recall",
            "truth",
        );
        let mut row = |name: &str, c: &Count, links: Option<&BTreeMap<String, u64>>| {
            out.push_str(&format!(
                "{:<22} {:>8.2}% {:>7} {:>9.2}% {:>7}  {}\n",
                name,
                100.0 * c.precision(),
                c.made,
                100.0 * c.recall(),
                c.truth,
                links
                    .map(|l| l
                        .iter()
                        .map(|(k, v)| format!("{k}:{v}"))
                        .collect::<Vec<_>>()
                        .join(" "))
                    .unwrap_or_default()
            ));
        };
        for (k, c) in &self.kinds {
            row(k, c, self.links.get(k));
        }
        row("all", &self.all(), None);
        let mut times = self.assembly.clone();
        times.sort();
        if !times.is_empty() {
            out.push_str(&format!(
                "assembly through the API: median {:?}, p95 {:?}, max {:?}\n",
                times[times.len() / 2],
                times[times.len() * 95 / 100],
                times[times.len() - 1]
            ));
        }
        out
    }
}

/// The kind of an in-process edge, by the service that made the call and
/// (for a) what it called: grpcio does a call's I/O on its own threads,
/// not in the thread that made the call.
fn local_kind(svc: &str, call: &str) -> String {
    match (svc, call) {
        ("gateway", _) => "in nginx (gateway)".into(),
        ("a", "grpc") => "in a: grpc call".into(),
        ("a", _) => "in a: thread's calls".into(),
        ("b", _) => "in b (go goroutine)".into(),
        ("c", _) => "in c (grpc pool)".into(),
        (other, _) => format!("in {other}"),
    }
}

fn wire_kind(protocol: &str) -> String {
    format!("wire {protocol}")
}

/// Compares one assembled trace (API JSON) with the tree under `root`.
fn score(trace: &Value, root: &str, truth: &Truth, f: &mut Figures) {
    let tree: HashSet<String> = truth.tree(root).into_iter().collect();
    let spans = trace["spans"].as_array().expect("spans");
    let by_id: HashMap<&str, &Value> = spans
        .iter()
        .map(|s| (s["id"].as_str().expect("id"), s))
        .collect();
    f.traces += 1;
    f.truncated += u64::from(trace["truncated"] == true);
    let mut made: HashSet<(String, String, String, String)> = HashSet::new();
    for s in spans {
        f.spans += 1;
        let rid = request_id_of(s);
        if !rid.as_ref().is_some_and(|r| tree.contains(r)) {
            f.foreign += 1;
        }
        let Some(parent) = s["parent_id"].as_str() else {
            continue;
        };
        let p = by_id[parent];
        let (pr, pobs) = (
            request_id_of(p),
            p["observation_point"].as_str().unwrap_or(""),
        );
        let cobs = s["observation_point"].as_str().unwrap_or("");
        let link = s["link"].as_str().unwrap_or("?").to_owned();
        // The kind and the verdict of the edge.
        let (kind, right) = match (&pr, &rid, pobs, cobs) {
            (Some(x), Some(y), "client", "server") => (
                wire_kind(truth.protocol.get(y).copied().unwrap_or("unknown")),
                x == y,
            ),
            (Some(x), Some(y), "server", "client") => match truth.served.get(x) {
                Some((svc, calls)) => (
                    local_kind(svc, truth.protocol.get(y).copied().unwrap_or("")),
                    calls.contains(y),
                ),
                None => ("in an unknown request".into(), false),
            },
            _ => ("other".into(), false),
        };
        if let (Some(x), Some(y)) = (&pr, &rid) {
            made.insert((x.clone(), pobs.to_owned(), y.clone(), cobs.to_owned()));
        }
        let c = f.kinds.entry(kind.clone()).or_default();
        c.made += 1;
        c.right += u64::from(right);
        *f.links.entry(kind).or_default().entry(link).or_default() += 1;
    }
    // Recall: every ground-truth edge of this request's tree.
    for x in truth.tree(root) {
        let kind = wire_kind(truth.protocol.get(&x).copied().unwrap_or("unknown"));
        let c = f.kinds.entry(kind).or_default();
        c.truth += 1;
        let key = (x.clone(), "client".into(), x.clone(), "server".into());
        c.found += u64::from(made.contains(&key));
        if let Some((svc, calls)) = truth.served.get(&x) {
            for y in calls {
                let call = truth.protocol.get(y).copied().unwrap_or("");
                let c = f.kinds.entry(local_kind(svc, call)).or_default();
                c.truth += 1;
                let key = (x.clone(), "server".into(), y.clone(), "client".into());
                c.found += u64::from(made.contains(&key));
            }
        }
    }
}

// --- the runs ----------------------------------------------------------------

fn requests_per_client() -> u32 {
    std::env::var("CAUSEWAY_TRACING_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
}

const CLIENTS: u32 = 32;

/// The whole testbed under `causeway up`, then its traces assembled by
/// `causeway server` over the same store. None: eBPF unavailable (skipped).
fn run(otel: bool) -> Option<(Figures, Vec<String>)> {
    let tag = if otel { "tracing-otel" } else { "tracing" };
    let dir = temp_dir(tag);
    let gt = dir.join("services.log");
    let data = dir.join("data");
    let names = Names::new();
    let go = go_service_binary(&dir, &names.of("b"));
    let redis = redis();
    let dns = dnsmasq_testbed(&dir);
    let otel_flag: &[&str] = if otel { &["--otel"] } else { &[] };
    let b_port = free_port();
    let _b = Proc::start(
        "svc_b",
        Command::new(&go)
            .arg(b_port.to_string())
            .arg(redis.port.to_string())
            .arg(&gt),
        "ready",
    )?;
    let c_port = free_port();
    let _c = Proc::start(
        "service c",
        python("c", &names)
            .arg(c_port.to_string())
            .args(["--b", &b_port.to_string()])
            .args(["--redis", &redis.port.to_string()])
            .arg("--log")
            .arg(&gt)
            .args(otel_flag),
        "ready",
    )?;
    let a_port = free_port();
    let _a = Proc::start(
        "service a",
        python("a", &names)
            .arg(a_port.to_string())
            .args(["--b", &b_port.to_string()])
            .args(["--c", &c_port.to_string()])
            .args(["--redis", &redis.port.to_string()])
            .args(["--dns", &dns.port.to_string()])
            .arg("--log")
            .arg(&gt)
            .args(otel_flag),
        "ready",
    )?;
    let (gateway, gateway_log) = nginx_gateway(&dir, a_port, &names.of("gw"));
    let gateway_port = gateway.port;

    let api_port = free_port();
    let from_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_micros() as u64;
    let up = Proc::start(
        "causeway up",
        causeway()
            .args(["up", "--data"])
            .arg(&data)
            .args(["--listen", &format!("127.0.0.1:{api_port}")])
            // gRPC's frame headers must all be seen (README, HTTP/2).
            .args(["--payload-cap", "16384"]),
        "Ctrl-C to stop",
    )?;
    let n = requests_per_client();
    let load = run_ok(
        python("load", &names)
            .arg("--url")
            .arg(format!("http://127.0.0.1:{gateway_port}/a"))
            .args(["--clients", &CLIENTS.to_string()])
            .args(["--requests", &n.to_string()])
            .arg("--log")
            .arg(&gt)
            .args(otel_flag),
    );
    eprintln!("{tag}: {}", load.trim());
    // Let the last answers be read, then stop: every span is delivered.
    std::thread::sleep(Duration::from_secs(2));
    let up_said = up.stop();
    for l in up_said
        .iter()
        .filter(|l| l.contains("captured") || l.contains("exported"))
    {
        eprintln!("{tag}: {l}");
    }
    drop(gateway);

    let truth = Truth::read(&gt, &gateway_log);
    assert_eq!(
        truth.roots.len() as u32,
        CLIENTS * n,
        "every request logged"
    );

    // The traces, assembled by a server over what was stored.
    let api_port = free_port();
    let server = Proc::start(
        "causeway server",
        causeway()
            .args(["server", "--data"])
            .arg(&data)
            .args(["--listen", &format!("127.0.0.1:{api_port}")])
            .args(["--ingest-listen", &format!("127.0.0.1:{}", free_port())]),
        "server on",
    )
    .expect("causeway server");
    wait_for_port(api_port);
    let spans = all_spans(api_port, from_us);
    let mut load_spans: HashMap<String, String> = HashMap::new();
    for s in &spans {
        if s["observation_point"] == "client" && s["dst_port"] == gateway_port {
            if let Some(id) = request_id_of(s) {
                load_spans.insert(id, s["id"].as_str().expect("id").to_owned());
            }
        }
    }
    let mut figures = Figures::default();
    let mut missing_roots = 0;
    let mut sample: Option<String> = None;
    for root in &truth.roots {
        let Some(span_id) = load_spans.get(root) else {
            missing_roots += 1;
            continue;
        };
        let started = Instant::now();
        let trace = api(api_port, &format!("/api/v1/traces/{span_id}"), &[]);
        figures.assembly.push(started.elapsed());
        score(&trace, root, &truth, &mut figures);
        if sample.is_none() && trace["spans"].as_array().map_or(0, Vec::len) >= 10 {
            sample = Some(span_id.clone());
        }
    }
    eprintln!(
        "{tag}: {} spans stored; {} of {} requests' first spans found",
        spans.len(),
        truth.roots.len() - missing_roots,
        truth.roots.len()
    );
    // The recall of requests whose first span was lost counts as missed.
    for _ in 0..missing_roots {
        figures
            .kinds
            .entry("lost first span".into())
            .or_default()
            .truth += 1;
    }
    eprintln!("{}", figures.report(tag));
    let sample = sample.expect("a trace of at least 10 spans");
    check_service_map(api_port, from_us, &names, CLIENTS * n);
    let cli = check_cli(api_port, &sample);
    server.stop();
    Some((figures, cli))
}

/// The service map over the run shows exactly the testbed's edges, each
/// with the number of calls made over it (counted at the client end).
/// Redis and dnsmasq keep their own names; every edge has one of this
/// run's services at one end at least, so edges of other tests' traffic
/// on the host are left out.
fn check_service_map(api_port: u16, from_us: u64, names: &Names, requests: u32) {
    let map = api(
        api_port,
        "/api/v1/service-map",
        &[("from", from_us.to_string())],
    );
    let ours = |s: &str| s.starts_with(&format!("{}-", names.0));
    let mut got: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for e in map["edges"].as_array().expect("edges") {
        let (client, server) = (e["client"].as_str().unwrap(), e["server"].as_str().unwrap());
        if ours(client) || ours(server) {
            let key = (
                client.to_owned(),
                server.to_owned(),
                e["protocol"].as_str().unwrap().to_owned(),
            );
            *got.entry(key).or_default() += e["requests"].as_u64().expect("requests");
        }
    }
    eprintln!("service map, this run's edges (client -> server, protocol: requests):");
    for ((c, s, p), r) in &got {
        eprintln!("  {c} -> {s} {p}: {r}");
    }
    let n = u64::from(requests);
    let edge = |c: &str, s: &str, p: &str, r: u64| ((c.to_owned(), s.to_owned(), p.to_owned()), r);
    let (load, gw, a, b, c) = (
        names.of("load"),
        names.of("gw"),
        names.of("a"),
        names.of("b"),
        names.of("c"),
    );
    let want: BTreeMap<_, _> = [
        edge(&load, &gw, "http", n),
        edge(&gw, &a, "http", n),
        edge(&a, "dnsmasq", "dns", n),
        edge(&a, &b, "http", n),
        edge(&a, &c, "grpc", n),
        edge(&a, "redis-server", "redis", n),
        edge(&c, "redis-server", "redis", n),
        edge(&c, &b, "http", n),
        edge(&b, "redis-server", "redis", 2 * n),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "the service map's edges"
    );
    // Calls per edge: exact, but for a's gRPC calls to c. grpcio writes
    // many streams' frames in one syscall under this load, past the 16 KiB
    // payload cap at times; the frames after the cut, and so the calls
    // whose HEADERS were there (one cut lost 20 calls of 256 in a CI run),
    // are lost (the agent counts the lost framing), never miscounted.
    for (edge, &n_want) in &want {
        let n_got = got[edge];
        if edge.2 == "grpc" {
            assert!(
                n_got <= n_want && n_got * 100 >= n_want * 80,
                "calls on {edge:?}: {n_got} of {n_want}"
            );
        } else {
            assert_eq!(n_got, n_want, "calls on {edge:?}");
        }
    }
}

/// `causeway trace` on one trace: the table, JSON and OTLP JSON agree
/// with the API, and `--otlp-endpoint` posts the OTLP JSON.
fn check_cli(api_port: u16, span_id: &str) -> Vec<String> {
    let server = format!("http://127.0.0.1:{api_port}");
    let tree = api(api_port, &format!("/api/v1/traces/{span_id}"), &[]);
    let spans = tree["spans"].as_array().expect("spans");
    let cli = |format: &str| {
        run_ok(causeway().args(["trace", span_id, "--server", &server, "--format", format]))
    };
    let json: Value = serde_json::from_str(&cli("json")).expect("JSON");
    assert_eq!(json, tree);
    let table = cli("table");
    let lines: Vec<String> = table.lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), spans.len() + 2, "{table}");
    for (line, s) in lines[2..].iter().zip(spans) {
        let depth = s["depth"].as_u64().unwrap() as usize;
        // OFFSET, DURATION, SELF (11 each, a space apart), two spaces,
        // the bar between two |, two spaces, then the span.
        let tail = &line[11 * 3 + 2 + 2 + 30 + 2 + 2..];
        assert!(
            tail.starts_with(&format!(
                "{}{} ",
                "  ".repeat(depth),
                match s["observation_point"].as_str() {
                    Some("client") => "C",
                    Some("server") => "S",
                    _ => "N",
                }
            )),
            "{line}"
        );
        assert!(
            line.ends_with(&match s["link"].as_str() {
                Some(l) => format!("#{} [{l}]", s["id"].as_str().unwrap()),
                None => format!("#{}", s["id"].as_str().unwrap()),
            }),
            "{line}"
        );
    }
    // OTLP JSON: one span per span of the tree, the tree's parents.
    let otlp: Value = serde_json::from_str(&cli("otlp-json")).expect("OTLP JSON");
    let exported: Vec<&Value> = otlp["resourceSpans"]
        .as_array()
        .expect("resourceSpans")
        .iter()
        .flat_map(|r| r["scopeSpans"].as_array().unwrap().iter())
        .flat_map(|s| s["spans"].as_array().unwrap().iter())
        .collect();
    assert_eq!(exported.len(), spans.len());
    let hex = |id: &Value| format!("{:016x}", id.as_str().unwrap().parse::<u64>().unwrap());
    let parent_of: HashMap<String, Option<String>> = spans
        .iter()
        .map(|s| {
            (
                hex(&s["id"]),
                (!s["parent_id"].is_null()).then(|| hex(&s["parent_id"])),
            )
        })
        .collect();
    let trace_id = exported[0]["traceId"].as_str().unwrap();
    assert_eq!(trace_id, tree["trace_id"].as_str().unwrap());
    for e in &exported {
        assert_eq!(e["traceId"], trace_id);
        let id = e["spanId"].as_str().unwrap();
        assert_eq!(
            e["parentSpanId"].as_str().map(str::to_owned),
            parent_of[id].clone(),
            "{e}"
        );
    }
    // Posted to a collector (a listener that keeps the body and says 200).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let receiver = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut reader = std::io::BufReader::new(conn.try_clone().expect("clone"));
        let mut head = Vec::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("head");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().expect("length");
            }
            head.push(line);
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("body");
        conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
            .expect("answer");
        (head, body)
    });
    let posted = run_ok(causeway().args([
        "trace",
        span_id,
        "--server",
        &server,
        "--format",
        "json",
        "--otlp-endpoint",
        &format!("http://127.0.0.1:{port}"),
    ]));
    assert_eq!(serde_json::from_str::<Value>(&posted).expect("JSON"), tree);
    let (head, body) = receiver.join().expect("receiver");
    assert!(head[0].starts_with("POST /v1/traces "), "{head:?}");
    assert_eq!(
        serde_json::from_slice::<Value>(&body).expect("posted JSON"),
        otlp
    );
    lines
}

/// Floors: (run, edge kind, precision %, recall %), measured on this
/// machine kind and written down in bench/tracing.md. A run below any
/// floor fails.
/// Kinds whose edges the mechanism gets right every time (thread-per-request
/// calls, the gateway's X-Request-ID, DNS by flow, trace ids) have 99%
/// floors; the others sit below the figures measured (bench/tracing.md),
/// with room for run-to-run variation where it was seen. Go's goroutines
/// are tracked as pseudo-threads (runtime probes), so b's own calls are
/// linked every time; b's recall without headers is half because half of
/// b's requests come from c, whose grpcio pool hands the request to another
/// thread: those requests' traces never reach b (c's row shows it).
const FLOORS: &[(&str, &str, f64, f64)] = &[
    ("no headers", "in a: thread's calls", 99.0, 99.0),
    ("no headers", "in nginx (gateway)", 99.0, 99.0),
    ("no headers", "in b (go goroutine)", 99.0, 48.0),
    ("no headers", "wire dns", 99.0, 99.0),
    ("no headers", "wire http", 99.0, 74.0),
    ("no headers", "wire redis", 99.0, 50.0),
    ("no headers", "all", 99.0, 55.0),
    ("traceparent", "in a: thread's calls", 99.0, 99.0),
    ("traceparent", "in a: grpc call", 99.0, 85.0),
    ("traceparent", "in nginx (gateway)", 99.0, 99.0),
    ("traceparent", "in b (go goroutine)", 99.0, 99.0),
    ("traceparent", "in c (grpc pool)", 99.0, 75.0),
    ("traceparent", "wire dns", 99.0, 99.0),
    ("traceparent", "wire grpc", 99.0, 85.0),
    ("traceparent", "wire http", 99.0, 99.0),
    ("traceparent", "wire redis", 99.0, 88.0),
    ("traceparent", "all", 99.0, 95.0),
];

fn check(run: &str, f: &Figures) {
    let mut failed = Vec::new();
    for (r, kind, p, rec) in FLOORS.iter().filter(|(r, ..)| *r == run) {
        let c = if *kind == "all" {
            f.all()
        } else {
            f.kinds.get(*kind).copied().unwrap_or_default()
        };
        if 100.0 * c.precision() < *p || 100.0 * c.recall() < *rec {
            failed.push(format!(
                "{r} {kind}: precision {:.2}% (floor {p}%), recall {:.2}% (floor {rec}%)",
                100.0 * c.precision(),
                100.0 * c.recall()
            ));
        }
    }
    assert!(failed.is_empty(), "below the floors: {failed:#?}");
}

#[test]
fn traces_without_trace_headers_match_the_services_ground_truth() {
    let _g = serial();
    let Some((f, cli)) = run(false) else {
        return;
    };
    eprintln!("{}", cli.join("\n"));
    eprintln!("{}", f.report("run 1 (no trace headers)"));
    check("no headers", &f);
}

#[test]
fn traces_with_w3c_traceparent_match_the_services_ground_truth() {
    let _g = serial();
    let Some((f, _)) = run(true) else {
        return;
    };
    eprintln!("{}", f.report("run 2 (W3C traceparent)"));
    check("traceparent", &f);
}
