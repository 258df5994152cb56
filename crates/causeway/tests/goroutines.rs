//! Go goroutines as pseudo-threads. A stdlib-only Go service (GOMAXPROCS=4,
//! so goroutines hop threads) answers each request from a handler that
//! spawns a goroutine to call a downstream Go server through a shared
//! keep-alive client, under 32 concurrent clients. From `causeway watch`'s
//! spans alone, every inbound request must be linked to the downstream call
//! made on its behalf by a shared syscall trace id, and to nothing else;
//! with the tracking off (per-thread ids) it is not. Plain (non-TLS) Go
//! spans carry the goroutine id.

mod support;

use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::*;

/// Builds `fixtures/go_spawn` with extra `go build` flags.
fn go_spawn_binary(tag: &str, flags: &[&str]) -> PathBuf {
    go_spawn_binary_with(tag, flags, &[])
}

/// ... and extra environment.
fn go_spawn_binary_with(tag: &str, flags: &[&str], env: &[(&str, &str)]) -> PathBuf {
    let dir = temp_dir(&format!("go-spawn-{tag}"));
    let bin = dir.join("go_spawn");
    run_ok(
        Command::new("go")
            .arg("build")
            .args(flags)
            .arg("-o")
            .arg(&bin)
            .arg(fixtures().join("go_spawn/main.go"))
            .env("GO111MODULE", "off")
            .env("GOPROXY", "off")
            .env("GOCACHE", dir.join("cache"))
            .envs(env.iter().copied()),
    );
    bin
}

/// Linked by the system linker with cgo on: its TLS block is laid out by
/// the C toolchain, not by Go's linker.
fn go_spawn_cgo_binary(tag: &str) -> PathBuf {
    go_spawn_binary_with(
        tag,
        &["-ldflags=-linkmode=external"],
        &[("CGO_ENABLED", "1"), ("CC", "clang")],
    )
}

/// The service and its downstream, started before the watch so that its
/// first scan probes them.
struct Services {
    service: Server,
    _downstream: Server,
    down_port: u16,
}

fn start_services(bin: &Path) -> Services {
    let down_port = free_port();
    let downstream = spawn_server(
        Command::new(bin).args(["downstream", &down_port.to_string()]),
        down_port,
    );
    let port = free_port();
    let child = Command::new(bin)
        .args(["service", &port.to_string(), &down_port.to_string()])
        .env("GOMAXPROCS", "4")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the go_spawn service");
    wait_for_port(port);
    Services {
        service: Server { child, port },
        _downstream: downstream,
        down_port,
    }
}

/// `go_spawn load`: N requests, CONC at a time.
fn load(bin: &Path, port: u16, n: usize, conc: usize) {
    let out = run_ok(Command::new(bin).args([
        "load",
        &port.to_string(),
        &n.to_string(),
        &conc.to_string(),
    ]));
    assert_eq!(out, format!("ok {n}\n"));
}

/// Test id of a span from its path (`/req/ID`, `/down/ID`).
fn test_id(sp: &Value) -> String {
    s(sp, "request_resource")
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn trace_ids(sp: &Value) -> Vec<u64> {
    let mut v: Vec<u64> = ["syscall_trace_id_req", "syscall_trace_id_resp"]
        .iter()
        .map(|f| n(sp, f))
        .filter(|&id| id != 0)
        .collect();
    v.dedup();
    v
}

/// The service's spans: inbound (server, `/req/ID`) and downstream (client,
/// `/down/ID`), each test id exactly once on each side.
struct ServiceSpans<'a> {
    inbound: HashMap<String, &'a Value>,
    downstream: HashMap<String, &'a Value>,
}

fn service_spans<'a>(spans: &'a [Value], svc: &Services, n_requests: usize) -> ServiceSpans<'a> {
    let pid = svc.service.pid() as u64;
    let mut inbound = HashMap::new();
    let mut downstream = HashMap::new();
    for sp in spans
        .iter()
        .filter(|sp| s(sp, "protocol") == "http" && n(sp, "pid") == pid)
    {
        let (op, port, res) = (
            s(sp, "observation_point"),
            n(sp, "dst_port"),
            s(sp, "request_resource"),
        );
        let side = if op == "server" && port == svc.service.port as u64 && res.starts_with("/req/")
        {
            &mut inbound
        } else if op == "client" && port == svc.down_port as u64 && res.starts_with("/down/") {
            &mut downstream
        } else {
            continue;
        };
        assert!(
            side.insert(test_id(sp), sp).is_none(),
            "two spans for one test id: {sp}"
        );
    }
    assert_eq!(inbound.len(), n_requests, "one inbound span per request");
    assert_eq!(
        downstream.len(),
        n_requests,
        "one downstream span per request"
    );
    ServiceSpans {
        inbound,
        downstream,
    }
}

