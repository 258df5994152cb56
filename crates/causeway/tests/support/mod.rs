//! Real servers, real clients and a real `causeway watch` for end-to-end
//! tests. Everything listens on 127.0.0.1 ports picked at random and is
//! stopped when its guard drops.

#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// End-to-end tests load system-wide probes and measure counts: one at a time.
pub static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind an ephemeral port")
        .local_addr()
        .expect("local addr")
        .port()
}

pub fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("causeway-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}

/// Whether eBPF tests must run (CI) rather than skip.
pub fn ebpf_required() -> bool {
    std::env::var("CAUSEWAY_REQUIRE_EBPF").as_deref() == Ok("1")
}

pub fn tool_present(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A running `causeway watch --format json`.
pub struct Watch {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

/// What a stopped watch printed.
pub struct Watched {
    pub spans: Vec<Value>,
    pub stats_line: String,
    pub lost: u64,
}

pub fn lines_of<R: std::io::Read + Send + 'static>(r: R) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Watch {
    /// Starts the watch and waits until its probes are attached. Returns
    /// None (test skipped) when eBPF is unavailable and not required.
    pub fn start(args: &[&str]) -> Option<Watch> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_causeway"))
            .arg("watch")
            .args(["--format", "json"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn causeway watch");
        let stdout = lines_of(child.stdout.take().expect("stdout"));
        let stderr = lines_of(child.stderr.take().expect("stderr"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match stderr.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.contains("watching") => break,
                Ok(line) => eprintln!("watch: {line}"),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().expect("wait");
                    if ebpf_required() {
                        panic!("causeway watch exited ({status}) before attaching; eBPF required");
                    }
                    eprintln!("skipping: causeway watch could not attach ({status})");
                    return None;
                }
            }
            assert!(
                Instant::now() < deadline,
                "causeway watch did not attach in 30 s"
            );
        }
        Some(Watch {
            child,
            stdout,
            stderr,
        })
    }

    /// Lets in-flight events drain, stops with SIGINT, and collects the output.
    pub fn stop(mut self) -> Watched {
        std::thread::sleep(Duration::from_millis(700));
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait().expect("wait for causeway watch");
        assert!(status.success(), "causeway watch failed: {status}");
        let spans = self
            .stdout
            .iter()
            .map(|l| serde_json::from_str(&l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
            .collect();
        let stats_line = self
            .stderr
            .iter()
            .find(|l| l.contains("events captured"))
            .expect("exit statistics on stderr");
        let lost = number_before(&stats_line, " lost");
        Watched {
            spans,
            stats_line,
            lost,
        }
    }
}

/// The integer right before `marker` in `line` ("..., 3 lost ..." -> 3).
pub fn number_before(line: &str, marker: &str) -> u64 {
    let at = line
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} in {line:?}"));
    line[..at]
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("number before {marker:?} in {line:?}"))
}

/// A process killed on drop.
pub struct Server {
    pub child: Child,
    pub port: u16,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM first, so a server with workers (nginx) takes them along;
        // SIGKILL of a master would leave its workers running.
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// nginx in the foreground (`daemon off`, one worker), serving `files`.
pub fn nginx(files: &[(&str, usize)]) -> Server {
    let port = free_port();
    let dir = temp_dir(&format!("nginx-{port}"));
    let www = dir.join("www");
    std::fs::create_dir_all(&www).expect("www dir");
    for (name, size) in files {
        std::fs::write(www.join(name), vec![b'n'; *size]).expect("write file");
    }
    let conf = format!(
        "daemon off;\nworker_processes 1;\nerror_log {d}/error.log;\npid {d}/nginx.pid;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n  access_log off;\n  sendfile on;\n  client_body_temp_path {d}/body;\n\
           proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n\
           scgi_temp_path {d}/scgi;\n\
           server {{\n    listen 127.0.0.1:{port};\n    root {www};\n\
             location /post {{ return 200 \"posted\\n\"; }}\n  }}\n}}\n",
        d = dir.display(),
        www = www.display(),
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).expect("write nginx.conf");
    let child = Command::new("nginx")
        .arg("-c")
        .arg(&conf_path)
        .args(["-g", "user root;"])
        .stdout(Stdio::null())
        .spawn()
        .expect("start nginx (scripts/setup installs it)");
    wait_for_port(port);
    Server { child, port }
}

/// `tests/fixtures/http_server.py MODE PORT [ARGS]`.
pub fn python_server(mode: &str, extra: &[String]) -> Server {
    let port = free_port();
    let child = Command::new("python3")
        .arg(fixtures().join("http_server.py"))
        .arg(mode)
        .arg(port.to_string())
        .args(extra)
        .stdout(Stdio::null())
        .spawn()
        .expect("start python3");
    wait_for_port(port);
    Server { child, port }
}

/// One transfer as curl reports it with `-w`.
#[derive(Debug, Clone)]
pub struct Transfer {
    pub method: String,
    pub path: String,
    pub code: i64,
    /// Bytes curl sent: `size_request` already counts the body (curl 7.88).
    pub request_bytes: u64,
    /// Header bytes plus body bytes curl received (all responses, 100 included).
    pub response_bytes: u64,
    /// Body bytes curl sent.
    pub upload_bytes: u64,
    pub local_port: u16,
}

pub const CURL_FORMAT: &str =
    "%{method} %{url_effective} %{http_code} %{size_request} %{size_upload} %{size_header} %{size_download} %{local_port}\\n";

pub fn parse_curl(out: &str) -> Vec<Transfer> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 8, "curl -w line {l:?}");
            let n = |i: usize| f[i].parse::<u64>().expect("curl number");
            let path = f[1]
                .splitn(4, '/')
                .nth(3)
                .map(|p| format!("/{p}"))
                .unwrap_or_else(|| "/".into());
            Transfer {
                method: f[0].to_string(),
                path,
                code: n(2) as i64,
                request_bytes: n(3),
                upload_bytes: n(4),
                response_bytes: n(5) + n(6),
                local_port: n(7) as u16,
            }
        })
        .collect()
}

