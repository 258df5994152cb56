//! `causeway query metrics` and `causeway query map`: RED metrics and the
//! service map from a running server (`/api/v1/metrics`,
//! `/api/v1/service-map`); tables for people, `--format json` for programs.

use crate::output::Format;
use crate::query::{cut, get, s};
use anyhow::Result;
use clap::Args;
use serde_json::Value;

#[derive(Args, Debug)]
pub struct MetricsArgs {
    /// Comma-separated: requests, responses, client_errors, server_errors,
    /// errors, timeouts, latency_avg_us (avg), latency_max_us (max),
    /// latency_p50_us (p50), p90, p95, p99, latency_sum_us, latency_count,
    /// request_bytes, response_bytes.
    #[arg(long, default_value = "requests,errors,timeouts,avg,p50,p99,max")]
    metric: String,
    /// Comma-separated: service, process, host, endpoint, protocol (what a
    /// service served, or with `--observation-point client` what it
    /// called); or client_service, server_service, client_process,
    /// server_process, client_host, server_host, observation_point (edges).
    #[arg(long, default_value = "service")]
    group_by: String,
    /// How far back: 30s, 5m, 2h, 7d.
    #[arg(long, default_value = "15m")]
    since: String,
    /// Points this far apart (1s, 10s, 1m, 1h); default: one total.
    #[arg(long)]
    step: Option<String>,
    /// 1s or 1m rows (default: chosen by step and range).
    #[arg(long)]
    granularity: Option<String>,
    /// server (default: what services served), client (what they called),
    /// network; edges default to each edge's own.
    #[arg(long)]
    observation_point: Option<String>,
    #[arg(long)]
    protocol: Option<String>,
    #[arg(long)]
    service: Option<String>,
    #[arg(long)]
    process: Option<String>,
    #[arg(long)]
    host: Option<String>,
    /// An endpoint, exactly (`/users/{id}`, `GET`).
    #[arg(long)]
    endpoint: Option<String>,
    #[arg(long)]
    client_service: Option<String>,
    #[arg(long)]
    server_service: Option<String>,
    #[arg(long)]
    client_process: Option<String>,
    #[arg(long)]
    server_process: Option<String>,
    #[arg(long)]
    client_host: Option<String>,
    #[arg(long)]
    server_host: Option<String>,
    /// Series at most (most requests first).
    #[arg(long, default_value_t = 100)]
    limit: u32,
}

#[derive(Args, Debug)]
pub struct MapArgs {
    /// How far back: 30s, 5m, 2h, 7d.
    #[arg(long, default_value = "15m")]
    since: String,
    /// Only edges of this protocol.
    #[arg(long)]
    protocol: Option<String>,
    /// Only edges to or from this service.
    #[arg(long)]
    service: Option<String>,
    /// 1s or 1m rows (default: 1s for an hour or less).
    #[arg(long)]
    granularity: Option<String>,
}

/// A UTC time of day.
fn clock(us: u64) -> String {
    let secs = us / 1_000_000;
    format!(
        "{:02}:{:02}:{:02}",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60
    )
}

pub fn metrics(server: &str, format: Format, a: MetricsArgs) -> Result<()> {
    let mut params: Vec<(&str, String)> = vec![
        ("metric", a.metric.clone()),
        ("since", a.since.clone()),
        ("limit", a.limit.to_string()),
    ];
    if !a.group_by.trim().is_empty() {
        params.push(("group_by", a.group_by.clone()));
    }
    for (k, v) in [
        ("step", &a.step),
        ("granularity", &a.granularity),
        ("observation_point", &a.observation_point),
        ("protocol", &a.protocol),
        ("service", &a.service),
        ("process", &a.process),
        ("host", &a.host),
        ("endpoint", &a.endpoint),
        ("client_service", &a.client_service),
        ("server_service", &a.server_service),
        ("client_process", &a.client_process),
        ("server_process", &a.server_process),
        ("client_host", &a.client_host),
        ("server_host", &a.server_host),
    ] {
        if let Some(v) = v {
            params.push((k, v.clone()));
        }
    }
    let v = get(server, "/api/v1/metrics", &params)?;
    let series = v["series"].as_array().cloned().unwrap_or_default();
    if format == Format::Json {
        for s in &series {
            println!("{s}");
        }
        return Ok(());
    }
    let metrics: Vec<String> = v["metrics"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let dims: Vec<String> = a
        .group_by
        .split(',')
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty())
        .collect();
    let stepped = v["step_us"].is_u64();
    let mut header = String::new();
    if stepped {
        header.push_str(&format!("{:<9} ", "TIME"));
    }
    for d in &dims {
        header.push_str(&format!("{:<24} ", d.to_uppercase()));
    }
    for m in &metrics {
        header.push_str(&format!("{:>14} ", short(m)));
    }
    println!("{}", header.trim_end());
    let line = |time: Option<u64>, group: &Value, values: &Value| {
        let mut l = String::new();
        if let Some(t) = time {
            l.push_str(&format!("{:<9} ", clock(t)));
        }
        for d in &dims {
            l.push_str(&format!("{:<24} ", cut(s(group, d), 24)));
        }
        for m in &metrics {
            l.push_str(&format!("{:>14} ", s(values, m)));
        }
        println!("{}", l.trim_end());
    };
    for sr in &series {
        if stepped {
            for p in sr["points"].as_array().into_iter().flatten() {
                line(p["time_us"].as_u64(), &sr["group"], p);
            }
        } else {
            line(None, &sr["group"], &sr["values"]);
        }
    }
    eprintln!(
        "{} series from {} rows{}",
        series.len(),
        s(&v, "granularity"),
        if v["truncated"] == true {
            " (more: raise --limit)"
        } else {
            ""
        }
    );
    Ok(())
}

