//! Loads the real BPF programs and checks what they report for traffic this
//! test makes itself on loopback. With `CAUSEWAY_REQUIRE_EBPF=1` (CI) a
//! failure to load is a test failure; without it the test says why it skipped.

use causeway_bpf::{EventSink, ProbeConfig, Probes};
use causeway_model::{Direction, L4Protocol, SocketEvent, SocketRole, Syscall};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn load_or_skip(config: &ProbeConfig) -> Option<Probes> {
    match Probes::load(config) {
        Ok(p) => Some(p),
        Err(e) if std::env::var("CAUSEWAY_REQUIRE_EBPF").as_deref() != Ok("1") => {
            eprintln!("skipping: eBPF unavailable: {e}");
            None
        }
        Err(e) => panic!("eBPF required (CAUSEWAY_REQUIRE_EBPF=1) but unavailable: {e}"),
    }
}

#[derive(Debug, Clone)]
struct Seen {
    tid: u32,
    socket_id: u64,
    role: SocketRole,
    direction: Direction,
    syscall: Syscall,
    total_len: u32,
    payload: Vec<u8>,
    tcp_seq: u32,
    l4: L4Protocol,
    local_port: u16,
    remote_port: u16,
    local_ip: String,
    remote_ip: String,
    trace_id: u64,
}

#[derive(Default)]
struct Collect {
    data: Vec<Seen>,
    opens: Vec<(u64, SocketRole, u16, u16)>,
    closes: Vec<u64>,
}

impl EventSink for Collect {
    fn on_event(&mut self, event: SocketEvent<'_>) {
        match event {
            SocketEvent::Data(d) => self.data.push(Seen {
                tid: d.tid,
                socket_id: d.socket_id,
                role: d.role,
                direction: d.direction,
                syscall: d.syscall,
                total_len: d.total_len,
                payload: d.payload.to_vec(),
                tcp_seq: d.tcp_seq,
                l4: d.tuple.l4,
                local_port: d.tuple.local.port(),
                remote_port: d.tuple.remote.port(),
                local_ip: d.tuple.local.ip().to_string(),
                remote_ip: d.tuple.remote.ip().to_string(),
                trace_id: d.syscall_trace_id,
            }),
            SocketEvent::Open(o) => self.opens.push((
                o.socket_id,
                o.role,
                o.tuple.local.port(),
                o.tuple.remote.port(),
            )),
            SocketEvent::Close(c) => self.closes.push(c.socket_id),
        }
    }
}

/// Loads the probes, runs `traffic`, and returns what the probes reported.
/// The probes ignore the process that loaded them (this test), so traffic
/// comes from child processes.
fn run_probes_while<F: FnOnce()>(config: &ProbeConfig, traffic: F) -> Option<Collect> {
    let probes = load_or_skip(config)?;
    let stop = Arc::new(AtomicBool::new(false));
    let collected = Arc::new(Mutex::new(Collect::default()));
    std::thread::scope(|s| {
        let stop2 = stop.clone();
        let c2 = collected.clone();
        let probes = &probes;
        let h = s.spawn(move || {
            let mut sink = Collect::default();
            probes
                .run(&mut sink, &stop2, Duration::from_millis(50))
                .expect("ring buffer poll");
            *c2.lock().unwrap() = sink;
        });
        traffic();
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        h.join().unwrap();
    });
    let c = std::mem::take(&mut *collected.lock().unwrap());
    assert_eq!(probes.counters().lost, 0, "ring buffer lost events");
    Some(c)
}

