//! Unit tests: recorded mosquitto 2.0.11 traffic (`tests/fixtures/mqtt`, see
//! its `record.py`), then cut, broken, hand-built and foreign bytes.

use super::*;
use std::fmt::Write as _;

macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!("../../tests/fixtures/mqtt/", $name, ".rec")) as &[u8],
        )
    };
}

/// Every recorded conversation.
const FIXTURES: &[(&str, &[u8])] = &[
    fixture!("v311_pub_qos0"),
    fixture!("v311_pub_qos1"),
    fixture!("v311_pub_qos2"),
    fixture!("v311_pub_retained"),
    fixture!("v311_pub_big"),
    fixture!("v311_pipelined_qos1"),
    fixture!("v31_pub_qos1"),
    fixture!("v5_pub_qos0"),
    fixture!("v5_pub_qos1"),
    fixture!("v5_pub_qos2"),
    fixture!("v5_pub_props"),
    fixture!("v5_pub_big"),
    fixture!("v5_pipelined_qos0"),
    fixture!("v311_sub"),
    fixture!("v5_sub"),
    fixture!("v311_unsubscribe"),
    fixture!("v5_unsubscribe"),
    fixture!("v311_ping"),
    fixture!("v5_ping"),
    fixture!("v311_bad_password"),
    fixture!("v5_bad_password"),
    fixture!("v311_anonymous_refused"),
    fixture!("v311_sub_denied"),
    fixture!("v5_sub_denied"),
    fixture!("v5_pub_denied"),
    fixture!("v311_identifier_rejected"),
    fixture!("v5_admin_disconnect"),
];

const REQ: MessageKind = MessageKind::Request;
const RESP: MessageKind = MessageKind::Response;

/// One recorded chunk: what one `recv` of the relay got.
#[derive(Debug, Clone, Copy)]
struct Rec<'a> {
    /// `C` (client to server) or `S`.
    dir: u8,
    conn: u8,
    bytes: &'a [u8],
}

/// Reads a `.rec` file: direction byte, connection byte, u32 length, bytes.
fn records(mut b: &[u8]) -> Vec<Rec<'_>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let n = u32::from_be_bytes([b[2], b[3], b[4], b[5]]) as usize;
        out.push(Rec {
            dir: b[0],
            conn: b[1],
            bytes: &b[6..6 + n],
        });
        b = &b[6 + n..];
    }
    out
}

/// One packet of a conversation, as the agent would meet it: `payload` is
/// what the capture gives from the packet's first byte (the rest of its
/// chunk, cut at 1024 bytes), `whole` the whole packet from the stream.
#[derive(Debug, Clone)]
struct Pkt<'a> {
    dir: u8,
    payload: &'a [u8],
    whole: Vec<u8>,
}

const CAP: usize = 1024;

/// The packets of every connection of a file, in order, split by the
/// parser's `message_len` over each direction's stream. Checks on the way
/// that the lengths chain exactly to the end of each stream.
fn packets(file: &[u8]) -> Vec<Pkt<'_>> {
    let recs = records(file);
    // Each direction's stream, and where each chunk starts in it.
    let mut streams: Vec<((u8, u8), Vec<u8>)> = Vec::new();
    let mut starts: Vec<(usize, usize)> = Vec::new();
    for r in &recs {
        let i = match streams.iter().position(|(k, _)| *k == (r.conn, r.dir)) {
            Some(i) => i,
            None => {
                streams.push(((r.conn, r.dir), Vec::new()));
                streams.len() - 1
            }
        };
        starts.push((i, streams[i].1.len()));
        streams[i].1.extend_from_slice(r.bytes);
    }
    // Packet boundaries per stream.
    let mut bounds: Vec<Vec<(usize, usize)>> = Vec::new();
    for (key, s) in &streams {
        let mut pos = 0;
        let mut b = Vec::new();
        while pos < s.len() {
            let h = parse(&s[pos..], REQ).unwrap_or_else(|e| panic!("{key:?} at {pos}: {e}"));
            let n = h.message_len.unwrap() as usize;
            b.push((pos, pos + n));
            pos += n;
        }
        assert_eq!(pos, s.len(), "{key:?}: lengths chain to the end");
        bounds.push(b);
    }
    // Packets in chunk order: each packet that starts inside a chunk.
    let mut out = Vec::new();
    for (r, &(i, start)) in recs.iter().zip(&starts) {
        let end = start + r.bytes.len();
        for &(a, b) in &bounds[i] {
            if a >= start && a < end {
                let payload = &r.bytes[a - start..];
                out.push(Pkt {
                    dir: r.dir,
                    payload: &payload[..payload.len().min(CAP)],
                    whole: streams[i].1[a..b].to_vec(),
                });
            }
        }
    }
    out
}

/// One line per head, the fields that are set.
fn describe(dir: u8, h: &Head<'_>) -> String {
    let mut s = format!("{} {}", dir as char, h.request_type);
    if !h.version.is_empty() {
        write!(s, " v={}", h.version).unwrap();
    }
    if !h.request_domain.is_empty() {
        write!(s, " domain={}", h.request_domain).unwrap();
    }
    if !h.request_resource.is_empty() {
        write!(s, " res={}", h.request_resource).unwrap();
    }
    if let Some(id) = h.request_id {
        write!(s, " id={id}").unwrap();
    }
    if let Some(code) = h.response_code {
        write!(s, " code={code:#04x}").unwrap();
    }
    if let Some(st) = h.response_status {
        write!(s, " {st:?}").unwrap();
    }
    if !h.exception.is_empty() {
        write!(s, " exc={:?}", h.exception).unwrap();
    }
    if h.unpaired {
        s.push_str(" unpaired");
    }
    s
}

// --- recorded conversations ---------------------------------------------------

/// `C`/`S` lines for `n` packets `first..=last` of one kind.
fn run(dir: char, line: &str, ids: std::ops::RangeInclusive<u32>) -> Vec<String> {
    ids.map(|i| format!("{dir} {}", line.replace("{i}", &i.to_string())))
        .collect()
}

