//! W7, fairness: unary calls on a connection that also carries a stream flooding the client.
//!
//! One busy stream must not starve the others. Each repetition measures the latency of
//! sequential unary calls on a quiet connection, then the same calls while a server stream on
//! the same connection delivers `SResponse`s as fast as the client reads them, and the flood's
//! own rate meanwhile. The baseline has no streams to be fair between (a flood on its one
//! connection sits in front of every reply), so this workload has no baseline column: the
//! figure to read is how far the calls' p50 and p99 move when the flood starts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;

use super::Spec;
use crate::Result;
use crate::baseline;
use crate::messages::SRequest;
use crate::report::{Better, Metric, Outcome, Target};
use crate::runner::{Env, Servers, micro_only};
use crate::service::BenchClient;

/// 5,000 unary calls alone, 5,000 beside the flood.
pub(crate) const SPEC: Spec = Spec {
    id: "w7",
    title: "fairness",
    size: "5,000 sequential unary calls, alone and beside a server stream flooding the same connection",
    count: 5_000,
    warmup: 500,
    metrics: &[
        Metric {
            name: "p50 µs alone",
            better: Better::Lower,
            target: Target::None,
        },
        Metric {
            name: "p99 µs alone",
            better: Better::Lower,
            target: Target::None,
        },
        Metric {
            name: "p50 µs beside the flood",
            better: Better::Lower,
            target: Target::None,
        },
        Metric {
            name: "p99 µs beside the flood",
            better: Better::Lower,
            target: Target::None,
        },
        Metric {
            name: "flood messages/s meanwhile",
            better: Better::Higher,
            target: Target::None,
        },
    ],
};

/// Runs [`REPETITIONS`](crate::runner::REPETITIONS) measurements on one connection.
pub(crate) async fn run(env: &Env) -> Result<Outcome> {
    let servers = Servers::start(env, baseline::Service::ServerStreaming).await?;
    let client = servers.micro_client().await?;
    calls(&client, SPEC.warmup).await?;
    Ok(micro_only(&SPEC, || measure(&client, SPEC.count)).await)
}

/// One repetition: the calls alone, then beside a flood.
async fn measure(client: &BenchClient, n: usize) -> Result<Vec<f64>> {
    let alone = calls(client, n).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicUsize::new(0));
    let flood = tokio::spawn(flood(client.clone(), stop.clone(), received.clone()));
    // Let the flood fill its window before measuring beside it.
    while received.load(Ordering::Relaxed) < 10_000 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let before = received.load(Ordering::Relaxed);
    let start = Instant::now();
    let beside = calls(client, n).await?;
    let flood_rate =
        (received.load(Ordering::Relaxed) - before) as f64 / start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    flood.await??;
    Ok(vec![
        percentile(&alone, 50.0),
        percentile(&alone, 99.0),
        percentile(&beside, 50.0),
        percentile(&beside, 99.0),
        flood_rate,
    ])
}

/// Reads a never-ending server stream as fast as it comes, counting, until `stop`.
async fn flood(
    client: BenchClient,
    stop: Arc<AtomicBool>,
    received: Arc<AtomicUsize>,
) -> Result<()> {
    let mut replies = client.stream(SRequest { count: i64::MAX }).await?;
    while !stop.load(Ordering::Relaxed) {
        match replies.next().await {
            Some(reply) => reply?.check(1)?,
            None => return Err("the flood ended".into()),
        }
        received.fetch_add(1, Ordering::Relaxed);
    }
    // Dropping the stream cancels the call on the server.
    Ok(())
}

/// `n` sequential unary calls; their latencies in µs, sorted.
async fn calls(client: &BenchClient, n: usize) -> Result<Vec<f64>> {
    let mut latencies = Vec::with_capacity(n);
    for _ in 0..n {
        let sent = Instant::now();
        client.unary(SRequest::ONE_WORD).await?.check(1)?;
        latencies.push(sent.elapsed().as_secs_f64() * 1e6);
    }
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

/// The nearest-rank percentile of sorted, non-empty `values`.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