/// A child that makes traffic: this test binary re-executed in helper mode,
/// so the traffic needs nothing installed.
fn child(mode: &str, port: u16) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "helper_process", "--nocapture"])
        .env("CAUSEWAY_HELPER", format!("{mode}:{port}"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn helper")
}

#[test]
fn helper_process() {
    let Ok(spec) = std::env::var("CAUSEWAY_HELPER") else {
        return; // Only does something when spawned by another test.
    };
    let (mode, port) = spec.split_once(':').unwrap();
    let port: u16 = port.parse().unwrap();
    let host = if mode.ends_with('6') {
        "::1"
    } else {
        "127.0.0.1"
    };
    match mode.trim_end_matches('6') {
        "tcp-server" => {
            let l = TcpListener::bind((host, port)).unwrap();
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap();
            assert_eq!(&buf[..5], b"PING ");
            s.write_all(&buf[..n]).unwrap();
        }
        "tcp-client" => {
            let mut s = TcpStream::connect((host, port)).unwrap();
            let msg = [b"PING ".as_slice(), &[b'x'; 2000]].concat();
            s.write_all(&msg).unwrap();
            let mut got = vec![0u8; msg.len()];
            s.read_exact(&mut got).unwrap();
        }
        "udp" => {
            let a = UdpSocket::bind("127.0.0.1:0").unwrap();
            let b = UdpSocket::bind(("127.0.0.1", port)).unwrap();
            a.send_to(b"hello-udp", ("127.0.0.1", port)).unwrap();
            let mut buf = [0u8; 64];
            let (n, _) = b.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"hello-udp");
        }
        m => panic!("unknown helper mode {m}"),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn sees_tcp_request_and_response_on_both_sides() {
    tcp_both_sides("");
}

#[test]
fn sees_tcp_over_ipv6() {
    tcp_both_sides("6");
}

fn tcp_both_sides(family: &str) {
    if std::env::var("CAUSEWAY_HELPER").is_ok() {
        return;
    }
    let port = free_port();
    let config = ProbeConfig {
        payload_cap: 64,
        ..ProbeConfig::default()
    };
    let Some(c) = run_probes_while(&config, || {
        let mut server = child(&format!("tcp-server{family}"), port);
        std::thread::sleep(Duration::from_millis(200));
        let mut client = child(&format!("tcp-client{family}"), port);
        assert!(client.wait().unwrap().success());
        assert!(server.wait().unwrap().success());
    }) else {
        return;
    };
    let ours: Vec<&Seen> = c
        .data
        .iter()
        .filter(|d| d.l4 == L4Protocol::Tcp && (d.local_port == port || d.remote_port == port))
        .collect();
    // Client write, server read, server write, client read (reads may split).
    let client_write = ours
        .iter()
        .find(|d| d.remote_port == port && d.direction == Direction::Egress)
        .expect("client write seen");
    assert_eq!(client_write.total_len, 2005);
    assert_eq!(client_write.payload.len(), 64, "payload capped");
    assert!(client_write.payload.starts_with(b"PING xxx"));
    assert_eq!(client_write.role, SocketRole::Client);
    let want_ip = if family == "6" { "::1" } else { "127.0.0.1" };
    assert_eq!(client_write.remote_ip, want_ip);
    assert_eq!(client_write.local_ip, want_ip);
    let server_read = ours
        .iter()
        .find(|d| d.local_port == port && d.direction == Direction::Ingress)
        .expect("server read seen");
    assert_eq!(server_read.role, SocketRole::Server);
    assert_eq!(
        server_read.tcp_seq, client_write.tcp_seq,
        "same TCP seq on both ends"
    );
    let server_write = ours
        .iter()
        .find(|d| d.local_port == port && d.direction == Direction::Egress)
        .expect("server write seen");
    // The server's reply continues its inbound request: same syscall trace id.
    assert_eq!(server_write.trace_id, server_read.trace_id);
    assert_eq!(server_write.tid, server_read.tid);
    let client_bytes_in: u32 = ours
        .iter()
        .filter(|d| d.remote_port == port && d.direction == Direction::Ingress)
        .map(|d| d.total_len)
        .sum();
    assert_eq!(client_bytes_in, 2005);
    // connect and accept were seen with their roles, and both closes.
    let client_id = client_write.socket_id;
    let server_id = server_read.socket_id;
    assert!(c
        .opens
        .iter()
        .any(|o| o.0 == client_id && o.1 == SocketRole::Client));
    assert!(c
        .opens
        .iter()
        .any(|o| o.0 == server_id && o.1 == SocketRole::Server));
    assert!(c.closes.contains(&client_id) || c.closes.contains(&server_id));
    // Syscalls are what std uses.
    assert!(matches!(
        client_write.syscall,
        Syscall::Write | Syscall::Sendto
    ));
}

#[test]
fn sees_unconnected_udp_with_peer_from_sockaddr() {
    if std::env::var("CAUSEWAY_HELPER").is_ok() {
        return;
    }
    let port = free_port();
    let Some(c) = run_probes_while(&ProbeConfig::default(), || {
        assert!(child("udp", port).wait().unwrap().success());
    }) else {
        return;
    };
    let send = c
        .data
        .iter()
        .find(|d| {
            d.l4 == L4Protocol::Udp && d.remote_port == port && d.direction == Direction::Egress
        })
        .expect("udp send with destination from sendto's sockaddr");
    assert_eq!(send.payload, b"hello-udp");
    assert_eq!(send.tcp_seq, 0);
    let recv = c
        .data
        .iter()
        .find(|d| {
            d.l4 == L4Protocol::Udp && d.local_port == port && d.direction == Direction::Ingress
        })
        .expect("udp receive");
    assert_eq!(recv.payload, b"hello-udp");
    assert_eq!(
        recv.remote_port, send.local_port,
        "peer from recvfrom's sockaddr"
    );
}
