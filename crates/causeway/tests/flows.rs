//! Flow records against tshark on the same packets.
//!
//! `fixtures/flows/flows.pcapng` was recorded by `fixtures/flows/record.sh`
//! (a network namespace behind a veth pair, iptables dropping 5% of the
//! HTTP port's packets and every SYN to one port, a reader that stops
//! reading, a closed port, resets both ways, UDP). `causeway replay --flows`
//! must give, per flow and direction, the packets, IP bytes, payload bytes,
//! retransmissions (`tcp.analysis.retransmission`: plain, fast and
//! spurious), out-of-order segments, zero windows (`tcp.analysis.zero_window`),
//! RSTs, SYNs/SYN-ACKs and FINs tshark counts in the same file, and the
//! close type tshark's frames imply (FINs both ways, the first reset's side,
//! a refused or unanswered SYN).

mod support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// What tshark saw of one direction of a flow.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Side {
    packets: u64,
    bytes: u64,
    payload_bytes: u64,
    retransmissions: u64,
    out_of_order: u64,
    zero_windows: u64,
    resets: u64,
    syns: u64,
    fins: u64,
    /// SYNs (SYN-ACKs) flagged as retransmissions: retries.
    syn_retries: u64,
}

/// A flow by tshark: sides `[client → server, server → client]`.
#[derive(Debug, Default, Clone)]
struct OracleFlow {
    tcp: bool,
    sides: [Side; 2],
    /// Side of the first RST, and whether a SYN-ACK came before it.
    first_reset: Option<(usize, bool)>,
    synack_seen: bool,
    syn_seen: bool,
}

impl OracleFlow {
    /// The close type the frames imply (the names `causeway` prints).
    fn close_type(&self) -> &'static str {
        if !self.tcp {
            return "capture_end";
        }
        if self.sides[0].fins > 0 && self.sides[1].fins > 0 && self.first_reset.is_none() {
            return "normal";
        }
        match self.first_reset {
            Some((1, false)) => "refused",
            Some((1, true)) => "server_reset",
            Some(_) => "client_reset",
            None if self.syn_seen && !self.synack_seen => "syn_timeout",
            None => "capture_end",
        }
    }
}

/// Frame numbers tshark marks with `filter`.
fn frames_where(file: &Path, filter: &str) -> BTreeSet<u64> {
    support::tshark_fields(file, None, filter, &["frame.number"])
        .into_iter()
        .map(|r| r[0].parse().expect("frame number"))
        .collect()
}

/// The flows in `file` by tshark, keyed by (l4, client, server). `filter`
/// narrows the frames (e.g. to some ports).
fn tshark_flows(file: &Path, filter: &str) -> BTreeMap<(String, String, String), OracleFlow> {
    let and = |f: &str| format!("({filter}) && {f}");
    let retrans = frames_where(file, &and("tcp.analysis.retransmission"));
    let zero = frames_where(file, &and("tcp.analysis.zero_window"));
    let ooo = frames_where(file, &and("tcp.analysis.out_of_order"));
    let rows = support::tshark_fields(
        file,
        None,
        &and("(tcp || udp) && !icmp && ip.flags.mf == 0"),
        &[
            "frame.number",
            "ip.src",
            "ip.dst",
            "ip.len",
            "tcp.srcport",
            "tcp.dstport",
            "udp.srcport",
            "udp.dstport",
            "tcp.flags.syn",
            "tcp.flags.ack",
            "tcp.flags.fin",
            "tcp.flags.reset",
            "tcp.len",
            "udp.length",
        ],
    );
    let mut flows: BTreeMap<(String, String, String), OracleFlow> = BTreeMap::new();
    // Unordered pair -> (client, server), decided by the first SYN (TCP) or
    // the first datagram (UDP) / the lower port (TCP mid-stream: none here).
    let mut roles: BTreeMap<(String, String, String), (String, String)> = BTreeMap::new();
    for r in rows {
        let frame: u64 = r[0].parse().expect("frame");
        let tcp = !r[4].is_empty();
        let (sp, dp) = if tcp { (&r[4], &r[5]) } else { (&r[6], &r[7]) };
        let src = format!("{}:{}", r[1], sp);
        let dst = format!("{}:{}", r[2], dp);
        let l4 = if tcp { "tcp" } else { "udp" }.to_owned();
        let flag = |i: usize| r[i] == "1";
        let (syn, ack, fin, rst) = (flag(8), flag(9), flag(10), flag(11));
        let pair = if src < dst {
            (l4.clone(), src.clone(), dst.clone())
        } else {
            (l4.clone(), dst.clone(), src.clone())
        };
        let (client, server) = roles
            .entry(pair)
            .or_insert_with(|| {
                if tcp && syn && ack {
                    (dst.clone(), src.clone())
                } else {
                    (src.clone(), dst.clone())
                }
            })
            .clone();
        let dir = usize::from(src != client);
        let f = flows.entry((l4, client, server)).or_default();
        f.tcp = tcp;
        let s = &mut f.sides[dir];
        s.packets += 1;
        s.bytes += r[3].parse::<u64>().expect("ip.len");
        s.payload_bytes += if tcp {
            r[12].parse::<u64>().expect("tcp.len")
        } else {
            r[13].parse::<u64>().expect("udp.length") - 8
        };
        s.retransmissions += u64::from(retrans.contains(&frame));
        s.out_of_order += u64::from(ooo.contains(&frame));
        s.zero_windows += u64::from(zero.contains(&frame));
        s.resets += u64::from(rst);
        s.fins += u64::from(fin);
        if syn && ack == (dir == 1) {
            s.syns += 1;
            s.syn_retries += u64::from(retrans.contains(&frame));
        }
        if syn && !ack {
            f.syn_seen = true;
        }
        if syn && ack {
            f.synack_seen = true;
        }
        if rst && f.first_reset.is_none() {
            f.first_reset = Some((dir, f.synack_seen));
        }
    }
    flows
}

