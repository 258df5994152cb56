//! The TCP state of one flow as the wire shows it: handshake and its
//! round-trip time split at the capture point, server response time,
//! retransmissions, out-of-order segments, zero windows, resets, and how
//! the connection ended.
//!
//! Segments are classified the way Wireshark's TCP sequence analysis does
//! (its `tcp.analysis.*` fields), so that counts can be checked against
//! `tshark` on the same capture and mean what people who read captures
//! expect. Per direction the analysis keeps the next sequence number
//! expected (the highest sent so far; SYN and FIN count one), when it
//! advanced, the last acknowledgement and window sent, and a run of
//! duplicate ACKs. A segment that carries data, a SYN or a FIN is then:
//!
//! - a *keep-alive* (0 or 1 byte, one before the next expected byte):
//!   nothing;
//! - a *zero-window probe* (1 byte at the next expected byte while the
//!   peer's window is 0): nothing, and it does not advance the sequence;
//! - a *spurious retransmission* when all its bytes were acknowledged
//!   already;
//! - a *fast retransmission* when it does not advance the sequence, the
//!   peer sent two or more duplicate ACKs for exactly its first byte, the
//!   last of them within 20 ms;
//! - *out of order* when it does not advance the sequence, comes within
//!   the handshake's round trip (3 ms when unknown) of the segment that
//!   last advanced it, and does not end where that one ended;
//! - a *retransmission* when it does not advance the sequence otherwise.
//!
//! The first three kinds of retransmission are all counted as
//! retransmissions (tshark sets `tcp.analysis.retransmission` on each).
//! A segment with window 0 and none of SYN, FIN, RST advertises a zero
//! window.
//!
//! Server response time (SRT): from the client's last new data segment to
//! the server's first data segment after it, once per turn of the
//! conversation.

use causeway_model::CloseType;

use super::packet::TcpFacts;

/// `a` is before `b` in sequence space.
fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// Out-of-order threshold when the handshake's round trip is unknown.
const DEFAULT_OOO_NS: u64 = 3_000_000;
/// A fast retransmission follows the last duplicate ACK within this.
const FAST_RETRANS_NS: u64 = 20_000_000;

/// What Wireshark would call a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentKind {
    /// New data, an ACK, or anything not listed below.
    Normal,
    KeepAlive,
    ZeroWindowProbe,
    Retransmission,
    FastRetransmission,
    SpuriousRetransmission,
    OutOfOrder,
}

impl SegmentKind {
    /// Counted as a retransmission (`tcp.analysis.retransmission`).
    pub fn is_retransmission(self) -> bool {
        matches!(
            self,
            SegmentKind::Retransmission
                | SegmentKind::FastRetransmission
                | SegmentKind::SpuriousRetransmission
        )
    }
}

/// The handshake as far as it was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    /// The flow began before the capture (no SYN seen): taken as established.
    MidStream,
    /// The client's SYN, no answer yet.
    SynSent,
    /// The server's SYN-ACK, not yet acknowledged.
    SynAckSent,
    Established,
}

/// One direction's sequence analysis.
#[derive(Debug, Default, Clone)]
struct DirSeq {
    /// One past the highest sequence number sent (Wireshark's nextseq).
    nextseq: Option<u32>,
    /// When `nextseq` last advanced.
    nextseq_ns: u64,
    /// The last acknowledgement this side sent, and when.
    lastack: Option<u32>,
    lastack_ns: u64,
    /// The window of this side's last segment.
    window: Option<u16>,
    /// Duplicate ACKs in a row for `lastack`.
    dupacks: u32,
    /// Its last segment was a keep-alive (the answer repeats an ACK and
    /// is no duplicate ACK).
    keep_alive: bool,
}

/// What one segment changed, for the flow's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub kind: SegmentKind,
    pub zero_window: bool,
    /// A server response time measured by this segment.
    pub srt_ns: Option<u64>,
}

