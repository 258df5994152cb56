//! The flow table of a packet capture: TCP reassembly per direction and UDP
//! datagrams, turned into the socket events the pipeline takes from eBPF.
//!
//! A flow plays the part of a socket seen from its client: bytes from the
//! client are `Egress`, bytes from the server `Ingress`, and `local` is the
//! client's address. Each in-order run of TCP payload becomes one data event
//! (as one syscall would), with the sequence number of its first byte, so
//! spans from a capture carry the same `req_tcp_seq` as spans from the
//! processes at either end.
//!
//! Who is the client: the sender of a SYN without ACK, or of a connection's
//! first UDP datagram. For a TCP flow whose handshake is not in the capture,
//! the end whose port is not in Linux's ephemeral range (32768 and up) is the
//! server, and if both or neither are, the lower port.
//!
//! Reassembly keeps out-of-order segments until the gap before them fills,
//! up to [`MAX_OUT_OF_ORDER`] bytes per direction; past that the gap is
//! given up (counted in `gap_bytes`) and delivery resumes at the next byte
//! held. Bytes seen twice (retransmissions) are dropped and counted.

use causeway_model::{
    Comm, DataEvent, Direction, FiveTuple, L4Protocol, SocketClose, SocketEvent, SocketOpen,
    SocketRole, Syscall,
};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use super::packet::Segment;

/// Out-of-order bytes held per direction before a gap is given up.
pub const MAX_OUT_OF_ORDER: usize = 4 << 20;

/// What the flow table did with the segments it was given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowStats {
    pub tcp_segments: u64,
    pub udp_datagrams: u64,
    pub flows: u64,
    /// Payload bytes seen again (retransmissions, overlaps) and dropped.
    pub retransmitted_bytes: u64,
    /// Segments that arrived ahead of a gap and waited for it.
    pub out_of_order_segments: u64,
    /// Bytes never seen: gaps given up.
    pub gap_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FlowKey {
    l4: L4Protocol,
    lo: SocketAddr,
    hi: SocketAddr,
}

impl FlowKey {
    fn of(seg: &Segment<'_>) -> FlowKey {
        let (lo, hi) = if seg.src <= seg.dst {
            (seg.src, seg.dst)
        } else {
            (seg.dst, seg.src)
        };
        FlowKey { l4: seg.l4, lo, hi }
    }
}

/// One direction of a TCP connection.
#[derive(Debug, Default)]
struct Stream {
    /// The sequence number of the next byte to deliver.
    next_seq: Option<u32>,
    /// Bytes delivered so far; offsets of held segments count from the
    /// stream's first byte so that sequence wrap-around orders correctly.
    delivered: u64,
    /// Held segments by offset: (capture time, bytes).
    held: BTreeMap<u64, (u64, Vec<u8>)>,
    held_bytes: usize,
    fin: bool,
}

#[derive(Debug)]
struct Flow {
    id: u64,
    client: SocketAddr,
    server: SocketAddr,
    l4: L4Protocol,
    /// `[client → server, server → client]`.
    streams: [Stream; 2],
    last_ns: u64,
    had_data: bool,
}

/// Ports from here up are handed out by Linux for outgoing connections.
const EPHEMERAL_PORTS: u16 = 32768;

/// Which end of a mid-stream TCP flow is the server.
fn guess_server(a: SocketAddr, b: SocketAddr) -> SocketAddr {
    let a_eph = a.port() >= EPHEMERAL_PORTS;
    let b_eph = b.port() >= EPHEMERAL_PORTS;
    match (a_eph, b_eph) {
        (false, true) => a,
        (true, false) => b,
        _ if a.port() <= b.port() => a,
        _ => b,
    }
}

/// Turns segments into socket events, in capture order.
#[derive(Debug)]
pub struct FlowTable {
    flows: HashMap<FlowKey, Flow>,
    next_id: u64,
    /// Payload bytes handed on per event, like the eBPF capture cap.
    payload_cap: usize,
    /// A flow quiet for this long is closed.
    idle_close_ns: u64,
    last_sweep_ns: u64,
    stats: FlowStats,
}

