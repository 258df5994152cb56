//! Property tests for the Kafka parser: no input panics it; every request a
//! generator writes (the topic-naming APIs in every version, flexible and
//! not, with random client ids, correlation ids, topic lists and record
//! sizes) comes back with its facts and exact length, alone, pipelined and
//! at every truncation point (never a partial topic name); responses with
//! random error codes report the first failure in wire order, and a cut
//! response reports nothing else than what it shows; what `infer` accepts,
//! `parse_request` reads.

use causeway_l7::infer::MessageKind::{Request, Response};
use causeway_l7::kafka::{
    correlation_id, ends_message, error_status, infer, is_flexible, looks_like_response, parse,
    parse_request, parse_response, request_header, RequestApi,
};
use causeway_l7::ParseError;
use causeway_model::ResponseStatus;
use proptest::prelude::*;

// --- any bytes ---------------------------------------------------------------------

fn exercise(buf: &[u8], api: RequestApi) {
    let inferred = infer(buf);
    for kind in [Request, Response] {
        if let Ok(h) = parse(buf, kind) {
            assert!(h.message_len.is_some_and(|n| n >= 8));
        }
        let _ = ends_message(buf, kind);
        let _ = correlation_id(buf, kind);
    }
    if let Ok(h) = parse_response(buf, Some(api)) {
        // A code comes with its class.
        assert_eq!(
            h.response_code.map(|c| error_status(c as i16)),
            h.response_status
        );
    }
    let _ = (looks_like_response(buf), request_header(buf));
    if inferred.is_some() {
        // What infer claims, parse reads, and its header is a request's.
        assert!(parse_request(buf).is_ok(), "{buf:02x?}");
        assert!(request_header(buf).is_some());
    }
}

/// Pieces of Kafka, so that random strings reach into the grammar.
const TOKENS: &[&[u8]] = &[
    b"\x00\x00\x00",
    b"\x00\x00\x00\x20",
    b"\x00\x00\x00\x40",
    b"\x00\x00",
    b"\x00\x03\x00\x09",
    b"\x00\x00\x00\x09",
    b"\x00\x01\x00\x0c",
    b"\x00\x12\x00\x03",
    b"\x00\x03\x00\x01",
    b"\x00\x01c",
    b"\x02\x05topic",
    b"\x00\x05topic",
    b"\xff\xff",
    b"\xff\xff\xff\xff",
    b"\x00\x00\x00\x01",
    b"\x80",
    b"\x80\x80\x80\x80\x80",
    b"\x01",
    b"\x7f",
    b"\x00",
];

fn any_api() -> impl Strategy<Value = RequestApi> {
    (0i16..100, 0i16..20).prop_map(|(api_key, api_version)| RequestApi {
        api_key,
        api_version,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn arbitrary_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..1100), api in any_api()) {
        exercise(&buf, api);
    }

    #[test]
    fn kafka_like_bytes_never_panic(
        parts in prop::collection::vec(prop::sample::select(TOKENS), 0..60),
        api in any_api(),
    ) {
        exercise(&parts.concat(), api);
    }
}

// --- an encoder ------------------------------------------------------------------------

struct Enc {
    buf: Vec<u8>,
    flexible: bool,
}

impl Enc {
    fn i8(&mut self, v: i8) {
        self.buf.push(v as u8);
    }
    fn i16(&mut self, v: i16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn uvarint(&mut self, mut v: u32) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.buf.push(b);
                return;
            }
            self.buf.push(b | 0x80);
        }
    }
    fn len(&mut self, n: Option<usize>, wide: bool) {
        match (self.flexible, wide) {
            (true, _) => self.uvarint(n.map_or(0, |n| n as u32 + 1)),
            (false, true) => self.i32(n.map_or(-1, |n| n as i32)),
            (false, false) => self.i16(n.map_or(-1, |n| n as i16)),
        }
    }
    fn string(&mut self, s: Option<&str>) {
        self.len(s.map(str::len), false);
        if let Some(s) = s {
            self.buf.extend_from_slice(s.as_bytes());
        }
    }
    fn bytes(&mut self, n: usize) {
        self.len(Some(n), true);
        self.buf.extend(std::iter::repeat_n(0x42, n));
    }
    fn array(&mut self, n: usize) {
        self.len(Some(n), true);
    }
    fn tags(&mut self) {
        if self.flexible {
            self.buf.push(0);
        }
    }
}

