//! HTTP/2 (RFC 9113) as an observer sees it: frames, and header blocks
//! decoded with HPACK, one connection direction at a time.
//!
//! HTTP/2 does not fit the one-message-per-syscall shape of the other
//! parsers: a connection carries many streams at once, a syscall holds any
//! number of frames (or a piece of one), and header blocks can only be read
//! with the HPACK table built by every block before them. So this module
//! offers two levels:
//!
//! - pure functions over one buffer: [`FrameHeader::parse`], [`Frames`]
//!   (the frames of a slice that may end mid-frame), the facts of the frame
//!   types a span needs ([`header_block_fragment`] with padding and
//!   priority, [`rst_stream_code`], [`goaway`], [`settings`]), and
//!   [`infer`] (the client connection preface);
//! - [`HalfConnection`], the state of one direction of one connection that
//!   the caller owns and feeds with each syscall's captured bytes and total
//!   length: a frame cursor across syscalls (a frame may straddle them;
//!   bytes past the captured prefix are skipped by count), header blocks
//!   gathered over CONTINUATION frames and decoded with the direction's
//!   HPACK [`Decoder`], and the stream facts a span needs handed back as
//!   [`Event`]s.
//!
//! What the capture cap does: a frame whose header lies past the captured
//! prefix of its syscall cannot be found, so the direction loses its
//! framing; it is found again at the start of a later syscall whose
//! captured bytes are a chain of plausible frame headers (writers send
//! whole frames per syscall). A header block cut by the cap is decoded up
//! to the cut (pseudo-header fields come first, so method, path and status
//! usually survive), and the HPACK table then loses sync: see
//! [`crate::hpack`] for what stays exact. Nothing here reports a header
//! value it could not decode exactly.
//!
//! Connections already open before the observer started are not inferred:
//! without the preface, frames cannot be told reliably from other binary
//! protocols. Named by configuration, such a connection is taken up with
//! [`HalfConnection::midstream`]: framing at the first plausible frame
//! boundary, and from the HPACK table only static entries, literals and
//! entries added later (in the recorded h2load connection joined after 20
//! syscalls, 24 of the remaining streams come out whole). Server push is
//! decoded only to keep the table in sync.

use crate::hpack::{self, Decoder};
use crate::http1::trace::{Candidates, TraceContext, TraceHeader};
use crate::infer::MessageKind;

#[cfg(test)]
mod tests;

/// The client connection preface (RFC 9113 section 3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Bytes of a frame header.
pub const FRAME_HEADER_LEN: usize = 9;

/// The initial (and, unless raised by SETTINGS, the largest) frame payload.
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16_384;

/// Frame types (section 6).
pub mod frame_type {
    /// Stream payload.
    pub const DATA: u8 = 0;
    /// Opens a stream, or carries a response head or trailers.
    pub const HEADERS: u8 = 1;
    /// Stream priority (deprecated).
    pub const PRIORITY: u8 = 2;
    /// Ends a stream abnormally.
    pub const RST_STREAM: u8 = 3;
    /// Connection settings.
    pub const SETTINGS: u8 = 4;
    /// Server push.
    pub const PUSH_PROMISE: u8 = 5;
    /// Liveness.
    pub const PING: u8 = 6;
    /// Connection shutdown.
    pub const GOAWAY: u8 = 7;
    /// Flow control.
    pub const WINDOW_UPDATE: u8 = 8;
    /// The rest of a header block.
    pub const CONTINUATION: u8 = 9;
}

/// Frame flags (section 6).
pub mod flags {
    /// DATA, HEADERS: the sender's last frame on the stream.
    pub const END_STREAM: u8 = 0x1;
    /// SETTINGS, PING: acknowledgement.
    pub const ACK: u8 = 0x1;
    /// HEADERS, PUSH_PROMISE, CONTINUATION: the block ends here.
    pub const END_HEADERS: u8 = 0x4;
    /// DATA, HEADERS, PUSH_PROMISE: a pad length byte and padding.
    pub const PADDED: u8 = 0x8;
    /// HEADERS: 5 bytes of priority before the block.
    pub const PRIORITY: u8 = 0x20;
}

