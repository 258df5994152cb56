//! Ingest: an agent's batch in, rows in the store, an acknowledgement out.
//!
//! [`Ingestor::push`] is the one path, whether a batch arrives over gRPC
//! ([`IngestService`], `causeway server`) or from the agent in the same
//! process (`causeway up`). It checks the batch, turns it into store rows
//! (giving each span its id), writes it once (a re-sent batch is
//! acknowledged and not stored again), then feeds the tag dictionary.

use crate::dict::Dictionary;
use crate::flows::StoredFlow;
use crate::metrics::ServerStats;
use crate::red::StoredMetric;
use crate::schema::{span_id, StoredSpan};
use crate::store::{Store, StoreError, WriteBatch, WriteOutcome};
use causeway_model::tags::{tag_id, TagKind};
use causeway_model::wire::{self, Ack, Batch};
use std::sync::Arc;
use std::time::Instant;

/// Most spans one batch may carry.
pub const MAX_BATCH_SPANS: usize = 100_000;
/// Most metric rows one batch may carry.
pub const MAX_BATCH_METRIC_ROWS: usize = 100_000;
/// Flow reports one batch may carry.
pub const MAX_BATCH_FLOWS: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("invalid batch: {0}")]
    Invalid(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

pub struct Ingestor {
    store: Arc<dyn Store>,
    dict: Arc<Dictionary>,
    stats: Arc<ServerStats>,
}

impl Ingestor {
    pub fn new(store: Arc<dyn Store>, dict: Arc<Dictionary>, stats: Arc<ServerStats>) -> Ingestor {
        Ingestor { store, dict, stats }
    }

    /// Checks, stores (once) and acknowledges one batch. Blocking: call it
    /// off the async runtime's threads.
    pub fn push(&self, batch: Batch) -> Result<Ack, IngestError> {
        let invalid = |why: String| {
            ServerStats::add(&self.stats.invalid_batches, 1);
            IngestError::Invalid(why)
        };
        if batch.agent_id.is_empty() {
            return Err(invalid("no agent_id".into()));
        }
        if batch.seq == 0 {
            return Err(invalid("seq counts from 1".into()));
        }
        if batch.spans.len() > MAX_BATCH_SPANS {
            return Err(invalid(format!(
                "{} spans in one batch (at most {MAX_BATCH_SPANS})",
                batch.spans.len()
            )));
        }
        if batch.metrics.len() > MAX_BATCH_METRIC_ROWS {
            return Err(invalid(format!(
                "{} metric rows in one batch (at most {MAX_BATCH_METRIC_ROWS})",
                batch.metrics.len()
            )));
        }
        if batch.flows.len() > MAX_BATCH_FLOWS {
            return Err(invalid(format!(
                "{} flow reports in one batch (at most {MAX_BATCH_FLOWS})",
                batch.flows.len()
            )));
        }
        for m in &batch.metrics {
            if let Err(why) = check_metric_row(m) {
                return Err(invalid(why));
            }
        }
        let mut tags = Vec::with_capacity(batch.tags.len() + 1);
        for t in batch.tags {
            let Some(kind) = TagKind::from_code(t.kind) else {
                return Err(invalid(format!("unknown tag kind {}", t.kind)));
            };
            // Ids are a function of the string: a mismatch is a bug or a
            // forgery, and would file rows under someone else's name.
            if t.id != tag_id(kind, &t.value) {
                return Err(invalid(format!(
                    "tag {:?} of kind {} has id {}, not {}",
                    t.value,
                    kind.as_str(),
                    t.id,
                    tag_id(kind, &t.value)
                )));
            }
            tags.push((kind, t.id, t.value));
        }
        let agent = tag_id(TagKind::Agent, &batch.agent_id);
        tags.push((TagKind::Agent, agent, batch.agent_id));
        let (session, seq) = (batch.session, batch.seq);
        let spans: Vec<StoredSpan> = batch
            .spans
            .into_iter()
            .enumerate()
            .map(|(i, row)| StoredSpan {
                id: span_id(agent, session, seq, i as u32),
                agent,
                session,
                seq,
                row,
            })
            .collect();
        let metrics: Vec<StoredMetric> = batch
            .metrics
            .into_iter()
            .map(|row| StoredMetric {
                agent,
                session,
                seq,
                row,
            })
            .collect();
        let flows: Vec<StoredFlow> = batch
            .flows
            .into_iter()
            .map(|row| StoredFlow {
                agent,
                session,
                seq,
                row,
            })
            .collect();
        let write = WriteBatch {
            agent,
            session,
            seq,
            spans,
            tags,
            metrics,
            flows,
        };
        let started = Instant::now();
        let outcome = self.store.write(&write).inspect_err(|_| {
            ServerStats::add(&self.stats.store_errors, 1);
        })?;
        self.stats
            .note_write_us(started.elapsed().as_micros() as u64);
        self.dict
            .add(write.tags.iter().map(|(k, id, v)| (*k, *id, v.as_str())));
        ServerStats::add(&self.stats.tags_received, write.tags.len() as u64 - 1);
        Ok(match outcome {
            WriteOutcome::Stored(n) => {
                ServerStats::add(&self.stats.batches, 1);
                ServerStats::add(&self.stats.spans_stored, n as u64);
                ServerStats::add(&self.stats.metric_rows_stored, write.metrics.len() as u64);
                ServerStats::add(&self.stats.flows_stored, write.flows.len() as u64);
                Ack {
                    seq,
                    stored: n as u32,
                    duplicate: false,
                }
            }
            WriteOutcome::Duplicate => {
                ServerStats::add(&self.stats.duplicate_batches, 1);
                Ack {
                    seq,
                    stored: 0,
                    duplicate: true,
                }
            }
        })
    }
}

/// Why a metric row cannot be stored, if it cannot.
fn check_metric_row(m: &wire::MetricRow) -> Result<(), String> {
    use causeway_model::metric::{Granularity, RowKind};
    let g = Granularity::from_seconds(m.granularity_s)
        .ok_or_else(|| format!("metric row of {} s windows (1 or 60)", m.granularity_s))?;
    if RowKind::from_code(m.kind).is_none() {
        return Err(format!("metric row of unknown kind {}", m.kind));
    }
    if m.time_us % g.micros() != 0 {
        return Err(format!(
            "metric row at {} us: not the start of a {} window",
            m.time_us,
            g.as_str()
        ));
    }
    if m.sketch_keys.len() != m.sketch_counts.len() {
        return Err("metric row with sketch keys and counts of different lengths".into());
    }
    Ok(())
}

/// The gRPC face of an [`Ingestor`], with the shared token agents present
/// as `authorization: Bearer TOKEN`.
pub struct IngestService {
    ingestor: Arc<Ingestor>,
    token: Option<String>,
    stats: Arc<ServerStats>,
}

impl IngestService {
    /// `token`: None accepts every agent (for loopback-only servers).
    pub fn new(ingestor: Arc<Ingestor>, token: Option<String>, stats: Arc<ServerStats>) -> Self {
        IngestService {
            ingestor,
            token,
            stats,
        }
    }

    /// The tonic server for this service: gzip accepted, batches up to 64 MiB.
    pub fn into_server(self) -> wire::ingest_server::IngestServer<IngestService> {
        wire::ingest_server::IngestServer::new(self)
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
            .send_compressed(tonic::codec::CompressionEncoding::Gzip)
            .max_decoding_message_size(64 << 20)
    }
}

#[tonic::async_trait]
impl wire::ingest_server::Ingest for IngestService {
    async fn push(
        &self,
        request: tonic::Request<Batch>,
    ) -> Result<tonic::Response<Ack>, tonic::Status> {
        if let Some(token) = &self.token {
            let given = request
                .metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            if given != Some(token.as_str()) {
                ServerStats::add(&self.stats.unauthenticated, 1);
                return Err(tonic::Status::unauthenticated(match given {
                    None => "no token: start the agent with --token (the server's --token)",
                    Some(_) => "wrong token: the agent's --token differs from the server's",
                }));
            }
        }
        let ingestor = self.ingestor.clone();
        let batch = request.into_inner();
        let result = tokio::task::spawn_blocking(move || ingestor.push(batch))
            .await
            .map_err(|e| tonic::Status::internal(format!("ingest task failed: {e}")))?;
        match result {
            Ok(ack) => Ok(tonic::Response::new(ack)),
            Err(IngestError::Invalid(why)) => Err(tonic::Status::invalid_argument(why)),
            Err(IngestError::Store(e)) => Err(tonic::Status::unavailable(format!(
                "the store failed, retry later: {e}"
            ))),
        }
    }
}
