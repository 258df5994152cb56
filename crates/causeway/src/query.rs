//! `causeway query ...`: ask a running server from the terminal, over its
//! HTTP API; tables for people, `--format json` for programs.

use crate::output::Format;
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::Value;

#[derive(Args, Debug)]
pub struct QueryArgs {
    /// The server's API.
    #[arg(long, global = true, default_value = "http://127.0.0.1:8417")]
    server: String,
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand, Debug)]
enum What {
    /// Spans, newest first.
    Spans(SpanArgs),
    /// One span by id.
    Span { id: String },
    /// Services: requests served and made, errors, latency.
    Services {
        #[arg(long, default_value = "15m")]
        since: String,
    },
    /// RED metrics (1 s / 1 min rows) per service, endpoint or edge.
    Metrics(crate::query_red::MetricsArgs),
    /// The service map, as a table of edges.
    Map(crate::query_red::MapArgs),
    /// Flow reports from packet capture (l4_flow_log), newest first.
    Flows(crate::flows::QueryFlowsArgs),
}

#[derive(Args, Debug)]
struct SpanArgs {
    /// How far back: 30s, 5m, 2h, 7d.
    #[arg(long, default_value = "15m")]
    since: String,
    #[arg(long)]
    protocol: Option<String>,
    /// ok, client_error, server_error, timeout, unknown.
    #[arg(long)]
    status: Option<String>,
    /// client, server, network.
    #[arg(long)]
    observation_point: Option<String>,
    #[arg(long)]
    service: Option<String>,
    #[arg(long)]
    process: Option<String>,
    /// A substring of the endpoint or the resource.
    #[arg(long)]
    endpoint: Option<String>,
    /// The server's port.
    #[arg(long)]
    port: Option<u16>,
    #[arg(long)]
    trace_id: Option<String>,
    /// e.g. 10ms.
    #[arg(long)]
    min_duration: Option<String>,
    /// Spans to print (pages of up to 1000 are fetched).
    #[arg(long, default_value_t = 50)]
    limit: u32,
}

pub(crate) fn get(server: &str, path: &str, params: &[(&str, String)]) -> Result<Value> {
    let url = format!("{}{path}", server.trim_end_matches('/'));
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(60)))
            .build(),
    );
    let mut req = agent.get(&url);
    for (k, v) in params {
        req = req.query(*k, v);
    }
    let mut resp = req.call().with_context(|| {
        format!("cannot reach the server at {server} (is `causeway up` running?)")
    })?;
    let status = resp.status();
    let body: Value = resp
        .body_mut()
        .with_config()
        .limit(256 << 20)
        .read_json()
        .with_context(|| format!("{url}: not JSON"))?;
    if !status.is_success() {
        bail!(
            "{status}: {}",
            body["error"].as_str().unwrap_or("(no message)")
        );
    }
    Ok(body)
}

pub(crate) fn s(v: &Value, k: &str) -> String {
    match &v[k] {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

pub(crate) fn cut(mut text: String, n: usize) -> String {
    if text.chars().count() > n {
        text = text.chars().take(n - 1).collect::<String>() + "…";
    }
    text
}

fn span_row(v: &Value) -> String {
    let time = v["start_time_us"].as_u64().unwrap_or(0);
    let secs = time / 1_000_000;
    let (h, m, sec) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    format!(
        "{h:02}:{m:02}:{sec:02}.{:06} {:<8} {:<6} {:<16} {:<22} {:<40} {:>5} {:<12} {:>9}us  {}",
        time % 1_000_000,
        s(v, "protocol"),
        s(v, "observation_point"),
        cut(s(v, "service_0"), 16),
        cut(s(v, "service_1"), 22),
        cut(
            format!(
                "{} {}{}",
                s(v, "request_type"),
                s(v, "request_domain"),
                s(v, "request_resource")
            ),
            40
        ),
        s(v, "response_code"),
        s(v, "response_status"),
        s(v, "duration_us"),
        s(v, "id"),
    )
}

const SPAN_HEADER: &str = "TIME (UTC)      PROTOCOL OBS    CLIENT           SERVER                 REQUEST                                   CODE STATUS        DURATION  ID";

pub fn run(args: QueryArgs) -> Result<()> {
    let server = &args.server;
    match args.what {
        What::Metrics(a) => return crate::query_red::metrics(server, args.format, a),
        What::Map(a) => return crate::query_red::map(server, args.format, a),
        What::Flows(a) => return crate::flows::query(server, args.format, a),
        What::Spans(a) => {
            let mut params: Vec<(&str, String)> = vec![("since", a.since.clone())];
            for (k, v) in [
                ("protocol", &a.protocol),
                ("status", &a.status),
                ("observation_point", &a.observation_point),
                ("service", &a.service),
                ("process", &a.process),
                ("endpoint", &a.endpoint),
                ("trace_id", &a.trace_id),
                ("min_duration", &a.min_duration),
            ] {
                if let Some(v) = v {
                    params.push((k, v.clone()));
                }
            }
            if let Some(port) = a.port {
                params.push(("port", port.to_string()));
            }
            let mut spans = Vec::new();
            let mut cursor: Option<String> = None;
            while spans.len() < a.limit as usize {
                let mut p = params.clone();
                p.push((
                    "limit",
                    (a.limit as usize - spans.len()).min(1000).to_string(),
                ));
                if let Some(c) = &cursor {
                    p.push(("cursor", c.clone()));
                }
                let page = get(server, "/api/v1/spans", &p)?;
                let got = page["spans"].as_array().cloned().unwrap_or_default();
                if got.is_empty() {
                    break;
                }
                spans.extend(got);
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_owned()),
                    None => break,
                }
            }
            match args.format {
                Format::Json => {
                    for sp in &spans {
                        println!("{sp}");
                    }
                }
                Format::Table => {
                    println!("{SPAN_HEADER}");
                    for sp in &spans {
                        println!("{}", span_row(sp));
                    }
                    eprintln!("{} spans", spans.len());
                }
            }
        }
        What::Span { id } => {
            let v = get(server, &format!("/api/v1/span/{id}"), &[])?;
            match args.format {
                Format::Json => println!("{v}"),
                Format::Table => {
                    let obj = v.as_object().ok_or_else(|| anyhow!("not a span: {v}"))?;
                    for (k, val) in obj {
                        println!(
                            "{k:<22} {}",
                            match val {
                                Value::String(s) => s.clone(),
                                other => other.to_string(),
                            }
                        );
                    }
                }
            }
        }
        What::Services { since } => {
            let v = get(server, "/api/v1/services", &[("since", since)])?;
            let list = v["services"].as_array().cloned().unwrap_or_default();
            match args.format {
                Format::Json => {
                    for s in &list {
                        println!("{s}");
                    }
                }
                Format::Table => {
                    println!(
                        "{:<28} {:<12} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10} {:>8}",
                        "SERVICE",
                        "PROTOCOL",
                        "SERVED",
                        "4XX",
                        "5XX",
                        "TIMEOUT",
                        "AVG(us)",
                        "MAX(us)",
                        "MADE"
                    );
                    for r in &list {
                        println!(
                            "{:<28} {:<12} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10} {:>8}",
                            cut(s(r, "service"), 28),
                            s(r, "protocol"),
                            s(r, "served"),
                            s(r, "client_errors"),
                            s(r, "server_errors"),
                            s(r, "timeouts"),
                            s(r, "avg_duration_us"),
                            s(r, "max_duration_us"),
                            s(r, "made"),
                        );
                    }
                }
            }
        }
    }
    Ok(())
}
