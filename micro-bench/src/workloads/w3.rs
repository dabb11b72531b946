//! W3, server streaming: one call, a million replies.

use std::time::Instant;

use futures::StreamExt;

use super::{Spec, expect_count, per_second};
use crate::Result;
use crate::baseline::{self, Reader, Writer};
use crate::messages::{SRequest, SResponse};
use crate::report::{Better, Metric, Outcome, Target};
use crate::runner::{Env, Servers, Sides, compare};
use crate::service::BenchClient;

/// 1,000,000 replies to one call.
pub(crate) const SPEC: Spec = Spec {
    id: "w3",
    title: "server streaming",
    size: "one call streaming 1,000,000 SResponse",
    count: 1_000_000,
    warmup: 50_000,
    metrics: &[Metric {
        name: "messages/s",
        better: Better::Higher,
        target: Target::RatioAtLeast(2.0),
    }],
};

/// Starts both servers, connects, and measures.
pub(crate) async fn run(env: &Env) -> Result<Outcome> {
    let servers = Servers::start(env, baseline::Service::ServerStreaming).await?;
    let (reader, writer) = servers.baseline_client().await?;
    let micro = servers.micro_client().await?;
    let mut sides = Streaming {
        reader,
        writer,
        micro,
    };
    Ok(compare(&SPEC, &mut sides).await)
}

/// Both connections.
struct Streaming {
    reader: Reader,
    writer: Writer,
    micro: BenchClient,
}

/// The request: `n` words, one per reply.
fn request(n: usize) -> Result<SRequest> {
    Ok(SRequest {
        count: i64::try_from(n)?,
    })
}

impl Sides for Streaming {
    async fn baseline(&mut self, n: usize) -> Result<Vec<f64>> {
        const ID: u64 = 1;
        let start = Instant::now();
        self.writer
            .send(baseline::message(ID, &request(n)?)?)
            .await?;
        let mut received = 0;
        while let Some(reply) = baseline::recv::<SResponse>(&mut self.reader, ID).await? {
            reply.check(1)?;
            received += 1;
        }
        expect_count("replies", received, n)?;
        Ok(vec![per_second(n, start.elapsed())])
    }

    async fn micro(&mut self, n: usize) -> Result<Vec<f64>> {
        let start = Instant::now();
        let mut replies = self.micro.stream(request(n)?).await?;
        let mut received = 0;
        while let Some(reply) = replies.next().await {
            reply?.check(1)?;
            received += 1;
        }
        expect_count("replies", received, n)?;
        Ok(vec![per_second(n, start.elapsed())])
    }
}
