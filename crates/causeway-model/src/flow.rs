//! A flow record: one TCP connection or UDP conversation as the wire saw it
//! (DeepFlow's `l4_flow_log`), from packet capture.
//!
//! A flow is reported when it closes, and also periodically while it lives
//! (every report interval in which it carried packets), so a long-lived
//! connection shows up before it ends. Each report counts what happened
//! in its period (`period_start_us` to `end_time_us`): packets, bytes,
//! retransmissions and the rest add up over a flow's reports to its
//! totals; `total_packets` and `total_bytes` are running totals since the
//! flow began. The handshake's round-trip times are properties of the
//! flow and repeat in every report.
//!
//! Sides follow spans: `_0` / index 0 is the client (the sender of the
//! SYN, or of a UDP conversation's first datagram), `_1` the server; a
//! direction's figures are those of the packets that side sent.

use crate::{L4Protocol, L7Protocol};
use serde::Serialize;
use std::net::SocketAddr;

/// How a flow ended. The numbers are stored: never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseType {
    /// Not closed: a periodic report of a flow that lives on.
    #[default]
    Active,
    /// Both sides sent a FIN.
    Normal,
    /// The client reset an established connection.
    ClientReset,
    /// The server reset an established connection.
    ServerReset,
    /// Establish failure: the server answered the SYN with a reset (no
    /// listener: connection refused).
    Refused,
    /// Establish failure: the client's SYNs were never answered.
    SynTimeout,
    /// Establish failure: the server's SYN-ACK was never acknowledged.
    #[serde(rename = "synack_timeout")]
    SynAckTimeout,
    /// An established connection (or a UDP conversation) went quiet past
    /// the idle timeout without a close.
    Timeout,
    /// One side sent a FIN, the other never did before the idle timeout.
    HalfCloseTimeout,
    /// A new SYN reused the ports before the old connection was seen to close.
    PortReuse,
    /// Still open when capture stopped (or the capture file ended).
    CaptureEnd,
}

impl CloseType {
    pub const ALL: [CloseType; 11] = [
        CloseType::Active,
        CloseType::Normal,
        CloseType::ClientReset,
        CloseType::ServerReset,
        CloseType::Refused,
        CloseType::SynTimeout,
        CloseType::SynAckTimeout,
        CloseType::Timeout,
        CloseType::HalfCloseTimeout,
        CloseType::PortReuse,
        CloseType::CaptureEnd,
    ];

    /// The number stored (never renumber).
    pub fn code(self) -> u32 {
        match self {
            CloseType::Active => 0,
            CloseType::Normal => 1,
            CloseType::ClientReset => 2,
            CloseType::ServerReset => 3,
            CloseType::Refused => 4,
            CloseType::SynTimeout => 5,
            CloseType::SynAckTimeout => 6,
            CloseType::Timeout => 7,
            CloseType::HalfCloseTimeout => 8,
            CloseType::PortReuse => 9,
            CloseType::CaptureEnd => 10,
        }
    }

    /// The close type stored as `code` (unknown codes are `Active`).
    pub fn from_code(code: u32) -> CloseType {
        CloseType::ALL
            .into_iter()
            .find(|c| c.code() == code)
            .unwrap_or(CloseType::Active)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CloseType::Active => "active",
            CloseType::Normal => "normal",
            CloseType::ClientReset => "client_reset",
            CloseType::ServerReset => "server_reset",
            CloseType::Refused => "refused",
            CloseType::SynTimeout => "syn_timeout",
            CloseType::SynAckTimeout => "synack_timeout",
            CloseType::Timeout => "timeout",
            CloseType::HalfCloseTimeout => "half_close_timeout",
            CloseType::PortReuse => "port_reuse",
            CloseType::CaptureEnd => "capture_end",
        }
    }

    pub fn from_name(name: &str) -> Option<CloseType> {
        CloseType::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The connection was never established: refused, or a handshake that
    /// timed out.
    pub fn is_establish_failure(self) -> bool {
        matches!(
            self,
            CloseType::Refused | CloseType::SynTimeout | CloseType::SynAckTimeout
        )
    }

    /// A reset ended it (by either side, established or not).
    pub fn is_reset(self) -> bool {
        matches!(
            self,
            CloseType::ClientReset | CloseType::ServerReset | CloseType::Refused
        )
    }
}