/// A metric's column heading.
fn short(m: &str) -> String {
    match m {
        "latency_avg_us" => "AVG(us)".into(),
        "latency_max_us" => "MAX(us)".into(),
        "latency_p50_us" => "P50(us)".into(),
        "latency_p90_us" => "P90(us)".into(),
        "latency_p95_us" => "P95(us)".into(),
        "latency_p99_us" => "P99(us)".into(),
        "latency_sum_us" => "SUM(us)".into(),
        "client_errors" => "4XX".into(),
        "server_errors" => "5XX".into(),
        other => other.to_uppercase(),
    }
}

pub fn map(server: &str, format: Format, a: MapArgs) -> Result<()> {
    let mut params: Vec<(&str, String)> = vec![("since", a.since)];
    for (k, v) in [
        ("protocol", a.protocol),
        ("service", a.service),
        ("granularity", a.granularity),
    ] {
        if let Some(v) = v {
            params.push((k, v));
        }
    }
    let v = get(server, "/api/v1/service-map", &params)?;
    if format == Format::Json {
        println!("{v}");
        return Ok(());
    }
    let edges = v["edges"].as_array().cloned().unwrap_or_default();
    println!(
        "{:<22} {:<22} {:<9} {:<6} {:>9} {:>7} {:>7} {:>7} {:>9} {:>9} {:>9} {:>9} {:>11} {:>11} {:>7} {:>8} {:>7} {:>5} {:>7} {:>4} {:>4}",
        "CLIENT",
        "SERVER",
        "PROTOCOL",
        "SEEN",
        "REQUESTS",
        "4XX",
        "5XX",
        "TIMEOUT",
        "AVG(us)",
        "P50(us)",
        "P99(us)",
        "MAX(us)",
        "REQ_BYTES",
        "RESP_BYTES",
        "FLOWS",
        "RTT(us)",
        "RETRANS",
        "ZWIN",
        "EST_ERR",
        "RST",
        "SRT"
    );
    for e in &edges {
        println!(
            "{:<22} {:<22} {:<9} {:<6} {:>9} {:>7} {:>7} {:>7} {:>9} {:>9} {:>9} {:>9} {:>11} {:>11} {:>7} {:>8} {:>7} {:>5} {:>7} {:>4} {:>4}",
            cut(s(e, "client"), 22),
            cut(s(e, "server"), 22),
            s(e, "protocol"),
            s(e, "observation_point"),
            s(e, "requests"),
            s(e, "client_errors"),
            s(e, "server_errors"),
            s(e, "timeouts"),
            s(e, "latency_avg_us"),
            s(e, "latency_p50_us"),
            s(e, "latency_p99_us"),
            s(e, "latency_max_us"),
            s(e, "request_bytes"),
            s(e, "response_bytes"),
            s(e, "new_flows"),
            s(e, "rtt_avg_us"),
            s(e, "retransmissions"),
            s(e, "zero_windows"),
            s(e, "establish_failures"),
            s(e, "resets"),
            s(e, "srt_avg_us"),
        );
    }
    eprintln!(
        "{} edges, {} services ({} rows)",
        edges.len(),
        v["nodes"].as_array().map_or(0, |n| n.len()),
        s(&v, "granularity")
    );
    Ok(())
}