fn frame(body: Vec<u8>) -> Vec<u8> {
    [(body.len() as i32).to_be_bytes().to_vec(), body].concat()
}

// --- a model of requests -------------------------------------------------------------

/// A request that names topics, of one of the APIs and versions the parser
/// reads them in.
#[derive(Debug, Clone)]
struct Req {
    key: i16,
    version: i16,
    corr: i32,
    client_id: Option<String>,
    topics: Vec<String>,
    /// Produce: acks; the record set size per topic.
    acks: i16,
    records: usize,
}

/// Topic names Kafka accepts.
fn topic() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._-]{1,40}"
}

fn request() -> impl Strategy<Value = Req> {
    let key_version = prop_oneof![
        (Just(0i16), 0i16..=12),
        (Just(1i16), 0i16..=12),
        (Just(2i16), 0i16..=11),
        (Just(3i16), 0i16..=13),
        (Just(8i16), 0i16..=9),
        (Just(9i16), 0i16..=9),
        (Just(19i16), 0i16..=7),
        (Just(20i16), 0i16..=5),
    ];
    (
        key_version,
        any::<i32>(),
        prop::option::weighted(0.9, "[ -~]{0,30}"),
        prop::collection::vec(topic(), 1..5),
        prop::sample::select(vec![-1i16, 0, 1]),
        0usize..2000,
    )
        .prop_map(|((key, version), corr, client_id, topics, acks, records)| {
            // Topics are unique in a request (they key a map).
            let mut seen = std::collections::HashSet::new();
            let topics = topics
                .into_iter()
                .filter(|t| seen.insert(t.clone()))
                .collect();
            Req {
                key,
                version,
                corr,
                client_id,
                topics,
                acks,
                records,
            }
        })
}

impl Req {
    fn encode(&self) -> Vec<u8> {
        let v = self.version;
        let mut e = Enc {
            buf: Vec::new(),
            flexible: false,
        };
        e.i16(self.key);
        e.i16(v);
        e.i32(self.corr);
        e.string(self.client_id.as_deref());
        e.flexible = is_flexible(self.key, v);
        e.tags();
        match self.key {
            0 => {
                if v >= 3 {
                    e.string(None);
                }
                e.i16(self.acks);
                e.i32(1000);
                e.array(self.topics.len());
                for t in &self.topics {
                    e.string(Some(t));
                    e.array(1);
                    e.i32(0);
                    e.bytes(self.records);
                    e.tags();
                    e.tags();
                }
            }
            1 => {
                e.i32(-1);
                e.i32(500);
                e.i32(1);
                if v >= 3 {
                    e.i32(1 << 20);
                }
                if v >= 4 {
                    e.i8(0);
                }
                if v >= 7 {
                    e.i32(0);
                    e.i32(-1);
                }
                e.array(self.topics.len());
                for t in &self.topics {
                    e.string(Some(t));
                    e.array(1);
                    e.i32(0);
                    if v >= 9 {
                        e.i32(-1);
                    }
                    e.i64(0);
                    if v >= 12 {
                        e.i32(-1);
                    }
                    if v >= 5 {
                        e.i64(-1);
                    }
                    e.i32(1 << 20);
                    e.tags();
                    e.tags();
                }
                if v >= 7 {
                    e.array(0);
                }
                if v >= 11 {
                    e.string(Some(""));
                }
            }
            2 => {
                e.i32(-1);
                if v >= 2 {
                    e.i8(0);
                }
                e.array(self.topics.len());
                for t in &self.topics {
                    e.string(Some(t));
                    e.array(1);
                    e.i32(0);
                    if v >= 4 {
                        e.i32(-1);
                    }
                    e.i64(-1);
                    if v == 0 {
                        e.i32(1);
                    }
                    e.tags();
                    e.tags();
                }
                if v >= 10 {
                    e.i32(1000);
                }
            }
            3 => {
                e.array(self.topics.len());
                for t in &self.topics {
                    if v >= 10 {
                        e.buf.extend_from_slice(&[0; 16]);
                    }
                    e.string(Some(t));
                    e.tags();
                }
                let flags =
                    usize::from(v >= 4) + usize::from((8..=10).contains(&v)) + usize::from(v >= 8);
                e.buf.extend(std::iter::repeat_n(0, flags));
            }
            8 => {
                e.string(Some("group"));
                if v >= 1 {
                    e.i32(1);
                    e.string(Some("member"));
                }
                if v >= 7 {
                    e.string(None);
                }
                if (2..=4).contains(&v) {
                    e.i64(-1);
                }
                e.array(self.topics.len());
                for t in &self.topics {
                    e.string(Some(t));
                    e.array(1);
                    e.i32(0);
                    e.i64(1);
                    if v >= 6 {
                        e.i32(-1);
                    }
                    if v == 1 {
                        e.i64(-1);
                    }
                    e.string(None);
                    e.tags();
                    e.tags();
                }
            }
            9 => {
                if v <= 7 {
                    e.string(Some("group"));
                    self.offset_fetch_topics(&mut e);
                } else {
                    e.array(1);
                    e.string(Some("group"));
                    if v >= 9 {
                        e.string(None);
                        e.i32(-1);
                    }
                    self.offset_fetch_topics(&mut e);
                    e.tags();
                }
                if v >= 7 {
                    e.i8(0);
                }
            }
            19 => {
                e.array(self.topics.len());
                for t in &self.topics {
                    e.string(Some(t));
                    e.i32(1);
                    e.i16(1);
                    e.array(0);
                    e.array(0);
                    e.tags();
                }
                e.i32(1000);
                if v >= 1 {
                    e.i8(0);
                }
            }
            20 => {
                e.array(self.topics.len());
                for t in &self.topics {
                    e.string(Some(t));
                }
                e.i32(1000);
            }
            _ => unreachable!(),
        }
        e.tags();
        frame(e.buf)
    }

