//! Flow reports as wire rows ([`FlowRow`]): the model's [`Flow`] with its
//! two ends' services as tag ids, as network spans name them (the client
//! by its address, the server by address and port).

use super::{note_tag, Encoder, ExportStats};
use causeway_model::tags::TagKind;
use causeway_model::wire::FlowRow;
use causeway_model::Flow;
use std::sync::atomic::Ordering::Relaxed;

impl Encoder {
    /// The row of a flow report; its services' strings are noted to be
    /// sent once, like every tag.
    pub fn encode_flow(&mut self, f: &Flow) -> FlowRow {
        let client = f.client.ip().to_string();
        let server = f.server.ip().to_string();
        let service_0 = note_tag(
            &mut self.sent,
            &mut self.new_tags,
            TagKind::Service,
            &client,
        );
        let service_1 = note_tag(
            &mut self.sent,
            &mut self.new_tags,
            TagKind::Service,
            &format!("{server}:{}", f.server.port()),
        );
        let [c, s] = &f.sides;
        FlowRow {
            flow_id: f.flow_id,
            l4_protocol: f.l4_protocol.code(),
            src_ip: client,
            src_port: u32::from(f.client.port()),
            dst_ip: server,
            dst_port: u32::from(f.server.port()),
            interface: f.interface.clone(),
            start_time_us: f.start_time_us,
            end_time_us: f.end_time_us,
            period_start_us: f.period_start_us,
            new_flow: f.new_flow,
            close_type: f.close_type.code(),
            packets_0: c.packets,
            packets_1: s.packets,
            bytes_0: c.bytes,
            bytes_1: s.bytes,
            payload_bytes_0: c.payload_bytes,
            payload_bytes_1: s.payload_bytes,
            total_packets_0: f.total_packets[0],
            total_packets_1: f.total_packets[1],
            total_bytes_0: f.total_bytes[0],
            total_bytes_1: f.total_bytes[1],
            retransmissions_0: c.retransmissions,
            retransmissions_1: s.retransmissions,
            out_of_order_0: c.out_of_order,
            out_of_order_1: s.out_of_order,
            zero_windows_0: c.zero_windows,
            zero_windows_1: s.zero_windows,
            resets_0: c.resets,
            resets_1: s.resets,
            syns_0: c.syns,
            syns_1: s.syns,
            fins_0: c.fins,
            fins_1: s.fins,
            rtt_client_us: f.rtt_client_us,
            rtt_server_us: f.rtt_server_us,
            srt_sum_us: f.srt_sum_us,
            srt_count: f.srt_count,
            srt_max_us: f.srt_max_us,
            l7_protocol: f.l7_protocol.code(),
            l7_requests: f.l7_requests,
            l7_errors: f.l7_errors,
            service_0,
            service_1,
        }
    }
}

impl ExportStats {
    /// One line for people about the flow reports.
    pub fn flows_summary(&self) -> String {
        format!(
            "{} flow reports exported: {} acknowledged, {} dropped, {} refused",
            self.flows_in.load(Relaxed),
            self.flows_acked.load(Relaxed),
            self.flows_dropped.load(Relaxed),
            self.flows_refused.load(Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use causeway_model::tags::tag_id;
    use causeway_model::{CloseType, FlowSide, L4Protocol, L7Protocol};

    #[test]
    fn a_flow_report_becomes_a_row_with_address_services() {
        let f = Flow {
            flow_id: 9,
            l4_protocol: L4Protocol::Tcp,
            client: "10.0.0.1:40000".parse().unwrap(),
            server: "10.0.0.2:80".parse().unwrap(),
            interface: "eth0".into(),
            start_time_us: 1,
            end_time_us: 5,
            period_start_us: 1,
            new_flow: true,
            close_type: CloseType::ServerReset,
            sides: [
                FlowSide {
                    packets: 3,
                    bytes: 180,
                    syns: 1,
                    retransmissions: 1,
                    ..FlowSide::default()
                },
                FlowSide {
                    packets: 2,
                    resets: 1,
                    zero_windows: 4,
                    ..FlowSide::default()
                },
            ],
            total_packets: [3, 2],
            total_bytes: [180, 80],
            rtt_client_us: 7,
            rtt_server_us: 8,
            srt_sum_us: 0,
            srt_count: 0,
            srt_max_us: 0,
            l7_protocol: L7Protocol::Http,
            l7_requests: 2,
            l7_errors: 1,
        };
        let mut e = Encoder::new("h");
        let r = e.encode_flow(&f);
        assert_eq!((r.src_ip.as_str(), r.src_port), ("10.0.0.1", 40000));
        assert_eq!((r.dst_ip.as_str(), r.dst_port), ("10.0.0.2", 80));
        assert_eq!(r.close_type, CloseType::ServerReset.code());
        assert_eq!((r.packets_0, r.bytes_0, r.syns_0), (3, 180, 1));
        assert_eq!((r.resets_1, r.zero_windows_1), (1, 4));
        assert_eq!(r.service_0, tag_id(TagKind::Service, "10.0.0.1"));
        assert_eq!(r.service_1, tag_id(TagKind::Service, "10.0.0.2:80"));
        assert_eq!(e.take_new_tags().len(), 2);
        e.encode_flow(&f);
        assert!(e.take_new_tags().is_empty(), "each string goes once");
    }
}
