//! Unit tests: hand-built requests and responses of many APIs and versions
//! (non-flexible and flexible), cut, broken and foreign bytes; the recorded
//! tansu and kafka-python traffic is in `recorded.rs`.

use super::*;

mod recorded;

const REQ: MessageKind = MessageKind::Request;

/// Writes Kafka primitives in a version's encoding.
struct Enc {
    buf: Vec<u8>,
    flexible: bool,
}

impl Enc {
    fn new(flexible: bool) -> Enc {
        Enc {
            buf: Vec::new(),
            flexible,
        }
    }
    fn i8(&mut self, v: i8) -> &mut Self {
        self.buf.push(v as u8);
        self
    }
    fn i16(&mut self, v: i16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn i32(&mut self, v: i32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn uuid(&mut self) -> &mut Self {
        self.buf.extend_from_slice(&[0xab; 16]);
        self
    }
    fn uvarint(&mut self, mut v: u32) -> &mut Self {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.buf.push(b);
                return self;
            }
            self.buf.push(b | 0x80);
        }
    }
    fn len(&mut self, n: Option<usize>, wide: bool) -> &mut Self {
        if self.flexible {
            self.uvarint(n.map_or(0, |n| n as u32 + 1))
        } else if wide {
            self.i32(n.map_or(-1, |n| n as i32))
        } else {
            self.i16(n.map_or(-1, |n| n as i16))
        }
    }
    fn string(&mut self, s: Option<&str>) -> &mut Self {
        self.len(s.map(str::len), false);
        if let Some(s) = s {
            self.buf.extend_from_slice(s.as_bytes());
        }
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.string(Some(s))
    }
    fn bytes(&mut self, b: Option<&[u8]>) -> &mut Self {
        self.len(b.map(<[u8]>::len), true);
        if let Some(b) = b {
            self.buf.extend_from_slice(b);
        }
        self
    }
    fn array(&mut self, n: Option<usize>) -> &mut Self {
        self.len(n, true)
    }
    /// Empty tagged fields, in flexible versions.
    fn tags(&mut self) -> &mut Self {
        if self.flexible {
            self.buf.push(0);
        }
        self
    }
}

/// A whole request: length, header (v1 or v2) and the body `body` writes.
fn request(
    key: i16,
    version: i16,
    corr: i32,
    client: Option<&str>,
    body: impl FnOnce(&mut Enc),
) -> Vec<u8> {
    let flexible = is_flexible(key, version);
    let mut h = Enc::new(false);
    h.i16(key).i16(version).i32(corr);
    if !(key == 7 && version == 0) {
        h.string(client);
    }
    let mut e = Enc::new(flexible);
    e.buf = h.buf;
    e.tags();
    body(&mut e);
    frame(e.buf)
}

/// A whole response: length, correlation id, header tagged fields when the
/// request's version is flexible (not for ApiVersions), and the body.
fn response(key: i16, version: i16, corr: i32, body: impl FnOnce(&mut Enc)) -> Vec<u8> {
    let flexible = is_flexible(key, version);
    let mut e = Enc::new(flexible);
    e.i32(corr);
    if key != 18 {
        e.tags();
    }
    body(&mut e);
    frame(e.buf)
}