/// Settings identifiers (section 6.5.2).
pub mod setting {
    /// The receiver's bound on the HPACK table of what it receives.
    pub const HEADER_TABLE_SIZE: u16 = 1;
    /// Whether the receiver accepts server push.
    pub const ENABLE_PUSH: u16 = 2;
    /// Streams the receiver allows the sender to open.
    pub const MAX_CONCURRENT_STREAMS: u16 = 3;
    /// The receiver's initial flow-control window.
    pub const INITIAL_WINDOW_SIZE: u16 = 4;
    /// The largest frame payload the receiver accepts.
    pub const MAX_FRAME_SIZE: u16 = 5;
    /// The receiver's bound on a header list.
    pub const MAX_HEADER_LIST_SIZE: u16 = 6;
}

/// A frame header (section 4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload bytes (24 bits).
    pub length: u32,
    /// Frame type ([`frame_type`]).
    pub kind: u8,
    /// Type-specific flags ([`flags`]).
    pub flags: u8,
    /// Stream (31 bits; 0 for the connection).
    pub stream_id: u32,
}

impl FrameHeader {
    /// The header in the first 9 bytes, or None when fewer are there. The
    /// reserved bit of the stream id is ignored, as the RFC says.
    pub fn parse(b: &[u8]) -> Option<FrameHeader> {
        let h: &[u8; FRAME_HEADER_LEN] = b.get(..FRAME_HEADER_LEN)?.try_into().ok()?;
        Some(FrameHeader {
            length: u32::from_be_bytes([0, h[0], h[1], h[2]]),
            kind: h[3],
            flags: h[4],
            stream_id: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
        })
    }

    /// The 9 bytes of this header.
    pub fn to_bytes(&self) -> [u8; FRAME_HEADER_LEN] {
        let l = self.length.to_be_bytes();
        let s = self.stream_id.to_be_bytes();
        [
            l[1], l[2], l[3], self.kind, self.flags, s[0], s[1], s[2], s[3],
        ]
    }

    /// Whether this header is one a conforming peer with default settings
    /// sends: a known type, only its defined flags, the stream id and
    /// length its type requires, a payload within the default maximum.
    /// Strict on purpose: it is how framing is found again after bytes were
    /// lost, and a false start would misread a payload as frames.
    pub fn is_plausible(&self, raw_reserved_bit: bool) -> bool {
        use flags::{ACK, END_HEADERS, END_STREAM, PADDED};
        use frame_type::*;
        if raw_reserved_bit || self.length > DEFAULT_MAX_FRAME_SIZE {
            return false;
        }
        let f = self.flags;
        let on_stream = self.stream_id != 0;
        let only = |allowed: u8| f & !allowed == 0;
        match self.kind {
            DATA => on_stream && only(END_STREAM | PADDED),
            HEADERS => on_stream && only(END_STREAM | END_HEADERS | PADDED | flags::PRIORITY),
            PRIORITY => on_stream && f == 0 && self.length == 5,
            RST_STREAM => on_stream && f == 0 && self.length == 4,
            SETTINGS => {
                !on_stream
                    && only(ACK)
                    && self.length % 6 == 0
                    && (f & ACK == 0 || self.length == 0)
            }
            PUSH_PROMISE => on_stream && only(END_HEADERS | PADDED) && self.length >= 4,
            PING => !on_stream && only(ACK) && self.length == 8,
            GOAWAY => !on_stream && f == 0 && self.length >= 8,
            WINDOW_UPDATE => f == 0 && self.length == 4,
            CONTINUATION => on_stream && only(END_HEADERS),
            _ => false,
        }
    }
}

/// Whether `buf` starts with a plausible frame header (see
/// [`FrameHeader::is_plausible`]).
fn plausible_header_at(buf: &[u8]) -> Option<FrameHeader> {
    let h = FrameHeader::parse(buf)?;
    let reserved = buf[5] & 0x80 != 0;
    h.is_plausible(reserved).then_some(h)
}

