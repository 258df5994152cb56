//! RFC 7541 Appendix C examples, error cases and loss of sync.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn decode_all(d: &mut Decoder, block: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    d.decode(block, true, &mut |n, v| {
        out.push((
            String::from_utf8(n.to_vec()).unwrap(),
            String::from_utf8(v.to_vec()).unwrap(),
        ))
    })
    .unwrap();
    out
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn integers_c1() {
    assert_eq!(integer(&[0b000_01010], 5), Ok((10, 1)));
    assert_eq!(
        integer(&[0b000_11111, 0b1001_1010, 0b0000_1010], 5),
        Ok((1337, 3))
    );
    assert_eq!(integer(&[42], 8), Ok((42, 1)));
    assert_eq!(integer(&[0x1f, 0x80], 5), Err(HpackError::Truncated));
    assert_eq!(
        integer(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0x7f], 5),
        Err(HpackError::IntegerOverflow)
    );
}

#[test]
fn huffman_table_is_rfc_appendix_b() {
    let t = &huffman::TABLE;
    for (sym, code, len) in [
        (0usize, 0x1ff8u32, 13u8),
        (1, 0x7fffd8, 23),
        (2, 0xfffffe2, 28),
        (10, 0x3ffffffc, 30),
        (b' ' as usize, 0x14, 6),
        (b'/' as usize, 0x18, 6),
        (b'0' as usize, 0x0, 5),
        (b'a' as usize, 0x3, 5),
        (b'z' as usize, 0x7b, 7),
        (b'~' as usize, 0x1ffd, 13),
        (127, 0xffffffc, 28),
        (200, 0x3ffffe2, 26),
        (255, 0x3ffffee, 26),
        (256, 0x3fffffff, 30),
    ] {
        assert_eq!(
            (t.code[sym], huffman::CODE_LEN[sym]),
            (code, len),
            "symbol {sym}"
        );
    }
}

#[test]
fn huffman_round_trip_every_byte() {
    let all: Vec<u8> = (0..=255u8).collect();
    let mut enc = Vec::new();
    huffman::encode(&all, &mut enc);
    assert_eq!(enc.len(), huffman::encoded_len(&all));
    let mut dec = Vec::new();
    huffman::decode(&enc, &mut dec).unwrap();
    assert_eq!(dec, all);
}

#[test]
fn huffman_errors() {
    let mut out = Vec::new();
    // EOS itself (30 ones) then padding.
    assert_eq!(
        huffman::decode(&[0xff, 0xff, 0xff, 0xff], &mut out),
        Err(huffman::HuffmanError::InvalidCode)
    );
    // 'a' (00011) then padding of zeros.
    assert_eq!(
        huffman::decode(&[0b0001_1000], &mut out),
        Err(huffman::HuffmanError::InvalidPadding)
    );
    // A whole byte of padding ones after a symbol.
    assert_eq!(
        huffman::decode(&[0b0001_1111, 0xff], &mut out),
        Err(huffman::HuffmanError::InvalidPadding)
    );
}

#[test]
fn field_representations_c2() {
    let mut d = Decoder::new();
    let got = decode_all(
        &mut d,
        &hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"),
    );
    assert_eq!(got, pairs(&[("custom-key", "custom-header")]));
    assert_eq!((d.len(), d.size()), (1, 55));

    let mut d = Decoder::new();
    let got = decode_all(&mut d, &hex("040c 2f73 616d 706c 652f 7061 7468"));
    assert_eq!(got, pairs(&[(":path", "/sample/path")]));
    assert!(d.is_empty());

    let mut d = Decoder::new();
    let got = decode_all(&mut d, &hex("1008 7061 7373 776f 7264 0673 6563 7265 74"));
    assert_eq!(got, pairs(&[("password", "secret")]));
    assert!(d.is_empty());

    let mut d = Decoder::new();
    assert_eq!(decode_all(&mut d, &[0x82]), pairs(&[(":method", "GET")]));
}

fn requests(blocks: [&str; 3]) {
    let mut d = Decoder::new();
    let first = [
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "www.example.com"),
    ];
    assert_eq!(decode_all(&mut d, &hex(blocks[0])), pairs(&first));
    assert_eq!(d.size(), 57);
    let mut second = first.to_vec();
    second.push(("cache-control", "no-cache"));
    assert_eq!(decode_all(&mut d, &hex(blocks[1])), pairs(&second));
    assert_eq!(d.size(), 110);
    let third = [
        (":method", "GET"),
        (":scheme", "https"),
        (":path", "/index.html"),
        (":authority", "www.example.com"),
        ("custom-key", "custom-value"),
    ];
    assert_eq!(decode_all(&mut d, &hex(blocks[2])), pairs(&third));
    assert_eq!((d.len(), d.size()), (3, 164));
    assert_eq!(
        d.dynamic_entry(62),
        Some((&b"custom-key"[..], &b"custom-value"[..]))
    );
}

