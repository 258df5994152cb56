//! Property tests for HTTP/2 framing and HPACK: any bytes never panic,
//! generated header lists and frame sequences decode back to what was
//! generated however the bytes are split into syscalls, and a capture cut
//! short never yields a wrong value.

use causeway_l7::hpack::{huffman, Decoder, STATIC_TABLE};
use causeway_l7::http2::{flags, frame_type, Event, FrameHeader, HalfConnection, PREFACE};
use proptest::prelude::*;
use std::collections::VecDeque;

/// A test-side HPACK encoder with its own model of the dynamic table, so
/// blocks can refer to entries added by earlier blocks.
struct Encoder {
    table: VecDeque<(Vec<u8>, Vec<u8>)>,
    size: usize,
    max: usize,
}

#[derive(Debug, Clone)]
enum Repr {
    /// Indexed if an exact match exists, else literal with indexing.
    Index,
    /// Literal without indexing.
    NoIndex,
    /// Literal never indexed.
    Never,
}

fn int(out: &mut Vec<u8>, first: u8, prefix: u32, mut v: usize) {
    let max = (1usize << prefix) - 1;
    if v < max {
        out.push(first | v as u8);
        return;
    }
    out.push(first | max as u8);
    v -= max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
}

fn string(out: &mut Vec<u8>, s: &[u8], huff: bool) {
    if huff {
        int(out, 0x80, 7, huffman::encoded_len(s));
        huffman::encode(s, out);
    } else {
        int(out, 0, 7, s.len());
        out.extend_from_slice(s);
    }
}

impl Encoder {
    fn new() -> Encoder {
        Encoder {
            table: VecDeque::new(),
            size: 0,
            max: 4096,
        }
    }

    fn find(&self, name: &[u8], value: &[u8]) -> (Option<usize>, Option<usize>) {
        let mut name_at = None;
        for (i, (n, v)) in STATIC_TABLE.iter().enumerate() {
            if n.as_bytes() == name {
                if v.as_bytes() == value {
                    return (Some(i + 1), Some(i + 1));
                }
                name_at.get_or_insert(i + 1);
            }
        }
        for (i, (n, v)) in self.table.iter().enumerate() {
            if n == name {
                if v == value {
                    return (Some(62 + i), Some(62 + i));
                }
                name_at.get_or_insert(62 + i);
            }
        }
        (None, name_at)
    }

    fn insert(&mut self, name: &[u8], value: &[u8]) {
        let size = name.len() + value.len() + 32;
        while self.size + size > self.max {
            match self.table.pop_back() {
                Some((n, v)) => self.size -= n.len() + v.len() + 32,
                None => break,
            }
        }
        if size <= self.max {
            self.table.push_front((name.to_vec(), value.to_vec()));
            self.size += size;
        }
    }

    fn encode(
        &mut self,
        fields: &[(Vec<u8>, Vec<u8>, Repr, bool)],
        resize: Option<usize>,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(size) = resize {
            int(&mut out, 0x20, 5, size);
            self.max = size;
            while self.size > self.max {
                let (n, v) = self.table.pop_back().unwrap();
                self.size -= n.len() + v.len() + 32;
            }
        }
        for (name, value, repr, huff) in fields {
            let (exact, name_at) = self.find(name, value);
            let (first, prefix) = match repr {
                Repr::Index => {
                    if let Some(i) = exact {
                        int(&mut out, 0x80, 7, i);
                        continue;
                    }
                    (0x40, 6)
                }
                Repr::NoIndex => (0x00, 4),
                Repr::Never => (0x10, 4),
            };
            match name_at {
                Some(i) => int(&mut out, first, prefix, i),
                None => {
                    int(&mut out, first, prefix, 0);
                    string(&mut out, name, *huff);
                }
            }
            string(&mut out, value, *huff);
            if matches!(repr, Repr::Index) {
                self.insert(name, value);
            }
        }
        out
    }
}

fn field() -> impl Strategy<Value = (Vec<u8>, Vec<u8>, Repr, bool)> {
    let name = prop_oneof![
        Just(b":path".to_vec()),
        Just(b":method".to_vec()),
        Just(b"content-type".to_vec()),
        Just(b"x-request-id".to_vec()),
        "[a-z-]{1,12}".prop_map(String::into_bytes),
    ];
    let value = prop_oneof![
        Just(b"GET".to_vec()),
        Just(b"/".to_vec()),
        "[ -~]{0,40}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..20),
    ];
    let repr = prop_oneof![Just(Repr::Index), Just(Repr::NoIndex), Just(Repr::Never)];
    (name, value, repr, any::<bool>())
}