/// Runs curl with `args` and returns its transfers.
pub fn curl(args: &[String]) -> Vec<Transfer> {
    let out = Command::new("curl")
        .args(["-s", "-S"])
        .args(args)
        .output()
        .expect("run curl");
    assert!(out.status.success(), "curl failed: {out:?}");
    parse_curl(&String::from_utf8_lossy(&out.stdout))
}

pub fn field<'a>(span: &'a Value, name: &str) -> &'a Value {
    span.get(name)
        .unwrap_or_else(|| panic!("span has no field {name:?}: {span}"))
}

pub fn s<'a>(span: &'a Value, name: &str) -> &'a str {
    field(span, name).as_str().unwrap_or_default()
}

pub fn n(span: &Value, name: &str) -> u64 {
    field(span, name)
        .as_u64()
        .unwrap_or_else(|| panic!("{name} not a number in {span}"))
}

/// Starts `cmd` (in the foreground, killed on drop) and waits for `port`.
pub fn spawn_server(cmd: &mut Command, port: u16) -> Server {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {cmd:?} (scripts/setup installs it): {e}"));
    wait_for_port(port);
    Server { child, port }
}

/// redis-server on a fresh port, no persistence.
pub fn redis() -> Server {
    let port = free_port();
    spawn_server(
        Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"]),
        port,
    )
}

/// Runs a command to completion, panicking with its output if it fails.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// PostgreSQL 15 in a fresh cluster (trust auth) on a fresh port, run as
/// the `postgres` user; stopped on drop.
pub struct Postgres {
    pub port: u16,
    dir: PathBuf,
}