/// Where the table's events go.
pub type EventOut<'o> = dyn FnMut(SocketEvent<'_>) + 'o;

impl FlowTable {
    pub fn new(payload_cap: usize, idle_close_ns: u64) -> FlowTable {
        FlowTable {
            flows: HashMap::new(),
            next_id: 1,
            payload_cap,
            idle_close_ns,
            last_sweep_ns: 0,
            stats: FlowStats::default(),
        }
    }

    pub fn stats(&self) -> &FlowStats {
        &self.stats
    }

    /// Takes one segment captured at `ts_ns` (ns since the epoch).
    pub fn on_segment(&mut self, ts_ns: u64, seg: &Segment<'_>, out: &mut EventOut<'_>) {
        self.sweep(ts_ns, out);
        let key = FlowKey::of(seg);
        match seg.tcp {
            None => self.on_datagram(key, ts_ns, seg, out),
            Some(tcp) => {
                self.stats.tcp_segments += 1;
                let opening = tcp.syn && !tcp.ack;
                // A SYN on a flow that already carried data is a new
                // connection on the same ports.
                if opening && self.flows.get(&key).is_some_and(|f| f.had_data) {
                    self.close(key, ts_ns, out);
                }
                if !self.flows.contains_key(&key) {
                    // Pure ACKs and FINs of a flow already closed (or begun
                    // before the capture) start nothing.
                    if !tcp.syn && seg.payload.is_empty() {
                        return;
                    }
                    let server = if opening {
                        seg.dst
                    } else if tcp.syn {
                        seg.src
                    } else {
                        guess_server(seg.src, seg.dst)
                    };
                    self.open(key, server, ts_ns, out);
                }
                let Some(flow) = self.flows.get_mut(&key) else {
                    return;
                };
                flow.last_ns = ts_ns;
                let dir = usize::from(seg.src != flow.client);
                let stream = &mut flow.streams[dir];
                if tcp.syn {
                    stream.next_seq = Some(tcp.seq.wrapping_add(1));
                }
                if !seg.payload.is_empty() {
                    flow.had_data = true;
                    Self::on_tcp_payload(
                        flow,
                        dir,
                        tcp.seq,
                        ts_ns,
                        seg.payload,
                        self.payload_cap,
                        &mut self.stats,
                        out,
                    );
                }
                if tcp.fin {
                    flow.streams[dir].fin = true;
                }
                let done = tcp.rst || flow.streams.iter().all(|s| s.fin);
                if done {
                    self.close(key, ts_ns, out);
                }
            }
        }
    }

    /// Closes every flow, delivering what reassembly still holds.
    pub fn finish(&mut self, ts_ns: u64, out: &mut EventOut<'_>) {
        let keys: Vec<FlowKey> = self.flows.keys().copied().collect();
        for key in keys {
            self.close(key, ts_ns, out);
        }
    }

    fn sweep(&mut self, ts_ns: u64, out: &mut EventOut<'_>) {
        if ts_ns.saturating_sub(self.last_sweep_ns) < 1_000_000_000 {
            return;
        }
        self.last_sweep_ns = ts_ns;
        let idle: Vec<FlowKey> = self
            .flows
            .iter()
            .filter(|(_, f)| ts_ns.saturating_sub(f.last_ns) >= self.idle_close_ns)
            .map(|(k, _)| *k)
            .collect();
        for key in idle {
            self.close(key, ts_ns, out);
        }
    }

    fn open(&mut self, key: FlowKey, server: SocketAddr, ts_ns: u64, out: &mut EventOut<'_>) {
        let client = if server == key.lo { key.hi } else { key.lo };
        let id = self.next_id;
        self.next_id += 1;
        self.stats.flows += 1;
        let flow = Flow {
            id,
            client,
            server,
            l4: key.l4,
            streams: Default::default(),
            last_ns: ts_ns,
            had_data: false,
        };
        out(SocketEvent::Open(SocketOpen {
            pid: 0,
            tid: 0,
            comm: Comm::default(),
            socket_id: id,
            role: SocketRole::Client,
            tuple: tuple_of(&flow),
            fd: -1,
            ts_ns,
        }));
        self.flows.insert(key, flow);
    }

