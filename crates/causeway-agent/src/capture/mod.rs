//! Packet captures as a source: a pcap or pcapng file through the same
//! pipeline as live eBPF events, observed at the `network` point.
//!
//! ```text
//! pcap/pcapng ─► frames ─► packet::decode ─► FlowTable (TCP reassembly, ─► Pipeline ─► Span
//!                          (link, IP, TCP/UDP)  UDP datagrams)
//! ```
//!
//! This is how Causeway's parsers are checked against tshark on the very
//! same bytes, and how a capture taken elsewhere is read offline.

pub mod flows;
pub mod packet;

use crate::pipeline::{Pipeline, SpanSink};
use flows::{FlowStats, FlowTable};
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::{DataLink, PcapError};
use std::io::Read;

/// Why a capture could not be read on. Frames that do not decode are not
/// errors: they are counted in [`ReplayStats`] and skipped.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("reading the capture: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a pcap or pcapng file (magic {0:02x?})")]
    NotACapture([u8; 4]),
    #[error("malformed capture file: {0}")]
    Format(#[from] PcapError),
}

/// What a replay read and what it made of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayStats {
    pub frames: u64,
    /// Frames that were not TCP or UDP over IP (ARP, ICMP, fragments, ...).
    pub skipped_frames: u64,
    /// Frames whose headers were cut or inconsistent.
    pub malformed_frames: u64,
    pub flows: FlowStats,
}

/// Settings of a replay.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    /// Payload bytes handed to the parsers per reassembled run, like the
    /// eBPF capture cap.
    pub payload_cap: usize,
    /// A flow without packets for this long (capture time) is closed.
    pub flow_idle_close_ns: u64,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        ReplayConfig {
            payload_cap: 16 * 1024,
            flow_idle_close_ns: 300_000_000_000,
        }
    }
}

/// Feeds a whole pcap or pcapng stream through `pipeline`, then closes every
/// flow, so each request ends up in exactly one span (a timeout span when
/// the capture holds no answer). The pipeline should be set up with
/// `observation_point: Some(Network)` and a `WallClock::identity()`, since
/// capture timestamps are wall-clock already.
pub fn replay<R: Read>(
    mut input: R,
    config: &ReplayConfig,
    pipeline: &mut Pipeline,
    sink: &mut dyn SpanSink,
) -> Result<ReplayStats, CaptureError> {
    let mut magic = [0u8; 4];
    input.read_exact(&mut magic)?;
    let chained = std::io::Cursor::new(magic).chain(input);
    let mut run = Run {
        table: FlowTable::new(config.payload_cap, config.flow_idle_close_ns),
        stats: ReplayStats::default(),
        last_ns: 0,
    };
    match magic {
        [0xd4, 0xc3, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0xc3, 0xd4]
        | [0x4d, 0x3c, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0x3c, 0x4d] => {
            let mut reader = PcapReader::new(chained)?;
            let link = reader.header().datalink;
            while let Some(packet) = reader.next_packet() {
                let packet = packet?;
                run.frame(
                    link,
                    packet.timestamp.as_nanos() as u64,
                    &packet.data,
                    pipeline,
                    sink,
                );
            }
        }
        [0x0a, 0x0d, 0x0d, 0x0a] => {
            let mut reader = PcapNgReader::new(chained)?;
            // (link type, nanoseconds per timestamp unit as a ratio)
            let mut interfaces: Vec<(DataLink, TsUnit)> = Vec::new();
            while let Some(block) = reader.next_block() {
                match block? {
                    Block::SectionHeader(_) => interfaces.clear(),
                    Block::InterfaceDescription(idb) => {
                        let unit = idb
                            .options
                            .iter()
                            .find_map(|o| match o {
                                InterfaceDescriptionOption::IfTsResol(r) => Some(TsUnit(*r)),
                                _ => None,
                            })
                            .unwrap_or(TsUnit(6));
                        interfaces.push((idb.linktype, unit));
                    }
                    Block::EnhancedPacket(epb) => {
                        let Some(&(link, unit)) = interfaces.get(epb.interface_id as usize) else {
                            run.stats.malformed_frames += 1;
                            continue;
                        };
                        // The reader hands over the raw 64-bit count of
                        // units as nanoseconds; scale by the interface's unit.
                        let ns = unit.to_ns(epb.timestamp.as_nanos() as u64);
                        run.frame(link, ns, &epb.data, pipeline, sink);
                    }
                    Block::SimplePacket(spb) => {
                        let link = interfaces.first().map_or(DataLink::ETHERNET, |i| i.0);
                        let ts = run.last_ns;
                        run.frame(link, ts, &spb.data, pipeline, sink);
                    }
                    _ => {}
                }
            }
        }
        other => return Err(CaptureError::NotACapture(other)),
    }
    let Run {
        mut table,
        mut stats,
        last_ns,
    } = run;
    table.finish(last_ns, &mut |e| pipeline.on_event(e, sink));
    sink.flush();
    stats.flows = table.stats().clone();
    Ok(stats)
}

/// A pcapng `if_tsresol`: 10^-n seconds, or 2^-n when the high bit is set.
#[derive(Debug, Clone, Copy)]
struct TsUnit(u8);

impl TsUnit {
    fn to_ns(self, units: u64) -> u64 {
        let n = u32::from(self.0 & 0x7f);
        if self.0 & 0x80 != 0 {
            ((units as u128 * 1_000_000_000) >> n.min(127)) as u64
        } else if n <= 9 {
            units.saturating_mul(10u64.pow(9 - n))
        } else {
            units / 10u64.saturating_pow(n - 9)
        }
    }
}

struct Run {
    table: FlowTable,
    stats: ReplayStats,
    last_ns: u64,
}

impl Run {
    fn frame(
        &mut self,
        link: DataLink,
        ts_ns: u64,
        data: &[u8],
        pipeline: &mut Pipeline,
        sink: &mut dyn SpanSink,
    ) {
        self.stats.frames += 1;
        self.last_ns = self.last_ns.max(ts_ns);
        match packet::decode(link, data) {
            Ok(seg) => {
                self.table
                    .on_segment(ts_ns, &seg, &mut |e| pipeline.on_event(e, sink));
            }
            Err(packet::PacketError::Malformed) => self.stats.malformed_frames += 1,
            Err(_) => self.stats.skipped_frames += 1,
        }
        pipeline.tick(ts_ns, sink);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_units() {
        assert_eq!(TsUnit(6).to_ns(1_500_000), 1_500_000_000);
        assert_eq!(TsUnit(9).to_ns(7), 7);
        assert_eq!(TsUnit(12).to_ns(7_000), 7);
        assert_eq!(TsUnit(0x80 | 10).to_ns(1024), 1_000_000_000);
    }

    #[test]
    fn not_a_capture_is_a_clear_error() {
        let mut p = Pipeline::new(Default::default(), crate::WallClock::identity());
        let mut sink = |_s: causeway_model::Span| {};
        let e = replay(
            &b"GET / HTTP/1.1\r\n"[..],
            &ReplayConfig::default(),
            &mut p,
            &mut sink,
        );
        assert!(matches!(e, Err(CaptureError::NotACapture(_))), "{e:?}");
        let e = replay(
            &b"\xd4\xc3"[..],
            &ReplayConfig::default(),
            &mut p,
            &mut sink,
        );
        assert!(matches!(e, Err(CaptureError::Io(_))), "{e:?}");
    }
}