/// Whether a syscall's bytes (`captured` of `total`) start at a frame
/// boundary: every frame header inside the captured bytes is plausible, and
/// the last frame ends exactly at `total` when all was captured. A lone
/// frame header whose payload runs past the syscall is not enough: nine
/// bytes from the middle of a frame pass for a header too easily (a
/// SETTINGS payload reads as a DATA header), so a frame straddling the end
/// counts only after a whole frame before it.
pub fn starts_with_frames(captured: &[u8], total: u64) -> bool {
    let mut pos = 0usize;
    let mut frames = 0;
    loop {
        if pos as u64 == total && frames > 0 {
            return true;
        }
        if pos >= captured.len() {
            // The rest was not captured: as plausible as what was seen.
            return frames > 0 && (pos as u64) < total;
        }
        let Some(h) = plausible_header_at(&captured[pos..]) else {
            return false;
        };
        frames += 1;
        pos += FRAME_HEADER_LEN + h.length as usize;
        if pos as u64 > total {
            // A frame straddling into the next syscall is fine when it is
            // the last one and whole frames came before it.
            return frames > 1;
        }
    }
}

/// One frame found in a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Its header.
    pub header: FrameHeader,
    /// The part of its payload inside the buffer.
    pub payload: &'a [u8],
}

impl Frame<'_> {
    /// Whether the whole payload is in the buffer.
    pub fn is_whole(&self) -> bool {
        self.payload.len() as u64 == u64::from(self.header.length)
    }
}

/// The frames of a buffer that starts at a frame boundary; the last one may
/// be cut. Iteration stops where fewer than 9 bytes are left.
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Frames<'a> {
    /// Frames of `buf`, starting at its first byte.
    pub fn new(buf: &'a [u8]) -> Frames<'a> {
        Frames { buf, pos: 0 }
    }

    /// Where the next frame would start (past the end once a cut frame was
    /// returned).
    pub fn offset(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Frame<'a>;

    fn next(&mut self) -> Option<Frame<'a>> {
        let rest = self.buf.get(self.pos..)?;
        let header = FrameHeader::parse(rest)?;
        let start = self.pos + FRAME_HEADER_LEN;
        let end = start.saturating_add(header.length as usize);
        let payload = &self.buf[start..end.min(self.buf.len())];
        self.pos = end;
        Some(Frame { header, payload })
    }
}

/// Why a frame's payload breaks its type's grammar.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum FrameError {
    /// Padding longer than the payload, or a payload too short for its
    /// fixed fields.
    #[error("frame payload too short for its fields")]
    TooShort,
}

/// The header block fragment of a HEADERS or PUSH_PROMISE payload, without
/// pad length, priority fields (HEADERS) or promised stream id
/// (PUSH_PROMISE), and without padding. `payload` may be cut short: the
/// fragment is then what of it is there.
pub fn header_block_fragment<'a>(
    h: &FrameHeader,
    payload: &'a [u8],
) -> Result<&'a [u8], FrameError> {
    let mut start = 0usize;
    let mut pad = 0usize;
    if h.flags & flags::PADDED != 0 && h.kind != frame_type::CONTINUATION {
        pad = usize::from(*payload.first().ok_or(FrameError::TooShort)?);
        start = 1;
    }
    if h.kind == frame_type::HEADERS && h.flags & flags::PRIORITY != 0 {
        start += 5;
    }
    if h.kind == frame_type::PUSH_PROMISE {
        start += 4;
    }
    let end = (h.length as usize)
        .checked_sub(pad)
        .filter(|&e| e >= start)
        .ok_or(FrameError::TooShort)?;
    Ok(payload
        .get(start..end.min(payload.len()))
        .unwrap_or_default())
}

/// The error code of a RST_STREAM payload.
pub fn rst_stream_code(payload: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(payload.get(..4)?.try_into().ok()?))
}

/// `(last stream id, error code)` of a GOAWAY payload.
pub fn goaway(payload: &[u8]) -> Option<(u32, u32)> {
    let last = u32::from_be_bytes(payload.get(..4)?.try_into().ok()?) & 0x7fff_ffff;
    let code = u32::from_be_bytes(payload.get(4..8)?.try_into().ok()?);
    Some((last, code))
}