pub fn postgres() -> Postgres {
    let port = free_port();
    let dir = temp_dir(&format!("pg-{port}"));
    let bin = Path::new("/usr/lib/postgresql/15/bin");
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
        "{} -D {} -w -l {}/log -o '-p {port} -k {} -c listen_addresses=127.0.0.1' start >/dev/null",
        bin.join("pg_ctl").display(),
        data.display(),
        dir.display(),
        dir.display()
    )));
    wait_for_port(port);
    Postgres { port, dir }
}

impl Drop for Postgres {
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

/// dnsmasq answering from local records only, on UDP and TCP: A and AAAA
/// for www.example.test, MX and TXT for example.test; other names under
/// example.test are NXDOMAIN; names elsewhere are REFUSED (no upstream).
pub fn dnsmasq() -> Server {
    let port = free_port();
    let dir = temp_dir(&format!("dnsmasq-{port}"));
    let hosts = dir.join("hosts");
    std::fs::write(
        &hosts,
        "10.1.2.3 www.example.test
fd00::5 www.example.test
",
    )
    .expect("hosts");
    spawn_server(
        Command::new("dnsmasq")
            .args([
                "--no-daemon",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
            ])
            .arg(format!("--port={port}"))
            .args([
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--user=root",
            ])
            .arg(format!("--addn-hosts={}", hosts.display()))
            .arg(format!("--pid-file={}/pid", dir.display()))
            .args(["--mx-host=example.test,mail.example.test,10"])
            .args(["--txt-record=example.test,hello from dnsmasq"])
            .args(["--local=/example.test/"]),
        port,
    )
}

/// mosquitto 2 on a fresh port: anonymous clients allowed, nothing kept.
pub fn mosquitto() -> Server {
    let port = free_port();
    let dir = temp_dir(&format!("mosquitto-{port}"));
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("persistence false\nuser root\nlistener {port} 127.0.0.1\nallow_anonymous true\n"),
    )
    .expect("mosquitto.conf");
    spawn_server(Command::new("mosquitto").arg("-c").arg(&conf), port)
}

/// MariaDB in a fresh data dir on a fresh port, any login accepted.
pub fn mariadb() -> Server {
    let port = free_port();
    let dir = temp_dir(&format!("mariadb-{port}"));
    run_ok(
        Command::new("mariadb-install-db")
            .args([
                "--no-defaults",
                "--user=root",
                "--auth-root-authentication-method=normal",
            ])
            .arg(format!("--datadir={}/data", dir.display())),
    );
    spawn_server(
        Command::new("mariadbd")
            .args(["--no-defaults", "--user=root", "--skip-grant-tables"])
            .arg(format!("--datadir={}/data", dir.display()))
            .arg(format!("--socket={}/sock", dir.display()))
            .arg(format!("--port={port}"))
            .args(["--bind-address=127.0.0.1", "--skip-log-bin"]),
        port,
    )
}

/// Spans of one protocol seen at `op` in `comm` towards `port`, oldest first.
pub fn spans_of<'a>(
    spans: &'a [Value],
    protocol: &str,
    op: &str,
    comm: &str,
    port: u16,
) -> Vec<&'a Value> {
    let mut v: Vec<&Value> = spans
        .iter()
        .filter(|sp| s(sp, "protocol") == protocol && s(sp, "observation_point") == op)
        .filter(|sp| s(sp, "comm") == comm && n(sp, "dst_port") == port as u64)
        .collect();
    v.sort_by_key(|sp| n(sp, "start_time_us"));
    v
}

/// Every client span has exactly one server span with its request TCP
/// sequence, agreeing on what was asked and answered.
pub fn check_twins(client: &[&Value], server: &[&Value]) {
    for c in client {
        let twins: Vec<&&Value> = server
            .iter()
            .filter(|sv| n(sv, "req_tcp_seq") == n(c, "req_tcp_seq"))
            .collect();
        assert_eq!(twins.len(), 1, "one server span for {c}");
        for f in [
            "request_type",
            "request_resource",
            "response_status",
            "request_length",
            "response_length",
            "resp_tcp_seq",
            "src_port",
        ] {
            assert_eq!(field(twins[0], f), field(c, f), "{f}: {c} vs {}", twins[0]);
        }
    }
}

