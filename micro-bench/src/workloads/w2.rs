//! W2, unary throughput: 64 calls in flight on one connection.

use std::collections::HashSet;
use std::time::Instant;

use futures::{FutureExt, StreamExt};
use tokio::task::JoinSet;

use super::{Spec, expect_count, per_second};
use crate::Result;
use crate::baseline::{self, Reader, Writer};
use crate::messages::{SRequest, SResponse};
use crate::report::{Better, Metric, Outcome, Target};
use crate::runner::{Env, Servers, Sides, compare};
use crate::service::BenchClient;

/// 200,000 calls, 64 in flight.
pub(crate) const SPEC: Spec = Spec {
    id: "w2",
    title: "unary throughput",
    size: "200,000 calls, 64 in flight on one connection",
    count: 200_000,
    warmup: 10_000,
    metrics: &[Metric {
        name: "calls/s",
        better: Better::Higher,
        target: Target::RatioAtLeast(0.5),
    }],
};

/// Calls in flight at once.
const IN_FLIGHT: usize = 64;

/// Starts both servers, connects, and measures.
pub(crate) async fn run(env: &Env) -> Result<Outcome> {
    let servers = Servers::start(env, baseline::Service::Unary).await?;
    let (reader, writer) = servers.baseline_client().await?;
    let micro = servers.micro_client().await?;
    let mut sides = Throughput {
        reader,
        writer,
        next_id: 0,
        micro,
    };
    Ok(compare(&SPEC, &mut sides).await)
}

/// Both connections.
struct Throughput {
    reader: Reader,
    writer: Writer,
    /// Request ids stay unique over the whole connection.
    next_id: u64,
    micro: BenchClient,
}

impl Throughput {
    /// Queues the next request and remembers its id.
    async fn put_request(&mut self, outstanding: &mut HashSet<u64>) -> Result<()> {
        let id = self.next_id;
        self.next_id += 1;
        outstanding.insert(id);
        self.writer
            .put(baseline::message(id, &SRequest::ONE_WORD)?)
            .await?;
        Ok(())
    }
}

/// Matches a reply to its request and checks it.
fn take_reply(frame: &[u8], outstanding: &mut HashSet<u64>) -> Result<()> {
    let (id, body) = baseline::parse(frame)?;
    if !outstanding.remove(&id) {
        return Err(format!("a reply to request {id}, which is not outstanding").into());
    }
    let reply: SResponse = baseline::decode(body.ok_or("an end frame instead of a reply")?)?;
    Ok(reply.check(1)?)
}

impl Sides for Throughput {
    /// One task keeps `IN_FLIGHT` requests outstanding: every reply is matched by id and
    /// answered with a new request; requests are flushed once the replies at hand are read.
    async fn baseline(&mut self, n: usize) -> Result<Vec<f64>> {
        let start = Instant::now();
        let mut outstanding = HashSet::with_capacity(IN_FLIGHT);
        let (mut sent, mut received) = (0, 0);
        while sent < n.min(IN_FLIGHT) {
            self.put_request(&mut outstanding).await?;
            sent += 1;
        }
        self.writer.flush().await?;
        while received < n {
            let mut frame = Some(baseline::next_frame(&mut self.reader).await?);
            while let Some(reply) = frame {
                take_reply(&reply, &mut outstanding)?;
                received += 1;
                if sent < n {
                    self.put_request(&mut outstanding).await?;
                    sent += 1;
                }
                frame = self.reader.next().now_or_never().flatten().transpose()?;
            }
            self.writer.flush().await?;
        }
        expect_count("replies", received, n)?;
        Ok(vec![per_second(n, start.elapsed())])
    }

    /// `IN_FLIGHT` tasks share one client, each making its share of the calls one after another.
    async fn micro(&mut self, n: usize) -> Result<Vec<f64>> {
        let start = Instant::now();
        let mut tasks = JoinSet::new();
        for task in 0..IN_FLIGHT {
            let calls = n / IN_FLIGHT + usize::from(task < n % IN_FLIGHT);
            let client = self.micro.clone();
            tasks.spawn(async move {
                for _ in 0..calls {
                    client.unary(SRequest::ONE_WORD).await?.check(1)?;
                }
                Ok::<_, crate::Error>(calls)
            });
        }
        let mut received = 0;
        while let Some(calls) = tasks.join_next().await {
            received += calls??;
        }
        expect_count("replies", received, n)?;
        Ok(vec![per_second(n, start.elapsed())])
    }
}
