//! HTTP/2 and gRPC: multiplexed streams, kept apart from the
//! one-message-per-direction assembly.
//!
//! A socket that speaks HTTP/2 (its request direction began with the client
//! preface, or an HTTP/1.1 `Upgrade: h2c` request was answered `101`, or
//! `--port-protocol` says so) gets an [`H2Conn`]: per direction a
//! [`HalfConnection`] (frame cursor across syscalls, header blocks,
//! HPACK table) and per stream the request and response seen so far. Each
//! syscall's bytes go to the half of their direction; the events that come
//! back build the streams, and a stream becomes a span when its response
//! ends (END_STREAM, or RST_STREAM from either side).
//!
//! Per stream: the request is its first header block in the request
//! direction (start time, thread, syscall trace id of the syscall that
//! completed that HEADERS frame; TCP sequence of the frame's first byte,
//! i.e. of its 9-byte frame header, the same on both ends of the
//! connection), the response its first final (non-1xx) header block the
//! other way, and trailers add grpc-status and grpc-message. Lengths are
//! the DATA payload bytes of each side (header blocks are compressed
//! against shared state, so their bytes are not the message's size).
//! A stream with `content-type: application/grpc*` is a `grpc` span:
//! request_type stays the method (POST), request_resource and endpoint
//! are the full path `/pkg.Service/Method`, request_domain the
//! `:authority`; response_code is grpc-status (else, when a gRPC answer
//! lacks it, the HTTP status), response_status gRPC's classes (see
//! `causeway_l7::grpc`), exception the grpc-message (or the code's name),
//! and result keeps the HTTP status as `:status 200`. request_id is the
//! stream id.
//!
//! Streams wait in the same pairing slots as other requests: one left
//! unanswered past the timeout, or when the socket closes, becomes a
//! timeout span (or, when its response head came but never its end, a
//! span of what came; or, when the response direction lost its framing to
//! the payload cap meanwhile, so that the answer may have gone by unseen, a
//! span with response_status `unknown`). At most `max_pending_per_socket` streams wait per
//! connection; past that the oldest is dropped and counted.

use super::{Core, SocketState};
use crate::message::{Message, MessageHead};
use crate::pipeline::SpanSink;
use causeway_l7::http2::{self, Event, HalfConnection, HeaderFields};
use causeway_l7::infer::MessageKind;
use causeway_model::{DataEvent, Direction, L7Protocol, ResponseStatus};
use std::collections::BTreeMap;

/// The HTTP/2 state of one socket.
#[derive(Debug)]
pub(super) struct H2Conn {
    /// Per direction (index: `dir_index`).
    halves: [HalfConnection; 2],
    /// Open streams by id.
    pub(super) streams: BTreeMap<u32, H2Stream>,
    /// Events of the syscall being handled (kept to reuse its allocation).
    scratch: Vec<Event>,
    /// A request on it named gRPC: the connection is a gRPC channel.
    grpc: bool,
}

#[derive(Debug)]
pub(super) struct H2Stream {
    pub(super) req: Message,
    resp: Option<Message>,
    /// The response direction's framing losses when the request came.
    losses_at_start: u64,
}

impl H2Conn {
    /// A connection whose request direction (`req_dir`) starts with the
    /// preface in the bytes about to be fed, or (`preface == false`) was
    /// not seen from its start.
    pub(super) fn new(req_dir: Direction, preface: bool) -> H2Conn {
        let (req, resp) = if preface {
            (HalfConnection::client(), HalfConnection::unframed())
        } else {
            (HalfConnection::midstream(), HalfConnection::midstream())
        };
        let mut halves = [resp.clone(), resp];
        halves[super::dir_index(req_dir)] = req;
        H2Conn {
            halves,
            streams: BTreeMap::new(),
            scratch: Vec::new(),
            grpc: false,
        }
    }