/// The TCP state of one flow. Direction 0 is client to server.
#[derive(Debug, Clone)]
pub struct TcpState {
    dirs: [DirSeq; 2],
    pub handshake: Handshake,
    /// The client's most recent SYN and the server's most recent SYN-ACK.
    syn_ns: Option<u64>,
    synack_ns: Option<u64>,
    /// Wireshark's first RTT: most recent SYN to the ACK completing the
    /// handshake; the out-of-order threshold.
    first_rtt_ns: Option<u64>,
    /// SYN to SYN-ACK, and SYN-ACK to the client's ACK.
    pub rtt_server_ns: Option<u64>,
    pub rtt_client_ns: Option<u64>,
    /// A FIN was sent, per direction.
    pub fin: [bool; 2],
    /// Who reset first, and whether the connection was established then.
    pub reset: Option<(usize, bool)>,
    /// The side and time of the last segment with new data.
    last_data: Option<(usize, u64)>,
}

impl TcpState {
    /// A flow whose first segment seen is `first` (sent by side `dir`).
    pub fn new(first: &TcpFacts) -> TcpState {
        let handshake = if first.syn {
            if first.ack {
                Handshake::SynAckSent
            } else {
                Handshake::SynSent
            }
        } else {
            Handshake::MidStream
        };
        TcpState {
            dirs: Default::default(),
            handshake,
            syn_ns: None,
            synack_ns: None,
            first_rtt_ns: None,
            rtt_server_ns: None,
            rtt_client_ns: None,
            fin: [false; 2],
            reset: None,
            last_data: None,
        }
    }

    pub fn established(&self) -> bool {
        matches!(
            self.handshake,
            Handshake::Established | Handshake::MidStream
        )
    }

    /// Takes one segment sent by side `dir` at `ts_ns` with `seglen`
    /// payload bytes.
    pub fn on_segment(&mut self, dir: usize, ts_ns: u64, tcp: &TcpFacts, seglen: u32) -> Verdict {
        self.handshake_step(dir, ts_ns, tcp);
        let kind = self.classify(dir, ts_ns, tcp, seglen);
        let zero_window = tcp.window == 0 && !(tcp.syn || tcp.fin || tcp.rst);
        let mut srt_ns = None;
        if seglen > 0 && !kind.is_retransmission() && kind != SegmentKind::KeepAlive {
            if dir == 1 {
                if let Some((0, at)) = self.last_data {
                    srt_ns = Some(ts_ns.saturating_sub(at));
                }
            }
            self.last_data = Some((dir, ts_ns));
        }
        if tcp.fin {
            self.fin[dir] = true;
        }
        if tcp.rst && self.reset.is_none() {
            self.reset = Some((dir, self.established()));
        }
        Verdict {
            kind,
            zero_window,
            srt_ns,
        }
    }

    fn handshake_step(&mut self, dir: usize, ts_ns: u64, tcp: &TcpFacts) {
        match (dir, tcp.syn, tcp.ack) {
            (0, true, false) => {
                self.syn_ns = Some(ts_ns);
                if self.handshake == Handshake::MidStream {
                    self.handshake = Handshake::SynSent;
                }
            }
            (1, true, true) => {
                if self.rtt_server_ns.is_none() {
                    if let Some(syn) = self.syn_ns {
                        self.rtt_server_ns = Some(ts_ns.saturating_sub(syn));
                    }
                }
                self.synack_ns = Some(ts_ns);
                if self.handshake == Handshake::SynSent {
                    self.handshake = Handshake::SynAckSent;
                }
            }
            (0, false, true) if self.handshake == Handshake::SynAckSent => {
                if let Some(synack) = self.synack_ns {
                    self.rtt_client_ns = Some(ts_ns.saturating_sub(synack));
                }
                if let Some(syn) = self.syn_ns {
                    self.first_rtt_ns = Some(ts_ns.saturating_sub(syn));
                }
                self.handshake = Handshake::Established;
            }
            _ => {}
        }
    }