#[test]
fn requests_without_huffman_c3() {
    requests([
        "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        "8286 84be 5808 6e6f 2d63 6163 6865",
        "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
    ]);
}

#[test]
fn requests_with_huffman_c4() {
    requests([
        "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
        "8286 84be 5886 a8eb 1064 9cbf",
        "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
    ]);
}

#[test]
fn responses_with_huffman_and_eviction_c6() {
    let mut d = Decoder::with_max_size(256);
    let date1 = "Mon, 21 Oct 2013 20:13:21 GMT";
    let first = [
        (":status", "302"),
        ("cache-control", "private"),
        ("date", date1),
        ("location", "https://www.example.com"),
    ];
    let b1 = hex(
        "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
         2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
    );
    assert_eq!(decode_all(&mut d, &b1), pairs(&first));
    assert_eq!((d.len(), d.size()), (4, 222));
    let mut second = first;
    second[0] = (":status", "307");
    assert_eq!(
        decode_all(&mut d, &hex("4883 640e ffc1 c0bf")),
        pairs(&second)
    );
    assert_eq!((d.len(), d.size()), (4, 222));
    let b3 = hex(
        "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
         77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
         9587 3160 65c0 03ed 4ee5 b106 3d50 07",
    );
    let third = [
        (":status", "200"),
        ("cache-control", "private"),
        ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
        ("location", "https://www.example.com"),
        ("content-encoding", "gzip"),
        (
            "set-cookie",
            "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
        ),
    ];
    assert_eq!(decode_all(&mut d, &b3), pairs(&third));
    assert_eq!((d.len(), d.size()), (3, 215));
}

#[test]
fn errors_not_panics() {
    for (block, err) in [
        (&[0x3f][..], HpackError::Truncated),
        (&[0x80], HpackError::InvalidIndex),
        (&[0xbe], HpackError::InvalidIndex),
        (&[0x82, 0x20], HpackError::LateSizeUpdate),
        (&[0x3f, 0xe1, 0xff, 0x04], HpackError::TableSizeTooLarge),
        (
            &[0x40, 0x85, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00],
            HpackError::InvalidHuffman,
        ),
        (&[0x04, 0x0c, b'/'], HpackError::Truncated),
        (
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            HpackError::IntegerOverflow,
        ),
    ] {
        let mut d = Decoder::new();
        assert_eq!(
            d.decode(block, true, &mut |_, _| {}),
            Err(err),
            "{block:x?}"
        );
        assert!(d.out_of_sync());
    }
}

#[test]
fn size_updates_evict_and_zero_resyncs() {
    let mut d = Decoder::new();
    decode_all(
        &mut d,
        &hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"),
    );
    assert_eq!(d.len(), 1);
    // Size update to 0 empties the table; to 4096 again at the same block start.
    assert_eq!(
        decode_all(&mut d, &[0x20, 0x3f, 0xe1, 0x1f, 0x82]),
        pairs(&[(":method", "GET")])
    );
    assert!(d.is_empty());
    assert_eq!(d.max_size(), 4096);
    d.lose_sync();
    assert!(d.out_of_sync());
    decode_all(&mut d, &[0x20]);
    assert!(!d.out_of_sync());
}

#[test]
fn after_loss_only_later_entries_are_trusted() {
    let mut d = Decoder::new();
    // Two entries known to the encoder, then the decoder misses a block.
    decode_all(
        &mut d,
        &hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"),
    );
    d.lose_sync();
    // A new literal with indexing is known at 62; the old one (now 63) is not.
    let mut got = Vec::new();
    let s = d
        .decode(
            &hex("400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65 be bf 82"),
            true,
            &mut |n, v| got.push((n.to_vec(), v.to_vec())),
        )
        .unwrap();
    assert_eq!(s.fields, 3);
    assert_eq!(s.unknown, 1);
    assert_eq!(got[1], (b"custom-key".to_vec(), b"custom-value".to_vec()));
    assert_eq!(got[2], (b":method".to_vec(), b"GET".to_vec()));
    // A literal whose name is an unknown entry, with indexing: its size is
    // unknown, so nothing dynamic is trusted after it.
    let s = d
        .decode(&[0x7f, 0x02, 0x01, b'x', 0xbe], true, &mut |_, _| {})
        .unwrap();
    assert_eq!((s.fields, s.unknown), (0, 2));
}

#[test]
fn cut_block_reports_fields_before_the_cut() {
    let block = hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d");
    let mut d = Decoder::new();
    let mut got = Vec::new();
    let s = d
        .decode(&block[..8], false, &mut |n, _| got.push(n.to_vec()))
        .unwrap();
    assert!(s.truncated);
    assert_eq!(
        got,
        vec![b":method".to_vec(), b":scheme".to_vec(), b":path".to_vec()]
    );
    assert!(d.out_of_sync());
}