/// `causeway replay --flows --format json FILE ARGS...`: its flow reports.
fn replay_flows(file: &Path, args: &[&str]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_causeway"))
        .arg("replay")
        .arg(file)
        .args(["--flows", "--format", "json"])
        .args(args)
        .output()
        .expect("run causeway replay");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "causeway replay failed: {stderr}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
        .collect()
}

/// Sums a flow's reports per (l4, client, server): sides added up, the
/// close type of its last report. Each key must be one flow.
fn by_flow(reports: &[Value]) -> BTreeMap<(String, String, String), (Side, Side, String)> {
    let mut out: BTreeMap<(String, String, String), (Side, Side, String)> = BTreeMap::new();
    let mut ids: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for r in reports {
        let key = (
            support::s(r, "l4_protocol").to_owned(),
            support::s(r, "client").to_owned(),
            support::s(r, "server").to_owned(),
        );
        let id = support::n(r, "flow_id");
        assert_eq!(
            *ids.entry(key.clone()).or_insert(id),
            id,
            "two flows for {key:?}"
        );
        let e = out.entry(key).or_default();
        for (dir, side) in [&mut e.0, &mut e.1].into_iter().enumerate() {
            let v = &r["sides"][dir];
            let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"));
            side.packets += n("packets");
            side.bytes += n("bytes");
            side.payload_bytes += n("payload_bytes");
            side.retransmissions += n("retransmissions");
            side.out_of_order += n("out_of_order");
            side.zero_windows += n("zero_windows");
            side.resets += n("resets");
            side.syns += n("syns");
            side.fins += n("fins");
        }
        e.2 = support::s(r, "close_type").to_owned();
    }
    out
}