    fn classify(&mut self, dir: usize, ts_ns: u64, tcp: &TcpFacts, seglen: u32) -> SegmentKind {
        let (fwd, rev) = if dir == 0 {
            let (a, b) = self.dirs.split_at_mut(1);
            (&mut a[0], &b[0])
        } else {
            let (a, b) = self.dirs.split_at_mut(1);
            (&mut b[0], &a[0])
        };
        let seq = tcp.seq;
        let control = tcp.syn || tcp.fin || tcp.rst;
        let ack = tcp.ack.then_some(tcp.ack_seq);
        let mut kind = SegmentKind::Normal;
        let mut probe = false;
        if seglen == 1 && fwd.nextseq == Some(seq) && rev.window == Some(0) {
            kind = SegmentKind::ZeroWindowProbe;
            probe = true;
        } else if seglen <= 1 && !control && fwd.nextseq.is_some_and(|n| seq == n.wrapping_sub(1)) {
            kind = SegmentKind::KeepAlive;
        }
        // Duplicate ACKs: a bare segment repeating the last ACK and window
        // (not the answer to a keep-alive).
        if !probe
            && !rev.keep_alive
            && kind != SegmentKind::KeepAlive
            && seglen == 0
            && !control
            && tcp.window != 0
            && fwd.window == Some(tcp.window)
            && fwd.nextseq == Some(seq)
            && ack.is_some()
            && ack == fwd.lastack
        {
            fwd.dupacks += 1;
        }
        if ack != fwd.lastack {
            fwd.dupacks = 0;
        }
        let carries = seglen > 0 || tcp.syn || tcp.fin;
        if carries && kind == SegmentKind::Normal {
            let mut not_advanced = fwd.nextseq.is_some_and(|n| seq_lt(seq, n));
            if seglen > 1 && fwd.nextseq.is_some_and(|n| n.wrapping_sub(1) == seq) {
                not_advanced = false;
            }
            let end = seq.wrapping_add(seglen);
            if seglen > 0 && rev.lastack.is_some_and(|a| a != 0 && !seq_lt(a, end)) {
                kind = SegmentKind::SpuriousRetransmission;
            } else if not_advanced
                && rev.dupacks >= 2
                && rev.lastack == Some(seq)
                && ts_ns.saturating_sub(rev.lastack_ns) < FAST_RETRANS_NS
            {
                kind = SegmentKind::FastRetransmission;
            } else if not_advanced
                && ts_ns.saturating_sub(fwd.nextseq_ns)
                    < self.first_rtt_ns.unwrap_or(DEFAULT_OOO_NS)
                && fwd.nextseq != Some(end.wrapping_add(u32::from(tcp.syn || tcp.fin)))
            {
                kind = SegmentKind::OutOfOrder;
            } else if not_advanced {
                kind = SegmentKind::Retransmission;
            }
        }
        let next = seq
            .wrapping_add(seglen)
            .wrapping_add(u32::from(tcp.syn || tcp.fin));
        if kind != SegmentKind::ZeroWindowProbe && fwd.nextseq.is_none_or(|n| seq_lt(n, next)) {
            fwd.nextseq = Some(next);
            fwd.nextseq_ns = ts_ns;
        }
        fwd.window = Some(tcp.window);
        fwd.keep_alive = kind == SegmentKind::KeepAlive;
        fwd.lastack = ack;
        fwd.lastack_ns = ts_ns;
        kind
    }

    /// How the flow ends if it ends now by going quiet (`timed_out`) or
    /// because capture stops (not `timed_out`). None: it closed by itself
    /// (FINs both ways, or a reset) — see [`Self::closed`].
    pub fn idle_close(&self, timed_out: bool) -> CloseType {
        if !timed_out {
            return CloseType::CaptureEnd;
        }
        match self.handshake {
            Handshake::SynSent => CloseType::SynTimeout,
            Handshake::SynAckSent => CloseType::SynAckTimeout,
            _ if self.fin[0] != self.fin[1] => CloseType::HalfCloseTimeout,
            _ => CloseType::Timeout,
        }
    }