/// How well shared syscall trace ids link each inbound request to its own
/// downstream call and to nothing else.
#[derive(Debug)]
struct Linkage {
    /// Requests whose inbound and downstream spans share a trace id.
    linked: usize,
    requests: usize,
    /// Pairs of the service's spans sharing a trace id: all, and those of
    /// the same request.
    pairs: usize,
    true_pairs: usize,
}

impl Linkage {
    fn recall(&self) -> f64 {
        self.linked as f64 / self.requests as f64
    }
    fn precision(&self) -> f64 {
        if self.pairs == 0 {
            return 0.0;
        }
        self.true_pairs as f64 / self.pairs as f64
    }
}

fn linkage(spans: &ServiceSpans<'_>) -> Linkage {
    let all: Vec<(&String, &Value)> = spans
        .inbound
        .iter()
        .chain(spans.downstream.iter())
        .map(|(id, sp)| (id, *sp))
        .collect();
    let mut by_trace: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, (_, sp)) in all.iter().enumerate() {
        for t in trace_ids(sp) {
            by_trace.entry(t).or_default().push(i);
        }
    }
    let mut pairs = HashSet::new();
    for members in by_trace.values() {
        for (k, &a) in members.iter().enumerate() {
            for &b in &members[k + 1..] {
                if a != b {
                    pairs.insert((a.min(b), a.max(b)));
                }
            }
        }
    }
    let true_pairs = pairs.iter().filter(|(a, b)| all[*a].0 == all[*b].0).count();
    let linked = spans
        .inbound
        .iter()
        .filter(|(id, sp)| {
            let down = trace_ids(spans.downstream[*id]);
            trace_ids(sp).iter().any(|t| down.contains(t))
        })
        .count();
    Linkage {
        linked,
        requests: spans.inbound.len(),
        pairs: pairs.len(),
        true_pairs,
    }
}

const REQUESTS: usize = 400;
const CONCURRENCY: usize = 32;

/// One run of the service under load, watched with `--goroutine-tracking
/// mode`; None when eBPF is unavailable and not required.
fn run(bin: &Path, mode: &str) -> Option<Linkage> {
    let svc = start_services(bin);
    let watch = Watch::start(&["--goroutine-tracking", mode])?;
    load(bin, svc.service.port, REQUESTS, CONCURRENCY);
    let w = watch.stop();
    assert_eq!(w.lost, 0, "{}", w.stats_line);
    let spans = service_spans(&w.spans, &svc, REQUESTS);
    let l = linkage(&spans);
    eprintln!(
        "goroutine tracking {mode}: recall {:.4} ({}/{}), precision {:.4} ({}/{} pairs); {}",
        l.recall(),
        l.linked,
        l.requests,
        l.precision(),
        l.true_pairs,
        l.pairs,
        w.stats_line
    );
    Some(l)
}

#[test]
fn spawned_goroutines_carry_their_requests_trace_id() {
    let _g = serial();
    let bin = go_spawn_binary("link", &[]);
    let Some(on) = run(&bin, "channels") else {
        return;
    };
    assert!(
        on.recall() >= 0.99 && on.precision() >= 0.99,
        "goroutine tracking links each request to its downstream call and nothing else: {on:?}"
    );
    // The same with per-thread ids: goroutines hop threads and threads
    // serve many requests, so ids join requests that have nothing to do
    // with each other.
    let off = run(&bin, "off").expect("eBPF worked a moment ago");
    assert!(
        off.precision() < 0.9,
        "per-thread trace ids should mislink requests here: {off:?}"
    );
}