    /// An h2c upgrade: the server's frames start right after its `101`,
    /// the client's with the preface; stream 1 is the upgraded request.
    pub(super) fn upgraded(req_dir: Direction, mut req: Message) -> H2Conn {
        let mut halves = [HalfConnection::server(), HalfConnection::server()];
        halves[super::dir_index(req_dir)] = HalfConnection::client();
        req.protocol = L7Protocol::Http2;
        req.head.version = "2".to_owned();
        req.head.request_id = Some(1);
        req.length = 0;
        let mut streams = BTreeMap::new();
        streams.insert(
            1,
            H2Stream {
                req,
                resp: None,
                losses_at_start: 0,
            },
        );
        H2Conn {
            halves,
            streams,
            scratch: Vec::new(),
            grpc: false,
        }
    }
}

/// The head of a request from its header block.
fn request_head(f: &HeaderFields, stream_id: u32) -> MessageHead {
    let trace = f.trace_context().unwrap_or_default();
    MessageHead {
        version: "2".to_owned(),
        request_type: f.method.clone().unwrap_or_default(),
        request_domain: f.authority.clone().unwrap_or_default(),
        request_resource: f.path.clone().unwrap_or_default(),
        user_agent: f.user_agent.clone().unwrap_or_default(),
        x_request_id: f.x_request_id.clone().unwrap_or_default(),
        trace_id: trace.trace_id.into_owned(),
        span_id: trace.span_id.into_owned(),
        parent_span_id: trace.parent_span_id.into_owned(),
        request_id: Some(u64::from(stream_id)),
        ..MessageHead::default()
    }
}

/// Takes a response header block (head or trailers) into `head`.
fn note_response(head: &mut MessageHead, f: &HeaderFields, grpc: bool) {
    if let Some(status) = f.status {
        if head.response_code.is_none() && head.result.is_empty() {
            if grpc {
                head.result = format!(":status {status}");
            } else {
                head.response_code = Some(i32::from(status));
                head.response_status = Some(causeway_l7::http1::status_class(status));
            }
            // An HTTP error with no gRPC status says what went wrong.
            if grpc && status != 200 {
                head.response_code = Some(i32::from(status));
                head.response_status = Some(causeway_l7::http1::status_class(status));
            }
        }
    }
    if head.x_request_id.is_empty() {
        if let Some(x) = &f.x_request_id {
            head.x_request_id.clone_from(x);
        }
    }
    if let Some(code) = f.grpc_status.filter(|_| grpc) {
        head.response_code = Some(code as i32);
        head.response_status = Some(causeway_l7::grpc::status_class(code));
        let message = f.grpc_message.clone().unwrap_or_default();
        head.exception = if message.is_empty() && code != 0 {
            causeway_l7::grpc::code_name(code).to_owned()
        } else if code != 0 {
            message
        } else {
            String::new()
        };
    }
}

impl H2Conn {
    /// The response of a stream that is being given up on: what came, or,
    /// when the response direction lost its framing since the request (its
    /// answer may have gone by unseen), an `unknown` outcome rather than a
    /// timeout.
    fn final_response(&self, st: &mut H2Stream) -> Option<Message> {
        if st.resp.is_some() {
            return st.resp.take();
        }
        let resp_half = &self.halves[1 - super::dir_index(st.req.direction)];
        let losses = resp_half.stats.framing_lost + u64::from(resp_half.framing_lost());
        if losses == st.losses_at_start {
            return None;
        }
        let mut m = st.req.clone();
        m.kind = MessageKind::Response;
        m.direction = super::opposite(st.req.direction);
        m.length = 0;
        m.tcp_seq = 0;
        m.head = MessageHead {
            version: "2".to_owned(),
            request_id: st.req.head.request_id,
            response_status: Some(ResponseStatus::Unknown),
            exception: "response not captured (HTTP/2 framing lost to the payload cap)".to_owned(),
            ..MessageHead::default()
        };
        Some(m)
    }
}

