//! Application-protocol inference and parsing for Causeway.
//!
//! The agent hands this crate the payload prefix that eBPF captured from the
//! first syscall of a message (cut at the capture cap, 1024 bytes by default)
//! and gets back which protocol it is ([`infer`]) and what the message head
//! says ([`http1`]). Everything here is a pure function over `&[u8]`: no I/O,
//! no clocks, no globals and no allocation on the parsing path, so that it is
//! cheap to call for every captured message and safe to fuzz.
//!
//! Parsed values borrow from the input buffer, like `httparse`, because the
//! caller only copies the few fields that end up in a span.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod dns;
pub mod dubbo;
pub mod endpoint;
pub mod grpc;
pub mod head;
pub mod hessian2;
pub mod hpack;
pub mod http1;
pub mod http2;
pub mod infer;
pub mod kafka;
pub mod mqtt;
pub mod mysql;
pub mod postgresql;
pub mod protobuf;
pub mod protobuf_rpc;
pub mod redis;
pub mod sofarpc;

#[cfg(test)]
mod rpc_test_support;

pub use causeway_model::L7Protocol;
pub use head::{Head, ParseError};
