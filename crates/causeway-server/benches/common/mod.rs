//! What the server benches share: the span generator ([`gen`]), ClickHouse
//! servers started on loopback for the run, knobs from the environment,
//! and the machine's state (the 2 cores are shared: every report says what
//! the load was).

#![allow(dead_code)]

pub mod gen;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether `cargo bench` runs us (it passes `--bench`). Otherwise (a
/// `cargo test --benches`), the bench runs once at a tiny size, to show it
/// still works.
pub fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// A number from the environment (`_` allowed: `10_000_000`), or `default`
/// (`small` when not a full run).
pub fn knob(name: &str, default: u64, small: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?}: expected a number")),
        Err(_) if full_run() => default,
        Err(_) => small,
    }
}

/// A comma-separated list from the environment, or `default`.
pub fn list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// `/proc/loadavg`'s first three fields.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// One line about the machine, for the head of a report.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map_or("?".into(), |k| format!("{:.0} GiB", k as f64 / 1048576.0));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    format!(
        "{cpus} CPUs, {mem} RAM, Linux {kernel}; load average {}",
        loadavg()
    )
}

/// CPU seconds (user + system) a process has used, from `/proc/PID/stat`.
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command (which may hold spaces), from field 3 on.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    ticks as f64 / 100.0
}

/// Bytes of the files under `path` (what `du -sb` counts, apparent size).
pub fn dir_bytes(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|rd| rd.flatten().map(|e| dir_bytes(&e.path())).sum())
        .unwrap_or(0)
}

