//! `causeway trace SPAN_ID`: the distributed trace a span belongs to, as
//! the server assembles it (`/api/v1/traces/{id}`): an indented waterfall
//! for people, the same tree as JSON, or OpenTelemetry spans (OTLP/HTTP
//! JSON) to print or to post to a collector.

use crate::query::{cut, get, s};
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use serde_json::Value;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum TraceFormat {
    /// An indented waterfall with durations.
    Table,
    /// The tree as the API gives it.
    Json,
    /// OpenTelemetry spans: an OTLP/HTTP JSON ExportTraceServiceRequest.
    OtlpJson,
}

#[derive(Args, Debug)]
pub struct TraceArgs {
    /// A span's id (from `causeway query spans`).
    span_id: String,
    /// The server's API.
    #[arg(long, default_value = "http://127.0.0.1:8417")]
    server: String,
    #[arg(long, value_enum, default_value_t = TraceFormat::Table)]
    format: TraceFormat,
    /// How far before and after the span to look for the rest of its trace.
    #[arg(long, default_value = "60s")]
    window: String,
    /// Also post the trace as OTLP/HTTP JSON to this collector (Jaeger,
    /// Tempo, an OpenTelemetry collector): `http://HOST:4318` (then
    /// `/v1/traces` is added) or the full URL.
    #[arg(long)]
    otlp_endpoint: Option<String>,
}

/// Microseconds as milliseconds, e.g. `12.345ms`.
fn ms(us: u64) -> String {
    format!("{}.{:03}ms", us / 1000, us % 1000)
}

const BAR: usize = 30;

/// The waterfall: one line per span, indented by depth, with its offset
/// from the trace's start, duration, self time and a bar.
pub fn waterfall(t: &Value) -> String {
    let spans = t["spans"].as_array().cloned().unwrap_or_default();
    let num = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0);
    let start = spans
        .iter()
        .map(|v| num(v, "start_time_us"))
        .min()
        .unwrap_or(0);
    let end = spans
        .iter()
        .map(|v| num(v, "end_time_us"))
        .max()
        .unwrap_or(start);
    let total = end.saturating_sub(start).max(1);
    let mut out = format!(
        "trace {} from span {}: {} spans, {} rounds{}{}, {} {}\n",
        s(t, "trace_id"),
        s(t, "start_span"),
        spans.len(),
        num(t, "iterations"),
        if t["truncated"] == true {
            " (stopped by a bound)"
        } else {
            ""
        },
        match num(t, "dropped") {
            0 => String::new(),
            n => format!(", {n} unconnected spans left out"),
        },
        t["roots"].as_array().map_or(0, Vec::len),
        if t["roots"].as_array().map_or(0, Vec::len) == 1 {
            "root"
        } else {
            "roots"
        },
    );
    out.push_str(&format!(
        "{:>11} {:>11} {:>11}  {:<w$}  SPAN\n",
        "OFFSET",
        "DURATION",
        "SELF",
        "WATERFALL",
        w = BAR + 2
    ));
    for v in &spans {
        let (a, b) = (
            num(v, "start_time_us"),
            num(v, "end_time_us").max(num(v, "start_time_us")),
        );
        let from = ((a - start) as u128 * BAR as u128 / total as u128) as usize;
        let to = (((b - start) as u128 * BAR as u128).div_ceil(total as u128) as usize)
            .clamp(from + 1, BAR);
        let from = from.min(BAR - 1);
        let bar: String = (0..BAR)
            .map(|i| if i >= from && i < to { '=' } else { ' ' })
            .collect();
        let depth = num(v, "depth") as usize;
        let obs = match v["observation_point"].as_str() {
            Some("client") => "C",
            Some("server") => "S",
            Some("network") => "N",
            _ => "?",
        };
        let who = match v["observation_point"].as_str() {
            Some("client") => format!("{} -> {}", s(v, "service_0"), s(v, "service_1")),
            _ => format!("{} <- {}", s(v, "service_1"), s(v, "service_0")),
        };
        let code = match &v["response_code"] {
            Value::Null => s(v, "response_status"),
            c => format!("{c} {}", s(v, "response_status")),
        };
        let link = match v["link"].as_str() {
            Some(l) => format!(" [{l}]"),
            None => String::new(),
        };
        out.push_str(&format!(
            "{:>11} {:>11} {:>11}  |{bar}|  {}{obs} {} {who} {} {code} #{}{link}\n",
            ms(a - start),
            ms(b - a),
            ms(num(v, "self_time_us")),
            "  ".repeat(depth),
            s(v, "protocol"),
            cut(
                format!(
                    "{} {}{}",
                    s(v, "request_type"),
                    s(v, "request_domain"),
                    s(v, "request_resource")
                ),
                60
            ),
            s(v, "id"),
        ));
    }
    out
}