/// The `(identifier, value)` pairs of a SETTINGS payload.
pub fn settings(payload: &[u8]) -> impl Iterator<Item = (u16, u32)> + '_ {
    payload.chunks_exact(6).map(|c| {
        (
            u16::from_be_bytes([c[0], c[1]]),
            u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
        )
    })
}

/// The name of an HTTP/2 error code (section 7).
pub fn error_code_name(code: u32) -> &'static str {
    match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x4 => "SETTINGS_TIMEOUT",
        0x5 => "STREAM_CLOSED",
        0x6 => "FRAME_SIZE_ERROR",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0x9 => "COMPRESSION_ERROR",
        0xa => "CONNECT_ERROR",
        0xb => "ENHANCE_YOUR_CALM",
        0xc => "INADEQUATE_SECURITY",
        0xd => "HTTP_1_1_REQUIRED",
        _ => "UNKNOWN_ERROR",
    }
}

/// Whether a message starts an HTTP/2 connection: the client preface (all
/// of it, or as much as the bytes hold when they are shorter).
pub fn infer(payload: &[u8]) -> Option<MessageKind> {
    let n = payload.len().min(PREFACE.len());
    // "PRI * HTTP/2.0\r\n" alone is distinctive; fewer bytes are not.
    (n >= 16 && payload[..n] == PREFACE[..n]).then_some(MessageKind::Request)
}

/// The header fields of one block that a span needs, copied out of the
/// HPACK decoder's callback (HTTP/2 field names are lowercase).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderFields {
    /// `:method`.
    pub method: Option<String>,
    /// `:scheme`.
    pub scheme: Option<String>,
    /// `:authority`, else `host`.
    pub authority: Option<String>,
    /// `:path`.
    pub path: Option<String>,
    /// `:status`, when three digits.
    pub status: Option<u16>,
    /// `content-type`.
    pub content_type: Option<String>,
    /// `content-length`.
    pub content_length: Option<u64>,
    /// `user-agent`.
    pub user_agent: Option<String>,
    /// `x-request-id`.
    pub x_request_id: Option<String>,
    /// `grpc-status`.
    pub grpc_status: Option<u32>,
    /// `grpc-message`, percent-decoded.
    pub grpc_message: Option<String>,
    traceparent: Option<String>,
    b3: Option<String>,
    b3_trace: Option<String>,
    b3_span: Option<String>,
    b3_parent: Option<String>,
    uber: Option<String>,
    sw8: Option<String>,
    /// Fields decoded.
    pub fields: usize,
    /// Fields that referred to HPACK entries this observer missed.
    pub unknown: usize,
    /// The block was cut short by the capture; fields after the cut are
    /// missing.
    pub truncated: bool,
}

fn set_first(slot: &mut Option<String>, v: &[u8]) {
    if slot.is_none() {
        if let Ok(s) = std::str::from_utf8(v) {
            *slot = Some(s.to_owned());
        }
    }
}

impl HeaderFields {
    /// Takes in one field.
    pub fn note(&mut self, name: &[u8], value: &[u8]) {
        match name {
            b":method" => set_first(&mut self.method, value),
            b":scheme" => set_first(&mut self.scheme, value),
            b":authority" => set_first(&mut self.authority, value),
            b":path" => set_first(&mut self.path, value),
            b":status" if value.len() == 3 && value.iter().all(u8::is_ascii_digit) => {
                self.status = std::str::from_utf8(value).ok().and_then(|s| s.parse().ok());
            }
            b"host" => set_first(&mut self.authority, value),
            b"content-type" => set_first(&mut self.content_type, value),
            b"content-length" => {
                self.content_length = std::str::from_utf8(value).ok().and_then(|s| s.parse().ok())
            }
            b"user-agent" => set_first(&mut self.user_agent, value),
            b"x-request-id" => set_first(&mut self.x_request_id, value),
            b"grpc-status" => self.grpc_status = crate::grpc::parse_status(value),
            b"grpc-message" => {
                self.grpc_message = Some(crate::grpc::decode_message(value).into_owned())
            }
            b"traceparent" => set_first(&mut self.traceparent, value),
            b"b3" => set_first(&mut self.b3, value),
            b"x-b3-traceid" => set_first(&mut self.b3_trace, value),
            b"x-b3-spanid" => set_first(&mut self.b3_span, value),
            b"x-b3-parentspanid" => set_first(&mut self.b3_parent, value),
            b"uber-trace-id" => set_first(&mut self.uber, value),
            b"sw8" => set_first(&mut self.sw8, value),
            _ => {}
        }
    }

