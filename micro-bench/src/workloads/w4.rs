//! W4, large messages: sequential echoes of 1 MiB.

use std::time::Instant;

use super::{Spec, per_second};
use crate::Result;
use crate::baseline::{self, Reader, Writer};
use crate::messages::Bytes;
use crate::report::{Better, Metric, Outcome, Target};
use crate::runner::{Env, Servers, Sides, compare};
use crate::service::BenchClient;

/// 500 echoes of 1 MiB.
pub(crate) const SPEC: Spec = Spec {
    id: "w4",
    title: "large messages",
    size: "500 sequential echoes of 1 MiB Bytes",
    count: 500,
    warmup: 20,
    metrics: &[Metric {
        name: "MiB/s (payload, one way)",
        better: Better::Higher,
        target: Target::RatioAtLeast(1.1),
    }],
};

/// Payload bytes per message.
const MIB: usize = 1 << 20;

/// Starts both servers, connects, and measures.
pub(crate) async fn run(env: &Env) -> Result<Outcome> {
    let servers = Servers::start(env, baseline::Service::Echo).await?;
    let (reader, writer) = servers.baseline_client().await?;
    let micro = servers.micro_client().await?;
    let mut sides = Echo {
        reader,
        writer,
        micro,
        payload: Bytes::pattern(MIB),
    };
    Ok(compare(&SPEC, &mut sides).await)
}

/// Both connections and the message both send.
struct Echo {
    reader: Reader,
    writer: Writer,
    micro: BenchClient,
    payload: Bytes,
}

impl Echo {
    /// Checks that the echo is the payload, byte for byte.
    fn check(&self, echo: &Bytes) -> Result<()> {
        if echo == &self.payload {
            Ok(())
        } else {
            Err(format!("the echo differs ({} bytes)", echo.data.len()).into())
        }
    }
}

/// MiB/s of payload, counted one way: `n` messages of 1 MiB over `elapsed`.
fn mib_per_second(n: usize, elapsed: std::time::Duration) -> Vec<f64> {
    vec![per_second(n, elapsed)]
}

impl Sides for Echo {
    /// Each message is cloned before it is sent, as micro's client takes its argument by value.
    async fn baseline(&mut self, n: usize) -> Result<Vec<f64>> {
        let start = Instant::now();
        for id in 0..n as u64 {
            let msg = self.payload.clone();
            self.writer.send(baseline::message(id, &msg)?).await?;
            let echo: Bytes = baseline::recv(&mut self.reader, id)
                .await?
                .ok_or("an end frame instead of an echo")?;
            self.check(&echo)?;
        }
        Ok(mib_per_second(n, start.elapsed()))
    }

    async fn micro(&mut self, n: usize) -> Result<Vec<f64>> {
        let start = Instant::now();
        for _ in 0..n {
            let echo = self.micro.echo(self.payload.clone()).await?;
            self.check(&echo)?;
        }
        Ok(mib_per_second(n, start.elapsed()))
    }
}
