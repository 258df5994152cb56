//! Frames and header blocks of traffic recorded from real servers and
//! clients (tests/fixtures/http2/record.py): nginx with curl and h2load,
//! grpcio server and client.

use super::*;
use std::collections::BTreeMap;

/// (direction b'C' or b'S', connection, bytes) per recorded recv.
fn records(name: &str) -> Vec<(u8, u8, Vec<u8>)> {
    let path = format!(
        "{}/tests/fixtures/http2/{name}.rec",
        env!("CARGO_MANIFEST_DIR")
    );
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut out = Vec::new();
    let mut i = 0;
    while i < data.len() {
        let len = u32::from_be_bytes(data[i + 2..i + 6].try_into().unwrap()) as usize;
        out.push((data[i], data[i + 1], data[i + 6..i + 6 + len].to_vec()));
        i += 6 + len;
    }
    out
}

/// Every event of every (connection, direction), feeding each record with
/// at most `cap` bytes captured.
fn events(name: &str, cap: usize) -> BTreeMap<(u8, u8), (Vec<Event>, HalfStats)> {
    let mut halves: BTreeMap<(u8, u8), (HalfConnection, Vec<Event>)> = BTreeMap::new();
    for (dir, conn, bytes) in records(name) {
        let (half, evs) = halves.entry((conn, dir)).or_insert_with(|| {
            let h = if dir == b'C' {
                HalfConnection::client()
            } else {
                HalfConnection::server()
            };
            (h, Vec::new())
        });
        let captured = &bytes[..bytes.len().min(cap)];
        half.feed(captured, bytes.len() as u64, &mut |e| evs.push(e));
    }
    halves
        .into_iter()
        .map(|(k, (h, evs))| (k, (evs, h.stats)))
        .collect()
}

fn headers(evs: &[Event]) -> Vec<(u32, bool, &HeaderFields)> {
    evs.iter()
        .filter_map(|e| match e {
            Event::Headers {
                stream_id,
                end_stream,
                fields,
                ..
            } => Some((*stream_id, *end_stream, &**fields)),
            _ => None,
        })
        .collect()
}

#[test]
fn frame_header_round_trip_and_plausibility() {
    let h = FrameHeader {
        length: 0x01_02_03,
        kind: frame_type::HEADERS,
        flags: flags::END_HEADERS | flags::END_STREAM,
        stream_id: 7,
    };
    assert_eq!(FrameHeader::parse(&h.to_bytes()), Some(h));
    assert_eq!(FrameHeader::parse(&[0; 8]), None);
    let settings = [0, 0, 6, 4, 0, 0, 0, 0, 0];
    assert!(plausible_header_at(&settings).is_some());
    // SETTINGS on a stream, a PING of 7 bytes, an unknown type, a reserved bit.
    for bad in [
        [0, 0, 6, 4, 0, 0, 0, 0, 1],
        [0, 0, 7, 6, 0, 0, 0, 0, 0],
        [0, 0, 0, 0x0a, 0, 0, 0, 0, 1],
        [0, 0, 4, 3, 0, 0x80, 0, 0, 1],
        [0, 0x40, 1, 0, 0, 0, 0, 0, 1],
    ] {
        assert!(plausible_header_at(&bad).is_none(), "{bad:?}");
    }
}

#[test]
fn padding_and_priority_are_stripped() {
    let h = FrameHeader {
        length: 1 + 5 + 3 + 2,
        kind: frame_type::HEADERS,
        flags: flags::PADDED | flags::PRIORITY | flags::END_HEADERS,
        stream_id: 1,
    };
    let payload = [2, 0, 0, 0, 3, 15, 0x82, 0x86, 0x84, 0, 0];
    assert_eq!(
        header_block_fragment(&h, &payload),
        Ok(&[0x82, 0x86, 0x84][..])
    );
    // Cut inside the fragment: what is there.
    assert_eq!(header_block_fragment(&h, &payload[..7]), Ok(&[0x82][..]));
    // Padding longer than the payload.
    let bad = FrameHeader { length: 2, ..h };
    assert_eq!(
        header_block_fragment(&bad, &[9, 0x82]),
        Err(FrameError::TooShort)
    );
    let pp = FrameHeader {
        length: 5,
        kind: frame_type::PUSH_PROMISE,
        flags: flags::END_HEADERS,
        stream_id: 1,
    };
    assert_eq!(
        header_block_fragment(&pp, &[0, 0, 0, 2, 0x82]),
        Ok(&[0x82][..])
    );
}

