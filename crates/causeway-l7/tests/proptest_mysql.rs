//! Property tests for the MySQL parser: no input makes it panic, generated
//! COM_QUERY and ERR packets come back with their SQL, code, message and
//! exact length (whole and at every truncation point), and generated result
//! sets measure exactly their length when captured whole, and end exactly
//! at their last byte when written in pieces.

use causeway_l7::infer::MessageKind;
use causeway_l7::mysql::{ends_message, error_status, infer, parse, statement_id};
use causeway_model::ResponseStatus;
use proptest::prelude::*;

const REQ: MessageKind = MessageKind::Request;
const RESP: MessageKind = MessageKind::Response;

fn exercise(buf: &[u8]) {
    let _ = infer(buf);
    for kind in [REQ, RESP] {
        let _ = parse(buf, kind);
        let _ = ends_message(buf, kind);
        let _ = statement_id(buf, kind);
    }
}

fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let n = payload.len() as u32;
    let mut v = n.to_le_bytes()[..3].to_vec();
    v.push(seq);
    v.extend_from_slice(payload);
    v
}

fn lenenc(n: u64) -> Vec<u8> {
    match n {
        0..=250 => vec![n as u8],
        251..=0xffff => [&[0xfc][..], &(n as u16).to_le_bytes()].concat(),
        0x1_0000..=0xff_ffff => [&[0xfd][..], &(n as u32).to_le_bytes()[..3]].concat(),
        _ => [&[0xfe][..], &n.to_le_bytes()].concat(),
    }
}

/// Payload bytes that reach deep into the grammar: headers, markers and
/// the fixed strings the parser looks for.
fn payload_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::sample::select(vec![
            &b"\x00"[..],
            b"\x01",
            b"\x03",
            b"\x0a",
            b"\x16",
            b"\x17",
            b"\xfb",
            b"\xfc",
            b"\xfd",
            b"\xfe",
            b"\xff",
            b"\x03def",
            b"#42000",
            b"SELECT 1",
            b"5.5.5-10.11.19-MariaDB\x00",
            b"\x05\x00\x00\x05\xfe\x00\x00\x02\x00",
            b"\xff\xff\xff\x00",
        ])
        .prop_map(<[u8]>::to_vec),
        prop::collection::vec(any::<u8>(), 0..8),
    ]
}

/// A run of packets with arbitrary (often inconsistent) headers.
fn packets() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        (
            prop_oneof![
                0usize..40,
                Just(0xff_ffff),
                any::<u32>().prop_map(|n| (n & 0xff_ffff) as usize)
            ],
            any::<u8>(),
            prop::collection::vec(payload_piece(), 0..6),
        ),
        1..6,
    )
    .prop_map(|ps| {
        let mut out = Vec::new();
        for (len, seq, pieces) in ps {
            let body = pieces.concat();
            out.extend_from_slice(&(len as u32).to_le_bytes()[..3]);
            out.push(seq);
            out.extend_from_slice(&body);
        }
        out
    })
}

// --- generated messages -------------------------------------------------------------

/// SQL as applications write it: starts with a keyword or a parenthesis,
/// no whitespace at the ends, sometimes non-ASCII text.
fn sql() -> impl Strategy<Value = String> {
    ("[A-Za-z(]", "[ -~]{0,300}", "[ -~éü中文]{0,20}")
        .prop_map(|(a, b, c)| format!("{a}{b}{c}").trim_ascii().to_owned())
}

/// What the parser should show of `sql` when only its first `n` bytes were
/// captured: whole characters, without trailing whitespace.
fn sql_prefix(sql: &str, n: usize) -> &str {
    let mut end = n.min(sql.len());
    while !sql.is_char_boundary(end) {
        end -= 1;
    }
    sql[..end].trim_ascii()
}

#[derive(Debug, Clone)]
struct ResultSet {
    columns: usize,
    rows: Vec<Vec<Option<String>>>,
    deprecate_eof: bool,
    /// A second result follows the first (multi-statement).
    second: bool,
}

fn result_set() -> impl Strategy<Value = ResultSet> {
    (1usize..5, any::<bool>(), any::<bool>()).prop_flat_map(|(columns, deprecate_eof, second)| {
        prop::collection::vec(
            prop::collection::vec(proptest::option::of("[ -~]{0,300}"), columns),
            0..30,
        )
        .prop_map(move |rows| ResultSet {
            columns,
            rows,
            deprecate_eof,
            second,
        })
    })
}

