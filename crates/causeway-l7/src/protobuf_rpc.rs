//! ProtobufRPC: RPC frames whose header is a protobuf message, read without
//! generated code.
//!
//! The framing is brpc's `baidu_std`, the common shape of protobuf RPC over
//! TCP: `PRPC`, a 4-byte big-endian body size, a 4-byte big-endian meta
//! size, then the meta (a protobuf message) and the payload. Which fields of
//! the meta hold what differs between RPC stacks, so they are a
//! [`Config`] the user can set per port (`--protobuf-rpc PORT=...`); the
//! default is brpc's `RpcMeta`:
//!
//! | fact | default path | brpc name |
//! |---|---|---|
//! | request id | `4` | `correlation_id` |
//! | service | `1.1` | `request.service_name` |
//! | method | `1.2` | `request.method_name` |
//! | status | `2.1` | `response.error_code` |
//! | error text | `2.2` | `response.error_text` |
//!
//! A request is a frame whose meta has the service's top-level field (1 by
//! default), a response one whose meta has the status's (2). Requests give
//! `request_type` = method, `request_resource` = service, `request_id`.
//! Responses give `response_code` = status and `exception` = error text;
//! status 0 is `Ok`; brpc's "no such service" (1001), "no such method"
//! (1002) and "bad request" (1003) are the caller's errors (`ClientError`);
//! any other non-zero status is a `ServerError`. `message_len` is
//! `12 + body size`, exact, so pipelined frames split. The 12-byte frame
//! header alone (a reader that sizes its next read from it) is
//! `Incomplete`: the agent completes it with the next read.

use std::borrow::Cow;

use causeway_model::ResponseStatus;

use crate::infer::MessageKind;
use crate::protobuf::{self, FieldPath, Value};
use crate::{Head, ParseError};

/// The magic that starts every frame.
pub const MAGIC: &[u8; 4] = b"PRPC";
/// Magic and the two sizes.
pub const HEADER_LEN: usize = 12;
/// Largest body accepted (brpc's default `max_body_size` is 64 MiB).
pub const MAX_BODY: u32 = 64 << 20;

/// Where the facts are in the meta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The id a response repeats (an integer field).
    pub request_id: FieldPath,
    /// The service of a request (a string field).
    pub service: FieldPath,
    /// The method of a request (a string field).
    pub method: FieldPath,
    /// The status of a response (an integer field; absent means 0).
    pub status: FieldPath,
    /// The error text of a response (a string field).
    pub message: FieldPath,
}

/// brpc's `RpcMeta` layout, the default.
pub const BAIDU_STD: Config = Config {
    request_id: FieldPath::new(&[4]),
    service: FieldPath::new(&[1, 1]),
    method: FieldPath::new(&[1, 2]),
    status: FieldPath::new(&[2, 1]),
    message: FieldPath::new(&[2, 2]),
};

impl Default for Config {
    fn default() -> Config {
        BAIDU_STD
    }
}

/// Why a configuration string is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Not `name:path`.
    #[error("{0:?}: expected name:path, e.g. method:1.2")]
    Pair(String),
    /// A name that is none of the facts.
    #[error("unknown fact {0:?} (request_id, service, method, status, message)")]
    Fact(String),
    /// A path that is not one.
    #[error(transparent)]
    Path(#[from] protobuf::BadPath),
}