impl Core {
    /// Feeds the bytes of `e` from `offset` on to the socket's HTTP/2 state.
    pub(super) fn h2_feed(
        &mut self,
        s: &mut SocketState,
        e: &DataEvent<'_>,
        offset: u64,
        sink: &mut dyn SpanSink,
    ) {
        let Some(h2) = s.h2.as_mut() else {
            return;
        };
        let d = super::dir_index(e.direction);
        let captured = e.payload.get(offset as usize..).unwrap_or_default();
        let total = u64::from(e.total_len).saturating_sub(offset);
        let start = h2.halves[d].position();
        let before = h2.halves[d].stats;
        let mut events = std::mem::take(&mut h2.scratch);
        h2.halves[d].feed(captured, total, &mut |ev| events.push(ev));
        let after = h2.halves[d].stats;
        self.stats.h2_framing_lost += after.framing_lost - before.framing_lost;
        self.stats.h2_header_blocks_cut += after.header_blocks_cut - before.header_blocks_cut;
        let is_request_dir = s.request_dir.is_none_or(|r| r == e.direction);
        let seq_at = |pos: u64| {
            e.tcp_seq
                .wrapping_add(offset as u32)
                .wrapping_add(pos.wrapping_sub(start) as u32)
        };
        for ev in events.drain(..) {
            self.h2_event(s, e, is_request_dir, ev, &seq_at, sink);
        }
        if let Some(h2) = s.h2.as_mut() {
            h2.scratch = events;
        }
    }

    fn h2_event(
        &mut self,
        s: &mut SocketState,
        e: &DataEvent<'_>,
        is_request_dir: bool,
        ev: Event,
        seq_at: &dyn Fn(u64) -> u32,
        sink: &mut dyn SpanSink,
    ) {
        let max_streams = self.config.max_pending_per_socket;
        let Some(h2) = s.h2.as_mut() else {
            return;
        };
        match ev {
            Event::Headers {
                stream_id,
                pos,
                fields,
                ..
            } if is_request_dir => {
                if h2.streams.contains_key(&stream_id) {
                    // Trailers of the request: nothing a span keeps.
                    return;
                }
                // A request whose content-type is gone (its header block
                // cut, or the HPACK table out of step after one was: grpcio
                // names it by a dynamic-table index) on a connection that
                // has carried gRPC is gRPC too; one that says otherwise is
                // taken at its word.
                h2.grpc |= fields.is_grpc();
                let protocol = if h2.grpc && (fields.is_grpc() || fields.content_type.is_none()) {
                    L7Protocol::Grpc
                } else {
                    L7Protocol::Http2
                };
                self.stats.messages += 1;
                let mut req = Message::start(
                    e,
                    protocol,
                    MessageKind::Request,
                    request_head(&fields, stream_id),
                    0,
                    0,
                );
                req.tcp_seq = seq_at(pos);
                if h2.streams.len() >= max_streams && h2.streams.pop_first().is_some() {
                    self.stats.pending_dropped += 1;
                }
                self.note_pending(req.socket_id, req.start_ns);
                let resp_half = &h2.halves[1 - super::dir_index(e.direction)];
                let losses_at_start =
                    resp_half.stats.framing_lost + u64::from(resp_half.framing_lost());
                h2.streams.insert(
                    stream_id,
                    H2Stream {
                        req,
                        resp: None,
                        losses_at_start,
                    },
                );
            }
            Event::Headers {
                stream_id,
                end_stream,
                pos,
                fields,
            } => {
                let Some(st) = h2.streams.get_mut(&stream_id) else {
                    self.stats.orphan_responses += 1;
                    return;
                };
                let grpc = st.req.protocol == L7Protocol::Grpc;
                match st.resp.as_mut() {
                    Some(resp) => {
                        note_response(&mut resp.head, &fields, grpc);
                        resp.end_ns = e.exit_ns;
                    }
                    None => {
                        if fields.status.is_some_and(|c| (100..200).contains(&c)) {
                            self.stats.interim_responses += 1;
                            return;
                        }
                        self.stats.messages += 1;
                        let mut head = MessageHead {
                            version: "2".to_owned(),
                            request_id: Some(u64::from(stream_id)),
                            ..MessageHead::default()
                        };
                        note_response(&mut head, &fields, grpc);
                        let mut resp =
                            Message::start(e, st.req.protocol, MessageKind::Response, head, 0, 0);
                        resp.tcp_seq = seq_at(pos);
                        st.resp = Some(resp);
                    }
                }
                if end_stream {
                    self.h2_close_stream(s, stream_id, sink);
                }
            }
            Event::HeadersLost { stream_id, .. } => {
                self.parse_error(L7Protocol::Http2);
                if !is_request_dir {
                    // Its answer is unknown: better no span than a wrong one.
                    if h2.streams.remove(&stream_id).is_some() {
                        self.stats.pending_dropped += 1;
                    }
                }
            }
            Event::Data {
                stream_id,
                len,
                end_stream,
                ..
            } => {
                let Some(st) = h2.streams.get_mut(&stream_id) else {
                    return;
                };
                let m = if is_request_dir {
                    Some(&mut st.req)
                } else {
                    st.resp.as_mut()
                };
                if let Some(m) = m {
                    m.length += u64::from(len);
                    m.end_ns = e.exit_ns;
                }
                if end_stream && !is_request_dir && st.resp.is_some() {
                    self.h2_close_stream(s, stream_id, sink);
                }
            }
            Event::Reset {
                stream_id,
                code,
                pos,
            } => {
                let Some(st) = h2.streams.get_mut(&stream_id) else {
                    return;
                };
                if st.resp.is_none() {
                    // No answer came: the reset is the outcome.
                    let head = MessageHead {
                        version: "2".to_owned(),
                        request_id: Some(u64::from(stream_id)),
                        exception: format!("RST_STREAM {}", http2::error_code_name(code)),
                        response_status: Some(if is_request_dir {
                            ResponseStatus::ClientError
                        } else {
                            ResponseStatus::ServerError
                        }),
                        ..MessageHead::default()
                    };
                    let mut resp =
                        Message::start(e, st.req.protocol, MessageKind::Response, head, 0, 0);
                    resp.direction = super::opposite(st.req.direction);
                    resp.tcp_seq = seq_at(pos);
                    st.resp = Some(resp);
                } else if let Some(resp) = st.resp.as_mut() {
                    if code != 0 && resp.head.exception.is_empty() {
                        resp.head.exception =
                            format!("RST_STREAM {}", http2::error_code_name(code));
                    }
                }
                self.h2_close_stream(s, stream_id, sink);
            }
            Event::GoAway { .. } => {}
        }
    }