#[test]
fn frames_iterate_a_cut_buffer() {
    let mut buf = Vec::new();
    buf.extend_from_slice(&[0, 0, 0, 4, 1, 0, 0, 0, 0]); // SETTINGS ACK
    buf.extend_from_slice(&[0, 0, 4, 8, 0, 0, 0, 0, 0, 0, 0, 1, 0]); // WINDOW_UPDATE
    buf.extend_from_slice(&[0, 0, 10, 0, 1, 0, 0, 0, 1, b'a', b'b']); // DATA cut
    let frames: Vec<_> = Frames::new(&buf).collect();
    assert_eq!(frames.len(), 3);
    assert!(frames[0].is_whole() && frames[1].is_whole() && !frames[2].is_whole());
    assert_eq!(frames[2].payload, b"ab");
    assert!(starts_with_frames(&buf, 9 + 13 + 19));
    // The last frame may go on in the next syscall.
    assert!(starts_with_frames(&buf, 9 + 13 + 12));
    assert!(!starts_with_frames(&buf[1..], 100));
    assert!(!starts_with_frames(&buf[3..], 100));
}

#[test]
fn preface_is_inferred_and_nothing_else() {
    assert_eq!(infer(PREFACE), Some(MessageKind::Request));
    assert_eq!(infer(&PREFACE[..16]), Some(MessageKind::Request));
    assert_eq!(infer(&PREFACE[..15]), None);
    for other in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        b"PRI * HTTP/1.1\r\n",
        b"HTTP/1.1 200 OK\r\n",
        &[0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100],
    ] {
        assert_eq!(infer(other), None);
    }
}

#[test]
fn curl_against_nginx() {
    let all = events("curl_get", usize::MAX);
    assert_eq!(all.len(), 6, "three connections, two directions");
    let want = [
        ("GET", "/", 200),
        ("GET", "/missing", 404),
        ("POST", "/post", 200),
    ];
    for (conn, (method, path, status)) in want.iter().enumerate() {
        let (req, rs) = &all[&(conn as u8, b'C')];
        let (resp, ss) = &all[&(conn as u8, b'S')];
        let rh = headers(req);
        assert_eq!(rh.len(), 1);
        let (sid, end, f) = rh[0];
        assert_eq!(sid, 1);
        assert_eq!(f.method.as_deref(), Some(*method));
        assert_eq!(f.path.as_deref(), Some(*path));
        assert_eq!(f.scheme.as_deref(), Some("http"));
        assert!(f.authority.as_deref().unwrap().starts_with("127.0.0.1:"));
        assert!(f.user_agent.as_deref().unwrap().starts_with("curl/"));
        assert_eq!(f.x_request_id.as_deref(), Some("fixture-1"));
        let tc = f.trace_context().unwrap();
        assert_eq!(tc.trace_id, "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(tc.span_id, "b7ad6b7169203331");
        assert_eq!(f.unknown, 0);
        // The POST's body follows in a DATA frame that ends the stream.
        let data_end = req.iter().any(
            |e| matches!(e, Event::Data { stream_id: 1, end_stream: true, len, .. } if *len == 17),
        );
        assert_eq!(end, *method == "GET");
        assert_eq!(data_end, *method == "POST");
        let sh = headers(resp);
        assert_eq!(sh.len(), 1);
        assert_eq!(sh[0].0, 1);
        assert_eq!(sh[0].2.status, Some(*status));
        assert!(resp.iter().any(|e| matches!(
            e,
            Event::Data {
                stream_id: 1,
                end_stream: true,
                ..
            }
        )));
        for s in [rs, ss] {
            assert_eq!(
                (s.hpack_errors, s.framing_lost, s.header_blocks_cut),
                (0, 0, 0)
            );
        }
    }
}

/// h2load sends `/`, `/a.txt`, `/missing` in turn on streams 1, 3, 5, ...
fn h2load_path(stream_id: u32) -> &'static str {
    ["/", "/a.txt", "/missing"][((stream_id - 1) / 2 % 3) as usize]
}