/// A fresh directory for this run (under /var/tmp: on disk, not tmpfs).
pub fn fresh_dir(tag: &str) -> PathBuf {
    let base = std::env::var("CAUSEWAY_BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into());
    let d = PathBuf::from(base).join(format!("causeway-bench-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create a bench directory");
    d
}

/// Removes a bench directory without waiting for it: on this machine
/// (ext4 mounted with online `discard`) unlinking a few hundred MiB takes
/// minutes, which would only add to the run's wall time. A detached `rm
/// -rf` at idle I/O priority does it in the background.
/// `CAUSEWAY_BENCH_KEEP=1` keeps everything for a look.
pub fn discard(dir: &Path) {
    if std::env::var("CAUSEWAY_BENCH_KEEP").is_ok() {
        return;
    }
    let detached = Command::new("sh")
        .arg("-c")
        .arg("(ionice -c3 rm -rf -- \"$0\" || rm -rf -- \"$0\") >/dev/null 2>&1 &")
        .arg(dir)
        .status();
    if !detached.is_ok_and(|s| s.success()) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("an ephemeral port")
        .port()
}

/// p-th percentile (0..=100) of sorted values, nearest rank.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `1234567` as `1 234 567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1048576.0)
}

/// (used, free) bytes of a DuckDB database's blocks (`pragma_database_size`):
/// the file keeps freed blocks for reuse, so its size can exceed what the
/// data takes.
pub fn duck_blocks(conn: &duckdb::Connection) -> (u64, u64) {
    conn.query_row(
        "SELECT block_size, used_blocks, free_blocks FROM pragma_database_size()",
        [],
        |r| {
            let (size, used, free): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            Ok(((size * used) as u64, (size * free) as u64))
        },
    )
    .expect("pragma_database_size")
}

/// How DuckDB compressed the columns of `table` that `pick` selects, after
/// a checkpoint: each compression method with the share of those columns'
/// values it holds (`Uncompressed 61%, RLE 39%`).
pub fn duck_compression(
    conn: &duckdb::Connection,
    table: &str,
    pick: impl Fn(&str) -> bool,
) -> String {
    let mut st = conn
        .prepare(&format!(
            "SELECT column_name, compression, sum(count) FROM pragma_storage_info('{table}') \
             WHERE column_path NOT LIKE '%,%' GROUP BY ALL"
        ))
        .expect("pragma_storage_info");
    let rows: Vec<(String, String, i64)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("storage info")
        .collect::<Result<_, _>>()
        .expect("storage info rows");
    let mut by: Vec<(String, i64)> = Vec::new();
    for (_, m, n) in rows.into_iter().filter(|r| pick(&r.0)) {
        match by.iter_mut().find(|(x, _)| *x == m) {
            Some(e) => e.1 += n,
            None => by.push((m, n)),
        }
    }
    let total: i64 = by.iter().map(|x| x.1).sum::<i64>().max(1);
    by.sort_by_key(|x| -x.1);
    by.iter()
        .map(|(m, n)| format!("{m} {:.0}%", 100.0 * *n as f64 / total as f64))
        .collect::<Vec<_>>()
        .join(", ")
}

/// ClickHouse servers (Debian's 18.16) on loopback for the run, each
/// knowing all as the shards of cluster `causeway`; stopped on drop.
pub struct ClickHouse {
    nodes: Vec<Child>,
    pub http: Vec<u16>,
    pub dirs: Vec<PathBuf>,
}

/// Whether `clickhouse-server` can be run; None with the reason if not.
pub fn clickhouse_missing() -> Option<String> {
    match Command::new("clickhouse-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => None,
        Err(e) => Some(format!(
            "clickhouse-server cannot be run ({e}); `bash scripts/setup` installs it"
        )),
    }
}

/// Says loudly that a backend is skipped.
pub fn skip_loudly(what: &str, why: &str) {
    let bar = "!".repeat(78);
    eprintln!("\n{bar}\n!! SKIPPED: {what}\n!! {why}\n{bar}\n");
    println!("SKIPPED {what}: {why}");
}

impl ClickHouse {
    pub fn start(n: usize, tag: &str) -> ClickHouse {
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
            let d = fresh_dir(&format!("{tag}-clickhouse-{http}"));
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
            dirs,
        };
        for p in &ch.http {
            let deadline = Instant::now() + Duration::from_secs(60);
            while ch.sql(*p, "SELECT 1").map(|r| r.trim().to_owned()) != Ok("1".into()) {
                assert!(
                    Instant::now() < deadline,
                    "ClickHouse on {p} did not answer"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        ch
    }

    /// Runs `q` on the node with HTTP port `port`.
    pub fn sql(&self, port: u16, q: &str) -> Result<String, String> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(600)))
            .build()
            .into();
        let mut resp = agent
            .post(format!("http://127.0.0.1:{port}/"))
            .send(q)
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let text = resp
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_string()
            .map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(format!("{status}: {}", text.trim()))
        }
    }

    /// The store URL for database `db`: one node, or all as shards.
    pub fn url(&self, db: &str) -> String {
        let hosts: Vec<String> = self.http.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        if hosts.len() == 1 {
            format!("clickhouse://{}/{db}", hosts[0])
        } else {
            format!("clickhouse://{}/{db}?cluster=causeway", hosts.join(","))
        }
    }

    /// The servers' pids (for their CPU time).
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().map(|c| c.id()).collect()
    }

    /// CPU seconds all nodes have used so far.
    pub fn cpu_seconds(&self) -> f64 {
        self.pids().into_iter().map(cpu_seconds).sum()
    }

    /// Merges every part of `db.table` on every node into one per partition
    /// (`OPTIMIZE TABLE ... FINAL`, partition by partition).
    pub fn optimize_final(&self, db: &str, table: &str) {
        for p in &self.http {
            let parts = self
                .sql(
                    *p,
                    &format!(
                        "SELECT DISTINCT partition FROM system.parts WHERE database = '{db}' \
                         AND table = '{table}' AND active FORMAT TabSeparated"
                    ),
                )
                .expect("partitions");
            for part in parts.lines().filter(|l| !l.is_empty()) {
                self.sql(
                    *p,
                    &format!("OPTIMIZE TABLE {db}.{table} PARTITION {part} FINAL"),
                )
                .expect("OPTIMIZE FINAL");
            }
        }
    }

    /// (active parts, rows, bytes on disk, uncompressed bytes) of `db.table`
    /// over all nodes, from `system.parts`.
    pub fn parts(&self, db: &str, table: &str) -> (u64, u64, u64, u64) {
        let mut t = (0, 0, 0, 0);
        for p in &self.http {
            let r = self
                .sql(
                    *p,
                    &format!(
                        "SELECT count(), sum(rows), sum(bytes), sum(data_uncompressed_bytes) \
                         FROM system.parts WHERE database = '{db}' AND table = '{table}' \
                         AND active FORMAT TabSeparated"
                    ),
                )
                .expect("system.parts");
            let v: Vec<u64> = r
                .split_whitespace()
                .map(|x| x.parse().unwrap_or(0))
                .collect();
            if v.len() == 4 {
                t = (t.0 + v[0], t.1 + v[1], t.2 + v[2], t.3 + v[3]);
            }
        }
        t
    }

    /// Compressed bytes per column of `db.table`, summed over nodes.
    pub fn column_bytes(&self, db: &str, table: &str) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = Vec::new();
        for p in &self.http {
            let r = self
                .sql(
                    *p,
                    &format!(
                        "SELECT name, data_compressed_bytes FROM system.columns \
                         WHERE database = '{db}' AND table = '{table}' FORMAT TabSeparated"
                    ),
                )
                .expect("system.columns");
            for l in r.lines() {
                if let Some((n, b)) = l.split_once('\t') {
                    let b: u64 = b.trim().parse().unwrap_or(0);
                    match out.iter_mut().find(|(x, _)| x == n) {
                        Some(e) => e.1 += b,
                        None => out.push((n.to_owned(), b)),
                    }
                }
            }
        }
        out
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        let t = Instant::now();
        for c in &self.nodes {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        }
        for c in &mut self.nodes {
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline && !matches!(c.try_wait(), Ok(Some(_))) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        for d in &self.dirs {
            discard(d);
        }
        eprintln!(
            "ClickHouse ({} nodes) stopped in {:.1} s",
            self.nodes.len(),
            t.elapsed().as_secs_f64()
        );
    }
}