    /// The highest-precedence valid trace header, chosen as for HTTP/1.
    pub fn trace(&self) -> TraceHeader<'_> {
        Candidates {
            traceparent: self.traceparent.as_deref(),
            b3: self.b3.as_deref(),
            b3_trace: self.b3_trace.as_deref(),
            b3_span: self.b3_span.as_deref(),
            b3_parent: self.b3_parent.as_deref(),
            uber: self.uber.as_deref(),
            sw8: self.sw8.as_deref(),
        }
        .select()
    }

    /// The trace ids the block carried, if any.
    pub fn trace_context(&self) -> Option<TraceContext<'_>> {
        self.trace().trace_context()
    }

    /// Whether `content-type` names gRPC.
    pub fn is_grpc(&self) -> bool {
        self.content_type
            .as_deref()
            .is_some_and(crate::grpc::is_grpc_content_type)
    }

    /// Decodes a whole (or, with `complete == false`, cut) header block.
    pub fn decode(
        decoder: &mut Decoder,
        block: &[u8],
        complete: bool,
    ) -> Result<HeaderFields, hpack::HpackError> {
        let mut f = HeaderFields::default();
        let summary = decoder.decode(block, complete, &mut |n, v| f.note(n, v))?;
        f.fields = summary.fields;
        f.unknown = summary.unknown;
        f.truncated = summary.truncated || !complete;
        Ok(f)
    }
}

/// What a [`HalfConnection`] found in the bytes fed to it. `pos` is the
/// offset of the frame's first byte in the direction's byte stream
/// (counting from the first byte fed), so the caller can tell which
/// syscall carried it and at which TCP sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A header block on a stream: request head, response head or trailers.
    Headers {
        /// The stream.
        stream_id: u32,
        /// The sender's last frame on the stream.
        end_stream: bool,
        /// Where the HEADERS frame starts.
        pos: u64,
        /// What it said.
        fields: Box<HeaderFields>,
    },
    /// A header block on a stream that did not decode (HPACK error): its
    /// fields are unknown.
    HeadersLost {
        /// The stream.
        stream_id: u32,
        /// The sender's last frame on the stream.
        end_stream: bool,
        /// Where the HEADERS frame starts.
        pos: u64,
    },
    /// A DATA frame's header.
    Data {
        /// The stream.
        stream_id: u32,
        /// Payload length, padding included.
        len: u32,
        /// The sender's last frame on the stream.
        end_stream: bool,
        /// Where the frame starts.
        pos: u64,
    },
    /// RST_STREAM: the stream ends abnormally.
    Reset {
        /// The stream.
        stream_id: u32,
        /// Error code ([`error_code_name`]).
        code: u32,
        /// Where the frame starts.
        pos: u64,
    },
    /// GOAWAY: streams above `last_stream_id` were not processed.
    GoAway {
        /// The last stream the sender processed.
        last_stream_id: u32,
        /// Error code.
        code: u32,
    },
}

/// What a direction has seen, for accounting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HalfStats {
    /// Frames whose header was read.
    pub frames: u64,
    /// Header blocks decoded (whole or cut).
    pub header_blocks: u64,
    /// Header blocks cut by the capture (decoded up to the cut).
    pub header_blocks_cut: u64,
    /// Header blocks that did not decode.
    pub hpack_errors: u64,
    /// Times the frame boundaries were lost (a frame header past the capture).
    pub framing_lost: u64,
    /// Times they were found again.
    pub resyncs: u64,
    /// Bytes skipped while the framing was lost.
    pub bytes_unframed: u64,
}

