//! The server end to end: `causeway up` and the split `causeway agent` /
//! `causeway server` deployment, with real traffic (curl against nginx,
//! redis-benchmark against Redis) captured by the real probes, stored in
//! DuckDB, in one ClickHouse and in two ClickHouse shards behind a
//! Distributed table, and read back through the HTTP API. Then the
//! failures: a wrong token, the server killed with SIGKILL mid-ingest, the
//! server away for 30 s while traffic goes on.

mod support;

use causeway_server::store::clickhouse::ClickHouseStore;
use causeway_server::store::{conformance, conformance_flows, conformance_red};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::*;

// --- processes ---------------------------------------------------------------

/// A `causeway` subcommand running in the background, its stderr collected.
struct Proc {
    child: Child,
    stderr: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Proc {
    /// Starts `causeway ARGS` and waits for a stderr line containing
    /// `ready`. None when it exits first because eBPF is unavailable and
    /// not required (the test is skipped, saying so).
    fn start(args: &[String], ready: &str) -> Option<Proc> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_causeway"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn causeway");
        let stderr = lines_of(child.stderr.take().expect("stderr"));
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match stderr.recv_timeout(Duration::from_millis(100)) {
                Ok(l) => {
                    eprintln!("causeway {}: {l}", args[0]);
                    let done = l.contains(ready);
                    seen.push(l);
                    if done {
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().expect("wait");
                    let ebpf = seen.iter().any(|l| l.contains("eBPF"));
                    if ebpf && !ebpf_required() {
                        eprintln!("skipping: causeway {} could not attach ({status})", args[0]);
                        return None;
                    }
                    panic!("causeway {args:?} exited ({status}) before it was ready: {seen:#?}");
                }
            }
            assert!(
                Instant::now() < deadline,
                "causeway {args:?} not ready in 30 s: {seen:#?}"
            );
        }
        Some(Proc {
            child,
            stderr,
            seen,
        })
    }

    /// SIGINT, then waits for a clean exit; returns everything it printed.
    fn stop(mut self) -> Vec<String> {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait().expect("wait");
        let mut seen = std::mem::take(&mut self.seen);
        seen.extend(self.stderr.iter());
        assert!(status.success(), "causeway exited with {status}: {seen:#?}");
        seen
    }

    /// SIGKILL: no chance to flush or close anything.
    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The exporter's closing line: (in, acknowledged, dropped, refused, held).
fn export_line(stderr: &[String]) -> (u64, u64, u64, u64, u64) {
    let l = stderr
        .iter()
        .find(|l| l.contains("spans exported"))
        .unwrap_or_else(|| panic!("no export summary in {stderr:#?}"));
    (
        number_before(l, " spans exported"),
        number_before(l, " acknowledged"),
        number_before(l, " dropped"),
        number_before(l, " refused"),
        number_before(l, " held"),
    )
}

// --- the API -----------------------------------------------------------------

fn api(port: u16, path: &str, params: &[(&str, String)]) -> (u16, Value) {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build(),
    );
    let mut req = agent.get(format!("http://127.0.0.1:{port}{path}"));
    for (k, v) in params {
        req = req.query(*k, v);
    }
    let mut resp = req.call().expect("API call");
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_json().unwrap_or(Value::Null);
    (status, body)
}

/// Every span matching `params`, over all pages.
fn all_spans(port: u16, params: &[(&str, String)]) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut p = params.to_vec();
        p.push(("limit", "1000".into()));
        if let Some(c) = &cursor {
            p.push(("cursor", c.clone()));
        }
        let (status, page) = api(port, "/api/v1/spans", &p);
        assert_eq!(status, 200, "{page}");
        out.extend(page["spans"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < within, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
    start.elapsed()
}

fn count_by(spans: &[Value], key: impl Fn(&Value) -> String) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for sp in spans {
        *m.entry(key(sp)).or_insert(0) += 1;
    }
    m
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_owned()
}

// --- ClickHouse --------------------------------------------------------------

/// ClickHouse servers (Debian's 18.16) on loopback, each knowing the others
/// as the shards of cluster `causeway`.
struct ClickHouse {
    nodes: Vec<Child>,
    http: Vec<u16>,
    _dirs: Vec<PathBuf>,
}

impl ClickHouse {
    fn start(n: usize) -> ClickHouse {
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let shards: String = ports
            .iter()
            .map(|(_, tcp)| {
                format!(
                    "<shard><replica><host>127.0.0.1</host><port>{tcp}</port></replica></shard>"
                )
            })
            .collect();
        let mut nodes = Vec::new();
        let mut dirs = Vec::new();
        for (http, tcp) in &ports {
            let d = temp_dir(&format!("clickhouse-{http}"));
            let dd = d.display();
            std::fs::write(
                d.join("users.xml"),
                "<?xml version=\"1.0\"?><yandex><profiles><default></default></profiles>\
                 <users><default><password></password><networks><ip>127.0.0.1</ip></networks>\
                 <profile>default</profile><quota>default</quota></default></users>\
                 <quotas><default></default></quotas></yandex>",
            )
            .expect("users.xml");
            std::fs::write(
                d.join("config.xml"),
                format!(
                    "<?xml version=\"1.0\"?><yandex>\
                     <logger><level>warning</level><log>{dd}/server.log</log><errorlog>{dd}/error.log</errorlog></logger>\
                     <http_port>{http}</http_port><tcp_port>{tcp}</tcp_port><listen_host>127.0.0.1</listen_host>\
                     <path>{dd}/data/</path><tmp_path>{dd}/tmp/</tmp_path><user_files_path>{dd}/files/</user_files_path>\
                     <format_schema_path>{dd}/schemas/</format_schema_path>\
                     <users_config>{dd}/users.xml</users_config><default_profile>default</default_profile>\
                     <default_database>default</default_database><mark_cache_size>5368709120</mark_cache_size>\
                     <remote_servers><causeway>{shards}</causeway></remote_servers></yandex>"
                ),
            )
            .expect("config.xml");
            let child = Command::new("clickhouse-server")
                .arg(format!("--config-file={dd}/config.xml"))
                .current_dir(&d)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("clickhouse-server (scripts/setup installs it)");
            nodes.push(child);
            dirs.push(d);
        }
        let ch = ClickHouse {
            nodes,
            http: ports.iter().map(|p| p.0).collect(),
            _dirs: dirs,
        };
        for p in &ch.http {
            wait_until("ClickHouse answers", Duration::from_secs(60), || {
                ch.sql(*p, "SELECT 1").is_some_and(|r| r.trim() == "1")
            });
        }
        ch
    }

