//! Causeway's server: it takes agents' span batches (gRPC, [`ingest`]),
//! keeps the tag dictionary apart from the rows ([`dict`], SmartEncoding),
//! stores spans in an embedded DuckDB or in ClickHouse ([`store`], one
//! logical schema: [`schema`]), and answers queries over HTTP ([`api`],
//! queries expressed once in [`query`]), and assembles distributed traces
//! from the keys spans carry ([`trace`]), which it also exports as
//! OpenTelemetry spans ([`otlp`]). The agents' RED metric rows are stored
//! and queried beside the spans ([`red`]: per service, endpoint and edge,
//! and the service map).
//!
//! Data flows one way: agent batches in, rows down to the store, query
//! results out. The server holds no state a store does not hold, apart
//! from caches, so several servers may write one ClickHouse.

pub mod api;
pub mod dict;
pub mod flows;
pub mod flows_api;
pub mod ingest;
pub mod metrics;
pub mod otlp;
pub mod query;
pub mod red;
pub mod red_api;
pub mod schema;
pub mod server;
pub mod store;
pub mod trace;
