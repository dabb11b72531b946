//! W1, unary latency: one call in flight at a time.

use std::time::{Duration, Instant};

use super::{Spec, per_second};
use crate::Result;
use crate::baseline::{self, Reader, Writer};
use crate::messages::{SRequest, SResponse};
use crate::mux::MuxClient;
use crate::report::{Better, Metric, Outcome, Target, median};
use crate::runner::{Env, REPETITIONS, Servers, Sides, compare, limited};
use crate::service::BenchClient;

/// 20,000 sequential calls.
pub(crate) const SPEC: Spec = Spec {
    id: "w1",
    title: "unary latency",
    size: "20,000 sequential calls",
    count: 20_000,
    warmup: 1_000,
    metrics: &[
        Metric {
            name: "calls/s",
            better: Better::Higher,
            target: Target::None,
        },
        Metric {
            name: "p50 µs",
            better: Better::Lower,
            target: Target::RatioAtMost(1.1),
        },
        Metric {
            name: "p99 µs",
            better: Better::Lower,
            target: Target::None,
        },
    ],
};

/// Starts both servers, connects, and measures.
pub(crate) async fn run(env: &Env) -> Result<Outcome> {
    let servers = Servers::start(env, baseline::Service::Unary).await?;
    let (reader, writer) = servers.baseline_client().await?;
    let micro = servers.micro_client().await?;
    Ok(compare(
        &SPEC,
        &mut Latency {
            reader,
            writer,
            micro,
        },
    )
    .await)
}

/// W1's p50 three ways, alternating within each repetition: the baseline, the least
/// multiplexing ([`MuxClient`] against the baseline server) and micro. Medians of
/// [`REPETITIONS`] runs, in µs, in that order.
pub(crate) async fn floor(env: &Env) -> Result<[f64; 3]> {
    let servers = Servers::start(env, baseline::Service::Unary).await?;
    let (reader, writer) = servers.baseline_client().await?;
    let micro = servers.micro_client().await?;
    let mux = MuxClient::connect(servers.baseline_addr(), env.flush).await?;
    let mut sides = Latency {
        reader,
        writer,
        micro,
    };
    sides.baseline(SPEC.warmup).await?;
    multiplexed(&mux, SPEC.warmup).await?;
    sides.micro(SPEC.warmup).await?;
    let mut p50: [Vec<f64>; 3] = Default::default();
    for _ in 0..REPETITIONS {
        p50[0].push(limited(sides.baseline(SPEC.count)).await?[1]);
        p50[1].push(limited(multiplexed(&mux, SPEC.count)).await?[1]);
        p50[2].push(limited(sides.micro(SPEC.count)).await?[1]);
    }
    Ok(p50.map(|runs| median(runs).expect("REPETITIONS > 0")))
}

/// W1 through [`MuxClient`].
async fn multiplexed(mux: &MuxClient, n: usize) -> Result<Vec<f64>> {
    let mut latencies = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let sent = Instant::now();
        let reply = mux.call(&SRequest::ONE_WORD).await?;
        latencies.push(sent.elapsed());
        reply.check(1)?;
    }
    Ok(summary(start.elapsed(), latencies))
}

/// Both connections.
struct Latency {
    reader: Reader,
    writer: Writer,
    micro: BenchClient,
}

impl Sides for Latency {
    async fn baseline(&mut self, n: usize) -> Result<Vec<f64>> {
        let mut latencies = Vec::with_capacity(n);
        let start = Instant::now();
        for id in 0..n as u64 {
            let sent = Instant::now();
            self.writer
                .send(baseline::message(id, &SRequest::ONE_WORD)?)
                .await?;
            let reply: SResponse = baseline::recv(&mut self.reader, id)
                .await?
                .ok_or("an end frame instead of a reply")?;
            latencies.push(sent.elapsed());
            reply.check(1)?;
        }
        Ok(summary(start.elapsed(), latencies))
    }

    async fn micro(&mut self, n: usize) -> Result<Vec<f64>> {
        let mut latencies = Vec::with_capacity(n);
        let start = Instant::now();
        for _ in 0..n {
            let sent = Instant::now();
            let reply = self.micro.unary(SRequest::ONE_WORD).await?;
            latencies.push(sent.elapsed());
            reply.check(1)?;
        }
        Ok(summary(start.elapsed(), latencies))
    }
}

/// Calls/s, p50 and p99 in µs.
fn summary(elapsed: Duration, mut latencies: Vec<Duration>) -> Vec<f64> {
    latencies.sort_unstable();
    vec![
        per_second(latencies.len(), elapsed),
        micros(percentile(&latencies, 50.0)),
        micros(percentile(&latencies, 99.0)),
    ]
}

/// The nearest-rank percentile of sorted `values`.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentile(&values, 50.0), Duration::from_micros(50));
        assert_eq!(percentile(&values, 99.0), Duration::from_micros(99));
        assert!((micros(Duration::from_micros(7)) - 7.0).abs() < 1e-9);
    }
}