/// What every packet of each recorded conversation must parse to, without
/// the connection's version, in capture order. Checked by hand against
/// tshark 4.0.17 (`-d tcp.port==P,mqtt`) on the same traffic.
fn expected(name: &str) -> Vec<String> {
    let lines = |text: &str| -> Vec<String> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let connack_v5_ok = "S CONNACK v=5 code=0x00 Ok";
    match name {
        "v311_pub_qos0" => lines(
            "C CONNECT v=3.1.1 domain=cw-pub-311
             S CONNACK code=0x00 Ok
             C PUBLISH res=sensors/temp unpaired
             C DISCONNECT unpaired",
        ),
        "v311_pub_qos1" => lines(
            "C CONNECT v=3.1.1 domain=cw-pub-311
             S CONNACK code=0x00 Ok
             C PUBLISH res=sensors/temp id=1
             S PUBACK id=1 Ok
             C DISCONNECT unpaired",
        ),
        "v311_pub_qos2" => lines(
            "C CONNECT v=3.1.1 domain=cw-pub-311
             S CONNACK code=0x00 Ok
             C PUBLISH res=sensors/temp id=1
             S PUBREC id=1 Ok
             C PUBREL id=1
             S PUBCOMP id=1 Ok
             C DISCONNECT unpaired",
        ),
        "v311_pub_retained" => lines(
            "C CONNECT v=3.1.1 domain=cw-pub-311
             S CONNACK code=0x00 Ok
             C PUBLISH res=sensors/status id=1
             S PUBACK id=1 Ok
             C DISCONNECT unpaired",
        ),
        "v311_pub_big" => lines(
            "C CONNECT v=3.1.1 domain=cw-pub-311
             S CONNACK code=0x00 Ok
             C PUBLISH res=blobs/firmware id=1
             S PUBACK id=1 Ok
             C DISCONNECT unpaired",
        ),
        "v311_pipelined_qos1" => [
            lines(
                "C CONNECT v=3.1.1 domain=cw-lines-311
                 S CONNACK code=0x00 Ok
                 C PUBLISH res=sensors/batch id=1
                 S PUBACK id=1 Ok",
            ),
            // One chunk of 19 PUBLISHes, then PUBACK 2, then a chunk of 18.
            run('C', "PUBLISH res=sensors/batch id={i}", 2..=20),
            run('S', "PUBACK id={i} Ok", 2..=20),
            lines("C DISCONNECT unpaired"),
        ]
        .concat(),
        "v31_pub_qos1" => lines(
            "C CONNECT v=3.1 domain=cw-pub-31
             S CONNACK code=0x00 Ok
             C PUBLISH res=sensors/temp id=1
             S PUBACK id=1 Ok
             C DISCONNECT unpaired",
        ),
        "v5_pub_qos0" => lines(&format!(
            "C CONNECT v=5 domain=cw-pub-5
             {connack_v5_ok}
             C PUBLISH res=sensors/temp unpaired
             C DISCONNECT unpaired"
        )),
        "v5_pub_qos1" | "v5_pub_props" => lines(&format!(
            "C CONNECT v=5 domain=cw-pub-5
             {connack_v5_ok}
             C PUBLISH res=sensors/temp id=1
             S PUBACK v=5 id=1 code=0x10 Ok
             C DISCONNECT unpaired"
        )),
        "v5_pub_qos2" => lines(&format!(
            "C CONNECT v=5 domain=cw-pub-5
             {connack_v5_ok}
             C PUBLISH res=sensors/temp id=1
             S PUBREC id=1 Ok
             C PUBREL id=1
             S PUBCOMP id=1 Ok
             C DISCONNECT unpaired"
        )),
        "v5_pub_big" => lines(&format!(
            "C CONNECT v=5 domain=cw-pub-5
             {connack_v5_ok}
             C PUBLISH res=blobs/firmware id=1
             S PUBACK v=5 id=1 code=0x10 Ok
             C DISCONNECT unpaired"
        )),
        "v5_pipelined_qos0" => [
            lines(&format!(
                "C CONNECT v=5 domain=cw-repeat-5
                 {connack_v5_ok}"
            )),
            run('C', "PUBLISH res=sensors/burst unpaired", 1..=20),
            lines("C DISCONNECT unpaired"),
        ]
        .concat(),
        "v311_sub" | "v5_sub" => {
            let v5 = name == "v5_sub";
            let mut l = if v5 {
                lines(&format!(
                    "C CONNECT v=5 domain=cw-sub-5
                     {connack_v5_ok}
                     C SUBSCRIBE v=5 res=sensors/# id=1
                     S SUBACK id=1 Ok"
                ))
            } else {
                lines(
                    "C CONNECT v=3.1.1 domain=cw-sub-311
                     S CONNACK code=0x00 Ok
                     C SUBSCRIBE res=sensors/# id=1
                     S SUBACK id=1 code=0x02 Ok",
                )
            };
            l.extend(lines(
                "S PUBLISH res=sensors/status id=1
                 C PUBACK id=1 Ok
                 S PUBLISH res=sensors/a unpaired
                 S PUBLISH res=sensors/b id=2
                 S PUBLISH res=sensors/c id=3
                 S PUBLISH res=blobs/firmware id=4
                 C PUBACK id=2 Ok
                 C PUBREC id=3 Ok
                 S PUBREL id=3
                 C PUBACK id=4 Ok
                 C PUBCOMP id=3 Ok
                 C DISCONNECT unpaired",
            ));
            l
        }
        "v311_unsubscribe" => lines(
            "C CONNECT v=3.1.1 domain=cw-unsub-311
             S CONNACK code=0x00 Ok
             C SUBSCRIBE res=sensors/temp id=1
             S SUBACK id=1 code=0x00 Ok
             C UNSUBSCRIBE res=sensors/temp id=2
             C DISCONNECT unpaired
             S UNSUBACK id=2 Ok",
        ),
        "v5_unsubscribe" => lines(&format!(
            "C CONNECT v=5 domain=cw-unsub-5
             {connack_v5_ok}
             C SUBSCRIBE v=5 res=sensors/temp id=1
             S SUBACK id=1 code=0x00 Ok
             C UNSUBSCRIBE v=5 res=sensors/temp id=2
             C UNSUBSCRIBE v=5 res=never/subscribed id=3
             C DISCONNECT unpaired
             S UNSUBACK v=5 id=2 code=0x00 Ok
             S UNSUBACK v=5 id=3 code=0x11 Ok"
        )),
        "v311_ping" => lines(
            "C CONNECT v=3.1.1 domain=cw-ping-mqttv311
             S CONNACK code=0x00 Ok
             C SUBSCRIBE res=idle/topic id=1
             S SUBACK id=1 code=0x00 Ok
             C PINGREQ
             S PINGRESP Ok
             C DISCONNECT unpaired",
        ),
        "v5_ping" => lines(&format!(
            "C CONNECT v=5 domain=cw-ping-mqttv5
             {connack_v5_ok}
             C SUBSCRIBE v=5 res=idle/topic id=1
             S SUBACK id=1 code=0x00 Ok
             C PINGREQ
             S PINGRESP Ok
             C DISCONNECT v=5 code=0x04 Ok unpaired"
        )),
        "v311_bad_password" => lines(
            r#"C CONNECT v=3.1.1 domain=cw-bad-311 res=user=alice
               S CONNACK code=0x05 ClientError exc="Connection Refused, not authorized""#,
        ),
        "v5_bad_password" => lines(
            r#"C CONNECT v=5 domain=cw-bad-5 res=user=alice
               S CONNACK v=5 code=0x87 ClientError exc="Not authorized""#,
        ),
        "v311_anonymous_refused" => lines(
            r#"C CONNECT v=3.1.1 domain=cw-anon-311
               S CONNACK code=0x05 ClientError exc="Connection Refused, not authorized""#,
        ),
        "v311_sub_denied" => lines(
            r#"C CONNECT v=3.1.1 domain=cw-deny-311 res=user=alice
               S CONNACK code=0x00 Ok
               C SUBSCRIBE res=allowed/ok id=1
               S SUBACK id=1 code=0x80 ClientError exc="Failure"
               C DISCONNECT unpaired"#,
        ),
        "v5_sub_denied" => lines(&format!(
            r#"C CONNECT v=5 domain=cw-deny-5 res=user=alice
               {connack_v5_ok}
               C SUBSCRIBE v=5 res=allowed/ok id=1
               S SUBACK v=5 id=1 code=0x87 ClientError exc="Not authorized"
               C DISCONNECT unpaired"#
        )),
        "v5_pub_denied" => lines(&format!(
            r#"C CONNECT v=5 domain=cw-deny-5 res=user=alice
               {connack_v5_ok}
               C PUBLISH res=secret/x id=1
               S PUBACK v=5 id=1 code=0x87 ClientError exc="Not authorized"
               C DISCONNECT unpaired"#
        )),
        "v311_identifier_rejected" => lines(
            r#"C CONNECT v=3.1.1
               S CONNACK code=0x02 ClientError exc="Connection Refused, identifier rejected""#,
        ),
        "v5_admin_disconnect" => lines(&format!(
            r#"C CONNECT v=5 domain=cw-kicked-5 res=user=alice
               {connack_v5_ok}
               C SUBSCRIBE v=5 res=allowed/# id=1
               S SUBACK id=1 code=0x00 Ok
               S DISCONNECT v=5 code=0x98 ServerError exc="Administrative action" unpaired"#
        )),
        _ => panic!("no expectation for {name}"),
    }
}

