//! Decoding of the records the BPF programs put in the ring buffer.
//!
//! The layout is `struct event_hdr` in `bpf/causeway.bpf.c` (128 bytes, native
//! endianness) followed, for data events, by `cap_len` payload bytes. Fields are
//! read by offset from the byte slice: no `unsafe`, and the payload is borrowed.

use causeway_model::{
    Comm, DataEvent, Direction, FiveTuple, L4Protocol, SocketClose, SocketEvent, SocketOpen,
    SocketRole, Syscall,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Size of `struct event_hdr`.
pub const HEADER_LEN: usize = 128;

const EV_DATA: u8 = 1;
const EV_OPEN: u8 = 2;
const EV_CLOSE: u8 = 3;
/// `event_hdr.flags`: the payload is TLS plaintext from a library uprobe.
const F_TLS: u8 = 1;

/// A record that does not match the layout the BPF side writes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {0} bytes is shorter than the {HEADER_LEN}-byte header")]
    Short(usize),
    #[error("record says {claimed} payload bytes but carries {present}")]
    PayloadLength { claimed: usize, present: usize },
    #[error("unknown event kind {0}")]
    Kind(u8),
    #[error("unknown syscall number {0}")]
    Syscall(u8),
    #[error("unknown direction {0}")]
    Direction(u8),
}

struct Header<'a>(&'a [u8; HEADER_LEN]);

impl Header<'_> {
    fn u64(&self, off: usize) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[off..off + 8]);
        u64::from_ne_bytes(b)
    }
    fn u32(&self, off: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.0[off..off + 4]);
        u32::from_ne_bytes(b)
    }
    fn u16(&self, off: usize) -> u16 {
        u16::from_ne_bytes([self.0[off], self.0[off + 1]])
    }
    fn addr(&self, off: usize, family: u8, port: u16) -> SocketAddr {
        let raw = &self.0[off..off + 16];
        let ip = if family == 6 {
            let mut b = [0u8; 16];
            b.copy_from_slice(raw);
            let v6 = Ipv6Addr::from(b);
            // Dual-stack sockets talk IPv4 through mapped addresses; show them as IPv4.
            match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            }
        } else {
            IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]))
        };
        SocketAddr::new(ip, port)
    }
    fn tuple(&self) -> FiveTuple {
        let family = self.0[64];
        let l4 = if self.0[65] == 17 {
            L4Protocol::Udp
        } else {
            L4Protocol::Tcp
        };
        FiveTuple {
            l4,
            local: self.addr(72, family, self.u16(56)),
            remote: self.addr(88, family, self.u16(58)),
        }
    }
    fn comm(&self) -> Comm {
        let mut c = [0u8; 16];
        c.copy_from_slice(&self.0[104..120]);
        Comm::new(c)
    }
    fn role(&self) -> SocketRole {
        match self.0[63] {
            1 => SocketRole::Client,
            2 => SocketRole::Server,
            _ => SocketRole::Unknown,
        }
    }
}