/// A running `tshark` capture on the loopback interface.
pub struct Tshark {
    child: Child,
    pub file: PathBuf,
}

impl Tshark {
    /// Starts capturing `tcp or udp port P` on `lo` into a pcapng file and
    /// waits until packets are being captured.
    pub fn start(port: u16) -> Tshark {
        let file = temp_dir(&format!("tshark-{port}")).join("capture.pcapng");
        let mut child = Command::new("tshark")
            .args(["-i", "lo", "-q", "-f"])
            .arg(format!("port {port}"))
            .arg("-w")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tshark (scripts/setup installs it)");
        let stderr = lines_of(child.stderr.take().expect("stderr"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match stderr.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.contains("Capturing on") => break,
                Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("tshark exited before capturing: {:?}", child.wait())
                }
            }
            assert!(Instant::now() < deadline, "tshark did not start in 30 s");
        }
        // dumpcap says so just before its first read; give it a moment.
        std::thread::sleep(Duration::from_millis(300));
        Tshark { child, file }
    }

    /// Stops the capture (SIGINT, so the file is complete) and returns its path.
    pub fn stop(mut self) -> PathBuf {
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
        self.file.clone()
    }
}

impl Drop for Tshark {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Separates the occurrences of one field in a frame in [`tshark_fields`].
pub const OCCURRENCES: char = '\u{1f}';

/// `tshark -r FILE -Y FILTER -T fields -e F...`: one row per frame, one
/// column per field; a field that occurs several times in a frame (several
/// messages in one segment) has its values joined by [`OCCURRENCES`].
pub fn tshark_fields(
    file: &Path,
    decode_as: Option<(u16, &str)>,
    filter: &str,
    fields: &[&str],
) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(file).args(["-Y", filter, "-T", "fields"]);
    if let Some((port, proto)) = decode_as {
        cmd.args(["-d", &format!("tcp.port=={port},{proto}")]);
        if proto == "dns" {
            cmd.args(["-d", &format!("udp.port=={port},{proto}")]);
        }
    }
    cmd.args(["-E", "occurrence=a", "-E", "separator=\t"])
        .arg("-E")
        .arg(format!("aggregator={OCCURRENCES}"));
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = run_ok(&mut cmd);
    out.lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

/// The occurrences of one column of a [`tshark_fields`] row.
pub fn occurrences(cell: &str) -> Vec<&str> {
    if cell.is_empty() {
        Vec::new()
    } else {
        cell.split(OCCURRENCES).collect()
    }
}

/// `causeway replay --format json FILE --port P`: its spans and the
/// statistics line it printed on stderr.
pub fn replay(file: &Path, port: u16) -> (Vec<Value>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_causeway"))
        .arg("replay")
        .arg(file)
        .args(["--format", "json", "--port", &port.to_string()])
        .output()
        .expect("run causeway replay");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "causeway replay failed: {stderr}");
    let spans = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
        .collect();
    (spans, stderr)
}

/// The spans a capture gives and the spans the processes at either end
/// gave live are the same requests: one replayed span per client span, by
/// request TCP sequence, with the same facts.
pub fn check_replay_matches_live(replayed: &[Value], live_client: &[&Value]) {
    assert_eq!(
        replayed.len(),
        live_client.len(),
        "as many spans from the capture as the clients saw live"
    );
    for c in live_client {
        let twins: Vec<&Value> = replayed
            .iter()
            .filter(|r| n(r, "req_tcp_seq") == n(c, "req_tcp_seq"))
            .filter(|r| n(r, "src_port") == n(c, "src_port"))
            .collect();
        assert_eq!(twins.len(), 1, "one replayed span for {c}");
        let r = twins[0];
        assert_eq!(s(r, "observation_point"), "network");
        for f in [
            "protocol",
            "request_type",
            "request_domain",
            "request_resource",
            "response_code",
            "response_status",
            "exception",
            "request_length",
            "response_length",
            "resp_tcp_seq",
            "dst_port",
            "x_request_id",
            "trace_id",
        ] {
            assert_eq!(field(r, f), field(c, f), "{f}: replayed {r} vs live {c}");
        }
    }
}

