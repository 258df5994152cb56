//! Property tests for the Redis parser: no input makes it panic, generated
//! commands come back with their command, key and exact length, and
//! generated replies of every RESP2/RESP3 type measure exactly their encoded
//! length, whole, pipelined and at every truncation point.

use causeway_l7::infer::MessageKind;
use causeway_l7::redis::{ends_message, infer, parse};
use causeway_l7::ParseError;
use causeway_model::ResponseStatus;
use proptest::prelude::*;

const REQ: MessageKind = MessageKind::Request;
const RESP: MessageKind = MessageKind::Response;

// --- any bytes -----------------------------------------------------------------------

/// Pieces of RESP, so that random strings reach deep into the grammar.
const TOKENS: &[&[u8]] = &[
    b"*",
    b"$",
    b"+",
    b"-",
    b":",
    b"_",
    b",",
    b"#",
    b"!",
    b"=",
    b"(",
    b"%",
    b"~",
    b">",
    b"|",
    b"?",
    b".",
    b";",
    b"0",
    b"1",
    b"2",
    b"3",
    b"-1",
    b"99999999999",
    b"2147483647",
    b"\r\n",
    b"\r",
    b"\n",
    b"GET",
    b"set",
    b"CLIENT",
    b"OK",
    b"ERR x",
    b"t",
    b"txt:",
    b" ",
    b"\x00",
    b"\xff",
];

fn exercise(buf: &[u8]) {
    let _ = infer(buf);
    for kind in [REQ, RESP] {
        if let Ok(h) = parse(buf, kind) {
            assert!(h.message_len != Some(0));
        }
        let _ = ends_message(buf, kind);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn arbitrary_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..1100)) {
        exercise(&buf);
    }

    #[test]
    fn resp_like_bytes_never_panic(parts in prop::collection::vec(prop::sample::select(TOKENS), 0..80)) {
        exercise(&parts.concat());
    }
}

// --- commands --------------------------------------------------------------------

/// A command as some client spells it: its leading words as sent, the
/// request type the parser must report, and which argument is the key.
#[derive(Debug, Clone, Copy)]
struct Spec {
    words: &'static [&'static str],
    request_type: &'static str,
    key_at: Option<usize>,
}

const SPECS: &[Spec] = &[
    Spec {
        words: &["SET"],
        request_type: "SET",
        key_at: Some(1),
    },
    Spec {
        words: &["set"],
        request_type: "SET",
        key_at: Some(1),
    },
    Spec {
        words: &["Get"],
        request_type: "GET",
        key_at: Some(1),
    },
    Spec {
        words: &["HSET"],
        request_type: "HSET",
        key_at: Some(1),
    },
    Spec {
        words: &["lpush"],
        request_type: "LPUSH",
        key_at: Some(1),
    },
    Spec {
        words: &["MGET"],
        request_type: "MGET",
        key_at: Some(1),
    },
    Spec {
        words: &["DEL"],
        request_type: "DEL",
        key_at: Some(1),
    },
    Spec {
        words: &["BITOP", "AND"],
        request_type: "BITOP",
        key_at: Some(2),
    },
    Spec {
        words: &["EVAL", "return 1", "1"],
        request_type: "EVAL",
        key_at: Some(3),
    },
    Spec {
        words: &["EVAL", "return 1", "0"],
        request_type: "EVAL",
        key_at: None,
    },
    Spec {
        words: &["XREAD", "COUNT", "2", "STREAMS"],
        request_type: "XREAD",
        key_at: Some(4),
    },
    Spec {
        words: &["PING"],
        request_type: "PING",
        key_at: None,
    },
    Spec {
        words: &["info"],
        request_type: "INFO",
        key_at: None,
    },
    Spec {
        words: &["AUTH"],
        request_type: "AUTH",
        key_at: None,
    },
    Spec {
        words: &["HELLO", "3", "AUTH"],
        request_type: "HELLO",
        key_at: None,
    },
    Spec {
        words: &["JSON.SET"],
        request_type: "JSON.SET",
        key_at: Some(1),
    },
    Spec {
        words: &["NEWCMD"],
        request_type: "NEWCMD",
        key_at: None,
    },
    Spec {
        words: &["object", "encoding"],
        request_type: "OBJECT ENCODING",
        key_at: Some(2),
    },
    Spec {
        words: &["CLIENT", "SETNAME"],
        request_type: "CLIENT SETNAME",
        key_at: None,
    },
    Spec {
        words: &["CONFIG", "set"],
        request_type: "CONFIG SET",
        key_at: None,
    },
];

#[derive(Debug, Clone)]
struct GenCommand {
    spec: Spec,
    args: Vec<Vec<u8>>,
}