#[test]
fn h2load_against_nginx_uses_the_dynamic_table() {
    let all = events("h2load", usize::MAX);
    let (req, rs) = &all[&(0, b'C')];
    let (resp, ss) = &all[&(0, b'S')];
    let rh = headers(req);
    assert_eq!(rh.len(), 40);
    for (i, (sid, end, f)) in rh.iter().enumerate() {
        assert_eq!(*sid, 2 * i as u32 + 1);
        assert!(end);
        assert_eq!(f.method.as_deref(), Some("GET"));
        assert_eq!(f.path.as_deref(), Some(h2load_path(*sid)));
        assert!(f.user_agent.as_deref().unwrap().starts_with("h2load"));
        assert_eq!(f.unknown, 0);
    }
    let sh = headers(resp);
    assert_eq!(sh.len(), 40);
    for (sid, _, f) in &sh {
        let want = if h2load_path(*sid) == "/missing" {
            404
        } else {
            200
        };
        assert_eq!(f.status, Some(want), "stream {sid}");
        let ct = if h2load_path(*sid) == "/a.txt" {
            "text/plain"
        } else {
            "text/html"
        };
        assert_eq!(f.content_type.as_deref(), Some(ct), "stream {sid}");
    }
    for s in [rs, ss] {
        assert_eq!((s.hpack_errors, s.framing_lost), (0, 0));
    }
}

#[test]
fn grpc_calls_and_trailers() {
    let all = events("grpc", usize::MAX);
    let (req, _) = &all[&(0, b'C')];
    let (resp, _) = &all[&(0, b'S')];
    let calls = [
        ("/demo.Echo/Say", 0, ""),
        ("/demo.Echo/Say", 0, ""),
        ("/demo.Echo/Count", 0, ""),
        ("/demo.Echo/Find", 5, "no item 42"),
        ("/demo.Echo/Boom", 13, "bad state: café"),
        ("/demo.Echo/Say", 0, ""),
    ];
    let rh = headers(req);
    assert_eq!(rh.len(), calls.len());
    let sh = headers(resp);
    for (i, (path, status, message)) in calls.iter().enumerate() {
        let (sid, _, f) = rh[i];
        assert_eq!(f.method.as_deref(), Some("POST"));
        assert_eq!(f.path.as_deref(), Some(*path));
        assert!(f.is_grpc());
        assert_eq!(
            crate::grpc::service_method(f.path.as_deref().unwrap()).map(|(s, _)| s),
            Some("demo.Echo")
        );
        // The last header block of the stream holds grpc-status.
        let last = sh.iter().rev().find(|(s, _, _)| *s == sid).unwrap();
        assert!(last.1, "trailers end the stream");
        assert_eq!(last.2.grpc_status, Some(*status), "{path}");
        assert_eq!(last.2.grpc_message.as_deref().unwrap_or(""), *message);
        let first = sh.iter().find(|(s, _, _)| *s == sid).unwrap();
        assert_eq!(first.2.status, Some(200));
    }
    // Three DATA frames answer Count(3).
    let count_sid = rh[2].0;
    let n = resp
        .iter()
        .filter(|e| matches!(e, Event::Data { stream_id, len, .. } if *stream_id == count_sid && *len > 0))
        .count();
    assert_eq!(n, 3);
}