/// The HTTP/2 fixture scripts (grpcio server and client) of causeway-l7.
pub fn h2_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../causeway-l7/tests/fixtures/http2")
}

/// nginx serving the same files over h2c with prior knowledge (`listen P
/// http2`) and over HTTPS with ALPN h2 (self-signed cert): (server, h2c
/// port, TLS port). Files: `index.html` (small), `a.txt` (3000 bytes);
/// a PUT under `/upload/` stores its body (201), so nginx reads it whole.
pub fn nginx_h2() -> (Server, u16, u16) {
    let plain = free_port();
    let tls = free_port();
    let dir = temp_dir(&format!("nginx-h2-{plain}"));
    let www = dir.join("www");
    std::fs::create_dir_all(&www).expect("www");
    std::fs::write(www.join("index.html"), "<html><body>h2</body></html>\n").expect("file");
    std::fs::write(www.join("a.txt"), vec![b'a'; 3000]).expect("file");
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
         events {{ worker_connections 256; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
           server {{\n    listen 127.0.0.1:{plain} http2;\n    listen 127.0.0.1:{tls} ssl http2;\n\
             ssl_certificate {d}/cert.pem;\n    ssl_certificate_key {d}/key.pem;\n\
             root {d}/www;\n    location /upload/ {{ dav_methods PUT; create_full_put_path on; }}\n  }}\n}}\n",
        d = dir.display(),
    );
    std::fs::write(dir.join("nginx.conf"), conf).expect("conf");
    let child = Command::new("nginx")
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .args(["-g", "user root;"])
        .stdout(Stdio::null())
        .spawn()
        .expect("nginx (scripts/setup installs it)");
    wait_for_port(plain);
    wait_for_port(tls);
    (Server { child, port: plain }, plain, tls)
}

/// The grpcio server of the HTTP/2 fixtures (service `demo.Echo`, h2c).
pub fn grpc_server() -> Server {
    let port = free_port();
    let child = Command::new("python3")
        .arg(h2_fixtures().join("grpc_server.py"))
        .arg(port.to_string())
        .stdout(Stdio::null())
        .spawn()
        .expect("python3 with grpcio (scripts/setup installs it)");
    wait_for_port(port);
    Server { child, port }
}

/// What tshark's HTTP/2 dissector says of one stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct H2Stream {
    pub method: String,
    pub path: String,
    pub authority: String,
    /// `:status` of the first response header block.
    pub status: Option<i64>,
    /// `grpc-status` of the response's last header block (trailers).
    pub grpc_status: Option<i64>,
    /// `grpc-message`, as sent (percent-encoded).
    pub grpc_message: String,
}

fn collect_h2_frames<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            if m.contains_key("http2.type") && m.contains_key("http2.streamid") {
                out.push(v);
            }
            for c in m.values() {
                collect_h2_frames(c, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|c| collect_h2_frames(c, out)),
        _ => {}
    }
}

fn collect_h2_headers(v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            if let (Some(Value::String(n)), Some(Value::String(val))) =
                (m.get("http2.header.name"), m.get("http2.header.value"))
            {
                out.push((n.clone(), val.clone()));
            }
            for c in m.values() {
                collect_h2_headers(c, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|c| collect_h2_headers(c, out)),
        _ => {}
    }
}

/// tshark's HTTP/2 streams in a capture of server `port`, by (client
/// port, stream id), from its JSON dissection of HEADERS frames.
pub fn tshark_h2_streams(
    file: &Path,
    port: u16,
) -> std::collections::BTreeMap<(u64, u64), H2Stream> {
    tshark_h2_streams_with(
        file,
        port,
        &["-d".into(), format!("tcp.port=={port},http2")],
    )
}

