//! Causeway's capture pipeline: from decoded socket events to spans.
//!
//! ```text
//! SocketEvent ─► filter ─► socket table ─► message assembly ─► session pairing ─► Span
//!                          (per socket id)  (first syscall      (request FIFO,
//!                                            parsed, the rest     timeouts)
//!                                            counted)
//! ```
//!
//! [`Pipeline`] is pure: it is fed events and the current monotonic time, and
//! hands finished spans to a [`SpanSink`]. [`ProbeDriver`] connects it to the
//! kernel side (`causeway-bpf`) and the clocks; [`capture::replay`] feeds it
//! a pcap or pcapng file instead; [`export`] sends its spans to a server,
//! with the RED metrics [`red`] aggregates from them.

pub mod capture;
mod clock;
pub mod export;
mod filter;
mod message;
mod pipeline;
pub mod red;

pub use causeway_l7::protobuf_rpc;
pub use clock::WallClock;
pub use filter::EventFilter;
pub use message::{Message, MessageHead};
pub use pipeline::{Pipeline, PipelineConfig, ProbeDriver, SpanSink, Stats};