    fn h2_close_stream(&mut self, s: &mut SocketState, stream_id: u32, sink: &mut dyn SpanSink) {
        let Some(st) = s.h2.as_mut().and_then(|h| h.streams.remove(&stream_id)) else {
            return;
        };
        self.emit(st.req, st.resp, sink);
    }

    /// Every stream of a closing socket: answered in part or timed out.
    pub(super) fn h2_close_all(&mut self, s: &mut SocketState, sink: &mut dyn SpanSink) {
        let Some(h2) = s.h2.as_mut() else {
            return;
        };
        let streams = std::mem::take(&mut h2.streams);
        for (_, mut st) in streams {
            let resp = h2.final_response(&mut st);
            self.emit(st.req, resp, sink);
        }
    }

    /// Streams that began in pairing slot `slot` or before: out of the
    /// window (`expired`), or dropped to keep memory bounded.
    pub(super) fn h2_expire(
        &mut self,
        s: &mut SocketState,
        slot: u64,
        expired: bool,
        sink: &mut dyn SpanSink,
    ) {
        let slot_ns = self.slot_ns();
        let Some(h2) = s.h2.as_mut() else {
            return;
        };
        let old: Vec<u32> = h2
            .streams
            .iter()
            .filter(|(_, st)| st.req.start_ns / slot_ns <= slot)
            .map(|(&id, _)| id)
            .collect();
        for id in old {
            let Some(mut st) = h2.streams.remove(&id) else {
                continue;
            };
            if expired {
                let resp = h2.final_response(&mut st);
                self.emit(st.req, resp, sink);
            } else {
                self.stats.pending_dropped += 1;
            }
        }
    }

    /// The socket turns out to speak HTTP/2: set up its state so that the
    /// bytes of `e` from `offset` on are fed to it.
    pub(super) fn h2_start(&mut self, s: &mut SocketState, e: &DataEvent<'_>, offset: u64) {
        let req_dir = *s.request_dir.get_or_insert(e.direction);
        let rest = e.payload.get(offset as usize..).unwrap_or_default();
        let preface = e.direction == req_dir && http2::infer(rest).is_some();
        s.h2 = Some(Box::new(H2Conn::new(req_dir, preface)));
    }
}

#[cfg(test)]
mod tests;
