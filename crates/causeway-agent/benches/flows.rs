//! What flow tracking costs per packet and per flow (`capture::flows`,
//! `capture::tcp_state`), and how fast a capture file replays through the
//! whole network pipeline (`capture::replay`: decoding, flow tracking,
//! reassembly, L7 parsing, pairing). Figures: bench/flows.md.
//!
//! - `flows/track_fixture_frames`: the committed capture of the flow tests
//!   (`crates/causeway/tests/fixtures/flows/flows.pcapng`: 677 frames of
//!   HTTP, slow readers, resets, refused and dropped SYNs, UDP), held in
//!   memory, each frame decoded and put through a `FlowTable` whose events
//!   go nowhere; a fresh table per pass. Elements: frames.
//! - `flows/short_tcp_flows`: generated connections of 8 packets each
//!   (handshake, a request, a response, FINs both ways, last ACK) on
//!   distinct ports, all in one table, then its sweep; elements: flows.
//! - `flows/replay_fixture`: `capture::replay` of the same file from
//!   memory into a network `Pipeline` and a sink that drops spans and flow
//!   reports. Throughput in bytes of the file.

use causeway_agent::capture::flows::{FlowConfig, FlowTable};
use causeway_agent::capture::{packet, replay, ReplayConfig};
use causeway_agent::{Pipeline, PipelineConfig, WallClock};
use causeway_model::{Flow, ObservationPoint, Span};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use etherparse::PacketBuilder;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::DataLink;
use std::hint::black_box;
use std::path::Path;

fn fixture() -> Vec<u8> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../causeway/tests/fixtures/flows/flows.pcapng");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fixture's frames: (timestamp ns, link type, bytes).
fn frames(file: &[u8]) -> Vec<(u64, DataLink, Vec<u8>)> {
    let mut reader = PcapNgReader::new(file).expect("pcapng");
    let mut links = Vec::new();
    let mut out = Vec::new();
    while let Some(block) = reader.next_block() {
        match block.expect("block") {
            Block::InterfaceDescription(idb) => links.push(idb.linktype),
            Block::EnhancedPacket(epb) => out.push((
                // tshark wrote nanosecond units (if_tsresol 9), which the
                // reader hands over as they are.
                epb.timestamp.as_nanos() as u64,
                links[epb.interface_id as usize],
                epb.data.to_vec(),
            )),
            _ => {}
        }
    }
    out
}

/// One connection's 8 frames, client port `port`.
fn connection(port: u16, t0: u64) -> Vec<(u64, Vec<u8>)> {
    let (c, s) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    let mut out = Vec::new();
    let mut frame = |from_client: bool, seq: u32, ack: u32, flags: &str, payload: &[u8], t: u64| {
        let b = if from_client {
            PacketBuilder::ethernet2([1; 6], [2; 6])
                .ipv4(c, s, 64)
                .tcp(port, 80, seq, 64_000)
        } else {
            PacketBuilder::ethernet2([2; 6], [1; 6])
                .ipv4(s, c, 64)
                .tcp(80, port, seq, 64_000)
        };
        let b = if flags.contains('S') { b.syn() } else { b };
        let b = if flags.contains('A') { b.ack(ack) } else { b };
        let b = if flags.contains('F') { b.fin() } else { b };
        let b = if flags.contains('P') { b.psh() } else { b };
        let mut v = Vec::new();
        b.write(&mut v, payload).expect("build");
        out.push((t, v));
    };
    let req = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let (ci, si) = (1000u32, 5000u32);
    frame(true, ci, 0, "S", b"", t0);
    frame(false, si, ci + 1, "SA", b"", t0 + 20_000);
    frame(true, ci + 1, si + 1, "A", b"", t0 + 40_000);
    frame(true, ci + 1, si + 1, "PA", req, t0 + 50_000);
    let c2 = ci + 1 + req.len() as u32;
    frame(false, si + 1, c2, "PA", resp, t0 + 150_000);
    let s2 = si + 1 + resp.len() as u32;
    frame(true, c2, s2, "FA", b"", t0 + 200_000);
    frame(false, s2, c2 + 1, "FA", b"", t0 + 220_000);
    frame(true, c2 + 1, s2 + 1, "A", b"", t0 + 240_000);
    out
}

struct Null;

impl causeway_agent::SpanSink for Null {
    fn on_span(&mut self, span: Span) {
        black_box(span);
    }
    fn on_flow(&mut self, flow: Flow) {
        black_box(flow);
    }
}

fn bench(c: &mut Criterion) {
    let file = fixture();
    let fixture_frames = frames(&file);
    let mut g = c.benchmark_group("flows");

    g.throughput(Throughput::Elements(fixture_frames.len() as u64));
    g.bench_function("track_fixture_frames", |b| {
        b.iter_batched(
            || FlowTable::new(FlowConfig::default()),
            |mut table| {
                for (ts, link, data) in &fixture_frames {
                    if let Ok(seg) = packet::decode(*link, data) {
                        table.on_packet(*ts, 0, &seg, &mut |e| {
                            black_box(e);
                        });
                    }
                }
                table.finish(u64::MAX / 2, &mut |e| {
                    black_box(e);
                });
                black_box(table.take_reports())
            },
            BatchSize::SmallInput,
        )
    });

    const FLOWS: u16 = 2_000;
    let generated: Vec<(u64, Vec<u8>)> = (0..FLOWS)
        .flat_map(|i| connection(20_000 + i, 1_000_000_000 + u64::from(i) * 100_000))
        .collect();
    g.throughput(Throughput::Elements(u64::from(FLOWS)));
    g.bench_function("short_tcp_flows", |b| {
        b.iter_batched(
            || FlowTable::new(FlowConfig::default()),
            |mut table| {
                for (ts, data) in &generated {
                    if let Ok(seg) = packet::decode(DataLink::ETHERNET, data) {
                        table.on_packet(*ts, 0, &seg, &mut |e| {
                            black_box(e);
                        });
                    }
                }
                // Past the linger: every flow is reported.
                table.tick(10_000_000_000_000, &mut |e| {
                    black_box(e);
                });
                let reports = table.take_reports();
                assert_eq!(reports.len(), usize::from(FLOWS));
                black_box(reports)
            },
            BatchSize::SmallInput,
        )
    });

    g.throughput(Throughput::Bytes(file.len() as u64));
    g.bench_function("replay_fixture", |b| {
        b.iter(|| {
            let mut pipeline = Pipeline::new(
                PipelineConfig {
                    observation_point: Some(ObservationPoint::Network),
                    ..PipelineConfig::default()
                },
                WallClock::identity(),
            );
            let stats = replay(
                &file[..],
                &ReplayConfig::default(),
                &mut pipeline,
                &mut Null,
            )
            .expect("replay");
            black_box(stats)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
