//! One captured frame to the transport facts the flow table needs: the two
//! endpoints, the IP length, TCP sequence, acknowledgement, window and
//! flags, and the payload, borrowed.
//!
//! Link layers: Ethernet (what `tcpdump -i lo` and `tshark -i lo` write),
//! Linux cooked capture v1 and v2 (`-i any`), raw IP, and BSD loopback
//! (`DLT_NULL`/`DLT_LOOP`). Headers are walked by `etherparse`, which
//! checks lengths and never copies.

use causeway_model::L4Protocol;
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_file::DataLink;
use std::net::{IpAddr, SocketAddr};

/// TCP header facts that reassembly, flow roles and flow analysis use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFacts {
    pub seq: u32,
    /// The acknowledgement number (meaningful when `ack` is set).
    pub ack_seq: u32,
    /// The advertised window as sent (not scaled).
    pub window: u16,
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
}

/// A TCP segment or UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    pub l4: L4Protocol,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// `None` for UDP.
    pub tcp: Option<TcpFacts>,
    /// Bytes of the IP packet: headers and payload.
    pub ip_len: u32,
    pub payload: &'a [u8],
}

/// Why a frame gave no segment. None of these stop a replay; each is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("link type {0:?} not supported")]
    LinkType(DataLink),
    #[error("malformed headers")]
    Malformed,
    #[error("not IPv4 or IPv6")]
    NotIp,
    /// An IP fragment: the transport header is in another frame.
    #[error("IP fragment")]
    Fragment,
    #[error("neither TCP nor UDP")]
    NotTcpOrUdp,
}

/// Decodes one frame of the given link type.
pub fn decode(link: DataLink, frame: &[u8]) -> Result<Segment<'_>, PacketError> {
    let sliced = match link {
        DataLink::ETHERNET => SlicedPacket::from_ethernet(frame),
        DataLink::LINUX_SLL => SlicedPacket::from_linux_sll(frame),
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => SlicedPacket::from_ip(frame),
        // A 4-byte address family (host order for NULL, network order for
        // LOOP) before the IP header; the IP version nibble tells the rest.
        DataLink::NULL | DataLink::LOOP => {
            SlicedPacket::from_ip(frame.get(4..).ok_or(PacketError::Malformed)?)
        }
        // Linux cooked v2: 20 bytes, the protocol type first.
        DataLink::LINUX_SLL2 => {
            let proto = frame.get(..2).ok_or(PacketError::Malformed)?;
            let body = frame.get(20..).ok_or(PacketError::Malformed)?;
            match u16::from_be_bytes([proto[0], proto[1]]) {
                0x0800 | 0x86dd => SlicedPacket::from_ip(body),
                _ => return Err(PacketError::NotIp),
            }
        }
        other => return Err(PacketError::LinkType(other)),
    }
    .map_err(|_| PacketError::Malformed)?;
    let (src_ip, dst_ip, fragmented, ip_len): (IpAddr, IpAddr, bool, u32) = match &sliced.net {
        Some(NetSlice::Ipv4(v4)) => (
            v4.header().source_addr().into(),
            v4.header().destination_addr().into(),
            v4.payload().fragmented,
            u32::from(v4.header().total_len()),
        ),
        Some(NetSlice::Ipv6(v6)) => (
            v6.header().source_addr().into(),
            v6.header().destination_addr().into(),
            v6.payload().fragmented,
            40 + u32::from(v6.header().payload_length()),
        ),
        _ => return Err(PacketError::NotIp),
    };
    if fragmented {
        return Err(PacketError::Fragment);
    }
    match sliced.transport {
        Some(TransportSlice::Tcp(t)) => Ok(Segment {
            l4: L4Protocol::Tcp,
            src: SocketAddr::new(src_ip, t.source_port()),
            dst: SocketAddr::new(dst_ip, t.destination_port()),
            tcp: Some(TcpFacts {
                seq: t.sequence_number(),
                ack_seq: t.acknowledgment_number(),
                window: t.window_size(),
                syn: t.syn(),
                ack: t.ack(),
                fin: t.fin(),
                rst: t.rst(),
            }),
            ip_len,
            payload: t.payload(),
        }),
        Some(TransportSlice::Udp(u)) => Ok(Segment {
            l4: L4Protocol::Udp,
            src: SocketAddr::new(src_ip, u.source_port()),
            dst: SocketAddr::new(dst_ip, u.destination_port()),
            tcp: None,
            ip_len,
            payload: u.payload(),
        }),
        _ => Err(PacketError::NotTcpOrUdp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn tcp_frame(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([127, 0, 0, 1], [127, 0, 0, 2], 64)
            .tcp(40000, 80, 1000, 65535)
            .ack(5)
            .psh();
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    #[test]
    fn ethernet_tcp() {
        let f = tcp_frame(b"GET / HTTP/1.1\r\n\r\n");
        let s = decode(DataLink::ETHERNET, &f).unwrap();
        assert_eq!(s.l4, L4Protocol::Tcp);
        assert_eq!(s.src, "127.0.0.1:40000".parse().unwrap());
        assert_eq!(s.dst, "127.0.0.2:80".parse().unwrap());
        let t = s.tcp.unwrap();
        assert_eq!(t.seq, 1000);
        assert_eq!((t.ack_seq, t.window), (5, 65535));
        assert_eq!(s.ip_len as usize, f.len() - 14);
        assert!(t.ack && !t.syn && !t.fin && !t.rst);
        assert_eq!(s.payload, b"GET / HTTP/1.1\r\n\r\n");
    }

    #[test]
    fn raw_ipv6_udp() {
        let b = PacketBuilder::ipv6([0; 16], [0; 16], 64).udp(5353, 53);
        let mut f = Vec::new();
        b.write(&mut f, b"\x12\x34").unwrap();
        let s = decode(DataLink::RAW, &f).unwrap();
        assert_eq!(s.l4, L4Protocol::Udp);
        assert_eq!(s.dst.port(), 53);
        assert_eq!(s.payload, b"\x12\x34");
        assert!(s.tcp.is_none());
        assert_eq!(s.ip_len, 40 + 8 + 2);
    }

    #[test]
    fn truncated_and_foreign_frames_are_errors() {
        let f = tcp_frame(b"x");
        for cut in 0..f.len() - 1 {
            // Never a panic; a cut inside the headers is malformed.
            let _ = decode(DataLink::ETHERNET, &f[..cut]);
        }
        assert_eq!(
            decode(DataLink::ETHERNET, &f[..20]),
            Err(PacketError::Malformed)
        );
        assert!(matches!(
            decode(DataLink::AX25, &f),
            Err(PacketError::LinkType(_))
        ));
        assert_eq!(
            decode(DataLink::LINUX_SLL2, &[0x08, 0x06, 0, 0]),
            Err(PacketError::Malformed)
        );
    }
}