/// Whatever the capture cap, a reported value is the true one.
#[test]
fn capture_caps_never_give_wrong_values() {
    for name in ["curl_get", "h2load", "grpc"] {
        let truth = events(name, usize::MAX);
        for cap in [1, 9, 10, 30, 64, 100, 256, 1024] {
            let cut = events(name, cap);
            for (key, (evs, _)) in &cut {
                let full = headers(&truth[key].0);
                for (sid, _, f) in headers(evs) {
                    // Some block of the same stream said the same.
                    let agrees = full.iter().any(|(s, _, t)| {
                        *s == sid
                            && f.method
                                .as_ref()
                                .is_none_or(|m| t.method.as_ref() == Some(m))
                            && f.path.as_ref().is_none_or(|p| t.path.as_ref() == Some(p))
                            && f.status.is_none_or(|c| t.status == Some(c))
                            && f.grpc_status.is_none_or(|c| t.grpc_status == Some(c))
                            && f.authority
                                .as_ref()
                                .is_none_or(|a| t.authority.as_ref() == Some(a))
                    });
                    assert!(agrees, "{name} cap {cap} {key:?} stream {sid}: {f:?}");
                }
            }
        }
    }
}

/// One byte per syscall: the cursor carries frames across every boundary.
#[test]
fn byte_at_a_time_equals_whole() {
    for name in ["curl_get", "h2load", "grpc"] {
        let mut halves: BTreeMap<(u8, u8), (HalfConnection, Vec<Event>)> = BTreeMap::new();
        for (dir, conn, bytes) in records(name) {
            let (half, evs) = halves.entry((conn, dir)).or_insert_with(|| {
                (
                    if dir == b'C' {
                        HalfConnection::client()
                    } else {
                        HalfConnection::server()
                    },
                    Vec::new(),
                )
            });
            for b in &bytes {
                half.feed(std::slice::from_ref(b), 1, &mut |e| evs.push(e));
            }
        }
        let whole = events(name, usize::MAX);
        for (k, (_, evs)) in halves {
            assert_eq!(evs, whole[&k].0, "{name} {k:?}");
        }
    }
}

#[test]
fn lost_framing_is_found_again_at_a_frame_boundary() {
    // A server direction: SETTINGS, then a syscall whose frames run past
    // the cap, then a syscall that starts with a frame.
    let mut h = HalfConnection::server();
    let mut evs = Vec::new();
    h.feed(&[0, 0, 0, 4, 0, 0, 0, 0, 0], 9, &mut |e| evs.push(e));
    let mut big = Vec::new();
    big.extend_from_slice(&[0, 0, 1, 1, 5, 0, 0, 0, 1, 0x88]); // HEADERS :status 200
    big.extend_from_slice(&[0, 0, 100, 0, 0, 0, 0, 0, 3]);
    big.extend(std::iter::repeat_n(b'x', 100));
    big.extend_from_slice(&[0, 0, 1, 1, 5, 0, 0, 0, 5, 0x8d]); // past the cap
    h.feed(&big[..30], big.len() as u64, &mut |e| evs.push(e));
    assert!(h.framing_lost());
    // Starts mid-payload: not taken as frames.
    h.feed(b"xxxxxxxxxxxxxxxxxxxx", 20, &mut |e| evs.push(e));
    assert!(h.framing_lost());
    h.feed(&[0, 0, 1, 1, 5, 0, 0, 0, 7, 0x8d], 10, &mut |e| evs.push(e));
    assert!(!h.framing_lost());
    assert_eq!(h.stats.resyncs, 1);
    let hs = headers(&evs);
    assert_eq!(hs.len(), 2);
    assert_eq!((hs[0].0, hs[0].2.status), (1, Some(200)));
    assert_eq!((hs[1].0, hs[1].2.status), (7, Some(404)));
}