    fn sql(&self, port: u16, q: &str) -> Option<String> {
        let mut resp = ureq::post(format!("http://127.0.0.1:{port}/"))
            .send(q)
            .ok()?;
        resp.body_mut().read_to_string().ok()
    }

    /// The store URL for database `db`: one node, or all as shards.
    fn url(&self, db: &str) -> String {
        let hosts: Vec<String> = self.http.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        if hosts.len() == 1 {
            format!("clickhouse://{}/{db}", hosts[0])
        } else {
            format!("clickhouse://{}/{db}?cluster=causeway", hosts.join(","))
        }
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        for c in &mut self.nodes {
            // SAFETY: plain kill(2) on our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        }
        for c in &mut self.nodes {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && !matches!(c.try_wait(), Ok(Some(_))) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// --- the tests ---------------------------------------------------------------

/// `causeway up` with `store` args, nginx and Redis driven by curl and
/// redis-benchmark: the API returns those spans, with their fields, within
/// a few seconds. Returns the API port and the stopped `up`'s stderr.
fn up_serves_what_it_captured(store: &[String]) -> Option<(u16, Vec<String>)> {
    let web = nginx(&[("a.txt", 100)]);
    let db = redis();
    let api_port = free_port();
    let mut args = strings(&["up", "--listen", &format!("127.0.0.1:{api_port}")]);
    args.extend_from_slice(store);
    let up = Proc::start(&args, "Ctrl-C to stop")?;
    let base = format!("http://127.0.0.1:{}", web.port);
    run_ok(
        Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-o",
                "/dev/null",
                "-H",
                "X-Request-ID: up-1",
            ])
            .arg(format!("{base}/a.txt"))
            .arg(format!("{base}/missing")),
    );
    run_ok(Command::new("redis-benchmark").args([
        "-p",
        &db.port.to_string(),
        "-n",
        "500",
        "-t",
        "set,get",
        "-q",
    ]));
    let at = |port: u16, op: &str| {
        vec![
            ("since", "5m".to_string()),
            ("port", port.to_string()),
            ("observation_point", op.to_string()),
        ]
    };
    let took = wait_until("every request stored", Duration::from_secs(15), || {
        let http = all_spans(api_port, &at(web.port, "server"));
        let redis = all_spans(api_port, &at(db.port, "server"));
        let n = |t: &str| redis.iter().filter(|s| s["request_type"] == t).count();
        http.len() == 2 && n("SET") == 500 && n("GET") == 500
    });
    eprintln!("stored and queryable {took:?} after the traffic ended");

    // HTTP, both sides, every field that matters.
    let me = host();
    for op in ["client", "server"] {
        let http = all_spans(api_port, &at(web.port, op));
        let got = count_by(&http, |s| {
            format!(
                "{} {} {}",
                s["request_type"], s["request_resource"], s["response_code"]
            )
        });
        assert_eq!(
            got,
            BTreeMap::from([
                ("\"GET\" \"/a.txt\" 200".to_string(), 1),
                ("\"GET\" \"/missing\" 404".to_string(), 1)
            ]),
            "{http:#?}"
        );
        for s in &http {
            assert_eq!(s["protocol"], "http");
            assert_eq!(s["x_request_id"], "up-1");
            assert_eq!(s["process_0"], "curl", "{s}");
            assert_eq!(s["service_0"], "curl");
            assert_eq!(s["process_1"], "nginx");
            assert_eq!(s["service_1"], "nginx");
            assert_eq!(s["host_0"], me.as_str());
            assert_eq!(s["host_1"], me.as_str());
            assert_eq!(s["agent"], me.as_str());
            assert_eq!(s["dst_port"], web.port);
            assert!(s["pid_0"].as_u64() > Some(0) && s["pid_1"].as_u64() > Some(0));
            let status = if s["response_code"] == 404 {
                "client_error"
            } else {
                "ok"
            };
            assert_eq!(s["response_status"], status);
            assert!(s["duration_us"].as_u64() < Some(1_000_000));
            // The same span by its id.
            let (code, one) = api(
                api_port,
                &format!("/api/v1/span/{}", s["id"].as_str().unwrap()),
                &[],
            );
            assert_eq!((code, &one), (200, s));
        }
    }
    // Filters: the 404, seen at both ends; a status and a port.
    let errors = all_spans(
        api_port,
        &[
            ("since", "5m".into()),
            ("port", web.port.to_string()),
            ("status", "client_error".into()),
        ],
    );
    assert_eq!(errors.len(), 2);
    assert!(errors.iter().all(|s| s["request_resource"] == "/missing"));
    // Redis: the benchmark's commands, named by server and client process.
    let redis = all_spans(api_port, &at(db.port, "server"));
    assert!(redis.iter().all(|s| s["service_1"] == "redis-server"
        && s["service_0"] == "redis-benchmark"
        && s["protocol"] == "redis"));
    let (code, services) = api(api_port, "/api/v1/services", &[("since", "5m".into())]);
    assert_eq!(code, 200);
    let list = services["services"].as_array().expect("services");
    let find = |name: &str, proto: &str| {
        list.iter()
            .find(|s| s["service"] == name && s["protocol"] == proto)
            .unwrap_or_else(|| panic!("{name} ({proto}) in {services:#}"))
    };
    assert!(find("redis-server", "redis")["served"].as_u64() >= Some(1000));
    assert!(find("redis-benchmark", "redis")["made"].as_u64() >= Some(1000));
    assert!(find("nginx", "http")["client_errors"].as_u64() >= Some(1));
    // Bad parameters are refused with a message.
    let (code, err) = api(api_port, "/api/v1/spans", &[("status", "fine".into())]);
    assert_eq!(code, 400);
    assert!(err["error"].as_str().unwrap_or_default().contains("status"));
    let (code, _) = api(api_port, "/api/v1/span/12", &[]);
    assert_eq!(code, 404);
    // The CLI over the same API.
    let out = run_ok(
        Command::new(env!("CARGO_BIN_EXE_causeway"))
            .args([
                "query",
                "spans",
                "--server",
                &format!("http://127.0.0.1:{api_port}"),
            ])
            .args([
                "--port",
                &web.port.to_string(),
                "--status",
                "client_error",
                "--format",
                "json",
            ]),
    );
    assert_eq!(out.lines().count(), 2, "{out}");
    let stderr = up.stop();
    let (spans_in, acked, dropped, refused, held) = export_line(&stderr);
    assert_eq!((dropped, refused, held), (0, 0, 0), "{stderr:#?}");
    assert_eq!(spans_in, acked);
    Some((api_port, stderr))
}

#[test]
fn up_on_duckdb_serves_what_it_captured_and_keeps_it() {
    let _g = serial();
    let data = temp_dir("up-duckdb");
    let store = strings(&["--data", &data.display().to_string()]);
    let Some(_) = up_serves_what_it_captured(&store) else {
        return;
    };
    // Stopped and started again: everything is still there.
    let api_port = free_port();
    let mut args = strings(&["up", "--listen", &format!("127.0.0.1:{api_port}")]);
    args.extend(store);
    let up = Proc::start(&args, "Ctrl-C to stop").expect("restart");
    let again = all_spans(
        api_port,
        &[("since", "10m".into()), ("protocol", "http".into())],
    );
    assert!(again.iter().filter(|s| s["x_request_id"] == "up-1").count() >= 4);
    up.stop();
}

#[test]
fn up_on_one_clickhouse_serves_what_it_captured() {
    let _g = serial();
    let ch = ClickHouse::start(1);
    up_serves_what_it_captured(&strings(&["--store", &ch.url("causeway_up")]));
}

#[test]
fn up_on_two_clickhouse_shards_serves_what_it_captured() {
    let _g = serial();
    let ch = ClickHouse::start(2);
    let Some((_, _)) = up_serves_what_it_captured(&strings(&["--store", &ch.url("causeway_up2")]))
    else {
        return;
    };
    // Both shards hold rows, and together what the Distributed table shows.
    let local: Vec<u64> = ch
        .http
        .iter()
        .map(|p| {
            ch.sql(*p, "SELECT count() FROM causeway_up2.spans_local")
                .and_then(|s| s.trim().parse().ok())
                .expect("count")
        })
        .collect();
    let total: u64 = ch
        .sql(ch.http[0], "SELECT count() FROM causeway_up2.spans")
        .and_then(|s| s.trim().parse().ok())
        .expect("count");
    assert!(
        local.iter().all(|n| *n > 0),
        "rows on every shard: {local:?}"
    );
    assert_eq!(local.iter().sum::<u64>(), total);
}

/// The store suite the DuckDB store passes in its unit tests (the key
/// queries of trace assembly and the span listings too), on ClickHouse: one node, then two
/// shards behind Distributed tables.
#[test]
fn clickhouse_stores_behave_as_the_embedded_one() {
    let _g = serial();
    for (nodes, db) in [(1, "conformance_one"), (2, "conformance_two")] {
        let ch = ClickHouse::start(nodes);
        let url = ch.url(db);
        conformance::run(&ClickHouseStore::open(&url).expect("open"));
        conformance::after_reopen(&ClickHouseStore::open(&url).expect("reopen"));
        conformance::keys(&ClickHouseStore::open(&ch.url(&format!("{db}_keys"))).expect("open"));
        conformance::listing(
            &ClickHouseStore::open(&ch.url(&format!("{db}_listing"))).expect("open"),
        );
    }
}

/// `causeway server` with a DuckDB store on fresh ports; its API and ingest ports.
fn server(data: &std::path::Path, api: u16, ingest: u16, token: &str) -> Proc {
    Proc::start(
        &strings(&[
            "server",
            "--data",
            &data.display().to_string(),
            "--listen",
            &format!("127.0.0.1:{api}"),
            "--ingest-listen",
            &format!("127.0.0.1:{ingest}"),
            "--token",
            token,
        ]),
        "server on",
    )
    .expect("causeway server")
}

fn agent(ingest: u16, token: &str, port: u16, extra: &[&str]) -> Option<Proc> {
    let mut args = strings(&[
        "agent",
        "--server",
        &format!("http://127.0.0.1:{ingest}"),
        "--token",
        token,
        "--port",
        &port.to_string(),
    ]);
    args.extend(strings(extra));
    Proc::start(&args, "Ctrl-C to stop")
}

fn redis_benchmark(port: u16, n: u32, tests: &str) {
    run_ok(Command::new("redis-benchmark").args([
        "-p",
        &port.to_string(),
        "-n",
        &n.to_string(),
        "-t",
        tests,
        "-q",
    ]));
}

#[test]
fn a_wrong_token_is_refused_and_said_so() {
    let _g = serial();
    let db = redis();
    let (api_port, ingest) = (free_port(), free_port());
    let data = temp_dir("wrong-token");
    let srv = server(&data, api_port, ingest, "right");
    let Some(ag) = agent(ingest, "wrong", db.port, &[]) else {
        return;
    };
    redis_benchmark(db.port, 50, "set");
    std::thread::sleep(Duration::from_secs(2));
    let stderr = ag.stop();
    let (spans_in, acked, dropped, _, held) = export_line(&stderr);
    assert!(spans_in >= 100);
    assert_eq!(acked, 0);
    // Not acknowledged means not delivered: counted as dropped at exit.
    assert_eq!(dropped + held, spans_in);
    assert!(
        stderr.iter().any(|l| l.contains("wrong token")),
        "the agent says why: {stderr:#?}"
    );
    let (_, metrics) = {
        let mut r = ureq::get(format!("http://127.0.0.1:{api_port}/metrics"))
            .call()
            .expect("metrics");
        (0, r.body_mut().read_to_string().expect("text"))
    };
    let refused = metrics
        .lines()
        .find(|l| l.starts_with("causeway_ingest_unauthenticated_total "))
        .and_then(|l| l.split(' ').nth(1)?.parse::<u64>().ok())
        .expect("counter");
    assert!(refused > 0);
    assert!(all_spans(api_port, &[("since", "5m".into())]).is_empty());
    srv.stop();
}

#[test]
fn the_server_killed_mid_ingest_loses_no_acknowledged_span() {
    let _g = serial();
    let db = redis();
    let (api_port, ingest) = (free_port(), free_port());
    let data = temp_dir("kill9");
    let srv = server(&data, api_port, ingest, "t");
    let Some(ag) = agent(ingest, "t", db.port, &["--buffer-spans", "1000000"]) else {
        return;
    };
    // Load in the background; the server dies by SIGKILL in the middle of
    // it and comes back 2 s later.
    let port = db.port;
    let load = std::thread::spawn(move || {
        for _ in 0..4 {
            redis_benchmark(port, 3000, "set,get");
        }
    });
    std::thread::sleep(Duration::from_millis(1500));
    srv.kill9();
    std::thread::sleep(Duration::from_secs(2));
    let srv = server(&data, api_port, ingest, "t");
    load.join().expect("load");
    // Let the agent deliver, then stop it: it reports what became of every span.
    std::thread::sleep(Duration::from_secs(3));
    let stderr = ag.stop();
    let (spans_in, acked, dropped, refused, held) = export_line(&stderr);
    assert_eq!((dropped, refused, held), (0, 0, 0), "{stderr:#?}");
    assert_eq!(acked, spans_in);
    let stored = all_spans(
        api_port,
        &[("since", "10m".into()), ("port", port.to_string())],
    );
    // Every acknowledged span is there, once.
    assert_eq!(stored.len() as u64, acked);
    let ids: HashSet<&str> = stored.iter().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!(ids.len(), stored.len(), "no span twice");
    let key = |s: &Value| {
        format!(
            "{} {} {} {}",
            s["observation_point"], s["socket_id"], s["req_tcp_seq"], s["request_type"]
        )
    };
    let distinct: HashSet<String> = stored.iter().map(key).collect();
    assert_eq!(distinct.len(), stored.len(), "no request stored twice");
    // And they are every request the benchmark made: 4 runs of 3000 each.
    let server_side: Vec<Value> = stored
        .iter()
        .filter(|s| s["observation_point"] == "server")
        .cloned()
        .collect();
    let by = count_by(&server_side, |s| {
        s["request_type"].as_str().unwrap_or_default().to_owned()
    });
    assert_eq!(
        (by.get("SET"), by.get("GET")),
        (Some(&12_000), Some(&12_000)),
        "{by:?}"
    );
    srv.stop();
}

#[test]
fn thirty_seconds_without_a_server_are_buffered_then_delivered() {
    let _g = serial();
    let db = redis();
    let (api_port, ingest) = (free_port(), free_port());
    let data = temp_dir("down30");
    // The agent starts with no server; traffic goes on for 30 s. No
    // packet capture: its flow reports would share the bound (every flow
    // on the host), and this is about spans.
    let Some(ag) = agent(
        ingest,
        "t",
        db.port,
        &["--buffer-spans", "3000", "--no-packets"],
    ) else {
        return;
    };
    let start = Instant::now();
    let mut rounds = 0;
    while start.elapsed() < Duration::from_secs(30) {
        redis_benchmark(db.port, 100, "set");
        rounds += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    let srv = server(&data, api_port, ingest, "t");
    // The agent delivers what it held (its bound, since far more came):
    // wait until the stored count stops growing for two seconds.
    let mut stored = Vec::new();
    let mut last = (0, Instant::now());
    wait_until("the held spans delivered", Duration::from_secs(60), || {
        stored = all_spans(
            api_port,
            &[("since", "10m".into()), ("port", db.port.to_string())],
        );
        if stored.len() != last.0 {
            last = (stored.len(), Instant::now());
        }
        stored.len() >= 2000 && last.1.elapsed() >= Duration::from_secs(2)
    });
    let stderr = ag.stop();
    let (spans_in, acked, dropped, refused, held) = export_line(&stderr);
    eprintln!("{rounds} rounds; in {spans_in}, acknowledged {acked}, dropped {dropped}");
    stored = all_spans(
        api_port,
        &[("since", "10m".into()), ("port", db.port.to_string())],
    );
    // Each round: 100 SETs (and the benchmark's CONFIG GETs), seen at both ends.
    assert!(spans_in >= rounds * 200, "{spans_in} for {rounds} rounds");
    assert_eq!((refused, held), (0, 0));
    assert_eq!(spans_in, acked + dropped, "every span accounted for");
    assert!(dropped > 0, "the bound was reached");
    assert!(acked <= 3000, "no more held than the bound: {acked}");
    // Batches are whole flushes of the capture (a few hundred spans), so
    // the queue fills to within one of them of the bound.
    assert!(acked >= 2000, "the bound was used: {acked}");
    assert_eq!(
        stored.len() as u64,
        acked,
        "what was acknowledged is stored"
    );
    srv.stop();
}

// --- AutoMetrics: metric rows, their API and the service map -----------------

/// The metric rows' store suite the DuckDB store passes in its unit tests,
/// on ClickHouse: one node, then two shards behind Distributed tables.
#[test]
fn clickhouse_metric_rows_behave_as_the_embedded_ones() {
    let _g = serial();
    for (nodes, db) in [(1, "metrics_one"), (2, "metrics_two")] {
        let ch = ClickHouse::start(nodes);
        let url = ch.url(db);
        conformance_red::run(&ClickHouseStore::open(&url).expect("open"));
        conformance_red::after_reopen(&ClickHouseStore::open(&url).expect("reopen"));
    }
}

/// Metric tables made before the network figures existed get their
/// columns when a store opens them, and then behave as new ones: one node,
/// and two shards (local and Distributed tables).
#[test]
fn clickhouse_metric_tables_of_before_the_network_figures_are_upgraded() {
    let _g = serial();
    for (nodes, db) in [(1, "upgrade_one"), (2, "upgrade_two")] {
        let ch = ClickHouse::start(nodes);
        let url = ch.url(db);
        drop(ClickHouseStore::open(&url).expect("create"));
        for port in &ch.http {
            for t in ["metrics_1s", "metrics_1m"] {
                let mut tables = vec![t.to_string()];
                if nodes > 1 {
                    tables.push(format!("{t}_local"));
                }
                for table in tables {
                    for c in causeway_server::red::NET_COLUMNS {
                        ch.sql(*port, &format!("ALTER TABLE {db}.{table} DROP COLUMN {c}"))
                            .expect("drop a column");
                    }
                    let cols = ch
                        .sql(
                            *port,
                            &format!(
                                "SELECT count() FROM system.columns WHERE database = '{db}' \
                                 AND table = '{table}' AND name = 'resets'"
                            ),
                        )
                        .expect("columns");
                    assert_eq!(cols.trim(), "0", "{table} still has resets");
                }
            }
        }
        conformance_red::run(&ClickHouseStore::open(&url).expect("open and upgrade"));
    }
}

/// The flow reports' store suite the DuckDB store passes in its unit
/// tests, on ClickHouse: one node, then two shards.
#[test]
fn clickhouse_flow_reports_behave_as_the_embedded_ones() {
    let _g = serial();
    for (nodes, db) in [(1, "flows_one"), (2, "flows_two")] {
        let ch = ClickHouse::start(nodes);
        let url = ch.url(db);
        conformance_flows::run(&ClickHouseStore::open(&url).expect("open"));
        conformance_flows::after_reopen(&ClickHouseStore::open(&url).expect("reopen"));
    }
}

/// `binary` (on PATH) under another name: a symlink called `name` in
/// `dir`. Its processes are then called `name` (a process's name is the
/// file name it was started by), which keeps this test's services apart
/// from the same programs other tests run on the host at the same time.
fn renamed(binary: &str, name: &str, dir: &std::path::Path) -> PathBuf {
    let real = run_ok(Command::new("sh").args(["-c", &format!("command -v {binary}")]));
    let link = dir.join(name);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(real.trim(), &link).expect("symlink");
    link
}

/// PostgreSQL whose processes are called `name` (trust authentication).
struct NamedPostgres {
    port: u16,
    dir: PathBuf,
}

impl NamedPostgres {
    fn start(name: &str) -> NamedPostgres {
        let port = free_port();
        let dir = temp_dir(&format!("pg-{name}"));
        let bin = std::path::Path::new("/usr/lib/postgresql/15/bin");
        let exe = dir.join(name);
        std::os::unix::fs::symlink(bin.join("postgres"), &exe).expect("symlink");
        run_ok(
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir),
        );
        let data = dir.join("data");
        let as_pg = |args: String| {
            let mut c = Command::new("su");
            c.args(["postgres", "-s", "/bin/sh", "-c", &args]);
            c
        };
        run_ok(&mut as_pg(format!(
            "{} -D {} -A trust -U postgres >/dev/null",
            bin.join("initdb").display(),
            data.display()
        )));
        run_ok(&mut as_pg(format!(
            "{} -D {} -p {} -w -l {}/log -o '-p {port} -k {} -c listen_addresses=127.0.0.1' start >/dev/null",
            bin.join("pg_ctl").display(),
            data.display(),
            exe.display(),
            dir.display(),
            dir.display()
        )));
        wait_for_port(port);
        NamedPostgres { port, dir }
    }
}

impl Drop for NamedPostgres {
    fn drop(&mut self) {
        let _ = Command::new("su")
            .args(["postgres", "-s", "/bin/sh", "-c"])
            .arg(format!(
                "/usr/lib/postgresql/15/bin/pg_ctl -D {}/data -m immediate stop",
                self.dir.display()
            ))
            .output();
    }
}

/// The metric tests' application (`fixtures/metrics/app.py serve`), its
/// threads called `name`; with Redis and PostgreSQL behind `/order/<n>`.
fn metrics_app(name: &str, backends: Option<(u16, u16)>) -> Server {
    let port = free_port();
    let mut cmd = Command::new("python3");
    cmd.arg(fixtures().join("metrics/app.py"))
        .args(["serve", name, &port.to_string()]);
    if let Some((redis, pg)) = backends {
        cmd.args([redis.to_string(), pg.to_string()]);
    }
    spawn_server(&mut cmd, port)
}

/// A name prefix no other test on this host uses now (process names are
/// at most 15 bytes: `m1234-nginx`).
fn unique_prefix() -> String {
    format!("m{:04}", free_port() % 10_000)
}

/// The exporter's closing line about metric rows: (made, acknowledged,
/// dropped, refused, held).
fn metric_export_line(stderr: &[String]) -> (u64, u64, u64, u64, u64) {
    let l = stderr
        .iter()
        .find(|l| l.contains("metric rows exported"))
        .unwrap_or_else(|| panic!("no metric export summary in {stderr:#?}"));
    (
        number_before(l, " metric rows exported"),
        number_before(l, " acknowledged"),
        number_before(l, " dropped"),
        number_before(l, " refused"),
        number_before(l, " held"),
    )
}

/// `/api/v1/metrics` as a map from each series' group (its values joined
/// by `|`) to its values.
fn metric_series(port: u16, params: &[(&str, &str)]) -> BTreeMap<String, Value> {
    let p: Vec<(&str, String)> = params.iter().map(|(k, v)| (*k, v.to_string())).collect();
    let (code, v) = api(port, "/api/v1/metrics", &p);
    assert_eq!(code, 200, "{v}");
    v["series"]
        .as_array()
        .expect("series")
        .iter()
        .map(|s| {
            let group = s["group"]
                .as_object()
                .map(|g| {
                    g.values()
                        .map(|x| x.as_str().unwrap_or_default().to_owned())
                        .collect::<Vec<_>>()
                        .join("|")
                })
                .unwrap_or_default();
            (group, s["values"].clone())
        })
        .collect()
}

/// The RED figures a test names, from a series' values.
fn red(v: &Value) -> [u64; 5] {
    [
        "requests",
        "responses",
        "client_errors",
        "server_errors",
        "timeouts",
    ]
    .map(|k| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}")))
}

const ALL_METRICS: &str = "requests,responses,client_errors,server_errors,errors,timeouts,\
    latency_sum_us,latency_count,latency_avg_us,latency_max_us,latency_p50_us,latency_p90_us,\
    latency_p95_us,latency_p99_us,request_bytes,response_bytes";

/// The known load against `store`: 1000 GETs from one client process to
/// the application, 37 answered 500 (19 to /items/{id}, 18 to
/// /users/{id}/cart), and 3 never answered; then the figures per endpoint
/// at 1 s (while `causeway up` runs) and at 1 min (after it stopped, from
/// `causeway server` on the same store) must be exactly those, at both
/// ends, and their latency and bytes exactly what the spans add up to.
fn red_of_a_known_load_is_exact(store: &[String]) {
    let prefix = unique_prefix();
    let (app_name, load_name) = (format!("{prefix}-app"), format!("{prefix}-load"));
    let api_port = free_port();
    let mut args = strings(&[
        "up",
        "--listen",
        &format!("127.0.0.1:{api_port}"),
        "--timeout",
        "2s",
    ]);
    args.extend_from_slice(store);
    let Some(up) = Proc::start(&args, "Ctrl-C to stop") else {
        return;
    };
    let app = metrics_app(&app_name, None);
    let out = run_ok(
        Command::new("python3")
            .arg(fixtures().join("metrics/app.py"))
            .args(["load", &load_name, &app.port.to_string()]),
    );
    let got: Value = serde_json::from_str(out.trim()).expect("the load's JSON");
    assert_eq!(
        got["status"],
        serde_json::json!({"200": 963, "500": 37, "hang": 3}),
        "what the client saw"
    );
    let want: BTreeMap<String, [u64; 5]> = BTreeMap::from([
        ("/items/{id}".to_string(), [500, 500, 0, 19, 0]),
        ("/users/{id}/cart".to_string(), [500, 500, 0, 18, 0]),
        ("/hang/{id}".to_string(), [3, 0, 0, 0, 3]),
    ]);
    let per_endpoint = |port: u16, side: &str, name: &str, g: &str| {
        metric_series(
            port,
            &[
                ("metric", ALL_METRICS),
                ("group_by", "endpoint"),
                ("service", name),
                ("observation_point", side),
                ("granularity", g),
                ("since", "10m"),
            ],
        )
    };
    let as_red = |m: &BTreeMap<String, Value>| -> BTreeMap<String, [u64; 5]> {
        m.iter().map(|(k, v)| (k.clone(), red(v))).collect()
    };
    // 1 s rows, while it runs: both ends, within seconds.
    let mut at_1s = BTreeMap::new();
    let took = wait_until(
        "the 1 s rows of every request",
        Duration::from_secs(30),
        || {
            at_1s = per_endpoint(api_port, "server", &app_name, "1s");
            as_red(&at_1s) == want
                && as_red(&per_endpoint(api_port, "client", &load_name, "1s")) == want
        },
    );
    eprintln!("1 s figures complete {took:?} after the load");
    // Latency and bytes are what the spans of each endpoint add up to.
    let spans = all_spans(
        api_port,
        &[
            ("since", "10m".into()),
            ("port", app.port.to_string()),
            ("observation_point", "server".into()),
        ],
    );
    assert_eq!(spans.len(), 1003);
    for (endpoint, values) in &at_1s {
        let mine: Vec<&Value> = spans
            .iter()
            .filter(|s| s["endpoint"] == *endpoint)
            .collect();
        let answered: Vec<u64> = mine
            .iter()
            .filter(|s| s["response_status"] != "timeout")
            .map(|s| s["duration_us"].as_u64().expect("duration"))
            .collect();
        let total = |k: &str| mine.iter().map(|s| s[k].as_u64().unwrap_or(0)).sum::<u64>();
        assert_eq!(
            values["request_bytes"].as_u64(),
            Some(total("request_length")),
            "{endpoint}"
        );
        assert_eq!(
            values["response_bytes"].as_u64(),
            Some(total("response_length")),
            "{endpoint}"
        );
        assert_eq!(
            values["latency_count"].as_u64(),
            Some(answered.len() as u64)
        );
        assert_eq!(
            values["latency_sum_us"].as_u64(),
            Some(answered.iter().sum::<u64>())
        );
        assert_eq!(
            values["latency_max_us"].as_u64(),
            answered.iter().max().copied()
        );
        let mut sorted = answered.clone();
        sorted.sort_unstable();
        for (q, k) in [
            (0.5, "latency_p50_us"),
            (0.9, "latency_p90_us"),
            (0.99, "latency_p99_us"),
        ] {
            match sorted.get((q * (sorted.len().max(1) - 1) as f64) as usize) {
                None => assert!(values[k].is_null(), "{endpoint} {k}"),
                Some(truth) => {
                    let est = values[k].as_u64().expect(k) as f64;
                    let truth = *truth as f64;
                    assert!(
                        (est - truth).abs() <= 0.02 * truth + 1.0,
                        "{endpoint} {k}: {est} vs {truth}"
                    );
                }
            }
        }
    }
    // The edge: counted at the client, once.
    let edge = metric_series(
        api_port,
        &[
            ("metric", "requests,server_errors,timeouts"),
            ("group_by", "client_service,server_service"),
            ("server_service", &app_name),
            ("granularity", "1s"),
            ("since", "10m"),
        ],
    );
    assert_eq!(edge.len(), 1, "{edge:?}");
    let e = &edge[&format!("{load_name}|{app_name}")];
    assert_eq!(
        (
            e["requests"].as_u64(),
            e["server_errors"].as_u64(),
            e["timeouts"].as_u64()
        ),
        (Some(1003), Some(37), Some(3))
    );
    // Per second: the points add up to the total.
    let (code, stepped) = api(
        api_port,
        "/api/v1/metrics",
        &[
            ("metric", "requests".into()),
            ("service", app_name.clone()),
            ("step", "1s".into()),
            ("since", "10m".into()),
        ],
    );
    assert_eq!(code, 200, "{stepped}");
    let points = stepped["series"][0]["points"].as_array().expect("points");
    assert_eq!(
        points
            .iter()
            .map(|p| p["requests"].as_u64().unwrap_or(0))
            .sum::<u64>(),
        1003
    );
    assert!(points
        .iter()
        .all(|p| p["time_us"].as_u64().unwrap_or(1) % 1_000_000 == 0));

    // Stopped: every open window is sent; then the 1 min rows, from a
    // server on the same store, say the same, quantiles and all.
    let stderr = up.stop();
    let (made, acked, dropped, refused, held) = metric_export_line(&stderr);
    assert_eq!((dropped, refused, held), (0, 0, 0), "{stderr:#?}");
    assert_eq!(made, acked);
    let api2 = free_port();
    let mut args = strings(&[
        "server",
        "--listen",
        &format!("127.0.0.1:{api2}"),
        "--ingest-listen",
        &format!("127.0.0.1:{}", free_port()),
    ]);
    args.extend_from_slice(store);
    let srv = Proc::start(&args, "server on").expect("causeway server");
    for (side, name) in [("server", &app_name), ("client", &load_name)] {
        let s1 = per_endpoint(api2, side, name, "1s");
        let m1 = per_endpoint(api2, side, name, "1m");
        assert_eq!(as_red(&m1), want, "{side} at 1 min");
        assert_eq!(m1, s1, "{side}: 1 min and 1 s rows agree on every figure");
    }
    assert_eq!(per_endpoint(api2, "server", &app_name, "1s"), at_1s);
    // The CLI over the same API.
    let out = run_ok(Command::new(env!("CARGO_BIN_EXE_causeway")).args([
        "query",
        "metrics",
        "--server",
        &format!("http://127.0.0.1:{api2}"),
        "--since",
        "10m",
        "--service",
        &app_name,
        "--group-by",
        "endpoint",
        "--metric",
        "requests,server_errors,p99",
        "--granularity",
        "1m",
        "--format",
        "json",
    ]));
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 3, "{out}");
    let items = lines
        .iter()
        .find(|l| l["group"]["endpoint"] == "/items/{id}")
        .expect("/items/{id}");
    assert_eq!(items["values"]["requests"], 500);
    assert_eq!(items["values"]["server_errors"], 19);
    let table = run_ok(Command::new(env!("CARGO_BIN_EXE_causeway")).args([
        "query",
        "metrics",
        "--server",
        &format!("http://127.0.0.1:{api2}"),
        "--since",
        "10m",
        "--service",
        &app_name,
        "--group-by",
        "endpoint",
    ]));
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("/users/{id}/cart") && l.contains(" 500 ")),
        "{table}"
    );
    srv.stop();
}