impl GenCommand {
    fn all_args(&self) -> Vec<Vec<u8>> {
        self.spec
            .words
            .iter()
            .map(|w| w.as_bytes().to_vec())
            .chain(self.args.iter().cloned())
            .collect()
    }

    fn encode(&self) -> Vec<u8> {
        let args = self.all_args();
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in &args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    fn key(&self) -> String {
        self.spec
            .key_at
            .and_then(|i| self.all_args().get(i).cloned())
            .map(|k| String::from_utf8_lossy(&k).into_owned())
            .unwrap_or_default()
    }
}

fn command() -> impl Strategy<Value = GenCommand> {
    (
        prop::sample::select(SPECS),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..6),
    )
        .prop_map(|(spec, args)| GenCommand { spec, args })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn commands_round_trip(c in command()) {
        let buf = c.encode();
        let h = parse(&buf, REQ).unwrap();
        prop_assert_eq!(h.request_type.as_ref(), c.spec.request_type);
        let key = c.key();
        prop_assert_eq!(h.request_resource.as_ref(), key.as_str());
        prop_assert_eq!(h.message_len, Some(buf.len() as u64));
        prop_assert!(ends_message(&buf, REQ));
        prop_assert_eq!(infer(&buf), Some(REQ));
        // The value behind AUTH never shows.
        if c.spec.request_type == "AUTH" && !c.args.is_empty() {
            prop_assert!(h.request_resource.is_empty());
        }
    }

    #[test]
    fn pipelined_commands_split_exactly(cs in prop::collection::vec(command(), 1..12)) {
        let bufs: Vec<Vec<u8>> = cs.iter().map(GenCommand::encode).collect();
        let all = bufs.concat();
        let mut pos = 0;
        for (c, b) in cs.iter().zip(&bufs) {
            let h = parse(&all[pos..], REQ).unwrap();
            prop_assert_eq!(h.request_type.as_ref(), c.spec.request_type);
            prop_assert_eq!(h.message_len, Some(b.len() as u64));
            pos += b.len();
        }
        prop_assert_eq!(pos, all.len());
        prop_assert!(ends_message(&all, REQ));
    }

    #[test]
    fn cut_commands_keep_what_they_can(c in command(), cut in any::<prop::sample::Index>()) {
        let buf = c.encode();
        let cut = cut.index(buf.len() + 1);
        let p = &buf[..cut];
        prop_assert!(!ends_message(p, REQ) || cut == buf.len());
        match parse(p, REQ) {
            Ok(h) => {
                // Unknown, or the true length (when the last argument is cut).
                prop_assert!(h.message_len.is_none() || h.message_len == Some(buf.len() as u64));
                prop_assert!(c.spec.request_type.starts_with(h.request_type.as_ref()));
                // A key is the whole key or nothing.
                prop_assert!(h.request_resource.is_empty() || h.request_resource == c.key());
            }
            Err(e) => prop_assert_eq!(e, ParseError::Incomplete),
        }
    }
}

// --- replies ---------------------------------------------------------------------

/// A RESP2 or RESP3 value.
#[derive(Debug, Clone)]
enum Val {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Null,
    Double(String),
    Bool(bool),
    BigNumber(String),
    BlobError(String),
    Verbatim(Vec<u8>),
    Array(Option<Vec<Val>>),
    Set(Vec<Val>),
    Map(Vec<(Val, Val)>),
    Push(Vec<Val>),
    Attributed(Vec<(Val, Val)>, Box<Val>),
    StreamedString(Vec<Vec<u8>>),
    StreamedArray(Vec<Val>),
}