fn frame(body: Vec<u8>) -> Vec<u8> {
    let mut out = (body.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

fn api(key: i16, version: i16) -> Option<RequestApi> {
    Some(RequestApi {
        api_key: key,
        api_version: version,
    })
}

/// A Produce request of `version` to `topics`, one partition each with a
/// small record batch.
fn produce(version: i16, acks: i16, topics: &[&str]) -> Vec<u8> {
    request(0, version, 7, Some("producer-1"), |e| {
        if version >= 3 {
            e.string(None);
        }
        e.i16(acks).i32(30_000).array(Some(topics.len()));
        for t in topics {
            if version <= 12 {
                e.str(t);
            } else {
                e.uuid();
            }
            e.array(Some(1)).i32(0).bytes(Some(&[0x55; 70])).tags();
            e.tags();
        }
        e.tags();
    })
}

#[test]
fn produce_requests_across_versions() {
    for v in [0, 2, 3, 7, 8, 9, 11, 12] {
        let b = produce(v, 1, &["orders"]);
        let h = parse_request(&b).unwrap();
        assert_eq!(h.request_type, "Produce", "v{v}");
        assert_eq!(h.version, v.to_string());
        assert_eq!(h.request_domain, "producer-1");
        assert_eq!(h.request_resource, "orders", "v{v}");
        assert_eq!(h.request_id, Some(7));
        assert_eq!(h.message_len, Some(b.len() as u64));
        assert!(!h.unpaired);
        assert_eq!(infer(&b), Some(REQ), "v{v}");
    }
    // Topic ids only: no names.
    let b = produce(13, -1, &["orders"]);
    let h = parse_request(&b).unwrap();
    assert_eq!(h.request_resource, "");
    assert_eq!(infer(&b), Some(REQ));
}

#[test]
fn produce_with_acks_0_expects_no_answer() {
    for v in [2, 3, 9] {
        assert!(parse_request(&produce(v, 0, &["t"])).unwrap().unpaired);
        assert!(!parse_request(&produce(v, -1, &["t"])).unwrap().unpaired);
    }
    // An acks value Kafka does not know is no Kafka for infer.
    assert_eq!(infer(&produce(3, 2, &["t"])), None);
}

#[test]
fn several_topics_are_joined() {
    let b = produce(9, 1, &["a", "b.c", "d-e_f"]);
    assert_eq!(parse_request(&b).unwrap().request_resource, "a,b.c,d-e_f");
    let b = request(3, 4, 1, Some("c"), |e| {
        e.array(Some(3)).str("x").str("x").str("y").i8(1);
    });
    assert_eq!(parse_request(&b).unwrap().request_resource, "x,y");
}

fn metadata(version: i16, topics: Option<&[Option<&str>]>) -> Vec<u8> {
    request(3, version, 42, Some("adminclient-1"), |e| {
        e.array(topics.map(<[_]>::len));
        for t in topics.unwrap_or_default() {
            if version >= 10 {
                e.uuid();
            }
            e.string(*t).tags();
        }
        if version >= 4 {
            e.i8(1);
        }
        if (8..=10).contains(&version) {
            e.i8(0);
        }
        if version >= 8 {
            e.i8(0);
        }
        e.tags();
    })
}

#[test]
fn metadata_requests_across_versions() {
    for v in 0..=13 {
        let b = metadata(v, Some(&[Some("t1"), Some("t2")]));
        let h = parse_request(&b).unwrap();
        assert_eq!(h.request_type, "Metadata");
        assert_eq!(h.request_resource, "t1,t2", "v{v}");
        assert_eq!(h.request_id, Some(42));
        assert_eq!(infer(&b), Some(REQ), "v{v}");
        // All topics (null), none, and (v10+) a topic by id alone.
        if v >= 1 {
            let b = metadata(v, None);
            assert_eq!(parse_request(&b).unwrap().request_resource, "");
            assert_eq!(infer(&b), Some(REQ), "v{v}");
        }
        let b = metadata(v, Some(&[]));
        assert_eq!(parse_request(&b).unwrap().request_resource, "");
        if v >= 10 {
            let b = metadata(v, Some(&[None, Some("named")]));
            assert_eq!(parse_request(&b).unwrap().request_resource, "named");
        }
    }
}

fn fetch(version: i16, topics: &[&str]) -> Vec<u8> {
    request(1, version, 9, Some("consumer-g-1"), |e| {
        if version <= 14 {
            e.i32(-1);
        }
        e.i32(500).i32(1);
        if version >= 3 {
            e.i32(52_428_800);
        }
        if version >= 4 {
            e.i8(0);
        }
        if version >= 7 {
            e.i32(0).i32(-1);
        }
        e.array(Some(topics.len()));
        for t in topics {
            if version <= 12 {
                e.str(t);
            } else {
                e.uuid();
            }
            e.array(Some(2));
            for p in 0..2 {
                e.i32(p);
                if version >= 9 {
                    e.i32(-1);
                }
                e.i64(100);
                if version >= 12 {
                    e.i32(-1);
                }
                if version >= 5 {
                    e.i64(-1);
                }
                e.i32(1_048_576).tags();
            }
            e.tags();
        }
        if version >= 7 {
            e.array(Some(1));
            if version <= 12 {
                e.str("old");
            } else {
                e.uuid();
            }
            e.array(Some(2)).i32(0).i32(1).tags();
        }
        if version >= 11 {
            e.str("rack-a");
        }
        e.tags();
    })
}

#[test]
fn fetch_requests_across_versions() {
    for v in 0..=18 {
        let b = fetch(v, &["events", "logs"]);
        let h = parse_request(&b).unwrap();
        assert_eq!(h.request_type, "Fetch");
        let want = if v <= 12 { "events,logs" } else { "" };
        assert_eq!(h.request_resource, want, "v{v}");
        assert_eq!(infer(&b), Some(REQ), "v{v}");
    }
}

#[test]
fn list_offsets_commit_and_fetch_offsets() {
    for v in 0..=11 {
        let b = request(2, v, 3, Some("c"), |e| {
            e.i32(-1);
            if v >= 2 {
                e.i8(0);
            }
            e.array(Some(1)).str("prices").array(Some(1)).i32(0);
            if v >= 4 {
                e.i32(-1);
            }
            e.i64(-2);
            if v == 0 {
                e.i32(1);
            }
            e.tags().tags();
            if v >= 10 {
                e.i32(1000);
            }
            e.tags();
        });
        assert_eq!(
            parse_request(&b).unwrap().request_resource,
            "prices",
            "v{v}"
        );
        assert_eq!(infer(&b), Some(REQ), "ListOffsets v{v}");
    }
    for v in 0..=10 {
        let b = request(8, v, 3, Some("c"), |e| {
            e.str("group-1");
            if v >= 1 {
                e.i32(1).str("member-1");
            }
            if v >= 7 {
                e.string(None);
            }
            if (2..=4).contains(&v) {
                e.i64(-1);
            }
            e.array(Some(1));
            if v <= 9 {
                e.str("prices");
            } else {
                e.uuid();
            }
            e.array(Some(1)).i32(0).i64(5);
            if v >= 6 {
                e.i32(-1);
            }
            if v == 1 {
                e.i64(-1);
            }
            e.string(Some("")).tags().tags().tags();
        });
        let want = if v <= 9 { "prices" } else { "" };
        assert_eq!(
            parse_request(&b).unwrap().request_resource,
            want,
            "OffsetCommit v{v}"
        );
        assert_eq!(infer(&b), Some(REQ), "OffsetCommit v{v}");
    }
    for v in 0..=10 {
        let b = request(9, v, 3, Some("c"), |e| {
            if v <= 7 {
                e.str("group-1")
                    .array(Some(1))
                    .str("prices")
                    .array(Some(1))
                    .i32(0)
                    .tags();
            } else {
                e.array(Some(1)).str("group-1");
                if v >= 9 {
                    e.string(None).i32(-1);
                }
                e.array(Some(1));
                if v <= 9 {
                    e.str("prices");
                } else {
                    e.uuid();
                }
                e.array(Some(1)).i32(0).tags().tags();
            }
            if v >= 7 {
                e.i8(1);
            }
            e.tags();
        });
        let want = if v <= 9 { "prices" } else { "" };
        assert_eq!(
            parse_request(&b).unwrap().request_resource,
            want,
            "OffsetFetch v{v}"
        );
        assert_eq!(infer(&b), Some(REQ), "OffsetFetch v{v}");
    }
    // All of a group's offsets: a null topic list.
    let b = request(9, 2, 3, Some("c"), |e| {
        e.str("group-1").array(None);
    });
    assert_eq!(parse_request(&b).unwrap().request_resource, "");
    assert_eq!(infer(&b), Some(REQ));
}

#[test]
fn create_and_delete_topics() {
    for v in 0..=7 {
        let b = request(19, v, 5, Some("admin"), |e| {
            e.array(Some(2));
            for t in ["new-1", "new-2"] {
                e.str(t).i32(3).i16(1);
                e.array(Some(1)).i32(0).array(Some(1)).i32(1).tags();
                e.array(Some(1)).str("retention.ms").string(None).tags();
                e.tags();
            }
            e.i32(30_000);
            if v >= 1 {
                e.i8(0);
            }
            e.tags();
        });
        let h = parse_request(&b).unwrap();
        assert_eq!(h.request_type, "CreateTopics");
        assert_eq!(h.request_resource, "new-1,new-2", "v{v}");
        assert_eq!(infer(&b), Some(REQ), "CreateTopics v{v}");
    }
    for v in 0..=6 {
        let b = request(20, v, 5, Some("admin"), |e| {
            if v >= 6 {
                e.array(Some(2))
                    .str("old-1")
                    .uuid()
                    .tags()
                    .string(None)
                    .uuid()
                    .tags();
            } else {
                e.array(Some(2)).str("old-1").str("old-2");
            }
            e.i32(30_000).tags();
        });
        let want = if v >= 6 { "old-1" } else { "old-1,old-2" };
        assert_eq!(
            parse_request(&b).unwrap().request_resource,
            want,
            "DeleteTopics v{v}"
        );
        assert_eq!(infer(&b), Some(REQ), "DeleteTopics v{v}");
    }
}

#[test]
fn group_apis_name_their_group() {
    let b = request(10, 1, 2, Some("c"), |e| {
        e.str("my-group").i8(0);
    });
    assert_eq!(parse_request(&b).unwrap().request_resource, "my-group");
    assert_eq!(infer(&b), Some(REQ));
    let b = request(10, 4, 2, Some("c"), |e| {
        e.i8(0).array(Some(2)).str("g1").str("g2").tags();
    });
    assert_eq!(parse_request(&b).unwrap().request_resource, "g1,g2");
    assert_eq!(infer(&b), Some(REQ));
    for (key, v) in [(11, 5), (11, 9), (12, 4), (13, 0), (14, 3)] {
        let b = request(key, v, 2, Some("c"), |e| {
            e.str("my-group").i32(1).str("member");
        });
        let h = parse_request(&b).unwrap();
        assert_eq!(h.request_resource, "my-group", "{key} v{v}");
        assert_eq!(infer(&b), Some(REQ), "{key} v{v}");
    }
    let b = request(15, 5, 2, Some("c"), |e| {
        e.array(Some(1)).str("g").i8(0).tags();
    });
    assert_eq!(parse_request(&b).unwrap().request_resource, "g");
    let b = request(42, 2, 2, Some("c"), |e| {
        e.array(Some(2)).str("g").str("h").tags();
    });
    assert_eq!(parse_request(&b).unwrap().request_resource, "g,h");
}

#[test]
fn api_versions_and_header_variants() {
    // v3 is flexible: header v2 with tagged fields, compact body strings.
    let b = request(18, 3, 0, Some("kafka-python-3.0.12"), |e| {
        e.str("kafka-python").str("3.0.12").tags();
    });
    let h = parse_request(&b).unwrap();
    assert_eq!(h.request_type, "ApiVersions");
    assert_eq!(h.version, "3");
    assert_eq!(h.request_domain, "kafka-python-3.0.12");
    assert_eq!(h.request_id, Some(0));
    assert_eq!(infer(&b), Some(REQ));
    // A null client id.
    let b = request(18, 0, 1, None, |_| {});
    let h = parse_request(&b).unwrap();
    assert_eq!(h.request_domain, "");
    assert_eq!(infer(&b), Some(REQ));
    // Header v0: ControlledShutdown v0 has no client id.
    let b = request(7, 0, 1, None, |e| {
        e.i32(1);
    });
    assert_eq!(b.len(), 4 + 8 + 4);
    let h = parse_request(&b).unwrap();
    assert_eq!(h.request_type, "ControlledShutdown");
    assert_eq!(infer(&b), Some(REQ));
    // Header tagged fields that carry data.
    let mut b = request(18, 3, 1, Some("c"), |e| {
        e.str("x").str("1").tags();
    });
    let at = 4 + 8 + 2 + 1;
    b.splice(at..at + 1, [1, 0, 2, 0xaa, 0xbb]);
    let len = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&len.to_be_bytes());
    assert_eq!(parse_request(&b).unwrap().request_domain, "c");
    assert_eq!(infer(&b), Some(REQ));
    // Correlation ids are unsigned in request_id.
    let b = request(18, 0, -2, Some("c"), |_| {});
    assert_eq!(parse_request(&b).unwrap().request_id, Some(0xffff_fffe));
}

#[test]
fn every_key_has_a_name_and_versions() {
    for key in 0..=92 {
        assert!(api_name(key).is_some_and(|n| !n.is_empty()), "{key}");
        assert!(max_version(key).is_some());
    }
    assert_eq!(api_name(93), None);
    assert_eq!(api_name(-1), None);
    assert_eq!(api_name(0), Some("Produce"));
    assert_eq!(api_name(18), Some("ApiVersions"));
    assert_eq!(api_name(92), Some("DeleteShareGroupOffsets"));
    assert!(is_flexible(18, 3) && !is_flexible(18, 2));
    assert!(!is_flexible(17, 1));
    assert!(is_flexible(500, 0));
}

#[test]
fn unknown_keys_and_versions_parse_but_are_not_inferred() {
    let b = request(120, 0, 3, Some("c"), |e| {
        e.i32(1).tags();
    });
    let h = parse_request(&b).unwrap();
    assert_eq!(h.request_type, "120");
    assert_eq!(h.request_domain, "c");
    assert_eq!(infer(&b), None);
    // A version past the newest: header facts, no topics.
    let b = request(0, 14, 3, Some("c"), |e| {
        e.string(None)
            .i16(1)
            .i32(0)
            .array(Some(1))
            .str("t")
            .array(Some(0))
            .tags()
            .tags();
    });
    let h = parse_request(&b).unwrap();
    assert_eq!(
        (h.request_type.as_ref(), h.version.as_ref()),
        ("Produce", "14")
    );
    assert_eq!(h.request_resource, "");
    assert_eq!(infer(&b), None);
    // Versions past 31 are formatted.
    let b = request(18, 40, 3, Some("c"), |_| {});
    assert_eq!(parse_request(&b).unwrap().version, "40");
}

#[test]
fn cut_and_short_requests() {
    let b = produce(9, 1, &["orders"]);
    // Inside the header: incomplete, so that the agent completes it.
    for n in 0..4 + 8 + 2 + "producer-1".len() + 1 {
        assert_eq!(parse_request(&b[..n]), Err(ParseError::Incomplete), "{n}");
    }
    // Past it: the head, with what is visible.
    let header = 4 + 8 + 2 + 10 + 1;
    let h = parse_request(&b[..header]).unwrap();
    assert_eq!(h.request_domain, "producer-1");
    assert_eq!(h.request_resource, "");
    assert_eq!(h.message_len, Some(b.len() as u64));
    // The topic only when whole.
    let topic_end = header + 1 + 2 + 4 + 1 + 7;
    assert_eq!(
        parse_request(&b[..topic_end - 1]).unwrap().request_resource,
        ""
    );
    assert_eq!(
        parse_request(&b[..topic_end]).unwrap().request_resource,
        "orders"
    );
    // infer wants the whole request when it is short.
    assert_eq!(infer(&b[..b.len() - 1]), None);
    assert_eq!(infer(&b), Some(REQ));
}

#[test]
fn long_requests_cut_by_the_capture() {
    // A Produce of 3 KB cut at 1024 bytes: believed, topic read.
    let b = request(0, 9, 11, Some("p"), |e| {
        e.string(None).i16(-1).i32(1000).array(Some(1)).str("big");
        e.array(Some(1))
            .i32(0)
            .bytes(Some(&[7; 3000]))
            .tags()
            .tags()
            .tags();
    });
    assert_eq!(infer(&b[..1024]), Some(REQ));
    let h = parse_request(&b[..1024]).unwrap();
    assert_eq!(h.request_resource, "big");
    assert_eq!(h.message_len, Some(b.len() as u64));
    // Cut short of 256 bytes: not believed.
    assert_eq!(infer(&b[..200]), None);
}

#[test]
fn pipelined_requests() {
    let mut b = metadata(8, Some(&[Some("a")]));
    let second = produce(8, 1, &["b"]);
    b.extend_from_slice(&second);
    assert_eq!(infer(&b), Some(REQ));
    let first_len = parse_request(&b).unwrap().message_len.unwrap() as usize;
    let h = parse_request(&b[first_len..]).unwrap();
    assert_eq!(h.request_resource, "b");
    assert!(ends_message(&b, REQ));
    assert!(!ends_message(&b[..b.len() - 1], REQ));
    // Garbage after a request is not Kafka.
    let mut c = metadata(8, Some(&[Some("a")]));
    c.extend_from_slice(b"\x00\x00\x00\x05hello");
    assert_eq!(infer(&c), None);
}

#[test]
fn infer_is_strict() {
    let good = metadata(8, Some(&[Some("topic")]));
    assert_eq!(infer(&good), Some(REQ));
    // Length one off either way.
    for delta in [-1i32, 1] {
        let mut b = good.clone();
        let len = i32::from_be_bytes([b[0], b[1], b[2], b[3]]) + delta;
        b[..4].copy_from_slice(&len.to_be_bytes());
        assert_eq!(infer(&b), None, "{delta}");
    }
    // Version past Metadata's newest, unknown and negative keys.
    let mut b = good.clone();
    b[6..8].copy_from_slice(&14i16.to_be_bytes());
    assert_eq!(infer(&b), None);
    for key in [93i16, 1000, -1] {
        let mut b = good.clone();
        b[4..6].copy_from_slice(&key.to_be_bytes());
        assert_eq!(infer(&b), None, "{key}");
    }
    // A client id with control characters, one too long for the message.
    let b = request(3, 8, 1, Some("bad\u{1}id"), |e| {
        e.array(Some(0)).i8(1).i8(0).i8(0);
    });
    assert_eq!(infer(&b), None);
    assert!(parse_request(&b).is_ok());
    let mut b = good.clone();
    b[12..14].copy_from_slice(&100i16.to_be_bytes());
    assert_eq!(infer(&b), None);
    assert_eq!(parse_request(&b), Err(ParseError::Invalid("client id")));
    // Topic names Kafka would refuse.
    for t in ["", "a b", "tópico", &"x".repeat(250)] {
        let b = metadata(8, Some(&[Some(t)]));
        assert_eq!(infer(&b), None, "{t:?}");
        assert!(parse_request(&b).is_ok());
    }
    // Trailing bytes inside the message.
    let b = request(3, 8, 1, Some("c"), |e| {
        e.array(Some(0)).i8(1).i8(0).i8(0).i8(0);
    });
    assert_eq!(infer(&b), None);
    // Too big.
    let mut b = good;
    b[..4].copy_from_slice(&(MAX_INFER_REQUEST as i32 + 1).to_be_bytes());
    assert_eq!(infer(&b), None);
}

#[test]
fn broken_lengths() {
    assert_eq!(
        parse_request(b"\xff\xff\xff\xfe\x00\x03\x00\x00\x00\x00\x00\x01"),
        Err(ParseError::Invalid("length"))
    );
    assert_eq!(
        parse_request(b"\x00\x00\x00\x04\x00\x03\x00\x00\x00\x00\x00\x01"),
        Err(ParseError::Invalid("length"))
    );
    assert_eq!(
        parse_response(b"\x00\x00\x00\x02\x00\x00", None),
        Err(ParseError::Invalid("length"))
    );
    assert_eq!(
        parse_response(b"\x00\x00\x00\x08\x00\x00", None),
        Err(ParseError::Incomplete)
    );
    assert_eq!(
        parse_response(b"\x00\x00", None),
        Err(ParseError::Incomplete)
    );
}

// --- responses ------------------------------------------------------------------

fn check(
    b: &[u8],
    request: Option<RequestApi>,
    code: Option<i32>,
    status: Option<ResponseStatus>,
    exception: &str,
) {
    let h = parse_response(b, request).unwrap();
    assert_eq!(h.response_code, code, "{request:?}");
    assert_eq!(h.response_status, status, "{request:?}");
    assert_eq!(h.exception, exception, "{request:?}");
    assert_eq!(h.message_len, Some(b.len() as u64));
}

const OK: Option<ResponseStatus> = Some(ResponseStatus::Ok);
const CLIENT: Option<ResponseStatus> = Some(ResponseStatus::ClientError);
const SERVER: Option<ResponseStatus> = Some(ResponseStatus::ServerError);

fn produce_response(v: i16, codes: &[i16]) -> Vec<u8> {
    response(0, v, 7, |e| {
        e.array(Some(1));
        if v <= 12 {
            e.str("orders");
        } else {
            e.uuid();
        }
        e.array(Some(codes.len()));
        for (i, c) in codes.iter().enumerate() {
            e.i32(i as i32).i16(*c).i64(10);
            if v >= 2 {
                e.i64(-1);
            }
            if v >= 5 {
                e.i64(0);
            }
            if v >= 8 {
                e.array(Some(0)).string(None);
            }
            e.tags();
        }
        e.tags();
        if v >= 1 {
            e.i32(0);
        }
        e.tags();
    })
}

#[test]
fn produce_responses_report_the_first_failed_partition() {
    for v in [0, 3, 7, 8, 9, 12, 13] {
        check(&produce_response(v, &[0, 0]), api(0, v), Some(0), OK, "");
        check(
            &produce_response(v, &[0, 3, 6]),
            api(0, v),
            Some(3),
            CLIENT,
            "UNKNOWN_TOPIC_OR_PARTITION",
        );
        check(
            &produce_response(v, &[6]),
            api(0, v),
            Some(6),
            SERVER,
            "NOT_LEADER_OR_FOLLOWER",
        );
    }
    // Without the request's API: the correlation id and length only.
    let b = produce_response(9, &[3]);
    let h = parse_response(&b, None).unwrap();
    assert_eq!(
        (h.request_id, h.response_code, h.response_status),
        (Some(7), None, None)
    );
    // Read as a non-flexible version, a flexible response misleads no one:
    // its bytes do not fit, so no code.
    assert!(parse_response(&b, api(0, 3)).is_ok());
}

#[test]
fn fetch_responses() {
    for v in [0i16, 4, 7, 11, 12, 13, 16, 18] {
        let b = response(1, v, 9, |e| {
            if v >= 1 {
                e.i32(0);
            }
            if v >= 7 {
                e.i16(0).i32(12345);
            }
            e.array(Some(1));
            if v <= 12 {
                e.str("events");
            } else {
                e.uuid();
            }
            e.array(Some(2));
            for (p, code) in [(0, 0i16), (1, 1)] {
                e.i32(p).i16(code).i64(100);
                if v >= 4 {
                    e.i64(100);
                }
                if v >= 5 {
                    e.i64(0);
                }
                if v >= 4 {
                    e.array(None);
                }
                if v >= 11 {
                    e.i32(-1);
                }
                e.bytes(Some(&[9; 300])).tags();
            }
            e.tags().tags();
        });
        check(&b, api(1, v), Some(1), CLIENT, "OFFSET_OUT_OF_RANGE");
        // Cut inside the first partition's records: only zeros seen.
        let cut = b.len() - 300 - 100;
        check_cut(&b[..cut], api(1, v), Some(0), OK);
    }
    // A top-level failure (v7+) comes first.
    let b = response(1, 7, 9, |e| {
        e.i32(0).i16(70).i32(0).array(Some(0));
    });
    check(
        &b,
        api(1, 7),
        Some(70),
        SERVER,
        "FETCH_SESSION_ID_NOT_FOUND",
    );
}

fn check_cut(
    b: &[u8],
    request: Option<RequestApi>,
    code: Option<i32>,
    status: Option<ResponseStatus>,
) {
    let h = parse_response(b, request).unwrap();
    assert_eq!(
        (h.response_code, h.response_status),
        (code, status),
        "{request:?}"
    );
}

fn metadata_response(v: i16, topic_code: i16, partition_code: i16) -> Vec<u8> {
    response(3, v, 42, |e| {
        if v >= 3 {
            e.i32(0);
        }
        e.array(Some(1)).i32(1).str("127.0.0.1").i32(9092);
        if v >= 1 {
            e.string(None);
        }
        e.tags();
        if v >= 2 {
            e.str("cluster");
        }
        if v >= 1 {
            e.i32(1);
        }
        e.array(Some(2));
        for (name, tc, pc) in [("ok-topic", 0, 0), ("other", topic_code, partition_code)] {
            e.i16(tc).str(name);
            if v >= 10 {
                e.uuid();
            }
            if v >= 1 {
                e.i8(0);
            }
            e.array(Some(1)).i16(pc).i32(0).i32(1);
            if v >= 7 {
                e.i32(0);
            }
            e.array(Some(1)).i32(1).array(Some(1)).i32(1);
            if v >= 5 {
                e.array(Some(0));
            }
            e.tags();
            if v >= 8 {
                e.i32(-2_147_483_648);
            }
            e.tags();
        }
        if (8..=10).contains(&v) {
            e.i32(0);
        }
        if v >= 13 {
            e.i16(0);
        }
        e.tags();
    })
}

#[test]
fn metadata_responses_across_versions() {
    for v in 0..=13 {
        check(&metadata_response(v, 0, 0), api(3, v), Some(0), OK, "");
        check(
            &metadata_response(v, 3, 0),
            api(3, v),
            Some(3),
            CLIENT,
            "UNKNOWN_TOPIC_OR_PARTITION",
        );
        check(
            &metadata_response(v, 0, 5),
            api(3, v),
            Some(5),
            SERVER,
            "LEADER_NOT_AVAILABLE",
        );
    }
}

#[test]
fn top_level_codes() {
    // ApiVersions: header v0 even when flexible, the code first.
    for v in 0..=4 {
        let b = response(18, v, 0, |e| {
            e.i16(35).array(Some(1)).i16(18).i16(0).i16(3).tags();
        });
        check(&b, api(18, v), Some(35), CLIENT, "UNSUPPORTED_VERSION");
    }
    // JoinGroup: the code after the throttle time from v2.
    for (v, throttle) in [(0, false), (1, false), (2, true), (5, true), (9, true)] {
        let b = response(11, v, 4, |e| {
            if throttle {
                e.i32(0);
            }
            e.i16(79).i32(-1);
        });
        check(&b, api(11, v), Some(79), CLIENT, "MEMBER_ID_REQUIRED");
    }
    // FindCoordinator: one code before v4, one per key after.
    let b = response(10, 2, 4, |e| {
        e.i32(0).i16(15).string(None).i32(-1).str("").i32(-1);
    });
    check(
        &b,
        api(10, 2),
        Some(15),
        SERVER,
        "COORDINATOR_NOT_AVAILABLE",
    );
    let b = response(10, 4, 4, |e| {
        e.i32(0).array(Some(2));
        for code in [0, 14] {
            e.str("g")
                .i32(1)
                .str("h")
                .i32(9092)
                .i16(code)
                .string(None)
                .tags();
        }
        e.tags();
    });
    check(
        &b,
        api(10, 4),
        Some(14),
        SERVER,
        "COORDINATOR_LOAD_IN_PROGRESS",
    );
    // Heartbeat, SyncGroup, InitProducerId, SaslHandshake.
    for (key, v, body) in [
        (12, 4, &b"\x00\x00\x00\x00\x00\x1b\x00"[..]),
        (14, 0, b"\x00\x19\x00\x00\x00\x00"),
        (
            22,
            1,
            b"\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        ),
        (17, 1, b"\x00\x21\x00\x00\x00\x00"),
    ] {
        let mut raw = 4i32.to_be_bytes().to_vec();
        if is_flexible(key, v) {
            raw.push(0);
        }
        raw.extend_from_slice(body);
        let b = frame(raw);
        let h = parse_response(&b, api(key, v)).unwrap();
        assert!(h.response_code.is_some(), "{key} v{v}");
    }
    assert!(reads_errors(RequestApi {
        api_key: 12,
        api_version: 4
    }));
    assert!(!reads_errors(RequestApi {
        api_key: 27,
        api_version: 1
    }));
    assert!(!reads_errors(RequestApi {
        api_key: 18,
        api_version: 5
    }));
}

#[test]
fn offset_and_topic_admin_responses() {
    // OffsetCommit v2 and v8.
    for v in [2, 8] {
        let b = response(8, v, 1, |e| {
            if v >= 3 {
                e.i32(0);
            }
            e.array(Some(1))
                .str("t")
                .array(Some(2))
                .i32(0)
                .i16(0)
                .tags()
                .i32(1)
                .i16(22)
                .tags()
                .tags()
                .tags();
        });
        check(&b, api(8, v), Some(22), CLIENT, "ILLEGAL_GENERATION");
    }
    // OffsetFetch v1 (topics then no top-level code), v5 (with it), v8 (groups).
    let b = response(9, 1, 1, |e| {
        e.array(Some(1))
            .str("t")
            .array(Some(1))
            .i32(0)
            .i64(-1)
            .string(Some(""))
            .i16(0);
    });
    check(&b, api(9, 1), Some(0), OK, "");
    let b = response(9, 5, 1, |e| {
        e.i32(0)
            .array(Some(1))
            .str("t")
            .array(Some(1))
            .i32(0)
            .i64(-1)
            .i32(-1)
            .string(None)
            .i16(0)
            .i16(16);
    });
    check(&b, api(9, 5), Some(16), SERVER, "NOT_COORDINATOR");
    let b = response(9, 8, 1, |e| {
        e.i32(0)
            .array(Some(1))
            .str("g")
            .array(Some(1))
            .str("t")
            .array(Some(1));
        e.i32(0)
            .i64(-1)
            .i32(-1)
            .string(None)
            .i16(3)
            .tags()
            .tags()
            .i16(0)
            .tags()
            .tags();
    });
    check(&b, api(9, 8), Some(3), CLIENT, "UNKNOWN_TOPIC_OR_PARTITION");
    // CreateTopics v3 and v5 (configs), DeleteTopics v4.
    let b = response(19, 3, 1, |e| {
        e.i32(0)
            .array(Some(2))
            .str("a")
            .i16(0)
            .string(None)
            .str("b")
            .i16(36)
            .str("exists");
    });
    check(&b, api(19, 3), Some(36), CLIENT, "TOPIC_ALREADY_EXISTS");
    let b = response(19, 5, 1, |e| {
        e.i32(0)
            .array(Some(1))
            .str("a")
            .i16(0)
            .string(None)
            .i32(1)
            .i16(1);
        e.array(Some(1))
            .str("k")
            .string(Some("v"))
            .i8(0)
            .i8(5)
            .i8(0)
            .tags()
            .tags()
            .tags();
    });
    check(&b, api(19, 5), Some(0), OK, "");
    let b = response(20, 4, 1, |e| {
        e.i32(0).array(Some(1)).str("a").i16(3).tags().tags();
    });
    check(
        &b,
        api(20, 4),
        Some(3),
        CLIENT,
        "UNKNOWN_TOPIC_OR_PARTITION",
    );
    // ListOffsets v0 (old style offsets) and v1.
    let b = response(2, 0, 1, |e| {
        e.array(Some(1))
            .str("t")
            .array(Some(1))
            .i32(0)
            .i16(0)
            .array(Some(2))
            .i64(5)
            .i64(0);
    });
    check(&b, api(2, 0), Some(0), OK, "");
    let b = response(2, 1, 1, |e| {
        e.array(Some(1))
            .str("t")
            .array(Some(1))
            .i32(0)
            .i16(6)
            .i64(-1)
            .i64(-1);
    });
    check(&b, api(2, 1), Some(6), SERVER, "NOT_LEADER_OR_FOLLOWER");
}

#[test]
fn responses_cut_or_not_fitting() {
    let b = metadata_response(1, 3, 0);
    // Cut before any code: no code, no status.
    check_cut(&b[..12], api(3, 1), None, None);
    // Cut after the first topic's zero codes: zero.
    // The second topic: code, name, is_internal, one partition (code,
    // index, leader, one replica, one in-sync replica).
    let first_topic_end = b.len() - (2 + 2 + 5 + 1 + 4 + (2 + 4 + 4 + 8 + 8));
    check_cut(&b[..first_topic_end], api(3, 1), Some(0), OK);
    // A body that does not fit the version read: no code.
    check_cut(&b, api(3, 9), None, None);
    // An unknown version or API: no code.
    check_cut(&b, api(3, 14), None, None);
    check_cut(&b, api(27, 1), None, None);
}

#[test]
fn error_names_and_classes() {
    assert_eq!(error_name(-1), Some("UNKNOWN_SERVER_ERROR"));
    assert_eq!(error_name(0), Some("NONE"));
    assert_eq!(error_name(3), Some("UNKNOWN_TOPIC_OR_PARTITION"));
    assert_eq!(error_name(35), Some("UNSUPPORTED_VERSION"));
    assert_eq!(error_name(133), Some("SHARE_SESSION_LIMIT_REACHED"));
    assert_eq!(error_name(134), None);
    assert_eq!(error_name(-2), None);
    assert_eq!(error_status(0), ResponseStatus::Ok);
    for c in [1, 2, 3, 10, 17, 21, 22, 25, 29, 35, 36, 42, 58, 79, 89, 100] {
        assert_eq!(error_status(c), ResponseStatus::ClientError, "{c}");
    }
    for c in [
        -1, 5, 6, 7, 8, 13, 14, 15, 16, 19, 27, 41, 56, 134, 1000, -5,
    ] {
        assert_eq!(error_status(c), ResponseStatus::ServerError, "{c}");
    }
    // An unknown code's exception says so.
    let b = response(18, 0, 0, |e| {
        e.i16(999).array(Some(0));
    });
    check(&b, api(18, 0), Some(999), SERVER, "UNKNOWN_ERROR_CODE");
}

#[test]
fn correlation_ids_and_headers() {
    let b = produce(3, 1, &["t"]);
    assert_eq!(correlation_id(&b, REQ), Some(7));
    assert_eq!(
        request_header(&b),
        Some((
            7,
            RequestApi {
                api_key: 0,
                api_version: 3
            }
        ))
    );
    assert_eq!(request_header(&b[..11]), None);
    let r = produce_response(3, &[0]);
    assert_eq!(correlation_id(&r, MessageKind::Response), Some(7));
    assert!(looks_like_response(&r));
    let mut two = r.clone();
    two.extend_from_slice(&r);
    assert!(looks_like_response(&two));
    assert!(!looks_like_response(&two[..two.len() - 1]));
    assert!(!looks_like_response(b"\x00\x00\x00\x02ab"));
    assert!(!looks_like_response(b""));
}

#[test]
fn other_protocols_are_not_kafka() {
    for p in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
        // PostgreSQL startup (protocol 3.0 reads as Metadata v0) and SSLRequest.
        b"\x00\x00\x00\x29\x00\x03\x00\x00user\x00postgres\x00database\x00postgres\x00\x00",
        b"\x00\x00\x00\x08\x04\xd2\x16\x2f",
        // MQTT CONNECT, a DNS query over TCP, TLS.
        b"\x10\x18\x00\x04MQTT\x04\x02\x00\x3c\x00\x0cmosquitto-pub",
        b"\x00\x1d\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"",
        b"\x00\x00\x00\x00",
        b"\x00\x00\x00\x08\x00\x12\x00\x00\x00\x00\x00\x01",
    ] {
        assert_eq!(infer(p), None, "{p:02x?}");
    }
}

/// Every recorded chunk of the other protocols' fixtures, whole and from
/// each of its first bytes on: none is Kafka to `infer`.
#[test]
fn other_protocols_fixtures_are_not_claimed() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut checked = 0;
    for proto in [
        "redis",
        "mysql",
        "postgresql",
        "mqtt",
        "dns",
        "protobuf_rpc",
    ] {
        let dir = root.join(proto);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            let ext = f.extension().and_then(|e| e.to_str()).unwrap_or_default();
            let bytes = std::fs::read(&f).unwrap();
            let chunks: Vec<Vec<u8>> = match ext {
                "rec" => recorded::chunks(&bytes)
                    .into_iter()
                    .map(<[u8]>::to_vec)
                    .collect(),
                "req" | "resp" => vec![bytes],
                _ => continue,
            };
            for c in chunks {
                for start in 0..c.len().min(16) {
                    assert_eq!(
                        infer(&c[start..]),
                        None,
                        "{} at {start}: {:02x?}",
                        f.display(),
                        &c[..c.len().min(64)]
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 200, "{checked}");
}