/// Posts an OTLP/HTTP JSON body to a collector; returns its status.
fn post_otlp(endpoint: &str, body: &Value) -> Result<u16> {
    let url = if endpoint.trim_end_matches('/').ends_with("/v1/traces") {
        endpoint.to_owned()
    } else {
        format!("{}/v1/traces", endpoint.trim_end_matches('/'))
    };
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(30)))
            .build(),
    );
    let mut resp = agent
        .post(&url)
        .header("content-type", "application/json")
        .send(body.to_string())
        .with_context(|| format!("cannot reach the OTLP endpoint {url}"))?;
    let status = resp.status().as_u16();
    if !(200..300).contains(&status) {
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        bail!("{url} answered {status}: {}", text.trim());
    }
    Ok(status)
}

pub fn run(args: TraceArgs) -> Result<()> {
    let id = args.span_id.trim();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        bail!(
            "span id {id:?}: expected a decimal integer (the id column of `causeway query spans`)"
        );
    }
    let path = format!("/api/v1/traces/{id}");
    let window = ("window", args.window.clone());
    let otlp_wanted = args.format == TraceFormat::OtlpJson || args.otlp_endpoint.is_some();
    let otlp = if otlp_wanted {
        Some(get(
            &args.server,
            &path,
            &[window.clone(), ("format", "otlp".to_owned())],
        )?)
    } else {
        None
    };
    match args.format {
        TraceFormat::OtlpJson => println!("{}", otlp.as_ref().unwrap_or(&Value::Null)),
        TraceFormat::Json => println!("{}", get(&args.server, &path, &[window])?),
        TraceFormat::Table => print!("{}", waterfall(&get(&args.server, &path, &[window])?)),
    }
    if let (Some(endpoint), Some(body)) = (&args.otlp_endpoint, &otlp) {
        let n: usize = body["resourceSpans"]
            .as_array()
            .map(|r| {
                r.iter()
                    .flat_map(|r| r["scopeSpans"].as_array().cloned().unwrap_or_default())
                    .map(|s| s["spans"].as_array().map_or(0, Vec::len))
                    .sum()
            })
            .unwrap_or(0);
        let status = post_otlp(endpoint, body)?;
        eprintln!("causeway: {n} spans posted to {endpoint} ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_waterfall_indents_children_and_draws_their_time() {
        let t = json!({
            "trace_id": "0af7651916cd43dd8448eb211c80319c",
            "start_span": "2",
            "iterations": 3,
            "truncated": false,
            "dropped": 0,
            "roots": ["1"],
            "spans": [
                {"id": "1", "depth": 0, "observation_point": "client", "protocol": "http",
                 "service_0": "curl", "service_1": "nginx", "request_type": "GET",
                 "request_domain": "", "request_resource": "/a", "response_code": 200,
                 "response_status": "ok", "start_time_us": 1_000_000, "end_time_us": 1_010_000,
                 "self_time_us": 2000, "link": null},
                {"id": "2", "depth": 1, "observation_point": "server", "protocol": "http",
                 "service_0": "curl", "service_1": "nginx", "request_type": "GET",
                 "request_domain": "", "request_resource": "/a", "response_code": 200,
                 "response_status": "ok", "start_time_us": 1_005_000, "end_time_us": 1_008_000,
                 "self_time_us": 3000, "link": "tcp_seq"}
            ]
        });
        let w = waterfall(&t);
        let lines: Vec<&str> = w.lines().collect();
        assert_eq!(lines.len(), 4, "{w}");
        assert!(lines[0].contains("2 spans, 3 rounds, 1 root"), "{w}");
        assert!(
            lines[2].contains("0.000ms") && lines[2].contains("10.000ms"),
            "{w}"
        );
        assert!(lines[2].contains("|==============================|"), "{w}");
        assert!(
            lines[3].contains("5.000ms") && lines[3].contains("3.000ms"),
            "{w}"
        );
        assert!(
            lines[3].contains("  S http nginx <- curl GET /a 200 ok #2 [tcp_seq]"),
            "{w}"
        );
        // The child's bar covers the middle of the parent's.
        let bar = lines[3].split('|').nth(1).unwrap();
        assert_eq!(bar.find('='), Some(15));
        assert_eq!(bar.rfind('='), Some(23));
    }
}