/// [`tshark_h2_streams`] with the given dissection options (for TLS: decode
/// the port as `tls` and name the key log file).
pub fn tshark_h2_streams_with(
    file: &Path,
    port: u16,
    options: &[String],
) -> std::collections::BTreeMap<(u64, u64), H2Stream> {
    let out = run_ok(
        Command::new("tshark")
            .arg("-r")
            .arg(file)
            .args(options)
            .args(["-Y", "http2.type == 1", "-T", "json", "--no-duplicate-keys"]),
    );
    let packets: Value = serde_json::from_str(&out).expect("tshark JSON");
    let mut streams: std::collections::BTreeMap<(u64, u64), H2Stream> = Default::default();
    for p in packets.as_array().expect("packets") {
        let layers = &p["_source"]["layers"];
        let num = |v: &Value| -> u64 {
            let v = if let Value::Array(a) = v { &a[0] } else { v };
            v.as_str().and_then(|s| s.parse().ok()).expect("number")
        };
        let (src, dst) = (
            num(&layers["tcp"]["tcp.srcport"]),
            num(&layers["tcp"]["tcp.dstport"]),
        );
        let to_server = dst == port as u64;
        let client_port = if to_server { src } else { dst };
        let mut frames = Vec::new();
        collect_h2_frames(&layers["http2"], &mut frames);
        for f in frames {
            if f["http2.type"].as_str() != Some("1") {
                continue;
            }
            let id = num(&f["http2.streamid"]);
            let mut headers = Vec::new();
            collect_h2_headers(f, &mut headers);
            let st = streams.entry((client_port, id)).or_default();
            let get = |name: &str| {
                headers
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
            };
            if to_server {
                if st.method.is_empty() {
                    st.method = get(":method").unwrap_or_default();
                    st.path = get(":path").unwrap_or_default();
                    st.authority = get(":authority").unwrap_or_default();
                }
            } else {
                if st.status.is_none() {
                    st.status = get(":status").and_then(|s| s.parse().ok());
                }
                if let Some(g) = get("grpc-status") {
                    st.grpc_status = g.parse().ok();
                    st.grpc_message = get("grpc-message").unwrap_or_default();
                }
            }
        }
    }
    streams
}

/// Percent-decoding as gRPC specifies for grpc-message.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Apache 2.4 with mod_http2 answering HTTP/1.1 `Upgrade: h2c` requests
/// with `101` and HTTP/2 (`Protocols h2c http/1.1`), in the foreground,
/// serving `index.html`. Its workers run as www-data, as Debian's apache2
/// requires.
pub fn apache_h2c() -> Server {
    let port = free_port();
    let dir = temp_dir(&format!("apache-{port}"));
    let www = dir.join("www");
    std::fs::create_dir_all(&www).expect("www");
    std::fs::write(www.join("index.html"), "hello from apache over h2c\n").expect("file");
    let conf = format!(
        "ServerRoot /usr/lib/apache2\n\
         LoadModule mpm_event_module modules/mod_mpm_event.so\n\
         LoadModule http2_module modules/mod_http2.so\n\
         LoadModule authz_core_module modules/mod_authz_core.so\n\
         Listen 127.0.0.1:{port}\nServerName localhost\nPidFile {d}/httpd.pid\n\
         ErrorLog {d}/error.log\nDocumentRoot {www}\nUser www-data\nGroup www-data\n\
         Protocols h2c http/1.1\n",
        d = dir.display(),
        www = www.display(),
    );
    std::fs::write(dir.join("httpd.conf"), conf).expect("conf");
    let child = Command::new("apache2")
        .arg("-f")
        .arg(dir.join("httpd.conf"))
        .arg("-DFOREGROUND")
        .stdout(Stdio::null())
        .spawn()
        .expect("apache2 (scripts/setup installs it)");
    wait_for_port(port);
    Server { child, port }
}
/// The tansu binary (a Kafka-protocol broker): `/opt/tansu/bin/tansu` or
/// `tansu` on PATH. It takes half an hour to build (`cargo install tansu
/// --locked --features dynostore`), so CI machines lack it by design.
pub fn tansu_binary() -> Option<PathBuf> {
    let opt = PathBuf::from("/opt/tansu/bin/tansu");
    if opt.exists() {
        return Some(opt);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("tansu"))
            .find(|p| p.exists())
    })
}