#[test]
fn recorded_packets_give_their_facts() {
    for (name, file) in FIXTURES {
        let got: Vec<String> = packets(file)
            .iter()
            .map(|p| {
                let h = parse(p.payload, REQ).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(h.message_len, Some(p.whole.len() as u64), "{name}");
                // The kind passed in changes nothing.
                assert_eq!(parse(p.payload, RESP).unwrap(), h, "{name}");
                describe(p.dir, &h)
            })
            .collect();
        assert_eq!(got, expected(name), "{name}");
    }
}

/// The version of each packet's connection, as the agent would keep it
/// from the connection's CONNECT.
fn with_versions<'a>(file: &'a [u8]) -> Vec<(Pkt<'a>, Option<Version>)> {
    let mut version = None;
    packets(file)
        .into_iter()
        .map(|p| {
            if p.payload[0] >> 4 == CONNECT {
                version = Version::from_label(&parse(p.payload, REQ).unwrap().version);
            }
            (p, version)
        })
        .collect()
}

#[test]
fn the_connections_version_changes_only_the_label_and_ambiguous_subacks() {
    for (name, file) in FIXTURES {
        for (p, v) in with_versions(file) {
            let v = v.expect("every conversation starts with CONNECT");
            let plain = parse(p.payload, REQ).unwrap();
            let known = parse_with_version(p.payload, REQ, Some(v)).unwrap();
            assert_eq!(known.version, v.as_str(), "{name}");
            if plain.request_type == "SUBACK" && plain.response_code.is_none() {
                // The one ambiguous SUBACK (v5_sub): the version tells.
                assert_eq!(describe(p.dir, &known), "S SUBACK v=5 id=1 code=0x02 Ok");
                continue;
            }
            assert_eq!(
                Head {
                    version: known.version.clone(),
                    ..plain
                },
                known,
                "{name}"
            );
        }
    }
}

#[test]
fn pipelined_writes_split_at_message_len() {
    for (name, file, chunk_len, count) in [
        ("v311_pipelined_qos1", FIXTURES[5].1, 542, 19),
        ("v311_pipelined_qos1", FIXTURES[5].1, 72, 18),
        // 19 PUBLISHes and the DISCONNECT.
        ("v5_pipelined_qos0", FIXTURES[12].1, 420, 20),
        ("v5_unsubscribe", FIXTURES[16].1, 12, 2),
        ("v5_unsubscribe", FIXTURES[16].1, 42, 2),
        ("v311_sub", FIXTURES[13].1, 3057, 3),
    ] {
        let rec = records(file)
            .into_iter()
            .find(|r| r.bytes.len() == chunk_len)
            .unwrap_or_else(|| panic!("{name}: no chunk of {chunk_len}"));
        let mut pos = 0;
        let mut n = 0;
        while pos < rec.bytes.len() {
            let h = parse(&rec.bytes[pos..], REQ).unwrap();
            pos += h.message_len.unwrap() as usize;
            n += 1;
        }
        assert_eq!((pos, n), (chunk_len, count), "{name}");
        assert!(ends_message(rec.bytes, REQ));
        assert!(!ends_message(&rec.bytes[..chunk_len - 1], REQ));
    }
}