impl Val {
    fn encode(&self, out: &mut Vec<u8>) {
        let line = |out: &mut Vec<u8>, t: &str, s: &str| {
            out.extend_from_slice(format!("{t}{s}\r\n").as_bytes());
        };
        let blob = |out: &mut Vec<u8>, t: &str, b: &[u8]| {
            out.extend_from_slice(format!("{t}{}\r\n", b.len()).as_bytes());
            out.extend_from_slice(b);
            out.extend_from_slice(b"\r\n");
        };
        match self {
            Val::Simple(s) => line(out, "+", s),
            Val::Error(s) => line(out, "-", s),
            Val::Int(i) => line(out, ":", &i.to_string()),
            Val::Bulk(None) => line(out, "$", "-1"),
            Val::Bulk(Some(b)) => blob(out, "$", b),
            Val::Null => line(out, "_", ""),
            Val::Double(d) => line(out, ",", d),
            Val::Bool(b) => line(out, "#", if *b { "t" } else { "f" }),
            Val::BigNumber(n) => line(out, "(", n),
            Val::BlobError(s) => blob(out, "!", s.as_bytes()),
            Val::Verbatim(b) => blob(out, "=", &[b"txt:".as_slice(), b].concat()),
            Val::Array(None) => line(out, "*", "-1"),
            Val::Array(Some(vs)) | Val::Set(vs) | Val::Push(vs) => {
                let t = match self {
                    Val::Set(_) => "~",
                    Val::Push(_) => ">",
                    _ => "*",
                };
                line(out, t, &vs.len().to_string());
                vs.iter().for_each(|v| v.encode(out));
            }
            Val::Map(kvs) | Val::Attributed(kvs, _) => {
                let t = if matches!(self, Val::Map(_)) {
                    "%"
                } else {
                    "|"
                };
                line(out, t, &kvs.len().to_string());
                for (k, v) in kvs {
                    k.encode(out);
                    v.encode(out);
                }
                if let Val::Attributed(_, v) = self {
                    v.encode(out);
                }
            }
            Val::StreamedString(chunks) => {
                line(out, "$", "?");
                for c in chunks.iter().filter(|c| !c.is_empty()) {
                    blob(out, ";", c);
                }
                line(out, ";", "0");
            }
            Val::StreamedArray(vs) => {
                line(out, "*", "?");
                vs.iter().for_each(|v| v.encode(out));
                line(out, ".", "");
            }
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// The reply proper, past attributes.
    fn proper(&self) -> &Val {
        match self {
            Val::Attributed(_, v) => v.proper(),
            v => v,
        }
    }
}

fn leaf() -> impl Strategy<Value = Val> {
    prop_oneof![
        "[ -~]{0,24}".prop_map(Val::Simple),
        "[A-Z]{1,12}( [ -~]{0,30})?".prop_map(Val::Error),
        any::<i64>().prop_map(Val::Int),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..64)).prop_map(Val::Bulk),
        Just(Val::Null),
        prop_oneof![
            (-1e9f64..1e9).prop_map(|d| d.to_string()),
            prop::sample::select(vec!["inf", "-inf", "nan", "1e10", "-2.5E-3"])
                .prop_map(str::to_owned),
        ]
        .prop_map(Val::Double),
        any::<bool>().prop_map(Val::Bool),
        "-?[1-9][0-9]{0,60}".prop_map(Val::BigNumber),
        "[A-Z]{1,12} [ -~]{0,30}".prop_map(Val::BlobError),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Val::Verbatim),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..16), 0..4)
            .prop_map(Val::StreamedString),
    ]
}

fn value() -> impl Strategy<Value = Val> {
    leaf().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::option::of(prop::collection::vec(inner.clone(), 0..6)).prop_map(Val::Array),
            prop::collection::vec(inner.clone(), 0..6).prop_map(Val::Set),
            prop::collection::vec((inner.clone(), inner.clone()), 0..4).prop_map(Val::Map),
            prop::collection::vec(inner.clone(), 0..6).prop_map(Val::Push),
            (
                prop::collection::vec((inner.clone(), inner.clone()), 1..3),
                inner.clone()
            )
                .prop_map(|(a, v)| Val::Attributed(a, Box::new(v))),
            prop::collection::vec(inner, 0..6).prop_map(Val::StreamedArray),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn replies_measure_their_encoding(v in value()) {
        let buf = v.bytes();
        let h = parse(&buf, RESP).unwrap();
        prop_assert_eq!(h.message_len, Some(buf.len() as u64));
        prop_assert!(ends_message(&buf, RESP));
        match v.proper() {
            Val::Error(text) | Val::BlobError(text) => {
                prop_assert_ne!(h.response_status, Some(ResponseStatus::Ok));
                prop_assert_eq!(h.exception.as_ref(), text.as_str());
            }
            Val::Push(_) => prop_assert!(h.unpaired),
            _ => prop_assert_eq!(h.response_status, Some(ResponseStatus::Ok)),
        }
        if buf[0] != b'*' {
            prop_assert_ne!(infer(&buf), Some(REQ));
        }
    }

    #[test]
    fn pipelined_replies_split_exactly(vs in prop::collection::vec(value(), 1..8)) {
        let bufs: Vec<Vec<u8>> = vs.iter().map(Val::bytes).collect();
        let all = bufs.concat();
        let mut pos = 0;
        for b in &bufs {
            let h = parse(&all[pos..], RESP).unwrap();
            prop_assert_eq!(h.message_len, Some(b.len() as u64));
            pos += b.len();
        }
        prop_assert!(ends_message(&all, RESP));
    }

    #[test]
    fn cut_replies_never_lie_about_length(v in value(), cut in any::<prop::sample::Index>()) {
        let buf = v.bytes();
        let cut = cut.index(buf.len());
        let p = &buf[..cut];
        prop_assert!(!ends_message(p, RESP));
        match parse(p, RESP) {
            Ok(h) => prop_assert!(h.message_len.is_none() || h.message_len == Some(buf.len() as u64)),
            Err(e) => prop_assert_eq!(e, ParseError::Incomplete),
        }
    }
}
