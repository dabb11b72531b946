//! Runs the selected workloads: warm-up, three alternating repetitions per side, medians.

use std::future::Future;
use std::time::Duration;

use crate::report::{self, Outcome, Samples};
use crate::service::{BenchClient, BenchService};
use crate::sides::{RunningServer, ServerThread, client_runtime};
use crate::workloads::{self, Spec};
use crate::{Result, baseline, service};

/// Timed repetitions per side and workload.
pub(crate) const REPETITIONS: usize = 3;

/// A repetition that takes longer than this is reported as hung and the side is abandoned.
pub(crate) const REPETITION_LIMIT: Duration = Duration::from_secs(30);

/// One workload's two implementations. Each runs the workload `n` times (calls, messages,
/// echoes…) over its connection, checks every reply, and returns one value per metric of the
/// workload's [`Spec`].
pub(crate) trait Sides {
    /// The baseline's run.
    fn baseline(&mut self, n: usize) -> impl Future<Output = Result<Vec<f64>>>;
    /// micro's run.
    fn micro(&mut self, n: usize) -> impl Future<Output = Result<Vec<f64>>>;
}

/// What every workload runs on: the server thread, and how the baseline flushes.
#[derive(Debug)]
pub(crate) struct Env {
    /// Where the servers run; the client side is the thread running the workload.
    pub(crate) server: ServerThread,
    /// The baseline's write policy, for its servers and clients alike.
    pub(crate) flush: baseline::Flush,
}

/// The two servers of one workload, each on the server thread: micro's with its defaults and
/// the baseline's answering `service`.
#[derive(Debug)]
pub(crate) struct Servers {
    baseline: RunningServer,
    micro: RunningServer,
    flush: baseline::Flush,
}

impl Servers {
    /// Starts both servers.
    pub(crate) async fn start(env: &Env, service: baseline::Service) -> Result<Self> {
        let flush = env.flush;
        let baseline = env
            .server
            .spawn(move |listener| baseline::serve(listener, service, flush))
            .await?;
        let micro = env
            .server
            .spawn(|listener| service::serve(listener, BenchService::default().into(), None))
            .await?;
        Ok(Servers {
            baseline,
            micro,
            flush,
        })
    }

    /// A connection to the baseline server.
    pub(crate) async fn baseline_client(&self) -> Result<(baseline::Reader, baseline::Writer)> {
        baseline::connect(self.baseline.addr, self.flush).await
    }

    /// Where the baseline server listens.
    pub(crate) fn baseline_addr(&self) -> std::net::SocketAddr {
        self.baseline.addr
    }

    /// A client of the micro server (one connection).
    pub(crate) async fn micro_client(&self) -> Result<BenchClient> {
        Ok(BenchClient::connect(self.micro.addr).await?)
    }
}

/// The option that makes the baseline flush after every message.
pub(crate) const FLUSH_EACH_MESSAGE: &str = "--flush-each-message";

/// Runs every workload `args` selects (all without filters) and prints the table.
pub(crate) fn run_all(args: &[String]) -> Result<()> {
    let (options, filters): (Vec<String>, Vec<String>) =
        args.iter().cloned().partition(|arg| arg.starts_with("--"));
    let flush = match options.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => baseline::Flush::Batched,
        [FLUSH_EACH_MESSAGE] => baseline::Flush::EachMessage,
        _ => return Err(format!("unknown options {options:?}").into()),
    };
    let selected = workloads::select(&filters)?;
    let runtime = client_runtime()?;
    let env = Env {
        server: ServerThread::start()?,
        flush,
    };
    println!("{}; baseline flushes: {flush:?}.", machine());
    let mut outcomes = Vec::new();
    for spec in selected {
        println!("{} {} ({})", spec.id.to_uppercase(), spec.title, spec.size);
        outcomes.push(runtime.block_on(workloads::run(spec, &env)));
    }
    drop(env);
    println!();
    report::print_table(&outcomes);
    Ok(())
}

/// The CPU count and model, for the record.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} CPUs ({model})")
}

/// Measures one workload: a warm-up of `spec.warmup` on each side, then
/// [`REPETITIONS`] runs of `spec.count`, alternating baseline and micro so that a change in the
/// machine's load hits both. A side that fails or hangs keeps its error and runs no more.
pub(crate) async fn compare(spec: &'static Spec, sides: &mut impl Sides) -> Outcome {
    let mut baseline = Samples::default();
    let mut micro = Samples::default();
    baseline.record(
        spec,
        "warm-up",
        limited(sides.baseline(spec.warmup)).await.map(drop),
    );
    micro.record(
        spec,
        "warm-up",
        limited(sides.micro(spec.warmup)).await.map(drop),
    );
    for _ in 0..REPETITIONS {
        if baseline.error.is_none() {
            let run = limited(sides.baseline(spec.count)).await;
            baseline.push(spec, "baseline", run);
        }
        if micro.error.is_none() {
            let run = limited(sides.micro(spec.count)).await;
            micro.push(spec, "micro", run);
        }
    }
    Outcome {
        spec,
        baseline: Some(baseline),
        micro,
    }
}

/// Measures a workload that has no baseline (W6, W7): [`REPETITIONS`] runs of `measure`,
/// stopping at the first that fails.
pub(crate) async fn micro_only<F>(spec: &'static Spec, mut measure: impl FnMut() -> F) -> Outcome
where
    F: Future<Output = Result<Vec<f64>>>,
{
    let mut micro = Samples::default();
    for _ in 0..REPETITIONS {
        micro.push(spec, "micro", measure().await);
        if micro.error.is_some() {
            break;
        }
    }
    Outcome {
        spec,
        baseline: None,
        micro,
    }
}

/// `run`, or an error once it has taken [`REPETITION_LIMIT`].
pub(crate) async fn limited<T>(run: impl Future<Output = Result<T>>) -> Result<T> {
    match tokio::time::timeout(REPETITION_LIMIT, run).await {
        Ok(result) => result,
        Err(_) => Err(format!("no result after {} s (hung?)", REPETITION_LIMIT.as_secs()).into()),
    }
}