/// Every field of a head from cut bytes is unset or equal to the whole
/// packet's (a failure's name may stand for a Reason String not yet seen).
fn assert_within(cut: &Head<'_>, whole: &Head<'_>, what: &str) {
    assert_eq!(cut.request_type, whole.request_type, "{what}");
    assert_eq!(cut.message_len, whole.message_len, "{what}");
    assert_eq!(cut.unpaired, whole.unpaired, "{what}");
    for (c, w) in [
        (&cut.version, &whole.version),
        (&cut.request_domain, &whole.request_domain),
        (&cut.request_resource, &whole.request_resource),
    ] {
        assert!(c.is_empty() || c == w, "{what}: {c:?} vs {w:?}");
    }
    assert!(
        cut.exception.is_empty()
            || cut.exception == whole.exception
            || whole
                .response_code
                .is_some_and(|c| reason_name(c as u8) == Some(&*cut.exception)),
        "{what}"
    );
    assert!(
        cut.request_id.is_none() || cut.request_id == whole.request_id,
        "{what}"
    );
    assert!(
        cut.response_code.is_none() || cut.response_code == whole.response_code,
        "{what}"
    );
    assert!(
        cut.response_status.is_none() || cut.response_status == whole.response_status,
        "{what}"
    );
}

#[test]
fn cut_packets_keep_what_they_show() {
    for (name, file) in FIXTURES {
        for (p, v) in with_versions(file) {
            for version in [None, v] {
                let whole = parse_with_version(&p.whole, REQ, version).unwrap();
                let header_len = if p.whole.len() > 129 { 3 } else { 2 };
                for cut in 0..p.whole.len() {
                    let what = format!("{name} {} cut at {cut} {version:?}", whole.request_type);
                    match parse_with_version(&p.whole[..cut], REQ, version) {
                        Ok(h) => assert_within(&h, &whole, &what),
                        Err(ParseError::Incomplete) => assert!(cut <= header_len, "{what}"),
                        Err(e) => panic!("{what}: {e}"),
                    }
                }
            }
        }
    }
}

// --- inference ---------------------------------------------------------------------

#[test]
fn infer_claims_the_packets_that_say_mqtt() {
    for (name, file) in FIXTURES {
        for p in packets(file) {
            let t = p.payload[0] >> 4;
            // No recorded chunk starts with an ack and holds a PUBLISH later.
            let says_mqtt = matches!(t, CONNECT | PUBLISH | SUBSCRIBE | UNSUBSCRIBE)
                || p.payload == [0xc0, 0]
                || p.payload == [0xd0, 0];
            let got = infer(p.payload);
            if says_mqtt {
                assert_eq!(
                    got,
                    message_kind(p.payload),
                    "{name}: {:02x?}",
                    &p.payload[..2]
                );
                assert_ne!(parse(p.payload, got.unwrap()), Err(ParseError::Mismatch));
            } else {
                assert_eq!(got, None, "{name}: {:02x?}", p.payload);
            }
        }
    }
}

#[test]
fn a_connection_seen_from_the_middle_is_recognised_by_its_publishes() {
    // The client's big PUBLISH as captured (cut at 1024), and the
    // broker's deliveries to a subscriber.
    let big = packets(FIXTURES[4].1)
        .into_iter()
        .find(|p| p.whole.len() > CAP)
        .unwrap();
    assert_eq!(big.payload.len(), CAP);
    assert_eq!(infer(big.payload), Some(REQ));
    let delivery = records(FIXTURES[13].1)
        .into_iter()
        .find(|r| r.dir == b'S' && r.bytes.len() == 3057)
        .unwrap();
    assert_eq!(infer(&delivery.bytes[..CAP]), Some(REQ));
    // Acks alone are not enough, even in a batch.
    let acks = records(FIXTURES[5].1)
        .into_iter()
        .find(|r| r.bytes.len() == 72)
        .unwrap();
    assert_eq!(infer(acks.bytes), None);
    assert_eq!(infer(&[0x50, 2, 0, 3, 0x40, 2, 0, 4]), None);
}

#[test]
fn infer_rejects_near_misses() {
    for p in [
        &b""[..],
        &[0x30],
        &[0x30, 0x05],
        // A topic with a wildcard, a control character, or none.
        b"\x30\x05\x00\x03a/#",
        b"\x30\x05\x00\x03a\x01b",
        b"\x30\x02\x00\x00",
        // QoS 1 with packet id 0.
        b"\x32\x07\x00\x03a/b\x00\x00",
        // QoS 3, DUP on QoS 0.
        b"\x36\x05\x00\x03a/b",
        b"\x38\x05\x00\x03a/b",
        // The topic runs past the packet.
        b"\x30\x04\x00\x03a/b",
        // Not minimal: remaining length 5 in two bytes.
        b"\x30\x85\x00\x00\x03a/b",
        // Good packet, then garbage.
        b"\x30\x05\x00\x03a/bXYZ",
        // CONNECT with a wrong name, level, or reserved flag.
        b"\x10\x0c\x00\x04MQTX\x04\x02\x00\x3c\x00\x00",
        b"\x10\x0c\x00\x04MQTT\x06\x02\x00\x3c\x00\x00",
        b"\x10\x0c\x00\x04MQTT\x04\x03\x00\x3c\x00\x00",
        b"\x10\x0c\x00\x06MQIsdp\x04\x02",
        // CONNECT whose client id runs short of the packet.
        b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x00\x00",
        // A lone ack, CONNACK, DISCONNECT, pings not alone.
        b"\x40\x02\x00\x01",
        b"\x20\x02\x00\x00",
        b"\xe0\x00",
        b"\xc0\x00\xc0\x00",
        b"\xc0\x01\x00",
        // AUTH: the direction decides.
        b"\xf0\x00",
    ] {
        assert_eq!(infer(p), None, "{p:02x?}");
    }
}

