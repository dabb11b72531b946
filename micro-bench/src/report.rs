//! What a workload measured, and the table printed at the end of the run.

use std::fmt::Write as _;

use crate::Result;
use crate::workloads::Spec;

/// Which way a metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Better {
    /// Rates: calls/s, messages/s, MiB/s.
    Higher,
    /// Latencies and memory.
    Lower,
}

/// The goal a metric is held to (from `DESIGN.md`'s performance targets).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Target {
    /// Reported only.
    None,
    /// micro/baseline must be at least this.
    RatioAtLeast(f64),
    /// micro/baseline must be at most this.
    RatioAtMost(f64),
    /// micro's value must be at most this (it has no baseline).
    AtMost(f64),
}

/// One number a workload reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Metric {
    /// Name and unit, e.g. `calls/s`.
    pub(crate) name: &'static str,
    /// Which way is better.
    pub(crate) better: Better,
    /// The goal, if any.
    pub(crate) target: Target,
}

/// The repetitions of one side of one workload.
#[derive(Debug, Default)]
pub(crate) struct Samples {
    /// One value per metric, per repetition.
    pub(crate) runs: Vec<Vec<f64>>,
    /// Why the side stopped, if it failed or hung.
    pub(crate) error: Option<String>,
}

impl Samples {
    /// Records a run that yields no numbers (a warm-up), printing a failure.
    pub(crate) fn record(&mut self, spec: &Spec, label: &str, run: Result<()>) {
        if let Err(err) = run {
            println!("  {label:<9} {} FAILED: {err}", spec.id);
            self.error = Some(format!("{label}: {err}"));
        }
    }

    /// Records one repetition and prints it.
    pub(crate) fn push(&mut self, spec: &Spec, label: &str, run: Result<Vec<f64>>) {
        match run {
            Ok(values) => {
                let shown: Vec<String> = spec
                    .metrics
                    .iter()
                    .zip(&values)
                    .map(|(metric, value)| format!("{} {}", format_value(*value), metric.name))
                    .collect();
                println!("  {label:<9} {}", shown.join(", "));
                self.runs.push(values);
            }
            Err(err) => {
                println!("  {label:<9} FAILED: {err}");
                self.error = Some(err.to_string());
            }
        }
    }

    /// The median of metric `index` over the repetitions, if there were any.
    pub(crate) fn median(&self, index: usize) -> Option<f64> {
        median(self.runs.iter().map(|run| run[index]).collect())
    }

    /// Every repetition's value of metric `index`, e.g. `101 / 99.2 / 100`.
    fn all(&self, index: usize) -> String {
        let values: Vec<String> = self
            .runs
            .iter()
            .map(|run| format_value(run[index]))
            .collect();
        values.join(" / ")
    }
}

/// Both sides of one workload.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The workload.
    pub(crate) spec: &'static Spec,
    /// The baseline's runs; `None` where the baseline has no equivalent (W6).
    pub(crate) baseline: Option<Samples>,
    /// micro's runs.
    pub(crate) micro: Samples,
}

/// Prints the medians with ratios and targets, then every repetition, as Markdown tables.
pub(crate) fn print_table(outcomes: &[Outcome]) {
    println!(
        "Medians of {} runs. Ratio = micro / baseline for every metric; \"Better\" is the way \
         the metric, and so the ratio, improves: above 1 micro is faster (rates), below 1 micro \
         is quicker or smaller (latency, memory).",
        crate::runner::REPETITIONS
    );
    println!();
    println!("| Workload | Metric | Baseline | micro | Ratio | Better | Target | Met |");
    println!("|---|---|---|---|---|---|---|---|");
    for outcome in outcomes {
        for (index, metric) in outcome.spec.metrics.iter().enumerate() {
            println!("{}", median_row(outcome, index, metric));
        }
    }
    println!();
    println!("Every run (baseline; micro):");
    println!();
    println!("| Workload | Metric | Baseline runs | micro runs |");
    println!("|---|---|---|---|");
    for outcome in outcomes {
        for (index, metric) in outcome.spec.metrics.iter().enumerate() {
            let baseline = outcome
                .baseline
                .as_ref()
                .map_or_else(|| "—".to_string(), |b| or_error(b, b.all(index)));
            let micro = or_error(&outcome.micro, outcome.micro.all(index));
            println!(
                "| {} | {} | {baseline} | {micro} |",
                outcome.spec.id.to_uppercase(),
                metric.name
            );
        }
    }
}

fn median_row(outcome: &Outcome, index: usize, metric: &Metric) -> String {
    let baseline = outcome.baseline.as_ref().and_then(|b| b.median(index));
    let micro = outcome.micro.median(index);
    let ratio = baseline.zip(micro).map(|(b, m)| m / b);
    let met = match (metric.target, ratio, micro) {
        (Target::RatioAtLeast(goal), Some(ratio), _) => Some(ratio >= goal),
        (Target::RatioAtMost(goal), Some(ratio), _) => Some(ratio <= goal),
        (Target::AtMost(goal), _, Some(micro)) => Some(micro <= goal),
        _ => None,
    };
    let mut row = String::new();
    let _ = write!(
        row,
        "| {} {} | {} | {} | {} | {} | {} | {} | {} |",
        outcome.spec.id.to_uppercase(),
        outcome.spec.title,
        metric.name,
        match &outcome.baseline {
            None => "—".to_string(),
            Some(samples) => cell(samples, baseline),
        },
        cell(&outcome.micro, micro),
        ratio.map_or_else(|| "—".to_string(), |r| format!("{r:.2}×")),
        match metric.better {
            Better::Higher => "higher",
            Better::Lower => "lower",
        },
        match metric.target {
            Target::None => "—".to_string(),
            Target::RatioAtLeast(goal) => format!("≥ {goal:.2}×"),
            Target::RatioAtMost(goal) => format!("≤ {goal:.2}×"),
            Target::AtMost(goal) => format!("≤ {}", format_value(goal)),
        },
        match met {
            None => "—",
            Some(true) => "yes",
            Some(false) => "**no**",
        },
    );
    row
}

fn cell(samples: &Samples, median: Option<f64>) -> String {
    match median {
        Some(value) if samples.error.is_none() => format_value(value),
        _ => or_error(samples, String::new()),
    }
}

fn or_error(samples: &Samples, text: String) -> String {
    match &samples.error {
        None => text,
        Some(err) => format!("FAILED: {}", err.replace('|', "/")),
    }
}

/// The median of `values` (the mean of the middle two for an even count), if there are any.
pub(crate) fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

/// `1234567.8` as `1,234,568`; values below 100 keep one decimal.
pub(crate) fn format_value(value: f64) -> String {
    if value.abs() < 100.0 {
        return format!("{value:.1}");
    }
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    if value < 0.0 {
        out.insert(0, '-');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(Vec::new()), None);
    }

    #[test]
    fn values_are_grouped_by_thousands() {
        assert_eq!(format_value(1_234_567.8), "1,234,568");
        assert_eq!(format_value(999.4), "999");
        assert_eq!(format_value(12.34), "12.3");
        assert_eq!(format_value(-2048.0), "-2,048");
    }
}