/// On a cgo binary linked by the system linker, so that reading the
/// current g from the thread's TLS is shown to work there too (the other
/// test's binary is linked by Go).
#[test]
fn plain_go_spans_carry_the_goroutine_id() {
    let _g = serial();
    let bin = go_spawn_cgo_binary("goid");
    let mut svc = start_services(&bin);
    let Some(watch) = Watch::start(&[]) else {
        return;
    };
    let n_requests = 50;
    load(&bin, svc.service.port, n_requests, 4);
    let w = watch.stop();
    assert_eq!(w.lost, 0, "{}", w.stats_line);
    let spans = service_spans(&w.spans, &svc, n_requests);
    // What the service says each request's handler goroutine was.
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(svc.service.child.id() as i32, libc::SIGKILL) };
    let _ = svc.service.child.wait();
    let said: HashMap<String, u64> =
        BufReader::new(svc.service.child.stdout.take().expect("service stdout"))
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| {
                let (g, id) = l.strip_prefix("goid=")?.split_once(" id=")?;
                Some((id.to_owned(), g.parse().ok()?))
            })
            .collect();
    assert_eq!(said.len(), n_requests);
    for (id, sp) in &spans.inbound {
        assert!(!field(sp, "is_tls").as_bool().unwrap_or(true));
        // The handler's goroutine writes the response. (The request's
        // first byte may be read by net/http's background-read goroutine.)
        assert_eq!(
            n(sp, "coroutine_id_resp"),
            said[id],
            "handler goroutine of request {id}: {sp}"
        );
        assert_ne!(n(sp, "coroutine_id_req"), 0, "{sp}");
    }
    for sp in spans.downstream.values() {
        // Written by the connection's writer goroutine, read by its reader.
        assert_ne!(n(sp, "coroutine_id_req"), 0, "{sp}");
        assert_ne!(n(sp, "coroutine_id_resp"), 0, "{sp}");
        assert_ne!(
            n(sp, "coroutine_id_req"),
            n(sp, "coroutine_id_resp"),
            "{sp}"
        );
    }
    // Another Go process: the downstream server's spans carry its goroutines.
    let down: Vec<&Value> = w
        .spans
        .iter()
        .filter(|sp| {
            s(sp, "observation_point") == "server"
                && n(sp, "dst_port") == svc.down_port as u64
                && n(sp, "pid") != svc.service.pid() as u64
        })
        .collect();
    assert_eq!(down.len(), n_requests);
    assert!(down.iter().all(|sp| n(sp, "coroutine_id_resp") != 0));
}

/// Where the runtime's struct offsets come from: DWARF when the binary has
/// it; the version table, checked in newproc1's code, when it was linked
/// without (`-w`); a stripped binary (`-s -w`) is not probed at all.
#[test]
fn go_runtime_layout_from_dwarf_or_the_version_table() {
    use causeway_bpf::go_elf::{GoElfError, OffsetSource, GO_1_18_TO_1_22};
    use causeway_bpf::go_runtime::{analyse, SpawnSite};
    let full = std::fs::read(go_spawn_binary("dwarf", &[])).expect("read");
    let sites = analyse(&full).expect("a Go 1.19 binary with DWARF");
    assert_eq!(sites.layout_from, OffsetSource::Dwarf);
    assert_eq!(sites.layout, GO_1_18_TO_1_22, "DWARF agrees with the table");
    assert!(matches!(sites.spawn, SpawnSite::Runqput(_)));
    assert!(sites.chansend.is_some() && sites.chanrecv.is_some() && sites.selectgo.is_some());
    // The fallback for a go statement's new goroutine: newproc1's RETs.
    let elf = causeway_bpf::go_elf::GoElf::parse(&full).expect("parse");
    assert!(!elf
        .function("runtime.newproc1")
        .expect("newproc1")
        .returns
        .is_empty());

    let no_dwarf = std::fs::read(go_spawn_binary("nodwarf", &["-ldflags=-w"])).expect("read");
    let sites = analyse(&no_dwarf).expect("a Go 1.19 binary without DWARF");
    assert_eq!(sites.layout_from, OffsetSource::VersionTable);
    assert_eq!(sites.layout, GO_1_18_TO_1_22);

    let cgo = std::fs::read(go_spawn_cgo_binary("cgo")).expect("read");
    let sites = analyse(&cgo).expect("a cgo binary linked by the system linker");
    assert_eq!(sites.layout, GO_1_18_TO_1_22, "g at fs:-8 there too");

    let stripped = std::fs::read(go_spawn_binary("stripped", &["-ldflags=-s -w"])).expect("read");
    assert_eq!(
        analyse(&stripped).unwrap_err(),
        GoElfError::NoSymbol("runtime.newproc1")
    );
}