/// Decodes one ring buffer record.
pub fn decode(record: &[u8]) -> Result<SocketEvent<'_>, DecodeError> {
    let (head, rest) = record
        .split_first_chunk::<HEADER_LEN>()
        .ok_or(DecodeError::Short(record.len()))?;
    let h = Header(head);
    let pid = h.u32(32);
    match h.0[60] {
        EV_DATA => {
            let cap_len = h.u32(52) as usize;
            let payload = rest.get(..cap_len).ok_or(DecodeError::PayloadLength {
                claimed: cap_len,
                present: rest.len(),
            })?;
            let direction = match h.0[61] {
                0 => Direction::Ingress,
                1 => Direction::Egress,
                d => return Err(DecodeError::Direction(d)),
            };
            let syscall = Syscall::from_u8(h.0[62]).ok_or(DecodeError::Syscall(h.0[62]))?;
            Ok(SocketEvent::Data(DataEvent {
                pid,
                tid: h.u32(36),
                comm: h.comm(),
                socket_id: h.u64(0),
                role: h.role(),
                tuple: h.tuple(),
                tcp_seq: h.u32(44),
                direction,
                enter_ns: h.u64(8),
                exit_ns: h.u64(16),
                syscall_trace_id: h.u64(24),
                syscall,
                fd: h.u32(40) as i32,
                total_len: h.u32(48),
                payload,
                is_tls: h.0[66] & F_TLS != 0,
                coroutine_id: h.u64(120),
            }))
        }
        EV_OPEN => Ok(SocketEvent::Open(SocketOpen {
            pid,
            tid: h.u32(36),
            comm: h.comm(),
            socket_id: h.u64(0),
            role: h.role(),
            tuple: h.tuple(),
            fd: h.u32(40) as i32,
            ts_ns: h.u64(8),
        })),
        EV_CLOSE => Ok(SocketEvent::Close(SocketClose {
            pid,
            socket_id: h.u64(0),
            ts_ns: h.u64(8),
        })),
        k => Err(DecodeError::Kind(k)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u8, cap: u32, payload: &[u8]) -> Vec<u8> {
        let mut r = vec![0u8; HEADER_LEN];
        r[0..8].copy_from_slice(&7u64.to_ne_bytes());
        r[32..36].copy_from_slice(&1234u32.to_ne_bytes());
        r[44..48].copy_from_slice(&99u32.to_ne_bytes());
        r[48..52].copy_from_slice(&5000u32.to_ne_bytes());
        r[52..56].copy_from_slice(&cap.to_ne_bytes());
        r[56..58].copy_from_slice(&8080u16.to_ne_bytes());
        r[58..60].copy_from_slice(&40000u16.to_ne_bytes());
        r[60] = kind;
        r[61] = 1;
        r[62] = 1;
        r[64] = 4;
        r[65] = 6;
        r[72..76].copy_from_slice(&[127, 0, 0, 1]);
        r[88..92].copy_from_slice(&[127, 0, 0, 2]);
        r[104..109].copy_from_slice(b"nginx");
        r.extend_from_slice(payload);
        r
    }

    #[test]
    fn decodes_a_data_event() {
        let r = record(EV_DATA, 3, b"GET");
        let SocketEvent::Data(d) = decode(&r).unwrap() else {
            panic!("not data")
        };
        assert_eq!(d.pid, 1234);
        assert_eq!(d.socket_id, 7);
        assert_eq!(d.tcp_seq, 99);
        assert_eq!(d.total_len, 5000);
        assert_eq!(d.payload, b"GET");
        assert_eq!(d.direction, Direction::Egress);
        assert_eq!(d.syscall, Syscall::Write);
        assert_eq!(d.comm.as_str(), "nginx");
        assert_eq!(d.tuple.local.to_string(), "127.0.0.1:8080");
        assert_eq!(d.tuple.remote.to_string(), "127.0.0.2:40000");
    }

    #[test]
    fn rejects_bad_records() {
        assert_eq!(decode(&[0u8; 10]).unwrap_err(), DecodeError::Short(10));
        let r = record(EV_DATA, 10, b"GET");
        assert!(matches!(
            decode(&r).unwrap_err(),
            DecodeError::PayloadLength { .. }
        ));
        let r = record(9, 0, b"");
        assert_eq!(decode(&r).unwrap_err(), DecodeError::Kind(9));
    }

    #[test]
    fn maps_v4_mapped_v6_to_v4() {
        let mut r = record(EV_OPEN, 0, b"");
        r[64] = 6;
        let mut mapped = [0u8; 16];
        mapped[10] = 0xff;
        mapped[11] = 0xff;
        mapped[12..16].copy_from_slice(&[10, 1, 2, 3]);
        r[72..88].copy_from_slice(&mapped);
        let SocketEvent::Open(o) = decode(&r).unwrap() else {
            panic!("not open")
        };
        assert_eq!(o.tuple.local.ip().to_string(), "10.1.2.3");
    }
}
