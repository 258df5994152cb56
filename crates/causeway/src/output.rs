//! Printing spans: a table for people, JSON lines for programs; shared by
//! `watch` and `replay`.

use causeway_agent::Stats;
use causeway_model::{L7Protocol, Span};
use clap::ValueEnum;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

pub fn parse_protocol(s: &str) -> Result<L7Protocol, String> {
    L7Protocol::from_name(s).ok_or_else(|| {
        format!(
            "unknown protocol {s:?}; known: {}",
            L7Protocol::ALL.map(|p| p.as_str()).join(", ")
        )
    })
}

/// `PORT=PROTOCOL`, as `--port-protocol 6380=redis` takes it.
pub fn parse_port_protocol(s: &str) -> Result<(u16, L7Protocol), String> {
    let (port, proto) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected PORT=PROTOCOL, e.g. 6380=redis"))?;
    let port = port
        .trim()
        .parse::<u16>()
        .map_err(|e| format!("{port:?} is not a port: {e}"))?;
    Ok((port, parse_protocol(proto.trim())?))
}

/// `PORT` or `PORT=request_id:4,service:1.1,...`, as `--protobuf-rpc` takes it.
pub fn parse_protobuf_rpc(s: &str) -> Result<(u16, causeway_agent::protobuf_rpc::Config), String> {
    let (port, spec) = s.split_once('=').unwrap_or((s, ""));
    let port = port
        .trim()
        .parse::<u16>()
        .map_err(|e| format!("{port:?} is not a port: {e}"))?;
    let config = causeway_agent::protobuf_rpc::Config::parse(spec).map_err(|e| e.to_string())?;
    Ok((port, config))
}

/// What the pipeline is told each port speaks: `--port-protocol` and the
/// ports `--protobuf-rpc` names.
pub fn port_protocols(
    port_protocols: &[(u16, L7Protocol)],
    protobuf_rpc: &[(u16, causeway_agent::protobuf_rpc::Config)],
) -> Vec<(u16, L7Protocol)> {
    port_protocols
        .iter()
        .copied()
        .chain(
            protobuf_rpc
                .iter()
                .map(|(p, _)| (*p, L7Protocol::ProtobufRpc)),
        )
        .collect()
}

/// Set by a signal, the `--duration` timer, or a closed stdout: stop reading.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// The pipeline's own accounting, for the closing line on stderr.
pub fn pipeline_summary(s: &Stats) -> String {
    let by_protocol: Vec<String> = s
        .parse_errors_by_protocol
        .iter()
        .map(|(p, n)| format!("{p} {n}"))
        .collect();
    let by_protocol = if by_protocol.is_empty() {
        String::new()
    } else {
        format!(" ({})", by_protocol.join(", "))
    };
    // HTTP/2 losses to the capture cap, only when there were some.
    let h2 = if s.h2_framing_lost + s.h2_header_blocks_cut > 0 {
        format!(
            ", HTTP/2: {} frame boundaries lost, {} header blocks cut (raise --payload-cap)",
            s.h2_framing_lost, s.h2_header_blocks_cut
        )
    } else {
        String::new()
    };
    format!(
        "{} spans ({} timeouts), {} messages, {} parse errors{by_protocol}, {} unrecognised, \
         {} orphan responses, {} dropped waiting requests{h2}",
        s.spans,
        s.timeouts,
        s.messages,
        s.parse_errors,
        s.unrecognised,
        s.orphan_responses,
        s.pending_dropped
    )
}

pub struct Printer {
    format: Format,
    protocol: Option<L7Protocol>,
    out: std::io::BufWriter<std::io::Stdout>,
    header_done: bool,
}

impl Printer {
    pub fn new(format: Format, protocol: Option<L7Protocol>) -> Printer {
        Printer {
            format,
            protocol,
            out: std::io::BufWriter::with_capacity(1 << 16, std::io::stdout()),
            header_done: false,
        }
    }
}

impl causeway_agent::SpanSink for Printer {
    fn on_span(&mut self, span: Span) {
        if self.protocol.is_some_and(|p| p != span.protocol) {
            return;
        }
        let out = &mut self.out;
        let result = match self.format {
            Format::Json => serde_json::to_writer(&mut *out, &span)
                .map_err(std::io::Error::other)
                .and_then(|()| out.write_all(b"\n")),
            Format::Table => {
                let header = if self.header_done {
                    Ok(())
                } else {
                    self.header_done = true;
                    writeln!(
                        out,
                        "{:<6} {:<5} {:>7} {:<15} {:<43} {:<40} {:>4} {:<12} {:>10} {:>8} {:>8}",
                        "PROTO",
                        "SIDE",
                        "PID",
                        "COMM",
                        "CLIENT -> SERVER",
                        "REQUEST",
                        "CODE",
                        "STATUS",
                        "DURATION",
                        "REQ_B",
                        "RESP_B"
                    )
                };
                header.and_then(|()| writeln!(out, "{}", table_row(&span)))
            }
        };
        if result.is_err() {
            // stdout is gone (a closed pipe): nobody reads on, so stop.
            STOP.store(true, Ordering::Relaxed);
        }
    }

    fn flush(&mut self) {
        if self.out.flush().is_err() {
            STOP.store(true, Ordering::Relaxed);
        }
    }
}

fn table_row(s: &Span) -> String {
    let peers = format!("{}:{} -> {}:{}", s.src_ip, s.src_port, s.dst_ip, s.dst_port);
    let mut request = format!(
        "{} {}{}",
        s.request_type, s.request_domain, s.request_resource
    );
    if request.len() > 40 {
        let mut cut = 39;
        while !request.is_char_boundary(cut) {
            cut -= 1;
        }
        request.truncate(cut);
        request.push('…');
    }
    let code = s
        .response_code
        .map(|c| c.to_string())
        .unwrap_or_else(|| "-".into());
    format!(
        "{:<6} {:<5} {:>7} {:<15} {:<43} {:<40} {:>4} {:<12} {:>8}us {:>8} {:>8}",
        s.protocol.as_str(),
        s.observation_point.as_str(),
        s.pid,
        s.comm,
        peers,
        request,
        code,
        s.response_status.as_str(),
        s.duration_us,
        s.request_length,
        s.response_length
    )
}
