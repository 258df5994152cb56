//! Per-syscall cost Causeway adds to the traced application, measured side by
//! side in one run: (a) nothing attached, (b) empty BPF programs on the same
//! tracepoints (the floor any tracepoint-based tracer pays), (c) the real
//! agent, `causeway watch`, running in its own process.
//!
//! The workload is a tight loop in one thread over two connected loopback TCP
//! sockets: write a 37-byte HTTP request on the client socket, read it on the
//! server socket, write a 38-byte HTTP response there, read it on the client
//! socket. Four socket syscalls per exchange, none blocks (loopback delivers
//! during the write), so the loop measures syscall cost rather than wakeups;
//! and the agent sees real HTTP, so (c) pays for capture, parsing and pairing
//! into spans, not just for dropping bytes. Modes are interleaved over several
//! rounds and the median round is reported.
//!
//! Run: `cargo bench -p causeway --bench syscall_overhead` (root, eBPF).

use causeway_bpf::EmptyProbes;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REQUEST: &[u8] = b"GET /x HTTP/1.1\r\nHost: bench\r\n\r\n\r\n";
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
const SYSCALLS_PER_EXCHANGE: u64 = 4;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Pair {
    client: TcpStream,
    server: TcpStream,
}

fn connect() -> Pair {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    client.set_nodelay(true).expect("nodelay");
    server.set_nodelay(true).expect("nodelay");
    Pair { client, server }
}

/// Runs `exchanges` request/response exchanges; returns ns per syscall.
fn run(exchanges: u64) -> f64 {
    let mut p = connect();
    let request = &REQUEST[..REQUEST.len() - 2];
    let mut buf = [0u8; 256];
    let start = Instant::now();
    for _ in 0..exchanges {
        p.client.write_all(request).expect("client write");
        let n = p.server.read(&mut buf).expect("server read");
        assert_eq!(n, request.len(), "request arrived whole");
        p.server.write_all(RESPONSE).expect("server write");
        let n = p.client.read(&mut buf).expect("client read");
        assert_eq!(n, RESPONSE.len(), "response arrived whole");
    }
    start.elapsed().as_nanos() as f64 / (exchanges * SYSCALLS_PER_EXCHANGE) as f64
}

struct Agent {
    child: Child,
    stderr: BufReader<std::process::ChildStderr>,
    spans_file: std::path::PathBuf,
}

fn start_agent(round: usize) -> Agent {
    let spans_file = std::env::temp_dir().join(format!(
        "causeway-bench-spans-{}-{round}.json",
        std::process::id()
    ));
    let out = std::fs::File::create(&spans_file).expect("spans file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_causeway"))
        .args(["watch", "--format", "json"])
        .stdout(out)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn causeway watch");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    loop {
        line.clear();
        if stderr.read_line(&mut line).expect("read stderr") == 0 {
            panic!("causeway watch exited before attaching");
        }
        if line.contains("watching") {
            break;
        }
    }
    Agent {
        child,
        stderr,
        spans_file,
    }
}

/// Stops the agent; returns its exit statistics line and the spans it printed.
fn stop_agent(mut agent: Agent) -> (String, usize) {
    // Let it drain what the loop produced before stopping it.
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(agent.child.id() as i32, libc::SIGINT) };
    let mut rest = String::new();
    agent.stderr.read_to_string(&mut rest).expect("stderr");
    agent.child.wait().expect("wait agent");
    let spans = std::fs::read_to_string(&agent.spans_file)
        .map(|s| s.lines().count())
        .unwrap_or(0);
    let _ = std::fs::remove_file(&agent.spans_file);
    let stats = rest
        .lines()
        .find(|l| l.contains("events captured"))
        .unwrap_or("(no statistics)")
        .to_string();
    (stats, spans)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to filter here.
    let exchanges = env_or("CAUSEWAY_BENCH_EXCHANGES", 100_000);
    let rounds = env_or("CAUSEWAY_BENCH_ROUNDS", 5) as usize;
    println!(
        "syscall_overhead: {rounds} rounds x {exchanges} exchanges x {SYSCALLS_PER_EXCHANGE} syscalls, modes interleaved"
    );
    run(exchanges / 10); // warm up
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        a.push(run(exchanges));

        let empty = match EmptyProbes::load() {
            Ok(p) => p,
            Err(e) => {
                eprintln!("syscall_overhead: cannot load the empty BPF programs: {e}");
                std::process::exit(1);
            }
        };
        b.push(run(exchanges));
        drop(empty);

        let agent = start_agent(round);
        c.push(run(exchanges));
        let (stats, spans) = stop_agent(agent);
        println!(
            "round {round}: a {:.0} ns, b {:.0} ns, c {:.0} ns per syscall; agent printed {spans} spans; {stats}",
            a[round], b[round], c[round]
        );
        // Each exchange is one client span and one server span.
        if spans as u64 != 2 * exchanges {
            println!(
                "round {round}: WARNING agent spans {spans} != {}",
                2 * exchanges
            );
        }
    }
    let (ma, mb, mc) = (median(&mut a), median(&mut b), median(&mut c));
    let (db, dc) = (mb - ma, mc - ma);
    println!();
    println!("| mode | ns per syscall (median of {rounds}) |");
    println!("|---|---|");
    println!("| (a) nothing attached | {ma:.0} |");
    println!("| (b) empty BPF programs, same tracepoints | {mb:.0} |");
    println!("| (c) causeway watch running | {mc:.0} |");
    println!();
    println!(
        "(b) - (a) = {db:.0} ns; (c) - (a) = {dc:.0} ns; ratio (c-a)/(b-a) = {:.2}",
        dc / db
    );
    let goal_ratio = dc <= 1.5 * db;
    let goal_abs = dc < 500.0;
    println!(
        "goal (c-a) <= 1.5 x (b-a): {}; goal (c-a) < 500 ns: {}",
        if goal_ratio { "met" } else { "NOT met" },
        if goal_abs { "met" } else { "NOT met" }
    );
}