/// tansu on a fresh port, in-memory storage, advertising that port.
pub fn tansu(bin: &Path) -> Server {
    let port = free_port();
    let dir = temp_dir(&format!("tansu-{port}"));
    let url = format!("tcp://127.0.0.1:{port}");
    spawn_server(
        Command::new(bin)
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .env_remove("LISTENER_URL")
            .env_remove("ADVERTISED_LISTENER_URL")
            .env_remove("STORAGE_ENGINE")
            .current_dir(&dir),
        port,
    )
}

/// The real SOFARPC Node server of `tests/fixtures/rpc/server.js`
/// (sofa-rpc-node) speaking `protocol` (`bolt` or `dubbo`) on a fresh
/// 127.0.0.1 port; the JSON lines it prints about every call come on the
/// receiver. `scripts/setup` installs its packages (`npm ci`).
pub fn rpc_server(protocol: &str) -> (Server, mpsc::Receiver<String>) {
    let dir = fixtures().join("rpc");
    assert!(
        dir.join("node_modules").is_dir(),
        "no node_modules in {}: scripts/setup runs npm ci there",
        dir.display()
    );
    let port = free_port();
    let mut child = Command::new("node")
        .arg(dir.join("server.js"))
        .args(["--protocol", protocol, "--port", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node (scripts/setup installs it)");
    let lines = lines_of(child.stdout.take().expect("stdout"));
    wait_for_port(port);
    (Server { child, port }, lines)
}

/// A multiset, printed sorted when two differ.
pub fn bag<T: Ord>(items: impl IntoIterator<Item = T>) -> std::collections::BTreeMap<T, usize> {
    let mut m = std::collections::BTreeMap::new();
    for i in items {
        *m.entry(i).or_insert(0) += 1;
    }
    m
}

/// Live spans at `op` towards `port`, whatever the process, oldest first.
pub fn live<'a>(spans: &'a [Value], protocol: &str, op: &str, port: u16) -> Vec<&'a Value> {
    let mut v: Vec<&Value> = spans
        .iter()
        .filter(|sp| s(sp, "protocol") == protocol && s(sp, "observation_point") == op)
        .filter(|sp| n(sp, "dst_port") == port as u64)
        .collect();
    v.sort_by_key(|sp| n(sp, "start_time_us"));
    v
}

/// `causeway watch --port PORT WATCH_ARGS` and tshark around `drive`, then
/// `causeway replay` of the capture: (live spans, replayed spans, capture
/// file). Nothing was lost live, and the capture is whole. None when eBPF
/// is unavailable and not required.
pub fn observe(
    port: u16,
    watch_args: &[&str],
    drive: impl FnOnce(),
) -> Option<(Watched, Vec<Value>, PathBuf)> {
    let p = port.to_string();
    let mut args = vec!["--port", p.as_str()];
    args.extend_from_slice(watch_args);
    let watch = Watch::start(&args)?;
    let tshark = Tshark::start(port);
    drive();
    let file = tshark.stop();
    let w = watch.stop();
    assert_eq!(w.lost, 0, "{}", w.stats_line);
    eprintln!("watch: {}", w.stats_line);
    let (replayed, stats) = replay(&file, port);
    eprintln!("replay: {stats}");
    assert!(
        stats.contains(" 0 bytes missing"),
        "the capture is whole: {stats}"
    );
    Some((w, replayed, file))
}
