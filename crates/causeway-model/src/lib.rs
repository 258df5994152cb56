//! The data model every Causeway stage speaks: what the kernel saw on a socket
//! ([`SocketEvent`]), what the agent made of it ([`Span`]), the metric rows
//! it aggregates spans into ([`metric`]: windows, the latency sketch), the
//! integer tag ids rows carry ([`tags`], SmartEncoding), the flow records of
//! packet capture ([`flow`]), and the agent-server wire contract ([`wire`],
//! protobuf).
//!
//! Types here carry no behaviour beyond small conversions, so that the kernel
//! side, the parsers and the span builders can each depend on the model without
//! depending on one another (DESIGN.md, section 2).

pub mod duration;
mod event;
pub mod flow;
pub mod metric;
mod span;
pub mod tags;
pub mod wire;

pub use event::{
    Comm, DataEvent, Direction, FiveTuple, L4Protocol, SocketClose, SocketEvent, SocketOpen,
    SocketRole, Syscall,
};
pub use flow::{CloseType, Flow, FlowSide};
pub use span::{L7Protocol, ObservationPoint, ResponseStatus, Span};