impl Config {
    /// Parses `request_id:4,service:1.1,method:1.2,status:2.1,message:2.2`;
    /// facts left out keep their default.
    pub fn parse(s: &str) -> Result<Config, ConfigError> {
        let mut c = Config::default();
        for pair in s.split(',').filter(|p| !p.trim().is_empty()) {
            let (name, path) = pair
                .split_once(':')
                .ok_or_else(|| ConfigError::Pair(pair.to_owned()))?;
            let path = FieldPath::parse(path)?;
            match name.trim() {
                "request_id" => c.request_id = path,
                "service" => c.service = path,
                "method" => c.method = path,
                "status" => c.status = path,
                "message" => c.message = path,
                other => return Err(ConfigError::Fact(other.to_owned())),
            }
        }
        Ok(c)
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The body and meta sizes, when the header is there and consistent.
fn sizes(payload: &[u8]) -> Result<(u32, u32), ParseError> {
    if payload.len() < HEADER_LEN {
        return if MAGIC.starts_with(&payload[..payload.len().min(4)]) {
            Err(ParseError::Incomplete)
        } else {
            Err(ParseError::Mismatch)
        };
    }
    if &payload[..4] != MAGIC {
        return Err(ParseError::Mismatch);
    }
    let (body, meta) = (be32(&payload[4..]), be32(&payload[8..]));
    if body > MAX_BODY {
        return Err(ParseError::Invalid("body size"));
    }
    if meta > body {
        return Err(ParseError::Invalid("meta size"));
    }
    Ok((body, meta))
}

/// Whether the bytes start a frame, and which kind (default field layout).
pub fn infer(payload: &[u8]) -> Option<MessageKind> {
    let (_, meta_len) = sizes(payload).ok()?;
    let meta = &payload[HEADER_LEN..];
    let meta = &meta[..meta.len().min(meta_len as usize)];
    let c = Config::default();
    if protobuf::has_field(meta, c.service.first()) {
        Some(MessageKind::Request)
    } else if protobuf::has_field(meta, c.status.first()) {
        Some(MessageKind::Response)
    } else {
        None
    }
}

/// Whether the bytes are exactly a frame header, whose kind the meta after
/// it would tell.
pub fn is_header_alone(payload: &[u8]) -> bool {
    payload.len() == HEADER_LEN && sizes(payload).is_ok_and(|(_, meta)| meta > 0)
}

fn text<'a>(v: Option<Value<'a>>) -> Cow<'a, str> {
    match v {
        Some(Value::Bytes(b)) => String::from_utf8_lossy(b),
        _ => Cow::Borrowed(""),
    }
}

/// The outcome class of a status (brpc's error codes).
pub fn status_class(code: i32) -> ResponseStatus {
    match code {
        0 => ResponseStatus::Ok,
        1001..=1003 => ResponseStatus::ClientError,
        _ => ResponseStatus::ServerError,
    }
}

/// The head of the frame at the start of `payload`, read with `config`.
pub fn parse<'a>(
    payload: &'a [u8],
    kind: MessageKind,
    config: &Config,
) -> Result<Head<'a>, ParseError> {
    let (body, meta_len) = sizes(payload)?;
    if payload.len() == HEADER_LEN && meta_len > 0 {
        // The frame header read alone (as readers that size their next
        // read from it do): the facts are in the next read.
        return Err(ParseError::Incomplete);
    }
    let meta = &payload[HEADER_LEN..];
    let meta = &meta[..meta.len().min(meta_len as usize)];
    let mut head = Head {
        message_len: Some(HEADER_LEN as u64 + u64::from(body)),
        request_id: protobuf::find(meta, &config.request_id).and_then(|v| v.as_u64()),
        ..Head::default()
    };
    match kind {
        MessageKind::Request => {
            head.request_resource = text(protobuf::find(meta, &config.service));
            head.request_type = text(protobuf::find(meta, &config.method));
        }
        MessageKind::Response => {
            // int32 on the wire: a negative status is a 10-byte varint.
            let code = protobuf::find(meta, &config.status)
                .and_then(|v| v.as_u64())
                .map(|v| v as i64 as i32);
            if let Some(code) = code {
                head.response_code = Some(code);
                head.response_status = Some(status_class(code));
            } else if meta.len() == meta_len as usize {
                // The whole meta and no status: brpc leaves 0 out.
                head.response_code = Some(0);
                head.response_status = Some(ResponseStatus::Ok);
            }
            head.exception = text(protobuf::find(meta, &config.message));
        }
    }
    Ok(head)
}