    fn offset_fetch_topics(&self, e: &mut Enc) {
        e.array(self.topics.len());
        for t in &self.topics {
            e.string(Some(t));
            e.array(1);
            e.i32(0);
            e.tags();
        }
    }

    fn header_len(&self) -> usize {
        4 + 8
            + 2
            + self.client_id.as_ref().map_or(0, String::len)
            + usize::from(is_flexible(self.key, self.version))
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn requests_give_their_facts(r in request()) {
        let buf = r.encode();
        let h = parse_request(&buf).unwrap();
        prop_assert_eq!(h.message_len, Some(buf.len() as u64));
        prop_assert_eq!(h.request_id, Some(u64::from(r.corr as u32)));
        prop_assert_eq!(h.version.as_ref(), r.version.to_string());
        prop_assert_eq!(h.request_domain.as_ref(), r.client_id.as_deref().unwrap_or(""));
        prop_assert_eq!(h.request_resource.as_ref(), r.topics.join(","));
        prop_assert_eq!(h.unpaired, r.key == 0 && r.acks == 0);
        prop_assert_eq!(infer(&buf), Some(Request));
        prop_assert!(ends_message(&buf, Request));
        prop_assert_eq!(request_header(&buf), Some((r.corr, RequestApi { api_key: r.key, api_version: r.version })));
    }

    #[test]
    fn pipelined_requests_split_at_their_lengths(rs in prop::collection::vec(request(), 1..5)) {
        let bufs: Vec<Vec<u8>> = rs.iter().map(Req::encode).collect();
        let all = bufs.concat();
        prop_assert_eq!(infer(&all), Some(Request));
        prop_assert!(ends_message(&all, Request));
        let mut pos = 0;
        for r in &rs {
            let h = parse_request(&all[pos..]).unwrap();
            prop_assert_eq!(h.request_resource.as_ref(), r.topics.join(","));
            pos += h.message_len.unwrap() as usize;
        }
        prop_assert_eq!(pos, all.len());
    }

    #[test]
    fn cut_requests_never_give_a_partial_name(r in request(), cut in any::<prop::sample::Index>()) {
        let buf = r.encode();
        let n = cut.index(buf.len());
        let part = &buf[..n];
        match parse_request(part) {
            Err(ParseError::Incomplete) => prop_assert!(n < r.header_len(), "{} >= {}", n, r.header_len()),
            Err(e) => prop_assert!(false, "{e:?}"),
            Ok(h) => {
                prop_assert!(n >= r.header_len());
                prop_assert_eq!(h.message_len, Some(buf.len() as u64));
                // The names seen are the first ones, whole.
                let seen = h.request_resource.as_ref();
                if !seen.is_empty() {
                    let names: Vec<&str> = seen.split(',').collect();
                    prop_assert_eq!(&names[..], &r.topics.iter().map(String::as_str).collect::<Vec<_>>()[..names.len()]);
                }
            }
        }
        // infer believes a cut request only when it is long.
        if n < buf.len() {
            prop_assert!(infer(part).is_none() || n >= 256);
        }
    }
}

// --- a model of responses ------------------------------------------------------------

/// A response carrying error codes: Produce, Metadata, Fetch or
/// OffsetCommit, in a version whose layout is read.
#[derive(Debug, Clone)]
struct Resp {
    key: i16,
    version: i16,
    corr: i32,
    /// Per topic, the codes of its partitions (Metadata: first the topic's
    /// own code).
    codes: Vec<Vec<i16>>,
    /// Fetch v7+: the top-level code.
    top: i16,
}

fn code() -> impl Strategy<Value = i16> {
    prop_oneof![4 => Just(0i16), 1 => -1i16..134]
}

fn response() -> impl Strategy<Value = Resp> {
    let key_version = prop_oneof![
        (Just(0i16), 0i16..=13),
        (Just(1i16), 0i16..=18),
        (Just(3i16), 0i16..=13),
        (Just(8i16), 0i16..=10),
    ];
    (
        key_version,
        any::<i32>(),
        prop::collection::vec(prop::collection::vec(code(), 1..4), 0..4),
        code(),
    )
        .prop_map(|((key, version), corr, codes, top)| Resp {
            key,
            version,
            corr,
            codes,
            top,
        })
}

impl Resp {
    fn api(&self) -> RequestApi {
        RequestApi {
            api_key: self.key,
            api_version: self.version,
        }
    }

