//! Test support for the Dubbo and SOFARPC parsers: the recordings of
//! `tests/fixtures/{dubbo,sofarpc}/record.py` (`.rec` chunks and the `.log`
//! lines the real client and server printed about each call), and every
//! other protocol's fixtures, to check that inference keeps to its own.

use std::path::PathBuf;

/// The capture cap the agent uses by default.
pub const CAP: usize = 1024;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A fixture file's bytes.
pub fn read(path: &str) -> Vec<u8> {
    let p = dir().join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// One recorded chunk: what one `recv` of the relay got.
#[derive(Debug, Clone)]
pub struct Rec {
    /// `C` (client to server) or `S`.
    pub dir: u8,
    pub bytes: Vec<u8>,
}

/// The chunks of a `.rec` file: direction, connection, u32 length, bytes.
pub fn records(path: &str) -> Vec<Rec> {
    let all = read(path);
    let mut b = &all[..];
    let mut out = Vec::new();
    while !b.is_empty() {
        let n = u32::from_be_bytes([b[2], b[3], b[4], b[5]]) as usize;
        out.push(Rec {
            dir: b[0],
            bytes: b[6..6 + n].to_vec(),
        });
        b = &b[6 + n..];
    }
    out
}

/// All bytes one side sent, in order.
pub fn stream(recs: &[Rec], dir: u8) -> Vec<u8> {
    recs.iter()
        .filter(|r| r.dir == dir)
        .flat_map(|r| r.bytes.iter().copied())
        .collect()
}

/// Splits a stream into messages by the length each header announces.
pub fn split(mut s: &[u8], len: impl Fn(&[u8]) -> usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !s.is_empty() {
        let n = len(s);
        assert!(n > 0 && n <= s.len(), "message length {n} of {}", s.len());
        out.push(&s[..n]);
        s = &s[n..];
    }
    out
}

/// One line of a `.log` file, as the client or the server printed it.
#[derive(Debug, Clone, Default)]
pub struct Line {
    /// `client` or `server`.
    pub side: String,
    /// `call` or `heartbeat`.
    pub event: String,
    pub request_id: u64,
    /// `interface:version`.
    pub service: String,
    pub method: String,
    /// Client: whether the call returned.
    pub ok: bool,
    /// Client: the error's message.
    pub error: String,
    /// Server: sofa-rpc-node's result code.
    pub result_code: String,
}

/// The value of `"key": ...` in a flat JSON object line (strings without
/// escapes, numbers, booleans: what record.py writes).
fn value<'l>(line: &'l str, key: &str) -> &'l str {
    let Some(at) = line.find(&format!("\"{key}\": ")) else {
        return "";
    };
    let rest = &line[at + key.len() + 4..];
    if let Some(s) = rest.strip_prefix('"') {
        &s[..s.find('"').expect("closing quote")]
    } else {
        rest.split([',', '}']).next().unwrap_or_default().trim()
    }
}

/// The lines of a `.log` file.
pub fn log(path: &str) -> Vec<Line> {
    String::from_utf8(read(path))
        .expect("utf-8 log")
        .lines()
        .map(|l| {
            assert!(!l.contains('\\'), "escapes are not read here: {l}");
            Line {
                side: value(l, "side").to_owned(),
                event: value(l, "event").to_owned(),
                request_id: value(l, "request_id").parse().expect("request id"),
                service: value(l, "service").to_owned(),
                method: value(l, "method").to_owned(),
                ok: value(l, "ok") == "true",
                error: value(l, "error").to_owned(),
                result_code: value(l, "result_code").to_owned(),
            }
        })
        .collect()
}

/// The scenarios every recording has (`client.js`'s).
pub const SCENARIOS: &[&str] = &[
    "echo",
    "add",
    "user",
    "fail",
    "missing_service",
    "missing_method",
    "concurrent",
    "big",
    "traced",
    "sofa_traced",
    "heartbeat",
];

/// Every message of every other protocol's fixtures, as first bytes of a
/// syscall: `.req`/`.resp` files whole, `.rec` files per chunk.
pub fn foreign_payloads(own: &[&str]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for proto in std::fs::read_dir(dir()).expect("fixtures dir") {
        let proto = proto.expect("entry").path();
        let name = proto
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if !proto.is_dir() || own.contains(&name.as_str()) {
            continue;
        }
        for f in std::fs::read_dir(&proto).expect("protocol dir") {
            let f = f.expect("entry").path();
            let rel = format!(
                "{name}/{}",
                f.file_name().unwrap_or_default().to_string_lossy()
            );
            match f.extension().and_then(|e| e.to_str()) {
                Some("req" | "resp") => out.push((rel.clone(), read(&rel))),
                Some("rec") => {
                    for (i, r) in records(&rel).into_iter().enumerate() {
                        out.push((format!("{rel}#{i}"), r.bytes));
                    }
                }
                _ => {}
            }
        }
    }
    assert!(
        out.len() > 100,
        "other protocols' fixtures found: {}",
        out.len()
    );
    out
}

/// Which protocol, inferred before Dubbo and SOFARPC in the agent's order
/// (HTTP/2, HTTP/1, ProtobufRPC), would take these bytes.
pub fn claimed_before(b: &[u8]) -> Option<&'static str> {
    use crate::protobuf_rpc;
    if crate::http2::infer(b).is_some() {
        return Some("http2");
    }
    if crate::infer::infer(b).is_some() {
        return Some("http");
    }
    if protobuf_rpc::infer(b).is_some() || protobuf_rpc::is_header_alone(b) {
        return Some("protobuf_rpc");
    }
    None
}

/// Which protocol inferred after Dubbo and SOFARPC would take these bytes
/// if it were asked first: what keeps Dubbo and SOFARPC ahead of them.
pub fn claimed_after(b: &[u8]) -> Option<&'static str> {
    use crate::{dns, mqtt, mysql, postgresql, redis};
    if postgresql::infer(b).is_some() {
        return Some("postgresql");
    }
    if mysql::infer(b).is_some() {
        return Some("mysql");
    }
    if mqtt::infer(b).is_some() {
        return Some("mqtt");
    }
    if redis::infer(b).is_some() {
        return Some("redis");
    }
    if dns::infer(b, dns::Transport::Tcp).is_some() {
        return Some("dns");
    }
    None
}