    /// How the flow closed by itself, if it did: a reset, or FINs both ways.
    pub fn closed(&self) -> Option<CloseType> {
        if self.fin[0] && self.fin[1] {
            return Some(CloseType::Normal);
        }
        match self.reset {
            Some((1, false)) => Some(CloseType::Refused),
            Some((1, true)) => Some(CloseType::ServerReset),
            Some(_) => Some(CloseType::ClientReset),
            None => None,
        }
    }

    /// Waits for its handshake: quiet for the opening timeout ends it.
    pub fn opening(&self) -> bool {
        matches!(self.handshake, Handshake::SynSent | Handshake::SynAckSent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: u8 = 1;
    const S: u8 = 2;
    const R: u8 = 4;
    const A: u8 = 16;

    fn facts(seq: u32, ack: u32, flags: u8, window: u16) -> TcpFacts {
        TcpFacts {
            seq,
            ack_seq: ack,
            window,
            syn: flags & S != 0,
            ack: flags & A != 0,
            fin: flags & F != 0,
            rst: flags & R != 0,
        }
    }

    /// (dir, time in ms, seq, ack, flags, window, payload length).
    type Seg = (usize, f64, u32, u32, u8, u16, u32);

    fn run(segs: &[Seg]) -> (TcpState, Vec<Verdict>) {
        let first = facts(segs[0].2, segs[0].3, segs[0].4, segs[0].5);
        let mut st = TcpState::new(&first);
        let v = segs
            .iter()
            .map(|&(dir, ms, seq, ack, fl, win, len)| {
                st.on_segment(dir, (ms * 1e6) as u64, &facts(seq, ack, fl, win), len)
            })
            .collect();
        (st, v)
    }

    /// Hand-built segments covering each kind. Written to a pcap (the
    /// same times, sequence numbers, flags and windows), tshark 4.0.17
    /// flagged frame 6 `spurious_retransmission` and `retransmission`,
    /// frame 12 `fast_retransmission` and `retransmission`, frame 16
    /// `out_of_order`, frame 18 `zero_window_probe`, frames 17 and 19
    /// `zero_window`, and nothing else.
    #[test]
    fn classifies_segments_as_tshark_does() {
        use SegmentKind::*;
        let p = 8; // PSH
        let segs: &[Seg] = &[
            (0, 1.0, 100, 0, S, 1000, 0),
            (1, 2.0, 500, 101, S | A, 1000, 0),
            (0, 3.0, 101, 501, A, 1000, 0),
            (0, 4.0, 101, 501, p | A, 1000, 10),
            (1, 5.0, 501, 111, A, 1000, 0),
            // Already acknowledged: spurious.
            (0, 305.0, 101, 501, p | A, 1000, 10),
            (0, 315.0, 111, 501, p | A, 1000, 10),
            (0, 316.0, 121, 501, p | A, 1000, 10),
            (1, 317.0, 501, 111, A, 1000, 0),
            (1, 318.0, 501, 111, A, 1000, 0),
            (1, 319.0, 501, 111, A, 1000, 0),
            // Three duplicate ACKs for 111, 2 ms ago: fast.
            (0, 321.0, 111, 501, p | A, 1000, 10),
            (1, 322.0, 501, 131, A, 1000, 0),
            (0, 323.0, 131, 501, p | A, 1000, 10),
            (0, 323.1, 141, 501, p | A, 1000, 10),
            // Behind the highest, 0.1 ms later: out of order.
            (0, 323.2, 131, 501, p | A, 1000, 10),
            (1, 324.2, 501, 151, A, 0, 0),
            (0, 524.2, 151, 501, p | A, 1000, 1),
            (1, 525.2, 501, 151, A, 0, 0),
            (0, 1025.2, 151, 501, F | A, 1000, 0),
            (1, 1026.2, 501, 152, F | A, 1000, 0),
            (0, 1027.2, 152, 502, A, 1000, 0),
        ];
        let (st, v) = run(segs);
        let kinds: Vec<SegmentKind> = v.iter().map(|v| v.kind).collect();
        assert_eq!(
            kinds,
            [
                Normal,
                Normal,
                Normal,
                Normal,
                Normal,
                SpuriousRetransmission,
                Normal,
                Normal,
                Normal,
                Normal,
                Normal,
                FastRetransmission,
                Normal,
                Normal,
                Normal,
                OutOfOrder,
                Normal,
                ZeroWindowProbe,
                Normal,
                Normal,
                Normal,
                Normal,
            ]
        );
        let zero: Vec<usize> = v
            .iter()
            .enumerate()
            .filter(|(_, v)| v.zero_window)
            .map(|(i, _)| i + 1)
            .collect();
        assert_eq!(zero, [17, 19]);
        assert_eq!(st.closed(), Some(CloseType::Normal));
        assert_eq!(st.rtt_server_ns, Some(1_000_000));
        assert_eq!(st.rtt_client_ns, Some(1_000_000));
        // The server answered no data: no response time.
        assert!(v.iter().all(|v| v.srt_ns.is_none()));
    }

    #[test]
    fn syn_retries_are_retransmissions_and_time_out() {
        let (st, v) = run(&[
            (0, 0.0, 7, 0, S, 64240, 0),
            (0, 1000.0, 7, 0, S, 64240, 0),
            (0, 3000.0, 7, 0, S, 64240, 0),
        ]);
        assert_eq!(
            v.iter()
                .filter(|v| v.kind == SegmentKind::Retransmission)
                .count(),
            2
        );
        assert_eq!(st.closed(), None);
        assert!(st.opening());
        assert_eq!(st.idle_close(true), CloseType::SynTimeout);
        assert_eq!(st.idle_close(false), CloseType::CaptureEnd);
    }

    #[test]
    fn resets_by_side_and_refusal() {
        let (st, _) = run(&[(0, 0.0, 7, 0, S, 64240, 0), (1, 0.1, 0, 8, R | A, 0, 0)]);
        assert_eq!(st.closed(), Some(CloseType::Refused));
        let (st, _) = run(&[
            (0, 0.0, 7, 0, S, 64240, 0),
            (1, 0.1, 70, 8, S | A, 64240, 0),
            (0, 0.2, 8, 71, A, 64240, 0),
            (0, 5.0, 8, 71, R | A, 0, 0),
        ]);
        assert_eq!(st.closed(), Some(CloseType::ClientReset));
        let (st, _) = run(&[(1, 0.0, 70, 8, A, 512, 0), (1, 0.1, 70, 8, R, 0, 0)]);
        assert_eq!(st.closed(), Some(CloseType::ServerReset));
    }

    #[test]
    fn server_response_time_is_client_data_to_server_data() {
        let p = 8;
        let (_, v) = run(&[
            (0, 0.0, 7, 0, S, 64240, 0),
            (1, 0.1, 70, 8, S | A, 64240, 0),
            (0, 0.2, 8, 71, A, 64240, 0),
            (0, 1.0, 8, 71, p | A, 64240, 100),
            (0, 1.5, 108, 71, p | A, 64240, 100),
            (1, 1.6, 71, 208, A, 64240, 0),
            (1, 4.5, 71, 208, p | A, 64240, 50),
            (1, 4.6, 121, 208, p | A, 64240, 50),
        ]);
        let srt: Vec<u64> = v.iter().filter_map(|v| v.srt_ns).collect();
        assert_eq!(srt, [3_000_000]);
    }

    #[test]
    fn half_close_then_quiet() {
        let (st, _) = run(&[
            (0, 0.0, 7, 0, S, 64240, 0),
            (1, 0.1, 70, 8, S | A, 64240, 0),
            (0, 0.2, 8, 71, A, 64240, 0),
            (0, 1.0, 8, 71, F | A, 64240, 0),
        ]);
        assert_eq!(st.closed(), None);
        assert_eq!(st.idle_close(true), CloseType::HalfCloseTimeout);
    }
}