    /// The codes in wire order.
    fn wire_codes(&self) -> Vec<i16> {
        let mut all = Vec::new();
        if self.key == 1 && self.version >= 7 {
            all.push(self.top);
        }
        for t in &self.codes {
            all.extend(t);
        }
        if self.key == 3 && self.version >= 13 {
            all.push(self.top);
        }
        all
    }

    fn encode(&self) -> Vec<u8> {
        let v = self.version;
        let flexible = is_flexible(self.key, v);
        let mut e = Enc {
            buf: Vec::new(),
            flexible,
        };
        e.i32(self.corr);
        e.tags();
        let name = |e: &mut Enc, by_id: bool| {
            if by_id {
                e.buf.extend_from_slice(&[0x11; 16]);
            } else {
                e.string(Some("topic"));
            }
        };
        match self.key {
            0 => {
                e.array(self.codes.len());
                for t in &self.codes {
                    name(&mut e, v >= 13);
                    e.array(t.len());
                    for (i, c) in t.iter().enumerate() {
                        e.i32(i as i32);
                        e.i16(*c);
                        e.i64(0);
                        if v >= 2 {
                            e.i64(-1);
                        }
                        if v >= 5 {
                            e.i64(0);
                        }
                        if v >= 8 {
                            e.array(0);
                            e.string(None);
                        }
                        e.tags();
                    }
                    e.tags();
                }
                if v >= 1 {
                    e.i32(0);
                }
            }
            1 => {
                if v >= 1 {
                    e.i32(0);
                }
                if v >= 7 {
                    e.i16(self.top);
                    e.i32(1);
                }
                e.array(self.codes.len());
                for t in &self.codes {
                    name(&mut e, v >= 13);
                    e.array(t.len());
                    for (i, c) in t.iter().enumerate() {
                        e.i32(i as i32);
                        e.i16(*c);
                        e.i64(0);
                        if v >= 4 {
                            e.i64(0);
                        }
                        if v >= 5 {
                            e.i64(0);
                        }
                        if v >= 4 {
                            e.array(1);
                            e.i64(1);
                            e.i64(2);
                            e.tags();
                        }
                        if v >= 11 {
                            e.i32(-1);
                        }
                        e.bytes(100);
                        e.tags();
                    }
                    e.tags();
                }
            }
            3 => {
                if v >= 3 {
                    e.i32(0);
                }
                e.array(1);
                e.i32(1);
                e.string(Some("localhost"));
                e.i32(9092);
                if v >= 1 {
                    e.string(None);
                }
                e.tags();
                if v >= 2 {
                    e.string(Some("cluster"));
                }
                if v >= 1 {
                    e.i32(1);
                }
                e.array(self.codes.len());
                for t in &self.codes {
                    e.i16(t[0]);
                    e.string(Some("topic"));
                    if v >= 10 {
                        e.buf.extend_from_slice(&[0; 16]);
                    }
                    if v >= 1 {
                        e.i8(0);
                    }
                    e.array(t.len() - 1);
                    for c in &t[1..] {
                        e.i16(*c);
                        e.i32(0);
                        e.i32(1);
                        if v >= 7 {
                            e.i32(0);
                        }
                        e.array(1);
                        e.i32(1);
                        e.array(1);
                        e.i32(1);
                        if v >= 5 {
                            e.array(0);
                        }
                        e.tags();
                    }
                    if v >= 8 {
                        e.i32(0);
                    }
                    e.tags();
                }
                if (8..=10).contains(&v) {
                    e.i32(0);
                }
                if v >= 13 {
                    e.i16(self.top);
                }
            }
            8 => {
                if v >= 3 {
                    e.i32(0);
                }
                e.array(self.codes.len());
                for t in &self.codes {
                    name(&mut e, v >= 10);
                    e.array(t.len());
                    for (i, c) in t.iter().enumerate() {
                        e.i32(i as i32);
                        e.i16(*c);
                        e.tags();
                    }
                    e.tags();
                }
            }
            _ => unreachable!(),
        }
        e.tags();
        frame(e.buf)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn responses_report_the_first_failure(r in response()) {
        let buf = r.encode();
        let h = parse_response(&buf, Some(r.api())).unwrap();
        prop_assert_eq!(h.message_len, Some(buf.len() as u64));
        prop_assert_eq!(h.request_id, Some(u64::from(r.corr as u32)));
        let want = r.wire_codes().into_iter().find(|&c| c != 0).unwrap_or(0);
        prop_assert_eq!(h.response_code, Some(i32::from(want)));
        prop_assert_eq!(h.response_status, Some(error_status(want)));
        prop_assert_eq!(h.exception.is_empty(), want == 0);
        prop_assert!(looks_like_response(&buf));
        // Without the request's API: the pairing facts only.
        let h = parse_response(&buf, None).unwrap();
        prop_assert_eq!((h.request_id, h.response_code), (Some(u64::from(r.corr as u32)), None));
    }

    #[test]
    fn cut_responses_report_only_what_they_show(r in response(), cut in any::<prop::sample::Index>()) {
        let buf = r.encode();
        let n = cut.index(buf.len());
        match parse_response(&buf[..n], Some(r.api())) {
            Err(e) => {
                prop_assert_eq!(e, ParseError::Incomplete);
                prop_assert!(n < 8);
            }
            Ok(h) => {
                let codes = r.wire_codes();
                let first = codes.iter().copied().find(|&c| c != 0).unwrap_or(0);
                match h.response_code {
                    // Before the first code, or no code at all yet.
                    None => prop_assert_eq!(h.response_status, None),
                    // A failure is the first one; zero only when the first
                    // failure lies beyond the cut, or there is none.
                    Some(0) => prop_assert_eq!(h.response_status, Some(ResponseStatus::Ok)),
                    Some(c) => prop_assert_eq!(c, i32::from(first)),
                }
            }
        }
    }
}