#[test]
fn replayed_flows_match_tshark() {
    assert!(support::tool_present("tshark"), "tshark is needed");
    let file = support::fixtures().join("flows/flows.pcapng");
    let oracle = tshark_flows(&file, "ip");
    // The recording's quiet after the dropped SYNs is 3 s: a 2 s SYN
    // timeout ends that attempt before the file does.
    let ours = by_flow(&replay_flows(&file, &["--flow-syn-timeout", "2s"]));
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        oracle.keys().collect::<Vec<_>>(),
        "the same flows"
    );
    let mut totals = Side::default();
    let mut closes: BTreeMap<String, usize> = BTreeMap::new();
    for (key, o) in &oracle {
        let (c, s, close) = &ours[key];
        for (dir, (mine, theirs)) in [c, s].into_iter().zip(&o.sides).enumerate() {
            let mut expect = theirs.clone();
            expect.syn_retries = 0;
            assert_eq!(*mine, expect, "{key:?} direction {dir}");
        }
        // SYN retries: every SYN after the first was a retransmission to tshark.
        assert_eq!(
            c.syns.saturating_sub(1),
            o.sides[0].syn_retries,
            "{key:?} SYN retries"
        );
        assert_eq!(
            s.syns.saturating_sub(1),
            o.sides[1].syn_retries,
            "{key:?} SYN-ACK retries"
        );
        assert_eq!(close, o.close_type(), "{key:?} close type");
        *closes.entry(close.clone()).or_default() += 1;
        for t in &o.sides {
            totals.retransmissions += t.retransmissions;
            totals.zero_windows += t.zero_windows;
            totals.resets += t.resets;
            totals.syn_retries += t.syn_retries;
        }
    }
    // The recording holds what the test is about.
    assert!(totals.retransmissions >= 3, "{totals:?}");
    assert!(totals.zero_windows >= 2, "{totals:?}");
    assert!(totals.resets >= 3, "{totals:?}");
    assert!(totals.syn_retries >= 2, "{totals:?}");
    for kind in [
        "normal",
        "client_reset",
        "server_reset",
        "refused",
        "syn_timeout",
    ] {
        assert!(closes.contains_key(kind), "no {kind} flow: {closes:?}");
    }
    // Zero windows both ways: the slow server's and the slow reader's.
    let zw_sides: BTreeSet<usize> = oracle
        .values()
        .flat_map(|o| (0..2).filter(move |&d| o.sides[d].zero_windows > 0))
        .collect();
    assert_eq!(zw_sides.len(), 2, "zero windows on both sides");
}

/// The kinds of retransmission the recording has none of: a spurious
/// retransmission, a fast retransmission after duplicate ACKs, an
/// out-of-order segment, a zero-window probe (not a retransmission) and
/// zero windows, in hand-built segments (`fixtures/flows/analysis.py`, the
/// segments of tcp_state.rs's unit test) that tshark flags so.
#[test]
fn replayed_analysis_kinds_match_tshark() {
    let file = support::fixtures().join("flows/analysis.pcap");
    let oracle = tshark_flows(&file, "ip");
    let ours = by_flow(&replay_flows(&file, &[]));
    assert_eq!(oracle.len(), 1);
    for kind in [
        "fast_retransmission",
        "spurious_retransmission",
        "out_of_order",
        "zero_window_probe",
    ] {
        assert_eq!(
            frames_where(&file, &format!("tcp.analysis.{kind}")).len(),
            1,
            "{kind}"
        );
    }
    for (key, o) in &oracle {
        let (c, s, close) = &ours[key];
        for (dir, (mine, theirs)) in [c, s].into_iter().zip(&o.sides).enumerate() {
            let mut expect = theirs.clone();
            expect.syn_retries = 0;
            assert_eq!(*mine, expect, "{key:?} direction {dir}");
        }
        assert_eq!(close, o.close_type());
        assert_eq!((c.retransmissions, c.out_of_order), (2, 1));
        assert_eq!(s.zero_windows, 2);
    }
}

#[test]
fn replayed_flows_table_names_every_flow() {
    let file = support::fixtures().join("flows/flows.pcapng");
    let out = Command::new(env!("CARGO_BIN_EXE_causeway"))
        .arg("replay")
        .arg(&file)
        .args(["--flows", "--flow-syn-timeout", "2s", "--port", "18085"])
        .output()
        .expect("run causeway replay");
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(lines[0].starts_with("L4  CLIENT -> SERVER"), "{table}");
    assert!(lines[1].contains("-> 10.250.0.2:18085"), "{table}");
    assert!(lines[1].contains(" refused "), "{table}");
}

// --- live capture ------------------------------------------------------------

/// A network namespace joined to this one by a veth pair, removed on drop.
struct Netns {
    name: String,
    /// The host end (in this namespace), its address and the peer's.
    host_if: String,
    host_ip: String,
    peer_ip: String,
}