/// Largest header block gathered; a longer one is treated as cut.
const MAX_BLOCK: usize = 256 * 1024;

#[derive(Debug, Clone)]
struct InFrame {
    header: FrameHeader,
    pos: u64,
    left: u32,
    /// Whether its payload is gathered (header blocks, RST_STREAM, GOAWAY).
    keep: bool,
    buf: Vec<u8>,
    /// Part of its payload was not captured.
    cut: bool,
}

#[derive(Debug, Clone)]
struct Block {
    stream_id: u32,
    end_stream: bool,
    pos: u64,
    /// From PUSH_PROMISE: decoded for the table only.
    promise: bool,
    buf: Vec<u8>,
    cut: bool,
}

/// One direction of one HTTP/2 connection: frame cursor, header block
/// assembly and HPACK state. Owned by the caller, fed in order.
#[derive(Debug, Clone)]
pub struct HalfConnection {
    hpack: Decoder,
    /// Bytes of the client preface still expected first.
    preface_left: usize,
    /// Offset of the next byte fed.
    pos: u64,
    hdr: [u8; FRAME_HEADER_LEN],
    hdr_have: usize,
    frame: Option<InFrame>,
    block: Option<Block>,
    framing_lost: bool,
    /// The highest stream id in a frame header seen in this direction.
    max_stream_id: u32,
    /// What was seen.
    pub stats: HalfStats,
}

impl HalfConnection {
    /// The client-to-server direction, from its first byte (the preface).
    pub fn client() -> HalfConnection {
        HalfConnection::with(PREFACE.len(), false)
    }

    /// The server-to-client direction, from its first byte (a SETTINGS frame).
    pub fn server() -> HalfConnection {
        HalfConnection::with(0, false)
    }

    /// A direction whose bytes so far were not seen: framing is taken up at
    /// the first syscall that starts with plausible frames. The HPACK table
    /// is still trusted: use this only where no header block can have been
    /// missed (a server's SETTINGS written before the client's preface was
    /// observed).
    pub fn unframed() -> HalfConnection {
        HalfConnection::with(0, true)
    }

    /// A direction of a connection first seen in the middle (older than
    /// the observer, or named by configuration): framing is taken up at the
    /// first plausible frame boundary, and the HPACK table is unknown (only
    /// entries added later are trusted).
    pub fn midstream() -> HalfConnection {
        let mut h = HalfConnection::with(0, true);
        h.hpack.lose_sync();
        h
    }

    fn with(preface_left: usize, framing_lost: bool) -> HalfConnection {
        HalfConnection {
            hpack: Decoder::new(),
            preface_left,
            pos: 0,
            hdr: [0; FRAME_HEADER_LEN],
            hdr_have: 0,
            frame: None,
            block: None,
            framing_lost,
            max_stream_id: 0,
            stats: HalfStats::default(),
        }
    }

    /// The direction's HPACK state.
    pub fn hpack(&self) -> &Decoder {
        &self.hpack
    }

    /// Offset of the next byte to be fed.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Whether frame boundaries are currently unknown.
    pub fn framing_lost(&self) -> bool {
        self.framing_lost
    }

    /// Feeds one syscall: `captured` is the copied prefix of its `total`
    /// bytes. Events come out in the order of the frames.
    pub fn feed(&mut self, captured: &[u8], total: u64, on: &mut dyn FnMut(Event)) {
        let captured = &captured[..captured
            .len()
            .min(usize::try_from(total).unwrap_or(usize::MAX))];
        let syscall_start = self.pos;
        if self.framing_lost {
            if self.preface_left == 0 && self.resumes_here(captured, total) {
                self.framing_lost = false;
                self.stats.resyncs += 1;
            } else {
                self.pos += total;
                self.stats.bytes_unframed += total;
                return;
            }
        }
        let mut i = 0usize;
        while i < captured.len() {
            i += self.step(&captured[i..], on);
        }
        let mut skip = total - captured.len() as u64;
        while skip > 0 {
            if self.preface_left > 0 {
                let k = skip.min(self.preface_left as u64);
                self.preface_left -= k as usize;
                self.pos += k;
                skip -= k;
                continue;
            }
            match self.frame.as_mut() {
                Some(f) if f.left > 0 => {
                    let k = skip.min(u64::from(f.left));
                    f.left -= k as u32;
                    if f.keep {
                        f.cut = true;
                    }
                    self.pos += k;
                    skip -= k;
                    if f.left == 0 {
                        self.finish_frame(on);
                    }
                }
                _ => {
                    // A frame header we cannot see.
                    self.lose_framing(on);
                    self.pos += skip;
                    self.stats.bytes_unframed += skip;
                    skip = 0;
                }
            }
        }
        debug_assert_eq!(self.pos, syscall_start + total);
    }