#[test]
fn red_metrics_of_a_known_load_are_exact_on_duckdb() {
    let _g = serial();
    let data = temp_dir("red-duckdb");
    red_of_a_known_load_is_exact(&strings(&["--data", &data.display().to_string()]));
}

#[test]
fn red_metrics_of_a_known_load_are_exact_on_clickhouse() {
    let _g = serial();
    let ch = ClickHouse::start(1);
    red_of_a_known_load_is_exact(&strings(&["--store", &ch.url("red")]));
}

/// A chain of services, each under a name of its own: curl → nginx
/// (reverse proxy) → a Python application → Redis and PostgreSQL. The
/// service map shows exactly its four edges, each counted once (at the
/// client end), with every request, and the services with what they
/// served and called.
#[test]
fn the_service_map_of_a_chain_shows_exactly_its_edges() {
    let _g = serial();
    let p = unique_prefix();
    let names = ["curl", "nginx", "app", "redis", "pg"].map(|n| format!("{p}-{n}"));
    let [curl, nginx, app, redis, pg] = &names;
    let bin = temp_dir(&format!("chain-{p}"));
    let data = temp_dir(&format!("chain-data-{p}"));
    let api_port = free_port();
    let Some(up) = Proc::start(
        &strings(&[
            "up",
            "--data",
            &data.display().to_string(),
            "--listen",
            &format!("127.0.0.1:{api_port}"),
        ]),
        "Ctrl-C to stop",
    ) else {
        return;
    };
    let db = NamedPostgres::start(pg);
    let cache_port = free_port();
    let _cache = spawn_server(
        Command::new(renamed("redis-server", redis, &bin))
            .args(["--bind", "127.0.0.1", "--port", &cache_port.to_string()])
            .args(["--save", "", "--appendonly", "no"]),
        cache_port,
    );
    // The application opens its Redis and PostgreSQL connections now, with
    // Causeway watching: its PostgreSQL startup is a request too.
    let backend = metrics_app(app, Some((cache_port, db.port)));
    let proxy_port = free_port();
    let conf_dir = temp_dir(&format!("chain-nginx-{p}"));
    let conf = conf_dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nworker_processes 1;\nerror_log {d}/error.log;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               server {{\n    listen 127.0.0.1:{proxy_port};\n\
                 location / {{ proxy_pass http://127.0.0.1:{}; }}\n  }}\n}}\n",
            backend.port,
            d = conf_dir.display(),
        ),
    )
    .expect("nginx.conf");
    let _proxy = spawn_server(
        Command::new(renamed("nginx", nginx, &bin))
            .arg("-c")
            .arg(&conf)
            .args(["-g", "user root;"]),
        proxy_port,
    );
    // 50 orders through the chain, on one connection (curl's URL glob).
    let codes = run_ok(
        Command::new(renamed("curl", curl, &bin))
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}\\n"])
            .arg(format!("http://127.0.0.1:{proxy_port}/order/[1-50]")),
    );
    assert_eq!(codes.lines().filter(|c| *c == "200").count(), 50, "{codes}");

    let want: BTreeMap<(String, String, String), u64> = BTreeMap::from([
        ((curl.clone(), nginx.clone(), "http".into()), 50),
        ((nginx.clone(), app.clone(), "http".into()), 50),
        ((app.clone(), redis.clone(), "redis".into()), 50),
        // 50 queries and the connection's startup.
        ((app.clone(), pg.clone(), "postgresql".into()), 51),
    ]);
    let mine = |v: &Value| names.iter().any(|n| v == n.as_str());
    let mut map = Value::Null;
    let edges_of = |map: &Value| -> BTreeMap<(String, String, String), u64> {
        map["edges"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| mine(&e["client"]) || mine(&e["server"]))
            .map(|e| {
                (
                    (
                        e["client"].as_str().unwrap_or_default().to_owned(),
                        e["server"].as_str().unwrap_or_default().to_owned(),
                        e["protocol"].as_str().unwrap_or_default().to_owned(),
                    ),
                    e["requests"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    };
    let took = wait_until("the chain's edges", Duration::from_secs(30), || {
        map = api(api_port, "/api/v1/service-map", &[("since", "10m".into())]).1;
        edges_of(&map) == want
    });
    eprintln!("service map complete {took:?} after the load");
    for e in map["edges"].as_array().expect("edges") {
        if mine(&e["client"]) || mine(&e["server"]) {
            assert_eq!(e["observation_point"], "client", "{e}");
            assert_eq!(e["responses"], e["requests"], "{e}");
            assert_eq!(
                (&e["client_errors"], &e["server_errors"], &e["timeouts"]),
                (&Value::from(0), &Value::from(0), &Value::from(0)),
                "{e}"
            );
            assert!(e["latency_p50_us"].as_u64() > Some(0), "{e}");
            assert!(e["latency_p99_us"].as_u64() <= e["latency_max_us"].as_u64());
            assert!(
                e["request_bytes"].as_u64() > Some(0) && e["response_bytes"].as_u64() > Some(0)
            );
        }
    }
    // Nodes: what each served (its server side) and called (its client side).
    let node = |name: &str| {
        map["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .find(|n| n["service"] == name)
            .unwrap_or_else(|| panic!("{name} in {map:#}"))
            .clone()
    };
    let figure = |name: &str, side: &str| node(name)[side]["requests"].as_u64();
    assert_eq!(
        (figure(curl, "served"), figure(curl, "called")),
        (None, Some(50))
    );
    assert_eq!(
        (figure(nginx, "served"), figure(nginx, "called")),
        (Some(50), Some(50))
    );
    assert_eq!(
        (figure(app, "served"), figure(app, "called")),
        (Some(50), Some(101))
    );
    assert_eq!(
        (figure(redis, "served"), figure(redis, "called")),
        (Some(50), None)
    );
    assert_eq!(
        (figure(pg, "served"), figure(pg, "called")),
        (Some(51), None)
    );
    // Narrowed to one service: its edges only.
    let (_, around_app) = api(
        api_port,
        "/api/v1/service-map",
        &[("since", "10m".into()), ("service", app.clone())],
    );
    assert_eq!(edges_of(&around_app).len(), 3, "{around_app:#}");
    // The table of edges.
    let table = run_ok(Command::new(env!("CARGO_BIN_EXE_causeway")).args([
        "query",
        "map",
        "--server",
        &format!("http://127.0.0.1:{api_port}"),
        "--since",
        "10m",
    ]));
    for ((client, server, protocol), n) in &want {
        assert!(
            table.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 4
                    && f[0] == client
                    && f[1] == server
                    && f[2] == protocol
                    && f[3] == "client"
                    && f[4] == n.to_string()
            }),
            "{client} -> {server} ({protocol}) {n} in\n{table}"
        );
    }
    let stderr = up.stop();
    let (_, _, dropped, refused, _) = metric_export_line(&stderr);
    assert_eq!((dropped, refused), (0, 0));
}
