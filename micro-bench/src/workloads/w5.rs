//! W5, bidirectional echo: requests stream out while replies stream back, on one call.

use std::time::Instant;

use futures::StreamExt;

use super::{Spec, expect_count, per_second};
use crate::Result;
use crate::baseline::{self, Reader, Writer};
use crate::messages::{SRequest, SResponse};
use crate::report::{Better, Metric, Outcome, Target};
use crate::runner::{Env, Servers, Sides, compare};
use crate::service::BenchClient;

/// 200,000 requests out, 200,000 replies back.
pub(crate) const SPEC: Spec = Spec {
    id: "w5",
    title: "bidirectional echo",
    size: "200,000 SRequest out and 200,000 SResponse back on one call",
    count: 200_000,
    warmup: 10_000,
    metrics: &[Metric {
        name: "messages/s (replies)",
        better: Better::Higher,
        target: Target::RatioAtLeast(2.0),
    }],
};

/// Starts both servers, connects, and measures.
pub(crate) async fn run(env: &Env) -> Result<Outcome> {
    let servers = Servers::start(env, baseline::Service::Bidirectional).await?;
    let (reader, writer) = servers.baseline_client().await?;
    let micro = servers.micro_client().await?;
    let mut sides = Bidi {
        reader,
        writer: Some(writer),
        micro,
    };
    Ok(compare(&SPEC, &mut sides).await)
}

/// Both connections. The baseline's writer moves into the sending task for each run.
struct Bidi {
    reader: Reader,
    writer: Option<Writer>,
    micro: BenchClient,
}

/// `n` one-word requests.
fn requests(n: usize) -> impl futures::Stream<Item = SRequest> + Send + 'static {
    futures::stream::repeat(SRequest::ONE_WORD).take(n)
}

impl Sides for Bidi {
    /// A task on the client runtime writes the requests and the end frame while this one reads.
    async fn baseline(&mut self, n: usize) -> Result<Vec<f64>> {
        const ID: u64 = 1;
        let mut writer = self.writer.take().ok_or("a previous run lost the writer")?;
        let start = Instant::now();
        let sending = tokio::spawn(async move {
            for req in std::iter::repeat_n(SRequest::ONE_WORD, n) {
                writer.put(baseline::message(ID, &req)?).await?;
            }
            writer.put(baseline::end(ID)).await?;
            writer.flush().await?;
            Ok::<_, crate::Error>(writer)
        });
        let mut received = 0;
        while let Some(reply) = baseline::recv::<SResponse>(&mut self.reader, ID).await? {
            reply.check(1)?;
            received += 1;
        }
        self.writer = Some(sending.await??);
        expect_count("replies", received, n)?;
        Ok(vec![per_second(n, start.elapsed())])
    }

    /// micro's client sends the request stream from a task of its own while this one reads.
    async fn micro(&mut self, n: usize) -> Result<Vec<f64>> {
        let start = Instant::now();
        let mut replies = self.micro.bidi(requests(n)).await?;
        let mut received = 0;
        while let Some(reply) = replies.next().await {
            reply?.check(1)?;
            received += 1;
        }
        expect_count("replies", received, n)?;
        Ok(vec![per_second(n, start.elapsed())])
    }
}