    /// Consumes bytes from `buf` (non-empty); returns how many.
    fn step(&mut self, buf: &[u8], on: &mut dyn FnMut(Event)) -> usize {
        if self.preface_left > 0 {
            let done = PREFACE.len() - self.preface_left;
            let k = buf.len().min(self.preface_left);
            if buf[..k] != PREFACE[done..done + k] {
                // Not HTTP/2 after all; the caller decides what to do with
                // a direction whose framing is lost.
                self.preface_left = 0;
                self.lose_framing(on);
                self.pos += buf.len() as u64;
                return buf.len();
            }
            self.preface_left -= k;
            self.pos += k as u64;
            return k;
        }
        if self.framing_lost {
            self.pos += buf.len() as u64;
            self.stats.bytes_unframed += buf.len() as u64;
            return buf.len();
        }
        if let Some(f) = self.frame.as_mut() {
            let k = buf.len().min(f.left as usize);
            // Once bytes of the frame were skipped (past a capture cap),
            // later bytes are not next to the ones kept: the payload is its
            // prefix up to the gap, never bytes from both sides of it.
            if f.keep && !f.cut && f.buf.len() + k <= MAX_BLOCK {
                f.buf.extend_from_slice(&buf[..k]);
            } else if f.keep {
                f.cut = true;
            }
            f.left -= k as u32;
            self.pos += k as u64;
            if f.left == 0 {
                self.finish_frame(on);
            }
            return k;
        }
        // A frame header, maybe in pieces.
        let k = buf.len().min(FRAME_HEADER_LEN - self.hdr_have);
        self.hdr[self.hdr_have..self.hdr_have + k].copy_from_slice(&buf[..k]);
        self.hdr_have += k;
        self.pos += k as u64;
        if self.hdr_have < FRAME_HEADER_LEN {
            return k;
        }
        self.hdr_have = 0;
        let frame_pos = self.pos - FRAME_HEADER_LEN as u64;
        let Some(header) = FrameHeader::parse(&self.hdr) else {
            return k;
        };
        self.stats.frames += 1;
        self.max_stream_id = self.max_stream_id.max(header.stream_id);
        use frame_type::*;
        if header.kind == DATA {
            on(Event::Data {
                stream_id: header.stream_id,
                len: header.length,
                end_stream: header.flags & flags::END_STREAM != 0,
                pos: frame_pos,
            });
        }
        let keep = matches!(
            header.kind,
            HEADERS | CONTINUATION | PUSH_PROMISE | RST_STREAM | GOAWAY
        );
        self.frame = Some(InFrame {
            header,
            pos: frame_pos,
            left: header.length,
            keep,
            buf: Vec::new(),
            cut: false,
        });
        if header.length == 0 {
            self.finish_frame(on);
        }
        k
    }