#[test]
fn other_protocols_are_not_claimed() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let mut seen = 0;
    for proto in ["redis", "mysql", "postgresql"] {
        for entry in std::fs::read_dir(format!("{root}/{proto}")).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let chunks: Vec<&[u8]> = match path.extension().and_then(|e| e.to_str()) {
                Some("req" | "resp") => vec![&bytes[..]],
                Some("rec") => {
                    let mut v = Vec::new();
                    let mut b = &bytes[..];
                    while !b.is_empty() {
                        let n = u32::from_be_bytes([b[2], b[3], b[4], b[5]]) as usize;
                        v.push(&b[6..6 + n]);
                        b = &b[6 + n..];
                    }
                    v
                }
                _ => continue,
            };
            for c in chunks {
                let c = &c[..c.len().min(CAP)];
                assert_eq!(
                    infer(c),
                    None,
                    "{}: {:02x?}",
                    path.display(),
                    &c[..c.len().min(16)]
                );
                seen += 1;
            }
        }
    }
    assert!(seen > 200, "{seen}");
    // A 98 KiB MySQL query as captured: a "PUBLISH" of 131 bytes, then SQL.
    let mut big_query = b"\x30\x80\x01\x00\x03".to_vec();
    while big_query.len() < CAP {
        big_query.extend_from_slice(b"SELECT id, name FROM users WHERE id IN (1, 2, 3); ");
    }
    assert_eq!(infer(&big_query[..CAP]), None);
    for p in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"POST /api HTTP/1.1\r\n",
        b"PUT /x HTTP/1.1\r\n",
        b"HTTP/1.1 200 OK\r\n\r\n",
        b"*1\r\n$4\r\nPING\r\n",
        b"PING\r\n",
        b"+OK\r\n",
        b":1000\r\n",
        b"=15\r\ntxt:hello world\r\n",
        b"220 smtp.example.com ESMTP\r\n",
        b"0123456789",
        // TLS ClientHello and alert.
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"\x15\x03\x03\x00\x02\x02\x28",
        // DNS query over UDP, and over TCP (length first).
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01",
        b"\x00\x1d\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01",
        // MySQL packets whose length bytes read as a PUBLISH header.
        b"\x30\x80\x00\x00\x03SELECT 1",
        b"\x30\x80\x01\x00\x03SELECT 1 FROM t",
        b"\x32\x00\x00\x01\x00",
        // LDAP (BER SEQUENCE).
        b"\x30\x0c\x02\x01\x01\x60\x07\x02\x01\x03\x04\x00\x80\x00",
    ] {
        assert_eq!(infer(p), None, "{p:02x?}");
    }
}

// --- roles, sides, flags -------------------------------------------------------

#[test]
fn roles_and_senders_come_from_the_type_byte() {
    use Side::{Client, Server};
    for (b, kind, side) in [
        (0x10, Some(REQ), Some(Client)),
        (0x20, Some(RESP), Some(Server)),
        (0x30, Some(REQ), None),
        (0x3d, Some(REQ), None),
        (0x40, Some(RESP), None),
        (0x50, Some(RESP), None),
        (0x62, Some(REQ), None),
        (0x70, Some(RESP), None),
        (0x82, Some(REQ), Some(Client)),
        (0x90, Some(RESP), Some(Server)),
        (0xa2, Some(REQ), Some(Client)),
        (0xb0, Some(RESP), Some(Server)),
        (0xc0, Some(REQ), Some(Client)),
        (0xd0, Some(RESP), Some(Server)),
        (0xe0, Some(REQ), None),
        (0xf0, None, None),
        // Bad flags, reserved type.
        (0x00, None, None),
        (0x11, None, None),
        (0x36, None, None),
        (0x60, None, None),
        (0x80, None, None),
    ] {
        assert_eq!(message_kind(&[b, 0]), kind, "{b:#x}");
        assert_eq!(sender(&[b, 0]), side, "{b:#x}");
    }
    assert_eq!(message_kind(&[]), None);
}

#[test]
fn publish_flags_and_topic_alias() {
    let first = |name: &str, t: u8| {
        let (_, file) = FIXTURES.iter().find(|(n, _)| *n == name).unwrap();
        packets(file)
            .into_iter()
            .find(|p| p.payload[0] >> 4 == t)
            .unwrap()
    };
    let f = |name| publish_flags(first(name, PUBLISH).payload).unwrap();
    assert_eq!(
        f("v311_pub_qos0"),
        PublishFlags {
            qos: 0,
            retain: false,
            dup: false
        }
    );
    assert_eq!(
        f("v311_pub_qos2"),
        PublishFlags {
            qos: 2,
            retain: false,
            dup: false
        }
    );
    assert_eq!(
        f("v311_pub_retained"),
        PublishFlags {
            qos: 1,
            retain: true,
            dup: false
        }
    );
    assert_eq!(
        publish_flags(&[0x3a, 0]),
        Some(PublishFlags {
            qos: 1,
            retain: false,
            dup: true
        })
    );
    assert_eq!(publish_flags(&[0x40, 2, 0, 1]), None);
    assert_eq!(publish_flags(&[0x36, 0]), None);

    // mosquitto_pub -D publish topic-alias 3: the topic and its alias.
    let props = first("v5_pub_props", PUBLISH);
    assert_eq!(topic_alias(props.payload, Some(Version::V5)), Some(3));
    // Without the version, a PUBLISH with a topic hides its properties.
    assert_eq!(topic_alias(props.payload, None), None);
    assert_eq!(
        topic_alias(first("v5_pub_qos1", PUBLISH).payload, Some(Version::V5)),
        None
    );
    // A later PUBLISH with the alias only: an empty topic.
    let alias_only = b"\x32\x08\x00\x00\x00\x07\x03\x23\x00\x03";
    assert_eq!(topic_alias(alias_only, None), Some(3));
    let h = parse(alias_only, REQ).unwrap();
    assert_eq!(describe(b'C', &h), "C PUBLISH v=5 id=7");
    assert_eq!(infer(alias_only), None);
}
/// Every recorded packet parses, exactly as long as it is; with
/// `--nocapture` the list is a reading aid to set beside tshark's.
#[test]
fn every_fixture_packet_parses_at_its_length() {
    for (name, file) in FIXTURES {
        println!("== {name}");
        for p in packets(file) {
            let h = parse(p.payload, REQ).unwrap();
            println!("{}  infer={:?}", describe(p.dir, &h), infer(p.payload));
            assert_eq!(h.message_len, Some(p.whole.len() as u64), "{name}");
            assert_eq!(parse(&p.whole, REQ).as_ref(), Ok(&h), "{name}");
        }
    }
}

