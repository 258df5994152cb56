//! Property tests for the PostgreSQL parser: no input panics it, and what a
//! well-formed generator writes (queries, extended-query batches, responses,
//! errors) comes back out, at every truncation point.

use causeway_l7::infer::MessageKind::{self, Request, Response};
use causeway_l7::postgresql::{command_tag, ends_message, infer, parse, status_of_sqlstate};
use causeway_l7::ParseError;
use causeway_model::ResponseStatus;
use proptest::prelude::*;

fn frame(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![ty];
    v.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

const SYNC: &[u8] = b"S\0\0\0\x04";
const READY: &[u8] = b"Z\0\0\0\x05I";

/// SQL as clients send it: printable, any script, no NUL.
fn sql() -> impl Strategy<Value = String> {
    prop_oneof![
        "(SELECT|INSERT|UPDATE|DELETE|BEGIN|WITH) [a-zA-Z0-9 _*,=()'<>.;$\n\t-]{0,300}",
        "\\PC{1,120}",
    ]
}

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_]{0,20}"
}

/// One statement of an extended-query batch.
#[derive(Debug, Clone)]
struct Statement {
    name: String,
    sql: String,
    params: Vec<Option<Vec<u8>>>,
    describe: bool,
}

fn statement() -> impl Strategy<Value = Statement> {
    (
        name(),
        sql(),
        proptest::collection::vec(
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..12)),
            0..4,
        ),
        any::<bool>(),
    )
        .prop_map(|(name, sql, params, describe)| Statement {
            name,
            sql,
            params,
            describe,
        })
}

impl Statement {
    fn parse_frame(&self) -> Vec<u8> {
        let mut b = cstr(&self.name);
        b.extend(cstr(&self.sql));
        b.extend((self.params.len() as i16).to_be_bytes());
        for _ in &self.params {
            b.extend(0i32.to_be_bytes());
        }
        frame(b'P', &b)
    }

    fn bind_frame(&self, portal: &str) -> Vec<u8> {
        let mut b = cstr(portal);
        b.extend(cstr(&self.name));
        b.extend(1i16.to_be_bytes());
        b.extend(1i16.to_be_bytes());
        b.extend((self.params.len() as i16).to_be_bytes());
        for p in &self.params {
            match p {
                None => b.extend((-1i32).to_be_bytes()),
                Some(v) => {
                    b.extend((v.len() as i32).to_be_bytes());
                    b.extend(v);
                }
            }
        }
        b.extend(0i16.to_be_bytes());
        frame(b'B', &b)
    }

    fn rest_frames(&self, portal: &str) -> Vec<u8> {
        let mut v = Vec::new();
        if self.describe {
            v.extend(frame(b'D', &[b"P".as_slice(), &cstr(portal)].concat()));
        }
        v.extend(frame(
            b'E',
            &[cstr(portal).as_slice(), &0i32.to_be_bytes()].concat(),
        ));
        v
    }
}