    /// The frame in progress has all its bytes (seen or skipped).
    fn finish_frame(&mut self, on: &mut dyn FnMut(Event)) {
        let Some(f) = self.frame.take() else {
            return;
        };
        use frame_type::*;
        let h = f.header;
        if self.block.is_some() && h.kind != CONTINUATION {
            // A block must be followed by its CONTINUATIONs only.
            self.end_block(true, on);
        }
        match h.kind {
            HEADERS | PUSH_PROMISE => {
                let fragment = match header_block_fragment(&h, &f.buf) {
                    Ok(frag) => frag,
                    Err(_) if f.cut => &f.buf[..0],
                    Err(_) => {
                        // A malformed frame: its block is lost.
                        self.stats.hpack_errors += 1;
                        self.hpack.lose_sync();
                        return;
                    }
                };
                // The cut, if any, is at the end of the fragment's bytes.
                self.block = Some(Block {
                    stream_id: h.stream_id,
                    end_stream: h.kind == HEADERS && h.flags & flags::END_STREAM != 0,
                    pos: f.pos,
                    promise: h.kind == PUSH_PROMISE,
                    buf: fragment.to_vec(),
                    cut: f.cut,
                });
                if h.flags & flags::END_HEADERS != 0 || f.cut {
                    self.end_block(false, on);
                }
            }
            CONTINUATION => {
                let Some(b) = self.block.as_mut() else {
                    // Its HEADERS was not seen; the table already lost sync.
                    return;
                };
                if b.stream_id != h.stream_id {
                    self.end_block(true, on);
                    return;
                }
                b.buf.extend_from_slice(&f.buf);
                b.cut |= f.cut;
                if h.flags & flags::END_HEADERS != 0 || f.cut {
                    self.end_block(false, on);
                }
            }
            RST_STREAM => {
                if let Some(code) = rst_stream_code(&f.buf) {
                    on(Event::Reset {
                        stream_id: h.stream_id,
                        code,
                        pos: f.pos,
                    });
                }
            }
            GOAWAY => {
                if let Some((last_stream_id, code)) = goaway(&f.buf) {
                    on(Event::GoAway {
                        last_stream_id,
                        code,
                    });
                }
            }
            _ => {}
        }
    }

    /// Decodes the block gathered; `cut` says it ended early.
    fn end_block(&mut self, cut: bool, on: &mut dyn FnMut(Event)) {
        let Some(b) = self.block.take() else {
            return;
        };
        let complete = !(cut || b.cut);
        self.stats.header_blocks += 1;
        if !complete {
            self.stats.header_blocks_cut += 1;
        }
        match HeaderFields::decode(&mut self.hpack, &b.buf, complete) {
            Ok(fields) if !b.promise => on(Event::Headers {
                stream_id: b.stream_id,
                end_stream: b.end_stream,
                pos: b.pos,
                fields: Box::new(fields),
            }),
            Ok(_) => {}
            Err(_) => {
                self.stats.hpack_errors += 1;
                if !b.promise {
                    on(Event::HeadersLost {
                        stream_id: b.stream_id,
                        end_stream: b.end_stream,
                        pos: b.pos,
                    });
                }
            }
        }
    }

    /// Frame boundaries are unknown from here; a block in progress is
    /// decoded as far as it got, and the table cannot be trusted.
    /// Whether framing, lost, may be taken up again at this syscall: it
    /// starts with plausible frames ([`starts_with_frames`]) whose streams
    /// are ones this direction could be on now — the connection's own, or
    /// new ones not far past the highest seen (at most 2^20 when none was
    /// seen). Bytes from the middle of a frame tend to read as stream ids
    /// far out of range.
    fn resumes_here(&self, captured: &[u8], total: u64) -> bool {
        if !starts_with_frames(captured, total) {
            return false;
        }
        let limit = if self.max_stream_id > 0 {
            self.max_stream_id.saturating_add(2048)
        } else {
            1 << 20
        };
        let mut pos = 0usize;
        while let Some(h) = captured.get(pos..).and_then(FrameHeader::parse) {
            if h.stream_id > limit {
                return false;
            }
            pos += FRAME_HEADER_LEN + h.length as usize;
        }
        true
    }

    fn lose_framing(&mut self, on: &mut dyn FnMut(Event)) {
        if let Some(f) = self.frame.as_mut() {
            f.cut = true;
            f.left = 0;
            self.finish_frame(on);
        }
        self.end_block(true, on);
        self.hpack.lose_sync();
        self.hdr_have = 0;
        self.framing_lost = true;
        self.stats.framing_lost += 1;
    }
}