/// Frames always say their length: a message never ends otherwise.
pub fn ends_message(_payload: &[u8], _kind: MessageKind) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use MessageKind::{Request, Response};

    fn fx(name: &str) -> Vec<u8> {
        let p = format!(
            "{}/tests/fixtures/protobuf_rpc/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    fn req(name: &str) -> Vec<u8> {
        fx(&format!("{name}.req"))
    }

    fn resp(name: &str) -> Vec<u8> {
        fx(&format!("{name}.resp"))
    }

    const C: Config = BAIDU_STD;

    #[test]
    fn recorded_requests() {
        for (name, id, service, method) in [
            ("echo", 1, "example.EchoService", "Echo"),
            ("fail", 2, "example.EchoService", "Fail"),
            ("no_service", 3, "example.Missing", "Echo"),
            ("no_method", 4, "example.EchoService", "Nope"),
            ("large", 5, "example.EchoService", "Echo"),
            ("big_id", (1u64 << 40) + 9, "example.EchoService", "Echo"),
        ] {
            let b = req(name);
            assert_eq!(infer(&b), Some(Request), "{name}");
            let h = parse(&b, Request, &C).unwrap();
            assert_eq!(h.request_id, Some(id), "{name}");
            assert_eq!(h.request_resource, service, "{name}");
            assert_eq!(h.request_type, method, "{name}");
            assert_eq!(h.message_len, Some(b.len() as u64), "{name}");
        }
    }

    #[test]
    fn recorded_responses() {
        for (name, id, code, status, text) in [
            ("echo", 1, 0, ResponseStatus::Ok, ""),
            (
                "fail",
                2,
                2001,
                ResponseStatus::ServerError,
                "[E2001]echo refused: please fail",
            ),
            (
                "no_service",
                3,
                1001,
                ResponseStatus::ClientError,
                "Fail to find service=example.Missing",
            ),
            (
                "no_method",
                4,
                1002,
                ResponseStatus::ClientError,
                "Fail to find method=Nope",
            ),
            ("large", 5, 0, ResponseStatus::Ok, ""),
        ] {
            let b = resp(name);
            assert_eq!(infer(&b), Some(Response), "{name}");
            let h = parse(&b, Response, &C).unwrap();
            assert_eq!(h.request_id, Some(id), "{name}");
            assert_eq!(h.response_code, Some(code), "{name}");
            assert_eq!(h.response_status, Some(status), "{name}");
            assert_eq!(h.exception, text, "{name}");
            assert_eq!(h.message_len, Some(b.len() as u64), "{name}");
        }
    }

    #[test]
    fn pipelined_frames_split_at_message_len() {
        let b = req("pipelined");
        let first = parse(&b, Request, &C).unwrap();
        let n = first.message_len.unwrap() as usize;
        let second = parse(&b[n..], Request, &C).unwrap();
        assert_eq!((first.request_id, second.request_id), (Some(6), Some(7)));
        assert_eq!(n + second.message_len.unwrap() as usize, b.len());
        let r = resp("pipelined");
        let n = parse(&r, Response, &C).unwrap().message_len.unwrap() as usize;
        assert_eq!(
            parse(&r[n..], Response, &C).unwrap().response_code,
            Some(2001)
        );
    }

    #[test]
    fn other_field_layouts() {
        // The same bytes read with the service and method swapped.
        let c = Config::parse("service:1.2, method:1.1").unwrap();
        let b = req("echo");
        let h = parse(&b, Request, &c).unwrap();
        assert_eq!(
            (&*h.request_type, &*h.request_resource),
            ("example.EchoService", "Echo")
        );
        assert!(Config::parse("method").is_err());
        assert!(Config::parse("verb:1").is_err());
        assert!(Config::parse("method:0").is_err());
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn cut_and_foreign_input() {
        for name in ["echo", "fail", "large", "pipelined"] {
            for b in [req(name), resp(name)] {
                for cut in 0..b.len().min(200) {
                    let _ = infer(&b[..cut]);
                    for kind in [Request, Response] {
                        match parse(&b[..cut], kind, &C) {
                            Ok(h) => assert!(cut > HEADER_LEN && h.message_len.is_some()),
                            Err(e) => assert!(cut <= HEADER_LEN, "{name} at {cut}: {e}"),
                        }
                    }
                }
            }
        }
        assert_eq!(parse(b"PRP", Request, &C), Err(ParseError::Incomplete));
        let b = req("echo");
        assert!(is_header_alone(&b[..HEADER_LEN]) && !is_header_alone(&b));
        assert_eq!(
            parse(&b[..HEADER_LEN], Request, &C),
            Err(ParseError::Incomplete)
        );
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\n", Request, &C),
            Err(ParseError::Mismatch)
        );
        assert_eq!(
            parse(b"PRPC\xff\xff\xff\xff\0\0\0\0", Request, &C),
            Err(ParseError::Invalid("body size"))
        );
        assert_eq!(
            parse(b"PRPC\0\0\0\x01\0\0\0\x02", Request, &C),
            Err(ParseError::Invalid("meta size"))
        );
        for p in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"*1\r\n$4\r\nPING\r\n",
            b"PRPC\0\0\0\0\0\0\0\0",
        ] {
            assert_eq!(infer(p), None);
        }
    }
}