/// Checks every prefix of a message: no panic, and whatever the parser
/// claims about where the message ends agrees with the whole message.
fn check_prefixes(
    msg: &[u8],
    kind: MessageKind,
    want_len: Option<u64>,
) -> Result<(), TestCaseError> {
    for k in 0..=msg.len() {
        let p = &msg[..k];
        let _ = infer(p);
        let _ = ends_message(p, Request);
        let _ = ends_message(p, Response);
        let _ = command_tag(p);
        match parse(p, kind) {
            Ok(h) => {
                if let Some(n) = h.message_len.filter(|_| !h.unpaired && k > 1) {
                    prop_assert_eq!(Some(n), want_len, "prefix {}", k);
                }
            }
            Err(ParseError::Incomplete) => prop_assert!(k < 5, "prefix {}", k),
            Err(e) => return Err(TestCaseError::fail(format!("prefix {k}: {e}"))),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..1200)) {
        let _ = infer(&buf);
        for kind in [Request, Response] {
            if let Ok(h) = parse(&buf, kind) {
                // A claimed end is never before the first frame's header.
                prop_assert!(h.message_len.is_none_or(|n| n >= 1));
            }
            let _ = ends_message(&buf, kind);
        }
        let _ = command_tag(&buf);
    }

    #[test]
    fn frame_shaped_bytes_never_panic(
        frames in proptest::collection::vec(
            (
                prop::sample::select(b"QPBDECSHXFpdcfRKZTtInN123sAGWVv\0".to_vec()),
                0u32..80,
                proptest::collection::vec(any::<u8>(), 0..80),
            ),
            1..6,
        )
    ) {
        let mut buf = Vec::new();
        for (ty, len, body) in frames {
            buf.push(ty);
            buf.extend(len.to_be_bytes());
            buf.extend(body);
        }
        let _ = infer(&buf);
        for kind in [Request, Response] {
            let _ = parse(&buf, kind);
            let _ = ends_message(&buf, kind);
        }
        let _ = command_tag(&buf);
    }

    #[test]
    fn queries_round_trip(sql in sql(), junk in proptest::collection::vec(any::<u8>(), 0..16)) {
        let q = frame(b'Q', &cstr(&sql));
        let h = parse(&q, Request).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&*h.request_type, "Query");
        prop_assert_eq!(&*h.request_resource, sql.trim());
        prop_assert_eq!(h.message_len, Some(q.len() as u64));
        prop_assert!(ends_message(&q, Request));
        prop_assert_eq!(infer(&q), Some(Request));
        // Whatever follows in the same syscall is the next message.
        let more = [q.as_slice(), &junk].concat();
        prop_assert_eq!(parse(&more, Request).unwrap().message_len, Some(q.len() as u64));
        for k in 5..=q.len() {
            let h = parse(&q[..k], Request).unwrap();
            prop_assert!(sql.trim().starts_with(&*h.request_resource), "prefix {}", k);
        }
        check_prefixes(&q, Request, Some(q.len() as u64))?;
    }

    #[test]
    fn extended_batches_round_trip(
        statements in proptest::collection::vec(statement(), 1..4),
        prepared in any::<bool>(),
        portal in name(),
    ) {
        // Parse, Bind, [Describe,] Execute per statement, then one Sync; or,
        // for statements prepared earlier, Bind, [Describe,] Execute only.
        let mut batch = Vec::new();
        for s in &statements {
            if !prepared {
                batch.extend(s.parse_frame());
            }
            batch.extend(s.bind_frame(&portal));
            batch.extend(s.rest_frames(&portal));
        }
        batch.extend(SYNC);
        let h = parse(&batch, Request).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let first = &statements[0];
        if prepared {
            prop_assert_eq!(&*h.request_type, "Execute");
            let want = if first.name.is_empty() { &portal } else { &first.name };
            prop_assert_eq!(&*h.request_resource, want.as_str());
        } else {
            prop_assert_eq!(&*h.request_type, "Parse");
            prop_assert_eq!(&*h.request_resource, first.sql.trim());
            prop_assert_eq!(infer(&batch), Some(Request));
        }
        prop_assert_eq!(h.message_len, Some(batch.len() as u64));
        prop_assert!(ends_message(&batch, Request));
        // A second exchange in the same write does not move the first's end.
        let two = [batch.as_slice(), &batch].concat();
        prop_assert_eq!(parse(&two, Request).unwrap().message_len, Some(batch.len() as u64));
        check_prefixes(&batch, Request, Some(batch.len() as u64))?;
    }

    #[test]
    fn responses_round_trip(
        tag in "(SELECT|UPDATE|DELETE|INSERT 0|FETCH|MOVE|COPY) [0-9]{1,9}|CREATE TABLE|BEGIN|COMMIT",
        rows in proptest::collection::vec(
            proptest::collection::vec(proptest::option::of("[ -~]{0,20}"), 1..4),
            0..5,
        ),
        extended in any::<bool>(),
    ) {
        let mut resp = Vec::new();
        if extended {
            resp.extend(b"1\0\0\0\x042\0\0\0\x04");
        }
        for row in &rows {
            let mut b = (row.len() as i16).to_be_bytes().to_vec();
            for v in row {
                match v {
                    None => b.extend((-1i32).to_be_bytes()),
                    Some(s) => {
                        b.extend((s.len() as i32).to_be_bytes());
                        b.extend(s.as_bytes());
                    }
                }
            }
            resp.extend(frame(b'D', &b));
        }
        resp.extend(frame(b'C', &cstr(&tag)));
        resp.extend(READY);
        let h = parse(&resp, Response).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(h.response_status, Some(ResponseStatus::Ok));
        prop_assert_eq!(h.message_len, Some(resp.len() as u64));
        prop_assert_eq!(command_tag(&resp), Some(tag.as_str()));
        prop_assert!(ends_message(&resp, Response));
        if extended || rows.is_empty() {
            prop_assert_eq!(infer(&resp), Some(Response));
        }
        check_prefixes(&resp, Response, Some(resp.len() as u64))?;
    }

    #[test]
    fn errors_round_trip(
        code in "[0-9A-Z]{5}",
        message in "[ -~]{0,200}",
        severity in prop::sample::select(vec!["ERROR", "FATAL", "PANIC"]),
        detail in proptest::option::of("[ -~]{0,60}"),
        after_parse in any::<bool>(),
    ) {
        let mut body = Vec::new();
        for (c, v) in [(b'S', severity), (b'V', severity), (b'C', code.as_str()), (b'M', message.as_str())] {
            body.push(c);
            body.extend(cstr(v));
        }
        if let Some(d) = &detail {
            body.push(b'D');
            body.extend(cstr(d));
        }
        body.push(0);
        let error = frame(b'E', &body);
        let mut resp = Vec::new();
        if after_parse {
            resp.extend(b"1\0\0\0\x04");
        }
        resp.extend(&error);
        let fatal = severity != "ERROR";
        if !fatal {
            resp.extend(READY);
        }
        let h = parse(&resp, Response).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let want = if message.is_empty() {
            format!("SQLSTATE {code}")
        } else {
            format!("SQLSTATE {code}: {message}")
        };
        prop_assert_eq!(&*h.exception, want.as_str());
        prop_assert_eq!(h.response_status, Some(status_of_sqlstate(&code)));
        prop_assert_eq!(h.response_code, None);
        prop_assert_eq!(h.message_len, Some(resp.len() as u64));
        prop_assert!(ends_message(&resp, Response));
        prop_assert_eq!(infer(&resp), Some(Response));
        check_prefixes(&resp, Response, Some(resp.len() as u64))?;
        // The error alone, before its ReadyForQuery: no end yet unless fatal.
        let alone = parse(&error, Response).unwrap();
        prop_assert_eq!(alone.message_len.is_some(), fatal);
    }
}
