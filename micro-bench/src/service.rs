//! The micro side: the benchmark's service as a `#[micro::service]` trait, its implementation,
//! and how the workloads start its server. Clients are the generated [`BenchClient`].
//!
//! The service does exactly what the baseline server does for the same messages (see
//! [`baseline::Service`](crate::baseline::Service)).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;
use micro::{Server, Status, Stream};
use tokio::net::TcpListener;

use crate::messages::{Bytes, SRequest, SResponse};

/// The benchmark's service: one method per call shape the workloads use.
#[micro::service]
pub(crate) trait Bench {
    /// One reply of `req.count` random words (W1, W2).
    async fn unary(&self, req: SRequest) -> Result<SResponse, Status>;

    /// `req.count` replies of one random word each (W3).
    async fn stream(
        &self,
        req: SRequest,
    ) -> Result<impl Stream<Item = Result<SResponse, Status>> + Send, Status>;

    /// The message, unchanged (W4).
    async fn echo(&self, msg: Bytes) -> Result<Bytes, Status>;

    /// For every request, `count` replies of one random word each; ends when the client closes
    /// its side (W5; W6 holds many of these open and idle).
    async fn bidi(
        &self,
        reqs: impl Stream<Item = SRequest> + Send + Unpin,
    ) -> Result<impl Stream<Item = Result<SResponse, Status>> + Send, Status>;
}

/// The implementation every micro server of the benchmark runs.
#[derive(Debug, Default)]
pub(crate) struct BenchService {
    /// `bidi` calls started so far: W6's server reports when all its streams are open.
    bidi_calls: AtomicUsize,
}

impl BenchService {
    /// How many `bidi` calls have started.
    pub(crate) fn bidi_calls(&self) -> usize {
        self.bidi_calls.load(Ordering::Relaxed)
    }
}

impl Bench for BenchService {
    async fn unary(&self, req: SRequest) -> Result<SResponse, Status> {
        Ok(SResponse::random(word_count(req)?))
    }

    async fn stream(
        &self,
        req: SRequest,
    ) -> Result<impl Stream<Item = Result<SResponse, Status>> + Send, Status> {
        let count = word_count(req)?;
        Ok(async_stream::stream! {
            for _ in 0..count {
                yield Ok(SResponse::random(1));
            }
        })
    }

    async fn echo(&self, msg: Bytes) -> Result<Bytes, Status> {
        Ok(msg)
    }

    async fn bidi(
        &self,
        mut reqs: impl Stream<Item = SRequest> + Send + Unpin,
    ) -> Result<impl Stream<Item = Result<SResponse, Status>> + Send, Status> {
        self.bidi_calls.fetch_add(1, Ordering::Relaxed);
        Ok(async_stream::stream! {
            while let Some(req) = reqs.next().await {
                let count = word_count(req)?;
                for _ in 0..count {
                    yield Ok(SResponse::random(1));
                }
            }
        })
    }
}

fn word_count(req: SRequest) -> Result<usize, Status> {
    req.words().map_err(Status::invalid_argument)
}

/// Serves `service` on `listener` with micro's defaults, except a higher limit of concurrent
/// calls per connection when `max_concurrent_streams` is given (W6).
pub(crate) async fn serve(
    listener: TcpListener,
    service: Arc<BenchService>,
    max_concurrent_streams: Option<u32>,
) {
    let mut builder = Server::builder().add_service(BenchServer::from_arc(service));
    if let Some(calls) = max_concurrent_streams {
        builder = builder.max_concurrent_streams(calls);
    }
    if let Err(err) = builder.serve_listener(listener).await {
        eprintln!("micro server: {err}");
    }
}