    fn close(&mut self, key: FlowKey, ts_ns: u64, out: &mut EventOut<'_>) {
        let Some(mut flow) = self.flows.remove(&key) else {
            return;
        };
        // What still waits behind a gap is delivered: the gap will not fill.
        for dir in 0..2 {
            while let Some((&offset, _)) = flow.streams[dir].held.first_key_value() {
                let stream = &mut flow.streams[dir];
                self.stats.gap_bytes += offset.saturating_sub(stream.delivered);
                let skip = offset.saturating_sub(stream.delivered) as u32;
                if let Some(next) = stream.next_seq.as_mut() {
                    *next = next.wrapping_add(skip);
                }
                stream.delivered = offset.max(stream.delivered);
                Self::drain_held(&mut flow, dir, self.payload_cap, &mut self.stats, out);
            }
        }
        out(SocketEvent::Close(SocketClose {
            pid: 0,
            socket_id: flow.id,
            ts_ns,
        }));
    }

    fn on_datagram(&mut self, key: FlowKey, ts_ns: u64, seg: &Segment<'_>, out: &mut EventOut<'_>) {
        self.stats.udp_datagrams += 1;
        if !self.flows.contains_key(&key) {
            // The first datagram of a flow is the client's.
            self.open(key, seg.dst, ts_ns, out);
        }
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        flow.last_ns = ts_ns;
        flow.had_data = true;
        if !seg.payload.is_empty() {
            let dir = usize::from(seg.src != flow.client);
            deliver(flow, dir, 0, ts_ns, seg.payload, self.payload_cap, out);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_tcp_payload(
        flow: &mut Flow,
        dir: usize,
        seq: u32,
        ts_ns: u64,
        payload: &[u8],
        cap: usize,
        stats: &mut FlowStats,
        out: &mut EventOut<'_>,
    ) {
        let stream = &mut flow.streams[dir];
        let next = *stream.next_seq.get_or_insert(seq);
        let delta = seq.wrapping_sub(next) as i32 as i64;
        if delta < 0 {
            // Starts before the next byte: seen before, wholly or in part.
            let seen = (-delta) as usize;
            if seen >= payload.len() {
                stats.retransmitted_bytes += payload.len() as u64;
                return;
            }
            stats.retransmitted_bytes += seen as u64;
            return Self::on_tcp_payload(flow, dir, next, ts_ns, &payload[seen..], cap, stats, out);
        }
        if delta > 0 {
            stats.out_of_order_segments += 1;
            let offset = stream.delivered + delta as u64;
            let held = stream.held.entry(offset).or_insert((ts_ns, Vec::new()));
            if held.1.len() < payload.len() {
                stream.held_bytes += payload.len() - held.1.len();
                *held = (ts_ns, payload.to_vec());
            }
            if stream.held_bytes > MAX_OUT_OF_ORDER {
                // Give the gap up: resume at the first byte held.
                let first = stream.held.keys().next().copied().unwrap_or(offset);
                let skip = first - stream.delivered;
                stats.gap_bytes += skip;
                stream.next_seq = Some(next.wrapping_add(skip as u32));
                stream.delivered = first;
                Self::drain_held(flow, dir, cap, stats, out);
            }
            return;
        }
        deliver(flow, dir, seq, ts_ns, payload, cap, out);
        let stream = &mut flow.streams[dir];
        stream.next_seq = Some(seq.wrapping_add(payload.len() as u32));
        stream.delivered += payload.len() as u64;
        Self::drain_held(flow, dir, cap, stats, out);
    }

    /// Delivers held segments that the stream has now reached.
    fn drain_held(
        flow: &mut Flow,
        dir: usize,
        cap: usize,
        stats: &mut FlowStats,
        out: &mut EventOut<'_>,
    ) {
        loop {
            let stream = &mut flow.streams[dir];
            let Some(entry) = stream.held.first_entry() else {
                return;
            };
            if *entry.key() > stream.delivered {
                return;
            }
            let offset = *entry.key();
            let (ts_ns, bytes) = entry.remove();
            stream.held_bytes -= bytes.len();
            let seen = (stream.delivered - offset) as usize;
            if seen >= bytes.len() {
                stats.retransmitted_bytes += bytes.len() as u64;
                continue;
            }
            stats.retransmitted_bytes += seen as u64;
            let seq = stream.next_seq.unwrap_or(0);
            let fresh = &bytes[seen..];
            deliver(flow, dir, seq, ts_ns, fresh, cap, out);
            let stream = &mut flow.streams[dir];
            stream.next_seq = Some(seq.wrapping_add(fresh.len() as u32));
            stream.delivered += fresh.len() as u64;
        }
    }
}

fn tuple_of(flow: &Flow) -> FiveTuple {
    FiveTuple {
        l4: flow.l4,
        local: flow.client,
        remote: flow.server,
    }
}

/// Hands in-order bytes to the pipeline as one data event.
fn deliver(
    flow: &Flow,
    dir: usize,
    seq: u32,
    ts_ns: u64,
    bytes: &[u8],
    cap: usize,
    out: &mut EventOut<'_>,
) {
    let (direction, syscall) = if dir == 0 {
        (Direction::Egress, Syscall::Write)
    } else {
        (Direction::Ingress, Syscall::Read)
    };
    out(SocketEvent::Data(DataEvent {
        pid: 0,
        tid: 0,
        comm: Comm::default(),
        socket_id: flow.id,
        role: SocketRole::Client,
        tuple: tuple_of(flow),
        tcp_seq: seq,
        direction,
        enter_ns: ts_ns,
        exit_ns: ts_ns,
        syscall_trace_id: 0,
        syscall,
        fd: -1,
        total_len: bytes.len() as u32,
        payload: &bytes[..bytes.len().min(cap)],
        is_tls: false,
        coroutine_id: 0,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::packet::TcpFacts;

    /// What came out, simplified: (socket id, direction, seq, bytes) per
    /// data event, and closes as (socket id, "close").
    #[derive(Debug, PartialEq)]
    enum Out {
        Open(u64, SocketAddr),
        Data(u64, Direction, u32, Vec<u8>),
        Close(u64),
    }

    fn run(segs: &[(SocketAddr, SocketAddr, Option<TcpFacts>, &[u8])]) -> (Vec<Out>, FlowStats) {
        let mut table = FlowTable::new(1024, 300_000_000_000);
        let mut got = Vec::new();
        let mut out = |e: SocketEvent<'_>| match e {
            SocketEvent::Open(o) => got.push(Out::Open(o.socket_id, o.tuple.local)),
            SocketEvent::Data(d) => got.push(Out::Data(
                d.socket_id,
                d.direction,
                d.tcp_seq,
                d.payload.to_vec(),
            )),
            SocketEvent::Close(c) => got.push(Out::Close(c.socket_id)),
        };
        for (i, (src, dst, tcp, payload)) in segs.iter().enumerate() {
            let seg = Segment {
                l4: if tcp.is_some() {
                    L4Protocol::Tcp
                } else {
                    L4Protocol::Udp
                },
                src: *src,
                dst: *dst,
                tcp: *tcp,
                payload,
            };
            table.on_segment(1_000 + i as u64, &seg, &mut out);
        }
        table.finish(10_000, &mut out);
        let stats = table.stats().clone();
        (got, stats)
    }

    fn t(seq: u32) -> Option<TcpFacts> {
        Some(TcpFacts {
            seq,
            syn: false,
            ack: true,
            fin: false,
            rst: false,
        })
    }

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn handshake_sets_client_and_sequence() {
        let (c, s) = (a("127.0.0.1:50000"), a("127.0.0.1:8080"));
        let syn = Some(TcpFacts {
            seq: 99,
            syn: true,
            ack: false,
            fin: false,
            rst: false,
        });
        let synack = Some(TcpFacts {
            seq: 499,
            syn: true,
            ack: true,
            fin: false,
            rst: false,
        });
        let (got, _) = run(&[
            (c, s, syn, b""),
            (s, c, synack, b""),
            (c, s, t(100), b"ping"),
            (s, c, t(500), b"pong"),
        ]);
        assert_eq!(
            got,
            vec![
                Out::Open(1, c),
                Out::Data(1, Direction::Egress, 100, b"ping".to_vec()),
                Out::Data(1, Direction::Ingress, 500, b"pong".to_vec()),
                Out::Close(1),
            ]
        );
    }

    #[test]
    fn out_of_order_and_retransmitted_segments_come_out_once_in_order() {
        let (c, s) = (a("10.0.0.1:40000"), a("10.0.0.2:6379"));
        let (got, stats) = run(&[
            (c, s, t(0), b"abc"),
            (c, s, t(6), b"ghi"),
            (c, s, t(3), b"def"),
            (c, s, t(0), b"abc"),
            (c, s, t(4), b"efgh"),
            (c, s, t(9), b"jk"),
        ]);
        let bytes: Vec<u8> = got
            .iter()
            .filter_map(|o| match o {
                Out::Data(_, _, _, b) => Some(b.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(bytes, b"abcdefghijk");
        assert_eq!(stats.out_of_order_segments, 1);
        assert_eq!(stats.retransmitted_bytes, 3 + 4);
        assert!(got.contains(&Out::Data(1, Direction::Egress, 6, b"ghi".to_vec())));
    }

    #[test]
    fn sequence_wraps() {
        let (c, s) = (a("10.0.0.1:40000"), a("10.0.0.2:80"));
        let (got, stats) = run(&[
            (c, s, t(u32::MAX - 1), b"ab"),
            (c, s, t(2), b"ef"),
            (c, s, t(0), b"cd"),
        ]);
        assert_eq!(stats.gap_bytes, 0);
        assert_eq!(
            got[1..4],
            [
                Out::Data(1, Direction::Egress, u32::MAX - 1, b"ab".to_vec()),
                Out::Data(1, Direction::Egress, 0, b"cd".to_vec()),
                Out::Data(1, Direction::Egress, 2, b"ef".to_vec()),
            ]
        );
    }

    #[test]
    fn a_gap_that_never_fills_is_counted_at_close() {
        let (c, s) = (a("10.0.0.1:40000"), a("10.0.0.2:80"));
        let (got, stats) = run(&[(c, s, t(0), b"ab"), (c, s, t(10), b"xy")]);
        assert_eq!(stats.gap_bytes, 8);
        assert!(got.contains(&Out::Data(1, Direction::Egress, 10, b"xy".to_vec())));
    }

    #[test]
    fn mid_stream_flow_guesses_the_server_by_port() {
        let (c, s) = (a("127.0.0.1:45678"), a("127.0.0.1:5432"));
        // The server speaks first in the capture.
        let (got, _) = run(&[(s, c, t(7), b"Z"), (c, s, t(1), b"Q")]);
        assert_eq!(got[0], Out::Open(1, c));
        assert_eq!(got[1], Out::Data(1, Direction::Ingress, 7, b"Z".to_vec()));
        assert_eq!(
            guess_server(a("1.1.1.1:40000"), a("1.1.1.1:50000")),
            a("1.1.1.1:40000")
        );
    }

    #[test]
    fn udp_datagrams_pair_up_by_flow() {
        let (c, s) = (a("127.0.0.1:53000"), a("127.0.0.1:53"));
        let (got, stats) = run(&[(c, s, None, b"q"), (s, c, None, b"r")]);
        assert_eq!(stats.udp_datagrams, 2);
        assert_eq!(
            got,
            vec![
                Out::Open(1, c),
                Out::Data(1, Direction::Egress, 0, b"q".to_vec()),
                Out::Data(1, Direction::Ingress, 0, b"r".to_vec()),
                Out::Close(1),
            ]
        );
    }
}