impl std::fmt::Display for CloseType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one side sent during a report's period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FlowSide {
    pub packets: u64,
    /// IP bytes: headers and payload (the IP total length).
    pub bytes: u64,
    /// TCP or UDP payload bytes.
    pub payload_bytes: u64,
    /// Segments that repeat sequence space already sent (retransmissions,
    /// fast retransmissions, spurious retransmissions; SYN and FIN
    /// retransmissions too), by Wireshark's rules (`tcp.analysis.retransmission`).
    pub retransmissions: u64,
    /// Segments sent after a later one, within the handshake's RTT of it
    /// (`tcp.analysis.out_of_order`).
    pub out_of_order: u64,
    /// Segments advertising a zero receive window: this side could not
    /// take more (`tcp.analysis.zero_window`).
    pub zero_windows: u64,
    pub resets: u64,
    /// SYNs (client) or SYN-ACKs (server); more than one is a retry.
    pub syns: u64,
    pub fins: u64,
}

/// One report of one flow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flow {
    /// Unique per agent run; the same over all reports of a flow.
    pub flow_id: u64,
    pub l4_protocol: L4Protocol,
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// The interface the packets were captured on (empty when unknown: a
    /// capture file).
    pub interface: String,
    /// The flow's first packet, wall-clock microseconds since the epoch.
    pub start_time_us: u64,
    /// The flow's last packet so far (the close, for a final report).
    pub end_time_us: u64,
    /// Where this report's period began: the flow's start for its first
    /// report, else the end of the previous report's period.
    pub period_start_us: u64,
    /// The first report of this flow.
    pub new_flow: bool,
    /// `Active` for a periodic report; how it ended for the last.
    pub close_type: CloseType,
    /// `[client → server, server → client]`, over the period.
    pub sides: [FlowSide; 2],
    /// Packets and IP bytes each way since the flow began.
    pub total_packets: [u64; 2],
    pub total_bytes: [u64; 2],
    /// The handshake's round trip, split at the capture point: SYN-ACK to
    /// the client's ACK (the client half) and SYN to SYN-ACK (the server
    /// half), in microseconds rounded up; 0 when the handshake was not seen.
    pub rtt_client_us: u64,
    pub rtt_server_us: u64,
    /// Server response time over the period: from the client's last data
    /// segment to the server's first data segment after it.
    pub srt_sum_us: u64,
    pub srt_count: u64,
    pub srt_max_us: u64,
    /// What the flow's payload parsed as, and its spans over the period
    /// (requests, and those answered with a client or server error).
    pub l7_protocol: L7Protocol,
    pub l7_requests: u64,
    pub l7_errors: u64,
}

impl Flow {
    /// The whole handshake round trip at the capture point (0: not seen).
    pub fn rtt_us(&self) -> u64 {
        if self.rtt_client_us == 0 || self.rtt_server_us == 0 {
            0
        } else {
            self.rtt_client_us + self.rtt_server_us
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_types_round_trip_by_code_and_name() {
        for c in CloseType::ALL {
            assert_eq!(CloseType::from_code(c.code()), c);
            assert_eq!(CloseType::from_name(c.as_str()), Some(c));
            let json = serde_json::to_string(&c).expect("serialize");
            assert_eq!(json.trim_matches('"'), c.as_str());
        }
        let codes: std::collections::HashSet<u32> =
            CloseType::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(codes.len(), CloseType::ALL.len());
        assert!(CloseType::Refused.is_establish_failure());
        assert!(!CloseType::ServerReset.is_establish_failure());
    }
}
