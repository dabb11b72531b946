//! The workloads, one module each. Every module holds its [`Spec`] and both implementations:
//! the baseline's over a raw framed connection and micro's through the generated client.

pub(crate) mod w1;
pub(crate) mod w2;
pub(crate) mod w3;
pub(crate) mod w4;
pub(crate) mod w5;
pub(crate) mod w6;
pub(crate) mod w7;

use std::time::Duration;

use crate::Result;
use crate::report::{Outcome, Samples};
use crate::runner::Env;

/// What a workload is and reports.
#[derive(Debug)]
pub(crate) struct Spec {
    /// `w1` … `w7`: the command-line filter.
    pub(crate) id: &'static str,
    /// Short name.
    pub(crate) title: &'static str,
    /// The work of one repetition, in words.
    pub(crate) size: &'static str,
    /// Calls, messages or echoes per repetition.
    pub(crate) count: usize,
    /// The same, for the warm-up.
    pub(crate) warmup: usize,
    /// What each repetition reports.
    pub(crate) metrics: &'static [crate::report::Metric],
}

/// Every workload, in the order they run.
pub(crate) const ALL: [&Spec; 7] = [
    &w1::SPEC,
    &w2::SPEC,
    &w3::SPEC,
    &w4::SPEC,
    &w5::SPEC,
    &w6::SPEC,
    &w7::SPEC,
];

/// The workloads named in `filters` (`w3`, `W3`…), or all of them when there are none.
pub(crate) fn select(filters: &[String]) -> Result<Vec<&'static Spec>> {
    if filters.is_empty() {
        return Ok(ALL.to_vec());
    }
    filters
        .iter()
        .map(|filter| {
            ALL.iter()
                .find(|spec| spec.id.eq_ignore_ascii_case(filter))
                .copied()
                .ok_or_else(|| format!("no workload {filter:?} (try w1 … w7)").into())
        })
        .collect()
}

/// Runs one workload; setup failures are reported as the workload's outcome.
pub(crate) async fn run(spec: &'static Spec, env: &Env) -> Outcome {
    let result = match spec.id {
        "w1" => w1::run(env).await,
        "w2" => w2::run(env).await,
        "w3" => w3::run(env).await,
        "w4" => w4::run(env).await,
        "w5" => w5::run(env).await,
        "w6" => w6::run().await,
        _ => w7::run(env).await,
    };
    result.unwrap_or_else(|err| {
        println!("  setup FAILED: {err}");
        Outcome {
            spec,
            baseline: None,
            micro: Samples {
                runs: Vec::new(),
                error: Some(format!("setup: {err}")),
            },
        }
    })
}

/// `count` per second over `elapsed`.
pub(crate) fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

/// Fails with `what` unless `got == expected`: every workload counts what came back.
pub(crate) fn expect_count(what: &str, got: usize, expected: usize) -> Result<()> {
    if got == expected {
        Ok(())
    } else {
        Err(format!("expected {expected} {what}, got {got}").into())
    }
}
