//! The server's own figures, served at `/metrics` in Prometheus' text
//! format: what was ingested, refused and stored, and how long stores took.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub struct ServerStats {
    pub batches: AtomicU64,
    pub duplicate_batches: AtomicU64,
    pub spans_stored: AtomicU64,
    pub metric_rows_stored: AtomicU64,
    pub flows_stored: AtomicU64,
    pub tags_received: AtomicU64,
    /// Pushes refused: wrong token.
    pub unauthenticated: AtomicU64,
    /// Pushes refused: a malformed batch.
    pub invalid_batches: AtomicU64,
    /// Pushes that failed in the store (the agent retries them).
    pub store_errors: AtomicU64,
    pub store_write_us_sum: AtomicU64,
    pub store_write_us_max: AtomicU64,
    pub api_requests: AtomicU64,
    pub api_bad_requests: AtomicU64,
    pub api_errors: AtomicU64,
    pub retention_days_dropped: AtomicU64,
}

impl ServerStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn note_write_us(&self, us: u64) {
        self.store_write_us_sum.fetch_add(us, Relaxed);
        self.store_write_us_max.fetch_max(us, Relaxed);
    }

    /// The Prometheus exposition text; `gauges` adds (name, help, value).
    pub fn render(&self, gauges: &[(&str, &str, u64)]) -> String {
        let mut out = String::new();
        let counters: [(&str, &str, &AtomicU64); 15] = [
            (
                "causeway_ingest_batches_total",
                "Batches pushed by agents and stored",
                &self.batches,
            ),
            (
                "causeway_ingest_duplicate_batches_total",
                "Batches pushed again after being stored (acknowledged, not stored twice)",
                &self.duplicate_batches,
            ),
            (
                "causeway_ingest_spans_total",
                "Spans stored",
                &self.spans_stored,
            ),
            (
                "causeway_ingest_metric_rows_total",
                "Metric rows (1 s and 1 min RED figures) stored",
                &self.metric_rows_stored,
            ),
            (
                "causeway_ingest_flows_total",
                "Flow reports (l4_flow_log) stored",
                &self.flows_stored,
            ),
            (
                "causeway_ingest_tags_total",
                "Tag dictionary entries received",
                &self.tags_received,
            ),
            (
                "causeway_ingest_unauthenticated_total",
                "Pushes refused for a wrong or missing token",
                &self.unauthenticated,
            ),
            (
                "causeway_ingest_invalid_batches_total",
                "Pushes refused as malformed",
                &self.invalid_batches,
            ),
            (
                "causeway_store_errors_total",
                "Batches the store failed to write (agents retry them)",
                &self.store_errors,
            ),
            (
                "causeway_store_write_microseconds_total",
                "Time spent writing batches",
                &self.store_write_us_sum,
            ),
            (
                "causeway_store_write_microseconds_max",
                "Longest batch write",
                &self.store_write_us_max,
            ),
            (
                "causeway_api_requests_total",
                "HTTP API requests",
                &self.api_requests,
            ),
            (
                "causeway_api_bad_requests_total",
                "HTTP API requests refused (400)",
                &self.api_bad_requests,
            ),
            (
                "causeway_api_errors_total",
                "HTTP API requests that failed (500)",
                &self.api_errors,
            ),
            (
                "causeway_retention_days_dropped_total",
                "Days of spans dropped by retention",
                &self.retention_days_dropped,
            ),
        ];
        for (name, help, c) in counters {
            let kind = if name.ends_with("_max") {
                "gauge"
            } else {
                "counter"
            };
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
                c.load(Relaxed)
            );
        }
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        out
    }
}
