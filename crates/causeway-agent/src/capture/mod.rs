//! Packet captures as a source: a pcap or pcapng file ([`replay`]) or
//! live interfaces ([`live`]) through the same pipeline as eBPF events,
//! observed at the `network` point, and flow records of every connection.
//!
//! ```text
//! pcap/pcapng  ─┐                                  ┌─► Pipeline ─► Span (network)
//!               ├─► packet::decode ─► FlowTable ───┤   (TCP reassembly, UDP datagrams)
//! AF_PACKET ring┘   (link, IP,        (tcp_state)  └─► Flow reports (l4_flow_log)
//!                    TCP/UDP)
//! ```
//!
//! This is how Causeway's parsers are checked against tshark on the very
//! same bytes, how a capture taken elsewhere is read offline, and how
//! traffic no process on this host makes or answers is seen.

pub mod flows;
pub mod live;
pub mod packet;
pub mod tcp_state;

use crate::pipeline::{Pipeline, SpanSink};
use causeway_model::{CloseType, Flow, L7Protocol, ResponseStatus, Span};
use flows::{FlowConfig, FlowStats, FlowTable};
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::{DataLink, PcapError};
use std::collections::HashMap;
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
#[derive(Debug, Clone, Default)]
pub struct ReplayConfig {
    /// Flow timeouts (capture time) and the payload bytes handed to the
    /// parsers per reassembled run (like the eBPF capture cap).
    pub flow: FlowConfig,
}

/// The spans of each flow, counted for its reports: the flows' spans come
/// out of the pipeline with the flow's id as their socket id.
#[derive(Debug, Default)]
pub struct L7Tally {
    by_flow: HashMap<u64, (L7Protocol, u64, u64)>,
}

impl L7Tally {
    fn note(&mut self, span: &Span) {
        let e = self
            .by_flow
            .entry(span.socket_id)
            .or_insert((L7Protocol::Unknown, 0, 0));
        e.0 = span.protocol;
        e.1 += 1;
        e.2 += u64::from(matches!(
            span.response_status,
            ResponseStatus::ClientError | ResponseStatus::ServerError
        ));
    }

    /// Puts the spans counted since the flow's last report into `flow`.
    pub fn fill(&mut self, flow: &mut Flow) {
        let Some(e) = self.by_flow.get_mut(&flow.flow_id) else {
            return;
        };
        flow.l7_protocol = e.0;
        flow.l7_requests = e.1;
        flow.l7_errors = e.2;
        if flow.close_type == CloseType::Active {
            (e.1, e.2) = (0, 0);
        } else {
            self.by_flow.remove(&flow.flow_id);
        }
    }

    /// The sink the pipeline should write to: counts, then hands on.
    pub fn counting<'a>(&'a mut self, sink: &'a mut dyn SpanSink) -> Counting<'a> {
        Counting { tally: self, sink }
    }
}

/// A [`SpanSink`] that counts each span into an [`L7Tally`] and hands it on.
pub struct Counting<'a> {
    tally: &'a mut L7Tally,
    sink: &'a mut dyn SpanSink,
}

impl SpanSink for Counting<'_> {
    fn on_span(&mut self, span: Span) {
        self.tally.note(&span);
        self.sink.on_span(span);
    }
    fn on_flow(&mut self, flow: Flow) {
        self.sink.on_flow(flow);
    }
    fn flush(&mut self) {
        self.sink.flush();
    }
}

/// Moves the table's reports to `sink`, each with its flow's span counts.
pub fn hand_over_reports(table: &mut FlowTable, tally: &mut L7Tally, sink: &mut dyn SpanSink) {
    for mut report in table.take_reports() {
        tally.fill(&mut report);
        sink.on_flow(report);
    }
}

/// Feeds a whole pcap or pcapng stream through `pipeline`, then closes every
/// flow, so each request ends up in exactly one span (a timeout span when
/// the capture holds no answer), and every flow in a final report
/// ([`SpanSink::on_flow`]). The pipeline should be set up with
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
        table: FlowTable::new(config.flow.clone()),
        tally: L7Tally::default(),
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
                    0,
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
                        run.frame(link, epb.interface_id, ns, &epb.data, pipeline, sink);
                    }
                    Block::SimplePacket(spb) => {
                        let link = interfaces.first().map_or(DataLink::ETHERNET, |i| i.0);
                        let ts = run.last_ns;
                        run.frame(link, 0, ts, &spb.data, pipeline, sink);
                    }
                    _ => {}
                }
            }
        }
        other => return Err(CaptureError::NotACapture(other)),
    }
    let Run {
        mut table,
        mut tally,
        mut stats,
        last_ns,
    } = run;
    {
        let mut counting = tally.counting(sink);
        table.finish(last_ns, &mut |e| pipeline.on_event(e, &mut counting));
    }
    hand_over_reports(&mut table, &mut tally, sink);
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
    tally: L7Tally,
    stats: ReplayStats,
    last_ns: u64,
}

impl Run {
    fn frame(
        &mut self,
        link: DataLink,
        interface: u32,
        ts_ns: u64,
        data: &[u8],
        pipeline: &mut Pipeline,
        sink: &mut dyn SpanSink,
    ) {
        self.stats.frames += 1;
        self.last_ns = self.last_ns.max(ts_ns);
        let mut counting = self.tally.counting(sink);
        match packet::decode(link, data) {
            Ok(seg) => {
                self.table.on_packet(ts_ns, interface, &seg, &mut |e| {
                    pipeline.on_event(e, &mut counting)
                });
            }
            Err(packet::PacketError::Malformed) => self.stats.malformed_frames += 1,
            Err(_) => self.stats.skipped_frames += 1,
        }
        pipeline.tick(ts_ns, &mut counting);
        hand_over_reports(&mut self.table, &mut self.tally, sink);
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
