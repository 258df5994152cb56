//! Pushing batches to a `causeway server` over gRPC (tonic), gzip
//! compressed, with the shared token as `authorization: Bearer TOKEN`.

use super::{PushError, Transport};
use causeway_model::wire::ingest_client::IngestClient;
use causeway_model::wire::{Ack, Batch};
use std::time::Duration;
use tonic::codec::CompressionEncoding;
use tonic::transport::{Channel, Endpoint};

pub struct GrpcTransport {
    runtime: tokio::runtime::Runtime,
    endpoint: Endpoint,
    token: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    client: Option<IngestClient<Channel>>,
}

impl GrpcTransport {
    /// `url`: the server's ingest address (`http://HOST:8418`).
    pub fn new(url: &str, token: Option<&str>) -> Result<GrpcTransport, String> {
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| format!("bad server URL {url:?}: {e}"))?
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(30));
        let token = token
            .map(|t| {
                format!("Bearer {t}")
                    .parse()
                    .map_err(|_| "the token must be printable ASCII".to_owned())
            })
            .transpose()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the export runtime: {e}"))?;
        Ok(GrpcTransport {
            runtime,
            endpoint,
            token,
            client: None,
        })
    }
}

impl Transport for GrpcTransport {
    fn push(&mut self, batch: &Batch) -> Result<Ack, PushError> {
        let endpoint = self.endpoint.clone();
        let client = self.client.take();
        let token = self.token.clone();
        let batch = batch.clone();
        let (result, client) = self.runtime.block_on(async move {
            let mut c = match client {
                Some(c) => c,
                None => match endpoint.connect().await {
                    Ok(ch) => IngestClient::new(ch)
                        .send_compressed(CompressionEncoding::Gzip)
                        .accept_compressed(CompressionEncoding::Gzip)
                        .max_encoding_message_size(64 << 20),
                    Err(e) => return (Err(PushError::Retry(format!("cannot connect: {e}"))), None),
                },
            };
            let mut req = tonic::Request::new(batch);
            if let Some(t) = token {
                req.metadata_mut().insert("authorization", t);
            }
            match c.push(req).await {
                Ok(ack) => (Ok(ack.into_inner()), Some(c)),
                Err(s) => {
                    let msg = format!("{:?}: {}", s.code(), s.message());
                    let e = match s.code() {
                        tonic::Code::Unauthenticated => PushError::Unauthenticated(msg),
                        tonic::Code::InvalidArgument => PushError::Refused(msg),
                        _ => PushError::Retry(msg),
                    };
                    // A broken connection is made anew on the next push.
                    let keep = !matches!(s.code(), tonic::Code::Unavailable | tonic::Code::Unknown);
                    (Err(e), keep.then_some(c))
                }
            }
        });
        self.client = client;
        result
    }
}