impl ResultSet {
    /// The reply's bytes, where each packet ends, and where the EOFs after
    /// column definitions end.
    fn encode(&self) -> (Vec<u8>, Vec<usize>, Vec<usize>) {
        let mut out = Vec::new();
        let mut ends = Vec::new();
        let mut header_eofs = Vec::new();
        let mut seq = 1u8;
        let mut push = |out: &mut Vec<u8>, payload: &[u8]| {
            out.extend(packet(seq, payload));
            seq = seq.wrapping_add(1);
            ends.push(out.len());
        };
        let results = if self.second { 2 } else { 1 };
        for r in 0..results {
            let more: u16 = if r + 1 < results { 0x0008 } else { 0 };
            let status = (0x0002 | more).to_le_bytes();
            push(&mut out, &lenenc(self.columns as u64));
            for i in 0..self.columns {
                let name = format!("c{i}");
                let mut def = b"\x03def\x06cwtest\x01t\x01t".to_vec();
                def.extend(lenenc(name.len() as u64));
                def.extend(name.as_bytes());
                def.extend(lenenc(name.len() as u64));
                def.extend(name.as_bytes());
                def.extend(b"\x0c\x21\x00\x00\x01\x00\x00\xfd\x00\x00\x00\x00\x00");
                push(&mut out, &def);
            }
            if !self.deprecate_eof {
                push(&mut out, &[0xfe, 0, 0, status[0], status[1]]);
                header_eofs.push(out.len());
            }
            for row in &self.rows {
                let mut p = Vec::new();
                for v in row {
                    match v {
                        None => p.push(0xfb),
                        Some(s) => {
                            p.extend(lenenc(s.len() as u64));
                            p.extend(s.as_bytes());
                        }
                    }
                }
                push(&mut out, &p);
            }
            if self.deprecate_eof {
                push(&mut out, &[0xfe, 0, 0, status[0], status[1], 0, 0]);
            } else {
                push(&mut out, &[0xfe, 0, 0, status[0], status[1]]);
            }
        }
        (out, ends, header_eofs)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..2048)) {
        exercise(&buf);
    }

    #[test]
    fn packet_shaped_bytes_never_panic(buf in packets()) {
        for cut in 0..=buf.len().min(256) {
            exercise(&buf[..cut]);
            exercise(&buf[cut..]);
        }
        exercise(&buf);
    }

    #[test]
    fn com_query_round_trips(sql in sql(), prepare in any::<bool>()) {
        let command = if prepare { 0x16 } else { 0x03 };
        let expected_type = if prepare { "COM_STMT_PREPARE" } else { "COM_QUERY" };
        let buf = packet(0, &[&[command][..], sql.as_bytes()].concat());
        prop_assert_eq!(infer(&buf), Some(REQ));
        let h = parse(&buf, REQ).unwrap();
        prop_assert_eq!(&*h.request_type, expected_type);
        prop_assert_eq!(&*h.request_resource, sql.as_str());
        prop_assert_eq!(h.message_len, Some(buf.len() as u64));
        prop_assert!(!h.unpaired);
        prop_assert!(ends_message(&buf, REQ));
        // Cut by the capture anywhere after the command byte: the SQL seen
        // so far and the whole length.
        for cut in 5..buf.len() {
            let h = parse(&buf[..cut], REQ).unwrap();
            prop_assert_eq!(&*h.request_type, expected_type);
            prop_assert_eq!(&*h.request_resource, sql_prefix(&sql, cut - 5));
            prop_assert_eq!(h.message_len, Some(buf.len() as u64));
            prop_assert!(!ends_message(&buf[..cut], REQ));
        }
    }

    #[test]
    fn err_round_trips(
        code in (1000u16..0xffff),
        state in "[0-9A-Z]{5}",
        message in "[ -~]{0,300}",
        seq in 1u8..=255,
    ) {
        let payload = [&[0xff][..], &code.to_le_bytes(), b"#", state.as_bytes(), message.as_bytes()].concat();
        let buf = packet(seq, &payload);
        prop_assert_eq!(infer(&buf), Some(RESP));
        let h = parse(&buf, RESP).unwrap();
        prop_assert_eq!(h.response_code, Some(i32::from(code)));
        prop_assert_eq!(h.response_status, Some(error_status(code)));
        prop_assert_eq!(&*h.exception, message.as_str());
        prop_assert_eq!(h.message_len, Some(buf.len() as u64));
        prop_assert!(!h.unpaired);
        // An ERR ends a result set too: as the last packet of a write.
        let tail = [&b"the end of a row"[..], &buf].concat();
        prop_assert!(ends_message(&tail, RESP));
        // Header (4), 0xff, code (2), '#' and SQLSTATE (6), then the message.
        for cut in 7..buf.len() {
            let h = parse(&buf[..cut], RESP).unwrap();
            prop_assert_eq!(h.response_code, Some(i32::from(code)));
            prop_assert_eq!(&*h.exception, &message[..cut.saturating_sub(13).min(message.len())]);
        }
        // Before the handshake: no SQLSTATE, sequence id 0, unpaired.
        let early = packet(0, &[&[0xff][..], &code.to_le_bytes(), message.as_bytes()].concat());
        let h = parse(&early, RESP).unwrap();
        prop_assert_eq!(h.response_code, Some(i32::from(code)));
        prop_assert_eq!(&*h.exception, message.as_str());
        prop_assert!(h.unpaired);
    }

    #[test]
    fn ok_round_trips(affected in any::<u64>(), insert_id in any::<u64>(), info in "[ -~]{0,60}", seq in 1u8..=255) {
        let mut payload = vec![0x00];
        payload.extend(lenenc(affected));
        payload.extend(lenenc(insert_id));
        payload.extend(0x0002u16.to_le_bytes());
        payload.extend(0u16.to_le_bytes());
        payload.extend(info.as_bytes());
        let buf = packet(seq, &payload);
        let h = parse(&buf, RESP).unwrap();
        prop_assert_eq!(h.response_status, Some(ResponseStatus::Ok));
        prop_assert_eq!(h.response_code, None);
        prop_assert_eq!(h.message_len, Some(buf.len() as u64));
    }

    #[test]
    fn result_sets_end_at_their_last_byte(rs in result_set(), pieces in prop::collection::vec(1usize..5000, 1..8)) {
        let (buf, ends, header_eofs) = rs.encode();
        prop_assert_eq!(infer(&buf), Some(RESP));
        let h = parse(&buf, RESP).unwrap();
        prop_assert_eq!(h.response_status, Some(ResponseStatus::Ok));
        // All of it captured: its length; cut short: unknown.
        prop_assert_eq!(h.message_len, Some(buf.len() as u64));
        let cut = &buf[..buf.len().min(1024) - 1];
        prop_assert_eq!(parse(cut, RESP).unwrap().message_len, None);
        prop_assert!(ends_message(&buf, RESP));
        // Read together with the next reply (pipelined commands): split.
        let ok = packet(1, b"\x00\x01\x00\x02\x00\x00\x00");
        let both = [&buf[..], &ok].concat();
        prop_assert_eq!(parse(&both, RESP).unwrap().message_len, Some(buf.len() as u64));
        prop_assert!(ends_message(&both, RESP));
        // Written whole up to any packet boundary: not the end yet.
        for &end in &ends[..ends.len() - 1] {
            prop_assert!(!ends_message(&buf[..end], RESP), "ended early at {}", end);
        }
        // Written in pieces of arbitrary sizes: only the last piece ends it,
        // when it holds the whole final packet.
        let final_len = buf.len() - ends[ends.len() - 2];
        let mut pos = 0;
        for size in pieces.iter().cycle() {
            let end = (pos + size).min(buf.len());
            let piece = &buf[pos..end];
            if end == buf.len() {
                if piece.len() >= final_len || pos == 0 {
                    prop_assert!(ends_message(piece, RESP));
                }
                break;
            }
            // A later write that stops right after the EOF closing the column
            // definitions looks like the end of the reply, found from its end
            // (a documented ambiguity; the first write is walked instead).
            if pos == 0 || !header_eofs.contains(&end) {
                prop_assert!(!ends_message(piece, RESP), "piece {}..{} of {}", pos, end, buf.len());
            }
            pos = end;
        }
    }
}