fn sh(cmd: &str) {
    let out = Command::new("sh")
        .args(["-c", cmd])
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Netns {
    /// `10.251.N.1` here, `10.251.N.2` there; iptables there drop `drop_pct`
    /// percent of `lossy_port`'s packets each way and every SYN to
    /// `syn_dropped`.
    fn create(lossy_port: u16, drop_pct: u32, syn_dropped: u16) -> Netns {
        let n = std::process::id() % 250 + 1;
        let name = format!("cwlive{n}");
        let host_if = format!("cwl{n}a");
        let peer_if = format!("cwl{n}b");
        for args in [["netns", "del", &name], ["link", "del", &host_if]] {
            let _ = Command::new("ip")
                .args(args)
                .stderr(std::process::Stdio::null())
                .status();
        }
        let (host_ip, peer_ip) = (format!("10.251.{n}.1"), format!("10.251.{n}.2"));
        let p = f64::from(drop_pct) / 100.0;
        for cmd in [
            format!("ip netns add {name}"),
            format!("ip link add {host_if} type veth peer name {peer_if}"),
            format!("ip link set {peer_if} netns {name}"),
            format!("ip addr add {host_ip}/24 dev {host_if}"),
            format!("ip link set {host_if} up"),
            format!("ip netns exec {name} ip addr add {peer_ip}/24 dev {peer_if}"),
            format!("ip netns exec {name} ip link set {peer_if} up"),
            format!("ip netns exec {name} ip link set lo up"),
            format!("ip netns exec {name} iptables -A INPUT -p tcp --dport {lossy_port} -m statistic --mode random --probability {p} -j DROP"),
            format!("ip netns exec {name} iptables -A OUTPUT -p tcp --sport {lossy_port} -m statistic --mode random --probability {p} -j DROP"),
            format!("ip netns exec {name} iptables -A INPUT -p tcp --dport {syn_dropped} --syn -j DROP"),
        ] {
            sh(&cmd);
        }
        Netns {
            name,
            host_if,
            host_ip,
            peer_ip,
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes the pair.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A child process killed (SIGINT, then waited for) on drop.
struct Child(std::process::Child);

impl Child {
    fn interrupt(&mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        self.0.wait().expect("wait")
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Waits for a line containing `what` on `lines`; panics with what was
/// seen after `secs`.
fn wait_line(
    lines: &std::sync::mpsc::Receiver<String>,
    what: &str,
    secs: u64,
    seen: &mut Vec<String>,
) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        match lines.recv_timeout(std::time::Duration::from_millis(100)) {
            Ok(l) => {
                let hit = l.contains(what);
                seen.push(l);
                if hit {
                    return true;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return false,
        }
    }
    false
}

/// Answers of a stopped `causeway up`'s API to `paths`, served from its
/// data directory by `causeway server`.
fn served(data: &Path, paths: &[String]) -> Vec<Value> {
    let api_port = support::free_port();
    let mut serve = Child(
        Command::new(env!("CARGO_BIN_EXE_causeway"))
            .args(["server", "--listen", &format!("127.0.0.1:{api_port}")])
            .arg("--data")
            .arg(data)
            .args([
                "--ingest-listen",
                &format!("127.0.0.1:{}", support::free_port()),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start causeway server"),
    );
    support::wait_for_port(api_port);
    let out = paths
        .iter()
        .map(|p| {
            let body = support::run_ok(
                Command::new("curl").args(["-sf", &format!("http://127.0.0.1:{api_port}{p}")]),
            );
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{p}: {e}: {body}"))
        })
        .collect();
    serve.interrupt();
    out
}

/// Starts `causeway up ARGS` with its data in `data` and waits until it
/// captures; None when eBPF is unavailable and not required (skipped,
/// saying so).
fn start_up(
    data: &Path,
    args: &[&str],
) -> Option<(Child, std::sync::mpsc::Receiver<String>, Vec<String>)> {
    let mut all: Vec<String> = vec![
        "up".into(),
        "--listen".into(),
        format!("127.0.0.1:{}", support::free_port()),
        "--data".into(),
        data.display().to_string(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    start_causeway(&all)
}

/// Starts `causeway ARGS` (`up` or `agent`) and waits until it captures;
/// None when eBPF is unavailable and not required (skipped, saying so).
fn start_causeway(
    args: &[String],
) -> Option<(Child, std::sync::mpsc::Receiver<String>, Vec<String>)> {
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_causeway"))
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start causeway"),
    );
    let lines = support::lines_of(child.0.stderr.take().expect("stderr"));
    let mut seen = Vec::new();
    if !wait_line(&lines, "Ctrl-C to stop", 60, &mut seen) {
        let status = child.0.wait().expect("wait");
        if seen.iter().any(|l| l.contains("eBPF")) && !support::ebpf_required() {
            eprintln!(
                "skipping: causeway {} could not attach ({status}): {seen:#?}",
                args[0]
            );
            return None;
        }
        panic!("causeway {args:?} not ready ({status}): {seen:#?}");
    }
    Some((child, lines, seen))
}

/// Starts tshark on `interface` writing `out`, and waits until it captures.
fn start_tshark(interface: &str, filter: Option<&str>, out: &Path) -> Child {
    let mut cmd = Command::new("tshark");
    cmd.args(["-q", "-i", interface, "-F", "pcapng"]);
    if let Some(f) = filter {
        cmd.args(["-f", f]);
    }
    let mut tshark = Child(
        cmd.arg("-w")
            .arg(out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start tshark"),
    );
    let lines = support::lines_of(tshark.0.stderr.take().expect("stderr"));
    let mut seen = Vec::new();
    assert!(
        wait_line(&lines, "Capturing", 30, &mut seen),
        "tshark: {seen:?}"
    );
    // dumpcap says "Capturing" a little before its socket takes packets
    // (a first run here missed a handshake): let it settle.
    std::thread::sleep(std::time::Duration::from_secs(1));
    tshark
}

/// `causeway up` capturing packets on a veth pair the test creates, while
/// tshark captures the same interface: the flow reports stored and served
/// by `/api/v1/flows` agree with tshark's counts on its capture, flow by
/// flow (packets, bytes, retransmissions, zero windows, resets, SYN
/// retries, establish failures and close types), and the interface is named.
#[test]
fn live_flows_match_tshark_on_the_same_interface() {
    let _g = support::serial();
    assert!(support::tool_present("tshark"), "tshark is needed");
    let scenario = support::fixtures().join("flows/scenario.py");
    let ports = "18080,18081,18082,18083,18084";
    let net = Netns::create(18080, 5, 18086);
    let dir = support::temp_dir("flows-live");
    let pcap = dir.join("live.pcapng");

    let server_log = dir.join("server.log");
    let mut server = Child(
        Command::new("ip")
            .args(["netns", "exec", &net.name, "python3"])
            .arg(&scenario)
            .args(["serve", "--ports", ports])
            .stdout(std::fs::File::create(&server_log).expect("log"))
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the server"),
    );
    let Some((mut up, up_lines, mut seen)) = start_up(
        &dir.join("data"),
        &["--interface", &net.host_if, "--flow-syn-timeout", "2s"],
    ) else {
        return;
    };
    let mut tshark = start_tshark(&net.host_if, None, &pcap);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !std::fs::read_to_string(&server_log)
        .unwrap_or_default()
        .contains("ready")
    {
        assert!(std::time::Instant::now() < deadline, "server not ready");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    let drive = Command::new("python3")
        .arg(&scenario)
        .args(["drive", "--server", &net.peer_ip, "--ports", ports])
        .args([
            "--closed",
            "18085",
            "--dropped",
            "18086",
            "--rounds",
            "4",
            "--big",
            "20000",
        ])
        .output()
        .expect("drive");
    assert!(
        drive.status.success(),
        "scenario: {}",
        String::from_utf8_lossy(&drive.stderr)
    );
    // The trailing ACKs and closes, then both captures stop.
    std::thread::sleep(std::time::Duration::from_secs(1));
    tshark.interrupt();
    let status = up.interrupt();
    seen.extend(up_lines.iter());
    assert!(status.success(), "causeway up: {seen:#?}");
    let packets_line = seen
        .iter()
        .find(|l| l.contains("packets captured"))
        .unwrap_or_else(|| panic!("no packet summary: {seen:#?}"));
    assert!(
        packets_line.contains(", 0 dropped by the kernel") && packets_line.contains("(0 dropped)"),
        "{packets_line}"
    );
    server.interrupt();

    // The stored reports and network metrics, by the API (the store
    // survived the stop).
    let net_metrics = "client_packets,server_packets,client_bytes,server_bytes,new_flows,\
                       closed_flows,retransmissions,zero_windows,establish_failures,resets,\
                       rtt_avg_us";
    let mut answers = served(
        &dir.join("data"),
        &[
            "/api/v1/flows?since=10m&limit=1000".into(),
            format!(
                "/api/v1/metrics?since=10m&granularity=1m&observation_point=network\
                 &group_by=server_service&metric={net_metrics}"
            ),
            format!(
                "/api/v1/metrics?since=10m&granularity=1s&observation_point=network\
                 &group_by=client_service,server_service&metric={net_metrics}"
            ),
            "/api/v1/service-map?since=10m".into(),
        ],
    );
    let map = answers.pop().expect("map");
    let edge_metrics = answers.pop().expect("edge metrics");
    let node_metrics = answers.pop().expect("node metrics");
    let doc = answers.pop().expect("flows");
    let reports: Vec<Value> = doc["flows"]
        .as_array()
        .expect("flows")
        .iter()
        .filter(|f| {
            let s = support::s(f, "server");
            s.starts_with(&format!("{}:", net.peer_ip))
        })
        .cloned()
        .collect();
    for r in &reports {
        assert_eq!(support::s(r, "interface"), net.host_if, "{r}");
    }
    let ours = by_flow(&reports);
    eprintln!(
        "{} reports of {} flows; {packets_line}",
        reports.len(),
        ours.len()
    );
    let filter = format!("ip.addr == {}", net.peer_ip);
    let oracle = tshark_flows(&pcap, &filter);
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        oracle.keys().collect::<Vec<_>>(),
        "the same flows"
    );
    let mut totals = Side::default();
    for (key, o) in &oracle {
        let (c, s, close) = &ours[key];
        for (dir, (mine, theirs)) in [c, s].into_iter().zip(&o.sides).enumerate() {
            let mut expect = theirs.clone();
            expect.syn_retries = 0;
            assert_eq!(*mine, expect, "{key:?} direction {dir}");
        }
        assert_eq!(c.syns.saturating_sub(1), o.sides[0].syn_retries, "{key:?}");
        assert_eq!(close, o.close_type(), "{key:?} close type");
        for t in &o.sides {
            totals.retransmissions += t.retransmissions;
            totals.zero_windows += t.zero_windows;
            totals.resets += t.resets;
            totals.syn_retries += t.syn_retries;
        }
    }
    eprintln!("tshark's totals: {totals:?}");

    // Network metrics per node (server) at 1 min and per edge at 1 s are
    // the flows' figures added up, and the service map's edges carry them.
    let mut want: BTreeMap<String, BTreeMap<&str, u64>> = BTreeMap::new();
    for ((_, _, server), o) in &oracle {
        let w = want.entry(server.clone()).or_default();
        let [c, s] = &o.sides;
        for (k, v) in [
            ("client_packets", c.packets),
            ("server_packets", s.packets),
            ("client_bytes", c.bytes),
            ("server_bytes", s.bytes),
            ("new_flows", 1),
            ("closed_flows", 1),
            ("retransmissions", c.retransmissions + s.retransmissions),
            ("zero_windows", c.zero_windows + s.zero_windows),
            (
                "establish_failures",
                u64::from(matches!(o.close_type(), "refused" | "syn_timeout")),
            ),
            ("resets", c.resets + s.resets),
        ] {
            *w.entry(k).or_default() += v;
        }
    }
    let client = &net.host_ip;
    for (doc, client_too) in [(&node_metrics, false), (&edge_metrics, true)] {
        let mut got: BTreeMap<String, BTreeMap<&str, u64>> = BTreeMap::new();
        for series in doc["series"].as_array().expect("series") {
            let server = support::s(&series["group"], "server_service").to_owned();
            if !server.starts_with(&format!("{}:", net.peer_ip)) {
                continue;
            }
            if client_too {
                assert_eq!(support::s(&series["group"], "client_service"), client);
            }
            let g = got.entry(server).or_default();
            for k in want.values().next().expect("a flow").keys() {
                *g.entry(k).or_default() += series["values"][*k].as_u64().unwrap_or(0);
            }
            assert!(
                series["values"]["rtt_avg_us"].is_u64() || series["values"]["rtt_avg_us"].is_null()
            );
        }
        assert_eq!(got, want, "network metrics ({doc})");
    }
    for (server, w) in &want {
        let edges: Vec<&Value> = map["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .filter(|e| support::s(e, "server") == server)
            .collect();
        let sum = |k: &str| {
            edges
                .iter()
                .map(|e| e[k].as_u64().unwrap_or(0))
                .sum::<u64>()
        };
        for k in [
            "retransmissions",
            "zero_windows",
            "establish_failures",
            "resets",
            "new_flows",
        ] {
            assert_eq!(sum(k), w[k], "service map {server} {k}");
        }
    }
    assert!(totals.zero_windows >= 2, "{totals:?}");
    assert!(totals.resets >= 3, "{totals:?}");
    assert!(totals.syn_retries >= 2, "{totals:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Loopback through libpcap's `any` device (the default): each packet
/// once, as tshark on `lo` sees it, and the BPF filter keeps only the
/// test's port (requests to a port outside the filter leave no flow).
/// Split deployment: `causeway agent` pushes the flow reports over gRPC to
/// `causeway server`, whose API serves them.
#[test]
fn loopback_packets_count_once_and_the_filter_applies() {
    let _g = support::serial();
    assert!(support::tool_present("tshark"), "tshark is needed");
    let dir = support::temp_dir("flows-lo");
    let web = support::python_server("http", &[]);
    let other = support::python_server("http", &[]);
    let filter = format!("tcp port {}", web.port);
    let (api_port, ingest_port) = (support::free_port(), support::free_port());
    let mut server = Child(
        Command::new(env!("CARGO_BIN_EXE_causeway"))
            .args(["server", "--listen", &format!("127.0.0.1:{api_port}")])
            .args(["--ingest-listen", &format!("127.0.0.1:{ingest_port}")])
            .arg("--data")
            .arg(dir.join("data"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start causeway server"),
    );
    support::wait_for_port(api_port);
    support::wait_for_port(ingest_port);
    let Some((mut up, up_lines, mut seen)) = start_causeway(&[
        "agent".into(),
        "--server".into(),
        format!("http://127.0.0.1:{ingest_port}"),
        "--capture-filter".into(),
        filter.clone(),
    ]) else {
        return;
    };
    let pcap = dir.join("lo.pcapng");
    let mut tshark = start_tshark("lo", Some(&filter), &pcap);
    // Two requests on one connection to each server, then five more
    // connections to the filtered one.
    for port in [web.port, other.port] {
        support::run_ok(Command::new("curl").args([
            "-sf",
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
            &format!("http://127.0.0.1:{port}/10"),
            &format!("http://127.0.0.1:{port}/10"),
        ]));
    }
    for _ in 0..5 {
        support::run_ok(Command::new("curl").args([
            "-sf",
            "-o",
            "/dev/null",
            &format!("http://127.0.0.1:{}/100", web.port),
        ]));
    }
    std::thread::sleep(std::time::Duration::from_secs(1));
    tshark.interrupt();
    let status = up.interrupt();
    seen.extend(up_lines.iter());
    assert!(status.success(), "causeway agent: {seen:#?}");
    assert!(
        seen.iter()
            .any(|l| l.contains("flow reports exported") && l.contains(" 0 dropped, 0 refused")),
        "{seen:#?}"
    );
    let body = support::run_ok(Command::new("curl").args([
        "-sf",
        &format!("http://127.0.0.1:{api_port}/api/v1/flows?since=10m&limit=1000"),
    ]));
    // The CLI over the same API: the flows table, and the service map's
    // edge from the wire with its six new flows.
    let api = format!("http://127.0.0.1:{api_port}");
    let table = support::run_ok(
        Command::new(env!("CARGO_BIN_EXE_causeway"))
            .args(["query", "flows", "--server", &api, "--since", "10m"])
            .args(["--limit", "1000"]),
    );
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(rows.len(), 6, "{table}");
    assert!(
        rows.iter()
            .all(|r| r.ends_with(" lo") && r.contains(" normal ")),
        "{table}"
    );
    let map = support::run_ok(
        Command::new(env!("CARGO_BIN_EXE_causeway"))
            .args(["query", "map", "--server", &api, "--since", "10m"]),
    );
    let header: Vec<&str> = map
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let flows_at = header
        .iter()
        .position(|h| *h == "FLOWS")
        .expect("FLOWS column");
    let edge: Vec<&str> = map
        .lines()
        .find(|l| l.contains(&format!("127.0.0.1:{}", web.port)) && l.contains(" network "))
        .unwrap_or_else(|| panic!("no network edge: {map}"))
        .split_whitespace()
        .collect();
    assert_eq!(edge[flows_at], "6", "{map}");
    server.interrupt();
    let doc: Value = serde_json::from_str(&body).expect("JSON");
    let reports = doc["flows"].as_array().expect("flows").clone();
    let ours = by_flow(&reports);
    assert!(
        reports
            .iter()
            .all(|r| support::s(r, "server").ends_with(&format!(":{}", web.port))),
        "only the filtered port: {reports:#?}"
    );
    for r in &reports {
        assert_eq!(support::s(r, "interface"), "lo", "{r}");
    }
    let oracle = tshark_flows(&pcap, "ip");
    assert_eq!(oracle.len(), 6, "six connections: {:?}", oracle.keys());
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        oracle.keys().collect::<Vec<_>>(),
        "the same flows"
    );
    for (key, o) in &oracle {
        let (c, s, close) = &ours[key];
        for (dir, (mine, theirs)) in [c, s].into_iter().zip(&o.sides).enumerate() {
            let mut expect = theirs.clone();
            expect.syn_retries = 0;
            assert_eq!(*mine, expect, "{key:?} direction {dir}");
        }
        assert_eq!(close, "normal", "{key:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--network-spans`: the parsers run on the packets' reassembled payloads
/// too, and each request seen on the wire (observation point `network`)
/// carries the TCP sequence numbers of the eBPF spans of the same request
/// at the client and at the server, so trace assembly joins the three.
#[test]
fn network_spans_share_tcp_seq_with_ebpf_spans_and_join_traces() {
    let _g = support::serial();
    let dir = support::temp_dir("flows-net-spans");
    let web = support::python_server("http", &[]);
    let filter = format!("tcp port {}", web.port);
    let Some((mut up, up_lines, mut seen)) = start_up(
        &dir.join("data"),
        &["--network-spans", "--capture-filter", &filter],
    ) else {
        return;
    };
    for i in 0..5 {
        support::run_ok(Command::new("curl").args([
            "-sf",
            "-o",
            "/dev/null",
            &format!("http://127.0.0.1:{}/{}", web.port, 100 + i),
        ]));
    }
    std::thread::sleep(std::time::Duration::from_secs(1));
    let status = up.interrupt();
    seen.extend(up_lines.iter());
    assert!(status.success(), "causeway up: {seen:#?}");
    let spans = served(
        &dir.join("data"),
        &[format!(
            "/api/v1/spans?since=10m&port={}&limit=1000",
            web.port
        )],
    )
    .remove(0);
    let spans = spans["spans"].as_array().expect("spans").clone();
    let at = |op: &str| -> Vec<&Value> {
        spans
            .iter()
            .filter(|s| support::s(s, "observation_point") == op)
            .collect()
    };
    let (network, client, server) = (at("network"), at("client"), at("server"));
    assert_eq!(network.len(), 5, "{spans:#?}");
    let mut ids = Vec::new();
    for n in &network {
        assert_eq!(support::s(n, "protocol"), "http");
        assert_eq!(support::n(n, "response_code"), 200);
        let seq = (support::n(n, "req_tcp_seq"), support::n(n, "resp_tcp_seq"));
        assert!(seq.0 != 0 && seq.1 != 0, "{n}");
        let same =
            |s: &&&Value| (support::n(s, "req_tcp_seq"), support::n(s, "resp_tcp_seq")) == seq;
        let c = client
            .iter()
            .find(same)
            .unwrap_or_else(|| panic!("no client span for {n}"));
        let s = server
            .iter()
            .find(same)
            .unwrap_or_else(|| panic!("no server span for {n}"));
        assert_eq!(
            support::s(c, "request_resource"),
            support::s(n, "request_resource")
        );
        assert_eq!(
            support::s(s, "request_resource"),
            support::s(n, "request_resource")
        );
        ids.push((
            support::s(n, "id").to_owned(),
            support::s(c, "id").to_owned(),
            support::s(s, "id").to_owned(),
        ));
    }
    let traces = served(
        &dir.join("data"),
        &ids.iter()
            .map(|(n, _, _)| format!("/api/v1/traces/{n}"))
            .collect::<Vec<_>>(),
    );
    for (t, (n, c, s)) in traces.iter().zip(&ids) {
        let got: Vec<&str> = t["spans"]
            .as_array()
            .expect("trace spans")
            .iter()
            .map(|x| support::s(x, "id"))
            .collect();
        for id in [n, c, s] {
            assert!(got.contains(&id.as_str()), "trace of {n} lacks {id}: {t:#}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