type Block = (Vec<(Vec<u8>, Vec<u8>, Repr, bool)>, Option<usize>);

fn blocks() -> impl Strategy<Value = Vec<Block>> {
    prop::collection::vec(
        (
            prop::collection::vec(field(), 0..12),
            prop::option::weighted(0.15, 0usize..5000),
        ),
        1..8,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn hpack_any_bytes_never_panic(block in prop::collection::vec(any::<u8>(), 0..300), complete in any::<bool>()) {
        let mut d = Decoder::new();
        let _ = d.decode(&block, complete, &mut |_, _| {});
        let _ = d.decode(&block, true, &mut |_, _| {});
        let mut out = Vec::new();
        let _ = huffman::decode(&block, &mut out);
    }

    #[test]
    fn hpack_generated_blocks_round_trip(blocks in blocks()) {
        let mut enc = Encoder::new();
        let mut dec = Decoder::new();
        for (fields, resize) in &blocks {
            let bytes = enc.encode(fields, *resize);
            let mut got = Vec::new();
            let s = dec.decode(&bytes, true, &mut |n, v| got.push((n.to_vec(), v.to_vec()))).unwrap();
            let want: Vec<_> = fields.iter().map(|(n, v, _, _)| (n.clone(), v.clone())).collect();
            prop_assert_eq!(got, want);
            prop_assert_eq!(s.unknown, 0);
            prop_assert_eq!(dec.size(), enc.size);
            prop_assert_eq!(dec.len(), enc.table.len());
        }
    }

    /// After a missed block, what is reported is still right.
    #[test]
    fn hpack_after_a_missed_block_nothing_wrong(blocks in blocks(), missed in 0usize..8) {
        let mut enc = Encoder::new();
        let mut dec = Decoder::new();
        for (i, (fields, resize)) in blocks.iter().enumerate() {
            let bytes = enc.encode(fields, *resize);
            if i == missed {
                dec.lose_sync();
                continue;
            }
            let mut got = Vec::new();
            let s = dec.decode(&bytes, true, &mut |n, v| got.push((n.to_vec(), v.to_vec()))).unwrap();
            let want: Vec<_> = fields.iter().map(|(n, v, _, _)| (n.clone(), v.clone())).collect();
            prop_assert_eq!(got.len() + s.unknown, want.len());
            // Reported fields are the generated ones, in order.
            let mut w = want.iter();
            for g in &got {
                prop_assert!(w.any(|x| x == g), "{:?} not in {:?}", g, want);
            }
        }
    }

    #[test]
    fn frames_any_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600), cuts in prop::collection::vec((1usize..80, 0usize..80), 1..10)) {
        for mut h in [HalfConnection::client(), HalfConnection::server(), HalfConnection::midstream()] {
            let mut rest = &bytes[..];
            let mut fed = 0u64;
            for &(len, cap) in &cuts {
                let n = len.min(rest.len());
                let (now, later) = rest.split_at(n);
                h.feed(&now[..cap.min(n)], n as u64, &mut |_| {});
                fed += n as u64;
                rest = later;
            }
            h.feed(rest, rest.len() as u64, &mut |_| {});
            prop_assert_eq!(h.position(), fed + rest.len() as u64);
        }
    }

    /// A generated client stream (preface, SETTINGS, requests as HEADERS
    /// with padding/priority and CONTINUATIONs, DATA) gives the same events
    /// whole or split at any points, and the headers generated.
    #[test]
    fn frames_generated_split_anywhere(
        reqs in prop::collection::vec(("/[a-z0-9/]{0,30}", any::<bool>(), any::<bool>(), 0usize..3, 0u8..20, 0u32..3000), 1..8),
        splits in prop::collection::vec(1usize..200, 0..30),
    ) {
        let mut enc = Encoder::new();
        let mut wire = PREFACE.to_vec();
        wire.extend_from_slice(&FrameHeader { length: 6, kind: frame_type::SETTINGS, flags: 0, stream_id: 0 }.to_bytes());
        wire.extend_from_slice(&[0, 3, 0, 0, 0, 100]);
        for (i, (path, padded, prio, conts, pad, body)) in reqs.iter().enumerate() {
            let sid = 2 * i as u32 + 1;
            let fields = vec![
                (b":method".to_vec(), b"POST".to_vec(), Repr::Index, false),
                (b":path".to_vec(), path.clone().into_bytes(), Repr::Index, true),
                (b":authority".to_vec(), b"example.test".to_vec(), Repr::Index, true),
            ];
            let block = enc.encode(&fields, None);
            // Split the block over HEADERS and `conts` CONTINUATIONs.
            let parts: Vec<&[u8]> = if *conts == 0 || block.len() < 2 {
                vec![&block[..]]
            } else {
                let step = block.len().div_ceil(conts + 1).max(1);
                block.chunks(step).collect()
            };
            for (j, part) in parts.iter().enumerate() {
                let last = j + 1 == parts.len();
                let mut payload = Vec::new();
                let mut fl = if last { flags::END_HEADERS } else { 0 };
                let kind = if j == 0 { frame_type::HEADERS } else { frame_type::CONTINUATION };
                if j == 0 {
                    if *body == 0 { fl |= flags::END_STREAM; }
                    if *padded { fl |= flags::PADDED; payload.push(*pad); }
                    if *prio { fl |= flags::PRIORITY; payload.extend_from_slice(&[0, 0, 0, 0, 16]); }
                }
                payload.extend_from_slice(part);
                if j == 0 && *padded { payload.extend(std::iter::repeat_n(0, *pad as usize)); }
                wire.extend_from_slice(&FrameHeader { length: payload.len() as u32, kind, flags: fl, stream_id: sid }.to_bytes());
                wire.extend_from_slice(&payload);
            }
            if *body > 0 {
                wire.extend_from_slice(&FrameHeader { length: *body, kind: frame_type::DATA, flags: flags::END_STREAM, stream_id: sid }.to_bytes());
                wire.extend(std::iter::repeat_n(b'd', *body as usize));
            }
        }
        let mut whole = Vec::new();
        HalfConnection::client().feed(&wire, wire.len() as u64, &mut |e| whole.push(e));
        let heads: Vec<_> = whole.iter().filter_map(|e| match e {
            Event::Headers { stream_id, fields, end_stream, .. } => Some((*stream_id, fields.path.clone(), fields.method.clone(), *end_stream)),
            _ => None,
        }).collect();
        prop_assert_eq!(heads.len(), reqs.len());
        for (i, (sid, path, method, end)) in heads.iter().enumerate() {
            prop_assert_eq!(*sid, 2 * i as u32 + 1);
            prop_assert_eq!(path.as_deref(), Some(reqs[i].0.as_str()));
            prop_assert_eq!(method.as_deref(), Some("POST"));
            prop_assert_eq!(*end, reqs[i].5 == 0);
        }
        let mut split = Vec::new();
        let mut h = HalfConnection::client();
        let mut rest = &wire[..];
        for n in &splits {
            let n = (*n).min(rest.len());
            let (a, b) = rest.split_at(n);
            h.feed(a, n as u64, &mut |e| split.push(e));
            rest = b;
        }
        h.feed(rest, rest.len() as u64, &mut |e| split.push(e));
        prop_assert_eq!(split, whole.clone());

        // Capped: a header reported is one generated for that stream.
        let mut capped = Vec::new();
        let mut h = HalfConnection::client();
        let mut rest = &wire[..];
        for n in &splits {
            let n = (*n).min(rest.len());
            let (a, b) = rest.split_at(n);
            h.feed(&a[..a.len().min(17)], n as u64, &mut |e| capped.push(e));
            rest = b;
        }
        for e in capped {
            if let Event::Headers { stream_id, fields, .. } = e {
                let i = ((stream_id - 1) / 2) as usize;
                prop_assert!(i < reqs.len());
                if let Some(p) = &fields.path { prop_assert_eq!(p, &reqs[i].0); }
                if let Some(m) = &fields.method { prop_assert_eq!(m.as_str(), "POST"); }
                if let Some(a) = &fields.authority { prop_assert_eq!(a.as_str(), "example.test"); }
            }
        }
    }
}

/// Other protocols' recorded fixtures are never taken for HTTP/2.
#[test]
fn other_protocols_are_not_http2() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let mut checked = 0;
    for proto in std::fs::read_dir(dir).unwrap() {
        let proto = proto.unwrap().path();
        if proto.ends_with("http2") || !proto.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&proto).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "py") {
                continue;
            }
            let bytes = std::fs::read(&f).unwrap();
            for start in 0..bytes.len().min(64) {
                assert_eq!(
                    causeway_l7::http2::infer(&bytes[start..]),
                    None,
                    "{f:?}+{start}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 50, "{checked} fixture files");
}