#[test]
fn other_parsers_do_not_claim_mqtt() {
    for (name, file) in FIXTURES {
        for p in packets(file) {
            let what = format!("{name}: {:02x?}", &p.payload[..p.payload.len().min(12)]);
            assert_eq!(crate::redis::infer(p.payload), None, "{what}");
            assert_eq!(crate::mysql::infer(p.payload), None, "{what}");
            assert_eq!(crate::postgresql::infer(p.payload), None, "{what}");
            assert_eq!(crate::infer::infer(p.payload), None, "{what}");
        }
    }
}

// --- hand-built packets ----------------------------------------------------------

/// A packet from a type byte and a body: the fixed header is computed.
fn pkt(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut n = body.len();
    loop {
        let mut b = (n & 0x7f) as u8;
        n >>= 7;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

/// A two-byte length and the bytes.
fn s(x: &[u8]) -> Vec<u8> {
    let mut out = (x.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(x);
    out
}

fn show(b: &[u8], version: Option<Version>) -> String {
    describe(b'-', &parse_with_version(b, REQ, version).unwrap())
}

#[test]
fn connect_with_will_user_and_password() {
    // MQTT 5: user, password, will retain, will QoS 1, will, clean start.
    let body = [
        s(b"MQTT"),
        vec![5, 0xee, 0, 60],
        vec![5, 0x11, 0, 0, 0, 30],
        s(b"dev-1"),
        vec![2, 0x01, 1],
        s(b"dev/1/status"),
        s(b"gone"),
        s(b"bob"),
        s(b"s3cret"),
    ]
    .concat();
    let p = pkt(0x10, &body);
    let h = parse(&p, REQ).unwrap();
    assert_eq!(
        describe(b'-', &h),
        "- CONNECT v=5 domain=dev-1 res=user=bob"
    );
    assert!(!format!("{h:?}").contains("s3cret"));
    assert_eq!(infer(&p), Some(REQ));
    // 3.1.1, and a bridge (level with the top bit set).
    let body = [
        s(b"MQTT"),
        vec![4, 0xc2, 0, 60],
        s(b"dev-2"),
        s(b"bob"),
        s(b"pw"),
    ]
    .concat();
    assert_eq!(
        show(&pkt(0x10, &body), None),
        "- CONNECT v=3.1.1 domain=dev-2 res=user=bob"
    );
    let body = [s(b"MQTT"), vec![0x84, 0x02, 0, 60], s(b"bridge-1")].concat();
    assert_eq!(
        show(&pkt(0x10, &body), None),
        "- CONNECT v=3.1.1 domain=bridge-1"
    );
    assert_eq!(infer(&pkt(0x10, &body)), Some(REQ));
    // The connection's own version wins over a version passed in.
    assert_eq!(
        show(&pkt(0x10, &body), Some(Version::V5)),
        "- CONNECT v=3.1.1 domain=bridge-1"
    );
    // Cut inside the user name: no user.
    let p = pkt(
        0x10,
        &[s(b"MQTT"), vec![4, 0x82, 0, 60], s(b"d"), s(b"bob")].concat(),
    );
    assert_eq!(show(&p[..p.len() - 1], None), "- CONNECT v=3.1.1 domain=d");
}

#[test]
fn auth_exchange() {
    let props = |p: Vec<u8>| [vec![p.len() as u8], p].concat();
    let method = [vec![0x15], s(b"SCRAM-SHA-1")].concat();
    let client = pkt(
        0xf0,
        &[
            vec![0x18],
            props([method.clone(), vec![0x16], s(b"client-first")].concat()),
        ]
        .concat(),
    );
    assert_eq!(
        show(&client, None),
        "- AUTH v=5 res=SCRAM-SHA-1 code=0x18 Ok"
    );
    let server = pkt(0xf0, &[vec![0x00], props(method)].concat());
    assert_eq!(
        show(&server, None),
        "- AUTH v=5 res=SCRAM-SHA-1 code=0x00 Ok"
    );
    assert_eq!(show(&[0xf0, 0], None), "- AUTH v=5");
    // Either side sends it: not inferred, no role from the bytes.
    assert_eq!(infer(&client), None);
    assert_eq!(message_kind(&client), None);
    assert_eq!(sender(&client), None);
    // A reason code AUTH may not carry.
    assert_eq!(infer(&pkt(0xf0, &[0x87, 0])), None);
}

#[test]
fn reason_strings_replace_failure_names() {
    let rs = |text: &[u8]| [vec![0x1f], s(text)].concat();
    let props = |p: Vec<u8>| [vec![p.len() as u8], p].concat();
    let connack = pkt(0x20, &[vec![0, 0x86], props(rs(b"bad creds"))].concat());
    assert_eq!(
        show(&connack, None),
        r#"- CONNACK v=5 code=0x86 ClientError exc="bad creds""#
    );
    let puback = pkt(0x40, &[vec![0, 9, 0x97], props(rs(b"quota"))].concat());
    assert_eq!(
        show(&puback, None),
        r#"- PUBACK v=5 id=9 code=0x97 ClientError exc="quota""#
    );
    // A success keeps no text.
    let puback = pkt(
        0x40,
        &[vec![0, 9, 0x10], props(rs(b"no subscribers"))].concat(),
    );
    assert_eq!(show(&puback, None), "- PUBACK v=5 id=9 code=0x10 Ok");
    // SUBACK with properties: only MQTT 5 reads it.
    let suback = pkt(
        0x90,
        &[vec![0, 5], props(rs(b"no")), vec![0x00, 0x87]].concat(),
    );
    assert_eq!(
        show(&suback, None),
        r#"- SUBACK v=5 id=5 code=0x87 ClientError exc="no""#
    );
    let unsuback = pkt(
        0xb0,
        &[vec![0, 6], props(rs(b"nope")), vec![0x00, 0x87, 0x8f]].concat(),
    );
    assert_eq!(
        show(&unsuback, None),
        r#"- UNSUBACK v=5 id=6 code=0x87 ClientError exc="nope""#
    );
    let disconnect = pkt(0xe0, &[vec![0x8b], props(rs(b"maintenance"))].concat());
    assert_eq!(
        show(&disconnect, None),
        r#"- DISCONNECT v=5 code=0x8b ServerError exc="maintenance" unpaired"#
    );
    for p in [&connack, &puback, &suback, &unsuback, &disconnect] {
        assert_eq!(infer(p), None, "{p:02x?}");
    }
}

#[test]
fn connack_return_codes_of_3_1_1() {
    for (code, want) in [
        (0, "- CONNACK code=0x00 Ok"),
        (
            1,
            r#"- CONNACK code=0x01 ClientError exc="Connection Refused, unacceptable protocol version""#,
        ),
        (
            2,
            r#"- CONNACK code=0x02 ClientError exc="Connection Refused, identifier rejected""#,
        ),
        (
            3,
            r#"- CONNACK code=0x03 ServerError exc="Connection Refused, Server unavailable""#,
        ),
        (
            4,
            r#"- CONNACK code=0x04 ClientError exc="Connection Refused, bad user name or password""#,
        ),
        (
            5,
            r#"- CONNACK code=0x05 ClientError exc="Connection Refused, not authorized""#,
        ),
        (
            6,
            r#"- CONNACK code=0x06 ServerError exc="Connection Refused, reserved return code""#,
        ),
    ] {
        assert_eq!(show(&[0x20, 2, 0, code], None), want);
    }
    // A 3.1.1 broker refusing an MQTT 5 client answers in 3.1.1.
    assert_eq!(
        show(&[0x20, 2, 0, 1], Some(Version::V5)),
        r#"- CONNACK code=0x01 ClientError exc="Connection Refused, unacceptable protocol version""#
    );
    assert_eq!(
        show(&[0x20, 2, 1, 0], Some(Version::V3_1_1)),
        "- CONNACK v=3.1.1 code=0x00 Ok"
    );
}

#[test]
fn reason_code_classes() {
    use ResponseStatus::{ClientError, Ok as Fine, ServerError};
    for (code, want) in [
        (0x00, Fine),
        (0x01, Fine),
        (0x10, Fine),
        (0x11, Fine),
        (0x18, Fine),
        (0x80, ServerError),
        (0x81, ClientError),
        (0x83, ServerError),
        (0x84, ClientError),
        (0x85, ClientError),
        (0x86, ClientError),
        (0x87, ClientError),
        (0x88, ServerError),
        (0x89, ServerError),
        (0x8a, ClientError),
        (0x8b, ServerError),
        (0x8d, ClientError),
        (0x8e, ClientError),
        (0x8f, ClientError),
        (0x90, ClientError),
        (0x95, ClientError),
        (0x97, ClientError),
        (0x98, ServerError),
        (0x9c, ServerError),
        (0x9d, ClientError),
        (0x9f, ClientError),
        (0xa0, ServerError),
        (0xa2, ClientError),
        (0xa3, ServerError),
        (0xff, ServerError),
    ] {
        assert_eq!(reason_status(code), want, "{code:#x}");
        assert_eq!(
            reason_name(code).is_some(),
            (0x80..=0xa2).contains(&code),
            "{code:#x}"
        );
    }
}

#[test]
fn suback_without_the_version_reports_what_both_readings_say() {
    // MQTT 5 for one filter granted QoS 2, or 3.1.1 for two granted 0 and 2.
    let b = [0x90, 4, 0, 1, 0, 2];
    assert_eq!(show(&b, None), "- SUBACK id=1 Ok");
    assert_eq!(
        show(&b, Some(Version::V3_1_1)),
        "- SUBACK v=3.1.1 id=1 code=0x00 Ok"
    );
    assert_eq!(
        show(&b, Some(Version::V5)),
        "- SUBACK v=5 id=1 code=0x02 Ok"
    );
    // MQTT 5 0x80 (server) or 3.1.1 [0, 0x80] (a refusal): no agreement.
    let b = [0x90, 4, 0, 1, 0, 0x80];
    assert_eq!(show(&b, None), "- SUBACK id=1");
    assert_eq!(
        show(&b, Some(Version::V5)),
        r#"- SUBACK v=5 id=1 code=0x80 ServerError exc="Unspecified error""#
    );
    // Codes only 3.1.1 allows, or only 5.
    assert_eq!(
        show(&[0x90, 3, 0, 1, 0x80], None),
        r#"- SUBACK id=1 code=0x80 ClientError exc="Failure""#
    );
    assert_eq!(
        show(&[0x90, 4, 0, 1, 0, 0x97], None),
        r#"- SUBACK v=5 id=1 code=0x97 ClientError exc="Quota exceeded""#
    );
    // Known version: codes are reported as they are.
    assert_eq!(
        show(&[0x90, 3, 0, 1, 0x42], Some(Version::V3_1_1)),
        "- SUBACK v=3.1.1 id=1 code=0x42 Ok"
    );
}

#[test]
fn subscribe_without_the_version() {
    // MQTT 5 with a subscription identifier: 3.1.1 cannot read it.
    let v5 = pkt(0x82, &[vec![0, 1, 2, 0x0b, 7], s(b"a/#"), vec![1]].concat());
    assert_eq!(show(&v5, None), "- SUBSCRIBE v=5 res=a/# id=1");
    // 3.1.1 with two filters.
    let v3 = pkt(
        0x82,
        &[vec![0, 2], s(b"a/+/c"), vec![1], s(b"d"), vec![0]].concat(),
    );
    assert_eq!(show(&v3, None), "- SUBSCRIBE res=a/+/c id=2");
    assert_eq!(infer(&v3), Some(REQ));
    // Badly placed wildcards parse, but do not make a connection MQTT.
    let odd = pkt(0x82, &[vec![0, 3], s(b"a#"), vec![0]].concat());
    assert_eq!(show(&odd, None), "- SUBSCRIBE res=a# id=3");
    assert_eq!(infer(&odd), None);
    // UNSUBSCRIBE alike.
    let un = pkt(0xa2, &[vec![0, 4], s(b"x/y")].concat());
    assert_eq!(show(&un, None), "- UNSUBSCRIBE res=x/y id=4");
    assert_eq!(infer(&un), Some(REQ));
    // No filter, an empty one, bad options.
    for bad in [
        pkt(0x82, &[0, 1]),
        pkt(0x82, &[vec![0, 1], s(b""), vec![0]].concat()),
        pkt(0x82, &[vec![0, 1], s(b"a"), vec![0xc0]].concat()),
        pkt(0xa2, &[0, 1]),
    ] {
        assert!(
            matches!(parse(&bad, REQ), Err(ParseError::Invalid(_))),
            "{bad:02x?}"
        );
    }
}

#[test]
fn fixed_header_edges() {
    // The largest remaining length, in four bytes.
    let h = parse(&[0x30, 0xff, 0xff, 0xff, 0x7f, 0, 1, b'a'], REQ).unwrap();
    assert_eq!(h.message_len, Some(5 + u64::from(MAX_REMAINING_LENGTH)));
    assert_eq!(h.request_resource, "a");
    // A fifth length byte does not exist.
    assert_eq!(
        parse(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01], REQ),
        Err(ParseError::Invalid("remaining length"))
    );
    // A length not in the fewest bytes still reads.
    let h = parse(b"\x30\x85\x00\x00\x03a/b", REQ).unwrap();
    assert_eq!((h.message_len, &*h.request_resource), (Some(8), "a/b"));
    // Cut inside the fixed header, or right after it with a body to come.
    for p in [
        &[][..],
        &[0x30],
        &[0x30, 0x80],
        &[0x30, 0x05],
        &[0x82, 0x80, 0x01],
    ] {
        assert_eq!(parse(p, REQ), Err(ParseError::Incomplete), "{p:02x?}");
    }
    // Bodiless packets are whole in two bytes.
    assert_eq!(show(&[0xc0, 0], None), "- PINGREQ");
    assert_eq!(show(&[0xe0, 0], None), "- DISCONNECT unpaired");
    // Reserved type, flags a type does not take.
    for b in [
        0x00, 0x0f, 0x11, 0x21, 0x36, 0x60, 0x63, 0x80, 0x91, 0xa0, 0xc1, 0xf2,
    ] {
        assert_eq!(parse(&[b, 0], REQ), Err(ParseError::Mismatch), "{b:#x}");
    }
    // DUP on a QoS 0 PUBLISH reads, but is not inferred.
    let p = b"\x38\x05\x00\x03a/b";
    assert_eq!(show(p, None), "- PUBLISH res=a/b unpaired");
    assert_eq!(infer(p), None);
}

#[test]
fn malformed_bodies() {
    for (p, what) in [
        // Topic longer than the packet.
        (&b"\x30\x04\x00\x05a/b"[..], "topic name"),
        // PUBACK too short.
        (b"\x40\x01\x00", "packet identifier"),
        // An unknown property, a property list longer than the packet.
        (b"\x40\x06\x00\x01\x87\x02\x7f\x00", "property identifier"),
        (b"\x40\x05\x00\x01\x87\x09\x00", "property length"),
        // CONNECT of another protocol name, a CONNACK too short.
        (
            b"\x10\x0c\x00\x04MQTX\x04\x02\x00\x3c\x00\x00",
            "protocol name or level",
        ),
        (b"\x20\x01\x00", "remaining length"),
    ] {
        assert_eq!(parse(p, REQ), Err(ParseError::Invalid(what)), "{p:02x?}");
    }
}

#[test]
fn topics_are_whole_or_absent() {
    // Cut inside the topic: no topic, the length is still known.
    let h = parse(b"\x30\x0a\x00\x08sens", REQ).unwrap();
    assert_eq!((h.message_len, &*h.request_resource), (Some(12), ""));
    // Not UTF-8: made lossy rather than dropped.
    let h = parse(b"\x30\x05\x00\x03a\xffb", REQ).unwrap();
    assert_eq!(h.request_resource, "a\u{fffd}b");
}

#[test]
fn pings_alone_are_inferred() {
    assert_eq!(infer(&[0xc0, 0]), Some(REQ));
    assert_eq!(infer(&[0xd0, 0]), Some(RESP));
    assert_eq!(infer(&[0xd0, 0, 0]), None);
}

#[test]
fn a_known_version_stands() {
    // An MQTT 5 form under a connection said to be 3.1.1 keeps 3.1.1.
    assert_eq!(
        show(&[0x40, 3, 0, 1, 0x87], Some(Version::V3_1_1)),
        r#"- PUBACK v=3.1.1 id=1 code=0x87 ClientError exc="Not authorized""#
    );
    assert_eq!(
        show(&[0x40, 3, 0, 1, 0x87], None),
        r#"- PUBACK v=5 id=1 code=0x87 ClientError exc="Not authorized""#
    );
    assert_eq!(
        show(&[0x30, 3, 0, 0, b'x'], Some(Version::V3_1)),
        "- PUBLISH v=3.1 unpaired"
    );
}
